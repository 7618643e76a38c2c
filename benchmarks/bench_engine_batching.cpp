// SPDX-License-Identifier: Apache-2.0
// Engine continuous batching: generation tokens/s with N requests in flight vs one at a time.
//
// One decoder (models/taskmodels-large-q8_0.gguf, or argv[1]) behind the public Engine API, cache
// off. For N = 1, 4, 16, 64: N reverse prompts of distinct random letters submitted at once, then
// the same N prompts submitted one after another (each waited for). The model's end ids ('\n' is
// one) always stop and Request cannot turn them off, so the taskmodels generate the answer's length
// (--letters 12: 13 tokens; the default 24 is outside their training range and they stop after
// ~10); tokens are counted from Response::cost.generated_tokens. docs/benchmarks.md has results.
// Usage: bench_engine_batching [MODEL] [--reps R] [--letters L] [--max-tokens M]
#include <polyinfer/polyinfer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <random>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

int g_letters = 24;
int g_max_tokens = 32;

struct Run {
  double seconds = 0;
  long long tokens = 0;
  int failures = 0;
};

std::vector<std::string> make_prompts(int count, std::mt19937& rng) {
  std::uniform_int_distribution<int> letter(0, 25);
  std::vector<std::string> prompts;
  for (int i = 0; i < count; ++i) {
    std::string word;
    for (int j = 0; j < g_letters; ++j) word.push_back(static_cast<char>('a' + letter(rng)));
    prompts.push_back("rev " + word + " =");
  }
  return prompts;
}

polyinfer::Request make_request(const std::string& prompt) {
  polyinfer::Request request;
  request.task = "reverse";
  request.model = "decoder";
  request.prompt = prompt;
  request.max_tokens = g_max_tokens;
  return request;
}

void account(Run& run, const polyinfer::Response& response) {
  if (response.status != polyinfer::Status::kOk) {
    ++run.failures;
    return;
  }
  run.tokens += response.cost.generated_tokens;
}

Run run_batched(polyinfer::Engine& engine, const std::vector<std::string>& prompts) {
  Run run;
  const Clock::time_point start = Clock::now();
  std::vector<std::future<polyinfer::Response>> futures;
  futures.reserve(prompts.size());
  for (const std::string& p : prompts) futures.push_back(engine.submit(make_request(p)));
  for (auto& f : futures) account(run, f.get());
  run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return run;
}

Run run_sequential(polyinfer::Engine& engine, const std::vector<std::string>& prompts) {
  Run run;
  const Clock::time_point start = Clock::now();
  for (const std::string& p : prompts) account(run, engine.submit(make_request(p)).get());
  run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = std::string(POLYINFER_SOURCE_DIR) + "/models/taskmodels-large-q8_0.gguf";
  int reps = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--reps" && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--letters" && i + 1 < argc) {
      g_letters = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--max-tokens" && i + 1 < argc) {
      g_max_tokens = std::max(1, std::atoi(argv[++i]));
    } else {
      model = arg;
    }
  }

  polyinfer::EngineConfig config;
  config.executors = 1;
  config.threads = 1;
  config.max_tokens = g_max_tokens;
  polyinfer::ModelSpec spec;
  spec.name = "decoder";
  spec.path = model;
  spec.tasks = {"reverse"};
  config.models.push_back(spec);
  config.batching.max_sequences = 64;
  config.batching.max_tokens = 2048;  // room for 64 prompts in one pass
  config.cache.enabled = false;
  polyinfer::Engine engine(std::move(config));

  std::mt19937 rng(1234);
  (void)run_sequential(engine, make_prompts(2, rng));  // load the model, warm the caches

  std::printf("model %s, %d letters reversed, max_tokens %d, best of %d\n", model.c_str(),
              g_letters, g_max_tokens, reps);
  std::printf("| requests | generated tokens | batched tok/s | one-at-a-time tok/s | ratio |\n");
  std::printf("| ---: | ---: | ---: | ---: | ---: |\n");
  int failures = 0;
  for (const int n : {1, 4, 16, 64}) {
    double best_batched = 0;
    double best_sequential = 0;
    long long tokens = 0;
    for (int r = 0; r < reps; ++r) {
      const std::vector<std::string> prompts = make_prompts(n, rng);
      const Run batched = run_batched(engine, prompts);
      const Run sequential = run_sequential(engine, prompts);
      failures += batched.failures + sequential.failures;
      tokens = batched.tokens;
      best_batched = std::max(best_batched, static_cast<double>(batched.tokens) / batched.seconds);
      best_sequential =
          std::max(best_sequential, static_cast<double>(sequential.tokens) / sequential.seconds);
    }
    std::printf("| %d | %lld | %.0f | %.0f | %.2fx |\n", n, tokens, best_batched, best_sequential,
                best_batched / best_sequential);
    std::fflush(stdout);
  }
  if (failures > 0) std::printf("%d requests failed\n", failures);
  return failures > 0 ? 1 : 0;
}
