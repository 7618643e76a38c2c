// SPDX-License-Identifier: Apache-2.0
// tiny-bert against transformers: hidden states per layer, CLS, pooler, mean, logits (1e-4 ×
// scale).
#include <catch2/catch.hpp>

#include <map>

#include "conformance/model/bert_support.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "model/bert.hpp"
#include "polyinfer/model.hpp"
#include "support/fixtures.hpp"

namespace {

using polyinfer::Encoder;
using polyinfer::Encoding;
using polyinfer::test::bert_report;
using polyinfer::test::BertReference;
using polyinfer::test::MaxDiff;

constexpr double kF32Bound = 1e-4;  // × scale (fixtures README)

}  // namespace

TEST_CASE("tiny-bert f32 matches transformers on every case, padded batch unpadded",
          "[bert][conformance]") {
  POLYINFER_SHARED_OR_RETURN(folder, "fixtures/models/tiny-bert");
  const BertReference reference(folder / "reference.safetensors");
  const auto cases = nlohmann::json::parse(polyinfer::test::read_file(folder / "cases.json"));
  const Encoder encoder = Encoder::load(folder, {.threads = 2});
  REQUIRE(encoder.has_pooler());
  REQUIRE(encoder.has_classifier());
  CHECK(encoder.max_tokens() == 512);
  CHECK(std::vector<std::string>(encoder.labels().begin(), encoder.labels().end()) ==
        std::vector<std::string>{"investment_advice", "risk_assessment", "document_processing",
                                 "general_query"});
  const int64_t hidden = encoder.config().hidden_size;
  const int64_t labels = 4;

  MaxDiff last_hidden, cls, pooler, mean, logits;
  int sequences = 0;
  for (const auto& item : cases.at("cases")) {
    const std::string name = item.at("name").get<std::string>();
    INFO(name);
    const auto rows = reference.unpadded(name + ".ids", name + ".attention_mask");
    const std::vector<int64_t> dims = reference.shape(name + ".ids");
    const int64_t padded = dims[1];
    // The texts tokenize to the reference ids.
    const auto texts = item.at("texts").get<std::vector<std::string>>();
    REQUIRE(texts.size() == rows.size());
    for (size_t b = 0; b < texts.size(); ++b) {
      CHECK(encoder.tokenizer().encode(texts[b], {.add_special = true}) == rows[b]);
    }
    // The whole case as one batch of unpadded sequences.
    const std::vector<Encoding> ours = encoder.encode_ids_batch(rows);
    const std::vector<float> ref_hidden = reference.f32(name + ".last_hidden_state");
    const std::vector<float> ref_cls = reference.f32(name + ".cls_hidden");
    const std::vector<float> ref_pooler = reference.f32(name + ".pooler_output");
    const std::vector<float> ref_mean = reference.f32(name + ".mean_pooled");
    const std::vector<float> ref_logits = reference.f32(name + ".logits");
    for (size_t b = 0; b < rows.size(); ++b) {
      const auto row = static_cast<int64_t>(b);
      const Encoding& encoding = ours[b];
      REQUIRE(static_cast<int64_t>(encoding.hidden.size()) ==
              static_cast<int64_t>(rows[b].size()) * hidden);
      last_hidden.add(encoding.hidden, ref_hidden.data() + row * padded * hidden);
      cls.add(encoding.cls, ref_cls.data() + row * hidden);
      pooler.add(encoding.pooled, ref_pooler.data() + row * hidden);
      mean.add(encoding.mean, ref_mean.data() + row * hidden);
      logits.add(encoding.logits, ref_logits.data() + row * labels);
      CHECK(encoding.label == polyinfer::test::argmax_of(ref_logits.data() + row * labels, labels));
      ++sequences;
    }
  }
  CHECK(sequences == 8);
  bert_report("tiny-bert", "last_hidden_state", last_hidden, kF32Bound);
  bert_report("tiny-bert", "cls_hidden", cls, kF32Bound);
  bert_report("tiny-bert", "pooler_output", pooler, kF32Bound);
  bert_report("tiny-bert", "mean_pooled", mean, kF32Bound);
  bert_report("tiny-bert", "logits", logits, kF32Bound);
  CHECK(last_hidden.within(kF32Bound));
  CHECK(cls.within(kF32Bound));
  CHECK(pooler.within(kF32Bound));
  CHECK(mean.within(kF32Bound));
  CHECK(logits.within(kF32Bound));
}

TEST_CASE("tiny-bert f32 hidden states after the embeddings and each layer (case0)",
          "[bert][conformance]") {
  POLYINFER_SHARED_OR_RETURN(folder, "fixtures/models/tiny-bert");
  const BertReference reference(folder / "reference.safetensors");
  const polyinfer::ModelFile file = polyinfer::ModelFile::open(folder);
  const auto model = polyinfer::detail::BertModel::load(file, polyinfer::Tier::kNative);
  polyinfer::detail::ThreadPool pool(2);

  const std::vector<int32_t> ids = reference.ints("case0.ids");
  const std::vector<int32_t> types = reference.ints("case0.token_type_ids");
  std::map<std::string, std::vector<float>> seen;
  const polyinfer::detail::EncoderObserver observer = [&](std::string_view name, const float* data,
                                                          int64_t rows, int64_t cols) {
    seen[std::string(name)].assign(data, data + rows * cols);
  };
  const polyinfer::detail::BertSequence sequence{ids, types};
  const auto outputs = model->forward(std::span(&sequence, 1), &pool, &observer);

  const std::vector<int64_t> dims = reference.shape("case0.hidden_states");  // [3, 1, T, H]
  REQUIRE(dims.size() == 4);
  const std::vector<float> expected = reference.f32("case0.hidden_states");
  const int64_t per_layer = dims[1] * dims[2] * dims[3];
  const char* names[] = {"embeddings", "layer0.out", "layer1.out"};
  REQUIRE(dims[0] == 3);
  for (int64_t l = 0; l < dims[0]; ++l) {
    const std::vector<float>& ours = seen.at(names[l]);
    REQUIRE(static_cast<int64_t>(ours.size()) == per_layer);
    MaxDiff diff;
    diff.add(ours, expected.data() + l * per_layer);
    bert_report("tiny-bert", fmt::format("hidden_states[{}]", l), diff, kF32Bound);
    CHECK(diff.within(kF32Bound));
  }
  CHECK(outputs.hidden == seen.at("layer1.out"));
}
