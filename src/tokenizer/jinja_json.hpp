// SPDX-License-Identifier: Apache-2.0
// JSON for the Jinja interpreter: Python's json.dumps (the `tojson` filter) and JSON to Value.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "tokenizer/jinja_value.hpp"

namespace polyinfer::inline v0::detail {

/// The arguments of Python's json.dumps that transformers' `tojson` passes through.
struct JsonOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;          ///< unset: one line
  std::optional<std::string> item_separator;  ///< default ", " (one line) or "," (indented)
  std::string key_separator = ": ";
  bool sort_keys = false;
};

/// Python's json.dumps(value, ...); throws JinjaError for values JSON cannot hold.
[[nodiscard]] std::string to_json(const Value& value, const JsonOptions& options);

/// A JSON document as a Value (objects keep their key order).
[[nodiscard]] Value value_from_json(const nlohmann::ordered_json& json);

}  // namespace polyinfer::inline v0::detail
