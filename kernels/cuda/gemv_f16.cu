// SPDX-License-Identifier: Apache-2.0
// F16 and BF16 GEMV: half-precision weights × f32 activations in f32 arithmetic, 1..8 rows.
#include "kernels/cuda/gemv_kernel.cuh"

namespace polyinfer::inline v0::detail::gpu {
namespace {

// Two packed 16-bit values → two floats.
template <bool kBf16>
__device__ __forceinline__ float2 unpack2(uint32_t packed) {
  if constexpr (kBf16) {
    return make_float2(__uint_as_float(packed << 16), __uint_as_float(packed & 0xFFFF0000u));
  } else {
    return make_float2(__half2float(__ushort_as_half(static_cast<unsigned short>(packed))),
                       __half2float(__ushort_as_half(static_cast<unsigned short>(packed >> 16))));
  }
}

template <bool kBf16>
__device__ __forceinline__ float unpack1(uint16_t value) {
  if constexpr (kBf16) {
    return __uint_as_float(static_cast<uint32_t>(value) << 16);
  } else {
    return __half2float(__ushort_as_half(value));
  }
}

// Chunk k of a row is weights 8k..8k+7; the activations are the matching 8 floats of x.
template <bool kBf16>
struct FormatHalf {
  using Chunk = uint4;
  struct Activation {
    float4 lo;
    float4 hi;
  };

  static constexpr int kQuantBytes = 16;  // per chunk
  static constexpr int kScaleBytes = 0;
  // dot_chunks(): the order ptxas picks (not measured otherwise).
  __host__ __device__ static constexpr bool activations_first(int, int, int, int) { return false; }

  template <bool kShared = false>
  __device__ static Chunk load(const WeightsView& w, int64_t row, int64_t k) {
    return load_weights16<kShared>(w.quants + row * w.row_bytes + k * 16);
  }

  __device__ static Activation load_x(const ActivationsView& x, int token, int64_t k) {
    const float4* p = reinterpret_cast<const float4*>(x.x + token * x.x_stride + k * 8);
    return {load_activation(p), load_activation(p + 1)};
  }

  __device__ static float dot(const Chunk& c, const Activation& a, int64_t /*k*/) {
    const float2 w0 = unpack2<kBf16>(c.x);
    const float2 w1 = unpack2<kBf16>(c.y);
    const float2 w2 = unpack2<kBf16>(c.z);
    const float2 w3 = unpack2<kBf16>(c.w);
    float sum = w0.x * a.lo.x;
    sum = fmaf(w0.y, a.lo.y, sum);
    sum = fmaf(w1.x, a.lo.z, sum);
    sum = fmaf(w1.y, a.lo.w, sum);
    sum = fmaf(w2.x, a.hi.x, sum);
    sum = fmaf(w2.y, a.hi.y, sum);
    sum = fmaf(w3.x, a.hi.z, sum);
    return fmaf(w3.y, a.hi.w, sum);
  }
};

// Any cols and alignment: a warp per row, one 16-bit load per lane and step.
template <bool kBf16>
__global__ void __launch_bounds__(kGemvMaxWarps* kWarp)
    gemv_half_scalar_kernel(WeightsView w, ActivationsView x, int tokens, float* y,
                            int64_t y_stride) {
  constexpr int kMaxTokens = static_cast<int>(kGemvMaxTokens);
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int64_t row = int64_t{blockIdx.x} * (blockDim.x / kWarp) + threadIdx.x / kWarp;
  if (row >= w.rows) return;
  const uint16_t* weights = reinterpret_cast<const uint16_t*>(w.quants + row * w.row_bytes);
  float acc[kMaxTokens];
#pragma unroll
  for (int t = 0; t < kMaxTokens; ++t) acc[t] = 0.0f;
  for (int64_t c = lane; c < w.cols; c += kWarp) {
    const float value = unpack1<kBf16>(weights[c]);
#pragma unroll
    for (int t = 0; t < kMaxTokens; ++t) {
      if (t < tokens) acc[t] = fmaf(value, x.x[t * x.x_stride + c], acc[t]);
    }
  }
#pragma unroll
  for (int t = 0; t < kMaxTokens; ++t) {
    const float sum = warp_sum(acc[t]);
    if (lane == 0 && t < tokens) y[t * y_stride + row] = sum;
  }
}

}  // namespace

Status gemv_half(const WeightsView& w, const ActivationsView& x, bool bf16, int tokens, float* y,
                 int64_t y_stride, const GemvConfig& config, Stream stream) noexcept {
  const bool vector_path = w.cols % 8 == 0 && reinterpret_cast<uintptr_t>(x.x) % 16 == 0 &&
                           (tokens == 1 || x.x_stride % 4 == 0);
  if (vector_path) {
    return bf16 ? dispatch_gemv<FormatHalf<true>>(w, x, tokens, y, y_stride, config, stream, true)
                : dispatch_gemv<FormatHalf<false>>(w, x, tokens, y, y_stride, config, stream, true);
  }
  if (tokens < 1 || tokens > kGemvMaxTokens) return Status::kUnsupported;
  const auto kernel = bf16 ? &gemv_half_scalar_kernel<true> : &gemv_half_scalar_kernel<false>;
  const int64_t blocks = ceil_div(w.rows, kGemvMaxWarps);
  return launch(kernel, dim3(static_cast<unsigned>(blocks)), dim3(kGemvMaxWarps * kWarp), 0, stream,
                false, w, x, tokens, y, y_stride);
}

}  // namespace polyinfer::inline v0::detail::gpu
