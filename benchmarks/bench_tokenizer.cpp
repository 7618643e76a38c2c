// SPDX-License-Identifier: Apache-2.0
// Tokenizer throughput (MB/s of UTF-8 input) per tokenizer kind on a 4 MiB mixed text.
#include <benchmark/benchmark.h>

#include <algorithm>
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

/// 4 MiB of distinct text: Debian's license and copyright files (English prose, names, URLs,
/// code-like notices; $POLYINFER_BENCH_TEXT_DIR overrides the folder), then the fixtures' 177
/// tokenizer conformance strings (numbers, accents, CJK, emoji, nine scripts). Falls back to
/// repeating the project's LICENSE where no such files exist.
const std::string& corpus() {
  static const std::string text = [] {
    constexpr size_t kBytes = 4u << 20;
    std::string out;
    const char* env = std::getenv("POLYINFER_BENCH_TEXT_DIR");
    for (const fs::path& dir : {fs::path(env != nullptr ? env : "/usr/share/common-licenses"),
                                fs::path("/usr/share/doc")}) {
      std::error_code ec;
      std::vector<fs::path> files;
      for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
           it.increment(ec)) {
        if (it->is_regular_file(ec) && it->file_size(ec) < (1u << 20) &&
            it->path().extension() != ".gz") {
          files.push_back(it->path());
        }
      }
      std::sort(files.begin(), files.end());
      for (const auto& file : files) {
        if (out.size() >= kBytes) break;
        out += read_file(file);
      }
    }
    const auto json = read_file(shared_dir() / "fixtures/models/tiny-qwen2/tokenizers.json");
    if (!json.empty()) {
      for (const auto& item : nlohmann::json::parse(json)["cases"]) {
        out.insert(0, item["text"].get<std::string>() + "\n");
      }
    }
    const std::string prose = read_file(fs::path(POLYINFER_SOURCE_DIR) / "LICENSE");
    while (out.size() < kBytes) out += prose;
    out.resize(kBytes);
    // Keep valid UTF-8: drop a cut sequence at the end and any invalid bytes in the files.
    std::string clean;
    clean.reserve(out.size());
    for (size_t i = 0; i < out.size();) {
      const auto lead = static_cast<unsigned char>(out[i]);
      const size_t len = lead < 0x80         ? 1
                         : (lead >> 5) == 6  ? 2
                         : (lead >> 4) == 14 ? 3
                         : (lead >> 3) == 30 ? 4
                                             : 0;
      bool ok = len > 0 && i + len <= out.size();
      for (size_t k = 1; ok && k < len; ++k) {
        ok = (static_cast<unsigned char>(out[i + k]) & 0xC0) == 0x80;
      }
      if (ok) clean.append(out, i, len);
      i += ok ? len : 1;
    }
    return clean;
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
