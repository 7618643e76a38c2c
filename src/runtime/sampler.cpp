// SPDX-License-Identifier: Apache-2.0
// Sampler: repetition penalty, temperature, top-k, top-p, min-p, and a seeded draw.
#include "runtime/sampler.hpp"

#include <algorithm>
#include <cmath>

#include "common/fail.hpp"

namespace polyinfer::inline v0::detail {

namespace {

/// Candidates in a strict total order (higher logit first, then lower id), so that every
/// standard library sorts them the same way.
struct ByLogit {
  template <typename C>
  bool operator()(const C& a, const C& b) const noexcept {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }
};

}  // namespace

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {
  const auto bad = [](const char* name, double value, const char* range) {
    fail(ErrorCode::kInvalidArgument, std::string("sampling: ") + name, "{} is not {}", value,
         range);
  };
  if (!(params.temperature >= 0.0f) || !std::isfinite(params.temperature)) {
    bad("temperature", params.temperature, "a finite value >= 0");
  }
  if (params.top_k < 0) bad("top_k", params.top_k, ">= 0");
  if (!(params.top_p > 0.0f && params.top_p <= 1.0f)) bad("top_p", params.top_p, "in (0, 1]");
  if (!(params.min_p >= 0.0f && params.min_p < 1.0f)) bad("min_p", params.min_p, "in [0, 1)");
  if (!(params.repetition_penalty > 0.0f) || !std::isfinite(params.repetition_penalty)) {
    bad("repetition_penalty", params.repetition_penalty, "a finite value > 0");
  }
}

double Sampler::uniform() {
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

SampledToken Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  if (logits.empty()) fail(ErrorCode::kInvalidArgument, "sampler", "no logits");
  const auto vocab = static_cast<int32_t>(logits.size());

  // The model's own distribution, for log-probabilities (confidence), before any shaping.
  const float raw_max = *std::max_element(logits.begin(), logits.end());
  double raw_sum = 0.0;
  for (const float logit : logits) raw_sum += std::exp(static_cast<double>(logit) - raw_max);
  const double log_normalizer = raw_max + std::log(raw_sum);
  const auto result = [&](int32_t id) {
    return SampledToken{id, static_cast<float>(logits[static_cast<size_t>(id)] - log_normalizer),
                        static_cast<float>(raw_max - log_normalizer)};
  };

  // Candidates: every id, its logit after the repetition penalty and the temperature.
  candidates_.resize(logits.size());
  for (int32_t id = 0; id < vocab; ++id)
    candidates_[static_cast<size_t>(id)] = {id, logits[static_cast<size_t>(id)]};
  if (params_.repetition_penalty != 1.0f) {
    if (seen_.size() != logits.size()) {
      seen_.assign(logits.size(), 0);
      stamp_ = 0;
    }
    if (++stamp_ == 0) {  // wrapped: clear the stamps
      std::fill(seen_.begin(), seen_.end(), 0);
      stamp_ = 1;
    }
    for (const int32_t id : history) {
      if (id < 0 || id >= vocab || seen_[static_cast<size_t>(id)] == stamp_) continue;
      seen_[static_cast<size_t>(id)] = stamp_;
      float& logit = candidates_[static_cast<size_t>(id)].logit;
      logit = logit > 0 ? logit / params_.repetition_penalty : logit * params_.repetition_penalty;
    }
  }

  if (params_.temperature == 0.0f) {
    const auto best = std::min_element(candidates_.begin(), candidates_.end(), ByLogit{});
    return result(best->id);
  }
  for (Candidate& c : candidates_) c.logit /= params_.temperature;

  auto end = candidates_.end();
  if (params_.top_k > 0 && params_.top_k < vocab) {
    end = candidates_.begin() + params_.top_k;
    std::nth_element(candidates_.begin(), end - 1, candidates_.end(), ByLogit{});
  }
  const bool sorted = params_.top_p < 1.0f || params_.top_k > 0;
  if (sorted) std::sort(candidates_.begin(), end, ByLogit{});
  const auto count = static_cast<size_t>(end - candidates_.begin());

  // The first candidate in ByLogit order has the highest logit.
  const float max_logit =
      sorted ? candidates_[0].logit : std::min_element(candidates_.begin(), end, ByLogit{})->logit;
  weights_.resize(count);
  double total = 0.0;
  for (size_t i = 0; i < count; ++i) {
    weights_[i] = std::exp(static_cast<double>(candidates_[i].logit) - max_logit);
    total += weights_[i];
  }
  size_t kept = count;
  if (params_.top_p < 1.0f) {  // smallest prefix (most likely first) reaching top_p
    double cumulative = 0.0;
    for (size_t i = 0; i < count; ++i) {
      cumulative += weights_[i];
      if (cumulative >= params_.top_p * total) {
        kept = i + 1;
        break;
      }
    }
  }
  if (params_.min_p > 0.0f) {  // weights are relative to the most likely token (weight 1)
    for (size_t i = 0; i < kept; ++i) {
      if (weights_[i] < params_.min_p) weights_[i] = 0.0;
    }
  }
  total = 0.0;
  for (size_t i = 0; i < kept; ++i) total += weights_[i];

  const double target = uniform() * total;
  double cumulative = 0.0;
  size_t chosen = 0;
  for (size_t i = 0; i < kept; ++i) {
    if (weights_[i] == 0.0) continue;
    chosen = i;
    cumulative += weights_[i];
    if (target < cumulative) break;
  }
  return result(candidates_[chosen].id);
}

}  // namespace polyinfer::inline v0::detail
