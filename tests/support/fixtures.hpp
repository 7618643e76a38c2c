// SPDX-License-Identifier: Apache-2.0
// Locating ../shared fixtures from tests: missing fixtures fail under CI, warn otherwise.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace polyinfer::test {

/// The shared/ folder: $POLYINFER_SHARED_DIR, else the configured default (../shared).
[[nodiscard]] std::filesystem::path shared_dir();

/// shared_dir()/relative when it exists. When it does not: FAILs the test if $CI is set,
/// otherwise WARNs and returns nullopt (the caller returns early).
[[nodiscard]] std::optional<std::filesystem::path> shared_path(std::string_view relative);

/// Reads a whole file as bytes in a string.
[[nodiscard]] std::string read_file(const std::filesystem::path& path);

}  // namespace polyinfer::test

/// Declares `var` as the path of a shared file or folder, or ends the test (see shared_path).
#define POLYINFER_SHARED_OR_RETURN(var, relative)                       \
  const auto var##_optional = ::polyinfer::test::shared_path(relative); \
  if (!var##_optional) return;                                          \
  const std::filesystem::path& var = *var##_optional
