// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the input is parsed as a chat template and rendered on a fixed conversation;
// polyinfer::Error is the only acceptable failure.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "polyinfer/error.hpp"
#include "polyinfer/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::vector<polyinfer::ChatMessage> kMessages = {
      {"system", "You are a helpful assistant."},
      {"user", "Hello!"},
      {"assistant", "  Hi there.  "},
      {"user", "Caf\xC3\xA9 \xF0\x9F\xA6\x99 {{ x }}"},
  };
  const std::string_view source(reinterpret_cast<const char*>(data), size);
  try {
    const polyinfer::ChatTemplate chat_template = polyinfer::ChatTemplate::parse(source);
    (void)chat_template.render(kMessages, true, "<s>", "</s>");
    (void)chat_template.render({}, false);
  } catch (const polyinfer::Error&) {
  }
  return 0;
}
