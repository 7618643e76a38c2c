// SPDX-License-Identifier: Apache-2.0
// Hugging Face config.json → ModelConfig (Llama, Mistral, Qwen2, BERT; transformers 4 and 5).
#include "format/hf_config.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>

#include "common/fail.hpp"
#include "format/json_text.hpp"

namespace polyinfer::inline v0::detail {

using Json = nlohmann::ordered_json;

namespace {

enum class Family { kLlama, kMistral, kQwen2, kBert };

struct ArchitectureRow {
  std::string_view architecture;  // transformers class name
  Family family;
  bool classifier;
};

constexpr std::array<ArchitectureRow, 5> kArchitectures{{
    {"LlamaForCausalLM", Family::kLlama, false},
    {"MistralForCausalLM", Family::kMistral, false},
    {"Qwen2ForCausalLM", Family::kQwen2, false},
    {"BertModel", Family::kBert, false},
    {"BertForSequenceClassification", Family::kBert, true},
}};

struct FamilyRow {
  Family family;
  std::string_view model_type;
  std::string_view gguf_architecture;  // GGUF's general.architecture for the family
  int64_t default_max_positions;       // transformers' config defaults
  double default_norm_eps;
  std::string_view default_act;
  bool default_tie;
};

constexpr std::array<FamilyRow, 4> kFamilies{{
    {Family::kLlama, "llama", "llama", 2048, 1e-6, "silu", false},
    {Family::kMistral, "mistral", "llama", 131072, 1e-6, "silu", false},
    {Family::kQwen2, "qwen2", "qwen2", 32768, 1e-6, "silu", false},
    {Family::kBert, "bert", "bert", 512, 1e-12, "gelu", true},
}};

const FamilyRow& family_row(Family family) {
  return kFamilies[static_cast<size_t>(family)];
}

/// Typed access to one JSON object with errors that name the file and the key path.
class ConfigReader {
 public:
  ConfigReader(const Json& object, std::string file, std::string prefix = "")
      : object_(object), file_(std::move(file)), prefix_(std::move(prefix)) {}

  [[nodiscard]] std::string where(std::string_view key) const {
    return file_ + ": " + prefix_ + std::string(key);
  }
  /// The value of `key`; nullptr when absent or null (transformers writes null for "unset").
  [[nodiscard]] const Json* get(std::string_view key) const {
    const auto it = object_.find(key);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }
  [[noreturn]] void wrong_type(std::string_view key, const Json& value,
                               std::string_view expected) const {
    fail(ErrorCode::kFormat, where(key), "expected {}, found {} {}", expected,
         json_type_name(value), value.dump());
  }
  [[nodiscard]] std::optional<int64_t> optional_int(std::string_view key) const {
    const Json* value = get(key);
    if (value == nullptr) return std::nullopt;
    if (!value->is_number_integer()) wrong_type(key, *value, "an integer");
    if (value->is_number_unsigned() &&
        value->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail(ErrorCode::kFormat, where(key), "{} is out of range", value->dump());
    }
    return value->get<int64_t>();
  }
  /// A positive integer (sizes and counts); `fallback` when absent.
  [[nodiscard]] std::optional<int64_t> optional_size(std::string_view key) const {
    const auto value = optional_int(key);
    if (value && (*value <= 0 || *value > (int64_t{1} << 40))) {
      fail(ErrorCode::kFormat, where(key), "{} is not a positive size", *value);
    }
    return value;
  }
  [[nodiscard]] int64_t required_size(std::string_view key) const {
    const auto value = optional_size(key);
    if (!value) fail(ErrorCode::kFormat, where(key), "required key is missing");
    return *value;
  }
  [[nodiscard]] std::optional<double> optional_number(std::string_view key) const {
    const Json* value = get(key);
    if (value == nullptr) return std::nullopt;
    if (!value->is_number()) wrong_type(key, *value, "a number");
    const double number = value->get<double>();
    if (!std::isfinite(number)) fail(ErrorCode::kFormat, where(key), "{} is not finite", number);
    return number;
  }
  [[nodiscard]] std::optional<bool> optional_bool(std::string_view key) const {
    const Json* value = get(key);
    if (value == nullptr) return std::nullopt;
    if (!value->is_boolean()) wrong_type(key, *value, "a boolean");
    return value->get<bool>();
  }
  [[nodiscard]] std::optional<std::string> optional_string(std::string_view key) const {
    const Json* value = get(key);
    if (value == nullptr) return std::nullopt;
    if (!value->is_string()) wrong_type(key, *value, "a string");
    return value->get<std::string>();
  }
  /// A nested object as a reader; nullopt when absent.
  [[nodiscard]] std::optional<ConfigReader> optional_object(std::string_view key) const {
    const Json* value = get(key);
    if (value == nullptr) return std::nullopt;
    if (!value->is_object()) wrong_type(key, *value, "an object");
    return ConfigReader(*value, file_, prefix_ + std::string(key) + ".");
  }

 private:
  const Json& object_;
  std::string file_;
  std::string prefix_;
};

struct Identified {
  Family family;
  std::string source_architecture;
  bool classifier;
};

Identified identify(const ConfigReader& config) {
  const auto model_type = config.optional_string("model_type");
  std::optional<Family> type_family;
  if (model_type) {
    for (const FamilyRow& row : kFamilies) {
      if (row.model_type == *model_type) type_family = row.family;
    }
    if (!type_family) {
      fail(ErrorCode::kUnsupported, config.where("model_type"),
           "model_type \"{}\" is not supported (llama, mistral, qwen2, bert)", *model_type);
    }
  }

  if (const Json* architectures = config.get("architectures")) {
    if (!architectures->is_array()) {
      config.wrong_type("architectures", *architectures, "an array of strings");
    }
    for (const Json& name : *architectures) {
      if (!name.is_string()) config.wrong_type("architectures", *architectures, "strings");
      for (const ArchitectureRow& row : kArchitectures) {
        if (row.architecture != name.get_ref<const std::string&>()) continue;
        if (type_family && *type_family != row.family) {
          fail(ErrorCode::kFormat, config.where("model_type"),
               "model_type \"{}\" does not match architecture {}", *model_type, row.architecture);
        }
        return {row.family, std::string(row.architecture), row.classifier};
      }
    }
    if (!architectures->empty()) {
      fail(ErrorCode::kUnsupported, config.where("architectures"),
           "architectures {} are not supported (LlamaForCausalLM, MistralForCausalLM, "
           "Qwen2ForCausalLM, BertModel, BertForSequenceClassification)",
           architectures->dump());
    }
  }
  if (!type_family) {
    fail(ErrorCode::kFormat, config.where("model_type"),
         "required key is missing (and no known architectures)");
  }
  return {*type_family, *model_type, false};
}

/// rope_scaling (transformers 4) or rope_parameters (5): "default", "linear", "llama3".
RopeScaling parse_rope_scaling(const ConfigReader& scaling) {
  RopeScaling result;
  auto type = scaling.optional_string("rope_type");
  if (!type) type = scaling.optional_string("type");
  if (!type || *type == "default") return result;
  if (*type != "linear" && *type != "llama3") {
    fail(ErrorCode::kUnsupported, scaling.where("rope_type"),
         "RoPE scaling \"{}\" is not supported (default, linear, llama3)", *type);
  }
  result.type = *type;
  const auto factor = scaling.optional_number("factor");
  if (!factor || *factor <= 0) {
    fail(ErrorCode::kFormat, scaling.where("factor"), "{} RoPE scaling needs a positive factor",
         *type);
  }
  result.factor = *factor;
  if (*type == "llama3") {
    result.low_freq_factor = scaling.optional_number("low_freq_factor").value_or(1.0);
    result.high_freq_factor = scaling.optional_number("high_freq_factor").value_or(4.0);
    result.original_max_positions = scaling.required_size("original_max_position_embeddings");
    if (result.high_freq_factor <= result.low_freq_factor) {
      fail(ErrorCode::kFormat, scaling.where("high_freq_factor"),
           "high_freq_factor {} must exceed low_freq_factor {}", result.high_freq_factor,
           result.low_freq_factor);
    }
  } else if (const auto original = scaling.optional_size("original_max_position_embeddings")) {
    result.original_max_positions = *original;
  }
  return result;
}

void parse_rope(const ConfigReader& config, ModelConfig& result) {
  const auto parameters = config.optional_object("rope_parameters");
  if (const auto theta = config.optional_number("rope_theta")) {
    result.rope_theta = *theta;
  } else if (parameters) {
    if (const auto nested = parameters->optional_number("rope_theta")) result.rope_theta = *nested;
  }
  if (result.rope_theta <= 0) {
    fail(ErrorCode::kFormat, config.where("rope_theta"), "{} is not positive", result.rope_theta);
  }
  if (const auto scaling = config.optional_object("rope_scaling")) {
    result.rope_scaling = parse_rope_scaling(*scaling);
  } else if (parameters) {
    result.rope_scaling = parse_rope_scaling(*parameters);
  }
}

std::vector<std::string> parse_labels(const ConfigReader& config) {
  const Json* id2label = config.get("id2label");
  if (id2label == nullptr) {
    const int64_t count = config.optional_size("num_labels").value_or(2);
    if (count > 100000) fail(ErrorCode::kFormat, config.where("num_labels"), "too many labels");
    std::vector<std::string> labels;
    for (int64_t i = 0; i < count; ++i) labels.push_back("LABEL_" + std::to_string(i));
    return labels;
  }
  if (!id2label->is_object()) config.wrong_type("id2label", *id2label, "an object");
  std::vector<std::optional<std::string>> by_id(id2label->size());
  for (const auto& [key, value] : id2label->items()) {
    size_t id = 0;
    const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
    if (ec != std::errc() || end != key.data() + key.size() || id >= by_id.size() || by_id[id]) {
      fail(ErrorCode::kFormat, config.where("id2label"),
           "ids must be \"0\"…\"{}\", each once; found \"{}\"", by_id.size() - 1, key);
    }
    if (!value.is_string()) config.wrong_type("id2label." + key, value, "a string");
    by_id[id] = value.get<std::string>();
  }
  std::vector<std::string> labels;
  for (auto& label : by_id) labels.push_back(std::move(*label));
  return labels;
}

DType parse_dtype(const ConfigReader& config, DType fallback) {
  auto name = config.optional_string("dtype");
  if (!name) name = config.optional_string("torch_dtype");
  if (!name) return fallback;
  if (*name == "float32") return DType::kF32;
  if (*name == "float16") return DType::kF16;
  if (*name == "bfloat16") return DType::kBF16;
  if (*name == "float64") return DType::kF64;
  return fallback;  // "auto" and friends say nothing about the stored weights
}

std::string summarise(const Json& value) {
  constexpr size_t kMaxItems = 8;
  if (value.is_string()) return value.get<std::string>();
  if (value.is_array() && value.size() > kMaxItems) {
    return fmt::format("[{} items]", value.size());
  }
  return value.dump();
}

void flatten(const Json& value, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>& out) {
  if (value.is_object() && !value.empty()) {
    for (const auto& [key, child] : value.items()) {
      flatten(child, prefix.empty() ? key : prefix + "." + key, out);
    }
    return;
  }
  out.emplace_back(prefix, summarise(value));
}

}  // namespace

ModelConfig parse_hf_config(std::string_view json_text, const std::string& where) {
  const Json root = parse_json(json_text, where);
  if (!root.is_object()) {
    fail(ErrorCode::kFormat, where, "is a {}, not an object", json_type_name(root));
  }
  const ConfigReader config(root, where);
  const Identified identified = identify(config);
  const FamilyRow& family = family_row(identified.family);

  ModelConfig result;
  result.architecture = std::string(family.gguf_architecture);
  result.source_architecture = identified.source_architecture;
  result.vocab_size = config.required_size("vocab_size");
  result.hidden_size = config.required_size("hidden_size");
  result.intermediate_size = config.required_size("intermediate_size");
  result.num_layers = config.required_size("num_hidden_layers");
  result.num_heads = config.required_size("num_attention_heads");
  result.num_kv_heads =
      identified.family == Family::kBert
          ? result.num_heads
          : config.optional_size("num_key_value_heads").value_or(result.num_heads);
  if (result.num_heads % result.num_kv_heads != 0) {
    fail(ErrorCode::kFormat, config.where("num_key_value_heads"),
         "{} attention heads are not a multiple of {} key/value heads", result.num_heads,
         result.num_kv_heads);
  }
  if (const auto head_dim = config.optional_size("head_dim")) {
    result.head_dim = *head_dim;
  } else {
    if (result.hidden_size % result.num_heads != 0) {
      fail(ErrorCode::kFormat, config.where("num_attention_heads"),
           "hidden_size {} is not a multiple of {} heads (and no head_dim)", result.hidden_size,
           result.num_heads);
    }
    result.head_dim = result.hidden_size / result.num_heads;
  }
  result.max_positions =
      config.optional_size("max_position_embeddings").value_or(family.default_max_positions);
  result.hidden_act =
      config.optional_string("hidden_act").value_or(std::string(family.default_act));
  result.tie_embeddings = config.optional_bool("tie_word_embeddings").value_or(family.default_tie);
  result.stored_dtype = parse_dtype(config, DType::kF32);
  result.rope_interleaved = false;  // Hugging Face weights use rotate-half RoPE

  if (identified.family == Family::kBert) {
    result.norm_eps = config.optional_number("layer_norm_eps").value_or(family.default_norm_eps);
    result.type_vocab_size = config.optional_size("type_vocab_size").value_or(2);
    result.attention_bias = true;
    if (const auto position = config.optional_string("position_embedding_type");
        position && *position != "absolute") {
      fail(ErrorCode::kUnsupported, config.where("position_embedding_type"),
           "\"{}\" is not supported (absolute)", *position);
    }
    if (identified.classifier) result.labels = parse_labels(config);
  } else {
    result.norm_eps = config.optional_number("rms_norm_eps").value_or(family.default_norm_eps);
    result.attention_bias = identified.family == Family::kQwen2 ||
                            (identified.family == Family::kLlama &&
                             config.optional_bool("attention_bias").value_or(false));
    parse_rope(config, result);
  }
  if (result.norm_eps <= 0) {
    fail(ErrorCode::kFormat,
         config.where(identified.family == Family::kBert ? "layer_norm_eps" : "rms_norm_eps"),
         "{} is not positive", result.norm_eps);
  }
  return result;
}

std::vector<std::pair<std::string, std::string>> flatten_hf_config(std::string_view json_text,
                                                                   const std::string& where) {
  const Json root = parse_json(json_text, where);
  std::vector<std::pair<std::string, std::string>> out;
  flatten(root, "", out);
  return out;
}

}  // namespace polyinfer::inline v0::detail
