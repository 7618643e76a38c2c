// SPDX-License-Identifier: Apache-2.0
// PieceTrie: a byte trie over vocabulary pieces for prefix matching (unigram lattices,
// user-defined symbols).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace polyinfer::inline v0::detail {

/// A byte trie from piece strings to ids (sentencepiece user-defined symbols, unigram pieces).
/// Immutable after the last insert; lookups are const.
class PieceTrie {
 public:
  void insert(std::string_view key, int32_t id) {
    uint32_t node = 0;
    for (const char c : key) {
      const auto byte = static_cast<unsigned char>(c);
      const uint32_t next = child(node, byte);
      if (next != 0) {
        node = next;
        continue;
      }
      const auto created = static_cast<uint32_t>(nodes_.size());
      auto& children = nodes_[node].children;
      children.insert(
          std::lower_bound(children.begin(), children.end(), std::make_pair(byte, uint32_t{0})),
          {byte, created});
      nodes_.emplace_back();
      node = created;
    }
    nodes_[node].id = id;  // a later duplicate wins
  }

  [[nodiscard]] bool empty() const noexcept { return nodes_.size() == 1; }

  /// Calls visit(length, id) for every key that is a prefix of `text`, shortest first.
  template <typename Visit>
  void prefixes(std::string_view text, Visit visit) const {
    uint32_t node = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      node = child(node, static_cast<unsigned char>(text[i]));
      if (node == 0) return;
      if (nodes_[node].id >= 0) visit(i + 1, nodes_[node].id);
    }
  }

  /// Length of the longest key that is a prefix of `text` (0 when none).
  [[nodiscard]] size_t longest(std::string_view text) const {
    size_t best = 0;
    prefixes(text, [&](size_t length, int32_t) { best = length; });
    return best;
  }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, uint32_t>> children;
    int32_t id = -1;
  };
  [[nodiscard]] uint32_t child(uint32_t node, unsigned char byte) const {
    const auto& children = nodes_[node].children;
    const auto it =
        std::lower_bound(children.begin(), children.end(), std::make_pair(byte, uint32_t{0}));
    return it != children.end() && it->first == byte ? it->second : 0;
  }
  std::vector<Node> nodes_{Node{}};
};

}  // namespace polyinfer::inline v0::detail
