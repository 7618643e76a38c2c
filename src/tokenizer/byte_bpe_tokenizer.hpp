// SPDX-License-Identifier: Apache-2.0
// llama.cpp's byte-level BPE session (llm_tokenizer_bpe_session) over a GGUF vocabulary.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/pre_tokenizers.hpp"

namespace polyinfer::inline v0::detail {

struct GgufVocab;
class PieceCache;

/// Byte-level BPE of one plain-text run: split by the pre-tokenizer's regexes, each piece
/// mapped byte by byte to GPT-2's printable code points, merged by rank (leftmost on ties),
/// and symbols that are no vocabulary entry emitted as their single-byte entries (as llama.cpp
/// does, which drops bytes whose GPT-2 code point is not ASCII).
class ByteBpeTokenizer {
 public:
  /// `vocab` must outlive this object.
  explicit ByteBpeTokenizer(const GgufVocab& vocab);

  /// `cache` remembers the ids of each distinct piece during one encode call.
  void tokenize(std::string_view text, PieceCache& cache, std::vector<int32_t>& out) const;

 private:
  void tokenize_word(std::string_view encoded, std::vector<int32_t>& out) const;

  const GgufVocab& vocab_;
  RegexPreTokenizer pre_tokenizer_;
};

}  // namespace polyinfer::inline v0::detail
