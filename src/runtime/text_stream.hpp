// SPDX-License-Identifier: Apache-2.0
// TextStream: incremental detokenization of generated ids, with stop strings.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "polyinfer/tokenizer.hpp"

namespace polyinfer::inline v0::detail {

/// Turns generated ids into text as they come. Text is released once it is final: not in the
/// middle of a UTF-8 character, and not a possible beginning of a stop string. Decoding uses a
/// few prompt ids as context so that a leading space is kept ("▁world" after "Hello").
/// Special tokens are left out of the text.
class TextStream {
 public:
  TextStream(const Tokenizer& tokenizer, std::span<const int32_t> prompt,
             std::vector<std::string> stop_strings);

  /// Adds one id; returns the text that became final (valid until the next call).
  std::string_view push(int32_t id);
  /// Releases what is held back (at the end of generation); returns it.
  std::string_view finish();
  /// Whether a stop string has appeared (the text ends before it).
  [[nodiscard]] bool stopped() const noexcept { return stopped_; }
  /// All final text so far.
  [[nodiscard]] const std::string& text() const noexcept { return text_; }

 private:
  std::string_view release(size_t end);

  const Tokenizer& tokenizer_;
  std::vector<std::string> stop_strings_;
  std::vector<int32_t> ids_;  // context ids, then generated ids
  size_t context_ids_ = 0;
  std::string context_text_;
  std::string decoded_;  // decoded generated text (all of it)
  std::string text_;     // released text
  bool stopped_ = false;
};

}  // namespace polyinfer::inline v0::detail
