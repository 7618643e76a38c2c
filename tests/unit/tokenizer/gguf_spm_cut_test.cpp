// SPDX-License-Identifier: Apache-2.0
// spm_tokenize cuts runs where no vocabulary entry can span the cut and caches parts; this must
// give exactly what merging the whole run at once (llama.cpp's way) gives.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "format/gguf.hpp"
#include "support/fixtures.hpp"
#include "tokenizer/bpe_merge.hpp"
#include "tokenizer/gguf_vocab.hpp"
#include "tokenizer/piece_cache.hpp"
#include "tokenizer/spm_tokenizer.hpp"

namespace {

using namespace polyinfer::detail;

// llm_tokenizer_spm_session::tokenize on the whole run, without cuts or cache.
std::vector<int32_t> merge_whole(const GgufVocab& vocab, std::string_view escaped) {
  std::vector<std::pair<size_t, size_t>> symbols;
  llama_utf8_symbols(escaped, symbols);
  const MergePriority priority = [&](std::string_view l, std::string_view r) {
    const int32_t id = vocab.find(std::string_view(l.data(), l.size() + r.size()));
    return id < 0 ? std::nullopt : std::optional<double>(-vocab.scores[static_cast<size_t>(id)]);
  };
  std::vector<int32_t> out;
  for (const std::string_view symbol : bpe_merge(escaped, symbols, priority)) {
    const int32_t id = vocab.find(symbol);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (const char byte : symbol) out.push_back(vocab.byte_token(static_cast<uint8_t>(byte)));
  }
  return out;
}

}  // namespace

TEST_CASE("spm_tokenize: cutting and caching change nothing", "[tokenizer][gguf]") {
  POLYINFER_SHARED_OR_RETURN(dir, "fixtures/vocab");
  for (const char* name : {"ggml-vocab-llama-spm.gguf", "ggml-vocab-phi-3.gguf"}) {
    const GgufFile file = GgufFile::open(dir / name);
    const GgufVocab vocab = read_gguf_vocab(file);
    // Every test input, run together (and twice, so that the cache is used), as one run.
    std::string text = polyinfer::test::read_file(dir / (std::string(name) + ".inp"));
    text += text;
    std::string escaped = "\xe2\x96\x81";
    escape_spaces(text, escaped);
    PieceCache cache;
    std::vector<int32_t> cut;
    spm_tokenize(vocab, escaped, cache, cut);
    INFO(name);
    CHECK(cut == merge_whole(vocab, escaped));
  }
}
