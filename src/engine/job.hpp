// SPDX-License-Identifier: Apache-2.0
// Job: one request on its way through the Engine (route, steps, answer), and a step's result.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "polyinfer/engine.hpp"
#include "polyinfer/policy.hpp"

namespace polyinfer::inline v0::detail {

using Clock = std::chrono::steady_clock;

/// What one model call produced.
struct StepResult {
  Status status = Status::kOk;
  std::string error;
  std::string text;
  std::vector<int32_t> tokens;
  std::vector<float> values;
  std::vector<std::string> pieces;  ///< streamed requests: text piece per token (replayed later)
  std::vector<std::string> labels;  ///< classifications: label names of `values`
  float confidence = 1.0f;          ///< min top-1 probability over generated tokens
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double device_seconds = 0;
};

/// A request in flight. Shared by the runners that work on it (ensembles: several at once);
/// answered exactly once (`answered`).
struct Job {
  enum class Phase { kEmbedding, kRouting, kRunning };

  uint64_t serial = 0;
  Request request;
  StreamCallback on_token;
  std::promise<Response> promise;
  Clock::time_point submitted;
  Clock::time_point deadline = Clock::time_point::max();
  std::atomic<Clock::rep> first_run{std::numeric_limits<Clock::rep>::max()};  ///< ticks
  int32_t max_tokens = 0;
  Phase phase = Phase::kRunning;
  RequestInfo info;
  Plan plan;
  std::string cache_key;                       ///< empty: not cached
  Quality cache_quality = Quality::kStandard;  ///< see RoutingPolicy::cache_quality
  bool budget_limited = false;  ///< max_cost cut the route short: cache for kLow only
  bool leader = false;          ///< other identical requests wait for this one
  bool counted = false;         ///< counted in the engine's queue (admission control)
  bool audit = false;  ///< the AutoTuner's check of an accepted answer (not a user request)
  Response response;   ///< cost and route accumulate here

  std::mutex mutex;  ///< ensembles: results from several runners
  int outstanding = 0;
  std::vector<StepResult> results;  ///< ensembles: by step; cascades: [0] a rejected answer
  size_t fallback_step = 0;         ///< cascades: the step of results[0]
  std::vector<float> embedding;     ///< semantic cache: the prompt's unit embedding
  std::string semantic_context;     ///< semantic cache: the exact key without the prompt
  std::vector<int32_t> draft;       ///< cascades: the rejected answer, for the next step to verify
  std::atomic<bool> answered{false};

  /// Records the first model step (the end of queueing).
  void mark_started(Clock::time_point now) noexcept {
    Clock::rep unset = std::numeric_limits<Clock::rep>::max();
    first_run.compare_exchange_strong(unset, now.time_since_epoch().count());
  }
  [[nodiscard]] bool cancelled() const {
    return request.cancel.has_value() && request.cancel->cancelled();
  }
  [[nodiscard]] bool expired(Clock::time_point now) const { return now >= deadline; }
  /// Whether step `step`'s tokens go to the stream callback as they come.
  [[nodiscard]] bool streams_live(size_t step) const {
    return on_token && plan.kind != Plan::Kind::kEnsemble && step + 1 == plan.steps.size();
  }
};

using JobPtr = std::shared_ptr<Job>;

/// A job's step queued at a runner.
struct WorkItem {
  JobPtr job;
  size_t step = 0;
  Clock::time_point enqueued;
};

}  // namespace polyinfer::inline v0::detail
