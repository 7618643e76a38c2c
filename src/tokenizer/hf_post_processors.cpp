// SPDX-License-Identifier: Apache-2.0
// tokenizer.json post-processors (single sequence): TemplateProcessing, BertProcessing,
// RobertaProcessing, ByteLevel and Sequence.
#include <unordered_map>

#include "tokenizer/hf_pipeline.hpp"

namespace polyinfer::inline v0::detail {

namespace {

/// Adds fixed ids before and after the sequence: every single-sequence post-processor of
/// tokenizers reduces to this once its template is resolved.
class AffixProcessor final : public HfPostProcessor {
 public:
  AffixProcessor(std::vector<int32_t> prefix, std::vector<int32_t> suffix)
      : prefix_(std::move(prefix)), suffix_(std::move(suffix)) {}

  void add_special(std::vector<int32_t>& ids) const override {
    ids.insert(ids.begin(), prefix_.begin(), prefix_.end());
    ids.insert(ids.end(), suffix_.begin(), suffix_.end());
  }

 private:
  std::vector<int32_t> prefix_;
  std::vector<int32_t> suffix_;
};

int32_t read_id(const Json& value, const std::string& path, const HfJson& json) {
  if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() > INT32_MAX) {
    json.wrong_type(path, "a token id");
  }
  return static_cast<int32_t>(value.get<int64_t>());
}

/// The id of a ["[SEP]", 102] pair.
int32_t read_token_pair(const Json& node, std::string_view key, const std::string& path,
                        const HfJson& json) {
  const std::string pair_path = HfJson::child(path, key);
  const Json& pair = json.as_array(json.required(node, key, path), pair_path);
  if (pair.size() != 2) json.wrong_type(pair_path, "a [token, id] pair");
  (void)json.as_string(pair[0], HfJson::index(pair_path, 0));
  return read_id(pair[1], HfJson::index(pair_path, 1), json);
}

std::unique_ptr<const HfPostProcessor> make_template(const Json& node, const std::string& path,
                                                     const HfJson& json) {
  // special_tokens: {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}, …}
  std::unordered_map<std::string, std::vector<int32_t>> specials;
  if (const Json* map = HfJson::member(node, "special_tokens")) {
    const std::string map_path = HfJson::child(path, "special_tokens");
    json.as_object(*map, map_path);
    for (const auto& [name, entry] : map->items()) {
      const std::string entry_path = HfJson::child(map_path, name);
      const std::string ids_path = HfJson::child(entry_path, "ids");
      const Json& list = json.as_array(json.required(entry, "ids", entry_path), ids_path);
      std::vector<int32_t> ids;
      for (size_t i = 0; i < list.size(); ++i) {
        ids.push_back(read_id(list[i], HfJson::index(ids_path, i), json));
      }
      specials[json.optional_string(entry, "id", entry_path).value_or(name)] = std::move(ids);
    }
  }
  std::vector<int32_t> prefix;
  std::vector<int32_t> suffix;
  bool seen_sequence = false;
  const std::string single_path = HfJson::child(path, "single");
  const Json& single = json.as_array(json.required(node, "single", path), single_path);
  for (size_t i = 0; i < single.size(); ++i) {
    const std::string piece_path = HfJson::index(single_path, i);
    const Json& piece = json.as_object(single[i], piece_path);
    if (const Json* special = HfJson::member(piece, "SpecialToken")) {
      const std::string special_path = HfJson::child(piece_path, "SpecialToken");
      const std::string name = json.string(*special, "id", special_path);
      const auto it = specials.find(name);
      if (it == specials.end()) {
        json.invalid(HfJson::child(special_path, "id"),
                     "special token \"" + name + "\" missing from special_tokens");
      }
      auto& target = seen_sequence ? suffix : prefix;
      target.insert(target.end(), it->second.begin(), it->second.end());
    } else if (const Json* sequence = HfJson::member(piece, "Sequence")) {
      const std::string sequence_path = HfJson::child(piece_path, "Sequence");
      const std::string id = json.string(*sequence, "id", sequence_path);
      if (id == "A") {
        if (seen_sequence) json.invalid(sequence_path, "sequence A appears twice");
        seen_sequence = true;
      } else if (id != "B") {
        json.invalid(HfJson::child(sequence_path, "id"), "sequence id must be \"A\" or \"B\"");
      }
    } else {
      json.unsupported(piece_path, "template piece (expected SpecialToken or Sequence)");
    }
  }
  return std::make_unique<AffixProcessor>(std::move(prefix), std::move(suffix));
}

}  // namespace

void add_hf_post_processor(const Json& node, const std::string& path, const HfJson& json, int depth,
                           HfPostProcessors& out) {
  if (node.is_null()) return;
  if (depth > HfJson::kMaxDepth) json.invalid(path, "Sequence nesting too deep");
  const std::string type = json.type(node, path);
  if (type == "Sequence") {
    const std::string list_path = HfJson::child(path, "processors");
    const Json& list = json.as_array(json.required(node, "processors", path), list_path);
    for (size_t i = 0; i < list.size(); ++i) {
      add_hf_post_processor(list[i], HfJson::index(list_path, i), json, depth + 1, out);
    }
  } else if (type == "TemplateProcessing") {
    out.push_back(make_template(node, path, json));
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    out.push_back(std::make_unique<AffixProcessor>(
        std::vector<int32_t>{read_token_pair(node, "cls", path, json)},
        std::vector<int32_t>{read_token_pair(node, "sep", path, json)}));
  } else if (type == "ByteLevel") {
    // Offsets only: nothing to do for ids.
  } else {
    json.unsupported(HfJson::child(path, "type"), "post_processor type \"" + type + "\"");
  }
}

}  // namespace polyinfer::inline v0::detail
