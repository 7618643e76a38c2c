// SPDX-License-Identifier: Apache-2.0
// polyinfer version: the single source of the version number (CMake reads it from here).
#pragma once

#define POLYINFER_VERSION_MAJOR 0
#define POLYINFER_VERSION_MINOR 1
#define POLYINFER_VERSION_PATCH 0
#define POLYINFER_VERSION_STRING "0.1.0"

namespace polyinfer {
inline namespace v0 {
/// The library's version as "major.minor.patch" (of the library linked, not of the headers).
[[nodiscard]] const char* version() noexcept;
}  // namespace v0
}  // namespace polyinfer
