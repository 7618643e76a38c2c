// SPDX-License-Identifier: Apache-2.0
// polyinfer convert: a Hugging Face folder → GGUF as llama.cpp's converter lays it out.
#include <polyinfer/model_writer.hpp>
#include <polyinfer/polyinfer.hpp>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "args.hpp"
#include "commands.hpp"
#include "write_summary.hpp"

namespace polyinfer::cli {

WeightType weight_type_option(const Args& args) {
  const std::string text = args.required("type");
  const auto type = weight_type_from_name(text);
  if (!type) {
    throw UsageError("--type must be f32, f16, bf16, q8_0, q4_0, q4_k or q4_k_m, not '" + text +
                     "'");
  }
  return *type;
}

std::string summary_text(const std::filesystem::path& out, const WriteSummary& summary) {
  std::string types;
  for (const auto& [type, count] : summary.tensors_by_type) {
    types += (types.empty() ? "" : ", ") + type + " " + std::to_string(count);
  }
  char numbers[160];
  std::snprintf(numbers, sizeof numbers, "%.1f MiB, %lld tensors",
                static_cast<double>(summary.file_bytes) / (1 << 20),
                static_cast<long long>(summary.tensors));
  char rest[160];
  std::snprintf(rest, sizeof rest, "%.3f M parameters, tokenizer %s, %.1f s",
                static_cast<double>(summary.parameters) * 1e-6, summary.tokenizer.c_str(),
                summary.seconds);
  return "wrote " + out.string() + ": " + numbers + " (" + types + "), " + rest + "\n";
}

nlohmann::ordered_json summary_json(const std::filesystem::path& out, const WriteSummary& summary) {
  nlohmann::ordered_json types = nlohmann::ordered_json::object();
  for (const auto& [type, count] : summary.tensors_by_type) types[type] = count;
  return {{"out", out.string()},        {"file_bytes", summary.file_bytes},
          {"tensors", summary.tensors}, {"parameters", summary.parameters},
          {"tensor_types", types},      {"tokenizer", summary.tokenizer},
          {"seconds", summary.seconds}};
}

int run_convert(const std::vector<std::string>& argv) {
  const Args args(argv, {"json"}, {"type", "out", "threads", "name", "tokenizer"});
  if (args.positionals().size() != 1) throw UsageError("expected exactly one MODEL folder");
  ConvertOptions options;
  options.type = weight_type_option(args);
  options.threads = static_cast<int>(args.integer("threads", 0, 1024).value_or(0));
  options.name = args.option("name").value_or("");
  const std::string tokenizer = args.option("tokenizer").value_or("auto");
  if (tokenizer == "hf") {
    options.tokenizer = TokenizerMetadata::kHuggingFace;
  } else if (tokenizer == "ggml") {
    options.tokenizer = TokenizerMetadata::kGgml;
  } else if (tokenizer != "auto") {
    throw UsageError("--tokenizer must be auto, hf or ggml, not '" + tokenizer + "'");
  }
  const std::filesystem::path out = args.required("out");
  const WriteSummary summary = convert_model(args.model(), out, options);
  if (args.flag("json")) {
    std::cout << summary_json(out, summary).dump() << "\n";
  } else {
    std::cout << summary_text(out, summary);
  }
  return 0;
}

}  // namespace polyinfer::cli
