// SPDX-License-Identifier: Apache-2.0
// MetricsRegistry: counters under one mutex, Prometheus text exposition format 0.0.4.
#include "engine/metrics.hpp"

#include <fmt/format.h>

namespace polyinfer::inline v0::detail {

namespace {

/// A label value with \, " and newlines escaped.
std::string label_value(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void histogram_text(std::string& out, const std::string& labels, const LatencyHistogram& h) {
  int64_t cumulative = 0;
  const std::string sep = labels.empty() ? "" : ",";
  for (size_t i = 0; i < LatencyHistogram::kBoundsMs.size(); ++i) {
    cumulative += h.counts[i];
    out += fmt::format("polyinfer_request_latency_seconds_bucket{{{}{}le=\"{}\"}} {}\n", labels,
                       sep, LatencyHistogram::kBoundsMs[i] / 1000.0, cumulative);
  }
  cumulative += h.counts.back();
  out += fmt::format("polyinfer_request_latency_seconds_bucket{{{}{}le=\"+Inf\"}} {}\n", labels,
                     sep, cumulative);
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += fmt::format("polyinfer_request_latency_seconds_sum{} {}\n", braces, h.sum_ms / 1000.0);
  out += fmt::format("polyinfer_request_latency_seconds_count{} {}\n", braces, h.count);
}

}  // namespace

void LatencyHistogram::add(double ms) noexcept {
  size_t bucket = 0;
  while (bucket < kBoundsMs.size() && ms > kBoundsMs[bucket]) ++bucket;
  ++counts[bucket];
  sum_ms += ms;
  ++count;
}

void MetricsRegistry::submitted() {
  const std::lock_guard lock(mutex_);
  ++metrics_.requests;
}

void MetricsRegistry::call(const std::string& model_tier, int64_t prompt_tokens,
                           int64_t generated_tokens, double device_seconds, double units) {
  const std::lock_guard lock(mutex_);
  ModelMetrics& m = metrics_.by_model_tier[model_tier];
  ++m.calls;
  m.prompt_tokens += prompt_tokens;
  m.generated_tokens += generated_tokens;
  m.device_seconds += device_seconds;
  metrics_.device_seconds += device_seconds;
  metrics_.units += units;
}

void MetricsRegistry::answered(const Response& response) {
  const std::lock_guard lock(mutex_);
  ++metrics_.completed;
  ++metrics_.by_status[std::string(status_name(response.status))];
  if (response.cache_hit) ++metrics_.cache_hits;
  all_.add(response.timings.total_ms);
  if (response.status == Status::kOk && !response.model.empty()) {
    const std::string key = response.model + "/" + response.tier;
    if (!response.cache_hit) ++metrics_.by_model_tier[key].requests;
    by_model_tier_[key].add(response.timings.total_ms);
  }
}

void MetricsRegistry::escalation() {
  const std::lock_guard lock(mutex_);
  ++metrics_.escalations;
}

void MetricsRegistry::over_budget() {
  const std::lock_guard lock(mutex_);
  ++metrics_.over_budget;
}

void MetricsRegistry::load(const std::string& model_tier, const std::string& device) {
  const std::lock_guard lock(mutex_);
  ModelMetrics& m = metrics_.by_model_tier[model_tier];
  ++m.loads;
  m.device = device;
}

void MetricsRegistry::eviction(const std::string& model_tier) {
  const std::lock_guard lock(mutex_);
  ++metrics_.by_model_tier[model_tier].evictions;
}

void MetricsRegistry::preemption() {
  const std::lock_guard lock(mutex_);
  ++preemptions_;
}

Metrics MetricsRegistry::snapshot() const {
  const std::lock_guard lock(mutex_);
  return metrics_;
}

std::pair<double, int64_t> MetricsRegistry::latency_totals() const {
  const std::lock_guard lock(mutex_);
  return {all_.sum_ms, all_.count};
}

std::string MetricsRegistry::prometheus(const std::map<std::string, double>& gauges) const {
  const std::lock_guard lock(mutex_);
  std::string out;
  const auto counter = [&](const char* name, const char* help, auto value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n{} {}\n", name, help, name, name, value);
  };
  counter("polyinfer_requests_total", "Requests submitted.", metrics_.requests);
  counter("polyinfer_responses_total", "Responses given (any status).", metrics_.completed);
  counter("polyinfer_cache_hits_total", "Responses from the exact cache.", metrics_.cache_hits);
  counter("polyinfer_over_budget_total", "Requests no route fit max_cost for.",
          metrics_.over_budget);
  counter("polyinfer_escalations_total", "Cascade steps not accepted.", metrics_.escalations);
  counter("polyinfer_preemptions_total", "Sequences preempted by higher priorities.", preemptions_);
  counter("polyinfer_device_seconds_total", "Measured inference CPU seconds.",
          metrics_.device_seconds);
  counter("polyinfer_cost_units_total", "Tokens x relative cost.", metrics_.units);

  out += "# HELP polyinfer_responses_by_status_total Responses by status.\n";
  out += "# TYPE polyinfer_responses_by_status_total counter\n";
  for (const auto& [status, count] : metrics_.by_status) {
    out += fmt::format("polyinfer_responses_by_status_total{{status=\"{}\"}} {}\n", status, count);
  }
  const auto per_model = [&](const char* name, const char* help, auto field) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n", name, help, name);
    for (const auto& [key, m] : metrics_.by_model_tier) {
      const size_t slash = key.rfind('/');
      out += fmt::format("{}{{model=\"{}\",tier=\"{}\"}} {}\n", name,
                         label_value(key.substr(0, slash)), label_value(key.substr(slash + 1)),
                         field(m));
    }
  };
  per_model("polyinfer_model_answers_total", "Answers given by the model.",
            [](const ModelMetrics& m) { return m.requests; });
  per_model("polyinfer_model_calls_total", "Model calls (cascade steps included).",
            [](const ModelMetrics& m) { return m.calls; });
  per_model("polyinfer_model_prompt_tokens_total", "Prompt tokens.",
            [](const ModelMetrics& m) { return m.prompt_tokens; });
  per_model("polyinfer_model_generated_tokens_total", "Generated tokens.",
            [](const ModelMetrics& m) { return m.generated_tokens; });
  per_model("polyinfer_model_device_seconds_total", "Measured inference CPU seconds.",
            [](const ModelMetrics& m) { return m.device_seconds; });
  per_model("polyinfer_model_loads_total", "Loads.", [](const ModelMetrics& m) { return m.loads; });
  per_model("polyinfer_model_evictions_total", "Unloads to free memory.",
            [](const ModelMetrics& m) { return m.evictions; });

  out += "# HELP polyinfer_request_latency_seconds Submission to response.\n";
  out += "# TYPE polyinfer_request_latency_seconds histogram\n";
  histogram_text(out, "", all_);
  for (const auto& [key, h] : by_model_tier_) {
    const size_t slash = key.rfind('/');
    histogram_text(out,
                   fmt::format("model=\"{}\",tier=\"{}\"", label_value(key.substr(0, slash)),
                               label_value(key.substr(slash + 1))),
                   h);
  }
  for (const auto& [name, value] : gauges) {
    out += fmt::format("# TYPE {} gauge\n{} {}\n", name, name, value);
  }
  return out;
}

}  // namespace polyinfer::inline v0::detail
