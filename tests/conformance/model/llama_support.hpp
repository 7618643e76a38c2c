// SPDX-License-Identifier: Apache-2.0
// Helpers of the Llama conformance tests: reference tensors, logits comparison, summary lines.
#pragma once

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "format/safetensors.hpp"
#include "polyinfer/model.hpp"
#include "support/reference_file.hpp"

namespace polyinfer::test {

/// Index of the largest value (the first of equal ones, as torch.argmax).
[[nodiscard]] inline int64_t argmax(const float* values, int64_t count) {
  return std::max_element(values, values + count) - values;
}

/// Max |ours − reference|, the reference's scale max(1, max|ref|), and top-1 agreement, over
/// rows of `cols` values.
struct Difference {
  double max_abs = 0.0;
  double scale = 1.0;
  int64_t rows = 0;
  int64_t top1_same = 0;

  void add(const float* ours, const float* reference, int64_t row_count, int64_t cols) {
    for (int64_t r = 0; r < row_count; ++r) {
      const float* a = ours + r * cols;
      const float* b = reference + r * cols;
      for (int64_t c = 0; c < cols; ++c) {
        max_abs = std::max(max_abs, static_cast<double>(std::fabs(a[c] - b[c])));
        scale = std::max(scale, static_cast<double>(std::fabs(b[c])));
      }
      top1_same += argmax(a, cols) == argmax(b, cols) ? 1 : 0;
      ++rows;
    }
  }
  void add(const std::vector<float>& ours, const std::vector<float>& reference, int64_t cols) {
    REQUIRE(ours.size() == reference.size());
    add(ours.data(), reference.data(), static_cast<int64_t>(ours.size()) / cols, cols);
  }
  [[nodiscard]] double relative() const { return max_abs / scale; }
  [[nodiscard]] std::string summary() const {
    return fmt::format("max|diff| {:.3g} (scale {:.3g}), top-1 {}/{}", max_abs, scale, top1_same,
                       rows);
  }
};

/// Greedy ids checked the README way: compare gen_ids[k] only while every earlier id matched
/// and the reference margin exceeds `margin_floor`. Returns the number of ids compared.
[[nodiscard]] inline int checked_greedy_prefix(const std::vector<int32_t>& ours,
                                               const std::vector<int32_t>& reference,
                                               const std::vector<float>& margins,
                                               double margin_floor, int* mismatch_at) {
  *mismatch_at = -1;
  int compared = 0;
  for (size_t k = 0; k < reference.size() && k < ours.size(); ++k) {
    if (margins[k] <= margin_floor) break;  // a legitimate divergence may start here
    ++compared;
    if (ours[k] != reference[k]) {
      *mismatch_at = static_cast<int>(k);
      break;
    }
  }
  return compared;
}

/// One line of the conformance table, printed as it is measured.
inline void report_line(std::string_view model, std::string_view form, std::string_view against,
                        const Difference& diff, double bound) {
  std::cout << fmt::format("conformance | {:<11} | {:<16} | vs {:<15} | {} | bound {:.3g}\n", model,
                           form, against, diff.summary(), bound);
}

/// Logits of every case's prompt (caseN.ids of `ids_file`) against `reference`'s caseN.logits.
inline Difference prompt_logits(LanguageModel& model, const ReferenceFile& ids_file,
                                const ReferenceFile& reference) {
  Difference diff;
  const int64_t vocab = model.config().vocab_size;
  for (int c = 0; c < ids_file.cases(); ++c) {
    const std::vector<int32_t> ids = ids_file.i32(fmt::format("case{}.ids", c));
    const std::vector<float> ours = model.logits(ids);
    diff.add(ours, reference.f32(fmt::format("case{}.logits", c)), vocab);
  }
  REQUIRE(diff.rows > 0);
  return diff;
}

/// Greedy generation of every case against the reference's gen_ids, compared the README way
/// (while earlier ids matched and the margin exceeds twice the bound). Returns ids compared.
inline int greedy_matches(LanguageModel& model, const ReferenceFile& reference, double margin_floor,
                          std::string_view label) {
  int compared_total = 0;
  for (int c = 0; c < reference.cases(); ++c) {
    const std::vector<int32_t> ids = reference.i32(fmt::format("case{}.ids", c));
    const std::vector<int32_t> expected = reference.i32(fmt::format("case{}.gen_ids", c));
    const std::vector<float> margins = reference.f32(fmt::format("case{}.gen_margins", c));
    const Generation generation =
        model.generate(ids, GenerationOptions{.max_tokens = static_cast<int32_t>(expected.size()),
                                              .stop_at_eos = false});
    int mismatch = -1;
    const int compared =
        checked_greedy_prefix(generation.ids, expected, margins, margin_floor, &mismatch);
    INFO(label << " case " << c << ": first mismatch at " << mismatch << " of " << compared);
    CHECK(mismatch == -1);
    compared_total += compared;
  }
  return compared_total;
}

}  // namespace polyinfer::test
