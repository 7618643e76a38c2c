// SPDX-License-Identifier: Apache-2.0
// Q4_K GEMV: 4-bit super-blocks × 8-bit activation blocks of 32 with dp4a, 1..8 activation rows.
#include "kernels/cuda/gemv_kernel.cuh"

namespace polyinfer::inline v0::detail::gpu {
namespace {

// A super-block of 256 weights is 128 quant bytes plus a 16-byte header (d, dmin and 12 bytes of
// packed 6-bit scales and mins) in the scales plane. Quant bytes 32j..32j+31 hold sub-block 2j
// in their low nibbles and sub-block 2j + 1 in their high ones. A chunk here is those 32 bytes
// (two 16-byte loads from the tiled order of q4_k_chunk_offset; WeightsView::chunks counts
// 16-byte chunks, gemv_q4_k halves it), so both
// of its sub-blocks are whole and line up with activation blocks 2j and 2j + 1:
// Σ (d·sc·q − dmin·m)·dx·qx = dx·(d·sc·Σ q·qx − dmin·m·Σ qx), with one scale decode per 64
// weights (decoding per 16-byte half, as before, measured 74 % of streaming on 128256×4096).
struct FormatQ4_K {
  struct Chunk {
    uint4 q0;  // elements 0..15 of both sub-blocks
    uint4 q1;  // elements 16..31
    uint4 header;
  };
  struct Activation {
    int4 lo0, lo1;  // activation block 2j (for the low nibbles)
    int4 hi0, hi1;  // block 2j + 1 (high nibbles)
    int4 meta;      // {d, Σq} of blocks 2j and 2j + 1
  };

  // Pair k's halves are 16-byte chunks 2k and 2k + 1 at q4_k_chunk_offset (inlined: the
  // lanes of a warp read pairs 32t..32t+31 of tile t, first halves then second halves).
  static constexpr int kQuantBytes = 32;  // per chunk (a pair)
  static constexpr int kScaleBytes = 4;   // a 16-byte header per four pairs
  // dot_chunks(): every shape up to 4 chunks a row in flight (the (1, 8) shapes would spill).
  // With these headers and ptxas's order, 8192×28672 streamed at 69.7 % and batch-8 decode ran
  // 1698 tok/s; with this one 85.4–86.9 % (five H200 calls; ggml's header order before:
  // 79.4 %) and 1971–1975 tok/s (session 20).
  __host__ __device__ static constexpr bool activations_first(int, int, int unroll, int) {
    return unroll <= 4;
  }

  template <bool kShared = false>
  __device__ static Chunk load(const WeightsView& w, int64_t row, int64_t k) {
    const uint8_t* quants = w.quants + row * w.row_bytes;
    const int64_t tile = k / 32;
    const bool tiled = tile < w.chunks / 32;
    const int64_t first = tiled ? tile * 1024 + (k % 32) * 16 : k * 32;
    Chunk chunk;
    chunk.q0 = load_weights16<kShared>(quants + first);
    chunk.q1 = load_weights16<kShared>(quants + first + (tiled ? 512 : 16));
    chunk.header = load_scales<kShared, uint4>(w.scales + row * w.scales_row_bytes + (k / 4) * 16);
    return chunk;
  }

  __device__ static Activation load_x(const ActivationsView& x, int token, int64_t k) {
    const int64_t super_block = k / 4;
    const int pair = static_cast<int>(k & 3);
    const int8_t* qs = x.qs + token * x.cols + super_block * 256 + 64 * pair;
    const int2* meta = x.meta + token * (x.cols / 32) + super_block * 8 + 2 * pair;
    return {load_x16(qs), load_x16(qs + 16), load_x16(qs + 32), load_x16(qs + 48),
            load_activation(reinterpret_cast<const int4*>(meta))};
  }

  // *low += Σ low nibbles of q · lo, *high += Σ high nibbles · hi (16 bytes each).
  __device__ static void nibbles_dot(const uint4& q, const int4& lo, const int4& hi, int* low,
                                     int* high) {
    const uint32_t words[4] = {q.x, q.y, q.z, q.w};
    const int lows[4] = {lo.x, lo.y, lo.z, lo.w};
    const int highs[4] = {hi.x, hi.y, hi.z, hi.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      *low = dot4_i8(static_cast<int>(words[i] & 0x0F0F0F0Fu), lows[i], *low);
      *high = dot4_i8(static_cast<int>((words[i] >> 4) & 0x0F0F0F0Fu), highs[i], *high);
    }
  }

  // The 6-bit scales and mins multiply the integer sums before the one conversion to float per
  // term (|sc·Σ q·qx| ≤ 63·32·15·127 and |m·Σ qx| ≤ 63·32·127, both below 2^22, so
  // small_int_to_float is exact and runs on the full-rate pipes, not the quarter-rate I2F).
  __device__ static float dot(const Chunk& c, const Activation& a, int64_t k) {
    const int pair = static_cast<int>(k & 3);
    int low = 0;
    int high = 0;
    nibbles_dot(c.q0, a.lo0, a.hi0, &low, &high);
    nibbles_dot(c.q1, a.lo1, a.hi1, &low, &high);
    int scale0 = 0;
    int min0 = 0;
    int scale1 = 0;
    int min1 = 0;
    q4_k_pair_scale_min(c.header, pair, &scale0, &min0, &scale1, &min1);
    const float d = half_bits(c.header.x, 0);
    const float dmin = half_bits(c.header.x, 1);
    const float dx0 = __int_as_float(a.meta.x);
    const float dx1 = __int_as_float(a.meta.z);
    return d * (dx0 * small_int_to_float(scale0 * low) + dx1 * small_int_to_float(scale1 * high)) -
           dmin * (dx0 * small_int_to_float(min0 * a.meta.y) +
                   dx1 * small_int_to_float(min1 * a.meta.w));
  }
};

}  // namespace

Status gemv_q4_k(const WeightsView& w, const ActivationsView& x, int tokens, float* y,
                 int64_t y_stride, const GemvConfig& config, Stream stream,
                 bool programmatic) noexcept {
  WeightsView pairs = w;
  pairs.chunks = w.chunks / 2;  // 32-byte chunks (FormatQ4_K)
  return dispatch_gemv<FormatQ4_K>(pairs, x, tokens, y, y_stride, config, stream, programmatic);
}

Status gemv_fold_q4_k(const WeightsView& w, const ActivationsView& x, float* y,
                      const GemvConfig& config, bool consumer, FoldView* fold, int64_t capacity,
                      Stream stream) noexcept {
  WeightsView pairs = w;
  pairs.chunks = w.chunks / 2;  // 32-byte chunks (FormatQ4_K)
  return dispatch_gemv_fold<FormatQ4_K>(pairs, x, y, config, consumer, fold, capacity, stream);
}

}  // namespace polyinfer::inline v0::detail::gpu
