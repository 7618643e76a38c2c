// SPDX-License-Identifier: Apache-2.0
// matmul(): every format × every ISA level this CPU has × awkward shapes, against kernels/ref.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "kernels/cpu/thread_pool.hpp"
#include "kernels/ops.hpp"
#include "kernels/ref/ops_ref.hpp"
#include "kernels/ref/quant_ref.hpp"

namespace polyinfer::detail {
namespace {

// Error bounds, per output y[t][r], with A = Σ_c |W[r][c]|·|x[t][c]| (W dequantized):
//  - f32 paths (F32/F16/BF16 weights, the scalar level): |y − ref| ≤ 1e-5·A (f32 sums).
//  - integer paths (Q4_0/Q8_0 × Q8_0 activations, Q4_K/Q6_K × Q8_K) against the exact-integer
//    reference ref::matmul_quantized: |y − ref_q| ≤ 1e-5·A (only the f32 combination of the
//    exact block sums differs);
//    and against the f32 product ref::matmul: |y − ref| ≤ Σ_c |W[r][c]|·e_c + 1e-5·A, where e_c
//    is the activation quantization error bound of column c's block: 0.5625·amax/127 for Q8_0
//    blocks (rounding, plus the fp16 scale), 0.501·amax/127 for Q8_K.
//  - bf16-activation paths (BF16 weights × vdpbf16ps): |y − ref| ≤ (2^-8 + 1e-5)·A.
//  - F16 weights on AMX-BF16 (w and x each split into two bf16 terms, three products):
//    |y − ref| ≤ (2^-15 + 1e-5)·A.
constexpr double kSumTolerance = 1e-5;

std::vector<float> gaussian(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> out(count);
  for (float& v : out) v = dist(rng);
  return out;
}

int64_t block_of(DType dtype) {
  switch (dtype) {
    case DType::kQ4_0:
    case DType::kQ8_0:
      return 32;
    case DType::kQ4_K:
    case DType::kQ6_K:
      return 256;
    default:
      return 1;
  }
}

int64_t block_bytes_of(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return 4;
    case DType::kF16:
    case DType::kBF16:
      return 2;
    case DType::kQ4_0:
      return 18;
    case DType::kQ8_0:
      return 34;
    case DType::kQ4_K:
      return 144;
    case DType::kQ6_K:
      return 210;
    default:
      return 0;
  }
}

struct Weights {
  DType dtype;
  int64_t rows;
  int64_t cols;
  std::vector<std::byte> bytes;
  std::vector<float> dequantized;  // rows × cols
};

Weights make_weights(DType dtype, int64_t rows, int64_t cols, uint32_t seed) {
  Weights w{dtype, rows, cols, {}, {}};
  std::vector<float> values = gaussian(static_cast<size_t>(rows * cols), seed);
  // Rows of different magnitudes, and a zero row when there are several.
  for (int64_t r = 0; r < rows; ++r) {
    const float scale = rows > 2 && r == 1 ? 0.0f : 0.05f * static_cast<float>(1 + r % 5);
    for (int64_t c = 0; c < cols; ++c) values[r * cols + c] *= scale;
  }
  w.bytes.resize(static_cast<size_t>(rows * cols / block_of(dtype) * block_bytes_of(dtype)));
  REQUIRE(ref::quantize(dtype, values.data(), w.bytes.data(), rows * cols));
  w.dequantized.resize(values.size());
  REQUIRE(ref::dequantize(dtype, w.bytes.data(), w.dequantized.data(), rows * cols));
  return w;
}

struct Activations {
  int64_t tokens;
  int64_t stride;
  std::vector<float> values;  // tokens × stride
};

Activations make_activations(int64_t tokens, int64_t cols, uint32_t seed) {
  Activations x{tokens, cols + 5, gaussian(static_cast<size_t>(tokens * (cols + 5)), seed)};
  // An all-zero block in the first token, and one large outlier, as real activations have.
  if (cols >= 64) {
    for (int64_t c = 0; c < 32; ++c) x.values[c] = 0.0f;
    x.values[40] = 30.0f;
  }
  return x;
}

// Per-output bounds: A and the activation-quantization term.
struct Bounds {
  std::vector<double> magnitude;     // A
  std::vector<double> quantization;  // Σ |W|·e_c
};

Bounds bounds_of(const Weights& w, const Activations& x) {
  Bounds out;
  const int64_t rows = w.rows;
  const int64_t cols = w.cols;
  const DType act = ref::matmul_activation_type(w.dtype);
  const int64_t block = act == DType::kQ8_K ? 256 : 32;
  const double factor = act == DType::kQ8_K ? 0.501 : 0.5625;
  out.magnitude.resize(static_cast<size_t>(rows * x.tokens));
  out.quantization.resize(out.magnitude.size());
  std::vector<double> error(static_cast<size_t>(cols));
  for (int64_t t = 0; t < x.tokens; ++t) {
    const float* xt = x.values.data() + t * x.stride;
    for (int64_t b = 0; b * block < cols && act != DType::kF32; ++b) {
      double amax = 0;
      for (int64_t c = b * block; c < (b + 1) * block; ++c)
        amax = std::max(amax, double{std::fabs(xt[c])});
      for (int64_t c = b * block; c < (b + 1) * block; ++c) error[c] = factor * amax / 127;
    }
    for (int64_t r = 0; r < rows; ++r) {
      double magnitude = 0;
      double quantization = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const double wc = std::fabs(w.dequantized[r * cols + c]);
        magnitude += wc * std::fabs(xt[c]);
        if (act != DType::kF32) quantization += wc * error[c];
      }
      out.magnitude[t * rows + r] = magnitude;
      out.quantization[t * rows + r] = quantization;
    }
  }
  return out;
}

std::vector<Isa> levels_present() {
  std::vector<Isa> out;
  for (int level = 0; level <= static_cast<int>(detect_isa()); ++level) {
    out.push_back(static_cast<Isa>(level));
  }
  return out;
}

// Restores the detected level when a test section ends.
struct IsaGuard {
  ~IsaGuard() { force_isa(detect_isa()); }
};

void check_format(DType dtype) {
  const int64_t block = block_of(dtype);
  const std::vector<int64_t> row_counts = {1, 7, 33, 300};
  std::vector<int64_t> col_counts = {block, 3 * block, 4096 + block};
  if (block == 1) col_counts = {1, 37, 4099};
  std::vector<int64_t> token_counts = {1, 3, 8, 17, 64};
  // Float formats also past one unit of the AMX F16 kernel (256 tokens) and its partial tiles.
  if (block == 1) token_counts.push_back(290);
  ThreadPool pool1(1);
  ThreadPool pool2(2);
  IsaGuard guard;
  uint32_t seed = 1;
  int64_t compared = 0;
  std::set<std::string> kernels;
  for (int64_t cols : col_counts) {
    for (int64_t rows : row_counts) {
      // The long rows are checked with fewer shapes: the reference is slow there.
      if (cols > 4096 && rows == 33) continue;
      const Weights w = make_weights(dtype, rows, cols, seed++);
      for (int64_t tokens : token_counts) {
        if (cols > 4096 && rows == 300 && tokens > 17) continue;
        if (cols > 4096 && tokens > 64) continue;
        const Activations x = make_activations(tokens, cols, seed++);
        const int64_t y_stride = rows + 3;
        std::vector<float> expected(static_cast<size_t>(tokens * y_stride));
        std::vector<float> expected_q(expected.size());
        ref::matmul(dtype, w.bytes.data(), rows, cols, x.values.data(), tokens, x.stride,
                    expected.data(), y_stride);
        ref::matmul_quantized(dtype, w.bytes.data(), rows, cols, x.values.data(), tokens, x.stride,
                              expected_q.data(), y_stride);
        const Bounds bounds = bounds_of(w, x);
        for (Isa level : levels_present()) {
          force_isa(level);
          const PackedMatrix packed(dtype, rows, cols, w.bytes.data());
          for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &pool1, &pool2}) {
            // The kernel can change between calls: oneDNN entries win or lose a measurement.
            const std::string kernel(matmul_kernel_name(packed, tokens));
            kernels.insert(kernel);
            // Integer kernels quantize x to 8 bits (all but the scalar level for these
            // formats); the bf16 ones round x to bf16 (vdpbf16ps, AMX-BF16, oneDNN bf16).
            const bool integer = block > 1 && kernel.find("_scalar") == std::string::npos;
            const bool bf16_activations = kernel.find("bf16dot") != std::string::npos ||
                                          kernel.find("amx_bf16") != std::string::npos ||
                                          kernel.find("bf16_onednn") != std::string::npos;
            const bool split_bf16 = kernel.find("amx_split") != std::string::npos;
            std::vector<float> y(expected.size(), -12345.0f);
            matmul(packed, x.values.data(), tokens, x.stride, y.data(), y_stride, pool);
            INFO("kernel " << kernel << " rows " << rows << " cols " << cols << " tokens " << tokens
                           << " threads " << (pool ? pool->threads() : 0));
            int failures = 0;
            for (int64_t t = 0; t < tokens && failures < 3; ++t) {
              for (int64_t r = 0; r < rows && failures < 3; ++r) {
                const double got = y[t * y_stride + r];
                ++compared;
                const double a = bounds.magnitude[t * rows + r];
                double bound = kSumTolerance * a + 1e-30;
                double want = expected[t * y_stride + r];
                if (integer) {
                  // Against the exact-integer reference first, then the f32 product.
                  const double want_q = expected_q[t * y_stride + r];
                  if (std::fabs(got - want_q) > bound) {
                    ++failures;
                    FAIL_CHECK("token " << t << " row " << r << ": " << got << " vs exact-integer "
                                        << want_q << " (bound " << bound << ")");
                  }
                  bound += bounds.quantization[t * rows + r];
                } else if (bf16_activations) {
                  bound += a / 256;
                } else if (split_bf16) {
                  bound += a / 32768;
                }
                if (std::fabs(got - want) > bound) {
                  ++failures;
                  FAIL_CHECK("token " << t << " row " << r << ": " << got << " vs " << want
                                      << " (bound " << bound << ")");
                }
              }
            }
            // Padding between rows of y is left alone.
            for (int64_t t = 0; t < tokens; ++t) {
              for (int64_t r = rows; r < y_stride; ++r) {
                if (y[t * y_stride + r] != -12345.0f) FAIL_CHECK("wrote past row " << rows);
              }
            }
          }
        }
      }
    }
  }
  std::string names;
  for (const std::string& name : kernels) names += " " + name;
  INFO("kernels:" << names);
  CHECK(compared > 100000);
  CHECK(std::any_of(kernels.begin(), kernels.end(),
                    [](const std::string& name) { return name.ends_with("_scalar"); }));
  CHECK(kernels.size() >=
        std::min<size_t>(levels_present().size(), block == 1 && dtype != DType::kBF16 ? 3 : 4));
}

}  // namespace

TEST_CASE("matmul F32 against the reference", "[kernels][matmul]") {
  check_format(DType::kF32);
}
TEST_CASE("matmul F16 against the reference", "[kernels][matmul]") {
  check_format(DType::kF16);
}
TEST_CASE("matmul BF16 against the reference", "[kernels][matmul]") {
  check_format(DType::kBF16);
}
TEST_CASE("matmul Q8_0 against the reference", "[kernels][matmul]") {
  check_format(DType::kQ8_0);
}
TEST_CASE("matmul Q4_0 against the reference", "[kernels][matmul]") {
  check_format(DType::kQ4_0);
}
TEST_CASE("matmul Q4_K against the reference", "[kernels][matmul]") {
  check_format(DType::kQ4_K);
}
TEST_CASE("matmul Q6_K against the reference", "[kernels][matmul]") {
  check_format(DType::kQ6_K);
}

TEST_CASE("matmul picks a kernel of the forced level", "[kernels][matmul]") {
  IsaGuard guard;
  const Weights w = make_weights(DType::kQ4_0, 16, 64, 7);
  for (Isa level : levels_present()) {
    force_isa(level);
    CHECK(active_isa() == level);
    const PackedMatrix packed(DType::kQ4_0, 16, 64, w.bytes.data());
    const std::string kernel(matmul_kernel_name(packed, 1));
    INFO("level " << isa_name(level) << " kernel " << kernel);
    if (level == Isa::kScalar) {
      CHECK(kernel == "q4_0_scalar");
      CHECK(packed.packed_bytes() == 0);
    } else {
      // AMX tiles serve batches; single tokens run the AVX-512 VNNI kernel at that level.
      const Isa gemv_level = level == Isa::kAmx ? Isa::kAvx512Vnni : level;
      CHECK(kernel.find(std::string(isa_name(gemv_level))) != std::string::npos);
      CHECK(packed.packed_bytes() > 0);
    }
    CHECK(packed.bytes() == 16 * 2 * 18);
  }
  CHECK(matmul_supports(DType::kQ4_K));
  CHECK(matmul_supports(DType::kQ5_K));
  CHECK_FALSE(matmul_supports(DType::kI32));
}

TEST_CASE("matmul from several threads sharing one pool", "[kernels][matmul][pool]") {
  const Weights w = make_weights(DType::kQ4_K, 300, 512, 11);
  const PackedMatrix packed(DType::kQ4_K, 300, 512, w.bytes.data());
  ThreadPool pool(2);
  const Activations x = make_activations(3, 512, 12);
  std::vector<float> expected(3 * 300);
  matmul(packed, x.values.data(), 3, x.stride, expected.data(), 300, nullptr);
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> callers;
  for (int i = 0; i < 4; ++i) {
    callers.emplace_back([&, i] {
      std::vector<float> y(expected.size());
      for (int iteration = 0; iteration < 200; ++iteration) {
        matmul(packed, x.values.data(), 3, x.stride, y.data(), 300, &pool);
        if (std::memcmp(y.data(), expected.data(), y.size() * sizeof(float)) != 0) {
          ++mismatches[i];
        }
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
  for (int i = 0; i < 4; ++i) CHECK(mismatches[i] == 0);
}

}  // namespace polyinfer::detail
