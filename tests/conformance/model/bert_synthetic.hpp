// SPDX-License-Identifier: Apache-2.0
// Test helper: small random BERT folders (config.json + model.safetensors), whole or broken.
#pragma once

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "format/safetensors.hpp"
#include "polyinfer/tensor.hpp"
#include "unit/model/safetensors_builder.hpp"

namespace polyinfer::test {

/// The shape of a synthetic BERT and the ways to break it.
struct SyntheticBert {
  int64_t vocab = 40;
  int64_t hidden = 32;
  int64_t ffn = 64;
  int64_t layers = 1;
  int64_t heads = 2;
  int64_t positions = 16;
  int64_t labels = 3;  ///< 0: BertModel (no classifier, no "bert." prefix)
  bool pooler = true;
  std::string hidden_act = "gelu";
  std::string drop;                                   ///< a Hugging Face tensor name left out
  std::map<std::string, std::vector<int64_t>> shape;  ///< shapes overridden by name
};

/// f32 values of a fixed pseudo-random sequence, roughly N(0, scale²).
inline std::string random_f32_bytes(int64_t count, uint64_t seed, float scale, float offset) {
  std::string out;
  out.reserve(static_cast<size_t>(count) * sizeof(float));
  uint64_t state = seed * 6364136223846793005ULL + 1442695040888963407ULL;
  for (int64_t i = 0; i < count; ++i) {
    float sum = 0;
    for (int k = 0; k < 4; ++k) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      sum += static_cast<float>((state >> 40) & 0xffffff) / 16777216.0f - 0.5f;
    }
    const float value = offset + scale * sum * 1.7320508f;  // 4 uniforms: variance 1/3
    out.append(reinterpret_cast<const char*>(&value), sizeof value);
  }
  return out;
}

/// Writes `model` as a Hugging Face folder (no tokenizer) into `folder`.
inline void write_synthetic_bert(const SyntheticBert& model, const std::filesystem::path& folder) {
  const bool classifier = model.labels > 0;
  nlohmann::ordered_json config{
      {"architectures", {classifier ? "BertForSequenceClassification" : "BertModel"}},
      {"model_type", "bert"},
      {"vocab_size", model.vocab},
      {"hidden_size", model.hidden},
      {"intermediate_size", model.ffn},
      {"num_hidden_layers", model.layers},
      {"num_attention_heads", model.heads},
      {"max_position_embeddings", model.positions},
      {"type_vocab_size", 2},
      {"hidden_act", model.hidden_act},
      {"layer_norm_eps", 1e-12}};
  if (classifier) {
    nlohmann::ordered_json labels = nlohmann::ordered_json::object();
    for (int64_t i = 0; i < model.labels; ++i) labels[std::to_string(i)] = fmt::format("c{}", i);
    config["id2label"] = labels;
  }
  std::ofstream(folder / "config.json") << config.dump(2);

  const std::string prefix = classifier ? "bert." : "";
  std::vector<SafetensorsEntry> entries;
  uint64_t seed = 1;
  const auto add = [&](const std::string& name, std::vector<int64_t> shape, float scale,
                       float offset) {
    if (name == model.drop) return;
    if (const auto it = model.shape.find(name); it != model.shape.end()) shape = it->second;
    int64_t count = 1;
    for (const int64_t d : shape) count *= d;
    entries.push_back({name, "F32", nlohmann::json(shape).dump(),
                       random_f32_bytes(count, seed++, scale, offset), ""});
  };
  const auto linear = [&](const std::string& base, int64_t rows, int64_t cols) {
    add(base + ".weight", {rows, cols}, 0.1f, 0.0f);
    add(base + ".bias", {rows}, 0.02f, 0.0f);
  };
  const auto norm = [&](const std::string& base, int64_t size) {
    add(base + ".weight", {size}, 0.1f, 1.0f);
    add(base + ".bias", {size}, 0.02f, 0.0f);
  };
  add(prefix + "embeddings.word_embeddings.weight", {model.vocab, model.hidden}, 0.5f, 0.0f);
  add(prefix + "embeddings.position_embeddings.weight", {model.positions, model.hidden}, 0.1f,
      0.0f);
  add(prefix + "embeddings.token_type_embeddings.weight", {2, model.hidden}, 0.1f, 0.0f);
  norm(prefix + "embeddings.LayerNorm", model.hidden);
  for (int64_t l = 0; l < model.layers; ++l) {
    const std::string layer = fmt::format("{}encoder.layer.{}.", prefix, l);
    linear(layer + "attention.self.query", model.hidden, model.hidden);
    linear(layer + "attention.self.key", model.hidden, model.hidden);
    linear(layer + "attention.self.value", model.hidden, model.hidden);
    linear(layer + "attention.output.dense", model.hidden, model.hidden);
    norm(layer + "attention.output.LayerNorm", model.hidden);
    linear(layer + "intermediate.dense", model.ffn, model.hidden);
    linear(layer + "output.dense", model.hidden, model.ffn);
    norm(layer + "output.LayerNorm", model.hidden);
  }
  if (model.pooler) linear(prefix + "pooler.dense", model.hidden, model.hidden);
  if (classifier) linear("classifier", model.labels, model.hidden);
  write_binary(folder / "model.safetensors", safetensors_image(entries));
}

/// Copies a Hugging Face BERT folder with every f32 tensor converted to `dtype` (f16, bf16);
/// the tokenizer files come along.
inline void write_converted_copy(const std::filesystem::path& from, const std::filesystem::path& to,
                                 DType dtype) {
  for (const char* name : {"config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"}) {
    if (std::filesystem::exists(from / name)) std::filesystem::copy_file(from / name, to / name);
  }
  const auto file = detail::SafetensorsFile::open(from / "model.safetensors");
  const std::string spelling = dtype == DType::kBF16 ? "BF16" : "F16";
  std::vector<SafetensorsEntry> entries;
  for (const detail::SafetensorsTensor& tensor : file.tensors()) {
    std::string data(reinterpret_cast<const char*>(tensor.data), tensor.bytes());
    std::string type = std::string(detail::safetensors_dtype_name(tensor.dtype));
    if (tensor.dtype == detail::SafetensorsDType::kF32) {
      std::vector<float> values(static_cast<size_t>(tensor.elements()));
      std::memcpy(values.data(), tensor.data, tensor.bytes());
      const int64_t row = tensor.shape.empty() ? 1 : tensor.shape.back();
      const std::vector<std::byte> bytes = quantize(dtype, values, row);
      data.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
      type = spelling;
    }
    entries.push_back({tensor.name, type, nlohmann::json(tensor.shape).dump(), data, ""});
  }
  write_binary(to / "model.safetensors", safetensors_image(entries));
}

}  // namespace polyinfer::test
