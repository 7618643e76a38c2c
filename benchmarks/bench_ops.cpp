// SPDX-License-Identifier: Apache-2.0
// Transformer ops on the CPU: paged attention (decode and prefill) and rms_norm, in bytes/s.
//
//   build/cpu/bin/bench_ops --benchmark_min_time=0.2
//   POLYINFER_ISA=avx2 build/cpu/bin/bench_ops   # a lower ISA level
#include <benchmark/benchmark.h>

#include <cstddef>
#include <memory>
#include <random>
#include <vector>

#include "kernels/cpu/thread_pool.hpp"
#include "kernels/ops.hpp"

namespace polyinfer::detail {
namespace {

std::vector<float> gaussian(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> out(count);
  for (float& v : out) v = dist(rng);
  return out;
}

/// A paged cache of `rows` rows in blocks of 16 (the runtime's default), blocks in order.
struct Cache {
  std::vector<std::byte> storage;
  std::vector<const std::byte*> blocks;
  KvView view;

  Cache(KvType type, int64_t rows, int64_t kv_heads, int64_t head_dim, uint32_t seed) {
    constexpr int64_t kBlockRows = 16;
    const uint64_t row_bytes = kv_row_bytes(type, kv_heads, head_dim);
    const int64_t block_count = (rows + kBlockRows - 1) / kBlockRows;
    storage.resize(row_bytes * static_cast<uint64_t>(block_count * kBlockRows));
    const std::vector<float> values =
        gaussian(static_cast<size_t>(rows * kv_heads * head_dim), seed);
    kv_store(type, values.data(), rows, kv_heads, head_dim, storage.data());
    for (int64_t b = 0; b < block_count; ++b) {
      blocks.push_back(storage.data() + static_cast<uint64_t>(b * kBlockRows) * row_bytes);
    }
    view = {type, kv_heads, head_dim, kBlockRows, blocks.data(), rows};
  }
};

constexpr int64_t kHeads = 32;
constexpr int64_t kKvHeads = 8;
constexpr int64_t kHeadDim = 64;

// One decode step: a query at the last position reads every K and V row once.
// Args: context, KvType, threads.
void attention_decode(benchmark::State& state) {
  const int64_t context = state.range(0);
  const auto type = static_cast<KvType>(state.range(1));
  const int threads = static_cast<int>(state.range(2));
  const Cache keys(type, context, kKvHeads, kHeadDim, 1);
  const Cache values(type, context, kKvHeads, kHeadDim, 2);
  const std::vector<float> q = gaussian(kHeads * kHeadDim, 3);
  std::vector<float> out(q.size());
  const int32_t position = static_cast<int32_t>(context - 1);
  std::unique_ptr<ThreadPool> pool = threads > 1 ? std::make_unique<ThreadPool>(threads) : nullptr;
  for (auto _ : state) {
    attention(q.data(), 1, kHeads, keys.view, values.view, &position, true, 0.0f, out.data(),
              pool.get());
    benchmark::DoNotOptimize(out.data());
  }
  const auto cache_bytes =
      static_cast<int64_t>(2 * kv_row_bytes(type, kKvHeads, kHeadDim)) * context;
  state.SetBytesProcessed(state.iterations() * cache_bytes);
  state.SetLabel(std::string(isa_name(active_isa())));
}

// A causal prompt of `context` tokens: Σ positions ≈ context²/2 row reads per kv head.
// Args: context, KvType, threads. Counter: attention FLOP/s (4 · head_dim per query head
// and cache row: q·k and p·v).
void attention_prefill(benchmark::State& state) {
  const int64_t context = state.range(0);
  const auto type = static_cast<KvType>(state.range(1));
  const int threads = static_cast<int>(state.range(2));
  const Cache keys(type, context, kKvHeads, kHeadDim, 1);
  const Cache values(type, context, kKvHeads, kHeadDim, 2);
  const std::vector<float> q = gaussian(static_cast<size_t>(context * kHeads * kHeadDim), 3);
  std::vector<float> out(q.size());
  std::vector<int32_t> positions(static_cast<size_t>(context));
  for (int64_t t = 0; t < context; ++t) positions[static_cast<size_t>(t)] = static_cast<int32_t>(t);
  std::unique_ptr<ThreadPool> pool = threads > 1 ? std::make_unique<ThreadPool>(threads) : nullptr;
  for (auto _ : state) {
    attention(q.data(), context, kHeads, keys.view, values.view, positions.data(), true, 0.0f,
              out.data(), pool.get());
    benchmark::DoNotOptimize(out.data());
  }
  const double flops = 4.0 * kHeadDim * kHeads * static_cast<double>(context * (context + 1) / 2);
  state.counters["flop/s"] = benchmark::Counter(flops * static_cast<double>(state.iterations()),
                                                benchmark::Counter::kIsRate);
  state.SetLabel(std::string(isa_name(active_isa())));
}

// rms_norm of `rows` rows of 4096: reads x and the weight, writes y.
void rms_norm_4096(benchmark::State& state) {
  constexpr int64_t kCols = 4096;
  const int64_t rows = state.range(0);
  const std::vector<float> x = gaussian(static_cast<size_t>(rows * kCols), 4);
  const std::vector<float> weight = gaussian(kCols, 5);
  std::vector<float> y(x.size());
  for (auto _ : state) {
    rms_norm(x.data(), weight.data(), 1e-5f, rows, kCols, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * rows * kCols * 3 *
                          static_cast<int64_t>(sizeof(float)));
  state.SetLabel(std::string(isa_name(active_isa())));
}

constexpr auto kF16 = static_cast<int64_t>(KvType::kF16);
constexpr auto kQ8_0 = static_cast<int64_t>(KvType::kQ8_0);

BENCHMARK(attention_decode)
    ->ArgNames({"context", "kv", "threads"})
    ->ArgsProduct({{512, 2048}, {kF16, kQ8_0}, {1, 2}})
    ->UseRealTime();  // the pool's workers do not show in the caller's CPU time
BENCHMARK(attention_prefill)
    ->ArgNames({"context", "kv", "threads"})
    ->ArgsProduct({{512}, {kF16, kQ8_0}, {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(rms_norm_4096)->ArgName("rows")->Arg(1)->Arg(64);

}  // namespace
}  // namespace polyinfer::detail

BENCHMARK_MAIN();
