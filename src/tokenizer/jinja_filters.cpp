// SPDX-License-Identifier: Apache-2.0
// Jinja filters (jinja2's built-ins that chat templates use, and transformers' tojson).
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cfenv>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "tokenizer/jinja_json.hpp"
#include "tokenizer/jinja_render.hpp"
#include "tokenizer/jinja_string.hpp"

namespace polyinfer::inline v0::detail {

namespace {

std::string text_of(const Value& value) {
  return to_str(value);
}

Value string_result(Renderer& renderer, std::string text) {
  renderer.charge(text.size() / 64);
  return Value::string(std::move(text));
}

Value list_result(Renderer& renderer, std::vector<Value> items, bool is_tuple = false) {
  renderer.charge(items.size());
  return Value::list(std::move(items), is_tuple);
}

// jinja2's make_attrgetter: "a.b.0" looks up items (with attribute fallback) part by part.
Value attribute_path(const Value& item, const Value& path) {
  if (path.is_int()) return get_item(item, path);
  const std::string& text = to_str(path);
  Value current = item;
  for (const std::string& part : py_split(text, std::string("."), -1, false)) {
    const bool numeric = !part.empty() && std::all_of(part.begin(), part.end(),
                                                      [](char c) { return c >= '0' && c <= '9'; });
    current = numeric && part.size() < 18 ? get_item(current, Value::integer(std::stoll(part)))
                                          : get_item(current, Value::string(part));
  }
  return current;
}

// Lower-cases strings for case-insensitive sorting and comparison.
Value sort_key(const Value& value, bool case_sensitive) {
  if (!case_sensitive && value.is_string()) return Value::string(py_lower(value.as_string()));
  return value;
}

// ---- filters ---------------------------------------------------------------------------------

Value filter_abs(Renderer&, const Value& input, const CallArgs& args) {
  (void)bind_args(args, {}, "abs");
  if (input.is_float()) return Value::floating(std::fabs(input.as_float()));
  if (input.is_int() || input.is_bool()) {
    const std::int64_t value = input.as_integer_like();
    if (value == INT64_MIN) throw JinjaError("integer overflow");
    return Value::integer(value < 0 ? -value : value);
  }
  throw JinjaError(fmt::format("bad operand type for abs(): '{}'", type_name(input)));
}

Value filter_attr(Renderer&, const Value& input, const CallArgs& args) {
  const auto bound = bind_args(args, {"name"}, "attr");
  return get_attribute(input, to_str(bound[0]));
}

Value filter_capitalize(Renderer& renderer, const Value& input, const CallArgs& args) {
  (void)bind_args(args, {}, "capitalize");
  return string_result(renderer, py_capitalize(text_of(input)));
}

Value filter_center(Renderer& renderer, const Value& input, const CallArgs& args) {
  const auto bound = bind_args(args, {"width"}, "center");
  CallArgs method_args;
  method_args.positional.push_back(bound[0].is_undefined() ? Value::integer(80) : bound[0]);
  return call_method(renderer, Value::string(text_of(input)), "center", method_args);
}

Value filter_default(Renderer&, const Value& input, const CallArgs& args) {
  const auto bound = bind_args(args, {"default_value", "boolean"}, "default");
  const bool use_default = input.is_undefined() || (truthy(bound[1]) && !truthy(input));
  if (!use_default) return input;
  return bound[0].is_undefined() ? Value::string(std::string()) : bound[0];
}

Value filter_dictsort(Renderer& renderer, const Value& input, const CallArgs& args) {
  const auto bound = bind_args(args, {"case_sensitive", "by", "reverse"}, "dictsort");
  if (!input.is_dict()) throw JinjaError("dictsort needs a mapping");
  const bool by_value = bound[1].is_string() && bound[1].as_string() == "value";
  const bool case_sensitive = truthy(bound[0]);
  std::vector<Value> pairs;
  for (const auto& [key, value] : input.as_dict().entries()) {
    pairs.push_back(Value::list({Value::string(key), value}, true));
  }
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& a, const Value& b) {
    const std::size_t index = by_value ? 1 : 0;
    return renderer.less_than(sort_key(a.as_list().items[index], case_sensitive),
                              sort_key(b.as_list().items[index], case_sensitive));
  });
  if (truthy(bound[2])) std::reverse(pairs.begin(), pairs.end());
  return list_result(renderer, std::move(pairs));
}

Value filter_escape(Renderer& renderer, const Value& input, const CallArgs& args) {
  (void)bind_args(args, {}, "escape");
  std::string out;
  for (const char c : text_of(input)) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return string_result(renderer, std::move(out));
}

Value filter_first(Renderer&, const Value& input, const CallArgs& args) {
  (void)bind_args(args, {}, "first");
  if (input.is_list()) {
    const auto& items = input.as_list().items;
    if (!items.empty()) return items.front();
  } else {
    const std::vector<Value> items = iterate(input);
    if (!items.empty()) return items.front();
  }
  return Value::undefined("No first item, sequence was empty.");
}

Value filter_last(Renderer&, const Value& input, const CallArgs& args) {
  (void)bind_args(args, {}, "last");
  if (input.is_list()) {
    const auto& items = input.as_list().items;
    if (!items.empty()) return items.back();
  } else {
    const std::vector<Value> items = iterate(input);
    if (!items.empty()) return items.back();
  }
  return Value::undefined("No last item, sequence was empty.");
}

std::optional<double> parse_float(const std::string& text) {
  std::string cleaned;
  for (const char c : py_strip(text, std::nullopt, true, true)) {
    if (c != '_') cleaned.push_back(c);
  }
  if (cleaned.empty()) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(cleaned.c_str(), &end);
  if (end != cleaned.c_str() + cleaned.size()) return std::nullopt;
  return value;
}

Value filter_float(Renderer&, const Value& input, const CallArgs& args) {
  const auto bound = bind_args(args, {"default"}, "float");
  if (input.is_undefined()) throw JinjaError(input.undefined_message());
  if (input.is_number()) return Value::floating(input.as_double());
  if (input.is_string()) {
    if (const auto value = parse_float(input.as_string())) return Value::floating(*value);
  }
  return bound[0].is_undefined() ? Value::floating(0.0) : bound[0];
}

Value filter_int(Renderer&, const Value& input, const CallArgs& args) {
  const auto bound = bind_args(args, {"default", "base"}, "int");
  if (input.is_undefined()) throw JinjaError(input.undefined_message());
  const Value fallback = bound[0].is_undefined() ? Value::integer(0) : bound[0];
  const auto from_double = [&](double value) {
    if (std::isnan(value)) return fallback;
    if (std::isinf(value) || std::fabs(value) >= 9.2e18) throw JinjaError("integer overflow");
    return Value::integer(static_cast<std::int64_t>(value));
  };
  if (input.is_int() || input.is_bool()) return Value::integer(input.as_integer_like());
  if (input.is_float()) return from_double(input.as_float());
  if (input.is_string()) {
    std::string cleaned;
    for (const char c : py_strip(input.as_string(), std::nullopt, true, true)) {
      if (c != '_') cleaned.push_back(c);
    }
    int base = 10;
    if (bound[1].is_int())
      base = static_cast<int>(std::clamp<std::int64_t>(bound[1].as_int(), 2, 36));
    if (!cleaned.empty()) {
      errno = 0;
      char* end = nullptr;
      const long long value = std::strtoll(cleaned.c_str(), &end, base);
      if (end == cleaned.c_str() + cleaned.size() && errno == 0) return Value::integer(value);
    }
    if (const auto value = parse_float(input.as_string())) return from_double(*value);
  }
  return fallback;
}

Value filter_indent(Renderer& renderer, const Value& input, const CallArgs& args) {
  const auto bound = bind_args(args, {"width", "first", "blank"}, "indent");
  std::string indentation;
  if (bound[0].is_string()) {
    indentation = bound[0].as_string();
  } else {
    const std::int64_t width = bound[0].is_undefined() ? 4 : bound[0].as_integer_like();
    indentation.assign(static_cast<std::size_t>(std::clamp<std::int64_t>(width, 0, 1 << 16)), ' ');
  }
  if (!input.is_string()) {
    throw JinjaError(fmt::format("indent needs a string, not '{}'", type_name(input)));
  }
  // jinja2: lines = (s + "\n").splitlines(), joined by "\n" + indentation (blank lines keep
  // none unless blank=True).
  const bool blank = truthy(bound[2]);
  std::string out;
  bool first_line = true;
  for_each_line(input.as_string() + "\n", [&](std::string_view line, std::string_view) {
    if (!first_line) {
      out += "\n";
      if (blank || !line.empty()) out += indentation;
    }
    first_line = false;
    out += line;
    if (out.size() > kMaxStringBytes) throw JinjaError("string too long");
  });
  if (truthy(bound[1])) out = indentation + out;
  return string_result(renderer, std::move(out));
}

Value filter_items(Renderer& renderer, const Value& input, const CallArgs& args) {
  (void)bind_args(args, {}, "items");
  if (input.is_undefined()) return Value::list({});
  if (!input.is_dict()) throw JinjaError("Can only get item pairs from a mapping.");
  std::vector<Value> pairs;
  for (const auto& [key, value] : input.as_dict().entries()) {
    pairs.push_back(Value::list({Value::string(key), value}, true));
  }
  return list_result(renderer, std::move(pairs));
}

Value filter_join(Renderer& renderer, const Value& input, const CallArgs& args) {
  const auto bound = bind_args(args, {"d", "attribute"}, "join");
  const std::string separator = bound[0].is_undefined() ? std::string() : text_of(bound[0]);
  std::string out;
  bool first = true;
  for (const Value& item : iterate(input)) {
    if (!first) out += separator;
    first = false;
    append_str(
        out, bound[1].is_undefined() || bound[1].is_none() ? item : attribute_path(item, bound[1]));
    if (out.size() > kMaxStringBytes) throw JinjaError("string too long");
  }
  return string_result(renderer, std::move(out));
}

Value filter_length(Renderer&, const Value& input, const CallArgs& args) {
  (void)bind_args(args, {}, "length");
  return Value::integer(length(input));
}

Value filter_list(Renderer& renderer, const Value& input, const CallArgs& args) {
  (void)bind_args(args, {}, "list");
  return list_result(renderer, iterate(input));
}

Value filter_lower(Renderer& renderer, const Value& input, const CallArgs& args) {
  (void)bind_args(args, {}, "lower");
  return string_result(renderer, py_lower(text_of(input)));
}

Value filter_upper(Renderer& renderer, const Value& input, const CallArgs& args) {
  (void)bind_args(args, {}, "upper");
  return string_result(renderer, py_upper(text_of(input)));
}

Value filter_title(Renderer& renderer, const Value& input, const CallArgs& args) {
  (void)bind_args(args, {}, "title");
  return string_result(renderer, jinja_title(text_of(input)));
}

Value filter_map(Renderer& renderer, const Value& input, const CallArgs& args) {
  std::vector<Value> out;
  if (!truthy(input)) return Value::list({});  // jinja2 checks `if value:` first
  const Value* attribute = nullptr;
  const Value* fallback = nullptr;
  for (const auto& [key, value] : args.keyword) {
    if (key == "attribute") attribute = &value;
    if (key == "default") fallback = &value;
  }
  if (attribute != nullptr) {
    for (const Value& item : iterate(input)) {
      Value mapped = attribute_path(item, *attribute);
      if (mapped.is_undefined() && fallback != nullptr) mapped = *fallback;
      out.push_back(std::move(mapped));
    }
    return list_result(renderer, std::move(out));
  }
  if (args.positional.empty() || !args.positional[0].is_string()) {
    throw JinjaError("map() needs a filter name or attribute=");
  }
  const FilterFn filter = find_filter(args.positional[0].as_string());
  if (filter == nullptr) {
    throw JinjaError(fmt::format("No filter named '{}'.", args.positional[0].as_string()));
  }
  CallArgs rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.keyword = args.keyword;
  for (const Value& item : iterate(input)) out.push_back(filter(renderer, item, rest));
  return list_result(renderer, std::move(out));
}

Value min_max(Renderer& renderer, const Value& input, const CallArgs& args, bool want_max) {
  const auto bound = bind_args(args, {"case_sensitive", "attribute"}, want_max ? "max" : "min");
  const std::vector<Value> items = iterate(input);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  const bool case_sensitive = truthy(bound[0]);
  const auto key = [&](const Value& item) {
    return sort_key(bound[1].is_undefined() ? item : attribute_path(item, bound[1]),
                    case_sensitive);
  };
  const Value* best = &items[0];
  for (const Value& item : items) {
    if (want_max ? renderer.less_than(key(*best), key(item))
                 : renderer.less_than(key(item), key(*best))) {
      best = &item;
    }
  }
  return *best;
}

Value filter_max(Renderer& renderer, const Value& input, const CallArgs& args) {
  return min_max(renderer, input, args, true);
}
Value filter_min(Renderer& renderer, const Value& input, const CallArgs& args) {
  return min_max(renderer, input, args, false);
}

// select/reject/selectattr/rejectattr share jinja2's select_or_reject.
Value select_or_reject(Renderer& renderer, const Value& input, const CallArgs& args, bool select,
                       bool by_attribute) {
  if (!truthy(input)) return Value::list({});  // jinja2 checks `if value:` first
  std::size_t next = 0;
  Value attribute;
  if (by_attribute) {
    if (args.positional.empty()) throw JinjaError("selectattr/rejectattr need an attribute");
    attribute = args.positional[next++];
  }
  TestFn test = nullptr;
  if (next < args.positional.size()) {
    const Value& name = args.positional[next++];
    if (!name.is_string()) throw JinjaError("the test name must be a string");
    test = find_test(name.as_string());
    if (test == nullptr) throw JinjaError(fmt::format("No test named '{}'.", name.as_string()));
  }
  CallArgs test_args;
  test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(next),
                              args.positional.end());
  test_args.keyword = args.keyword;
  std::vector<Value> out;
  for (const Value& item : iterate(input)) {
    const Value subject = by_attribute ? attribute_path(item, attribute) : item;
    const bool passed = test != nullptr ? test(renderer, subject, test_args) : truthy(subject);
    if (passed == select) out.push_back(item);
  }
  return list_result(renderer, std::move(out));
}

Value filter_select(Renderer& r, const Value& input, const CallArgs& args) {
  return select_or_reject(r, input, args, true, false);
}
Value filter_reject(Renderer& r, const Value& input, const CallArgs& args) {
  return select_or_reject(r, input, args, false, false);
}
Value filter_selectattr(Renderer& r, const Value& input, const CallArgs& args) {
  return select_or_reject(r, input, args, true, true);
}
Value filter_rejectattr(Renderer& r, const Value& input, const CallArgs& args) {
  return select_or_reject(r, input, args, false, true);
}

Value filter_replace(Renderer& renderer, const Value& input, const CallArgs& args) {
  const auto bound = bind_args(args, {"old", "new", "count"}, "replace");
  const std::int64_t count =
      bound[2].is_undefined() || bound[2].is_none() ? -1 : bound[2].as_integer_like();
  std::string out = py_replace(text_of(input), text_of(bound[0]), text_of(bound[1]), count);
  if (out.size() > kMaxStringBytes) throw JinjaError("string too long");
  return string_result(renderer, std::move(out));
}

Value filter_reverse(Renderer& renderer, const Value& input, const CallArgs& args) {
  (void)bind_args(args, {}, "reverse");
  if (input.is_string()) {
    return get_slice(input, Value::none(), Value::none(), Value::integer(-1));
  }
  std::vector<Value> items = iterate(input);
  std::reverse(items.begin(), items.end());
  return list_result(renderer, std::move(items));
}

Value filter_round(Renderer&, const Value& input, const CallArgs& args) {
  const auto bound = bind_args(args, {"precision", "method"}, "round");
  const std::int64_t precision =
      std::clamp<std::int64_t>(bound[0].is_undefined() ? 0 : bound[0].as_integer_like(), -30, 30);
  const std::string method = bound[1].is_undefined() ? "common" : text_of(bound[1]);
  if (method == "common" && (input.is_int() || input.is_bool())) {
    return Value::integer(input.as_integer_like());  // Python's round(int, n) stays an int
  }
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double value = input.as_double() * scale;
  double rounded = 0;
  if (method == "common") {
    rounded = std::nearbyint(value);
  } else if (method == "ceil") {
    rounded = std::ceil(value);
  } else if (method == "floor") {
    rounded = std::floor(value);
  } else {
    throw JinjaError("method must be common, ceil or floor");
  }
  return Value::floating(rounded / scale);
}

Value filter_safe(Renderer&, const Value& input, const CallArgs& args) {
  (void)bind_args(args, {}, "safe");
  return Value::string(to_str(input));  // Markup(value)
}

Value filter_sort(Renderer& renderer, const Value& input, const CallArgs& args) {
  const auto bound = bind_args(args, {"reverse", "case_sensitive", "attribute"}, "sort");
  std::vector<Value> items = iterate(input);
  const bool case_sensitive = truthy(bound[1]);
  const auto key = [&](const Value& item) {
    return sort_key(bound[2].is_undefined() ? item : attribute_path(item, bound[2]),
                    case_sensitive);
  };
  renderer.charge(items.size() * 4);
  std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
    return renderer.less_than(key(a), key(b));
  });
  if (truthy(bound[0])) std::reverse(items.begin(), items.end());
  return list_result(renderer, std::move(items));
}

Value filter_string(Renderer& renderer, const Value& input, const CallArgs& args) {
  (void)bind_args(args, {}, "string");
  return string_result(renderer, text_of(input));
}

Value filter_sum(Renderer&, const Value& input, const CallArgs& args) {
  const auto bound = bind_args(args, {"attribute", "start"}, "sum");
  Value total = bound[1].is_undefined() ? Value::integer(0) : bound[1];
  for (const Value& item : iterate(input)) {
    total = binary_op(BinaryOp::kAdd, total,
                      bound[0].is_undefined() ? item : attribute_path(item, bound[0]));
  }
  return total;
}

Value filter_tojson(Renderer& renderer, const Value& input, const CallArgs& args) {
  // transformers: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
  const auto bound =
      bind_args(args, {"ensure_ascii", "indent", "separators", "sort_keys"}, "tojson");
  JsonOptions options;
  options.ensure_ascii = truthy(bound[0]);
  if (bound[1].is_string()) {
    options.indent = bound[1].as_string();
  } else if (bound[1].is_int() || bound[1].is_bool()) {
    options.indent = std::string(
        static_cast<std::size_t>(std::clamp<std::int64_t>(bound[1].as_integer_like(), 0, 1 << 10)),
        ' ');
  } else if (!bound[1].is_undefined() && !bound[1].is_none()) {
    throw JinjaError("tojson indent must be an integer or a string");
  }
  if (!bound[2].is_undefined() && !bound[2].is_none()) {
    const std::vector<Value> parts = iterate(bound[2]);
    if (parts.size() != 2 || !parts[0].is_string() || !parts[1].is_string()) {
      throw JinjaError("tojson separators must be two strings");
    }
    options.item_separator = parts[0].as_string();
    options.key_separator = parts[1].as_string();
  }
  options.sort_keys = truthy(bound[3]);
  return string_result(renderer, to_json(input, options));
}

Value filter_trim(Renderer& renderer, const Value& input, const CallArgs& args) {
  const auto bound = bind_args(args, {"chars"}, "trim");
  std::optional<std::string> chars;
  if (!bound[0].is_undefined() && !bound[0].is_none()) chars = text_of(bound[0]);
  return string_result(renderer, py_strip(text_of(input), chars, true, true));
}

Value filter_unique(Renderer& renderer, const Value& input, const CallArgs& args) {
  const auto bound = bind_args(args, {"case_sensitive", "attribute"}, "unique");
  const bool case_sensitive = truthy(bound[0]);
  std::vector<Value> out;
  std::vector<Value> seen;
  for (const Value& item : iterate(input)) {
    renderer.charge(seen.size() / 16 + 1);
    const Value key =
        sort_key(bound[1].is_undefined() ? item : attribute_path(item, bound[1]), case_sensitive);
    if (std::any_of(seen.begin(), seen.end(),
                    [&](const Value& s) { return renderer.equal(s, key); })) {
      continue;
    }
    seen.push_back(key);
    out.push_back(item);
  }
  return list_result(renderer, std::move(out));
}

Value filter_wordcount(Renderer&, const Value& input, const CallArgs& args) {
  (void)bind_args(args, {}, "wordcount");
  const std::string text = text_of(input);
  std::int64_t count = 0;
  bool in_word = false;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    const bool word = std::isalnum(byte) != 0 || c == '_' || byte >= 0x80;
    if (word && !in_word) ++count;
    in_word = word;
  }
  return Value::integer(count);
}

struct NamedFilter {
  std::string_view name;
  FilterFn fn;
};
constexpr NamedFilter kFilters[] = {
    {"abs", filter_abs},
    {"attr", filter_attr},
    {"capitalize", filter_capitalize},
    {"center", filter_center},
    {"count", filter_length},
    {"d", filter_default},
    {"default", filter_default},
    {"dictsort", filter_dictsort},
    {"e", filter_escape},
    {"escape", filter_escape},
    {"first", filter_first},
    {"float", filter_float},
    {"forceescape", filter_escape},
    {"indent", filter_indent},
    {"int", filter_int},
    {"items", filter_items},
    {"join", filter_join},
    {"last", filter_last},
    {"length", filter_length},
    {"list", filter_list},
    {"lower", filter_lower},
    {"map", filter_map},
    {"max", filter_max},
    {"min", filter_min},
    {"reject", filter_reject},
    {"rejectattr", filter_rejectattr},
    {"replace", filter_replace},
    {"reverse", filter_reverse},
    {"round", filter_round},
    {"safe", filter_safe},
    {"select", filter_select},
    {"selectattr", filter_selectattr},
    {"sort", filter_sort},
    {"string", filter_string},
    {"sum", filter_sum},
    {"title", filter_title},
    {"tojson", filter_tojson},
    {"trim", filter_trim},
    {"unique", filter_unique},
    {"upper", filter_upper},
    {"wordcount", filter_wordcount},
};

}  // namespace

FilterFn find_filter(std::string_view name) {
  for (const NamedFilter& filter : kFilters) {
    if (filter.name == name) return filter.fn;
  }
  return nullptr;
}

}  // namespace polyinfer::inline v0::detail
