// SPDX-License-Identifier: Apache-2.0
// tokenizer.json normalizers: NFC/NFD/NFKC/NFKD, Lowercase, StripAccents, BertNormalizer,
// Prepend, Replace, Strip, ByteLevel, Precompiled and Sequence.
#include <utf8proc.h>

#include <cstdlib>
#include <memory>

#include "common/fail.hpp"
#include "tokenizer/hf_pipeline.hpp"
#include "tokenizer/regex.hpp"
#include "tokenizer/sentencepiece_model.hpp"
#include "tokenizer/unicode.hpp"

namespace polyinfer::inline v0::detail {

namespace {

bool is_ascii(std::string_view text) noexcept {
  for (const char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

std::string normalize_nfkd(std::string_view text) {
  utf8proc_uint8_t* result = nullptr;
  const utf8proc_ssize_t length = utf8proc_map(
      reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
      static_cast<utf8proc_ssize_t>(text.size()), &result,
      static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT));
  if (length < 0) return std::string(text);
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owner(result, &std::free);
  return std::string(reinterpret_cast<const char*>(result), static_cast<size_t>(length));
}

/// Rust's char::to_lowercase: utf8proc's simple mapping plus the one unconditional multi-char
/// mapping of SpecialCasing.txt (U+0130 → "i̇").
void lowercase_in_place(std::string& text) {
  bool ascii = true;
  for (char& c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      ascii = false;
      break;
    }
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  if (ascii) return;
  std::string out;
  out.reserve(text.size() + 8);
  size_t pos = 0;
  while (pos < text.size()) {
    const char32_t cp = next_code_point(text, pos);
    if (cp == 0x130) {
      out += "i\xCC\x87";
    } else {
      utf8_append(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
    }
  }
  text = std::move(out);
}

/// Removes non-spacing marks (Mn) without decomposing first (tokenizers' StripAccents).
void remove_nonspacing_marks(std::string& text) {
  if (is_ascii(text)) return;
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    const char32_t cp = next_code_point(text, pos);
    if (utf8proc_category(static_cast<utf8proc_int32_t>(cp)) == UTF8PROC_CATEGORY_MN) continue;
    out.append(text, start, pos - start);
  }
  text = std::move(out);
}

enum class UnicodeForm { kNfc, kNfd, kNfkc, kNfkd };

class UnicodeNormalizer final : public HfNormalizer {
 public:
  explicit UnicodeNormalizer(UnicodeForm form) : form_(form) {}
  void normalize(std::string& text, bool&) const override {
    if (is_ascii(text)) return;
    switch (form_) {
      case UnicodeForm::kNfc:
        text = normalize_nfc(text);
        break;
      case UnicodeForm::kNfd:
        text = normalize_nfd(text);
        break;
      case UnicodeForm::kNfkc:
        text = normalize_nfkc(text);
        break;
      case UnicodeForm::kNfkd:
        text = normalize_nfkd(text);
        break;
    }
  }

 private:
  UnicodeForm form_;
};

class LowercaseNormalizer final : public HfNormalizer {
 public:
  void normalize(std::string& text, bool&) const override { lowercase_in_place(text); }
};

class StripAccentsNormalizer final : public HfNormalizer {
 public:
  void normalize(std::string& text, bool& at_origin) const override {
    const size_t before = text.size();
    size_t pos = 0;
    const bool leading_mark =
        !text.empty() &&
        utf8proc_category(static_cast<utf8proc_int32_t>(next_code_point(text, pos))) ==
            UTF8PROC_CATEGORY_MN;
    remove_nonspacing_marks(text);
    if (leading_mark && text.size() != before) at_origin = false;
  }
};

/// BertNormalizer: clean_text, handle_chinese_chars, strip_accents, lowercase (in that order).
class BertNormalizer final : public HfNormalizer {
 public:
  BertNormalizer(bool clean_text, bool chinese_chars, bool strip_accents, bool lowercase)
      : clean_text_(clean_text),
        chinese_chars_(chinese_chars),
        strip_accents_(strip_accents),
        lowercase_(lowercase) {}

  void normalize(std::string& text, bool& at_origin) const override {
    if (clean_text_ || chinese_chars_) rewrite_chars(text, at_origin);
    if (strip_accents_ && !is_ascii(text)) {
      text = normalize_nfd(text);
      remove_nonspacing_marks(text);
    }
    if (lowercase_) lowercase_in_place(text);
  }

 private:
  static bool is_chinese_char(char32_t cp) noexcept {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
  }

  void rewrite_chars(std::string& text, bool& at_origin) const {
    std::string out;
    out.reserve(text.size() + 16);
    size_t pos = 0;
    bool kept_any = false;
    while (pos < text.size()) {
      const auto byte = static_cast<unsigned char>(text[pos]);
      if (byte >= 0x20 && byte < 0x7F) {  // printable ASCII: kept as is
        out += static_cast<char>(byte);
        ++pos;
        kept_any = true;
        continue;
      }
      const size_t start = pos;
      const char32_t cp = next_code_point(text, pos);
      if (clean_text_) {
        const bool tab_or_newline = cp == U'\t' || cp == U'\n' || cp == U'\r';
        if (cp == 0 || cp == 0xFFFD || (!tab_or_newline && is_other_category(cp))) {
          if (!kept_any) at_origin = false;
          continue;
        }
        if (tab_or_newline || rust_is_whitespace(cp)) {
          out += ' ';
          kept_any = true;
          continue;
        }
      }
      kept_any = true;
      if (chinese_chars_ && is_chinese_char(cp)) {
        out += ' ';
        out.append(text, start, pos - start);
        out += ' ';
      } else {
        out.append(text, start, pos - start);
      }
    }
    text = std::move(out);
  }

  bool clean_text_;
  bool chinese_chars_;
  bool strip_accents_;
  bool lowercase_;
};

class PrependNormalizer final : public HfNormalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& text, bool&) const override {
    if (!text.empty()) text.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer final : public HfNormalizer {
 public:
  ReplaceNormalizer(std::string literal, std::unique_ptr<Regex> regex, std::string content)
      : literal_(std::move(literal)), regex_(std::move(regex)), content_(std::move(content)) {}

  void normalize(std::string& text, bool& at_origin) const override {
    std::string out;
    size_t last = 0;
    bool changed = false;
    auto replace = [&](size_t begin, size_t end) {
      if (begin == 0 && content_.empty()) at_origin = false;
      out.append(text, last, begin - last);
      out += content_;
      last = end;
      changed = true;
    };
    if (regex_) {
      for (const auto& [begin, end] : regex_->find_all(text)) replace(begin, end);
    } else if (!literal_.empty()) {
      size_t at = text.find(literal_);
      while (at != std::string::npos) {
        replace(at, at + literal_.size());
        at = text.find(literal_, at + literal_.size());
      }
    }
    if (!changed) return;
    out.append(text, last, std::string::npos);
    text = std::move(out);
  }

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
  std::string content_;
};

class StripNormalizer final : public HfNormalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& text, bool& at_origin) const override {
    if (right_) {
      while (!text.empty()) {
        size_t start = text.size() - 1;
        while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
        size_t pos = start;
        if (!rust_is_whitespace(next_code_point(text, pos))) break;
        text.resize(start);
      }
    }
    if (left_) {
      size_t pos = 0;
      size_t keep = 0;
      while (pos < text.size()) {
        if (!rust_is_whitespace(next_code_point(text, pos))) break;
        keep = pos;
      }
      if (keep > 0) {
        text.erase(0, keep);
        at_origin = false;
      }
    }
  }

 private:
  bool left_;
  bool right_;
};

/// tokenizers' Precompiled (sentencepiece's precompiled_charsmap): each extended grapheme
/// shorter than 6 bytes is replaced whole by its first (shortest-prefix) rule; otherwise each
/// character by its own rule.
class PrecompiledNormalizer final : public HfNormalizer {
 public:
  explicit PrecompiledNormalizer(SentencePieceCharsMap charsmap) : charsmap_(std::move(charsmap)) {}

  void normalize(std::string& text, bool&) const override {
    std::string out;
    out.reserve(text.size() + 8);
    size_t pos = 0;
    utf8proc_int32_t state = 0;
    char32_t previous = 0;
    size_t grapheme = 0;
    while (pos < text.size()) {
      const size_t start = pos;
      const char32_t cp = next_code_point(text, pos);
      if (start > 0 &&
          utf8proc_grapheme_break_stateful(static_cast<utf8proc_int32_t>(previous),
                                           static_cast<utf8proc_int32_t>(cp), &state)) {
        transform(std::string_view(text).substr(grapheme, start - grapheme), out);
        grapheme = start;
      }
      previous = cp;
    }
    if (grapheme < text.size()) transform(std::string_view(text).substr(grapheme), out);
    text = std::move(out);
  }

 private:
  void transform(std::string_view grapheme, std::string& out) const {
    if (grapheme.size() < 6) {
      if (const auto rule = charsmap_.shortest(grapheme)) {
        out.append(*rule);
        return;
      }
    }
    size_t pos = 0;
    while (pos < grapheme.size()) {
      const size_t start = pos;
      (void)next_code_point(grapheme, pos);
      const std::string_view part = grapheme.substr(start, pos - start);
      if (const auto rule = charsmap_.shortest(part)) {
        out.append(*rule);
      } else {
        out.append(part);
      }
    }
  }

  SentencePieceCharsMap charsmap_;
};

/// Standard base64 (with or without padding); nullopt on a character outside the alphabet.
std::optional<std::string> decode_base64(std::string_view text) {
  std::string out;
  out.reserve(text.size() / 4 * 3 + 3);
  uint32_t buffer = 0;
  int bits = 0;
  for (const char c : text) {
    int value = 0;
    if (c >= 'A' && c <= 'Z') {
      value = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      value = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      value = c - '0' + 52;
    } else if (c == '+') {
      value = 62;
    } else if (c == '/') {
      value = 63;
    } else if (c == '=') {
      break;
    } else {
      return std::nullopt;
    }
    buffer = (buffer << 6) | static_cast<uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xFF);
    }
  }
  return out;
}

class ByteLevelNormalizer final : public HfNormalizer {
 public:
  void normalize(std::string& text, bool&) const override { text = bytes_to_unicode_string(text); }
};

}  // namespace

/// Reads a {"String": s} / {"Regex": r} pattern: the literal, or the compiled regex.
void read_hf_pattern(const Json& node, const std::string& path, const HfJson& json,
                     std::string& literal, std::unique_ptr<Regex>& regex) {
  json.as_object(node, path);
  if (const Json* s = HfJson::member(node, "String")) {
    literal = json.as_string(*s, HfJson::child(path, "String"));
    return;
  }
  if (const Json* r = HfJson::member(node, "Regex")) {
    const std::string& pattern = json.as_string(*r, HfJson::child(path, "Regex"));
    try {
      regex = std::make_unique<Regex>(pattern);
    } catch (const Error& e) {
      json.invalid(HfJson::child(path, "Regex"), e.message());
    }
    return;
  }
  json.invalid(path, "pattern must have a \"String\" or \"Regex\" member");
}

void add_hf_normalizer(const Json& node, const std::string& path, const HfJson& json, int depth,
                       HfNormalizers& out) {
  if (node.is_null()) return;
  if (depth > HfJson::kMaxDepth) json.invalid(path, "Sequence nesting too deep");
  const std::string type = json.type(node, path);
  if (type == "Sequence") {
    const std::string list_path = HfJson::child(path, "normalizers");
    const Json& list = json.as_array(json.required(node, "normalizers", path), list_path);
    for (size_t i = 0; i < list.size(); ++i) {
      add_hf_normalizer(list[i], HfJson::index(list_path, i), json, depth + 1, out);
    }
  } else if (type == "NFC") {
    out.push_back(std::make_unique<UnicodeNormalizer>(UnicodeForm::kNfc));
  } else if (type == "NFD") {
    out.push_back(std::make_unique<UnicodeNormalizer>(UnicodeForm::kNfd));
  } else if (type == "NFKC") {
    out.push_back(std::make_unique<UnicodeNormalizer>(UnicodeForm::kNfkc));
  } else if (type == "NFKD") {
    out.push_back(std::make_unique<UnicodeNormalizer>(UnicodeForm::kNfkd));
  } else if (type == "Lowercase") {
    out.push_back(std::make_unique<LowercaseNormalizer>());
  } else if (type == "StripAccents") {
    out.push_back(std::make_unique<StripAccentsNormalizer>());
  } else if (type == "BertNormalizer") {
    const bool lowercase = json.boolean(node, "lowercase", path, true);
    out.push_back(std::make_unique<BertNormalizer>(
        json.boolean(node, "clean_text", path, true),
        json.boolean(node, "handle_chinese_chars", path, true),
        json.boolean(node, "strip_accents", path, lowercase), lowercase));
  } else if (type == "Prepend") {
    out.push_back(std::make_unique<PrependNormalizer>(json.string(node, "prepend", path)));
  } else if (type == "Replace") {
    std::string literal;
    std::unique_ptr<Regex> regex;
    read_hf_pattern(json.required(node, "pattern", path), HfJson::child(path, "pattern"), json,
                    literal, regex);
    out.push_back(std::make_unique<ReplaceNormalizer>(std::move(literal), std::move(regex),
                                                      json.string(node, "content", path)));
  } else if (type == "Strip") {
    out.push_back(std::make_unique<StripNormalizer>(json.boolean(node, "strip_left", path, true),
                                                    json.boolean(node, "strip_right", path, true)));
  } else if (type == "ByteLevel") {
    out.push_back(std::make_unique<ByteLevelNormalizer>());
  } else if (type == "Precompiled") {
    const std::string key_path = HfJson::child(path, "precompiled_charsmap");
    const auto encoded = json.optional_string(node, "precompiled_charsmap", path);
    if (!encoded || encoded->empty()) return;  // no rules: identity
    const auto blob = decode_base64(*encoded);
    if (!blob) json.invalid(key_path, "not base64");
    try {
      out.push_back(std::make_unique<PrecompiledNormalizer>(
          SentencePieceCharsMap(*blob, json.where(key_path))));
    } catch (const Error& e) {
      json.invalid(key_path, e.message());
    }
  } else {
    json.unsupported(HfJson::child(path, "type"), "normalizer type \"" + type + "\"");
  }
}

}  // namespace polyinfer::inline v0::detail
