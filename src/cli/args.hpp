// SPDX-License-Identifier: Apache-2.0
// Args: the polyinfer command's argument reader (flags, options with values, positionals).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace polyinfer::cli {

/// Bad command-line usage: the command exits with status 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Arguments after the command name. Options are "--name value" or "--name=value"; flags are
/// declared so that they take no value; anything else is positional.
class Args {
 public:
  Args(std::vector<std::string> argv, std::vector<std::string> flags,
       std::vector<std::string> options);

  [[nodiscard]] bool flag(std::string_view name) const;
  [[nodiscard]] std::optional<std::string> option(std::string_view name) const;
  [[nodiscard]] std::string required(std::string_view name) const;
  [[nodiscard]] const std::vector<std::string>& positionals() const noexcept {
    return positionals_;
  }
  /// The single positional MODEL argument (UsageError when absent).
  [[nodiscard]] const std::string& model() const;
  /// An integer option in [min, max] (UsageError when malformed or out of range).
  [[nodiscard]] std::optional<long long> integer(std::string_view name, long long min,
                                                 long long max) const;

 private:
  std::vector<std::pair<std::string, std::string>> values_;
  std::vector<std::string> set_flags_;
  std::vector<std::string> positionals_;
};

/// Parses one integer token id list element ("42"); UsageError naming `what` otherwise.
[[nodiscard]] long long parse_integer(std::string_view text, std::string_view what);

}  // namespace polyinfer::cli
