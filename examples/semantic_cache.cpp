// SPDX-License-Identifier: Apache-2.0
// Example: the exact response cache and the semantic cache (intent encoder as the embedder).
//
//   semantic_cache CONFIG   (examples/configs/demo.json: an "intent" classifier + task decoders)
//
// Part 1 repeats bank queries (exact cache hits). Part 2 turns on the semantic cache in C++
// (EngineConfig::cache.semantic_model = "intent") and sends re-spelled prompts (case, spacing:
// the uncased encoder embeds them identically) and a near miss that must not hit. Part 3 shows
// how close paraphrased bank queries are in the encoder's embedding space. Exit status 1 when a
// request fails, an expected hit misses, or a semantic hit gives a wrong answer.
#include <polyinfer/polyinfer.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <string>
#include <utility>
#include <vector>

namespace {

int failures = 0;

polyinfer::Response run(polyinfer::Engine& engine, polyinfer::Request request) {
  const auto t0 = std::chrono::steady_clock::now();
  polyinfer::Response r = engine.submit(std::move(request)).get();
  r.timings.total_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (r.status != polyinfer::Status::kOk) {
    std::printf("  !! %s: %s\n", std::string(polyinfer::status_name(r.status)).c_str(),
                r.error.c_str());
    ++failures;
  }
  return r;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

void expect(bool hit, bool want) {
  if (hit != want) ++failures;
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / std::sqrt(aa * bb + 1e-30);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help") {
    std::fprintf(stderr, "usage: %s CONFIG.json   (e.g. examples/configs/demo.json)\n", argv[0]);
    return 2;
  }
  try {
    polyinfer::EngineConfig config = polyinfer::EngineConfig::from_json(argv[1]);
    config.cache.enabled = true;
    config.cache.semantic_model = "intent";
    config.cache.semantic_threshold = 0.999;
    polyinfer::Engine engine(std::move(config));

    std::printf("1. exact cache: bank queries, each asked twice\n");
    std::printf("   %-70s %-20s %-5s %8s\n", "query", "intent", "cache", "ms");
    const std::vector<std::string> queries = {
        "Is my pension at risk if interest rates go up?",
        "Can I get a copy of my mortgage statement by email?",
        "Is my pension at risk if interest rates go up?",
        "Can I get a copy of my mortgage statement by email?",
    };
    for (size_t i = 0; i < queries.size(); ++i) {
      const polyinfer::Response r =
          run(engine, {.kind = polyinfer::RequestKind::kClassify, .prompt = queries[i]});
      std::printf("   %-70s %-20s %-5s %8.3f\n", queries[i].c_str(), r.text.c_str(),
                  r.cache_hit ? "hit" : "miss", r.timings.total_ms);
      expect(r.cache_hit, i >= 2);
    }

    std::printf(
        "\n2. semantic cache (embedder: intent encoder, cosine >= 0.999) on task prompts\n");
    std::printf("   %-24s %-10s %-9s %-5s %8s  %s\n", "prompt", "answer", "expected", "cache", "ms",
                "route");
    struct Case {
      std::string prompt, expected;
      bool hit;
    };
    const std::vector<Case> cases = {
        {"add 1200 3400 =", "4600", false},    // first time: computed
        {"add 1200 3400 =", "4600", true},     // same text: exact hit
        {"ADD 1200 3400 =", "4600", true},     // other case: semantic hit
        {"add  1200   3400 =", "4600", true},  // other spacing: semantic hit
        {"add 1200 3401 =", "4601", false},    // a different sum must not hit
    };
    for (const Case& c : cases) {
      const polyinfer::Response r = run(engine, {.task = "add", .prompt = c.prompt});
      std::string route;
      for (const std::string& step : r.route) route += (route.empty() ? "" : ",") + step;
      const bool right = trim(r.text) == c.expected;
      std::printf("   %-24s %-10s %-9s %-5s %8.3f  %s%s\n", ("\"" + c.prompt + "\"").c_str(),
                  trim(r.text).c_str(), c.expected.c_str(), r.cache_hit ? "hit" : "miss",
                  r.timings.total_ms, route.c_str(), right ? "" : "  WRONG");
      if (!right) ++failures;
      expect(r.cache_hit, c.hit);
    }

    std::printf("\n3. paraphrased bank queries in the embedding space (cosine to the first)\n");
    const std::vector<std::string> paraphrases = {
        "Should I move my savings into index funds?",
        "should i move my savings into index funds",
        "Should I put my savings in index funds?",
        "Would index funds be a good place for my savings?",
        "Where do I send my proof of address?",
    };
    std::vector<float> first;
    for (const std::string& p : paraphrases) {
      const polyinfer::Response r =
          run(engine, {.kind = polyinfer::RequestKind::kEmbed, .model = "intent", .prompt = p});
      if (first.empty()) first = r.values;
      const double cos = cosine(first, r.values);
      std::printf("   %-55s cosine %.4f  %s\n", p.c_str(), cos,
                  cos >= 0.999 ? "would hit at 0.999" : "");
    }

    const polyinfer::Metrics m = engine.metrics();
    std::printf("\nrequests %lld, cache hits %lld, failures %d\n",
                static_cast<long long>(m.requests), static_cast<long long>(m.cache_hits), failures);
    return failures == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "semantic_cache: %s\n", e.what());
    return 1;
  }
}
