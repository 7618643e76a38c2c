// SPDX-License-Identifier: Apache-2.0
// Byte-level BPE as llama.cpp runs it: regex split, GPT-2 byte mapping, ranked merges.
#include "tokenizer/byte_bpe_tokenizer.hpp"

#include "tokenizer/bpe_merge.hpp"
#include "tokenizer/gguf_vocab.hpp"
#include "tokenizer/piece_cache.hpp"
#include "tokenizer/spm_tokenizer.hpp"
#include "tokenizer/unicode.hpp"

namespace polyinfer::inline v0::detail {

ByteBpeTokenizer::ByteBpeTokenizer(const GgufVocab& vocab)
    : vocab_(vocab), pre_tokenizer_(vocab.pre_spec.regexes) {}

void ByteBpeTokenizer::tokenize(std::string_view text, PieceCache& cache,
                                std::vector<int32_t>& out) const {
  std::vector<std::string_view> pieces;
  pre_tokenizer_.split(text, pieces);
  const auto& table = byte_to_unicode();
  std::string encoded;
  for (const std::string_view piece : pieces) {
    if (cache.emit(piece, out)) continue;
    const size_t first = out.size();
    encoded.clear();
    for (const char byte : piece) encoded += table[static_cast<unsigned char>(byte)];
    tokenize_word(encoded, out);
    cache.remember(piece, out, first);
  }
}

void ByteBpeTokenizer::tokenize_word(std::string_view encoded, std::vector<int32_t>& out) const {
  if (encoded.empty()) return;
  if (vocab_.ignore_merges) {
    const int32_t id = vocab_.find(encoded);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  std::vector<std::pair<size_t, size_t>> symbols;
  llama_utf8_symbols(encoded, symbols);
  std::vector<std::string_view> merged;
  if (symbols.size() == 1) {
    merged.push_back(encoded);
  } else {
    const MergePriority priority = [&](std::string_view left,
                                       std::string_view right) -> std::optional<double> {
      const int32_t rank = vocab_.merge_rank(left, right);
      if (rank < 0) return std::nullopt;
      return static_cast<double>(rank);
    };
    merged = bpe_merge(encoded, symbols, priority);
  }
  for (const std::string_view symbol : merged) {
    const int32_t id = vocab_.find(symbol);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (const char byte : symbol) {
      const int32_t byte_id = vocab_.find(std::string_view(&byte, 1));
      if (byte_id >= 0) out.push_back(byte_id);
    }
  }
}

}  // namespace polyinfer::inline v0::detail
