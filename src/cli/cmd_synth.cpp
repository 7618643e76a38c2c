// SPDX-License-Identifier: Apache-2.0
// polyinfer synth: a random-weight GGUF of a real model shape (or custom dimensions).
#include <polyinfer/model_writer.hpp>
#include <polyinfer/polyinfer.hpp>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "args.hpp"
#include "commands.hpp"
#include "write_summary.hpp"

namespace polyinfer::cli {

namespace {

/// --dims HIDDEN,LAYERS,FFN,HEADS,KV_HEADS,VOCAB
std::vector<int64_t> parse_dims(const std::string& text) {
  std::vector<int64_t> dims;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, ',')) {
    dims.push_back(parse_integer(part, "--dims"));
    if (dims.back() <= 0) throw UsageError("--dims: sizes must be positive");
  }
  if (dims.size() != 6) {
    throw UsageError("--dims takes 6 sizes: HIDDEN,LAYERS,FFN,HEADS,KV_HEADS,VOCAB");
  }
  return dims;
}

SynthShape shape_from_args(const Args& args) {
  const auto arch = args.option("arch");
  if (arch && *arch != "llama" && *arch != "qwen2") {
    throw UsageError("--arch must be llama or qwen2, not '" + *arch + "'");
  }
  const auto name = args.option("shape");
  const auto dims_text = args.option("dims");
  if (name.has_value() == dims_text.has_value()) {
    throw UsageError("give exactly one of --shape NAME and --dims H,L,F,HEADS,KV,VOCAB");
  }
  if (name) {
    auto shape = synth_shape(*name);
    if (!shape) {
      std::string known;
      for (const SynthShape& s : synth_shapes()) known += (known.empty() ? "" : ", ") + s.name;
      throw UsageError("unknown --shape '" + *name + "' (known: " + known + ")");
    }
    if (arch && *arch != shape->architecture) {
      throw UsageError("--shape " + shape->name + " is a " + shape->architecture + " model");
    }
    return *shape;
  }
  const std::vector<int64_t> d = parse_dims(*dims_text);
  SynthShape shape = synth_custom_shape(d[0], d[1], d[2], d[3], d[4], d[5]);
  if (arch && *arch == "qwen2") {  // Qwen2 style: q/k/v biases, tied, byte-level BPE
    shape.architecture = "qwen2";
    shape.tie_embeddings = true;
    shape.attention_bias = true;
    shape.rope_theta = 1000000.0;
    shape.norm_eps = 1e-6;
    shape.tokenizer = "gpt2";
    shape.pre_tokenizer = "qwen2";
    shape.bos_id = static_cast<int32_t>(d[5] - 3);
    shape.eos_id = static_cast<int32_t>(d[5] - 1);
  }
  return shape;
}

}  // namespace

int run_synth(const std::vector<std::string>& argv) {
  const Args args(argv, {"json", "list"},
                  {"arch", "shape", "dims", "type", "out", "seed", "threads"});
  if (!args.positionals().empty()) throw UsageError("synth takes no MODEL argument");
  if (args.flag("list")) {
    for (const SynthShape& s : synth_shapes()) {
      std::printf(
          "%-15s %-6s hidden %5lld  layers %3lld  ffn %6lld  heads %3lld  kv %3lld  "
          "vocab %6lld%s%s\n",
          s.name.c_str(), s.architecture.c_str(), static_cast<long long>(s.hidden_size),
          static_cast<long long>(s.num_layers), static_cast<long long>(s.intermediate_size),
          static_cast<long long>(s.num_heads), static_cast<long long>(s.num_kv_heads),
          static_cast<long long>(s.vocab_size), s.tie_embeddings ? "  tied" : "",
          s.rope_scaling.type.empty() ? "" : "  rope llama3");
    }
    return 0;
  }
  const SynthShape shape = shape_from_args(args);
  SynthOptions options;
  options.type = weight_type_option(args);
  options.seed = static_cast<uint64_t>(args.integer("seed", 0, INT64_MAX).value_or(0));
  options.threads = static_cast<int>(args.integer("threads", 0, 1024).value_or(0));
  const std::filesystem::path out = args.required("out");
  const WriteSummary summary = synthesize_model(shape, out, options);
  if (args.flag("json")) {
    nlohmann::ordered_json j = summary_json(out, summary);
    j["shape"] = shape.name;
    j["seed"] = options.seed;
    std::cout << j.dump() << "\n";
  } else {
    std::cout << summary_text(out, summary);
  }
  return 0;
}

}  // namespace polyinfer::cli
