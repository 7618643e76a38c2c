// SPDX-License-Identifier: Apache-2.0
// Element-wise ops: SiLU·mul (gate and up fused in one pass), GELU, residual add.
#include "kernels/cuda/cuda_common.cuh"

namespace polyinfer::inline v0::detail::gpu {
namespace {

constexpr int kThreads = 256;

enum class Op { kSiluMul, kGelu, kAdd };

template <Op kOp>
__global__ void elementwise_kernel(const float* a, const float* b, float* out, int64_t count) {
  pdl_begin();
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < count; i += stride) {
    const float value = a[i];
    if constexpr (kOp == Op::kSiluMul) {
      out[i] = value / (1.0f + expf(-value)) * b[i];
    } else if constexpr (kOp == Op::kGelu) {
      out[i] = 0.5f * value * erfcf(-value * 0.70710678118654752f);
    } else {
      out[i] = value + b[i];
    }
  }
}

template <Op kOp>
Status run(const float* a, const float* b, float* out, int64_t count, Stream stream) noexcept {
  if (a == nullptr || out == nullptr || (kOp != Op::kGelu && b == nullptr) || count < 0) {
    return Status::kInvalidArgument;
  }
  if (count == 0) return Status::kOk;
  return launch(&elementwise_kernel<kOp>, dim3(grid_for(count, kThreads)), dim3(kThreads), 0,
                stream, true, a, b, out, count);
}

}  // namespace

Status silu_mul(const float* gate, const float* up, float* out, int64_t count,
                Stream stream) noexcept {
  return run<Op::kSiluMul>(gate, up, out, count, stream);
}

Status gelu(const float* x, float* out, int64_t count, Stream stream) noexcept {
  return run<Op::kGelu>(x, static_cast<const float*>(nullptr), out, count, stream);
}

Status add(const float* a, const float* b, float* out, int64_t count, Stream stream) noexcept {
  return run<Op::kAdd>(a, b, out, count, stream);
}

}  // namespace polyinfer::inline v0::detail::gpu
