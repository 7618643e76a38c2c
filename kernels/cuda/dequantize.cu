// SPDX-License-Identifier: Apache-2.0
// The GEMM path's conversions: weight rows dequantized to f16 tiles, activations to f16 / bf16.
#include "kernels/common/block_formats.hpp"
#include "kernels/cuda/dequantize.cuh"

namespace polyinfer::inline v0::detail::gpu {
namespace {

__device__ __forceinline__ void store8(__half* out, const float (&values)[8]) {
  __half2 packed[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) packed[i] = __floats2half2_rn(values[2 * i], values[2 * i + 1]);
  *reinterpret_cast<uint4*>(out) = *reinterpret_cast<const uint4*>(packed);
}

// One thread per 16-byte quant chunk of rows [first_row, first_row + rows); values computed in
// f32 as kernels/ref's dequantizers do, then rounded to f16.
template <int kFormat>  // 0: Q4_0, 1: Q8_0, 2: Q4_K
__global__ void dequantize_f16_kernel(WeightsView w, int64_t first_row, int64_t rows, __half* out) {
  const int64_t total = rows * w.chunks;
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t index = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; index < total;
       index += stride) {
    const int64_t local_row = index / w.chunks;
    const int64_t row = first_row + local_row;
    const int64_t k = index % w.chunks;
    const int64_t offset = kFormat == 2 ? q4_k_chunk_offset(k, w.chunks) : k * 16;
    const uint4 packed = *reinterpret_cast<const uint4*>(w.quants + row * w.row_bytes + offset);
    uint8_t q[16];
    *reinterpret_cast<uint4*>(q) = packed;
    __half* dst = out + local_row * w.cols;
    const uint8_t* scales = w.scales + row * w.scales_row_bytes;
    if constexpr (kFormat == 0) {
      const float d = __half2float(reinterpret_cast<const __half*>(scales)[k]);
      float low[8], high[8];
      for (int part = 0; part < 2; ++part) {
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          low[i] = d * static_cast<float>((q[8 * part + i] & 0xF) - 8);
          high[i] = d * static_cast<float>((q[8 * part + i] >> 4) - 8);
        }
        store8(dst + k * 32 + 8 * part, low);
        store8(dst + k * 32 + 16 + 8 * part, high);
      }
    } else if constexpr (kFormat == 1) {
      const float d = __half2float(reinterpret_cast<const __half*>(scales)[k / 2]);
      float values[8];
      for (int part = 0; part < 2; ++part) {
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          values[i] = d * static_cast<float>(static_cast<int8_t>(q[8 * part + i]));
        }
        store8(dst + k * 16 + 8 * part, values);
      }
    } else {
      const uint4 header = *reinterpret_cast<const uint4*>(scales + (k / 8) * 16);
      const float d = half_bits(header.x, 0);
      const float dmin = half_bits(header.x, 1);
      const int pair = static_cast<int>(k & 7) / 2;
      const int half = static_cast<int>(k & 1);
      int scale0 = 0, min0 = 0, scale1 = 0, min1 = 0;
      q4_k_pair_scale_min(header, pair, &scale0, &min0, &scale1, &min1);
      const float d0 = d * static_cast<float>(scale0), m0 = dmin * static_cast<float>(min0);
      const float d1 = d * static_cast<float>(scale1), m1 = dmin * static_cast<float>(min1);
      __half* base = dst + (k / 8) * 256 + 64 * pair + 16 * half;
      float low[8], high[8];
      for (int part = 0; part < 2; ++part) {
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          low[i] = d0 * static_cast<float>(q[8 * part + i] & 0xF) - m0;
          high[i] = d1 * static_cast<float>(q[8 * part + i] >> 4) - m1;
        }
        store8(base + 8 * part, low);
        store8(base + 32 + 8 * part, high);
      }
    }
  }
}

template <bool kBf16>
__global__ void convert_activations_kernel(const float* x, int64_t tokens, int64_t cols,
                                           int64_t x_stride, void* out) {
  const int64_t total = tokens * cols;
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t index = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; index < total;
       index += stride) {
    const float value = x[(index / cols) * x_stride + index % cols];
    if constexpr (kBf16) {
      static_cast<__nv_bfloat16*>(out)[index] = __float2bfloat16_rn(value);
    } else {
      static_cast<__half*>(out)[index] = __float2half_rn(value);
    }
  }
}

}  // namespace

Status dequantize_rows_f16(const WeightsView& w, DType dtype, int64_t first_row, int64_t rows,
                           void* out, Stream stream) noexcept {
  constexpr int kThreads = 256;
  const dim3 grid(grid_for(rows * w.chunks, kThreads));
  auto* dst = static_cast<__half*>(out);
  switch (dtype) {
    case DType::kQ4_0:
      return launch(&dequantize_f16_kernel<0>, grid, dim3(kThreads), 0, stream, false, w, first_row,
                    rows, dst);
    case DType::kQ8_0:
      return launch(&dequantize_f16_kernel<1>, grid, dim3(kThreads), 0, stream, false, w, first_row,
                    rows, dst);
    case DType::kQ4_K:
      return launch(&dequantize_f16_kernel<2>, grid, dim3(kThreads), 0, stream, false, w, first_row,
                    rows, dst);
    default:
      return Status::kUnsupported;
  }
}

Status convert_activations(const float* x, int64_t tokens, int64_t cols, int64_t x_stride,
                           bool bf16, void* out, Stream stream) noexcept {
  constexpr int kThreads = 256;
  const dim3 grid(grid_for(tokens * cols, kThreads));
  return bf16 ? launch(&convert_activations_kernel<true>, grid, dim3(kThreads), 0, stream, false, x,
                       tokens, cols, x_stride, out)
              : launch(&convert_activations_kernel<false>, grid, dim3(kThreads), 0, stream, false,
                       x, tokens, cols, x_stride, out);
}

}  // namespace polyinfer::inline v0::detail::gpu
