// SPDX-License-Identifier: Apache-2.0
// Engine: many models in one process behind routing, caching, batching and scheduling policies.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "polyinfer/model.hpp"
#include "polyinfer/policy.hpp"

namespace polyinfer {
inline namespace v0 {

namespace detail {
class EngineImpl;
}

/// What a request asks for: text from a decoder, a label from a classifier, or an embedding.
enum class RequestKind { kGenerate, kClassify, kEmbed };

/// Per-request outcome; only kOk carries an answer. Normal operation never throws for these.
enum class Status {
  kOk,
  kTimeout,           ///< the deadline passed before the answer was complete
  kCancelled,         ///< cancelled by the caller (or the engine shut down first)
  kOverBudget,        ///< max_cost cannot be met by any route (policy set to reject)
  kOverloaded,        ///< admission control refused it (queue full)
  kModelUnavailable,  ///< no model serves it, or the model failed to load / fit in memory
  kInvalidRequest,    ///< bad input (empty prompt, too long for the context, unknown model)
  kInternalError,     ///< a bug: reported, never a crash
};

/// "ok", "timeout", "cancelled", "over_budget", "overloaded", "model_unavailable", …
[[nodiscard]] std::string_view status_name(Status status) noexcept;

/// A flag shared between the caller and the engine: cancel() from any thread ends the request
/// (Status::kCancelled) at the next decode step. Copies share the flag.
class CancelToken {
 public:
  CancelToken() : flag_(std::make_shared<std::atomic<bool>>(false)) {}
  void cancel() const noexcept { flag_->store(true, std::memory_order_relaxed); }
  [[nodiscard]] bool cancelled() const noexcept { return flag_->load(std::memory_order_relaxed); }

 private:
  std::shared_ptr<std::atomic<bool>> flag_;
};

/// One request to the Engine.
struct Request {
  RequestKind kind = RequestKind::kGenerate;
  std::string task;   ///< task type used for routing ("add", "intent"); "" if unknown
  std::string model;  ///< pin a model by name (routing skipped); "" lets the policy choose
  std::string tier;   ///< with `model`: its tier ("" = the model's first)
  std::string prompt;
  Quality quality = Quality::kStandard;
  std::optional<double> max_cost;  ///< budget in cost units (see Cost::units)
  Priority priority = Priority::kNormal;
  std::chrono::milliseconds deadline{0};  ///< from submission; 0 = none
  int32_t max_tokens = 0;                 ///< generated tokens at most; 0 = the config default
  SamplingParams sampling;                ///< greedy by default
  std::vector<std::string> stop;          ///< stop strings (the model's end ids always stop)
  std::optional<CancelToken> cancel;      ///< keep a copy to cancel from another thread
};

/// What a request consumed.
struct Cost {
  /// Measured CPU seconds of the executor thread in this request's model steps (a step's time
  /// shared by its tokens; with `threads` > 1, plus (threads − 1) × the step's wall time).
  double device_seconds = 0;
  double units = 0;  ///< Σ over model calls of (prompt + generated tokens) × relative cost
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  int32_t model_calls = 0;
};

/// Where the time went, in milliseconds.
struct Timings {
  double queue_ms = 0;  ///< submission → first model step
  double run_ms = 0;    ///< first model step → answer
  double total_ms = 0;
};

/// The answer to one request.
struct Response {
  Status status = Status::kOk;
  std::string error;  ///< a clear message when status != kOk
  std::string text;   ///< generated text (kGenerate) or label (kClassify)
  std::vector<int32_t> tokens;
  std::vector<float> values;  ///< class probabilities (kClassify) or the embedding (kEmbed)
  std::string model;          ///< the model that answered
  std::string tier;           ///< its precision tier
  float confidence = 0;  ///< min top-1 probability over generated tokens (kClassify: top label's)
  Cost cost;
  bool cache_hit = false;
  bool over_budget = false;  ///< served although no route fit max_cost
  Timings timings;
  std::vector<std::string> route;  ///< "model/tier" of every model call, in order
};

/// Called for every generated token: (text piece, token id). Return false to cancel. In a
/// cascade, the tokens of a step arrive once the step is accepted (the last step streams live).
using StreamCallback = std::function<bool(std::string_view piece, int32_t token)>;

/// A model the Engine may serve. Loaded on first use; unloaded when memory is needed.
struct ModelSpec {
  std::string name;
  std::filesystem::path path;                ///< .gguf or Hugging Face folder
  std::string kind = "decoder";              ///< "decoder", "classifier", "embedding"
  std::vector<std::string> tasks;            ///< task types it serves (empty: any)
  std::vector<std::string> tiers{"native"};  ///< precisions to offer ("native", "q8_0", …)
  double relative_cost = 1.0;  ///< cost per token relative to the reference model (units)
  double quality = 1.0;        ///< expected accuracy in [0, 1] (a hint for rules)
  int32_t context_length = 0;  ///< 0: the model's own (at most 4096)
  /// Decoders: "cpu", "cuda:N" (pinned to that GPU), "cuda" (placed by the Engine on one of
  /// EngineConfig::devices, or cuda:0 when none are listed) or "cuda:0,cuda:1" (split over
  /// those GPUs: tensor parallelism); encoders run on the CPU.
  std::string device = "cpu";
};

/// A GPU the Engine places models on, with a memory budget of its own.
struct DeviceConfig {
  std::string name;                  ///< "cuda:N"
  uint64_t memory_budget_bytes = 0;  ///< weights + KV caches of models placed there (0: unlimited)
  /// The physical GPU (-1: N of the name). Two names on one GPU split it into two budgets.
  int32_t gpu = -1;
};

/// Continuous batching of decoders, and the batching window of encoders.
struct BatchingConfig {
  int32_t max_tokens = 256;    ///< tokens per forward pass (decode tokens + prompt chunks)
  int32_t max_sequences = 32;  ///< active sequences per decoder
  double window_ms = 1.0;      ///< encoders wait this long for more requests to batch
  /// Cascades: the next model checks the rejected answer in one forward pass and continues
  /// from the first token it disagrees with (greedy requests; same answers, fewer passes).
  bool verify_drafts = true;
};

/// The exact response cache (key: kind, pinned model/tier, prompt, sampling, stop, max tokens).
/// An entry made for quality q answers requests of quality ≤ q.
struct CacheConfig {
  bool enabled = true;
  uint64_t max_bytes = 64ull << 20;
  double ttl_s = 3600;  ///< entries older than this are misses; 0 = no expiry
  /// Semantic cache: an embedding (or classifier) model whose mean-pooled embedding of the
  /// prompt finds earlier answers with cosine similarity ≥ semantic_threshold ("" = off).
  std::string semantic_model;
  double semantic_threshold = 0.97;
  uint64_t semantic_max_entries = 4096;
};

/// The AutoTuner: every `window_requests` answers it compares cost and latency with the last
/// window and keeps a knob change only when one improved and estimated accuracy ≥ floor.
struct TunerConfig {
  bool enabled = false;
  int32_t window_requests = 200;
  double accuracy_floor = 0.99;  ///< of accepted cascade answers, estimated by audits
  double audit_rate = 0.05;      ///< accepted answers re-run on the last step to estimate it
};

/// Engine settings; every policy can be swapped at construction.
struct EngineConfig {
  int32_t executors = 1;             ///< threads that run model steps
  int32_t threads = 1;               ///< kernel threads per model (1: the executor alone)
  uint64_t memory_budget_bytes = 0;  ///< host memory of models on the CPU (0: unlimited)
  /// GPUs: where "cuda" models may go, and the budgets of each (a GPU not listed: unlimited).
  /// A model is placed where it fits without evicting, the least busy and emptiest first;
  /// otherwise idle models are evicted on the GPU that needs the least evicted. Each load
  /// places anew, so an evicted model may come back on another GPU.
  std::vector<DeviceConfig> devices;
  int32_t max_queue = 4096;  ///< admission control: more waiting requests are refused
  int32_t max_tokens = 64;   ///< default Request::max_tokens
  std::vector<ModelSpec> models;
  std::shared_ptr<RoutingPolicy> routing;  ///< null: rules with no rules
  BatchingConfig batching;
  CacheConfig cache;
  TunerConfig tuner;

  /// Reads an engine config (schema in docs/engine-config.md); model paths resolve relative to
  /// the file. Throws polyinfer::Error naming the file and the key.
  [[nodiscard]] static EngineConfig from_json(const std::filesystem::path& path);
};

/// Counters of one model/tier.
struct ModelMetrics {
  int64_t requests = 0;  ///< answers given (cascade: the accepting step)
  int64_t calls = 0;     ///< model calls (cascade steps included)
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double device_seconds = 0;
  int64_t loads = 0;
  int64_t evictions = 0;
  std::string device;  ///< where it was last loaded ("cpu", "cuda:N")
};

/// Memory of one device ("cpu" = host memory of CPU models).
struct DeviceMetrics {
  uint64_t budget_bytes = 0;    ///< 0: unlimited
  uint64_t resident_bytes = 0;  ///< now
  uint64_t peak_resident_bytes = 0;
  int64_t models = 0;  ///< loaded now
};

/// Live counters, also exported as Prometheus text.
struct Metrics {
  int64_t requests = 0;   ///< submitted
  int64_t completed = 0;  ///< answered (any status)
  int64_t cache_hits = 0;
  int64_t over_budget = 0;  ///< served or rejected because no route fit max_cost
  int64_t escalations = 0;  ///< cascade steps not accepted
  int64_t queued = 0;       ///< waiting now
  double device_seconds = 0;
  double units = 0;
  std::map<std::string, int64_t> by_status;           ///< answers by status_name
  std::map<std::string, ModelMetrics> by_model_tier;  ///< by "model/tier"
  std::map<std::string, DeviceMetrics> by_device;     ///< by device name
  std::map<std::string, double> knobs;                ///< current policy and tuner knobs
};

/// Serves requests over its models. Thread-safe: submit and metrics may be called from any
/// thread at any time. Every submitted request gets exactly one Response, also on shutdown.
///
///   polyinfer::Engine engine(polyinfer::EngineConfig::from_json("engine.json"));
///   polyinfer::Response r = engine.submit({.task = "add", .prompt = "add 2 3 ="}).get();
class Engine {
 public:
  /// Starts the executor threads; models load on first use. Throws Error for a bad config.
  explicit Engine(EngineConfig config);
  /// Finishes the step in progress, answers everything else kCancelled, joins the threads.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// Queues a request; the future is always fulfilled (see Response::status).
  [[nodiscard]] std::future<Response> submit(Request request);
  /// Queues a request with per-token streaming; `on_token` runs on an engine thread.
  [[nodiscard]] std::future<Response> submit(Request request, StreamCallback on_token);
  /// Adds a model at run time (loaded on first use). Throws Error for a duplicate name.
  void add_model(ModelSpec spec);
  /// A snapshot of the counters.
  [[nodiscard]] Metrics metrics() const;
  /// Metrics in the Prometheus text exposition format (counters and latency histograms).
  [[nodiscard]] std::string metrics_prometheus() const;

  /// Wraps an implementation (tests inject fake models this way).
  explicit Engine(std::unique_ptr<detail::EngineImpl> impl);

 private:
  std::unique_ptr<detail::EngineImpl> impl_;
};

}  // namespace v0
}  // namespace polyinfer
