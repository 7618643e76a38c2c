// SPDX-License-Identifier: Apache-2.0
// polyinfer convert vs llama.cpp's convert_hf_to_gguf.py / llama-quantize on the fixtures.
#include <catch2/catch.hpp>

#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "conformance/model/bert_support.hpp"
#include "conformance/model/convert_support.hpp"
#include "format/gguf.hpp"
#include "polyinfer/model.hpp"
#include "polyinfer/model_writer.hpp"
#include "support/fixtures.hpp"

namespace polyinfer::detail {
namespace {

namespace fs = std::filesystem;
using test::TempGguf;

/// Keys polyinfer adds to what the converter writes.
const std::set<std::string_view> kExtraKeys{
    "tokenizer.huggingface.json", "tokenizer.huggingface.config_json",
    "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"};

/// Compares our conversion with the fixture GGUF: tensors (order, type, shape, bytes) and
/// metadata (every fixture key with an equal value, in the same relative order).
void compare_with_fixture(const fs::path& fixture, const fs::path& ours) {
  const GgufFile expected = GgufFile::open(fixture);
  const GgufFile actual = GgufFile::open(ours);
  REQUIRE(actual.tensors().size() == expected.tensors().size());
  uint64_t differing_bytes = 0;
  uint64_t bytes = 0;
  for (size_t i = 0; i < expected.tensors().size(); ++i) {
    const GgufTensor& e = expected.tensors()[i];
    const GgufTensor& a = actual.tensors()[i];
    INFO(fixture.filename().string() << " tensor " << i << " " << e.name);
    CHECK(a.name == e.name);
    CHECK(a.dtype == e.dtype);
    CHECK(a.n_dims == e.n_dims);
    CHECK(a.ne == e.ne);
    REQUIRE(a.bytes == e.bytes);
    uint64_t differing = 0;
    for (uint64_t k = 0; k < e.bytes; ++k) differing += a.data[k] != e.data[k] ? 1 : 0;
    CHECK(differing == 0);
    differing_bytes += differing;
    bytes += e.bytes;
  }
  size_t last_position = 0;
  for (const GgufKeyValue& kv : expected.metadata()) {
    INFO(fixture.filename().string() << " key " << kv.key);
    const GgufValue* value = actual.find(kv.key);
    REQUIRE(value != nullptr);
    CHECK(test::same_gguf_value(kv.value, *value));
    size_t position = 0;
    while (actual.metadata()[position].key != kv.key) ++position;
    CHECK(position >= last_position);  // same relative order
    last_position = position;
  }
  std::vector<std::string> extra;
  for (const GgufKeyValue& kv : actual.metadata()) {
    if (expected.find(kv.key) == nullptr) {
      extra.emplace_back(kv.key);
      CHECK(kExtraKeys.count(kv.key) == 1);
    }
  }
  std::cout << "convert vs " << fixture.filename().string() << ": " << expected.tensors().size()
            << " tensors, " << differing_bytes << " of " << bytes << " bytes differ; "
            << expected.metadata().size() << " keys equal, " << extra.size() << " added\n";
}

}  // namespace

TEST_CASE("convert: tiny-llama and tiny-qwen2 equal the fixture GGUFs byte for byte",
          "[model][convert][conformance]") {
  POLYINFER_SHARED_OR_RETURN(models, "fixtures/models");
  int compared = 0;
  for (const std::string model : {"tiny-llama", "tiny-qwen2"}) {
    for (const auto& [type, suffix] :
         std::vector<std::pair<WeightType, std::string>>{{WeightType::kF16, "f16"},
                                                         {WeightType::kQ8_0, "q8_0"},
                                                         {WeightType::kQ4_0, "q4_0"},
                                                         {WeightType::kQ4_K_M, "q4_k_m"}}) {
      const fs::path fixture = models / model / "gguf" / (model + "-" + suffix + ".gguf");
      if (!fs::exists(fixture)) continue;
      INFO(fixture.string());
      const TempGguf out("convert-" + model + "-" + suffix);
      const WriteSummary summary = convert_model(models / model, out.path(), {.type = type});
      CHECK(summary.tokenizer == "ggml+hf");
      compare_with_fixture(fixture, out.path());
      ++compared;
    }
  }
  CHECK(compared == 8);
}

TEST_CASE("convert: f32 tensors equal the safetensors; the file opens and tokenizes",
          "[model][convert][conformance]") {
  POLYINFER_SHARED_OR_RETURN(folder, "fixtures/models/tiny-qwen2");
  const TempGguf out("convert-qwen-f32");
  (void)convert_model(folder, out.path(), {.type = WeightType::kF32});
  const ModelFile gguf = ModelFile::open(out.path());
  const ModelFile hf = ModelFile::open(folder);
  REQUIRE(gguf.tensors().size() == hf.tensors().size());
  for (const TensorInfo& info : hf.tensors()) {
    INFO(info.name);
    const TensorView a = gguf.tensor(info.name);
    const TensorView b = hf.tensor(info.name);
    CHECK(a.dtype == DType::kF32);
    CHECK(a.shape == b.shape);
    REQUIRE(a.bytes == b.bytes);
    CHECK(std::memcmp(a.data, b.data, a.bytes) == 0);  // qwen2: no Q/K permutation
  }
  CHECK(gguf.chat_template() == hf.chat_template());
  // tokenizer.ggml.* wins over tokenizer.huggingface.json: llama.cpp behaviour.
  CHECK(gguf.tokenizer().flavor() == TokenizerFlavor::kLlamaCpp);
  CHECK(gguf.tokenizer().encode("Hello world") == hf.tokenizer().encode("Hello world"));
}

TEST_CASE("convert: tiny-bert keeps llama.cpp's names and runs like the HF folder",
          "[model][convert][conformance]") {
  POLYINFER_SHARED_OR_RETURN(folder, "fixtures/models/tiny-bert");
  const test::BertReference reference(folder / "reference.safetensors");
  const Encoder hf = Encoder::load(folder, {.threads = 2});
  for (const WeightType type : {WeightType::kF32, WeightType::kF16, WeightType::kQ8_0}) {
    INFO(weight_type_name(type));
    const TempGguf out("convert-bert");
    // llama.cpp's WPM vocabulary on request (auto keeps WordPiece HF-only, see below).
    const WriteSummary summary =
        convert_model(folder, out.path(), {.type = type, .tokenizer = TokenizerMetadata::kGgml});
    CHECK(summary.tokenizer == "ggml+hf");
    const ModelFile file = ModelFile::open(out.path());
    CHECK(file.tokenizer().flavor() == TokenizerFlavor::kLlamaCpp);
    CHECK(file.config().architecture == "bert");
    CHECK(file.config().labels.size() == hf.labels().size());
    CHECK(file.tensor("position_embd.weight").dtype == DType::kF32);
    CHECK(file.tensor("token_types.weight").dtype == DType::kF32);
    CHECK(file.has_tensor("cls.weight"));
    CHECK(file.has_tensor("cls.output.weight"));
    // [CLS] = 2 here (llama.cpp's WPM would assume 101 without tokenizer.ggml.bos_token_id).
    CHECK(file.tokenizer().bos_id() == 2);
    const Encoder encoder = Encoder::load(out.path(), {.threads = 2});
    CHECK(encoder.labels().size() == hf.labels().size());
    const std::vector<int32_t> ids = reference.ints("case0.ids");
    const Encoding ours = encoder.encode_ids(ids);
    const std::vector<float> expected = reference.f32("case0.logits");
    REQUIRE(ours.logits.size() == expected.size());
    const double bound = type == WeightType::kF32 ? 1e-4 : type == WeightType::kF16 ? 3e-3 : 0.08;
    for (size_t i = 0; i < expected.size(); ++i) {
      CHECK(std::fabs(ours.logits[i] - expected[i]) < bound);
    }
    for (const std::string text : {"What is my portfolio risk?", "Scan these DOCUMENTS, please!"}) {
      CHECK(encoder.tokenizer().encode(text, {.add_special = true}) ==
            hf.tokenizer().encode(text, {.add_special = true}));
    }
  }
}

TEST_CASE("convert: WordPiece stays HF-only by default; tokenizer options",
          "[model][convert][conformance]") {
  POLYINFER_SHARED_OR_RETURN(bert, "fixtures/models/tiny-bert");
  POLYINFER_SHARED_OR_RETURN(llama, "fixtures/models/tiny-llama");
  const TempGguf out("convert-bert-auto");
  CHECK(convert_model(bert, out.path()).tokenizer == "hf");
  const ModelFile file = ModelFile::open(out.path());
  CHECK(file.tokenizer().flavor() == TokenizerFlavor::kHuggingFace);
  CHECK(file.tokenizer().bos_id() == -1);  // BERT names no BOS; [CLS] comes from the template
  const Tokenizer hf = Tokenizer::load(bert);
  const std::string long_word = "a" + std::string(120, 'x') + " b";  // [UNK] past 100 chars
  CHECK(file.tokenizer().encode(long_word, {.add_special = true}) ==
        hf.encode(long_word, {.add_special = true}));

  const TempGguf forced("convert-llama-hf");
  CHECK(convert_model(llama, forced.path(), {.tokenizer = TokenizerMetadata::kHuggingFace})
            .tokenizer == "hf");
  const ModelFile llama_hf = ModelFile::open(forced.path());
  CHECK(llama_hf.tokenizer().flavor() == TokenizerFlavor::kHuggingFace);
  CHECK(llama_hf.tokenizer().encode("  two spaces", {.add_special = true}) ==
        Tokenizer::load(llama).encode("  two spaces", {.add_special = true}));
}

}  // namespace polyinfer::detail
