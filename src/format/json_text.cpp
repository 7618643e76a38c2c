// SPDX-License-Identifier: Apache-2.0
// JSON text → nlohmann::ordered_json with errors that name the file and byte offset.
#include "format/json_text.hpp"

#include "common/fail.hpp"

namespace polyinfer::inline v0::detail {

namespace {

/// Thrown from the parser callback to stop at the nesting limit.
struct TooDeep {
  uint64_t position;
};

}  // namespace

nlohmann::ordered_json parse_json(std::string_view text, const std::string& file,
                                  uint64_t base_offset) {
  using Json = nlohmann::ordered_json;
  const auto limit_depth = [](int depth, Json::parse_event_t event, Json&) {
    if (depth > kMaxJsonDepth &&
        (event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start)) {
      throw TooDeep{0};
    }
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), limit_depth);
  } catch (const Json::parse_error& e) {
    const uint64_t position = e.byte > 0 ? e.byte - 1 : 0;
    fail(ErrorCode::kFormat, file + "@" + std::to_string(base_offset + position),
         "malformed JSON: {}", e.what());
  } catch (const Json::exception& e) {  // out_of_range: a number too large for a double
    fail(ErrorCode::kFormat, file + "@" + std::to_string(base_offset), "malformed JSON: {}",
         e.what());
  } catch (const TooDeep&) {
    fail(ErrorCode::kFormat, file + "@" + std::to_string(base_offset),
         "JSON nested deeper than {} levels", kMaxJsonDepth);
  }
}

const char* json_type_name(const nlohmann::ordered_json& value) noexcept {
  if (value.is_number()) return "number";
  return value.type_name();
}

}  // namespace polyinfer::inline v0::detail
