// SPDX-License-Identifier: Apache-2.0
// The task models (small / medium / large) reproduce dev.jsonl's greedy outputs token for token.
#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "polyinfer/model.hpp"
#include "support/fixtures.hpp"

namespace {

struct DevItem {
  std::string id;
  std::string prompt;
  std::string output;
  int n_gen_tokens = 0;
  double min_top1_prob = 0.0;
  std::string stop;
};

std::vector<DevItem> dev_items(const std::filesystem::path& path, const std::string& model) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::vector<DevItem> items;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const auto json = nlohmann::json::parse(line);
    const auto& record = json.at("models").at(model);
    items.push_back({json.at("id").get<std::string>(), json.at("prompt").get<std::string>(),
                     record.at("output").get<std::string>(), record.at("n_gen_tokens").get<int>(),
                     record.at("min_top1_prob").get<double>(),
                     record.at("stop").get<std::string>()});
  }
  return items;
}

/// Greedy generation as dev.jsonl was made: fp32, stop at "\n" or </s>, at most 16 tokens.
/// (Tier f32: the native bf16 kernels round activations to bf16 for batches, as llama.cpp's.)
void reproduce(const std::string& model_name, size_t limit) {
  POLYINFER_SHARED_OR_RETURN(folder, "taskmodels/" + model_name);
  POLYINFER_SHARED_OR_RETURN(dev, "taskmodels/dev.jsonl");
  std::vector<DevItem> items = dev_items(dev, model_name);
  if (items.size() > limit) items.resize(limit);
  polyinfer::LanguageModel model =
      polyinfer::LanguageModel::load(folder, {.tier = polyinfer::Tier::kF32, .threads = 1});
  // generation_config.json's eos_token_id [10, 257]: newline and </s>.
  CHECK(std::vector<int32_t>(model.eos_ids().begin(), model.eos_ids().end()) ==
        std::vector<int32_t>{10, 257});
  size_t same = 0;
  double worst_confidence = 0.0;
  for (const DevItem& item : items) {
    const std::vector<int32_t> ids = model.tokenizer().encode(item.prompt, {.add_special = true});
    REQUIRE(ids.size() == item.prompt.size() + 1);  // <s> then one id per byte
    const polyinfer::Generation generation = model.generate(ids, {.max_tokens = 16});
    const bool equal = generation.text == item.output &&
                       static_cast<int>(generation.ids.size()) == item.n_gen_tokens;
    INFO(model_name << " " << item.id << " '" << item.prompt << "': got '" << generation.text
                    << "' (" << generation.ids.size() << " ids), expected '" << item.output << "' ("
                    << item.n_gen_tokens << ")");
    CHECK(equal);
    same += equal ? 1 : 0;
    const std::string stop = generation.stop_reason == polyinfer::StopReason::kMaxTokens
                                 ? "max_tokens"
                             : !generation.ids.empty() && generation.ids.back() == 10 ? "newline"
                                                                                      : "eos";
    CHECK(stop == item.stop);
    float min_top = 0.0f;
    for (const float top : generation.top_logprobs) min_top = std::min(min_top, top);
    const double confidence_diff = std::fabs(std::exp(min_top) - item.min_top1_prob);
    worst_confidence = std::max(worst_confidence, confidence_diff);
  }
  std::cout << fmt::format(
      "taskmodels  | {:<6} | {}/{} dev outputs identical | max |min_top1_prob diff| {:.2g}\n",
      model_name, same, items.size(), worst_confidence);
  CHECK(worst_confidence < 1e-4);
}

}  // namespace

TEST_CASE("taskmodels: small reproduces all 600 dev outputs, medium and large the first 100",
          "[llama][taskmodels]") {
  reproduce("small", 600);
  reproduce("medium", 100);
  reproduce("large", 100);  // stored in bf16; tier f32 upcasts it exactly
}

TEST_CASE("taskmodels: medium and large reproduce all 600 dev outputs", "[.][slow][taskmodels]") {
  reproduce("medium", 600);
  reproduce("large", 600);
}
