// SPDX-License-Identifier: Apache-2.0
// JSON for the Jinja interpreter: Python's json.dumps (the `tojson` filter) and JSON to Value.
#include "tokenizer/jinja_json.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "tokenizer/jinja_string.hpp"

namespace polyinfer::inline v0::detail {

namespace {

class JsonWriter {
 public:
  explicit JsonWriter(const JsonOptions& options)
      : options_(options),
        item_separator_(options.item_separator ? *options.item_separator
                                               : (options.indent ? "," : ", ")) {}

  void write(const Value& value, int level) {
    switch (value.kind()) {
      case Value::Kind::kNone:
        append("null");
        return;
      case Value::Kind::kBool:
        append(value.as_bool() ? "true" : "false");
        return;
      case Value::Kind::kInt:
        append(fmt::format("{}", value.as_int()));
        return;
      case Value::Kind::kFloat:
        write_float(value.as_float());
        return;
      case Value::Kind::kString:
        write_string(value.as_string());
        return;
      case Value::Kind::kList: {
        const auto& items = value.as_list().items;
        if (items.empty()) {
          append("[]");
          return;
        }
        append("[");
        for (std::size_t i = 0; i < items.size(); ++i) {
          if (i > 0) append(item_separator_);
          newline(level + 1);
          write(items[i], level + 1);
        }
        newline(level);
        append("]");
        return;
      }
      case Value::Kind::kDict: {
        const Entries& entries = value.as_dict().entries();
        if (entries.empty()) {
          append("{}");
          return;
        }
        std::vector<const std::pair<std::string, Value>*> order;
        order.reserve(entries.size());
        for (const auto& entry : entries) order.push_back(&entry);
        if (options_.sort_keys) {
          std::stable_sort(order.begin(), order.end(),
                           [](const auto* a, const auto* b) { return a->first < b->first; });
        }
        append("{");
        for (std::size_t i = 0; i < order.size(); ++i) {
          if (i > 0) append(item_separator_);
          newline(level + 1);
          write_string(order[i]->first);
          append(options_.key_separator);
          write(order[i]->second, level + 1);
        }
        newline(level);
        append("}");
        return;
      }
      default:
        throw JinjaError(
            fmt::format("Object of type {} is not JSON serializable", type_name(value)));
    }
  }

  std::string take() { return std::move(out_); }

 private:
  void append(std::string_view text) {
    if (out_.size() + text.size() > kMaxStringBytes) {
      throw JinjaError(fmt::format("JSON text longer than {} bytes", kMaxStringBytes));
    }
    out_.append(text);
  }

  void newline(int level) {
    if (!options_.indent) return;
    append("\n");
    for (int i = 0; i < level; ++i) append(*options_.indent);
  }

  void write_float(double number) {
    if (std::isnan(number)) {
      append("NaN");
    } else if (std::isinf(number)) {
      append(number < 0 ? "-Infinity" : "Infinity");
    } else {
      append(float_repr(number));
    }
  }

  void write_string(const std::string& text) {
    std::string out = "\"";
    std::size_t pos = 0;
    while (pos < text.size()) {
      std::size_t length = 1;
      const char32_t c = decode_utf8(text, pos, &length);
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        default:
          if (c < 0x20 || (options_.ensure_ascii && c == 0x7F)) {
            out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
          } else if (c < 0x80 || !options_.ensure_ascii) {
            out.append(text, pos, length);
          } else if (c < 0x10000) {
            out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
          } else {
            const char32_t v = c - 0x10000;
            out += fmt::format("\\u{:04x}\\u{:04x}", static_cast<unsigned>(0xD800 + (v >> 10)),
                               static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
          }
      }
      pos += length;
      if (out.size() >= 4096) {
        append(out);
        out.clear();
      }
    }
    out += "\"";
    append(out);
  }

  const JsonOptions& options_;
  std::string item_separator_;
  std::string out_;
};

}  // namespace

std::string to_json(const Value& value, const JsonOptions& options) {
  JsonWriter writer(options);
  writer.write(value, 0);
  return writer.take();
}

Value value_from_json(const nlohmann::ordered_json& json) {
  switch (json.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value::none();
    case nlohmann::ordered_json::value_t::boolean:
      return Value::boolean(json.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value::integer(json.get<std::int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const auto number = json.get<std::uint64_t>();
      if (number > static_cast<std::uint64_t>(INT64_MAX)) {
        return Value::floating(static_cast<double>(number));
      }
      return Value::integer(static_cast<std::int64_t>(number));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Value::floating(json.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value::string(json.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(json.size());
      for (const auto& item : json) items.push_back(value_from_json(item));
      return Value::list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Entries entries;
      entries.reserve(json.size());
      for (const auto& [key, item] : json.items()) entries.emplace_back(key, value_from_json(item));
      return Value::dict(std::move(entries));
    }
    default:
      throw JinjaError("unsupported JSON value");
  }
}

}  // namespace polyinfer::inline v0::detail
