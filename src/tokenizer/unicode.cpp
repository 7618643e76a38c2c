// SPDX-License-Identifier: Apache-2.0
// UTF-8 coding, GPT-2 byte mapping and utf8proc-backed normalisation and categories.
#include "tokenizer/unicode.hpp"

#include <utf8proc.h>

#include <cstdlib>
#include <memory>

namespace polyinfer::inline v0::detail {

int utf8_sequence_length(unsigned char lead) noexcept {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

std::optional<char32_t> utf8_next(std::string_view text, size_t& pos) noexcept {
  const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(text.data()) + pos;
  utf8proc_int32_t cp = -1;
  const utf8proc_ssize_t len =
      utf8proc_iterate(bytes, static_cast<utf8proc_ssize_t>(text.size() - pos), &cp);
  if (len <= 0 || cp < 0) {
    ++pos;
    return std::nullopt;
  }
  pos += static_cast<size_t>(len);
  return static_cast<char32_t>(cp);
}

void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string utf8_encode(char32_t cp) {
  std::string out;
  utf8_append(out, cp);
  return out;
}

bool utf8_valid(std::string_view text) noexcept {
  size_t pos = 0;
  while (pos < text.size()) {
    if (!utf8_next(text, pos)) return false;
  }
  return true;
}

std::vector<std::string_view> utf8_chars(std::string_view text) {
  std::vector<std::string_view> out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    (void)utf8_next(text, pos);
    out.push_back(text.substr(start, pos - start));
  }
  return out;
}

std::u32string utf8_decode(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) out += utf8_next(text, pos).value_or(U'\uFFFD');
  return out;
}

namespace {

struct ByteTables {
  std::array<std::string, 256> to_unicode;
  std::array<int, 324> to_byte{};  // code points used are < 324
};

const ByteTables& byte_tables() {
  static const ByteTables tables = [] {
    ByteTables t;
    t.to_byte.fill(-1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const int cp = printable ? b : 256 + extra++;
      t.to_unicode[static_cast<size_t>(b)] = utf8_encode(static_cast<char32_t>(cp));
      t.to_byte[static_cast<size_t>(cp)] = b;
    }
    return t;
  }();
  return tables;
}

std::string utf8proc_transform(std::string_view text, int options) {
  utf8proc_uint8_t* result = nullptr;
  const utf8proc_ssize_t len = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                            static_cast<utf8proc_ssize_t>(text.size()), &result,
                                            static_cast<utf8proc_option_t>(options));
  if (len < 0) return std::string(text);  // invalid UTF-8: leave it to the caller's rules
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owner(result, &std::free);
  return std::string(reinterpret_cast<const char*>(result), static_cast<size_t>(len));
}

utf8proc_category_t category(char32_t cp) noexcept {
  return utf8proc_category(static_cast<utf8proc_int32_t>(cp));
}

}  // namespace

const std::array<std::string, 256>& byte_to_unicode() {
  return byte_tables().to_unicode;
}

std::optional<uint8_t> unicode_to_byte(char32_t cp) noexcept {
  const auto& t = byte_tables().to_byte;
  if (cp >= t.size() || t[cp] < 0) return std::nullopt;
  return static_cast<uint8_t>(t[cp]);
}

std::string bytes_to_unicode_string(std::string_view text) {
  const auto& table = byte_to_unicode();
  std::string out;
  out.reserve(text.size() * 2);
  for (const char c : text) out += table[static_cast<unsigned char>(c)];
  return out;
}

std::string unicode_string_to_bytes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    const auto cp = utf8_next(text, pos);
    const auto byte = cp ? unicode_to_byte(*cp) : std::nullopt;
    if (byte) {
      out += static_cast<char>(*byte);
    } else {
      out.append(text.substr(start, pos - start));
    }
  }
  return out;
}

std::string normalize_nfc(std::string_view text) {
  return utf8proc_transform(text, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
}
std::string normalize_nfkc(std::string_view text) {
  return utf8proc_transform(text, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
}
std::string normalize_nfd(std::string_view text) {
  return utf8proc_transform(text, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
}

std::string strip_accents(std::string_view text) {
  const std::string decomposed = normalize_nfd(text);
  std::string out;
  out.reserve(decomposed.size());
  size_t pos = 0;
  while (pos < decomposed.size()) {
    const size_t start = pos;
    const auto cp = utf8_next(decomposed, pos);
    if (cp && category(*cp) == UTF8PROC_CATEGORY_MN) continue;
    out.append(decomposed, start, pos - start);
  }
  return out;
}

std::string to_lower(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    const auto cp = utf8_next(text, pos);
    if (!cp) {
      out.append(text.substr(start, pos - start));
      continue;
    }
    utf8_append(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(*cp))));
  }
  return out;
}

bool is_letter(char32_t cp) noexcept {
  const auto c = category(cp);
  return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
}
bool is_number(char32_t cp) noexcept {
  const auto c = category(cp);
  return c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO;
}
bool is_whitespace(char32_t cp) noexcept {
  if (cp == U' ' || cp == U'\t' || cp == U'\n' || cp == U'\r' || cp == 0x0B || cp == 0x0C) {
    return true;
  }
  const auto c = category(cp);
  return c == UTF8PROC_CATEGORY_ZS || c == UTF8PROC_CATEGORY_ZL || c == UTF8PROC_CATEGORY_ZP ||
         cp == 0x85;
}
bool is_punctuation(char32_t cp) noexcept {
  const auto c = category(cp);
  return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}
bool is_control(char32_t cp) noexcept {
  const auto c = category(cp);
  return c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF;
}
bool is_mark(char32_t cp) noexcept {
  const auto c = category(cp);
  return c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_MC || c == UTF8PROC_CATEGORY_ME;
}
bool is_cjk(char32_t cp) noexcept {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

}  // namespace polyinfer::inline v0::detail
