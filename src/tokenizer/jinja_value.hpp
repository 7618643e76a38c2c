// SPDX-License-Identifier: Apache-2.0
// Value: the dynamically typed values of the Jinja interpreter, with Python's semantics.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace polyinfer::inline v0::detail {

struct Node;

/// A failure while rendering (or inside a value operation). The renderer adds the template
/// position and turns it into polyinfer::Error(kTemplate).
class JinjaError : public std::runtime_error {
 public:
  explicit JinjaError(const std::string& message) : std::runtime_error(message) {}
};

/// Limits that keep hostile templates from hanging or exhausting memory.
inline constexpr std::size_t kMaxStringBytes = std::size_t{16} << 20;
inline constexpr std::size_t kMaxListItems = std::size_t{1} << 18;
inline constexpr int kMaxValueDepth = 128;
inline constexpr std::uint64_t kMaxCompareSteps = std::uint64_t{1} << 24;

class Value;
struct ListData;
struct DictData;
struct NamespaceData;
struct FunctionData;

using StringPtr = std::shared_ptr<const std::string>;
using ListPtr = std::shared_ptr<const ListData>;
using DictPtr = std::shared_ptr<const DictData>;
using NamespacePtr = std::shared_ptr<NamespaceData>;
using FunctionPtr = std::shared_ptr<const FunctionData>;

/// Key/value pairs in insertion order (Python dicts keep insertion order).
using Entries = std::vector<std::pair<std::string, Value>>;

/// A Jinja value: undefined, none, bool, int, float, str, list (or tuple), dict, namespace or a
/// callable. Strings, lists and dicts are immutable and shared, so copies are cheap;
/// namespaces are shared and mutable (`{% set ns.found = true %}` must reach the outer scope).
class Value {
 public:
  enum class Kind : std::uint8_t {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kDict,
    kNamespace,
    kFunction,
  };

  /// An undefined value (jinja2's default Undefined); `hint` says what was looked up.
  Value() = default;
  [[nodiscard]] static Value undefined(std::string hint);
  [[nodiscard]] static Value none();
  [[nodiscard]] static Value boolean(bool value);
  [[nodiscard]] static Value integer(std::int64_t value);
  [[nodiscard]] static Value floating(double value);
  [[nodiscard]] static Value string(std::string value);
  [[nodiscard]] static Value string(StringPtr value);
  [[nodiscard]] static Value list(std::vector<Value> items, bool is_tuple = false);
  [[nodiscard]] static Value dict(Entries entries);
  [[nodiscard]] static Value ns(Entries entries);
  [[nodiscard]] static Value function(FunctionData data);

  [[nodiscard]] Kind kind() const noexcept { return kind_; }
  [[nodiscard]] bool is_undefined() const noexcept { return kind_ == Kind::kUndefined; }
  [[nodiscard]] bool is_none() const noexcept { return kind_ == Kind::kNone; }
  [[nodiscard]] bool is_bool() const noexcept { return kind_ == Kind::kBool; }
  [[nodiscard]] bool is_int() const noexcept { return kind_ == Kind::kInt; }
  [[nodiscard]] bool is_float() const noexcept { return kind_ == Kind::kFloat; }
  /// bool, int or float (Python's bool is an int).
  [[nodiscard]] bool is_number() const noexcept {
    return kind_ == Kind::kBool || kind_ == Kind::kInt || kind_ == Kind::kFloat;
  }
  [[nodiscard]] bool is_string() const noexcept { return kind_ == Kind::kString; }
  [[nodiscard]] bool is_list() const noexcept { return kind_ == Kind::kList; }
  [[nodiscard]] bool is_dict() const noexcept { return kind_ == Kind::kDict; }
  [[nodiscard]] bool is_namespace() const noexcept { return kind_ == Kind::kNamespace; }
  [[nodiscard]] bool is_function() const noexcept { return kind_ == Kind::kFunction; }

  [[nodiscard]] bool as_bool() const { return std::get<bool>(data_); }
  [[nodiscard]] std::int64_t as_int() const { return std::get<std::int64_t>(data_); }
  [[nodiscard]] double as_float() const { return std::get<double>(data_); }
  /// bool/int as int64 (Python's int(True) == 1).
  [[nodiscard]] std::int64_t as_integer_like() const {
    return kind_ == Kind::kBool ? (as_bool() ? 1 : 0) : as_int();
  }
  /// Any number as double.
  [[nodiscard]] double as_double() const;
  [[nodiscard]] const std::string& as_string() const { return *std::get<StringPtr>(data_); }
  [[nodiscard]] const StringPtr& string_ptr() const { return std::get<StringPtr>(data_); }
  [[nodiscard]] const ListData& as_list() const { return *std::get<ListPtr>(data_); }
  [[nodiscard]] const DictData& as_dict() const { return *std::get<DictPtr>(data_); }
  [[nodiscard]] NamespaceData& as_namespace() const { return *std::get<NamespacePtr>(data_); }
  [[nodiscard]] const FunctionData& as_function() const { return *std::get<FunctionPtr>(data_); }
  /// For undefined values: what was looked up ("'foo' is undefined").
  [[nodiscard]] std::string undefined_message() const;
  /// Nesting depth of lists and dicts (1 for scalars).
  [[nodiscard]] int depth() const noexcept;
  /// Identity of shared payloads (namespaces, functions), for `is sameas`.
  [[nodiscard]] const void* identity() const noexcept;

 private:
  Kind kind_ = Kind::kUndefined;
  std::variant<std::monostate, bool, std::int64_t, double, StringPtr, ListPtr, DictPtr,
               NamespacePtr, FunctionPtr>
      data_;
};

struct ListData {
  std::vector<Value> items;
  bool is_tuple = false;
  int depth = 1;
};

/// Entries with unique keys; large ones get a hash index so lookups stay O(1).
class EntryMap {
 public:
  EntryMap() = default;
  /// Later duplicates of a key replace the earlier value (Python's dict()).
  explicit EntryMap(Entries entries);
  [[nodiscard]] const Entries& entries() const noexcept { return entries_; }
  [[nodiscard]] const Value* find(std::string_view key) const;
  void set(const std::string& key, Value value);

 private:
  static constexpr std::size_t kIndexFrom = 16;
  void index_entry(std::size_t position);

  Entries entries_;
  std::unordered_map<std::string, std::size_t> index_;
};

struct DictData {
  EntryMap map;
  int depth = 1;
  [[nodiscard]] const Entries& entries() const noexcept { return map.entries(); }
  [[nodiscard]] const Value* find(std::string_view key) const { return map.find(key); }
};

struct NamespaceData {
  EntryMap map;
  [[nodiscard]] const Entries& entries() const noexcept { return map.entries(); }
  [[nodiscard]] const Value* find(std::string_view key) const { return map.find(key); }
  void set(const std::string& key, Value value) { map.set(key, std::move(value)); }
};

/// What a callable value does when called.
enum class FunctionKind : std::uint8_t {
  kGlobal,     ///< range, namespace, dict, raise_exception, strftime_now
  kMethod,     ///< a method bound to `self` ("abc".strip, message.get)
  kMacro,      ///< a {% macro %}
  kLoopCycle,  ///< loop.cycle, bound to the iteration index in `self`
};

struct FunctionData {
  FunctionKind kind = FunctionKind::kGlobal;
  std::string name;
  Value self;
  const Node* macro = nullptr;
};

/// Python's truth value.
[[nodiscard]] bool truthy(const Value& value);
/// Python's type name ("str", "int", "list", "dict", "NoneType", "Undefined").
[[nodiscard]] std::string type_name(const Value& value);
/// Python's `==` (1 == 1.0 == True, deep for lists and dicts; tuples never equal lists).
/// Adds the elements compared to `*steps` (for work accounting) and throws JinjaError past
/// kMaxCompareSteps in one call.
[[nodiscard]] bool equals(const Value& a, const Value& b, std::uint64_t* steps = nullptr);
/// Python's `<`; throws JinjaError where Python raises TypeError.
[[nodiscard]] bool less(const Value& a, const Value& b, std::uint64_t* steps = nullptr);
/// The work an operation over `value` costs: string bytes / 64, list and dict items.
[[nodiscard]] std::uint64_t shallow_cost(const Value& value);

/// Appends Python's str(value) (undefined renders as ""), throwing JinjaError past `limit`.
void append_str(std::string& out, const Value& value, std::size_t limit = kMaxStringBytes);
/// Appends Python's repr(value).
void append_repr(std::string& out, const Value& value, std::size_t limit = kMaxStringBytes);
[[nodiscard]] std::string to_str(const Value& value);
[[nodiscard]] std::string to_repr(const Value& value);
/// Python's repr() of a float ("1.0", "1e-05", "1e+16", "inf").
[[nodiscard]] std::string float_repr(double value);

/// The items Python's iter() yields: list items, dict keys, string characters; undefined
/// yields nothing. Throws JinjaError for values that are not iterable.
[[nodiscard]] std::vector<Value> iterate(const Value& value);
/// Python's len(); undefined has length 0.
[[nodiscard]] std::int64_t length(const Value& value);

/// jinja2's getattr: methods of str/dict/list, namespace attributes, dict items.
[[nodiscard]] Value get_attribute(const Value& object, const std::string& name);
/// jinja2's getitem: obj[key], falling back to attributes for string keys.
[[nodiscard]] Value get_item(const Value& object, const Value& key);
/// obj[start:stop:step] for lists, tuples and strings (none = omitted).
[[nodiscard]] Value get_slice(const Value& object, const Value& start, const Value& stop,
                              const Value& step);

}  // namespace polyinfer::inline v0::detail
