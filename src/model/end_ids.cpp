// SPDX-License-Identifier: Apache-2.0
// model_end_ids: EOS from the tokenizer, generation_config.json and GGUF end-of-turn keys.
#include "model/end_ids.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <system_error>

#include "common/mapped_file.hpp"

namespace polyinfer::inline v0::detail {

namespace {

/// generation_config.json's eos_token_id (a number or a list), for Hugging Face folders.
std::vector<int32_t> generation_config_eos(const std::filesystem::path& folder) {
  const std::filesystem::path path = folder / "generation_config.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return {};
  const auto json =
      nlohmann::json::parse(read_text_file(path), nullptr, /*allow_exceptions=*/false);
  std::vector<int32_t> ids;
  if (!json.is_object()) return ids;
  const auto it = json.find("eos_token_id");
  if (it == json.end()) return ids;
  const auto add = [&](const nlohmann::json& value) {
    if (value.is_number_integer()) ids.push_back(value.get<int32_t>());
  };
  if (it->is_array()) {
    for (const auto& value : *it) add(value);
  } else {
    add(*it);
  }
  return ids;
}

/// End-of-turn / end-of-message ids of a GGUF (Llama 3's <|eot_id|>, <|eom_id|>).
std::vector<int32_t> gguf_end_ids(const ModelFile& file) {
  std::vector<int32_t> ids;
  for (const auto& [key, value] : file.metadata()) {
    if (key != "tokenizer.ggml.eot_token_id" && key != "tokenizer.ggml.eom_token_id") continue;
    int32_t id = -1;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), id);
    if (ec == std::errc() && end == value.data() + value.size() && id >= 0) ids.push_back(id);
  }
  return ids;
}

}  // namespace

std::vector<int32_t> model_end_ids(const ModelFile& file) {
  std::vector<int32_t> ids = file.format() == ModelFormat::kHuggingFace
                                 ? generation_config_eos(file.path())
                                 : gguf_end_ids(file);
  if (file.has_tokenizer() && file.tokenizer().eos_id() >= 0) {
    ids.push_back(file.tokenizer().eos_id());
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

}  // namespace polyinfer::inline v0::detail
