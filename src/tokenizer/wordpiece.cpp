// SPDX-License-Identifier: Apache-2.0
// Greedy longest-match-first WordPiece.
#include "tokenizer/wordpiece.hpp"

#include <algorithm>
#include <string>

namespace polyinfer::inline v0::detail {

bool wordpiece_split(std::string_view word, std::string_view continuation_prefix,
                     size_t max_piece_bytes, const WordPieceLookup& lookup,
                     std::vector<int32_t>& out) {
  const size_t first_output = out.size();
  std::string candidate;
  size_t start = 0;
  while (start < word.size()) {
    const size_t longest =
        max_piece_bytes == 0 ? word.size() - start : std::min(word.size() - start, max_piece_bytes);
    int32_t id = -1;
    size_t length = longest;
    for (; length > 0; --length) {
      const std::string_view piece = word.substr(start, length);
      if (start > 0 && !continuation_prefix.empty()) {
        candidate.assign(continuation_prefix);
        candidate += piece;
        id = lookup(candidate);
      } else {
        id = lookup(piece);
      }
      if (id >= 0) break;
    }
    if (id < 0) {
      out.resize(first_output);
      return false;
    }
    out.push_back(id);
    start += length;
  }
  return true;
}

}  // namespace polyinfer::inline v0::detail
