// SPDX-License-Identifier: Apache-2.0
// Stress: many threads, random priorities, deadlines and cancellations across models under a
// memory budget: every request gets exactly one response, nothing deadlocks. Tagged [tsan] for
// ThreadSanitizer runs; POLYINFER_STRESS_SCALE multiplies the request count.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <cstdlib>
#include <random>
#include <thread>

#include "fake_models.hpp"

namespace {

using polyinfer::EngineConfig;
using polyinfer::Priority;
using polyinfer::Quality;
using polyinfer::Request;
using polyinfer::Response;
using polyinfer::Status;
using polyinfer::test::fake_engine;
using polyinfer::test::fake_spec;
using polyinfer::test::FakeZoo;

int scale() {
  const char* text = std::getenv("POLYINFER_STRESS_SCALE");
  const int value = text != nullptr ? std::atoi(text) : 1;
  return value > 0 ? value : 1;
}

}  // namespace

TEST_CASE("engine stress: threads, priorities, deadlines, cancellations, eviction",
          "[engine][stress][tsan]") {
  FakeZoo zoo;
  const std::vector<std::string> names{"a", "b", "c", "d"};
  for (const std::string& name : names) {
    zoo.decoders[name].bytes = 1000;
    zoo.decoders[name].step_time = std::chrono::microseconds(50);
    zoo.decoders[name].confidence = [](const std::string& p) {
      return p.size() % 3 == 0 ? 0.5f : 0.99f;
    };
  }
  EngineConfig config;
  for (const std::string& name : names) config.models.push_back(fake_spec(name, 0.1));
  config.memory_budget_bytes = 3000;
  config.executors = 2;
  config.max_queue = 200;
  config.batching.max_sequences = 4;
  config.max_tokens = 12;
  polyinfer::CascadeOptions cascade;
  cascade.steps = {{"a", "", 0}, {"b", "", 0}, {"c", "", 0}};
  config.routing = polyinfer::make_cascade_policy(cascade);
  auto engine = fake_engine(config, zoo);

  const int threads = 8;
  const int per_thread = 40 * scale();
  std::vector<std::vector<std::future<Response>>> futures(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937 rng(static_cast<uint32_t>(1000 + t));
      for (int i = 0; i < per_thread; ++i) {
        Request request;
        request.task = "rev";
        request.prompt = fmt::format("t{} r{} =", t, rng() % 50);
        request.priority = static_cast<Priority>(rng() % 4);
        request.quality = static_cast<Quality>(rng() % 3);
        if (rng() % 2 == 0) request.model = names[rng() % names.size()];
        if (rng() % 4 == 0) request.deadline = std::chrono::milliseconds(1 + rng() % 20);
        if (rng() % 5 == 0) request.max_cost = 0.5 + (rng() % 10);
        const unsigned what = rng() % 6;
        if (what == 0) {
          request.cancel.emplace();
          auto token = *request.cancel;
          futures[static_cast<size_t>(t)].push_back(engine->submit(std::move(request)));
          if (rng() % 2 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 500));
          token.cancel();
        } else if (what == 1) {
          const unsigned stop_after = rng() % 4;
          auto seen = std::make_shared<unsigned>(0);
          futures[static_cast<size_t>(t)].push_back(engine->submit(
              std::move(request),
              [seen, stop_after](std::string_view, int32_t) { return ++*seen <= stop_after; }));
        } else {
          futures[static_cast<size_t>(t)].push_back(engine->submit(std::move(request)));
        }
        if (rng() % 8 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 300));
      }
    });
  }
  for (std::thread& worker : workers) worker.join();

  std::map<Status, int> statuses;
  int answered = 0;
  for (auto& list : futures) {
    for (auto& future : list) {
      REQUIRE(future.wait_for(std::chrono::seconds(60)) == std::future_status::ready);
      const Response r = future.get();
      ++statuses[r.status];
      ++answered;
      if (r.status == Status::kOk) CHECK(!r.model.empty());
      CHECK(r.status != Status::kInternalError);
    }
  }
  CHECK(answered == threads * per_thread);
  CHECK(statuses[Status::kOk] > 0);
  const auto metrics = engine->metrics();
  CHECK(metrics.completed == answered);
  CHECK(metrics.queued == 0);
  int live = 0;
  for (const std::string& name : names) live += zoo.of(name).live.load();
  CHECK(live <= 3);
}
