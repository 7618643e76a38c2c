// SPDX-License-Identifier: Apache-2.0
// BpeChunker: splits a long BPE word where no merge can ever cross, so that it merges chunk by
// chunk with the same result (and repeated chunks can be memoised).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace polyinfer::inline v0::detail {

/// Every symbol a BPE merge creates is a vocabulary token, so a boundary between two adjacent
/// characters (a, b) can only be crossed when some token contains "ab". BpeChunker records
/// those character pairs and cuts text at every other boundary. Immutable after finish().
class BpeChunker {
 public:
  /// Records the adjacent character pairs of one vocabulary token (valid UTF-8).
  void add_token(std::string_view token);
  /// Sorts the recorded pairs; call once after the last add_token.
  void finish();

  /// Calls `chunk(view)` for consecutive pieces covering `text` (valid UTF-8), cut at every
  /// boundary no token spans.
  template <typename Chunk>
  void split(std::string_view text, Chunk&& chunk) const {
    size_t begin = 0;
    size_t pos = 0;
    char32_t previous = 0;
    while (pos < text.size()) {
      const size_t start = pos;
      const char32_t cp = decode(text, pos);
      if (start > 0 && !joined(previous, cp)) {
        chunk(text.substr(begin, start - begin));
        begin = start;
      }
      previous = cp;
    }
    if (begin < text.size()) chunk(text.substr(begin));
  }

 private:
  /// Code point at text[pos] for valid UTF-8 (advances pos).
  static char32_t decode(std::string_view text, size_t& pos) noexcept {
    const auto lead = static_cast<unsigned char>(text[pos]);
    if (lead < 0x80) {
      ++pos;
      return lead;
    }
    const size_t length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    char32_t cp = length == 4 ? (lead & 0x07) : length == 3 ? (lead & 0x0F) : (lead & 0x1F);
    size_t i = 1;
    for (; i < length && pos + i < text.size(); ++i) {
      cp = (cp << 6) | (static_cast<unsigned char>(text[pos + i]) & 0x3F);
    }
    pos += i;
    return cp;
  }

  [[nodiscard]] bool joined(char32_t left, char32_t right) const noexcept;

  std::array<uint64_t, 128 * 128 / 64> ascii_{};  // bit (left * 128 + right)
  std::vector<uint64_t> pairs_;                   // (left << 21) | right, sorted
};

}  // namespace polyinfer::inline v0::detail
