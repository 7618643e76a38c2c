// SPDX-License-Identifier: Apache-2.0
// Encoder: bad input and bad models get a clear polyinfer::Error; nothing crashes.
#include <catch2/catch.hpp>

#include <thread>

#include "conformance/model/bert_support.hpp"
#include "conformance/model/bert_synthetic.hpp"
#include "model/bert.hpp"
#include "polyinfer/error.hpp"
#include "polyinfer/model.hpp"
#include "support/fixtures.hpp"

namespace {

namespace fs = std::filesystem;
using polyinfer::Encoder;
using polyinfer::Encoding;
using polyinfer::Error;
using polyinfer::ErrorCode;
using polyinfer::Tier;
using polyinfer::test::SyntheticBert;
using polyinfer::test::TempFolder;

/// Runs `action`, requires an Error of `code` whose what() contains every one of `parts`.
template <typename Action>
void expect_error(Action&& action, ErrorCode code, std::initializer_list<std::string> parts) {
  try {
    action();
    FAIL("no error thrown");
  } catch (const Error& e) {
    INFO(e.what());
    CHECK(e.code() == code);
    for (const std::string& part : parts)
      CHECK(std::string(e.what()).find(part) != std::string::npos);
  }
}

Encoder load_synthetic(const SyntheticBert& model, const TempFolder& folder,
                       Tier tier = Tier::kNative) {
  polyinfer::test::write_synthetic_bert(model, folder.path());
  return Encoder::load(folder.path(), {.tier = tier, .threads = 1});
}

}  // namespace

TEST_CASE("encoder text errors: empty, blank, longer than the positions", "[bert][errors]") {
  POLYINFER_SHARED_OR_RETURN(folder, "taskmodels/router");
  const Encoder encoder = Encoder::load(folder, {.threads = 1});
  REQUIRE(encoder.max_tokens() == 64);
  expect_error([&] { (void)encoder.encode(""); }, ErrorCode::kInvalidArgument, {"empty text"});
  expect_error([&] { (void)encoder.classify(" \t\n "); }, ErrorCode::kInvalidArgument,
               {"no tokens"});
  // "add", 60 digits, "=": 62 tokens, 64 with [CLS] and [SEP]: fits; one more does not.
  const std::string fits = "add " + std::string(60, '7') + " =";
  CHECK(encoder.encode(fits).ids.size() == 64);
  expect_error([&] { (void)encoder.encode(fits + " 1"); }, ErrorCode::kInvalidArgument,
               {"65 tokens long", "at most 64"});
  const std::vector<std::string> texts{"add 1 2 =", ""};
  expect_error([&] { (void)encoder.encode_batch(texts); }, ErrorCode::kInvalidArgument,
               {"text 1", "empty text"});
  CHECK(encoder.encode_batch(std::vector<std::string>{}).empty());
  CHECK(encoder.embed("add 1 2 =", polyinfer::Pooling::kPooler).size() == 128);
}

TEST_CASE("encoder id errors: empty, out of range, token types, too long", "[bert][errors]") {
  const TempFolder folder("bert-ids");
  const Encoder encoder = load_synthetic({}, folder);
  const std::vector<int32_t> ok{2, 5, 7, 3};
  const Encoding encoding = encoder.encode_ids(ok);
  CHECK(encoding.hidden.size() == 4 * 32);
  CHECK(encoding.probs.size() == 3);
  double total = 0;
  for (const float p : encoding.probs) total += p;
  CHECK(total == Approx(1.0));
  for (const float v : encoding.hidden) REQUIRE(std::isfinite(v));

  expect_error([&] { (void)encoder.encode_ids({}); }, ErrorCode::kInvalidArgument, {"no tokens"});
  const std::vector<int32_t> negative{2, -1, 3};
  expect_error([&] { (void)encoder.encode_ids(negative); }, ErrorCode::kInvalidArgument,
               {"token 1", "-1", "vocabulary of 40"});
  const std::vector<int32_t> beyond{2, 40, 3};
  expect_error([&] { (void)encoder.encode_ids(beyond); }, ErrorCode::kInvalidArgument, {"40"});
  const std::vector<int32_t> types_short{0, 0};
  expect_error([&] { (void)encoder.encode_ids(ok, types_short); }, ErrorCode::kInvalidArgument,
               {"2 token types for 4 tokens"});
  const std::vector<int32_t> types_bad{0, 1, 2, 0};
  expect_error([&] { (void)encoder.encode_ids(ok, types_bad); }, ErrorCode::kInvalidArgument,
               {"token type 2"});
  const std::vector<int32_t> types_ok{0, 0, 1, 1};
  CHECK(encoder.encode_ids(ok, types_ok).hidden != encoding.hidden);
  const std::vector<int32_t> long_ids(17, 5);
  expect_error([&] { (void)encoder.encode_ids(long_ids); }, ErrorCode::kInvalidArgument,
               {"17 tokens", "16 positions"});
  CHECK(encoder.encode_ids(std::vector<int32_t>(16, 5)).ids.size() == 16);
  // No tokenizer in the folder: text needs one.
  CHECK_FALSE(encoder.has_tokenizer());
  expect_error([&] { (void)encoder.encode("hello"); }, ErrorCode::kTokenizer, {"no tokenizer"});
}

TEST_CASE("encoder model errors: decoders, activations, missing or misshapen tensors",
          "[bert][errors]") {
  {
    POLYINFER_SHARED_OR_RETURN(llama, "fixtures/models/tiny-llama");
    expect_error([&] { (void)Encoder::load(llama); }, ErrorCode::kUnsupported,
                 {"\"llama\"", "LlamaForCausalLM", "not an encoder", "LanguageModel"});
    POLYINFER_SHARED_OR_RETURN(bert, "fixtures/models/tiny-bert");
    CHECK_THROWS_AS(polyinfer::LanguageModel::load(bert), Error);
  }
  expect_error([&] { (void)Encoder::load("/no/such/bert/folder"); }, ErrorCode::kIo,
               {"/no/such/bert/folder"});
  {
    const TempFolder folder("bert-act");
    expect_error([&] { (void)load_synthetic({.hidden_act = "gelu_new"}, folder); },
                 ErrorCode::kUnsupported, {"gelu_new"});
  }
  {
    const TempFolder folder("bert-missing");
    expect_error(
        [&] { (void)load_synthetic({.drop = "bert.encoder.layer.0.output.dense.weight"}, folder); },
        ErrorCode::kFormat, {"missing tensor", "bert.encoder.layer.0.output.dense.weight"});
  }
  {
    const TempFolder folder("bert-shape");
    SyntheticBert model;
    model.shape["bert.encoder.layer.0.intermediate.dense.weight"] = {65, 32};
    expect_error([&] { (void)load_synthetic(model, folder); }, ErrorCode::kFormat,
                 {"bert.encoder.layer.0.intermediate.dense.weight", "[65, 32]", "[64, 32]"});
  }
  {
    const TempFolder folder("bert-position");
    SyntheticBert model;
    model.shape["bert.embeddings.position_embeddings.weight"] = {16, 31};
    expect_error([&] { (void)load_synthetic(model, folder); }, ErrorCode::kFormat,
                 {"position_embeddings", "[16, 31]"});
  }
  {
    const TempFolder folder("bert-no-pooler");
    expect_error([&] { (void)load_synthetic({.pooler = false}, folder); }, ErrorCode::kFormat,
                 {"bert.pooler.dense.weight", "pooler"});
  }
  {
    // A tier whose blocks do not fit the rows names the tensor: 48 is no multiple of 32.
    const TempFolder folder("bert-tier");
    expect_error([&] { (void)load_synthetic({.hidden = 48, .heads = 3}, folder, Tier::kQ8_0); },
                 ErrorCode::kUnsupported, {"token_embd.weight", "word_embeddings", "q8_0", "48"});
  }
}

TEST_CASE("BertModel without a head: embeddings yes, classify no", "[bert][errors]") {
  const TempFolder folder("bert-base");
  const Encoder encoder = load_synthetic({.labels = 0}, folder);
  CHECK(encoder.has_pooler());
  CHECK_FALSE(encoder.has_classifier());
  CHECK(encoder.labels().empty());
  const Encoding encoding = encoder.encode_ids(std::vector<int32_t>{2, 9, 3});
  CHECK(encoding.pooled.size() == 32);
  CHECK(encoding.logits.empty());
  CHECK(encoding.label == -1);
  expect_error([&] { (void)encoder.classify("x"); }, ErrorCode::kInvalidArgument,
               {"no classifier", "BertModel"});

  const TempFolder bare("bert-bare");
  const Encoder no_pooler = load_synthetic({.labels = 0, .pooler = false}, bare);
  CHECK_FALSE(no_pooler.has_pooler());
  CHECK(no_pooler.encode_ids(std::vector<int32_t>{2, 9, 3}).pooled.empty());
  expect_error([&] { (void)no_pooler.embed("x", polyinfer::Pooling::kPooler); },
               ErrorCode::kInvalidArgument, {"no pooler"});
}

TEST_CASE("encoder calls from several threads at once give the serial results", "[bert][threads]") {
  POLYINFER_SHARED_OR_RETURN(folder, "intent");
  const Encoder encoder = Encoder::load(folder, {.threads = 2});
  const auto items = polyinfer::test::read_jsonl(folder / "dev.jsonl");
  std::vector<std::string> texts;
  for (size_t i = 0; i < 40; ++i) texts.push_back(items[i].at("text").get<std::string>());
  std::vector<std::vector<float>> serial;
  for (const std::string& text : texts) serial.push_back(encoder.encode(text).logits);

  std::vector<std::vector<std::vector<float>>> parallel(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < parallel.size(); ++t) {
    threads.emplace_back([&, t] {
      for (const std::string& text : texts) parallel[t].push_back(encoder.encode(text).logits);
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const auto& results : parallel) CHECK(results == serial);
  // A batch gives the same logits as single texts, within float rounding.
  const std::vector<Encoding> batch = encoder.encode_batch(texts);
  polyinfer::test::MaxDiff diff;
  for (size_t i = 0; i < texts.size(); ++i) diff.add(batch[i].logits, serial[i].data());
  CHECK(diff.max_abs <= 1e-5);
}
