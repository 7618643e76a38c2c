// SPDX-License-Identifier: Apache-2.0
// Helpers of the convert tests: temporary output files and deep GGUF value comparison.
#pragma once

#include <catch2/catch.hpp>

#include <unistd.h>
#include <atomic>
#include <filesystem>
#include <string>

#include "format/gguf.hpp"

namespace polyinfer::test {

/// A path in the temporary folder, removed at the end of the scope.
class TempGguf {
 public:
  explicit TempGguf(const std::string& stem) {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            (stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".gguf");
  }
  ~TempGguf() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  TempGguf(const TempGguf&) = delete;
  TempGguf& operator=(const TempGguf&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// Whether two metadata values have the same type and value (arrays element by element).
inline bool same_gguf_value(const detail::GgufValue& a, const detail::GgufValue& b) {
  using detail::GgufType;
  if (a.type != b.type) return false;
  switch (a.type) {
    case GgufType::kString:
      return a.text() == b.text();
    case GgufType::kArray:
      if (a.array_type != b.array_type || a.array.size() != b.array.size()) return false;
      for (size_t i = 0; i < a.array.size(); ++i) {
        if (!same_gguf_value(a.array[i], b.array[i])) return false;
      }
      return true;
    case GgufType::kBool:
      return a.b == b.b;
    case GgufType::kF32:
    case GgufType::kF64:
      return a.f == b.f;
    default:
      return a.u == b.u && a.i == b.i;
  }
}

}  // namespace polyinfer::test
