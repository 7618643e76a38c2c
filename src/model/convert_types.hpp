// SPDX-License-Identifier: Apache-2.0
// Element types of written GGUF tensors: convert_hf_to_gguf's and llama-quantize's rules.
#pragma once

#include <cstdint>
#include <string_view>

#include "polyinfer/model_writer.hpp"
#include "polyinfer/tensor.hpp"

namespace polyinfer::inline v0::detail {

/// Where a tensor sits, as far as the type rules care.
struct TensorSlot {
  std::string_view name;         ///< GGUF name ("blk.3.attn_v.weight")
  int dims = 2;                  ///< dimensions after squeezing
  int64_t row_elements = 0;      ///< ne[0]
  int64_t layers = 0;            ///< block count of the model
  bool tied_embeddings = false;  ///< no output.weight: token_embd is also the output projection
};

/// The element type `type` gives a tensor. Mirrors convert_hf_to_gguf.py (Feb 2025) for
/// f32/f16/bf16/q8_0 and llama-quantize's llama_tensor_get_type + tensor_type_fallback for the
/// q4 layouts applied to an f32 GGUF (see WeightType).
[[nodiscard]] DType gguf_tensor_type(WeightType type, const TensorSlot& slot);

/// Whether llama.cpp keeps the tensor in f32 (1-D, norms, biases, position / token-type
/// embeddings, rope_freqs).
[[nodiscard]] bool keeps_f32(const TensorSlot& slot) noexcept;

/// general.file_type (llama_ftype) of a layout: 0 f32, 1 f16, 2 q4_0, 7 q8_0, 15 q4_k_m and
/// q4_k (what `llama-quantize --pure Q4_K_M` writes), 32 bf16.
[[nodiscard]] uint32_t gguf_file_type(WeightType type) noexcept;

/// Whether the layout is made by llama-quantize from an f32 GGUF (q4_0, q4_k, q4_k_m): then the
/// tensor order is the model loader's and general.file_type moves to the end of the metadata.
[[nodiscard]] bool is_requantized(WeightType type) noexcept;

/// The layer of a "blk.N.…" name; -1 for tensors outside the layers.
[[nodiscard]] int64_t tensor_layer(std::string_view name) noexcept;

/// llama.cpp's model-loader order (weight_name_comparer): by layer, tensors outside layers
/// first, then by name.
[[nodiscard]] bool loader_order_less(std::string_view a, std::string_view b) noexcept;

/// llama.cpp's use_more_bits(i_layer, n_layers) of the Q4_K_M / Q5_K_M mixes.
[[nodiscard]] bool use_more_bits(int64_t layer, int64_t layers) noexcept;

}  // namespace polyinfer::inline v0::detail
