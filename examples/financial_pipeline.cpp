// SPDX-License-Identifier: Apache-2.0
// Example: bank queries → intent classifier → arithmetic task models (cascade + 3-model ensemble).
//
//   financial_pipeline CONFIG [QUERIES.txt]
//
// CONFIG is an engine config with an "intent" classifier and "small"/"medium"/"large" decoders
// (examples/configs/demo.json). QUERIES.txt holds one customer query per line; without it a
// built-in list whose intents are known runs, and any misclassification makes the exit status 1.
#include <polyinfer/polyinfer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <fstream>
#include <future>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

namespace {

struct Query {
  std::string text;
  std::string expected_intent;  ///< "" when unknown (queries read from a file)
};

const std::vector<Query> kBuiltinQueries = {
    {"I have 1200 dollars in savings and 3400 in a CD, what should I do with the total?",
     "investment_advice"},
    {"Should I invest my 25,000 bonus and the 18,500 from my old 401k in index funds or bonds?",
     "investment_advice"},
    {"How risky is it to put 15000 in crypto and 40000 in emerging market stocks?",
     "risk_assessment"},
    {"What could I lose if the market crashes with 52,000 in stocks and 13,750 in mutual funds?",
     "risk_assessment"},
    {"Where do I upload my proof of address for the mortgage application?", "document_processing"},
    {"What are your branch opening hours on Saturday?", "general_query"},
};

std::string trim(std::string s) {
  const auto not_space = [](unsigned char c) { return c != ' ' && c != '\n' && c != '\r'; };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

/// The amounts in a query ("25,000" → 25000), in order.
std::vector<long long> amounts(const std::string& text) {
  static const std::regex kNumber(R"(\d{1,3}(?:,\d{3})+|\d+)");
  std::vector<long long> out;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kNumber);
       it != std::sregex_iterator(); ++it) {
    std::string digits = it->str();
    std::erase(digits, ',');
    if (digits.size() <= 6) out.push_back(std::stoll(digits));
  }
  return out;
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

std::vector<Query> load_queries(int argc, char** argv) {
  if (argc < 3) return kBuiltinQueries;
  std::ifstream in(argv[2]);
  if (!in) throw std::runtime_error(std::string("cannot read ") + argv[2]);
  std::vector<Query> out;
  for (std::string line; std::getline(in, line);) {
    if (!trim(line).empty()) out.push_back({trim(line), ""});
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help") {
    std::fprintf(stderr,
                 "usage: %s CONFIG.json [QUERIES.txt]\n"
                 "  e.g. %s examples/configs/demo.json\n",
                 argv[0], argv[0]);
    return 2;
  }
  try {
    const auto start = std::chrono::steady_clock::now();
    polyinfer::Engine engine(polyinfer::EngineConfig::from_json(argv[1]));
    const std::vector<Query> queries = load_queries(argc, argv);
    int failures = 0;
    const auto check = [&](const polyinfer::Response& r, const char* what) {
      if (r.status == polyinfer::Status::kOk) return true;
      std::printf("  !! %s: %s %s\n", what, std::string(polyinfer::status_name(r.status)).c_str(),
                  r.error.c_str());
      ++failures;
      return false;
    };

    // Step 1: classify every query at once (the engine batches encoder requests).
    std::vector<std::future<polyinfer::Response>> intents;
    for (const Query& q : queries) {
      intents.push_back(engine.submit(
          {.kind = polyinfer::RequestKind::kClassify, .task = "intent", .prompt = q.text}));
    }

    for (size_t i = 0; i < queries.size(); ++i) {
      const Query& q = queries[i];
      const polyinfer::Response intent = intents[i].get();
      std::printf("\n[%zu] %s\n", i + 1, q.text.c_str());
      if (!check(intent, "intent")) continue;
      const bool intent_ok = q.expected_intent.empty() || intent.text == q.expected_intent;
      std::printf("  %-10s %-20s p=%.3f  %s  (%s, %.2f ms)\n", "intent", intent.text.c_str(),
                  intent.confidence, intent_ok ? "" : "MISCLASSIFIED", join(intent.route).c_str(),
                  intent.cost.device_seconds * 1e3);
      if (!intent_ok) ++failures;
      if (intent.text != "investment_advice" && intent.text != "risk_assessment") {
        std::printf("  %-10s no amounts to combine: handed to the %s desk\n", "route",
                    intent.text.c_str());
        continue;
      }
      const std::vector<long long> a = amounts(q.text);
      if (a.size() < 2) {
        std::printf("  %-10s fewer than two amounts: handed to an adviser\n", "route");
        continue;
      }
      const std::string prompt = "add " + std::to_string(a[0]) + " " + std::to_string(a[1]) + " =";
      const std::string want = std::to_string(a[0] + a[1]);

      // Step 2: the engine's policy (the cascade small → medium → large) picks the model.
      const polyinfer::Response total = engine.submit({.task = "add", .prompt = prompt}).get();
      if (!check(total, "cascade")) continue;
      std::printf("  %-10s %-20s -> %-8s conf=%.3f  by %-14s route=%s  %.2f ms  %.1f units%s\n",
                  "cascade", prompt.c_str(), trim(total.text).c_str(), total.confidence,
                  (total.model + "/" + total.tier).c_str(), join(total.route).c_str(),
                  total.cost.device_seconds * 1e3, total.cost.units,
                  total.cache_hit ? "  [cache hit]" : "");

      // Step 3: risk check by ensemble: the same prompt pinned to every tier, majority vote.
      std::vector<std::future<polyinfer::Response>> votes;
      for (const char* model : {"small", "medium", "large"}) {
        votes.push_back(engine.submit({.task = "add", .model = model, .prompt = prompt}));
      }
      std::map<std::string, int> tally;
      double device_ms = 0;
      double units = 0;
      int hits = 0;
      std::string line;
      for (auto& f : votes) {
        const polyinfer::Response r = f.get();
        if (!check(r, "ensemble")) continue;
        ++tally[trim(r.text)];
        device_ms += r.cost.device_seconds * 1e3;
        units += r.cost.units;
        hits += r.cache_hit ? 1 : 0;
        line += r.model + "=" + trim(r.text) + " ";
      }
      const auto best = std::max_element(tally.begin(), tally.end(),
                                         [](auto& x, auto& y) { return x.second < y.second; });
      const std::string answer = best == tally.end() ? "?" : best->first;
      const int agree = best == tally.end() ? 0 : best->second;
      std::printf("  %-10s %-20s -> %-8s votes %d/3 (%s)  %.2f ms  %.1f units  %d cache hits\n",
                  "ensemble", prompt.c_str(), answer.c_str(), agree, trim(line).c_str(), device_ms,
                  units, hits);
      const bool right = answer == want && trim(total.text) == want;
      std::printf("  %-10s total %s %s\n", "answer", answer.c_str(),
                  right ? "(checked)" : ("(WRONG: expected " + want + ")").c_str());
      if (!right && !q.expected_intent.empty()) ++failures;
    }

    // The same queries again: every answer comes from the exact cache.
    int repeat_hits = 0;
    for (const Query& q : queries) {
      const polyinfer::Response r =
          engine
              .submit(
                  {.kind = polyinfer::RequestKind::kClassify, .task = "intent", .prompt = q.text})
              .get();
      repeat_hits += r.cache_hit ? 1 : 0;
    }

    const polyinfer::Metrics m = engine.metrics();
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("\n%-22s %10s %8s %12s\n", "model/tier", "requests", "calls", "device ms");
    for (const auto& [name, mm] : m.by_model_tier) {
      std::printf("%-22s %10lld %8lld %12.2f\n", name.c_str(), static_cast<long long>(mm.requests),
                  static_cast<long long>(mm.calls), mm.device_seconds * 1e3);
    }
    std::printf(
        "\nrequests %lld, cache hits %lld (repeat pass: %d/%zu), device %.1f ms, %.1f units, "
        "wall %.2f s, failures %d\n",
        static_cast<long long>(m.requests), static_cast<long long>(m.cache_hits), repeat_hits,
        queries.size(), m.device_seconds * 1e3, m.units, wall, failures);
    if (repeat_hits != static_cast<int>(queries.size())) ++failures;
    return failures == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "financial_pipeline: %s\n", e.what());
    return 1;
  }
}
