// SPDX-License-Identifier: Apache-2.0
// HfJson: typed access to tokenizer.json members with errors naming the file and JSON path.
#include "common/fail.hpp"
#include "tokenizer/hf_pipeline.hpp"

namespace polyinfer::inline v0::detail {

namespace {

const char* json_type_name(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::object:
      return "an object";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "an integer";
    case Json::value_t::number_float:
      return "a number";
    default:
      return "binary data";
  }
}

}  // namespace

std::string HfJson::where(const std::string& path) const {
  return path.empty() ? file_ : file_ + ": " + path;
}

std::string HfJson::child(const std::string& path, std::string_view key) {
  std::string out = path;
  if (!out.empty()) out += '.';
  out.append(key);
  return out;
}

std::string HfJson::index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

void HfJson::wrong_type(const std::string& path, std::string_view expected) const {
  fail(ErrorCode::kFormat, where(path), "expected {}", expected);
}

void HfJson::unsupported(const std::string& path, std::string_view what) const {
  fail(ErrorCode::kUnsupported, where(path), "unsupported {}", what);
}

void HfJson::invalid(const std::string& path, const std::string& message) const {
  fail(ErrorCode::kFormat, where(path), "{}", message);
}

const Json* HfJson::member(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

const Json& HfJson::required(const Json& object, std::string_view key,
                             const std::string& path) const {
  if (!object.is_object()) wrong_type(path, "an object");
  const Json* value = member(object, key);
  if (value == nullptr) fail(ErrorCode::kFormat, where(child(path, key)), "missing");
  return *value;
}

bool HfJson::boolean(const Json& object, std::string_view key, const std::string& path,
                     bool fallback) const {
  const Json* value = member(object, key);
  if (value == nullptr) return fallback;
  if (!value->is_boolean()) {
    fail(ErrorCode::kFormat, where(child(path, key)), "expected a boolean, found {}",
         json_type_name(*value));
  }
  return value->get<bool>();
}

int64_t HfJson::integer(const Json& object, std::string_view key, const std::string& path,
                        int64_t fallback) const {
  const Json* value = member(object, key);
  if (value == nullptr) return fallback;
  if (value->is_number_unsigned()) {
    const auto v = value->get<uint64_t>();
    if (v > static_cast<uint64_t>(INT64_MAX)) {
      fail(ErrorCode::kFormat, where(child(path, key)), "integer {} out of range", v);
    }
    return static_cast<int64_t>(v);
  }
  if (!value->is_number_integer()) {
    fail(ErrorCode::kFormat, where(child(path, key)), "expected an integer, found {}",
         json_type_name(*value));
  }
  return value->get<int64_t>();
}

std::string HfJson::string(const Json& object, std::string_view key,
                           const std::string& path) const {
  return as_string(required(object, key, path), child(path, key));
}

std::optional<std::string> HfJson::optional_string(const Json& object, std::string_view key,
                                                   const std::string& path) const {
  const Json* value = member(object, key);
  if (value == nullptr) return std::nullopt;
  return as_string(*value, child(path, key));
}

const std::string& HfJson::as_string(const Json& value, const std::string& path) const {
  if (!value.is_string()) {
    fail(ErrorCode::kFormat, where(path), "expected a string, found {}", json_type_name(value));
  }
  return value.get_ref<const std::string&>();
}

const Json& HfJson::as_array(const Json& value, const std::string& path) const {
  if (!value.is_array()) {
    fail(ErrorCode::kFormat, where(path), "expected an array, found {}", json_type_name(value));
  }
  return value;
}

const Json& HfJson::as_object(const Json& value, const std::string& path) const {
  if (!value.is_object()) {
    fail(ErrorCode::kFormat, where(path), "expected an object, found {}", json_type_name(value));
  }
  return value;
}

std::string HfJson::type(const Json& component, const std::string& path) const {
  as_object(component, path);
  return string(component, "type", path);
}

}  // namespace polyinfer::inline v0::detail
