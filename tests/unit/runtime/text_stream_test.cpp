// SPDX-License-Identifier: Apache-2.0
// TextStream: pieces add up to the decoded text, never split a character, stop strings cut.
#include <catch2/catch.hpp>

#include "polyinfer/tokenizer.hpp"
#include "runtime/text_stream.hpp"
#include "support/fixtures.hpp"

namespace {

using polyinfer::Tokenizer;
using polyinfer::detail::TextStream;

bool valid_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const size_t length = byte < 0x80    ? 1
                          : byte >= 0xF0 ? 4
                          : byte >= 0xE0 ? 3
                          : byte >= 0xC0 ? 2
                                         : 0;
    if (length == 0 || i + length > text.size()) return false;
    for (size_t k = 1; k < length; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return false;
    }
    i += length;
  }
  return true;
}

}  // namespace

TEST_CASE("TextStream: pieces are whole characters and add up to the text", "[text_stream]") {
  for (const char* model : {"fixtures/models/tiny-llama", "fixtures/models/tiny-qwen2"}) {
    POLYINFER_SHARED_OR_RETURN(folder, model);
    const Tokenizer tokenizer = Tokenizer::load(folder);
    const std::string prompt_text = "Say:";
    const std::string output = " héllo wörld 日本語 🙂 done";
    const std::vector<int32_t> prompt = tokenizer.encode(prompt_text, {.add_special = true});
    const std::vector<int32_t> ids = tokenizer.encode(output, {});
    TextStream stream(tokenizer, prompt, {});
    std::string joined;
    for (const int32_t id : ids) {
      const std::string_view piece = stream.push(id);
      INFO(model << " piece after id " << id);
      CHECK(valid_utf8(piece));
      joined += piece;
    }
    joined += stream.finish();
    INFO(model);
    CHECK(joined == stream.text());
    CHECK(joined == output);
  }
}

TEST_CASE("TextStream: a stop string ends the text before it, across pieces", "[text_stream]") {
  POLYINFER_SHARED_OR_RETURN(folder, "fixtures/models/tiny-qwen2");
  const Tokenizer tokenizer = Tokenizer::load(folder);
  const std::vector<int32_t> ids = tokenizer.encode("alpha beta gamma delta", {});
  TextStream stream(tokenizer, {}, {"ta gam", "zzz"});
  std::string joined;
  for (const int32_t id : ids) {
    joined += stream.push(id);
    if (stream.stopped()) break;
  }
  joined += stream.finish();
  CHECK(stream.stopped());
  CHECK(stream.text() == "alpha be");
  CHECK(joined == "alpha be");
}
