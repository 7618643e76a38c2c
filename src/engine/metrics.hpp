// SPDX-License-Identifier: Apache-2.0
// MetricsRegistry: the Engine's counters and latency histograms, and their Prometheus text.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "polyinfer/engine.hpp"

namespace polyinfer::inline v0::detail {

/// Request latency histogram with fixed bucket bounds (milliseconds).
struct LatencyHistogram {
  static constexpr std::array<double, 14> kBoundsMs{1,   2,   5,    10,   20,   50,    100,
                                                    200, 500, 1000, 2000, 5000, 10000, 30000};
  std::array<int64_t, kBoundsMs.size() + 1> counts{};  ///< last: above every bound
  double sum_ms = 0;
  int64_t count = 0;
  void add(double ms) noexcept;
};

/// Thread-safe aggregation of what the engine did (one mutex; updated once per call/answer).
class MetricsRegistry {
 public:
  void submitted();
  /// One model call finished (cascade steps, router classifications, ensemble members).
  void call(const std::string& model_tier, int64_t prompt_tokens, int64_t generated_tokens,
            double device_seconds, double units);
  /// One answer given.
  void answered(const Response& response);
  void escalation();
  void over_budget();
  void load(const std::string& model_tier, const std::string& device);
  void eviction(const std::string& model_tier);
  void preemption();

  /// A snapshot (queued and knobs are the caller's to fill).
  [[nodiscard]] Metrics snapshot() const;
  /// Latency sum and count of answers so far (the AutoTuner's windows).
  [[nodiscard]] std::pair<double, int64_t> latency_totals() const;
  /// Prometheus text exposition of everything, plus `gauges` (name → value).
  [[nodiscard]] std::string prometheus(const std::map<std::string, double>& gauges) const;

 private:
  mutable std::mutex mutex_;
  Metrics metrics_;
  int64_t preemptions_ = 0;
  double latency_sum_ms_ = 0;
  LatencyHistogram all_;
  std::map<std::string, LatencyHistogram> by_model_tier_;
};

}  // namespace polyinfer::inline v0::detail
