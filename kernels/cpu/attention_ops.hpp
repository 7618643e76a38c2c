// SPDX-License-Identifier: Apache-2.0
// Grouped-query attention over a paged KV cache, written once over vector traits V.
//
// Include from an ISA translation unit only (internal linkage: see simd_ops.hpp).
// One work item is a (token, kv head) pair: the query heads sharing that kv head (up to 8 at a
// time) are processed together, so each K and V row is read and dequantized once per group.
// Rows are taken in chunks of kChunkRows: scores for the chunk, then one online-softmax update
// (running max and sum per head, accumulators rescaled once per chunk), then the weighted V sum.
#pragma once

#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "kernels/common/block_formats.hpp"
#include "kernels/cpu/isa_ops.hpp"
#include "kernels/cpu/simd_ops.hpp"

namespace polyinfer::inline v0::detail {
namespace {

inline constexpr int kChunkRows = 64;  // rows per online-softmax step
inline constexpr int kMaxGroup = 8;    // query heads processed together per kv head

/// Element c of one head's row, dequantized (tails and odd head sizes only).
template <KvType T>
float kv_value(const std::byte* head, int64_t c) {
  if constexpr (T == KvType::kF32) {
    float value;
    std::memcpy(&value, head + c * 4, sizeof value);
    return value;
  } else if constexpr (T == KvType::kF16) {
    Half h;
    std::memcpy(&h, head + c * 2, sizeof h);
    return fp16_to_f32(h);
  } else {
    const std::byte* block = head + (c / kBlock32) * static_cast<int64_t>(sizeof(BlockQ8_0));
    Half d;
    std::memcpy(&d, block, sizeof d);
    return fp16_to_f32(d) * static_cast<float>(static_cast<int8_t>(block[2 + c % kBlock32]));
  }
}

/// kLanes elements of one head's row from element i (i a multiple of kLanes), as floats.
template <class V, KvType T>
typename V::F kv_load(const std::byte* head, int64_t i) {
  if constexpr (T == KvType::kF32) {
    return V::load(reinterpret_cast<const float*>(head) + i);
  } else if constexpr (T == KvType::kF16) {
    return V::load_f16(reinterpret_cast<const Half*>(head) + i);
  } else {
    const std::byte* block = head + (i / kBlock32) * static_cast<int64_t>(sizeof(BlockQ8_0));
    Half d;
    std::memcpy(&d, block, sizeof d);
    return V::mul(V::set1(V::half_to_float(d)),
                  V::load_i8(reinterpret_cast<const int8_t*>(block) + 2 + i % kBlock32));
  }
}

/// dots[k] = the horizontal sum of acc[k] for k < N, four at a time (one shuffle tree for four).
template <class V, int N>
inline void reduce_dots(const typename V::F* acc, float* dots) {
  constexpr int kQuads = N / 4 * 4;
  for (int k = 0; k < kQuads; k += 4) {
    V::reduce_add4(acc[k], acc[k + 1], acc[k + 2], acc[k + 3], dots + k);
  }
  if constexpr (kQuads < N) {
    for (int k = kQuads; k < N; ++k) dots[k] = V::reduce_add(acc[k]);
  }
}

/// scores[g][j] = scale · q_g · k_j for G heads and rows [first, first + R): R rows share
/// each q load, G·R independent accumulators hide the FMA latency.
template <class V, KvType T, int G, int R>
void score_rows(const float* q, int64_t head_dim, const std::byte* const* rows, int first,
                float scale, float* scores) {
  typename V::F acc[G][R];
  for (int g = 0; g < G; ++g) {
    for (int r = 0; r < R; ++r) acc[g][r] = V::zero();
  }
  int64_t i = 0;
  for (; i + V::kLanes <= head_dim; i += V::kLanes) {
    typename V::F k[R];
    for (int r = 0; r < R; ++r) k[r] = kv_load<V, T>(rows[first + r], i);
    for (int g = 0; g < G; ++g) {
      const auto qv = V::load(q + g * head_dim + i);
      for (int r = 0; r < R; ++r) acc[g][r] = V::fmadd(qv, k[r], acc[g][r]);
    }
  }
  float dots[G * R];  // dots[g·R + r]: acc[g][r]'s horizontal sum
  if constexpr (G * R == 16 && requires { V::reduce_add16(&acc[0][0], dots); }) {
    V::reduce_add16(&acc[0][0], dots);
  } else {
    reduce_dots<V, G * R>(&acc[0][0], dots);
  }
  for (int g = 0; g < G; ++g) {
    for (int r = 0; r < R; ++r) {
      float dot = dots[g * R + r];
      for (int64_t c = i; c < head_dim; ++c) {
        dot += q[g * head_dim + c] * kv_value<T>(rows[first + r], c);
      }
      scores[g * kChunkRows + first + r] = dot * scale;
    }
  }
}

// Accumulators a tile may hold: 8 where there are 16 vector registers, 16 with AVX-512's 32.
template <class V>
inline constexpr int kTileVectors = V::kLanes >= 16 ? 16 : 8;

template <class V, KvType T, int G>
void score_chunk(const float* q, int64_t head_dim, const std::byte* const* rows, int count,
                 float scale, float* scores) {
  constexpr int kRows =
      G <= 2 ? kTileVectors<V> / 2 : (G <= 4 ? kTileVectors<V> / 4 : kTileVectors<V> / 8);
  int j = 0;
  for (; j + kRows <= count; j += kRows)
    score_rows<V, T, G, kRows>(q, head_dim, rows, j, scale, scores);
  for (; j < count; ++j) score_rows<V, T, G, 1>(q, head_dim, rows, j, scale, scores);
}

/// out_g[i .. i + A·kLanes) = alpha_g · out_g + Σ_j weights[g][j] · v_j, G·A accumulators.
template <class V, KvType T, int G, int A>
void accumulate_columns(const std::byte* const* rows, int count, const float* weights,
                        const float* alpha, int64_t head_dim, int64_t i, float* out) {
  typename V::F acc[G][A];
  for (int g = 0; g < G; ++g) {
    const auto a = V::set1(alpha[g]);
    for (int k = 0; k < A; ++k)
      acc[g][k] = V::mul(V::load(out + g * head_dim + i + k * V::kLanes), a);
  }
  for (int j = 0; j < count; ++j) {
    typename V::F v[A];
    for (int k = 0; k < A; ++k) v[k] = kv_load<V, T>(rows[j], i + k * V::kLanes);
    for (int g = 0; g < G; ++g) {
      const auto w = V::set1(weights[g * kChunkRows + j]);
      for (int k = 0; k < A; ++k) acc[g][k] = V::fmadd(w, v[k], acc[g][k]);
    }
  }
  for (int g = 0; g < G; ++g) {
    for (int k = 0; k < A; ++k) V::store(out + g * head_dim + i + k * V::kLanes, acc[g][k]);
  }
}

template <class V, KvType T, int G>
void accumulate_chunk(const std::byte* const* rows, int count, const float* weights,
                      const float* alpha, int64_t head_dim, float* out) {
  constexpr int kVectors = G <= 2 ? 4 : (G <= 4 ? kTileVectors<V> / 4 : kTileVectors<V> / 8);
  int64_t i = 0;
  for (; i + kVectors * V::kLanes <= head_dim; i += kVectors * V::kLanes) {
    accumulate_columns<V, T, G, kVectors>(rows, count, weights, alpha, head_dim, i, out);
  }
  for (; i + V::kLanes <= head_dim; i += V::kLanes) {
    accumulate_columns<V, T, G, 1>(rows, count, weights, alpha, head_dim, i, out);
  }
  for (; i < head_dim; ++i) {  // head sizes that are not a multiple of the vector width
    for (int g = 0; g < G; ++g) {
      float sum = out[g * head_dim + i] * alpha[g];
      for (int j = 0; j < count; ++j) sum += weights[g * kChunkRows + j] * kv_value<T>(rows[j], i);
      out[g * head_dim + i] = sum;
    }
  }
}

using ScoreFn = void (*)(const float*, int64_t, const std::byte* const*, int, float, float*);
using AccumulateFn = void (*)(const std::byte* const*, int, const float*, const float*, int64_t,
                              float*);

template <class V, KvType T, size_t... G>
constexpr std::array<ScoreFn, kMaxGroup> score_fns(std::index_sequence<G...>) {
  return {&score_chunk<V, T, static_cast<int>(G) + 1>...};
}
template <class V, KvType T, size_t... G>
constexpr std::array<AccumulateFn, kMaxGroup> accumulate_fns(std::index_sequence<G...>) {
  return {&accumulate_chunk<V, T, static_cast<int>(G) + 1>...};
}

template <class V>
ScoreFn score_fn(KvType type, int group) {
  static constexpr std::array<std::array<ScoreFn, kMaxGroup>, 3> kFns = {
      score_fns<V, KvType::kF32>(std::make_index_sequence<kMaxGroup>{}),
      score_fns<V, KvType::kF16>(std::make_index_sequence<kMaxGroup>{}),
      score_fns<V, KvType::kQ8_0>(std::make_index_sequence<kMaxGroup>{})};
  return kFns[static_cast<size_t>(type)][static_cast<size_t>(group - 1)];
}
template <class V>
AccumulateFn accumulate_fn(KvType type, int group) {
  static constexpr std::array<std::array<AccumulateFn, kMaxGroup>, 3> kFns = {
      accumulate_fns<V, KvType::kF32>(std::make_index_sequence<kMaxGroup>{}),
      accumulate_fns<V, KvType::kF16>(std::make_index_sequence<kMaxGroup>{}),
      accumulate_fns<V, KvType::kQ8_0>(std::make_index_sequence<kMaxGroup>{})};
  return kFns[static_cast<size_t>(type)][static_cast<size_t>(group - 1)];
}

/// Pointers to one kv head's part of rows [first, first + count) of a paged view.
inline void gather_rows(const KvView& view, uint64_t row_bytes, uint64_t head_offset, int64_t first,
                        int count, const std::byte** rows) {
  int64_t block = first / view.block_rows;
  int64_t offset = first % view.block_rows;
  for (int j = 0; j < count; ++j) {
    rows[j] = view.blocks[block] + static_cast<uint64_t>(offset) * row_bytes + head_offset;
    if (++offset == view.block_rows) {
      offset = 0;
      ++block;
    }
  }
}

template <class V>
void attention_kernel(const AttentionArgs& args, int64_t begin, int64_t end) {
  const KvView& keys = *args.keys;
  const KvView& values = *args.values;
  const int64_t head_dim = keys.head_dim;
  const int64_t kv_heads = keys.kv_heads;
  const int64_t group = args.heads / kv_heads;
  const uint64_t k_row_bytes = kv_row_bytes(keys.type, kv_heads, head_dim);
  const uint64_t v_row_bytes = kv_row_bytes(values.type, kv_heads, head_dim);
  const int64_t cached = std::min(keys.positions, values.positions);

  alignas(64) float weights[kMaxGroup * kChunkRows];
  const std::byte* k_rows[kChunkRows];
  const std::byte* v_rows[kChunkRows];
  float running_max[kMaxGroup];
  float running_sum[kMaxGroup];
  float alpha[kMaxGroup];

  for (int64_t item = begin; item < end; ++item) {
    const int64_t token = item / kv_heads;
    const int64_t kv_head = item % kv_heads;
    const int64_t limit =
        args.causal ? std::clamp<int64_t>(int64_t{args.positions[token]} + 1, 0, cached) : cached;
    for (int64_t first_head = 0; first_head < group; first_head += kMaxGroup) {
      const int heads = static_cast<int>(std::min<int64_t>(kMaxGroup, group - first_head));
      const int64_t offset = (token * args.heads + kv_head * group + first_head) * head_dim;
      const float* q = args.q + offset;
      float* out = args.out + offset;
      std::fill(out, out + heads * head_dim, 0.0f);
      std::fill(running_max, running_max + heads, -std::numeric_limits<float>::infinity());
      std::fill(running_sum, running_sum + heads, 0.0f);
      const ScoreFn score = score_fn<V>(keys.type, heads);
      const AccumulateFn accumulate = accumulate_fn<V>(values.type, heads);
      for (int64_t row = 0; row < limit; row += kChunkRows) {
        const int count = static_cast<int>(std::min<int64_t>(kChunkRows, limit - row));
        gather_rows(keys, k_row_bytes, kv_row_bytes(keys.type, kv_head, head_dim), row, count,
                    k_rows);
        gather_rows(values, v_row_bytes, kv_row_bytes(values.type, kv_head, head_dim), row, count,
                    v_rows);
        score(q, head_dim, k_rows, count, args.scale, weights);
        for (int h = 0; h < heads; ++h) {
          float* w = weights + h * kChunkRows;
          const float new_max = std::max(running_max[h], row_max<V>(w, count));
          alpha[h] = std::exp(running_max[h] - new_max);
          running_sum[h] = running_sum[h] * alpha[h] + exp_shift_sum<V>(w, count, new_max);
          running_max[h] = new_max;
        }
        accumulate(v_rows, count, weights, alpha, head_dim, out);
      }
      if (limit == 0) continue;
      for (int h = 0; h < heads; ++h)
        scale_in_place<V>(out + h * head_dim, head_dim, 1.0f / running_sum[h]);
    }
  }
}

}  // namespace
}  // namespace polyinfer::inline v0::detail
