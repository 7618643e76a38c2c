// SPDX-License-Identifier: Apache-2.0
// Character classes and UTF-8 repair with the semantics of Rust's std (what tokenizers uses).
#include <utf8proc.h>

#include <array>
#include <cstring>

#include "tokenizer/hf_pipeline.hpp"
#include "tokenizer/unicode.hpp"

namespace polyinfer::inline v0::detail {

namespace {

utf8proc_category_t category_of(char32_t cp) noexcept {
  return utf8proc_category(static_cast<utf8proc_int32_t>(cp));
}

/// Length of the longest valid prefix of a UTF-8 sequence at `bytes[pos]` (0 when the lead
/// byte is invalid), and whether it is complete: the Unicode "maximal subpart" rule.
size_t valid_prefix(std::string_view bytes, size_t pos, bool& complete) noexcept {
  const auto at = [&](size_t i) { return static_cast<unsigned char>(bytes[i]); };
  const unsigned char lead = at(pos);
  size_t need = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 2;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 3;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    complete = false;
    return 0;
  }
  size_t length = 1;
  for (size_t k = 0; k < need; ++k) {
    const size_t i = pos + 1 + k;
    if (i >= bytes.size()) break;
    const unsigned char c = at(i);
    const unsigned char min = k == 0 ? lo : 0x80;
    const unsigned char max = k == 0 ? hi : 0xBF;
    if (c < min || c > max) break;
    ++length;
  }
  complete = length == need + 1;
  return length;
}

}  // namespace

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0;
  while (pos < bytes.size()) {
    const auto c = static_cast<unsigned char>(bytes[pos]);
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++pos;
      continue;
    }
    bool complete = false;
    const size_t length = valid_prefix(bytes, pos, complete);
    if (complete) {
      out.append(bytes.substr(pos, length));
      pos += length;
    } else {
      out += "\xEF\xBF\xBD";
      pos += length == 0 ? 1 : length;
    }
  }
  return out;
}

bool rust_is_whitespace(char32_t cp) noexcept {
  if (cp < 0x80) return cp == U' ' || (cp >= 0x09 && cp <= 0x0D);
  return is_whitespace(cp);
}

bool utf8_is_valid(std::string_view bytes) noexcept {
  size_t pos = 0;
  const size_t size = bytes.size();
  while (pos < size) {
    // Eight ASCII bytes at a time.
    while (pos + 8 <= size) {
      uint64_t word = 0;
      std::memcpy(&word, bytes.data() + pos, sizeof(word));
      if ((word & 0x8080808080808080ULL) != 0) break;
      pos += 8;
    }
    if (pos >= size) break;
    if (static_cast<unsigned char>(bytes[pos]) < 0x80) {
      ++pos;
      continue;
    }
    bool complete = false;
    const size_t length = valid_prefix(bytes, pos, complete);
    if (!complete) return false;
    pos += length;
  }
  return true;
}

bool rust_is_word(char32_t cp) noexcept {
  if (cp < 0x80) {
    return (cp >= U'a' && cp <= U'z') || (cp >= U'A' && cp <= U'Z') || (cp >= U'0' && cp <= U'9') ||
           cp == U'_';
  }
  const auto c = category_of(cp);
  if (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_ME) return true;  // L*, M*
  if (c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_PC) {
    return true;
  }
  if (cp == 0x200C || cp == 0x200D) return true;  // Join_Control
  // Other_Alphabetic symbols (circled and squared Latin letters).
  return (cp >= 0x24B6 && cp <= 0x24E9) || (cp >= 0x1F130 && cp <= 0x1F149) ||
         (cp >= 0x1F150 && cp <= 0x1F169) || (cp >= 0x1F170 && cp <= 0x1F189);
}

bool rust_is_numeric(char32_t cp) noexcept {
  if (cp < 0x80) return cp >= U'0' && cp <= U'9';
  const auto c = category_of(cp);
  return c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO;
}

bool bert_is_punctuation(char32_t cp) noexcept {
  if (cp < 0x80) {
    return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
           (cp >= 123 && cp <= 126);
  }
  return is_punctuation(cp);
}

bool is_other_category(char32_t cp) noexcept {
  const auto c = category_of(cp);
  return c == UTF8PROC_CATEGORY_CN || c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF ||
         c == UTF8PROC_CATEGORY_CS || c == UTF8PROC_CATEGORY_CO;
}

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  if (from.empty() || text.find(from) == std::string::npos) return;
  std::string out;
  out.reserve(text.size());
  size_t last = 0;
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, last)) {
    out.append(text, last, at - last);
    out.append(to);
    last = at + from.size();
  }
  out.append(text, last, std::string::npos);
  text = std::move(out);
}

void replace_space_rules(std::string& text,
                         std::span<const std::pair<std::string_view, std::string_view>> rules) {
  // Every rule starts with ' ' + c, and no replacement creates a ' ' + c pair that was not
  // there before (it starts with c itself), so rules whose pair is absent can be skipped.
  std::array<bool, 256> after_space{};
  bool any = false;
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] == ' ') {
      after_space[static_cast<unsigned char>(text[i + 1])] = true;
      any = true;
    }
  }
  if (!any) return;
  for (const auto& [from, to] : rules) {
    if (from.size() >= 2 && after_space[static_cast<unsigned char>(from[1])]) {
      replace_all(text, from, to);
    }
  }
}

char32_t next_code_point(std::string_view text, size_t& pos) noexcept {
  const auto lead = static_cast<unsigned char>(text[pos]);
  if (lead < 0x80) {
    ++pos;
    return lead;
  }
  return utf8_next(text, pos).value_or(U'\uFFFD');
}

char32_t last_code_point(std::string_view text) noexcept {
  size_t start = text.size() - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80 &&
         text.size() - start < 4) {
    --start;
  }
  size_t pos = start;
  return next_code_point(text, pos);
}

}  // namespace polyinfer::inline v0::detail
