// SPDX-License-Identifier: Apache-2.0
// Python str semantics on UTF-8 strings: whitespace, strip/split, case mapping, code points.
#include "tokenizer/jinja_string.hpp"

#include <fmt/format.h>

#include <utf8proc.h>

#include <algorithm>
#include <functional>

#include "tokenizer/jinja_value.hpp"

namespace polyinfer::inline v0::detail {

char32_t decode_utf8(std::string_view text, std::size_t pos, std::size_t* length) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(pos);
  std::size_t count = 0;
  char32_t code_point = 0;
  if (lead < 0x80) {
    *length = 1;
    return lead;
  }
  if ((lead & 0xE0) == 0xC0) {
    count = 2;
    code_point = lead & 0x1F;
  } else if ((lead & 0xF0) == 0xE0) {
    count = 3;
    code_point = lead & 0x0F;
  } else if ((lead & 0xF8) == 0xF0) {
    count = 4;
    code_point = lead & 0x07;
  } else {
    *length = 1;
    return lead;
  }
  if (pos + count > text.size()) {
    *length = 1;
    return lead;
  }
  for (std::size_t i = 1; i < count; ++i) {
    if ((byte(pos + i) & 0xC0) != 0x80) {
      *length = 1;
      return lead;
    }
    code_point = (code_point << 6) | (byte(pos + i) & 0x3F);
  }
  *length = count;
  return code_point;
}

void append_utf8(std::string& out, char32_t code_point) {
  if (code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF)) {
    code_point = 0xFFFD;
  }
  if (code_point < 0x80) {
    out.push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else if (code_point < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (code_point >> 18)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

std::vector<std::size_t> code_point_offsets(std::string_view text) {
  std::vector<std::size_t> offsets;
  offsets.reserve(text.size() + 1);
  std::size_t pos = 0;
  while (pos < text.size()) {
    offsets.push_back(pos);
    std::size_t length = 1;
    decode_utf8(text, pos, &length);
    pos += length;
  }
  offsets.push_back(text.size());
  return offsets;
}

std::size_t code_point_count(std::string_view text) {
  std::size_t count = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t length = 1;
    decode_utf8(text, pos, &length);
    pos += length;
    ++count;
  }
  return count;
}

bool py_isspace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

bool py_isprintable(char32_t c) {
  if (c == ' ') return true;
  if (c > 0x10FFFF) return false;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS:
      return false;
    default:
      return true;
  }
}

namespace {

bool is_cased(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  const auto category = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return category == UTF8PROC_CATEGORY_LU || category == UTF8PROC_CATEGORY_LL ||
         category == UTF8PROC_CATEGORY_LT;
}

char32_t to_upper(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') ? c - 32 : c;
  return static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(c)));
}

char32_t to_lower(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  return static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c)));
}

char32_t to_title(char32_t c) {
  if (c < 0x80) return to_upper(c);
  return static_cast<char32_t>(utf8proc_totitle(static_cast<utf8proc_int32_t>(c)));
}

template <typename Map>
std::string map_code_points(std::string_view text, Map map) {
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t length = 1;
    const char32_t c = decode_utf8(text, pos, &length);
    if (length == 1 && c >= 0x80) {
      out.push_back(text[pos]);  // an invalid byte passes through unchanged
    } else {
      append_utf8(out, map(c));
    }
    pos += length;
  }
  return out;
}

// The code point that ends at `end` (> 0): its value, and its start in *begin.
char32_t previous_code_point(std::string_view text, std::size_t end, std::size_t* begin) {
  std::size_t lead = end - 1;
  const std::size_t floor = end >= 4 ? end - 4 : 0;
  while (lead > floor && (static_cast<unsigned char>(text[lead]) & 0xC0) == 0x80) --lead;
  std::size_t length = 1;
  const char32_t c = decode_utf8(text, lead, &length);
  if (lead + length == end) {
    *begin = lead;
    return c;
  }
  *begin = end - 1;  // an invalid byte stands for itself
  return static_cast<unsigned char>(text[end - 1]);
}

bool is_line_break(char32_t c) {
  return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E ||
         c == 0x85 || c == 0x2028 || c == 0x2029;
}

}  // namespace

std::string py_strip(std::string_view text, const std::optional<std::string>& chars, bool left,
                     bool right) {
  std::vector<char32_t> set;
  if (chars) {
    for (std::size_t pos = 0; pos < chars->size();) {
      std::size_t length = 1;
      set.push_back(decode_utf8(*chars, pos, &length));
      pos += length;
    }
  }
  const auto strippable = [&](char32_t c) {
    return chars ? std::find(set.begin(), set.end(), c) != set.end() : py_isspace(c);
  };
  std::size_t first = 0;
  std::size_t last = text.size();
  while (left && first < last) {
    std::size_t length = 1;
    if (!strippable(decode_utf8(text, first, &length))) break;
    first += length;
  }
  while (right && last > first) {
    std::size_t begin = 0;
    if (!strippable(previous_code_point(text, last, &begin)) || begin < first) break;
    last = begin;
  }
  return std::string(text.substr(first, last - first));
}

std::vector<std::string> py_split(std::string_view text, const std::optional<std::string>& sep,
                                  std::int64_t maxsplit, bool from_right) {
  std::vector<std::string> parts;
  // Python's unlimited split, capped at the longest list a template may build.
  const auto limit = static_cast<std::int64_t>(kMaxListItems);
  maxsplit = maxsplit < 0 ? limit : std::min(maxsplit, limit);
  if (sep) {
    const std::string& separator = *sep;
    if (!from_right) {
      std::size_t start = 0;
      while (maxsplit-- > 0) {
        const std::size_t found = text.find(separator, start);
        if (found == std::string_view::npos) break;
        parts.emplace_back(text.substr(start, found - start));
        start = found + separator.size();
      }
      parts.emplace_back(text.substr(start));
    } else {
      std::size_t end = text.size();
      while (maxsplit-- > 0 && end >= separator.size()) {
        const std::size_t found = text.rfind(separator, end - separator.size());
        if (found == std::string_view::npos) break;
        parts.emplace_back(text.substr(found + separator.size(), end - found - separator.size()));
        end = found;
      }
      parts.emplace_back(text.substr(0, end));
      std::reverse(parts.begin(), parts.end());
    }
    return parts;
  }
  const auto space_at = [&](std::size_t pos, std::size_t* length) {
    return py_isspace(decode_utf8(text, pos, length));
  };
  if (!from_right) {
    std::size_t pos = 0;
    while (true) {
      std::size_t length = 1;
      while (pos < text.size() && space_at(pos, &length)) pos += length;
      if (pos == text.size()) break;
      if (maxsplit == 0) {
        parts.emplace_back(text.substr(pos));
        break;
      }
      const std::size_t word_begin = pos;
      while (pos < text.size() && !space_at(pos, &length)) pos += length;
      parts.emplace_back(text.substr(word_begin, pos - word_begin));
      --maxsplit;
    }
    return parts;
  }
  std::size_t end = text.size();
  while (true) {
    std::size_t begin = 0;
    while (end > 0 && py_isspace(previous_code_point(text, end, &begin))) end = begin;
    if (end == 0) break;
    if (maxsplit == 0) {
      parts.emplace_back(text.substr(0, end));
      break;
    }
    std::size_t word_begin = end;
    while (word_begin > 0 && !py_isspace(previous_code_point(text, word_begin, &begin))) {
      word_begin = begin;
    }
    parts.emplace_back(text.substr(word_begin, end - word_begin));
    end = word_begin;
    --maxsplit;
  }
  std::reverse(parts.begin(), parts.end());
  return parts;
}

void for_each_line(std::string_view text,
                   const std::function<void(std::string_view line, std::string_view brk)>& visit) {
  std::size_t line_begin = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t length = 1;
    const char32_t c = decode_utf8(text, pos, &length);
    if (!is_line_break(c)) {
      pos += length;
      continue;
    }
    std::size_t break_end = pos + length;
    if (c == '\r' && break_end < text.size() && text[break_end] == '\n') ++break_end;
    visit(text.substr(line_begin, pos - line_begin), text.substr(pos, break_end - pos));
    line_begin = pos = break_end;
  }
  if (line_begin < text.size()) visit(text.substr(line_begin), std::string_view());
}

std::vector<std::string> py_splitlines(std::string_view text, bool keepends) {
  std::vector<std::string> lines;
  for_each_line(text, [&](std::string_view line, std::string_view brk) {
    if (lines.size() >= kMaxListItems) {
      throw JinjaError(fmt::format("more than {} lines", kMaxListItems));
    }
    lines.emplace_back(line);
    if (keepends) lines.back().append(brk);
  });
  return lines;
}

std::string py_replace(std::string_view text, std::string_view old_text, std::string_view new_text,
                       std::int64_t count) {
  if (count < 0) count = INT64_MAX;
  std::string out;
  const auto check = [&] {
    if (out.size() > kMaxStringBytes) {
      throw JinjaError(fmt::format("string longer than {} bytes", kMaxStringBytes));
    }
  };
  if (old_text.empty()) {
    const std::vector<std::size_t> offsets = code_point_offsets(text);
    for (std::size_t i = 0; i + 1 < offsets.size(); ++i) {
      if (count > 0) {
        out += new_text;
        --count;
      }
      out += text.substr(offsets[i], offsets[i + 1] - offsets[i]);
      check();
    }
    if (count > 0) out += new_text;
    check();
    return out;
  }
  std::size_t start = 0;
  while (count > 0) {
    const std::size_t found = text.find(old_text, start);
    if (found == std::string_view::npos) break;
    out += text.substr(start, found - start);
    out += new_text;
    start = found + old_text.size();
    --count;
    check();
  }
  out += text.substr(start);
  check();
  return out;
}

std::string py_upper(std::string_view text) {
  return map_code_points(text, to_upper);
}
std::string py_lower(std::string_view text) {
  return map_code_points(text, to_lower);
}

std::string py_swapcase(std::string_view text) {
  return map_code_points(text, [](char32_t c) {
    const char32_t upper = to_upper(c);
    return upper != c ? upper : to_lower(c);
  });
}

std::string py_title(std::string_view text) {
  bool previous_is_cased = false;
  return map_code_points(text, [&](char32_t c) {
    const char32_t mapped = previous_is_cased ? to_lower(c) : to_title(c);
    previous_is_cased = is_cased(c);
    return mapped;
  });
}

std::string py_capitalize(std::string_view text) {
  bool first = true;
  return map_code_points(text, [&](char32_t c) {
    const char32_t mapped = first ? to_title(c) : to_lower(c);
    first = false;
    return mapped;
  });
}

std::string jinja_title(std::string_view text) {
  bool word_start = true;
  return map_code_points(text, [&](char32_t c) {
    const bool delimiter =
        c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || py_isspace(c);
    if (delimiter) {
      word_start = true;
      return c;
    }
    const char32_t mapped = word_start ? to_upper(c) : to_lower(c);
    word_start = false;
    return mapped;
  });
}

bool py_is_class(std::string_view text, CharClass char_class) {
  if (text.empty()) return false;
  bool any_cased = false;
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t length = 1;
    const char32_t c = decode_utf8(text, pos, &length);
    pos += length;
    const auto category = utf8proc_category(static_cast<utf8proc_int32_t>(c));
    const bool alpha = category == UTF8PROC_CATEGORY_LU || category == UTF8PROC_CATEGORY_LL ||
                       category == UTF8PROC_CATEGORY_LT || category == UTF8PROC_CATEGORY_LM ||
                       category == UTF8PROC_CATEGORY_LO;
    const bool digit = category == UTF8PROC_CATEGORY_ND;
    switch (char_class) {
      case CharClass::kDigit:
        if (!digit) return false;
        break;
      case CharClass::kAlpha:
        if (!alpha) return false;
        break;
      case CharClass::kAlnum:
        if (!alpha && !digit && category != UTF8PROC_CATEGORY_NL &&
            category != UTF8PROC_CATEGORY_NO) {
          return false;
        }
        break;
      case CharClass::kSpace:
        if (!py_isspace(c)) return false;
        break;
      case CharClass::kLower:
        if (category == UTF8PROC_CATEGORY_LU || category == UTF8PROC_CATEGORY_LT) return false;
        any_cased = any_cased || category == UTF8PROC_CATEGORY_LL;
        break;
      case CharClass::kUpper:
        if (category == UTF8PROC_CATEGORY_LL || category == UTF8PROC_CATEGORY_LT) return false;
        any_cased = any_cased || category == UTF8PROC_CATEGORY_LU;
        break;
    }
  }
  if (char_class == CharClass::kLower || char_class == CharClass::kUpper) return any_cased;
  return true;
}

}  // namespace polyinfer::inline v0::detail
