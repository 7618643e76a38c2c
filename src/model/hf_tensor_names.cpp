// SPDX-License-Identifier: Apache-2.0
// Hugging Face tensor names → GGUF tensor names (llama.cpp convert_hf_to_gguf conventions).
#include "model/hf_tensor_names.hpp"

#include <array>
#include <span>
#include <utility>

namespace polyinfer::inline v0::detail {

namespace {

using Rename = std::pair<std::string_view, std::string_view>;

// Per-layer names (after "model.layers.N." / "encoder.layer.N.", before ".weight").
constexpr std::array<Rename, 9> kDecoderLayer{{
    {"input_layernorm", "attn_norm"},
    {"post_attention_layernorm", "ffn_norm"},
    {"self_attn.q_proj", "attn_q"},
    {"self_attn.k_proj", "attn_k"},
    {"self_attn.v_proj", "attn_v"},
    {"self_attn.o_proj", "attn_output"},
    {"mlp.gate_proj", "ffn_gate"},
    {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"},
}};

constexpr std::array<Rename, 3> kDecoderGlobal{{
    {"model.embed_tokens", "token_embd"},
    {"model.norm", "output_norm"},
    {"lm_head", "output"},
}};

constexpr std::array<Rename, 8> kBertLayer{{
    {"attention.self.query", "attn_q"},
    {"attention.self.key", "attn_k"},
    {"attention.self.value", "attn_v"},
    {"attention.output.dense", "attn_output"},
    {"attention.output.LayerNorm", "attn_output_norm"},
    {"intermediate.dense", "ffn_up"},
    {"output.dense", "ffn_down"},
    {"output.LayerNorm", "layer_output_norm"},
}};

// llama.cpp: MODEL_TENSOR.CLS ("cls") is BERT's pooler dense layer, CLS_OUT ("cls.output")
// the classification head.
constexpr std::array<Rename, 6> kBertGlobal{{
    {"embeddings.word_embeddings", "token_embd"},
    {"embeddings.token_type_embeddings", "token_types"},
    {"embeddings.position_embeddings", "position_embd"},
    {"embeddings.LayerNorm", "token_embd_norm"},
    {"pooler.dense", "cls"},
    {"classifier", "cls.output"},
}};

std::optional<std::string_view> lookup(std::span<const Rename> table, std::string_view stem) {
  for (const auto& [from, to] : table) {
    if (from == stem) return to;
  }
  return std::nullopt;
}

/// "12.rest" → (12, "rest"); nullopt when `text` does not start with digits and a dot.
std::optional<std::pair<std::string_view, std::string_view>> split_layer(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits >= text.size() || text[digits] != '.') return std::nullopt;
  return std::pair{text.substr(0, digits), text.substr(digits + 1)};
}

std::optional<std::string> map_stem(std::string_view architecture, std::string_view stem) {
  if (architecture == "bert") {
    if (stem.starts_with("bert.")) stem.remove_prefix(5);
    if (const auto global = lookup(kBertGlobal, stem)) return std::string(*global);
    constexpr std::string_view kLayers = "encoder.layer.";
    if (stem.starts_with(kLayers)) {
      if (const auto layer = split_layer(stem.substr(kLayers.size()))) {
        if (const auto name = lookup(kBertLayer, layer->second)) {
          return "blk." + std::string(layer->first) + "." + std::string(*name);
        }
      }
    }
    return std::nullopt;
  }
  if (const auto global = lookup(kDecoderGlobal, stem)) return std::string(*global);
  constexpr std::string_view kLayers = "model.layers.";
  if (stem.starts_with(kLayers)) {
    if (const auto layer = split_layer(stem.substr(kLayers.size()))) {
      if (const auto name = lookup(kDecoderLayer, layer->second)) {
        return "blk." + std::string(layer->first) + "." + std::string(*name);
      }
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> gguf_tensor_name(std::string_view architecture,
                                            std::string_view hf_name) {
  if (hf_name.ends_with(".rotary_emb.inv_freq") || hf_name.ends_with("embeddings.position_ids") ||
      hf_name.ends_with("embeddings.token_type_ids")) {
    return std::nullopt;
  }
  const size_t dot = hf_name.rfind('.');
  if (dot == std::string_view::npos) return std::string(hf_name);
  const std::string_view stem = hf_name.substr(0, dot);
  std::string_view suffix = hf_name.substr(dot + 1);
  if (suffix == "gamma") suffix = "weight";  // LayerNorm in old BERT checkpoints
  if (suffix == "beta") suffix = "bias";
  if (suffix != "weight" && suffix != "bias") return std::string(hf_name);
  const auto mapped = map_stem(architecture, stem);
  if (!mapped) return std::string(hf_name);
  return *mapped + "." + std::string(suffix);
}

}  // namespace polyinfer::inline v0::detail
