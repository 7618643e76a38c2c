// SPDX-License-Identifier: Apache-2.0
// Helpers of the transformer-op tests: random data, the ISA levels to run, error checks.
#pragma once

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/ops.hpp"

namespace polyinfer::detail::test_ops {

inline std::vector<float> gaussian(size_t count, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> out(count);
  for (float& v : out) v = dist(rng);
  return out;
}

/// The levels with their own kernel table (scalar, AVX2, AVX-512) that this CPU runs.
inline std::vector<Isa> isa_levels() {
  std::vector<Isa> levels;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (isa <= detect_isa()) levels.push_back(isa);
  }
  return levels;
}

/// Forces an ISA level for the scope, then restores the level active before.
class IsaScope {
 public:
  explicit IsaScope(Isa isa) : saved_(active_isa()) { force_isa(isa); }
  ~IsaScope() { force_isa(saved_); }
  IsaScope(const IsaScope&) = delete;
  IsaScope& operator=(const IsaScope&) = delete;

 private:
  Isa saved_;
};

/// Largest |got − want| / (abs_floor + |want|) over two equally long arrays.
template <typename Want>
double max_relative_error(const std::vector<float>& got, const std::vector<Want>& want,
                          double abs_floor) {
  REQUIRE(got.size() == want.size());
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double error = std::fabs(static_cast<double>(got[i]) - static_cast<double>(want[i]));
    worst = std::max(worst, error / (abs_floor + std::fabs(static_cast<double>(want[i]))));
  }
  return worst;
}

/// Largest |got − want| over two equally long arrays.
inline double max_abs_error(const std::vector<float>& got, const std::vector<float>& want) {
  REQUIRE(got.size() == want.size());
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(got[i]) - want[i]));
  }
  return worst;
}

}  // namespace polyinfer::detail::test_ops
