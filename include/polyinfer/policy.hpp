// SPDX-License-Identifier: Apache-2.0
// Policy interfaces of the Engine (routing, caching, batching) and the request vocabulary they
// share. Built-in implementations are created by name from the engine config (make_* below).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace polyinfer {
inline namespace v0 {

/// How good an answer must be: kHigh = as good as the largest model, kStandard = a tier whose
/// expected accuracy for this kind of request is high, kLow = the cheapest tier will do.
enum class Quality { kLow, kStandard, kHigh };
/// Scheduling priority: higher is served first and may preempt lower priorities.
enum class Priority { kLow = 0, kNormal = 1, kHigh = 2, kRealtime = 3 };

/// "low" / "standard" / "high"; nullopt for other text.
[[nodiscard]] std::optional<Quality> quality_from_name(std::string_view name) noexcept;

/// One model the Engine can route to, as the policies see it.
struct CatalogEntry {
  std::string name;                ///< model name ("small")
  std::string tier;                ///< precision tier it runs in ("native", "q8_0", …)
  std::string kind;                ///< "decoder", "classifier", "embedding"
  std::vector<std::string> tasks;  ///< task types it serves (empty: any)
  double relative_cost = 1.0;      ///< cost per token relative to the most expensive model
  double quality = 1.0;            ///< expected accuracy in [0, 1] (a hint for rules)
  bool loaded = false;             ///< resident now (cheaper to start)
};

/// What the policies know about a request before it runs.
struct RequestInfo {
  std::string task;   ///< task type, "" when unknown
  std::string model;  ///< pinned model, "" when the policy chooses
  std::string prompt;
  int64_t prompt_tokens = 0;  ///< estimated
  Quality quality = Quality::kStandard;
  std::optional<double> max_cost;
  Priority priority = Priority::kNormal;
  /// Output of the engine's classifier for this prompt when a classifier route is configured:
  /// label probabilities by label name order of the classifier (empty otherwise).
  std::vector<std::pair<std::string, float>> classifier_scores;
};

/// One step of a plan: run `model` in `tier`; accept its answer when its confidence reaches
/// `accept_confidence` (the minimum top-1 token probability), otherwise go to the next step.
struct PlanStep {
  std::string model;
  std::string tier = "native";
  float accept_confidence = 0.0f;
};

/// What a RoutingPolicy decides: one step, a cascade (several steps, escalating), or an
/// ensemble (all steps run; answers combined by vote, ties to the highest confidence).
struct Plan {
  enum class Kind { kSingle, kCascade, kEnsemble };
  Kind kind = Kind::kSingle;
  std::vector<PlanStep> steps;
  /// Set when the request cannot be served within its budget by any step: the engine answers
  /// with Status::kOverBudget instead of running.
  bool over_budget = false;
  std::string reason;  ///< why this plan (for traces and debugging)
};

/// Chooses a plan per request. Called concurrently from many threads: implementations must be
/// thread-safe (built-ins are immutable or lock internally).
class RoutingPolicy {
 public:
  virtual ~RoutingPolicy() = default;
  [[nodiscard]] virtual Plan plan(const RequestInfo& request,
                                  const std::vector<CatalogEntry>& catalog) = 0;
  /// Name for metrics and configs ("rules", "cascade", "classifier", "ensemble").
  [[nodiscard]] virtual std::string name() const = 0;
};

}  // namespace v0
}  // namespace polyinfer
