// SPDX-License-Identifier: Apache-2.0
// EngineConfig::from_json: strict reading (unknown keys and bad values name file and key).
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "backend/device.hpp"
#include "common/fail.hpp"
#include "polyinfer/engine.hpp"

namespace polyinfer {
inline namespace v0 {

namespace {

using Json = nlohmann::json;
using detail::fail;

/// One JSON object of the config and its dotted path; every key read is ticked off, and
/// finish() rejects the rest.
class Section {
 public:
  Section(const Json& json, std::string file, std::string path)
      : json_(json), file_(std::move(file)), path_(std::move(path)) {
    if (!json_.is_object()) bad("", "must be an object");
  }

  [[nodiscard]] std::string where(std::string_view key) const {
    const std::string dotted = path_.empty() ? std::string(key)
                               : key.empty() ? path_
                                             : path_ + "." + std::string(key);
    return fmt::format("{}: {}", file_, dotted);
  }
  [[noreturn]] void bad(std::string_view key, const std::string& why) const {
    fail(ErrorCode::kInvalidArgument, where(key), "{}", why);
  }
  [[nodiscard]] const Json* get(const std::string& key) {
    seen_.insert(key);
    const auto it = json_.find(key);
    return it == json_.end() || it->is_null() ? nullptr : &*it;
  }
  [[nodiscard]] const Json& require(const std::string& key) {
    const Json* value = get(key);
    if (value == nullptr) bad(key, "is required");
    return *value;
  }
  [[nodiscard]] Section section(const std::string& key, const Json& value) const {
    return Section(value, file_, path_.empty() ? key : path_ + "." + key);
  }
  double number(const std::string& key, double fallback, double min, double max) {
    const Json* value = get(key);
    if (value == nullptr) return fallback;
    if (!value->is_number()) bad(key, fmt::format("must be a number, not {}", value->dump()));
    const double x = value->get<double>();
    if (!(x >= min && x <= max)) bad(key, fmt::format("{} is not in [{}, {}]", x, min, max));
    return x;
  }
  int64_t integer(const std::string& key, int64_t fallback, int64_t min, int64_t max) {
    const Json* value = get(key);
    if (value == nullptr) return fallback;
    if (!value->is_number_integer()) {
      bad(key, fmt::format("must be an integer, not {}", value->dump()));
    }
    const auto x = value->get<int64_t>();
    if (x < min || x > max) bad(key, fmt::format("{} is not in [{}, {}]", x, min, max));
    return x;
  }
  bool boolean(const std::string& key, bool fallback) {
    const Json* value = get(key);
    if (value == nullptr) return fallback;
    if (!value->is_boolean()) bad(key, "must be true or false");
    return value->get<bool>();
  }
  std::string string(const std::string& key, const std::string& fallback) {
    const Json* value = get(key);
    if (value == nullptr) return fallback;
    if (!value->is_string()) bad(key, fmt::format("must be a string, not {}", value->dump()));
    return value->get<std::string>();
  }
  std::vector<std::string> strings(const std::string& key, std::vector<std::string> fallback) {
    const Json* value = get(key);
    if (value == nullptr) return fallback;
    if (!value->is_array()) bad(key, "must be an array of strings");
    std::vector<std::string> out;
    for (const Json& item : *value) {
      if (!item.is_string()) bad(key, fmt::format("must hold strings, not {}", item.dump()));
      out.push_back(item.get<std::string>());
    }
    return out;
  }
  /// A number, or an object {"low": x, "standard": y, "high": z} (missing ones: fallback).
  std::array<float, 3> by_quality(const std::string& key, std::array<float, 3> fallback, double min,
                                  double max) {
    const Json* value = get(key);
    if (value == nullptr) return fallback;
    if (value->is_number()) {
      const float x = static_cast<float>(number(key, 0, min, max));
      return {x, x, x};
    }
    Section per = section(key, *value);
    for (size_t q = 0; q < 3; ++q) {
      const std::string name(quality_name(static_cast<Quality>(q)));
      fallback[q] = static_cast<float>(per.number(name, fallback[q], min, max));
    }
    per.finish();
    return fallback;
  }
  void finish() const {
    for (const auto& [key, value] : json_.items()) {
      if (!seen_.contains(key)) bad(key, "unknown key");
    }
  }

 private:
  const Json& json_;
  std::string file_;
  std::string path_;
  std::set<std::string> seen_;
};

OverBudget over_budget(Section& s) {
  const std::string value = s.string("over_budget", "cheapest");
  if (value == "cheapest") return OverBudget::kCheapest;
  if (value == "reject") return OverBudget::kReject;
  s.bad("over_budget", fmt::format("'{}' is not \"cheapest\" or \"reject\"", value));
}

/// Steps: names ("small") or objects {"model": "small", "tier": "q8_0"}.
std::vector<PlanStep> steps(Section& s, const std::string& key, bool required) {
  const Json* value = required ? &s.require(key) : s.get(key);
  std::vector<PlanStep> out;
  if (value == nullptr) return out;
  if (!value->is_array() || value->empty()) s.bad(key, "must be a non-empty array of steps");
  for (size_t i = 0; i < value->size(); ++i) {
    const Json& item = (*value)[i];
    if (item.is_string()) {
      out.push_back({item.get<std::string>(), "", 0.0f});
      continue;
    }
    Section step = s.section(fmt::format("{}[{}]", key, i), item);
    out.push_back({step.string("model", ""), step.string("tier", ""), 0.0f});
    if (out.back().model.empty()) step.bad("model", "is required");
    step.finish();
  }
  return out;
}

/// Reads dev.jsonl records (taskmodels format) as DevItems for `step_models`.
std::vector<DevItem> read_dev_items(const std::filesystem::path& path,
                                    const std::vector<PlanStep>& step_models,
                                    const std::vector<ModelSpec>& models,
                                    const std::string& where) {
  std::ifstream in(path);
  if (!in) fail(ErrorCode::kIo, where, "cannot open {}", path.string());
  std::vector<DevItem> items;
  std::string line;
  for (size_t number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    const Json record = Json::parse(line, nullptr, false);
    const std::string at = fmt::format("{}:{}", path.string(), number);
    if (record.is_discarded() || !record.is_object() || !record.contains("models")) {
      fail(ErrorCode::kFormat, at, "not a dev record (task_type, n_prompt_tokens, models)");
    }
    DevItem item;
    item.task = record.value("task_type", "");
    const auto prompt_tokens = record.value("n_prompt_tokens", int64_t{0});
    item.complexity = static_cast<double>(prompt_tokens);
    for (const PlanStep& step : step_models) {
      const auto it = record["models"].find(step.model);
      if (it == record["models"].end()) {
        fail(ErrorCode::kFormat, at, "no result for model '{}'", step.model);
      }
      double relative = 1.0;
      for (const ModelSpec& spec : models) {
        if (spec.name == step.model) relative = spec.relative_cost;
      }
      item.correct.push_back(it->value("correct", false));
      item.cost.push_back(static_cast<double>(prompt_tokens + it->value("n_gen_tokens", 0)) *
                          relative);
    }
    items.push_back(std::move(item));
  }
  return items;
}

/// Every step names a model of the config.
void check_models(Section& s, const std::string& key, const std::vector<PlanStep>& list,
                  const std::vector<ModelSpec>& models) {
  for (const PlanStep& step : list) {
    bool found = false;
    for (const ModelSpec& spec : models) {
      found = found || (spec.name == step.model &&
                        (step.tier.empty() || std::find(spec.tiers.begin(), spec.tiers.end(),
                                                        step.tier) != spec.tiers.end()));
    }
    if (!found) {
      s.bad(key, fmt::format("'{}{}' is not a model (and tier) of the config", step.model,
                             step.tier.empty() ? "" : "/" + step.tier));
    }
  }
}

std::shared_ptr<RoutingPolicy> routing_policy(Section& s, const std::filesystem::path& folder,
                                              const std::vector<ModelSpec>& models) {
  const std::string policy = s.string("policy", "rules");
  if (policy == "rules") {
    RulesOptions options;
    options.standard_floor = s.number("standard_floor", options.standard_floor, 0, 1);
    options.over_budget = over_budget(s);
    if (const Json* rules = s.get("rules"); rules != nullptr) {
      if (!rules->is_array()) s.bad("rules", "must be an array");
      for (size_t i = 0; i < rules->size(); ++i) {
        Section rule = s.section(fmt::format("rules[{}]", i), (*rules)[i]);
        RulesOptions::Rule r;
        r.task = rule.string("task", "");
        if (const std::string q = rule.string("quality", ""); !q.empty()) {
          r.quality = quality_from_name(q);
          if (!r.quality) rule.bad("quality", fmt::format("'{}' is not low, standard or high", q));
        }
        r.model = rule.string("model", "");
        if (r.model.empty()) rule.bad("model", "is required");
        r.tier = rule.string("tier", "");
        check_models(rule, "model", {{r.model, r.tier, 0.0f}}, models);
        rule.finish();
        options.rules.push_back(std::move(r));
      }
    }
    return make_rules_policy(std::move(options));
  }
  if (policy == "cascade") {
    CascadeOptions options;
    options.steps = steps(s, "steps", true);
    check_models(s, "steps", options.steps, models);
    options.thresholds = s.by_quality("threshold", options.thresholds, 0, 1);
    if (const Json* first = s.get("first_step"); first != nullptr) {
      Section per = s.section("first_step", *first);
      for (size_t q = 0; q < 3; ++q) {
        options.first_step[q] =
            static_cast<int>(per.integer(std::string(quality_name(static_cast<Quality>(q))), 0, 0,
                                         static_cast<int64_t>(options.steps.size()) - 1));
      }
      per.finish();
    }
    options.over_budget = over_budget(s);
    return make_cascade_policy(std::move(options));
  }
  if (policy == "classifier") {
    ClassifierOptions options;
    options.classifier = s.string("classifier", "");
    if (options.classifier.empty()) s.bad("classifier", "is required (the classifier model)");
    options.labels = s.strings("labels", {});
    if (options.labels.empty()) s.bad("labels", "is required (label names in classifier order)");
    options.steps = steps(s, "steps", false);
    if (options.steps.empty()) {
      for (const std::string& label : options.labels) options.steps.push_back({label, "", 0.0f});
    }
    if (options.steps.size() != options.labels.size()) s.bad("steps", "one step per label");
    check_models(s, "steps", options.steps, models);
    check_models(s, "classifier", {{options.classifier, "", 0.0f}}, models);
    options.tau = s.by_quality("tau", options.tau, 0, 1);
    options.escalate = s.boolean("escalate", options.escalate);
    options.threshold = static_cast<float>(s.number("threshold", options.threshold, 0, 1));
    options.over_budget = over_budget(s);
    return make_classifier_policy(std::move(options));
  }
  if (policy == "ensemble") {
    EnsembleOptions options;
    options.steps = steps(s, "steps", true);
    check_models(s, "steps", options.steps, models);
    const std::string vote = s.string("vote", "majority");
    if (vote == "majority") {
      options.vote = Plan::Vote::kMajority;
    } else if (vote == "confidence") {
      options.vote = Plan::Vote::kConfidence;
    } else {
      s.bad("vote", fmt::format("'{}' is not \"majority\" or \"confidence\"", vote));
    }
    return make_ensemble_policy(std::move(options));
  }
  if (policy == "complexity") {
    ComplexityOptions options;
    options.steps = steps(s, "steps", true);
    check_models(s, "steps", options.steps, models);
    options.over_budget = over_budget(s);
    if (const Json* thresholds = s.get("thresholds"); thresholds != nullptr) {
      Section per = s.section("thresholds", *thresholds);
      for (const auto& [task, value] : thresholds->items()) {
        std::vector<double> list;
        if (!value.is_array()) per.bad(task, "must be an array of numbers");
        for (const Json& x : value) {
          if (!x.is_number()) per.bad(task, "must be an array of numbers");
          list.push_back(x.get<double>());
        }
        (void)per.get(task);
        options.thresholds[task] = std::move(list);
      }
      per.finish();
    }
    if (const Json* fit = s.get("fit"); fit != nullptr) {
      Section f = s.section("fit", *fit);
      const std::string dev = f.string("dev", "");
      if (dev.empty()) f.bad("dev", "is required (a dev.jsonl with per-model results)");
      const double floor = f.number("accuracy_floor", 0.99, 0, 1);
      f.finish();
      const auto items = read_dev_items(folder / dev, options.steps, models, f.where("dev"));
      for (auto& [task, list] : fit_complexity_thresholds(items, options.steps.size(), floor)) {
        options.thresholds[task] = std::move(list);
      }
    }
    return make_complexity_policy(std::move(options));
  }
  s.bad("policy",
        fmt::format("'{}' is not rules, cascade, classifier, ensemble or complexity", policy));
}

ModelSpec model_spec(Section& m, const std::filesystem::path& folder) {
  ModelSpec spec;
  spec.name = m.string("name", "");
  if (spec.name.empty()) m.bad("name", "is required");
  const std::string path = m.string("path", "");
  if (path.empty()) m.bad("path", "is required");
  spec.path = std::filesystem::path(path).is_absolute() ? std::filesystem::path(path)
                                                        : (folder / path).lexically_normal();
  spec.kind = m.string("kind", spec.kind);
  if (spec.kind != "decoder" && spec.kind != "classifier" && spec.kind != "embedding") {
    m.bad("kind", fmt::format("'{}' is not decoder, classifier or embedding", spec.kind));
  }
  spec.tasks = m.strings("tasks", {});
  spec.tiers = m.strings("tiers", spec.tiers);
  if (spec.tiers.empty()) m.bad("tiers", "must not be empty");
  for (const std::string& tier : spec.tiers) {
    if (!tier_from_name(tier)) {
      m.bad("tiers", fmt::format("'{}' is not native, f32, f16, q8_0, q4_0 or q4_k", tier));
    }
  }
  spec.relative_cost = m.number("relative_cost", spec.relative_cost, 0, 1e9);
  spec.quality = m.number("quality", spec.quality, 0, 1);
  spec.context_length = static_cast<int32_t>(m.integer("context_length", 0, 0, 1 << 20));
  spec.device = m.string("device", spec.device);
  detail::Device device;
  try {
    device = detail::parse_placement(spec.device, "").device;
  } catch (const Error& error) {
    m.bad("device", error.what());
  }
  if (device.is_gpu() && spec.kind != "decoder") m.bad("device", "encoders run on the cpu");
  m.finish();
  return spec;
}

}  // namespace

EngineConfig EngineConfig::from_json(const std::filesystem::path& path) {
  const std::string file = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorCode::kIo, file, "cannot open the engine config");
  std::stringstream text;
  text << in.rdbuf();
  Json json;
  try {
    json = Json::parse(text.str());
  } catch (const Json::parse_error& e) {
    fail(ErrorCode::kFormat, fmt::format("{}@{}", file, e.byte), "malformed JSON: {}", e.what());
  }
  const std::filesystem::path folder = path.parent_path();
  Section root(json, file, "");
  EngineConfig config;
  config.executors = static_cast<int32_t>(root.integer("executors", config.executors, 1, 1024));
  config.threads = static_cast<int32_t>(root.integer("threads", config.threads, 1, 1024));
  config.memory_budget_bytes =
      static_cast<uint64_t>(root.number("memory_budget_mb", 0, 0, 1e9) * 1024.0 * 1024.0);
  config.max_queue = static_cast<int32_t>(root.integer("max_queue", config.max_queue, 1, 1 << 30));
  config.max_tokens =
      static_cast<int32_t>(root.integer("max_tokens", config.max_tokens, 1, 1 << 20));

  if (const Json* devices = root.get("devices"); devices != nullptr) {
    if (!devices->is_array()) root.bad("devices", "must be an array");
    for (size_t i = 0; i < devices->size(); ++i) {
      Section d = root.section(fmt::format("devices[{}]", i), (*devices)[i]);
      DeviceConfig device;
      device.name = d.string("name", "");
      try {
        const detail::Device parsed = detail::parse_device(device.name, "");
        if (!parsed.is_gpu() || device.name.find(':') == std::string::npos) {
          d.bad("name", fmt::format("'{}' is not a GPU name (cuda:N)", device.name));
        }
      } catch (const Error& error) {
        d.bad("name", error.what());
      }
      device.memory_budget_bytes =
          static_cast<uint64_t>(d.number("memory_budget_mb", 0, 0, 1e9) * 1024.0 * 1024.0);
      device.gpu = static_cast<int32_t>(d.integer("gpu", -1, -1, 4096));
      d.finish();
      config.devices.push_back(std::move(device));
    }
  }

  const Json& models = root.require("models");
  if (!models.is_array() || models.empty()) root.bad("models", "must be a non-empty array");
  for (size_t i = 0; i < models.size(); ++i) {
    Section m = root.section(fmt::format("models[{}]", i), models[i]);
    config.models.push_back(model_spec(m, folder));
  }
  if (const Json* routing = root.get("routing"); routing != nullptr) {
    Section r = root.section("routing", *routing);
    config.routing = routing_policy(r, folder, config.models);
    r.finish();
  }
  if (const Json* batching = root.get("batching"); batching != nullptr) {
    Section b = root.section("batching", *batching);
    BatchingConfig& c = config.batching;
    c.max_tokens = static_cast<int32_t>(b.integer("max_tokens", c.max_tokens, 1, 1 << 20));
    c.max_sequences = static_cast<int32_t>(b.integer("max_sequences", c.max_sequences, 1, 4096));
    c.window_ms = b.number("window_ms", c.window_ms, 0, 60000);
    c.verify_drafts = b.boolean("verify_drafts", c.verify_drafts);
    b.finish();
  }
  if (const Json* cache = root.get("cache"); cache != nullptr) {
    Section c = root.section("cache", *cache);
    config.cache.enabled = c.boolean("enabled", config.cache.enabled);
    config.cache.max_bytes = static_cast<uint64_t>(
        c.number("max_mb", static_cast<double>(config.cache.max_bytes) / 1048576.0, 0, 1e9) *
        1048576.0);
    config.cache.ttl_s = c.number("ttl_s", config.cache.ttl_s, 0, 1e12);
    if (const Json* semantic = c.get("semantic"); semantic != nullptr) {
      Section sc = c.section("semantic", *semantic);
      config.cache.semantic_model = sc.string("model", "");
      const auto model =
          std::find_if(config.models.begin(), config.models.end(),
                       [&](const ModelSpec& m) { return m.name == config.cache.semantic_model; });
      if (model == config.models.end() || model->kind == "decoder") {
        sc.bad("model", fmt::format("'{}' is not an embedding or classifier model of the config",
                                    config.cache.semantic_model));
      }
      config.cache.semantic_threshold =
          sc.number("threshold", config.cache.semantic_threshold, 0, 1);
      config.cache.semantic_max_entries = static_cast<uint64_t>(
          sc.integer("max_entries", static_cast<int64_t>(config.cache.semantic_max_entries), 0,
                     int64_t{1} << 40));
      sc.finish();
    }
    c.finish();
  }
  if (const Json* tuner = root.get("tuner"); tuner != nullptr) {
    Section t = root.section("tuner", *tuner);
    TunerConfig& c = config.tuner;
    c.enabled = t.boolean("enabled", c.enabled);
    c.window_requests =
        static_cast<int32_t>(t.integer("window_requests", c.window_requests, 10, 1 << 30));
    c.accuracy_floor = t.number("accuracy_floor", c.accuracy_floor, 0, 1);
    c.audit_rate = t.number("audit_rate", c.audit_rate, 0, 1);
    t.finish();
  }
  root.finish();
  // Names must be unique and steps must name models (checked here to name the key).
  std::set<std::string> names;
  for (size_t i = 0; i < config.models.size(); ++i) {
    if (!names.insert(config.models[i].name).second) {
      fail(ErrorCode::kInvalidArgument, fmt::format("{}: models[{}].name", file, i),
           "a second model named '{}'", config.models[i].name);
    }
  }
  return config;
}

}  // namespace v0
}  // namespace polyinfer
