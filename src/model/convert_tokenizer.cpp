// SPDX-License-Identifier: Apache-2.0
// Tokenizer metadata of a converted model: llama.cpp's set_vocab + SpecialVocab, and the
// embedded Hugging Face tokenizer.
#include "model/convert_tokenizer.hpp"

#include <fmt/format.h>

#include <array>
#include <cctype>
#include <map>
#include <optional>
#include <system_error>
#include <vector>

#include "common/fail.hpp"
#include "common/mapped_file.hpp"
#include "format/json_text.hpp"
#include "model/convert_metadata.hpp"
#include "tokenizer/gguf_hf_tokenizer.hpp"
#include "tokenizer/sentencepiece_model.hpp"

namespace polyinfer::inline v0::detail {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

// gguf token types.
constexpr int32_t kNormal = 1;
constexpr int32_t kUnknown = 2;
constexpr int32_t kControl = 3;
constexpr int32_t kUserDefined = 4;
constexpr int32_t kUnused = 5;
constexpr int32_t kByte = 6;

constexpr std::string_view kSpace = "\xE2\x96\x81";  // ▁

// Pre-tokenizer regexes of tokenizer.json Split steps that llama.cpp knows by name.
constexpr std::array<std::pair<std::string_view, std::string_view>, 2> kKnownSplits{{
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
     "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     "qwen2"},
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
     "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     "llama-bpe"},
}};

bool is_file(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

std::string read_optional(const fs::path& path) {
  return is_file(path) ? read_text_file(path) : std::string();
}

Json parse_optional(const fs::path& path) {
  const std::string text = read_optional(path);
  return text.empty() ? Json() : parse_json(text, path.string());
}

const Json* member(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

std::string string_of(const Json* value) {
  return value != nullptr && value->is_string() ? value->get<std::string>() : std::string();
}

bool bool_of(const Json* value, bool fallback) {
  return value != nullptr && value->is_boolean() ? value->get<bool>() : fallback;
}

std::optional<std::string> gpt2_pre(const Json& tokenizer) {
  const Json* model = member(tokenizer, "model");
  if (model == nullptr || string_of(member(*model, "type")) != "BPE") return std::nullopt;
  if (bool_of(member(*model, "byte_fallback"), false)) return std::nullopt;
  if (!string_of(member(*model, "continuing_subword_prefix")).empty() ||
      !string_of(member(*model, "end_of_word_suffix")).empty()) {
    return std::nullopt;
  }
  const Json* merges = member(*model, "merges");
  if (merges == nullptr || !merges->is_array() || merges->empty()) return std::nullopt;
  if (const Json* normalizer = member(tokenizer, "normalizer");
      normalizer != nullptr && string_of(member(*normalizer, "type")) != "NFC") {
    return std::nullopt;
  }
  const Json* decoder = member(tokenizer, "decoder");
  if (decoder == nullptr || string_of(member(*decoder, "type")) != "ByteLevel") return std::nullopt;
  const Json* pre = member(tokenizer, "pre_tokenizer");
  if (pre == nullptr) return std::nullopt;
  const std::string type = string_of(member(*pre, "type"));
  if (type == "ByteLevel") {
    if (bool_of(member(*pre, "use_regex"), true) &&
        !bool_of(member(*pre, "add_prefix_space"), true)) {
      return "gpt2";
    }
    return std::nullopt;
  }
  const Json* steps = member(*pre, "pretokenizers");
  if (type != "Sequence" || steps == nullptr || !steps->is_array() || steps->size() != 2) {
    return std::nullopt;
  }
  const Json& split = (*steps)[0];
  const Json& byte_level = (*steps)[1];
  if (string_of(member(split, "type")) != "Split" ||
      string_of(member(split, "behavior")) != "Isolated" ||
      bool_of(member(split, "invert"), false) ||
      string_of(member(byte_level, "type")) != "ByteLevel" ||
      bool_of(member(byte_level, "use_regex"), true) ||
      bool_of(member(byte_level, "add_prefix_space"), true)) {
    return std::nullopt;
  }
  const Json* pattern = member(split, "pattern");
  const std::string regex = pattern != nullptr ? string_of(member(*pattern, "Regex")) : "";
  for (const auto& [known, name] : kKnownSplits) {
    if (regex == known) return std::string(name);
  }
  return std::nullopt;
}

bool bert_faithful(const Json& tokenizer) {
  const Json* model = member(tokenizer, "model");
  if (model == nullptr || string_of(member(*model, "type")) != "WordPiece" ||
      string_of(member(*model, "continuing_subword_prefix")) != "##") {
    return false;
  }
  const Json* normalizer = member(tokenizer, "normalizer");
  if (normalizer == nullptr || string_of(member(*normalizer, "type")) != "BertNormalizer" ||
      !bool_of(member(*normalizer, "lowercase"), true) ||
      !bool_of(member(*normalizer, "strip_accents"), true) ||
      !bool_of(member(*normalizer, "clean_text"), true) ||
      !bool_of(member(*normalizer, "handle_chinese_chars"), true)) {
    return false;
  }
  const Json* pre = member(tokenizer, "pre_tokenizer");
  if (pre == nullptr || string_of(member(*pre, "type")) != "BertPreTokenizer") return false;
  const Json* post = member(tokenizer, "post_processor");
  if (post == nullptr) return false;
  const std::string post_type = string_of(member(*post, "type"));
  if (post_type == "BertProcessing") return true;
  const Json* single = member(*post, "single");
  if (post_type != "TemplateProcessing" || single == nullptr || !single->is_array() ||
      single->size() != 3) {
    return false;
  }
  const auto special = [](const Json& item) {
    const Json* token = member(item, "SpecialToken");
    return token != nullptr ? string_of(member(*token, "id")) : std::string();
  };
  return special((*single)[0]) == "[CLS]" && special((*single)[2]) == "[SEP]";
}

/// gguf-py's does_token_look_special.
bool looks_special(std::string_view token) {
  return token == "<pad>" || token == "<mask>" || token == "<2mass>" || token == "[@BOS@]" ||
         (token.starts_with("<|") && token.ends_with("|>")) ||
         (token.starts_with("<\xEF\xBD\x9C") && token.ends_with("\xEF\xBD\x9C>")) ||
         (token.starts_with("<unused") && token.ends_with(">"));
}

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  for (size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos)) {
    text.replace(pos, from.size(), to);
    pos += to.size();
  }
  return text;
}

struct Vocab {
  std::string model;
  std::string pre;
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  std::vector<std::string> merges;
};

/// The files the tokenizer metadata comes from.
struct Sources {
  fs::path folder;
  std::string tokenizer_text;
  Json tokenizer;  // null when there is no tokenizer.json
  std::string config_text;
  Json config;  // tokenizer_config.json, null when absent
  const Json& model_config;
};

int64_t config_vocab_size(const Json& model_config, int64_t fallback) {
  const Json* size = member(model_config, "vocab_size");
  return size != nullptr && size->is_number_integer() ? size->get<int64_t>() : fallback;
}

/// convert_hf_to_gguf's _create_vocab_sentencepiece.
Vocab spm_vocab(const Sources& src) {
  const fs::path path = src.folder / "tokenizer.model";
  const SentencePieceModel sp = parse_sentencepiece_model(read_text_file(path), path.string());
  const auto pieces = static_cast<int64_t>(sp.pieces.size());
  const int64_t size = config_vocab_size(src.model_config, pieces);
  if (pieces > size) {
    fail(ErrorCode::kFormat, path.string(), "{} pieces but config.json vocab_size is {}", pieces,
         size);
  }
  Vocab vocab;
  vocab.model = "llama";
  vocab.pre = "default";
  for (int64_t i = 0; i < size; ++i) vocab.tokens.push_back(fmt::format("[PAD{}]", i));
  vocab.scores.assign(static_cast<size_t>(size), -10000.0f);
  vocab.types.assign(static_cast<size_t>(size), kUnused);
  for (int64_t i = 0; i < pieces; ++i) {
    const auto& piece = sp.pieces[static_cast<size_t>(i)];
    using Type = SentencePieceModel::PieceType;
    int32_t type = kNormal;  // sentencepiece's user-defined pieces stay NORMAL, as the converter
    if (piece.type == Type::kUnknown) type = kUnknown;
    if (piece.type == Type::kControl) type = kControl;
    if (piece.type == Type::kUnused) type = kUnused;
    if (piece.type == Type::kByte) type = kByte;
    vocab.tokens[static_cast<size_t>(i)] = piece.text;
    vocab.scores[static_cast<size_t>(i)] = piece.score;
    vocab.types[static_cast<size_t>(i)] = type;
  }
  const Json added = parse_optional(src.folder / "added_tokens.json");
  if (added.is_object()) {
    for (const auto& [text, id] : added.items()) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= size) continue;
      const auto index = static_cast<size_t>(id.get<int64_t>());
      vocab.tokens[index] = text;
      vocab.scores[index] = -1000.0f;
      vocab.types[index] = kUserDefined;
    }
  }
  if (const Json* decoder = member(src.config, "added_tokens_decoder");
      decoder != nullptr && decoder->is_object()) {
    for (const auto& [key, data] : decoder->items()) {
      int64_t id = -1;
      try {
        id = std::stoll(key);
      } catch (const std::exception&) {
        continue;
      }
      if (id < 0 || id >= size) continue;
      std::string token = string_of(member(data, "content"));
      const auto index = static_cast<size_t>(id);
      if (bool_of(member(data, "special"), false) || looks_special(token)) {
        vocab.types[index] = kControl;
      } else {
        token = replace_all(token, kSpace, " ");
        vocab.types[index] = kUserDefined;
      }
      vocab.scores[index] = -1000.0f;
      vocab.tokens[index] = token;
    }
  }
  return vocab;
}

/// convert_hf_to_gguf's get_vocab_base over tokenizer.json (what AutoTokenizer would list).
Vocab base_vocab(const Sources& src) {
  const Json& model = *member(src.tokenizer, "model");
  std::map<int64_t, std::string> by_id;
  if (const Json* entries = member(model, "vocab"); entries != nullptr && entries->is_object()) {
    for (const auto& [token, id] : entries->items()) {
      if (id.is_number_integer()) by_id[id.get<int64_t>()] = token;
    }
  }
  std::map<int64_t, bool> added_special;  // id → special
  if (const Json* added = member(src.tokenizer, "added_tokens"); added != nullptr) {
    for (const Json& entry : *added) {
      const Json* id = member(entry, "id");
      if (id == nullptr || !id->is_number_integer()) continue;
      by_id[id->get<int64_t>()] = string_of(member(entry, "content"));
      added_special[id->get<int64_t>()] = bool_of(member(entry, "special"), false);
    }
  }
  const int64_t size = config_vocab_size(src.model_config, static_cast<int64_t>(by_id.size()));
  Vocab vocab;
  for (int64_t i = 0; i < size; ++i) {
    const auto it = by_id.find(i);
    if (it == by_id.end()) {
      vocab.tokens.push_back(fmt::format("[PAD{}]", i));
      vocab.types.push_back(kUnused);
      continue;
    }
    std::string token = it->second;
    int32_t type = kNormal;
    if (const auto added = added_special.find(i); added != added_special.end()) {
      if (added->second || looks_special(token)) {
        type = kControl;
      } else {
        token = replace_all(token, kSpace, " ");
        type = kUserDefined;
      }
    }
    vocab.tokens.push_back(std::move(token));
    vocab.types.push_back(type);
  }
  return vocab;
}

/// gguf-py SpecialVocab: merges (gpt2), special ids, add_*_token flags, chat template.
class SpecialVocab {
 public:
  SpecialVocab(const Sources& src, std::optional<int64_t> n_vocab) : n_vocab_(n_vocab) {
    const Json* added = member(src.tokenizer, "added_tokens");
    read_chat_template(src);
    if (src.config.is_object()) {
      for (const std::string_view type : kTypes) {
        if (const Json* flag = member(src.config, fmt::format("add_{}_token", type));
            flag != nullptr && flag->is_boolean()) {
          add_flags_.emplace_back(type, flag->get<bool>());
        }
        const Json* entry = member(src.config, fmt::format("{}_token", type));
        std::string content = string_of(entry);
        if (entry != nullptr && entry->is_object()) content = string_of(member(*entry, "content"));
        if (content.empty() || added == nullptr) continue;
        for (const Json& token : *added) {
          if (string_of(member(token, "content")) != content) continue;
          if (const Json* id = member(token, "id"); id != nullptr && id->is_number_integer()) {
            set(type, id->get<int64_t>());
          }
          break;
        }
      }
    }
    for (const std::string_view type : kTypes) {
      const Json* id = member(src.model_config, fmt::format("{}_token_id", type));
      if (id != nullptr && id->is_number_integer()) set(type, id->get<int64_t>());
    }
  }

  [[nodiscard]] std::optional<int64_t> id(std::string_view type) const {
    for (const auto& [name, value] : ids_) {
      if (name == type) return value;
    }
    return std::nullopt;
  }

  void write(GgufWriter& writer) const {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 7> kKeys{{
        {"bos", "tokenizer.ggml.bos_token_id"},
        {"eos", "tokenizer.ggml.eos_token_id"},
        {"unk", "tokenizer.ggml.unknown_token_id"},
        {"sep", "tokenizer.ggml.seperator_token_id"},  // llama.cpp's spelling
        {"pad", "tokenizer.ggml.padding_token_id"},
        {"cls", "tokenizer.ggml.cls_token_id"},
        {"mask", "tokenizer.ggml.mask_token_id"},
    }};
    for (const auto& [type, value] : ids_) {
      for (const auto& [name, key] : kKeys) {
        if (name == type) {
          writer.set(std::string(key), GgufValue::make_u32(static_cast<uint32_t>(value)));
        }
      }
    }
    for (const auto& [type, value] : add_flags_) {
      if (type == "bos" || type == "eos") {
        writer.set(fmt::format("tokenizer.ggml.add_{}_token", type), GgufValue::make_bool(value));
      }
    }
    write_chat_template(writer);
  }

 private:
  static constexpr std::array<std::string_view, 7> kTypes{"bos", "eos", "unk", "sep",
                                                          "pad", "cls", "mask"};

  void set(std::string_view type, int64_t value) {
    if (value < 0 || (n_vocab_ && value >= *n_vocab_) || id(type)) return;
    ids_.emplace_back(std::string(type), value);
  }

  /// tokenizer_config.json's chat_template, else chat_template.json's, else (newer
  /// transformers) chat_template.jinja.
  void read_chat_template(const Sources& src) {
    if (const Json* value = member(src.config, "chat_template")) {
      chat_template_ = *value;
    } else if (const Json alt = parse_optional(src.folder / "chat_template.json");
               member(alt, "chat_template") != nullptr) {
      chat_template_ = *member(alt, "chat_template");
    } else if (const std::string jinja = read_optional(src.folder / "chat_template.jinja");
               !jinja.empty()) {
      chat_template_ = jinja;
    }
  }

  /// GGUFWriter.add_chat_template: a string, or a list of {name, template}.
  void write_chat_template(GgufWriter& writer) const {
    if (chat_template_.is_string()) {
      writer.set("tokenizer.chat_template",
                 GgufValue::make_string(chat_template_.get<std::string>()));
      return;
    }
    if (!chat_template_.is_array()) return;
    std::optional<std::string> fallback;
    std::vector<std::string> names;
    for (const Json& choice : chat_template_) {
      std::string name = string_of(member(choice, "name"));
      const Json* text = member(choice, "template");
      for (char& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      if (name.empty() || text == nullptr || !text->is_string()) continue;
      if (name == "default") {
        fallback = text->get<std::string>();
      } else {
        names.push_back(name);
        writer.set("tokenizer.chat_template." + name,
                   GgufValue::make_string(text->get<std::string>()));
      }
    }
    if (!names.empty()) writer.set("tokenizer.chat_templates", gguf_string_array(names));
    if (fallback) writer.set("tokenizer.chat_template", GgufValue::make_string(*fallback));
  }

  std::optional<int64_t> n_vocab_;
  std::vector<std::pair<std::string, int64_t>> ids_;
  std::vector<std::pair<std::string, bool>> add_flags_;
  Json chat_template_;
};

std::vector<std::string> merges_of(const Json& tokenizer) {
  std::vector<std::string> merges;
  const Json* list = member(*member(tokenizer, "model"), "merges");
  if (list == nullptr) return merges;
  const std::string shifted_space = "\xC4\xA0";  // chr(ord(' ') + 256)
  for (const Json& merge : *list) {
    if (merge.is_string()) {
      merges.push_back(merge.get<std::string>());
    } else if (merge.is_array() && merge.size() == 2) {
      merges.push_back(replace_all(string_of(&merge[0]), " ", shifted_space) + " " +
                       replace_all(string_of(&merge[1]), " ", shifted_space));
    }
  }
  return merges;
}

void write_vocab(GgufWriter& writer, const Vocab& vocab) {
  writer.set("tokenizer.ggml.model", GgufValue::make_string(vocab.model));
  writer.set("tokenizer.ggml.pre", GgufValue::make_string(vocab.pre));
  writer.set("tokenizer.ggml.tokens", gguf_string_array(vocab.tokens));
  if (!vocab.scores.empty()) {
    std::vector<GgufValue> scores;
    for (const float s : vocab.scores) scores.push_back(GgufValue::make_f32(s));
    writer.set("tokenizer.ggml.scores", GgufValue::make_array(GgufType::kF32, std::move(scores)));
  }
  std::vector<GgufValue> types;
  for (const int32_t t : vocab.types) types.push_back(GgufValue::make_i32(t));
  writer.set("tokenizer.ggml.token_type", GgufValue::make_array(GgufType::kI32, std::move(types)));
}

/// generation_config.json's eos_token_id list: ids other than the tokenizer's EOS become
/// tokenizer.ggml.eot_token_id, then eom_token_id (llama.cpp ends generation on both).
void write_generation_end_ids(GgufWriter& writer, const fs::path& folder,
                              std::optional<int64_t> eos) {
  const Json generation = parse_optional(folder / "generation_config.json");
  const Json* ids = member(generation, "eos_token_id");
  if (ids == nullptr || !ids->is_array()) return;
  std::vector<int64_t> extra;
  for (const Json& id : *ids) {
    if (id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() != eos.value_or(-1)) {
      extra.push_back(id.get<int64_t>());
    }
  }
  static constexpr std::array<std::string_view, 2> kKeys{"tokenizer.ggml.eot_token_id",
                                                         "tokenizer.ggml.eom_token_id"};
  for (size_t i = 0; i < extra.size() && i < kKeys.size(); ++i) {
    writer.set(std::string(kKeys[i]), GgufValue::make_u32(static_cast<uint32_t>(extra[i])));
  }
}

}  // namespace

GgufVocabChoice gguf_vocab_choice(const fs::path& folder, std::string_view architecture) {
  const Json tokenizer = parse_optional(folder / "tokenizer.json");
  if (architecture == "bert") {
    if (tokenizer.is_object() && bert_faithful(tokenizer)) {
      return {GgufVocabKind::kBert, "default", false};
    }
    return {};
  }
  if (is_file(folder / "tokenizer.model")) return {GgufVocabKind::kSpm, "default", true};
  if (tokenizer.is_object()) {
    if (auto pre = gpt2_pre(tokenizer)) return {GgufVocabKind::kGpt2, *pre, true};
  }
  return {};
}

std::string add_converted_tokenizer(GgufWriter& writer, const fs::path& folder, const Json& config,
                                    std::string_view architecture, TokenizerMetadata mode) {
  const fs::path json_path = folder / "tokenizer.json";
  const fs::path config_path = folder / "tokenizer_config.json";
  Sources src{folder, read_optional(json_path), Json(), read_optional(config_path), Json(), config};
  if (!src.tokenizer_text.empty())
    src.tokenizer = parse_json(src.tokenizer_text, json_path.string());
  if (!src.config_text.empty()) src.config = parse_json(src.config_text, config_path.string());

  const GgufVocabChoice choice = gguf_vocab_choice(folder, architecture);
  if (mode == TokenizerMetadata::kGgml && choice.kind == GgufVocabKind::kNone) {
    fail(ErrorCode::kUnsupported, folder.string(),
         "the tokenizer does not map to a llama.cpp vocabulary (convert without --tokenizer ggml "
         "to embed only tokenizer.huggingface.json)");
  }
  const bool write_ggml =
      mode == TokenizerMetadata::kGgml || (mode == TokenizerMetadata::kAuto && choice.exact);
  const GgufVocabKind kind = write_ggml ? choice.kind : GgufVocabKind::kNone;
  const std::string& pre = choice.pre;
  if (architecture == "bert") {
    const Json* types = member(config, "type_vocab_size");
    writer.set("tokenizer.ggml.token_type_count",
               GgufValue::make_u32(
                   types != nullptr && types->is_number_integer() ? types->get<uint32_t>() : 1));
  }
  std::optional<int64_t> n_vocab;
  switch (kind) {
    case GgufVocabKind::kSpm: {
      const Vocab vocab = spm_vocab(src);
      write_vocab(writer, vocab);
      n_vocab = static_cast<int64_t>(vocab.tokens.size());
      break;
    }
    case GgufVocabKind::kGpt2: {
      Vocab vocab = base_vocab(src);
      vocab.model = "gpt2";
      vocab.pre = pre;
      write_vocab(writer, vocab);
      writer.set("tokenizer.ggml.merges", gguf_string_array(merges_of(src.tokenizer)));
      break;  // SpecialVocab(load_merges=True) has no n_vocab
    }
    case GgufVocabKind::kBert: {
      Vocab vocab = base_vocab(src);
      vocab.model = "bert";
      vocab.pre = pre;
      for (std::string& token : vocab.tokens) {  // BertModel.set_vocab's phantom spaces
        if (token.starts_with("[") && token.ends_with("]")) continue;
        token = token.starts_with("##") ? token.substr(2) : std::string(kSpace) + token;
      }
      write_vocab(writer, vocab);
      n_vocab = static_cast<int64_t>(vocab.tokens.size());
      break;
    }
    case GgufVocabKind::kNone:
      n_vocab = config_vocab_size(config, -1);
      if (*n_vocab < 0) n_vocab.reset();
      break;
  }
  const SpecialVocab special(src, n_vocab);
  special.write(writer);
  if (kind == GgufVocabKind::kBert && !special.id("bos") && special.id("cls")) {
    writer.set("tokenizer.ggml.bos_token_id",
               GgufValue::make_u32(static_cast<uint32_t>(*special.id("cls"))));
  }
  write_generation_end_ids(writer, folder, special.id("eos"));
  if (!src.tokenizer_text.empty()) {
    writer.set(std::string(kGgufHfJsonKey), GgufValue::make_string(src.tokenizer_text));
    if (!src.config_text.empty()) {
      writer.set(std::string(kGgufHfConfigKey), GgufValue::make_string(src.config_text));
    }
  }
  const bool ggml = kind != GgufVocabKind::kNone;
  const bool hf = !src.tokenizer_text.empty();
  return ggml && hf ? "ggml+hf" : ggml ? "ggml" : hf ? "hf" : "none";
}

}  // namespace polyinfer::inline v0::detail
