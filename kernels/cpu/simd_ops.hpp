// SPDX-License-Identifier: Apache-2.0
// The transformer-op kernels written once over a vector-traits type V, instantiated per ISA.
//
// Include only from one ISA translation unit (ops_scalar.cpp, ops_avx2.cpp, ops_avx512.cpp),
// after defining V. Everything here has internal linkage (anonymous namespace): each TU is
// compiled with its own -m flags, and a shared inline symbol would let the linker keep the
// AVX-512 copy for an AVX2 machine.
//
// V provides: F (vector of kLanes floats), M (lane mask), zero, set1, load, store, load_n,
// store_n (first n lanes, the rest zero / untouched), add, sub, mul, div, fmadd(a, b, c) = a·b + c,
// fnmadd(a, b, c) = c − a·b, min, max, abs, lt, ge, select(m, a, b) = m ? a : b, first_n(n),
// reduce_add, reduce_add4 (four sums into float[4]), reduce_max, round_nearest (ties to even),
// trunc, pow2i (2^n for integral n), swap_pairs (lanes 2i ↔ 2i+1), load_f16, store_f16, load_i8
// (kLanes int8), store_i8 (integral values in [−127, 127]), half_to_float.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "kernels/common/block_formats.hpp"
#include "kernels/cpu/isa_ops.hpp"

namespace polyinfer::inline v0::detail {
namespace {

// ---- elementwise math --------------------------------------------------------------------

/// e^x, Cephes polynomial on x − n·ln2 (relative error ≈ 2 ulp); x is clamped to [−87, 88],
/// so tiny results bottom out near 1e−38 instead of reaching 0 (harmless for softmax / silu).
template <class V>
typename V::F vec_exp(typename V::F x) {
  // Constant first: x86 min/max return the second operand when one is NaN, so NaN propagates.
  x = V::min(V::set1(88.0f), V::max(V::set1(-87.0f), x));
  const auto n = V::round_nearest(V::mul(x, V::set1(1.44269504088896341f)));
  auto r = V::fnmadd(n, V::set1(0.693359375f), x);
  r = V::fnmadd(n, V::set1(-2.12194440e-4f), r);
  auto p = V::set1(1.9875691500e-4f);
  p = V::fmadd(p, r, V::set1(1.3981999507e-3f));
  p = V::fmadd(p, r, V::set1(8.3334519073e-3f));
  p = V::fmadd(p, r, V::set1(4.1665795894e-2f));
  p = V::fmadd(p, r, V::set1(1.6666665459e-1f));
  p = V::fmadd(p, r, V::set1(5.0000001201e-1f));
  p = V::fmadd(p, V::mul(r, r), V::add(r, V::set1(1.0f)));
  return V::mul(p, V::pow2i(n));
}

/// gelu(x) = x·Φ(x) = ½x·erfc(−x/√2), with erfc from Numerical Recipes' erfcc (fractional
/// error < 1.2e−7 for z ≥ 0), so both tails keep relative accuracy.
template <class V>
typename V::F vec_gelu(typename V::F x) {
  const auto z = V::mul(V::abs(x), V::set1(0.70710678118654752f));
  const auto t = V::div(V::set1(1.0f), V::fmadd(V::set1(0.5f), z, V::set1(1.0f)));
  auto p = V::set1(0.17087277f);
  p = V::fmadd(p, t, V::set1(-0.82215223f));
  p = V::fmadd(p, t, V::set1(1.48851587f));
  p = V::fmadd(p, t, V::set1(-1.13520398f));
  p = V::fmadd(p, t, V::set1(0.27886807f));
  p = V::fmadd(p, t, V::set1(-0.18628806f));
  p = V::fmadd(p, t, V::set1(0.09678418f));
  p = V::fmadd(p, t, V::set1(0.37409196f));
  p = V::fmadd(p, t, V::set1(1.00002368f));
  p = V::fmadd(p, t, V::set1(-1.26551223f));
  // −z² as −(x/2)·x with one rounding: z itself is rounded, and at z² ≈ 87 its error would
  // cost 1e−5 relative in e^(−z²).
  const auto erfc_z = V::mul(t, vec_exp<V>(V::fnmadd(V::mul(x, V::set1(0.5f)), x, p)));
  // x ≥ 0: Φ = 1 − ½erfc(z); x < 0: Φ = ½erfc(z).
  const auto half_erfc = V::mul(V::set1(0.5f), erfc_z);
  const auto phi = V::select(V::lt(x, V::zero()), half_erfc, V::sub(V::set1(1.0f), half_erfc));
  return V::mul(x, phi);
}

template <class V>
void silu_mul_kernel(const float* gate, const float* up, float* out, int64_t count) {
  int64_t i = 0;
  for (; i + V::kLanes <= count; i += V::kLanes) {
    const auto g = V::load(gate + i);
    const auto sig = V::div(V::set1(1.0f), V::add(V::set1(1.0f), vec_exp<V>(V::sub(V::zero(), g))));
    V::store(out + i, V::mul(V::mul(g, sig), V::load(up + i)));
  }
  if (i < count) {
    const int rest = static_cast<int>(count - i);
    const auto g = V::load_n(gate + i, rest);
    const auto sig = V::div(V::set1(1.0f), V::add(V::set1(1.0f), vec_exp<V>(V::sub(V::zero(), g))));
    V::store_n(out + i, V::mul(V::mul(g, sig), V::load_n(up + i, rest)), rest);
  }
}

template <class V>
void gelu_kernel(const float* x, float* out, int64_t count) {
  int64_t i = 0;
  for (; i + V::kLanes <= count; i += V::kLanes) V::store(out + i, vec_gelu<V>(V::load(x + i)));
  if (i < count) {
    const int rest = static_cast<int>(count - i);
    V::store_n(out + i, vec_gelu<V>(V::load_n(x + i, rest)), rest);
  }
}

// ---- row reductions ----------------------------------------------------------------------

/// Σ x[c]² over a row, four independent accumulators to hide FMA latency.
template <class V>
float sum_squares(const float* x, int64_t cols) {
  auto acc0 = V::zero(), acc1 = V::zero(), acc2 = V::zero(), acc3 = V::zero();
  int64_t c = 0;
  for (; c + 4 * V::kLanes <= cols; c += 4 * V::kLanes) {
    const auto a = V::load(x + c), b = V::load(x + c + V::kLanes);
    const auto d = V::load(x + c + 2 * V::kLanes), e = V::load(x + c + 3 * V::kLanes);
    acc0 = V::fmadd(a, a, acc0);
    acc1 = V::fmadd(b, b, acc1);
    acc2 = V::fmadd(d, d, acc2);
    acc3 = V::fmadd(e, e, acc3);
  }
  for (; c + V::kLanes <= cols; c += V::kLanes) {
    const auto a = V::load(x + c);
    acc0 = V::fmadd(a, a, acc0);
  }
  if (c < cols) {
    const auto a = V::load_n(x + c, static_cast<int>(cols - c));
    acc1 = V::fmadd(a, a, acc1);
  }
  return V::reduce_add(V::add(V::add(acc0, acc1), V::add(acc2, acc3)));
}

/// Σ d and Σ d² with d = x[c] − pivot over a row.
template <class V>
std::pair<float, float> centered_sums(const float* x, int64_t cols, float pivot) {
  const auto p = V::set1(pivot);
  auto sum0 = V::zero(), sum1 = V::zero(), squares0 = V::zero(), squares1 = V::zero();
  int64_t c = 0;
  for (; c + 2 * V::kLanes <= cols; c += 2 * V::kLanes) {
    const auto a = V::sub(V::load(x + c), p), b = V::sub(V::load(x + c + V::kLanes), p);
    sum0 = V::add(sum0, a);
    sum1 = V::add(sum1, b);
    squares0 = V::fmadd(a, a, squares0);
    squares1 = V::fmadd(b, b, squares1);
  }
  for (; c + V::kLanes <= cols; c += V::kLanes) {
    const auto a = V::sub(V::load(x + c), p);
    sum0 = V::add(sum0, a);
    squares0 = V::fmadd(a, a, squares0);
  }
  if (c < cols) {
    const int rest = static_cast<int>(cols - c);
    const auto a = V::select(V::first_n(rest), V::sub(V::load_n(x + c, rest), p), V::zero());
    sum1 = V::add(sum1, a);
    squares1 = V::fmadd(a, a, squares1);
  }
  return {V::reduce_add(V::add(sum0, sum1)), V::reduce_add(V::add(squares0, squares1))};
}

/// Σ (x[c] − center) over a row: with center near the mean (the first element will do) the
/// terms stay small, so a row of large common offset (100 + noise) keeps its precision.
template <class V>
float centered_sum(const float* x, int64_t cols, float center) {
  const auto mid = V::set1(center);
  auto acc0 = V::zero(), acc1 = V::zero();
  int64_t c = 0;
  for (; c + 2 * V::kLanes <= cols; c += 2 * V::kLanes) {
    acc0 = V::add(acc0, V::sub(V::load(x + c), mid));
    acc1 = V::add(acc1, V::sub(V::load(x + c + V::kLanes), mid));
  }
  for (; c + V::kLanes <= cols; c += V::kLanes) acc0 = V::add(acc0, V::sub(V::load(x + c), mid));
  if (c < cols) {
    const int rest = static_cast<int>(cols - c);
    acc1 =
        V::add(acc1, V::select(V::first_n(rest), V::sub(V::load_n(x + c, rest), mid), V::zero()));
  }
  return V::reduce_add(V::add(acc0, acc1));
}

template <class V>
float row_max(const float* x, int64_t cols) {
  const auto lowest = V::set1(-std::numeric_limits<float>::infinity());
  auto acc0 = lowest, acc1 = lowest;
  int64_t c = 0;
  for (; c + 2 * V::kLanes <= cols; c += 2 * V::kLanes) {
    acc0 = V::max(acc0, V::load(x + c));
    acc1 = V::max(acc1, V::load(x + c + V::kLanes));
  }
  for (; c + V::kLanes <= cols; c += V::kLanes) acc0 = V::max(acc0, V::load(x + c));
  if (c < cols) {
    const int rest = static_cast<int>(cols - c);
    acc1 = V::max(acc1, V::select(V::first_n(rest), V::load_n(x + c, rest), lowest));
  }
  return V::reduce_max(V::max(acc0, acc1));
}

/// y[c] = (x[c] − pivot − offset) · factor · weight[c] (+ bias[c]).
template <class V>
void scale_row(const float* x, const float* weight, const float* bias, float pivot, float offset,
               float factor, int64_t cols, float* y) {
  const auto f = V::set1(factor), p = V::set1(pivot), o = V::set1(offset);
  int64_t c = 0;
  for (; c + V::kLanes <= cols; c += V::kLanes) {
    auto v = V::mul(V::mul(V::sub(V::sub(V::load(x + c), p), o), f), V::load(weight + c));
    if (bias != nullptr) v = V::add(v, V::load(bias + c));
    V::store(y + c, v);
  }
  if (c < cols) {
    const int rest = static_cast<int>(cols - c);
    auto v = V::mul(V::mul(V::sub(V::sub(V::load_n(x + c, rest), p), o), f),
                    V::load_n(weight + c, rest));
    if (bias != nullptr) v = V::add(v, V::load_n(bias + c, rest));
    V::store_n(y + c, v, rest);
  }
}

// Two passes over a row that stays in L1/L2: the sum of squares, then the scaled write.
template <class V>
void rms_norm_kernel(const float* x, const float* weight, float eps, int64_t rows, int64_t cols,
                     float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float mean_square = sum_squares<V>(x + r * cols, cols) / static_cast<float>(cols);
    scale_row<V>(x + r * cols, weight, nullptr, 0.0f, 0.0f, 1.0f / std::sqrt(mean_square + eps),
                 cols, y + r * cols);
  }
}

// Mean and variance as pivot + offset (see there), then the write of (x − pivot − offset) · …:
// x − pivot is exact, so rows with a large common offset keep their precision.
template <class V>
void layer_norm_kernel(const float* x, const float* weight, const float* bias, float eps,
                       int64_t rows, int64_t cols, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols;
    // A first mean (around the first element), then Σ d and Σ d² around it: the corrected
    // two-pass algorithm, exact enough when every element sits at 100 ± 1.
    const float pivot = row[0] + centered_sum<V>(row, cols, row[0]) / static_cast<float>(cols);
    const auto [sum, squares] = centered_sums<V>(row, cols, pivot);
    const float offset = sum / static_cast<float>(cols);
    const float variance = std::max(0.0f, squares / static_cast<float>(cols) - offset * offset);
    scale_row<V>(row, weight, bias, pivot, offset, 1.0f / std::sqrt(variance + eps), cols,
                 y + r * cols);
  }
}

/// x[c] = e^(x[c] − shift) for c < count, in place; returns Σ of the results.
template <class V>
float exp_shift_sum(float* x, int64_t count, float shift) {
  const auto offset = V::set1(shift);
  auto sum = V::zero();
  int64_t c = 0;
  for (; c + V::kLanes <= count; c += V::kLanes) {
    const auto e = vec_exp<V>(V::sub(V::load(x + c), offset));
    V::store(x + c, e);
    sum = V::add(sum, e);
  }
  if (c < count) {
    const int rest = static_cast<int>(count - c);
    const auto e = vec_exp<V>(V::sub(V::load_n(x + c, rest), offset));
    V::store_n(x + c, e, rest);
    sum = V::add(sum, V::select(V::first_n(rest), e, V::zero()));
  }
  return V::reduce_add(sum);
}

/// x[c] *= factor for c < count.
template <class V>
void scale_in_place(float* x, int64_t count, float factor) {
  const auto f = V::set1(factor);
  int64_t c = 0;
  for (; c + V::kLanes <= count; c += V::kLanes) V::store(x + c, V::mul(V::load(x + c), f));
  if (c < count) {
    const int rest = static_cast<int>(count - c);
    V::store_n(x + c, V::mul(V::load_n(x + c, rest), f), rest);
  }
}

// Max, then exp and sum (stored in place), then the normalising multiply.
template <class V>
void softmax_kernel(float* x, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * cols;
    const float sum = exp_shift_sum<V>(row, cols, row_max<V>(row, cols));
    scale_in_place<V>(row, cols, 1.0f / sum);
  }
}

// ---- RoPE --------------------------------------------------------------------------------

// Angles in double (position × θ_i exact to ~1 ulp), cos/sin once per token, shared by heads.
template <class V>
void rope_kernel(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t row_stride,
                 const int32_t* positions, const RopeTable& table, RopeLayout layout) {
  const int64_t half = head_dim / 2;
  std::vector<float> cos_table(static_cast<size_t>(head_dim));
  std::vector<float> sin_table(static_cast<size_t>(head_dim));
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(positions[t]) * table.inv_freq[i];
      const auto c = static_cast<float>(std::cos(angle));
      const auto s = static_cast<float>(std::sin(angle));
      if (layout == RopeLayout::kInterleaved) {
        // Lane pairs (a, b) → (a·c − b·s, b·c + a·s) = swap_pairs(x)·(−s, s) + x·cos, rounded
        // as the kHalf path rounds (product a·c first), so the layouts agree bit for bit.
        cos_table[2 * i] = c;
        cos_table[2 * i + 1] = c;
        sin_table[2 * i] = -s;
        sin_table[2 * i + 1] = s;
      } else {
        cos_table[i] = c;
        sin_table[i] = s;
      }
    }
    for (int64_t h = 0; h < heads; ++h) {
      float* head = x + t * row_stride + h * head_dim;
      if (layout == RopeLayout::kHalf) {
        for (int64_t i = 0; i < half; i += V::kLanes) {
          const int rest = static_cast<int>(std::min<int64_t>(V::kLanes, half - i));
          const auto a = V::load_n(head + i, rest), b = V::load_n(head + half + i, rest);
          const auto c = V::load_n(&cos_table[i], rest), s = V::load_n(&sin_table[i], rest);
          V::store_n(head + i, V::fnmadd(b, s, V::mul(a, c)), rest);
          V::store_n(head + half + i, V::fmadd(a, s, V::mul(b, c)), rest);
        }
      } else if constexpr (V::kLanes % 2 == 0) {
        int64_t i = 0;
        for (; i + V::kLanes <= head_dim; i += V::kLanes) {
          const auto v = V::load(head + i);
          V::store(head + i, V::fmadd(V::swap_pairs(v), V::load(&sin_table[i]),
                                      V::mul(v, V::load(&cos_table[i]))));
        }
        if (i < head_dim) {
          const int rest = static_cast<int>(head_dim - i);
          const auto v = V::load_n(head + i, rest);
          V::store_n(head + i,
                     V::fmadd(V::swap_pairs(v), V::load_n(&sin_table[i], rest),
                              V::mul(v, V::load_n(&cos_table[i], rest))),
                     rest);
        }
      } else {
        for (int64_t i = 0; i < half; ++i) {
          const float a = head[2 * i], b = head[2 * i + 1];
          head[2 * i] = a * cos_table[2 * i] + b * sin_table[2 * i];
          head[2 * i + 1] = b * cos_table[2 * i] + a * sin_table[2 * i + 1];
        }
      }
    }
  }
}

// ---- KV rows -----------------------------------------------------------------------------

/// std::round (half away from zero) of each lane, exactly: trunc plus a carry when the
/// dropped fraction (exact in float) is at least ½.
template <class V>
typename V::F round_away(typename V::F v) {
  const auto whole = V::trunc(v);
  const auto carry = V::select(V::lt(v, V::zero()), V::set1(-1.0f), V::set1(1.0f));
  return V::add(whole, V::select(V::ge(V::abs(V::sub(v, whole)), V::set1(0.5f)), carry, V::zero()));
}

/// Quantizes `values` (a multiple of 32) to Q8_0 blocks byte-identically to
/// ref::quantize_row_q8_0 (same d = amax / 127, same x · (1/d), same rounding).
template <class V>
void store_q8_0(const float* src, int64_t values, std::byte* dst) {
  constexpr int kVectors = kBlock32 / V::kLanes;
  for (int64_t b = 0; b < values / kBlock32; ++b) {
    const float* x = src + b * kBlock32;
    auto amax = V::zero();
    for (int k = 0; k < kVectors; ++k) amax = V::max(amax, V::abs(V::load(x + k * V::kLanes)));
    const float d = V::reduce_max(amax) / ((1 << 7) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ8_0 block;
    block.d = f32_to_fp16(d);
    for (int k = 0; k < kVectors; ++k) {
      V::store_i8(block.qs + k * V::kLanes,
                  round_away<V>(V::mul(V::load(x + k * V::kLanes), V::set1(id))));
    }
    std::memcpy(dst + b * static_cast<int64_t>(sizeof(BlockQ8_0)), &block, sizeof block);
  }
}

template <class V>
void kv_store_kernel(KvType type, const float* src, int64_t rows, int64_t kv_heads,
                     int64_t head_dim, std::byte* dst) {
  const int64_t values = rows * kv_heads * head_dim;
  switch (type) {
    case KvType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(values) * sizeof(float));
      break;
    case KvType::kF16: {
      auto* out = reinterpret_cast<Half*>(dst);
      int64_t i = 0;
      for (; i + V::kLanes <= values; i += V::kLanes) V::store_f16(out + i, V::load(src + i));
      for (; i < values; ++i) {
        const Half h = f32_to_fp16(src[i]);
        std::memcpy(dst + i * static_cast<int64_t>(sizeof(Half)), &h, sizeof h);
      }
      break;
    }
    case KvType::kQ8_0:
      store_q8_0<V>(src, values, dst);
      break;
  }
}

}  // namespace
}  // namespace polyinfer::inline v0::detail
