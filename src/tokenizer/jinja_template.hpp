// SPDX-License-Identifier: Apache-2.0
// ChatTemplateImpl: a parsed Jinja chat template and the variables transformers renders it with.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "polyinfer/tokenizer.hpp"
#include "tokenizer/jinja_parser.hpp"
#include "tokenizer/jinja_value.hpp"

namespace polyinfer::inline v0::detail {

/// A parsed template; immutable, so render() is thread-safe.
class ChatTemplateImpl {
 public:
  /// Parses; throws polyinfer::Error(kTemplate) naming the line and column.
  explicit ChatTemplateImpl(std::string_view source);

  /// Renders with arbitrary variables (messages with tool calls, tools, documents, ...).
  [[nodiscard]] std::string render(Entries variables) const;

 private:
  std::unique_ptr<const Program> program_;
};

/// The variables transformers' apply_chat_template passes: messages (role/content dicts),
/// tools=None, documents=None, add_generation_prompt, bos_token, eos_token.
[[nodiscard]] Entries chat_variables(std::span<const ChatMessage> messages,
                                     bool add_generation_prompt, std::string_view bos_token,
                                     std::string_view eos_token);

}  // namespace polyinfer::inline v0::detail
