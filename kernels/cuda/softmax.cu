// SPDX-License-Identifier: Apache-2.0
// Row softmax in place: one block per row, max and sum reduced across the block.
#include "kernels/cuda/cuda_common.cuh"

namespace polyinfer::inline v0::detail::gpu {
namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads) softmax_kernel(float* x, int64_t cols) {
  __shared__ float shared[kWarp];
  pdl_begin();
  float* row = x + int64_t{blockIdx.x} * cols;
  float max_value = -INFINITY;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) max_value = fmaxf(max_value, row[c]);
  max_value = block_max(max_value, shared);
  float sum = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += expf(row[c] - max_value);
  sum = block_sum(sum, shared);
  const float inverse = 1.0f / sum;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    row[c] = expf(row[c] - max_value) * inverse;
  }
}

}  // namespace

Status softmax(float* x, int64_t rows, int64_t cols, Stream stream) noexcept {
  if (x == nullptr || rows < 0 || cols < 1) return Status::kInvalidArgument;
  if (rows > INT32_MAX) return Status::kUnsupported;
  if (rows == 0) return Status::kOk;
  return launch(&softmax_kernel, dim3(static_cast<unsigned>(rows)), dim3(kThreads), 0, stream, true,
                x, cols);
}

}  // namespace polyinfer::inline v0::detail::gpu
