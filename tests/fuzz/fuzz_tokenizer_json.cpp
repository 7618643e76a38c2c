// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: tokenizer.json text → make_hf_tokenizer, then encode/decode a few strings.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "polyinfer/error.hpp"
#include "polyinfer/tokenizer.hpp"
#include "tokenizer/tokenizer_impl.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  try {
    const polyinfer::Tokenizer tokenizer(
        polyinfer::detail::make_hf_tokenizer(input, "", "fuzz/tokenizer.json"));
    const std::string_view samples[] = {"",
                                        "Hello world",
                                        "  <s>x</s> [CLS] 123,456 ...",
                                        "caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80",
                                        "\xFF\xFE broken \xC3",
                                        "\t\n\r  ",
                                        input.substr(0, 48)};
    for (const std::string_view text : samples) {
      for (const bool add_special : {false, true}) {
        for (const bool parse_special : {false, true}) {
          const std::vector<int32_t> ids =
              tokenizer.encode(text, {.add_special = add_special, .parse_special = parse_special});
          std::vector<int32_t> valid;
          for (const int32_t id : ids) {
            if (id >= 0 && id < tokenizer.vocab_size()) valid.push_back(id);
          }
          (void)tokenizer.decode(valid);
          (void)tokenizer.decode(valid, {.skip_special = true});
        }
      }
    }
    std::vector<int32_t> first;
    for (int32_t id = 0; id < tokenizer.vocab_size() && id < 64; ++id) {
      first.push_back(id);
      (void)tokenizer.token(id);
      (void)tokenizer.is_special(id);
    }
    (void)tokenizer.decode(first);
  } catch (const polyinfer::Error&) {
    // Malformed or unsupported input must fail this way and no other.
  }
  return 0;
}
