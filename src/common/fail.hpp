// SPDX-License-Identifier: Apache-2.0
// fail(): throw polyinfer::Error with an fmt-formatted message (internal helper).
#pragma once

#include <fmt/format.h>

#include <string>
#include <utility>

#include "polyinfer/error.hpp"

namespace polyinfer::inline v0::detail {

/// Throws Error(code, where, fmt::format(format, args...)).
template <typename... Args>
[[noreturn]] void fail(ErrorCode code, const std::string& where, fmt::format_string<Args...> format,
                       Args&&... args) {
  throw Error(code, where, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace polyinfer::inline v0::detail
