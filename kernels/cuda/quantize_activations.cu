// SPDX-License-Identifier: Apache-2.0
// Activations → 8-bit blocks of 32 for the integer GEMV kernels (ggml's q8_0 rounding, plus Σq).
#include "kernels/common/block_formats.hpp"
#include "kernels/cuda/gemv.cuh"

namespace polyinfer::inline v0::detail::gpu {
namespace {

// Each thread quantizes 4 consecutive values; 8 neighbouring lanes share a block of 32 and
// combine their maxima and sums with shuffles. The loop runs whole warps (lanes past the end
// compute on zeros and store nothing) so that every shuffle has all 32 lanes.
__global__ void quantize_q8_kernel(const float* x, int64_t tokens, int64_t cols, int64_t x_stride,
                                   int8_t* qs, int2* meta) {
  pdl_begin();  // the GEMV may start streaming weights now; x may be the previous kernel's output
  const int64_t quads_per_row = cols / 4;
  const int64_t total = tokens * quads_per_row;
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t index = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; index - lane < total;
       index += stride) {
    const bool valid = index < total;
    const int64_t token = valid ? index / quads_per_row : 0;
    const int64_t quad = valid ? index % quads_per_row : 0;
    float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (valid) {
      const float* src = x + token * x_stride + quad * 4;
#pragma unroll
      for (int i = 0; i < 4; ++i) v[i] = src[i];
    }
    float amax = fmaxf(fmaxf(fabsf(v[0]), fabsf(v[1])), fmaxf(fabsf(v[2]), fabsf(v[3])));
    amax = fmaxf(amax, shfl_xor(amax, 1));
    amax = fmaxf(amax, shfl_xor(amax, 2));
    amax = fmaxf(amax, shfl_xor(amax, 4));
    const float d = amax / 127.0f;
    const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
    uint32_t packed = 0;
    int sum = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int q = static_cast<int>(roundf(v[i] * inverse));
      sum += q;
      packed |= (static_cast<uint32_t>(q) & 0xFFu) << (8 * i);
    }
    sum += shfl_xor(sum, 1);
    sum += shfl_xor(sum, 2);
    sum += shfl_xor(sum, 4);
    if (valid) {
      reinterpret_cast<uint32_t*>(qs + token * cols)[quad] = packed;
      if (quad % 8 == 0) {
        const float stored_d = fp16_to_f32(f32_to_fp16(d));  // the block scale as GGUF keeps it
        meta[token * (cols / 32) + quad / 8] = make_int2(__float_as_int(stored_d), sum);
      }
    }
  }
}

}  // namespace

uint64_t quantized_activation_meta_offset(int64_t tokens, int64_t cols) noexcept {
  return (static_cast<uint64_t>(tokens * cols) + 255) / 256 * 256;
}

uint64_t quantized_activation_bytes(int64_t tokens, int64_t cols) noexcept {
  return quantized_activation_meta_offset(tokens, cols) +
         static_cast<uint64_t>(tokens * (cols / 32)) * sizeof(int2);
}

Status quantize_activations(const float* x, int64_t tokens, int64_t cols, int64_t x_stride,
                            void* scratch, Stream stream) noexcept {
  if (x == nullptr || scratch == nullptr || tokens < 1 || cols % 32 != 0 || x_stride < cols) {
    return Status::kInvalidArgument;
  }
  auto* qs = static_cast<int8_t*>(scratch);
  auto* meta = reinterpret_cast<int2*>(qs + quantized_activation_meta_offset(tokens, cols));
  constexpr int kThreads = 256;
  return launch(&quantize_q8_kernel, dim3(grid_for(tokens * cols / 4, kThreads)), dim3(kThreads), 0,
                stream, true, x, tokens, cols, x_stride, qs, meta);
}

}  // namespace polyinfer::inline v0::detail::gpu
