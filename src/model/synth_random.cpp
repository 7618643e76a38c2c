// SPDX-License-Identifier: Apache-2.0
// Random numbers for synthetic weights: the normal quantile table and bulk sampling.
#include <cmath>

#include "model/synth_random.hpp"

namespace polyinfer::inline v0::detail {

namespace {

/// Inverse of the standard normal CDF: Acklam's rational approximation, refined with one
/// Halley step on erfc (double precision; |error| < 1e-15 in the range used).
double normal_quantile(double p) {
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  constexpr double kLow = 0.02425;
  double x = 0;
  if (p < kLow) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - kLow) {
    const double q = p - 0.5;
    const double r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const double q = std::sqrt(-2 * std::log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  const double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
  const double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

}  // namespace

NormalTable::NormalTable() {
  constexpr int kCells = 4096;
  constexpr double kTail = 1e-5;
  quantiles_[0] = static_cast<float>(normal_quantile(kTail));
  quantiles_[kCells] = -quantiles_[0];
  for (int i = 1; i < kCells; ++i) {
    quantiles_[i] =
        i == kCells / 2 ? 0.0f : static_cast<float>(normal_quantile(double(i) / kCells));
  }
}

const NormalTable& NormalTable::instance() {
  static const NormalTable table;
  return table;
}

void fill_normal(Xoshiro256& rng, float mean, float std, float* out, int64_t count) noexcept {
  const NormalTable& table = NormalTable::instance();
  int64_t i = 0;
  for (; i + 1 < count; i += 2) {
    const uint64_t bits = rng.next();
    out[i] = mean + std * table.sample(static_cast<uint32_t>(bits));
    out[i + 1] = mean + std * table.sample(static_cast<uint32_t>(bits >> 32));
  }
  if (i < count) out[i] = mean + std * table.sample(static_cast<uint32_t>(rng.next()));
}

}  // namespace polyinfer::inline v0::detail
