// SPDX-License-Identifier: Apache-2.0
// Matmul kernels beside a memory-read roofline, Eigen and oneDNN: GEMV (1 token, cycling through
// ≥ 1 GiB of distinct matrices so weights stream from DRAM) and GEMM (8, 32, 128, 512 tokens).
//
//   build/cpu/bin/bench_matmul                                  # everything (~5 min)
//   build/cpu/bin/bench_matmul --benchmark_filter='roofline|gemv/q4_0/4096x4096'
//   build/cpu/bin/bench_matmul --benchmark_filter='gemm/.*/4096x4096/tokens:512|onednn'
// Environment: POLYINFER_BENCH_THREADS (default 2), POLYINFER_BENCH_ISA ("best" = the detected
// level, default; "all" = every level from avx2 up that this CPU has; or one name, e.g. "avx2"),
// POLYINFER_BENCH_GIB (GiB of distinct matrices a GEMV cycles through, default 1),
// POLYINFER_BENCH_MIB (MiB instead, for cache-resident runs).
// Counters: GB/s = stored (GGUF) weight bytes per second; GFLOP/s = 2·rows·cols·tokens per
// second (multiply-adds of integer kernels count the same: GOP/s). The label names the kernel.
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/thread_pool.hpp"
#include "kernels/ops.hpp"
#include "kernels/ref/quant_ref.hpp"
#include "polyinfer/tensor.hpp"

#if defined(POLYINFER_BENCH_ONEDNN)
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace polyinfer::bench {

void eigen_gemm_f32(const float* w, int64_t rows, int64_t cols, const float* x, int64_t tokens,
                    float* y, int threads);

namespace {

using detail::Isa;
using detail::PackedMatrix;
using detail::ThreadPool;

struct Shape {
  int64_t rows;  // outputs
  int64_t cols;  // inputs
};

constexpr Shape kShapes[] = {{2048, 2048},  {5632, 2048},  {2048, 5632}, {4096, 4096},
                             {11008, 4096}, {4096, 11008}, {32000, 2048}};
constexpr DType kFormats[] = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ8_0,
                              DType::kQ4_0, DType::kQ4_K, DType::kQ6_K};
constexpr int64_t kGemmTokens[] = {8, 32, 128, 512};
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

int env_int(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::atoi(value) : fallback;
}

ThreadPool& pool_of(int threads) {
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  auto& pool = pools[threads];
  if (!pool) pool = std::make_unique<ThreadPool>(threads);
  return *pool;
}

std::vector<float> gaussian(size_t count, uint32_t seed, float stddev) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> out(count);
  for (float& v : out) v = dist(rng);
  return out;
}

std::string shape_name(Shape shape) {
  return std::to_string(shape.rows) + "x" + std::to_string(shape.cols);
}

// A rows × cols matrix of `dtype`: 64 random rows quantized once, repeated (quantizing a
// gigabyte with the reference would take minutes; the kernels do not care).
std::vector<std::byte> make_matrix(DType dtype, Shape shape) {
  const int64_t tile_rows = std::min<int64_t>(shape.rows, 64);
  const std::vector<float> values = gaussian(static_cast<size_t>(tile_rows * shape.cols), 7, 0.05f);
  const uint64_t row_bytes = dtype_bytes(dtype, shape.cols);
  std::vector<std::byte> tile(row_bytes * static_cast<uint64_t>(tile_rows));
  detail::ref::quantize(dtype, values.data(), tile.data(), tile_rows * shape.cols);
  std::vector<std::byte> out(row_bytes * static_cast<uint64_t>(shape.rows));
  for (int64_t r = 0; r < shape.rows; r += tile_rows) {
    const int64_t n = std::min(tile_rows, shape.rows - r);
    std::memcpy(out.data() + r * row_bytes, tile.data(), n * row_bytes);
  }
  return out;
}

// The matrices of the current GEMV benchmark (one set alive at a time).
struct MatrixSet {
  std::string key;
  std::vector<std::vector<std::byte>> stored;  // one per matrix for in-place formats
  std::vector<PackedMatrix> matrices;
};

MatrixSet& matrix_set(DType dtype, Shape shape, Isa isa, int count) {
  static MatrixSet set;
  const std::string key = std::string(dtype_name(dtype)) + shape_name(shape) +
                          std::string(detail::isa_name(isa)) + std::to_string(count);
  if (set.key == key) return set;
  set = MatrixSet{};
  set.key = key;
  std::vector<std::byte> base = make_matrix(dtype, shape);
  const PackedMatrix probe(dtype, shape.rows, shape.cols, base.data());
  const bool in_place = probe.packed_bytes() == 0;
  set.stored.push_back(std::move(base));
  for (int i = 0; i < count; ++i) {
    // Repacked formats read only their packed copy: one stored matrix serves all of them.
    if (in_place && i > 0) set.stored.push_back(set.stored.front());
    const std::byte* data = set.stored[in_place ? i : 0].data();
    set.matrices.emplace_back(dtype, shape.rows, shape.cols, data);
  }
  return set;
}

void set_counters(benchmark::State& state, double bytes, double flops) {
  const auto iterations = static_cast<double>(state.iterations());
  state.counters["GB/s"] =
      benchmark::Counter(bytes * iterations / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * iterations / 1e9, benchmark::Counter::kIsRate);
}

// ---- roofline ---------------------------------------------------------------------------------

// The sum the roofline takes: 8 independent accumulators and, like the GEMV kernels, a software
// prefetch 8 KiB ahead (the hardware streamer alone runs too close behind on these VMs, so a
// roofline without it would understate what a kernel can read).
__attribute__((target("avx512f"))) double sum_avx512(const double* p, int64_t n) {
  __m512d acc[8];
  for (auto& a : acc) a = _mm512_setzero_pd();
  int64_t i = 0;
  constexpr int64_t kAhead = 8192 / sizeof(double);
  for (; i + 64 <= n; i += 64) {
    for (int k = 0; k < 8; ++k) {
      _mm_prefetch(reinterpret_cast<const char*>(p + i + kAhead + 8 * k), _MM_HINT_T1);
      acc[k] = _mm512_add_pd(acc[k], _mm512_loadu_pd(p + i + 8 * k));
    }
  }
  double sum = 0;
  for (auto& a : acc) sum += _mm512_reduce_add_pd(a);
  for (; i < n; ++i) sum += p[i];
  return sum;
}

double sum_plain(const double* p, int64_t n) {
  double acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += p[i + k];
  }
  for (; i < n; ++i) acc[0] += p[i];
  double sum = 0;
  for (double a : acc) sum += a;
  return sum;
}

// 2 GiB on transparent huge pages, as PackedMatrix allocates its weights.
const double* roofline_buffer() {
  static double* const buffer = [] {
    const auto bytes = static_cast<size_t>(2 * kGiB);
    auto* out = static_cast<double*>(std::aligned_alloc(size_t{2} << 20, bytes));
    madvise(out, bytes, MADV_HUGEPAGE);
    std::fill(out, out + bytes / sizeof(double), 1.0);
    return out;
  }();
  return buffer;
}

// One read-only sum over `bytes` of the roofline buffer (STREAM-like), split in contiguous
// chunks over the pool; returns the seconds it took.
double read_pass(ThreadPool& pool, int threads, double bytes) {
  const double* data = roofline_buffer();
  const auto count = static_cast<int64_t>(bytes / sizeof(double));
  const bool avx512 = detail::detect_isa() >= Isa::kAvx512;
  const auto start = std::chrono::steady_clock::now();
  std::atomic<double> sum{0};
  const int64_t chunks = threads * 8;
  pool.parallel_for(chunks, [&](int64_t begin, int64_t end) {
    const int64_t first = count * begin / chunks;
    const int64_t last = count * end / chunks;
    const double part =
        avx512 ? sum_avx512(data + first, last - first) : sum_plain(data + first, last - first);
    sum.fetch_add(part);
  });
  benchmark::DoNotOptimize(sum.load());
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void bm_roofline(benchmark::State& state, double bytes, int threads) {
  (void)roofline_buffer();
  ThreadPool& pool = pool_of(threads);
  double best = 1e30;
  for (auto _ : state) best = std::min(best, read_pass(pool, threads, bytes));
  set_counters(state, bytes, 0);
  state.counters["best GB/s"] = bytes / best / 1e9;
}

// The DRAM read rate right now: median of `passes` sums over 2 GiB. This VM's bandwidth drifts
// by up to 1.6x over minutes, so each GEMV is compared with a roofline taken beside it.
double roofline_now(ThreadPool& pool, int threads, int passes) {
  (void)roofline_buffer();
  std::vector<double> rates;
  const auto bytes = static_cast<double>(2 * kGiB);
  for (int i = 0; i < passes; ++i) rates.push_back(bytes / read_pass(pool, threads, bytes) / 1e9);
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

// ---- polyinfer ------------------------------------------------------------------------------

void bm_gemv(benchmark::State& state, DType dtype, Shape shape, Isa isa, int threads, int count) {
  detail::force_isa(isa);
  MatrixSet& set = matrix_set(dtype, shape, isa, count);
  ThreadPool& pool = pool_of(threads);
  const std::vector<float> x = gaussian(static_cast<size_t>(shape.cols), 3, 1.0f);
  std::vector<float> y(static_cast<size_t>(shape.rows));
  size_t next = 0;
  double best = 1e30;
  const double roofline_before = roofline_now(pool, threads, 3);
  const auto loop_start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    detail::matmul(set.matrices[next], x.data(), 1, shape.cols, y.data(), shape.rows, &pool);
    best = std::min(
        best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    next = next + 1 == set.matrices.size() ? 0 : next + 1;
  }
  benchmark::DoNotOptimize(y.data());
  const auto bytes = static_cast<double>(set.matrices[0].bytes());
  set_counters(state, bytes, 2.0 * static_cast<double>(shape.rows * shape.cols));
  state.counters["matrices"] = static_cast<double>(set.matrices.size());
  state.counters["best GB/s"] = bytes / best / 1e9;
  // Side by side: the GEMV's mean rate over its loop against the roofline read just before and
  // just after it (mean of the two medians).
  const double loop_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - loop_start).count();
  const double roofline = 0.5 * (roofline_before + roofline_now(pool, threads, 3));
  state.counters["roofline GB/s"] = roofline;
  state.counters["of roofline"] =
      bytes * static_cast<double>(state.iterations()) / loop_s / 1e9 / roofline;
  state.SetLabel(std::string(detail::matmul_kernel_name(set.matrices[0], 1)));
}

void bm_gemm(benchmark::State& state, DType dtype, Shape shape, int64_t tokens, Isa isa,
             int threads) {
  detail::force_isa(isa);
  const std::vector<std::byte> stored = make_matrix(dtype, shape);
  const PackedMatrix w(dtype, shape.rows, shape.cols, stored.data());
  ThreadPool& pool = pool_of(threads);
  const std::vector<float> x = gaussian(static_cast<size_t>(tokens * shape.cols), 3, 1.0f);
  std::vector<float> y(static_cast<size_t>(tokens * shape.rows));
  for (auto _ : state) {
    detail::matmul(w, x.data(), tokens, shape.cols, y.data(), shape.rows, &pool);
  }
  benchmark::DoNotOptimize(y.data());
  set_counters(state, static_cast<double>(w.bytes()),
               2.0 * static_cast<double>(shape.rows * shape.cols * tokens));
  state.SetLabel(std::string(detail::matmul_kernel_name(w, tokens)));
}

void bm_parallel_for_empty(benchmark::State& state, int threads) {
  ThreadPool& pool = pool_of(threads);
  for (auto _ : state) pool.parallel_for(threads, [](int64_t, int64_t) {});
}

// ---- Eigen and oneDNN on the same shapes ------------------------------------------------------

void bm_eigen(benchmark::State& state, Shape shape, int64_t tokens, int threads) {
  const std::vector<float> w = gaussian(static_cast<size_t>(shape.rows * shape.cols), 5, 0.05f);
  const std::vector<float> x = gaussian(static_cast<size_t>(tokens * shape.cols), 3, 1.0f);
  std::vector<float> y(static_cast<size_t>(tokens * shape.rows));
  for (auto _ : state) {
    eigen_gemm_f32(w.data(), shape.rows, shape.cols, x.data(), tokens, y.data(), threads);
  }
  set_counters(state, 4.0 * static_cast<double>(shape.rows * shape.cols),
               2.0 * static_cast<double>(shape.rows * shape.cols * tokens));
}

#if defined(POLYINFER_BENCH_ONEDNN)
void bm_onednn_f32(benchmark::State& state, Shape shape, int64_t tokens, int threads) {
  omp_set_num_threads(threads);
  const std::vector<float> w = gaussian(static_cast<size_t>(shape.rows * shape.cols), 5, 0.05f);
  const std::vector<float> x = gaussian(static_cast<size_t>(tokens * shape.cols), 3, 1.0f);
  std::vector<float> y(static_cast<size_t>(tokens * shape.rows));
  for (auto _ : state) {
    dnnl_sgemm('N', 'T', tokens, shape.rows, shape.cols, 1.0f, x.data(), shape.cols, w.data(),
               shape.cols, 0.0f, y.data(), shape.rows);
  }
  set_counters(state, 4.0 * static_cast<double>(shape.rows * shape.cols),
               2.0 * static_cast<double>(shape.rows * shape.cols * tokens));
}

// Integer GEMM without block scales (oneDNN has none): a yardstick for the Q8_0 / Q4_0 kernels.
void bm_onednn_s8(benchmark::State& state, Shape shape, int64_t tokens, int threads) {
  omp_set_num_threads(threads);
  std::vector<int8_t> w(static_cast<size_t>(shape.rows * shape.cols), 3);
  std::vector<uint8_t> x(static_cast<size_t>(tokens * shape.cols), 5);
  std::vector<int32_t> y(static_cast<size_t>(tokens * shape.rows));
  const int32_t offset = 0;
  for (auto _ : state) {
    dnnl_gemm_u8s8s32('N', 'T', 'F', tokens, shape.rows, shape.cols, 1.0f, x.data(), shape.cols, 0,
                      w.data(), shape.cols, 0, 0.0f, y.data(), shape.rows, &offset);
  }
  set_counters(state, static_cast<double>(shape.rows * shape.cols),
               2.0 * static_cast<double>(shape.rows * shape.cols * tokens));
}

void bm_onednn_bf16(benchmark::State& state, Shape shape, int64_t tokens, int threads) {
  omp_set_num_threads(threads);
  using dnnl::memory;
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const memory::desc src({tokens, shape.cols}, memory::data_type::bf16, memory::format_tag::ab);
  const memory::desc weights({shape.cols, shape.rows}, memory::data_type::bf16,
                             memory::format_tag::ba);
  const memory::desc dst({tokens, shape.rows}, memory::data_type::f32, memory::format_tag::ab);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, weights, dst), engine);
  memory src_mem(src, engine), weights_mem(weights, engine), dst_mem(dst, engine);
  std::memset(src_mem.get_data_handle(), 0x3F, src.get_size());
  std::memset(weights_mem.get_data_handle(), 0x3C, weights.get_size());
  const dnnl::matmul primitive(pd);
  for (auto _ : state) {
    primitive.execute(
        stream,
        {{DNNL_ARG_SRC, src_mem}, {DNNL_ARG_WEIGHTS, weights_mem}, {DNNL_ARG_DST, dst_mem}});
    stream.wait();
  }
  set_counters(state, 2.0 * static_cast<double>(shape.rows * shape.cols),
               2.0 * static_cast<double>(shape.rows * shape.cols * tokens));
}
#endif

// ---- registration -----------------------------------------------------------------------------

std::vector<Isa> bench_levels() {
  const char* value = std::getenv("POLYINFER_BENCH_ISA");
  const std::string choice = value != nullptr ? value : "best";
  const Isa detected = detail::detect_isa();
  std::vector<Isa> out;
  for (int level = 0; level <= static_cast<int>(detected); ++level) {
    const auto isa = static_cast<Isa>(level);
    if ((choice == "all" && isa >= Isa::kAvx2) || choice == detail::isa_name(isa) ||
        (choice == "best" && isa == detected)) {
      out.push_back(isa);
    }
  }
  return out;
}

void register_all() {
  const int threads = std::max(1, env_int("POLYINFER_BENCH_THREADS", 2));
  // POLYINFER_BENCH_MIB cycles that many MiB instead (as little as 2 matrices): cache-resident
  // runs, which show whether a kernel is bound by arithmetic rather than memory.
  const int mib = env_int("POLYINFER_BENCH_MIB", 0);
  const double gib = mib > 0 ? mib / 1024.0 : std::max(1, env_int("POLYINFER_BENCH_GIB", 1));
  const std::string suffix = "/threads:" + std::to_string(threads);

  for (int t : {1, 2}) {
    for (double bytes : {2 * kGiB, 64.0 * 1024 * 1024}) {
      const std::string name = std::string("roofline/read/") + (bytes > kGiB ? "2GiB" : "64MiB") +
                               "/threads:" + std::to_string(t);
      benchmark::RegisterBenchmark(name.c_str(), bm_roofline, bytes, t)
          ->Iterations(bytes > kGiB ? 10 : 200)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
  benchmark::RegisterBenchmark(("pool/empty_parallel_for" + suffix).c_str(), bm_parallel_for_empty,
                               threads)
      ->UseRealTime();

  for (Isa isa : bench_levels()) {
    const std::string level = "/" + std::string(detail::isa_name(isa));
    for (DType dtype : kFormats) {
      for (Shape shape : kShapes) {
        const auto bytes = static_cast<double>(dtype_bytes(dtype, shape.rows * shape.cols));
        const int count = std::max(2, static_cast<int>(gib * kGiB / bytes + 0.999));
        // About 8 GiB streamed per measurement: ~0.3 s at DRAM speed.
        const auto iterations =
            static_cast<benchmark::IterationCount>(std::max(4.0 * count, 8 * kGiB / bytes));
        const std::string name =
            "gemv/" + std::string(dtype_name(dtype)) + "/" + shape_name(shape) + level + suffix;
        benchmark::RegisterBenchmark(name.c_str(), bm_gemv, dtype, shape, isa, threads, count)
            ->Iterations(iterations)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
      }
    }
    for (DType dtype : kFormats) {
      for (Shape shape : kShapes) {
        for (int64_t tokens : kGemmTokens) {
          const std::string name = "gemm/" + std::string(dtype_name(dtype)) + "/" +
                                   shape_name(shape) + "/tokens:" + std::to_string(tokens) + level +
                                   suffix;
          benchmark::RegisterBenchmark(name.c_str(), bm_gemm, dtype, shape, tokens, isa, threads)
              ->UseRealTime()
              ->MinTime(0.3)
              ->Unit(benchmark::kMillisecond);
        }
      }
    }
  }

  for (Shape shape : kShapes) {
    for (int64_t tokens : {int64_t{1}, int64_t{8}, int64_t{32}, int64_t{128}, int64_t{512}}) {
      const std::string tail =
          "/" + shape_name(shape) + "/tokens:" + std::to_string(tokens) + suffix;
      benchmark::RegisterBenchmark(("eigen/f32" + tail).c_str(), bm_eigen, shape, tokens, threads)
          ->UseRealTime()
          ->MinTime(0.3)
          ->Unit(benchmark::kMillisecond);
#if defined(POLYINFER_BENCH_ONEDNN)
      benchmark::RegisterBenchmark(("onednn/f32" + tail).c_str(), bm_onednn_f32, shape, tokens,
                                   threads)
          ->UseRealTime()
          ->MinTime(0.3)
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("onednn/bf16" + tail).c_str(), bm_onednn_bf16, shape, tokens,
                                   threads)
          ->UseRealTime()
          ->MinTime(0.3)
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("onednn/u8s8s32" + tail).c_str(), bm_onednn_s8, shape, tokens,
                                   threads)
          ->UseRealTime()
          ->MinTime(0.3)
          ->Unit(benchmark::kMillisecond);
#endif
    }
  }
}

}  // namespace
}  // namespace polyinfer::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  polyinfer::bench::register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
