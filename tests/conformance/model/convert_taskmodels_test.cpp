// SPDX-License-Identifier: Apache-2.0
// Converted task models, router and intent classifier: tokenizers as the folders, dev accuracy.
#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "conformance/model/convert_support.hpp"
#include "polyinfer/model.hpp"
#include "polyinfer/model_writer.hpp"
#include "support/fixtures.hpp"

namespace polyinfer::detail {
namespace {

namespace fs = std::filesystem;
using test::TempGguf;

std::vector<nlohmann::json> jsonl(const fs::path& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::vector<nlohmann::json> items;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) items.push_back(nlohmann::json::parse(line));
  }
  return items;
}

/// Every text tokenizes (with special tokens) and decodes as the Hugging Face folder does.
void check_same_tokens(const Tokenizer& gguf, const Tokenizer& hf,
                       const std::vector<std::string>& texts) {
  size_t same = 0;
  for (const std::string& text : texts) {
    INFO(text);
    const auto ids = gguf.encode(text, {.add_special = true});
    const bool equal =
        ids == hf.encode(text, {.add_special = true}) &&
        gguf.decode(ids, {.skip_special = true}) == hf.decode(ids, {.skip_special = true});
    CHECK(equal);
    same += equal ? 1 : 0;
  }
  CHECK(same == texts.size());
}

struct ClassifierDev {
  int64_t items = 0;
  int64_t correct = 0;
  int64_t same_pred = 0;
};

ClassifierDev classify_dev(const Encoder& encoder, const fs::path& dev) {
  const auto items = jsonl(dev);
  std::vector<std::string> texts;
  for (const auto& item : items) texts.push_back(item.at("text").get<std::string>());
  const std::vector<Encoding> ours = encoder.encode_batch(texts);
  ClassifierDev result;
  for (size_t i = 0; i < items.size(); ++i) {
    result.items += 1;
    result.correct += ours[i].label == items[i].at("label").get<int32_t>() ? 1 : 0;
    result.same_pred += ours[i].label == items[i].at("pred").get<int32_t>() ? 1 : 0;
  }
  return result;
}

}  // namespace

TEST_CASE("convert: byte-level BPE without merges and digit-splitting WordPiece stay HF-only",
          "[model][convert][conformance][taskmodels]") {
  POLYINFER_SHARED_OR_RETURN(small, "taskmodels/small");
  POLYINFER_SHARED_OR_RETURN(router, "taskmodels/router");
  POLYINFER_SHARED_OR_RETURN(intent, "intent");
  POLYINFER_SHARED_OR_RETURN(dev, "taskmodels/dev.jsonl");
  std::vector<std::string> prompts;
  for (const auto& item : jsonl(dev)) prompts.push_back(item.at("prompt").get<std::string>());

  const TempGguf small_out("convert-small");
  CHECK(convert_model(small, small_out.path(), {.type = WeightType::kQ8_0}).tokenizer == "hf");
  const ModelFile small_gguf = ModelFile::open(small_out.path());
  CHECK_FALSE(small_gguf.tokenizer().flavor() == TokenizerFlavor::kLlamaCpp);
  CHECK(small_gguf.tokenizer().flavor() == TokenizerFlavor::kHuggingFace);
  CHECK(small_gguf.tokenizer().bos_id() == 256);
  CHECK(small_gguf.tokenizer().eos_id() == 257);
  check_same_tokens(small_gguf.tokenizer(), Tokenizer::load(small), prompts);
  // generation_config.json's end ids [10, 257] survive as eos + eot.
  const LanguageModel lm = LanguageModel::load(small_out.path(), {.threads = 1});
  CHECK(std::vector<int32_t>(lm.eos_ids().begin(), lm.eos_ids().end()) ==
        std::vector<int32_t>{10, 257});

  const TempGguf router_out("convert-router");
  CHECK(convert_model(router, router_out.path(), {.type = WeightType::kQ8_0}).tokenizer == "hf");
  std::vector<std::string> router_texts;
  for (const auto& item : jsonl(router / "router-dev.jsonl")) {
    router_texts.push_back(item.at("text").get<std::string>());
  }
  check_same_tokens(ModelFile::open(router_out.path()).tokenizer(), Tokenizer::load(router),
                    router_texts);

  // The intent classifier's standard uncased WordPiece would map to llama.cpp's WPM, but that
  // has no 100-character word limit (cases.json has such a word): HF-only by default.
  const TempGguf intent_out("convert-intent");
  CHECK(convert_model(intent, intent_out.path(), {.type = WeightType::kQ8_0}).tokenizer == "hf");
  std::vector<std::string> intent_texts;
  for (const auto& item : jsonl(intent / "dev.jsonl")) {
    intent_texts.push_back(item.at("text").get<std::string>());
  }
  const auto cases = nlohmann::json::parse(test::read_file(intent / "cases.json"));
  for (const auto& item : cases.at("cases"))
    intent_texts.push_back(item.at("text").get<std::string>());
  check_same_tokens(ModelFile::open(intent_out.path()).tokenizer(), Tokenizer::load(intent),
                    intent_texts);
}

TEST_CASE("convert: bf16 weights to bf16 keep their bits (Q/K rows only reordered)",
          "[model][convert][conformance][taskmodels]") {
  POLYINFER_SHARED_OR_RETURN(large, "taskmodels/large");
  const TempGguf out("convert-large-bf16");
  (void)convert_model(large, out.path(), {.type = WeightType::kBF16});
  const ModelFile gguf = ModelFile::open(out.path());
  const ModelFile hf = ModelFile::open(large);
  REQUIRE(gguf.tensors().size() == hf.tensors().size());
  for (const TensorInfo& info : hf.tensors()) {
    INFO(info.name);
    const TensorView a = gguf.tensor(info.name);
    const TensorView b = hf.tensor(info.name);
    CHECK(a.dtype == (info.shape.size() == 2 ? DType::kBF16 : DType::kF32));
    CHECK(a.shape == b.shape);
    if (info.name.find("attn_q") != std::string::npos ||
        info.name.find("attn_k") != std::string::npos || a.dtype != b.dtype) {
      continue;  // permuted rows, or norms upcast to f32
    }
    REQUIRE(a.bytes == b.bytes);
    CHECK(std::memcmp(a.data, b.data, a.bytes) == 0);
  }
}

TEST_CASE("convert: q8_0 router and intent classifiers on their dev sets",
          "[model][convert][conformance][taskmodels]") {
  POLYINFER_SHARED_OR_RETURN(router, "taskmodels/router");
  POLYINFER_SHARED_OR_RETURN(intent, "intent");
  for (const auto& [name, folder, dev] : std::vector<std::tuple<std::string, fs::path, fs::path>>{
           {"router", router, router / "router-dev.jsonl"},
           {"intent", intent, intent / "dev.jsonl"}}) {
    for (const WeightType type : {WeightType::kF16, WeightType::kQ8_0}) {
      const TempGguf out("convert-" + name);
      (void)convert_model(folder, out.path(), {.type = type});
      const Encoder encoder = Encoder::load(out.path(), {.threads = 2});
      const ClassifierDev result = classify_dev(encoder, dev);
      std::cout << fmt::format(
          "convert | {:<6} {:<4} | accuracy {}/{} = {:.1f}%, same prediction "
          "as the fp32 reference {}/{}\n",
          name, weight_type_name(type), result.correct, result.items,
          100.0 * static_cast<double>(result.correct) / result.items, result.same_pred,
          result.items);
      CHECK(result.same_pred == result.items);
    }
  }
}

namespace {

/// Greedy outputs of a q8_0 conversion of a task model on dev.jsonl: exact-match accuracy next
/// to the fp32 reference's, and how many outputs are identical to the reference's.
void task_model_dev(const std::string& model_name) {
  POLYINFER_SHARED_OR_RETURN(dev, "taskmodels/dev.jsonl");
  POLYINFER_SHARED_OR_RETURN(folder, "taskmodels/" + model_name);
  const auto items = jsonl(dev);
  const TempGguf out("convert-task-" + model_name);
  (void)convert_model(folder, out.path(), {.type = WeightType::kQ8_0});
  LanguageModel model = LanguageModel::load(out.path(), {.threads = 2});
  int64_t correct = 0;
  int64_t reference_correct = 0;
  int64_t same_output = 0;
  for (const auto& item : items) {
    const auto& record = item.at("models").at(model_name);
    const std::vector<int32_t> ids =
        model.tokenizer().encode(item.at("prompt").get<std::string>(), {.add_special = true});
    const Generation generation = model.generate(ids, {.max_tokens = 16});
    std::string answer = item.at("answer").get<std::string>();
    answer = answer.substr(0, answer.find('\n'));
    const std::string& text = generation.text;
    const bool ended = generation.stop_reason == StopReason::kStopToken;
    correct += ended && text.substr(0, text.find('\n')) == answer ? 1 : 0;
    reference_correct += record.at("correct").get<bool>() ? 1 : 0;
    same_output += text == record.at("output").get<std::string>() ? 1 : 0;
  }
  const auto n = static_cast<double>(items.size());
  std::cout << fmt::format(
      "convert | {:<6} q8_0 | accuracy {:.1f}% (fp32 reference {:.1f}%), same output as the "
      "reference {}/{}\n",
      model_name, 100.0 * static_cast<double>(correct) / n,
      100.0 * static_cast<double>(reference_correct) / n, same_output, items.size());
  CHECK(std::abs(correct - reference_correct) <= static_cast<int64_t>(items.size()) / 50);
  CHECK(same_output >= static_cast<int64_t>(items.size()) * 98 / 100);
}

}  // namespace

TEST_CASE("convert: q8_0 small task model on dev.jsonl (greedy, exact match)",
          "[model][convert][conformance][taskmodels]") {
  task_model_dev("small");
}

// ~45 s on two cores: run with "[convert-slow]".
TEST_CASE("convert: q8_0 medium and large task models on dev.jsonl", "[.][convert-slow]") {
  task_model_dev("medium");
  task_model_dev("large");
}

}  // namespace polyinfer::detail
