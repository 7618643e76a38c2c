// SPDX-License-Identifier: Apache-2.0
// Tier by estimated complexity (prompt tokens), and fitting its thresholds on a dev set.
#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <mutex>
#include <set>

#include "engine/policy_support.hpp"

namespace polyinfer {
inline namespace v0 {

namespace {

using detail::estimate_units;
using detail::existing_steps;
using detail::find_entry;

class ComplexityPolicy final : public RoutingPolicy {
 public:
  explicit ComplexityPolicy(ComplexityOptions options) : options_(std::move(options)) {}
  std::string name() const override { return "complexity"; }

  Plan plan(const RequestInfo& request, const std::vector<CatalogEntry>& catalog) override {
    Plan plan;
    const std::vector<PlanStep> steps = existing_steps(options_.steps, catalog);
    if (steps.empty()) {
      plan.reason = "no step of the route is in the catalog";
      return plan;
    }
    const auto complexity = static_cast<double>(request.prompt_tokens);
    size_t chosen = steps.size() - 1;
    if (request.quality != Quality::kHigh) {
      auto it = options_.thresholds.find(request.task);
      if (it == options_.thresholds.end()) it = options_.thresholds.find("");
      if (it != options_.thresholds.end()) {
        for (size_t i = 0; i < it->second.size() && i + 1 < steps.size(); ++i) {
          if (complexity <= it->second[i]) {
            chosen = i;
            break;
          }
        }
      }
    }
    plan.reason = fmt::format("complexity {} → {}", complexity, steps[chosen].model);
    if (request.max_cost) {  // the most capable step at or below the choice that fits
      size_t fitting = chosen + 1;
      while (fitting-- > 0) {
        if (estimate_units(request, *find_entry(catalog, steps[fitting])) <= *request.max_cost) {
          break;
        }
      }
      if (fitting > chosen) {  // none fits: the cheapest
        fitting = 0;
        plan.over_budget = true;
        plan.reject_over_budget = options_.over_budget == OverBudget::kReject;
        plan.reason += "; no step fits max_cost";
      }
      plan.budget_limited = fitting != chosen || plan.over_budget;
      chosen = fitting;
    }
    plan.steps = {steps[chosen]};
    plan.steps.front().accept_confidence = 0.0f;
    return plan;
  }

 private:
  const ComplexityOptions options_;
};

}  // namespace

std::shared_ptr<RoutingPolicy> make_complexity_policy(ComplexityOptions options) {
  return std::make_shared<ComplexityPolicy>(std::move(options));
}

std::map<std::string, std::vector<double>> fit_complexity_thresholds(
    const std::vector<DevItem>& items, size_t steps, double accuracy_floor) {
  std::map<std::string, std::vector<double>> result;
  if (steps < 2) return result;
  std::map<std::string, std::vector<const DevItem*>> by_task;
  for (const DevItem& item : items) {
    if (item.correct.size() >= steps && item.cost.size() >= steps)
      by_task[item.task].push_back(&item);
  }
  for (const auto& [task, task_items] : by_task) {
    // Candidate thresholds: "none" (below every complexity) and each distinct complexity.
    std::set<double> distinct;
    for (const DevItem* item : task_items) distinct.insert(item->complexity);
    std::vector<double> candidates{-std::numeric_limits<double>::infinity()};
    candidates.insert(candidates.end(), distinct.begin(), distinct.end());

    std::vector<double> current(steps - 1);
    std::vector<double> best;
    double best_cost = std::numeric_limits<double>::infinity();
    double best_accuracy = -1;
    const auto evaluate = [&] {
      double cost = 0;
      size_t right = 0;
      for (const DevItem* item : task_items) {
        size_t step = steps - 1;
        for (size_t i = 0; i + 1 < steps; ++i) {
          if (item->complexity <= current[i]) {
            step = i;
            break;
          }
        }
        cost += item->cost[step];
        right += item->correct[step] ? 1 : 0;
      }
      const double accuracy = static_cast<double>(right) / static_cast<double>(task_items.size());
      const bool ok = accuracy >= accuracy_floor;
      const bool best_ok = best_accuracy >= accuracy_floor;
      // Feasible beats infeasible; among feasible the cheaper; otherwise the more accurate.
      if (best.empty() || (ok && (!best_ok || cost < best_cost)) ||
          (!ok && !best_ok && accuracy > best_accuracy)) {
        best = current;
        best_cost = cost;
        best_accuracy = accuracy;
      }
    };
    // Non-decreasing thresholds, one per step but the last.
    std::function<void(size_t, size_t)> search = [&](size_t level, size_t from) {
      if (level == current.size()) {
        evaluate();
        return;
      }
      for (size_t c = from; c < candidates.size(); ++c) {
        current[level] = candidates[c];
        search(level + 1, c);
      }
    };
    search(0, 0);
    for (double& threshold : best) {
      if (threshold == -std::numeric_limits<double>::infinity()) threshold = -1;
    }
    result[task] = best;
  }
  return result;
}

}  // namespace v0
}  // namespace polyinfer
