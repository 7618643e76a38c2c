// SPDX-License-Identifier: Apache-2.0
// Jinja lexer: template text to tokens, with jinja2's whitespace control as transformers
// configures it (trim_blocks=True, lstrip_blocks=True).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace polyinfer::inline v0::detail {

/// The largest template accepted.
inline constexpr std::size_t kMaxTemplateBytes = std::size_t{4} << 20;

enum class TokenKind : std::uint8_t {
  kData,           ///< template text outside tags (text holds it, whitespace control applied)
  kVariableBegin,  ///< {{
  kVariableEnd,    ///< }}
  kBlockBegin,     ///< {%
  kBlockEnd,       ///< %}
  kName,           ///< identifier (text)
  kString,         ///< string literal (text holds the decoded value)
  kInteger,        ///< integer literal (integer)
  kFloat,          ///< float literal (number)
  kOperator,       ///< operator or punctuation (text: "+", "//", "(", "==", ...)
  kEnd,            ///< end of the template
};

struct Token {
  TokenKind kind = TokenKind::kEnd;
  std::uint32_t offset = 0;  ///< byte offset in the normalised source
  std::string text;
  std::int64_t integer = 0;
  double number = 0.0;
};

/// The lexed template: tokens plus the normalised source (for line/column of offsets).
struct LexedTemplate {
  std::string source;  ///< newlines normalised to "\n", one trailing newline dropped
  std::vector<Token> tokens;
};

/// Lexes a template as jinja2 does with trim_blocks and lstrip_blocks; comments are dropped
/// and {% raw %} blocks become data. Throws polyinfer::Error(kTemplate) naming line and column.
[[nodiscard]] LexedTemplate lex_template(std::string_view source);

/// "chat template line L col C" for a byte offset of the normalised source.
[[nodiscard]] std::string template_location(std::string_view source, std::size_t offset);

}  // namespace polyinfer::inline v0::detail
