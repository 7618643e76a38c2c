// SPDX-License-Identifier: Apache-2.0
// GGUF metadata (`<arch>.embedding_length`, …) → ModelConfig.
#include <array>

#include "common/fail.hpp"
#include "format/gguf.hpp"
#include "format/hf_config.hpp"

namespace polyinfer::inline v0::detail {

namespace {

constexpr std::array<std::string_view, 3> kSupported{"llama", "qwen2", "bert"};

/// Reads `<arch>.<suffix>` keys; in strict mode (files with weights) a missing key is an error.
class ArchKeys {
 public:
  ArchKeys(const GgufFile& file, std::string architecture, bool strict)
      : file_(file), architecture_(std::move(architecture)), strict_(strict) {}

  [[nodiscard]] std::string key(std::string_view suffix) const {
    return architecture_ + "." + std::string(suffix);
  }
  [[nodiscard]] std::optional<int64_t> optional_size(std::string_view suffix) const {
    const std::string name = key(suffix);
    const auto value = file_.get_int(name);
    if (value && (*value <= 0 || *value > (int64_t{1} << 40))) {
      fail(ErrorCode::kFormat, file_.name() + ": " + name, "{} is not a positive size", *value);
    }
    return value;
  }
  /// A required size; 0 when absent from a vocabulary-only file.
  [[nodiscard]] int64_t required_size(std::string_view suffix) const {
    const auto value = optional_size(suffix);
    if (!value && strict_) fail(ErrorCode::kFormat, file_.name() + ": " + key(suffix), "missing");
    return value.value_or(0);
  }
  [[nodiscard]] std::optional<double> optional_float(std::string_view suffix) const {
    return file_.get_float(key(suffix));
  }
  [[nodiscard]] double required_float(std::string_view suffix, double fallback) const {
    const auto value = optional_float(suffix);
    if (!value && strict_) fail(ErrorCode::kFormat, file_.name() + ": " + key(suffix), "missing");
    return value.value_or(fallback);
  }

 private:
  const GgufFile& file_;
  std::string architecture_;
  bool strict_;
};

/// Outer (row) count of a 2-D tensor: ne[1].
std::optional<int64_t> rows_of(const GgufFile& file, std::string_view name) {
  const GgufTensor* tensor = file.find_tensor(name);
  if (tensor == nullptr || tensor->n_dims < 2) return std::nullopt;
  return tensor->ne[1];
}

void parse_rope_scaling(const GgufFile& file, const ArchKeys& keys, bool strict,
                        ModelConfig& config) {
  const std::string type_key = keys.key("rope.scaling.type");
  const auto type = file.get_string(type_key);
  const auto factor = keys.optional_float("rope.scaling.factor");
  if (type && *type != "none") {
    if (*type != "linear") {
      if (strict) {
        fail(ErrorCode::kUnsupported, file.name() + ": " + type_key,
             "RoPE scaling \"{}\" is not supported (none, linear)", *type);
      }
      return;
    }
    if (!factor || *factor <= 0) {
      fail(ErrorCode::kFormat, file.name() + ": " + keys.key("rope.scaling.factor"),
           "linear RoPE scaling needs a positive factor");
    }
    config.rope_scaling.type = "linear";
    config.rope_scaling.factor = *factor;
  } else if (const auto scale = keys.optional_float("rope.scale_linear"); scale && *scale != 1) {
    config.rope_scaling.type = "linear";  // the key older converters wrote
    config.rope_scaling.factor = *scale;
  }
  if (const auto original = keys.optional_size("rope.scaling.original_context_length")) {
    config.rope_scaling.original_max_positions = *original;
  }
}

}  // namespace

ModelConfig gguf_model_config(const GgufFile& file) {
  const bool strict = !file.tensors().empty();
  ModelConfig config;
  config.rope_theta = 10000.0;
  config.norm_eps = 1e-5;

  if (const GgufValue* tokens = file.find("tokenizer.ggml.tokens");
      tokens != nullptr && tokens->type == GgufType::kArray) {
    config.vocab_size = static_cast<int64_t>(tokens->array.size());
  }

  const auto architecture = file.get_string("general.architecture");
  if (!architecture) {
    if (strict) fail(ErrorCode::kFormat, file.name() + ": general.architecture", "missing");
    return config;
  }
  config.architecture = std::string(*architecture);
  config.source_architecture = config.architecture;
  bool supported = false;
  for (const std::string_view name : kSupported) supported = supported || name == *architecture;
  if (!supported) {
    if (strict) {
      fail(ErrorCode::kUnsupported, file.name() + ": general.architecture",
           "architecture \"{}\" is not supported (llama, qwen2, bert)", *architecture);
    }
  }
  const bool bert = config.architecture == "bert";
  const ArchKeys keys(file, config.architecture, strict && supported);

  config.hidden_size = keys.required_size("embedding_length");
  config.num_layers = keys.required_size("block_count");
  config.intermediate_size = keys.required_size("feed_forward_length");
  config.num_heads = keys.required_size("attention.head_count");
  config.num_kv_heads = keys.optional_size("attention.head_count_kv").value_or(config.num_heads);
  if (config.num_kv_heads > 0 && config.num_heads % config.num_kv_heads != 0) {
    fail(ErrorCode::kFormat, file.name() + ": " + keys.key("attention.head_count_kv"),
         "{} heads are not a multiple of {} key/value heads", config.num_heads,
         config.num_kv_heads);
  }
  if (const auto key_length = keys.optional_size("attention.key_length")) {
    config.head_dim = *key_length;
  } else if (config.num_heads > 0) {
    if (config.hidden_size % config.num_heads != 0 && strict) {
      fail(ErrorCode::kFormat, file.name() + ": " + keys.key("attention.head_count"),
           "embedding_length {} is not a multiple of {} heads", config.hidden_size,
           config.num_heads);
    }
    config.head_dim = config.hidden_size / config.num_heads;
  }
  config.max_positions = keys.required_size("context_length");
  config.norm_eps = bert ? keys.required_float("attention.layer_norm_epsilon", 1e-12)
                         : keys.required_float("attention.layer_norm_rms_epsilon", 1e-5);
  config.rope_theta = keys.optional_float("rope.freq_base").value_or(10000.0);
  parse_rope_scaling(file, keys, strict && supported, config);

  if (const auto vocab = keys.optional_size("vocab_size")) {
    config.vocab_size = *vocab;
  } else if (config.vocab_size == 0) {
    config.vocab_size =
        rows_of(file, "output.weight").value_or(rows_of(file, "token_embd.weight").value_or(0));
  }
  if (strict && supported && config.vocab_size == 0) {
    fail(ErrorCode::kFormat, file.name() + ": tokenizer.ggml.tokens",
         "no vocabulary size (no tokens, no {}.vocab_size, no token_embd.weight)",
         config.architecture);
  }

  config.tie_embeddings = strict && file.find_tensor("output.weight") == nullptr;
  config.attention_bias =
      bert || config.architecture == "qwen2" || file.find_tensor("blk.0.attn_q.bias") != nullptr;
  config.hidden_act = bert ? "gelu" : "silu";
  // convert_hf_to_gguf permutes llama's Q/K rows so that RoPE rotates adjacent pairs.
  config.rope_interleaved = config.architecture == "llama";
  if (bert) {
    config.type_vocab_size = rows_of(file, "token_types.weight").value_or(0);
    if (const auto labels = file.get_string_array("bert.classifier.output_labels")) {
      for (const std::string_view label : *labels) config.labels.emplace_back(label);
    }
  }
  return config;
}

}  // namespace polyinfer::inline v0::detail
