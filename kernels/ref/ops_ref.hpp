// SPDX-License-Identifier: Apache-2.0
// Scalar references of the operations in kernels/ops.hpp: same signatures, double accumulation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kernels/common/block_formats.hpp"
#include "kernels/ops.hpp"

namespace polyinfer::inline v0::detail::ref {

// Each function computes what its namesake in kernels/ops.hpp documents, one element at a time,
// accumulating in double. They are the ground truth of the kernel tests (the kScalar level of
// the dispatch is kernels/cpu/ops_scalar.cpp); `pool` arguments are ignored.

/// y[t][r] = Σ_c W[r][c]·x[t][c] over weights of any dequantizable `dtype` (rows × cols, GGUF
/// layout, cols a multiple of the block size), dequantized to f32 and multiplied in double.
void matmul(DType dtype, const std::byte* w, int64_t rows, int64_t cols, const float* x,
            int64_t tokens, int64_t x_stride, float* y, int64_t y_stride);

/// The 8-bit activation blocks the integer kernels quantize x into for `dtype`: kQ8_0 for Q4_0
/// and Q8_0, kQ8_K for Q4_K and Q6_K, kF32 (no quantization) for every other format.
[[nodiscard]] DType matmul_activation_type(DType dtype) noexcept;

/// The exact-integer reference of the integer kernels: each row of x is quantized with
/// quantize_row_q8_0 / quantize_row_q8_k (as ggml does), each weight block's integer dot
/// product with it is exact, and the blocks are combined with their scales in double.
/// For formats without 8-bit activations it equals matmul().
void matmul_quantized(DType dtype, const std::byte* w, int64_t rows, int64_t cols, const float* x,
                      int64_t tokens, int64_t x_stride, float* y, int64_t y_stride);

/// Scalar block dot products of one weight row with one quantized activation row (`cols`
/// values), ggml's vec_dot_*: integer sums per block, scales applied in double.
[[nodiscard]] double dot_q4_0_q8_0(const BlockQ4_0* w, const BlockQ8_0* x, int64_t cols) noexcept;
[[nodiscard]] double dot_q8_0_q8_0(const BlockQ8_0* w, const BlockQ8_0* x, int64_t cols) noexcept;
[[nodiscard]] double dot_q4_k_q8_k(const BlockQ4_K* w, const BlockQ8_K* x, int64_t cols) noexcept;
[[nodiscard]] double dot_q6_k_q8_k(const BlockQ6_K* w, const BlockQ8_K* x, int64_t cols) noexcept;

void rms_norm(const float* x, const float* weight, float eps, int64_t rows, int64_t cols, float* y);
void layer_norm(const float* x, const float* weight, const float* bias, float eps, int64_t rows,
                int64_t cols, float* y);

[[nodiscard]] RopeTable make_rope_table(int64_t head_dim, double theta, std::string_view scaling,
                                        double factor, double low_freq_factor,
                                        double high_freq_factor, int64_t original_max_positions);
void rope(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t row_stride,
          const int32_t* positions, const RopeTable& table, RopeLayout layout);

void silu_mul(const float* gate, const float* up, float* out, int64_t count);
void gelu(const float* x, float* out, int64_t count);
void softmax(float* x, int64_t rows, int64_t cols);

[[nodiscard]] uint64_t kv_row_bytes(KvType type, int64_t kv_heads, int64_t head_dim) noexcept;
void kv_store(KvType type, const float* src, int64_t rows, int64_t kv_heads, int64_t head_dim,
              std::byte* dst);
/// Row `row` of a KvView, dequantized to kv_heads × head_dim floats.
void kv_load_row(const KvView& view, int64_t row, float* dst);

void attention(const float* q, int64_t tokens, int64_t heads, const KvView& keys,
               const KvView& values, const int32_t* positions, bool causal, float scale, float* out,
               ThreadPool* pool);

}  // namespace polyinfer::inline v0::detail::ref
