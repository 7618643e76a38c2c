// SPDX-License-Identifier: Apache-2.0
// Routing policies of the Engine (which model and tier answer a request) and their vocabulary.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace polyinfer {
inline namespace v0 {

/// How good an answer must be: kHigh = as good as the largest model, kStandard = a tier whose
/// expected accuracy for this kind of request is high, kLow = the cheapest tier will do.
enum class Quality { kLow = 0, kStandard = 1, kHigh = 2 };
/// Scheduling priority: higher is served first and preempts lower ones between decode steps.
enum class Priority { kLow = 0, kNormal = 1, kHigh = 2, kRealtime = 3 };

/// "low" / "standard" / "high".
[[nodiscard]] std::string_view quality_name(Quality quality) noexcept;
/// Parses "low" / "standard" / "high"; nullopt for other text.
[[nodiscard]] std::optional<Quality> quality_from_name(std::string_view name) noexcept;
/// "low" / "normal" / "high" / "realtime".
[[nodiscard]] std::string_view priority_name(Priority priority) noexcept;
/// Parses a priority name; nullopt for other text.
[[nodiscard]] std::optional<Priority> priority_from_name(std::string_view name) noexcept;

/// One (model, tier) the Engine can route to, as the policies see it.
struct CatalogEntry {
  std::string name;                ///< model name ("small")
  std::string tier = "native";     ///< precision tier ("native", "q8_0", …)
  std::string kind = "decoder";    ///< "decoder", "classifier", "embedding"
  std::vector<std::string> tasks;  ///< task types it serves (empty: any)
  double relative_cost = 1.0;      ///< cost per token relative to the reference model (units)
  double quality = 1.0;            ///< expected accuracy in [0, 1] (a hint for rules)
  bool loaded = false;             ///< resident now (cheaper to start)
  /// Whether it serves `task` ("" matches every model).
  [[nodiscard]] bool serves(std::string_view task) const;
};

/// What the policies know about a request before it runs.
struct RequestInfo {
  std::string task;   ///< task type, "" when unknown
  std::string model;  ///< pinned model, "" when the policy chooses
  std::string prompt;
  int64_t prompt_tokens = 0;           ///< estimated (bytes + 1 before tokenization)
  int64_t expected_output_tokens = 8;  ///< the engine's running mean for this task
  Quality quality = Quality::kStandard;
  std::optional<double> max_cost;  ///< budget in units (tokens × relative cost)
  Priority priority = Priority::kNormal;
  /// The classifier's label probabilities, in label order, when the policy asked for one
  /// (RoutingPolicy::classifier()); empty otherwise.
  std::vector<std::pair<std::string, float>> classifier_scores;
};

/// One step of a plan: run `model` in `tier`; accept its answer when its confidence (the
/// minimum top-1 probability over generated tokens) reaches `accept_confidence`.
struct PlanStep {
  std::string model;
  std::string tier;  ///< "" = the model's first tier
  float accept_confidence = 0.0f;
};

/// What a RoutingPolicy decides: one step, a cascade (steps in order until one is accepted;
/// the last always is), or an ensemble (all steps run; answers combined).
struct Plan {
  enum class Kind { kSingle, kCascade, kEnsemble };
  enum class Vote { kMajority, kConfidence };  ///< ensembles: most frequent text / most confident
  Kind kind = Kind::kSingle;
  Vote vote = Vote::kMajority;
  std::vector<PlanStep> steps;
  /// No step fits max_cost: the engine answers kOverBudget when `reject_over_budget`, else it
  /// runs `steps` (the cheapest route) and flags the Response as over budget.
  bool over_budget = false;
  bool reject_over_budget = false;
  /// Steps were dropped to fit max_cost: the answer is cached for low-quality requests only.
  bool budget_limited = false;
  std::string reason;  ///< why this plan (for traces and debugging)
};

/// Chooses a plan per request. Called concurrently from engine threads: implementations must be
/// thread-safe (the built-ins hold their settings behind a mutex).
class RoutingPolicy {
 public:
  virtual ~RoutingPolicy() = default;
  [[nodiscard]] virtual Plan plan(const RequestInfo& request,
                                  const std::vector<CatalogEntry>& catalog) = 0;
  /// "rules", "cascade", "classifier", "ensemble", "complexity", or a custom name.
  [[nodiscard]] virtual std::string name() const = 0;
  /// The classifier model whose label probabilities plan() wants in RequestInfo; "" for none.
  [[nodiscard]] virtual std::string classifier() const { return {}; }
  /// The highest quality this policy plans exactly like `quality`: the exact cache shares an
  /// answer made for quality q with requests of every quality whose cache_quality ≤ q.
  [[nodiscard]] virtual Quality cache_quality(Quality quality) const { return quality; }
  /// Tunable numbers by name (the AutoTuner's handles), e.g. {"threshold.standard": 0.9}.
  [[nodiscard]] virtual std::map<std::string, double> knobs() const { return {}; }
  /// Sets a knob from knobs(); false for unknown names.
  virtual bool set_knob(std::string_view /*name*/, double /*value*/) { return false; }
};

/// What the built-ins do when no route fits max_cost.
enum class OverBudget {
  kCheapest,  ///< serve with the cheapest route anyway; Response::over_budget is set
  kReject,    ///< answer Status::kOverBudget without running
};

/// Rules: the first rule matching the task and quality names the model; without a match, the
/// cheapest model serving the task whose quality hint reaches the quality's floor (low: any,
/// standard: `standard_floor`, high: the best hint). Models over budget are skipped.
struct RulesOptions {
  struct Rule {
    std::string task;                ///< "" matches any task
    std::optional<Quality> quality;  ///< nullopt matches any quality
    std::string model;
    std::string tier;  ///< "" = the model's first tier
  };
  std::vector<Rule> rules;
  double standard_floor = 0.95;
  OverBudget over_budget = OverBudget::kCheapest;
};
[[nodiscard]] std::shared_ptr<RoutingPolicy> make_rules_policy(RulesOptions options);

/// Cascade: try `steps` cheapest first; accept when min top-1 probability ≥ the threshold of
/// the request's quality, else escalate. Steps that do not fit max_cost are dropped (the most
/// capable step that fits is kept, with cheaper ones before it while they fit).
struct CascadeOptions {
  std::vector<PlanStep> steps;  ///< ordered cheap → capable; accept_confidence is ignored
  std::array<float, 3> thresholds{0.9f, 0.9f, 0.9f};  ///< by Quality (low, standard, high)
  std::array<int, 3> first_step{0, 0, 0};             ///< where each quality starts
  OverBudget over_budget = OverBudget::kCheapest;
};
[[nodiscard]] std::shared_ptr<RoutingPolicy> make_cascade_policy(CascadeOptions options);

/// Classifier-driven: a classifier model (e.g. the taskmodels router) gives P(label) per tier
/// label; the route starts at the cheapest label m with P(label ≤ m) ≥ tau (by quality) and,
/// with `escalate`, continues as a cascade over the later labels.
struct ClassifierOptions {
  std::string classifier;                       ///< the classifier model's name
  std::vector<std::string> labels;              ///< label names in classifier order
  std::vector<PlanStep> steps;                  ///< the step of each label, same order
  std::array<float, 3> tau{0.9f, 0.9f, 0.99f};  ///< by Quality
  bool escalate = false;                        ///< cascade above the chosen label
  float threshold = 0.9f;                       ///< cascade acceptance when escalating
  OverBudget over_budget = OverBudget::kCheapest;
};
[[nodiscard]] std::shared_ptr<RoutingPolicy> make_classifier_policy(ClassifierOptions options);

/// Ensemble: every step runs; answers are combined by `vote`.
struct EnsembleOptions {
  std::vector<PlanStep> steps;
  Plan::Vote vote = Plan::Vote::kMajority;
};
[[nodiscard]] std::shared_ptr<RoutingPolicy> make_ensemble_policy(EnsembleOptions options);

/// Tier by estimated complexity (prompt tokens): step i serves requests whose complexity is at
/// most thresholds[task][i] (the last step serves the rest); "" holds the default thresholds.
/// kHigh quality always takes the last step.
struct ComplexityOptions {
  std::vector<PlanStep> steps;  ///< ordered cheap → capable
  std::map<std::string, std::vector<double>> thresholds;
  OverBudget over_budget = OverBudget::kCheapest;
};
[[nodiscard]] std::shared_ptr<RoutingPolicy> make_complexity_policy(ComplexityOptions options);

/// One labelled item of a dev set for fitting complexity thresholds: per step, whether its
/// answer was right and what it cost.
struct DevItem {
  std::string task;
  double complexity = 0;
  std::vector<bool> correct;
  std::vector<double> cost;
};

/// Per task, the thresholds that minimise total cost while accuracy stays ≥ accuracy_floor
/// (the all-last-step route when none does). `steps` is the number of steps of the policy.
[[nodiscard]] std::map<std::string, std::vector<double>> fit_complexity_thresholds(
    const std::vector<DevItem>& items, size_t steps, double accuracy_floor);

}  // namespace v0
}  // namespace polyinfer
