// SPDX-License-Identifier: Apache-2.0
// Tier recipes: the element type each weight matrix gets when a model loads at a tier.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "polyinfer/model.hpp"

namespace polyinfer::inline v0::detail {

/// What a matrix does, as far as the recipes care (llama.cpp's llama_tensor_get_type rules).
enum class MatrixRole {
  kTokenEmbedding,  ///< token_embd when it is only looked up (untied)
  kOutput,          ///< output, or token_embd when tied (it is the output projection)
  kAttnV,
  kFfnDown,
  kOther,
};

/// Where a matrix sits: its name (for errors), role, layer (-1 outside layers) and columns.
struct MatrixSlot {
  std::string name;
  MatrixRole role = MatrixRole::kOther;
  int64_t layer = -1;
  int64_t layers = 0;
  int64_t cols = 0;
};

/// The type a matrix stored as `stored` takes at `tier`:
/// - kNative: the stored type when the CPU kernels run it, else f32 for float types;
/// - kF32: f32 (dequantized from any type); kF16: f16 (from float types);
/// - kQ8_0: q8_0 everywhere; kQ4_0: q4_0, the output projection q6_k;
/// - kQ4_K: q4_k, the output projection q6_k, and attn_v / ffn_down of llama.cpp's
///   "more bits" layers q6_k (Q4_K_M).
/// A q6_k choice falls back to q8_0 for rows that are not a multiple of 256. A stored type
/// equal to the target is used as is. Throws Error(kUnsupported) when the tier cannot be made:
/// quantized weights asked for another quantized type or f16, or rows that do not fit the
/// tier's blocks (q4_k needs multiples of 256, q4_0 and q8_0 of 32).
[[nodiscard]] DType tier_matrix_dtype(Tier tier, DType stored, const MatrixSlot& slot);

/// Whether a type holds plain floats (f32, f16, bf16).
[[nodiscard]] bool is_float_dtype(DType dtype) noexcept;

/// The bytes of `view` (rows of `cols`) converted to `target` for a derived tier: dequantized
/// to f32, then kept as f32 or quantized with the reference quantizer.
[[nodiscard]] std::vector<std::byte> derive_matrix(const TensorView& view, DType target,
                                                   int64_t cols);

}  // namespace polyinfer::inline v0::detail
