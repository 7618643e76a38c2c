// SPDX-License-Identifier: Apache-2.0
// Element types (GGUF-compatible, block-quantized included) and non-owning tensor views.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace polyinfer {
inline namespace v0 {

/// Element type of a tensor. Values equal GGUF's ggml_type ids, so files map directly.
enum class DType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kBF16 = 30,
};

/// Block geometry of a type: `block_elements` values are stored in `block_bytes` bytes.
struct DTypeInfo {
  std::string_view name;  ///< GGUF spelling in lower case: "f32", "q4_0", "q4_k", …
  int64_t block_elements;
  int64_t block_bytes;
  bool quantized;
};

/// Geometry and name of a type; nullopt for ids polyinfer does not know.
[[nodiscard]] std::optional<DTypeInfo> dtype_info(DType type) noexcept;
/// Like dtype_info, for a raw ggml_type id read from a file.
[[nodiscard]] std::optional<DType> dtype_from_id(uint32_t id) noexcept;
/// Parses "q4_0", "Q4_K", "f16", "bf16"… (case-insensitive).
[[nodiscard]] std::optional<DType> dtype_from_name(std::string_view name) noexcept;
/// Name of a type ("q8_0"); "unknown" for ids without info.
[[nodiscard]] std::string_view dtype_name(DType type) noexcept;
/// Bytes taken by `elements` values of `type`; `elements` must be a multiple of the block size.
[[nodiscard]] uint64_t dtype_bytes(DType type, int64_t elements);

/// A non-owning view of tensor data in any DType. Shape is row-major, outermost first
/// (a GGUF tensor with ne = [in, out] has shape {out, in}).
struct TensorView {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;
  uint64_t bytes = 0;

  /// Number of elements (product of the shape; 1 for a scalar).
  [[nodiscard]] int64_t elements() const noexcept;
};

/// Dequantizes (or converts) `view` to f32, row-major.
[[nodiscard]] std::vector<float> to_f32(const TensorView& view);

/// Quantizes `values` (a whole number of rows of `row_elements`) to `type` with the reference
/// quantizer; the bytes equal GGUF's reference quantizers (llama-quantize without an imatrix).
[[nodiscard]] std::vector<std::byte> quantize(DType type, std::span<const float> values,
                                              int64_t row_elements);

}  // namespace v0
}  // namespace polyinfer
