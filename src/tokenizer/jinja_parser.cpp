// SPDX-License-Identifier: Apache-2.0
// Jinja parser: tokens to the syntax tree (expressions and statements) the renderer walks.
#include "tokenizer/jinja_parser.hpp"

#include <array>
#include <initializer_list>

#include "common/fail.hpp"
#include "tokenizer/jinja_lexer.hpp"

namespace polyinfer::inline v0::detail {

namespace {

constexpr std::array kUnsupportedTags = {"block", "extends", "include",    "import", "from",
                                         "call",  "do",      "autoescape", "trans"};

class Parser {
 public:
  explicit Parser(LexedTemplate lexed) : tokens_(std::move(lexed.tokens)) {
    program_ = std::make_unique<Program>();
    program_->source = std::move(lexed.source);
  }

  std::unique_ptr<const Program> run() {
    program_->body = subparse({});
    return std::move(program_);
  }

 private:
  // A block being parsed, for messages about unclosed or mismatched blocks.
  struct OpenBlock {
    std::string tag;
    std::uint32_t offset;
  };

  // Counts nesting; throws past kMaxParseDepth so hostile input cannot overflow the stack.
  class DepthGuard {
   public:
    explicit DepthGuard(Parser& parser) : parser_(parser) {
      if (++parser_.depth_ > kMaxParseDepth) {
        parser_.fail_here("template nested deeper than " + std::to_string(kMaxParseDepth) +
                          " levels");
      }
    }
    ~DepthGuard() { --parser_.depth_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;

   private:
    Parser& parser_;
  };

  [[noreturn]] void fail_at(std::uint32_t offset, const std::string& message) const {
    fail(ErrorCode::kTemplate, template_location(program_->source, offset), "{}", message);
  }
  [[noreturn]] void fail_here(const std::string& message) const {
    fail_at(current().offset, message);
  }

  const Token& current() const { return tokens_[pos_]; }
  const Token& peek(std::size_t ahead = 1) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  const Token& next() {
    const Token& token = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return token;
  }

  static std::string describe(const Token& token) {
    switch (token.kind) {
      case TokenKind::kData:
        return "template text";
      case TokenKind::kVariableBegin:
        return "'{{'";
      case TokenKind::kVariableEnd:
        return "end of print statement '}}'";
      case TokenKind::kBlockBegin:
        return "'{%'";
      case TokenKind::kBlockEnd:
        return "end of statement block '%}'";
      case TokenKind::kName:
        return "'" + token.text + "'";
      case TokenKind::kString:
        return "string literal";
      case TokenKind::kInteger:
      case TokenKind::kFloat:
        return "number '" + token.text + "'";
      case TokenKind::kOperator:
        return "'" + token.text + "'";
      case TokenKind::kEnd:
        return "end of template";
    }
    return "token";
  }

  bool is_op(std::string_view op) const {
    return current().kind == TokenKind::kOperator && current().text == op;
  }
  bool is_name(std::string_view name) const {
    return current().kind == TokenKind::kName && current().text == name;
  }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }
  void expect_op(std::string_view op) {
    if (!skip_op(op)) fail_here("expected '" + std::string(op) + "', got " + describe(current()));
  }
  void expect_kind(TokenKind kind) {
    if (current().kind != kind) {
      Token wanted;
      wanted.kind = kind;
      fail_here("expected " + describe(wanted) + ", got " + describe(current()));
    }
    next();
  }
  std::string expect_name() {
    if (current().kind != TokenKind::kName)
      fail_here("expected a name, got " + describe(current()));
    return next().text;
  }

  ExprPtr make(ExprKind kind, std::uint32_t offset) {
    auto expr = std::make_unique<Expr>();
    expr->kind = kind;
    expr->offset = offset;
    return expr;
  }

  // ---- statements -------------------------------------------------------------------------

  std::vector<NodePtr> subparse(std::initializer_list<std::string_view> end_tags) {
    DepthGuard guard(*this);
    std::vector<NodePtr> body;
    while (true) {
      const Token& token = current();
      if (token.kind == TokenKind::kEnd) {
        if (end_tags.size() != 0) fail_unclosed(end_tags);
        return body;
      }
      if (token.kind == TokenKind::kData) {
        auto node = std::make_unique<Node>();
        node->kind = NodeKind::kText;
        node->offset = token.offset;
        node->text = token.text;
        body.push_back(std::move(node));
        next();
      } else if (token.kind == TokenKind::kVariableBegin) {
        auto node = std::make_unique<Node>();
        node->kind = NodeKind::kOutput;
        node->offset = token.offset;
        next();
        node->expr = parse_tuple(true, false);
        expect_kind(TokenKind::kVariableEnd);
        body.push_back(std::move(node));
      } else if (token.kind == TokenKind::kBlockBegin) {
        next();
        for (const std::string_view tag : end_tags) {
          if (is_name(tag)) return body;
        }
        body.push_back(parse_statement(end_tags));
        expect_kind(TokenKind::kBlockEnd);
      } else {
        fail_here("unexpected " + describe(token));
      }
    }
  }

  [[noreturn]] void fail_unclosed(std::initializer_list<std::string_view> end_tags) const {
    std::string expected;
    for (const std::string_view tag : end_tags) {
      expected += (expected.empty() ? "'" : " or '") + std::string(tag) + "'";
    }
    const OpenBlock& block = open_blocks_.back();
    fail_here("unexpected end of template: the '" + block.tag + "' block opened at " +
              template_location(program_->source, block.offset).substr(14) +
              " is not closed (expected " + expected + ")");
  }

  // Parses the statement body up to one of the end tags; consumes the opening block end.
  std::vector<NodePtr> parse_body(std::initializer_list<std::string_view> end_tags,
                                  bool drop_end_tag) {
    expect_kind(TokenKind::kBlockEnd);
    std::vector<NodePtr> body = subparse(end_tags);
    if (drop_end_tag) next();
    return body;
  }

  NodePtr parse_statement(std::initializer_list<std::string_view> enclosing_end_tags) {
    const Token& token = current();
    if (token.kind != TokenKind::kName) fail_here("expected a tag name, got " + describe(token));
    const std::string tag = token.text;
    const std::uint32_t offset = token.offset;
    auto node = std::make_unique<Node>();
    node->offset = offset;
    if (tag == "if") return parse_if(std::move(node));
    if (tag == "for") return parse_for(std::move(node));
    if (tag == "set") return parse_set(std::move(node));
    if (tag == "macro") return parse_macro(std::move(node));
    if (tag == "with") return parse_with(std::move(node));
    if (tag == "filter") return parse_filter_block(std::move(node));
    if (tag == "generation") {
      next();
      open_blocks_.push_back({tag, offset});
      node->kind = NodeKind::kBody;
      node->body = parse_body({"endgeneration"}, true);
      open_blocks_.pop_back();
      return node;
    }
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail_here("'" + tag + "' outside of a loop");
      next();
      node->kind = tag == "break" ? NodeKind::kBreak : NodeKind::kContinue;
      return node;
    }
    for (const char* unsupported : kUnsupportedTags) {
      if (tag == unsupported) fail_here("the '" + tag + "' tag is not supported in chat templates");
    }
    if (tag.rfind("end", 0) != 0 && tag != "else" && tag != "elif") {
      fail_here("unknown tag '" + tag + "'");
    }
    if (enclosing_end_tags.size() == 0) {
      fail_here("unexpected '" + tag + "': there is no open block to close");
    }
    std::string expected;
    for (const std::string_view end : enclosing_end_tags) {
      expected += (expected.empty() ? "'" : " or '") + std::string(end) + "'";
    }
    fail_here("unexpected '" + tag + "' (expected " + expected + " to close the '" +
              open_blocks_.back().tag + "' block)");
  }

  NodePtr parse_if(NodePtr node) {
    node->kind = NodeKind::kIf;
    open_blocks_.push_back({"if", node->offset});
    next();
    while (true) {
      Branch branch;
      branch.condition = parse_tuple(false, false);
      branch.body = parse_body({"elif", "else", "endif"}, false);
      node->branches.push_back(std::move(branch));
      const std::string tag = next().text;
      if (tag == "elif") continue;
      if (tag == "else") node->else_body = parse_body({"endif"}, true);
      break;
    }
    open_blocks_.pop_back();
    return node;
  }

  NodePtr parse_for(NodePtr node) {
    node->kind = NodeKind::kFor;
    open_blocks_.push_back({"for", node->offset});
    next();
    node->target = parse_target(false);
    if (!skip_name("in")) fail_here("expected 'in', got " + describe(current()));
    node->expr = parse_tuple(false, false, "recursive");
    if (skip_name("if")) node->condition = parse_expression(true);
    if (is_name("recursive")) fail_here("recursive loops are not supported");
    ++loop_depth_;
    node->body = parse_body({"endfor", "else"}, false);
    --loop_depth_;
    if (next().text == "else") node->else_body = parse_body({"endfor"}, true);
    open_blocks_.pop_back();
    return node;
  }

  NodePtr parse_set(NodePtr node) {
    next();
    node->target = parse_target(true);
    if (skip_op("=")) {
      node->kind = NodeKind::kSet;
      node->expr = parse_tuple(true, false);
      return node;
    }
    node->kind = NodeKind::kSetBlock;
    if (!node->target.attribute.empty() || node->target.is_tuple) {
      fail_here("a block 'set' needs a single name");
    }
    if (is_op("|")) node->expr = parse_filters(nullptr);
    open_blocks_.push_back({"set", node->offset});
    node->body = parse_body({"endset"}, true);
    open_blocks_.pop_back();
    return node;
  }

  NodePtr parse_macro(NodePtr node) {
    node->kind = NodeKind::kMacro;
    open_blocks_.push_back({"macro", node->offset});
    next();
    node->text = expect_name();
    expect_op("(");
    while (!is_op(")")) {
      if (!node->params.empty()) expect_op(",");
      if (is_op(")")) break;
      MacroParam param;
      param.name = expect_name();
      if (skip_op("=")) {
        param.default_value = parse_expression(true);
      } else if (!node->params.empty() && node->params.back().default_value) {
        fail_here("a parameter without a default follows one with a default");
      }
      node->params.push_back(std::move(param));
    }
    next();
    const int saved_loop_depth = loop_depth_;
    loop_depth_ = 0;
    node->body = parse_body({"endmacro"}, true);
    loop_depth_ = saved_loop_depth;
    open_blocks_.pop_back();
    return node;
  }

  NodePtr parse_with(NodePtr node) {
    node->kind = NodeKind::kWith;
    open_blocks_.push_back({"with", node->offset});
    next();
    while (current().kind != TokenKind::kBlockEnd) {
      if (!node->assignments.empty()) expect_op(",");
      Assignment assignment;
      assignment.target = parse_target(false);
      expect_op("=");
      assignment.value = parse_expression(true);
      node->assignments.push_back(std::move(assignment));
    }
    node->body = parse_body({"endwith"}, true);
    open_blocks_.pop_back();
    return node;
  }

  NodePtr parse_filter_block(NodePtr node) {
    node->kind = NodeKind::kFilterBlock;
    open_blocks_.push_back({"filter", node->offset});
    next();
    // "{% filter upper|trim %}" reads like "x | upper | trim" without the "x |".
    node->expr = parse_filter_chain(nullptr, false);
    node->body = parse_body({"endfilter"}, true);
    open_blocks_.pop_back();
    return node;
  }

  // A name, a tuple of names, or (with_namespace) name.attribute.
  Target parse_target(bool with_namespace) {
    Target target;
    const bool parenthesised = skip_op("(");
    while (true) {
      target.names.push_back(expect_name());
      if (with_namespace && target.names.size() == 1 && is_op(".")) {
        next();
        target.attribute = expect_name();
        if (parenthesised) expect_op(")");
        return target;
      }
      if (!skip_op(",")) break;
      target.is_tuple = true;
      if (current().kind != TokenKind::kName) break;
    }
    if (parenthesised) {
      expect_op(")");
      target.is_tuple = true;
    }
    return target;
  }

  // ---- expressions ------------------------------------------------------------------------

  bool at_tuple_end(std::string_view extra_end) const {
    const Token& token = current();
    if (token.kind == TokenKind::kVariableEnd || token.kind == TokenKind::kBlockEnd ||
        token.kind == TokenKind::kEnd) {
      return true;
    }
    if (token.kind == TokenKind::kOperator && token.text == ")") return true;
    return !extra_end.empty() && is_name(extra_end);
  }

  ExprPtr parse_tuple(bool with_condexpr, bool explicit_parentheses,
                      std::string_view extra_end = {}) {
    const std::uint32_t offset = current().offset;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (at_tuple_end(extra_end)) break;
      items.push_back(with_condexpr ? parse_expression(true) : parse_or());
      if (is_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parentheses) fail_here("expected an expression, got " + describe(current()));
    }
    ExprPtr tuple = make(ExprKind::kTuple, offset);
    tuple->args = std::move(items);
    return tuple;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard guard(*this);
    ExprPtr expr = parse_or();
    if (!with_condexpr) return expr;
    while (is_name("if")) {
      const std::uint32_t offset = next().offset;
      ExprPtr condition = parse_or();
      ExprPtr otherwise;
      if (skip_name("else")) otherwise = parse_expression(true);
      ExprPtr conditional = make(ExprKind::kConditional, offset);
      conditional->args.push_back(std::move(expr));
      conditional->args.push_back(std::move(condition));
      conditional->args.push_back(std::move(otherwise));
      expr = std::move(conditional);
    }
    return expr;
  }

  ExprPtr binary(ExprKind kind, std::uint32_t offset, ExprPtr left, ExprPtr right) {
    ExprPtr expr = make(kind, offset);
    expr->args.push_back(std::move(left));
    expr->args.push_back(std::move(right));
    return expr;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      const std::uint32_t offset = next().offset;
      left = binary(ExprKind::kOr, offset, std::move(left), parse_and());
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      const std::uint32_t offset = next().offset;
      left = binary(ExprKind::kAnd, offset, std::move(left), parse_not());
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard guard(*this);
      ExprPtr expr = make(ExprKind::kNot, next().offset);
      expr->args.push_back(parse_not());
      return expr;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const std::uint32_t offset = current().offset;
    ExprPtr first = parse_math1();
    ExprPtr compare;
    while (true) {
      CompareOp op;
      if (is_op("==")) {
        op = CompareOp::kEq;
      } else if (is_op("!=")) {
        op = CompareOp::kNe;
      } else if (is_op("<")) {
        op = CompareOp::kLt;
      } else if (is_op("<=")) {
        op = CompareOp::kLe;
      } else if (is_op(">")) {
        op = CompareOp::kGt;
      } else if (is_op(">=")) {
        op = CompareOp::kGe;
      } else if (is_name("in")) {
        op = CompareOp::kIn;
      } else if (is_name("not") && peek().kind == TokenKind::kName && peek().text == "in") {
        next();
        op = CompareOp::kNotIn;
      } else {
        break;
      }
      next();
      if (!compare) {
        compare = make(ExprKind::kCompare, offset);
        compare->args.push_back(std::move(first));
      }
      compare->compare_ops.push_back(op);
      compare->args.push_back(parse_math1());
    }
    return compare ? std::move(compare) : std::move(first);
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& token = next();
      ExprPtr expr = binary(ExprKind::kBinary, token.offset, std::move(left), nullptr);
      expr->op = token.text == "+" ? BinaryOp::kAdd : BinaryOp::kSub;
      expr->args[1] = parse_concat();
      left = std::move(expr);
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (is_op("~")) {
      const std::uint32_t offset = next().offset;
      left = binary(ExprKind::kBinary, offset, std::move(left), parse_math2());
      left->op = BinaryOp::kConcat;
    }
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& token = next();
      BinaryOp op = BinaryOp::kMod;
      if (token.text == "*") op = BinaryOp::kMul;
      if (token.text == "/") op = BinaryOp::kDiv;
      if (token.text == "//") op = BinaryOp::kFloorDiv;
      ExprPtr expr = binary(ExprKind::kBinary, token.offset, std::move(left), nullptr);
      expr->op = op;
      expr->args[1] = parse_pow();
      left = std::move(expr);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      const std::uint32_t offset = next().offset;
      left = binary(ExprKind::kBinary, offset, std::move(left), parse_unary(true));
      left->op = BinaryOp::kPow;
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    ExprPtr expr;
    if (is_op("-") || is_op("+")) {
      const Token& token = next();
      expr = make(token.text == "-" ? ExprKind::kNegate : ExprKind::kPlus, token.offset);
      expr->args.push_back(parse_unary(false));
    } else {
      expr = parse_primary();
    }
    expr = parse_postfix(std::move(expr));
    if (with_filter) expr = parse_filter_chain(std::move(expr), true);
    return expr;
  }

  ExprPtr parse_primary() {
    const Token& token = current();
    switch (token.kind) {
      case TokenKind::kName: {
        next();
        ExprPtr expr = make(ExprKind::kLiteral, token.offset);
        if (token.text == "true" || token.text == "True") {
          expr->literal = Value::boolean(true);
        } else if (token.text == "false" || token.text == "False") {
          expr->literal = Value::boolean(false);
        } else if (token.text == "none" || token.text == "None") {
          expr->literal = Value::none();
        } else {
          expr->kind = ExprKind::kName;
          expr->name = token.text;
        }
        return expr;
      }
      case TokenKind::kString: {
        ExprPtr expr = make(ExprKind::kLiteral, token.offset);
        std::string text;
        while (current().kind == TokenKind::kString) text += next().text;
        expr->literal = Value::string(std::move(text));
        return expr;
      }
      case TokenKind::kInteger:
      case TokenKind::kFloat: {
        next();
        ExprPtr expr = make(ExprKind::kLiteral, token.offset);
        expr->literal = token.kind == TokenKind::kInteger ? Value::integer(token.integer)
                                                          : Value::floating(token.number);
        return expr;
      }
      case TokenKind::kOperator:
        if (token.text == "(") {
          next();
          ExprPtr expr = parse_tuple(true, true);
          expect_op(")");
          return expr;
        }
        if (token.text == "[") return parse_list();
        if (token.text == "{") return parse_dict();
        break;
      default:
        break;
    }
    fail_here("unexpected " + describe(token));
  }

  ExprPtr parse_list() {
    ExprPtr list = make(ExprKind::kList, next().offset);
    while (!is_op("]")) {
      if (!list->args.empty()) expect_op(",");
      if (is_op("]")) break;
      list->args.push_back(parse_expression(true));
    }
    next();
    return list;
  }

  ExprPtr parse_dict() {
    ExprPtr dict = make(ExprKind::kDict, next().offset);
    while (!is_op("}")) {
      if (!dict->args.empty()) expect_op(",");
      if (is_op("}")) break;
      dict->args.push_back(parse_expression(true));
      expect_op(":");
      dict->args.push_back(parse_expression(true));
    }
    next();
    return dict;
  }

  ExprPtr parse_postfix(ExprPtr expr) {
    while (true) {
      if (is_op(".")) {
        const std::uint32_t offset = next().offset;
        if (current().kind == TokenKind::kName) {
          ExprPtr attribute = make(ExprKind::kAttribute, offset);
          attribute->name = next().text;
          attribute->args.push_back(std::move(expr));
          expr = std::move(attribute);
        } else if (current().kind == TokenKind::kInteger) {
          ExprPtr index = make(ExprKind::kLiteral, current().offset);
          index->literal = Value::integer(next().integer);
          expr = binary(ExprKind::kItem, offset, std::move(expr), std::move(index));
        } else {
          fail_here("expected an attribute name after '.', got " + describe(current()));
        }
      } else if (is_op("[")) {
        expr = parse_subscript(std::move(expr));
      } else if (is_op("(")) {
        expr = parse_call(std::move(expr), ExprKind::kCall);
      } else {
        return expr;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr object) {
    DepthGuard guard(*this);
    const std::uint32_t offset = next().offset;
    ExprPtr start;
    if (!is_op(":")) {
      start = parse_expression(true);
      if (is_op(",")) {  // x[a, b]: the key is the tuple (a, b)
        ExprPtr key = make(ExprKind::kTuple, start->offset);
        key->args.push_back(std::move(start));
        while (skip_op(",") && !is_op("]")) key->args.push_back(parse_expression(true));
        expect_op("]");
        return binary(ExprKind::kItem, offset, std::move(object), std::move(key));
      }
      if (!is_op(":")) {
        expect_op("]");
        return binary(ExprKind::kItem, offset, std::move(object), std::move(start));
      }
    }
    next();  // ':'
    ExprPtr slice = make(ExprKind::kSlice, offset);
    slice->args.push_back(std::move(object));
    slice->args.push_back(std::move(start));
    slice->args.push_back(is_op(":") || is_op("]") ? nullptr : parse_expression(true));
    if (skip_op(":")) {
      slice->args.push_back(is_op("]") ? nullptr : parse_expression(true));
    } else {
      slice->args.push_back(nullptr);
    }
    expect_op("]");
    return slice;
  }

  // Parses "(args, name=value)" into `call`, whose args[0] is already set.
  void parse_call_args(Expr& call) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) expect_op(",");
      first = false;
      if (is_op(")")) break;
      if (is_op("*") || is_op("**")) fail_here("*args and **kwargs in calls are not supported");
      if (current().kind == TokenKind::kName && peek().kind == TokenKind::kOperator &&
          peek().text == "=") {
        Keyword keyword;
        keyword.name = next().text;
        next();
        keyword.value = parse_expression(true);
        call.kwargs.push_back(std::move(keyword));
      } else {
        if (!call.kwargs.empty()) fail_here("positional argument follows keyword argument");
        call.args.push_back(parse_expression(true));
      }
    }
    next();
  }

  ExprPtr parse_call(ExprPtr callee, ExprKind kind) {
    DepthGuard guard(*this);
    ExprPtr call = make(kind, callee->offset);
    call->args.push_back(std::move(callee));
    parse_call_args(*call);
    return call;
  }

  ExprPtr parse_filters(ExprPtr input) { return parse_filter_chain(std::move(input), false); }

  // "| name(args)" filters (first one without a leading '|' when input is null in a filter
  // block), "is [not] test args" tests and calls, as jinja2's parse_filter_expr.
  ExprPtr parse_filter_chain(ExprPtr expr, bool with_tests) {
    bool leading = expr == nullptr && !is_op("|");
    while (true) {
      if (leading || is_op("|")) {
        if (!leading) next();
        leading = false;
        const std::uint32_t offset = current().offset;
        std::string name = expect_name();
        while (is_op(".")) {
          next();
          name += "." + expect_name();
        }
        ExprPtr filter = make(ExprKind::kFilter, offset);
        filter->name = name;
        filter->filter = find_filter(name);
        if (filter->filter == nullptr) fail_at(offset, "no filter named '" + name + "'");
        filter->args.push_back(std::move(expr));
        if (is_op("(")) parse_call_args(*filter);
        expr = std::move(filter);
      } else if (with_tests && is_name("is")) {
        expr = parse_test(std::move(expr));
      } else if (with_tests && is_op("(")) {
        expr = parse_call(std::move(expr), ExprKind::kCall);
      } else {
        return expr;
      }
    }
  }

  ExprPtr parse_test(ExprPtr input) {
    const std::uint32_t is_offset = next().offset;
    const bool negated = skip_name("not");
    const std::uint32_t offset = current().offset;
    std::string name = expect_name();
    while (is_op(".")) {
      next();
      name += "." + expect_name();
    }
    ExprPtr test = make(ExprKind::kTest, offset);
    test->name = name;
    test->test = find_test(name);
    if (test->test == nullptr) fail_at(offset, "no test named '" + name + "'");
    test->args.push_back(std::move(input));
    const Token& token = current();
    if (is_op("(")) {
      parse_call_args(*test);
    } else if ((token.kind == TokenKind::kName || token.kind == TokenKind::kString ||
                token.kind == TokenKind::kInteger || token.kind == TokenKind::kFloat ||
                is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail_here("tests cannot be chained with 'is'");
      test->args.push_back(parse_postfix(parse_primary()));
    }
    if (!negated) return test;
    ExprPtr inverted = make(ExprKind::kNot, is_offset);
    inverted->args.push_back(std::move(test));
    return inverted;
  }

  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
  std::unique_ptr<Program> program_;
  std::vector<OpenBlock> open_blocks_;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

std::unique_ptr<const Program> parse_program(std::string_view source) {
  return Parser(lex_template(source)).run();
}

}  // namespace polyinfer::inline v0::detail
