// SPDX-License-Identifier: Apache-2.0
// polyinfer generate: text from a prompt, streamed to stdout (or one JSON object).
#include <polyinfer/polyinfer.hpp>

#include <cmath>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>

#include "args.hpp"
#include "commands.hpp"
#include "load_options.hpp"

namespace polyinfer::cli {

namespace {

/// "\n", "\t" and "\\" in a stop string given on the command line.
std::string unescape(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size()) {
      const char next = text[i + 1];
      if (next == 'n' || next == 't' || next == '\\') {
        out += next == 'n' ? '\n' : next == 't' ? '\t' : '\\';
        ++i;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

GenerationOptions generation_options(const Args& args) {
  GenerationOptions options;
  options.max_tokens = static_cast<int32_t>(args.integer("max-tokens", 0, 1 << 24).value_or(128));
  SamplingParams& sampling = options.sampling;
  const auto temperature = real_option(args, "temperature", 0.0, 1e6);
  if (args.flag("greedy")) {
    for (const char* name : {"temperature", "top-p", "top-k", "min-p", "seed"}) {
      if (args.option(name)) {
        throw UsageError(std::string("--greedy and --") + name + " do not go together");
      }
    }
  }
  sampling.temperature = static_cast<float>(temperature.value_or(0.0));
  sampling.top_p = static_cast<float>(real_option(args, "top-p", 1e-9, 1.0).value_or(1.0));
  sampling.min_p = static_cast<float>(real_option(args, "min-p", 0.0, 0.999999).value_or(0.0));
  sampling.top_k = static_cast<int32_t>(args.integer("top-k", 0, 1 << 30).value_or(0));
  sampling.repetition_penalty =
      static_cast<float>(real_option(args, "repeat-penalty", 1e-6, 1e6).value_or(1.0));
  sampling.seed = static_cast<uint64_t>(
      args.integer("seed", 0, std::numeric_limits<long long>::max()).value_or(0));
  options.stop_at_eos = !args.flag("ignore-eos");
  if (const auto stop = args.option("stop")) options.stop_strings.push_back(unescape(*stop));
  return options;
}

}  // namespace

int run_generate(const std::vector<std::string>& argv) {
  std::vector<std::string> options{"prompt", "max-tokens",     "temperature", "top-p", "top-k",
                                   "min-p",  "repeat-penalty", "seed",        "stop"};
  options.insert(options.end(), kLoadOptionNames.begin(), kLoadOptionNames.end());
  const Args args(argv, {"greedy", "json", "ignore-eos"}, options);
  if (args.positionals().size() != 1) throw UsageError("expected exactly one MODEL");
  const std::string prompt = args.required("prompt");
  const GenerationOptions generation = generation_options(args);
  const LoadOptions load = load_options(args);
  const bool json = args.flag("json");

  LanguageModel model = LanguageModel::load(args.model(), load);
  const std::vector<int32_t> ids = model.tokenizer().encode(prompt, {.add_special = true});
  const TokenCallback print = [&](const GeneratedToken& token) {
    if (!json && !token.text.empty()) std::cout << token.text << std::flush;
    return true;
  };
  const Generation result = model.generate(ids, generation, print);
  if (json) {
    nlohmann::ordered_json out{{"text", result.text},
                               {"ids", result.ids},
                               {"logprobs", result.logprobs},
                               {"stop_reason", std::string(stop_reason_name(result.stop_reason))},
                               {"prompt_tokens", result.prompt_tokens},
                               {"gen_tokens", result.ids.size()},
                               {"tier", std::string(tier_name(model.tier()))}};
    float min_top = 0.0f;
    for (size_t i = 0; i < result.top_logprobs.size(); ++i) {
      min_top = i == 0 ? result.top_logprobs[i] : std::min(min_top, result.top_logprobs[i]);
    }
    out["min_top1_prob"] = result.ids.empty() ? 1.0 : std::exp(static_cast<double>(min_top));
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else if (result.text.empty() || result.text.back() != '\n') {
    std::cout << "\n";
  }
  return 0;
}

}  // namespace polyinfer::cli
