// SPDX-License-Identifier: Apache-2.0
// BERT WordPiece as llama.cpp runs it (its own normalisation, "▁"-prefixed first pieces).
#include "tokenizer/wordpiece_tokenizer.hpp"

#include <string>

#include "tokenizer/codepoint_flags.hpp"
#include "tokenizer/gguf_vocab.hpp"
#include "tokenizer/unicode.hpp"
#include "tokenizer/wordpiece.hpp"

namespace polyinfer::inline v0::detail {

namespace {

constexpr std::string_view kWordPrefix = "\xe2\x96\x81";  // ▁

}  // namespace

void wpm_tokenize(const GgufVocab& vocab, std::string_view text, std::vector<int32_t>& out) {
  const WordPieceLookup lookup = [&](std::string_view piece) { return vocab.find(piece); };
  std::string word(kWordPrefix);  // the current word, after its "▁"
  auto flush = [&] {
    if (word.size() == kWordPrefix.size()) return;
    if (!wordpiece_split(word, "", vocab.max_token_len, lookup, out) && vocab.unk_id >= 0) {
      out.push_back(vocab.unk_id);
    }
    word.resize(kWordPrefix.size());
  };
  size_t pos = 0;
  while (pos < text.size()) {
    const char32_t cp = nfd_first(utf8_next(text, pos).value_or(U'\uFFFD'));
    const CodepointFlags flags = codepoint_flags(cp);
    if (flags.whitespace) {
      flush();
      continue;
    }
    if (cp == 0 || cp == 0xFFFD || flags.control) continue;
    const char32_t lower = simple_lower(cp);
    if (flags.punctuation || (cp < 0x7F && flags.symbol) || is_chinese_char(cp)) {
      flush();
      utf8_append(word, lower);
      flush();
    } else {
      utf8_append(word, lower);
    }
  }
  flush();
}

}  // namespace polyinfer::inline v0::detail
