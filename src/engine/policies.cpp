// SPDX-License-Identifier: Apache-2.0
// Built-in routing policies: rules, cascade, classifier-driven, ensemble.
#include <fmt/format.h>

#include <algorithm>
#include <mutex>

#include "engine/policy_support.hpp"
#include "polyinfer/error.hpp"

namespace polyinfer {
inline namespace v0 {

namespace {

using detail::budget_cascade;
using detail::estimate_units;
using detail::existing_steps;
using detail::find_entry;

/// knobs() names of per-quality settings: "<prefix>.low", ….
std::string quality_knob(const char* prefix, size_t quality) {
  return fmt::format("{}.{}", prefix, quality_name(static_cast<Quality>(quality)));
}

class RulesPolicy final : public RoutingPolicy {
 public:
  explicit RulesPolicy(RulesOptions options) : options_(std::move(options)) {}
  std::string name() const override { return "rules"; }
  std::map<std::string, double> knobs() const override {
    const std::lock_guard lock(mutex_);
    return {{"standard_floor", options_.standard_floor}};
  }
  bool set_knob(std::string_view name, double value) override {
    if (name != "standard_floor") return false;
    const std::lock_guard lock(mutex_);
    options_.standard_floor = value;
    return true;
  }

  Plan plan(const RequestInfo& request, const std::vector<CatalogEntry>& catalog) override {
    const std::lock_guard lock(mutex_);
    Plan plan;
    const auto fits = [&](const CatalogEntry& entry) {
      return !request.max_cost || estimate_units(request, entry) <= *request.max_cost;
    };
    for (const RulesOptions::Rule& rule : options_.rules) {
      if (!rule.task.empty() && rule.task != request.task) continue;
      if (rule.quality && *rule.quality != request.quality) continue;
      const CatalogEntry* entry = find_entry(catalog, {rule.model, rule.tier, 0.0f});
      if (entry == nullptr || !fits(*entry)) continue;
      plan.steps = {{entry->name, entry->tier, 0.0f}};
      plan.reason = fmt::format("rule task '{}' → {}", rule.task, rule.model);
      return plan;
    }
    std::vector<const CatalogEntry*> candidates;
    double best_quality = 0;
    for (const CatalogEntry& entry : catalog) {
      if (entry.kind != "decoder" || !entry.serves(request.task)) continue;
      candidates.push_back(&entry);
      best_quality = std::max(best_quality, entry.quality);
    }
    if (candidates.empty()) {
      plan.reason = "no decoder serves the task";
      return plan;
    }
    const double floor = request.quality == Quality::kLow        ? 0.0
                         : request.quality == Quality::kStandard ? options_.standard_floor
                                                                 : best_quality;
    // Cheapest adequate model; cheaper first, then loaded, then better.
    std::sort(candidates.begin(), candidates.end(), [](const auto* a, const auto* b) {
      if (a->relative_cost != b->relative_cost) return a->relative_cost < b->relative_cost;
      if (a->loaded != b->loaded) return a->loaded;
      return a->quality > b->quality;
    });
    const CatalogEntry* chosen = nullptr;
    for (const CatalogEntry* entry : candidates) {
      if (entry->quality >= floor && fits(*entry)) {
        chosen = entry;
        break;
      }
    }
    if (chosen == nullptr) {  // none adequate within budget: the best that fits
      for (const CatalogEntry* entry : candidates) {
        if (fits(*entry) && (chosen == nullptr || entry->quality > chosen->quality)) chosen = entry;
      }
      plan.reason = "no adequate model fits max_cost: the best that fits";
      plan.budget_limited = true;
    }
    if (chosen == nullptr) {
      chosen = candidates.front();
      plan.over_budget = true;
      plan.reject_over_budget = options_.over_budget == OverBudget::kReject;
      plan.reason = "no model fits max_cost";
      plan.budget_limited = true;
    }
    plan.steps = {{chosen->name, chosen->tier, 0.0f}};
    if (plan.reason.empty()) plan.reason = fmt::format("cheapest with quality ≥ {}", floor);
    return plan;
  }

 private:
  mutable std::mutex mutex_;
  RulesOptions options_;
};

class CascadePolicy final : public RoutingPolicy {
 public:
  explicit CascadePolicy(CascadeOptions options) : options_(std::move(options)) {}
  std::string name() const override { return "cascade"; }
  std::map<std::string, double> knobs() const override {
    const std::lock_guard lock(mutex_);
    std::map<std::string, double> knobs;
    for (size_t q = 0; q < 3; ++q) knobs[quality_knob("threshold", q)] = options_.thresholds[q];
    return knobs;
  }
  bool set_knob(std::string_view name, double value) override {
    const std::lock_guard lock(mutex_);
    for (size_t q = 0; q < 3; ++q) {
      if (name == quality_knob("threshold", q)) {
        options_.thresholds[q] = static_cast<float>(value);
        return true;
      }
    }
    return false;
  }

  Quality cache_quality(Quality quality) const override {
    const std::lock_guard lock(mutex_);
    const auto q = static_cast<size_t>(quality);
    for (size_t better = 2; better > q; --better) {
      if (options_.thresholds[better] == options_.thresholds[q] &&
          options_.first_step[better] == options_.first_step[q]) {
        return static_cast<Quality>(better);
      }
    }
    return quality;
  }

  Plan plan(const RequestInfo& request, const std::vector<CatalogEntry>& catalog) override {
    const std::lock_guard lock(mutex_);
    const auto q = static_cast<size_t>(request.quality);
    std::vector<PlanStep> chain = existing_steps(options_.steps, catalog);
    const auto first = std::min<size_t>(static_cast<size_t>(std::max(0, options_.first_step[q])),
                                        chain.empty() ? 0 : chain.size() - 1);
    chain.erase(chain.begin(), chain.begin() + static_cast<std::ptrdiff_t>(first));
    return budget_cascade(request, std::move(chain), catalog, options_.thresholds[q],
                          options_.over_budget);
  }

 private:
  mutable std::mutex mutex_;
  CascadeOptions options_;
};

class ClassifierPolicy final : public RoutingPolicy {
 public:
  explicit ClassifierPolicy(ClassifierOptions options) : options_(std::move(options)) {}
  std::string name() const override { return "classifier"; }
  std::string classifier() const override { return options_.classifier; }
  std::map<std::string, double> knobs() const override {
    const std::lock_guard lock(mutex_);
    std::map<std::string, double> knobs;
    for (size_t q = 0; q < 3; ++q) knobs[quality_knob("tau", q)] = options_.tau[q];
    if (options_.escalate) knobs["threshold"] = options_.threshold;
    return knobs;
  }
  bool set_knob(std::string_view name, double value) override {
    const std::lock_guard lock(mutex_);
    for (size_t q = 0; q < 3; ++q) {
      if (name == quality_knob("tau", q)) {
        options_.tau[q] = static_cast<float>(value);
        return true;
      }
    }
    if (name == "threshold" && options_.escalate) {
      options_.threshold = static_cast<float>(value);
      return true;
    }
    return false;
  }

  Quality cache_quality(Quality quality) const override {
    const std::lock_guard lock(mutex_);
    const auto q = static_cast<size_t>(quality);
    for (size_t better = 2; better > q; --better) {
      if (options_.tau[better] == options_.tau[q]) return static_cast<Quality>(better);
    }
    return quality;
  }

  Plan plan(const RequestInfo& request, const std::vector<CatalogEntry>& catalog) override {
    const std::lock_guard lock(mutex_);
    const float tau = options_.tau[static_cast<size_t>(request.quality)];
    // The cheapest label m with P(label ≤ m) ≥ tau; labels the classifier gave no score to
    // count as 0. Without scores, the whole chain as a cascade.
    size_t chosen = request.classifier_scores.empty() ? 0 : options_.labels.size() - 1;
    bool escalate = options_.escalate || request.classifier_scores.empty();
    if (!request.classifier_scores.empty()) {
      double cumulative = 0;
      for (size_t i = 0; i < options_.labels.size(); ++i) {
        for (const auto& [label, score] : request.classifier_scores) {
          if (label == options_.labels[i]) cumulative += score;
        }
        if (cumulative >= tau) {
          chosen = i;
          break;
        }
      }
    }
    std::vector<PlanStep> chain(
        options_.steps.begin() + static_cast<std::ptrdiff_t>(chosen),
        escalate ? options_.steps.end()
                 : options_.steps.begin() + static_cast<std::ptrdiff_t>(chosen + 1));
    Plan plan = budget_cascade(request, existing_steps(chain, catalog), catalog, options_.threshold,
                               options_.over_budget);
    plan.reason = fmt::format("classifier → {} ({})", options_.labels[chosen], plan.reason);
    return plan;
  }

 private:
  mutable std::mutex mutex_;
  ClassifierOptions options_;
};

class EnsemblePolicy final : public RoutingPolicy {
 public:
  explicit EnsemblePolicy(EnsembleOptions options) : options_(std::move(options)) {}
  std::string name() const override { return "ensemble"; }
  Quality cache_quality(Quality) const override { return Quality::kHigh; }
  Plan plan(const RequestInfo& /*request*/, const std::vector<CatalogEntry>& catalog) override {
    Plan plan;
    plan.steps = existing_steps(options_.steps, catalog);
    plan.kind = plan.steps.size() > 1 ? Plan::Kind::kEnsemble : Plan::Kind::kSingle;
    plan.vote = options_.vote;
    plan.reason = "ensemble";
    return plan;
  }

 private:
  const EnsembleOptions options_;
};

}  // namespace

std::shared_ptr<RoutingPolicy> make_rules_policy(RulesOptions options) {
  return std::make_shared<RulesPolicy>(std::move(options));
}

std::shared_ptr<RoutingPolicy> make_cascade_policy(CascadeOptions options) {
  return std::make_shared<CascadePolicy>(std::move(options));
}

std::shared_ptr<RoutingPolicy> make_classifier_policy(ClassifierOptions options) {
  if (options.labels.size() != options.steps.size() || options.labels.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "classifier policy",
                "labels and steps must be non-empty and of the same length");
  }
  return std::make_shared<ClassifierPolicy>(std::move(options));
}

std::shared_ptr<RoutingPolicy> make_ensemble_policy(EnsembleOptions options) {
  return std::make_shared<EnsemblePolicy>(std::move(options));
}

}  // namespace v0
}  // namespace polyinfer
