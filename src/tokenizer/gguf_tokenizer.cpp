// SPDX-License-Identifier: Apache-2.0
// make_gguf_tokenizer: llama.cpp's tokenize / detokenize over a GGUF vocabulary.
#include <cstdlib>
#include <memory>

#include "common/fail.hpp"
#include "format/gguf.hpp"
#include "tokenizer/byte_bpe_tokenizer.hpp"
#include "tokenizer/gguf_vocab.hpp"
#include "tokenizer/piece_cache.hpp"
#include "tokenizer/special_tokens.hpp"
#include "tokenizer/spm_tokenizer.hpp"
#include "tokenizer/tokenizer_impl.hpp"
#include "tokenizer/unicode.hpp"
#include "tokenizer/wordpiece_tokenizer.hpp"

namespace polyinfer::inline v0::detail {

namespace {

constexpr uint32_t kAttrSpecial = kAttrUnknown | kAttrControl;

std::string_view kind_name(LlamaVocabType type) {
  switch (type) {
    case LlamaVocabType::kSpm:
      return "spm-bpe";
    case LlamaVocabType::kBpe:
      return "byte-bpe";
    case LlamaVocabType::kWpm:
      return "wordpiece";
  }
  return "";
}

// llama_decode_text: GPT-2 code points back to bytes.
std::string byte_level_decode(std::string_view text) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    const auto cp = utf8_next(text, pos);
    const auto byte = cp ? unicode_to_byte(*cp) : std::nullopt;
    if (byte) {
      out += static_cast<char>(*byte);
      continue;
    }
    out += "[UNK_BYTE_0x";
    for (size_t i = start; i < pos; ++i) {
      out += fmt::format("{:02x}", static_cast<unsigned char>(text[i]));
    }
    out += text;
    out += ']';
  }
  return out;
}

// llama_vocab::impl::token_to_piece(token, special = true), cached per id.
std::string token_piece(const GgufVocab& vocab, int32_t id) {
  const std::string& text = vocab.tokens[static_cast<size_t>(id)];
  const uint32_t attr = vocab.attrs[static_cast<size_t>(id)];
  if ((attr & (kAttrSpecial | kAttrUserDefined)) != 0) return text;
  if (vocab.type == LlamaVocabType::kBpe) {
    return (attr & kAttrNormal) != 0 ? byte_level_decode(text) : std::string();
  }
  if ((attr & kAttrNormal) != 0) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
      if (text.compare(i, 3, "\xe2\x96\x81") == 0) {
        out += ' ';
        i += 2;
      } else {
        out += text[i];
      }
    }
    return out;
  }
  if ((attr & kAttrByte) != 0 && text.size() >= 5) {
    const std::string hex = text.substr(3, 2);
    return std::string(1, static_cast<char>(std::strtol(hex.c_str(), nullptr, 16)));
  }
  return {};
}

// The three clean-up passes of llama_vocab::impl::detokenize (clean_up_tokenization_spaces),
// ported as written: they edit the buffer in place and read it while writing.
void clean_spaces(std::string& buffer) {
  char* text = buffer.data();
  int64_t total = static_cast<int64_t>(buffer.size());

  // First pass: " ?", " !", " .", " ,".
  const int64_t total1 = total;
  total = total ? 1 : 0;
  for (int64_t i = 1; i < total1; ++i) {
    const char x = text[i];
    if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) --total;
    text[total++] = x;
  }

  // Second pass: a single apostrophe between spaces.
  const int64_t total2 = total;
  total = total ? 1 : 0;
  for (int64_t i = 1; i < total2; ++i) {
    const char x = text[i];
    if (x == '\'' && i + 1 < total2 && text[i - 1] == ' ' && text[i + 1] == ' ') {
      --total;
      text[++i] = '\0';
    }
    text[total++] = x;
  }

  // Third pass: contractions " 's", " 'm", " 're", " 've".
  const int64_t total3 = total;
  total = total ? 1 : 0;
  for (int64_t i = 1; i < total3; ++i) {
    const char x = text[i];
    if (text[i - 1] == ' ' && x == '\'' && i + 1 < total3) {
      const char x1 = text[i + 1];
      if (x1 == 's' || x1 == 'm') {
        --total;
      } else if (i + 2 < total3) {
        const char x2 = text[i + 2];
        if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) --total;
      }
    }
    text[total++] = x;
  }
  buffer.resize(static_cast<size_t>(total));
}

class LlamaCppTokenizer final : public TokenizerImpl {
 public:
  explicit LlamaCppTokenizer(GgufVocab vocab) : vocab_(std::move(vocab)), specials_(vocab_) {
    if (vocab_.type == LlamaVocabType::kBpe) bpe_ = std::make_unique<ByteBpeTokenizer>(vocab_);
    pieces_.reserve(vocab_.tokens.size());
    for (int32_t id = 0; id < vocab_.size(); ++id) pieces_.push_back(token_piece(vocab_, id));
    info_.kind = std::string(kind_name(vocab_.type));
    info_.pre_tokenizer = vocab_.pre;
    info_.flavor = TokenizerFlavor::kLlamaCpp;
    info_.bos_id = vocab_.bos_id;
    info_.eos_id = vocab_.eos_id;
    info_.pad_id = vocab_.pad_id;
    info_.unk_id = vocab_.unk_id;
    info_.chat_template = vocab_.chat_template;
  }
  LlamaCppTokenizer(const LlamaCppTokenizer&) = delete;
  LlamaCppTokenizer& operator=(const LlamaCppTokenizer&) = delete;

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options) const override;
  std::string decode(std::span<const int32_t> ids, const DecodeOptions& options) const override;
  std::string token(int32_t id) const override { return vocab_.tokens[static_cast<size_t>(id)]; }
  int32_t vocab_size() const noexcept override { return vocab_.size(); }
  bool is_special(int32_t id) const override { return vocab_.has_attr(id, kAttrSpecial); }

 private:
  void push_if_valid(int32_t id, std::vector<int32_t>& out) const {
    if (id >= 0) out.push_back(id);
  }

  GgufVocab vocab_;
  SpecialTokenSplitter specials_;
  std::unique_ptr<ByteBpeTokenizer> bpe_;
  std::vector<std::string> pieces_;
};

std::vector<int32_t> LlamaCppTokenizer::encode(std::string_view text,
                                               const EncodeOptions& options) const {
  std::vector<TextFragment> fragments;
  specials_.split(text, options.parse_special, fragments);
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  PieceCache cache;
  const bool add_special = options.add_special;
  switch (vocab_.type) {
    case LlamaVocabType::kSpm: {
      bool previous_special = true;  // the first run gets the space prefix too
      if (add_special && vocab_.add_bos) push_if_valid(vocab_.bos_id, out);
      std::string escaped;
      for (const TextFragment& fragment : fragments) {
        if (fragment.token >= 0) {
          out.push_back(fragment.token);
          previous_special = true;
          continue;
        }
        escaped.clear();
        if (vocab_.add_space_prefix && previous_special) escaped = "\xe2\x96\x81";
        escape_spaces(fragment.text, escaped);
        spm_tokenize(vocab_, escaped, cache, out);
        previous_special = false;
      }
      if (add_special && vocab_.add_eos) push_if_valid(vocab_.eos_id, out);
      break;
    }
    case LlamaVocabType::kBpe:
      if (add_special && vocab_.add_bos) push_if_valid(vocab_.bos_id, out);
      for (const TextFragment& fragment : fragments) {
        if (fragment.token >= 0) {
          out.push_back(fragment.token);
        } else {
          bpe_->tokenize(fragment.text, cache, out);
        }
      }
      if (add_special && vocab_.add_eos) push_if_valid(vocab_.eos_id, out);
      break;
    case LlamaVocabType::kWpm:
      if (add_special) push_if_valid(vocab_.bos_id, out);  // [CLS]
      for (const TextFragment& fragment : fragments) {
        if (fragment.token >= 0) {
          out.push_back(fragment.token);
        } else {
          wpm_tokenize(vocab_, fragment.text, out);
        }
      }
      if (add_special) push_if_valid(vocab_.sep_id, out);  // [SEP]
      break;
  }
  return out;
}

// llama_vocab::impl::detokenize with remove_special = skip_special and
// unparse_special = !skip_special.
std::string LlamaCppTokenizer::decode(std::span<const int32_t> ids,
                                      const DecodeOptions& options) const {
  const bool remove_special = options.skip_special;
  bool remove_space = vocab_.add_space_prefix;
  if (remove_special && vocab_.add_bos && !ids.empty() && ids.front() == vocab_.bos_id) {
    remove_space = false;
    ids = ids.subspan(1);
  }
  if (remove_special && vocab_.add_eos && !ids.empty() && ids.back() == vocab_.eos_id) {
    ids = ids.first(ids.size() - 1);
  }
  std::string text;
  for (const int32_t id : ids) {
    if (!(remove_special && vocab_.has_attr(id, kAttrSpecial))) {
      std::string_view piece = pieces_[static_cast<size_t>(id)];
      if (remove_space && !piece.empty() && piece.front() == ' ') piece.remove_prefix(1);
      text += piece;
    }
    remove_space = false;
  }
  if (vocab_.clean_spaces) clean_spaces(text);
  return text;
}

}  // namespace

std::shared_ptr<const TokenizerImpl> make_gguf_tokenizer(const GgufFile& file) {
  return std::make_shared<const LlamaCppTokenizer>(read_gguf_vocab(file));
}

}  // namespace polyinfer::inline v0::detail
