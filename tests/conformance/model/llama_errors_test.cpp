// SPDX-License-Identifier: Apache-2.0
// LanguageModel on bad input: clear errors, never a crash.
#include <fmt/ranges.h>
#include <catch2/catch.hpp>

#include <fstream>
#include <numeric>

#include "format/safetensors.hpp"
#include "polyinfer/error.hpp"
#include "polyinfer/model.hpp"
#include "support/fixtures.hpp"
#include "unit/model/safetensors_builder.hpp"

namespace {

using polyinfer::Error;
using polyinfer::ErrorCode;
using polyinfer::GenerationOptions;
using polyinfer::LanguageModel;
using polyinfer::LoadOptions;
using polyinfer::Tier;

/// Runs `body`, which must throw polyinfer::Error of `code` whose text contains `needle`.
template <typename Body>
void expect_error(Body&& body, ErrorCode code, const std::string& needle) {
  try {
    body();
    FAIL("no error; expected one containing '" << needle << "'");
  } catch (const Error& e) {
    INFO(e.what());
    CHECK(e.code() == code);
    CHECK_THAT(e.what(), Catch::Contains(needle));
  }
}

}  // namespace

TEST_CASE("LanguageModel: bad prompts and options are clear errors", "[llama][errors]") {
  POLYINFER_SHARED_OR_RETURN(folder, "fixtures/models/tiny-llama");
  LanguageModel model = LanguageModel::load(folder, {.threads = 1, .context_length = 16});
  CHECK(model.context_length() == 16);
  const std::vector<int32_t> empty;
  expect_error([&] { (void)model.logits(empty); }, ErrorCode::kInvalidArgument, "empty prompt");
  expect_error([&] { (void)model.generate(empty); }, ErrorCode::kInvalidArgument, "empty prompt");

  std::vector<int32_t> long_prompt(17);
  std::iota(long_prompt.begin(), long_prompt.end(), 3);
  expect_error([&] { (void)model.logits(long_prompt); }, ErrorCode::kInvalidArgument,
               "do not fit the context of 16");
  expect_error([&] { (void)model.generate(long_prompt); }, ErrorCode::kInvalidArgument,
               "do not fit the context of 16");

  const std::vector<int32_t> out_of_range{1, 512};
  expect_error([&] { (void)model.logits(out_of_range); }, ErrorCode::kInvalidArgument,
               "id 512 is out of range");
  const std::vector<int32_t> negative{1, -3};
  expect_error([&] { (void)model.generate(negative); }, ErrorCode::kInvalidArgument,
               "id -3 is out of range");

  const std::vector<int32_t> ok{1, 300, 301};
  expect_error([&] { (void)model.generate(ok, {.max_tokens = -1}); }, ErrorCode::kInvalidArgument,
               "max_tokens");
  expect_error([&] { (void)model.generate(ok, {.sampling = {.temperature = -1.0f}}); },
               ErrorCode::kInvalidArgument, "temperature");
  expect_error([&] { (void)model.generate(ok, {.sampling = {.top_p = 0.0f}}); },
               ErrorCode::kInvalidArgument, "top_p");

  // A prompt that fills the context still yields one token, then stops.
  std::vector<int32_t> full(16);
  std::iota(full.begin(), full.end(), 3);
  const auto generation = model.generate(full, {.max_tokens = 5, .stop_at_eos = false});
  CHECK(generation.ids.size() == 1);
  CHECK(generation.stop_reason == polyinfer::StopReason::kContextFull);
  // After all that the model still works.
  CHECK(model.logits(ok).size() == 3 * 512);

  expect_error([&] { (void)LanguageModel::load(folder, {.context_length = 100000}); },
               ErrorCode::kInvalidArgument, "exceeds the 512 positions");
}

TEST_CASE("LanguageModel: tiers the weights cannot make are clear errors", "[llama][errors]") {
  POLYINFER_SHARED_OR_RETURN(gguf, "fixtures/models/tiny-llama/gguf/tiny-llama-q4_0.gguf");
  expect_error([&] { (void)LanguageModel::load(gguf, {.tier = Tier::kQ8_0}); },
               ErrorCode::kUnsupported, "tier q8_0 cannot be made from q4_0 weights");
  expect_error([&] { (void)LanguageModel::load(gguf, {.tier = Tier::kF16}); },
               ErrorCode::kUnsupported, "cannot be made from");
  // Dequantizing is exact, so f32 can be made from anything.
  CHECK(LanguageModel::load(gguf, {.tier = Tier::kF32, .threads = 1}).tier() == Tier::kF32);

  POLYINFER_SHARED_OR_RETURN(small, "taskmodels/small");  // hidden 128: no q4_k blocks of 256
  expect_error([&] { (void)LanguageModel::load(small, {.tier = Tier::kQ4_K}); },
               ErrorCode::kUnsupported, "multiple of 256");
  // q4_0 works there; its output matrix falls back from q6_k to q8_0 as llama.cpp's does.
  CHECK(LanguageModel::load(small, {.tier = Tier::kQ4_0, .threads = 1}).tier() == Tier::kQ4_0);

  CHECK(polyinfer::tier_from_name("Q4_K") == Tier::kQ4_K);
  CHECK(polyinfer::tier_from_name("native") == Tier::kNative);
  CHECK_FALSE(polyinfer::tier_from_name("q5_k").has_value());
  CHECK(polyinfer::tier_name(Tier::kQ8_0) == "q8_0");
}

TEST_CASE("LanguageModel: unsupported architectures and missing tensors are named",
          "[llama][errors]") {
  POLYINFER_SHARED_OR_RETURN(bert, "fixtures/models/tiny-bert");
  expect_error([&] { (void)LanguageModel::load(bert); }, ErrorCode::kUnsupported,
               "architecture \"bert\"");

  POLYINFER_SHARED_OR_RETURN(folder, "fixtures/models/tiny-llama");
  const polyinfer::test::TempFolder temp("polyinfer-llama-missing");
  std::filesystem::copy_file(folder / "config.json", temp.path() / "config.json");
  const auto weights = polyinfer::detail::SafetensorsFile::open(folder / "model.safetensors");
  std::vector<polyinfer::test::SafetensorsEntry> entries;
  for (const auto& tensor : weights.tensors()) {
    if (tensor.name == "model.layers.1.mlp.up_proj.weight") continue;
    const std::string shape = fmt::format("[{}]", fmt::join(tensor.shape, ","));
    entries.push_back({tensor.name, "F32", shape,
                       std::string(reinterpret_cast<const char*>(tensor.data), tensor.bytes()),
                       ""});
  }
  polyinfer::test::write_binary(temp.path() / "model.safetensors",
                                polyinfer::test::safetensors_image(entries));
  expect_error([&] { (void)LanguageModel::load(temp.path()); }, ErrorCode::kFormat,
               "blk.1.ffn_up.weight");

  expect_error([&] { (void)LanguageModel::load(folder / "no-such-model.gguf"); }, ErrorCode::kIo,
               "no-such-model.gguf");
}
