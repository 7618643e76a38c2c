// SPDX-License-Identifier: Apache-2.0
// Tier names and recipes (which type each matrix gets at a tier).
#include "model/tier.hpp"

#include <array>
#include <cctype>
#include <cstring>

#include "common/fail.hpp"
#include "kernels/ops.hpp"

namespace polyinfer {
inline namespace v0 {

namespace {

constexpr std::array<std::pair<Tier, std::string_view>, 6> kTierNames{{
    {Tier::kNative, "native"},
    {Tier::kF32, "f32"},
    {Tier::kF16, "f16"},
    {Tier::kQ8_0, "q8_0"},
    {Tier::kQ4_0, "q4_0"},
    {Tier::kQ4_K, "q4_k"},
}};

}  // namespace

std::string_view tier_name(Tier tier) noexcept {
  for (const auto& [value, name] : kTierNames) {
    if (value == tier) return name;
  }
  return "unknown";
}

std::optional<Tier> tier_from_name(std::string_view name) noexcept {
  for (const auto& [value, text] : kTierNames) {
    if (text.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size(); ++i) {
      same = same && std::tolower(static_cast<unsigned char>(name[i])) == text[i];
    }
    if (same) return value;
  }
  return std::nullopt;
}

namespace detail {

namespace {

/// llama.cpp's use_more_bits(i_layer, n_layers): the first and last eighth, and every third
/// layer in between, get more bits in Q4_K_M.
bool use_more_bits(int64_t layer, int64_t layers) {
  return layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;
}

int64_t block_elements(DType dtype) {
  const auto info = dtype_info(dtype);
  return info ? info->block_elements : 1;
}

DType recipe(Tier tier, const MatrixSlot& slot) {
  switch (tier) {
    case Tier::kF32:
      return DType::kF32;
    case Tier::kF16:
      return DType::kF16;
    case Tier::kQ8_0:
      return DType::kQ8_0;
    case Tier::kQ4_0:
      return slot.role == MatrixRole::kOutput ? DType::kQ6_K : DType::kQ4_0;
    case Tier::kQ4_K: {
      const bool more_bits =
          (slot.role == MatrixRole::kAttnV || slot.role == MatrixRole::kFfnDown) &&
          use_more_bits(slot.layer, slot.layers);
      return slot.role == MatrixRole::kOutput || more_bits ? DType::kQ6_K : DType::kQ4_K;
    }
    case Tier::kNative:
      break;
  }
  return DType::kF32;
}

}  // namespace

bool is_float_dtype(DType dtype) noexcept {
  return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16;
}

DType tier_matrix_dtype(Tier tier, DType stored, const MatrixSlot& slot) {
  if (tier == Tier::kNative) {
    if (slot.role == MatrixRole::kTokenEmbedding) return stored;  // looked up, never multiplied
    if (matmul_supports(stored) && slot.cols % block_elements(stored) == 0) return stored;
    if (is_float_dtype(stored)) return DType::kF32;
    fail(ErrorCode::kUnsupported, slot.name, "stored as {}, which the CPU kernels do not run",
         dtype_name(stored));
  }
  DType target = recipe(tier, slot);
  if (target == DType::kQ6_K && slot.cols % 256 != 0) target = DType::kQ8_0;  // as llama.cpp
  if (target == stored) return stored;
  if (target != DType::kF32 && !is_float_dtype(stored)) {
    fail(ErrorCode::kUnsupported, slot.name,
         "tier {} cannot be made from {} weights (only from f32, f16 or bf16; use tier native "
         "or f32)",
         tier_name(tier), dtype_name(stored));
  }
  if (slot.cols % block_elements(target) != 0) {
    fail(ErrorCode::kUnsupported, slot.name,
         "tier {} needs rows of a multiple of {} values ({}); this matrix has rows of {}",
         tier_name(tier), block_elements(target), dtype_name(target), slot.cols);
  }
  if (!matmul_supports(target) && slot.role != MatrixRole::kTokenEmbedding) {
    fail(ErrorCode::kUnsupported, slot.name, "the CPU kernels do not run {}", dtype_name(target));
  }
  return target;
}

std::vector<std::byte> derive_matrix(const TensorView& view, DType target, int64_t cols) {
  const std::vector<float> values = to_f32(view);
  if (target != DType::kF32) return quantize(target, values, cols);
  std::vector<std::byte> bytes(values.size() * sizeof(float));
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

}  // namespace detail

}  // namespace v0
}  // namespace polyinfer
