// SPDX-License-Identifier: Apache-2.0
// Element types of written GGUF tensors: convert_hf_to_gguf's and llama-quantize's rules.
#include "model/convert_types.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace polyinfer {
inline namespace v0 {

namespace {

struct LayoutName {
  WeightType type;
  std::string_view name;
};

constexpr std::array<LayoutName, 7> kLayoutNames{{
    {WeightType::kF32, "f32"},
    {WeightType::kF16, "f16"},
    {WeightType::kBF16, "bf16"},
    {WeightType::kQ8_0, "q8_0"},
    {WeightType::kQ4_0, "q4_0"},
    {WeightType::kQ4_K, "q4_k"},
    {WeightType::kQ4_K_M, "q4_k_m"},
}};

}  // namespace

std::string_view weight_type_name(WeightType type) noexcept {
  for (const LayoutName& row : kLayoutNames) {
    if (row.type == type) return row.name;
  }
  return "unknown";
}

std::optional<WeightType> weight_type_from_name(std::string_view name) noexcept {
  for (const LayoutName& row : kLayoutNames) {
    if (row.name.size() == name.size() &&
        std::equal(name.begin(), name.end(), row.name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == b;
        })) {
      return row.type;
    }
  }
  return std::nullopt;
}

namespace detail {

namespace {

int64_t block_of(DType type) {
  const auto info = dtype_info(type);
  return info ? info->block_elements : 1;
}

/// llama.cpp's tensor_type_fallback: a type whose block does not divide the row.
DType fallback(DType type, int64_t row_elements) {
  if (row_elements % block_of(type) == 0) return type;
  DType next = DType::kF16;  // llama.cpp throws for q4_0 / q8_0 here; f16 is what it does next
  if (type == DType::kQ4_K) next = DType::kQ5_0;
  if (type == DType::kQ6_K) next = DType::kQ8_0;
  return row_elements % block_of(next) == 0 ? next : DType::kF16;
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

}  // namespace

bool use_more_bits(int64_t layer, int64_t layers) noexcept {
  return layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;
}

int64_t tensor_layer(std::string_view name) noexcept {
  constexpr std::string_view kPrefix = "blk.";
  if (!name.starts_with(kPrefix)) return -1;
  int64_t layer = 0;
  size_t i = kPrefix.size();
  if (i >= name.size() || name[i] < '0' || name[i] > '9') return -1;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9'; ++i) {
    layer = layer * 10 + (name[i] - '0');
    if (layer > (int64_t{1} << 31)) return -1;
  }
  return i < name.size() && name[i] == '.' ? layer : -1;
}

bool loader_order_less(std::string_view a, std::string_view b) noexcept {
  const int64_t layer_a = tensor_layer(a);
  const int64_t layer_b = tensor_layer(b);
  if (layer_a != layer_b) return layer_a < layer_b;
  return a < b;
}

bool keeps_f32(const TensorSlot& slot) noexcept {
  const std::string_view name = slot.name;
  return slot.dims < 2 || !name.ends_with(".weight") || name.ends_with("_norm.weight") ||
         name == "position_embd.weight" || name == "token_types.weight" ||
         name == "rope_freqs.weight";
}

uint32_t gguf_file_type(WeightType type) noexcept {
  switch (type) {
    case WeightType::kF32:
      return 0;
    case WeightType::kF16:
      return 1;
    case WeightType::kQ4_0:
      return 2;
    case WeightType::kQ8_0:
      return 7;
    case WeightType::kQ4_K:
    case WeightType::kQ4_K_M:
      return 15;
    case WeightType::kBF16:
      return 32;
  }
  return 0;
}

bool is_requantized(WeightType type) noexcept {
  return type == WeightType::kQ4_0 || type == WeightType::kQ4_K || type == WeightType::kQ4_K_M;
}

DType gguf_tensor_type(WeightType type, const TensorSlot& slot) {
  if (keeps_f32(slot)) return DType::kF32;
  switch (type) {
    case WeightType::kF32:
      return DType::kF32;
    case WeightType::kF16:
      return DType::kF16;
    case WeightType::kBF16:
      return DType::kBF16;
    case WeightType::kQ8_0:
      // gguf-py raises QuantError for rows that are not whole blocks; the converter then
      // writes f16.
      return slot.row_elements % 32 == 0 ? DType::kQ8_0 : DType::kF16;
    case WeightType::kQ4_0:
    case WeightType::kQ4_K:
    case WeightType::kQ4_K_M:
      break;
  }
  const DType base = type == WeightType::kQ4_0 ? DType::kQ4_0 : DType::kQ4_K;
  DType chosen = base;
  if (type != WeightType::kQ4_K) {  // q4_k is --pure: no mix
    const std::string_view name = slot.name;
    const bool output =
        name == "output.weight" || (slot.tied_embeddings && name == "token_embd.weight");
    const int64_t layer = tensor_layer(name);
    if (output) {
      chosen = slot.row_elements % block_of(base) != 0 ? DType::kQ8_0 : DType::kQ6_K;
    } else if (type == WeightType::kQ4_K_M && layer >= 0 &&
               (contains(name, "attn_v.weight") || contains(name, "ffn_down")) &&
               use_more_bits(layer, slot.layers)) {
      chosen = DType::kQ6_K;
    }
  }
  return fallback(chosen, slot.row_elements);
}

}  // namespace detail

}  // namespace v0
}  // namespace polyinfer
