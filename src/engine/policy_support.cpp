// SPDX-License-Identifier: Apache-2.0
// Policy helpers, names of the request vocabulary (status, quality, priority).
#include "engine/policy_support.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "polyinfer/engine.hpp"

namespace polyinfer {
inline namespace v0 {

namespace {

constexpr std::array<std::string_view, 3> kQualityNames{"low", "standard", "high"};
constexpr std::array<std::string_view, 4> kPriorityNames{"low", "normal", "high", "realtime"};

}  // namespace

std::string_view status_name(Status status) noexcept {
  switch (status) {
    case Status::kOk:
      return "ok";
    case Status::kTimeout:
      return "timeout";
    case Status::kCancelled:
      return "cancelled";
    case Status::kOverBudget:
      return "over_budget";
    case Status::kOverloaded:
      return "overloaded";
    case Status::kModelUnavailable:
      return "model_unavailable";
    case Status::kInvalidRequest:
      return "invalid_request";
    case Status::kInternalError:
      return "internal_error";
  }
  return "unknown";
}

std::string_view quality_name(Quality quality) noexcept {
  return kQualityNames[static_cast<size_t>(quality)];
}

std::optional<Quality> quality_from_name(std::string_view name) noexcept {
  for (size_t i = 0; i < kQualityNames.size(); ++i) {
    if (kQualityNames[i] == name) return static_cast<Quality>(i);
  }
  return std::nullopt;
}

std::string_view priority_name(Priority priority) noexcept {
  return kPriorityNames[static_cast<size_t>(priority)];
}

std::optional<Priority> priority_from_name(std::string_view name) noexcept {
  for (size_t i = 0; i < kPriorityNames.size(); ++i) {
    if (kPriorityNames[i] == name) return static_cast<Priority>(i);
  }
  return std::nullopt;
}

bool CatalogEntry::serves(std::string_view task) const {
  return task.empty() || tasks.empty() ||
         std::find(tasks.begin(), tasks.end(), task) != tasks.end();
}

namespace detail {

const CatalogEntry* find_entry(const std::vector<CatalogEntry>& catalog, const PlanStep& step) {
  for (const CatalogEntry& entry : catalog) {
    if (entry.name == step.model && (step.tier.empty() || entry.tier == step.tier)) return &entry;
  }
  return nullptr;
}

double estimate_units(const RequestInfo& request, const CatalogEntry& entry) {
  return static_cast<double>(request.prompt_tokens + request.expected_output_tokens) *
         entry.relative_cost;
}

std::vector<PlanStep> existing_steps(const std::vector<PlanStep>& chain,
                                     const std::vector<CatalogEntry>& catalog) {
  std::vector<PlanStep> steps;
  for (const PlanStep& step : chain) {
    if (find_entry(catalog, step) != nullptr) steps.push_back(step);
  }
  return steps;
}

Plan budget_cascade(const RequestInfo& request, std::vector<PlanStep> chain,
                    const std::vector<CatalogEntry>& catalog, float threshold,
                    OverBudget over_budget) {
  Plan plan;
  if (chain.empty()) {
    plan.reason = "no step of the route is in the catalog";
    return plan;
  }
  std::vector<double> cost;
  for (const PlanStep& step : chain)
    cost.push_back(estimate_units(request, *find_entry(catalog, step)));
  if (request.max_cost) {
    const double budget = *request.max_cost;
    double total = 0;
    for (const double c : cost) total += c;
    if (total > budget) {
      std::vector<PlanStep> chosen;
      for (size_t last = chain.size(); last-- > 0 && chosen.empty();) {
        if (cost[last] > budget) continue;
        double left = budget - cost[last];
        for (size_t i = 0; i < last; ++i) {
          if (cost[i] <= left) {
            chosen.push_back(chain[i]);
            left -= cost[i];
          }
        }
        chosen.push_back(chain[last]);
      }
      if (chosen.empty()) {
        const auto cheapest = std::min_element(cost.begin(), cost.end()) - cost.begin();
        chosen.push_back(chain[static_cast<size_t>(cheapest)]);
        plan.over_budget = true;
        plan.reject_over_budget = over_budget == OverBudget::kReject;
        plan.reason = fmt::format("no step fits max_cost {:.3g} (cheapest {:.3g})", budget,
                                  cost[static_cast<size_t>(cheapest)]);
      } else {
        plan.reason = fmt::format("trimmed to max_cost {:.3g}", budget);
      }
      plan.budget_limited = true;
      chain = std::move(chosen);
    }
  }
  for (size_t i = 0; i < chain.size(); ++i) {
    chain[i].accept_confidence = i + 1 < chain.size() ? threshold : 0.0f;
  }
  plan.kind = chain.size() > 1 ? Plan::Kind::kCascade : Plan::Kind::kSingle;
  plan.steps = std::move(chain);
  if (plan.reason.empty()) plan.reason = plan.steps.size() > 1 ? "cascade" : "single";
  return plan;
}

}  // namespace detail
}  // namespace v0
}  // namespace polyinfer
