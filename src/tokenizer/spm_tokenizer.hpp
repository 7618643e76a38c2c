// SPDX-License-Identifier: Apache-2.0
// llama.cpp's SentencePiece-BPE session (llm_tokenizer_spm_session) over a GGUF vocabulary.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace polyinfer::inline v0::detail {

struct GgufVocab;
class PieceCache;

/// Replaces every ' ' by "▁" (U+2581), as llama_escape_whitespace does.
void escape_spaces(std::string_view text, std::string& out);

/// Tokenizes one plain-text run whose spaces are already escaped: one symbol per UTF-8 lead
/// byte, the adjacent pair whose concatenation is the highest-scoring vocabulary entry merges
/// first (leftmost on ties), and symbols that are no entry fall back to <0xXX> byte tokens.
/// The run is cut where no entry can span the cut (GgufVocab::can_cut_between), which gives
/// the same ids as merging it whole, and each part is looked up in `cache` first.
void spm_tokenize(const GgufVocab& vocab, std::string_view escaped, PieceCache& cache,
                  std::vector<int32_t>& out);

/// Byte length of the UTF-8 sequence that `lead` starts, by its high nibble (llama.cpp's
/// unicode_len_utf8: continuation and invalid bytes count 1).
[[nodiscard]] inline size_t llama_utf8_len(char lead) noexcept {
  static constexpr unsigned char kLengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLengths[static_cast<unsigned char>(lead) >> 4];
}

/// [begin, end) byte ranges of the llama_utf8_len symbols of `text` (clamped at its end).
void llama_utf8_symbols(std::string_view text, std::vector<std::pair<size_t, size_t>>& out);

}  // namespace polyinfer::inline v0::detail
