// SPDX-License-Identifier: Apache-2.0
// Q8_0 GEMV: 8-bit weights × 8-bit activation blocks with dp4a, 1..8 activation rows.
#include "kernels/cuda/gemv_kernel.cuh"

namespace polyinfer::inline v0::detail::gpu {
namespace {

// Chunk k of a row is half of block k / 2 (16 quants); both halves use the block's scale, so
// each lane adds d·dx·Σ q·qx over its 16 quants.
struct FormatQ8_0 {
  struct Chunk {
    uint4 q;
    __half d;
  };
  struct Activation {
    int4 q;
    float d;
  };

  static constexpr int kQuantBytes = 16;  // per chunk
  static constexpr int kScaleBytes = 1;   // a 2-byte scale per two chunks
  // dot_chunks(): the order ptxas picks (not measured otherwise).
  __host__ __device__ static constexpr bool activations_first(int, int, int, int) { return false; }

  template <bool kShared = false>
  __device__ static Chunk load(const WeightsView& w, int64_t row, int64_t k) {
    Chunk chunk;
    chunk.q = load_weights16<kShared>(w.quants + row * w.row_bytes + k * 16);
    if constexpr (kShared) {
      chunk.d = load_scales<true, __half>(w.scales + row * w.scales_row_bytes + k / 2 * 2);
    } else {
      // Indexed as a __half array: the byte-offset form of the line above compiled the 2..8-token
      // kernels differently and slower (14336×4096 at 8 tokens 38.1 against 24.2 µs, H200).
      chunk.d = __ldg(reinterpret_cast<const __half*>(w.scales + row * w.scales_row_bytes) + k / 2);
    }
    return chunk;
  }

  __device__ static Activation load_x(const ActivationsView& x, int token, int64_t k) {
    const int8_t* qs = x.qs + token * x.cols + k * 16;
    const int* meta = reinterpret_cast<const int*>(x.meta + token * (x.cols / 32) + k / 2);
    return {load_x16(qs), __int_as_float(load_activation(meta))};
  }

  __device__ static float dot(const Chunk& c, const Activation& a, int64_t /*k*/) {
    int sum = dot4_i8(static_cast<int>(c.q.x), a.q.x, 0);
    sum = dot4_i8(static_cast<int>(c.q.y), a.q.y, sum);
    sum = dot4_i8(static_cast<int>(c.q.z), a.q.z, sum);
    sum = dot4_i8(static_cast<int>(c.q.w), a.q.w, sum);
    return __half2float(c.d) * a.d * small_int_to_float(sum);  // |sum| ≤ 16·127·127 < 2^22
  }
};

}  // namespace

Status gemv_q8_0(const WeightsView& w, const ActivationsView& x, int tokens, float* y,
                 int64_t y_stride, const GemvConfig& config, Stream stream,
                 bool programmatic) noexcept {
  return dispatch_gemv<FormatQ8_0>(w, x, tokens, y, y_stride, config, stream, programmatic);
}

Status gemv_fold_q8_0(const WeightsView& w, const ActivationsView& x, float* y,
                      const GemvConfig& config, bool consumer, FoldView* fold, int64_t capacity,
                      Stream stream) noexcept {
  return dispatch_gemv_fold<FormatQ8_0>(w, x, y, config, consumer, fold, capacity, stream);
}

}  // namespace polyinfer::inline v0::detail::gpu
