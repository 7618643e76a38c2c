// SPDX-License-Identifier: Apache-2.0
// Fixture GGUFs: metadata and tensors vs manifest.json, dequantization vs the HF f32 weights,
// and byte-exact requantization of those weights (ggml / gguf-py reference quantizers).
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <cstring>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "format/gguf.hpp"
#include "kernels/ref/quant_ref.hpp"
#include "polyinfer/error.hpp"
#include "support/fixtures.hpp"

namespace polyinfer::detail {
namespace {

using nlohmann::json;

struct F32Tensor {
  std::vector<int64_t> shape;
  std::vector<float> values;
};

/// The f32 tensors of a safetensors file (8-byte header length, JSON header, raw data).
std::map<std::string, F32Tensor> read_f32_safetensors(const std::filesystem::path& path) {
  const std::string bytes = test::read_file(path);
  REQUIRE(bytes.size() >= 8);
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  REQUIRE(header_size <= bytes.size() - 8);
  const json header = json::parse(bytes.substr(8, header_size));
  const size_t data_start = 8 + header_size;
  std::map<std::string, F32Tensor> out;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__" || entry.at("dtype") != "F32") continue;
    F32Tensor t;
    t.shape = entry.at("shape").get<std::vector<int64_t>>();
    const auto begin = entry.at("data_offsets")[0].get<size_t>();
    const auto end = entry.at("data_offsets")[1].get<size_t>();
    REQUIRE(data_start + end <= bytes.size());
    t.values.resize((end - begin) / 4);
    std::memcpy(t.values.data(), bytes.data() + data_start + begin, end - begin);
    out.emplace(name, std::move(t));
  }
  return out;
}

/// The HF tensor a GGUF tensor was converted from (llama / qwen2 naming).
std::string hf_name(const std::string& gguf, bool tied) {
  static const std::map<std::string, std::string> kTop = {
      {"token_embd.weight", "model.embed_tokens.weight"},
      {"output_norm.weight", "model.norm.weight"},
      {"output.weight", "lm_head.weight"}};
  if (const auto it = kTop.find(gguf); it != kTop.end()) {
    return tied && gguf == "output.weight" ? "model.embed_tokens.weight" : it->second;
  }
  static const std::map<std::string, std::string> kLayer = {
      {"attn_norm", "input_layernorm"}, {"ffn_norm", "post_attention_layernorm"},
      {"attn_q", "self_attn.q_proj"},   {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"},   {"attn_output", "self_attn.o_proj"},
      {"ffn_gate", "mlp.gate_proj"},    {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"}};
  static const std::regex kPattern(R"(blk\.(\d+)\.(\w+)\.(weight|bias))");
  std::smatch m;
  REQUIRE(std::regex_match(gguf, m, kPattern));
  return "model.layers." + m[1].str() + "." + kLayer.at(m[2].str()) + "." + m[3].str();
}

/// convert_hf_to_gguf's llama q/k row permutation:
/// w.reshape(heads, 2, head_dim / 2, in).swapaxes(1, 2).
std::vector<float> permute_rows(const F32Tensor& t, int64_t heads) {
  const int64_t rows = t.shape[0];
  const int64_t in = t.shape[1];
  const int64_t head_dim = rows / heads;
  std::vector<float> out(t.values.size());
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t j = 0; j < head_dim / 2; ++j) {
      for (int64_t half = 0; half < 2; ++half) {
        const int64_t src = h * head_dim + half * (head_dim / 2) + j;
        const int64_t dst = h * head_dim + j * 2 + half;
        std::memcpy(&out[static_cast<size_t>(dst * in)], &t.values[static_cast<size_t>(src * in)],
                    static_cast<size_t>(in) * sizeof(float));
      }
    }
  }
  return out;
}

struct Model {
  std::string name;
  std::filesystem::path dir;
  json manifest;
  std::map<std::string, F32Tensor> weights;
  bool llama = false;
  bool tied = false;
  int64_t heads = 0;
  int64_t kv_heads = 0;

  /// The HF weight of `gguf_tensor` in the GGUF's row order.
  [[nodiscard]] std::vector<float> source(const std::string& gguf_tensor) const {
    const F32Tensor& t = weights.at(hf_name(gguf_tensor, tied));
    if (llama && gguf_tensor.find("attn_q.weight") != std::string::npos) {
      return permute_rows(t, heads);
    }
    if (llama && gguf_tensor.find("attn_k.weight") != std::string::npos) {
      return permute_rows(t, kv_heads);
    }
    return t.values;
  }
};

std::vector<Model> load_models(const std::filesystem::path& models_dir) {
  std::vector<Model> out;
  for (const char* name : {"tiny-llama", "tiny-qwen2"}) {
    Model m;
    m.name = name;
    m.dir = models_dir / name;
    if (!std::filesystem::exists(m.dir / "gguf" / "manifest.json")) continue;
    m.manifest = json::parse(test::read_file(m.dir / "gguf" / "manifest.json"));
    m.weights = read_f32_safetensors(m.dir / "model.safetensors");
    const json config = json::parse(test::read_file(m.dir / "config.json"));
    m.llama = config.at("model_type") == "llama";
    m.tied = config.value("tie_word_embeddings", false);
    m.heads = config.at("num_attention_heads").get<int64_t>();
    m.kv_heads = config.at("num_key_value_heads").get<int64_t>();
    out.push_back(std::move(m));
  }
  return out;
}

/// Files of the manifest that are present (the f32 GGUFs are not stored).
std::vector<std::pair<std::filesystem::path, const json*>> present_files(const Model& m) {
  std::vector<std::pair<std::filesystem::path, const json*>> out;
  for (const auto& [file, entry] : m.manifest.at("files").items()) {
    const auto path = m.dir / "gguf" / file;
    if (std::filesystem::exists(path)) out.emplace_back(path, &entry);
  }
  return out;
}

void check_metadata_value(const GgufFile& file, const std::string& key, const json& expected) {
  INFO("key " << key);
  const GgufValue* value = file.find(key);
  REQUIRE(value != nullptr);
  if (expected.is_string()) {
    CHECK(file.get_string(key) == expected.get<std::string>());
  } else if (expected.is_boolean()) {
    CHECK(file.get_bool(key) == expected.get<bool>());
  } else if (expected.is_number_integer()) {
    CHECK(file.get_int(key) == expected.get<int64_t>());
  } else if (expected.is_number_float()) {
    CHECK(*file.get_float(key) == expected.get<double>());  // f32 widened: exact
  } else if (expected.is_object()) {                        // array summary {count, first, last}
    REQUIRE(value->type == GgufType::kArray);
    const auto& items = value->array;
    REQUIRE(items.size() == expected.at("count").get<size_t>());
    const auto check_item = [&](const GgufValue& item, const json& want) {
      if (want.is_string()) {
        CHECK(item.text() == want.get<std::string>());
      } else {
        CHECK(*item.as_number() == want.get<double>());
      }
    };
    const json& first = expected.at("first");
    for (size_t k = 0; k < first.size(); ++k) check_item(items[k], first[k]);
    const json& last = expected.at("last");
    for (size_t k = 0; k < last.size(); ++k) {
      check_item(items[items.size() - last.size() + k], last[k]);
    }
  } else {
    FAIL("unexpected manifest value " << expected.dump());
  }
}

}  // namespace

TEST_CASE("fixture GGUFs match their manifests", "[format][gguf][conformance]") {
  POLYINFER_SHARED_OR_RETURN(models_dir, "fixtures/models");
  const auto models = load_models(models_dir);
  REQUIRE(models.size() == 2);
  int files = 0;
  for (const Model& m : models) {
    for (const auto& [path, entry] : present_files(m)) {
      INFO(path.string());
      const GgufFile file = GgufFile::open(path);
      ++files;
      CHECK(file.version() == entry->at("gguf_version").get<uint32_t>());
      CHECK(std::filesystem::file_size(path) == entry->at("bytes").get<uint64_t>());
      CHECK(file.metadata().size() == entry->at("metadata").size());
      for (const auto& [key, expected] : entry->at("metadata").items()) {
        check_metadata_value(file, key, expected);
      }
      const json& tensors = entry->at("tensors");
      REQUIRE(file.tensors().size() == tensors.size());
      REQUIRE(file.tensors().size() == entry->at("n_tensors").get<size_t>());
      for (const json& t : tensors) {
        const auto name = t.at("name").get<std::string>();
        INFO(name);
        const GgufTensor* tensor = file.find_tensor(name);
        REQUIRE(tensor != nullptr);
        CHECK(dtype_from_name(t.at("type").get<std::string>()) == tensor->dtype);
        const auto shape = t.at("shape_ggml").get<std::vector<int64_t>>();
        REQUIRE(tensor->n_dims == shape.size());
        for (size_t d = 0; d < shape.size(); ++d) CHECK(tensor->ne[d] == shape[d]);
        CHECK(tensor->bytes == t.at("n_bytes").get<uint64_t>());
      }
    }
  }
  CHECK(files == 8);
}

TEST_CASE("vocabulary-only GGUFs open", "[format][gguf][conformance]") {
  POLYINFER_SHARED_OR_RETURN(vocab_dir, "fixtures/vocab");
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(vocab_dir)) {
    if (entry.path().extension() != ".gguf") continue;
    INFO(entry.path().string());
    const GgufFile file = GgufFile::open(entry.path());
    ++files;
    CHECK(file.tensors().empty());
    CHECK(file.get_string("general.architecture").has_value());
    CHECK(file.get_string("tokenizer.ggml.model").has_value());
    const auto tokens = file.get_string_array("tokenizer.ggml.tokens");
    REQUIRE(tokens.has_value());
    CHECK(tokens->size() > 1000);
    if (const auto types = file.get_int_array("tokenizer.ggml.token_type")) {
      CHECK(types->size() == tokens->size());
    }
    if (const auto scores = file.get_number_array("tokenizer.ggml.scores")) {
      CHECK(scores->size() == tokens->size());
    }
  }
  CHECK(files == 4);
}

TEST_CASE("dequantized fixture tensors match the HF weights", "[format][gguf][conformance]") {
  POLYINFER_SHARED_OR_RETURN(models_dir, "fixtures/models");
  for (const Model& m : load_models(models_dir)) {
    for (const auto& [path, entry] : present_files(m)) {
      const GgufFile file = GgufFile::open(path);
      const json& per_tensor = entry->at("vs_hf_safetensors").at("per_tensor");
      for (const GgufTensor& t : file.tensors()) {
        const std::string name(t.name);
        INFO(path.filename().string() << " " << name << " " << dtype_name(t.dtype));
        const auto restored = to_f32(t.view());
        const auto source = m.source(name);
        REQUIRE(restored.size() == source.size());
        double max_diff = 0;
        for (size_t k = 0; k < source.size(); ++k) {
          max_diff = std::max(max_diff, std::fabs(double{restored[k]} - source[k]));
        }
        // gguf-py measured the same difference on the same dequantization.
        const double expected = per_tensor.at(name).at("max_abs_diff").get<double>();
        CHECK(max_diff == Approx(expected).epsilon(1e-6).margin(1e-9));
        // And the difference stays within the format's resolution (weights are ~N(0, 0.02),
        // |w| < 0.12; norm weights ~1 ± 0.3 are f32).
        const double bound = t.dtype == DType::kF32    ? 0.0
                             : t.dtype == DType::kF16  ? 1e-4
                             : t.dtype == DType::kQ8_0 ? 1e-3
                             : t.dtype == DType::kQ6_K ? 4e-3
                                                       : 1e-2;
        CHECK(max_diff <= bound);
      }
    }
  }
}

TEST_CASE("requantized HF weights equal the GGUF bytes", "[format][gguf][conformance]") {
  POLYINFER_SHARED_OR_RETURN(models_dir, "fixtures/models");
  std::cout << "requantization of the HF f32 weights vs the fixture GGUF bytes:\n";
  for (const Model& m : load_models(models_dir)) {
    for (const auto& [path, entry] : present_files(m)) {
      const GgufFile file = GgufFile::open(path);
      std::map<std::string, std::array<uint64_t, 3>> totals;  // type → tensors, bytes, differing
      uint64_t gguf_py_differing = 0;
      for (const GgufTensor& t : file.tensors()) {
        if (t.dtype == DType::kF32) continue;  // copied, checked exactly above
        const std::string name(t.name);
        INFO(path.filename().string() << " " << name << " " << dtype_name(t.dtype));
        const auto source = m.source(name);
        const auto bytes = quantize(t.dtype, source, t.ne[0]);
        REQUIRE(bytes.size() == t.bytes);
        uint64_t differing = 0;
        for (size_t k = 0; k < bytes.size(); ++k) differing += bytes[k] != t.data[k] ? 1 : 0;
        auto& total = totals[std::string(dtype_name(t.dtype))];
        total[0] += 1;
        total[1] += bytes.size();
        total[2] += differing;
        CHECK(differing == 0);
        if (t.dtype == DType::kQ8_0) {
          std::vector<std::byte> py(bytes.size());
          std::vector<BlockQ8_0> blocks(bytes.size() / sizeof(BlockQ8_0));
          ref::quantize_row_q8_0_gguf_py(source.data(), blocks.data(),
                                         static_cast<int64_t>(source.size()));
          std::memcpy(py.data(), blocks.data(), py.size());
          for (size_t k = 0; k < py.size(); ++k) gguf_py_differing += py[k] != t.data[k] ? 1 : 0;
        }
      }
      for (const auto& [type, total] : totals) {
        std::cout << "  " << path.filename().string() << " " << type << ": " << total[0]
                  << " tensors, " << total[2] << " of " << total[1] << " bytes differ\n";
      }
      if (totals.count("q8_0") != 0) {
        std::cout << "  " << path.filename().string()
                  << " q8_0 (gguf-py variant): " << gguf_py_differing << " bytes differ\n";
        CHECK(gguf_py_differing == 0);
      }
    }
  }
}

}  // namespace polyinfer::detail
