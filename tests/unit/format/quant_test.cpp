// SPDX-License-Identifier: Apache-2.0
// Element types, fp16/bf16 conversion, and quantize → dequantize error bounds per format.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "kernels/common/block_formats.hpp"
#include "kernels/ref/quant_ref.hpp"
#include "polyinfer/error.hpp"
#include "polyinfer/tensor.hpp"

namespace polyinfer::detail {
namespace {

std::vector<float> gaussian(size_t count, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> out(count);
  for (float& v : out) v = dist(rng);
  return out;
}

// Nearest binary16 by exhaustive comparison in double (ties to the even bit pattern).
Half nearest_half(float value) {
  const double x = value;
  Half best = 0;
  double best_error = std::numeric_limits<double>::infinity();
  const Half sign = std::signbit(value) ? 0x8000 : 0;
  for (uint32_t bits = 0; bits <= 0x7C00; ++bits) {
    const auto h = static_cast<Half>(sign | bits);
    const double candidate = fp16_to_f32(h);
    double error = std::fabs(candidate - x);
    if (bits == 0x7C00) {
      // Infinity wins from 65520 up (the midpoint to the next, unrepresentable, step).
      error = std::fabs(x) >= 65520.0 ? 0 : std::numeric_limits<double>::infinity();
    }
    if (error < best_error || (error == best_error && (bits & 1) == 0)) {
      best_error = error;
      best = h;
    }
  }
  return best;
}

}  // namespace

TEST_CASE("dtype table", "[format][dtype]") {
  CHECK(dtype_info(DType::kQ4_K)->block_bytes == 144);
  CHECK(dtype_info(DType::kQ6_K)->block_bytes == 210);
  CHECK(dtype_info(DType::kQ8_0)->block_elements == 32);
  CHECK(dtype_info(DType::kF32)->quantized == false);
  CHECK(dtype_info(DType::kQ2_K)->quantized == true);
  CHECK_FALSE(dtype_info(static_cast<DType>(4)).has_value());
  CHECK(dtype_from_id(30) == DType::kBF16);
  CHECK_FALSE(dtype_from_id(4).has_value());
  CHECK_FALSE(dtype_from_id(31).has_value());
  CHECK(dtype_from_name("Q4_K") == DType::kQ4_K);
  CHECK(dtype_from_name("bf16") == DType::kBF16);
  CHECK(dtype_from_name("F32") == DType::kF32);
  CHECK_FALSE(dtype_from_name("q4_k_m").has_value());
  CHECK_FALSE(dtype_from_name("").has_value());
  CHECK(dtype_name(DType::kQ5_1) == "q5_1");
  CHECK(dtype_name(static_cast<DType>(77)) == "unknown");
  CHECK(dtype_bytes(DType::kQ4_0, 64) == 36);
  CHECK(dtype_bytes(DType::kF16, 3) == 6);
  CHECK_THROWS_AS(dtype_bytes(DType::kQ4_0, 33), Error);
  CHECK_THROWS_AS(dtype_bytes(static_cast<DType>(4), 1), Error);
  // Every known id round-trips through its name.
  for (uint32_t id = 0; id < 64; ++id) {
    const auto type = dtype_from_id(id);
    if (!type) continue;
    CHECK(dtype_from_name(dtype_name(*type)) == type);
  }
  TensorView view;
  CHECK(view.elements() == 1);
  view.shape = {3, 4, 5};
  CHECK(view.elements() == 60);
}

TEST_CASE("fp16 conversion is exact and rounds to nearest even", "[format][fp16]") {
  CHECK(f32_to_fp16(1.0f) == 0x3C00);
  CHECK(f32_to_fp16(-2.0f) == 0xC000);
  CHECK(f32_to_fp16(65504.0f) == 0x7BFF);
  CHECK(f32_to_fp16(65519.99f) == 0x7BFF);
  CHECK(f32_to_fp16(65520.0f) == 0x7C00);
  CHECK(f32_to_fp16(std::numeric_limits<float>::infinity()) == 0x7C00);
  CHECK(f32_to_fp16(-std::numeric_limits<float>::infinity()) == 0xFC00);
  CHECK(f32_to_fp16(std::ldexp(1.0f, -24)) == 0x0001);
  CHECK(f32_to_fp16(std::ldexp(1.0f, -25)) == 0x0000);         // tie → even (0)
  CHECK(f32_to_fp16(std::ldexp(3.0f, -25)) == 0x0002);         // tie → even (2)
  CHECK(f32_to_fp16(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);  // tie → even
  CHECK(f32_to_fp16(1.0f + std::ldexp(3.0f, -11)) == 0x3C02);  // tie → even
  CHECK(f32_to_fp16(-0.0f) == 0x8000);
  CHECK((f32_to_fp16(std::numeric_limits<float>::quiet_NaN()) & 0x7E00) == 0x7E00);
  CHECK(std::isnan(fp16_to_f32(0x7E00)));
  CHECK(fp16_to_f32(0x0001) == std::ldexp(1.0f, -24));
  CHECK(fp16_to_f32(0x03FF) == std::ldexp(1023.0f, -24));
  CHECK(fp16_to_f32(0xFC00) == -std::numeric_limits<float>::infinity());

  // Every non-NaN half survives f16 → f32 → f16.
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const auto h = static_cast<Half>(bits);
    const float f = fp16_to_f32(h);
    if (std::isnan(f)) continue;
    REQUIRE(f32_to_fp16(f) == h);
  }
  // Random floats around the half range round to the nearest half (ties to even).
  std::mt19937 rng(7);
  for (int k = 0; k < 400; ++k) {
    const auto bits = static_cast<uint32_t>(0x33000000u + rng() % (0x47800000u - 0x33000000u));
    float value;
    std::memcpy(&value, &bits, 4);
    if (k % 2 == 1) value = -value;
    INFO(value);
    REQUIRE(f32_to_fp16(value) == nearest_half(value));
  }
}

TEST_CASE("bf16 conversion", "[format][bf16]") {
  CHECK(f32_to_bf16(1.0f) == 0x3F80);
  CHECK(bf16_to_f32(0x3F80) == 1.0f);
  CHECK(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)) == 0x3F80);  // tie → even
  CHECK(f32_to_bf16(1.0f + std::ldexp(3.0f, -8)) == 0x3F82);  // tie → even
  CHECK(f32_to_bf16(std::numeric_limits<float>::infinity()) == 0x7F80);
  const uint16_t nan = f32_to_bf16(std::numeric_limits<float>::quiet_NaN());
  CHECK(std::isnan(bf16_to_f32(nan)));
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const float f = bf16_to_f32(static_cast<uint16_t>(bits));
    if (std::isnan(f)) continue;
    REQUIRE(f32_to_bf16(f) == bits);
  }
}

TEST_CASE("quantize → dequantize error bounds", "[format][quant]") {
  struct Bound {
    DType type;
    double max_rel;  // max |x − x̂| / max|x| over each block
    double rms_rel;  // rms(x − x̂) / rms(x)
  };
  // Analytic bounds where they exist (Q8: d/2 with d = amax/127 → 0.0039, plus up to 127 ulps
  // of d's fp16 rounding → 0.0005; Q4_0: 1/8 at the clamped end), otherwise measured × 1.3.
  // The rms bound is over the Gaussian rows only (an outlier block dominates any rms).
  const Bound bounds[] = {
      {DType::kF16, 0.0005, 0.0003}, {DType::kBF16, 0.0040, 0.0025}, {DType::kQ8_0, 0.0045, 0.007},
      {DType::kQ8_1, 0.0045, 0.007}, {DType::kQ4_0, 0.127, 0.11},    {DType::kQ4_1, 0.07, 0.1},
      {DType::kQ5_0, 0.064, 0.055},  {DType::kQ5_1, 0.034, 0.05},    {DType::kQ2_K, 0.42, 0.38},
      {DType::kQ3_K, 0.23, 0.2},     {DType::kQ4_K, 0.1, 0.09},      {DType::kQ5_K, 0.045, 0.046},
      {DType::kQ6_K, 0.021, 0.023},  {DType::kQ8_K, 0.0040, 0.0085},
  };
  const int64_t row = 512;
  const int64_t rows = 16;
  auto values = gaussian(static_cast<size_t>(row * rows), 42, 0.02f);
  // Rows with structure: an outlier, all positive, all zero, tiny.
  for (int64_t k = 0; k < row; ++k) {
    values[static_cast<size_t>(row * 1 + k)] = 0.01f + std::fabs(values[static_cast<size_t>(k)]);
    values[static_cast<size_t>(row * 2 + k)] = 0.0f;
    values[static_cast<size_t>(row * 3 + k)] *= 1e-6f;
  }
  values[static_cast<size_t>(row * 4 + 7)] = 1.5f;
  for (const Bound& bound : bounds) {
    INFO(dtype_name(bound.type));
    const auto bytes = quantize(bound.type, values, row);
    REQUIRE(bytes.size() == dtype_bytes(bound.type, row * rows));
    const TensorView view{bound.type, {rows, row}, bytes.data(), bytes.size()};
    const auto restored = to_f32(view);
    REQUIRE(restored.size() == values.size());
    const int64_t block =
        dtype_info(bound.type)->block_elements == 1 ? 32 : dtype_info(bound.type)->block_elements;
    double worst = 0;
    double sum_err2 = 0;
    double sum_x2 = 0;
    for (size_t start = 0; start < values.size(); start += static_cast<size_t>(block)) {
      double amax = 0;
      double err = 0;
      for (size_t k = start; k < start + static_cast<size_t>(block); ++k) {
        amax = std::max(amax, std::fabs(double{values[k]}));
        const double e = std::fabs(double{values[k]} - restored[k]);
        REQUIRE(std::isfinite(restored[k]));
        err = std::max(err, e);
        if (k >= static_cast<size_t>(row * 5)) {
          sum_err2 += e * e;
          sum_x2 += double{values[k]} * values[k];
        }
      }
      if (amax == 0) {
        REQUIRE(err == 0);
      } else if (amax > 1e-6) {  // below that the fp16 scales lose precision by design
        worst = std::max(worst, err / amax);
      }
    }
    const double rms = std::sqrt(sum_err2 / sum_x2);
    CAPTURE(worst, rms);
    CHECK(worst <= bound.max_rel);
    CHECK(rms <= bound.rms_rel);
  }
}

TEST_CASE("to_f32 and quantize validate their arguments", "[format][quant]") {
  const std::vector<float> values(64, 1.0f);
  CHECK_THROWS_AS(quantize(DType::kQ4_0, values, 48), Error);  // row not whole blocks
  CHECK_THROWS_AS(quantize(DType::kQ4_0, values, 0), Error);
  CHECK_THROWS_AS(quantize(DType::kQ4_K, values, 64), Error);  // 256-element super-blocks
  CHECK_THROWS_AS(quantize(DType::kI32, values, 64), Error);   // no quantizer
  CHECK_THROWS_AS(quantize(DType::kQ8_0, std::span<const float>(values.data(), 40), 32), Error);
  const auto bytes = quantize(DType::kQ8_0, values, 32);
  CHECK(bytes.size() == 68);
  CHECK_THROWS_AS(to_f32(TensorView{DType::kQ8_0, {2, 32}, bytes.data(), 67}), Error);
  CHECK_THROWS_AS(to_f32(TensorView{DType::kQ8_0, {4, 16}, bytes.data(), 68}), Error);
  CHECK_THROWS_AS(to_f32(TensorView{static_cast<DType>(5), {1}, bytes.data(), 68}), Error);
  for (const float v : to_f32(TensorView{DType::kQ8_0, {2, 32}, bytes.data(), 68})) {
    REQUIRE(v == Approx(1.0f).epsilon(1e-3));  // d = 1/127 rounded to fp16
  }
  // Integer element types convert by value.
  const int32_t ints[3] = {-5, 0, 7};
  const auto as_f32 =
      to_f32(TensorView{DType::kI32, {3}, reinterpret_cast<const std::byte*>(ints), 12});
  CHECK(as_f32 == std::vector<float>{-5, 0, 7});
}

TEST_CASE("reference block layouts decode known bytes", "[format][quant]") {
  // Q4_0: d = 1.0, nibbles 0..15 (low) and 15..0 (high) → q − 8.
  BlockQ4_0 q4{};
  q4.d = f32_to_fp16(1.0f);
  for (int j = 0; j < 16; ++j) q4.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float out[256];
  ref::dequantize_row_q4_0(&q4, out, 32);
  CHECK(out[0] == -8);
  CHECK(out[15] == 7);
  CHECK(out[16] == 7);
  CHECK(out[31] == -8);
  // Q4_K: sub-block 0 scale 2, min 1, d = 0.5, dmin = 0.25: x = 0.5·2·q − 0.25·1.
  BlockQ4_K q4k{};
  q4k.d = f32_to_fp16(0.5f);
  q4k.dmin = f32_to_fp16(0.25f);
  q4k.scales[0] = 2;
  q4k.scales[4] = 1;
  q4k.qs[0] = 0x3A;  // element 0: q = 10; element 32 (sub-block 1, scale 0): q = 3
  ref::dequantize_row_q4_k(&q4k, out, 256);
  CHECK(out[0] == 0.5f * 2 * 10 - 0.25f);
  CHECK(out[1] == -0.25f);
  CHECK(out[32] == 0.0f);
  // Q6_K round trip of a block whose values are exact multiples of one step.
  std::vector<float> steps(256);
  for (int k = 0; k < 256; ++k) steps[static_cast<size_t>(k)] = static_cast<float>(k % 64 - 32);
  BlockQ6_K q6{};
  ref::quantize_row_q6_k(steps.data(), &q6, 256);
  ref::dequantize_row_q6_k(&q6, out, 256);
  for (int k = 0; k < 256; ++k) REQUIRE(std::fabs(out[k] - steps[static_cast<size_t>(k)]) < 0.3f);
}

}  // namespace polyinfer::detail
