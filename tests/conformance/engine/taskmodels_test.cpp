// SPDX-License-Identifier: Apache-2.0
// The Engine over the real taskmodels (shared/taskmodels): batched answers equal the reference
// outputs, cascades and the router route as documented, a memory budget evicts and reloads.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <fstream>

#include "polyinfer/engine.hpp"
#include "support/fixtures.hpp"

namespace {

using polyinfer::Engine;
using polyinfer::EngineConfig;
using polyinfer::ModelSpec;
using polyinfer::Quality;
using polyinfer::Request;
using polyinfer::Response;
using polyinfer::Status;

std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& path, size_t limit) {
  std::ifstream in(path);
  std::vector<nlohmann::json> items;
  std::string line;
  while (items.size() < limit && std::getline(in, line))
    items.push_back(nlohmann::json::parse(line));
  return items;
}

ModelSpec decoder(const std::filesystem::path& root, const std::string& name, double cost) {
  ModelSpec spec;
  spec.name = name;
  spec.path = root / name;
  spec.tasks = {"add", "sort", "reverse"};
  spec.relative_cost = cost;
  return spec;
}

EngineConfig taskmodels_config(const std::filesystem::path& root) {
  EngineConfig config;
  config.models = {decoder(root, "small", 0.0447), decoder(root, "medium", 0.3368),
                   decoder(root, "large", 1.0)};
  config.max_tokens = 16;
  return config;
}

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

}  // namespace

TEST_CASE("engine taskmodels: batched greedy answers equal the reference outputs",
          "[engine][taskmodels]") {
  POLYINFER_SHARED_OR_RETURN(root, "taskmodels");
  const auto items = read_jsonl(root / "dev.jsonl", 60);
  EngineConfig config = taskmodels_config(root);
  config.cache.enabled = false;
  Engine engine(config);
  for (const std::string model : {"small", "medium", "large"}) {
    std::vector<std::future<Response>> futures;
    for (const auto& item : items) {
      Request request;
      request.task = item["task_type"];
      request.prompt = item["prompt"];
      request.model = model;
      futures.push_back(engine.submit(request));  // all at once: continuous batching
    }
    int same = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      const Response r = futures[i].get();
      const auto& reference = items[i]["models"][model];
      REQUIRE(r.status == Status::kOk);
      INFO(model << " " << items[i]["prompt"] << " → " << r.text);
      same += r.text == reference["output"].get<std::string>() ? 1 : 0;
      CHECK(r.cost.prompt_tokens == items[i]["n_prompt_tokens"].get<int64_t>());
      if (r.text == reference["output"].get<std::string>()) {
        CHECK(r.cost.generated_tokens == reference["n_gen_tokens"].get<int64_t>());
        CHECK(r.confidence == Approx(reference["min_top1_prob"].get<double>()).margin(2e-3));
      }
      CHECK(r.cost.device_seconds > 0);
    }
    // fp32 rounding may flip a near-tie; the reference allows it, the count should not move.
    CHECK(same >= static_cast<int>(items.size()) - 1);
  }
}

TEST_CASE("engine taskmodels: the shipped cascade config answers and escalates",
          "[engine][taskmodels]") {
  POLYINFER_SHARED_OR_RETURN(root, "taskmodels");
  const auto items = read_jsonl(root / "dev.jsonl", 40);
  EngineConfig config = taskmodels_config(root);
  polyinfer::CascadeOptions cascade;
  cascade.steps = {{"small", "", 0}, {"medium", "", 0}, {"large", "", 0}};
  config.routing = polyinfer::make_cascade_policy(cascade);
  Engine engine(config);
  std::vector<std::future<Response>> futures;
  for (const auto& item : items) {
    Request request;
    request.task = item["task_type"];
    request.prompt = item["prompt"];
    futures.push_back(engine.submit(request));
  }
  int correct = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const Response r = futures[i].get();
    REQUIRE(r.status == Status::kOk);
    const auto& small = items[i]["models"]["small"];
    correct += first_line(r.text) == first_line(items[i]["answer"].get<std::string>()) ? 1 : 0;
    // Small answers alone exactly when its reference confidence reaches 0.9 (up to near-ties).
    const double p = small["min_top1_prob"].get<double>();
    if (p > 0.91) CHECK(r.model == "small");
    if (p < 0.89) CHECK(r.route.size() >= 2);
  }
  CHECK(correct >= static_cast<int>(items.size()) - 1);
  // The same requests again: every one from the cache, at no cost.
  for (const auto& item : items) {
    Request request;
    request.task = item["task_type"];
    request.prompt = item["prompt"];
    const Response r = engine.submit(request).get();
    CHECK(r.cache_hit);
    CHECK(r.cost.device_seconds == 0);
  }
}

TEST_CASE("engine taskmodels: the router classifier picks the tier", "[engine][taskmodels]") {
  POLYINFER_SHARED_OR_RETURN(root, "taskmodels");
  const auto items = read_jsonl(root / "router" / "router-dev.jsonl", 40);
  EngineConfig config = taskmodels_config(root);
  ModelSpec router;
  router.name = "router";
  router.path = root / "router";
  router.kind = "classifier";
  router.relative_cost = 0.0293;
  config.models.push_back(router);
  polyinfer::ClassifierOptions options;
  options.classifier = "router";
  options.labels = {"small", "medium", "large"};
  options.steps = {{"small", "", 0}, {"medium", "", 0}, {"large", "", 0}};
  options.tau = {0.9f, 0.9f, 0.9f};
  config.routing = polyinfer::make_classifier_policy(options);
  config.cache.enabled = false;
  Engine engine(config);
  std::vector<std::future<Response>> futures;
  for (const auto& item : items) {
    Request request;
    request.task = item["task_type"];
    request.prompt = item["text"];
    futures.push_back(engine.submit(request));
  }
  for (size_t i = 0; i < items.size(); ++i) {
    const Response r = futures[i].get();
    REQUIRE(r.status == Status::kOk);
    REQUIRE(r.route.size() == 2);
    CHECK(r.route[0] == "router/native");
    // Expected tier from the reference probabilities (skip near-ties around tau).
    const auto probs = items[i]["probs"].get<std::vector<double>>();
    if (std::abs(probs[0] - 0.9) < 0.01 || std::abs(probs[0] + probs[1] - 0.9) < 0.01) continue;
    const std::string expected = probs[0] >= 0.9              ? "small"
                                 : probs[0] + probs[1] >= 0.9 ? "medium"
                                                              : "large";
    INFO(items[i]["text"]);
    CHECK(r.model == expected);
  }
  // The classifier also answers classification requests directly.
  Request classify;
  classify.kind = polyinfer::RequestKind::kClassify;
  classify.prompt = items[0]["text"];
  const Response label = engine.submit(classify).get();
  REQUIRE(label.status == Status::kOk);
  REQUIRE(label.values.size() == 3);
  const auto probs = items[0]["probs"].get<std::vector<double>>();
  for (size_t k = 0; k < 3; ++k) CHECK(label.values[k] == Approx(probs[k]).margin(1e-4));
}

TEST_CASE("engine taskmodels: a memory budget smaller than the models evicts and reloads",
          "[engine][taskmodels]") {
  POLYINFER_SHARED_OR_RETURN(root, "taskmodels");
  const auto items = read_jsonl(root / "dev.jsonl", 12);
  EngineConfig config = taskmodels_config(root);
  config.cache.enabled = false;
  config.batching.max_sequences = 4;
  config.memory_budget_bytes = 26ull << 20;  // large (~21 MiB) + small, or medium + small
  Engine engine(config);
  for (int wave = 0; wave < 2; ++wave) {
    std::vector<std::future<Response>> futures;
    std::vector<std::string> expected;
    for (const std::string model : {"large", "small", "medium"}) {
      for (const auto& item : items) {
        Request request;
        request.prompt = item["prompt"];
        request.model = model;
        futures.push_back(engine.submit(request));
        expected.push_back(item["models"][model]["output"]);
      }
    }
    int same = 0;
    for (size_t i = 0; i < futures.size(); ++i) {
      const Response r = futures[i].get();
      REQUIRE(r.status == Status::kOk);
      same += r.text == expected[i] ? 1 : 0;
    }
    CHECK(same >= static_cast<int>(futures.size()) - 1);
  }
  const auto metrics = engine.metrics();
  int64_t loads = 0;
  int64_t evictions = 0;
  for (const auto& [key, m] : metrics.by_model_tier) {
    loads += m.loads;
    evictions += m.evictions;
  }
  CHECK(evictions > 0);
  CHECK(loads > 3);
}
