// SPDX-License-Identifier: Apache-2.0
// SentencePiece BPE as llama.cpp runs it: score-ordered merges, then byte fallback.
#include "tokenizer/spm_tokenizer.hpp"

#include <algorithm>

#include "tokenizer/bpe_merge.hpp"
#include "tokenizer/gguf_vocab.hpp"
#include "tokenizer/piece_cache.hpp"

namespace polyinfer::inline v0::detail {

void escape_spaces(std::string_view text, std::string& out) {
  out.reserve(out.size() + text.size() + text.size() / 4);
  for (const char c : text) {
    if (c == ' ') {
      out += "\xe2\x96\x81";
    } else {
      out += c;
    }
  }
}

void llama_utf8_symbols(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = std::min(text.size(), pos + llama_utf8_len(text[pos]));
    out.emplace_back(pos, end);
    pos = end;
  }
}

namespace {

// One part of a run: merges as llama.cpp's session does for the whole run.
void spm_tokenize_part(const GgufVocab& vocab, std::string_view part,
                       std::vector<std::pair<size_t, size_t>>& symbols, std::vector<int32_t>& out) {
  symbols.clear();
  llama_utf8_symbols(part, symbols);
  // Adjacent symbols are adjacent in `part`, so their concatenation is one view. A merged
  // symbol is always an entry, so llama.cpp's resegment() only ever meets unmerged symbols.
  const MergePriority priority = [&](std::string_view left,
                                     std::string_view right) -> std::optional<double> {
    const int32_t id = vocab.find(std::string_view(left.data(), left.size() + right.size()));
    if (id < 0) return std::nullopt;
    return -static_cast<double>(vocab.scores[static_cast<size_t>(id)]);
  };
  for (const std::string_view symbol : bpe_merge(part, symbols, priority)) {
    const int32_t id = vocab.find(symbol);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (const char byte : symbol) {
      const int32_t byte_id = vocab.byte_token(static_cast<uint8_t>(byte));
      // llama.cpp throws when a vocabulary has neither <0xXX> nor the raw byte; use <unk>.
      if (byte_id >= 0) {
        out.push_back(byte_id);
      } else if (vocab.unk_id >= 0) {
        out.push_back(vocab.unk_id);
      }
    }
  }
}

}  // namespace

void spm_tokenize(const GgufVocab& vocab, std::string_view escaped, PieceCache& cache,
                  std::vector<int32_t>& out) {
  std::vector<std::pair<size_t, size_t>> symbols;
  size_t part_begin = 0;
  size_t pos = 0;
  auto flush = [&](size_t end) {
    const std::string_view part = escaped.substr(part_begin, end - part_begin);
    part_begin = end;
    if (part.empty() || cache.emit(part, out)) return;
    const size_t first = out.size();
    spm_tokenize_part(vocab, part, symbols, out);
    cache.remember(part, out, first);
  };
  while (pos < escaped.size()) {
    // `pos` is a symbol boundary of the whole run, so the parts split into the same symbols.
    if (pos > part_begin && vocab.can_cut_between(escaped[pos - 1], escaped[pos])) flush(pos);
    pos = std::min(escaped.size(), pos + llama_utf8_len(escaped[pos]));
  }
  flush(escaped.size());
}

}  // namespace polyinfer::inline v0::detail
