// SPDX-License-Identifier: Apache-2.0
// Row operations of the model forward pass: embedding lookup from GGUF blocks, row gathers,
// bias rows and the side-by-side SiLU·mul of a fused gate/up projection.
#include "kernels/cuda/gemv.cuh"

namespace polyinfer::inline v0::detail::gpu {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float half_at(const uint8_t* p) {
  __half h;
  memcpy(&h, p, 2);
  return __half2float(h);
}

// One block per token: the row's values, dequantized as kernels/ref does.
__global__ void embed_kernel(int dtype, const uint8_t* table, int64_t cols, uint64_t row_bytes,
                             const int32_t* ids, float* out) {
  pdl_begin();
  const int64_t token = blockIdx.x;
  const uint8_t* row = table + static_cast<uint64_t>(ids[token]) * row_bytes;
  float* y = out + token * cols;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    float value = 0.0f;
    switch (dtype) {
      case static_cast<int>(DType::kF32):
        memcpy(&value, row + c * 4, 4);
        break;
      case static_cast<int>(DType::kF16):
        value = half_at(row + c * 2);
        break;
      case static_cast<int>(DType::kBF16): {
        uint16_t bits;
        memcpy(&bits, row + c * 2, 2);
        const uint32_t wide = uint32_t{bits} << 16;
        memcpy(&value, &wide, 4);
        break;
      }
      case static_cast<int>(DType::kQ8_0): {
        const uint8_t* block = row + (c / 32) * 34;
        value = half_at(block) * static_cast<float>(static_cast<int8_t>(block[2 + c % 32]));
        break;
      }
      case static_cast<int>(DType::kQ4_0): {
        const uint8_t* block = row + (c / 32) * 18;
        const int i = static_cast<int>(c % 32);
        const uint8_t byte = block[2 + i % 16];
        const int q = i < 16 ? (byte & 0xF) : (byte >> 4);
        value = half_at(block) * static_cast<float>(q - 8);
        break;
      }
      default:
        break;
    }
    y[c] = value;
  }
}

__global__ void gather_kernel(const float* src, const int32_t* rows, int64_t cols, float* dst) {
  pdl_begin();
  const float* from = src + int64_t{rows[blockIdx.x]} * cols;
  float* to = dst + int64_t{blockIdx.x} * cols;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) to[c] = from[c];
}

__global__ void bias_kernel(float* y, const float* bias, int64_t rows, int64_t cols) {
  pdl_begin();
  const int64_t total = rows * cols;
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < total; i += stride) {
    y[i] += bias[i % cols];
  }
}

// With `quantized` (width % 32 == 0): blocks of kThreads and whole-warp trip counts, so each
// warp holds one activation block per iteration.
__global__ void silu_mul_rows_kernel(const float* gate_up, int64_t tokens, int64_t width,
                                     float* out, QuantizedRows quantized) {
  pdl_begin();
  const int64_t total = tokens * width;
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t t = i / width;
    const int64_t c = i % width;
    const float gate = gate_up[t * 2 * width + c];
    const float value = gate / (1.0f + expf(-gate)) * gate_up[t * 2 * width + width + c];
    out[i] = value;
    if (quantized.qs != nullptr) quantize_warp_block(value, quantized, i & ~int64_t{31});
  }
}

}  // namespace

bool embed_supports(DType dtype) noexcept {
  return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16 ||
         dtype == DType::kQ8_0 || dtype == DType::kQ4_0;
}

Status embed_rows(DType dtype, const void* table, int64_t cols, const int32_t* ids, int64_t tokens,
                  float* out, Stream stream) noexcept {
  if (!embed_supports(dtype)) return Status::kUnsupported;
  if (table == nullptr || ids == nullptr || out == nullptr || cols < 1 || tokens < 0 ||
      tokens > INT32_MAX) {
    return Status::kInvalidArgument;
  }
  if ((dtype == DType::kQ8_0 || dtype == DType::kQ4_0) && cols % 32 != 0) {
    return Status::kUnsupported;
  }
  if (tokens == 0) return Status::kOk;
  uint64_t row_bytes = 0;
  switch (dtype) {
    case DType::kF32:
      row_bytes = static_cast<uint64_t>(cols) * 4;
      break;
    case DType::kF16:
    case DType::kBF16:
      row_bytes = static_cast<uint64_t>(cols) * 2;
      break;
    case DType::kQ8_0:
      row_bytes = static_cast<uint64_t>(cols / 32) * 34;
      break;
    default:
      row_bytes = static_cast<uint64_t>(cols / 32) * 18;
      break;
  }
  return launch(&embed_kernel, dim3(static_cast<unsigned>(tokens)), dim3(kThreads), 0, stream, true,
                static_cast<int>(dtype), static_cast<const uint8_t*>(table), cols, row_bytes, ids,
                out);
}

Status gather_rows(const float* src, const int32_t* rows, int64_t count, int64_t cols, float* dst,
                   Stream stream) noexcept {
  if (src == nullptr || rows == nullptr || dst == nullptr || count < 0 || cols < 1 ||
      count > INT32_MAX) {
    return Status::kInvalidArgument;
  }
  if (count == 0) return Status::kOk;
  return launch(&gather_kernel, dim3(static_cast<unsigned>(count)), dim3(kThreads), 0, stream, true,
                src, rows, cols, dst);
}

Status add_bias(float* y, const float* bias, int64_t rows, int64_t cols, Stream stream) noexcept {
  if (y == nullptr || bias == nullptr || rows < 0 || cols < 1) return Status::kInvalidArgument;
  if (rows == 0) return Status::kOk;
  return launch(&bias_kernel, dim3(grid_for(rows * cols, kThreads)), dim3(kThreads), 0, stream,
                true, y, bias, rows, cols);
}

Status silu_mul_rows(const float* gate_up, int64_t tokens, int64_t width, float* out, Stream stream,
                     void* quantized) noexcept {
  if (gate_up == nullptr || out == nullptr || tokens < 0 || width < 1 ||
      (quantized != nullptr && width % 32 != 0)) {
    return Status::kInvalidArgument;
  }
  if (tokens == 0) return Status::kOk;
  return launch(&silu_mul_rows_kernel, dim3(grid_for(tokens * width, kThreads)), dim3(kThreads), 0,
                stream, true, gate_up, tokens, width, out,
                quantized_rows(quantized, tokens, width));
}

}  // namespace polyinfer::inline v0::detail::gpu
