// SPDX-License-Identifier: Apache-2.0
// Jinja tests (`value is defined`, `is string`, `is equalto 1`, ...): jinja2's built-ins.
#include <fmt/format.h>

#include "tokenizer/jinja_render.hpp"
#include "tokenizer/jinja_string.hpp"

namespace polyinfer::inline v0::detail {

namespace {

void no_args(const CallArgs& args, std::string_view test) {
  if (!args.positional.empty() || !args.keyword.empty()) {
    throw JinjaError(fmt::format("test '{}' takes no arguments", test));
  }
}

Value test_arg(const CallArgs& args, std::string_view test) {
  const auto bound = bind_args(args, {"other"}, test);
  return bound[0];
}

bool test_defined(Renderer&, const Value& v, const CallArgs& a) {
  no_args(a, "defined");

  return !v.is_undefined();
}
bool test_undefined(Renderer&, const Value& v, const CallArgs& a) {
  no_args(a, "undefined");

  return v.is_undefined();
}
bool test_none(Renderer&, const Value& v, const CallArgs& a) {
  no_args(a, "none");

  return v.is_none();
}
bool test_boolean(Renderer&, const Value& v, const CallArgs& a) {
  no_args(a, "boolean");

  return v.is_bool();
}
bool test_true(Renderer&, const Value& v, const CallArgs& a) {
  no_args(a, "true");

  return v.is_bool() && v.as_bool();
}
bool test_false(Renderer&, const Value& v, const CallArgs& a) {
  no_args(a, "false");

  return v.is_bool() && !v.as_bool();
}
bool test_integer(Renderer&, const Value& v, const CallArgs& a) {
  no_args(a, "integer");

  return v.is_int();
}
bool test_float(Renderer&, const Value& v, const CallArgs& a) {
  no_args(a, "float");

  return v.is_float();
}
bool test_number(Renderer&, const Value& v, const CallArgs& a) {
  no_args(a, "number");

  return v.is_number();
}
bool test_string(Renderer&, const Value& v, const CallArgs& a) {
  no_args(a, "string");

  return v.is_string();
}
bool test_mapping(Renderer&, const Value& v, const CallArgs& a) {
  no_args(a, "mapping");

  return v.is_dict();
}
bool test_iterable(Renderer&, const Value& v, const CallArgs& a) {
  no_args(a, "iterable");
  return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
}
bool test_sequence(Renderer& r, const Value& v, const CallArgs& a) {
  return test_iterable(r, v, a);
}
bool test_callable(Renderer&, const Value& v, const CallArgs& a) {
  no_args(a, "callable");
  return v.is_function() || v.is_undefined();
}
bool test_escaped(Renderer&, const Value&, const CallArgs& a) {
  no_args(a, "escaped");

  return false;
}
bool test_lower(Renderer&, const Value& v, const CallArgs& a) {
  no_args(a, "lower");

  return py_is_class(to_str(v), CharClass::kLower);
}
bool test_upper(Renderer&, const Value& v, const CallArgs& a) {
  no_args(a, "upper");

  return py_is_class(to_str(v), CharClass::kUpper);
}
bool test_odd(Renderer&, const Value& v, const CallArgs& a) {
  no_args(a, "odd");

  return equals(binary_op(BinaryOp::kMod, v, Value::integer(2)), Value::integer(1));
}
bool test_even(Renderer&, const Value& v, const CallArgs& a) {
  no_args(a, "even");

  return equals(binary_op(BinaryOp::kMod, v, Value::integer(2)), Value::integer(0));
}
bool test_divisibleby(Renderer&, const Value& v, const CallArgs& a) {
  return equals(binary_op(BinaryOp::kMod, v, test_arg(a, "divisibleby")), Value::integer(0));
}
bool test_eq(Renderer& r, const Value& v, const CallArgs& a) {
  return r.equal(v, test_arg(a, "eq"));
}
bool test_ne(Renderer& r, const Value& v, const CallArgs& a) {
  return !r.equal(v, test_arg(a, "ne"));
}
bool test_lt(Renderer& r, const Value& v, const CallArgs& a) {
  return r.less_than(v, test_arg(a, "lt"));
}
bool test_gt(Renderer& r, const Value& v, const CallArgs& a) {
  return r.less_than(test_arg(a, "gt"), v);
}
bool test_le(Renderer& r, const Value& v, const CallArgs& a) {
  const Value other = test_arg(a, "le");
  return r.less_than(v, other) || r.equal(v, other);
}
bool test_ge(Renderer& r, const Value& v, const CallArgs& a) {
  const Value other = test_arg(a, "ge");
  return r.less_than(other, v) || r.equal(v, other);
}
bool test_in(Renderer& r, const Value& v, const CallArgs& a) {
  std::uint64_t steps = 0;
  const bool result = contains(test_arg(a, "in"), v, &steps);
  r.charge(steps);
  return result;
}
bool test_sameas(Renderer& r, const Value& v, const CallArgs& a) {
  const Value other = test_arg(a, "sameas");
  if (v.kind() != other.kind()) return false;
  if (v.is_string()) return v.string_ptr() == other.string_ptr();
  if (v.identity() != nullptr) return v.identity() == other.identity();
  return r.equal(v, other);
}
bool test_filter(Renderer&, const Value& v, const CallArgs& a) {
  no_args(a, "filter");

  return v.is_string() && find_filter(v.as_string()) != nullptr;
}
bool test_test(Renderer&, const Value& v, const CallArgs& a) {
  no_args(a, "test");

  return v.is_string() && find_test(v.as_string()) != nullptr;
}

struct NamedTest {
  std::string_view name;
  TestFn fn;
};

constexpr NamedTest kTests[] = {
    {"!=", test_ne},
    {"<", test_lt},
    {"<=", test_le},
    {"==", test_eq},
    {">", test_gt},
    {">=", test_ge},
    {"boolean", test_boolean},
    {"callable", test_callable},
    {"defined", test_defined},
    {"divisibleby", test_divisibleby},
    {"eq", test_eq},
    {"equalto", test_eq},
    {"escaped", test_escaped},
    {"even", test_even},
    {"false", test_false},
    {"filter", test_filter},
    {"float", test_float},
    {"ge", test_ge},
    {"greaterthan", test_gt},
    {"gt", test_gt},
    {"in", test_in},
    {"integer", test_integer},
    {"iterable", test_iterable},
    {"le", test_le},
    {"lessthan", test_lt},
    {"lower", test_lower},
    {"lt", test_lt},
    {"mapping", test_mapping},
    {"ne", test_ne},
    {"none", test_none},
    {"number", test_number},
    {"odd", test_odd},
    {"sameas", test_sameas},
    {"sequence", test_sequence},
    {"string", test_string},
    {"test", test_test},
    {"true", test_true},
    {"undefined", test_undefined},
    {"upper", test_upper},
};

}  // namespace

TestFn find_test(std::string_view name) {
  for (const NamedTest& test : kTests) {
    if (test.name == name) return test.fn;
  }
  return nullptr;
}

}  // namespace polyinfer::inline v0::detail
