// SPDX-License-Identifier: Apache-2.0
// Engine: many models in one process behind routing, caching, batching and scheduling policies.
#pragma once

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
  kOverBudget,        ///< max_cost cannot be met by any route
  kOverloaded,        ///< admission control refused it (queue full)
  kModelUnavailable,  ///< no model serves it, or the model failed to load
  kInvalidRequest,    ///< bad input (empty prompt, too long for the context, unknown model)
  kInternalError,     ///< a bug: reported, never a crash
};

/// "ok", "timeout", …
[[nodiscard]] const char* status_name(Status status) noexcept;

/// Decoding settings. temperature 0 means greedy.
struct SamplingParams {
  int32_t max_tokens = 64;
  float temperature = 0.0f;
  float top_p = 1.0f;
  int32_t top_k = 0;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  uint64_t seed = 0;
  std::vector<std::string> stop;  ///< stop strings (the model's EOS ids always stop)
};

/// One request to the Engine.
struct Request {
  RequestKind kind = RequestKind::kGenerate;
  std::string task;   ///< task type used for routing ("add", "intent"); "" if unknown
  std::string model;  ///< pin a model by name; "" lets the routing policy choose
  std::string prompt;
  Quality quality = Quality::kStandard;
  std::optional<double> max_cost;  ///< budget in cost units (see Cost::units)
  Priority priority = Priority::kNormal;
  std::chrono::milliseconds deadline{0};  ///< from submission; 0 = none
  SamplingParams sampling;
};

/// What a request consumed.
struct Cost {
  double device_seconds = 0;  ///< measured CPU seconds of inference threads (or GPU time)
  double units = 0;           ///< Σ over model calls of tokens × relative cost (FLOP-equivalent)
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  int32_t model_calls = 0;
};

/// Where the time went, in milliseconds.
struct Timings {
  double queue_ms = 0;
  double run_ms = 0;
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
  float confidence = 0;       ///< minimum top-1 probability over generated tokens
  Cost cost;
  bool cache_hit = false;
  Timings timings;
  std::vector<std::string> route;  ///< "model/tier" of every model call, in order
};

/// Called for every generated token: (text piece, token id). Return false to cancel.
using StreamCallback = std::function<bool(std::string_view piece, int32_t token)>;

/// A model the Engine may serve.
struct ModelSpec {
  std::string name;
  std::filesystem::path path;  ///< .gguf or Hugging Face folder
  std::string kind = "decoder";  ///< "decoder", "classifier", "embedding"
  std::vector<std::string> tasks;
  std::vector<std::string> tiers{"native"};  ///< precisions to offer ("native", "q8_0", …)
  double relative_cost = 1.0;
  double quality = 1.0;
  int32_t context_length = 0;  ///< 0: the model's own
};

/// Engine settings; every policy can be swapped at construction.
struct EngineConfig {
  int32_t threads = 0;               ///< inference threads (0: all cores)
  uint64_t memory_budget_bytes = 0;  ///< resident weights + KV caches (0: unlimited)
  int32_t max_queue = 4096;          ///< admission control: more waiting requests are refused
  std::vector<ModelSpec> models;
  std::shared_ptr<RoutingPolicy> routing;  ///< null: "rules"
  /// Policy knobs by name, as in the JSON config ("cache.exact.max_bytes", "batching.max_tokens").
  std::map<std::string, double> knobs;
  std::map<std::string, std::string> options;  ///< string settings ("cache.semantic.model")

  /// Reads an engine config (schema in docs/engine-config.md); model paths resolve relative to
  /// the file. Throws polyinfer::Error naming the file and the key.
  [[nodiscard]] static EngineConfig from_json(const std::filesystem::path& path);
};

/// Live counters, also exported as Prometheus text.
struct Metrics {
  int64_t requests = 0;
  int64_t completed = 0;
  int64_t cache_hits = 0;
  int64_t queued = 0;
  double device_seconds = 0;
  std::map<std::string, int64_t> by_model_tier;  ///< answered requests by "model/tier"
};

/// Serves requests over its models. Thread-safe: submit, cancel and metrics may be called from
/// any thread at any time. Every submitted request gets exactly one Response, also on shutdown.
class Engine {
 public:
  explicit Engine(EngineConfig config);
  /// Stops accepting work, cancels what has not started, finishes what runs, joins threads.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// Queues a request; the future is always fulfilled (see Response::status).
  [[nodiscard]] std::future<Response> submit(Request request);
  /// Queues a request with per-token streaming; `on_token` runs on an engine thread.
  [[nodiscard]] std::future<Response> submit(Request request, StreamCallback on_token);
  [[nodiscard]] Metrics metrics() const;
  /// Metrics in the Prometheus text exposition format.
  [[nodiscard]] std::string metrics_prometheus() const;

 private:
  std::unique_ptr<detail::EngineImpl> impl_;
};

}  // namespace v0
}  // namespace polyinfer
