// SPDX-License-Identifier: Apache-2.0
// Scalar reference (de)quantizers for every GGUF format polyinfer reads, byte-exact with ggml.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/common/block_formats.hpp"
#include "polyinfer/tensor.hpp"

namespace polyinfer::inline v0::detail::ref {

// Row functions take `elements` values (a multiple of the format's block size, not checked) and
// never throw. Quantizers mirror ggml's `quantize_row_*_ref` (ggml-quants.c) operation for
// operation, so that the bytes equal llama-quantize's without an importance matrix.

void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t elements);
void dequantize_row_q4_1(const BlockQ4_1* x, float* y, int64_t elements);
void dequantize_row_q5_0(const BlockQ5_0* x, float* y, int64_t elements);
void dequantize_row_q5_1(const BlockQ5_1* x, float* y, int64_t elements);
void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t elements);
void dequantize_row_q8_1(const BlockQ8_1* x, float* y, int64_t elements);
void dequantize_row_q2_k(const BlockQ2_K* x, float* y, int64_t elements);
void dequantize_row_q3_k(const BlockQ3_K* x, float* y, int64_t elements);
void dequantize_row_q4_k(const BlockQ4_K* x, float* y, int64_t elements);
void dequantize_row_q5_k(const BlockQ5_K* x, float* y, int64_t elements);
void dequantize_row_q6_k(const BlockQ6_K* x, float* y, int64_t elements);
void dequantize_row_q8_k(const BlockQ8_K* x, float* y, int64_t elements);

void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t elements);
void quantize_row_q4_1(const float* x, BlockQ4_1* y, int64_t elements);
void quantize_row_q5_0(const float* x, BlockQ5_0* y, int64_t elements);
void quantize_row_q5_1(const float* x, BlockQ5_1* y, int64_t elements);
void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t elements);
void quantize_row_q8_1(const float* x, BlockQ8_1* y, int64_t elements);
void quantize_row_q2_k(const float* x, BlockQ2_K* y, int64_t elements);
void quantize_row_q3_k(const float* x, BlockQ3_K* y, int64_t elements);
void quantize_row_q4_k(const float* x, BlockQ4_K* y, int64_t elements);
void quantize_row_q5_k(const float* x, BlockQ5_K* y, int64_t elements);
void quantize_row_q6_k(const float* x, BlockQ6_K* y, int64_t elements);
void quantize_row_q8_k(const float* x, BlockQ8_K* y, int64_t elements);

/// gguf-py's Q8_0 (convert_hf_to_gguf --outtype q8_0): the same float operations as ggml's,
/// rounding with numpy `np_roundf` (half away from zero, computed as floor(a) + floor(2·frac)).
/// Kept separate so a difference to ggml, if any, stays visible.
void quantize_row_q8_0_gguf_py(const float* x, BlockQ8_0* y, int64_t elements);

/// Whether dequantize() / quantize() handle `type`.
[[nodiscard]] bool can_dequantize(DType type) noexcept;
[[nodiscard]] bool can_quantize(DType type) noexcept;

/// Converts `elements` values of `type` at `src` (any alignment) to f32; integer types are
/// converted by value. Returns false, writing nothing, when `type` has no reference.
bool dequantize(DType type, const std::byte* src, float* dst, int64_t elements) noexcept;

/// Quantizes (or converts) `elements` f32 values to `type` at `dst` (any alignment, exactly
/// dtype_bytes(type, elements) bytes). Returns false, writing nothing, for unsupported types.
bool quantize(DType type, const float* src, std::byte* dst, int64_t elements) noexcept;

}  // namespace polyinfer::inline v0::detail::ref
