// SPDX-License-Identifier: Apache-2.0
// EngineImpl: admission, routing, the response cache, executors, memory budget, answers.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/job.hpp"
#include "engine/metrics.hpp"
#include "engine/response_cache.hpp"
#include "engine/runner.hpp"
#include "engine/semantic_cache.hpp"
#include "engine/served_model.hpp"

namespace polyinfer::inline v0::detail {

class AutoTuner;

/// The Engine behind its public face. Thread-safe; see engine.hpp for the contract.
class EngineImpl {
 public:
  /// `loader` loads models (tests pass fakes); executors start at once.
  EngineImpl(EngineConfig config, ModelLoader loader = {});
  ~EngineImpl();
  EngineImpl(const EngineImpl&) = delete;
  EngineImpl& operator=(const EngineImpl&) = delete;

  [[nodiscard]] std::future<Response> submit(Request request, StreamCallback on_token,
                                             bool audit = false);
  void add_model(ModelSpec spec);
  [[nodiscard]] Metrics metrics() const;
  [[nodiscard]] std::string metrics_prometheus() const;

  // ---- For runners (executor threads).
  struct LoadOutcome {
    LoadState state = LoadState::kFailed;
    std::string error;
    LoadedModel model;
  };
  /// Loads a runner's model within the memory budget, evicting idle models (least recently
  /// used, cheapest to reload first). kBlocked: busy models hold the memory; try again later.
  [[nodiscard]] LoadOutcome load(Runner& runner);
  /// A step of a job finished at a runner: cascade, ensemble or answer.
  void finish_step(const WorkItem& item, StepResult result);
  /// Whether a runner may start new sequences (false while another model waits for memory).
  [[nodiscard]] bool admitting(const Runner& runner) const;
  [[nodiscard]] int32_t batch_max_tokens() const noexcept { return batch_max_tokens_.load(); }
  [[nodiscard]] int32_t batch_max_sequences() const noexcept {
    return config_.batching.max_sequences;
  }
  [[nodiscard]] double window_ms() const noexcept { return window_ms_.load(); }
  [[nodiscard]] bool verify_drafts() const noexcept { return config_.batching.verify_drafts; }
  [[nodiscard]] int32_t kernel_threads() const noexcept { return config_.threads; }
  [[nodiscard]] MetricsRegistry& registry() noexcept { return metrics_; }
  /// Answers a job now (exactly once) with `status`.
  void respond_error(const JobPtr& job, Status status, std::string error);

  // ---- For the AutoTuner.
  /// Submits an audit (answers only the tuner; not counted as a user request's cost).
  [[nodiscard]] std::future<Response> submit_audit(Request request) {
    return submit(std::move(request), {}, true);
  }
  void set_window_ms(double value) noexcept { window_ms_.store(value); }
  void set_batch_max_tokens(int32_t value) noexcept { batch_max_tokens_.store(value); }
  [[nodiscard]] ResponseCache* cache() noexcept { return cache_.get(); }
  [[nodiscard]] RoutingPolicy& routing() noexcept { return *routing_; }
  /// The AutoTuner; null when disabled.
  [[nodiscard]] const AutoTuner* tuner() const noexcept { return tuner_.get(); }

 private:
  void executor_loop();
  /// The next runner to step (claimed), or null; `wake` gets the time to look again.
  Runner* pick(Clock::time_point now, Clock::time_point& wake);
  void start(const JobPtr& job);
  void route(const JobPtr& job);
  void plan_and_dispatch(const JobPtr& job);
  bool dispatch(const JobPtr& job, size_t step);
  void escalate(const JobPtr& job, size_t step, StepResult&& result);
  void finish_ensemble(const JobPtr& job);
  void accept(const JobPtr& job, size_t step, StepResult&& result);
  void respond(const JobPtr& job, Response response);
  void release_followers(const JobPtr& job, const Response& response);
  [[nodiscard]] Runner* find_runner(const std::string& model, const std::string& tier);
  /// Unloads the best idle victim on `device` other than `keep` (mutex_ held by `lock`); false
  /// if none.
  bool evict_one(std::unique_lock<std::mutex>& lock, const Runner& keep, const std::string& device);
  /// Memory of one device.
  struct Pool {
    std::string gpu;      // the physical device models of this pool load on ("cuda:N")
    uint64_t budget = 0;  // 0: unlimited
    uint64_t resident = 0;
    uint64_t peak = 0;
    int64_t models = 0;
  };
  Pool& pool(const std::string& device);
  /// Devices a runner's model may be placed on: its pinned device, or the configured GPUs.
  [[nodiscard]] std::vector<std::string> placement_candidates(const ModelSpec& spec) const;
  /// Where a model of `need` bytes goes: a device where it fits now (least busy, then most
  /// free), else the device needing the least eviction of idle models (`evict` set); empty
  /// when no candidate can make room now. Mutex held.
  [[nodiscard]] std::string place(const Runner& runner, uint64_t need, bool& evict);
  /// Bytes of idle, evictable models on `device` other than `keep`. Mutex held.
  [[nodiscard]] uint64_t evictable_bytes(const std::string& device, const Runner& keep) const;
  /// Adds (or, with add false, removes) a model of `bytes` placed on `device` to the budget of
  /// each GPU it uses: the device, or every GPU of a split, each its share. Mutex held.
  void charge(const std::string& device, uint64_t bytes, bool add);
  void add_model_locked(ModelSpec spec);
  void rebuild_catalog_locked();
  [[nodiscard]] std::shared_ptr<const std::vector<CatalogEntry>> catalog() const;
  [[nodiscard]] RequestInfo request_info(const Request& request) const;
  void learn_output_tokens(const std::string& task, int64_t tokens);
  [[nodiscard]] double relative_cost(const std::string& model) const;
  void shutdown();

  EngineConfig config_;
  ModelLoader loader_;
  std::shared_ptr<RoutingPolicy> routing_;
  std::unique_ptr<ResponseCache> cache_;
  std::unique_ptr<SemanticCache> semantic_;
  MetricsRegistry metrics_;
  std::unique_ptr<AutoTuner> tuner_;
  std::atomic<int32_t> batch_max_tokens_;
  std::atomic<double> window_ms_;

  mutable std::mutex mutex_;  // scheduler: runners' incoming and claims, memory, catalog
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Runner>> runners_;
  std::map<std::string, Runner*> runner_index_;  // "model/tier"
  std::map<std::string, ModelSpec> specs_;
  std::shared_ptr<const std::vector<CatalogEntry>> catalog_;
  std::map<std::string, Pool> pools_;             // by device name; "cpu" always present
  std::atomic<const Runner*> pressure_{nullptr};  // a runner waiting for memory
  uint64_t step_counter_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> executors_;

  std::atomic<uint64_t> serial_{0};
  std::atomic<int64_t> queued_{0};

  std::mutex inflight_mutex_;  // identical requests wait for the first one
  std::unordered_map<std::string, std::vector<JobPtr>> followers_;

  mutable std::mutex tasks_mutex_;
  std::map<std::string, double> output_tokens_;  // running mean of generated tokens per task
};

}  // namespace polyinfer::inline v0::detail
