// SPDX-License-Identifier: Apache-2.0
// AutoTuner: adjusts engine knobs from live measurements, keeping only changes that pay.
#pragma once

#include <functional>
#include <future>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "engine/job.hpp"

namespace polyinfer::inline v0::detail {

class EngineImpl;

/// Hill climbing over knobs, one change per measurement window: the batching window, the batch
/// token budget, the cache size and the routing policy's knobs (cascade threshold, router tau).
/// A change is kept when device seconds or latency per answer improved by 2% without the other
/// getting 5% worse, and, for routing knobs, when the estimated accuracy of accepted answers
/// stays at or above the floor. Accuracy is estimated by audits: a sample of answers accepted
/// before a cascade's last step is re-run on the last step (at low priority) and compared.
/// Thread-safe: observe() is called from whichever thread answers a request.
class AutoTuner {
 public:
  AutoTuner(EngineImpl& engine, TunerConfig config);
  ~AutoTuner();
  AutoTuner(const AutoTuner&) = delete;
  AutoTuner& operator=(const AutoTuner&) = delete;

  /// Sees every answer (audits included: they only feed the accuracy estimate).
  void observe(const Job& job, const Response& response);
  /// No more trials or audits (engine shutdown).
  void stop();
  /// Changes kept and reverted so far.
  [[nodiscard]] std::pair<int, int> decisions() const;

 private:
  struct Knob {
    std::string name;
    double min = 0;
    double max = 0;
    double step = 0;  ///< additive when > 0 … multiplicative factor when `factor`
    bool factor = false;
    bool accuracy = false;  ///< changes what is answered (needs audits)
    std::function<double()> get;
    std::function<void(double)> set;
  };
  struct Window {
    int64_t answers = 0;
    double device_seconds = 0;
    double latency_ms = 0;
    int64_t audits = 0;
    int64_t agreed = 0;
    [[nodiscard]] double cost() const { return answers > 0 ? device_seconds / answers : 0; }
    [[nodiscard]] double latency() const { return answers > 0 ? latency_ms / answers : 0; }
  };
  struct Audit {
    std::future<Response> future;
    std::string expected;
  };

  void end_window();      // mutex_ held
  void collect_audits();  // mutex_ held

  EngineImpl& engine_;
  TunerConfig config_;
  mutable std::mutex mutex_;
  std::vector<Knob> knobs_;
  std::vector<Audit> audits_;
  std::mt19937_64 rng_{12345};
  Window window_;
  Window baseline_;
  bool have_baseline_ = false;
  bool trial_ = false;
  size_t knob_ = 0;
  int direction_ = -1;
  double previous_value_ = 0;
  int kept_ = 0;
  int reverted_ = 0;
  bool stopped_ = false;
};

}  // namespace polyinfer::inline v0::detail
