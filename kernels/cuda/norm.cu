// SPDX-License-Identifier: Apache-2.0
// RMSNorm and LayerNorm: one block per row, f32 sums reduced across the block.
#include "kernels/cuda/cuda_common.cuh"

namespace polyinfer::inline v0::detail::gpu {
namespace {

constexpr int kNormThreads = 1024;  // one row per block: decode rows are latency-bound

template <bool kLayerNorm>
__global__ void __launch_bounds__(kNormThreads)
    norm_kernel(const float* x, const float* weight, const float* bias, float eps, int64_t cols,
                float* y) {
  __shared__ float shared[kWarp];
  const float* row = x + int64_t{blockIdx.x} * cols;
  float* out = y + int64_t{blockIdx.x} * cols;
  float mean = 0.0f;
  if constexpr (kLayerNorm) {
    float sum = 0.0f;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += row[c];
    mean = block_sum(sum, shared) / static_cast<float>(cols);
  }
  float sum_squares = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float centred = row[c] - mean;
    sum_squares = fmaf(centred, centred, sum_squares);
  }
  sum_squares = block_sum(sum_squares, shared);
  const float inverse = 1.0f / sqrtf(sum_squares / static_cast<float>(cols) + eps);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float shift = (kLayerNorm && bias != nullptr) ? bias[c] : 0.0f;
    out[c] = (row[c] - mean) * inverse * weight[c] + shift;
  }
}

// x += delta, then y = rms_norm(x): the residual connection and the next norm in one pass, with
// the same f32 operations as add() followed by rms_norm().
__global__ void __launch_bounds__(kNormThreads)
    add_rms_norm_kernel(float* x, const float* delta, const float* weight, float eps, int64_t cols,
                        float* y) {
  __shared__ float shared[kWarp];
  float* row = x + int64_t{blockIdx.x} * cols;
  const float* add = delta + int64_t{blockIdx.x} * cols;
  float* out = y + int64_t{blockIdx.x} * cols;
  float sum_squares = 0.0f;
  // Rows of up to 4096 values stay in registers between the two passes (one load each).
  constexpr int kHeld = 4;
  float held[kHeld];
#pragma unroll
  for (int i = 0; i < kHeld; ++i) {
    const int64_t c = threadIdx.x + int64_t{i} * blockDim.x;
    held[i] = c < cols ? row[c] + add[c] : 0.0f;
  }
#pragma unroll
  for (int i = 0; i < kHeld; ++i) {
    const int64_t c = threadIdx.x + int64_t{i} * blockDim.x;
    if (c < cols) {
      row[c] = held[i];
      sum_squares = fmaf(held[i], held[i], sum_squares);
    }
  }
  for (int64_t c = threadIdx.x + int64_t{kHeld} * blockDim.x; c < cols; c += blockDim.x) {
    const float value = row[c] + add[c];
    row[c] = value;
    sum_squares = fmaf(value, value, sum_squares);
  }
  sum_squares = block_sum(sum_squares, shared);
  const float inverse = 1.0f / sqrtf(sum_squares / static_cast<float>(cols) + eps);
#pragma unroll
  for (int i = 0; i < kHeld; ++i) {
    const int64_t c = threadIdx.x + int64_t{i} * blockDim.x;
    if (c < cols) out[c] = held[i] * inverse * weight[c];
  }
  for (int64_t c = threadIdx.x + int64_t{kHeld} * blockDim.x; c < cols; c += blockDim.x) {
    out[c] = row[c] * inverse * weight[c];
  }
}

Status check(const float* x, const float* weight, int64_t rows, int64_t cols,
             const float* y) noexcept {
  if (x == nullptr || weight == nullptr || y == nullptr || rows < 0 || cols < 1) {
    return Status::kInvalidArgument;
  }
  return rows > INT32_MAX ? Status::kUnsupported : Status::kOk;
}

}  // namespace

Status rms_norm(const float* x, const float* weight, float eps, int64_t rows, int64_t cols,
                float* y, Stream stream) noexcept {
  POLYINFER_GPU_TRY(check(x, weight, rows, cols, y));
  if (rows == 0) return Status::kOk;
  return launch(&norm_kernel<false>, dim3(static_cast<unsigned>(rows)), dim3(kNormThreads), 0,
                stream, false, x, weight, static_cast<const float*>(nullptr), eps, cols, y);
}

Status add_rms_norm(float* x, const float* delta, const float* weight, float eps, int64_t rows,
                    int64_t cols, float* y, Stream stream) noexcept {
  POLYINFER_GPU_TRY(check(x, weight, rows, cols, y));
  if (delta == nullptr) return Status::kInvalidArgument;
  if (rows == 0) return Status::kOk;
  return launch(&add_rms_norm_kernel, dim3(static_cast<unsigned>(rows)), dim3(kNormThreads), 0,
                stream, false, x, delta, weight, eps, cols, y);
}

Status layer_norm(const float* x, const float* weight, const float* bias, float eps, int64_t rows,
                  int64_t cols, float* y, Stream stream) noexcept {
  POLYINFER_GPU_TRY(check(x, weight, rows, cols, y));
  if (rows == 0) return Status::kOk;
  return launch(&norm_kernel<true>, dim3(static_cast<unsigned>(rows)), dim3(kNormThreads), 0,
                stream, false, x, weight, bias, eps, cols, y);
}

}  // namespace polyinfer::inline v0::detail::gpu
