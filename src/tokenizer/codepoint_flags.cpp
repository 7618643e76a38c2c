// SPDX-License-Identifier: Apache-2.0
// Code-point flags, first-code-point NFD and lowercase in llama.cpp's sense, via utf8proc.
#include "tokenizer/codepoint_flags.hpp"

#include <utf8proc.h>

namespace polyinfer::inline v0::detail {

namespace {

constexpr char32_t kMaxCodepoint = 0x10FFFF;

bool is_white_space(char32_t cp, utf8proc_category_t category) noexcept {
  if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85) return true;
  return category == UTF8PROC_CATEGORY_ZS || category == UTF8PROC_CATEGORY_ZL ||
         category == UTF8PROC_CATEGORY_ZP;
}

}  // namespace

CodepointFlags codepoint_flags(char32_t cp) noexcept {
  CodepointFlags flags;
  if (cp > kMaxCodepoint) return flags;
  const auto category = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  switch (category) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      flags.letter = true;
      break;
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
      flags.mark = true;
      break;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      flags.number = true;
      break;
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
      flags.punctuation = true;
      break;
    case UTF8PROC_CATEGORY_SM:
    case UTF8PROC_CATEGORY_SC:
    case UTF8PROC_CATEGORY_SK:
    case UTF8PROC_CATEGORY_SO:
      flags.symbol = true;
      break;
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
      flags.separator = true;
      break;
    default:  // Cn, Cc, Cf, Cs, Co
      flags.control = true;
      break;
  }
  flags.whitespace = is_white_space(cp, category);
  return flags;
}

char32_t nfd_first(char32_t cp) noexcept {
  if (cp < 0xC0 || cp > kMaxCodepoint || (cp >= 0xD800 && cp <= 0xDFFF)) return cp;
  utf8proc_int32_t decomposed[8];
  int boundclass = 0;
  const utf8proc_ssize_t count = utf8proc_decompose_char(
      static_cast<utf8proc_int32_t>(cp), decomposed, 8, UTF8PROC_DECOMPOSE, &boundclass);
  return count > 0 ? static_cast<char32_t>(decomposed[0]) : cp;
}

char32_t simple_lower(char32_t cp) noexcept {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  if (cp > kMaxCodepoint) return cp;
  return static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp)));
}

bool is_chinese_char(char32_t cp) noexcept {
  return (cp >= 0x04E00 && cp <= 0x09FFF) || (cp >= 0x03400 && cp <= 0x04DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) ||
         (cp >= 0x2B920 && cp <= 0x2CEAF) ||  // llama.cpp (like HF's Rust code) starts at 2B920
         (cp >= 0x0F900 && cp <= 0x0FAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

}  // namespace polyinfer::inline v0::detail
