// SPDX-License-Identifier: Apache-2.0
// polyinfer workload: replay a request trace through the Engine; accuracy, cost, latency, hits.
#include <polyinfer/polyinfer.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "args.hpp"
#include "commands.hpp"

namespace polyinfer::cli {

namespace {

using Clock = std::chrono::steady_clock;

/// One line of a workload trace (taskmodels' workload-*.jsonl).
struct TraceRequest {
  std::string id;
  double arrival_ms = 0;
  std::string task;
  std::string prompt;
  std::optional<std::string> answer;
  Quality quality = Quality::kStandard;
  std::optional<double> max_cost;
};

std::vector<TraceRequest> read_trace(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(ErrorCode::kIo, path, "cannot open the trace");
  std::vector<TraceRequest> trace;
  std::string line;
  for (size_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(number);
    const auto json = nlohmann::json::parse(line, nullptr, false);
    if (json.is_discarded() || !json.is_object()) {
      throw Error(ErrorCode::kFormat, where, "not a JSON object");
    }
    TraceRequest r;
    try {
      r.id = json.value("id", std::to_string(number));
      r.arrival_ms = json.value("arrival_ms", 0.0);
      r.task = json.value("task_type", std::string());
      r.prompt = json.at("prompt").get<std::string>();
      if (json.contains("answer") && json["answer"].is_string()) r.answer = json["answer"];
      const std::string quality = json.value("quality_required", std::string("standard"));
      const std::optional<Quality> parsed = quality_from_name(quality);
      if (!parsed) throw Error(ErrorCode::kFormat, where, "quality_required '" + quality + "'");
      r.quality = *parsed;
      if (json.contains("max_cost") && json["max_cost"].is_number()) {
        r.max_cost = json["max_cost"].get<double>();
      }
    } catch (const nlohmann::json::exception& e) {
      throw Error(ErrorCode::kFormat, where, e.what());
    }
    trace.push_back(std::move(r));
  }
  return trace;
}

/// The README's rule: the text up to the first '\n' equals the answer without its newline.
bool exact_match(const std::string& text, const std::string& answer) {
  const std::string got = text.substr(0, text.find('\n'));
  std::string want = answer;
  while (!want.empty() && want.back() == '\n') want.pop_back();
  return got == want;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = p / 100.0 * static_cast<double>(values.size() - 1);
  const auto low = static_cast<size_t>(std::floor(rank));
  const size_t high = std::min(low + 1, values.size() - 1);
  return values[low] + (values[high] - values[low]) * (rank - static_cast<double>(low));
}

double process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

}  // namespace

int run_workload(const std::vector<std::string>& argv) {
  const Args args(argv, {"json", "realtime", "fast"},
                  {"config", "trace", "limit", "responses", "device", "gpus", "gpu-budget-mb"});
  if (!args.positionals().empty()) throw UsageError("unexpected argument " + args.positionals()[0]);
  if (args.flag("realtime") && args.flag("fast")) {
    throw UsageError("--realtime and --fast do not go together");
  }
  const bool fast = args.flag("fast");
  const std::string config_path = args.required("config");
  const std::string trace_path = args.required("trace");
  std::vector<TraceRequest> trace = read_trace(trace_path);
  if (const auto limit = args.integer("limit", 1, 1LL << 40);
      limit && trace.size() > static_cast<size_t>(*limit)) {
    trace.resize(static_cast<size_t>(*limit));
  }
  if (trace.empty()) throw Error(ErrorCode::kFormat, trace_path, "the trace has no requests");

  const double cpu_before = process_cpu_seconds();
  EngineConfig config = EngineConfig::from_json(config_path);
  if (const auto device = args.option("device")) {  // every decoder on this device
    for (ModelSpec& spec : config.models) {
      if (spec.kind == "decoder") spec.device = *device;
    }
  }
  if (const auto gpus = args.option("gpus")) {  // NAME or NAME@GPU, comma-separated
    const auto budget_mb =
        static_cast<double>(args.integer("gpu-budget-mb", 0, 1 << 30).value_or(0));
    config.devices.clear();
    for (size_t at = 0; at <= gpus->size();) {
      const size_t comma = std::min(gpus->find(',', at), gpus->size());
      const std::string item = gpus->substr(at, comma - at);
      at = comma + 1;
      if (item.empty()) continue;
      DeviceConfig device;
      const size_t sign = item.find('@');
      device.name = item.substr(0, sign);
      if (sign != std::string::npos) {
        device.gpu = static_cast<int32_t>(parse_integer(item.substr(sign + 1), "--gpus GPU"));
      }
      device.memory_budget_bytes = static_cast<uint64_t>(budget_mb * 1024.0 * 1024.0);
      config.devices.push_back(std::move(device));
    }
  }
  Engine engine(std::move(config));
  const double cpu_setup = process_cpu_seconds() - cpu_before;

  std::vector<std::future<Response>> futures;
  futures.reserve(trace.size());
  const Clock::time_point start = Clock::now();
  for (const TraceRequest& t : trace) {
    if (!fast) {
      std::this_thread::sleep_until(start +
                                    std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double, std::milli>(t.arrival_ms)));
    }
    Request request;
    request.task = t.task;
    request.prompt = t.prompt;
    request.quality = t.quality;
    request.max_cost = t.max_cost;
    futures.push_back(engine.submit(std::move(request)));
  }
  std::vector<Response> responses;
  responses.reserve(futures.size());
  for (std::future<Response>& f : futures) responses.push_back(f.get());
  const double wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu_run = process_cpu_seconds() - cpu_before - cpu_setup;

  int64_t correct = 0;
  int64_t scored = 0;
  int64_t errors = 0;
  int64_t cache_hits = 0;
  int64_t over_budget = 0;
  double device_s = 0;
  double units = 0;
  std::vector<double> latencies;
  std::map<std::string, int64_t> shares;
  std::map<std::string, int64_t> statuses;
  std::map<std::string, std::pair<int64_t, int64_t>> by_quality;  // correct, scored
  for (size_t i = 0; i < responses.size(); ++i) {
    const Response& r = responses[i];
    latencies.push_back(r.timings.total_ms);
    device_s += r.cost.device_seconds;
    units += r.cost.units;
    ++statuses[std::string(status_name(r.status))];
    if (r.cache_hit) ++cache_hits;
    if (r.over_budget || r.status == Status::kOverBudget) ++over_budget;
    if (r.status != Status::kOk) {
      ++errors;
    } else {
      ++shares[r.model + "/" + r.tier];
    }
    if (trace[i].answer) {
      const bool right = r.status == Status::kOk && exact_match(r.text, *trace[i].answer);
      ++scored;
      correct += right ? 1 : 0;
      auto& q = by_quality[std::string(quality_name(trace[i].quality))];
      q.first += right ? 1 : 0;
      ++q.second;
    }
  }
  const auto n = static_cast<double>(responses.size());
  const Metrics metrics = engine.metrics();
  if (const auto path = args.option("responses")) {  // one JSON line per request
    std::ofstream file(*path);
    if (!file) throw Error(ErrorCode::kIo, *path, "cannot write the responses");
    for (size_t i = 0; i < responses.size(); ++i) {
      const Response& r = responses[i];
      nlohmann::json line = {{"id", trace[i].id},
                             {"status", status_name(r.status)},
                             {"text", r.text},
                             {"model", r.model},
                             {"tier", r.tier},
                             {"route", r.route},
                             {"confidence", r.confidence},
                             {"cache_hit", r.cache_hit},
                             {"over_budget", r.over_budget},
                             {"device_s", r.cost.device_seconds},
                             {"units", r.cost.units},
                             {"latency_ms", r.timings.total_ms}};
      if (trace[i].answer)
        line["correct"] = r.status == Status::kOk && exact_match(r.text, *trace[i].answer);
      if (!r.error.empty()) line["error"] = r.error;
      file << line.dump() << "\n";
    }
  }

  nlohmann::json out;
  out["requests"] = responses.size();
  out["accuracy"] = scored > 0 ? static_cast<double>(correct) / static_cast<double>(scored) : 0.0;
  out["cost_device_s"] = device_s;
  out["latency_ms"] = {{"p50", percentile(latencies, 50)},
                       {"p95", percentile(latencies, 95)},
                       {"p99", percentile(latencies, 99)}};
  out["throughput_rps"] = n / wall_s;
  out["cache_hit_rate"] = static_cast<double>(cache_hits) / n;
  out["errors"] = errors;
  nlohmann::json share_json = nlohmann::json::object();
  for (const auto& [key, count] : shares) share_json[key] = static_cast<double>(count) / n;
  out["shares"] = share_json;
  // Extras.
  out["correct"] = correct;
  out["cost_units"] = units;
  out["cost_device_s_per_request"] = device_s / n;
  out["cost_units_per_request"] = units / n;
  out["over_budget"] = over_budget;
  out["escalations"] = metrics.escalations;
  out["process_cpu_s"] = cpu_run;
  out["setup_cpu_s"] = cpu_setup;
  out["wall_s"] = wall_s;
  out["mode"] = fast ? "fast" : "realtime";
  out["by_status"] = statuses;
  nlohmann::json quality_json = nlohmann::json::object();
  for (const auto& [name, q] : by_quality) {
    quality_json[name] = {
        {"accuracy", q.second > 0 ? static_cast<double>(q.first) / q.second : 0.0},
        {"requests", q.second}};
  }
  out["by_quality"] = quality_json;
  nlohmann::json models = nlohmann::json::object();
  for (const auto& [key, m] : metrics.by_model_tier) {
    models[key] = {{"answers", m.requests},
                   {"calls", m.calls},
                   {"prompt_tokens", m.prompt_tokens},
                   {"generated_tokens", m.generated_tokens},
                   {"device_s", m.device_seconds},
                   {"loads", m.loads},
                   {"device", m.device}};
  }
  out["models"] = models;
  nlohmann::json devices = nlohmann::json::object();
  for (const auto& [name, d] : metrics.by_device) {
    devices[name] = {{"budget_bytes", d.budget_bytes},
                     {"resident_bytes", d.resident_bytes},
                     {"peak_resident_bytes", d.peak_resident_bytes},
                     {"models", d.models}};
  }
  out["devices"] = devices;

  if (args.flag("json")) {
    std::cout << out.dump() << "\n";
    return 0;
  }
  std::cout << "requests        " << responses.size() << " (" << out["mode"].get<std::string>()
            << ", " << wall_s << " s)\n";
  std::cout << "accuracy        " << 100.0 * out["accuracy"].get<double>() << " % (" << correct
            << " of " << scored << " exact)\n";
  for (const auto& [name, q] : by_quality) {
    std::cout << "  " << name << ": " << (q.second > 0 ? 100.0 * q.first / q.second : 0.0)
              << " % of " << q.second << "\n";
  }
  std::cout << "cost            " << device_s << " device s (" << 1e3 * device_s / n
            << " ms/request), " << units << " units (" << units / n << "/request)\n";
  std::cout << "process cpu     " << cpu_run << " s (+" << cpu_setup << " s setup)\n";
  std::cout << "latency ms      p50 " << percentile(latencies, 50) << "  p95 "
            << percentile(latencies, 95) << "  p99 " << percentile(latencies, 99) << "\n";
  std::cout << "throughput      " << n / wall_s << " requests/s\n";
  std::cout << "cache hit rate  " << 100.0 * static_cast<double>(cache_hits) / n << " %\n";
  std::cout << "errors          " << errors;
  for (const auto& [name, count] : statuses) {
    if (name != "ok") std::cout << "  " << name << " " << count;
  }
  std::cout << "\nover budget     " << over_budget << "\nescalations     " << metrics.escalations
            << "\nshares\n";
  for (const auto& [key, count] : shares) {
    std::cout << "  " << key << ": " << 100.0 * static_cast<double>(count) / n << " %\n";
  }
  return 0;
}

}  // namespace polyinfer::cli
