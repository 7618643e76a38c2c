// SPDX-License-Identifier: Apache-2.0
// BpeChunker: the character pairs that occur inside vocabulary tokens.
#include "tokenizer/bpe_chunks.hpp"

#include <algorithm>

namespace polyinfer::inline v0::detail {

void BpeChunker::add_token(std::string_view token) {
  size_t pos = 0;
  char32_t previous = 0;
  while (pos < token.size()) {
    const size_t start = pos;
    const char32_t cp = decode(token, pos);
    if (start > 0) {
      if (previous < 128 && cp < 128) {
        const size_t bit = previous * 128 + cp;
        ascii_[bit / 64] |= uint64_t{1} << (bit % 64);
      } else {
        pairs_.push_back((static_cast<uint64_t>(previous) << 21) | cp);
      }
    }
    previous = cp;
  }
}

void BpeChunker::finish() {
  std::sort(pairs_.begin(), pairs_.end());
  pairs_.erase(std::unique(pairs_.begin(), pairs_.end()), pairs_.end());
  pairs_.shrink_to_fit();
}

bool BpeChunker::joined(char32_t left, char32_t right) const noexcept {
  if (left < 128 && right < 128) {
    const size_t bit = left * 128 + right;
    return ((ascii_[bit / 64] >> (bit % 64)) & 1) != 0;
  }
  return std::binary_search(pairs_.begin(), pairs_.end(),
                            (static_cast<uint64_t>(left) << 21) | right);
}

}  // namespace polyinfer::inline v0::detail
