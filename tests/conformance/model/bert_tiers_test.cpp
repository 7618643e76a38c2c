// SPDX-License-Identifier: Apache-2.0
// Encoder tiers: stored f16 / bf16 run in place; q8_0 / q4_0 / q4_k / f16 derived at load vs f32.
#include <catch2/catch.hpp>

#include <map>

#include "conformance/model/bert_support.hpp"
#include "conformance/model/bert_synthetic.hpp"
#include "format/gguf.hpp"
#include "model/bert.hpp"
#include "polyinfer/error.hpp"
#include "polyinfer/model.hpp"
#include "support/fixtures.hpp"

namespace {

namespace fs = std::filesystem;
using polyinfer::DType;
using polyinfer::Encoder;
using polyinfer::Encoding;
using polyinfer::Tier;
using polyinfer::test::BertReference;
using polyinfer::test::MaxDiff;

struct TierBound {
  Tier tier;
  double logits;     ///< max |logits − f32 logits| ≤ logits × scale
  double agreement;  ///< fraction of labels equal to the f32 labels, at least
};

// Measured on these models (see the report lines): f16 ≤ 1.4e-4, q8_0 ≤ 0.01, 4-bit ≤ 0.05
// of the logits' scale, every label the same; the bounds leave room for other kernels.
constexpr TierBound kTiers[] = {
    {Tier::kF16, 1e-3, 1.0},
    {Tier::kQ8_0, 0.02, 0.99},
    {Tier::kQ4_0, 0.1, 0.97},
    {Tier::kQ4_K, 0.1, 0.97},
};

/// The texts (or reference ids) a model is measured on.
struct Workload {
  std::vector<std::vector<int32_t>> ids;
  std::vector<int32_t> labels;  ///< true labels where known (dev sets), else empty
};

Workload tiny_bert_workload(const fs::path& folder) {
  const BertReference reference(folder / "reference.safetensors");
  Workload workload;
  for (int c = 0; reference.has(fmt::format("case{}.ids", c)); ++c) {
    for (auto& row : reference.unpadded(fmt::format("case{}.ids", c),
                                        fmt::format("case{}.attention_mask", c))) {
      workload.ids.push_back(std::move(row));
    }
  }
  return workload;
}

Workload dev_workload(const Encoder& encoder, const fs::path& dev) {
  Workload workload;
  for (const auto& item : polyinfer::test::read_jsonl(dev)) {
    workload.ids.push_back(
        encoder.tokenizer().encode(item.at("text").get<std::string>(), {.add_special = true}));
    workload.labels.push_back(item.at("label").get<int32_t>());
  }
  return workload;
}

/// Each tier against f32 on `workload`: logits and mean-pooled embeddings, label agreement.
void compare_tiers(const fs::path& folder, std::string_view name, const Workload& workload) {
  const Encoder f32 = Encoder::load(folder, {.tier = Tier::kF32, .threads = 2});
  const std::vector<Encoding> base = f32.encode_ids_batch(workload.ids);
  for (const TierBound& bound : kTiers) {
    const Encoder encoder = Encoder::load(folder, {.tier = bound.tier, .threads = 2});
    const std::vector<Encoding> ours = encoder.encode_ids_batch(workload.ids);
    MaxDiff logits, mean;
    int64_t agree = 0, correct = 0;
    for (size_t i = 0; i < ours.size(); ++i) {
      logits.add(ours[i].logits, base[i].logits.data());
      mean.add(ours[i].mean, base[i].mean.data());
      agree += ours[i].label == base[i].label ? 1 : 0;
      if (!workload.labels.empty()) correct += ours[i].label == workload.labels[i] ? 1 : 0;
    }
    const auto items = static_cast<int64_t>(ours.size());
    std::string accuracy;
    if (!workload.labels.empty()) {
      accuracy = fmt::format(", accuracy {:.1f}%", 100.0 * static_cast<double>(correct) / items);
    }
    std::cout << fmt::format(
        "tiers | {:<9} | {:<4} vs f32 | logits max|diff| {:.3g} (scale {:.3g}) | mean-pooled "
        "max|diff| {:.3g} | labels agree {}/{}{} | weights {} KiB ({} KiB owned)\n",
        name, polyinfer::tier_name(bound.tier), logits.max_abs, logits.scale, mean.max_abs, agree,
        items, accuracy, encoder.weight_bytes() / 1024, encoder.owned_weight_bytes() / 1024);
    INFO(name << " tier " << polyinfer::tier_name(bound.tier));
    CHECK(logits.within(bound.logits));
    CHECK(static_cast<double>(agree) >= bound.agreement * static_cast<double>(items));
  }
}

}  // namespace

TEST_CASE("derived tiers vs f32: tiny-bert, intent, router", "[bert][tiers]") {
  POLYINFER_SHARED_OR_RETURN(tiny, "fixtures/models/tiny-bert");
  compare_tiers(tiny, "tiny-bert", tiny_bert_workload(tiny));
  POLYINFER_SHARED_OR_RETURN(intent, "intent");
  compare_tiers(intent, "intent", dev_workload(Encoder::load(intent), intent / "dev.jsonl"));
  POLYINFER_SHARED_OR_RETURN(router, "taskmodels/router");
  compare_tiers(router, "router", dev_workload(Encoder::load(router), router / "router-dev.jsonl"));
}

TEST_CASE("tier recipes for an encoder (q4_k falls back to q4_0 for rows of 128)",
          "[bert][tiers]") {
  POLYINFER_SHARED_OR_RETURN(folder, "fixtures/models/tiny-bert");
  const polyinfer::ModelFile file = polyinfer::ModelFile::open(folder);
  const auto types = [&](Tier tier) {
    const auto model = polyinfer::detail::BertModel::load(file, tier);
    std::map<std::string, DType> out;
    for (const auto& [name, dtype] : model->matrix_types()) out[name] = dtype;
    return out;
  };
  const auto q4_k = types(Tier::kQ4_K);
  CHECK(q4_k.at("token_embd.weight") == DType::kQ8_0);  // q6_k wanted; rows of 128
  CHECK(q4_k.at("blk.0.attn_q.weight") == DType::kQ4_0);
  CHECK(q4_k.at("blk.0.attn_v.weight") == DType::kQ4_0);
  CHECK(q4_k.at("blk.0.ffn_up.weight") == DType::kQ4_0);
  CHECK(q4_k.at("blk.0.ffn_down.weight") == DType::kQ4_K);  // rows of 256
  CHECK(q4_k.at("blk.1.attn_v.weight") == DType::kQ8_0);    // "more bits" layer: q6_k → q8_0
  CHECK(q4_k.at("blk.1.ffn_down.weight") == DType::kQ6_K);
  CHECK(q4_k.at("cls.weight") == DType::kF32);  // the head stays as stored
  CHECK(q4_k.at("cls.output.weight") == DType::kF32);
  const auto q4_0 = types(Tier::kQ4_0);
  CHECK(q4_0.at("token_embd.weight") == DType::kQ8_0);
  CHECK(q4_0.at("blk.1.ffn_down.weight") == DType::kQ4_0);
  const auto native = types(Tier::kNative);
  for (const auto& [name, dtype] : native) CHECK(dtype == DType::kF32);
  const auto f16 = types(Tier::kF16);
  for (const auto& [name, dtype] : f16) CHECK(dtype == DType::kF16);
}

TEST_CASE("stored f16 and bf16 weights run in place and match transformers", "[bert][tiers]") {
  POLYINFER_SHARED_OR_RETURN(folder, "fixtures/models/tiny-bert");
  const BertReference reference(folder / "reference.safetensors");
  const Workload workload = tiny_bert_workload(folder);
  const std::vector<float> expected = reference.f32("case0.logits");
  const std::vector<float> expected_hidden = reference.f32("case0.last_hidden_state");
  struct Stored {
    DType dtype;
    double bound;  // × scale, vs the fp32 reference
  };
  for (const Stored stored : {Stored{DType::kF16, 3e-3}, Stored{DType::kBF16, 3e-2}}) {
    const polyinfer::test::TempFolder copy("bert-stored");
    polyinfer::test::write_converted_copy(folder, copy.path(), stored.dtype);
    const Encoder encoder = Encoder::load(copy.path(), {.threads = 2});
    INFO(polyinfer::dtype_name(stored.dtype));
    CHECK(encoder.config().stored_dtype == stored.dtype);
    CHECK(encoder.owned_weight_bytes() == 0);  // zero copy: every matrix from the mapping
    const polyinfer::ModelFile file = polyinfer::ModelFile::open(copy.path());
    const auto model = polyinfer::detail::BertModel::load(file, Tier::kNative);
    for (const auto& [name, dtype] : model->matrix_types()) CHECK(dtype == stored.dtype);
    const Encoding ours = encoder.encode_ids(workload.ids[0]);
    MaxDiff logits, hidden;
    logits.add(ours.logits, expected.data());
    hidden.add(ours.hidden, expected_hidden.data());
    std::cout << fmt::format(
        "tiers | tiny-bert | stored {} native vs transformers | logits {} | hidden {}\n",
        polyinfer::dtype_name(stored.dtype), logits.summary(), hidden.summary());
    CHECK(logits.within(stored.bound));
    CHECK(hidden.within(stored.bound));
    CHECK(ours.label == polyinfer::test::argmax_of(expected.data(), 4));
    // Derived tiers from 16-bit weights.
    const Encoder q8 = Encoder::load(copy.path(), {.tier = Tier::kQ8_0, .threads = 2});
    CHECK(q8.encode_ids(workload.ids[0]).label == ours.label);
    CHECK(q8.owned_weight_bytes() > 0);
  }
}

TEST_CASE("a q8_0 GGUF encoder (llama.cpp names) runs in place; other tiers are refused",
          "[bert][tiers][gguf]") {
  using polyinfer::detail::GgufType;
  using polyinfer::detail::GgufValue;
  POLYINFER_SHARED_OR_RETURN(folder, "fixtures/models/tiny-bert");
  const BertReference reference(folder / "reference.safetensors");
  const polyinfer::ModelFile hf = polyinfer::ModelFile::open(folder);
  const polyinfer::ModelConfig& config = hf.config();

  // As convert_hf_to_gguf --outtype q8_0 writes it: matrices q8_0, 1-D tensors and the
  // position / token-type embeddings f32, ggml shapes reversed.
  polyinfer::detail::GgufWriter writer;
  writer.set("general.architecture", GgufValue::make_string("bert"));
  writer.set("bert.context_length",
             GgufValue::make_u32(static_cast<uint32_t>(config.max_positions)));
  writer.set("bert.embedding_length",
             GgufValue::make_u32(static_cast<uint32_t>(config.hidden_size)));
  writer.set("bert.feed_forward_length",
             GgufValue::make_u32(static_cast<uint32_t>(config.intermediate_size)));
  writer.set("bert.block_count", GgufValue::make_u32(static_cast<uint32_t>(config.num_layers)));
  writer.set("bert.attention.head_count",
             GgufValue::make_u32(static_cast<uint32_t>(config.num_heads)));
  writer.set("bert.attention.layer_norm_epsilon",
             GgufValue::make_f32(static_cast<float>(config.norm_eps)));
  std::vector<GgufValue> labels;
  for (const std::string& label : config.labels) labels.push_back(GgufValue::make_string(label));
  writer.set("bert.classifier.output_labels", GgufValue::make_array(GgufType::kString, labels));
  for (const polyinfer::TensorInfo& info : hf.tensors()) {
    const std::vector<float> values = polyinfer::to_f32(hf.tensor(info.name));
    const bool matrix = info.shape.size() == 2 && info.name != "position_embd.weight" &&
                        info.name != "token_types.weight";
    const DType dtype = matrix ? DType::kQ8_0 : DType::kF32;
    const int64_t row = info.shape.back();
    std::vector<int64_t> ne(info.shape.rbegin(), info.shape.rend());
    writer.add_tensor(info.name, dtype, ne, polyinfer::quantize(dtype, values, row));
  }
  const polyinfer::test::TempFolder scratch("bert-gguf");
  const fs::path path = scratch.path() / "tiny-bert-q8_0.gguf";
  writer.write(path);

  const Encoder encoder = Encoder::load(path, {.threads = 2});
  CHECK(encoder.config().stored_dtype == DType::kQ8_0);
  CHECK(encoder.owned_weight_bytes() == 0);  // every matrix from the mapping
  CHECK(std::vector<std::string>(encoder.labels().begin(), encoder.labels().end()) ==
        config.labels);
  const Workload workload = tiny_bert_workload(folder);
  const Encoder f32 = Encoder::load(folder, {.tier = Tier::kQ8_0, .threads = 2});
  MaxDiff vs_derived, vs_reference;
  const std::vector<float> expected = reference.f32("case0.logits");
  const Encoding ours = encoder.encode_ids(workload.ids[0]);
  vs_derived.add(ours.logits, f32.encode_ids(workload.ids[0]).logits.data());
  vs_reference.add(ours.logits, expected.data());
  std::cout << fmt::format(
      "tiers | tiny-bert | q8_0 GGUF native | vs q8_0 derived {} | vs "
      "transformers {}\n",
      vs_derived.summary(), vs_reference.summary());
  // The same bytes as the derived q8_0 tier except the word embedding (q8_0 there too) and
  // the head (q8_0 here, f32 there).
  CHECK(vs_reference.max_abs <= 0.08);  // fixtures README: q8_0 vs HF sanity bound
  CHECK(ours.label == polyinfer::test::argmax_of(expected.data(), 4));
  CHECK(Encoder::load(path, {.tier = Tier::kF32}).encode_ids(workload.ids[0]).label == ours.label);
  try {
    (void)Encoder::load(path, {.tier = Tier::kQ4_0});
    FAIL("q4_0 from q8_0 weights was accepted");
  } catch (const polyinfer::Error& e) {
    CHECK(e.code() == polyinfer::ErrorCode::kUnsupported);
    CHECK(std::string(e.what()).find("q8_0 weights") != std::string::npos);
  }
}
