// SPDX-License-Identifier: Apache-2.0
// ReferenceFile: typed access to the fixtures' reference safetensors files in tests.
#pragma once

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "format/safetensors.hpp"

namespace polyinfer::test {

/// The tensors of a reference safetensors file (reference.safetensors, llamacpp.*): f32, i32,
/// and integer tensors of either width through ints().
class ReferenceFile {
 public:
  explicit ReferenceFile(const std::filesystem::path& path)
      : file_(detail::SafetensorsFile::open(path)) {}

  [[nodiscard]] bool has(std::string_view name) const { return file_.find(name) != nullptr; }

  [[nodiscard]] std::vector<int64_t> shape(std::string_view name) const { return get(name).shape; }

  [[nodiscard]] std::vector<float> f32(std::string_view name) const {
    const detail::SafetensorsTensor& tensor = get(name);
    REQUIRE(tensor.dtype == detail::SafetensorsDType::kF32);
    std::vector<float> values(static_cast<size_t>(tensor.elements()));
    std::memcpy(values.data(), tensor.data, values.size() * sizeof(float));
    return values;
  }

  [[nodiscard]] std::vector<int32_t> i32(std::string_view name) const {
    const detail::SafetensorsTensor& tensor = get(name);
    REQUIRE(tensor.dtype == detail::SafetensorsDType::kI32);
    std::vector<int32_t> values(static_cast<size_t>(tensor.elements()));
    std::memcpy(values.data(), tensor.data, values.size() * sizeof(int32_t));
    return values;
  }

  /// Number of prompts: case0.ids, case1.ids, … present.
  [[nodiscard]] int cases() const {
    int count = 0;
    while (has(fmt::format("case{}.ids", count))) ++count;
    return count;
  }

  [[nodiscard]] std::vector<int32_t> ints(std::string_view name) const {
    const detail::SafetensorsTensor& tensor = get(name);
    std::vector<int32_t> values(static_cast<size_t>(tensor.elements()));
    if (tensor.dtype == detail::SafetensorsDType::kI32) {
      std::memcpy(values.data(), tensor.data, values.size() * sizeof(int32_t));
    } else {
      REQUIRE(tensor.dtype == detail::SafetensorsDType::kI64);
      for (size_t i = 0; i < values.size(); ++i) {
        int64_t value = 0;
        std::memcpy(&value, tensor.data + i * sizeof(int64_t), sizeof value);
        values[i] = static_cast<int32_t>(value);
      }
    }
    return values;
  }

  /// Rows of a right-padded [B, T] id tensor, each cut to its attention_mask.
  [[nodiscard]] std::vector<std::vector<int32_t>> unpadded(std::string_view ids_name,
                                                           std::string_view mask_name) const {
    const std::vector<int64_t> dims = shape(ids_name);
    REQUIRE(dims.size() == 2);
    const std::vector<int32_t> ids = ints(ids_name);
    const std::vector<int32_t> mask = ints(mask_name);
    std::vector<std::vector<int32_t>> rows(static_cast<size_t>(dims[0]));
    for (int64_t b = 0; b < dims[0]; ++b) {
      for (int64_t t = 0; t < dims[1]; ++t) {
        const auto at = static_cast<size_t>(b * dims[1] + t);
        if (mask[at] == 1) rows[static_cast<size_t>(b)].push_back(ids[at]);
      }
    }
    return rows;
  }

 private:
  [[nodiscard]] const detail::SafetensorsTensor& get(std::string_view name) const {
    const detail::SafetensorsTensor* tensor = file_.find(name);
    INFO("tensor " << name << " of " << file_.name());
    REQUIRE(tensor != nullptr);
    return *tensor;
  }

  detail::SafetensorsFile file_;
};

}  // namespace polyinfer::test
