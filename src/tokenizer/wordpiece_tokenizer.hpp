// SPDX-License-Identifier: Apache-2.0
// llama.cpp's BERT WordPiece session (llm_tokenizer_wpm_session) over a GGUF vocabulary.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace polyinfer::inline v0::detail {

struct GgufVocab;

/// Tokenizes one plain-text run as llama.cpp's WPM tokenizer: each code point replaced by the
/// first code point of its NFD (accents dropped) and lowercased; whitespace separates words;
/// NUL, U+FFFD and \p{C} are dropped; punctuation, ASCII symbols and CJK ideographs are words of
/// their own; each word is matched as "▁word" against the vocabulary (whose first pieces carry
/// "▁" and continuations no prefix), a word without a full match becoming the unknown token.
void wpm_tokenize(const GgufVocab& vocab, std::string_view text, std::vector<int32_t>& out);

}  // namespace polyinfer::inline v0::detail
