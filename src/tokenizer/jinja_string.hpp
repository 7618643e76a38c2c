// SPDX-License-Identifier: Apache-2.0
// Python str semantics on UTF-8 strings: whitespace, strip/split, case mapping, code points.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace polyinfer::inline v0::detail {

/// Decodes the code point at `pos` (invalid bytes decode as themselves, one byte long).
char32_t decode_utf8(std::string_view text, std::size_t pos, std::size_t* length);
/// Appends the UTF-8 encoding of `code_point` (surrogates and invalid values become U+FFFD).
void append_utf8(std::string& out, char32_t code_point);
/// Byte offsets of every code point start, plus text.size() at the end.
[[nodiscard]] std::vector<std::size_t> code_point_offsets(std::string_view text);
/// Number of code points.
[[nodiscard]] std::size_t code_point_count(std::string_view text);

/// Python's str.isspace() for one code point.
[[nodiscard]] bool py_isspace(char32_t code_point);
/// Python's str.isprintable() for one code point.
[[nodiscard]] bool py_isprintable(char32_t code_point);

/// str.strip/lstrip/rstrip: `chars` unset strips whitespace, else any of its code points.
[[nodiscard]] std::string py_strip(std::string_view text, const std::optional<std::string>& chars,
                                   bool left, bool right);
/// str.split(sep, maxsplit) / str.rsplit; `sep` unset splits on whitespace runs.
[[nodiscard]] std::vector<std::string> py_split(std::string_view text,
                                                const std::optional<std::string>& sep,
                                                std::int64_t maxsplit, bool from_right);
/// Calls `visit` for each line of `text` (Python's splitlines boundaries) with its line break
/// ("" for a last line without one).
void for_each_line(std::string_view text,
                   const std::function<void(std::string_view line, std::string_view brk)>& visit);
/// str.splitlines(keepends).
[[nodiscard]] std::vector<std::string> py_splitlines(std::string_view text, bool keepends);
/// str.replace(old, new, count); count < 0 replaces all.
[[nodiscard]] std::string py_replace(std::string_view text, std::string_view old_text,
                                     std::string_view new_text, std::int64_t count);

/// str.upper(), str.lower(), str.swapcase().
[[nodiscard]] std::string py_upper(std::string_view text);
[[nodiscard]] std::string py_lower(std::string_view text);
[[nodiscard]] std::string py_swapcase(std::string_view text);
/// str.title(): a cased letter after an uncased character starts a word.
[[nodiscard]] std::string py_title(std::string_view text);
/// str.capitalize(): first character upper case, the rest lower case.
[[nodiscard]] std::string py_capitalize(std::string_view text);
/// jinja2's `title` filter: words start after '-', whitespace, '(', '{', '[', '<'.
[[nodiscard]] std::string jinja_title(std::string_view text);

/// Character class predicates over the whole string (false for "").
enum class CharClass { kDigit, kAlpha, kAlnum, kSpace, kLower, kUpper };
[[nodiscard]] bool py_is_class(std::string_view text, CharClass char_class);

}  // namespace polyinfer::inline v0::detail
