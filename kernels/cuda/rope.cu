// SPDX-License-Identifier: Apache-2.0
// RoPE in place, interleaved pairs or rotate-half, angles and rotations in double.
#include "kernels/cuda/cuda_common.cuh"

namespace polyinfer::inline v0::detail::gpu {
namespace {

// One thread per rotated pair. Double precision as kernels/ref: at position 100k a float angle
// is off by ~0.01 rad; RoPE touches few bytes, so the FP64 units cost nothing visible.
__global__ void rope_kernel(float* x, int64_t tokens, int64_t heads, int64_t head_dim,
                            int64_t row_stride, const int32_t* positions, const float* inv_freq,
                            bool interleaved) {
  pdl_begin();
  const int64_t half = head_dim / 2;
  const int64_t total = tokens * heads * half;
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t index = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; index < total;
       index += stride) {
    const int64_t i = index % half;
    const int64_t head = (index / half) % heads;
    const int64_t token = index / (half * heads);
    float* values = x + token * row_stride + head * head_dim;
    const double angle = static_cast<double>(positions[token]) * static_cast<double>(inv_freq[i]);
    double sin_angle = 0.0;
    double cos_angle = 0.0;
    sincos(angle, &sin_angle, &cos_angle);
    const int64_t first = interleaved ? 2 * i : i;
    const int64_t second = interleaved ? 2 * i + 1 : i + half;
    const double a = values[first];
    const double b = values[second];
    values[first] = static_cast<float>(a * cos_angle - b * sin_angle);
    values[second] = static_cast<float>(a * sin_angle + b * cos_angle);
  }
}

}  // namespace

Status rope(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t row_stride,
            const int32_t* positions, const float* inv_freq, RopeLayout layout,
            Stream stream) noexcept {
  if (x == nullptr || positions == nullptr || inv_freq == nullptr || tokens < 0 || heads < 0 ||
      head_dim < 2 || head_dim % 2 != 0 || row_stride < heads * head_dim) {
    return Status::kInvalidArgument;
  }
  const int64_t total = tokens * heads * (head_dim / 2);
  if (total == 0) return Status::kOk;
  constexpr int kThreads = 256;
  return launch(&rope_kernel, dim3(grid_for(total, kThreads)), dim3(kThreads), 0, stream, true, x,
                tokens, heads, head_dim, row_stride, positions, inv_freq,
                layout == RopeLayout::kInterleaved);
}

}  // namespace polyinfer::inline v0::detail::gpu
