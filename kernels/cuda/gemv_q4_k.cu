// SPDX-License-Identifier: Apache-2.0
// Q4_K GEMV: 4-bit super-blocks × 8-bit activation blocks of 32 with dp4a, 1..8 activation rows.
#include "kernels/cuda/gemv_kernel.cuh"

namespace polyinfer::inline v0::detail::gpu {
namespace {

// A super-block of 256 weights is 8 chunks of 16 quant bytes plus a 16-byte header (d, dmin and
// 12 bytes of packed 6-bit scales and mins) in the scales plane. Quant bytes 32j..32j+31 hold
// sub-block 2j in their low nibbles and sub-block 2j + 1 in their high ones, so chunk c = 2j + h
// covers elements 16h..16h+15 of both. Each sub-block of 32 lines up with one activation block:
// Σ (d·sc·q − dmin·m)·dx·qx = dx·(d·sc·Σ q·qx − dmin·m·Σ qx); the lane with h = 0 adds the
// whole block's min term.
struct FormatQ4_K {
  struct Chunk {
    uint4 q;
    uint4 header;
  };
  struct Activation {
    int4 lo;    // activation quants for the low nibbles
    int4 hi;    // … for the high nibbles
    int4 meta;  // {d, Σq} of activation blocks 2j and 2j + 1 of the super-block
  };

  __device__ static Chunk load(const WeightsView& w, int64_t row, int64_t k) {
    Chunk chunk;
    chunk.q = load_stream(w.quants + row * w.row_bytes + k * 16);
    chunk.header =
        __ldg(reinterpret_cast<const uint4*>(w.scales + row * w.scales_row_bytes + (k / 8) * 16));
    return chunk;
  }

  __device__ static Activation load_x(const ActivationsView& x, int token, int64_t k) {
    const int64_t super_block = k / 8;
    const int pair = static_cast<int>(k & 7) / 2;
    const int half = static_cast<int>(k & 1);
    const int8_t* qs = x.qs + token * x.cols + super_block * 256 + 64 * pair + 16 * half;
    const int2* meta = x.meta + token * (x.cols / 32) + super_block * 8 + 2 * pair;
    return {load_x16(qs), load_x16(qs + 32), load_activation(reinterpret_cast<const int4*>(meta))};
  }

  // Scale and min of sub-block s = 2·pair + which, as get_scale_min_k4, from the header words.
  __device__ static void scale_min(const uint4& header, int pair, int which, float* scale,
                                   float* min) {
    const int sub_block = 2 * pair + which;
    const int shift = 8 * (sub_block & 3);
    const uint32_t low = (header.y >> shift) & 0xFFu;   // scales[s & 3]
    const uint32_t mid = (header.z >> shift) & 0xFFu;   // scales[4 + (s & 3)]
    const uint32_t high = (header.w >> shift) & 0xFFu;  // scales[8 + (s & 3)]
    const bool first_half = sub_block < 4;
    *scale = static_cast<float>(first_half ? (low & 63u) : ((high & 0xFu) | ((low >> 6) << 4)));
    *min = static_cast<float>(first_half ? (mid & 63u) : ((high >> 4) | ((mid >> 6) << 4)));
  }

  __device__ static float dot(const Chunk& c, const Activation& a, int64_t k) {
    const int pair = static_cast<int>(k & 7) / 2;
    int low = 0;
    int high = 0;
    low = dot4_i8(static_cast<int>(c.q.x & 0x0F0F0F0Fu), a.lo.x, low);
    high = dot4_i8(static_cast<int>((c.q.x >> 4) & 0x0F0F0F0Fu), a.hi.x, high);
    low = dot4_i8(static_cast<int>(c.q.y & 0x0F0F0F0Fu), a.lo.y, low);
    high = dot4_i8(static_cast<int>((c.q.y >> 4) & 0x0F0F0F0Fu), a.hi.y, high);
    low = dot4_i8(static_cast<int>(c.q.z & 0x0F0F0F0Fu), a.lo.z, low);
    high = dot4_i8(static_cast<int>((c.q.z >> 4) & 0x0F0F0F0Fu), a.hi.z, high);
    low = dot4_i8(static_cast<int>(c.q.w & 0x0F0F0F0Fu), a.lo.w, low);
    high = dot4_i8(static_cast<int>((c.q.w >> 4) & 0x0F0F0F0Fu), a.hi.w, high);
    float scale0 = 0.0f;
    float min0 = 0.0f;
    float scale1 = 0.0f;
    float min1 = 0.0f;
    scale_min(c.header, pair, 0, &scale0, &min0);
    scale_min(c.header, pair, 1, &scale1, &min1);
    const float d = __half2float(__ushort_as_half(static_cast<unsigned short>(c.header.x)));
    const float dmin =
        __half2float(__ushort_as_half(static_cast<unsigned short>(c.header.x >> 16)));
    const float dx0 = __int_as_float(a.meta.x);
    const float dx1 = __int_as_float(a.meta.z);
    float result =
        d * (scale0 * dx0 * static_cast<float>(low) + scale1 * dx1 * static_cast<float>(high));
    if ((k & 1) == 0) {
      result -= dmin * (min0 * dx0 * static_cast<float>(a.meta.y) +
                        min1 * dx1 * static_cast<float>(a.meta.w));
    }
    return result;
  }
};

}  // namespace

Status gemv_q4_k(const WeightsView& w, const ActivationsView& x, int tokens, float* y,
                 int64_t y_stride, const GemvConfig& config, Stream stream,
                 bool programmatic) noexcept {
  return dispatch_gemv<FormatQ4_K>(w, x, tokens, y, y_stride, config, stream, programmatic);
}

}  // namespace polyinfer::inline v0::detail::gpu
