// SPDX-License-Identifier: Apache-2.0
// Engine over fake models: answers, cascades, cache, coalescing, priorities, deadlines, budgets.
#include <catch2/catch.hpp>

#include <fmt/format.h>

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
    return p.find("hard") != std::string::npos ? std::string("wrong")
                                               : std::string(p.rbegin(), p.rend());
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

TEST_CASE("engine: a cascade escalates unsure answers and accepts sure ones", "[engine]") {
  FakeZoo zoo = three_tiers();
  EngineConfig config = three_tier_config();
  CascadeOptions cascade;
  cascade.steps = {{"small", "", 0}, {"medium", "", 0}, {"large", "", 0}};
  cascade.thresholds = {0.9f, 0.9f, 0.9f};
  config.routing = polyinfer::make_cascade_policy(cascade);
  auto engine = fake_engine(config, zoo);

  const Response easy = engine->submit(ask("easy =")).get();
  REQUIRE(easy.status == Status::kOk);
  CHECK(easy.text == reversed("easy ="));
  CHECK(easy.model == "small");
  CHECK(easy.route == std::vector<std::string>{"small/native"});

  const Response hard = engine->submit(ask("hard =")).get();
  REQUIRE(hard.status == Status::kOk);
  CHECK(hard.text == reversed("hard ="));
  CHECK(hard.model == "medium");
  CHECK(hard.route == std::vector<std::string>{"small/native", "medium/native"});
  CHECK(hard.cost.model_calls == 2);
  // Units: small (7 prompt + 6 "wrong\n") × 0.05 + medium (7 + 7) × 0.3.
  CHECK(hard.cost.units == Approx(13 * 0.05 + 14 * 0.3));
  CHECK(engine->metrics().escalations == 1);

  // A budget that leaves no room after small: small's answer stands.
  Request tight = ask("hard =");
  tight.prompt = "hard  =";  // not cached
  tight.max_cost = 1.2;
  const Response cut = engine->submit(tight).get();
  REQUIRE(cut.status == Status::kOk);
  CHECK(cut.model == "small");
  CHECK(cut.text == "wrong\n");
}

TEST_CASE("engine: exact cache and coalescing of identical requests", "[engine]") {
  FakeZoo zoo = three_tiers();
  zoo.decoders["small"].step_time = std::chrono::microseconds(2000);
  EngineConfig config = three_tier_config();
  config.routing = polyinfer::make_rules_policy({{{"", {}, "small", ""}}, 0.95, {}});
  auto engine = fake_engine(config, zoo);

  // Ten identical requests at once: one runs, nine share its answer.
  std::vector<std::future<Response>> futures;
  for (int i = 0; i < 10; ++i) futures.push_back(engine->submit(ask("same =")));
  int hits = 0;
  for (auto& f : futures) {
    const Response r = f.get();
    REQUIRE(r.status == Status::kOk);
    CHECK(r.text == reversed("same ="));
    hits += r.cache_hit ? 1 : 0;
    if (r.cache_hit) CHECK(r.cost.units == 0);
  }
  CHECK(hits == 9);
  CHECK(zoo.of("small").forwards.load() == 7);  // prompt, then 6 of the 7 generated tokens
  const Response again = engine->submit(ask("same =")).get();
  CHECK(again.cache_hit);
  CHECK(again.model == "small");
  CHECK(engine->metrics().cache_hits == 10);

  // A request asking for more quality than the cached answer was made for runs again.
  const Response better = engine->submit(ask("same =", Quality::kHigh)).get();
  CHECK_FALSE(better.cache_hit);
}

TEST_CASE("engine: continuous batching runs sequences together", "[engine]") {
  FakeZoo zoo = three_tiers();
  zoo.decoders["large"].step_time = std::chrono::microseconds(500);
  EngineConfig config = three_tier_config();
  config.cache.enabled = false;
  auto engine = fake_engine(config, zoo);
  std::vector<std::future<Response>> futures;
  for (int i = 0; i < 40; ++i) {
    Request request = ask(fmt::format("prompt number {} =", i));
    request.model = "large";
    futures.push_back(engine->submit(request));
  }
  for (int i = 0; i < 40; ++i) {
    const Response r = futures[static_cast<size_t>(i)].get();
    REQUIRE(r.status == Status::kOk);
    CHECK(r.text == reversed(fmt::format("prompt number {} =", i)));
  }
  CHECK(zoo.of("large").max_batch.load() > 4);
  CHECK(zoo.of("large").forwards.load() < 40 * 10);
}

TEST_CASE("engine: greedy steps take the picks, sampled ones the logits", "[engine]") {
  FakeZoo zoo = three_tiers();
  EngineConfig config = three_tier_config();
  config.cache.enabled = false;
  auto engine = fake_engine(config, zoo);
  Request greedy = ask("greedy steps =");
  greedy.model = "large";
  const Response first = engine->submit(greedy).get();
  REQUIRE(first.status == Status::kOk);
  CHECK(first.text == reversed("greedy steps ="));
  // Every pass of a greedy request asks for the reduced rows (on a GPU: 8 bytes a row).
  CHECK(zoo.of("large").greedy_forwards.load() == zoo.of("large").forwards.load());
  CHECK(zoo.of("large").forwards.load() > 0);

  // A sampled request needs the whole distribution: its passes copy the logits.
  const int greedy_before = zoo.of("large").greedy_forwards.load();
  const int before = zoo.of("large").forwards.load();
  Request sampled = ask("sampled steps =");
  sampled.model = "large";
  sampled.sampling.temperature = 0.5f;
  sampled.sampling.seed = 7;
  const Response second = engine->submit(sampled).get();
  REQUIRE(second.status == Status::kOk);
  CHECK(zoo.of("large").forwards.load() > before);
  CHECK(zoo.of("large").greedy_forwards.load() == greedy_before);
}

TEST_CASE("engine: deadlines, cancellation and admission control", "[engine]") {
  FakeZoo zoo = three_tiers();
  zoo.decoders["large"].step_time = std::chrono::microseconds(3000);
  EngineConfig config = three_tier_config();
  config.cache.enabled = false;
  config.max_queue = 3;
  config.batching.max_sequences = 1;
  auto engine = fake_engine(config, zoo);

  Request slow = ask("a long prompt to reverse =");
  slow.model = "large";
  slow.deadline = std::chrono::milliseconds(10);
  auto timed = engine->submit(slow);

  Request cancelled = ask("cancel me =");
  cancelled.model = "large";
  cancelled.cancel.emplace();
  auto cancel_future = engine->submit(cancelled);
  cancelled.cancel->cancel();

  Request streamed = ask("stream me =");
  streamed.model = "large";
  int tokens = 0;
  auto stream_future = engine->submit(streamed, [&](std::string_view, int32_t) {
    return ++tokens < 3;  // stop after three tokens
  });

  Request extra = ask("overflow =");
  extra.model = "large";
  const Response refused = engine->submit(extra).get();
  CHECK(refused.status == Status::kOverloaded);

  CHECK(timed.get().status == Status::kTimeout);
  CHECK(cancel_future.get().status == Status::kCancelled);
  CHECK(stream_future.get().status == Status::kCancelled);
  CHECK(tokens == 3);

  const auto metrics = engine->metrics();
  CHECK(metrics.by_status.at("timeout") == 1);
  CHECK(metrics.by_status.at("overloaded") == 1);
  CHECK(metrics.queued == 0);
}

TEST_CASE("engine: streaming delivers every token of the accepted answer", "[engine]") {
  FakeZoo zoo = three_tiers();
  EngineConfig config = three_tier_config();
  CascadeOptions cascade;
  cascade.steps = {{"small", "", 0}, {"large", "", 0}};
  config.routing = polyinfer::make_cascade_policy(cascade);
  auto engine = fake_engine(config, zoo);
  for (const std::string prompt : {"easy =", "hard ="}) {
    std::vector<int32_t> ids;
    const Response r = engine
                           ->submit(ask(prompt),
                                    [&](std::string_view, int32_t id) {
                                      ids.push_back(id);
                                      return true;
                                    })
                           .get();
    REQUIRE(r.status == Status::kOk);
    CHECK(r.text == reversed(prompt));
    CHECK(ids == r.tokens);
  }
}

TEST_CASE("engine: higher priorities preempt lower ones", "[engine]") {
  FakeZoo zoo = three_tiers();
  zoo.decoders["large"].step_time = std::chrono::microseconds(1000);
  EngineConfig config = three_tier_config();
  config.cache.enabled = false;
  config.batching.max_sequences = 2;
  auto engine = fake_engine(config, zoo);
  std::vector<std::future<Response>> low;
  for (int i = 0; i < 6; ++i) {
    Request request = ask(fmt::format("a rather long low priority prompt {} =", i));
    request.model = "large";
    request.priority = Priority::kLow;
    low.push_back(engine->submit(request));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  Request urgent = ask("urgent =");
  urgent.model = "large";
  urgent.priority = Priority::kRealtime;
  const Response r = engine->submit(urgent).get();
  REQUIRE(r.status == Status::kOk);
  int finished_before = 0;
  for (auto& f : low) {
    if (f.wait_for(std::chrono::seconds(0)) == std::future_status::ready) ++finished_before;
  }
  CHECK(finished_before < 6);
  for (auto& f : low) {
    const Response done = f.get();
    CHECK(done.status == Status::kOk);
  }
  CHECK(engine->metrics_prometheus().find("polyinfer_preemptions_total") != std::string::npos);
}

TEST_CASE("engine: a classifier routes, an ensemble votes", "[engine]") {
  FakeZoo zoo = three_tiers();
  zoo.encoders["router"] = [](const std::string& text) {
    return text.find("hard") != std::string::npos ? std::vector<float>{0.1f, 0.8f, 0.1f}
                                                  : std::vector<float>{0.95f, 0.04f, 0.01f};
  };
  EngineConfig config = three_tier_config();
  config.models.push_back(fake_spec("router", 0.03, 1.0, "classifier"));
  polyinfer::ClassifierOptions options;
  options.classifier = "router";
  options.labels = {"small", "medium", "large"};
  options.steps = {{"small", "", 0}, {"medium", "", 0}, {"large", "", 0}};
  config.routing = polyinfer::make_classifier_policy(options);
  config.batching.window_ms = 2;
  auto engine = fake_engine(config, zoo);
  const Response easy = engine->submit(ask("easy =")).get();
  REQUIRE(easy.status == Status::kOk);
  CHECK(easy.model == "small");
  CHECK(easy.route == std::vector<std::string>{"router/native", "small/native"});
  const Response hard = engine->submit(ask("hard =")).get();
  CHECK(hard.model == "medium");
  CHECK(hard.text == reversed("hard ="));

  Request classify;
  classify.kind = polyinfer::RequestKind::kClassify;
  classify.prompt = "hard =";
  const Response label = engine->submit(classify).get();
  REQUIRE(label.status == Status::kOk);
  CHECK(label.text == "medium");
  CHECK(label.values.size() == 3);

  FakeZoo zoo2 = three_tiers();
  EngineConfig vote = three_tier_config();
  vote.routing = polyinfer::make_ensemble_policy(
      {{{"small", "", 0}, {"medium", "", 0}, {"large", "", 0}}, polyinfer::Plan::Vote::kMajority});
  auto ensemble = fake_engine(vote, zoo2);
  const Response voted = ensemble->submit(ask("hard =")).get();
  REQUIRE(voted.status == Status::kOk);
  CHECK(voted.text == reversed("hard ="));  // two of three agree
  CHECK(voted.cost.model_calls == 3);
}

TEST_CASE("engine: unknown models, bad requests and failed loads answer with a status",
          "[engine]") {
  FakeZoo zoo = three_tiers();
  zoo.decoders["broken"].fail_load = true;
  EngineConfig config = three_tier_config();
  config.models.push_back(fake_spec("broken", 0.1));
  auto engine = fake_engine(config, zoo);
  Request unknown = ask("x =");
  unknown.model = "nobody";
  CHECK(engine->submit(unknown).get().status == Status::kModelUnavailable);
  CHECK(engine->submit(ask("")).get().status == Status::kInvalidRequest);
  Request too_long = ask(fmt::format("{} =", std::string(100, 'x')));
  too_long.model = "large";
  CHECK(engine->submit(too_long).get().status == Status::kInvalidRequest);
  Request broken = ask("x =");
  broken.model = "broken";
  const Response r = engine->submit(broken).get();
  CHECK(r.status == Status::kModelUnavailable);
  CHECK(r.error.find("fake load failure") != std::string::npos);
  CHECK_THROWS_AS(engine->add_model(fake_spec("large", 1.0)), polyinfer::Error);
  zoo.decoders["late"];  // before the engine can load it
  (void)zoo.of("late");
  engine->add_model(fake_spec("late", 1.0));
  Request late = ask("late =");
  late.model = "late";
  CHECK(engine->submit(late).get().status == Status::kOk);
}

TEST_CASE("engine: more models than memory: eviction and reload, everything answered", "[engine]") {
  FakeZoo zoo;
  for (const char* name : {"a", "b", "c", "d"}) {
    zoo.decoders[name].bytes = 1000;
    zoo.decoders[name].step_time = std::chrono::microseconds(200);
  }
  EngineConfig config;
  for (const char* name : {"a", "b", "c", "d"}) config.models.push_back(fake_spec(name, 1.0));
  config.memory_budget_bytes = 2500;  // two models at a time
  config.cache.enabled = false;
  auto engine = fake_engine(config, zoo);
  // Two waves: the second needs the models the first evicted.
  for (int wave = 0; wave < 2; ++wave) {
    std::vector<std::future<Response>> futures;
    for (int i = 0; i < 40; ++i) {
      Request request = ask(fmt::format("p{} =", i));
      request.model = std::string(1, static_cast<char>('a' + i % 4));
      futures.push_back(engine->submit(request));
    }
    for (auto& f : futures) CHECK(f.get().status == Status::kOk);
  }
  int loads = 0;
  for (const char* name : {"a", "b", "c", "d"}) {
    loads += zoo.of(name).loads.load();
    CHECK(zoo.of(name).loads.load() >= 1);
  }
  CHECK(loads > 4);  // some reloaded
  int live = 0;
  for (const char* name : {"a", "b", "c", "d"}) live += zoo.of(name).live.load();
  CHECK(live <= 2);
  const auto metrics = engine->metrics();
  int64_t evictions = 0;
  for (const auto& [key, m] : metrics.by_model_tier) evictions += m.evictions;
  CHECK(evictions > 0);

  // A model larger than the whole budget is unavailable, not a hang.
  FakeZoo big;
  big.decoders["huge"].bytes = 1000;
  EngineConfig tiny;
  tiny.models = {fake_spec("huge", 1.0)};
  tiny.memory_budget_bytes = 500;
  auto small_engine = fake_engine(tiny, big);
  Request request = ask("x =");
  request.model = "huge";
  const Response refused = small_engine->submit(request).get();
  CHECK(refused.status == Status::kModelUnavailable);
  CHECK(refused.error.find("memory budget") != std::string::npos);
}

TEST_CASE("engine: metrics in Prometheus text", "[engine]") {
  FakeZoo zoo = three_tiers();
  auto engine = fake_engine(three_tier_config(), zoo);
  Request request = ask("m =");
  request.model = "small";
  REQUIRE(engine->submit(request).get().status == Status::kOk);
  const std::string text = engine->metrics_prometheus();
  CHECK(text.find("# TYPE polyinfer_requests_total counter\npolyinfer_requests_total 1") !=
        std::string::npos);
  CHECK(text.find("polyinfer_model_calls_total{model=\"small\",tier=\"native\"} 1") !=
        std::string::npos);
  CHECK(text.find("polyinfer_request_latency_seconds_bucket{le=\"+Inf\"} 1") != std::string::npos);
  CHECK(text.find("polyinfer_request_latency_seconds_count{model=\"small\",tier=\"native\"} 1") !=
        std::string::npos);
  const auto metrics = engine->metrics();
  CHECK(metrics.completed == 1);
  CHECK(metrics.by_model_tier.at("small/native").requests == 1);
  CHECK(metrics.knobs.count("batching.window_ms") == 1);
}

TEST_CASE("engine: shutdown answers everything still queued", "[engine]") {
  FakeZoo zoo = three_tiers();
  zoo.decoders["large"].step_time = std::chrono::microseconds(2000);
  EngineConfig config = three_tier_config();
  config.cache.enabled = false;
  config.batching.max_sequences = 1;
  std::vector<std::future<Response>> futures;
  {
    auto engine = fake_engine(config, zoo);
    for (int i = 0; i < 20; ++i) {
      Request request = ask(fmt::format("q{} =", i));
      request.model = "large";
      futures.push_back(engine->submit(request));
    }
  }
  int cancelled = 0;
  for (auto& f : futures) {
    REQUIRE(f.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
    const Response r = f.get();
    CHECK((r.status == Status::kOk || r.status == Status::kCancelled));
    cancelled += r.status == Status::kCancelled ? 1 : 0;
  }
  CHECK(cancelled > 0);
}

TEST_CASE("engine: the next cascade step verifies the rejected answer in one pass", "[engine]") {
  FakeZoo zoo = three_tiers();
  zoo.decoders["small"].confidence = [](const std::string& p) {
    return p.find("hard") != std::string::npos || p.find("unsure") != std::string::npos ? 0.4f
                                                                                        : 0.99f;
  };
  EngineConfig config = three_tier_config();
  config.cache.enabled = false;
  CascadeOptions cascade;
  cascade.steps = {{"small", "", 0}, {"large", "", 0}};
  config.routing = polyinfer::make_cascade_policy(cascade);
  for (const int variant : {0, 1, 2}) {
    const bool verify = variant != 1;
    config.batching.verify_drafts = verify;
    config.batching.max_tokens = variant == 2 ? 3 : 256;  // 2: prompts and drafts in chunks
    FakeZoo fresh = zoo;
    fresh.stats.clear();
    auto engine = fake_engine(config, fresh);
    // Small is right but unsure: large agrees with every draft token in one forward pass.
    const Response agreed = engine->submit(ask("unsure =")).get();
    REQUIRE(agreed.status == Status::kOk);
    CHECK(agreed.model == "large");
    CHECK(agreed.text == reversed("unsure ="));
    CHECK(agreed.confidence == Approx(0.99).epsilon(1e-3));
    if (variant < 2) CHECK(fresh.of("large").forwards.load() == (verify ? 1 : 9));
    // Small is wrong: large disagrees at once and generates its own answer.
    const Response fixed = engine->submit(ask("hard =")).get();
    REQUIRE(fixed.status == Status::kOk);
    CHECK(fixed.text == reversed("hard ="));
    CHECK(fixed.cost.generated_tokens == 6 + 7);
  }
}

TEST_CASE("engine: the semantic cache answers near-duplicate prompts", "[engine]") {
  FakeZoo zoo = three_tiers();
  // Embedding: letter counts, so anagrams embed alike and other words differ.
  zoo.encoders["embedder"] = [](const std::string& text) {
    std::vector<float> counts(26, 0.0f);
    for (const char c : text) {
      if (c >= 'a' && c <= 'z') counts[static_cast<size_t>(c - 'a')] += 1.0f;
    }
    return counts;
  };
  EngineConfig config = three_tier_config();
  config.models.push_back(fake_spec("embedder", 0.01, 1.0, "embedding"));
  config.cache.semantic_model = "embedder";
  config.cache.semantic_threshold = 0.99;
  config.batching.window_ms = 0.2;
  auto engine = fake_engine(config, zoo);
  Request first = ask("listen =");
  first.model = "large";
  const Response original = engine->submit(first).get();
  REQUIRE(original.status == Status::kOk);
  CHECK_FALSE(original.cache_hit);
  CHECK(original.route == std::vector<std::string>{"embedder/native", "large/native"});
  Request anagram = first;
  anagram.prompt = "silent =";
  const Response near = engine->submit(anagram).get();
  REQUIRE(near.status == Status::kOk);
  CHECK(near.cache_hit);
  CHECK(near.text == original.text);  // the stored answer, although the prompt differs
  CHECK(near.cost.units > 0);         // the embedding was computed
  Request other = first;
  other.prompt = "stone =";
  const Response miss = engine->submit(other).get();
  CHECK_FALSE(miss.cache_hit);
  CHECK(miss.text == reversed("stone ="));
}
