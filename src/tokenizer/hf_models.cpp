// SPDX-License-Identifier: Apache-2.0
// tokenizer.json models: vocabulary reading and dispatch on the model "type".
#include "common/fail.hpp"
#include "tokenizer/hf_pipeline.hpp"

namespace polyinfer::inline v0::detail {

namespace {

/// Ids beyond the number of entries plus this are refused: a gap that large is hostile.
constexpr int64_t kMaxIdGap = int64_t{1} << 20;

}  // namespace

void HfVocab::add(std::string token, int64_t id, size_t entries, const std::string& path,
                  const HfJson& json) {
  if (id < 0 || id > static_cast<int64_t>(entries) + kMaxIdGap || id > INT32_MAX - 1) {
    json.invalid(path, "token id " + std::to_string(id) + " out of range");
  }
  const auto index = static_cast<size_t>(id);
  if (index >= tokens.size()) {
    tokens.resize(index + 1);
    present.resize(index + 1, false);
  }
  tokens[index] = token;
  present[index] = true;
  ids.insert_or_assign(std::move(token), static_cast<int32_t>(id));
}

HfVocab read_hf_vocab(const Json& node, const std::string& path, const HfJson& json) {
  HfVocab vocab;
  json.as_object(node, path);
  vocab.ids.reserve(node.size());
  for (const auto& [token, value] : node.items()) {
    const std::string entry = HfJson::child(path, token);
    if (!value.is_number_integer()) json.wrong_type(entry, "an integer token id");
    vocab.add(token, value.get<int64_t>(), node.size(), entry, json);
  }
  return vocab;
}

std::unique_ptr<const HfModel> make_hf_model(const Json& node, const std::string& path,
                                             const HfJson& json) {
  json.as_object(node, path);
  std::string type;
  if (HfJson::member(node, "type") != nullptr) {
    type = json.type(node, path);
  } else if (HfJson::member(node, "merges") != nullptr) {
    type = "BPE";  // tokenizers infers the model from its fields when "type" is absent
  } else if (HfJson::member(node, "max_input_chars_per_word") != nullptr) {
    type = "WordPiece";
  } else if (const Json* vocab = HfJson::member(node, "vocab"); vocab && vocab->is_array()) {
    type = "Unigram";
  } else {
    type = "WordLevel";
  }
  if (type == "BPE") return make_hf_bpe_model(node, path, json);
  if (type == "WordPiece") return make_hf_wordpiece_model(node, path, json);
  if (type == "WordLevel") return make_hf_wordlevel_model(node, path, json);
  if (type == "Unigram") return make_hf_unigram_model(node, path, json);
  json.unsupported(HfJson::child(path, "type"), "model type \"" + type + "\"");
}

}  // namespace polyinfer::inline v0::detail
