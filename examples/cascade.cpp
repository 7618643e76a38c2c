// SPDX-License-Identifier: Apache-2.0
// Example: task prompts of mixed difficulty through a cascade, and the saving against always-large.
//
//   cascade CONFIG   (a cascade config with "small"/"medium"/"large" decoders, e.g.
//                     examples/configs/demo.json)
//
// Exit status 1 when a request fails or the cascade answers differently from the large model
// on more than one prompt.
#include <polyinfer/polyinfer.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <future>
#include <string>
#include <vector>

namespace {

struct Prompt {
  std::string task;
  std::string text;
};

const std::vector<Prompt> kPrompts = {
    {"add", "add 7 5 ="},      {"add", "add 42 17 ="},       {"add", "add 318 552 ="},
    {"add", "add 4821 905 ="}, {"add", "add 73019 26455 ="}, {"add", "add 512034 398211 ="},
    {"sort", "sort ez ="},     {"sort", "sort kugd ="},      {"sort", "sort qhofimfyj ="},
    {"reverse", "rev cat ="},  {"reverse", "rev bank ="},    {"reverse", "rev yntobkrpwdul ="},
};

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : " > ") + p;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help") {
    std::fprintf(stderr, "usage: %s CONFIG.json   (e.g. examples/configs/demo.json)\n", argv[0]);
    return 2;
  }
  try {
    polyinfer::Engine engine(polyinfer::EngineConfig::from_json(argv[1]));
    std::vector<std::future<polyinfer::Response>> cascade;
    std::vector<std::future<polyinfer::Response>> large;
    for (const Prompt& p : kPrompts) {
      cascade.push_back(engine.submit({.task = p.task, .prompt = p.text}));
    }
    std::vector<polyinfer::Response> cascaded;
    for (auto& f : cascade) cascaded.push_back(f.get());
    // The baseline: the same prompts pinned to the large model (its own cache entries).
    for (const Prompt& p : kPrompts) {
      large.push_back(engine.submit({.task = p.task, .model = "large", .prompt = p.text}));
    }

    int failures = 0;
    int disagreements = 0;
    double cascade_ms = 0;
    double cascade_units = 0;
    double large_ms = 0;
    double large_units = 0;
    std::printf("%-22s %-12s %-12s %-6s %-42s %9s %9s\n", "prompt", "cascade", "large", "conf",
                "route (answering tier last)", "dev ms", "large ms");
    for (size_t i = 0; i < kPrompts.size(); ++i) {
      const polyinfer::Response& c = cascaded[i];
      const polyinfer::Response l = large[i].get();
      if (c.status != polyinfer::Status::kOk || l.status != polyinfer::Status::kOk) {
        std::printf("%-22s failed: %s %s\n", kPrompts[i].text.c_str(),
                    std::string(polyinfer::status_name(c.status)).c_str(),
                    (c.error + " " + l.error).c_str());
        ++failures;
        continue;
      }
      const bool same = trim(c.text) == trim(l.text);
      disagreements += same ? 0 : 1;
      std::printf("%-22s %-12s %-12s %-6.3f %-42s %9.2f %9.2f%s\n", kPrompts[i].text.c_str(),
                  trim(c.text).c_str(), trim(l.text).c_str(), c.confidence, join(c.route).c_str(),
                  c.cost.device_seconds * 1e3, l.cost.device_seconds * 1e3,
                  same ? "" : "  (differs)");
      cascade_ms += c.cost.device_seconds * 1e3;
      cascade_units += c.cost.units;
      large_ms += l.cost.device_seconds * 1e3;
      large_units += l.cost.units;
    }

    const polyinfer::Metrics m = engine.metrics();
    std::printf("\nanswered by (cascade and baseline together):");
    for (const auto& [name, mm] : m.by_model_tier) {
      std::printf("  %s %lld/%lld calls", name.c_str(), static_cast<long long>(mm.requests),
                  static_cast<long long>(mm.calls));
    }
    std::printf("\ncascade: %.2f ms, %.1f units;  always-large: %.2f ms, %.1f units\n", cascade_ms,
                cascade_units, large_ms, large_units);
    if (large_units > 0 && large_ms > 0) {
      std::printf(
          "saving: %.0f %% of the cost units, %.0f %% of the device time; %d/%zu answers "
          "differ from large; %lld escalations\n",
          100.0 * (1.0 - cascade_units / large_units), 100.0 * (1.0 - cascade_ms / large_ms),
          disagreements, kPrompts.size(), static_cast<long long>(m.escalations));
    }
    return failures == 0 && disagreements <= 1 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cascade: %s\n", e.what());
    return 1;
  }
}
