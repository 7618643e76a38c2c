// SPDX-License-Identifier: Apache-2.0
// UTF-8 and byte-level helpers shared by every tokenizer.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace polyinfer::inline v0::detail {

/// Length in bytes of the UTF-8 sequence starting with `lead` (1 for invalid lead bytes).
[[nodiscard]] int utf8_sequence_length(unsigned char lead) noexcept;
/// Decodes the code point at `text[pos]`, advancing `pos`; nullopt (and pos + 1) when the bytes
/// there are not valid UTF-8.
[[nodiscard]] std::optional<char32_t> utf8_next(std::string_view text, size_t& pos) noexcept;
/// Appends the UTF-8 encoding of `cp` to `out`.
void utf8_append(std::string& out, char32_t cp);
[[nodiscard]] std::string utf8_encode(char32_t cp);
/// Whether `text` is valid UTF-8.
[[nodiscard]] bool utf8_valid(std::string_view text) noexcept;
/// Splits into code-point substrings; invalid bytes become one-byte pieces.
[[nodiscard]] std::vector<std::string_view> utf8_chars(std::string_view text);
/// Decodes to code points (invalid bytes map to U+FFFD).
[[nodiscard]] std::u32string utf8_decode(std::string_view text);

/// GPT-2's byte-to-unicode table: every byte maps to a printable code point ('Ġ' for space).
[[nodiscard]] const std::array<std::string, 256>& byte_to_unicode();
/// Inverse of byte_to_unicode for one code point; nullopt for code points outside the table.
[[nodiscard]] std::optional<uint8_t> unicode_to_byte(char32_t cp) noexcept;
/// Maps every byte of `text` through byte_to_unicode.
[[nodiscard]] std::string bytes_to_unicode_string(std::string_view text);
/// Inverse of bytes_to_unicode_string; code points outside the table are kept as UTF-8.
[[nodiscard]] std::string unicode_string_to_bytes(std::string_view text);

/// Unicode normalisation through utf8proc (invalid UTF-8 is returned unchanged).
[[nodiscard]] std::string normalize_nfc(std::string_view text);
[[nodiscard]] std::string normalize_nfkc(std::string_view text);
[[nodiscard]] std::string normalize_nfd(std::string_view text);
/// Removes combining marks (category Mn) after NFD, as BERT's accent stripping does.
[[nodiscard]] std::string strip_accents(std::string_view text);
/// Full lowercase mapping (utf8proc).
[[nodiscard]] std::string to_lower(std::string_view text);

/// Unicode general-category predicates on one code point (utf8proc tables).
[[nodiscard]] bool is_letter(char32_t cp) noexcept;
[[nodiscard]] bool is_number(char32_t cp) noexcept;
[[nodiscard]] bool is_whitespace(char32_t cp) noexcept;
[[nodiscard]] bool is_punctuation(char32_t cp) noexcept;  ///< Unicode P* categories
[[nodiscard]] bool is_control(char32_t cp) noexcept;      ///< Cc/Cf
[[nodiscard]] bool is_mark(char32_t cp) noexcept;         ///< Mn/Mc/Me
[[nodiscard]] bool is_cjk(char32_t cp) noexcept;          ///< CJK ideograph blocks (BERT's rule)

}  // namespace polyinfer::inline v0::detail
