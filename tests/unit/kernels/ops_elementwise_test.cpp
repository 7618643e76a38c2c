// SPDX-License-Identifier: Apache-2.0
// rms_norm, layer_norm, silu_mul, gelu and softmax at every ISA level against kernels/ref;
// greedy_pick.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "kernels/ops.hpp"
#include "kernels/ref/ops_ref.hpp"
#include "ops_test_support.hpp"

namespace polyinfer::detail {
namespace {

using test_ops::gaussian;
using test_ops::isa_levels;
using test_ops::IsaScope;
using test_ops::max_relative_error;

constexpr int64_t kColumnCounts[] = {1, 31, 33, 4097};

TEST_CASE("rms_norm matches the reference at every ISA level", "[kernels][ops]") {
  for (const int64_t cols : kColumnCounts) {
    constexpr int64_t kRows = 3;
    // Rows of very different magnitude: the scaling must not lose precision for either.
    std::vector<float> x = gaussian(static_cast<size_t>(kRows * cols), 1);
    for (int64_t c = 0; c < cols; ++c) x[static_cast<size_t>(cols + c)] *= 1000.0f;
    for (int64_t c = 0; c < cols; ++c) x[static_cast<size_t>(2 * cols + c)] *= 0.001f;
    const std::vector<float> weight = gaussian(static_cast<size_t>(cols), 2);
    std::vector<float> want(x.size());
    ref::rms_norm(x.data(), weight.data(), 1e-6f, kRows, cols, want.data());
    for (const Isa isa : isa_levels()) {
      IsaScope scope(isa);
      CAPTURE(isa_name(isa), cols);
      std::vector<float> got(x.size());
      rms_norm(x.data(), weight.data(), 1e-6f, kRows, cols, got.data());
      CHECK(max_relative_error(got, want, 1e-6) < 2e-6);
      // In place (y == x) is how models call it.
      std::vector<float> in_place = x;
      rms_norm(in_place.data(), weight.data(), 1e-6f, kRows, cols, in_place.data());
      CHECK(in_place == got);
    }
  }
}

TEST_CASE("layer_norm matches the reference at every ISA level", "[kernels][ops]") {
  for (const int64_t cols : kColumnCounts) {
    constexpr int64_t kRows = 3;
    std::vector<float> x = gaussian(static_cast<size_t>(kRows * cols), 3);
    // A large common offset: a one-pass variance would cancel catastrophically.
    for (float& v : x) v = v * 0.5f + 100.0f;
    const std::vector<float> weight = gaussian(static_cast<size_t>(cols), 4);
    const std::vector<float> bias = gaussian(static_cast<size_t>(cols), 5);
    for (const bool with_bias : {true, false}) {
      const float* bias_data = with_bias ? bias.data() : nullptr;
      std::vector<float> want(x.size());
      ref::layer_norm(x.data(), weight.data(), bias_data, 1e-12f, kRows, cols, want.data());
      for (const Isa isa : isa_levels()) {
        IsaScope scope(isa);
        CAPTURE(isa_name(isa), cols, with_bias);
        std::vector<float> got(x.size());
        layer_norm(x.data(), weight.data(), bias_data, 1e-12f, kRows, cols, got.data());
        // Relative 1e−5, absolute 1e−6 near 0 (where + bias cancels). cols == 1: x − mean is
        // exactly 0, so y is the bias (or 0) at every level.
        CHECK(max_relative_error(got, want, 0.1) < 1e-5);
      }
    }
  }
}

TEST_CASE("silu_mul and gelu match the reference at every ISA level", "[kernels][ops]") {
  for (const int64_t count : kColumnCounts) {
    std::vector<float> x = gaussian(static_cast<size_t>(count), 6, 4.0f);
    const std::vector<float> up = gaussian(static_cast<size_t>(count), 7);
    // Saturated and tiny arguments where they fit.
    const float specials[] = {0.0f, -0.0f, 1e-8f, -1e-8f, 12.0f, -12.0f, 90.0f, -90.0f, -200.0f};
    for (size_t i = 0; i < std::size(specials) && i < x.size(); ++i) x[i] = specials[i];
    std::vector<float> want_silu(x.size()), want_gelu(x.size());
    ref::silu_mul(x.data(), up.data(), want_silu.data(), count);
    ref::gelu(x.data(), want_gelu.data(), count);
    for (const Isa isa : isa_levels()) {
      IsaScope scope(isa);
      CAPTURE(isa_name(isa), count);
      std::vector<float> got(x.size());
      silu_mul(x.data(), up.data(), got.data(), count);
      // Floor 1e−20: below it silu's e^−g saturates (e^88) and only the absolute error is small.
      CHECK(max_relative_error(got, want_silu, 1e-20) < 1e-6);
      gelu(x.data(), got.data(), count);
      // Relative error ≤ 1e-6 down to 1e-30 (erfc keeps relative accuracy in the left tail
      // until e^x underflows near −87, where both sides are ≈ 0).
      CHECK(max_relative_error(got, want_gelu, 1e-30) < 1e-5);
    }
  }
}

TEST_CASE("softmax matches the reference at every ISA level", "[kernels][ops]") {
  for (const int64_t cols : kColumnCounts) {
    constexpr int64_t kRows = 3;
    std::vector<float> x = gaussian(static_cast<size_t>(kRows * cols), 8, 10.0f);
    x[0] = 1e4f;  // a dominant entry: every other e^(x − max) underflows
    std::vector<float> want = x;
    ref::softmax(want.data(), kRows, cols);
    for (const Isa isa : isa_levels()) {
      IsaScope scope(isa);
      CAPTURE(isa_name(isa), cols);
      std::vector<float> got = x;
      softmax(got.data(), kRows, cols);
      CHECK(test_ops::max_abs_error(got, want) < 1e-6);
      CHECK(max_relative_error(got, want, 1e-30) < 1e-5);
      for (int64_t r = 0; r < kRows; ++r) {
        double sum = 0.0;
        for (int64_t c = 0; c < cols; ++c) sum += got[static_cast<size_t>(r * cols + c)];
        CHECK(sum == Approx(1.0).epsilon(1e-5));
      }
    }
  }
}

TEST_CASE("greedy_pick: the lowest id among the maxima and its log-softmax", "[kernels][ops]") {
  const std::vector<float> logits = {1.0f, 3.0f, -INFINITY, 3.0f, 2.0f};
  const GreedyPick pick = greedy_pick(logits.data(), static_cast<int64_t>(logits.size()));
  CHECK(pick.id == 1);
  const double normalizer = std::log(std::exp(1.0) + 2 * std::exp(3.0) + std::exp(2.0));
  CHECK(pick.logprob == Approx(3.0 - normalizer).epsilon(1e-6));
  for (const int64_t cols : kColumnCounts) {
    const std::vector<float> x = gaussian(static_cast<size_t>(cols), 9, 5.0f);
    const GreedyPick p = greedy_pick(x.data(), cols);
    CAPTURE(cols);
    for (int64_t c = 0; c < cols; ++c)
      CHECK(x[static_cast<size_t>(c)] <= x[static_cast<size_t>(p.id)]);
    std::vector<float> probabilities = x;
    ref::softmax(probabilities.data(), 1, cols);
    CHECK(p.logprob == Approx(std::log(probabilities[static_cast<size_t>(p.id)])).margin(1e-6));
  }
}

}  // namespace
}  // namespace polyinfer::detail
