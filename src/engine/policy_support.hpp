// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the built-in routing policies: catalog look-ups, cost estimates, budgets.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "polyinfer/policy.hpp"

namespace polyinfer::inline v0::detail {

/// The catalog entry of a step (tier "" = the model's first entry); null when absent.
[[nodiscard]] const CatalogEntry* find_entry(const std::vector<CatalogEntry>& catalog,
                                             const PlanStep& step);

/// Units a step will cost: (prompt + expected output tokens) × relative cost.
[[nodiscard]] double estimate_units(const RequestInfo& request, const CatalogEntry& entry);

/// The steps of `chain` (cheap → capable) that exist in the catalog, thresholds set to
/// `threshold` (the last accepts everything).
[[nodiscard]] std::vector<PlanStep> existing_steps(const std::vector<PlanStep>& chain,
                                                   const std::vector<CatalogEntry>& catalog);

/// A cascade over `chain` within the request's budget: the whole chain when it fits; else the
/// most capable step that fits, with cheaper steps before it while they fit; else (over
/// budget) the cheapest step alone. `threshold` is the acceptance of all but the last step.
[[nodiscard]] Plan budget_cascade(const RequestInfo& request, std::vector<PlanStep> chain,
                                  const std::vector<CatalogEntry>& catalog, float threshold,
                                  OverBudget over_budget);

}  // namespace polyinfer::inline v0::detail
