// SPDX-License-Identifier: Apache-2.0
// polyinfer::Error and the version string.
#include "polyinfer/error.hpp"

#include "polyinfer/version.hpp"

namespace polyinfer {
inline namespace v0 {

const char* version() noexcept {
  return POLYINFER_VERSION_STRING;
}

const char* error_code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kIo:
      return "io";
    case ErrorCode::kFormat:
      return "format";
    case ErrorCode::kUnsupported:
      return "unsupported";
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
    case ErrorCode::kTokenizer:
      return "tokenizer";
    case ErrorCode::kTemplate:
      return "template";
    case ErrorCode::kNotFound:
      return "not found";
    case ErrorCode::kInternal:
      return "internal";
    case ErrorCode::kOutOfMemory:
      return "out of memory";
    case ErrorCode::kDevice:
      return "device";
  }
  return "unknown";
}

static std::string compose(const std::string& where, const std::string& message) {
  return where.empty() ? message : where + ": " + message;
}

Error::Error(ErrorCode code, const std::string& where, const std::string& message)
    : std::runtime_error(compose(where, message)), code_(code), where_(where), message_(message) {}

}  // namespace v0
}  // namespace polyinfer
