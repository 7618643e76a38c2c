// SPDX-License-Identifier: Apache-2.0
// Integer matmul bodies over the 16-row packed layouts (Q4_0, Q8_0, Q4_K, Q6_K) and the 8-bit
// activation quantizers, written once over the 16-lane operations of simd16_<isa>.hpp.
//
// Include only from an ISA translation unit, after its simd16 header; internal linkage (see
// matmul_kernel.hpp). Lane r of every vector is row r of the group: one vpdpbusd multiplies
// 4 columns of 16 rows by the same 4 activation bytes (broadcast), so a 16 × 32 block takes 8
// instructions and each weight byte is loaded exactly once per token tile.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

// Block sizes only: the inline conversions there must not be called from an ISA unit.
#include "kernels/common/block_formats.hpp"
#include "kernels/cpu/matmul_kernel.hpp"

namespace polyinfer::inline v0::detail {
namespace {

constexpr int64_t round_up64(int64_t bytes) {
  return (bytes + 63) / 64 * 64;
}

// ---- activations ------------------------------------------------------------------------------
//
// Q8_0 blocks (for Q4_0 / Q8_0 weights), per token: int8 qs[cols]; float d[blocks] (the fp16
// value ggml stores); int32 bias[blocks] = −offset·Σ qs, which turns Σ (q + offset)·x of
// unsigned weights (q + 8 for Q4_0, q + 128 for Q8_0) back into Σ q·x.
// Q8_K blocks (for Q4_K / Q6_K), per token: int8 qs[cols]; float d[blocks]; int16
// bsums[blocks][16] (Σ of 16); int16 sums32[blocks][8] (Σ of 32). Each array starts on 64 bytes.

struct ActQ8_0 {
  const int8_t* qs;
  const float* d;
  const int32_t* bias;
};

int64_t act_q8_0_stride(int64_t cols) {
  return round_up64(cols) + 2 * round_up64(cols / kBlock32 * 4);
}

ActQ8_0 act_q8_0(const std::byte* act, int64_t cols, int64_t token) {
  const std::byte* base = act + token * act_q8_0_stride(cols);
  const int64_t d_offset = round_up64(cols);
  return {reinterpret_cast<const int8_t*>(base), reinterpret_cast<const float*>(base + d_offset),
          reinterpret_cast<const int32_t*>(base + d_offset + round_up64(cols / kBlock32 * 4))};
}

inline uint64_t act_q8_0_bytes(int64_t tokens, int64_t cols) {
  return static_cast<uint64_t>(tokens * act_q8_0_stride(cols));
}

/// Where a Q8_0 quantizer puts one token's blocks: block b's 32 quants at qs + b·qs_stride, its
/// scale and bias at d[b·scalar_stride], bias[b·scalar_stride].
struct Q8_0Out {
  int8_t* qs;
  int64_t qs_stride;
  float* d;
  int32_t* bias;
  int64_t scalar_stride;
};

// quantize_row_q8_0 (ggml's reference) operation for operation: d = amax / 127, q = roundf(x / d).
template <int kOffset>
void quantize_q8_0_blocks(const float* x, int64_t cols, const Q8_0Out& out) {
  const int64_t blocks = cols / kBlock32;
  for (int64_t b = 0; b < blocks; ++b) {
    const VF v0 = vf_load(x + b * kBlock32);
    const VF v1 = vf_load(x + b * kBlock32 + 16);
    const float amax = vf_reduce_max(vf_max(vf_abs(v0), vf_abs(v1)));
    const float scale = amax / 127;
    const float inverse = scale != 0.0f ? 1.0f / scale : 0.0f;
    const VI q0 = vi_round_away(vf_mul(v0, vf_set1(inverse)));
    const VI q1 = vi_round_away(vf_mul(v1, vf_set1(inverse)));
    vi_store_i8(out.qs + b * out.qs_stride, q0);
    vi_store_i8(out.qs + b * out.qs_stride + 16, q1);
    out.d[b * out.scalar_stride] = round_to_half(scale);
    out.bias[b * out.scalar_stride] = -kOffset * vi_reduce(vi_add(q0, q1));
  }
}

template <int kOffset>
void quantize_q8_0_row(const float* x, int64_t cols, std::byte* out) {
  const int64_t d_offset = round_up64(cols);
  const int64_t bias_offset = d_offset + round_up64(cols / kBlock32 * 4);
  quantize_q8_0_blocks<kOffset>(
      x, cols,
      {reinterpret_cast<int8_t*>(out), kBlock32, reinterpret_cast<float*>(out + d_offset),
       reinterpret_cast<int32_t*>(out + bias_offset), 1});
}

/// Activations for Q4_0 (kOffset 8) or Q8_0 (kOffset 128) weights.
template <int kOffset>
inline void prepare_q8_0(const MatmulCall& call, int64_t token_begin, int64_t token_end) {
  for (int64_t t = token_begin; t < token_end; ++t) {
    quantize_q8_0_row<kOffset>(call.x + t * call.x_stride, call.cols,
                               call.act + t * act_q8_0_stride(call.cols));
  }
}

struct ActQ8K {
  const int8_t* qs;
  const float* d;
  const int16_t* bsums;
  const int16_t* sums32;
};

int64_t act_q8_k_stride(int64_t cols) {
  const int64_t blocks = cols / kBlockK;
  return round_up64(cols) + round_up64(blocks * 4) + round_up64(blocks * 32) +
         round_up64(blocks * 16);
}

ActQ8K act_q8_k(const std::byte* act, int64_t cols, int64_t token) {
  const int64_t blocks = cols / kBlockK;
  const std::byte* base = act + token * act_q8_k_stride(cols);
  const std::byte* d = base + round_up64(cols);
  const std::byte* bsums = d + round_up64(blocks * 4);
  const std::byte* sums32 = bsums + round_up64(blocks * 32);
  return {reinterpret_cast<const int8_t*>(base), reinterpret_cast<const float*>(d),
          reinterpret_cast<const int16_t*>(bsums), reinterpret_cast<const int16_t*>(sums32)};
}

inline uint64_t act_q8_k_bytes(int64_t tokens, int64_t cols) {
  return static_cast<uint64_t>(tokens * act_q8_k_stride(cols));
}

/// Where a Q8_K quantizer puts one token's super-blocks: sub-block s (32 quants) of block b at
/// qs + (8b + s)·sub_stride; d at d[b·d_stride]; the 16 sums of 16 at bsums + b·bsums_stride;
/// the 8 sums of 32 at sums32 + b·sums32_stride.
struct Q8KOut {
  int8_t* qs;
  int64_t sub_stride;
  float* d;
  int64_t d_stride;
  int16_t* bsums;
  int64_t bsums_stride;
  int16_t* sums32;
  int64_t sums32_stride;
};

// quantize_row_q8_k: iscale = −127 / (the value of largest magnitude, first if tied),
// q = min(127, nearest_int(iscale·x)) (ties to even), d = 1 / iscale.
void quantize_q8_k_blocks(const float* x, int64_t cols, const Q8KOut& out) {
  const int64_t blocks = cols / kBlockK;
  for (int64_t b = 0; b < blocks; ++b) {
    const float* xb = x + b * kBlockK;
    int16_t* bsums = out.bsums + b * out.bsums_stride;
    int16_t* sums32 = out.sums32 + b * out.sums32_stride;
    VF amax_v = vf_zero();
    for (int c = 0; c < kBlockK; c += 16) amax_v = vf_max(amax_v, vf_abs(vf_load(xb + c)));
    const float amax = vf_reduce_max(amax_v);
    if (amax == 0.0f) {
      out.d[b * out.d_stride] = 0;
      for (int s = 0; s < 8; ++s) std::memset(out.qs + (8 * b + s) * out.sub_stride, 0, 32);
      std::memset(bsums, 0, 32);
      std::memset(sums32, 0, 16);
      continue;
    }
    float max = 0;
    for (int c = 0; c < kBlockK; c += 16) {
      const unsigned mask = vf_eq_mask(vf_abs(vf_load(xb + c)), vf_set1(amax));
      if (mask != 0) {
        max = xb[c + __builtin_ctz(mask)];
        break;
      }
    }
    const float iscale = -127.f / max;
    for (int c = 0; c < kBlockK; c += 16) {
      const VI v = vi_min(vi_round_even(vf_mul(vf_set1(iscale), vf_load(xb + c))), vi_set1(127));
      vi_store_i8(out.qs + (8 * b + c / 32) * out.sub_stride + c % 32, v);
      bsums[c / 16] = static_cast<int16_t>(vi_reduce(v));
    }
    for (int i = 0; i < 8; ++i) sums32[i] = static_cast<int16_t>(bsums[2 * i] + bsums[2 * i + 1]);
    out.d[b * out.d_stride] = 1 / iscale;
  }
}

void quantize_q8_k_row(const float* x, int64_t cols, std::byte* out) {
  const int64_t blocks = cols / kBlockK;
  std::byte* d = out + round_up64(cols);
  std::byte* bsums = d + round_up64(blocks * 4);
  std::byte* sums32 = bsums + round_up64(blocks * 32);
  quantize_q8_k_blocks(
      x, cols,
      {reinterpret_cast<int8_t*>(out), 32, reinterpret_cast<float*>(d), 1,
       reinterpret_cast<int16_t*>(bsums), 16, reinterpret_cast<int16_t*>(sums32), 8});
}

inline void prepare_q8_k(const MatmulCall& call, int64_t token_begin, int64_t token_end) {
  for (int64_t t = token_begin; t < token_end; ++t) {
    quantize_q8_k_row(call.x + t * call.x_stride, call.cols,
                      call.act + t * act_q8_k_stride(call.cols));
  }
}

// Single-token tiles stream weights from DRAM: every line of the block about 8 KiB ahead is
// prefetched (the hardware streamer alone runs too close behind, most on Intel). Batched tiles
// re-read a group from L1/L2 and skip it.
constexpr int64_t kPrefetchBytes = 8192;

template <int64_t kBlockBytes>
inline void prefetch_block(const uint8_t* block) {
  constexpr int64_t kAhead = kPrefetchBytes / kBlockBytes * kBlockBytes;
  for (int64_t offset = 0; offset < kBlockBytes; offset += 64) prefetch(block + kAhead + offset);
}

// ---- token tiles ------------------------------------------------------------------------------

template <int N, typename F>
inline void token_tail(int rest, int64_t t, F& f) {
  if constexpr (N >= 1) {
    if (rest == N) {
      f(t, std::integral_constant<int, N>{});
    } else {
      token_tail<N - 1>(rest, t, f);
    }
  }
}

// Calls f(t, integral_constant<T>) over [t0, t1) in tiles of kMax tokens, then one smaller tile.
template <int kMax, typename F>
inline void for_token_tiles(int64_t t0, int64_t t1, F&& f) {
  int64_t t = t0;
  for (; t + kMax <= t1; t += kMax) f(t, std::integral_constant<int, kMax>{});
  if (t < t1) token_tail<kMax - 1>(static_cast<int>(t1 - t), t, f);
}

// Stores 16 rows (the first `rows` of them) of each token's accumulator.
template <int T>
inline void store_rows(const VF (&acc)[T], float* y, int64_t y_stride, int rows) {
  for (int t = 0; t < T; ++t) {
    if (rows == kPackRows) {
      vf_store(y + t * y_stride, acc[t]);
    } else {
      vf_store_n(y + t * y_stride, acc[t], rows);
    }
  }
}

// ---- Q4_0 and Q8_0 ----------------------------------------------------------------------------

// Tokens per two-group tile: 2·T integer and 2·T float accumulators (24 of 32 registers).
constexpr int kQ8TileTokens = 6;

// One group of 16 rows × T tokens: Σ_b d_w·d_x·(Σ q·x − offset·Σx) with q unsigned.
template <int T, bool kQ8>
inline void q8_block_tile(const uint8_t* w, int64_t blocks, const ActQ8_0 (&x)[T], float* y,
                          int64_t y_stride, int rows) {
  constexpr int64_t kStep = kQ8 ? kQ8_0x16Bytes : kQ4_0x16Bytes;
  // Single-token tiles keep two accumulator chains so vpdpbusd latency is hidden.
  constexpr int kChains = T <= 2 ? 2 : 1;
  const VI nibble = vi_set1_i8(0x0F);
  VF facc[T];
  for (int t = 0; t < T; ++t) facc[t] = vf_zero();
  for (int64_t b = 0; b < blocks; ++b, w += kStep) {
    if constexpr (T <= 2) prefetch_block<kStep>(w);
    VI acc[kChains][T];
    for (int c = 0; c < kChains; ++c) {
      for (int t = 0; t < T; ++t) acc[c][t] = vi_zero();
    }
    const int64_t col = b * kBlock32;
    if constexpr (kQ8) {
      for (int k = 0; k < 8; ++k) {
        const VI v = vi_load(w + 32 + 64 * k);
        for (int t = 0; t < T; ++t) {
          acc[k % kChains][t] =
              vi_dpbusd(acc[k % kChains][t], v, vi_bcast32(x[t].qs + col + 4 * k));
        }
      }
    } else {
      for (int k = 0; k < 4; ++k) {
        const VI v = vi_load(w + 32 + 64 * k);
        const VI lo = vi_and(v, nibble);
        const VI hi = vi_and(vi_srl16(v, 4), nibble);
        for (int t = 0; t < T; ++t) {
          acc[0][t] = vi_dpbusd_small(acc[0][t], lo, vi_bcast32(x[t].qs + col + 4 * k));
          acc[kChains - 1][t] =
              vi_dpbusd_small(acc[kChains - 1][t], hi, vi_bcast32(x[t].qs + col + 16 + 4 * k));
        }
      }
    }
    const VF dw = vf_from_half(reinterpret_cast<const uint16_t*>(w));
    for (int t = 0; t < T; ++t) {
      VI sum = acc[0][t];
      if constexpr (kChains == 2) sum = vi_add(sum, acc[1][t]);
      sum = vi_add(sum, vi_set1(x[t].bias[b]));
      facc[t] = vf_fmadd(vf_cvt(sum), vf_mul(dw, vf_set1(x[t].d[b])), facc[t]);
    }
  }
  store_rows<T>(facc, y, y_stride, rows);
}

// Two groups (32 rows) × T tokens: each broadcast activation serves both groups' weights, so a
// block takes half the broadcast loads per vpdpbusd of q8_block_tile (batches are load-bound).
template <int T, bool kQ8>
inline void q8_block_tile2(const uint8_t* w, int64_t group_bytes, int64_t blocks,
                           const ActQ8_0 (&x)[T], float* y, int64_t y_stride, int rows1) {
  constexpr int64_t kStep = kQ8 ? kQ8_0x16Bytes : kQ4_0x16Bytes;
  const VI nibble = vi_set1_i8(0x0F);
  VF facc[2][T];
  for (int g = 0; g < 2; ++g) {
    for (int t = 0; t < T; ++t) facc[g][t] = vf_zero();
  }
  for (int64_t b = 0; b < blocks; ++b, w += kStep) {
    VI acc[2][T];
    for (int g = 0; g < 2; ++g) {
      for (int t = 0; t < T; ++t) acc[g][t] = vi_zero();
    }
    const int64_t col = b * kBlock32;
    if constexpr (kQ8) {
      for (int k = 0; k < 8; ++k) {
        const VI v0 = vi_load(w + 32 + 64 * k);
        const VI v1 = vi_load(w + group_bytes + 32 + 64 * k);
        for (int t = 0; t < T; ++t) {
          const VI xb = vi_bcast32(x[t].qs + col + 4 * k);
          acc[0][t] = vi_dpbusd(acc[0][t], v0, xb);
          acc[1][t] = vi_dpbusd(acc[1][t], v1, xb);
        }
      }
    } else {
      for (int k = 0; k < 4; ++k) {
        const VI v0 = vi_load(w + 32 + 64 * k);
        const VI v1 = vi_load(w + group_bytes + 32 + 64 * k);
        const VI lo0 = vi_and(v0, nibble);
        const VI lo1 = vi_and(v1, nibble);
        for (int t = 0; t < T; ++t) {
          const VI xb = vi_bcast32(x[t].qs + col + 4 * k);
          acc[0][t] = vi_dpbusd_small(acc[0][t], lo0, xb);
          acc[1][t] = vi_dpbusd_small(acc[1][t], lo1, xb);
        }
        const VI hi0 = vi_and(vi_srl16(v0, 4), nibble);
        const VI hi1 = vi_and(vi_srl16(v1, 4), nibble);
        for (int t = 0; t < T; ++t) {
          const VI xb = vi_bcast32(x[t].qs + col + 16 + 4 * k);
          acc[0][t] = vi_dpbusd_small(acc[0][t], hi0, xb);
          acc[1][t] = vi_dpbusd_small(acc[1][t], hi1, xb);
        }
      }
    }
    const VF dw0 = vf_from_half(reinterpret_cast<const uint16_t*>(w));
    const VF dw1 = vf_from_half(reinterpret_cast<const uint16_t*>(w + group_bytes));
    for (int t = 0; t < T; ++t) {
      const VI bias = vi_set1(x[t].bias[b]);
      const VF dx = vf_set1(x[t].d[b]);
      facc[0][t] = vf_fmadd(vf_cvt(vi_add(acc[0][t], bias)), vf_mul(dw0, dx), facc[0][t]);
      facc[1][t] = vf_fmadd(vf_cvt(vi_add(acc[1][t], bias)), vf_mul(dw1, dx), facc[1][t]);
    }
  }
  store_rows<T>(facc[0], y, y_stride, kPackRows);
  store_rows<T>(facc[1], y + kPackRows, y_stride, rows1);
}

template <bool kQ8, int kMaxTokens>
void compute_q8_blocks(const MatmulCall& call, int64_t row_begin, int64_t row_end,
                       int64_t token_begin, int64_t token_end) {
  const int64_t blocks = call.cols / kBlock32;
  const int64_t group_bytes = blocks * (kQ8 ? kQ8_0x16Bytes : kQ4_0x16Bytes);
  int64_t row = row_begin;
  // Batches on AVX-512 (kMaxTokens 8; 32 vector registers): two groups per tile where both exist.
  if constexpr (kMaxTokens >= 8) {
    if (token_end - token_begin >= kMaxTokens) {
      for (; row + kPackRows < row_end; row += 2 * kPackRows) {
        const auto* w =
            reinterpret_cast<const uint8_t*>(call.packed) + row / kPackRows * group_bytes;
        const int rows1 =
            static_cast<int>(row_end - row < 2 * kPackRows ? row_end - row - kPackRows : kPackRows);
        for_token_tiles<kQ8TileTokens>(token_begin, token_end, [&](int64_t t0, auto tile) {
          constexpr int T = decltype(tile)::value;
          ActQ8_0 x[T];
          for (int t = 0; t < T; ++t) x[t] = act_q8_0(call.act, call.cols, t0 + t);
          q8_block_tile2<T, kQ8>(w, group_bytes, blocks, x, call.y + t0 * call.y_stride + row,
                                 call.y_stride, rows1);
        });
      }
    }
  }
  for (; row < row_end; row += kPackRows) {
    const auto* w = reinterpret_cast<const uint8_t*>(call.packed) + row / kPackRows * group_bytes;
    const int rows = static_cast<int>(row_end - row < kPackRows ? row_end - row : kPackRows);
    for_token_tiles<kMaxTokens>(token_begin, token_end, [&](int64_t t0, auto tile) {
      constexpr int T = decltype(tile)::value;
      ActQ8_0 x[T];
      for (int t = 0; t < T; ++t) x[t] = act_q8_0(call.act, call.cols, t0 + t);
      q8_block_tile<T, kQ8>(w, blocks, x, call.y + t0 * call.y_stride + row, call.y_stride, rows);
    });
  }
}

// ---- Q4_K -------------------------------------------------------------------------------------

template <int T>
inline void q4_k_tile(const uint8_t* w, int64_t blocks, const ActQ8K (&x)[T], float* y,
                      int64_t y_stride, int rows) {
  const VI nibble = vi_set1_i8(0x0F);
  VF facc[T];
  for (int t = 0; t < T; ++t) facc[t] = vf_zero();
  // The block two ahead (4.6 KiB) is prefetched one line per 64 quant bytes used, as the
  // smaller Q4_0/Q8_0 blocks are, not in one burst of 37 lines per block at the 8 KiB distance
  // of the others. 4096×4096 medians of runs beside each other, of the read roofline: burst
  // 85 %, spread at 7 KiB 87 %, spread at 4.6 KiB 89 % (4 runs), at 9.3 KiB 84 % (3 runs).
  constexpr int64_t kAhead = 2 * kQ4_Kx16Bytes;
  constexpr int kHeadLines = (kQ4_Kx16Bytes - 2048) / 64;  // d, dmin, scales, mins: 5 lines
  for (int64_t b = 0; b < blocks; ++b, w += kQ4_Kx16Bytes) {
    const uint8_t* scales = w + 64;
    const uint8_t* mins = w + 192;
    const uint8_t* qs = w + 320;
    const int64_t col0 = b * kBlockK;
    VI scaled[T];
    for (int t = 0; t < T; ++t) scaled[t] = vi_zero();
    for (int p = 0; p < 4; ++p) {
      VI lo_acc[T], hi_acc[T];
      for (int t = 0; t < T; ++t) lo_acc[t] = hi_acc[t] = vi_zero();
      for (int k = 0; k < 8; ++k) {
        if constexpr (T <= 2) {
          prefetch(w + kAhead + 64 * (p * 8 + k));
          if (p == 0 && k < kHeadLines) prefetch(w + kAhead + 2048 + 64 * k);
        }
        const VI v = vi_load(qs + (p * 8 + k) * 64);
        const VI lo = vi_and(v, nibble);
        const VI hi = vi_and(vi_srl16(v, 4), nibble);
        const int64_t col = col0 + 64 * p + 4 * k;
        for (int t = 0; t < T; ++t) {
          lo_acc[t] = vi_dpbusd_small(lo_acc[t], lo, vi_bcast32(x[t].qs + col));
          hi_acc[t] = vi_dpbusd_small(hi_acc[t], hi, vi_bcast32(x[t].qs + col + 32));
        }
      }
      const VI scale_lo = vi_u8_to_i32(scales + (2 * p) * kPackRows);
      const VI scale_hi = vi_u8_to_i32(scales + (2 * p + 1) * kPackRows);
      for (int t = 0; t < T; ++t) {
        scaled[t] =
            vi_add(scaled[t], vi_add(vi_mullo(lo_acc[t], scale_lo), vi_mullo(hi_acc[t], scale_hi)));
      }
    }
    VI min_acc[T];
    for (int t = 0; t < T; ++t) min_acc[t] = vi_zero();
    for (int i = 0; i < 4; ++i) {
      const VI m = vi_u8_to_i16(mins + i * 32);
      for (int t = 0; t < T; ++t) {
        min_acc[t] = vi_dpwssd(min_acc[t], m, vi_bcast32(x[t].sums32 + b * 8 + 2 * i));
      }
    }
    const VF d = vf_from_half(reinterpret_cast<const uint16_t*>(w));
    const VF dmin = vf_from_half(reinterpret_cast<const uint16_t*>(w + 32));
    for (int t = 0; t < T; ++t) {
      const VF block = vf_fnmadd(dmin, vf_cvt(min_acc[t]), vf_mul(d, vf_cvt(scaled[t])));
      facc[t] = vf_fmadd(block, vf_set1(x[t].d[b]), facc[t]);
    }
  }
  store_rows<T>(facc, y, y_stride, rows);
}

// ---- Q6_K -------------------------------------------------------------------------------------

template <int T>
inline void q6_k_tile(const uint8_t* w, int64_t blocks, const ActQ8K (&x)[T], float* y,
                      int64_t y_stride, int rows) {
  const VI nibble = vi_set1_i8(0x0F);
  const VI top = vi_set1_i8(0x30);
  VF facc[T];
  for (int t = 0; t < T; ++t) facc[t] = vf_zero();
  for (int64_t b = 0; b < blocks; ++b, w += kQ6_Kx16Bytes) {
    if constexpr (T <= 2) prefetch_block<kQ6_Kx16Bytes>(w);
    const auto* scales = reinterpret_cast<const int8_t*>(w + 32);
    const uint8_t* ql = w + 288;
    const uint8_t* qh = w + 288 + 2048;
    const int64_t col0 = b * kBlockK;
    VI sum[T];
    for (int t = 0; t < T; ++t) sum[t] = vi_zero();
    for (int p = 0; p < 4; ++p) {
      // Registers k = 4h..4h+3 hold sub-blocks 4p+h (low nibbles) and 4p+2+h (high).
      for (int h = 0; h < 2; ++h) {
        VI lo_acc[T], hi_acc[T];
        for (int t = 0; t < T; ++t) lo_acc[t] = hi_acc[t] = vi_zero();
        for (int m = 2 * h; m < 2 * h + 2; ++m) {
          const VI plane = vi_load(qh + (p * 4 + m) * 64);
          for (int kk = 0; kk < 2; ++kk) {
            const int k = 2 * m + kk;
            const VI v = vi_load(ql + (p * 8 + k) * 64);
            const VI top_lo = vi_and(kk == 0 ? vi_sll16(plane, 4) : plane, top);
            const VI top_hi = vi_and(kk == 0 ? vi_sll16(plane, 2) : vi_srl16(plane, 2), top);
            const VI lo = vi_and_or(v, top_lo, nibble);
            const VI hi = vi_and_or(vi_srl16(v, 4), top_hi, nibble);
            const int64_t col = col0 + 64 * p + 4 * k;
            for (int t = 0; t < T; ++t) {
              lo_acc[t] = vi_dpbusd_small(lo_acc[t], lo, vi_bcast32(x[t].qs + col));
              hi_acc[t] = vi_dpbusd_small(hi_acc[t], hi, vi_bcast32(x[t].qs + col + 32));
            }
          }
        }
        const int sub_lo = 4 * p + h;
        const int sub_hi = 4 * p + 2 + h;
        const VI scale_lo = vi_i8_to_i32(scales + sub_lo * kPackRows);
        const VI scale_hi = vi_i8_to_i32(scales + sub_hi * kPackRows);
        for (int t = 0; t < T; ++t) {
          const VI lo = vi_sub(lo_acc[t], vi_set1(32 * x[t].bsums[b * 16 + sub_lo]));
          const VI hi = vi_sub(hi_acc[t], vi_set1(32 * x[t].bsums[b * 16 + sub_hi]));
          sum[t] = vi_add(sum[t], vi_add(vi_mullo(lo, scale_lo), vi_mullo(hi, scale_hi)));
        }
      }
    }
    const VF d = vf_from_half(reinterpret_cast<const uint16_t*>(w));
    for (int t = 0; t < T; ++t) {
      facc[t] = vf_fmadd(vf_cvt(sum[t]), vf_mul(d, vf_set1(x[t].d[b])), facc[t]);
    }
  }
  store_rows<T>(facc, y, y_stride, rows);
}

template <bool kQ6, int kMaxTokens>
void compute_k_quant(const MatmulCall& call, int64_t row_begin, int64_t row_end,
                     int64_t token_begin, int64_t token_end) {
  const int64_t blocks = call.cols / kBlockK;
  const int64_t group_bytes = blocks * (kQ6 ? kQ6_Kx16Bytes : kQ4_Kx16Bytes);
  for (int64_t row = row_begin; row < row_end; row += kPackRows) {
    const auto* w = reinterpret_cast<const uint8_t*>(call.packed) + row / kPackRows * group_bytes;
    const int rows = static_cast<int>(row_end - row < kPackRows ? row_end - row : kPackRows);
    for_token_tiles<kMaxTokens>(token_begin, token_end, [&](int64_t t0, auto tile) {
      constexpr int T = decltype(tile)::value;
      ActQ8K x[T];
      for (int t = 0; t < T; ++t) x[t] = act_q8_k(call.act, call.cols, t0 + t);
      float* y = call.y + t0 * call.y_stride + row;
      if constexpr (kQ6) {
        q6_k_tile<T>(w, blocks, x, y, call.y_stride, rows);
      } else {
        q4_k_tile<T>(w, blocks, x, y, call.y_stride, rows);
      }
    });
  }
}

// ---- table rows -------------------------------------------------------------------------------

/// A registry row for a kernel of this unit (evaluated at compile time only).
constexpr MatmulKernel make_kernel(const char* name, DType dtype, Isa isa, PackLayout layout,
                                   int token_block, uint64_t (*act_bytes)(int64_t, int64_t),
                                   void (*prepare)(const MatmulCall&, int64_t, int64_t),
                                   void (*compute)(const MatmulCall&, int64_t, int64_t, int64_t,
                                                   int64_t),
                                   int row_block = kPackRows) {
  return MatmulKernel{name,      dtype,   isa,     layout,  row_block, token_block,
                      act_bytes, prepare, compute, nullptr, nullptr,   nullptr};
}

}  // namespace
}  // namespace polyinfer::inline v0::detail
