// SPDX-License-Identifier: Apache-2.0
// Placement of models across GPUs (EngineConfig::devices) over fake models: spread by free
// memory and load, per-device budgets with eviction there, pinned devices, split models
// charged to each of their GPUs, errors, and many threads at once. The fakes never touch a GPU:
// device names only reach the loader.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <future>
#include <set>
#include <thread>

#include "fake_models.hpp"

namespace {

using polyinfer::DeviceConfig;
using polyinfer::EngineConfig;
using polyinfer::Error;
using polyinfer::Request;
using polyinfer::Response;
using polyinfer::Status;
using polyinfer::test::fake_engine;
using polyinfer::test::fake_spec;
using polyinfer::test::FakeZoo;

Request ask_model(const std::string& model, const std::string& prompt) {
  Request request;
  request.prompt = prompt;
  request.model = model;
  return request;
}

// `names` decoders of `bytes` each, all with device "cuda" (placed by the Engine).
EngineConfig gpu_config(const std::vector<std::string>& names, FakeZoo& zoo, uint64_t bytes,
                        uint64_t budget_each) {
  EngineConfig config;
  for (const std::string& name : names) {
    zoo.decoders[name].bytes = bytes;
    zoo.decoders[name].step_time = std::chrono::microseconds(100);
    polyinfer::ModelSpec spec = fake_spec(name, 1.0);
    spec.device = "cuda";
    config.models.push_back(spec);
  }
  config.devices = {DeviceConfig{"cuda:0", budget_each}, DeviceConfig{"cuda:1", budget_each}};
  config.cache.enabled = false;
  config.executors = 2;
  return config;
}

}  // namespace

TEST_CASE("placement: models spread over the GPUs by free memory", "[engine][placement]") {
  FakeZoo zoo;
  auto engine = fake_engine(gpu_config({"a", "b", "c"}, zoo, 1000, 2500), zoo);
  // One at a time: a lands on cuda:0 (both empty, first listed), b on the emptier cuda:1, c on
  // cuda:0 again (equal free memory, first listed).
  for (const char* name : {"a", "b", "c"}) {
    const Response r = engine->submit(ask_model(name, "x =")).get();
    REQUIRE(r.status == Status::kOk);
  }
  CHECK(zoo.of("a").devices() == std::vector<std::string>{"cuda:0"});
  CHECK(zoo.of("b").devices() == std::vector<std::string>{"cuda:1"});
  CHECK(zoo.of("c").devices() == std::vector<std::string>{"cuda:0"});
  const auto metrics = engine->metrics();
  REQUIRE(metrics.by_device.contains("cuda:0"));
  REQUIRE(metrics.by_device.contains("cuda:1"));
  CHECK(metrics.by_device.at("cuda:0").resident_bytes == 2000);
  CHECK(metrics.by_device.at("cuda:0").models == 2);
  CHECK(metrics.by_device.at("cuda:1").resident_bytes == 1000);
  CHECK(metrics.by_device.at("cuda:1").budget_bytes == 2500);
  CHECK(metrics.by_device.at("cpu").resident_bytes == 0);
  CHECK(metrics.by_model_tier.at("b/native").device == "cuda:1");
  const std::string text = engine->metrics_prometheus();
  CHECK(text.find("polyinfer_device_resident_bytes{device=\"cuda:0\"} 2000") != std::string::npos);
}

TEST_CASE("placement: a full GPU evicts its own idle models; the other GPU is untouched",
          "[engine][placement]") {
  FakeZoo zoo;
  // One model per GPU fits; four models take turns.
  auto engine = fake_engine(gpu_config({"a", "b", "c", "d"}, zoo, 1000, 1500), zoo);
  for (int round = 0; round < 3; ++round) {
    for (const char* name : {"a", "b", "c", "d"}) {
      const Response r = engine->submit(ask_model(name, fmt::format("{} {} =", name, round))).get();
      REQUIRE(r.status == Status::kOk);
      CHECK(r.text == fmt::format("= {} {}\n", round, name));
    }
  }
  const auto metrics = engine->metrics();
  for (const char* device : {"cuda:0", "cuda:1"}) {
    CAPTURE(device);
    CHECK(metrics.by_device.at(device).peak_resident_bytes <= 1500);
    CHECK(metrics.by_device.at(device).models <= 1);
  }
  int64_t evictions = 0;
  int64_t loads = 0;
  std::set<std::string> used;
  for (const char* name : {"a", "b", "c", "d"}) {
    evictions += metrics.by_model_tier.at(std::string(name) + "/native").evictions;
    loads += zoo.of(name).loads.load();
    for (const std::string& d : zoo.of(name).devices()) used.insert(d);
  }
  // Four models through two one-model GPUs: every load past the second evicted one model there
  // (which ones depends on measured reload times, so not how many loads).
  CHECK(loads >= 4);
  CHECK(loads - evictions ==
        metrics.by_device.at("cuda:0").models + metrics.by_device.at("cuda:1").models);
  CHECK(evictions >= loads - 2);
  CHECK(used == std::set<std::string>{"cuda:0", "cuda:1"});
}

TEST_CASE("placement: pinned devices, budgets too small, bad device lists", "[engine][placement]") {
  FakeZoo zoo;
  EngineConfig config = gpu_config({"a", "pinned", "huge"}, zoo, 1000, 2500);
  config.models[1].device = "cuda:1";
  zoo.decoders["huge"].bytes = 3000;
  auto engine = fake_engine(config, zoo);
  REQUIRE(engine->submit(ask_model("a", "x =")).get().status == Status::kOk);
  // cuda:1 is emptier anyway; pin to the other one to see the pin win.
  REQUIRE(engine->submit(ask_model("pinned", "x =")).get().status == Status::kOk);
  CHECK(zoo.of("pinned").devices() == std::vector<std::string>{"cuda:1"});
  const Response refused = engine->submit(ask_model("huge", "x =")).get();
  CHECK(refused.status == Status::kModelUnavailable);
  CHECK(refused.error.find("memory budget is 2500") != std::string::npos);

  // A model pinned to a GPU that is not listed: no budget there.
  FakeZoo other;
  EngineConfig unlisted = gpu_config({"z"}, other, 1 << 20, 100);
  unlisted.models[0].device = "cuda:3";
  auto engine2 = fake_engine(unlisted, other);
  CHECK(engine2->submit(ask_model("z", "x =")).get().status == Status::kOk);
  CHECK(other.of("z").devices() == std::vector<std::string>{"cuda:3"});

  // Without a device list, "cuda" means cuda:0.
  FakeZoo plain;
  EngineConfig single = gpu_config({"y"}, plain, 1000, 0);
  single.devices.clear();
  auto engine3 = fake_engine(single, plain);
  CHECK(engine3->submit(ask_model("y", "x =")).get().status == Status::kOk);
  CHECK(plain.of("y").devices() == std::vector<std::string>{"cuda:0"});

  // Two budgets on one GPU: placed by the logical name, loaded on the physical one.
  FakeZoo split;
  EngineConfig halves = gpu_config({"p", "q"}, split, 1000, 1500);
  halves.devices = {DeviceConfig{"cuda:0", 1500, 0}, DeviceConfig{"cuda:1", 1500, 0}};
  auto engine4 = fake_engine(halves, split);
  CHECK(engine4->submit(ask_model("p", "x =")).get().status == Status::kOk);
  CHECK(engine4->submit(ask_model("q", "x =")).get().status == Status::kOk);
  CHECK(split.of("p").devices() == std::vector<std::string>{"cuda:0"});
  CHECK(split.of("q").devices() == std::vector<std::string>{"cuda:0"});
  CHECK(engine4->metrics().by_device.at("cuda:1").models == 1);
  CHECK(engine4->metrics().by_model_tier.at("q/native").device == "cuda:1");

  for (const char* bad : {"gpu0", "cuda:", "cuda:x", "cpu"}) {
    FakeZoo z;
    EngineConfig c = gpu_config({"q"}, z, 1000, 0);
    c.devices.push_back(DeviceConfig{bad, 0});
    CAPTURE(bad);
    CHECK_THROWS_WITH(fake_engine(c, z), Catch::Contains("devices") && Catch::Contains(bad));
  }
  FakeZoo z;
  EngineConfig twice = gpu_config({"q"}, z, 1000, 0);
  twice.devices.push_back(DeviceConfig{"CUDA:1", 0});
  CHECK_THROWS_WITH(fake_engine(twice, z), Catch::Contains("listed twice"));
}

TEST_CASE("placement: a split model takes its share of each of its GPUs' budgets",
          "[engine][placement]") {
  FakeZoo zoo;
  // One-model GPUs of 1500 bytes; "big" (2000) is split over both, 1000 on each.
  EngineConfig config = gpu_config({"a", "b", "big"}, zoo, 1000, 1500);
  zoo.decoders["big"].bytes = 2000;
  config.models[2].device = "cuda:0, cuda:1";
  auto engine = fake_engine(config, zoo);
  REQUIRE(engine->submit(ask_model("big", "x =")).get().status == Status::kOk);
  CHECK(zoo.of("big").devices() == std::vector<std::string>{"cuda:0,cuda:1"});
  auto metrics = engine->metrics();
  for (const char* device : {"cuda:0", "cuda:1"}) {
    CAPTURE(device);
    CHECK(metrics.by_device.at(device).resident_bytes == 1000);
    CHECK(metrics.by_device.at(device).models == 1);
  }
  CHECK_FALSE(metrics.by_device.contains("cuda:0, cuda:1"));
  CHECK(metrics.by_model_tier.at("big/native").device == "cuda:0, cuda:1");
  // a fits on neither GPU beside big's share: big (idle) is evicted, which frees both.
  REQUIRE(engine->submit(ask_model("a", "x =")).get().status == Status::kOk);
  metrics = engine->metrics();
  CHECK(metrics.by_model_tier.at("big/native").evictions == 1);
  CHECK(metrics.by_device.at("cuda:0").resident_bytes +
            metrics.by_device.at("cuda:1").resident_bytes ==
        1000);
  REQUIRE(engine->submit(ask_model("b", "x =")).get().status == Status::kOk);
  // big again: a and b each leave 500 bytes on their GPU; both go.
  REQUIRE(engine->submit(ask_model("big", "y =")).get().status == Status::kOk);
  metrics = engine->metrics();
  CHECK(metrics.by_model_tier.at("a/native").evictions == 1);
  CHECK(metrics.by_model_tier.at("b/native").evictions == 1);
  for (const char* device : {"cuda:0", "cuda:1"}) {
    CAPTURE(device);
    CHECK(metrics.by_device.at(device).resident_bytes == 1000);
    CHECK(metrics.by_device.at(device).peak_resident_bytes <= 1500);
  }

  // A split larger than its GPUs can hold together: refused, naming what they hold.
  FakeZoo other;
  EngineConfig too_big = gpu_config({"huge"}, other, 4000, 1500);
  too_big.models[0].device = "cuda:0,cuda:1";
  auto engine2 = fake_engine(too_big, other);
  const Response refused = engine2->submit(ask_model("huge", "x =")).get();
  CHECK(refused.status == Status::kModelUnavailable);
  CHECK(refused.error.find("memory budget is 3000") != std::string::npos);

  // Logical GPUs on one card: a split over them loads on the physical one twice.
  FakeZoo halves;
  EngineConfig logical = gpu_config({"h"}, halves, 1000, 1500);
  logical.devices = {DeviceConfig{"cuda:0", 1500, 0}, DeviceConfig{"cuda:1", 1500, 0}};
  logical.models[0].device = "cuda:0,cuda:1";
  auto engine3 = fake_engine(logical, halves);
  REQUIRE(engine3->submit(ask_model("h", "x =")).get().status == Status::kOk);
  CHECK(halves.of("h").devices() == std::vector<std::string>{"cuda:0,cuda:0"});
  CHECK(engine3->metrics().by_device.at("cuda:1").resident_bytes == 500);
}

TEST_CASE("placement: many threads over four models on two GPUs stay within budgets",
          "[engine][placement]") {
  FakeZoo zoo;
  auto engine = fake_engine(gpu_config({"a", "b", "c", "d"}, zoo, 1000, 2100), zoo);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 15; ++i) {
        const std::string name(1, static_cast<char>('a' + (t + i) % 4));
        const std::string prompt = fmt::format("t{} i{} =", t, i);
        const Response r = engine->submit(ask_model(name, prompt)).get();
        if (r.status == Status::kOk &&
            r.text == std::string(prompt.rbegin(), prompt.rend()) + "\n") {
          ++ok;
        } else {
          WARN(polyinfer::status_name(r.status) << ": " << r.error << " / " << r.text);
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(ok.load() == 60);
  const auto metrics = engine->metrics();
  for (const char* device : {"cuda:0", "cuda:1"}) {
    CAPTURE(device);
    CHECK(metrics.by_device.at(device).peak_resident_bytes <= 2100);
  }
}
