// SPDX-License-Identifier: Apache-2.0
// Runner basics (loading through the engine) and the EncoderRunner's batching window.
#include "engine/runner.hpp"

#include <time.h>

#include <algorithm>

#include "engine/engine_impl.hpp"

namespace polyinfer::inline v0::detail {

double thread_cpu_seconds() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

Runner::Runner(EngineImpl& engine, ModelSpec spec, std::string tier)
    : engine_(engine), spec_(std::move(spec)), tier_(std::move(tier)) {
  key_ = spec_.name + "/" + tier_;
}

double Runner::step_seconds(double cpu_seconds, double wall_seconds) const noexcept {
  return cpu_seconds + (engine_.kernel_threads() - 1) * wall_seconds;
}

LoadState Runner::ensure_loaded(std::string& error) {
  if (loaded_) return LoadState::kReady;
  EngineImpl::LoadOutcome outcome = engine_.load(*this);
  if (outcome.state == LoadState::kReady) {
    model_ = std::move(outcome.model);
    loaded_ = true;
  }
  error = std::move(outcome.error);
  return outcome.state;
}

// ---------------------------------------------------------------------------------------------
// EncoderRunner

Priority EncoderRunner::top_priority() const noexcept {
  Priority top = Priority::kLow;
  for (const WorkItem& item : waiting_) top = std::max(top, item.job->request.priority);
  for (const WorkItem& item : incoming) top = std::max(top, item.job->request.priority);
  return top;
}

Clock::time_point EncoderRunner::ready_at() const noexcept {
  const size_t count = waiting_.size() + incoming.size();
  if (count == 0) return Clock::time_point::max();
  if (count >= static_cast<size_t>(engine_.batch_max_sequences())) return Clock::time_point::min();
  Clock::time_point oldest = Clock::time_point::max();
  for (const WorkItem& item : waiting_) oldest = std::min(oldest, item.enqueued);
  for (const WorkItem& item : incoming) oldest = std::min(oldest, item.enqueued);
  return oldest + std::chrono::duration_cast<Clock::duration>(
                      std::chrono::duration<double, std::milli>(engine_.window_ms()));
}

void EncoderRunner::fail_all(Status status, const std::string& message) {
  std::vector<WorkItem> items;
  items.swap(waiting_);
  for (const WorkItem& item : items) engine_.respond_error(item.job, status, message);
  unload();
}

void EncoderRunner::unload() {
  model_ = {};
  loaded_ = false;
}

uint64_t EncoderRunner::resident_bytes() const noexcept {
  return model_.encoder ? model_.encoder->resident_bytes() : 0;
}

void EncoderRunner::step(std::vector<WorkItem>& incoming_items) {
  for (WorkItem& item : incoming_items) waiting_.push_back(std::move(item));
  incoming_items.clear();
  const Clock::time_point now = Clock::now();
  // Cancelled, expired or already answered work leaves without running.
  std::erase_if(waiting_, [&](const WorkItem& item) {
    const Job& job = *item.job;
    if (job.answered.load()) return true;
    if (job.cancelled()) {
      engine_.respond_error(item.job, Status::kCancelled, "cancelled");
      return true;
    }
    if (job.expired(now)) {
      engine_.respond_error(item.job, Status::kTimeout, "deadline passed while queued");
      return true;
    }
    return false;
  });
  if (waiting_.empty()) return;
  std::string error;
  const LoadState state = ensure_loaded(error);
  if (state == LoadState::kBlocked) return;
  if (state == LoadState::kFailed) {
    fail_all(Status::kModelUnavailable, error);
    return;
  }
  ServedEncoder& encoder = *model_.encoder;

  // The most urgent first, at most a batch.
  std::stable_sort(waiting_.begin(), waiting_.end(), [](const WorkItem& a, const WorkItem& b) {
    return a.job->request.priority > b.job->request.priority;
  });
  const size_t take =
      std::min(waiting_.size(), static_cast<size_t>(std::max(1, engine_.batch_max_sequences())));
  batch_items_.assign(
      std::make_move_iterator(waiting_.begin()),
      std::make_move_iterator(waiting_.begin() + static_cast<std::ptrdiff_t>(take)));
  waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(take));

  const double cpu_start = thread_cpu_seconds();
  const Clock::time_point wall_start = Clock::now();
  batch_.clear();
  std::vector<WorkItem> items;
  for (WorkItem& item : batch_items_) {
    Job& job = *item.job;
    job.mark_started(now);
    try {
      batch_.push_back(encoder.encode(job.request.prompt));
      items.push_back(std::move(item));
    } catch (const std::exception& e) {
      engine_.respond_error(item.job, Status::kInvalidRequest, e.what());
    }
  }
  if (items.empty()) return;
  // Classifications and embeddings may share the model: run each kind as its own batch.
  std::vector<std::vector<float>> outputs(items.size());
  try {
    for (const bool classify : {true, false}) {
      std::vector<std::vector<int32_t>> part;
      std::vector<size_t> where;
      for (size_t i = 0; i < items.size(); ++i) {
        const Job& job = *items[i].job;
        const bool wants_labels =
            job.phase == Job::Phase::kRouting || job.request.kind == RequestKind::kClassify;
        if (wants_labels != classify) continue;
        part.push_back(std::move(batch_[i]));
        where.push_back(i);
      }
      if (part.empty()) continue;
      std::vector<std::vector<float>> values = encoder.run(part, classify);
      for (size_t k = 0; k < where.size(); ++k) {
        outputs[where[k]] = std::move(values[k]);
        batch_[where[k]] = std::move(part[k]);
      }
    }
  } catch (const std::exception& e) {
    for (const WorkItem& item : items)
      engine_.respond_error(item.job, Status::kInternalError, e.what());
    return;
  }
  const double cpu_seconds =
      step_seconds(thread_cpu_seconds() - cpu_start,
                   std::chrono::duration<double>(Clock::now() - wall_start).count());
  int64_t total_tokens = 0;
  for (const auto& ids : batch_) total_tokens += static_cast<int64_t>(ids.size());
  const std::vector<std::string> labels = encoder.labels();
  for (size_t i = 0; i < items.size(); ++i) {
    StepResult result;
    result.values = std::move(outputs[i]);
    const Job& job = *items[i].job;
    if (job.phase == Job::Phase::kRouting || job.request.kind == RequestKind::kClassify) {
      const auto top = std::max_element(result.values.begin(), result.values.end());
      if (top != result.values.end()) {
        const auto label = static_cast<size_t>(top - result.values.begin());
        result.text = label < labels.size() ? labels[label] : std::to_string(label);
        result.confidence = *top;
      }
      result.labels = labels;
    }
    result.prompt_tokens = static_cast<int64_t>(batch_[i].size());
    result.device_seconds = total_tokens > 0
                                ? cpu_seconds * static_cast<double>(result.prompt_tokens) /
                                      static_cast<double>(total_tokens)
                                : 0.0;
    engine_.finish_step(items[i], std::move(result));
  }
}

}  // namespace polyinfer::inline v0::detail
