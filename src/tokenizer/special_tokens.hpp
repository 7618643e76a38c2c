// SPDX-License-Identifier: Apache-2.0
// Splitting special-token text off before tokenizing, as llama.cpp's tokenizer_st_partition.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace polyinfer::inline v0::detail {

struct GgufVocab;

/// A run of plain text (token < 0) or one special token found in the text.
struct TextFragment {
  int32_t token = -1;
  std::string_view text;  ///< the plain text (empty for a token)
};

/// Finds special tokens in text with llama.cpp's rules: tokens are taken longest first, each
/// splitting every remaining plain-text run at all its occurrences; control and unknown tokens
/// only when parse_special is set (user-defined ones always); LSTRIP/RSTRIP tokens swallow the
/// whitespace (C isspace) next to them. Immutable after construction.
class SpecialTokenSplitter {
 public:
  explicit SpecialTokenSplitter(const GgufVocab& vocab);

  /// Appends the fragments of `text` to `out` (nothing for empty text).
  void split(std::string_view text, bool parse_special, std::vector<TextFragment>& out) const;

 private:
  struct Entry {
    int32_t id;
    std::string text;
    bool needs_parse_special;  ///< control or unknown
    bool lstrip;
    bool rstrip;
  };
  struct TrieNode {
    std::vector<std::pair<unsigned char, int32_t>> children;  ///< sorted by byte
    int32_t entry = -1;                                       ///< index into entries_
  };
  /// Marks in `found` every entry that occurs somewhere in `text` (one pass over the text).
  void find_occurring(std::string_view text, std::vector<char>& found) const;

  std::vector<Entry> entries_;  ///< in matching order
  std::vector<TrieNode> trie_;  ///< node 0 is the root
  std::array<int32_t, 256> root_children_{};
};

}  // namespace polyinfer::inline v0::detail
