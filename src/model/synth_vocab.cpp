// SPDX-License-Identifier: Apache-2.0
// Synthetic tokenizer vocabularies of a given size, in llama.cpp's tokenizer.ggml.* form.
#include "model/synth_vocab.hpp"

#include <fmt/format.h>

#include "common/fail.hpp"
#include "model/convert_metadata.hpp"

namespace polyinfer::inline v0::detail {

namespace {

// llama.cpp / gguf token types.
constexpr int32_t kNormal = 1;
constexpr int32_t kUnknown = 2;
constexpr int32_t kControl = 3;
constexpr int32_t kUnused = 5;
constexpr int32_t kByte = 6;

constexpr std::string_view kSpace = "\xE2\x96\x81";  // ▁

std::string utf8(uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

/// GPT-2's bytes_to_unicode symbols in vocabulary order: printable bytes as themselves, the
/// others shifted to U+0100 and up.
std::vector<std::string> byte_level_symbols() {
  std::vector<uint32_t> order;
  std::vector<bool> printable(256, false);
  for (uint32_t b = '!'; b <= '~'; ++b) printable[b] = true;
  for (uint32_t b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
  for (uint32_t b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
  std::vector<std::string> symbols;
  for (uint32_t b = 0; b < 256; ++b) {
    if (printable[b]) symbols.push_back(utf8(b));
  }
  uint32_t shifted = 0;
  for (uint32_t b = 0; b < 256; ++b) {
    if (!printable[b]) symbols.push_back(utf8(256 + shifted++));
  }
  return symbols;
}

/// Lowercase strings of length `length` in lexicographic order, calling emit until it says stop.
template <typename Emit>
bool each_word(int length, Emit&& emit) {
  std::string word(static_cast<size_t>(length), 'a');
  while (true) {
    if (!emit(word)) return false;
    int i = length - 1;
    while (i >= 0 && word[static_cast<size_t>(i)] == 'z') word[static_cast<size_t>(i--)] = 'a';
    if (i < 0) return true;
    ++word[static_cast<size_t>(i)];
  }
}

SynthVocab spm_vocab(const SynthShape& shape) {
  const int64_t size = shape.vocab_size;
  if (size < 260) {
    fail(ErrorCode::kInvalidArgument, "synth: vocab",
         "a SentencePiece-style vocabulary needs at least 260 tokens, not {}", size);
  }
  SynthVocab vocab;
  vocab.model = "llama";
  vocab.pre = "default";
  vocab.bos_id = 1;
  vocab.eos_id = 2;
  vocab.unk_id = 0;
  vocab.add_bos = true;
  vocab.write_add_flags = true;
  auto add = [&](std::string token, float score, int32_t type) {
    vocab.tokens.push_back(std::move(token));
    vocab.scores.push_back(score);
    vocab.types.push_back(type);
    return static_cast<int64_t>(vocab.tokens.size()) < size;
  };
  add("<unk>", 0, kUnknown);
  add("<s>", 0, kControl);
  add("</s>", 0, kControl);
  for (int b = 0; b < 256; ++b) add(fmt::format("<0x{:02X}>", b), 0, kByte);
  float score = 0;
  bool more = add(std::string(kSpace), score--, kNormal);
  for (char c = '!'; more && c <= '~'; ++c) {
    more =
        add(std::string(1, c), score--, kNormal) && add(std::string(kSpace) + c, score--, kNormal);
  }
  for (int length = 2; more; ++length) {
    each_word(length, [&](const std::string& word) {
      more = add(std::string(kSpace) + word, score--, kNormal) && add(word, score--, kNormal);
      return more;
    });
  }
  vocab.tokens.resize(static_cast<size_t>(size));
  vocab.scores.resize(static_cast<size_t>(size));
  vocab.types.resize(static_cast<size_t>(size));
  return vocab;
}

/// Control tokens after the regular ones, named as the real family names them.
std::vector<std::string> control_names(const SynthShape& shape, int64_t count) {
  std::vector<std::string> names;
  if (shape.pre_tokenizer == "qwen2") {
    for (const char* name : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"})
      names.emplace_back(name);
    for (int64_t i = 0; static_cast<int64_t>(names.size()) < std::min<int64_t>(count, 22); ++i) {
      names.push_back(fmt::format("<|reserved_special_token_{}|>", i));
    }
    return names;
  }
  int64_t reserved = 0;
  for (int64_t i = 0; i < count; ++i) {
    switch (i) {
      case 0:
        names.emplace_back("<|begin_of_text|>");
        break;
      case 1:
        names.emplace_back("<|end_of_text|>");
        break;
      case 6:
        names.emplace_back("<|start_header_id|>");
        break;
      case 7:
        names.emplace_back("<|end_header_id|>");
        break;
      case 9:
        names.emplace_back("<|eot_id|>");
        break;
      default:
        names.push_back(fmt::format("<|reserved_special_token_{}|>", reserved++));
    }
  }
  return names;
}

constexpr std::string_view kChatMl =
    "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt "
    "%}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

constexpr std::string_view kLlama3 =
    "{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] "
    "+ '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{%- endfor %}{%- "
    "if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- "
    "endif %}";

SynthVocab gpt2_vocab(const SynthShape& shape) {
  const int64_t size = shape.vocab_size;
  const int64_t regular = shape.bos_id;  // the first control token follows the regular ones
  if (shape.pre_tokenizer != "llama-bpe" && shape.pre_tokenizer != "qwen2") {
    fail(ErrorCode::kInvalidArgument, "synth: pre_tokenizer",
         "'{}' is not a synthetic byte-level BPE family (llama-bpe, qwen2)", shape.pre_tokenizer);
  }
  if (regular < 257 || regular + 3 > size || shape.eos_id < regular || shape.eos_id >= size) {
    fail(ErrorCode::kInvalidArgument, "synth: vocab",
         "a byte-level BPE vocabulary of {} needs 256 bytes, some merges and 3 control tokens "
         "(bos {} , eos {})",
         size, shape.bos_id, shape.eos_id);
  }
  SynthVocab vocab;
  vocab.model = "gpt2";
  vocab.pre = shape.pre_tokenizer;
  vocab.bos_id = shape.bos_id;
  vocab.eos_id = shape.eos_id;
  vocab.chat_template = std::string(shape.pre_tokenizer == "qwen2" ? kChatMl : kLlama3);
  vocab.tokens = byte_level_symbols();
  vocab.types.assign(vocab.tokens.size(), kNormal);
  const std::string space = utf8(0x120);  // Ġ, GPT-2's symbol for ' '
  std::vector<std::string> previous{space};
  for (char c = 'a'; c <= 'z'; ++c) previous.emplace_back(1, c);
  while (static_cast<int64_t>(vocab.tokens.size()) < regular) {
    std::vector<std::string> level;
    for (const std::string& left : previous) {
      for (char c = 'a'; c <= 'z' && static_cast<int64_t>(vocab.tokens.size()) < regular; ++c) {
        vocab.merges.push_back(left + " " + c);
        vocab.tokens.push_back(left + c);
        vocab.types.push_back(kNormal);
        level.push_back(left + c);
      }
    }
    previous = std::move(level);
  }
  for (std::string& name : control_names(shape, size - regular)) {
    vocab.tokens.push_back(std::move(name));
    vocab.types.push_back(kControl);
  }
  while (static_cast<int64_t>(vocab.tokens.size()) < size) {
    vocab.tokens.push_back(fmt::format("[PAD{}]", vocab.tokens.size()));
    vocab.types.push_back(kUnused);
  }
  return vocab;
}

}  // namespace

SynthVocab make_synth_vocab(const SynthShape& shape) {
  if (shape.tokenizer == "llama") return spm_vocab(shape);
  if (shape.tokenizer == "gpt2") return gpt2_vocab(shape);
  fail(ErrorCode::kInvalidArgument, "synth: tokenizer",
       "'{}' is not a synthetic tokenizer family (llama, gpt2)", shape.tokenizer);
}

void add_vocab_metadata(GgufWriter& writer, const SynthVocab& vocab) {
  writer.set("tokenizer.ggml.model", GgufValue::make_string(vocab.model));
  writer.set("tokenizer.ggml.pre", GgufValue::make_string(vocab.pre));
  writer.set("tokenizer.ggml.tokens", gguf_string_array(vocab.tokens));
  if (!vocab.scores.empty()) {
    std::vector<GgufValue> scores;
    scores.reserve(vocab.scores.size());
    for (const float s : vocab.scores) scores.push_back(GgufValue::make_f32(s));
    writer.set("tokenizer.ggml.scores", GgufValue::make_array(GgufType::kF32, std::move(scores)));
  }
  std::vector<GgufValue> types;
  types.reserve(vocab.types.size());
  for (const int32_t t : vocab.types) types.push_back(GgufValue::make_i32(t));
  writer.set("tokenizer.ggml.token_type", GgufValue::make_array(GgufType::kI32, std::move(types)));
  if (!vocab.merges.empty()) writer.set("tokenizer.ggml.merges", gguf_string_array(vocab.merges));
  if (vocab.bos_id >= 0) {
    writer.set("tokenizer.ggml.bos_token_id", GgufValue::make_u32(vocab.bos_id));
  }
  if (vocab.eos_id >= 0) {
    writer.set("tokenizer.ggml.eos_token_id", GgufValue::make_u32(vocab.eos_id));
  }
  if (vocab.unk_id >= 0) {
    writer.set("tokenizer.ggml.unknown_token_id", GgufValue::make_u32(vocab.unk_id));
  }
  if (vocab.write_add_flags) {
    writer.set("tokenizer.ggml.add_bos_token", GgufValue::make_bool(vocab.add_bos));
    writer.set("tokenizer.ggml.add_eos_token", GgufValue::make_bool(vocab.add_eos));
  }
  if (!vocab.chat_template.empty()) {
    writer.set("tokenizer.chat_template", GgufValue::make_string(vocab.chat_template));
  }
}

}  // namespace polyinfer::inline v0::detail
