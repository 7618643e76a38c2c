// SPDX-License-Identifier: Apache-2.0
// Sampler: picks the next token from logits (greedy, temperature, top-k/p, min-p, penalties).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "kernels/ops.hpp"
#include "polyinfer/model.hpp"

namespace polyinfer::inline v0::detail {

/// A chosen token and how likely the model found it.
struct SampledToken {
  int32_t id = 0;
  float logprob = 0.0f;      ///< log-softmax of the raw logits at `id`
  float top_logprob = 0.0f;  ///< log-softmax of the raw logits at their maximum
};

/// One sequence's sampler: its parameters and random state (std::mt19937_64 from the seed).
/// The draws depend only on the seed and the logits, not on the standard library. Scratch
/// buffers are kept between calls (no allocation per token once warm). sample() is
/// prepare(), next_uniform() and sample_pick() (kernels/ops.hpp); a GPU samples the same spec.
class Sampler {
 public:
  /// Throws Error(kInvalidArgument) for parameters out of range (negative temperature, …).
  explicit Sampler(const SamplingParams& params);

  [[nodiscard]] const SamplingParams& params() const noexcept { return params_; }
  /// Picks from `logits` (one per vocabulary id); `history` (prompt and output so far) feeds
  /// the repetition penalty.
  [[nodiscard]] SampledToken sample(std::span<const float> logits,
                                    std::span<const int32_t> history);
  /// The next pick's spec without its draw: the parameters and, with a penalty, the distinct
  /// ids of `history` below `vocab` appended to `penalized` (the spec's range).
  [[nodiscard]] SampleSpec prepare(int64_t vocab, std::span<const int32_t> history,
                                   std::vector<int32_t>& penalized);
  /// The next draw of the seeded stream, in [0, 1) with 53 random bits: one per pick at a
  /// temperature above 0 (spec.uniform), none at 0.
  [[nodiscard]] double next_uniform();

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  SampleScratch scratch_;
  std::vector<int32_t> penalized_;
  std::vector<uint32_t> seen_;  // repetition penalty: stamp per id
  uint32_t stamp_ = 0;
};

}  // namespace polyinfer::inline v0::detail
