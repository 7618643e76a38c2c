// SPDX-License-Identifier: Apache-2.0
// polyinfer::Error: the one exception type for loading and configuration failures.
#pragma once

#include <stdexcept>
#include <string>

namespace polyinfer {
inline namespace v0 {

/// What kind of failure an Error reports.
enum class ErrorCode {
  kIo,               ///< a file could not be opened, mapped or read
  kFormat,           ///< a file is malformed (bad magic, truncated, inconsistent sizes)
  kUnsupported,      ///< well-formed but not supported (unknown architecture, tensor type)
  kInvalidArgument,  ///< a caller passed something unusable (bad ids, options, shapes)
  kTokenizer,        ///< tokenizer data is missing or inconsistent
  kTemplate,         ///< a chat template failed to parse or render
  kNotFound,         ///< a named tensor, key or file is absent
  kInternal,         ///< a broken invariant inside polyinfer (a bug)
  kOutOfMemory,      ///< memory ran out (GPU memory for weights or a KV cache budget)
  kDevice,           ///< a device is absent or failed (no GPU, a failed kernel launch)
};

/// Short lowercase name of an error code ("format", "io", …).
[[nodiscard]] const char* error_code_name(ErrorCode code) noexcept;

/// Loading and configuration failures. what() reads "WHERE: MESSAGE", where WHERE names the
/// file, byte offset, tensor or key at fault.
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& where, const std::string& message);
  /// The kind of failure.
  [[nodiscard]] ErrorCode code() const noexcept { return code_; }
  /// The file, offset, tensor or key at fault ("model.gguf@1234", "config.json: hidden_size").
  [[nodiscard]] const std::string& where() const noexcept { return where_; }
  /// The message without the location.
  [[nodiscard]] const std::string& message() const noexcept { return message_; }

 private:
  ErrorCode code_;
  std::string where_;
  std::string message_;
};

}  // namespace v0
}  // namespace polyinfer
