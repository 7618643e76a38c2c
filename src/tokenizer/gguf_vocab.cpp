// SPDX-License-Identifier: Apache-2.0
// Reading a llama.cpp vocabulary from GGUF metadata (llama_vocab::impl::load, Feb 2025).
#include "tokenizer/gguf_vocab.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>

#include "common/fail.hpp"
#include "format/gguf.hpp"

namespace polyinfer::inline v0::detail {

namespace {

constexpr std::string_view kModelKey = "tokenizer.ggml.model";
constexpr std::string_view kPreKey = "tokenizer.ggml.pre";
constexpr std::string_view kTokensKey = "tokenizer.ggml.tokens";
constexpr std::string_view kScoresKey = "tokenizer.ggml.scores";
constexpr std::string_view kTokenTypeKey = "tokenizer.ggml.token_type";
constexpr std::string_view kMergesKey = "tokenizer.ggml.merges";

// gguf token types (llama_token_type).
constexpr int64_t kTypeUndefined = 0;
constexpr int64_t kTypeNormal = 1;
constexpr int64_t kTypeUnknown = 2;
constexpr int64_t kTypeControl = 3;
constexpr int64_t kTypeUserDefined = 4;
constexpr int64_t kTypeUnused = 5;
constexpr int64_t kTypeByte = 6;

std::string key_where(const GgufFile& file, std::string_view key) {
  return file.name() + ": " + std::string(key);
}

uint32_t attr_of_type(int64_t type) {
  switch (type) {
    case kTypeUnknown:
      return kAttrUnknown;
    case kTypeUnused:
      return kAttrUnused;
    case kTypeNormal:
      return kAttrNormal;
    case kTypeControl:
      return kAttrControl;
    case kTypeUserDefined:
      return kAttrUserDefined;
    case kTypeByte:
      return kAttrByte;
    case kTypeUndefined:
    default:
      return kAttrUndefined;
  }
}

void read_type(const GgufFile& file, GgufVocab& vocab) {
  const auto model = file.get_string(kModelKey);
  if (!model) fail(ErrorCode::kTokenizer, key_where(file, kModelKey), "missing");
  vocab.model = std::string(*model);
  vocab.pre = std::string(file.get_string(kPreKey).value_or(""));
  if (vocab.model == "llama") {
    vocab.type = LlamaVocabType::kSpm;
    vocab.bos_id = 1;
    vocab.eos_id = 2;
    vocab.unk_id = 0;
    vocab.add_space_prefix = true;
    vocab.clean_spaces = false;
    vocab.add_bos = true;
  } else if (vocab.model == "bert") {
    vocab.type = LlamaVocabType::kWpm;
    vocab.bos_id = 101;
    vocab.unk_id = 100;
    vocab.sep_id = 102;
    vocab.pad_id = 0;
    vocab.mask_id = 103;
    vocab.clean_spaces = true;
    vocab.add_bos = true;
  } else if (vocab.model == "gpt2") {
    vocab.type = LlamaVocabType::kBpe;
    vocab.bos_id = 11;
    vocab.eos_id = 11;
    auto spec = llama_pre_tokenizer_spec(vocab.pre);
    if (!spec) {
      fail(ErrorCode::kUnsupported, key_where(file, kPreKey),
           "unknown pre-tokenizer type '{}' (llama.cpp, Feb 2025, does not know it)", vocab.pre);
    }
    vocab.pre_spec = std::move(*spec);
    vocab.clean_spaces = vocab.pre_spec.clean_spaces;
    vocab.ignore_merges = vocab.pre_spec.ignore_merges;
    vocab.add_bos = vocab.pre_spec.add_bos;
    if (vocab.pre_spec.no_bos) vocab.bos_id = -1;
  } else {
    fail(ErrorCode::kUnsupported, key_where(file, kModelKey),
         "tokenizer model '{}' is not supported (supported: llama, gpt2, bert)", vocab.model);
  }
  if (const auto flag = file.get_bool("tokenizer.ggml.add_space_prefix")) {
    vocab.add_space_prefix = *flag;
  }
  if (const auto flag = file.get_bool("tokenizer.ggml.remove_extra_whitespaces")) {
    vocab.remove_extra_whitespaces = *flag;
  }
}

void read_tokens(const GgufFile& file, GgufVocab& vocab) {
  auto tokens = file.get_string_array(kTokensKey);
  if (!tokens) fail(ErrorCode::kTokenizer, key_where(file, kTokensKey), "missing");
  if (tokens->empty()) fail(ErrorCode::kTokenizer, key_where(file, kTokensKey), "is empty");
  if (tokens->size() > static_cast<size_t>(INT32_MAX)) {
    fail(ErrorCode::kTokenizer, key_where(file, kTokensKey), "has {} entries", tokens->size());
  }
  const size_t count = tokens->size();

  std::optional<std::vector<double>> scores = file.get_number_array(kScoresKey);
  if (scores && scores->size() != count) {
    fail(ErrorCode::kTokenizer, key_where(file, kScoresKey), "has {} entries but {} has {}",
         scores->size(), kTokensKey, count);
  }
  std::optional<std::vector<int64_t>> types = file.get_int_array(kTokenTypeKey);
  if (types && types->size() != count) {
    fail(ErrorCode::kTokenizer, key_where(file, kTokenTypeKey), "has {} entries but {} has {}",
         types->size(), kTokensKey, count);
  }

  vocab.tokens.reserve(count);
  vocab.inner_byte_pairs.assign(256 * 256, 0);
  vocab.scores.assign(count, 0.0f);
  vocab.attrs.assign(count, kAttrNormal);
  vocab.token_to_id.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    std::string text((*tokens)[i]);
    if (text.empty()) text = "[EMPTY_" + std::to_string(i) + "]";  // as llama.cpp names them
    const auto [it, inserted] = vocab.token_to_id.emplace(text, static_cast<int32_t>(i));
    if (!inserted) {
      fail(ErrorCode::kTokenizer, key_where(file, kTokensKey), "entries {} and {} are both '{}'",
           it->second, i, text);
    }
    vocab.max_token_len = std::max(vocab.max_token_len, text.size());
    for (size_t b = 1; b < text.size(); ++b) {
      vocab.inner_byte_pairs[static_cast<unsigned char>(text[b - 1]) * 256u +
                             static_cast<unsigned char>(text[b])] = 1;
    }
    vocab.tokens.push_back(std::move(text));
    if (scores) vocab.scores[i] = static_cast<float>((*scores)[i]);
    if (types) vocab.attrs[i] = attr_of_type((*types)[i]);
  }
}

void read_merges(const GgufFile& file, GgufVocab& vocab) {
  const auto merges = file.get_string_array(kMergesKey);
  if (!merges) fail(ErrorCode::kTokenizer, key_where(file, kMergesKey), "missing");
  vocab.merge_ranks.reserve(merges->size());
  for (size_t rank = 0; rank < merges->size(); ++rank) {
    const std::string_view merge = (*merges)[rank];
    const size_t space = merge.size() > 1 ? merge.find(' ', 1) : std::string_view::npos;
    if (space == std::string_view::npos) {
      fail(ErrorCode::kTokenizer, key_where(file, kMergesKey),
           "entry {} '{}' is not two tokens separated by a space", rank, merge);
    }
    const std::string_view left = merge.substr(0, space);
    const std::string_view right = merge.substr(space + 1);
    const int32_t left_id = vocab.find(left);
    const int32_t right_id = vocab.find(right);
    if (left_id < 0 || right_id < 0) {
      fail(ErrorCode::kTokenizer, key_where(file, kMergesKey),
           "entry {} '{}' refers to '{}', which is not in {}", rank, merge,
           left_id < 0 ? left : right, kTokensKey);
    }
    const uint64_t key = (static_cast<uint64_t>(left_id) << 32) | static_cast<uint32_t>(right_id);
    vocab.merge_ranks.emplace(key, static_cast<int32_t>(rank));  // the first rank wins
  }
}

// FIM ids: read and checked, and they stop the search by text (force_control_tokens); callers
// build FIM prompts themselves, so they are not kept.
struct FimIds {
  int32_t pre = -1, suf = -1, mid = -1, pad = -1, rep = -1, sep = -1;
};

void read_special_ids(const GgufFile& file, GgufVocab& vocab, FimIds& fim) {
  const std::array<std::pair<std::string_view, int32_t*>, 17> keys = {{
      {"tokenizer.ggml.bos_token_id", &vocab.bos_id},
      {"tokenizer.ggml.eos_token_id", &vocab.eos_id},
      {"tokenizer.ggml.eot_token_id", &vocab.eot_id},
      {"tokenizer.ggml.eom_token_id", &vocab.eom_id},
      {"tokenizer.ggml.unknown_token_id", &vocab.unk_id},
      {"tokenizer.ggml.seperator_token_id", &vocab.sep_id},  // llama.cpp's spelling
      {"tokenizer.ggml.padding_token_id", &vocab.pad_id},
      {"tokenizer.ggml.mask_token_id", &vocab.mask_id},
      {"tokenizer.ggml.fim_pre_token_id", &fim.pre},
      {"tokenizer.ggml.fim_suf_token_id", &fim.suf},
      {"tokenizer.ggml.fim_mid_token_id", &fim.mid},
      {"tokenizer.ggml.fim_pad_token_id", &fim.pad},
      {"tokenizer.ggml.fim_rep_token_id", &fim.rep},
      {"tokenizer.ggml.fim_sep_token_id", &fim.sep},
      {"tokenizer.ggml.prefix_token_id", &fim.pre},  // deprecated names
      {"tokenizer.ggml.suffix_token_id", &fim.suf},
      {"tokenizer.ggml.middle_token_id", &fim.mid},
  }};
  const int64_t count = vocab.size();
  for (const auto& [key, target] : keys) {
    const auto value = file.get_int(key);
    if (!value) continue;
    if (*value < 0 || *value >= count) {
      fail(ErrorCode::kTokenizer, key_where(file, key), "token id {} is out of range [0, {})",
           *value, count);
    }
    *target = static_cast<int32_t>(*value);
  }
  // Older BERT conversions name [CLS] only; llama.cpp's BOS of a WPM vocabulary is [CLS].
  if (vocab.type == LlamaVocabType::kWpm && !file.find("tokenizer.ggml.bos_token_id")) {
    if (const auto cls = file.get_int("tokenizer.ggml.cls_token_id")) {
      if (*cls < 0 || *cls >= count) {
        fail(ErrorCode::kTokenizer, key_where(file, "tokenizer.ggml.cls_token_id"),
             "token id {} is out of range [0, {})", *cls, count);
      }
      vocab.bos_id = static_cast<int32_t>(*cls);
    }
  }
  // Defaults that do not exist in a small vocabulary mean "none".
  for (int32_t* id : {&vocab.bos_id, &vocab.eos_id, &vocab.unk_id, &vocab.sep_id, &vocab.pad_id,
                      &vocab.mask_id}) {
    if (*id >= count) *id = -1;
  }
  if (const auto flag = file.get_bool("tokenizer.ggml.add_bos_token")) vocab.add_bos = *flag;
  if (const auto flag = file.get_bool("tokenizer.ggml.add_eos_token")) vocab.add_eos = *flag;
}

// llama.cpp overrides the type of a token that should be a control token but is not.
void make_control(GgufVocab& vocab, int32_t id) {
  auto& attr = vocab.attrs[static_cast<size_t>(id)];
  if ((attr & kAttrControl) == 0) attr = kAttrControl;
}

// llama.cpp finds end-of-turn, FIM and end-of-generation tokens by their text and makes them
// control tokens (which changes how they are matched in text and decoded).
void force_control_tokens(GgufVocab& vocab, const FimIds& fim) {
  constexpr std::string_view kEndOfSentence =
      "<\xef\xbd\x9c"
      "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>";  // DeepSeek
  const std::vector<std::vector<std::string_view>> first_of_category = {
      {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>",
       kEndOfSentence},
      {"<|eom_id|>"},
      {"<|fim_prefix|>", "<fim-prefix>",
       "<\xef\xbd\x9c"
       "fim\xe2\x96\x81"
       "begin\xef\xbd\x9c>",
       "<PRE>"},
      {"<|fim_suffix|>", "<fim-suffix>",
       "<\xef\xbd\x9c"
       "fim\xe2\x96\x81"
       "hole\xef\xbd\x9c>",
       "<SUF>"},
      {"<|fim_middle|>", "<fim-middle>",
       "<\xef\xbd\x9c"
       "fim\xe2\x96\x81"
       "end\xef\xbd\x9c>",
       "<MID>"},
      {"<|fim_pad|>", "<fim-pad>", "<PAD>"},
      {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>"},
      {"<|file_sep|>"},
  };
  const std::array<int32_t, 8> given = {vocab.eot_id, vocab.eom_id, fim.pre, fim.suf,
                                        fim.mid,      fim.pad,      fim.rep, fim.sep};
  for (size_t category = 0; category < first_of_category.size(); ++category) {
    if (given[category] >= 0) continue;  // the metadata named it: no search by text
    for (const std::string_view text : first_of_category[category]) {
      const int32_t id = vocab.find(text);
      if (id < 0) continue;
      if (category == 0) vocab.eot_id = id;
      if (category == 1) vocab.eom_id = id;
      make_control(vocab, id);
      break;
    }
  }
  for (const std::string_view text : {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                      "<|endoftext|>", "<|eom_id|>", "<EOT>"}) {
    const int32_t id = vocab.find(text);
    if (id >= 0) make_control(vocab, id);
  }
}

void build_special_tokens(const GgufFile& file, GgufVocab& vocab) {
  for (int32_t id = 0; id < vocab.size(); ++id) {
    if (vocab.has_attr(id, kAttrControl | kAttrUserDefined | kAttrUnknown)) {
      vocab.special_tokens.push_back(id);
    }
  }
  std::stable_sort(vocab.special_tokens.begin(), vocab.special_tokens.end(),
                   [&](int32_t a, int32_t b) {
                     return vocab.tokens[static_cast<size_t>(a)].size() >
                            vocab.tokens[static_cast<size_t>(b)].size();
                   });

  // Per-model attributes llama.cpp sets by name (they are not in GGUF files).
  std::string name(file.get_string("general.name").value_or(""));
  std::transform(name.begin(), name.end(), name.begin(), [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  });
  auto set_attr = [&](std::string_view text, uint32_t attr, bool value) {
    const int32_t id = vocab.find(text);
    if (id < 0) return;
    auto& bits = vocab.attrs[static_cast<size_t>(id)];
    bits = value ? (bits | attr) : (bits & ~attr);
  };
  const std::string_view pre = vocab.pre;
  if (pre.find("jina-v2-de") != std::string_view::npos ||
      pre.find("jina-v2-es") != std::string_view::npos ||
      pre.find("jina-v2-code") != std::string_view::npos) {
    set_attr("<mask>", kAttrLstrip, true);
  } else if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
    for (const int32_t id : vocab.special_tokens)
      vocab.attrs[static_cast<size_t>(id)] |= kAttrRstrip;
    set_attr("</s>", kAttrRstrip, true);
    for (const std::string_view text : {"<unk>", "<s>", "<|endoftext|>"}) {
      set_attr(text, kAttrRstrip, false);
    }
  }
}

}  // namespace

int32_t GgufVocab::merge_rank(std::string_view left, std::string_view right) const {
  const int32_t left_id = find(left);
  if (left_id < 0) return -1;
  const int32_t right_id = find(right);
  if (right_id < 0) return -1;
  const auto it =
      merge_ranks.find((static_cast<uint64_t>(left_id) << 32) | static_cast<uint32_t>(right_id));
  return it == merge_ranks.end() ? -1 : it->second;
}

int32_t GgufVocab::byte_token(uint8_t byte) const {
  static constexpr char kHex[] = "0123456789ABCDEF";
  const char name[6] = {'<', '0', 'x', kHex[byte >> 4], kHex[byte & 15], '>'};
  const int32_t id = find(std::string_view(name, 6));
  if (id >= 0) return id;
  const char raw = static_cast<char>(byte);
  return find(std::string_view(&raw, 1));
}

GgufVocab read_gguf_vocab(const GgufFile& file) {
  GgufVocab vocab;
  vocab.where = file.name();
  read_type(file, vocab);
  read_tokens(file, vocab);
  if (vocab.type == LlamaVocabType::kBpe) read_merges(file, vocab);
  FimIds fim;
  read_special_ids(file, vocab, fim);
  force_control_tokens(vocab, fim);
  build_special_tokens(file, vocab);
  vocab.chat_template = std::string(file.get_string("tokenizer.chat_template").value_or(""));
  return vocab;
}

}  // namespace polyinfer::inline v0::detail
