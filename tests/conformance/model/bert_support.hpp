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
#include "support/reference_file.hpp"

namespace polyinfer::test {

/// BERT tests read the same reference files.
using BertReference = ReferenceFile;

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
