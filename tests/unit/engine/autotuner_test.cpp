// SPDX-License-Identifier: Apache-2.0
// AutoTuner: windows end in decisions, audits re-run accepted answers, knobs stay in bounds.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "engine/autotuner.hpp"
#include "fake_models.hpp"

namespace {

using polyinfer::EngineConfig;
using polyinfer::Request;
using polyinfer::Response;
using polyinfer::Status;
using polyinfer::test::fake_spec;
using polyinfer::test::FakeZoo;

}  // namespace

TEST_CASE("autotuner: decides every window and audits cascade answers", "[engine][tuner]") {
  FakeZoo zoo;
  zoo.decoders["small"].confidence = [](const std::string& p) {
    return static_cast<float>(0.8 + 0.01 * static_cast<double>(p.size() % 20));
  };
  zoo.decoders["large"];
  EngineConfig config;
  config.models = {fake_spec("small", 0.05), fake_spec("large", 1.0)};
  polyinfer::CascadeOptions cascade;
  cascade.steps = {{"small", "", 0}, {"large", "", 0}};
  config.routing = polyinfer::make_cascade_policy(cascade);
  config.tuner.enabled = true;
  config.tuner.window_requests = 20;
  config.tuner.audit_rate = 1.0;
  config.tuner.accuracy_floor = 0.9;
  polyinfer::detail::EngineImpl engine(config, zoo.loader());
  REQUIRE(engine.tuner() != nullptr);
  for (int i = 0; i < 400; ++i) {
    Request request;
    request.task = "rev";
    request.prompt = fmt::format("{} {} =", std::string(static_cast<size_t>(i % 37), 'x'), i);
    const Response r = engine.submit(request, {}).get();
    REQUIRE(r.status == Status::kOk);
  }
  const auto [kept, reverted] = engine.tuner()->decisions();
  CHECK(kept + reverted >= 5);
  const polyinfer::Metrics metrics = engine.metrics();
  CHECK(metrics.requests > 400);  // audits ran as extra requests
  for (const auto& [name, value] : metrics.knobs) {
    INFO(name);
    if (name.rfind("routing.threshold", 0) == 0) {
      CHECK(value >= 0.5);
      CHECK(value <= 0.999);
    }
    if (name == "batching.window_ms") CHECK(value <= 20.0);
  }
}
