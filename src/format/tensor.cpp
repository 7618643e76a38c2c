// SPDX-License-Identifier: Apache-2.0
// Element type table, tensor views, and f32 conversion / quantization over kernels/ref.
#include "polyinfer/tensor.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "common/fail.hpp"
#include "kernels/ref/quant_ref.hpp"

namespace polyinfer {
inline namespace v0 {

namespace {

struct Entry {
  DType type;
  DTypeInfo info;
};

constexpr std::array<Entry, 20> kTable{{
    {DType::kF32, {"f32", 1, 4, false}},      {DType::kF16, {"f16", 1, 2, false}},
    {DType::kQ4_0, {"q4_0", 32, 18, true}},   {DType::kQ4_1, {"q4_1", 32, 20, true}},
    {DType::kQ5_0, {"q5_0", 32, 22, true}},   {DType::kQ5_1, {"q5_1", 32, 24, true}},
    {DType::kQ8_0, {"q8_0", 32, 34, true}},   {DType::kQ8_1, {"q8_1", 32, 36, true}},
    {DType::kQ2_K, {"q2_k", 256, 84, true}},  {DType::kQ3_K, {"q3_k", 256, 110, true}},
    {DType::kQ4_K, {"q4_k", 256, 144, true}}, {DType::kQ5_K, {"q5_k", 256, 176, true}},
    {DType::kQ6_K, {"q6_k", 256, 210, true}}, {DType::kQ8_K, {"q8_k", 256, 292, true}},
    {DType::kI8, {"i8", 1, 1, false}},        {DType::kI16, {"i16", 1, 2, false}},
    {DType::kI32, {"i32", 1, 4, false}},      {DType::kI64, {"i64", 1, 8, false}},
    {DType::kF64, {"f64", 1, 8, false}},      {DType::kBF16, {"bf16", 1, 2, false}},
}};

}  // namespace

std::optional<DTypeInfo> dtype_info(DType type) noexcept {
  for (const Entry& e : kTable) {
    if (e.type == type) return e.info;
  }
  return std::nullopt;
}

std::optional<DType> dtype_from_id(uint32_t id) noexcept {
  for (const Entry& e : kTable) {
    if (static_cast<uint32_t>(e.type) == id) return e.type;
  }
  return std::nullopt;
}

std::optional<DType> dtype_from_name(std::string_view name) noexcept {
  for (const Entry& e : kTable) {
    if (e.info.name.size() != name.size()) continue;
    const bool same = std::equal(name.begin(), name.end(), e.info.name.begin(), [](char a, char b) {
      return std::tolower(static_cast<unsigned char>(a)) == b;
    });
    if (same) return e.type;
  }
  return std::nullopt;
}

std::string_view dtype_name(DType type) noexcept {
  const auto info = dtype_info(type);
  return info ? info->name : std::string_view("unknown");
}

uint64_t dtype_bytes(DType type, int64_t elements) {
  const auto info = dtype_info(type);
  if (!info) {
    detail::fail(ErrorCode::kUnsupported, "dtype_bytes", "unknown type id {}",
                 static_cast<uint32_t>(type));
  }
  if (elements < 0 || elements % info->block_elements != 0) {
    detail::fail(ErrorCode::kInvalidArgument, "dtype_bytes",
                 "{} elements is not a whole number of {} blocks of {}", elements, info->name,
                 info->block_elements);
  }
  return static_cast<uint64_t>(elements / info->block_elements) *
         static_cast<uint64_t>(info->block_bytes);
}

int64_t TensorView::elements() const noexcept {
  int64_t n = 1;
  for (const int64_t d : shape) n *= d;
  return n;
}

std::vector<float> to_f32(const TensorView& view) {
  const auto info = dtype_info(view.dtype);
  if (!info || !detail::ref::can_dequantize(view.dtype)) {
    detail::fail(ErrorCode::kUnsupported, "to_f32", "no conversion from type {} ({})",
                 dtype_name(view.dtype), static_cast<uint32_t>(view.dtype));
  }
  for (const int64_t d : view.shape) {
    if (d < 0) detail::fail(ErrorCode::kInvalidArgument, "to_f32", "negative dimension {}", d);
  }
  const int64_t elements = view.elements();
  const int64_t row = view.shape.empty() ? 1 : view.shape.back();
  if (row % info->block_elements != 0) {
    detail::fail(ErrorCode::kInvalidArgument, "to_f32",
                 "row of {} elements is not a multiple of the {} block size {}", row, info->name,
                 info->block_elements);
  }
  const uint64_t needed = dtype_bytes(view.dtype, elements);
  if (view.bytes < needed || (needed > 0 && view.data == nullptr)) {
    detail::fail(ErrorCode::kInvalidArgument, "to_f32", "{} {} elements need {} bytes, view has {}",
                 elements, info->name, needed, view.bytes);
  }
  std::vector<float> out(static_cast<size_t>(elements));
  detail::ref::dequantize(view.dtype, view.data, out.data(), elements);
  return out;
}

std::vector<std::byte> quantize(DType type, std::span<const float> values, int64_t row_elements) {
  const auto info = dtype_info(type);
  if (!info || !detail::ref::can_quantize(type)) {
    detail::fail(ErrorCode::kUnsupported, "quantize", "no reference quantizer for type {} ({})",
                 dtype_name(type), static_cast<uint32_t>(type));
  }
  if (row_elements <= 0 || row_elements % info->block_elements != 0) {
    detail::fail(ErrorCode::kInvalidArgument, "quantize",
                 "row of {} elements is not a positive multiple of the {} block size {}",
                 row_elements, info->name, info->block_elements);
  }
  const auto elements = static_cast<int64_t>(values.size());
  if (elements % row_elements != 0) {
    detail::fail(ErrorCode::kInvalidArgument, "quantize",
                 "{} values are not a whole number of rows of {}", elements, row_elements);
  }
  std::vector<std::byte> out(dtype_bytes(type, elements));
  detail::ref::quantize(type, values.data(), out.data(), elements);
  return out;
}

}  // namespace v0
}  // namespace polyinfer
