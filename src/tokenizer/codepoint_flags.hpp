// SPDX-License-Identifier: Apache-2.0
// llama.cpp's per-code-point flags (scripts/gen-unicode-data.py), computed from utf8proc tables.
#pragma once

#include <cstdint>

namespace polyinfer::inline v0::detail {

/// The categories llama.cpp's unicode_cpt_flags() reports for one code point: one of the seven
/// general-category groups, plus whether it is White_Space (\s of Python's `regex` module).
struct CodepointFlags {
  bool number = false;       ///< \p{N}
  bool letter = false;       ///< \p{L}
  bool separator = false;    ///< \p{Z}
  bool mark = false;         ///< \p{M}
  bool punctuation = false;  ///< \p{P}
  bool symbol = false;       ///< \p{S}
  bool control = false;      ///< \p{C}: Cc, Cf, Cs, Co and unassigned code points
  bool whitespace = false;   ///< U+0009..U+000D, U+0020, U+0085 and the Z* code points
};

/// Flags of `cp`; all false for values above U+10FFFF.
[[nodiscard]] CodepointFlags codepoint_flags(char32_t cp) noexcept;

/// The first code point of the canonical decomposition of `cp` (llama.cpp's "NFD" table keeps
/// only that one, so "é" becomes "e" and the accent is dropped).
[[nodiscard]] char32_t nfd_first(char32_t cp) noexcept;

/// Simple lowercase mapping (llama.cpp's unicode_tolower).
[[nodiscard]] char32_t simple_lower(char32_t cp) noexcept;

/// BERT's "Chinese character" ranges as llama.cpp's WPM tokenizer writes them.
[[nodiscard]] bool is_chinese_char(char32_t cp) noexcept;

}  // namespace polyinfer::inline v0::detail
