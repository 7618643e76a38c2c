// SPDX-License-Identifier: Apache-2.0
// Element type table, tensor views, and f32 conversion / quantization over kernels/ref.
#include "polyinfer/tensor.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "common/fail.hpp"

namespace polyinfer {
inline namespace v0 {

namespace {

struct Entry {
  DType type;
  DTypeInfo info;
};

constexpr std::array<Entry, 20> kTable{{
    {DType::kF32, {"f32", 1, 4, false}},       {DType::kF16, {"f16", 1, 2, false}},
    {DType::kQ4_0, {"q4_0", 32, 18, true}},    {DType::kQ4_1, {"q4_1", 32, 20, true}},
    {DType::kQ5_0, {"q5_0", 32, 22, true}},    {DType::kQ5_1, {"q5_1", 32, 24, true}},
    {DType::kQ8_0, {"q8_0", 32, 34, true}},    {DType::kQ8_1, {"q8_1", 32, 36, true}},
    {DType::kQ2_K, {"q2_k", 256, 84, true}},   {DType::kQ3_K, {"q3_k", 256, 110, true}},
    {DType::kQ4_K, {"q4_k", 256, 144, true}},  {DType::kQ5_K, {"q5_k", 256, 176, true}},
    {DType::kQ6_K, {"q6_k", 256, 210, true}},  {DType::kQ8_K, {"q8_k", 256, 292, true}},
    {DType::kI8, {"i8", 1, 1, false}},         {DType::kI16, {"i16", 1, 2, false}},
    {DType::kI32, {"i32", 1, 4, false}},       {DType::kI64, {"i64", 1, 8, false}},
    {DType::kF64, {"f64", 1, 8, false}},       {DType::kBF16, {"bf16", 1, 2, false}},
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
  detail::fail(ErrorCode::kUnsupported, std::string(dtype_name(view.dtype)), "not yet");
}

std::vector<std::byte> quantize(DType type, std::span<const float>, int64_t) {
  detail::fail(ErrorCode::kUnsupported, std::string(dtype_name(type)), "not yet");
}

}  // namespace v0
}  // namespace polyinfer
