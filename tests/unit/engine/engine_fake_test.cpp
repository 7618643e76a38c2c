// SPDX-License-Identifier: Apache-2.0
// Engine over fake models: answers, cascades, cache, coalescing, priorities, deadlines, budgets.
#include <catch2/catch.hpp>

#include <future>
#include <thread>

#include "fake_models.hpp"

namespace {

using polyinfer::CascadeOptions;
using polyinfer::EngineConfig;
using polyinfer::Priority;
using polyinfer::Quality;
using polyinfer::Request;
using polyinfer::Response;
using polyinfer::Status;
using polyinfer::test::fake_engine;
using polyinfer::test::fake_spec;
using polyinfer::test::FakeZoo;

/// Small fakes answer "reverse of the prompt"; "bad" prompts get a wrong, unsure answer.
FakeZoo three_tiers() {
  FakeZoo zoo;
  zoo.decoders["small"].answer = [](const std::string& p) {
    return p.find("hard") != std::string::npos ? std::string("wrong") : std::string(p.rbegin(), p.rend());
  };
  zoo.decoders["small"].confidence = [](const std::string& p) {
    return p.find("hard") != std::string::npos ? 0.4f : 0.99f;
  };
  zoo.decoders["medium"];
  zoo.decoders["large"];
  return zoo;
}

EngineConfig three_tier_config() {
  EngineConfig config;
  config.models = {fake_spec("small", 0.05, 0.9), fake_spec("medium", 0.3, 0.97),
                   fake_spec("large", 1.0, 1.0)};
  config.max_tokens = 32;
  return config;
}

std::string reversed(const std::string& s) {
  return std::string(s.rbegin(), s.rend()) + "\n";
}

Request ask(std::string prompt, Quality quality = Quality::kStandard) {
  Request request;
  request.task = "rev";
  request.prompt = std::move(prompt);
  request.quality = quality;
  return request;
}

}  // namespace

TEST_CASE("engine: a pinned model answers", "[engine]") {
  FakeZoo zoo = three_tiers();
  EngineConfig config = three_tier_config();
  auto engine = fake_engine(config, zoo);
  Request request = ask("abc =");
  request.model = "large";
  const Response r = engine->submit(request).get();
  REQUIRE(r.status == Status::kOk);
  CHECK(r.text == reversed("abc ="));
  CHECK(r.model == "large");
  CHECK(r.tier == "native");
  CHECK(r.cost.prompt_tokens == 6);
  CHECK(r.cost.generated_tokens == 6);
  CHECK(r.cost.units == Approx(12.0));
  CHECK(r.cost.model_calls == 1);
  CHECK(r.confidence == Approx(0.99).epsilon(1e-3));
  CHECK_FALSE(r.cache_hit);
}
