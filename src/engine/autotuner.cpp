// SPDX-License-Identifier: Apache-2.0
// AutoTuner: measurement windows, one knob trial at a time, audits of accepted answers.
#include "engine/autotuner.hpp"

#include <algorithm>
#include <cmath>

#include "engine/engine_impl.hpp"

namespace polyinfer::inline v0::detail {

namespace {

constexpr double kImprovement = 0.98;  // a kept change saves ≥ 2% …
constexpr double kTolerance = 1.05;    // … and costs ≤ 5% more on the other measure
constexpr int64_t kMinAudits = 10;     // routing changes need this many audits in the window

}  // namespace

AutoTuner::AutoTuner(EngineImpl& engine, TunerConfig config) : engine_(engine), config_(config) {
  knobs_.push_back({"batching.window_ms", 0.0, 20.0, 0.5, false, false,
                    [this] { return engine_.window_ms(); },
                    [this](double v) { engine_.set_window_ms(v); }});
  knobs_.push_back({"batching.max_tokens", 16, 2048, 2.0, true, false,
                    [this] { return static_cast<double>(engine_.batch_max_tokens()); },
                    [this](double v) { engine_.set_batch_max_tokens(static_cast<int32_t>(v)); }});
  if (ResponseCache* cache = engine_.cache(); cache != nullptr) {
    knobs_.push_back({"cache.max_bytes", 1 << 20, 1ull << 32, 2.0, true, false,
                      [cache] { return static_cast<double>(cache->max_bytes()); },
                      [cache](double v) { cache->set_max_bytes(static_cast<uint64_t>(v)); }});
  }
  for (const auto& [name, value] : engine_.routing().knobs()) {
    // Thresholds and taus live in [0.5, 0.999]; steps of 0.02.
    knobs_.push_back({"routing." + name, 0.5, 0.999, 0.02, false, true,
                      [this, name] { return engine_.routing().knobs()[name]; },
                      [this, name](double v) { engine_.routing().set_knob(name, v); }});
  }
}

AutoTuner::~AutoTuner() = default;

void AutoTuner::stop() {
  const std::lock_guard lock(mutex_);
  stopped_ = true;
  audits_.clear();  // their futures are fulfilled by the engine's shutdown
}

std::pair<int, int> AutoTuner::decisions() const {
  const std::lock_guard lock(mutex_);
  return {kept_, reverted_};
}

void AutoTuner::collect_audits() {
  for (auto it = audits_.begin(); it != audits_.end();) {
    if (it->future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      ++it;
      continue;
    }
    const Response r = it->future.get();
    if (r.status == Status::kOk) {
      ++window_.audits;
      window_.agreed += r.text == it->expected ? 1 : 0;
    }
    it = audits_.erase(it);
  }
}

void AutoTuner::observe(const Job& job, const Response& response) {
  if (job.audit) return;
  Request audit;
  bool submit_audit = false;
  {
    const std::lock_guard lock(mutex_);
    if (stopped_) return;
    collect_audits();
    ++window_.answers;
    window_.device_seconds += response.cost.device_seconds;
    window_.latency_ms += response.timings.total_ms;
    // Audit an answer accepted before the cascade's last step.
    const Plan& plan = job.plan;
    if (response.status == Status::kOk && !response.cache_hit &&
        plan.kind == Plan::Kind::kCascade && plan.steps.size() > 1 &&
        response.model != plan.steps.back().model &&
        std::uniform_real_distribution<double>(0, 1)(rng_) < config_.audit_rate) {
      audit = job.request;
      audit.model = plan.steps.back().model;
      audit.tier = plan.steps.back().tier;
      audit.priority = Priority::kLow;
      audit.deadline = std::chrono::milliseconds(0);
      audit.cancel.reset();
      submit_audit = true;
    }
    if (window_.answers >= config_.window_requests) end_window();
  }
  if (submit_audit) {
    const std::string expected = response.text;
    std::future<Response> future = engine_.submit_audit(std::move(audit));
    const std::lock_guard lock(mutex_);
    if (!stopped_) audits_.push_back({std::move(future), expected});
  }
}

void AutoTuner::end_window() {
  const Window measured = window_;
  window_ = {};
  if (knobs_.empty()) return;
  if (!have_baseline_) {
    baseline_ = measured;
    have_baseline_ = true;
  } else if (trial_) {
    Knob& knob = knobs_[knob_];
    const bool cheaper = measured.cost() < baseline_.cost() * kImprovement &&
                         measured.latency() <= baseline_.latency() * kTolerance;
    const bool faster = measured.latency() < baseline_.latency() * kImprovement &&
                        measured.cost() <= baseline_.cost() * kTolerance;
    bool accurate = true;
    if (knob.accuracy) {
      accurate = measured.audits >= kMinAudits &&
                 static_cast<double>(measured.agreed) >=
                     config_.accuracy_floor * static_cast<double>(measured.audits);
    }
    trial_ = false;
    if ((cheaper || faster) && accurate) {
      ++kept_;
      baseline_ = measured;
    } else {
      ++reverted_;
      knob.set(previous_value_);
      direction_ = -direction_;
      have_baseline_ = false;  // measure again at the old value
      knob_ = (knob_ + (direction_ < 0 ? 1 : 0)) % knobs_.size();
      return;
    }
  }
  // Start the next trial.
  Knob& knob = knobs_[knob_];
  previous_value_ = knob.get();
  double value = knob.factor
                     ? (direction_ < 0 ? previous_value_ / knob.step : previous_value_ * knob.step)
                     : previous_value_ + direction_ * knob.step;
  value = std::clamp(value, knob.min, knob.max);
  if (knob.factor) value = std::round(value);
  if (value == previous_value_) {
    direction_ = -direction_;
    knob_ = (knob_ + 1) % knobs_.size();
    return;
  }
  knob.set(value);
  trial_ = true;
}

}  // namespace polyinfer::inline v0::detail
