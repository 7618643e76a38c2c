// SPDX-License-Identifier: Apache-2.0
// Hugging Face → GGUF tensor names for decoders and BERT.
#include <catch2/catch.hpp>

#include "model/hf_tensor_names.hpp"

using polyinfer::detail::gguf_tensor_name;

TEST_CASE("tensor names: decoders", "[tensor_names]") {
  const std::vector<std::pair<const char*, const char*>> cases{
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"},
      {"model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight"},
      {"model.layers.11.post_attention_layernorm.weight", "blk.11.ffn_norm.weight"},
      {"model.layers.3.self_attn.q_proj.weight", "blk.3.attn_q.weight"},
      {"model.layers.3.self_attn.q_proj.bias", "blk.3.attn_q.bias"},
      {"model.layers.3.self_attn.k_proj.weight", "blk.3.attn_k.weight"},
      {"model.layers.3.self_attn.v_proj.bias", "blk.3.attn_v.bias"},
      {"model.layers.3.self_attn.o_proj.weight", "blk.3.attn_output.weight"},
      {"model.layers.3.mlp.gate_proj.weight", "blk.3.ffn_gate.weight"},
      {"model.layers.3.mlp.up_proj.weight", "blk.3.ffn_up.weight"},
      {"model.layers.3.mlp.down_proj.weight", "blk.3.ffn_down.weight"},
      {"model.layers.x.mlp.down_proj.weight", "model.layers.x.mlp.down_proj.weight"},
      {"model.layers.3.mlp.other.weight", "model.layers.3.mlp.other.weight"},
      {"something_else", "something_else"},
  };
  for (const auto& [hf, gguf] : cases) {
    INFO(hf);
    CHECK(gguf_tensor_name("llama", hf) == std::optional<std::string>(gguf));
    CHECK(gguf_tensor_name("qwen2", hf) == std::optional<std::string>(gguf));
  }
  CHECK(!gguf_tensor_name("llama", "model.layers.0.self_attn.rotary_emb.inv_freq"));
}

TEST_CASE("tensor names: BERT follows convert_hf_to_gguf", "[tensor_names]") {
  const std::vector<std::pair<const char*, const char*>> cases{
      {"bert.embeddings.word_embeddings.weight", "token_embd.weight"},
      {"bert.embeddings.token_type_embeddings.weight", "token_types.weight"},
      {"bert.embeddings.position_embeddings.weight", "position_embd.weight"},
      {"bert.embeddings.LayerNorm.weight", "token_embd_norm.weight"},
      {"bert.embeddings.LayerNorm.bias", "token_embd_norm.bias"},
      {"embeddings.LayerNorm.gamma", "token_embd_norm.weight"},
      {"bert.encoder.layer.1.attention.self.query.weight", "blk.1.attn_q.weight"},
      {"bert.encoder.layer.1.attention.self.key.bias", "blk.1.attn_k.bias"},
      {"bert.encoder.layer.1.attention.self.value.weight", "blk.1.attn_v.weight"},
      {"bert.encoder.layer.1.attention.output.dense.weight", "blk.1.attn_output.weight"},
      {"bert.encoder.layer.1.attention.output.LayerNorm.bias", "blk.1.attn_output_norm.bias"},
      {"bert.encoder.layer.1.intermediate.dense.weight", "blk.1.ffn_up.weight"},
      {"bert.encoder.layer.1.output.dense.bias", "blk.1.ffn_down.bias"},
      {"bert.encoder.layer.1.output.LayerNorm.weight", "blk.1.layer_output_norm.weight"},
      {"encoder.layer.0.output.LayerNorm.weight", "blk.0.layer_output_norm.weight"},
      {"bert.pooler.dense.weight", "cls.weight"},
      {"classifier.bias", "cls.output.bias"},
  };
  for (const auto& [hf, gguf] : cases) {
    INFO(hf);
    CHECK(gguf_tensor_name("bert", hf) == std::optional<std::string>(gguf));
  }
  CHECK(!gguf_tensor_name("bert", "bert.embeddings.position_ids"));
}
