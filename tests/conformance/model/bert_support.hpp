// SPDX-License-Identifier: Apache-2.0
// Helpers of the BERT conformance tests: reference tensors (f32, i32/i64), max-diff summaries.
#pragma once

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "format/safetensors.hpp"

namespace polyinfer::test {

/// The tensors of a reference safetensors file; integer tensors (i32 or i64) read as int32.
class BertReference {
 public:
  explicit BertReference(const std::filesystem::path& path)
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

/// Index of the largest value (the first of equal ones, as torch.argmax).
[[nodiscard]] inline int32_t argmax_of(const float* values, int64_t count) {
  return static_cast<int32_t>(std::max_element(values, values + count) - values);
}

/// Max |ours − reference| and the reference's scale max(1, max|ref|).
struct MaxDiff {
  double max_abs = 0.0;
  double scale = 1.0;
  int64_t values = 0;

  void add(const float* ours, const float* reference, int64_t count) {
    for (int64_t i = 0; i < count; ++i) {
      max_abs = std::max(max_abs, static_cast<double>(std::fabs(ours[i] - reference[i])));
      scale = std::max(scale, static_cast<double>(std::fabs(reference[i])));
    }
    values += count;
  }
  void add(const std::vector<float>& ours, const float* reference) {
    add(ours.data(), reference, static_cast<int64_t>(ours.size()));
  }
  /// Whether max_abs ≤ bound × scale.
  [[nodiscard]] bool within(double bound) const { return max_abs <= bound * scale; }
  [[nodiscard]] std::string summary() const {
    return fmt::format("max|diff| {:.3g} (scale {:.3g}, {} values)", max_abs, scale, values);
  }
};

/// One line of the conformance report, printed as it is measured.
inline void bert_report(std::string_view model, std::string_view what, const MaxDiff& diff,
                        double bound) {
  std::cout << fmt::format("conformance | {:<10} | {:<22} | {} | bound {:.3g} × scale\n", model,
                           what, diff.summary(), bound);
}

/// The lines of a JSON-lines file, parsed.
inline std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::vector<nlohmann::json> items;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) items.push_back(nlohmann::json::parse(line));
  }
  return items;
}

}  // namespace polyinfer::test
