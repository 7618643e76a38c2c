// SPDX-License-Identifier: Apache-2.0
// Value: the dynamically typed values of the Jinja interpreter, with Python's semantics.
#include "tokenizer/jinja_value.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>

#include "tokenizer/jinja_string.hpp"

namespace polyinfer::inline v0::detail {

namespace {

int child_depth(const Value& value) {
  return value.depth();
}

void check_depth(int depth) {
  if (depth > kMaxValueDepth) {
    throw JinjaError(fmt::format("value nested deeper than {} levels", kMaxValueDepth));
  }
}

// The names Python's str, dict and list types have as attributes (methods).
constexpr std::array kStrMethods = {
    "capitalize",   "casefold",    "center",    "count",      "encode",       "endswith",
    "expandtabs",   "find",        "format",    "format_map", "index",        "isalnum",
    "isalpha",      "isascii",     "isdecimal", "isdigit",    "isidentifier", "islower",
    "isnumeric",    "isprintable", "isspace",   "istitle",    "isupper",      "join",
    "ljust",        "lower",       "lstrip",    "maketrans",  "partition",    "removeprefix",
    "removesuffix", "replace",     "rfind",     "rindex",     "rjust",        "rpartition",
    "rsplit",       "rstrip",      "split",     "splitlines", "startswith",   "strip",
    "swapcase",     "title",       "translate", "upper",      "zfill"};
constexpr std::array kDictMethods = {"clear", "copy",    "fromkeys",   "get",    "items", "keys",
                                     "pop",   "popitem", "setdefault", "update", "values"};
constexpr std::array kListMethods = {"append", "clear", "copy",   "count",   "extend", "index",
                                     "insert", "pop",   "remove", "reverse", "sort"};

template <std::size_t N>
bool contains_name(const std::array<const char*, N>& names, std::string_view name) {
  return std::any_of(names.begin(), names.end(),
                     [&](const char* candidate) { return name == candidate; });
}

Value bound_method(const Value& self, const std::string& name) {
  FunctionData data;
  data.kind = FunctionKind::kMethod;
  data.name = name;
  data.self = self;
  return Value::function(std::move(data));
}

// jinja2's object_type_repr: "'dict object'", "'None'".
std::string object_repr(const Value& value) {
  if (value.is_none()) return "'None'";
  return fmt::format("'{} object'", type_name(value));
}

// Appends while enforcing the size limit.
class Sink {
 public:
  Sink(std::string& out, std::size_t limit) : out_(out), limit_(limit) {}
  void append(std::string_view text) {
    if (out_.size() + text.size() > limit_) {
      throw JinjaError(fmt::format("string longer than {} bytes", limit_));
    }
    out_.append(text);
  }
  void push(char c) { append(std::string_view(&c, 1)); }

 private:
  std::string& out_;
  std::size_t limit_;
};

void repr_string(Sink& sink, const std::string& text) {
  const bool has_single = text.find('\'') != std::string::npos;
  const bool has_double = text.find('"') != std::string::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out;
  out.push_back(quote);
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t length = 1;
    const char32_t c = decode_utf8(text, pos, &length);
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned>(c));
    } else if (c < 0x80 || (length == 1) || py_isprintable(c)) {
      out.append(text, pos, length);
    } else if (c <= 0xFF) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned>(c));
    } else if (c <= 0xFFFF) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    } else {
      out += fmt::format("\\U{:08x}", static_cast<unsigned>(c));
    }
    pos += length;
    if (out.size() >= 4096) {
      sink.append(out);
      out.clear();
    }
  }
  out.push_back(quote);
  sink.append(out);
}

void repr_value(Sink& sink, const Value& value);

void repr_entries(Sink& sink, const Entries& entries) {
  sink.push('{');
  bool first = true;
  for (const auto& [key, item] : entries) {
    if (!first) sink.append(", ");
    first = false;
    repr_string(sink, key);
    sink.append(": ");
    repr_value(sink, item);
  }
  sink.push('}');
}

void repr_value(Sink& sink, const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined:
      sink.append("Undefined");
      return;
    case Value::Kind::kString:
      repr_string(sink, value.as_string());
      return;
    case Value::Kind::kList: {
      const ListData& list = value.as_list();
      sink.push(list.is_tuple ? '(' : '[');
      for (std::size_t i = 0; i < list.items.size(); ++i) {
        if (i > 0) sink.append(", ");
        repr_value(sink, list.items[i]);
      }
      if (list.is_tuple && list.items.size() == 1) sink.push(',');
      sink.push(list.is_tuple ? ')' : ']');
      return;
    }
    case Value::Kind::kDict:
      repr_entries(sink, value.as_dict().entries());
      return;
    case Value::Kind::kNamespace:
      sink.append("<Namespace ");
      repr_entries(sink, value.as_namespace().entries());
      sink.push('>');
      return;
    case Value::Kind::kFunction:
      sink.append(fmt::format("<function {}>", value.as_function().name));
      return;
    default: {
      std::string text;
      append_str(text, value);
      sink.append(text);
    }
  }
}

// Python's slice.indices(): normalised start/stop for a sequence of `size` items.
std::int64_t slice_bound(const Value& bound, std::int64_t size, std::int64_t step, bool is_start) {
  const std::int64_t lower = step > 0 ? 0 : -1;
  const std::int64_t upper = step > 0 ? size : size - 1;
  if (bound.is_none() || bound.is_undefined()) {
    return is_start ? (step > 0 ? lower : upper) : (step > 0 ? upper : lower);
  }
  if (!bound.is_int() && !bound.is_bool()) {
    throw JinjaError("slice indices must be integers or None");
  }
  std::int64_t index = bound.as_integer_like();
  if (index < 0) return std::max(index + size, lower);
  return std::min(index, upper);
}

}  // namespace

Value Value::undefined(std::string hint) {
  Value value;
  value.data_ = std::make_shared<const std::string>(std::move(hint));
  return value;
}

Value Value::none() {
  Value value;
  value.kind_ = Kind::kNone;
  return value;
}

Value Value::boolean(bool flag) {
  Value value;
  value.kind_ = Kind::kBool;
  value.data_ = flag;
  return value;
}

Value Value::integer(std::int64_t number) {
  Value value;
  value.kind_ = Kind::kInt;
  value.data_ = number;
  return value;
}

Value Value::floating(double number) {
  Value value;
  value.kind_ = Kind::kFloat;
  value.data_ = number;
  return value;
}

Value Value::string(std::string text) {
  if (text.size() > kMaxStringBytes) {
    throw JinjaError(fmt::format("string longer than {} bytes", kMaxStringBytes));
  }
  return string(std::make_shared<const std::string>(std::move(text)));
}

Value Value::string(StringPtr text) {
  Value value;
  value.kind_ = Kind::kString;
  value.data_ = std::move(text);
  return value;
}

Value Value::list(std::vector<Value> items, bool is_tuple) {
  if (items.size() > kMaxListItems) {
    throw JinjaError(fmt::format("list longer than {} items", kMaxListItems));
  }
  auto data = std::make_shared<ListData>();
  int depth = 0;
  for (const Value& item : items) depth = std::max(depth, child_depth(item));
  data->depth = depth + 1;
  check_depth(data->depth);
  data->items = std::move(items);
  data->is_tuple = is_tuple;
  Value value;
  value.kind_ = Kind::kList;
  value.data_ = ListPtr(std::move(data));
  return value;
}

Value Value::dict(Entries entries) {
  if (entries.size() > kMaxListItems) {
    throw JinjaError(fmt::format("dict longer than {} items", kMaxListItems));
  }
  auto data = std::make_shared<DictData>();
  int depth = 0;
  for (const auto& entry : entries) depth = std::max(depth, child_depth(entry.second));
  data->depth = depth + 1;
  check_depth(data->depth);
  data->map = EntryMap(std::move(entries));
  Value value;
  value.kind_ = Kind::kDict;
  value.data_ = DictPtr(std::move(data));
  return value;
}

Value Value::ns(Entries entries) {
  if (entries.size() > kMaxListItems) {
    throw JinjaError(fmt::format("namespace with more than {} attributes", kMaxListItems));
  }
  auto data = std::make_shared<NamespaceData>();
  data->map = EntryMap(std::move(entries));
  Value value;
  value.kind_ = Kind::kNamespace;
  value.data_ = NamespacePtr(std::move(data));
  return value;
}

Value Value::function(FunctionData function_data) {
  Value value;
  value.kind_ = Kind::kFunction;
  value.data_ = std::make_shared<const FunctionData>(std::move(function_data));
  return value;
}

double Value::as_double() const {
  switch (kind_) {
    case Kind::kBool:
      return as_bool() ? 1.0 : 0.0;
    case Kind::kInt:
      return static_cast<double>(as_int());
    case Kind::kFloat:
      return as_float();
    default:
      throw JinjaError(fmt::format("'{}' is not a number", type_name(*this)));
  }
}

std::string Value::undefined_message() const {
  if (const auto* hint = std::get_if<StringPtr>(&data_); hint && *hint && !(*hint)->empty()) {
    return **hint;
  }
  return "value is undefined";
}

int Value::depth() const noexcept {
  if (kind_ == Kind::kList) return as_list().depth;
  if (kind_ == Kind::kDict) return as_dict().depth;
  return 1;
}

const void* Value::identity() const noexcept {
  if (kind_ == Kind::kNamespace) return std::get<NamespacePtr>(data_).get();
  if (kind_ == Kind::kFunction) return std::get<FunctionPtr>(data_).get();
  if (kind_ == Kind::kList) return std::get<ListPtr>(data_).get();
  if (kind_ == Kind::kDict) return std::get<DictPtr>(data_).get();
  return nullptr;
}

EntryMap::EntryMap(Entries entries) {
  entries_.reserve(entries.size());
  for (auto& [key, value] : entries) set(key, std::move(value));
}

const Value* EntryMap::find(std::string_view key) const {
  if (!index_.empty()) {
    const auto found = index_.find(std::string(key));
    return found == index_.end() ? nullptr : &entries_[found->second].second;
  }
  for (const auto& entry : entries_) {
    if (entry.first == key) return &entry.second;
  }
  return nullptr;
}

void EntryMap::set(const std::string& key, Value value) {
  if (Value* existing = const_cast<Value*>(find(key))) {
    *existing = std::move(value);
    return;
  }
  if (entries_.size() >= kMaxListItems) {
    throw JinjaError(fmt::format("more than {} keys", kMaxListItems));
  }
  entries_.emplace_back(key, std::move(value));
  if (!index_.empty()) {
    index_entry(entries_.size() - 1);
  } else if (entries_.size() > kIndexFrom) {
    for (std::size_t i = 0; i < entries_.size(); ++i) index_entry(i);
  }
}

void EntryMap::index_entry(std::size_t position) {
  index_.emplace(entries_[position].first, position);
}

bool truthy(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return false;
    case Value::Kind::kBool:
      return value.as_bool();
    case Value::Kind::kInt:
      return value.as_int() != 0;
    case Value::Kind::kFloat:
      return value.as_float() != 0.0;
    case Value::Kind::kString:
      return !value.as_string().empty();
    case Value::Kind::kList:
      return !value.as_list().items.empty();
    case Value::Kind::kDict:
      return !value.as_dict().entries().empty();
    case Value::Kind::kNamespace:
    case Value::Kind::kFunction:
      return true;
  }
  return false;
}

std::string type_name(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined:
      return "Undefined";
    case Value::Kind::kNone:
      return "NoneType";
    case Value::Kind::kBool:
      return "bool";
    case Value::Kind::kInt:
      return "int";
    case Value::Kind::kFloat:
      return "float";
    case Value::Kind::kString:
      return "str";
    case Value::Kind::kList:
      return value.as_list().is_tuple ? "tuple" : "list";
    case Value::Kind::kDict:
      return "dict";
    case Value::Kind::kNamespace:
      return "Namespace";
    case Value::Kind::kFunction:
      return "function";
  }
  return "object";
}

namespace {

void count_step(std::uint64_t& steps) {
  if (++steps > kMaxCompareSteps) {
    throw JinjaError(fmt::format("comparison of more than {} elements", kMaxCompareSteps));
  }
}

bool equals_counted(const Value& a, const Value& b, std::uint64_t& steps);

bool less_counted(const Value& a, const Value& b, std::uint64_t& steps) {
  count_step(steps);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() < b.as_double();
    return a.as_integer_like() < b.as_integer_like();
  }
  if (a.is_string() && b.is_string()) {
    steps += std::min(a.as_string().size(), b.as_string().size()) / 64;
    return a.as_string() < b.as_string();
  }
  if (a.is_list() && b.is_list() && a.as_list().is_tuple == b.as_list().is_tuple) {
    const auto& x = a.as_list().items;
    const auto& y = b.as_list().items;
    for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!equals_counted(x[i], y[i], steps)) return less_counted(x[i], y[i], steps);
    }
    return x.size() < y.size();
  }
  if (a.is_undefined()) throw JinjaError(a.undefined_message());
  if (b.is_undefined()) throw JinjaError(b.undefined_message());
  throw JinjaError(fmt::format("'<' not supported between instances of '{}' and '{}'", type_name(a),
                               type_name(b)));
}

bool equals_counted(const Value& a, const Value& b, std::uint64_t& steps) {
  count_step(steps);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.as_integer_like() == b.as_integer_like();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kString:
      steps += std::min(a.as_string().size(), b.as_string().size()) / 64;
      return a.as_string() == b.as_string();
    case Value::Kind::kList: {
      const ListData& x = a.as_list();
      const ListData& y = b.as_list();
      if (x.is_tuple != y.is_tuple || x.items.size() != y.items.size()) return false;
      if (&x == &y) return true;
      for (std::size_t i = 0; i < x.items.size(); ++i) {
        if (!equals_counted(x.items[i], y.items[i], steps)) return false;
      }
      return true;
    }
    case Value::Kind::kDict: {
      const DictData& x = a.as_dict();
      const DictData& y = b.as_dict();
      if (x.entries().size() != y.entries().size()) return false;
      if (&x == &y) return true;
      for (const auto& [key, item] : x.entries()) {
        const Value* other = y.find(key);
        if (other == nullptr || !equals_counted(item, *other, steps)) return false;
      }
      return true;
    }
    default:
      return a.identity() == b.identity();
  }
}

}  // namespace

bool equals(const Value& a, const Value& b, std::uint64_t* steps) {
  std::uint64_t count = 0;
  const bool result = equals_counted(a, b, count);
  if (steps != nullptr) *steps += count;
  return result;
}

bool less(const Value& a, const Value& b, std::uint64_t* steps) {
  std::uint64_t count = 0;
  const bool result = less_counted(a, b, count);
  if (steps != nullptr) *steps += count;
  return result;
}

std::uint64_t shallow_cost(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kString:
      return value.as_string().size() / 16;
    case Value::Kind::kList:
      return value.as_list().items.size();
    case Value::Kind::kDict:
      return value.as_dict().entries().size();
    default:
      return 0;
  }
}

std::string float_repr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  std::array<char, 64> buffer{};
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value,
                                    std::chars_format::scientific);
  const std::string_view text(buffer.data(), static_cast<std::size_t>(result.ptr - buffer.data()));
  // text looks like "-1.2345e+17".
  std::string out;
  std::size_t pos = 0;
  if (text[pos] == '-') {
    out.push_back('-');
    ++pos;
  }
  const std::size_t e = text.find('e');
  std::string digits;
  for (std::size_t i = pos; i < e; ++i) {
    if (text[i] != '.') digits.push_back(text[i]);
  }
  int exponent = 0;
  std::from_chars(text.data() + e + (text[e + 1] == '+' ? 2 : 1), text.data() + text.size(),
                  exponent);
  const int decimal_point = exponent + 1;
  const int count = static_cast<int>(digits.size());
  if (decimal_point > -4 && decimal_point <= 16) {
    if (decimal_point <= 0) {
      out += "0." + std::string(static_cast<std::size_t>(-decimal_point), '0') + digits;
    } else if (decimal_point >= count) {
      out += digits + std::string(static_cast<std::size_t>(decimal_point - count), '0') + ".0";
    } else {
      out += digits.substr(0, static_cast<std::size_t>(decimal_point)) + "." +
             digits.substr(static_cast<std::size_t>(decimal_point));
    }
    return out;
  }
  out.push_back(digits[0]);
  if (count > 1) out += "." + digits.substr(1);
  out += fmt::format("e{}{:02d}", exponent < 0 ? '-' : '+', std::abs(exponent));
  return out;
}

void append_str(std::string& out, const Value& value, std::size_t limit) {
  Sink sink(out, limit);
  switch (value.kind()) {
    case Value::Kind::kUndefined:
      return;
    case Value::Kind::kNone:
      sink.append("None");
      return;
    case Value::Kind::kBool:
      sink.append(value.as_bool() ? "True" : "False");
      return;
    case Value::Kind::kInt:
      sink.append(fmt::format("{}", value.as_int()));
      return;
    case Value::Kind::kFloat:
      sink.append(float_repr(value.as_float()));
      return;
    case Value::Kind::kString:
      sink.append(value.as_string());
      return;
    default:
      repr_value(sink, value);
  }
}

void append_repr(std::string& out, const Value& value, std::size_t limit) {
  Sink sink(out, limit);
  repr_value(sink, value);
}

std::string to_str(const Value& value) {
  if (value.is_string()) return value.as_string();
  std::string out;
  append_str(out, value);
  return out;
}

std::string to_repr(const Value& value) {
  std::string out;
  append_repr(out, value);
  return out;
}

std::vector<Value> iterate(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined:
      return {};
    case Value::Kind::kList:
      return value.as_list().items;
    case Value::Kind::kDict: {
      std::vector<Value> keys;
      keys.reserve(value.as_dict().entries().size());
      for (const auto& entry : value.as_dict().entries())
        keys.push_back(Value::string(entry.first));
      return keys;
    }
    case Value::Kind::kString: {
      const std::string& text = value.as_string();
      if (code_point_count(text) > kMaxListItems) {
        throw JinjaError(fmt::format("string longer than {} characters to iterate", kMaxListItems));
      }
      std::vector<Value> characters;
      std::size_t pos = 0;
      while (pos < text.size()) {
        std::size_t length = 1;
        decode_utf8(text, pos, &length);
        characters.push_back(Value::string(text.substr(pos, length)));
        pos += length;
      }
      return characters;
    }
    default:
      throw JinjaError(fmt::format("'{}' object is not iterable", type_name(value)));
  }
}

std::int64_t length(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined:
      return 0;
    case Value::Kind::kString:
      return static_cast<std::int64_t>(code_point_count(value.as_string()));
    case Value::Kind::kList:
      return static_cast<std::int64_t>(value.as_list().items.size());
    case Value::Kind::kDict:
      return static_cast<std::int64_t>(value.as_dict().entries().size());
    default:
      throw JinjaError(fmt::format("object of type '{}' has no len()", type_name(value)));
  }
}

Value get_attribute(const Value& object, const std::string& name) {
  switch (object.kind()) {
    case Value::Kind::kUndefined:
      throw JinjaError(object.undefined_message());
    case Value::Kind::kDict: {
      if (contains_name(kDictMethods, name)) return bound_method(object, name);
      if (const Value* item = object.as_dict().find(name)) return *item;
      break;
    }
    case Value::Kind::kNamespace:
      if (const Value* item = object.as_namespace().find(name)) return *item;
      break;
    case Value::Kind::kString:
      if (contains_name(kStrMethods, name)) return bound_method(object, name);
      break;
    case Value::Kind::kList:
      if (contains_name(kListMethods, name) && !object.as_list().is_tuple) {
        return bound_method(object, name);
      }
      if (object.as_list().is_tuple && (name == "count" || name == "index")) {
        return bound_method(object, name);
      }
      break;
    default:
      break;
  }
  return Value::undefined(fmt::format("{} has no attribute '{}'", object_repr(object), name));
}

Value get_item(const Value& object, const Value& key) {
  if (object.is_undefined()) throw JinjaError(object.undefined_message());
  if (object.is_dict() && key.is_string()) {
    if (const Value* item = object.as_dict().find(key.as_string())) return *item;
  } else if ((object.is_list() || object.is_string()) && (key.is_int() || key.is_bool())) {
    const std::int64_t size = length(object);
    std::int64_t index = key.as_integer_like();
    if (index < 0) index += size;
    if (index >= 0 && index < size) {
      if (object.is_list()) return object.as_list().items[static_cast<std::size_t>(index)];
      const std::string& text = object.as_string();
      std::size_t pos = 0;
      std::size_t length = 1;
      decode_utf8(text, pos, &length);
      for (std::int64_t i = 0; i < index; ++i) {
        pos += length;
        decode_utf8(text, pos, &length);
      }
      return Value::string(text.substr(pos, length));
    }
    return Value::undefined(
        fmt::format("{} has no element {}", object_repr(object), key.as_integer_like()));
  }
  if (key.is_string()) return get_attribute(object, key.as_string());
  return Value::undefined(fmt::format("{} has no element {}", object_repr(object), to_repr(key)));
}

Value get_slice(const Value& object, const Value& start, const Value& stop, const Value& step) {
  if (object.is_undefined()) throw JinjaError(object.undefined_message());
  // jinja2 compiles slices to a plain Python subscript, without getitem's fallbacks.
  if (object.is_dict()) throw JinjaError("unhashable type: 'slice'");
  if (!object.is_list() && !object.is_string()) {
    throw JinjaError(fmt::format("'{}' object is not subscriptable", type_name(object)));
  }
  std::int64_t stride = 1;
  if (!step.is_none() && !step.is_undefined()) {
    if (!step.is_int() && !step.is_bool())
      throw JinjaError("slice indices must be integers or None");
    stride = step.as_integer_like();
    if (stride == 0) throw JinjaError("slice step cannot be zero");
  }
  const std::int64_t size = length(object);
  const std::int64_t first = slice_bound(start, size, stride, true);
  const std::int64_t last = slice_bound(stop, size, stride, false);
  if (object.is_list()) {
    std::vector<Value> items;
    for (std::int64_t i = first; stride > 0 ? i < last : i > last; i += stride) {
      items.push_back(object.as_list().items[static_cast<std::size_t>(i)]);
    }
    return Value::list(std::move(items), object.as_list().is_tuple);
  }
  const std::string& text = object.as_string();
  if (stride == 1) {  // the common text[a:b]: walk to the two byte offsets
    std::size_t pos = 0;
    std::size_t begin = text.size();
    std::size_t end = text.size();
    for (std::int64_t i = 0; pos < text.size(); ++i) {
      if (i == first) begin = pos;
      if (i == last) {
        end = pos;
        break;
      }
      std::size_t length = 1;
      decode_utf8(text, pos, &length);
      pos += length;
    }
    if (first >= last) return Value::string(std::string());
    return Value::string(text.substr(begin, end - begin));
  }
  const std::vector<std::size_t> offsets = code_point_offsets(text);
  std::string out;
  for (std::int64_t i = first; stride > 0 ? i < last : i > last; i += stride) {
    const auto at = static_cast<std::size_t>(i);
    out.append(text, offsets[at], offsets[at + 1] - offsets[at]);
  }
  return Value::string(std::move(out));
}

}  // namespace polyinfer::inline v0::detail
