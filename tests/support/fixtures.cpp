// SPDX-License-Identifier: Apache-2.0
// Locating ../shared fixtures from tests.
#include "support/fixtures.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace polyinfer::test {

std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("POLYINFER_SHARED_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  return POLYINFER_DEFAULT_SHARED_DIR;
}

std::optional<std::filesystem::path> shared_path(std::string_view relative) {
  auto path = shared_dir() / relative;
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) return path;
  const char* ci = std::getenv("CI");
  if (ci != nullptr && *ci != '\0') {
    FAIL("fixture missing under CI: " << path.string());
  }
  WARN("fixture missing, test not run: " << path.string());
  return std::nullopt;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream out;
  out << in.rdbuf();
  return std::move(out).str();
}

}  // namespace polyinfer::test
