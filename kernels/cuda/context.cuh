// SPDX-License-Identifier: Apache-2.0
// Context::Impl: the cuBLAS handle and the growable scratch buffers of one stream.
#pragma once

#include <cstdint>

#include "kernels/cuda/cuda_common.cuh"

namespace polyinfer::inline v0::detail::gpu {

struct Context::Impl {
  Stream stream;
  int device = 0;
  int multiprocessors = 1;
#if POLYINFER_GPU_BLAS
  cublasHandle_t blas = nullptr;
#endif
  DeviceBuffer blas_workspace;
  DeviceBuffer activations;  ///< quantized activation blocks, or f16 / bf16 copies of x
  DeviceBuffer weight_tile;  ///< dequantized f16 weight rows for the GEMM path
  DeviceBuffer partials;     ///< split-K attention states
  DeviceBuffer arrivals;     ///< split-K attention: splits finished per (token, head group)
  uint64_t generation = 0;   ///< reallocations of the buffers above

  Impl() = default;
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  /// Makes `buffer` hold at least `bytes` (grows by reallocation; never shrinks). Waits for the
  /// stream first, since queued kernels may still use the old memory.
  [[nodiscard]] Status reserve(DeviceBuffer& buffer, uint64_t bytes) noexcept;
};

}  // namespace polyinfer::inline v0::detail::gpu
