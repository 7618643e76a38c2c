// SPDX-License-Identifier: Apache-2.0
// Tokenizer throughput (MB/s of UTF-8 input) per tokenizer kind on a 4 MiB mixed text.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "polyinfer/tokenizer.hpp"

namespace {

namespace fs = std::filesystem;

fs::path shared_dir() {
  const char* env = std::getenv("POLYINFER_SHARED_DIR");
  return env != nullptr ? fs::path(env) : fs::path(POLYINFER_DEFAULT_SHARED_DIR);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return std::move(out).str();
}

/// 4 MiB of text: the project's license (English prose) interleaved with the fixtures'
/// 177 tokenizer conformance strings (code, numbers, accents, CJK, emoji, nine scripts).
const std::string& corpus() {
  static const std::string text = [] {
    std::string prose = read_file(fs::path(POLYINFER_SOURCE_DIR) / "LICENSE");
    std::string mixed;
    const auto json = read_file(shared_dir() / "fixtures/models/tiny-qwen2/tokenizers.json");
    if (!json.empty()) {
      for (const auto& item : nlohmann::json::parse(json)["cases"]) {
        mixed += item["text"].get<std::string>() + "\n";
      }
    }
    std::string out;
    while (out.size() < (4u << 20)) out += prose + mixed;
    out.resize(4u << 20);
    while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();
    if (!out.empty() && static_cast<unsigned char>(out.back()) >= 0xC0) out.pop_back();
    return out;
  }();
  return text;
}

void BM_Encode(benchmark::State& state, const std::string& relative) {
  const fs::path path = shared_dir() / relative;
  if (!fs::exists(path)) {
    state.SkipWithError(("missing " + path.string()).c_str());
    return;
  }
  const auto tokenizer = polyinfer::Tokenizer::load(path);
  const std::string& text = corpus();
  size_t tokens = 0;
  for (auto _ : state) {
    tokens = tokenizer.encode(text, {.add_special = false, .parse_special = false}).size();
    benchmark::DoNotOptimize(tokens);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(tokens);
  state.SetLabel(std::string(tokenizer.kind()) + "/" + std::string(tokenizer.pre_tokenizer()));
}

void BM_Decode(benchmark::State& state, const std::string& relative) {
  const fs::path path = shared_dir() / relative;
  if (!fs::exists(path)) {
    state.SkipWithError(("missing " + path.string()).c_str());
    return;
  }
  const auto tokenizer = polyinfer::Tokenizer::load(path);
  const auto ids = tokenizer.encode(corpus(), {.add_special = false, .parse_special = false});
  for (auto _ : state) benchmark::DoNotOptimize(tokenizer.decode(ids).size());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * corpus().size()));
}

#define POLYINFER_TOKENIZER_BENCH(name, path)                                           \
  BENCHMARK_CAPTURE(BM_Encode, name, std::string(path))->Unit(benchmark::kMillisecond); \
  BENCHMARK_CAPTURE(BM_Decode, name, std::string(path))->Unit(benchmark::kMillisecond)

POLYINFER_TOKENIZER_BENCH(hf_spm_bpe_tiny_llama, "fixtures/models/tiny-llama");
POLYINFER_TOKENIZER_BENCH(hf_byte_bpe_tiny_qwen2, "fixtures/models/tiny-qwen2");
POLYINFER_TOKENIZER_BENCH(hf_wordpiece_tiny_bert, "fixtures/models/tiny-bert");
POLYINFER_TOKENIZER_BENCH(llamacpp_spm_llama_32k, "fixtures/vocab/ggml-vocab-llama-spm.gguf");
POLYINFER_TOKENIZER_BENCH(llamacpp_bpe_gpt2_50k, "fixtures/vocab/ggml-vocab-gpt-2.gguf");
POLYINFER_TOKENIZER_BENCH(llamacpp_wpm_bert_30k, "fixtures/vocab/ggml-vocab-bert-bge.gguf");
POLYINFER_TOKENIZER_BENCH(llamacpp_qwen2_tiny,
                          "fixtures/models/tiny-qwen2/gguf/tiny-qwen2-q8_0.gguf");
POLYINFER_TOKENIZER_BENCH(sentencepiece_tiny_llama, "fixtures/models/tiny-llama/tokenizer.model");

}  // namespace

BENCHMARK_MAIN();
