// SPDX-License-Identifier: Apache-2.0
// Jinja lexer: template text to tokens, with jinja2's whitespace control as transformers
// configures it (trim_blocks=True, lstrip_blocks=True).
#include "tokenizer/jinja_lexer.hpp"

#include <array>
#include <charconv>

#include "common/fail.hpp"
#include "tokenizer/jinja_string.hpp"

namespace polyinfer::inline v0::detail {

namespace {

// Newlines as "\n"; one trailing newline dropped (jinja2's keep_trailing_newline=False).
std::string normalise_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool is_name_char(char c) {
  return is_name_start(c) || is_digit(c);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class Lexer {
 public:
  explicit Lexer(std::string source) { result_.source = std::move(source); }

  LexedTemplate run() {
    const std::string& src = result_.source;
    while (pos_ < src.size()) {
      const std::size_t start = find_opener(pos_);
      if (start == std::string::npos) {
        emit_data(pos_, src.substr(pos_));
        break;
      }
      lex_tag(start);
    }
    Token end;
    end.kind = TokenKind::kEnd;
    end.offset = static_cast<std::uint32_t>(src.size());
    result_.tokens.push_back(std::move(end));
    return std::move(result_);
  }

 private:
  [[noreturn]] void fail_at(std::size_t offset, const std::string& message) const {
    fail(ErrorCode::kTemplate, template_location(result_.source, offset), "{}", message);
  }

  std::size_t find_opener(std::size_t from) const {
    const std::string& src = result_.source;
    std::size_t at = src.find('{', from);
    while (at != std::string::npos && at + 1 < src.size()) {
      const char next = src[at + 1];
      if (next == '{' || next == '%' || next == '#') return at;
      at = src.find('{', at + 1);
    }
    return std::string::npos;
  }

  // Length of the Python whitespace code point at `at`, 0 when there is none.
  std::size_t space_at(std::size_t at) const {
    const std::string& src = result_.source;
    if (at >= src.size()) return 0;
    std::size_t length = 1;
    const char32_t c = decode_utf8(src, at, &length);
    return py_isspace(c) ? length : 0;
  }

  std::size_t skip_space(std::size_t at) const {
    while (const std::size_t length = space_at(at)) at += length;
    return at;
  }

  bool starts_with(std::size_t at, std::string_view text) const {
    return result_.source.compare(at, text.size(), text) == 0;
  }

  // Python's str.rstrip() on source[begin, end): the new end.
  std::size_t rstrip_end(std::size_t begin, std::size_t end) const {
    const std::string& src = result_.source;
    while (end > begin) {
      std::size_t lead = end - 1;
      while (lead > begin && (static_cast<unsigned char>(src[lead]) & 0xC0) == 0x80) --lead;
      std::size_t length = 1;
      const char32_t c = decode_utf8(src, lead, &length);
      if (lead + length != end || !py_isspace(c)) break;
      end = lead;
    }
    return end;
  }

  // jinja2's OptionalLStrip: the end of the text [begin, end) that precedes a tag with the
  // given whitespace-control sign.
  std::size_t text_end_before_tag(std::size_t begin, std::size_t end, char sign,
                                  bool lstrip_applies) const {
    if (sign == '-') return rstrip_end(begin, end);
    if (sign == '+' || !lstrip_applies) return end;
    const std::string& src = result_.source;
    std::size_t line_begin = begin;
    const std::size_t newline = src.rfind('\n', end == 0 ? 0 : end - 1);
    if (newline != std::string::npos && newline >= begin && newline < end) line_begin = newline + 1;
    if (line_begin == begin && !line_starting_) return end;
    if (line_begin == end || skip_space(line_begin) < end) return end;
    return line_begin;
  }

  void emit_data(std::size_t offset, std::string text) {
    if (text.empty()) return;
    Token token;
    token.kind = TokenKind::kData;
    token.offset = static_cast<std::uint32_t>(offset);
    token.text = std::move(text);
    result_.tokens.push_back(std::move(token));
  }

  void emit(TokenKind kind, std::size_t offset, std::string text = {}) {
    Token token;
    token.kind = kind;
    token.offset = static_cast<std::uint32_t>(offset);
    token.text = std::move(text);
    result_.tokens.push_back(std::move(token));
  }

  // After a block or comment end with the given sign: '-' strips whitespace, '+' keeps it,
  // otherwise trim_blocks drops one newline.
  void finish_block_end(char sign) {
    const std::string& src = result_.source;
    if (sign == '-') {
      pos_ = skip_space(pos_);
    } else if (sign != '+' && pos_ < src.size() && src[pos_] == '\n') {
      ++pos_;
    }
    line_starting_ = pos_ > 0 && src[pos_ - 1] == '\n';
  }

  // Matches "(-|+|)%}" ending a block at `at`; returns its length (0 when none) and the sign.
  std::size_t block_end_at(std::size_t at, char* sign) const {
    if (starts_with(at, "+%}") || starts_with(at, "-%}")) {
      *sign = result_.source[at];
      return 3;
    }
    if (starts_with(at, "%}")) {
      *sign = 0;
      return 2;
    }
    return 0;
  }

  void lex_tag(std::size_t start) {
    const std::string& src = result_.source;
    const char type = src[start + 1];
    std::size_t after = start + 2;
    char sign = 0;
    if (after < src.size() && (src[after] == '-' || src[after] == '+')) sign = src[after++];
    // {% raw %}: jinja2 matches "{%(-|+|)\s*raw\s*(-%}\s*|%})" before other tags.
    std::size_t raw_end = 0;
    if (type == '%') {
      const std::size_t name = skip_space(after);
      if (starts_with(name, "raw") && (name + 3 >= src.size() || !is_name_char(src[name + 3]))) {
        const std::size_t close = skip_space(name + 3);
        if (starts_with(close, "-%}")) {
          raw_end = skip_space(close + 3);
        } else if (starts_with(close, "%}")) {
          raw_end = close + 2;
        }
      }
    }
    const bool lstrip_applies = type != '{';
    const std::size_t data_end = text_end_before_tag(pos_, start, sign, lstrip_applies);
    emit_data(pos_, src.substr(pos_, data_end - pos_));
    line_starting_ = false;
    if (raw_end != 0) {
      pos_ = raw_end;
      line_starting_ = src[pos_ - 1] == '\n';
      lex_raw(start);
    } else if (type == '#') {
      pos_ = after;
      lex_comment(start);
    } else {
      pos_ = after;
      lex_inside_tag(start, type == '%');
    }
  }

  void lex_comment(std::size_t start) {
    const std::string& src = result_.source;
    if (pos_ >= src.size()) return;  // jinja2 silently ends at a "{#" that ends the template
    const std::size_t close = src.find("#}", pos_);
    if (close == std::string::npos) fail_at(start, "missing end of comment tag '#}'");
    char sign = 0;
    if (close > pos_ && (src[close - 1] == '-' || src[close - 1] == '+')) sign = src[close - 1];
    pos_ = close + 2;
    finish_block_end(sign);
  }

  void lex_raw(std::size_t start) {
    const std::string& src = result_.source;
    const std::size_t content_begin = pos_;
    std::size_t at = src.find("{%", pos_);
    while (at != std::string::npos) {
      std::size_t p = at + 2;
      char sign = 0;
      if (p < src.size() && (src[p] == '-' || src[p] == '+')) sign = src[p++];
      p = skip_space(p);
      if (starts_with(p, "endraw")) {
        p = skip_space(p + 6);
        char end_sign = 0;
        if (const std::size_t length = block_end_at(p, &end_sign)) {
          const std::size_t data_end = text_end_before_tag(content_begin, at, sign, true);
          emit_data(content_begin, src.substr(content_begin, data_end - content_begin));
          pos_ = p + length;
          finish_block_end(end_sign);
          return;
        }
      }
      at = src.find("{%", at + 2);
    }
    fail_at(start, "missing end of raw directive '{% endraw %}'");
  }

  void lex_inside_tag(std::size_t start, bool is_block) {
    const std::string& src = result_.source;
    emit(is_block ? TokenKind::kBlockBegin : TokenKind::kVariableBegin, start);
    std::vector<char> balance;
    while (true) {
      if (pos_ >= src.size()) {
        fail_at(start,
                is_block ? "unclosed '{%' tag: expected '%}'" : "unclosed '{{' tag: expected '}}'");
      }
      if (balance.empty()) {
        if (is_block) {
          char sign = 0;
          if (const std::size_t length = block_end_at(pos_, &sign)) {
            emit(TokenKind::kBlockEnd, pos_);
            pos_ += length;
            finish_block_end(sign);
            return;
          }
        } else if (starts_with(pos_, "-}}") || starts_with(pos_, "}}")) {
          emit(TokenKind::kVariableEnd, pos_);
          if (src[pos_] == '-') {
            pos_ = skip_space(pos_ + 3);
          } else {
            pos_ += 2;
          }
          line_starting_ = src[pos_ - 1] == '\n';
          return;
        }
      }
      if (const std::size_t length = space_at(pos_)) {
        pos_ += length;
        continue;
      }
      const char c = src[pos_];
      if (is_digit(c)) {
        lex_number();
      } else if (is_name_start(c)) {
        const std::size_t begin = pos_;
        while (pos_ < src.size() && is_name_char(src[pos_]) && space_at(pos_) == 0) ++pos_;
        emit(TokenKind::kName, begin, src.substr(begin, pos_ - begin));
      } else if (c == '\'' || c == '"') {
        lex_string();
      } else {
        lex_operator(balance);
      }
    }
  }

  // (\d+_)*\d+ at `at`: the end, or `at` when it does not match.
  std::size_t digits_end(std::size_t at) const {
    const std::string& src = result_.source;
    std::size_t p = at;
    if (p >= src.size() || !is_digit(src[p])) return at;
    while (true) {
      while (p < src.size() && is_digit(src[p])) ++p;
      if (p + 1 < src.size() && src[p] == '_' && is_digit(src[p + 1])) {
        ++p;
        continue;
      }
      return p;
    }
  }

  void lex_number() {
    const std::string& src = result_.source;
    const std::size_t begin = pos_;
    const auto exponent_end = [&](std::size_t at) -> std::size_t {
      if (at >= src.size() || (src[at] != 'e' && src[at] != 'E')) return 0;
      std::size_t p = at + 1;
      if (p < src.size() && (src[p] == '+' || src[p] == '-')) ++p;
      const std::size_t end = digits_end(p);
      return end == p ? 0 : end;
    };
    std::size_t float_end = 0;
    if (begin == 0 || src[begin - 1] != '.') {
      const std::size_t whole = digits_end(begin);
      std::size_t fraction = 0;
      if (whole < src.size() && src[whole] == '.') {
        const std::size_t end = digits_end(whole + 1);
        if (end != whole + 1) fraction = end;
      }
      if (const std::size_t e = exponent_end(fraction != 0 ? fraction : whole)) {
        float_end = e;
      } else {
        float_end = fraction;
      }
    }
    if (float_end != 0) {
      std::string text;
      for (std::size_t i = begin; i < float_end; ++i) {
        if (src[i] != '_') text.push_back(src[i]);
      }
      Token token;
      token.kind = TokenKind::kFloat;
      token.offset = static_cast<std::uint32_t>(begin);
      std::from_chars(text.data(), text.data() + text.size(), token.number);
      token.text = std::move(text);
      result_.tokens.push_back(std::move(token));
      pos_ = float_end;
      return;
    }
    int base = 10;
    std::size_t digits_begin = begin;
    if (src[begin] == '0' && begin + 1 < src.size()) {
      const char prefix = static_cast<char>(src[begin + 1] | 0x20);
      if (prefix == 'x') base = 16;
      if (prefix == 'o') base = 8;
      if (prefix == 'b') base = 2;
      if (base != 10) digits_begin = begin + 2;
    }
    std::size_t p = digits_begin;
    std::int64_t value = 0;
    bool any = false;
    bool overflow = false;
    while (p < src.size()) {
      if (src[p] == '_' && any && p + 1 < src.size() && hex_value(src[p + 1]) >= 0 &&
          hex_value(src[p + 1]) < base) {
        ++p;
        continue;
      }
      const int digit = hex_value(src[p]);
      if (digit < 0 || digit >= base) break;
      if (base == 10 && src[begin] == '0' && digit != 0) break;  // "0(_?0)*" only
      overflow = overflow || __builtin_mul_overflow(value, base, &value) ||
                 __builtin_add_overflow(value, digit, &value);
      any = true;
      ++p;
    }
    if (!any) {
      if (base != 10) fail_at(begin, "invalid integer literal");
      p = begin + 1;  // a lone "0"
    }
    if (overflow) fail_at(begin, "integer literal too large");
    Token token;
    token.kind = TokenKind::kInteger;
    token.offset = static_cast<std::uint32_t>(begin);
    token.integer = value;
    token.text = src.substr(begin, p - begin);
    result_.tokens.push_back(std::move(token));
    pos_ = p;
  }

  void lex_string() {
    const std::string& src = result_.source;
    const std::size_t begin = pos_;
    const char quote = src[pos_++];
    std::string value;
    while (true) {
      if (pos_ >= src.size()) fail_at(begin, "unterminated string literal");
      const char c = src[pos_];
      if (c == quote) {
        ++pos_;
        break;
      }
      if (c != '\\') {
        value.push_back(c);
        ++pos_;
        continue;
      }
      if (pos_ + 1 >= src.size()) fail_at(begin, "unterminated string literal");
      const char e = src[pos_ + 1];
      pos_ += 2;
      switch (e) {
        case '\n':
          break;
        case '\\':
          value.push_back('\\');
          break;
        case '\'':
          value.push_back('\'');
          break;
        case '"':
          value.push_back('"');
          break;
        case 'a':
          value.push_back('\a');
          break;
        case 'b':
          value.push_back('\b');
          break;
        case 'f':
          value.push_back('\f');
          break;
        case 'n':
          value.push_back('\n');
          break;
        case 'r':
          value.push_back('\r');
          break;
        case 't':
          value.push_back('\t');
          break;
        case 'v':
          value.push_back('\v');
          break;
        case 'x':
        case 'u':
        case 'U': {
          const int count = e == 'x' ? 2 : (e == 'u' ? 4 : 8);
          char32_t code_point = 0;
          for (int i = 0; i < count; ++i) {
            const int digit = pos_ < src.size() ? hex_value(src[pos_]) : -1;
            if (digit < 0) {
              fail_at(pos_, std::string("truncated \\") + e + " escape in string literal");
            }
            code_point = code_point * 16 + static_cast<char32_t>(digit);
            ++pos_;
          }
          if (code_point > 0x10FFFF) fail_at(pos_, "illegal Unicode character in string literal");
          append_utf8(value, code_point);
          break;
        }
        case 'N':
          fail_at(pos_ - 2, "\\N{...} escapes are not supported");
        default:
          if (e >= '0' && e <= '7') {
            char32_t code_point = static_cast<char32_t>(e - '0');
            for (int i = 0; i < 2 && pos_ < src.size() && src[pos_] >= '0' && src[pos_] <= '7';
                 ++i) {
              code_point = code_point * 8 + static_cast<char32_t>(src[pos_++] - '0');
            }
            append_utf8(value, code_point);
          } else {
            value.push_back('\\');
            value.push_back(e);
          }
      }
    }
    Token token;
    token.kind = TokenKind::kString;
    token.offset = static_cast<std::uint32_t>(begin);
    token.text = std::move(value);
    result_.tokens.push_back(std::move(token));
  }

  void lex_operator(std::vector<char>& balance) {
    static constexpr std::array<std::string_view, 6> kTwo = {"//", "**", "==", "!=", ">=", "<="};
    static constexpr std::string_view kOne = "+-/*%~[](){}><=.:|,;";
    const std::string& src = result_.source;
    const std::size_t begin = pos_;
    for (const std::string_view op : kTwo) {
      if (starts_with(begin, op)) {
        emit(TokenKind::kOperator, begin, std::string(op));
        pos_ += 2;
        return;
      }
    }
    const char c = src[begin];
    if (kOne.find(c) == std::string_view::npos) {
      std::size_t length = 1;
      decode_utf8(src, begin, &length);
      fail_at(begin, "unexpected character '" + src.substr(begin, length) + "'");
    }
    if (c == '(' || c == '[' || c == '{') {
      balance.push_back(c == '(' ? ')' : (c == '[' ? ']' : '}'));
    } else if (c == ')' || c == ']' || c == '}') {
      if (balance.empty()) fail_at(begin, std::string("unexpected '") + c + "'");
      if (balance.back() != c) {
        fail_at(begin, std::string("unexpected '") + c + "', expected '" + balance.back() + "'");
      }
      balance.pop_back();
    }
    emit(TokenKind::kOperator, begin, std::string(1, c));
    ++pos_;
  }

  LexedTemplate result_;
  std::size_t pos_ = 0;
  bool line_starting_ = true;
};

}  // namespace

std::string template_location(std::string_view source, std::size_t offset) {
  offset = std::min(offset, source.size());
  std::size_t line = 1;
  std::size_t line_begin = 0;
  for (std::size_t i = 0; i < offset; ++i) {
    if (source[i] == '\n') {
      ++line;
      line_begin = i + 1;
    }
  }
  return "chat template line " + std::to_string(line) + " col " +
         std::to_string(offset - line_begin + 1);
}

LexedTemplate lex_template(std::string_view source) {
  if (source.size() > kMaxTemplateBytes) {
    fail(ErrorCode::kTemplate, "chat template", "template longer than {} bytes", kMaxTemplateBytes);
  }
  return Lexer(normalise_newlines(source)).run();
}

}  // namespace polyinfer::inline v0::detail
