// SPDX-License-Identifier: Apache-2.0
// EngineConfig::from_json: the schema, relative paths, and errors naming file and key.
#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "backend/device.hpp"
#include "polyinfer/engine.hpp"
#include "polyinfer/error.hpp"

namespace {

using polyinfer::EngineConfig;
using polyinfer::Error;
using polyinfer::ErrorCode;

/// Writes `text` to a fresh file in a temporary folder; returns its path.
std::filesystem::path write_config(const std::string& text,
                                   const std::string& name = "engine.json") {
  static std::atomic<int> counter{0};
  const auto folder =
      std::filesystem::temp_directory_path() /
      ("polyinfer-engine-config-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::filesystem::create_directories(folder / "configs");
  const auto path = folder / "configs" / name;
  std::ofstream(path) << text;
  return path;
}

constexpr const char* kModels = R"("models": [
    {"name": "small", "path": "../models/small", "tasks": ["add"], "relative_cost": 0.05},
    {"name": "large", "path": "/abs/large", "tiers": ["native", "q8_0"]}])";

/// The Error from_json throws for `text`, checked to name `key`.
Error error_for(const std::string& text, const std::string& key) {
  const auto path = write_config(text);
  try {
    (void)EngineConfig::from_json(path);
  } catch (const Error& e) {
    INFO(e.what());
    CHECK(e.where().find(path.string()) != std::string::npos);
    CHECK(e.where().find(key) != std::string::npos);
    return e;
  }
  FAIL("no error for " << text);
  return Error(ErrorCode::kInternal, "", "");
}

}  // namespace

TEST_CASE("engine config: a full config", "[engine][config]") {
  const auto path = write_config(std::string(R"({
    "executors": 2, "threads": 1, "memory_budget_mb": 64, "max_queue": 100, "max_tokens": 16,
    )") + kModels + R"(,
    "routing": {"policy": "cascade", "steps": ["small", {"model": "large", "tier": "q8_0"}],
                "threshold": {"low": 0.7, "high": 0.95}, "first_step": {"high": 1},
                "over_budget": "reject"},
    "batching": {"max_tokens": 128, "max_sequences": 8, "window_ms": 2.5},
    "cache": {"enabled": true, "max_mb": 2, "ttl_s": 60},
    "tuner": {"enabled": true, "window_requests": 50, "accuracy_floor": 0.98, "audit_rate": 0.1}
  })");
  const EngineConfig config = EngineConfig::from_json(path);
  CHECK(config.executors == 2);
  CHECK(config.memory_budget_bytes == 64ull << 20);
  CHECK(config.max_queue == 100);
  CHECK(config.max_tokens == 16);
  REQUIRE(config.models.size() == 2);
  CHECK(config.models[0].path == (path.parent_path() / "../models/small").lexically_normal());
  CHECK(config.models[0].relative_cost == Approx(0.05));
  CHECK(config.models[0].tasks == std::vector<std::string>{"add"});
  CHECK(config.models[1].path == "/abs/large");
  CHECK(config.models[1].tiers == std::vector<std::string>{"native", "q8_0"});
  REQUIRE(config.routing);
  CHECK(config.routing->name() == "cascade");
  const auto knobs = config.routing->knobs();
  CHECK(knobs.at("threshold.low") == Approx(0.7));
  CHECK(knobs.at("threshold.standard") == Approx(0.9));
  CHECK(knobs.at("threshold.high") == Approx(0.95));
  CHECK(config.batching.max_tokens == 128);
  CHECK(config.batching.max_sequences == 8);
  CHECK(config.batching.window_ms == Approx(2.5));
  CHECK(config.cache.max_bytes == 2ull << 20);
  CHECK(config.cache.ttl_s == 60);
  CHECK(config.tuner.enabled);
  CHECK(config.tuner.window_requests == 50);
}

TEST_CASE("engine config: every policy parses", "[engine][config]") {
  for (
      const std::string routing : {
          R"({"policy": "rules", "rules": [{"task": "add", "quality": "high", "model": "large"}]})",
          R"({"policy": "classifier", "classifier": "large", "labels": ["small", "large"],
               "tau": 0.9, "escalate": true})",
          R"({"policy": "ensemble", "steps": ["small", "large"], "vote": "confidence"})",
          R"({"policy": "complexity", "steps": ["small", "large"], "thresholds": {"add": [12]}})",
      }) {
    INFO(routing);
    const auto config = EngineConfig::from_json(
        write_config(std::string("{") + kModels + ", \"routing\": " + routing + "}"));
    REQUIRE(config.routing);
  }
}

TEST_CASE("engine config: complexity thresholds fitted from a dev file", "[engine][config]") {
  const auto path = write_config(std::string("{") + kModels + R"(,
    "routing": {"policy": "complexity", "steps": ["small", "large"],
                "fit": {"dev": "dev.jsonl", "accuracy_floor": 1.0}}})");
  std::ofstream dev(path.parent_path() / "dev.jsonl");
  for (int c = 8; c <= 20; ++c) {
    dev << R"({"task_type": "add", "n_prompt_tokens": )" << c
        << R"(, "models": {"small": {"correct": )" << (c <= 12 ? "true" : "false")
        << R"(, "n_gen_tokens": 3}, "large": {"correct": true, "n_gen_tokens": 3}}})"
        << "\n";
  }
  dev.close();
  const auto config = EngineConfig::from_json(path);
  REQUIRE(config.routing);
  CHECK(config.routing->name() == "complexity");
}

TEST_CASE("engine config: errors name the file and the key", "[engine][config]") {
  CHECK(error_for("{\"models\": [", "@").code() == ErrorCode::kFormat);
  CHECK(error_for("[]", "").code() == ErrorCode::kInvalidArgument);
  error_for("{}", "models");
  error_for(std::string("{") + kModels + ", \"bogus\": 1}", "bogus");
  error_for(std::string("{") + kModels + ", \"threads\": 0}", "threads");
  error_for(std::string("{") + kModels + ", \"threads\": \"two\"}", "threads");
  error_for(std::string("{") + kModels + ", \"max_tokens\": 1.5}", "max_tokens");
  error_for(std::string("{") + kModels + ", \"batching\": {\"max_sequences\": 0}}",
            "batching.max_sequences");
  error_for(std::string("{") + kModels + ", \"cache\": {\"size\": 3}}", "cache.size");
  // Devices: a name that is no device; an encoder on a GPU.
  error_for(R"({"models": [{"name": "m", "path": "x", "device": "gpu0"}]})", "device");
  error_for(R"({"models": [{"name": "m", "path": "x", "kind": "classifier", "device": "cuda:0"}]})",
            "device");
  error_for(std::string("{") + kModels + ", \"devices\": {\"name\": \"cuda:0\"}}", "devices");
  error_for(std::string("{") + kModels + ", \"devices\": [{\"name\": \"gpu0\"}]}",
            "devices[0].name");
  error_for(std::string("{") + kModels + ", \"devices\": [{\"name\": \"cpu\"}]}",
            "devices[0].name");
  error_for(std::string("{") + kModels +
                ", \"devices\": [{\"name\": \"cuda:0\", \"memory_budget_mb\": -1}]}",
            polyinfer::detail::cuda_built() ? "devices[0].memory_budget_mb" : "devices[0].name");
  error_for(std::string("{") + kModels + ", \"routing\": {\"policy\": \"magic\"}}",
            "routing.policy");
  error_for(std::string("{") + kModels + ", \"routing\": {\"policy\": \"cascade\"}}",
            "routing.steps");
  error_for(std::string("{") + kModels +
                ", \"routing\": {\"policy\": \"cascade\", \"steps\": [\"small\", \"huge\"]}}",
            "routing.steps");
  error_for(std::string("{") + kModels +
                ", \"routing\": {\"policy\": \"cascade\", \"steps\": [\"small\"], "
                "\"threshold\": {\"urgent\": 0.5}}}",
            "routing.threshold.urgent");
  error_for(
      std::string("{") + kModels +
          ", \"routing\": {\"policy\": \"cascade\", \"steps\": [\"small\"], \"threshold\": 2}}",
      "routing.threshold");
  error_for(std::string("{") + kModels +
                ", \"routing\": {\"policy\": \"rules\", \"rules\": [{\"model\": \"large\", "
                "\"quality\": \"best\"}]}}",
            "routing.rules[0].quality");
  error_for(R"({"models": [{"name": "a", "path": "x", "kind": "vision"}]})", "models[0].kind");
  error_for(R"({"models": [{"name": "a", "path": "x", "tiers": ["int3"]}]})", "models[0].tiers");
  error_for(R"({"models": [{"path": "x"}]})", "models[0].name");
  error_for(R"({"models": [{"name": "a", "path": "x"}, {"name": "a", "path": "y"}]})",
            "models[1].name");
  CHECK(error_for(std::string("{") + kModels +
                      ", \"routing\": {\"policy\": \"complexity\", \"steps\": [\"small\"], "
                      "\"fit\": {\"dev\": \"missing.jsonl\"}}}",
                  "routing.fit.dev")
            .code() == ErrorCode::kIo);
  CHECK_THROWS_AS(EngineConfig::from_json("/nonexistent/engine.json"), Error);
}

TEST_CASE("engine config: GPUs with budgets (a build with CUDA; else a clear error)",
          "[engine][config]") {
  const std::string text = R"({"devices": [{"name": "cuda:0", "memory_budget_mb": 100},
                                           {"name": "CUDA:1"}],
                               "models": [{"name": "m", "path": "x", "device": "cuda"}]})";
  if (!polyinfer::detail::cuda_built()) {
    CHECK(error_for(text, "devices[0].name").code() == ErrorCode::kInvalidArgument);
    return;
  }
  const EngineConfig config = EngineConfig::from_json(write_config(text));
  REQUIRE(config.devices.size() == 2);
  CHECK(config.devices[0].name == "cuda:0");
  CHECK(config.devices[0].memory_budget_bytes == 100ull << 20);
  CHECK(config.devices[1].memory_budget_bytes == 0);
  CHECK(config.models[0].device == "cuda");
}

TEST_CASE("engine config: the shipped example configs parse", "[engine][config]") {
  const auto folder = std::filesystem::path(__FILE__).parent_path() / "../../../examples/configs";
  int parsed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    if (entry.path().extension() != ".json") continue;
    INFO(entry.path());
    const EngineConfig config = EngineConfig::from_json(entry.path());
    CHECK_FALSE(config.models.empty());
    for (const auto& model : config.models) {
      // Paths resolve relative to the config: ../../../shared/taskmodels (the shared folder
      // beside the repo) or ../../models (the models the repo ships).
      CHECK(model.path.is_absolute());
      const std::string path = model.path.lexically_normal().string();
      CHECK((path.find("shared/taskmodels") != std::string::npos ||
             path.find("/models/") != std::string::npos));
    }
    ++parsed;
  }
  CHECK(parsed >= 2);
}
