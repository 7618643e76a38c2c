// SPDX-License-Identifier: Apache-2.0
// Runner: one loaded (model, tier) and its work: continuous batching (decoders) or a batching
// window (encoders). The EngineImpl's executors step runners one at a time each.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/job.hpp"
#include "engine/served_model.hpp"
#include "runtime/sampler.hpp"
#include "runtime/text_stream.hpp"

namespace polyinfer::inline v0::detail {

class EngineImpl;

/// What loading a model within the memory budget came to.
enum class LoadState { kReady, kBlocked, kFailed };

/// Seconds of CPU time the calling thread has used.
[[nodiscard]] double thread_cpu_seconds() noexcept;

/// A (model, tier) the engine serves. Fields under "scheduler state" are guarded by the
/// EngineImpl's mutex; the rest belongs to the executor holding the claim.
class Runner {
 public:
  Runner(EngineImpl& engine, ModelSpec spec, std::string tier);
  virtual ~Runner() = default;
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  [[nodiscard]] const std::string& key() const noexcept { return key_; }
  [[nodiscard]] const ModelSpec& spec() const noexcept { return spec_; }
  [[nodiscard]] const std::string& tier() const noexcept { return tier_; }
  [[nodiscard]] bool loaded() const noexcept { return loaded_.load(std::memory_order_acquire); }

  /// Runs one step over `incoming` (new work) and what it holds. Claim held, engine unlocked.
  virtual void step(std::vector<WorkItem>& incoming) = 0;
  /// Sequences in the middle of a model call (not evictable while > 0).
  [[nodiscard]] virtual size_t active() const noexcept = 0;
  /// Work held inside (waiting and active), besides `incoming`.
  [[nodiscard]] virtual size_t held() const noexcept = 0;
  /// Highest priority among held work (kLow when none).
  [[nodiscard]] virtual Priority top_priority() const noexcept = 0;
  /// When held or incoming work may step next (encoders wait for their window). Engine lock.
  [[nodiscard]] virtual Clock::time_point ready_at() const noexcept = 0;
  /// Answers everything held with `status` (shutdown) and drops the model.
  virtual void fail_all(Status status, const std::string& message) = 0;
  /// Drops the model (no active sequences); waiting work stays.
  virtual void unload() = 0;
  /// Bytes the loaded model holds.
  [[nodiscard]] virtual uint64_t resident_bytes() const noexcept = 0;

  // Scheduler state (EngineImpl's mutex).
  std::vector<WorkItem> incoming;
  bool claimed = false;
  uint64_t last_step = 0;
  Clock::time_point last_used{};
  Clock::time_point loaded_at{};
  Clock::time_point retry_at{};  ///< blocked on memory: next try
  double load_seconds = 0.05;    ///< measured at the last load (eviction prefers cheap reloads)
  uint64_t estimated_bytes = 0;  ///< before the first load; then the measured bytes
  bool resident = false;         ///< counted in the memory budget of `device`
  std::string device;            ///< where it is (or was last) placed: "cpu", "cuda:N"

 protected:
  /// Device seconds of a step: the executor's CPU time, plus the kernel workers' (estimated as
  /// busy for the step's wall time).
  [[nodiscard]] double step_seconds(double cpu_seconds, double wall_seconds) const noexcept;
  /// Loads through the engine's memory budget; `error` says why on kFailed.
  [[nodiscard]] LoadState ensure_loaded(std::string& error);

  EngineImpl& engine_;
  ModelSpec spec_;
  std::string tier_;
  std::string key_;
  std::atomic<bool> loaded_{false};  // read by the scheduler for the catalog
  LoadedModel model_;
};

/// Continuous batching over a ServedDecoder: every step runs one decode token of each active
/// sequence plus prompt chunks under the token budget; higher priorities preempt lower ones.
class DecoderRunner final : public Runner {
 public:
  using Runner::Runner;
  ~DecoderRunner() override;

  void step(std::vector<WorkItem>& incoming) override;
  [[nodiscard]] size_t active() const noexcept override { return active_.size(); }
  [[nodiscard]] size_t held() const noexcept override { return active_.size() + waiting_.size(); }
  [[nodiscard]] Priority top_priority() const noexcept override;
  [[nodiscard]] Clock::time_point ready_at() const noexcept override;
  void fail_all(Status status, const std::string& message) override;
  void unload() override;
  [[nodiscard]] uint64_t resident_bytes() const noexcept override;

 private:
  struct Sequence {
    WorkItem item;
    Priority priority = Priority::kNormal;
    std::vector<int32_t> ids;  // prompt, then generated ids
    int64_t prompt_length = 0;
    int64_t computed = 0;  // positions in the KV cache
    int32_t kv = -1;
    int32_t max_tokens = 0;
    bool greedy = true;
    std::optional<Sampler> sampler;
    std::optional<double> uniform;  // the next pick's draw, kept if its pass is retried
    std::optional<TextStream> stream;
    bool live = false;  // stream pieces to the callback now
    float min_top_logprob = 0.0f;
    double device_seconds = 0;
    std::vector<std::string> pieces;
    // Cascades: the previous step's answer, verified in one pass (greedy only).
    std::vector<int32_t> draft;
    int64_t draft_length = 0;  // > 0: ids end with a draft not yet verified
    // This step.
    int64_t step_tokens = 0;
    int64_t logits_row = -1;   // first logits row of this sequence's entry
    int64_t logits_first = 0;  // position of that row (kAll entries)
  };
  using SequencePtr = std::unique_ptr<Sequence>;
  struct Order {  // waiting order: priority first, then arrival
    bool operator()(const SequencePtr& a, const SequencePtr& b) const noexcept;
  };

  [[nodiscard]] SequencePtr make_sequence(WorkItem item);
  bool admit(Sequence& sequence);  // false: answered (bad prompt)
  void suspend(size_t index);
  void sweep(Clock::time_point now);
  /// specs_ and penalized_ for a step with sampled sequences: one spec per logits row.
  void prepare_specs();
  /// Appends a chosen token: stop conditions, text, streaming; 0: go on, 1: stopped, 2:
  /// cancelled by the stream callback.
  int emit(Sequence& sequence, int32_t id, float top_logprob);
  /// Checks a draft against the model's greedy choices (`picks`: one per row of the entry):
  /// accepted tokens are kept, the first disagreement is replaced by the model's token.
  int verify(Sequence& sequence, const GreedyPick* picks);
  void finish(Sequence& sequence, Status status, std::string error);
  [[nodiscard]] int64_t generated(const Sequence& s) const noexcept {
    return static_cast<int64_t>(s.ids.size()) - s.prompt_length;
  }

  ServedDecoder* decoder_ = nullptr;
  std::vector<SequencePtr> active_;
  std::multiset<SequencePtr, Order> waiting_;
  std::vector<BatchEntry> entries_;
  std::vector<Sequence*> entry_sequences_;
  std::vector<GreedyPick> picks_;  // steps where every sequence is greedy
  std::vector<SampleSpec> specs_;  // steps with sampled sequences: one per logits row
  std::vector<int32_t> penalized_;
  std::vector<SamplePick> sampled_;
  std::vector<GreedyPick> row_picks_;  // a greedy sequence's rows in a step with sampling
  std::vector<std::pair<Sequence*, bool>> done_;  // this step: (sequence, cancelled)
  Clock::time_point next_sweep_{};
};

/// Batches encoder requests that arrive within the window (classification, embeddings, and
/// the router's classifications).
class EncoderRunner final : public Runner {
 public:
  using Runner::Runner;

  void step(std::vector<WorkItem>& incoming) override;
  [[nodiscard]] size_t active() const noexcept override { return 0; }
  [[nodiscard]] size_t held() const noexcept override { return waiting_.size(); }
  [[nodiscard]] Priority top_priority() const noexcept override;
  [[nodiscard]] Clock::time_point ready_at() const noexcept override;
  void fail_all(Status status, const std::string& message) override;
  void unload() override;
  [[nodiscard]] uint64_t resident_bytes() const noexcept override;

 private:
  std::vector<WorkItem> waiting_;
  std::vector<std::vector<int32_t>> batch_;
  std::vector<WorkItem> batch_items_;
};

}  // namespace polyinfer::inline v0::detail
