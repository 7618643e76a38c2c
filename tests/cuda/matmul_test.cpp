// SPDX-License-Identifier: Apache-2.0
// GPU matmul: every weight format × 1..8 activation rows × every GEMV launch shape × awkward
// sizes, the integer GEMM and the cuBLAS GEMM path, against kernels/ref (random data, poisoned
// outputs).
#include <cstring>

#include "kernels/ref/ops_ref.hpp"
#include "kernels/ref/quant_ref.hpp"
#include "tests/cuda/check.hpp"

namespace polyinfer::detail::gpu_test {
namespace {

// Error bounds, per output y[t][r], with A = Σ_c |W[r][c]|·|x̂[t][c]|:
//  - GEMV, quantized weights: the GPU quantizes x to 8-bit blocks exactly as
//    ref::quantize_row_q8_0; the reference is Σ W·x̂ in double over the dequantized weights and
//    activations (for Q4_0 / Q8_0 that is ref::matmul_quantized), so only f32 sums differ:
//    |y − ref| ≤ 1e-5·A.
//  - GEMV, F16 / BF16 weights: f32 arithmetic on unquantized x: 1e-5·A.
//  - GEMM: x rounded to f16 (bf16 for BF16 weights) and quantized weights to f16 before cuBLAS:
//    2^-11 (2^-8) per rounding, 1.2e-3·A (4e-3·A); F32 weights in f32: 1e-5·A.
constexpr double kSumTolerance = 1e-5;

struct Weights {
  DType dtype;
  int64_t rows;
  int64_t cols;
  std::vector<std::byte> bytes;
  std::vector<float> values;  // dequantized, rows × cols
};

bool quantized(DType dtype) {
  return dtype == DType::kQ4_0 || dtype == DType::kQ8_0 || dtype == DType::kQ4_K;
}

uint64_t bytes_of(DType dtype, int64_t elements) {
  switch (dtype) {
    case DType::kQ4_0:
      return elements / 32 * sizeof(BlockQ4_0);
    case DType::kQ8_0:
      return elements / 32 * sizeof(BlockQ8_0);
    case DType::kQ4_K:
      return elements / 256 * sizeof(BlockQ4_K);
    case DType::kF32:
      return elements * 4;
    default:
      return elements * 2;
  }
}

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
    case DType::kBF16:
      return "bf16";
    case DType::kF32:
      return "f32";
    default:
      return "?";
  }
}

Weights make_weights(DType dtype, int64_t rows, int64_t cols, uint32_t seed) {
  Weights w{dtype, rows, cols, {}, {}};
  const std::vector<float> source = gaussian(static_cast<size_t>(rows * cols), seed, 0.5f);
  w.bytes.resize(bytes_of(dtype, rows * cols));
  GPU_CHECK(ref::quantize(dtype, source.data(), w.bytes.data(), rows * cols), "quantize %s",
            name_of(dtype));
  w.values.resize(source.size());
  GPU_CHECK(ref::dequantize(dtype, w.bytes.data(), w.values.data(), rows * cols), "dequantize %s",
            name_of(dtype));
  return w;
}

// x as the GEMV kernels see it: quantized to q8_0 blocks and back for quantized weights.
std::vector<float> effective_x(const Weights& w, const std::vector<float>& x, int64_t tokens,
                               int64_t x_stride) {
  std::vector<float> used(static_cast<size_t>(tokens * w.cols));
  for (int64_t t = 0; t < tokens; ++t) {
    const float* row = x.data() + t * x_stride;
    float* out = used.data() + t * w.cols;
    if (quantized(w.dtype)) {
      std::vector<BlockQ8_0> blocks(static_cast<size_t>(w.cols / 32));
      ref::quantize_row_q8_0(row, blocks.data(), w.cols);
      ref::dequantize_row_q8_0(blocks.data(), out, w.cols);
    } else {
      std::memcpy(out, row, static_cast<size_t>(w.cols) * sizeof(float));
    }
  }
  return used;
}

// y (tokens × rows) = W·x in double, and the magnitudes A.
void reference(const Weights& w, const std::vector<float>& x, int64_t tokens,
               std::vector<double>* y, std::vector<double>* magnitude) {
  y->assign(static_cast<size_t>(tokens * w.rows), 0.0);
  magnitude->assign(y->size(), 0.0);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t r = 0; r < w.rows; ++r) {
      double sum = 0.0;
      double size = 0.0;
      for (int64_t c = 0; c < w.cols; ++c) {
        const double product = static_cast<double>(w.values[r * w.cols + c]) * x[t * w.cols + c];
        sum += product;
        size += std::fabs(product);
      }
      (*y)[t * w.rows + r] = sum;
      (*magnitude)[t * w.rows + r] = size;
    }
  }
}

// Checks y (tokens rows of y_stride) against the reference; the gaps past `rows` must still
// hold the poison.
void check_output(const std::vector<float>& y, int64_t tokens, int64_t rows, int64_t y_stride,
                  const std::vector<double>& want, const std::vector<double>& magnitude,
                  double tolerance, const std::string& what) {
  double worst = 0.0;
  int64_t worst_index = -1;
  bool gaps_intact = true;
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t r = 0; r < y_stride; ++r) {
      const float got = y[t * y_stride + r];
      if (r >= rows) {
        uint32_t bits;
        std::memcpy(&bits, &got, sizeof bits);
        gaps_intact = gaps_intact && bits == 0xFFFFFFFFu;
        continue;
      }
      const double bound = tolerance * magnitude[t * rows + r] + 1e-30;
      const double error =
          std::isfinite(got) ? std::fabs(got - want[t * rows + r]) / bound : INFINITY;
      if (!(error <= worst)) {
        worst = error;
        worst_index = t * rows + r;
      }
    }
  }
  GPU_CHECK(worst <= 1.0, "%s: error %.3g × bound at output %lld (want %.6g)", what.c_str(), worst,
            static_cast<long long>(worst_index), worst_index >= 0 ? want[worst_index] : 0.0);
  GPU_CHECK(gaps_intact, "%s: wrote past `rows` inside y_stride", what.c_str());
}

struct Shape {
  int64_t rows;
  int64_t cols;
};

/// The `tokens` rows of `cols` values of x (row stride x_stride), without the gaps.
std::vector<float> packed(const std::vector<float>& x, int64_t tokens, int64_t cols,
                          int64_t x_stride) {
  std::vector<float> rows(static_cast<size_t>(tokens * cols));
  for (int64_t t = 0; t < tokens; ++t) {
    std::memcpy(&rows[t * cols], &x[t * x_stride], cols * sizeof(float));
  }
  return rows;
}

std::vector<Shape> gemv_shapes(DType dtype) {
  switch (dtype) {
    // Bulk-copy GEMVs take rows of a multiple of 32 chunks (Q4_0: cols % 1024 == 0, Q8_0 and
    // F16: % 512 / % 256, Q4_K: % 2048): 1024 (a row per slice, many rows per block), 3072,
    // 4096 and 6144; the other shapes fall back to the plain kernel.
    case DType::kQ4_0:
    case DType::kQ8_0:
      return {{1, 32},      {7, 96},     {129, 1184}, {300, 4096},
              {1031, 2080}, {517, 3072}, {3, 512},    {4133, 1024}};
    case DType::kQ4_K:
      // 2304 columns: one whole 1 KB tile of the device layout and a GGUF-order tail.
      return {{1, 256}, {3, 768}, {129, 1792}, {300, 4096}, {65, 2304}, {517, 6144}, {1500, 2048}};
    default:
      // 14336 columns: the default shape is the bulk-copy kernel on Hopper.
      return {{1, 8},      {5, 20},     {77, 1001},  {130, 1032},
              {300, 4096}, {517, 2824}, {4133, 512}, {40, 14336}};
  }
}

// Runs the GEMV path for one format over its shapes, every token count and launch shape.
void check_gemv(DType dtype, uint32_t seed) {
  std::unique_ptr<gpu::Context> context;
  GPU_OK(gpu::Context::create(test_stream(), &context));
  if (!context) return;
  for (const Shape& shape : gemv_shapes(dtype)) {
    const Weights w = make_weights(dtype, shape.rows, shape.cols, seed++);
    gpu::DeviceMatrix matrix;
    GPU_OK(
        gpu::DeviceMatrix::upload(dtype, w.rows, w.cols, w.bytes.data(), test_stream(), &matrix));
    for (int64_t tokens = 1; tokens <= gpu::kGemvMaxTokens; ++tokens) {
      // Odd strides send F16 / BF16 down the scalar-load kernel; even ones the vector kernel.
      const int64_t x_stride = w.cols + (tokens % 2 == 1 ? 3 : 4);
      const int64_t y_stride = w.rows + 5;
      const std::vector<float> x = gaussian(static_cast<size_t>(tokens * x_stride), seed++);
      std::vector<double> want;
      std::vector<double> magnitude;
      reference(w, effective_x(w, x, tokens, x_stride), tokens, &want, &magnitude);
      if (tokens == 1 && (dtype == DType::kQ4_0 || dtype == DType::kQ8_0)) {
        // The composite reference is ggml's exact-integer product (self-check of the test).
        float official = 0.0f;
        ref::matmul_quantized(dtype, w.bytes.data(), 1, w.cols, x.data(), 1, x_stride, &official,
                              1);
        GPU_CHECK(std::fabs(official - want[0]) <= 1e-6 * magnitude[0] + 1e-30,
                  "reference self-check %s: %g vs %g", name_of(dtype), official, want[0]);
      }
      DeviceArray<float> x_device(x);
      DeviceArray<float> y_device(static_cast<size_t>(tokens * y_stride));
      std::vector<gpu::GemvConfig> configs;
      if (tokens == 1) {
        const auto variants = gpu::gemv_variants();
        configs.assign(variants.begin(), variants.end());
      }
      configs.push_back(gpu::GemvConfig{});  // the default, through gemv()
      for (const gpu::GemvConfig& config : configs) {
        y_device.poison();
        GPU_OK(gpu::gemv(*context, matrix, x_device.data(), tokens, x_stride, y_device.data(),
                         y_stride, config));
        GPU_OK(gpu::synchronize(test_stream()));
        check_output(y_device.to_host(), tokens, w.rows, y_stride, want, magnitude, kSumTolerance,
                     format("gemv %s %lldx%lld tokens %lld shape (%d,%d,%d,%d,%d)", name_of(dtype),
                            static_cast<long long>(w.rows), static_cast<long long>(w.cols),
                            static_cast<long long>(tokens), config.rows_per_warp, config.unroll,
                            config.warps_per_block, config.splits, config.stages));
      }
      // The public entry point picks the GEMV path for ≤ 8 rows.
      y_device.poison();
      GPU_OK(gpu::matmul(*context, matrix, x_device.data(), tokens, x_stride, y_device.data(),
                         y_stride));
      GPU_OK(gpu::synchronize(test_stream()));
      check_output(y_device.to_host(), tokens, w.rows, y_stride, want, magnitude, kSumTolerance,
                   format("matmul %s tokens %lld", name_of(dtype), static_cast<long long>(tokens)));
    }
  }
}

GPU_TEST(gemv_q4_0) {
  check_gemv(DType::kQ4_0, 100);
}
GPU_TEST(gemv_q8_0) {
  check_gemv(DType::kQ8_0, 200);
}
GPU_TEST(gemv_q4_k) {
  check_gemv(DType::kQ4_K, 300);
}
GPU_TEST(gemv_f16) {
  check_gemv(DType::kF16, 400);
}
GPU_TEST(gemv_bf16) {
  check_gemv(DType::kBF16, 500);
}

// The integer tensor-core GEMM. x is quantized as for the GEMVs, so the reference is again
// Σ W·x̂ in double; the sums differ more than the GEMVs' because each block's q − 8 (Q4_0) or
// min (Q4_K) term is subtracted in f32 from a term up to ~4× the block's Σ |W·x̂|, and every
// block adds two roundings to the running sum: 3e-5·A bounds 4096 columns (128 blocks).
constexpr double kMmqTolerance = 3e-5;

// A second `run` must give `first`'s bits, and so must matmul() where it takes that path
// (`routed`).
template <class Run>
void check_same_bits(gpu::Context& context, const gpu::DeviceMatrix& matrix,
                     DeviceArray<float>& x_device, DeviceArray<float>& y_device, int64_t tokens,
                     int64_t x_stride, int64_t y_stride, const std::vector<float>& first,
                     bool routed, const std::string& what, const Run& run) {
  y_device.poison();
  GPU_OK(run());
  GPU_OK(gpu::synchronize(test_stream()));
  GPU_CHECK(same_bits(first, y_device.to_host()), "%s: a second call differs", what.c_str());
  if (!routed) return;
  y_device.poison();
  GPU_OK(
      gpu::matmul(context, matrix, x_device.data(), tokens, x_stride, y_device.data(), y_stride));
  GPU_OK(gpu::synchronize(test_stream()));
  GPU_CHECK(same_bits(first, y_device.to_host()), "%s: matmul() took another path", what.c_str());
}

std::vector<Shape> mmq_shapes(DType dtype) {
  if (dtype == DType::kQ4_K) return {{3, 768}, {129, 1792}, {300, 4096}, {65, 2304}, {257, 512}};
  return {{7, 96}, {129, 1184}, {300, 4096}, {1031, 2080}, {257, 288}};
}

// mmq() over awkward shapes (rows and columns past whole tiles and chunks, a Q4_K tile plus a
// GGUF-order tail) and token counts on both sides of its 16 / 32 / 64-token tiles (1–8 too: the
// GEMVs may hand those over); split or not, a second call must give the same bits (the splits
// add in a fixed order, and their counters reset), and matmul() must route to it where it takes
// that path. `half`: mmq_half(), the f16 tensor-core form, against the exact product of the
// unquantized activations (f16 rounding of weights and activations: the GEMM path's tolerance);
// else the integer form against x quantized as for the GEMVs.
void check_mmq(DType dtype, uint32_t seed, bool half) {
  std::unique_ptr<gpu::Context> context;
  GPU_OK(gpu::Context::create(test_stream(), &context));
  if (!context) return;
  for (const Shape& shape : mmq_shapes(dtype)) {
    const Weights w = make_weights(dtype, shape.rows, shape.cols, seed++);
    gpu::DeviceMatrix matrix;
    GPU_OK(
        gpu::DeviceMatrix::upload(dtype, w.rows, w.cols, w.bytes.data(), test_stream(), &matrix));
    for (const int64_t tokens : {1, 2, 5, 8, 9, 16, 17, 33, 64, 65, 130}) {
      const int64_t x_stride = w.cols + 3;
      const int64_t y_stride = w.rows + 5;
      const std::vector<float> x = gaussian(static_cast<size_t>(tokens * x_stride), seed++);
      DeviceArray<float> x_device(x);
      DeviceArray<float> y_device(static_cast<size_t>(tokens * y_stride));
      y_device.poison();
      const std::string what =
          format("%s %s %lldx%lld tokens %lld", half ? "mmq_half" : "mmq", name_of(dtype),
                 static_cast<long long>(w.rows), static_cast<long long>(w.cols),
                 static_cast<long long>(tokens));
      const auto run = [&] {
        return half ? gpu::mmq_half(*context, matrix, x_device.data(), tokens, x_stride,
                                    y_device.data(), y_stride)
                    : gpu::mmq(*context, matrix, x_device.data(), nullptr, tokens, x_stride,
                               y_device.data(), y_stride);
      };
      const gpu::Status status = run();
      if (!gpu::mmq_supported(*context, dtype)) {
        GPU_CHECK(status == gpu::Status::kUnsupported, "%s without MMA", what.c_str());
        return;
      }
      GPU_OK(status);
      GPU_OK(gpu::synchronize(test_stream()));
      std::vector<double> want;
      std::vector<double> magnitude;
      reference(w, half ? packed(x, tokens, w.cols, x_stride) : effective_x(w, x, tokens, x_stride),
                tokens, &want, &magnitude);
      const std::vector<float> first = y_device.to_host();
      check_output(first, tokens, w.rows, y_stride, want, magnitude, half ? 1.2e-3 : kMmqTolerance,
                   what);
      const bool routed = half ? gpu::matmul_takes_mmq_half(*context, dtype, tokens)
                               : tokens > gpu::kGemvMaxTokens &&
                                     gpu::matmul_reads_quantized(*context, dtype, tokens) &&
                                     !gpu::matmul_takes_mmq_half(*context, dtype, tokens);
      check_same_bits(*context, matrix, x_device, y_device, tokens, x_stride, y_stride, first,
                      routed, what, run);
    }
  }
}

GPU_TEST(mmq_half_q4_0) {
  check_mmq(DType::kQ4_0, 1000, true);
}
GPU_TEST(mmq_half_q8_0) {
  check_mmq(DType::kQ8_0, 1100, true);
}
GPU_TEST(mmq_half_q4_k) {
  check_mmq(DType::kQ4_K, 1200, true);
}

GPU_TEST(mmq_q4_0) {
  check_mmq(DType::kQ4_0, 700, false);
}
GPU_TEST(mmq_q8_0) {
  check_mmq(DType::kQ8_0, 800, false);
}
GPU_TEST(mmq_q4_k) {
  check_mmq(DType::kQ4_K, 900, false);
}

GPU_TEST(gemm_every_format) {
  std::unique_ptr<gpu::Context> context;
  GPU_OK(gpu::Context::create(test_stream(), &context));
  if (!context) return;
  uint32_t seed = 600;
  for (DType dtype :
       {DType::kQ4_0, DType::kQ8_0, DType::kQ4_K, DType::kF16, DType::kBF16, DType::kF32}) {
    const double tolerance = dtype == DType::kF32    ? kSumTolerance
                             : dtype == DType::kBF16 ? 4e-3
                             : dtype == DType::kF16  ? 6e-4
                                                     : 1.2e-3;
    const std::vector<Shape> shapes = quantized(dtype)
                                          ? std::vector<Shape>{{77, 768}, {300, 4096}}
                                          : std::vector<Shape>{{77, 1000}, {300, 4096}};
    for (const Shape& shape : shapes) {
      const Weights w = make_weights(dtype, shape.rows, shape.cols, seed++);
      gpu::DeviceMatrix matrix;
      GPU_OK(
          gpu::DeviceMatrix::upload(dtype, w.rows, w.cols, w.bytes.data(), test_stream(), &matrix));
      for (int64_t tokens : {1, 9, 33, 100}) {
        const int64_t x_stride = w.cols + 1;
        const int64_t y_stride = w.rows + 3;
        const std::vector<float> x = gaussian(static_cast<size_t>(tokens * x_stride), seed++);
        std::vector<double> want;
        std::vector<double> magnitude;
        reference(w, packed(x, tokens, w.cols, x_stride), tokens, &want, &magnitude);
        DeviceArray<float> x_device(x);
        DeviceArray<float> y_device(static_cast<size_t>(tokens * y_stride));
        y_device.poison();
        GPU_OK(gpu::gemm(*context, matrix, x_device.data(), tokens, x_stride, y_device.data(),
                         y_stride));
        GPU_OK(gpu::synchronize(test_stream()));
        check_output(
            y_device.to_host(), tokens, w.rows, y_stride, want, magnitude, tolerance,
            format("gemm %s %lldx%lld tokens %lld", name_of(dtype), static_cast<long long>(w.rows),
                   static_cast<long long>(w.cols), static_cast<long long>(tokens)));
        // matmul() takes this path for unquantized weights (quantized ones: check_mmq).
        if (!quantized(dtype) && (tokens > gpu::kGemvMaxTokens || dtype == DType::kF32)) {
          y_device.poison();
          GPU_OK(gpu::matmul(*context, matrix, x_device.data(), tokens, x_stride, y_device.data(),
                             y_stride));
          GPU_OK(gpu::synchronize(test_stream()));
          check_output(y_device.to_host(), tokens, w.rows, y_stride, want, magnitude, tolerance,
                       format("matmul (gemm) %s tokens %lld", name_of(dtype),
                              static_cast<long long>(tokens)));
        }
      }
    }
  }
}

GPU_TEST(matmul_rejects_bad_input) {
  gpu::DeviceMatrix matrix;
  const std::vector<std::byte> bytes(18 * 3);
  GPU_CHECK(gpu::DeviceMatrix::upload(DType::kQ4_0, 1, 48, bytes.data(), test_stream(), &matrix) ==
                gpu::Status::kUnsupported,
            "cols not a multiple of 32");
  GPU_CHECK(!gpu::matmul_supports(DType::kQ6_K, 256), "q6_k has no GPU kernel yet");
  GPU_CHECK(gpu::matmul_supports(DType::kF16, 1001), "f16 takes any cols");
}

}  // namespace
}  // namespace polyinfer::detail::gpu_test
