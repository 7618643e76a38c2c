// SPDX-License-Identifier: Apache-2.0
// Internal: the conversions the GEMM path runs before cuBLAS.
#pragma once

#include <cstdint>

#include "kernels/cuda/gemv.cuh"

namespace polyinfer::inline v0::detail::gpu {

/// Dequantizes rows [first_row, first_row + rows) of a Q4_0 / Q8_0 / Q4_K matrix to f16,
/// row-major with w.cols values per row, at `out`.
[[nodiscard]] Status dequantize_rows_f16(const WeightsView& w, DType dtype, int64_t first_row,
                                         int64_t rows, void* out, Stream stream) noexcept;

/// Converts `tokens` rows of x (stride x_stride) to f16 (or bf16), tokens × cols contiguous.
[[nodiscard]] Status convert_activations(const float* x, int64_t tokens, int64_t cols,
                                         int64_t x_stride, bool bf16, void* out,
                                         Stream stream) noexcept;

}  // namespace polyinfer::inline v0::detail::gpu
