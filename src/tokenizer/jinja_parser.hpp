// SPDX-License-Identifier: Apache-2.0
// Jinja parser: tokens to the syntax tree (expressions and statements) the renderer walks.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/jinja_value.hpp"

namespace polyinfer::inline v0::detail {

class Renderer;

/// Arguments of a filter, test or function call.
struct CallArgs {
  std::vector<Value> positional;
  Entries keyword;
};

/// A filter: `input | name(args)`.
using FilterFn = Value (*)(Renderer& renderer, const Value& input, const CallArgs& args);
/// A test: `input is name(args)`.
using TestFn = bool (*)(Renderer& renderer, const Value& input, const CallArgs& args);

/// The built-in filter or test of that name; nullptr when there is none.
[[nodiscard]] FilterFn find_filter(std::string_view name);
[[nodiscard]] TestFn find_test(std::string_view name);

/// The largest nesting of expressions and blocks the parser accepts.
inline constexpr int kMaxParseDepth = 128;

enum class ExprKind : std::uint8_t {
  kLiteral,      ///< literal
  kName,         ///< name
  kList,         ///< [args...]
  kTuple,        ///< (args...)
  kDict,         ///< {args[0]: args[1], args[2]: args[3], ...}
  kAttribute,    ///< args[0].name
  kItem,         ///< args[0][args[1]]
  kSlice,        ///< args[0][args[1]:args[2]:args[3]] (null = omitted)
  kCall,         ///< args[0](args[1...], kwargs)
  kFilter,       ///< args[0] | name(args[1...], kwargs); args[0] null in {% filter %} blocks
  kTest,         ///< args[0] is name(args[1...], kwargs)
  kNot,          ///< not args[0]
  kNegate,       ///< -args[0]
  kPlus,         ///< +args[0]
  kBinary,       ///< args[0] op args[1]
  kAnd,          ///< args[0] and args[1]
  kOr,           ///< args[0] or args[1]
  kCompare,      ///< args[0] compare_ops[0] args[1] compare_ops[1] args[2] ...
  kConditional,  ///< args[0] if args[1] else args[2] (args[2] null: undefined)
};

enum class BinaryOp : std::uint8_t { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow, kConcat };
enum class CompareOp : std::uint8_t { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Keyword {
  std::string name;
  ExprPtr value;
};

struct Expr {
  ExprKind kind = ExprKind::kLiteral;
  std::uint32_t offset = 0;
  BinaryOp op = BinaryOp::kAdd;
  std::vector<CompareOp> compare_ops;
  Value literal;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<Keyword> kwargs;
  FilterFn filter = nullptr;
  TestFn test = nullptr;
};

enum class NodeKind : std::uint8_t {
  kText,         ///< text
  kOutput,       ///< {{ expr }}
  kIf,           ///< branches, else_body
  kFor,          ///< for target in expr [if condition]: body, else_body
  kSet,          ///< set target = expr
  kSetBlock,     ///< set target [| filters in expr]: body
  kMacro,        ///< macro text(params): body
  kWith,         ///< with assignments: body
  kFilterBlock,  ///< filter expr: body
  kBreak,
  kContinue,
  kBody,  ///< a block rendered as is ({% generation %})
};

/// An assignment target: names (a tuple when is_tuple), or names[0].attribute (namespace).
struct Target {
  std::vector<std::string> names;
  std::string attribute;
  bool is_tuple = false;
};

struct Node;
using NodePtr = std::unique_ptr<Node>;

struct Branch {
  ExprPtr condition;
  std::vector<NodePtr> body;
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;
};

struct Assignment {
  Target target;
  ExprPtr value;
};

struct Node {
  NodeKind kind = NodeKind::kText;
  std::uint32_t offset = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr condition;
  Target target;
  std::vector<Branch> branches;
  std::vector<NodePtr> body;
  std::vector<NodePtr> else_body;
  std::vector<MacroParam> params;
  std::vector<Assignment> assignments;
};

/// A parsed template.
struct Program {
  std::string source;  ///< normalised source, for error locations
  std::vector<NodePtr> body;
};

/// Parses a template; throws polyinfer::Error(kTemplate) with "chat template line L col C".
[[nodiscard]] std::unique_ptr<const Program> parse_program(std::string_view source);

}  // namespace polyinfer::inline v0::detail
