// SPDX-License-Identifier: Apache-2.0
// polyinfer classify: the label of a text and the probability of every label (BERT classifier).
#include <polyinfer/polyinfer.hpp>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "args.hpp"
#include "commands.hpp"
#include "load_options.hpp"

namespace polyinfer::cli {

int run_classify(const std::vector<std::string>& argv) {
  const Args args(argv, {"json"}, {"text", "tier", "device", "threads"});
  if (args.positionals().size() != 1) throw UsageError("expected exactly one MODEL");
  const std::string text = args.required("text");
  const LoadOptions load = load_options(args);

  const Encoder encoder = Encoder::load(args.model(), load);
  const Classification result = encoder.classify(text);
  const std::span<const std::string> labels = encoder.labels();
  if (args.flag("json")) {
    nlohmann::ordered_json scores = nlohmann::ordered_json::object();
    for (size_t i = 0; i < labels.size(); ++i) scores[labels[i]] = result.scores[i];
    const nlohmann::ordered_json out{
        {"label", result.label_name}, {"label_id", result.label},
        {"scores", scores},           {"logits", result.logits},
        {"model", args.model()},      {"tier", std::string(tier_name(encoder.tier()))}};
    std::cout << out.dump() << "\n";
  } else {
    // The label, then "name probability" for every label in id order.
    std::cout << result.label_name << "\n";
    for (size_t i = 0; i < labels.size(); ++i) {
      char score[32];
      std::snprintf(score, sizeof score, "%.6f", static_cast<double>(result.scores[i]));
      std::cout << labels[i] << ' ' << score << "\n";
    }
  }
  return 0;
}

}  // namespace polyinfer::cli
