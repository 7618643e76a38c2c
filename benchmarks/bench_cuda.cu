// SPDX-License-Identifier: Apache-2.0
// GPU roofline and kernel timings: streaming read bandwidth first, then every GEMV (format ×
// shape) as a fraction of it, with cuBLAS F16 beside; multi-row GEMV, GEMM and attention after.
//
//   bench_cuda [--quick] [--gemm] [--gemv FORMAT ROWSxCOLS] [--row-read] [--attention]
//              [--long-rows] [--out FILE]
//
// Timing: CUDA graphs of many calls replayed (launch gaps as in a captured decode step), CUDA
// events around each replay, the median of the replays. Matrices smaller than 512 MiB are
// uploaded several times and the calls cycle over the copies, so that the 60 MB L2 holds none
// of them. Data is random (never zeros).
#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/common/block_formats.hpp"
#include "kernels/cuda/context.cuh"
#include "kernels/cuda/gemv.cuh"
#include "kernels/cuda/gemv_q4_0.cuh"

namespace polyinfer::detail::gpu {
namespace {

#define BENCH_CUDA(expr)                                                 \
  do {                                                                   \
    const cudaError_t bench_error_ = (expr);                             \
    if (bench_error_ != cudaSuccess) {                                   \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, \
                   cudaGetErrorString(bench_error_));                    \
      std::exit(1);                                                      \
    }                                                                    \
  } while (0)

#define BENCH_OK(expr)                                                   \
  do {                                                                   \
    const Status bench_status_ = (expr);                                 \
    if (bench_status_ != Status::kOk) {                                  \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, \
                   std::string(status_name(bench_status_)).c_str());     \
      std::exit(1);                                                      \
    }                                                                    \
  } while (0)

constexpr uint64_t kCycleBytes = uint64_t{512} << 20;

// ---- random data on the device ----

__device__ __forceinline__ uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

__device__ __forceinline__ float unit(uint64_t x) {  // [0, 1)
  return static_cast<float>(mix64(x) >> 40) * (1.0f / 16777216.0f);
}

// GGUF blocks with random quants and small positive scales: kind 0 Q4_0, 1 Q8_0, 2 Q4_K,
// 3 F16 (one "block" per value), 4 f32 values in [-1, 1).
__global__ void random_gguf_kernel(uint8_t* data, int64_t blocks, int kind, uint64_t seed) {
  const int block_bytes = kind == 0 ? 18 : kind == 1 ? 34 : kind == 2 ? 144 : kind == 3 ? 2 : 4;
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t b = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; b < blocks; b += stride) {
    uint8_t* block = data + b * block_bytes;
    const uint64_t key = seed * 0x100000000ull + static_cast<uint64_t>(b);
    if (kind == 3) {
      const Half h = f32_to_fp16(2.0f * unit(key) - 1.0f);
      std::memcpy(block, &h, 2);
      continue;
    }
    if (kind == 4) {
      const float v = 2.0f * unit(key) - 1.0f;
      std::memcpy(block, &v, 4);
      continue;
    }
    for (int i = 0; i < block_bytes; i += 8) {
      const uint64_t bits = mix64(key * 131 + static_cast<uint64_t>(i));
      for (int j = 0; j < 8 && i + j < block_bytes; ++j)
        block[i + j] = static_cast<uint8_t>(bits >> (8 * j));
    }
    const Half d = f32_to_fp16(0.001f + 0.01f * unit(key ^ 0x5555));
    std::memcpy(block, &d, 2);
    if (kind == 2) {
      const Half dmin = f32_to_fp16(0.001f + 0.01f * unit(key ^ 0xAAAA));
      std::memcpy(block + 2, &dmin, 2);
    }
  }
}

DeviceBuffer random_gguf(DType dtype, int64_t elements, uint64_t seed) {
  const int kind = dtype == DType::kQ4_0   ? 0
                   : dtype == DType::kQ8_0 ? 1
                   : dtype == DType::kQ4_K ? 2
                   : dtype == DType::kF16  ? 3
                                           : 4;
  const int64_t per_block = kind == 0 || kind == 1 ? 32 : kind == 2 ? 256 : 1;
  const int block_bytes = kind == 0 ? 18 : kind == 1 ? 34 : kind == 2 ? 144 : kind == 3 ? 2 : 4;
  const int64_t blocks = elements / per_block;
  DeviceBuffer buffer;
  BENCH_OK(DeviceBuffer::allocate(static_cast<uint64_t>(blocks * block_bytes), &buffer));
  random_gguf_kernel<<<2048, 256>>>(buffer.as<uint8_t>(), blocks, kind, seed);
  BENCH_CUDA(cudaGetLastError());
  BENCH_CUDA(cudaDeviceSynchronize());
  return buffer;
}

// ---- timing ----

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Whether a call went through; prints what failed.
bool ok(Status status) {
  if (status != Status::kOk) {
    std::fprintf(stderr, "  call failed: %s\n", std::string(status_name(status)).c_str());
  }
  return status == Status::kOk;
}

bool ok(cublasStatus_t status) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    std::fprintf(stderr, "  cuBLAS call failed: %d\n", static_cast<int>(status));
  }
  return status == CUBLAS_STATUS_SUCCESS;
}

// Median microseconds per call of body(0..calls−1) (which returns whether the call was
// accepted), from a captured graph replayed `reps` times; falls back to plain launches when
// the calls cannot be captured.
double time_calls_us(cudaStream_t stream, int calls, int reps,
                     const std::function<bool(int)>& body) {
  for (int i = 0; i < calls; ++i) {  // warm-up: module load, scratch growth
    if (!body(i)) std::exit(1);
  }
  BENCH_CUDA(cudaStreamSynchronize(stream));
  cudaEvent_t start;
  cudaEvent_t stop;
  BENCH_CUDA(cudaEventCreate(&start));
  BENCH_CUDA(cudaEventCreate(&stop));
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  bool captured = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess;
  if (captured) {
    for (int i = 0; i < calls && captured; ++i) captured = body(i);
    const bool ended = cudaStreamEndCapture(stream, &graph) == cudaSuccess && graph != nullptr;
    captured = captured && ended && cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess;
  }
  if (!captured) {
    (void)cudaGetLastError();
    if (exec != nullptr) (void)cudaGraphExecDestroy(exec);
    if (graph != nullptr) (void)cudaGraphDestroy(graph);
    exec = nullptr;
    graph = nullptr;
    std::fprintf(stderr, "  (graph capture failed: timing plain launches)\n");
  }
  std::vector<double> samples;
  for (int rep = 0; rep < reps + 1; ++rep) {
    BENCH_CUDA(cudaEventRecord(start, stream));
    if (captured) {
      BENCH_CUDA(cudaGraphLaunch(exec, stream));
    } else {
      for (int i = 0; i < calls; ++i) {
        if (!body(i)) std::exit(1);
      }
    }
    BENCH_CUDA(cudaEventRecord(stop, stream));
    BENCH_CUDA(cudaEventSynchronize(stop));
    float ms = 0.0f;
    BENCH_CUDA(cudaEventElapsedTime(&ms, start, stop));
    if (rep > 0) samples.push_back(1000.0 * ms / calls);  // the first replay uploads the graph
  }
  if (exec != nullptr) BENCH_CUDA(cudaGraphExecDestroy(exec));
  if (graph != nullptr) BENCH_CUDA(cudaGraphDestroy(graph));
  BENCH_CUDA(cudaEventDestroy(start));
  BENCH_CUDA(cudaEventDestroy(stop));
  BENCH_CUDA(cudaGetLastError());
  return median(samples);
}

// ---- output ----

// Lines go to stdout and, as they come, to the --out file (a crash keeps what was measured).
struct Report {
  FILE* file = nullptr;
  void line(const char* pattern, ...) __attribute__((format(printf, 2, 3))) {
    char buffer[512];
    va_list args;
    va_start(args, pattern);
    std::vsnprintf(buffer, sizeof buffer, pattern, args);
    va_end(args);
    std::printf("%s\n", buffer);
    std::fflush(stdout);
    if (file != nullptr) {
      std::fprintf(file, "%s\n", buffer);
      std::fflush(file);
    }
  }
};

const char* name_of(DType dtype) {
  switch (dtype) {
    case DType::kQ4_0:
      return "q4_0";
    case DType::kQ8_0:
      return "q8_0";
    case DType::kQ4_K:
      return "q4_k";
    case DType::kF16:
      return "f16";
    default:
      return "?";
  }
}

std::vector<float> to_host(const float* device, size_t count) {
  std::vector<float> values(count);
  BENCH_CUDA(cudaDeviceSynchronize());  // the benchmark's stream does not sync with cudaMemcpy
  BENCH_CUDA(cudaMemcpy(values.data(), device, count * 4, cudaMemcpyDeviceToHost));
  return values;
}

// max |a − b| / max |b|.
double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0.0;
  double scale = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  return scale > 0.0 ? diff / scale : diff;
}

__global__ void half_to_float_kernel(const __half* in, float* out, int64_t count) {
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    out[i] = __half2float(in[i]);
  }
}

__global__ void float_to_half_kernel(const float* in, __half* out, int64_t count) {
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    out[i] = __float2half_rn(in[i]);
  }
}

#include "bench_cuda_long_rows.cuh"

// The GEMV's weight traffic without its arithmetic: warp groups of `splits` warps own kRows
// consecutive rows of `row_bytes`, lane l of split s reads 16-byte chunks 32s + l, 32s + l +
// 32·splits, … of each row, kUnroll of them a row before folding any (gemv_kernel's order), by
// load_kind<kKind> (1: the GEMVs' load_stream()).
template <int kRows, int kUnroll, int kKind = 1>
__global__ void row_read_kernel(const uint8_t* base, int64_t rows, int64_t row_bytes, int splits,
                                uint64_t* sink) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int split = warp % splits;
  const int64_t group = (int64_t{blockIdx.x} * (blockDim.x / 32) + warp) / splits;
  const int64_t first_row = group * kRows;
  if (first_row >= rows) return;
  const int64_t chunks = row_bytes / 16;
  const int64_t stride = int64_t{32} * splits;
  uint32_t folded = 0;
  for (int64_t k0 = split * 32 + lane; k0 < chunks; k0 += stride * kUnroll) {
    uint4 values[kUnroll][kRows];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const int64_t k = k0 + u * stride;
        const int64_t row = first_row + r < rows ? first_row + r : rows - 1;
        values[u][r] = k < chunks ? load_kind<kKind>(base + row * row_bytes + k * 16) : uint4{};
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        folded ^= values[u][r].x ^ values[u][r].y ^ values[u][r].z ^ values[u][r].w;
      }
    }
  }
  if (folded == 0x9E3779B9u) *sink = folded;
}

struct Bench {
  cudaStream_t stream = nullptr;
  std::unique_ptr<Context> context;
  cublasHandle_t blas = nullptr;
  DeviceBuffer blas_workspace;
  double stream_gb_s = 0.0;
  int reps = 15;
  Report report;
  uint64_t seed = 1;

  Stream handle() const { return Stream{stream}; }

  void roofline() {
    const uint64_t bytes = uint64_t{2} << 30;
    DeviceBuffer data = random_gguf(DType::kF32, static_cast<int64_t>(bytes / 4), seed++);
    DeviceBuffer sink;
    BENCH_OK(DeviceBuffer::allocate(64, &sink));
    double best = 0.0;
    int best_variant = 0;
    std::string all;
    for (int variant = 0; variant < stream_read_variants(); ++variant) {
      const double us = time_calls_us(stream, 1, reps, [&](int) {
        return ok(stream_read(data.data(), bytes, sink.as<uint64_t>(), variant, handle()));
      });
      const double gb_s = bytes / us / 1e3;
      char cell[32];
      std::snprintf(cell, sizeof cell, " %.0f", gb_s);
      all += cell;
      if (gb_s > best) {
        best = gb_s;
        best_variant = variant;
      }
    }
    stream_gb_s = best;
    DeviceBuffer copy;
    BENCH_OK(DeviceBuffer::allocate(bytes / 2, &copy));
    const double copy_us = time_calls_us(stream, 1, reps, [&](int) {
      return cudaMemcpyAsync(copy.data(), data.data(), bytes / 2, cudaMemcpyDeviceToDevice,
                             stream) == cudaSuccess;
    });
    report.line(
        "roofline: streaming read %.0f GB/s (variant %d of GB/s:%s); d2d copy %.0f GB/s "
        "(read + write), 2 GiB",
        best, best_variant, all.c_str(), bytes / copy_us / 1e3);
  }

  // --row-read: row_read_kernel's fraction of streaming for GEMV launch shapes (rows per warp,
  // unroll, warps, splits) over matrices of 2 KB and 14 KB rows (Q4_0 quants of 4096 and 28672
  // columns), 132 MiB a call (calls cycle over a 2 GiB buffer) and 2 GiB a call (steady state).
  void row_read() {
    const uint64_t bytes = uint64_t{2} << 30;
    DeviceBuffer data = random_gguf(DType::kF32, static_cast<int64_t>(bytes / 4), seed++);
    DeviceBuffer sink;
    BENCH_OK(DeviceBuffer::allocate(64, &sink));
    struct Shape {
      int rows, unroll, warps, splits;
      void (*kernel)(const uint8_t*, int64_t, int64_t, int, uint64_t*);
    };
    const Shape shapes[] = {
        {4, 2, 8, 1, &row_read_kernel<4, 2>}, {2, 2, 4, 1, &row_read_kernel<2, 2>},
        {2, 2, 8, 1, &row_read_kernel<2, 2>}, {2, 4, 8, 1, &row_read_kernel<2, 4>},
        {2, 2, 8, 4, &row_read_kernel<2, 2>}, {1, 4, 8, 1, &row_read_kernel<1, 4>},
        {1, 8, 8, 1, &row_read_kernel<1, 8>}, {4, 4, 8, 1, &row_read_kernel<4, 4>}};
    for (const int64_t row_bytes : {int64_t{2048}, int64_t{14336}}) {
      for (const uint64_t call_bytes : {uint64_t{132} << 20, bytes}) {
        const int64_t rows = static_cast<int64_t>(call_bytes) / row_bytes;
        const int regions = static_cast<int>(bytes / (rows * row_bytes));
        std::string line;
        for (const Shape& shape : shapes) {
          const int64_t groups = ceil_div(rows, int64_t{shape.rows});
          const auto blocks =
              static_cast<unsigned>(ceil_div(groups, int64_t{shape.warps / shape.splits}));
          const double us = time_calls_us(stream, std::max(2 * regions, 8), reps, [&](int i) {
            const uint8_t* base =
                data.as<uint8_t>() + static_cast<uint64_t>(i % regions) * rows * row_bytes;
            shape.kernel<<<blocks, shape.warps * 32, 0, stream>>>(
                base, rows, row_bytes, shape.splits, sink.as<uint64_t>());
            return cudaGetLastError() == cudaSuccess;
          });
          char cell[64];
          std::snprintf(cell, sizeof cell, " (%d,%d,%d,%d) %.1f", shape.rows, shape.unroll,
                        shape.warps, shape.splits,
                        100.0 * rows * row_bytes / us / 1e3 / stream_gb_s);
          line += cell;
        }
        report.line("row read, rows of %lld B, %.0f MB a call:%s",
                    static_cast<long long>(row_bytes), rows * row_bytes / 1e6, line.c_str());
      }
    }
  }

  // --long-rows: bench_cuda_long_rows.cuh's measurements, % of the 2 GiB streaming read. The
  // loads alone at 132 MB a call over rows of 14 KB (the streaming kernel's variants, then the
  // GEMV's (2,2,4) rows by load kind), then the Q4_0 GEMV kernel by load kind on pre-quantized
  // activations, default shapes, launched plainly and programmatically.
  void long_rows() {
    const uint64_t bytes = uint64_t{2} << 30;
    DeviceBuffer data = random_gguf(DType::kF32, static_cast<int64_t>(bytes / 4), seed++);
    DeviceBuffer sink;
    BENCH_OK(DeviceBuffer::allocate(64, &sink));
    const int64_t row_bytes = 14336;
    const int64_t rows = (int64_t{132} << 20) / row_bytes;
    const uint64_t call_bytes = static_cast<uint64_t>(rows * row_bytes);
    const int regions = static_cast<int>(bytes / call_bytes);
    const int calls = std::max(2 * regions, 8);
    const auto region = [&](int i) {
      return data.as<uint8_t>() + static_cast<uint64_t>(i % regions) * call_bytes;
    };
    const auto percent = [&](double us) {
      return 100.0 * static_cast<double>(call_bytes) / us / 1e3 / stream_gb_s;
    };
    std::string line;
    for (int variant = 0; variant < stream_read_variants(); ++variant) {
      const double us = time_calls_us(stream, calls, reps, [&](int i) {
        return ok(stream_read(region(i), call_bytes, sink.as<uint64_t>(), variant, handle()));
      });
      char cell[32];
      std::snprintf(cell, sizeof cell, " %d:%.1f", variant, percent(us));
      line += cell;
    }
    report.line("long rows: streaming kernel at %.0f MB a call, by variant:%s", call_bytes / 1e6,
                line.c_str());
    const auto blocks = static_cast<unsigned>(ceil_div(rows, int64_t{8}));
    const auto kinds = [&]<int... kKind>(std::integer_sequence<int, kKind...>) {
      std::string cells;
      (
          [&] {
            const double us = time_calls_us(stream, calls, reps, [&](int i) {
              row_read_kernel<2, 2, kKind>
                  <<<blocks, 128, 0, stream>>>(region(i), rows, row_bytes, 1, sink.as<uint64_t>());
              return cudaGetLastError() == cudaSuccess;
            });
            char cell[32];
            std::snprintf(cell, sizeof cell, " %d:%.1f", kKind, percent(us));
            cells += cell;
          }(),
          ...);
      return cells;
    };
    report.line("long rows: (2,2,4) row loads at %.0f MB a call, by load kind:%s", call_bytes / 1e6,
                kinds(std::make_integer_sequence<int, kLoadKinds>{}).c_str());
    data = DeviceBuffer();
    for (const auto& [m, k] :
         {std::pair<int64_t, int64_t>{8192, 28672}, {4096, 14336}, {14336, 4096}}) {
      long_rows_gemv(m, k);
    }
  }

  void long_rows_gemv(int64_t rows, int64_t cols) {
    const std::vector<DeviceMatrix> matrices = cycled_copies(DType::kQ4_0, rows, cols);
    const int copies = static_cast<int>(matrices.size());
    const uint64_t bytes = matrices[0].bytes();
    DeviceBuffer x = random_gguf(DType::kF32, cols, seed++);
    DeviceBuffer y;
    BENCH_OK(DeviceBuffer::allocate(static_cast<uint64_t>(rows) * 4, &y));
    DeviceBuffer quantized;
    BENCH_OK(DeviceBuffer::allocate(quantized_activation_bytes(1, cols), &quantized));
    BENCH_OK(quantize_activations(x.as<float>(), 1, cols, cols, quantized.data(), handle()));
    ActivationsView activations;
    activations.cols = cols;
    activations.qs = quantized.as<int8_t>();
    activations.meta = reinterpret_cast<const int2*>(quantized.as<uint8_t>() +
                                                     quantized_activation_meta_offset(1, cols));
    const GemvConfig config = gemv_default(DType::kQ4_0, 1, cols, rows);
    BENCH_OK(gemv_q4_0(weights_view(matrices[0]), activations, 1, y.as<float>(), rows, config,
                       handle(), false));
    const std::vector<float> expected = to_host(y.as<float>(), static_cast<size_t>(rows));
    const int calls = std::max(2 * copies, 20);
    std::string line;
    const auto timed = [&]<class Format>(std::type_identity<Format>, const std::string& name) {
      for (const bool programmatic : {false, true}) {
        BENCH_CUDA(cudaMemsetAsync(y.data(), 0, static_cast<size_t>(rows) * 4, stream));
        const double us = time_calls_us(stream, calls, reps, [&](int i) {
          return ok(dispatch_gemv<Format>(weights_view(matrices[i % copies]), activations, 1,
                                          y.as<float>(), rows, config, handle(), programmatic));
        });
        const double difference = relative_difference(to_host(y.as<float>(), rows), expected);
        char cell[64];
        std::snprintf(cell, sizeof cell, " %s%s:%.1f%s", name.c_str(), programmatic ? "/pdl" : "",
                      100.0 * bytes / us / 1e3 / stream_gb_s, difference > 1e-5 ? " WRONG" : "");
        line += cell;
      }
    };
    [&]<int... kKind>(std::integer_sequence<int, kKind...>) {
      (timed(std::type_identity<KindQ4_0<kKind>>{}, std::to_string(kKind)), ...);
    }
    (std::make_integer_sequence<int, kLoadKinds>{});
    // The scales without L1 allocation too ("1s").
    timed(std::type_identity<KindQ4_0<1, true>>{}, "1s");
    report.line("long rows: q4_0 %lldx%lld %.1f MB, default (%d,%d,%d,%d), kernel by load kind:%s",
                static_cast<long long>(rows), static_cast<long long>(cols), bytes / 1e6,
                config.rows_per_warp, config.unroll, config.warps_per_block, config.splits,
                line.c_str());
  }

  // One format × shape: every single-token variant through gemv() (quantize + GEMV), the
  // default's GEMV kernel alone, and cuBLAS for F16.
  // Appends {default, best} fractions of matrices of 100 MB and more to `large`.
  void gemv_row(DType dtype, int64_t rows, int64_t cols,
                std::vector<std::pair<double, double>>* large) {
    DeviceBuffer gguf = random_gguf(dtype, rows * cols, seed++);
    DeviceMatrix first;
    BENCH_OK(DeviceMatrix::import_device(
        dtype, rows, cols, static_cast<const std::byte*>(gguf.data()), handle(), &first));
    const uint64_t bytes = first.bytes();
    const int copies =
        static_cast<int>(std::clamp<uint64_t>((kCycleBytes + bytes - 1) / bytes, 1, 64));
    std::vector<DeviceMatrix> matrices;
    matrices.push_back(std::move(first));
    for (int i = 1; i < copies; ++i) {
      DeviceMatrix copy;
      BENCH_OK(DeviceMatrix::import_device(
          dtype, rows, cols, static_cast<const std::byte*>(gguf.data()), handle(), &copy));
      matrices.push_back(std::move(copy));
    }
    BENCH_CUDA(cudaStreamSynchronize(stream));  // the imports have read `gguf`
    gguf = DeviceBuffer();
    DeviceBuffer x = random_gguf(DType::kF32, cols, seed++);
    DeviceBuffer y;
    BENCH_OK(DeviceBuffer::allocate(static_cast<uint64_t>(rows) * 4, &y));
    const int calls = std::max(2 * copies, 20);
    const float* x_data = x.as<float>();
    float* y_data = y.as<float>();

    // The default first: its output is what the variants must reproduce.
    const GemvConfig fallback = gemv_default(dtype, 1, cols, rows);
    BENCH_OK(gemv(*context, matrices[0], x_data, 1, cols, y_data, rows, fallback));
    const std::vector<float> expected = to_host(y_data, static_cast<size_t>(rows));
    double default_us = 0.0;
    double best_us = 1e30;
    GemvConfig best{};
    double worst_difference = 0.0;
    std::string every;  // each variant's fraction, for tuning the defaults
    for (const GemvConfig& config : gemv_variants()) {
      const double us = time_calls_us(stream, calls, reps, [&](int i) {
        return ok(gemv(*context, matrices[i % copies], x_data, 1, cols, y_data, rows, config));
      });
      char text[64];
      std::snprintf(text, sizeof text, " (%d,%d,%d,%d,%d) %.1f", config.rows_per_warp,
                    config.unroll, config.warps_per_block, config.splits, config.stages,
                    100.0 * bytes / us / 1e3 / stream_gb_s);
      every += text;
      worst_difference =
          std::max(worst_difference, relative_difference(to_host(y_data, rows), expected));
      if (config.rows_per_warp == fallback.rows_per_warp && config.unroll == fallback.unroll &&
          config.warps_per_block == fallback.warps_per_block && config.splits == fallback.splits &&
          config.stages == fallback.stages) {
        default_us = us;
      }
      if (us < best_us) {
        best_us = us;
        best = config;
      }
    }
    // The GEMV kernel alone (activations quantized once, outside the timing).
    double kernel_us = 0.0;
    if (dtype != DType::kF16) {
      DeviceBuffer quantized;
      BENCH_OK(DeviceBuffer::allocate(quantized_activation_bytes(1, cols), &quantized));
      BENCH_OK(quantize_activations(x_data, 1, cols, cols, quantized.data(), handle()));
      ActivationsView activations;
      activations.cols = cols;
      activations.qs = quantized.as<int8_t>();
      activations.meta = reinterpret_cast<const int2*>(quantized.as<uint8_t>() +
                                                       quantized_activation_meta_offset(1, cols));
      kernel_us = time_calls_us(stream, calls, reps, [&](int i) {
        const WeightsView view = weights_view(matrices[i % copies]);
        const Status status =
            dtype == DType::kQ4_0
                ? gemv_q4_0(view, activations, 1, y_data, rows, fallback, handle(), false)
            : dtype == DType::kQ8_0
                ? gemv_q8_0(view, activations, 1, y_data, rows, fallback, handle(), false)
                : gemv_q4_k(view, activations, 1, y_data, rows, fallback, handle(), false);
        return ok(status);
      });
      worst_difference =
          std::max(worst_difference, relative_difference(to_host(y_data, rows), expected));
    }
    // cuBLAS beside F16: W f16, x f16, y f16, f32 accumulation (what frameworks call).
    double blas_us = 0.0;
    double blas_difference = 0.0;
    if (dtype == DType::kF16) {
      DeviceBuffer x16;
      DeviceBuffer y16;
      DeviceBuffer y32;
      BENCH_OK(DeviceBuffer::allocate(static_cast<uint64_t>(cols) * 2, &x16));
      BENCH_OK(DeviceBuffer::allocate(static_cast<uint64_t>(rows) * 2, &y16));
      BENCH_OK(DeviceBuffer::allocate(static_cast<uint64_t>(rows) * 4, &y32));
      float_to_half_kernel<<<64, 256, 0, stream>>>(x_data, x16.as<__half>(), cols);
      const float one = 1.0f;
      const float zero = 0.0f;
      blas_us = time_calls_us(stream, calls, reps, [&](int i) {
        return ok(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rows), 1,
                               static_cast<int>(cols), &one, matrices[i % copies].quants(),
                               CUDA_R_16F, static_cast<int>(cols), x16.data(), CUDA_R_16F,
                               static_cast<int>(cols), &zero, y16.data(), CUDA_R_16F,
                               static_cast<int>(rows), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      });
      half_to_float_kernel<<<256, 256, 0, stream>>>(y16.as<__half>(), y32.as<float>(), rows);
      BENCH_CUDA(cudaStreamSynchronize(stream));
      blas_difference = relative_difference(to_host(y32.as<float>(), rows), expected);
    }
    const double mb = bytes / 1e6;
    const auto fraction = [&](double us) {
      return us > 0.0 ? 100.0 * bytes / us / 1e3 / stream_gb_s : 0.0;
    };
    char blas_text[96] = "";
    if (blas_us > 0.0) {
      std::snprintf(blas_text, sizeof blas_text, " | cublas %7.1f us %5.1f%% (diff %.1e)", blas_us,
                    fraction(blas_us), blas_difference);
    }
    char kernel_text[48] = "";
    if (kernel_us > 0.0) {
      std::snprintf(kernel_text, sizeof kernel_text, " | kernel %5.1f%%", fraction(kernel_us));
    }
    report.line(
        "%-4s %6lldx%-6lld %7.1f MB | default %7.1f us %5.0f GB/s %5.1f%% | best (%d,%d,%d,%d,%d) "
        "%7.1f us %5.1f%%%s%s | diff %.1e",
        name_of(dtype), static_cast<long long>(rows), static_cast<long long>(cols), mb, default_us,
        bytes / default_us / 1e3, fraction(default_us), best.rows_per_warp, best.unroll,
        best.warps_per_block, best.splits, best.stages, best_us, fraction(best_us), kernel_text,
        blas_text, worst_difference);
    std::printf("  variants %s %lldx%lld:%s\n", name_of(dtype), static_cast<long long>(rows),
                static_cast<long long>(cols), every.c_str());
    if (bytes >= 100000000) large->emplace_back(fraction(default_us), fraction(best_us));
  }

  // Copies of one random matrix, enough that calls cycling over them find none in L2.
  std::vector<DeviceMatrix> cycled_copies(DType dtype, int64_t rows, int64_t cols) {
    DeviceBuffer gguf = random_gguf(dtype, rows * cols, seed++);
    std::vector<DeviceMatrix> matrices(1);
    BENCH_OK(DeviceMatrix::import_device(
        dtype, rows, cols, static_cast<const std::byte*>(gguf.data()), handle(), &matrices[0]));
    const uint64_t bytes = matrices[0].bytes();
    const size_t copies =
        static_cast<size_t>(std::clamp<uint64_t>((kCycleBytes + bytes - 1) / bytes, 1, 4));
    matrices.resize(copies);
    for (size_t i = 1; i < copies; ++i) {
      BENCH_OK(DeviceMatrix::import_device(
          dtype, rows, cols, static_cast<const std::byte*>(gguf.data()), handle(), &matrices[i]));
    }
    return matrices;
  }

  void multi_token(DType dtype, int64_t rows, int64_t cols) {
    const std::vector<DeviceMatrix> matrices = cycled_copies(dtype, rows, cols);
    const uint64_t bytes = matrices[0].bytes();
    const int copies = static_cast<int>(matrices.size());
    DeviceBuffer x = random_gguf(DType::kF32, 128 * cols, seed++);
    DeviceBuffer y;
    BENCH_OK(DeviceBuffer::allocate(static_cast<uint64_t>(128 * rows) * 4, &y));
    std::string text;
    for (int64_t tokens = 1; tokens <= kGemvMaxTokens; tokens *= 2) {
      const double us = time_calls_us(stream, 20, reps, [&](int i) {
        return ok(matmul(*context, matrices[i % copies], x.as<float>(), tokens, cols, y.as<float>(),
                         rows));
      });
      char cell[96];
      std::snprintf(cell, sizeof cell, " %lld:%.1fus/%.0f%%", static_cast<long long>(tokens), us,
                    100.0 * bytes / us / 1e3 / stream_gb_s);
      text += cell;
    }
    // The integer tensor-core GEMM from 2 to 128 tokens (where the GEMVs could hand over, and
    // its own range), and its f16 MMA form (mmq_half).
    if (mmq_supported(*context, dtype)) {
      for (const bool half : {false, true}) {
        text += half ? " | mmq-f16" : " | mmq";
        for (int64_t tokens = 2; tokens <= 128; tokens *= 2) {
          const double us = time_calls_us(stream, 20, reps, [&](int i) {
            const float* in = x.as<float>();
            return ok(half ? mmq_half(*context, matrices[i % copies], in, tokens, cols,
                                      y.as<float>(), rows)
                           : mmq(*context, matrices[i % copies], in, nullptr, tokens, cols,
                                 y.as<float>(), rows));
          });
          char cell[64];
          std::snprintf(cell, sizeof cell, " %lld:%.1fus", static_cast<long long>(tokens), us);
          text += cell;
        }
      }
    }
    report.line("%-4s %lldx%lld tokens:time/%%stream%s", name_of(dtype),
                static_cast<long long>(rows), static_cast<long long>(cols), text.c_str());
  }

  void prompt_gemm(DType dtype, int64_t rows, int64_t cols, int64_t tokens) {
    DeviceBuffer gguf = random_gguf(dtype, rows * cols, seed++);
    DeviceMatrix matrix;
    BENCH_OK(DeviceMatrix::import_device(
        dtype, rows, cols, static_cast<const std::byte*>(gguf.data()), handle(), &matrix));
    DeviceBuffer x = random_gguf(DType::kF32, tokens * cols, seed++);
    DeviceBuffer y;
    BENCH_OK(DeviceBuffer::allocate(static_cast<uint64_t>(tokens * rows) * 4, &y));
    const double us = time_calls_us(stream, 5, reps, [&](int) {
      return ok(matmul(*context, matrix, x.as<float>(), tokens, cols, y.as<float>(), rows));
    });
    report.line("gemm %-4s %lldx%lld x %lld tokens: %.1f us, %.0f TFLOP/s", name_of(dtype),
                static_cast<long long>(rows), static_cast<long long>(cols),
                static_cast<long long>(tokens), us, 2.0 * rows * cols * tokens / us / 1e6);
  }

  // Quantized weights × 16..512 activation rows: the integer tensor-core GEMM (mmq) beside the
  // cuBLAS path (dequantize to f16 tiles, then cublasGemmEx), in one run; % of streaming is the
  // weight bytes over the time, against the measured read bandwidth. Matrices cycle as in
  // multi_token() so the weights come from memory, not L2.
  void batch_gemm(DType dtype, int64_t rows, int64_t cols) {
    const std::vector<DeviceMatrix> matrices = cycled_copies(dtype, rows, cols);
    const uint64_t bytes = matrices[0].bytes();
    const int copies = static_cast<int>(matrices.size());
    constexpr int64_t kMostTokens = 512;
    DeviceBuffer x = random_gguf(DType::kF32, kMostTokens * cols, seed++);
    DeviceBuffer y;
    BENCH_OK(DeviceBuffer::allocate(static_cast<uint64_t>(kMostTokens * rows) * 4, &y));
    std::string text;
    for (int64_t tokens = 16; tokens <= kMostTokens; tokens *= 2) {
      const double mmq_us = time_calls_us(stream, 5, reps, [&](int i) {
        return ok(mmq(*context, matrices[i % copies], x.as<float>(), nullptr, tokens, cols,
                      y.as<float>(), rows));
      });
      const double blas_us = time_calls_us(stream, 5, reps, [&](int i) {
        return ok(
            gemm(*context, matrices[i % copies], x.as<float>(), tokens, cols, y.as<float>(), rows));
      });
      char cell[96];
      std::snprintf(cell, sizeof cell, " %lld: %.1f/%.1f us %.0f%%/%.0f TOP/s",
                    static_cast<long long>(tokens), mmq_us, blas_us,
                    100.0 * bytes / mmq_us / 1e3 / stream_gb_s,
                    2.0 * rows * cols * tokens / mmq_us / 1e6);
      text += cell;
    }
    report.line("mmq/cublas %-4s %lldx%lld tokens: mmq/cublas us, mmq %%stream / TOP/s%s",
                name_of(dtype), static_cast<long long>(rows), static_cast<long long>(cols),
                text.c_str());
  }

  void attention_decode(int64_t heads, int64_t kv_heads, int64_t dim, int64_t context_rows) {
    constexpr int64_t kBlockRows = 16;
    const int64_t blocks = (context_rows + kBlockRows - 1) / kBlockRows;
    const uint64_t block_bytes = static_cast<uint64_t>(kBlockRows * kv_heads * dim) * 2;
    // Keys and values in one random pool, block tables pointing into it.
    DeviceBuffer pool =
        random_gguf(DType::kF16, static_cast<int64_t>(2 * blocks * block_bytes / 2), seed++);
    std::vector<void*> key_blocks(static_cast<size_t>(blocks));
    std::vector<void*> value_blocks(static_cast<size_t>(blocks));
    for (int64_t b = 0; b < blocks; ++b) {
      key_blocks[b] = pool.as<uint8_t>() + (2 * b) * block_bytes;
      value_blocks[b] = pool.as<uint8_t>() + (2 * b + 1) * block_bytes;
    }
    DeviceBuffer tables;
    BENCH_OK(DeviceBuffer::allocate(static_cast<uint64_t>(2 * blocks) * sizeof(void*), &tables));
    BENCH_CUDA(cudaMemcpy(tables.data(), key_blocks.data(), blocks * sizeof(void*),
                          cudaMemcpyHostToDevice));
    BENCH_CUDA(cudaMemcpy(tables.as<void*>() + blocks, value_blocks.data(), blocks * sizeof(void*),
                          cudaMemcpyHostToDevice));
    const DeviceKvView keys{KvType::kF16, kv_heads,           dim,
                            kBlockRows,   tables.as<void*>(), context_rows};
    const DeviceKvView values{KvType::kF16, kv_heads, dim, kBlockRows, tables.as<void*>() + blocks,
                              context_rows};
    DeviceBuffer q = random_gguf(DType::kF32, heads * dim, seed++);
    DeviceBuffer out;
    BENCH_OK(DeviceBuffer::allocate(static_cast<uint64_t>(heads * dim) * 4, &out));
    const int32_t position = static_cast<int32_t>(context_rows - 1);
    DeviceBuffer positions;
    BENCH_OK(DeviceBuffer::allocate(4, &positions));
    BENCH_CUDA(cudaMemcpy(positions.data(), &position, 4, cudaMemcpyHostToDevice));
    BENCH_CUDA(cudaDeviceSynchronize());  // pageable copies may still be in flight
    const double us = time_calls_us(stream, 20, reps, [&](int) {
      return ok(attention(*context, q.as<float>(), 1, heads, keys, values, positions.as<int32_t>(),
                          true, 0.0f, out.as<float>()));
    });
    const double kv_bytes = 2.0 * context_rows * kv_heads * dim * 2;
    report.line("attention %lld heads / %lld kv x %lld, %lld rows: %.1f us, KV %.0f GB/s (%.0f%%)",
                static_cast<long long>(heads), static_cast<long long>(kv_heads),
                static_cast<long long>(dim), static_cast<long long>(context_rows), us,
                kv_bytes / us / 1e3, 100.0 * kv_bytes / us / 1e3 / stream_gb_s);
  }

  // Sampling `rows` rows of a 128256-entry vocabulary (logits of scale 3) under each rule set,
  // beside the greedy pick.
  void sampling(int64_t rows) {
    constexpr int64_t kVocab = 128256;
    std::vector<float> values(static_cast<size_t>(rows * kVocab));
    std::mt19937 rng(static_cast<uint32_t>(seed++));
    std::normal_distribution<float> normal(0.0f, 3.0f);
    for (float& v : values) v = normal(rng);
    DeviceBuffer logits;
    BENCH_OK(DeviceBuffer::allocate(values.size() * 4, &logits));
    BENCH_CUDA(cudaMemcpy(logits.data(), values.data(), values.size() * 4, cudaMemcpyHostToDevice));
    DeviceBuffer scratch;
    BENCH_OK(DeviceBuffer::allocate(static_cast<uint64_t>(rows * kVocab) * 4, &scratch));
    DeviceBuffer picks;
    BENCH_OK(DeviceBuffer::allocate(static_cast<uint64_t>(rows) * sizeof(SamplePick), &picks));
    DeviceBuffer specs;
    BENCH_OK(DeviceBuffer::allocate(static_cast<uint64_t>(rows) * sizeof(SampleSpec), &specs));
    const double greedy_us = time_calls_us(stream, 20, reps, [&](int) {
      return ok(greedy_rows(logits.as<float>(), rows, kVocab, picks.as<GreedyPick>(), handle()));
    });
    std::string text;
    const struct {
      const char* name;
      float temperature;
      int32_t top_k;
      float top_p;
    } rules[] = {{"T 0.8", 0.8f, 0, 1.0f},
                 {"top-k 40", 0.8f, 40, 1.0f},
                 {"top-k 1024", 0.8f, 1024, 1.0f},
                 {"top-p 0.9 at T 0.5", 0.5f, 0, 0.9f},
                 {"top-p 0.95 (deferred: ~2.4k-value nucleus)", 0.8f, 0, 0.95f}};
    for (const auto& rule : rules) {
      std::vector<SampleSpec> host(static_cast<size_t>(rows));
      for (size_t r = 0; r < host.size(); ++r) {
        host[r].temperature = rule.temperature;
        host[r].top_k = rule.top_k;
        host[r].top_p = rule.top_p;
        host[r].uniform = (static_cast<double>(r) + 0.5) / static_cast<double>(rows);
      }
      BENCH_CUDA(cudaMemcpy(specs.data(), host.data(), host.size() * sizeof(SampleSpec),
                            cudaMemcpyHostToDevice));
      const double us = time_calls_us(stream, 20, reps, [&](int) {
        return ok(sample_rows(logits.as<float>(), rows, kVocab, specs.as<SampleSpec>(), nullptr,
                              scratch.as<float>(), picks.as<SamplePick>(), handle()));
      });
      char cell[96];
      std::snprintf(cell, sizeof cell, ", %s %.1f", rule.name, us);
      text += cell;
    }
    report.line("sampling %lld rows x %lld: greedy %.1f us%s us", static_cast<long long>(rows),
                static_cast<long long>(kVocab), greedy_us, text.c_str());
  }
};

}  // namespace
}  // namespace polyinfer::detail::gpu

int main(int argc, char** argv) {
  using namespace polyinfer::detail::gpu;
  using polyinfer::DType;
  bool quick = false;
  bool gemm_only = false;       // --gemm: the roofline and the mmq / cuBLAS table only
  bool row_read_only = false;   // --row-read: the roofline and row_read()'s table only
  bool attention_only = false;  // --attention: the roofline and decode attention only
  bool long_rows_only = false;  // --long-rows: the roofline and the long-row experiments
  const char* out_path = nullptr;
  // --gemv FORMAT ROWSxCOLS: the roofline and that one GEMV row only (profiling one shape).
  const char* only_format = nullptr;
  long long only_rows = 0;
  long long only_cols = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    if (std::strcmp(argv[i], "--gemm") == 0) gemm_only = true;
    if (std::strcmp(argv[i], "--row-read") == 0) row_read_only = true;
    if (std::strcmp(argv[i], "--attention") == 0) attention_only = true;
    if (std::strcmp(argv[i], "--long-rows") == 0) long_rows_only = true;
    if (std::strcmp(argv[i], "--out") == 0 && i + 1 < argc) out_path = argv[++i];
    if (std::strcmp(argv[i], "--gemv") == 0 && i + 2 < argc) {
      only_format = argv[++i];
      if (std::sscanf(argv[++i], "%lldx%lld", &only_rows, &only_cols) != 2 || only_rows < 1 ||
          only_cols < 32 || only_cols % 32 != 0) {
        std::fprintf(stderr, "bench_cuda: --gemv wants FORMAT ROWSxCOLS (cols a multiple of 32)\n");
        return 2;
      }
    }
  }
  DType only_dtype = DType::kQ4_0;
  if (only_format != nullptr) {
    const DType formats[] = {DType::kQ4_0, DType::kQ4_K, DType::kQ8_0, DType::kF16};
    const DType* found = std::find_if(std::begin(formats), std::end(formats), [&](DType dtype) {
      return std::strcmp(name_of(dtype), only_format) == 0;
    });
    if (found == std::end(formats)) {
      std::fprintf(stderr, "bench_cuda: --gemv format must be q4_0, q4_k, q8_0 or f16\n");
      return 2;
    }
    only_dtype = *found;
  }
  if (device_count() == 0) {
    std::printf("bench_cuda: no GPU visible\n");
    return 0;
  }
  Bench bench;
  bench.reps = quick ? 5 : 15;
  if (out_path != nullptr) bench.report.file = std::fopen(out_path, "w");
  DeviceInfo info;
  BENCH_OK(device_info(0, &info));
  bench.report.line("device: %s, %d SMs, compute %d, %.1f GiB, L2 %.0f MB", info.name.c_str(),
                    info.multiprocessors, info.compute_capability, info.memory_bytes / 1073741824.0,
                    info.l2_bytes / 1e6);
  BENCH_CUDA(cudaStreamCreateWithFlags(&bench.stream, cudaStreamNonBlocking));
  BENCH_OK(Context::create(bench.handle(), &bench.context));
  if (cublasCreate(&bench.blas) != CUBLAS_STATUS_SUCCESS) return 1;
  (void)cublasSetStream(bench.blas, bench.stream);
  BENCH_OK(DeviceBuffer::allocate(uint64_t{32} << 20, &bench.blas_workspace));
  (void)cublasSetWorkspace(bench.blas, bench.blas_workspace.data(), uint64_t{32} << 20);

  bench.roofline();
  if (row_read_only) {
    bench.row_read();
    return 0;
  }
  if (long_rows_only) {
    bench.long_rows();
    return 0;
  }
  if (attention_only) {
    for (const int64_t rows : {128, 512, 2048, 8192, 32768})
      bench.attention_decode(32, 8, 128, rows);
    return 0;
  }
  if (only_format != nullptr) {
    std::vector<std::pair<double, double>> large;
    bench.gemv_row(only_dtype, only_rows, only_cols, &large);
    return 0;
  }
  if (gemm_only) {
    for (DType dtype : {DType::kQ4_0, DType::kQ4_K, DType::kQ8_0}) {
      bench.batch_gemm(dtype, 4096, 4096);
      bench.batch_gemm(dtype, 28672, 4096);
      bench.batch_gemm(dtype, 4096, 14336);
    }
    return 0;
  }
  bench.report.line(
      "GEMV, 1 row: gemv() = activation quantization + GEMV (PDL), median of graph "
      "replays; %% of streaming read; best = fastest (rows/warp, unroll, warps, splits, bulk "
      "stages)");
  const std::pair<int64_t, int64_t> shapes[] = {
      {4096, 4096}, {14336, 4096}, {4096, 14336}, {8192, 28672}, {128256, 4096}};
  std::vector<std::pair<double, double>> large;
  for (DType dtype : {DType::kQ4_0, DType::kQ4_K, DType::kQ8_0, DType::kF16}) {
    for (const auto& [rows, cols] : shapes) bench.gemv_row(dtype, rows, cols, &large);
  }
  double lowest_default = 1e30;
  double lowest_best = 1e30;
  for (const auto& [by_default, best] : large) {
    lowest_default = std::min(lowest_default, by_default);
    lowest_best = std::min(lowest_best, best);
  }
  bench.report.line(
      "GEMV >= 100 MB: lowest fraction of streaming %.1f%% (default shape), %.1f%% "
      "(best shape per matrix); target 85%%",
      lowest_default, lowest_best);
  bench.multi_token(DType::kQ4_0, 14336, 4096);
  bench.multi_token(DType::kQ4_K, 14336, 4096);
  bench.multi_token(DType::kQ8_0, 14336, 4096);
  bench.multi_token(DType::kF16, 14336, 4096);
  bench.prompt_gemm(DType::kF16, 14336, 4096, 512);
  bench.prompt_gemm(DType::kQ4_0, 14336, 4096, 512);
  bench.batch_gemm(DType::kQ4_0, 14336, 4096);
  bench.attention_decode(32, 8, 128, 512);
  bench.attention_decode(32, 8, 128, 8192);
  bench.attention_decode(32, 8, 128, 32768);
  for (const int64_t rows : {1, 32, 128}) bench.sampling(rows);
  BENCH_CUDA(cudaGetLastError());
  if (bench.report.file != nullptr) std::fclose(bench.report.file);
  bench.context.reset();
  (void)cublasDestroy(bench.blas);
  BENCH_CUDA(cudaStreamDestroy(bench.stream));
  return 0;
}
