// SPDX-License-Identifier: Apache-2.0
// PieceCache: ids already computed for a piece of text during one encode call.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/gguf_vocab.hpp"

namespace polyinfer::inline v0::detail {

/// Words repeat a lot in long texts; tokenizing each distinct piece once keeps BPE merging off
/// the hot path. One cache serves one encode call (it is not shared between threads).
class PieceCache {
 public:
  /// Appends the remembered ids of `piece` to `out` and returns true; false when unknown.
  bool emit(std::string_view piece, std::vector<int32_t>& out) const {
    const auto it = entries_.find(piece);
    if (it == entries_.end()) return false;
    out.insert(out.end(), ids_.begin() + static_cast<ptrdiff_t>(it->second.first),
               ids_.begin() + static_cast<ptrdiff_t>(it->second.first + it->second.second));
    return true;
  }
  /// Remembers out[first, out.size()) as the ids of `piece`.
  void remember(std::string_view piece, const std::vector<int32_t>& out, size_t first) {
    if (entries_.size() >= kMaxEntries) return;
    entries_.emplace(std::string(piece), std::make_pair(ids_.size(), out.size() - first));
    ids_.insert(ids_.end(), out.begin() + static_cast<ptrdiff_t>(first), out.end());
  }

 private:
  static constexpr size_t kMaxEntries = size_t{1} << 20;
  std::unordered_map<std::string, std::pair<size_t, size_t>, TransparentStringHash, std::equal_to<>>
      entries_;
  std::vector<int32_t> ids_;
};

}  // namespace polyinfer::inline v0::detail
