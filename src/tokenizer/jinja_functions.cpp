// SPDX-License-Identifier: Apache-2.0
// Jinja global functions (range, namespace, dict, raise_exception, strftime_now) and the
// methods of str, dict and list that chat templates call.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <optional>

#include "tokenizer/jinja_render.hpp"
#include "tokenizer/jinja_string.hpp"

namespace polyinfer::inline v0::detail {

namespace {

constexpr std::int64_t kMaxRange = 100000;  // jinja2.sandbox.MAX_RANGE

constexpr std::array kGlobalFunctions = {"range", "namespace", "dict", "raise_exception",
                                         "strftime_now"};

const std::string& string_arg(const Value& value, std::string_view what) {
  if (!value.is_string()) {
    throw JinjaError(fmt::format("{} must be a string, not '{}'", what, type_name(value)));
  }
  return value.as_string();
}

std::int64_t int_arg(const Value& value, std::string_view what, std::int64_t fallback) {
  if (value.is_undefined() || value.is_none()) return fallback;
  if (!value.is_int() && !value.is_bool()) {
    throw JinjaError(fmt::format("{} must be an integer, not '{}'", what, type_name(value)));
  }
  return value.as_integer_like();
}

std::optional<std::string> optional_string(const Value& value, std::string_view what) {
  if (value.is_undefined() || value.is_none()) return std::nullopt;
  return string_arg(value, what);
}

Value string_list(std::vector<std::string> parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (std::string& part : parts) items.push_back(Value::string(std::move(part)));
  return Value::list(std::move(items));
}

// Entries from dict(mapping, **kwargs) / namespace(mapping, **kwargs).
Entries mapping_args(const CallArgs& args, std::string_view callee) {
  Entries entries;  // duplicates are resolved by Value::dict / Value::ns (later ones win)
  const auto set = [&](const std::string& key, const Value& value) {
    if (entries.size() >= kMaxListItems) throw JinjaError("too many keys");
    entries.emplace_back(key, value);
  };
  if (args.positional.size() > 1) {
    throw JinjaError(
        fmt::format("{}() expected at most 1 argument, got {}", callee, args.positional.size()));
  }
  if (!args.positional.empty()) {
    const Value& source = args.positional[0];
    if (source.is_dict()) {
      for (const auto& [key, value] : source.as_dict().entries()) set(key, value);
    } else {
      for (const Value& pair : iterate(source)) {
        const std::vector<Value> items = iterate(pair);
        if (items.size() != 2 || !items[0].is_string()) {
          throw JinjaError(fmt::format("{}() needs a mapping or (str, value) pairs", callee));
        }
        set(items[0].as_string(), items[1]);
      }
    }
  }
  for (const auto& [key, value] : args.keyword) set(key, value);
  return entries;
}

Value range_function(const CallArgs& args) {
  if (!args.keyword.empty()) throw JinjaError("range() takes no keyword arguments");
  const std::size_t count = args.positional.size();
  if (count == 0 || count > 3) {
    throw JinjaError(fmt::format("range expected 1 to 3 arguments, got {}", count));
  }
  std::int64_t start = 0;
  std::int64_t stop = 0;
  std::int64_t step = 1;
  if (count == 1) {
    stop = int_arg(args.positional[0], "range() argument", 0);
  } else {
    start = int_arg(args.positional[0], "range() argument", 0);
    stop = int_arg(args.positional[1], "range() argument", 0);
    if (count == 3) step = int_arg(args.positional[2], "range() argument", 1);
  }
  if (step == 0) throw JinjaError("range() arg 3 must not be zero");
  std::vector<Value> items;
  for (std::int64_t i = start; step > 0 ? i < stop : i > stop;) {
    if (static_cast<std::int64_t>(items.size()) >= kMaxRange) {
      throw JinjaError(fmt::format(
          "Range too big. The sandbox blocks ranges larger than MAX_RANGE ({}).", kMaxRange));
    }
    items.push_back(Value::integer(i));
    if (__builtin_add_overflow(i, step, &i)) break;
  }
  return Value::list(std::move(items));
}

Value strftime_now(const CallArgs& args) {
  const std::vector<Value> bound = bind_args(args, {"format"}, "strftime_now");
  const std::string& format = string_arg(bound[0], "strftime_now() format");
  if (format.size() > 256) throw JinjaError("strftime_now() format longer than 256 bytes");
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  std::array<char, 2048> buffer{};
  const std::size_t size = std::strftime(buffer.data(), buffer.size(), format.c_str(), &local);
  return Value::string(std::string(buffer.data(), size));
}

// Code point offsets of text[start:end] with Python's index rules.
std::pair<std::size_t, std::size_t> code_point_window(const std::string& text, const Value& start,
                                                      const Value& end) {
  const auto count = static_cast<std::int64_t>(code_point_count(text));
  const auto clamp = [&](const Value& bound, std::int64_t fallback) {
    std::int64_t index = int_arg(bound, "index", fallback);
    if (index < 0) index = std::max<std::int64_t>(index + count, 0);
    return std::min(index, count);
  };
  const std::int64_t first = clamp(start, 0);
  const std::int64_t last = std::max(first, clamp(end, count));
  return {static_cast<std::size_t>(first), static_cast<std::size_t>(last)};
}

Value string_method(const std::string& text, const std::string& name, const CallArgs& args) {
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const auto bound = bind_args(args, {"chars"}, name);
    return Value::string(py_strip(text, optional_string(bound[0], "strip() chars"),
                                  name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    const auto bound = bind_args(args, {"sep", "maxsplit"}, name);
    const std::optional<std::string> sep = optional_string(bound[0], "split() separator");
    if (sep && sep->empty()) throw JinjaError("empty separator");
    return string_list(py_split(text, sep, int_arg(bound[1], "maxsplit", -1), name == "rsplit"));
  }
  if (name == "splitlines") {
    const auto bound = bind_args(args, {"keepends"}, name);
    return string_list(py_splitlines(text, truthy(bound[0])));
  }
  if (name == "startswith" || name == "endswith") {
    const auto bound = bind_args(args, {"prefix", "start", "end"}, name);
    const auto [first, last] = code_point_window(text, bound[1], bound[2]);
    const std::vector<std::size_t> offsets = code_point_offsets(text);
    const std::string_view window(text.data() + offsets[first], offsets[last] - offsets[first]);
    std::vector<Value> candidates;
    if (bound[0].is_list() && bound[0].as_list().is_tuple) {
      candidates = bound[0].as_list().items;
    } else if (bound[0].is_string()) {
      candidates.push_back(bound[0]);
    } else {
      throw JinjaError(fmt::format("{} first arg must be str or a tuple of str, not {}", name,
                                   type_name(bound[0])));
    }
    for (const Value& candidate : candidates) {
      const std::string& affix = string_arg(candidate, name + "() argument");
      const bool match = name == "startswith"
                             ? window.substr(0, affix.size()) == affix
                             : window.size() >= affix.size() &&
                                   window.substr(window.size() - affix.size()) == affix;
      if (match) return Value::boolean(true);
    }
    return Value::boolean(false);
  }
  if (name == "upper") return Value::string(py_upper(text));
  if (name == "lower" || name == "casefold") return Value::string(py_lower(text));
  if (name == "title") return Value::string(py_title(text));
  if (name == "capitalize") return Value::string(py_capitalize(text));
  if (name == "swapcase") return Value::string(py_swapcase(text));
  if (name == "replace") {
    const auto bound = bind_args(args, {"old", "new", "count"}, name);
    std::string out =
        py_replace(text, string_arg(bound[0], "replace() old"),
                   string_arg(bound[1], "replace() new"), int_arg(bound[2], "replace() count", -1));
    return Value::string(std::move(out));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    const auto bound = bind_args(args, {"sub", "start", "end"}, name);
    const std::string& sub = string_arg(bound[0], name + "() argument");
    const auto [first, last] = code_point_window(text, bound[1], bound[2]);
    const std::vector<std::size_t> offsets = code_point_offsets(text);
    const std::string_view window(text.data() + offsets[first], offsets[last] - offsets[first]);
    if (name == "count") {
      if (sub.empty()) return Value::integer(static_cast<std::int64_t>(last - first + 1));
      std::int64_t count = 0;
      for (std::size_t at = window.find(sub); at != std::string_view::npos;
           at = window.find(sub, at + sub.size())) {
        ++count;
      }
      return Value::integer(count);
    }
    const bool reverse = name == "rfind" || name == "rindex";
    const std::size_t at = reverse ? window.rfind(sub) : window.find(sub);
    if (at == std::string_view::npos) {
      if (name == "index" || name == "rindex") throw JinjaError("substring not found");
      return Value::integer(-1);
    }
    return Value::integer(
        static_cast<std::int64_t>(first + code_point_count(window.substr(0, at))));
  }
  if (name == "join") {
    const auto bound = bind_args(args, {"iterable"}, name);
    std::string out;
    std::size_t index = 0;
    for (const Value& item : iterate(bound[0])) {
      if (!item.is_string()) {
        throw JinjaError(fmt::format("sequence item {}: expected str instance, {} found", index,
                                     type_name(item)));
      }
      if (index++ > 0) out += text;
      out += item.as_string();
      if (out.size() > kMaxStringBytes) throw JinjaError("string too long");
    }
    return Value::string(std::move(out));
  }
  if (name == "isdigit" || name == "isdecimal" || name == "isnumeric") {
    return Value::boolean(py_is_class(text, CharClass::kDigit));
  }
  if (name == "isalpha") return Value::boolean(py_is_class(text, CharClass::kAlpha));
  if (name == "isalnum") return Value::boolean(py_is_class(text, CharClass::kAlnum));
  if (name == "isspace") return Value::boolean(py_is_class(text, CharClass::kSpace));
  if (name == "islower") return Value::boolean(py_is_class(text, CharClass::kLower));
  if (name == "isupper") return Value::boolean(py_is_class(text, CharClass::kUpper));
  if (name == "isascii") {
    return Value::boolean(std::all_of(text.begin(), text.end(),
                                      [](char c) { return static_cast<unsigned char>(c) < 0x80; }));
  }
  if (name == "removeprefix" || name == "removesuffix") {
    const auto bound = bind_args(args, {"affix"}, name);
    const std::string& affix = string_arg(bound[0], name + "() argument");
    if (name == "removeprefix" && text.compare(0, affix.size(), affix) == 0) {
      return Value::string(text.substr(affix.size()));
    }
    if (name == "removesuffix" && !affix.empty() && text.size() >= affix.size() &&
        text.compare(text.size() - affix.size(), affix.size(), affix) == 0) {
      return Value::string(text.substr(0, text.size() - affix.size()));
    }
    return Value::string(text);
  }
  if (name == "partition" || name == "rpartition") {
    const auto bound = bind_args(args, {"sep"}, name);
    const std::string& sep = string_arg(bound[0], name + "() separator");
    if (sep.empty()) throw JinjaError("empty separator");
    const std::size_t at = name == "partition" ? text.find(sep) : text.rfind(sep);
    std::vector<Value> parts;
    if (at == std::string::npos) {
      const Value empty = Value::string(std::string());
      parts = name == "partition" ? std::vector<Value>{Value::string(text), empty, empty}
                                  : std::vector<Value>{empty, empty, Value::string(text)};
    } else {
      parts = {Value::string(text.substr(0, at)), Value::string(sep),
               Value::string(text.substr(at + sep.size()))};
    }
    return Value::list(std::move(parts), true);
  }
  if (name == "center" || name == "ljust" || name == "rjust" || name == "zfill") {
    const auto bound = bind_args(args, {"width", "fillchar"}, name);
    const std::int64_t width = std::min<std::int64_t>(int_arg(bound[0], "width", 0), 1 << 20);
    std::string fill = name == "zfill" ? "0" : " ";
    if (name != "zfill" && !bound[1].is_undefined()) {
      fill = string_arg(bound[1], "fillchar");
      if (code_point_count(fill) != 1) {
        throw JinjaError("The fill character must be exactly one character long");
      }
    }
    const auto size = static_cast<std::int64_t>(code_point_count(text));
    if (width <= size) return Value::string(text);
    const std::int64_t padding = width - size;
    std::int64_t left = 0;
    if (name == "rjust" || name == "zfill") left = padding;
    if (name == "center") left = padding / 2 + (padding & width & 1);
    std::string out;
    for (std::int64_t i = 0; i < left; ++i) out += fill;
    out += text;
    for (std::int64_t i = left; i < padding; ++i) out += fill;
    return Value::string(std::move(out));
  }
  throw JinjaError(fmt::format("str.{}() is not supported", name));
}

Value dict_method(const Value& self, const std::string& name, const CallArgs& args) {
  const DictData& dict = self.as_dict();
  if (name == "get") {
    const auto bound = bind_args(args, {"key", "default"}, name);
    if (bound[0].is_string()) {
      if (const Value* item = dict.find(bound[0].as_string())) return *item;
    }
    return bound[1].is_undefined() ? Value::none() : bound[1];
  }
  (void)bind_args(args, {}, name);
  if (name == "items") {
    std::vector<Value> items;
    items.reserve(dict.entries().size());
    for (const auto& [key, value] : dict.entries()) {
      items.push_back(Value::list({Value::string(key), value}, true));
    }
    return Value::list(std::move(items));
  }
  if (name == "keys" || name == "values") {
    std::vector<Value> items;
    items.reserve(dict.entries().size());
    for (const auto& [key, value] : dict.entries()) {
      items.push_back(name == "keys" ? Value::string(key) : value);
    }
    return Value::list(std::move(items));
  }
  if (name == "copy") return self;
  throw JinjaError(fmt::format("access to attribute '{}' of 'dict' object is unsafe.", name));
}

Value list_method(Renderer& renderer, const Value& self, const std::string& name,
                  const CallArgs& args) {
  const ListData& list = self.as_list();
  if (name == "count" || name == "index") {
    const auto bound = bind_args(args, {"value"}, name);
    std::int64_t count = 0;
    for (std::size_t i = 0; i < list.items.size(); ++i) {
      if (!renderer.equal(list.items[i], bound[0])) continue;
      if (name == "index") return Value::integer(static_cast<std::int64_t>(i));
      ++count;
    }
    if (name == "index") throw JinjaError(fmt::format("{} is not in list", to_repr(bound[0])));
    return Value::integer(count);
  }
  if (name == "copy") return self;
  throw JinjaError(
      fmt::format("access to attribute '{}' of '{}' object is unsafe.", name, type_name(self)));
}

}  // namespace

std::vector<Value> bind_args(const CallArgs& args, std::initializer_list<std::string_view> params,
                             std::string_view callee) {
  std::vector<Value> bound(params.size());
  if (args.positional.size() > params.size()) {
    throw JinjaError(fmt::format("{}() takes at most {} argument(s) ({} given)", callee,
                                 params.size(), args.positional.size()));
  }
  for (std::size_t i = 0; i < args.positional.size(); ++i) bound[i] = args.positional[i];
  for (const auto& [name, value] : args.keyword) {
    std::size_t index = 0;
    bool found = false;
    for (const std::string_view param : params) {
      if (param == name) {
        found = true;
        break;
      }
      ++index;
    }
    if (!found) {
      throw JinjaError(fmt::format("{}() got an unexpected keyword argument '{}'", callee, name));
    }
    if (index < args.positional.size()) {
      throw JinjaError(fmt::format("{}() got multiple values for argument '{}'", callee, name));
    }
    bound[index] = value;
  }
  return bound;
}

bool is_global_function(std::string_view name) {
  return std::any_of(kGlobalFunctions.begin(), kGlobalFunctions.end(),
                     [&](const char* candidate) { return name == candidate; });
}

Value call_global(Renderer& renderer, const std::string& name, const CallArgs& args) {
  if (name == "range") {
    Value result = range_function(args);
    renderer.charge(result.as_list().items.size());
    return result;
  }
  if (name == "namespace") return Value::ns(mapping_args(args, name));
  if (name == "dict") return Value::dict(mapping_args(args, name));
  if (name == "raise_exception") {
    const std::vector<Value> bound = bind_args(args, {"message"}, name);
    throw JinjaError(to_str(bound[0]));
  }
  if (name == "strftime_now") return strftime_now(args);
  throw JinjaError(fmt::format("'{}' is undefined", name));
}

Value call_method(Renderer& renderer, const Value& self, const std::string& name,
                  const CallArgs& args) {
  Value result;
  if (self.is_string()) {
    result = string_method(self.as_string(), name, args);
  } else if (self.is_dict()) {
    result = dict_method(self, name, args);
  } else if (self.is_list()) {
    result = list_method(renderer, self, name, args);
  } else {
    throw JinjaError(fmt::format("'{}' object has no method '{}'", type_name(self), name));
  }
  if (result.is_string()) renderer.charge(result.as_string().size() / 64);
  if (result.is_list()) renderer.charge(result.as_list().items.size());
  return result;
}

}  // namespace polyinfer::inline v0::detail
