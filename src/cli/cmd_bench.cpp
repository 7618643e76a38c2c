// SPDX-License-Identifier: Apache-2.0
// polyinfer bench: prompt-processing and generation tokens/s of a decoder, and peak memory.
#include <sys/resource.h>
#include <polyinfer/polyinfer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "args.hpp"
#include "commands.hpp"
#include "load_options.hpp"

namespace polyinfer::cli {

namespace {

using Clock = std::chrono::steady_clock;

/// One measured run: `prompt` processed as one prompt, then `gen` tokens one at a time.
struct Run {
  double prompt_s = 0;
  double gen_s = 0;
};

double seconds(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

uint64_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<uint64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

/// A prompt of `tokens` random ids (BOS first when the model has one); a different seed per
/// repetition, so the KV cache's prefix reuse never applies.
std::vector<int32_t> random_prompt(const LanguageModel& model, int64_t tokens, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const auto vocab = static_cast<int32_t>(model.config().vocab_size);
  std::uniform_int_distribution<int32_t> pick(0, vocab - 1);
  std::vector<int32_t> ids;
  const int32_t bos = model.has_tokenizer() ? model.tokenizer().bos_id() : -1;
  if (bos >= 0) ids.push_back(bos);
  while (static_cast<int64_t>(ids.size()) < tokens) ids.push_back(pick(rng));
  // A BOS-led prompt must still differ between repetitions: vary the second id too.
  if (ids.size() > 1)
    ids[1] = static_cast<int32_t>((seed * 7919 + 13) % static_cast<uint64_t>(vocab));
  return ids;
}

/// generate(prompt, n + 1 tokens): the first token comes from the prompt pass, each later one
/// from a single-token step; the callback's clock splits the two phases.
Run measure(LanguageModel& model, const std::vector<int32_t>& prompt, int64_t gen) {
  GenerationOptions options;
  options.max_tokens = static_cast<int32_t>(gen + 1);
  options.stop_at_eos = false;
  std::vector<Clock::time_point> stamps;
  stamps.reserve(static_cast<size_t>(gen + 1));
  const Clock::time_point start = Clock::now();
  const Generation result = model.generate(prompt, options, [&](const GeneratedToken&) {
    stamps.push_back(Clock::now());
    return true;
  });
  if (result.cached_prompt_tokens != 0) {
    throw Error(ErrorCode::kInternal, "bench", "the prompt hit the prefix cache");
  }
  if (static_cast<int64_t>(stamps.size()) != gen + 1) {
    throw Error(ErrorCode::kInternal, "bench",
                "generation stopped after " + std::to_string(stamps.size()) + " of " +
                    std::to_string(gen + 1) + " tokens (" +
                    std::string(stop_reason_name(result.stop_reason)) + ")");
  }
  return {seconds(start, stamps.front()), gen > 0 ? seconds(stamps.front(), stamps.back()) : 0};
}

}  // namespace

int run_bench(const std::vector<std::string>& argv) {
  std::vector<std::string> names{"p", "n", "t", "r", "prompt-tokens", "gen-tokens", "reps"};
  names.insert(names.end(), kLoadOptionNames.begin(), kLoadOptionNames.end());
  const Args args(argv, {"json"}, names);
  if (args.positionals().size() != 1) throw UsageError("expected exactly one MODEL");
  const auto pick = [&](const char* short_name, const char* long_name, long long min, long long max,
                        long long fallback) {
    if (args.option(short_name) && args.option(long_name)) {
      throw UsageError(std::string("-") + short_name + " and --" + long_name +
                       " do not go together");
    }
    return args.integer(short_name, min, max)
        .value_or(args.integer(long_name, min, max).value_or(fallback));
  };
  const int64_t prompt_tokens = pick("p", "prompt-tokens", 1, 1 << 20, 512);
  const int64_t gen_tokens = pick("n", "gen-tokens", 0, 1 << 20, 128);
  const int64_t reps = pick("r", "reps", 1, 1000, 3);
  LoadOptions load = load_options(args);
  if (args.option("t") && args.option("threads")) {
    throw UsageError("-t and --threads do not go together");
  }
  if (const auto t = args.integer("t", 0, 1024)) load.threads = static_cast<int>(*t);
  if (load.context_length == 0) load.context_length = prompt_tokens + gen_tokens + 1;
  const int threads =
      load.threads > 0 ? load.threads : static_cast<int>(std::thread::hardware_concurrency());

  LanguageModel model = LanguageModel::load(args.model(), load);
  if (model.context_length() < prompt_tokens + gen_tokens + 1) {
    throw UsageError("-p " + std::to_string(prompt_tokens) + " plus -n " +
                     std::to_string(gen_tokens) + " needs a context of " +
                     std::to_string(prompt_tokens + gen_tokens + 1) + " positions; the model has " +
                     std::to_string(model.context_length()) + " (--ctx)");
  }
  (void)measure(model, random_prompt(model, std::min<int64_t>(prompt_tokens, 32), 0),
                std::min<int64_t>(gen_tokens, 2));  // warm-up: page in weights, spin threads
  std::vector<double> prompt_rates;
  std::vector<double> gen_rates;
  for (int64_t rep = 0; rep < reps; ++rep) {
    const Run run = measure(model, random_prompt(model, prompt_tokens, 1000 + rep), gen_tokens);
    prompt_rates.push_back(static_cast<double>(prompt_tokens) / run.prompt_s);
    if (gen_tokens > 0) gen_rates.push_back(static_cast<double>(gen_tokens) / run.gen_s);
  }
  const double prompt_rate = median(prompt_rates);
  const double gen_rate = median(gen_rates);
  const uint64_t rss = peak_rss_bytes();
  const std::string device = args.option("device").value_or("cpu");
  if (args.flag("json")) {
    const nlohmann::ordered_json out{{"prompt_tokens", prompt_tokens},
                                     {"gen_tokens", gen_tokens},
                                     {"threads", threads},
                                     {"device", device},
                                     {"prompt_tokens_per_s", prompt_rate},
                                     {"gen_tokens_per_s", gen_rate},
                                     {"weight_bytes", model.weight_bytes()},
                                     {"peak_rss_bytes", rss}};
    std::cout << out.dump() << "\n";
    return 0;
  }
  std::printf("model:      %s (%s, tier %s, %lld threads, %s)\n", args.model().c_str(),
              model.config().architecture.c_str(), std::string(tier_name(model.tier())).c_str(),
              static_cast<long long>(threads), device.c_str());
  std::printf("pp%-6lld   %10.2f tokens/s  (median of %lld)\n",
              static_cast<long long>(prompt_tokens), prompt_rate, static_cast<long long>(reps));
  if (gen_tokens > 0) {
    std::printf("tg%-6lld   %10.2f tokens/s  (median of %lld)\n",
                static_cast<long long>(gen_tokens), gen_rate, static_cast<long long>(reps));
  }
  std::printf("peak RSS:   %10.1f MiB\n", static_cast<double>(rss) / (1 << 20));
  return 0;
}

}  // namespace polyinfer::cli
