// SPDX-License-Identifier: Apache-2.0
// polyinfer::ChatTemplate: Jinja chat templates rendered as transformers' apply_chat_template.
#include "common/fail.hpp"
#include "polyinfer/tokenizer.hpp"
#include "tokenizer/jinja_render.hpp"
#include "tokenizer/jinja_template.hpp"

namespace polyinfer::inline v0 {

namespace detail {

ChatTemplateImpl::ChatTemplateImpl(std::string_view source) : program_(parse_program(source)) {}

std::string ChatTemplateImpl::render(Entries variables) const {
  return render_program(*program_, std::move(variables));
}

Entries chat_variables(std::span<const ChatMessage> messages, bool add_generation_prompt,
                       std::string_view bos_token, std::string_view eos_token) {
  try {
    std::vector<Value> items;
    items.reserve(messages.size());
    for (const ChatMessage& message : messages) {
      items.push_back(Value::dict(
          {{"role", Value::string(message.role)}, {"content", Value::string(message.content)}}));
    }
    Entries variables;
    variables.emplace_back("messages", Value::list(std::move(items)));
    variables.emplace_back("tools", Value::none());
    variables.emplace_back("documents", Value::none());
    variables.emplace_back("add_generation_prompt", Value::boolean(add_generation_prompt));
    variables.emplace_back("bos_token", Value::string(std::string(bos_token)));
    variables.emplace_back("eos_token", Value::string(std::string(eos_token)));
    return variables;
  } catch (const JinjaError& error) {
    fail(ErrorCode::kInvalidArgument, "chat template messages", "{}", error.what());
  }
}

}  // namespace detail

ChatTemplate ChatTemplate::parse(std::string_view source) {
  return ChatTemplate(std::make_shared<const detail::ChatTemplateImpl>(source));
}

ChatTemplate::ChatTemplate(std::shared_ptr<const detail::ChatTemplateImpl> impl)
    : impl_(std::move(impl)) {}

std::string ChatTemplate::render(std::span<const ChatMessage> messages, bool add_generation_prompt,
                                 std::string_view bos_token, std::string_view eos_token) const {
  if (!impl_) detail::fail(ErrorCode::kInvalidArgument, "ChatTemplate", "no template was parsed");
  return impl_->render(
      detail::chat_variables(messages, add_generation_prompt, bos_token, eos_token));
}

}  // namespace polyinfer::inline v0
