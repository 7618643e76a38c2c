// SPDX-License-Identifier: Apache-2.0
// LanguageModel::generate: streaming, cancellation, stop ids and strings, seeded sampling.
#include <catch2/catch.hpp>

#include <cmath>

#include "polyinfer/model.hpp"
#include "support/fixtures.hpp"

namespace {

using polyinfer::GeneratedToken;
using polyinfer::Generation;
using polyinfer::LanguageModel;
using polyinfer::StopReason;

}  // namespace

TEST_CASE("generate: streamed pieces add up to the text, and a callback can cancel",
          "[llama][generate]") {
  POLYINFER_SHARED_OR_RETURN(folder, "fixtures/models/tiny-llama");
  LanguageModel model = LanguageModel::load(folder, {.threads = 1});
  std::string streamed;
  int calls = 0;
  const std::vector<int32_t> prompt = model.tokenizer().encode("Once upon", {.add_special = true});
  const polyinfer::GenerationOptions options{
      .max_tokens = 20, .sampling = {.temperature = 0.9f, .seed = 3}, .stop_at_eos = false};
  const Generation full = model.generate(prompt, options, [&](const GeneratedToken& token) {
    streamed += token.text;
    ++calls;
    CHECK(token.logprob <= token.top_logprob + 1e-6f);
    return true;
  });
  CHECK(calls == 20);
  CHECK(full.ids.size() == 20);
  CHECK(full.stop_reason == StopReason::kMaxTokens);
  CHECK(streamed == full.text);
  CHECK(full.logprobs.size() == 20);
  CHECK(full.top_logprobs.size() == 20);

  int seen = 0;
  const Generation cut =
      model.generate(prompt, options, [&](const GeneratedToken&) { return ++seen < 3; });
  CHECK(cut.stop_reason == StopReason::kCancelled);
  CHECK(cut.ids.size() == 3);
  // The same seed draws the same tokens (the prompt now comes from the prefix cache or not).
  CHECK(std::vector<int32_t>(full.ids.begin(), full.ids.begin() + 3) == cut.ids);
  const Generation again = model.generate(prompt, options);
  CHECK(again.ids == full.ids);
  const Generation other_seed = model.generate(
      prompt,
      {.max_tokens = 20, .sampling = {.temperature = 0.9f, .seed = 4}, .stop_at_eos = false});
  CHECK(other_seed.ids != full.ids);
}

TEST_CASE("generate: stop ids and stop strings", "[llama][generate]") {
  POLYINFER_SHARED_OR_RETURN(small, "taskmodels/small");
  LanguageModel model = LanguageModel::load(small, {.threads = 1});
  const Generation plain = model.generate(std::string_view("rev hello ="));
  CHECK(plain.text == "olleh\n");
  CHECK(plain.stop_reason == StopReason::kStopToken);
  CHECK(plain.ids.back() == 10);

  const Generation by_string = model.generate(std::string_view("rev hello ="),
                                              {.stop_at_eos = false, .stop_strings = {"ll"}});
  CHECK(by_string.text == "o");
  CHECK(by_string.stop_reason == StopReason::kStopString);
  CHECK(by_string.ids.size() == 3);  // "o", "l", "l"

  const Generation by_id =
      model.generate(std::string_view("rev hello ="), {.stop_ids = {int32_t{'e'}}});  // 'e' = 101
  CHECK(by_id.text == "olle");
  CHECK(by_id.stop_reason == StopReason::kStopToken);

  const Generation none = model.generate(std::string_view("rev hello ="), {.max_tokens = 0});
  CHECK(none.ids.empty());
  CHECK(none.stop_reason == StopReason::kMaxTokens);
  CHECK(none.prompt_tokens == 12);

  // Without EOS the answer runs on to the token limit.
  const Generation no_eos =
      model.generate(std::string_view("rev hello ="), {.max_tokens = 9, .stop_at_eos = false});
  CHECK(no_eos.ids.size() == 9);
  CHECK(no_eos.text.starts_with("olleh\n"));
  CHECK(polyinfer::stop_reason_name(no_eos.stop_reason) == "max_tokens");
}
