// SPDX-License-Identifier: Apache-2.0
// Built-in routing policies on fake catalogs: rules, cascade, classifier, ensemble, complexity.
#include <catch2/catch.hpp>

#include "polyinfer/error.hpp"
#include "polyinfer/policy.hpp"

namespace {

using namespace polyinfer;  // NOLINT: test brevity

std::vector<CatalogEntry> catalog() {
  const std::vector<std::string> tasks{"add", "sort", "reverse"};
  return {
      {"small", "native", "decoder", tasks, 0.05, 0.95, false},
      {"medium", "native", "decoder", tasks, 0.34, 0.997, false},
      {"large", "native", "decoder", tasks, 1.0, 0.999, true},
      {"large", "q8_0", "decoder", tasks, 0.5, 0.99, false},
      {"poet", "native", "decoder", {"poem"}, 0.2, 0.9, false},
      {"router", "native", "classifier", {}, 0.03, 1.0, false},
  };
}

RequestInfo info(std::string task, Quality quality, std::optional<double> max_cost = {}) {
  RequestInfo r;
  r.task = std::move(task);
  r.prompt = "add 1 2 =";
  r.prompt_tokens = 10;
  r.expected_output_tokens = 10;  // estimates: 20 tokens × relative cost
  r.quality = quality;
  r.max_cost = max_cost;
  return r;
}

std::vector<std::string> models(const Plan& plan) {
  std::vector<std::string> out;
  for (const PlanStep& step : plan.steps) out.push_back(step.model + "/" + step.tier);
  return out;
}

}  // namespace

TEST_CASE("rules policy: rules first, then the cheapest adequate model", "[engine][policy]") {
  RulesOptions options;
  options.rules = {{"sort", Quality::kHigh, "medium", "native"}};
  auto policy = make_rules_policy(options);
  const auto entries = catalog();
  CHECK(policy->name() == "rules");
  CHECK(models(policy->plan(info("sort", Quality::kHigh), entries)) ==
        std::vector<std::string>{"medium/native"});
  CHECK(models(policy->plan(info("add", Quality::kLow), entries)) ==
        std::vector<std::string>{"small/native"});
  // standard: quality ≥ 0.95 → small (0.95) qualifies.
  CHECK(models(policy->plan(info("add", Quality::kStandard), entries)) ==
        std::vector<std::string>{"small/native"});
  // high: the best hint (large/native 0.999).
  CHECK(models(policy->plan(info("add", Quality::kHigh), entries)) ==
        std::vector<std::string>{"large/native"});
  CHECK(models(policy->plan(info("poem", Quality::kHigh), entries)) ==
        std::vector<std::string>{"poet/native"});
  // No decoder serves the task: no steps.
  CHECK(policy->plan(info("chess", Quality::kLow), catalog()).steps.empty());
}

TEST_CASE("rules policy: budgets pick what fits, else the cheapest or a rejection",
          "[engine][policy]") {
  auto policy = make_rules_policy({});
  const auto entries = catalog();
  // high wants large (20 units); budget 8 allows medium (6.8) at most: the best that fits.
  Plan plan = policy->plan(info("add", Quality::kHigh, 8.0), entries);
  CHECK(models(plan) == std::vector<std::string>{"medium/native"});
  CHECK_FALSE(plan.over_budget);
  CHECK(plan.budget_limited);
  // Nothing fits 0.5 units: the cheapest, flagged.
  plan = policy->plan(info("add", Quality::kHigh, 0.5), entries);
  CHECK(models(plan) == std::vector<std::string>{"small/native"});
  CHECK(plan.over_budget);
  CHECK_FALSE(plan.reject_over_budget);
  RulesOptions reject;
  reject.over_budget = OverBudget::kReject;
  plan = make_rules_policy(reject)->plan(info("add", Quality::kHigh, 0.5), entries);
  CHECK(plan.over_budget);
  CHECK(plan.reject_over_budget);
}

TEST_CASE("cascade policy: thresholds by quality and budget trimming", "[engine][policy]") {
  CascadeOptions options;
  options.steps = {{"small", "", 0}, {"medium", "", 0}, {"large", "native", 0}};
  options.thresholds = {0.7f, 0.9f, 0.95f};
  options.first_step = {0, 0, 1};
  auto policy = make_cascade_policy(options);
  const auto entries = catalog();

  Plan plan = policy->plan(info("add", Quality::kStandard), entries);
  CHECK(plan.kind == Plan::Kind::kCascade);
  REQUIRE(plan.steps.size() == 3);
  CHECK(plan.steps[0].accept_confidence == Approx(0.9));
  CHECK(plan.steps[1].accept_confidence == Approx(0.9));
  CHECK(plan.steps[2].accept_confidence == 0.0f);
  CHECK(policy->plan(info("add", Quality::kLow), entries).steps[0].accept_confidence ==
        Approx(0.7));
  plan = policy->plan(info("add", Quality::kHigh), entries);
  CHECK(models(plan) == std::vector<std::string>{"medium/", "large/native"});

  // Budgets (estimates 20 tokens): small 1, medium 6.8, large 20.
  CHECK(models(policy->plan(info("add", Quality::kStandard, 100.0), entries)).size() == 3);
  plan = policy->plan(info("add", Quality::kStandard, 24.0), entries);  // not all three
  CHECK(models(plan) == std::vector<std::string>{"small/", "large/native"});
  CHECK(plan.budget_limited);
  plan = policy->plan(info("add", Quality::kStandard, 10.0), entries);
  CHECK(models(plan) == std::vector<std::string>{"small/", "medium/"});
  plan = policy->plan(info("add", Quality::kStandard, 2.0), entries);
  CHECK(models(plan) == std::vector<std::string>{"small/"});
  CHECK(plan.kind == Plan::Kind::kSingle);
  plan = policy->plan(info("add", Quality::kStandard, 0.1), entries);
  CHECK(models(plan) == std::vector<std::string>{"small/"});
  CHECK(plan.over_budget);

  // Knobs and the cache's quality classes.
  CHECK(policy->knobs().at("threshold.standard") == Approx(0.9));
  CHECK(policy->set_knob("threshold.standard", 0.8));
  CHECK_FALSE(policy->set_knob("nonsense", 1));
  CHECK(policy->plan(info("add", Quality::kStandard), entries).steps[0].accept_confidence ==
        Approx(0.8));
  CHECK(policy->cache_quality(Quality::kLow) == Quality::kLow);
  CascadeOptions same;
  same.steps = options.steps;
  auto uniform = make_cascade_policy(same);
  CHECK(uniform->cache_quality(Quality::kLow) == Quality::kHigh);
}

TEST_CASE("classifier policy: cheapest label whose cumulative probability reaches tau",
          "[engine][policy]") {
  ClassifierOptions options;
  options.classifier = "router";
  options.labels = {"small", "medium", "large"};
  options.steps = {{"small", "", 0}, {"medium", "", 0}, {"large", "native", 0}};
  options.tau = {0.5f, 0.9f, 0.99f};
  auto policy = make_classifier_policy(options);
  CHECK(policy->classifier() == "router");
  const auto entries = catalog();
  RequestInfo r = info("add", Quality::kStandard);
  r.classifier_scores = {{"small", 0.85f}, {"medium", 0.1f}, {"large", 0.05f}};
  CHECK(models(policy->plan(r, entries)) == std::vector<std::string>{"medium/"});
  r.quality = Quality::kLow;
  CHECK(models(policy->plan(r, entries)) == std::vector<std::string>{"small/"});
  r.quality = Quality::kHigh;
  CHECK(models(policy->plan(r, entries)) == std::vector<std::string>{"large/native"});
  // Without scores: a cascade over every label.
  r.classifier_scores.clear();
  CHECK(policy->plan(r, entries).steps.size() == 3);
  // Escalation: a cascade above the chosen label.
  options.escalate = true;
  r.quality = Quality::kStandard;
  r.classifier_scores = {{"small", 0.85f}, {"medium", 0.1f}, {"large", 0.05f}};
  const Plan plan = make_classifier_policy(options)->plan(r, entries);
  CHECK(models(plan) == std::vector<std::string>{"medium/", "large/native"});
  CHECK(plan.kind == Plan::Kind::kCascade);
  CHECK_THROWS_AS(make_classifier_policy({"router", {"a"}, {}, {}, false, 0.9f, {}}), Error);
}

TEST_CASE("ensemble policy: every step, vote kept", "[engine][policy]") {
  EnsembleOptions options;
  options.steps = {{"small", "", 0}, {"medium", "", 0}, {"ghost", "", 0}};
  options.vote = Plan::Vote::kConfidence;
  const Plan plan = make_ensemble_policy(options)->plan(info("add", Quality::kLow), catalog());
  CHECK(plan.kind == Plan::Kind::kEnsemble);
  CHECK(plan.vote == Plan::Vote::kConfidence);
  CHECK(models(plan) == std::vector<std::string>{"small/", "medium/"});
}

TEST_CASE("complexity policy: thresholds per task, fitted on a dev set", "[engine][policy]") {
  // Dev items: small is right up to complexity 12, medium up to 18, large always.
  std::vector<DevItem> items;
  for (int c = 8; c <= 24; ++c) {
    for (int copy = 0; copy < 3; ++copy) {
      items.push_back({"add", static_cast<double>(c), {c <= 12, c <= 18, true}, {1, 7, 20}});
    }
    items.push_back({"sort", static_cast<double>(c), {true, true, true}, {1, 7, 20}});
  }
  const auto fitted = fit_complexity_thresholds(items, 3, 1.0);
  REQUIRE(fitted.at("add").size() == 2);
  CHECK(fitted.at("add")[0] == 12);
  CHECK(fitted.at("add")[1] == 18);
  CHECK(fitted.at("sort")[0] == 24);  // small for everything
  // A lower floor trades accuracy for cost.
  const auto loose = fit_complexity_thresholds(items, 3, 0.5);
  CHECK(loose.at("add")[0] > 12);

  ComplexityOptions options;
  options.steps = {{"small", "", 0}, {"medium", "", 0}, {"large", "native", 0}};
  options.thresholds = fitted;
  auto policy = make_complexity_policy(options);
  RequestInfo r = info("add", Quality::kStandard);
  r.prompt_tokens = 10;
  CHECK(models(policy->plan(r, catalog())) == std::vector<std::string>{"small/"});
  r.prompt_tokens = 15;
  CHECK(models(policy->plan(r, catalog())) == std::vector<std::string>{"medium/"});
  r.prompt_tokens = 22;
  CHECK(models(policy->plan(r, catalog())) == std::vector<std::string>{"large/native"});
  r.quality = Quality::kHigh;
  r.prompt_tokens = 10;
  CHECK(models(policy->plan(r, catalog())) == std::vector<std::string>{"large/native"});
  r.quality = Quality::kStandard;
  r.prompt_tokens = 22;
  r.max_cost = 10.0;  // large (32 units) does not fit; medium (10.8) neither; small does
  const Plan plan = policy->plan(r, catalog());
  CHECK(models(plan) == std::vector<std::string>{"small/"});
  CHECK(plan.budget_limited);
}
