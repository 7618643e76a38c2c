// SPDX-License-Identifier: Apache-2.0
// RMSNorm and LayerNorm: one block per row, f32 sums reduced across the block.
#include "kernels/cuda/gemv.cuh"

namespace polyinfer::inline v0::detail::gpu {
namespace {

constexpr int kNormThreads = 1024;  // one row per block: decode rows are latency-bound

// Column c of every loop below is threadIdx.x + i·kNormThreads: a warp holds 32 consecutive
// columns, one 8-bit activation block when cols % 32 == 0 (whole warps enter or skip each
// iteration then), so the quantized copy of y is a warp's shuffle away.
__device__ __forceinline__ void store_output(float value, float* out, int64_t row, int64_t cols,
                                             int64_t c, const QuantizedRows& quantized) {
  out[c] = value;
  if (quantized.qs != nullptr)
    quantize_warp_block(value, quantized, row * cols + (c & ~int64_t{31}));
}

template <bool kLayerNorm>
__global__ void __launch_bounds__(kNormThreads)
    norm_kernel(const float* x, const float* weight, const float* bias, float eps, int64_t cols,
                float* y, QuantizedRows quantized) {
  __shared__ float shared[kWarp];
  pdl_launch_dependents();
  pdl_wait();
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
    store_output((row[c] - mean) * inverse * weight[c] + shift, out, blockIdx.x, cols, c,
                 quantized);
  }
}

// x_out = x + delta and y = rms_norm(x_out) with a row split over gridDim.x blocks: each sums
// the whole row (L2-resident; decode rows are a few KB) and normalizes its `slice` of columns,
// so a row's work is spread over several multiprocessors instead of one block's warps. x_out
// must not alias x: other blocks are still summing x while this one writes its slice.
__global__ void __launch_bounds__(256)
    add_rms_norm_kernel(const float* x, const float* delta, float* x_out, const float* weight,
                        float eps, int64_t cols, int64_t slice, float* y, QuantizedRows quantized) {
  __shared__ float shared[kWarp];
  pdl_begin();
  const int64_t row = blockIdx.y;
  const float* in = x + row * cols;
  const float* add = delta + row * cols;
  // kHeld values per thread are loaded before any is summed: one L2 round trip for a
  // 4096-column row rather than one per value (a plain loop measured no faster than one block).
  constexpr int kHeld = 16;
  float sum_squares = 0.0f;
  for (int64_t base = threadIdx.x; base < cols; base += int64_t{kHeld} * blockDim.x) {
    float values[kHeld];
#pragma unroll
    for (int i = 0; i < kHeld; ++i) {
      const int64_t c = base + int64_t{i} * blockDim.x;
      values[i] = c < cols ? in[c] + add[c] : 0.0f;
    }
#pragma unroll
    for (int i = 0; i < kHeld; ++i) sum_squares = fmaf(values[i], values[i], sum_squares);
  }
  sum_squares = block_sum(sum_squares, shared);
  const float inverse = 1.0f / sqrtf(sum_squares / static_cast<float>(cols) + eps);
  const int64_t begin = int64_t{blockIdx.x} * slice;
  for (int64_t c = begin + threadIdx.x; c < begin + slice; c += blockDim.x) {
    const float value = in[c] + add[c];
    x_out[row * cols + c] = value;
    store_output(value * inverse * weight[c], y + row * cols, row, cols, c, quantized);
  }
}

Status check(const float* x, const float* weight, int64_t rows, int64_t cols, const float* y,
             const void* quantized = nullptr) noexcept {
  if (x == nullptr || weight == nullptr || y == nullptr || rows < 0 || cols < 1) {
    return Status::kInvalidArgument;
  }
  if (quantized != nullptr && cols % 32 != 0) return Status::kInvalidArgument;
  return rows > INT32_MAX ? Status::kUnsupported : Status::kOk;
}

}  // namespace

Status rms_norm(const float* x, const float* weight, float eps, int64_t rows, int64_t cols,
                float* y, Stream stream, void* quantized) noexcept {
  POLYINFER_GPU_TRY(check(x, weight, rows, cols, y, quantized));
  if (rows == 0) return Status::kOk;
  return launch(&norm_kernel<false>, dim3(static_cast<unsigned>(rows)), dim3(kNormThreads), 0,
                stream, true, x, weight, static_cast<const float*>(nullptr), eps, cols, y,
                quantized_rows(quantized, rows, cols));
}

Status add_rms_norm(const float* x, const float* delta, float* x_out, const float* weight,
                    float eps, int64_t rows, int64_t cols, float* y, Stream stream,
                    void* quantized) noexcept {
  POLYINFER_GPU_TRY(check(x, weight, rows, cols, y, quantized));
  if (delta == nullptr || x_out == nullptr || x_out == x) return Status::kInvalidArgument;
  if (rows == 0) return Status::kOk;
  if (rows > 65535) return Status::kUnsupported;
  // Slices of whole 32-column blocks (a warp quantizes one), at least 256 columns each.
  // Enough rows fill the GPU without splitting them (and spare the redundant sums).
  int64_t slices = 1;
  while (rows < 64 && slices < 16 && cols % (64 * slices) == 0 && cols / (2 * slices) >= 256)
    slices *= 2;
  return launch(&add_rms_norm_kernel,
                dim3(static_cast<unsigned>(slices), static_cast<unsigned>(rows)), dim3(256), 0,
                stream, true, x, delta, x_out, weight, eps, cols, cols / slices, y,
                quantized_rows(quantized, rows, cols));
}

Status layer_norm(const float* x, const float* weight, const float* bias, float eps, int64_t rows,
                  int64_t cols, float* y, Stream stream) noexcept {
  POLYINFER_GPU_TRY(check(x, weight, rows, cols, y));
  if (rows == 0) return Status::kOk;
  return launch(&norm_kernel<true>, dim3(static_cast<unsigned>(rows)), dim3(kNormThreads), 0,
                stream, true, x, weight, bias, eps, cols, y, QuantizedRows{});
}

}  // namespace polyinfer::inline v0::detail::gpu
