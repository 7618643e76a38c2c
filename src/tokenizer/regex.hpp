// SPDX-License-Identifier: Apache-2.0
// Regex: a compiled PCRE2 pattern (UTF + Unicode properties) for pre-tokenizer splits.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace polyinfer::inline v0::detail {

/// A compiled Unicode regex (PCRE2 with UTF and UCP, JIT when available). Immutable after
/// construction and safe to share between threads (match data is per call).
class Regex {
 public:
  /// Compiles `pattern`; throws Error(kTokenizer) with PCRE2's message and offset.
  explicit Regex(std::string_view pattern);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  /// Byte ranges [begin, end) of every non-overlapping match, left to right. Empty matches
  /// are skipped. `text` must be valid UTF-8 unless the pattern was compiled for bytes.
  [[nodiscard]] std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;

  /// Splits `text` into matches and the gaps between them, in order ("isolated" behaviour of
  /// HF's Split pre-tokenizer and llama.cpp's regex split); no empty pieces.
  [[nodiscard]] std::vector<std::string_view> split_isolated(std::string_view text) const;

  [[nodiscard]] const std::string& pattern() const noexcept { return pattern_; }

 private:
  struct Compiled;
  std::string pattern_;
  std::unique_ptr<Compiled> compiled_;
};

}  // namespace polyinfer::inline v0::detail
