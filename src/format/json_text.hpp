// SPDX-License-Identifier: Apache-2.0
// JSON text → nlohmann::ordered_json with errors that name the file and byte offset.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace polyinfer::inline v0::detail {

/// Deepest nesting accepted in JSON files (headers and configs are shallow; this keeps hostile
/// input from exhausting the stack).
inline constexpr int kMaxJsonDepth = 64;

/// Parses `text`; throws Error(kFormat) with where "<file>@<offset>" (offset = `base_offset` +
/// position in `text`) for malformed or too deeply nested JSON.
[[nodiscard]] nlohmann::ordered_json parse_json(std::string_view text, const std::string& file,
                                                uint64_t base_offset = 0);

/// The JSON type name for messages ("string", "number", "object", …).
[[nodiscard]] const char* json_type_name(const nlohmann::ordered_json& value) noexcept;

}  // namespace polyinfer::inline v0::detail
