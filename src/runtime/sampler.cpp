// SPDX-License-Identifier: Apache-2.0
// Sampler: repetition penalty, temperature, top-k, top-p, min-p, and a seeded draw.
#include "runtime/sampler.hpp"

#include <algorithm>
#include <cmath>

#include "common/fail.hpp"

namespace polyinfer::inline v0::detail {

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

double Sampler::next_uniform() {
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

SampleSpec Sampler::prepare(int64_t vocab, std::span<const int32_t> history,
                            std::vector<int32_t>& penalized) {
  SampleSpec spec;
  spec.temperature = params_.temperature;
  spec.top_k = params_.top_k;
  spec.top_p = params_.top_p;
  spec.min_p = params_.min_p;
  spec.repetition_penalty = params_.repetition_penalty;
  spec.penalized_begin = static_cast<int32_t>(penalized.size());
  if (params_.repetition_penalty != 1.0f) {
    if (seen_.size() != static_cast<size_t>(vocab)) {
      seen_.assign(static_cast<size_t>(vocab), 0);
      stamp_ = 0;
    }
    if (++stamp_ == 0) {  // wrapped: clear the stamps
      std::fill(seen_.begin(), seen_.end(), 0);
      stamp_ = 1;
    }
    for (const int32_t id : history) {
      if (id < 0 || id >= vocab || seen_[static_cast<size_t>(id)] == stamp_) continue;
      seen_[static_cast<size_t>(id)] = stamp_;
      penalized.push_back(id);
    }
  }
  spec.penalized_count = static_cast<int32_t>(penalized.size()) - spec.penalized_begin;
  return spec;
}

SampledToken Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  if (logits.empty()) fail(ErrorCode::kInvalidArgument, "sampler", "no logits");
  const auto vocab = static_cast<int64_t>(logits.size());
  penalized_.clear();
  SampleSpec spec = prepare(vocab, history, penalized_);
  if (spec.temperature > 0.0f) spec.uniform = next_uniform();
  const SamplePick pick = sample_pick(logits.data(), vocab, spec, penalized_.data(), scratch_);
  return {pick.id, pick.logprob, pick.top_logprob};
}

}  // namespace polyinfer::inline v0::detail
