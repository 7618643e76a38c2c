// SPDX-License-Identifier: Apache-2.0
// Renderer expressions: names, literals, operators with Python's semantics, calls, filters.
#include <fmt/format.h>

#include <cmath>

#include "tokenizer/jinja_render.hpp"

namespace polyinfer::inline v0::detail {

namespace {

[[noreturn]] void unsupported(std::string_view op, const Value& left, const Value& right) {
  throw JinjaError(fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", op,
                               type_name(left), type_name(right)));
}

// Applies a __builtin_*_overflow operation, throwing on overflow.
template <typename Op>
std::int64_t checked(Op op, std::int64_t a, std::int64_t b) {
  std::int64_t result = 0;
  if (op(a, b, &result)) throw JinjaError("integer overflow");
  return result;
}

bool add_overflow(std::int64_t a, std::int64_t b, std::int64_t* out) {
  return __builtin_add_overflow(a, b, out);
}
bool sub_overflow(std::int64_t a, std::int64_t b, std::int64_t* out) {
  return __builtin_sub_overflow(a, b, out);
}
bool mul_overflow(std::int64_t a, std::int64_t b, std::int64_t* out) {
  return __builtin_mul_overflow(a, b, out);
}

Value repeat(const Value& sequence, std::int64_t times) {
  if (sequence.is_string()) {
    const std::string& text = sequence.as_string();
    if (times <= 0 || text.empty()) return Value::string(std::string());
    if (static_cast<std::uint64_t>(times) > kMaxStringBytes / text.size()) {
      throw JinjaError(fmt::format("string longer than {} bytes", kMaxStringBytes));
    }
    std::string out;
    out.reserve(text.size() * static_cast<std::size_t>(times));
    for (std::int64_t i = 0; i < times; ++i) out += text;
    return Value::string(std::move(out));
  }
  const ListData& list = sequence.as_list();
  if (times <= 0 || list.items.empty()) return Value::list({}, list.is_tuple);
  if (static_cast<std::uint64_t>(times) > kMaxListItems / list.items.size()) {
    throw JinjaError(fmt::format("list longer than {} items", kMaxListItems));
  }
  std::vector<Value> items;
  items.reserve(list.items.size() * static_cast<std::size_t>(times));
  for (std::int64_t i = 0; i < times; ++i) {
    items.insert(items.end(), list.items.begin(), list.items.end());
  }
  return Value::list(std::move(items), list.is_tuple);
}

bool is_int_like(const Value& value) {
  return value.is_int() || value.is_bool();
}

Value integer_power(std::int64_t base, std::int64_t exponent) {
  std::int64_t result = 1;
  while (exponent > 0) {
    if (exponent & 1) result = checked(mul_overflow, result, base);
    exponent >>= 1;
    if (exponent > 0) base = checked(mul_overflow, base, base);
  }
  return Value::integer(result);
}

}  // namespace

Value binary_op(BinaryOp op, const Value& left, const Value& right) {
  if (op == BinaryOp::kConcat) {
    std::string text;
    append_str(text, left);
    append_str(text, right, kMaxStringBytes);
    return Value::string(std::move(text));
  }
  if (left.is_undefined()) throw JinjaError(left.undefined_message());
  if (right.is_undefined()) throw JinjaError(right.undefined_message());
  const bool numbers = left.is_number() && right.is_number();
  const bool floats = numbers && (left.is_float() || right.is_float());
  switch (op) {
    case BinaryOp::kAdd:
      if (numbers) {
        if (floats) return Value::floating(left.as_double() + right.as_double());
        return Value::integer(
            checked(add_overflow, left.as_integer_like(), right.as_integer_like()));
      }
      if (left.is_string() && right.is_string()) {
        if (left.as_string().size() + right.as_string().size() > kMaxStringBytes) {
          throw JinjaError(fmt::format("string longer than {} bytes", kMaxStringBytes));
        }
        return Value::string(left.as_string() + right.as_string());
      }
      if (left.is_list() && right.is_list() &&
          left.as_list().is_tuple == right.as_list().is_tuple) {
        std::vector<Value> items = left.as_list().items;
        items.insert(items.end(), right.as_list().items.begin(), right.as_list().items.end());
        return Value::list(std::move(items), left.as_list().is_tuple);
      }
      unsupported("+", left, right);
    case BinaryOp::kSub:
      if (!numbers) unsupported("-", left, right);
      if (floats) return Value::floating(left.as_double() - right.as_double());
      return Value::integer(checked(sub_overflow, left.as_integer_like(), right.as_integer_like()));
    case BinaryOp::kMul:
      if (numbers) {
        if (floats) return Value::floating(left.as_double() * right.as_double());
        return Value::integer(
            checked(mul_overflow, left.as_integer_like(), right.as_integer_like()));
      }
      if ((left.is_string() || left.is_list()) && is_int_like(right)) {
        return repeat(left, right.as_integer_like());
      }
      if ((right.is_string() || right.is_list()) && is_int_like(left)) {
        return repeat(right, left.as_integer_like());
      }
      unsupported("*", left, right);
    case BinaryOp::kDiv:
      if (!numbers) unsupported("/", left, right);
      if (right.as_double() == 0.0) throw JinjaError("division by zero");
      return Value::floating(left.as_double() / right.as_double());
    case BinaryOp::kFloorDiv:
      if (!numbers) unsupported("//", left, right);
      if (floats) {
        if (right.as_double() == 0.0) throw JinjaError("float floor division by zero");
        return Value::floating(std::floor(left.as_double() / right.as_double()));
      } else {
        const std::int64_t a = left.as_integer_like();
        const std::int64_t b = right.as_integer_like();
        if (b == 0) throw JinjaError("integer division or modulo by zero");
        if (a == INT64_MIN && b == -1) throw JinjaError("integer overflow");
        std::int64_t quotient = a / b;
        if ((a % b != 0) && ((a < 0) != (b < 0))) --quotient;
        return Value::integer(quotient);
      }
    case BinaryOp::kMod:
      if (left.is_string()) throw JinjaError("string formatting with '%' is not supported");
      if (!numbers) unsupported("%", left, right);
      if (floats) {
        const double b = right.as_double();
        if (b == 0.0) throw JinjaError("float modulo");
        double remainder = std::fmod(left.as_double(), b);
        if (remainder != 0.0 && ((remainder < 0) != (b < 0))) remainder += b;
        if (remainder == 0.0) remainder = std::copysign(0.0, b);
        return Value::floating(remainder);
      } else {
        const std::int64_t a = left.as_integer_like();
        const std::int64_t b = right.as_integer_like();
        if (b == 0) throw JinjaError("integer division or modulo by zero");
        if (b == -1) return Value::integer(0);
        std::int64_t remainder = a % b;
        if (remainder != 0 && ((remainder < 0) != (b < 0))) remainder += b;
        return Value::integer(remainder);
      }
    case BinaryOp::kPow:
      if (!numbers) unsupported("** or pow()", left, right);
      if (floats || right.as_integer_like() < 0) {
        if (left.as_double() == 0.0 && right.as_double() < 0) {
          throw JinjaError("0.0 cannot be raised to a negative power");
        }
        return Value::floating(std::pow(left.as_double(), right.as_double()));
      }
      return integer_power(left.as_integer_like(), right.as_integer_like());
    case BinaryOp::kConcat:
      break;
  }
  return Value();
}

bool contains(const Value& haystack, const Value& needle, std::uint64_t* steps) {
  switch (haystack.kind()) {
    case Value::Kind::kString:
      if (!needle.is_string()) {
        throw JinjaError(fmt::format("'in <string>' requires string as left operand, not {}",
                                     type_name(needle)));
      }
      return haystack.as_string().find(needle.as_string()) != std::string::npos;
    case Value::Kind::kList:
      for (const Value& item : haystack.as_list().items) {
        if (equals(item, needle, steps)) return true;
      }
      return false;
    case Value::Kind::kDict:
      if (needle.is_list() && !needle.as_list().is_tuple)
        throw JinjaError("unhashable type: 'list'");
      if (needle.is_dict()) throw JinjaError("unhashable type: 'dict'");
      return needle.is_string() && haystack.as_dict().find(needle.as_string()) != nullptr;
    case Value::Kind::kUndefined:
      return false;
    default:
      throw JinjaError(fmt::format("argument of type '{}' is not iterable", type_name(haystack)));
  }
}

Value Renderer::lookup(const std::string& name) const {
  for (std::size_t i = frames_.size(); i-- > frame_floor_;) {
    for (const auto& entry : frames_[i]) {
      if (entry.first == name) return entry.second;
    }
  }
  for (const auto& entry : frames_[0]) {
    if (entry.first == name) return entry.second;
  }
  if (is_global_function(name)) {
    FunctionData function;
    function.kind = FunctionKind::kGlobal;
    function.name = name;
    return Value::function(std::move(function));
  }
  return Value::undefined(fmt::format("'{}' is undefined", name));
}

CallArgs Renderer::eval_args(const Expr& expr, std::size_t first) {
  CallArgs args;
  for (std::size_t i = first; i < expr.args.size(); ++i)
    args.positional.push_back(eval(*expr.args[i]));
  for (const Keyword& keyword : expr.kwargs) {
    args.keyword.emplace_back(keyword.name, eval(*keyword.value));
  }
  return args;
}

Value Renderer::call(const Value& callee, const CallArgs& args) {
  if (callee.is_undefined()) throw JinjaError(callee.undefined_message());
  if (!callee.is_function()) {
    throw JinjaError(fmt::format("'{}' object is not callable", type_name(callee)));
  }
  const FunctionData& function = callee.as_function();
  switch (function.kind) {
    case FunctionKind::kGlobal:
      return call_global(*this, function.name, args);
    case FunctionKind::kMethod:
      return call_method(*this, function.self, function.name, args);
    case FunctionKind::kMacro: {
      DepthGuard guard(*this);
      return call_macro(function, args);
    }
    case FunctionKind::kLoopCycle: {
      if (args.positional.empty()) throw JinjaError("no items for cycling given");
      const auto index = static_cast<std::size_t>(function.self.as_int());
      return args.positional[index % args.positional.size()];
    }
  }
  return Value();
}

Value Renderer::eval_call(const Expr& expr) {
  const Value callee = eval(*expr.args[0]);
  const CallArgs args = eval_args(expr, 1);
  at(expr.offset);
  if (callee.is_function()) charge(shallow_cost(callee.as_function().self));
  for (const Value& arg : args.positional) charge(shallow_cost(arg));
  return call(callee, args);
}

bool Renderer::eval_compare(const Expr& expr) {
  Value left = eval(*expr.args[0]);
  for (std::size_t i = 0; i < expr.compare_ops.size(); ++i) {
    Value right = eval(*expr.args[i + 1]);
    at(expr.offset);
    bool result = false;
    switch (expr.compare_ops[i]) {
      case CompareOp::kEq:
        result = equal(left, right);
        break;
      case CompareOp::kNe:
        result = !equal(left, right);
        break;
      case CompareOp::kLt:
        result = less_than(left, right);
        break;
      case CompareOp::kLe:
        result = less_than(left, right) || equal(left, right);
        break;
      case CompareOp::kGt:
        result = less_than(right, left);
        break;
      case CompareOp::kGe:
        result = less_than(right, left) || equal(left, right);
        break;
      case CompareOp::kIn:
      case CompareOp::kNotIn: {
        std::uint64_t steps = shallow_cost(right);
        result = contains(right, left, &steps) == (expr.compare_ops[i] == CompareOp::kIn);
        charge(steps);
        break;
      }
    }
    if (!result) return false;
    left = std::move(right);
  }
  return true;
}

Value Renderer::eval(const Expr& expr) {
  DepthGuard guard(*this);
  charge(1);
  at(expr.offset);
  switch (expr.kind) {
    case ExprKind::kLiteral:
      return expr.literal;
    case ExprKind::kName:
      return lookup(expr.name);
    case ExprKind::kList:
    case ExprKind::kTuple: {
      std::vector<Value> items;
      items.reserve(expr.args.size());
      for (const ExprPtr& item : expr.args) items.push_back(eval(*item));
      return Value::list(std::move(items), expr.kind == ExprKind::kTuple);
    }
    case ExprKind::kDict: {
      Entries entries;
      for (std::size_t i = 0; i + 1 < expr.args.size(); i += 2) {
        const Value key = eval(*expr.args[i]);
        Value value = eval(*expr.args[i + 1]);
        if (!key.is_string()) {
          at(expr.args[i]->offset);
          throw JinjaError(fmt::format("dict keys must be strings, not '{}'", type_name(key)));
        }
        entries.emplace_back(key.as_string(), std::move(value));  // later duplicates win
      }
      return Value::dict(std::move(entries));
    }
    case ExprKind::kAttribute: {
      const Value object = eval(*expr.args[0]);
      at(expr.offset);
      return get_attribute(object, expr.name);
    }
    case ExprKind::kItem: {
      const Value object = eval(*expr.args[0]);
      const Value key = eval(*expr.args[1]);
      at(expr.offset);
      if (object.is_string()) charge(shallow_cost(object));  // code point indexing is O(n)
      return get_item(object, key);
    }
    case ExprKind::kSlice: {
      const Value object = eval(*expr.args[0]);
      Value bounds[3] = {Value::none(), Value::none(), Value::none()};
      for (std::size_t i = 0; i < 3; ++i) {
        if (expr.args[i + 1]) bounds[i] = eval(*expr.args[i + 1]);
      }
      at(expr.offset);
      if (object.is_string()) charge(shallow_cost(object));
      Value result = get_slice(object, bounds[0], bounds[1], bounds[2]);
      if (result.is_list()) charge(result.as_list().items.size());
      return result;
    }
    case ExprKind::kCall:
      return eval_call(expr);
    case ExprKind::kFilter: {
      Value input;
      if (expr.args[0]) {
        input = eval(*expr.args[0]);
      } else if (filter_input_ != nullptr) {
        input = *filter_input_;
      }
      const CallArgs args = eval_args(expr, 1);
      at(expr.offset);
      charge(shallow_cost(input));
      return expr.filter(*this, input, args);
    }
    case ExprKind::kTest: {
      const Value input = eval(*expr.args[0]);
      const CallArgs args = eval_args(expr, 1);
      at(expr.offset);
      charge(shallow_cost(input));
      for (const Value& arg : args.positional) charge(shallow_cost(arg));
      return Value::boolean(expr.test(*this, input, args));
    }
    case ExprKind::kNot:
      return Value::boolean(!truthy(eval(*expr.args[0])));
    case ExprKind::kNegate:
    case ExprKind::kPlus: {
      const Value operand = eval(*expr.args[0]);
      at(expr.offset);
      if (operand.is_undefined()) throw JinjaError(operand.undefined_message());
      if (!operand.is_number()) {
        throw JinjaError(fmt::format("bad operand type for unary {}: '{}'",
                                     expr.kind == ExprKind::kNegate ? '-' : '+',
                                     type_name(operand)));
      }
      if (operand.is_float()) {
        return Value::floating(expr.kind == ExprKind::kNegate ? -operand.as_float()
                                                              : operand.as_float());
      }
      const std::int64_t value = operand.as_integer_like();
      if (expr.kind == ExprKind::kPlus) return Value::integer(value);
      if (value == INT64_MIN) throw JinjaError("integer overflow");
      return Value::integer(-value);
    }
    case ExprKind::kBinary: {
      const Value left = eval(*expr.args[0]);
      const Value right = eval(*expr.args[1]);
      at(expr.offset);
      Value result = binary_op(expr.op, left, right);
      if (result.is_string()) charge(result.as_string().size() / 64);
      if (result.is_list()) charge(result.as_list().items.size());
      return result;
    }
    case ExprKind::kAnd: {
      Value left = eval(*expr.args[0]);
      if (!truthy(left)) return left;
      return eval(*expr.args[1]);
    }
    case ExprKind::kOr: {
      Value left = eval(*expr.args[0]);
      if (truthy(left)) return left;
      return eval(*expr.args[1]);
    }
    case ExprKind::kCompare:
      return Value::boolean(eval_compare(expr));
    case ExprKind::kConditional:
      if (truthy(eval(*expr.args[1]))) return eval(*expr.args[0]);
      if (expr.args[2]) return eval(*expr.args[2]);
      return Value::undefined(
          "the inline if-expression evaluated to false and no else section was defined");
  }
  return Value();
}

}  // namespace polyinfer::inline v0::detail
