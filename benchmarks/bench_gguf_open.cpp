// SPDX-License-Identifier: Apache-2.0
// Time to open a GGUF of 64 MiB .. 4 GiB (mmap: independent of size) with a 32000-token vocab.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "format/gguf.hpp"
#include "polyinfer/model.hpp"

namespace {

namespace fs = std::filesystem;

void put_u32(std::string& out, uint32_t v) {
  out.append(reinterpret_cast<const char*>(&v), 4);
}
void put_u64(std::string& out, uint64_t v) {
  out.append(reinterpret_cast<const char*>(&v), 8);
}
void put_str(std::string& out, std::string_view s) {
  put_u64(out, s.size());
  out.append(s);
}

/// Writes a sparse GGUF of about `total_bytes`: llama metadata, a 32000-token vocabulary and
/// Q8_0 matrices of 4096 x 4096 whose data is a hole in the file (never read by open).
fs::path make_sparse_gguf(uint64_t total_bytes) {
  const fs::path path =
      fs::temp_directory_path() / ("polyinfer-bench-" + std::to_string(total_bytes) + ".gguf");
  const uint64_t tensor_bytes = 4096ull * 4096 / 32 * 34;
  const uint64_t tensors = total_bytes / tensor_bytes;
  std::string header = "GGUF";
  put_u32(header, 3);
  put_u64(header, tensors);
  put_u64(header, 10);
  put_str(header, "general.architecture");
  put_u32(header, 8);
  put_str(header, "llama");
  put_str(header, "llama.block_count");
  put_u32(header, 4);
  put_u32(header, static_cast<uint32_t>(tensors));
  put_str(header, "llama.embedding_length");
  put_u32(header, 4);
  put_u32(header, 4096);
  for (const auto& [key, value] :
       {std::pair<const char*, uint32_t>{"llama.feed_forward_length", 11008},
        {"llama.attention.head_count", 32},
        {"llama.attention.head_count_kv", 8},
        {"llama.context_length", 4096}}) {
    put_str(header, key);
    put_u32(header, 4);
    put_u32(header, value);
  }
  put_str(header, "llama.attention.layer_norm_rms_epsilon");
  put_u32(header, 6);
  const float eps = 1e-5f;
  header.append(reinterpret_cast<const char*>(&eps), 4);
  put_str(header, "tokenizer.ggml.model");
  put_u32(header, 8);
  put_str(header, "llama");
  put_str(header, "tokenizer.ggml.tokens");
  put_u32(header, 9);
  put_u32(header, 8);
  put_u64(header, 32000);
  for (int i = 0; i < 32000; ++i) put_str(header, "tok" + std::to_string(i));
  for (uint64_t t = 0; t < tensors; ++t) {
    put_str(header, "blk." + std::to_string(t) + ".ffn_up.weight");
    put_u32(header, 2);
    put_u64(header, 4096);
    put_u64(header, 4096);
    put_u32(header, 8);  // Q8_0
    put_u64(header, t * tensor_bytes);
  }
  header.resize((header.size() + 31) / 32 * 32, '\0');
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  if (fd < 0 || ::write(fd, header.data(), header.size()) != static_cast<ssize_t>(header.size()) ||
      ::ftruncate(fd, static_cast<off_t>(header.size() + tensors * tensor_bytes)) != 0) {
    throw std::runtime_error("cannot write " + path.string());
  }
  ::close(fd);
  return path;
}

void BM_GgufOpen(benchmark::State& state) {
  const auto path = make_sparse_gguf(static_cast<uint64_t>(state.range(0)) << 20);
  size_t tensors = 0;
  for (auto _ : state) {
    auto file = polyinfer::detail::GgufFile::open(path);
    tensors = file.tensors().size();
    benchmark::DoNotOptimize(tensors);
  }
  state.counters["file_MiB"] = static_cast<double>(fs::file_size(path) >> 20);
  state.counters["tensors"] = static_cast<double>(tensors);
  fs::remove(path);
}
BENCHMARK(BM_GgufOpen)->Arg(64)->Arg(1024)->Arg(4096)->Unit(benchmark::kMillisecond);

void BM_ModelFileOpen(benchmark::State& state) {
  const auto path = make_sparse_gguf(static_cast<uint64_t>(state.range(0)) << 20);
  for (auto _ : state) {
    auto model = polyinfer::ModelFile::open(path);
    benchmark::DoNotOptimize(model.tensors().size());
  }
  state.counters["file_MiB"] = static_cast<double>(fs::file_size(path) >> 20);
  fs::remove(path);
}
BENCHMARK(BM_ModelFileOpen)->Arg(64)->Arg(1024)->Arg(4096)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
