// SPDX-License-Identifier: Apache-2.0
// config.json parsing: transformers 4 and 5 spellings, each family, and every error path.
#include <catch2/catch.hpp>

#include "format/hf_config.hpp"
#include "polyinfer/error.hpp"

namespace {

using polyinfer::DType;
using polyinfer::Error;
using polyinfer::ErrorCode;
using polyinfer::ModelConfig;
using polyinfer::detail::parse_hf_config;

constexpr const char* kLlama4 = R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
  "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
  "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
  "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "tie_word_embeddings": false, "torch_dtype": "bfloat16", "hidden_act": "silu",
  "transformers_version": "4.43.0"
})";

/// A small Llama config with `overrides` applied: each (key, JSON value) replaces or adds the
/// key; an empty value removes it.
std::string llama_with(const std::vector<std::pair<std::string, std::string>>& overrides) {
  std::vector<std::pair<std::string, std::string>> keys{
      {"architectures", R"(["LlamaForCausalLM"])"},
      {"model_type", "\"llama\""},
      {"hidden_size", "256"},
      {"intermediate_size", "512"},
      {"num_hidden_layers", "2"},
      {"num_attention_heads", "8"},
      {"num_key_value_heads", "2"},
      {"vocab_size", "512"},
      {"rms_norm_eps", "1e-5"},
      {"tie_word_embeddings", "false"},
      {"hidden_act", "\"silu\""},
      {"rope_theta", "10000.0"}};
  for (const auto& [key, value] : overrides) {
    bool found = false;
    for (auto& entry : keys) {
      if (entry.first == key) {
        entry.second = value;
        found = true;
      }
    }
    if (!found) keys.emplace_back(key, value);
  }
  std::string text = "{";
  for (const auto& [key, value] : keys) {
    if (value.empty()) continue;
    if (text.size() > 1) text += ", ";
    text += "\"" + key + "\": " + value;
  }
  return text + "}";
}

std::string llama_with(const std::string& key, const std::string& value) {
  return llama_with({{key, value}});
}

/// Parses `text`, which must fail with `code`; checks what() names the file and `needle`.
void expect_error(const std::string& text, ErrorCode code, const std::string& needle) {
  try {
    (void)parse_hf_config(text, "dir/config.json");
    FAIL("accepted: " << text);
  } catch (const Error& e) {
    INFO(e.what());
    CHECK(e.code() == code);
    CHECK_THAT(e.what(), Catch::Contains("config.json"));
    CHECK_THAT(e.what(), Catch::Contains(needle));
  }
}

}  // namespace

TEST_CASE("hf_config: transformers 4 Llama 3.1 with llama3 RoPE", "[hf_config]") {
  const ModelConfig config = parse_hf_config(kLlama4, "config.json");
  CHECK(config.architecture == "llama");
  CHECK(config.source_architecture == "LlamaForCausalLM");
  CHECK(config.hidden_size == 4096);
  CHECK(config.num_kv_heads == 8);
  CHECK(config.head_dim == 128);
  CHECK(config.rope_theta == 500000.0);
  CHECK(config.rope_scaling.type == "llama3");
  CHECK(config.rope_scaling.factor == 8.0);
  CHECK(config.rope_scaling.low_freq_factor == 1.0);
  CHECK(config.rope_scaling.high_freq_factor == 4.0);
  CHECK(config.rope_scaling.original_max_positions == 8192);
  CHECK(config.max_positions == 131072);
  CHECK(config.stored_dtype == DType::kBF16);
  CHECK_FALSE(config.rope_interleaved);
  CHECK_FALSE(config.attention_bias);
  CHECK(config.labels.empty());
}

TEST_CASE("hf_config: transformers 5 rope_parameters and dtype", "[hf_config]") {
  const ModelConfig config = parse_hf_config(R"({
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "dtype": "float16",
    "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2,
    "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 512,
    "rms_norm_eps": 1e-06, "tie_word_embeddings": true, "sliding_window": null,
    "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"}})",
                                             "config.json");
  CHECK(config.architecture == "qwen2");
  CHECK(config.rope_theta == 1e6);
  CHECK(config.rope_scaling.type.empty());
  CHECK(config.attention_bias);  // Qwen2 always has q/k/v biases
  CHECK(config.tie_embeddings);
  CHECK(config.norm_eps == 1e-6);
  CHECK(config.stored_dtype == DType::kF16);
  CHECK(config.head_dim == 32);
  CHECK(config.hidden_act == "silu");
  CHECK(config.max_positions == 32768);  // transformers' Qwen2 default
}

TEST_CASE("hf_config: llama3 scaling inside rope_parameters", "[hf_config]") {
  const ModelConfig config = parse_hf_config(
      llama_with({{"rope_theta", ""},
                  {"rope_parameters", R"({"rope_theta": 500000.0, "rope_type": "llama3",
                      "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 8192})"}}),
      "config.json");
  CHECK(config.rope_theta == 500000.0);
  CHECK(config.rope_scaling.type == "llama3");
  CHECK(config.rope_scaling.factor == 32.0);
}

TEST_CASE("hf_config: defaults", "[hf_config]") {
  SECTION("num_key_value_heads defaults to the head count") {
    const ModelConfig config = parse_hf_config(llama_with("num_key_value_heads", ""), "c");
    CHECK(config.num_kv_heads == 8);
    CHECK(config.rope_theta == 10000.0);
  }
  SECTION("head_dim given explicitly") {
    CHECK(parse_hf_config(llama_with("head_dim", "64"), "c").head_dim == 64);
    CHECK(parse_hf_config(llama_with("head_dim", "null"), "c").head_dim == 32);
  }
  SECTION("attention_bias") {
    CHECK(parse_hf_config(llama_with("attention_bias", "true"), "c").attention_bias);
  }
  SECTION("linear scaling") {
    const auto config =
        parse_hf_config(llama_with("rope_scaling", R"({"type": "linear", "factor": 2.0})"), "c");
    CHECK(config.rope_scaling.type == "linear");
    CHECK(config.rope_scaling.factor == 2.0);
  }
  SECTION("model_type alone identifies the family") {
    const auto config = parse_hf_config(llama_with("architectures", ""), "c");
    CHECK(config.source_architecture == "llama");
  }
}

TEST_CASE("hf_config: Mistral maps to the llama architecture", "[hf_config]") {
  const ModelConfig config = parse_hf_config(R"({
    "architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 4096,
    "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 8, "vocab_size": 32768, "rope_theta": 1000000.0,
    "sliding_window": null, "head_dim": null, "torch_dtype": "bfloat16"})",
                                             "config.json");
  CHECK(config.architecture == "llama");
  CHECK(config.source_architecture == "MistralForCausalLM");
  CHECK(config.head_dim == 128);
  CHECK_FALSE(config.attention_bias);
}

TEST_CASE("hf_config: BERT", "[hf_config]") {
  const std::string body = R"("model_type": "bert", "hidden_size": 128,
    "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
    "vocab_size": 512, "layer_norm_eps": 1e-12, "hidden_act": "gelu", "type_vocab_size": 2,
    "id2label": {"1": "b", "0": "a", "2": "c"}, "max_position_embeddings": 512)";
  SECTION("classifier labels by id") {
    const auto config = parse_hf_config(
        R"({"architectures": ["BertForSequenceClassification"], )" + body + "}", "config.json");
    CHECK(config.architecture == "bert");
    CHECK(config.labels == std::vector<std::string>{"a", "b", "c"});
    CHECK(config.norm_eps == 1e-12);
    CHECK(config.type_vocab_size == 2);
    CHECK(config.attention_bias);
    CHECK(config.hidden_act == "gelu");
    CHECK(config.num_kv_heads == 4);
  }
  SECTION("a bare BertModel has no labels") {
    const auto config =
        parse_hf_config(R"({"architectures": ["BertModel"], )" + body + "}", "config.json");
    CHECK(config.labels.empty());
  }
  SECTION("classifier without id2label") {
    std::string text = R"({"architectures": ["BertForSequenceClassification"], )" + body + "}";
    text.replace(text.find("\"id2label\""), text.find("\"max_position") - text.find("\"id2label\""),
                 "\"num_labels\": 3, ");
    CHECK(parse_hf_config(text, "c").labels ==
          std::vector<std::string>{"LABEL_0", "LABEL_1", "LABEL_2"});
  }
  SECTION("broken id2label") {
    std::string text = R"({"architectures": ["BertForSequenceClassification"], )" + body + "}";
    text.replace(text.find("\"2\": \"c\""), 8, "\"7\": \"c\"");
    expect_error(text, ErrorCode::kFormat, "id2label");
  }
}

TEST_CASE("hf_config: unsupported models", "[hf_config]") {
  expect_error(R"({"model_type": "gpt2", "hidden_size": 1})", ErrorCode::kUnsupported, "gpt2");
  expect_error(R"({"architectures": ["GPT2LMHeadModel"], "hidden_size": 1})",
               ErrorCode::kUnsupported, "GPT2LMHeadModel");
  expect_error(llama_with("rope_scaling", R"({"rope_type": "yarn", "factor": 4.0})"),
               ErrorCode::kUnsupported, "yarn");
}

TEST_CASE("hf_config: missing keys and wrong types", "[hf_config]") {
  for (const char* key : {"hidden_size", "num_hidden_layers", "num_attention_heads",
                          "intermediate_size", "vocab_size"}) {
    INFO(key);
    expect_error(llama_with(key, ""), ErrorCode::kFormat, key);
    expect_error(llama_with(key, "\"256\""), ErrorCode::kFormat, key);
    expect_error(llama_with(key, "-4"), ErrorCode::kFormat, key);
    expect_error(llama_with(key, "2.5"), ErrorCode::kFormat, key);
  }
  expect_error(llama_with("rms_norm_eps", "\"small\""), ErrorCode::kFormat, "rms_norm_eps");
  expect_error(llama_with("tie_word_embeddings", "1"), ErrorCode::kFormat, "tie_word_embeddings");
  expect_error(llama_with("hidden_act", "[]"), ErrorCode::kFormat, "hidden_act");
  expect_error(llama_with("num_key_value_heads", "3"), ErrorCode::kFormat, "num_key_value_heads");
  expect_error(llama_with("rope_theta", "true"), ErrorCode::kFormat, "rope_theta");
  expect_error(llama_with("rope_parameters", "7"), ErrorCode::kFormat, "rope_parameters");
  expect_error(llama_with("rope_scaling", R"({"rope_type": "llama3", "factor": 8.0})"),
               ErrorCode::kFormat, "original_max_position_embeddings");
  expect_error(llama_with("architectures", "\"LlamaForCausalLM\""), ErrorCode::kFormat,
               "architectures");
  expect_error(llama_with("model_type", "\"bert\""), ErrorCode::kFormat, "model_type");
  expect_error(llama_with("model_type", "\"falcon\""), ErrorCode::kUnsupported, "falcon");
  expect_error(llama_with("model_type", "7"), ErrorCode::kFormat, "model_type");
  expect_error(R"({"hidden_size": 256})", ErrorCode::kFormat, "model_type");
  expect_error("[1, 2]", ErrorCode::kFormat, "object");
  expect_error("{\"model_type\": ", ErrorCode::kFormat, "JSON");
  expect_error("", ErrorCode::kFormat, "JSON");
}

TEST_CASE("hf_config: flattened metadata keeps file order", "[hf_config]") {
  const auto pairs = polyinfer::detail::flatten_hf_config(
      R"({"b": 1, "a": {"y": "text", "x": [1, 2]}, "long": [1,2,3,4,5,6,7,8,9,10], "n": null})",
      "config.json");
  REQUIRE(pairs.size() == 5);
  CHECK(pairs[0] == std::pair<std::string, std::string>{"b", "1"});
  CHECK(pairs[1] == std::pair<std::string, std::string>{"a.y", "text"});
  CHECK(pairs[2] == std::pair<std::string, std::string>{"a.x", "[1,2]"});
  CHECK(pairs[3] == std::pair<std::string, std::string>{"long", "[10 items]"});
  CHECK(pairs[4] == std::pair<std::string, std::string>{"n", "null"});
}

TEST_CASE("hf_config: numbers beyond a double", "[hf_config]") {
  expect_error(llama_with("rms_norm_eps", "1e512"), ErrorCode::kFormat, "JSON");
  expect_error(llama_with("hidden_size", "99999999999999999999999"), ErrorCode::kFormat,
               "hidden_size");
}
