// SPDX-License-Identifier: Apache-2.0
// make_hf_tokenizer: builds the pipeline of a tokenizer.json and applies tokenizer_config.json
// the way transformers' TokenizersBackend does (special tokens, cleanup, chat template).
#include <algorithm>

#include "common/fail.hpp"
#include "tokenizer/hf_pipeline.hpp"
#include "tokenizer/tokenizer_impl.hpp"

namespace polyinfer::inline v0::detail {

namespace {

Json parse_json(std::string_view text, const std::string& file) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    fail(ErrorCode::kFormat, file, "malformed JSON: {}", e.what());
  }
}

/// The file name used in config errors: tokenizer_config.json next to `where`.
std::string config_name(const std::string& where) {
  const size_t slash = where.find_last_of("/\\");
  return (slash == std::string::npos ? std::string() : where.substr(0, slash + 1)) +
         "tokenizer_config.json";
}

HfAddedToken read_added_token(const Json& node, const std::string& path, const HfJson& json,
                              bool special_default) {
  json.as_object(node, path);
  HfAddedToken token;
  token.content = json.string(node, "content", path);
  token.special = json.boolean(node, "special", path, special_default);
  token.single_word = json.boolean(node, "single_word", path, false);
  token.lstrip = json.boolean(node, "lstrip", path, false);
  token.rstrip = json.boolean(node, "rstrip", path, false);
  token.normalized = json.boolean(node, "normalized", path, !token.special);
  return token;
}

/// Gives `token` an id as tokenizers' add_tokens does: the model's id for its content, else
/// the next free id after the model and the tokens added so far.
void assign_id(HfAddedToken& token, const HfPipeline& pipeline) {
  if (const auto id = pipeline.model->token_to_id(token.content)) {
    token.id = *id;
    return;
  }
  int32_t next = pipeline.model->id_limit();
  for (const HfAddedToken& added : pipeline.added.tokens()) next = std::max(next, added.id + 1);
  token.id = next;
}

/// The id of a token string: added tokens first, then the model.
std::optional<int32_t> token_id(const HfPipeline& pipeline, std::string_view content) {
  if (const HfAddedToken* added = pipeline.added.find_content(content)) return added->id;
  return pipeline.model->token_to_id(content);
}

/// A special-token entry of tokenizer_config.json: "<s>" or {"content": "<s>", …}.
std::optional<HfAddedToken> read_config_token(const Json& config, std::string_view key,
                                              const HfJson& json) {
  const Json* value = HfJson::member(config, key);
  if (value == nullptr) return std::nullopt;
  if (value->is_string()) {
    HfAddedToken token;
    token.content = value->get<std::string>();
    token.special = true;
    token.normalized = false;
    return token;
  }
  HfAddedToken token = read_added_token(*value, std::string(key), json, true);
  return token;
}

std::string read_chat_template(const Json& config, const HfJson& json) {
  const Json* value = HfJson::member(config, "chat_template");
  if (value == nullptr) return {};
  if (value->is_string()) return value->get<std::string>();
  json.as_array(*value, "chat_template");
  std::string only;
  for (size_t i = 0; i < value->size(); ++i) {
    const std::string path = HfJson::index("chat_template", i);
    const Json& entry = json.as_object((*value)[i], path);
    std::string name = json.string(entry, "name", path);
    std::string text = json.string(entry, "template", path);
    if (name == "default") return text;
    if (value->size() == 1) only = std::move(text);
  }
  return only;
}

void add_token(HfPipeline& pipeline, HfAddedToken token) {
  if (token.content.empty()) return;
  if (const HfAddedToken* existing = pipeline.added.find_content(token.content)) {
    // Same content: keep its id; the newer flags win (tokenizers' and_modify).
    token.id = existing->id;
  } else {
    assign_id(token, pipeline);
  }
  pipeline.added.add(std::move(token));
}

/// What transformers reads from tokenizer_config.json on top of tokenizer.json.
void apply_config(const Json& config, const HfJson& json, HfPipeline& pipeline,
                  TokenizerInfo& info) {
  json.as_object(config, "");
  // added_tokens_decoder: {"509": {"content": …}, …}, added in id order when missing.
  if (const Json* decoder = HfJson::member(config, "added_tokens_decoder")) {
    json.as_object(*decoder, "added_tokens_decoder");
    std::vector<std::pair<int64_t, HfAddedToken>> entries;
    for (const auto& [key, value] : decoder->items()) {
      const std::string path = HfJson::child("added_tokens_decoder", key);
      int64_t id = -1;
      try {
        id = std::stoll(key);
      } catch (const std::exception&) {
        json.invalid(path, "key is not a token id");
      }
      entries.emplace_back(id, read_added_token(value, path, json, false));
    }
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [id, token] : entries) {
      if (pipeline.added.find_content(token.content) == nullptr) add_token(pipeline, token);
    }
  }
  // Named special tokens and extra special tokens become special added tokens when missing.
  static constexpr std::string_view kNamed[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                                "pad_token", "cls_token", "mask_token"};
  for (const std::string_view key : kNamed) {
    if (auto token = read_config_token(config, key, json)) {
      if (pipeline.added.find_content(token->content) == nullptr) add_token(pipeline, *token);
    }
  }
  for (const std::string_view key : {"extra_special_tokens", "additional_special_tokens"}) {
    const Json* list = HfJson::member(config, key);
    if (list == nullptr || !list->is_array()) continue;  // transformers also allows a dict
    for (size_t i = 0; i < list->size(); ++i) {
      const std::string path = HfJson::index(std::string(key), i);
      const Json& entry = (*list)[i];
      HfAddedToken token;
      if (entry.is_string()) {
        token.content = entry.get<std::string>();
        token.special = true;
        token.normalized = false;
      } else {
        token = read_added_token(entry, path, json, true);
      }
      if (pipeline.added.find_content(token.content) == nullptr) add_token(pipeline, token);
    }
  }

  auto named_id = [&](std::string_view key) -> int32_t {
    const auto token = read_config_token(config, key, json);
    if (!token) return -1;
    return token_id(pipeline, token->content).value_or(-1);
  };
  info.bos_id = named_id("bos_token");
  info.eos_id = named_id("eos_token");
  info.pad_id = named_id("pad_token");
  if (HfJson::member(config, "unk_token") != nullptr) info.unk_id = named_id("unk_token");

  // add_bos_token / add_eos_token are not read: transformers drops them from the config when a
  // tokenizer.json exists, so its post-processor alone decides what add_special adds.
  pipeline.clean_up_spaces = json.boolean(config, "clean_up_tokenization_spaces", "", false);
  pipeline.clean_up_bpe = json.boolean(
      config, "clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output", "", false);
  pipeline.split_special = json.boolean(config, "split_special_tokens", "", false);
  info.chat_template = read_chat_template(config, json);
}

std::string kind_of(const HfModel& model, const HfTraits& traits) {
  const std::string_view type = model.type();
  if (type == "BPE") {
    if (model.byte_fallback() || traits.metaspace) return "spm-bpe";
    if (traits.byte_level) return "byte-bpe";
    return "bpe";
  }
  if (type == "WordPiece") return "wordpiece";
  if (type == "WordLevel") return "wordlevel";
  return model.byte_fallback() || traits.metaspace ? "spm-unigram" : "unigram";
}

}  // namespace

std::shared_ptr<const TokenizerImpl> make_hf_tokenizer(std::string_view tokenizer_json,
                                                       std::string_view tokenizer_config_json,
                                                       const std::string& where) {
  const HfJson json(where);
  const Json root = parse_json(tokenizer_json, where);
  json.as_object(root, "");

  HfPipeline pipeline;
  HfTraits traits;
  if (const Json* node = HfJson::member(root, "normalizer")) {
    add_hf_normalizer(*node, "normalizer", json, 0, pipeline.normalizers);
  }
  if (const Json* node = HfJson::member(root, "pre_tokenizer")) {
    add_hf_pre_tokenizer(*node, "pre_tokenizer", json, 0, traits, pipeline.pre_tokenizers);
  }
  pipeline.model = make_hf_model(json.required(root, "model", ""), "model", json);
  if (const Json* node = HfJson::member(root, "post_processor")) {
    add_hf_post_processor(*node, "post_processor", json, 0, pipeline.post_processors);
  }
  if (const Json* node = HfJson::member(root, "decoder")) {
    add_hf_decoder(*node, "decoder", json, 0, traits, pipeline.decoders);
  }
  if (const Json* list = HfJson::member(root, "added_tokens")) {
    json.as_array(*list, "added_tokens");
    for (size_t i = 0; i < list->size(); ++i) {
      const std::string path = HfJson::index("added_tokens", i);
      HfAddedToken token = read_added_token((*list)[i], path, json, false);
      const int64_t id = json.integer((*list)[i], "id", path, -1);
      if (id > INT32_MAX - 1 ||
          id > static_cast<int64_t>(pipeline.model->id_limit()) + (int64_t{1} << 20)) {
        json.invalid(HfJson::child(path, "id"), "token id out of range");
      }
      if (id < 0) {
        add_token(pipeline, std::move(token));
      } else {
        token.id = static_cast<int32_t>(id);
        pipeline.added.add(std::move(token));
      }
    }
  }

  TokenizerInfo info;
  info.flavor = TokenizerFlavor::kHuggingFace;
  info.kind = kind_of(*pipeline.model, traits);
  const Json& model = json.required(root, "model", "");
  if (const Json* unk = HfJson::member(model, "unk_token"); unk != nullptr && unk->is_string()) {
    info.unk_id = token_id(pipeline, unk->get<std::string>()).value_or(-1);
  } else if (const Json* unk_id = HfJson::member(model, "unk_id");
             unk_id != nullptr && unk_id->is_number_integer()) {
    info.unk_id = static_cast<int32_t>(unk_id->get<int64_t>());  // range-checked by the model
  }
  if (!tokenizer_config_json.empty()) {
    const HfJson config_json(config_name(where));
    apply_config(parse_json(tokenizer_config_json, config_json.file()), config_json, pipeline,
                 info);
  }

  const HfNormalizers& normalizers = pipeline.normalizers;
  pipeline.added.build([&normalizers](std::string_view content) {
    std::string text(content);
    bool at_origin = true;
    for (const auto& normalizer : normalizers) normalizer->normalize(text, at_origin);
    return text;
  });
  return make_hf_pipeline_tokenizer(std::move(pipeline), std::move(info));
}

}  // namespace polyinfer::inline v0::detail
