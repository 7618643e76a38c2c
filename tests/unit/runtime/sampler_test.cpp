// SPDX-License-Identifier: Apache-2.0
// Sampler: greedy, penalties, and the distributions of each strategy at fixed seeds.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "polyinfer/error.hpp"
#include "runtime/sampler.hpp"

namespace {

using polyinfer::SamplingParams;
using polyinfer::detail::Sampler;

/// Logits whose softmax is `probabilities`.
std::vector<float> logits_of(const std::vector<double>& probabilities) {
  std::vector<float> logits;
  for (const double p : probabilities) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

/// Frequencies of each id over `draws` samples.
std::vector<double> frequencies(const SamplingParams& params, const std::vector<float>& logits,
                                int draws) {
  Sampler sampler(params);
  std::vector<double> counts(logits.size(), 0.0);
  for (int i = 0; i < draws; ++i) counts[static_cast<size_t>(sampler.sample(logits, {}).id)] += 1;
  for (double& c : counts) c /= draws;
  return counts;
}

void check_distribution(const std::vector<double>& got, const std::vector<double>& expected) {
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("id " << i << ": " << got[i] << " vs " << expected[i]);
    if (expected[i] == 0.0) {
      CHECK(got[i] == 0.0);
    } else {
      CHECK(got[i] == Approx(expected[i]).margin(0.012));  // ~4 σ at 20000 draws
    }
  }
}

const std::vector<float> kLogits = logits_of({0.1, 0.2, 0.3, 0.4});
constexpr int kDraws = 20000;

}  // namespace

TEST_CASE("Sampler: greedy takes the argmax, ties to the lowest id", "[sampler]") {
  Sampler sampler(SamplingParams{});
  const auto token = sampler.sample(kLogits, {});
  CHECK(token.id == 3);
  CHECK(token.logprob == Approx(std::log(0.4)).margin(1e-6));
  CHECK(token.top_logprob == Approx(std::log(0.4)).margin(1e-6));
  const std::vector<float> tied{1.0f, 3.0f, 3.0f, 0.0f};
  CHECK(sampler.sample(tied, {}).id == 1);
}

TEST_CASE("Sampler: repetition penalty (HF rule) changes the choice", "[sampler]") {
  Sampler sampler(SamplingParams{.repetition_penalty = 2.0f});
  const std::vector<float> logits{1.0f, 1.8f, -0.5f};
  const std::vector<int32_t> history{1, 1, 2};
  // 1.8 / 2 = 0.9 < 1.0: id 0 wins; the log-probabilities stay the model's.
  const auto token = sampler.sample(logits, history);
  CHECK(token.id == 0);
  CHECK(token.top_logprob > token.logprob);
  CHECK(Sampler(SamplingParams{}).sample(logits, history).id == 1);
}

TEST_CASE("Sampler: temperature 1 draws from the softmax", "[sampler]") {
  check_distribution(frequencies({.temperature = 1.0f, .seed = 1}, kLogits, kDraws),
                     {0.1, 0.2, 0.3, 0.4});
}

TEST_CASE("Sampler: temperature sharpens and flattens", "[sampler]") {
  // T = 0.5: p² normalized; T = 2: √p normalized.
  check_distribution(frequencies({.temperature = 0.5f, .seed = 2}, kLogits, kDraws),
                     {0.01 / 0.30, 0.04 / 0.30, 0.09 / 0.30, 0.16 / 0.30});
  const double s = std::sqrt(0.1) + std::sqrt(0.2) + std::sqrt(0.3) + std::sqrt(0.4);
  check_distribution(
      frequencies({.temperature = 2.0f, .seed = 3}, kLogits, kDraws),
      {std::sqrt(0.1) / s, std::sqrt(0.2) / s, std::sqrt(0.3) / s, std::sqrt(0.4) / s});
}

TEST_CASE("Sampler: top-k, top-p and min-p cut the tail", "[sampler]") {
  check_distribution(frequencies({.temperature = 1.0f, .top_k = 2, .seed = 4}, kLogits, kDraws),
                     {0.0, 0.0, 3.0 / 7.0, 4.0 / 7.0});
  // 0.4 < 0.5 ≤ 0.4 + 0.3: the two most likely remain.
  check_distribution(frequencies({.temperature = 1.0f, .top_p = 0.5f, .seed = 5}, kLogits, kDraws),
                     {0.0, 0.0, 3.0 / 7.0, 4.0 / 7.0});
  check_distribution(frequencies({.temperature = 1.0f, .top_p = 0.75f, .seed = 6}, kLogits, kDraws),
                     {0.0, 2.0 / 9.0, 3.0 / 9.0, 4.0 / 9.0});
  // min_p 0.45: keep p ≥ 0.18.
  check_distribution(frequencies({.temperature = 1.0f, .min_p = 0.45f, .seed = 7}, kLogits, kDraws),
                     {0.0, 2.0 / 9.0, 3.0 / 9.0, 4.0 / 9.0});
  // top_k 1 is greedy.
  check_distribution(frequencies({.temperature = 1.0f, .top_k = 1, .seed = 8}, kLogits, 100),
                     {0.0, 0.0, 0.0, 1.0});
}

TEST_CASE("Sampler: a seed gives the same draws, another seed others", "[sampler]") {
  const auto draws = [](uint64_t seed) {
    Sampler sampler({.temperature = 1.0f, .top_p = 0.9f, .seed = seed});
    std::vector<int32_t> ids;
    for (int i = 0; i < 64; ++i) ids.push_back(sampler.sample(kLogits, {}).id);
    return ids;
  };
  CHECK(draws(42) == draws(42));
  CHECK(draws(42) != draws(43));
  // The first draws of seed 42 are pinned: mt19937_64 and our [0, 1) mapping are portable.
  const std::vector<int32_t> first = draws(42);
  const std::vector<int32_t> pinned{2, 2, 2, 3, 1, 3, 2, 3, 3, 3, 3, 2, 2, 2, 1, 1};
  CHECK(std::vector<int32_t>(first.begin(), first.begin() + 16) == pinned);
}

TEST_CASE("Sampler: parameters out of range are errors", "[sampler]") {
  CHECK_THROWS_AS(Sampler({.temperature = -0.5f}), polyinfer::Error);
  CHECK_THROWS_AS(Sampler({.top_k = -1}), polyinfer::Error);
  CHECK_THROWS_AS(Sampler({.top_p = 1.5f}), polyinfer::Error);
  CHECK_THROWS_AS(Sampler({.min_p = 1.0f}), polyinfer::Error);
  CHECK_THROWS_AS(Sampler({.repetition_penalty = 0.0f}), polyinfer::Error);
  Sampler sampler({});
  CHECK_THROWS_AS(sampler.sample({}, {}), polyinfer::Error);
}
