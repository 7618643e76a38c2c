// SPDX-License-Identifier: Apache-2.0
// Output of the commands that write GGUF files (convert, synth), and their --type option.
#pragma once

#include <polyinfer/model_writer.hpp>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "args.hpp"

namespace polyinfer::cli {

/// --type as a WeightType (UsageError naming the choices when missing or unknown).
[[nodiscard]] WeightType weight_type_option(const Args& args);

/// One line: "wrote F: 1.4 MiB, 21 tensors (q8_0 14, f32 7), 1.378 M parameters, …".
[[nodiscard]] std::string summary_text(const std::filesystem::path& out,
                                       const WriteSummary& summary);

/// The summary as one JSON object (out, file_bytes, tensors, parameters, tensor_types,
/// tokenizer, seconds).
[[nodiscard]] nlohmann::ordered_json summary_json(const std::filesystem::path& out,
                                                  const WriteSummary& summary);

}  // namespace polyinfer::cli
