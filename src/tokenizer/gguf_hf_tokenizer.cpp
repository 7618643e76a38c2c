// SPDX-License-Identifier: Apache-2.0
// GGUF files that carry a Hugging Face tokenizer.json: the rule that picks it, and its loader.
#include "tokenizer/gguf_hf_tokenizer.hpp"

#include <nlohmann/json.hpp>

#include <string>

#include "common/fail.hpp"
#include "format/gguf.hpp"

namespace polyinfer::inline v0::detail {

bool uses_gguf_hf_tokenizer(const GgufFile& file) noexcept {
  return file.find("tokenizer.ggml.model") == nullptr && file.find(kGgufHfJsonKey) != nullptr;
}

namespace {

std::string required_string(const GgufFile& file, std::string_view key) {
  const auto value = file.get_string(key);
  if (!value) fail(ErrorCode::kTokenizer, file.name() + ": " + std::string(key), "missing");
  return std::string(*value);
}

/// A tokenizer_config.json made from the file's special-token ids and chat template.
std::string config_from_ids(const GgufFile& file, const TokenizerImpl& plain) {
  nlohmann::ordered_json config = nlohmann::ordered_json::object();
  static constexpr std::pair<std::string_view, std::string_view> kIds[] = {
      {"tokenizer.ggml.bos_token_id", "bos_token"},
      {"tokenizer.ggml.eos_token_id", "eos_token"},
      {"tokenizer.ggml.padding_token_id", "pad_token"},
      {"tokenizer.ggml.unknown_token_id", "unk_token"},
  };
  for (const auto& [key, name] : kIds) {
    const auto id = file.get_int(key);
    if (id && *id >= 0 && *id < plain.vocab_size()) {
      config[std::string(name)] = plain.token(static_cast<int32_t>(*id));
    }
  }
  if (const auto chat_template = file.get_string("tokenizer.chat_template")) {
    config["chat_template"] = std::string(*chat_template);
  }
  return config.dump();
}

}  // namespace

std::shared_ptr<const TokenizerImpl> make_gguf_hf_tokenizer(const GgufFile& file) {
  const std::string where = file.name() + ": " + std::string(kGgufHfJsonKey);
  const std::string json = required_string(file, kGgufHfJsonKey);
  if (const auto config = file.get_string(kGgufHfConfigKey)) {
    return make_hf_tokenizer(json, *config, where);
  }
  const auto plain = make_hf_tokenizer(json, "", where);
  return make_hf_tokenizer(json, config_from_ids(file, *plain), where);
}

}  // namespace polyinfer::inline v0::detail
