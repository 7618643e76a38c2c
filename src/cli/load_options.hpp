// SPDX-License-Identifier: Apache-2.0
// Options shared by the commands that load a language model (--tier, --device, --threads, --ctx).
#pragma once

#include <polyinfer/polyinfer.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "args.hpp"

namespace polyinfer::cli {

/// The option names load_options() reads; append them to a command's option list.
inline const std::vector<std::string> kLoadOptionNames{"tier", "device", "threads", "ctx"};

/// LoadOptions from --tier, --device (cpu, the default; cuda[:N], hip[:N] or a list of GPUs),
/// --threads and --ctx. UsageError for a malformed device (the loaders refuse a GPU this build
/// has no backend for).
[[nodiscard]] LoadOptions load_options(const Args& args);

/// Parses a floating-point option in [min, max]; UsageError when malformed or out of range.
[[nodiscard]] std::optional<double> real_option(const Args& args, std::string_view name, double min,
                                                double max);

}  // namespace polyinfer::cli
