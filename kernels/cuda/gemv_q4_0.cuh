// SPDX-License-Identifier: Apache-2.0
// The Q4_0 weight format as the GEMV kernels read it (gemv_q4_0.cu launches it; benchmarks vary
// its loads).
#pragma once

#include "kernels/cuda/gemv_kernel.cuh"

namespace polyinfer::inline v0::detail::gpu {

// Chunk k of a row is block k: its 16 quant bytes (byte j holds element j in the low nibble and
// element j + 16 in the high one) and its fp16 scale. Σ d·(q − 8)·dx·qx over the block is
// d·dx·(Σ q·qx − 8·Σ qx), with Σ qx stored with the activation block.
struct FormatQ4_0 {
  struct Chunk {
    uint4 q;
    __half d;
  };
  struct Activation {
    int4 lo;  // quants 0..15
    int4 hi;  // quants 16..31
    int2 meta;
  };

  static constexpr int kQuantBytes = 16;  // per chunk
  static constexpr int kScaleBytes = 2;
  // dot_chunks(): only the single-token (2, 2) unsplit shape, the default past 14336 columns
  // (8192×28672: 86.1–87.0 % of streaming in five H200 calls against 83.7–84.9 %, session 20);
  // on the others the extra registers cost blocks (the (2, 4) shape: 80 → 120 registers).
  __host__ __device__ static constexpr bool activations_first(int tokens, int rows, int unroll,
                                                              int splits) {
    return tokens == 1 && rows == 2 && unroll == 2 && splits == 1;
  }

  template <bool kShared = false>
  __device__ static Chunk load(const WeightsView& w, int64_t row, int64_t k) {
    Chunk chunk;
    chunk.q = load_weights16<kShared>(w.quants + row * w.row_bytes + k * 16);
    chunk.d = load_scales<kShared, __half>(w.scales + row * w.scales_row_bytes + k * 2);
    return chunk;
  }

  __device__ static Activation load_x(const ActivationsView& x, int token, int64_t k) {
    const int8_t* qs = x.qs + token * x.cols + k * 32;
    return {load_x16(qs), load_x16(qs + 16), load_activation(x.meta + token * (x.cols / 32) + k)};
  }

  __device__ static int nibbles_dot(uint32_t q, int lo, int hi, int sum) {
    sum = dot4_i8(static_cast<int>(q & 0x0F0F0F0Fu), lo, sum);
    return dot4_i8(static_cast<int>((q >> 4) & 0x0F0F0F0Fu), hi, sum);
  }

  __device__ static float dot(const Chunk& c, const Activation& a, int64_t /*k*/) {
    int sum = nibbles_dot(c.q.x, a.lo.x, a.hi.x, 0);
    sum = nibbles_dot(c.q.y, a.lo.y, a.hi.y, sum);
    sum = nibbles_dot(c.q.z, a.lo.z, a.hi.z, sum);
    sum = nibbles_dot(c.q.w, a.lo.w, a.hi.w, sum);
    return __half2float(c.d) * __int_as_float(a.meta.x) * static_cast<float>(sum - 8 * a.meta.y);
  }
};

}  // namespace polyinfer::inline v0::detail::gpu
