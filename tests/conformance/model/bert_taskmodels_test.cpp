// SPDX-License-Identifier: Apache-2.0
// The trained BERT classifiers (intent, router) against transformers and their dev predictions.
#include <catch2/catch.hpp>

#include <map>

#include "conformance/model/bert_support.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "model/bert.hpp"
#include "polyinfer/model.hpp"
#include "support/fixtures.hpp"

namespace {

namespace fs = std::filesystem;
using polyinfer::Encoder;
using polyinfer::Encoding;
using polyinfer::test::bert_report;
using polyinfer::test::BertReference;
using polyinfer::test::MaxDiff;

constexpr double kF32Bound = 1e-4;    // × scale (fixtures README)
constexpr double kProbsBound = 1e-4;  // dev.jsonl probabilities are rounded to 6 decimals

/// cases.json + reference.safetensors of a trained classifier: tokens, every layer's hidden
/// states, pooler output, batch and single logits, probabilities and predictions.
void check_reference_cases(const fs::path& folder, std::string_view model_name) {
  const BertReference reference(folder / "reference.safetensors");
  const auto cases = nlohmann::json::parse(polyinfer::test::read_file(folder / "cases.json"));
  const Encoder encoder = Encoder::load(folder, {.threads = 2});
  REQUIRE(encoder.has_classifier());
  const int64_t hidden = encoder.config().hidden_size;
  const auto labels = static_cast<int64_t>(encoder.labels().size());

  std::vector<std::string> texts;
  for (const auto& item : cases.at("cases")) texts.push_back(item.at("text").get<std::string>());
  const auto rows = reference.unpadded("input_ids", "attention_mask");
  REQUIRE(rows.size() == texts.size());
  const std::vector<Encoding> ours = encoder.encode_batch(texts);

  const std::vector<float> batch_logits = reference.f32("logits");
  const std::vector<float> single_logits = reference.f32("logits_single");
  const std::vector<float> pooler = reference.f32("pooler_output");
  MaxDiff logits_diff, single_diff, pooler_diff, probs_diff;
  for (size_t i = 0; i < texts.size(); ++i) {
    INFO(model_name << " case " << i << ": " << texts[i]);
    const auto& item = cases.at("cases")[i];
    const auto row = static_cast<int64_t>(i);
    CHECK(ours[i].ids == item.at("input_ids").get<std::vector<int32_t>>());
    CHECK(ours[i].ids == rows[i]);
    logits_diff.add(ours[i].logits, batch_logits.data() + row * labels);
    single_diff.add(ours[i].logits, single_logits.data() + row * labels);
    pooler_diff.add(ours[i].pooled, pooler.data() + row * hidden);
    const auto probs = item.at("probs").get<std::vector<float>>();
    probs_diff.add(ours[i].probs, probs.data());
    CHECK(ours[i].label == item.at("pred").get<int32_t>());
  }
  bert_report(model_name, "logits (batch)", logits_diff, kF32Bound);
  bert_report(model_name, "logits (single)", single_diff, kF32Bound);
  bert_report(model_name, "pooler_output", pooler_diff, kF32Bound);
  bert_report(model_name, "probs", probs_diff, kF32Bound);
  CHECK(logits_diff.within(kF32Bound));
  CHECK(single_diff.within(kF32Bound));
  CHECK(pooler_diff.within(kF32Bound));
  CHECK(probs_diff.within(kF32Bound));

  // Every layer's hidden states, the batch run unpadded through the model with an observer.
  const polyinfer::ModelFile file = polyinfer::ModelFile::open(folder);
  const auto model = polyinfer::detail::BertModel::load(file, polyinfer::Tier::kNative);
  polyinfer::detail::ThreadPool pool(2);
  std::map<std::string, std::vector<float>> seen;
  const polyinfer::detail::EncoderObserver observer = [&](std::string_view name, const float* data,
                                                          int64_t count, int64_t cols) {
    seen[std::string(name)].assign(data, data + count * cols);
  };
  std::vector<polyinfer::detail::BertSequence> batch;
  for (const auto& ids : rows) batch.push_back({ids, {}});
  const auto outputs = model->forward(batch, &pool, &observer);
  const int64_t padded = reference.shape("input_ids")[1];
  for (int64_t l = 0; l <= model->shape().layers; ++l) {
    const std::vector<float> expected = reference.f32(fmt::format("hidden_states.{}", l));
    const std::vector<float>& layer =
        seen.at(l == 0 ? std::string("embeddings") : fmt::format("layer{}.out", l - 1));
    MaxDiff diff;
    for (size_t b = 0; b < rows.size(); ++b) {
      const int64_t first = outputs.first[b];
      const auto count = static_cast<int64_t>(rows[b].size());
      diff.add(layer.data() + first * hidden,
               expected.data() + static_cast<int64_t>(b) * padded * hidden, count * hidden);
    }
    bert_report(model_name, fmt::format("hidden_states.{}", l), diff, kF32Bound);
    CHECK(diff.within(kF32Bound));
  }
}

struct DevResult {
  int64_t items = 0;
  int64_t correct = 0;    // prediction == label
  int64_t same_pred = 0;  // prediction == the stored pred
  MaxDiff probs;
};

/// Classifies every dev sentence in one batch; compares with the stored `pred` and `probs`.
DevResult run_dev(const Encoder& encoder, const fs::path& dev) {
  const auto items = polyinfer::test::read_jsonl(dev);
  std::vector<std::string> texts;
  for (const auto& item : items) texts.push_back(item.at("text").get<std::string>());
  const std::vector<Encoding> ours = encoder.encode_batch(texts);
  DevResult result;
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& item = items[i];
    INFO(item.at("text").get<std::string>());
    const int32_t label = item.at("label").get<int32_t>();
    const int32_t pred = item.at("pred").get<int32_t>();
    CHECK(ours[i].label == pred);
    if (item.contains("n_tokens")) {
      CHECK(static_cast<int64_t>(ours[i].ids.size()) == item.at("n_tokens").get<int64_t>());
    }
    result.correct += ours[i].label == label ? 1 : 0;
    result.same_pred += ours[i].label == pred ? 1 : 0;
    const auto probs = item.at("probs").get<std::vector<float>>();
    REQUIRE(probs.size() == ours[i].probs.size());
    result.probs.add(ours[i].probs, probs.data());
    ++result.items;
  }
  return result;
}

}  // namespace

TEST_CASE("intent classifier matches transformers on its reference cases",
          "[bert][conformance][intent]") {
  POLYINFER_SHARED_OR_RETURN(folder, "intent");
  check_reference_cases(folder, "intent");
}

TEST_CASE("router classifier matches transformers on its reference cases",
          "[bert][conformance][router]") {
  POLYINFER_SHARED_OR_RETURN(folder, "taskmodels/router");
  check_reference_cases(folder, "router");
}

TEST_CASE("intent classifier reproduces dev.jsonl: 99.0% accuracy, the same 400 predictions",
          "[bert][conformance][intent]") {
  POLYINFER_SHARED_OR_RETURN(folder, "intent");
  const Encoder encoder = Encoder::load(folder, {.threads = 2});
  const DevResult dev = run_dev(encoder, folder / "dev.jsonl");
  std::cout << fmt::format(
      "conformance | intent     | dev.jsonl              | accuracy {}/{} = {:.1f}%, same pred "
      "{}/{}, probs {}\n",
      dev.correct, dev.items, 100.0 * static_cast<double>(dev.correct) / dev.items, dev.same_pred,
      dev.items, dev.probs.summary());
  CHECK(dev.items == 400);
  CHECK(dev.correct == 396);  // README: 99.0%
  CHECK(dev.same_pred == dev.items);
  CHECK(dev.probs.max_abs <= kProbsBound);
}

TEST_CASE("router classifier reproduces router-dev.jsonl: the same 600 predictions",
          "[bert][conformance][router]") {
  POLYINFER_SHARED_OR_RETURN(folder, "taskmodels/router");
  const Encoder encoder = Encoder::load(folder, {.threads = 2});
  const DevResult dev = run_dev(encoder, folder / "router-dev.jsonl");
  std::cout << fmt::format(
      "conformance | router     | router-dev.jsonl       | accuracy {}/{} = {:.1f}%, same pred "
      "{}/{}, probs {}\n",
      dev.correct, dev.items, 100.0 * static_cast<double>(dev.correct) / dev.items, dev.same_pred,
      dev.items, dev.probs.summary());
  CHECK(dev.items == 600);
  CHECK(dev.correct == 569);  // README: 94.8%
  CHECK(dev.same_pred == dev.items);
  CHECK(dev.probs.max_abs <= kProbsBound);
}
