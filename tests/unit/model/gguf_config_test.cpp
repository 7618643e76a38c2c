// SPDX-License-Identifier: Apache-2.0
// GGUF metadata → ModelConfig on small files built in memory.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "format/gguf.hpp"
#include "format/hf_config.hpp"
#include "polyinfer/error.hpp"

namespace {

using polyinfer::DType;
using polyinfer::Error;
using polyinfer::ErrorCode;
using polyinfer::detail::GgufFile;
using polyinfer::detail::GgufType;
using polyinfer::detail::GgufValue;
using polyinfer::detail::GgufWriter;

/// A llama-like GGUF image with `skip` left out of the metadata.
std::vector<std::byte> llama_image(std::string_view skip = "", bool with_tensors = true,
                                   std::string arch = "llama") {
  GgufWriter writer;
  const auto set = [&](const std::string& key, GgufValue value) {
    if (key != skip) writer.set(key, std::move(value));
  };
  set("general.architecture", GgufValue::make_string(arch));
  set(arch + ".embedding_length", GgufValue::make_u32(64));
  set(arch + ".block_count", GgufValue::make_u32(1));
  set(arch + ".feed_forward_length", GgufValue::make_u32(128));
  set(arch + ".attention.head_count", GgufValue::make_u32(4));
  set(arch + ".attention.head_count_kv", GgufValue::make_u32(2));
  set(arch + ".context_length", GgufValue::make_u32(256));
  set(arch + ".attention.layer_norm_rms_epsilon", GgufValue::make_f32(1e-5f));
  set(arch + ".rope.freq_base", GgufValue::make_f32(500000.0f));
  std::vector<GgufValue> tokens;
  for (int i = 0; i < 10; ++i) tokens.push_back(GgufValue::make_string(fmt::format("t{}", i)));
  set("tokenizer.ggml.tokens", GgufValue::make_array(GgufType::kString, std::move(tokens)));
  if (with_tensors) {
    writer.add_tensor("token_embd.weight", DType::kF32, {64, 10},
                      std::vector<std::byte>(64 * 10 * 4));
    writer.add_tensor("blk.0.attn_q.weight", DType::kF16, {64, 64},
                      std::vector<std::byte>(64 * 64 * 2));
  }
  return writer.serialize();
}

GgufFile parse(const std::vector<std::byte>& image) {
  return GgufFile::parse(image.data(), image.size(), "mem.gguf");
}

}  // namespace

TEST_CASE("gguf_config: llama metadata", "[gguf_config]") {
  const auto image = llama_image();
  const auto config = polyinfer::detail::gguf_model_config(parse(image));
  CHECK(config.architecture == "llama");
  CHECK(config.hidden_size == 64);
  CHECK(config.num_layers == 1);
  CHECK(config.intermediate_size == 128);
  CHECK(config.num_heads == 4);
  CHECK(config.num_kv_heads == 2);
  CHECK(config.head_dim == 16);
  CHECK(config.max_positions == 256);
  CHECK(config.rope_theta == 500000.0);
  CHECK(config.norm_eps == Approx(1e-5));
  CHECK(config.vocab_size == 10);
  CHECK(config.tie_embeddings);  // no output.weight
  CHECK(config.rope_interleaved);
  CHECK(config.hidden_act == "silu");
  CHECK_FALSE(config.attention_bias);
}

TEST_CASE("gguf_config: qwen2 is not interleaved and has biases", "[gguf_config]") {
  const auto image = llama_image("", true, "qwen2");
  const auto config = polyinfer::detail::gguf_model_config(parse(image));
  CHECK_FALSE(config.rope_interleaved);
  CHECK(config.attention_bias);
}

TEST_CASE("gguf_config: missing keys and unknown architectures", "[gguf_config]") {
  for (const char* key :
       {"llama.embedding_length", "llama.block_count", "llama.feed_forward_length",
        "llama.attention.head_count", "llama.context_length",
        "llama.attention.layer_norm_rms_epsilon", "general.architecture"}) {
    INFO(key);
    const auto image = llama_image(key);
    try {
      (void)polyinfer::detail::gguf_model_config(parse(image));
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::kFormat);
      CHECK_THAT(e.what(), Catch::Contains(key));
      CHECK_THAT(e.what(), Catch::Contains("mem.gguf"));
    }
  }
  const auto falcon = llama_image("", true, "falcon");
  CHECK_THROWS_MATCHES(
      polyinfer::detail::gguf_model_config(parse(falcon)), Error,
      Catch::Predicate<Error>([](const Error& e) { return e.code() == ErrorCode::kUnsupported; }));
}

TEST_CASE("gguf_config: vocabulary-only files are read leniently", "[gguf_config]") {
  const auto image = llama_image("gpt2.embedding_length", false, "gpt2");
  const auto config = polyinfer::detail::gguf_model_config(parse(image));
  CHECK(config.architecture == "gpt2");
  CHECK(config.hidden_size == 0);
  CHECK(config.vocab_size == 10);
}
