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
  int compute_major = 0;  ///< compute capability (CUDA); 0 on HIP
#if POLYINFER_GPU_BLAS
  cublasHandle_t blas = nullptr;
#endif
  DeviceBuffer blas_workspace;
  DeviceBuffer activations;    ///< quantized activation blocks, or f16 / bf16 copies of x
  DeviceBuffer weight_tile;    ///< dequantized f16 weight rows for the GEMM path
  DeviceBuffer partials;       ///< split-K attention states
  DeviceBuffer arrivals;       ///< split-K attention: splits finished per (token, head group)
  DeviceBuffer gemm_partials;  ///< split-K integer GEMM: partial sums per split
  DeviceBuffer gemm_arrivals;  ///< split-K integer GEMM: splits finished per output tile
  uint64_t generation = 0;     ///< reallocations of the buffers above

  Impl() = default;
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  /// Makes `buffer` hold at least `bytes` (grows by reallocation; never shrinks). Waits for the
  /// stream first, since queued kernels may still use the old memory.
  [[nodiscard]] Status reserve(DeviceBuffer& buffer, uint64_t bytes) noexcept;
  /// reserve() for split-K arrival counters: a new allocation is zeroed (on the stream); the
  /// kernels leave every counter at zero after each launch (arrives_last()).
  [[nodiscard]] Status reserve_counters(DeviceBuffer& buffer, uint64_t bytes) noexcept;
};

}  // namespace polyinfer::inline v0::detail::gpu
