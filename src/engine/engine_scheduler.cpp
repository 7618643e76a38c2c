// SPDX-License-Identifier: Apache-2.0
// EngineImpl, model side: registry, executors, picking runners, the memory budget, shutdown.
#include <fmt/format.h>

#include <algorithm>

#include "common/fail.hpp"
#include "engine/autotuner.hpp"
#include "engine/engine_impl.hpp"

namespace polyinfer::inline v0::detail {

namespace {

constexpr auto kIdleWake = std::chrono::milliseconds(20);
constexpr auto kMemoryRetry = std::chrono::milliseconds(2);
/// A model just loaded keeps admitting this long although another waits for memory.
constexpr auto kMinResidency = std::chrono::milliseconds(50);

/// The GPUs a placement names: each of a split ("cuda:0,cuda:1"), or the one device.
std::vector<std::string> members_of(const std::string& device) {
  std::vector<std::string> members;
  size_t start = 0;
  while (start <= device.size()) {
    const size_t end = std::min(device.find(',', start), device.size());
    std::string member = device.substr(start, end - start);
    member.erase(0, member.find_first_not_of(' '));
    member.erase(member.find_last_not_of(' ') + 1);
    if (!member.empty()) members.push_back(member);
    start = end + 1;
  }
  if (members.empty()) members.push_back(device);
  return members;
}

/// Bytes each member of a placement holds of a model of `bytes`: a split shares it evenly
/// (heads and MLP columns are; rank 0's extra logits matrix is not counted apart).
uint64_t share_of(uint64_t bytes, size_t members) {
  return (bytes + members - 1) / members;
}

bool on_device(const std::string& placement, const std::string& device) {
  if (placement == device) return true;
  const std::vector<std::string> members = members_of(placement);
  return members.size() > 1 && std::find(members.begin(), members.end(), device) != members.end();
}

}  // namespace

EngineImpl::EngineImpl(EngineConfig config, ModelLoader loader)
    : config_(std::move(config)),
      loader_(std::move(loader)),
      batch_max_tokens_(config_.batching.max_tokens),
      window_ms_(config_.batching.window_ms) {
  const auto bad = [](const char* key, const std::string& why) {
    fail(ErrorCode::kInvalidArgument, fmt::format("engine config: {}", key), "{}", why);
  };
  if (config_.executors < 1) bad("executors", "must be at least 1");
  if (config_.threads < 1) bad("threads", "must be at least 1");
  if (config_.max_queue < 1) bad("max_queue", "must be at least 1");
  if (config_.max_tokens < 1) bad("max_tokens", "must be at least 1");
  if (config_.batching.max_tokens < 1) bad("batching.max_tokens", "must be at least 1");
  if (config_.batching.max_sequences < 1) bad("batching.max_sequences", "must be at least 1");
  if (config_.batching.window_ms < 0) bad("batching.window_ms", "must not be negative");
  pools_["cpu"].budget = config_.memory_budget_bytes;
  for (DeviceConfig& device : config_.devices) {
    std::transform(device.name.begin(), device.name.end(), device.name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const std::string_view digits =
        std::string_view(device.name).substr(std::min<size_t>(device.name.size(), 5));
    if (!device.name.starts_with("cuda:") || digits.empty() || digits.size() > 4 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      bad("devices", fmt::format("'{}' is not a GPU name (cuda:N)", device.name));
    }
    if (pools_.contains(device.name))
      bad("devices", fmt::format("{} is listed twice", device.name));
    Pool& pool = pools_[device.name];
    pool.budget = device.memory_budget_bytes;
    pool.gpu = device.gpu >= 0 ? fmt::format("cuda:{}", device.gpu) : device.name;
  }
  routing_ = config_.routing ? config_.routing : make_rules_policy({});
  if (config_.cache.enabled && config_.cache.max_bytes > 0) {
    cache_ = std::make_unique<ResponseCache>(config_.cache.max_bytes, config_.cache.ttl_s);
  }
  if (config_.cache.enabled && !config_.cache.semantic_model.empty()) {
    semantic_ = std::make_unique<SemanticCache>(config_.cache.semantic_threshold,
                                                config_.cache.semantic_max_entries);
  }
  {
    const std::lock_guard lock(mutex_);
    for (const ModelSpec& spec : config_.models) add_model_locked(spec);
    rebuild_catalog_locked();
  }
  if (config_.tuner.enabled) tuner_ = std::make_unique<AutoTuner>(*this, config_.tuner);
  for (int32_t i = 0; i < config_.executors; ++i) {
    executors_.emplace_back([this] { executor_loop(); });
  }
}

EngineImpl::~EngineImpl() {
  shutdown();
}

void EngineImpl::shutdown() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& executor : executors_) executor.join();
  executors_.clear();
  // Everything still held is answered; answering may queue more (followers): repeat.
  for (bool more = true; more;) {
    more = false;
    for (const std::unique_ptr<Runner>& runner : runners_) {
      std::vector<WorkItem> items;
      {
        const std::lock_guard lock(mutex_);
        items.swap(runner->incoming);
      }
      more = more || !items.empty() || runner->held() > 0;
      for (const WorkItem& item : items) {
        respond_error(item.job, Status::kCancelled, "the engine shut down");
      }
      runner->fail_all(Status::kCancelled, "the engine shut down");
    }
  }
  if (tuner_ != nullptr) tuner_->stop();
}

void EngineImpl::add_model(ModelSpec spec) {
  const std::lock_guard lock(mutex_);
  add_model_locked(std::move(spec));
  rebuild_catalog_locked();
}

void EngineImpl::add_model_locked(ModelSpec spec) {
  const std::string where = fmt::format("model {}", spec.name);
  if (spec.name.empty()) fail(ErrorCode::kInvalidArgument, "model", "a model needs a name");
  if (spec.name.find('/') != std::string::npos) {
    fail(ErrorCode::kInvalidArgument, where, "a model name may not contain '/'");
  }
  if (specs_.contains(spec.name))
    fail(ErrorCode::kInvalidArgument, where, "a second model of that name");
  if (spec.tiers.empty()) fail(ErrorCode::kInvalidArgument, where, "no tiers");
  if (spec.kind != "decoder" && spec.kind != "classifier" && spec.kind != "embedding") {
    fail(ErrorCode::kInvalidArgument, where, "unknown kind '{}' (decoder, classifier, embedding)",
         spec.kind);
  }
  if (!(spec.relative_cost >= 0))
    fail(ErrorCode::kInvalidArgument, where, "negative relative_cost");
  for (const std::string& tier : spec.tiers) {
    if (!tier_from_name(tier)) {
      fail(ErrorCode::kInvalidArgument, where,
           "unknown tier '{}' (native, f32, f16, q8_0, q4_0, q4_k)", tier);
    }
    std::unique_ptr<Runner> runner;
    if (spec.kind == "decoder") {
      runner = std::make_unique<DecoderRunner>(*this, spec, tier);
    } else {
      runner = std::make_unique<EncoderRunner>(*this, spec, tier);
    }
    if (runner_index_.contains(runner->key())) {
      fail(ErrorCode::kInvalidArgument, where, "tier '{}' listed twice", tier);
    }
    runner_index_[runner->key()] = runner.get();
    runners_.push_back(std::move(runner));
  }
  specs_[spec.name] = std::move(spec);
}

void EngineImpl::rebuild_catalog_locked() {
  auto entries = std::make_shared<std::vector<CatalogEntry>>();
  for (const std::unique_ptr<Runner>& runner : runners_) {
    const ModelSpec& spec = runner->spec();
    entries->push_back(CatalogEntry{spec.name, runner->tier(), spec.kind, spec.tasks,
                                    spec.relative_cost, spec.quality, runner->loaded()});
  }
  catalog_ = std::move(entries);
}

std::shared_ptr<const std::vector<CatalogEntry>> EngineImpl::catalog() const {
  const std::lock_guard lock(mutex_);
  return catalog_;
}

Runner* EngineImpl::find_runner(const std::string& model, const std::string& tier) {
  const std::lock_guard lock(mutex_);
  if (tier.empty()) {
    const auto spec = specs_.find(model);
    if (spec == specs_.end()) return nullptr;
    const auto it = runner_index_.find(model + "/" + spec->second.tiers.front());
    return it != runner_index_.end() ? it->second : nullptr;
  }
  const auto it = runner_index_.find(model + "/" + tier);
  return it != runner_index_.end() ? it->second : nullptr;
}

double EngineImpl::relative_cost(const std::string& model) const {
  const std::lock_guard lock(mutex_);
  const auto it = specs_.find(model);
  return it != specs_.end() ? it->second.relative_cost : 1.0;
}

bool EngineImpl::dispatch(const JobPtr& job, size_t step) {
  const PlanStep& plan_step = job->plan.steps[step];
  Runner* runner = find_runner(plan_step.model, plan_step.tier);
  if (runner == nullptr) return false;
  {
    const std::lock_guard lock(mutex_);
    if (stopping_) {
      runner = nullptr;
    } else {
      runner->incoming.push_back(WorkItem{job, step, Clock::now()});
    }
  }
  if (runner == nullptr) {
    respond_error(job, Status::kCancelled, "the engine is shutting down");
    return true;
  }
  cv_.notify_one();
  return true;
}

void EngineImpl::executor_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    const Clock::time_point now = Clock::now();
    Clock::time_point wake = now + kIdleWake;
    Runner* runner = pick(now, wake);
    if (runner == nullptr) {
      cv_.wait_until(lock, wake);
      continue;
    }
    std::vector<WorkItem> items;
    items.swap(runner->incoming);
    const bool was_loaded = runner->loaded();
    lock.unlock();
    try {
      runner->step(items);
    } catch (const std::exception& e) {  // a bug: answer what it held rather than hang
      for (const WorkItem& item : items) respond_error(item.job, Status::kInternalError, e.what());
      runner->fail_all(Status::kInternalError, e.what());
    }
    lock.lock();
    runner->claimed = false;
    runner->last_step = ++step_counter_;
    runner->last_used = Clock::now();
    if (runner->loaded() != was_loaded) rebuild_catalog_locked();
    if (pressure_.load() == runner && !runner->loaded() && runner->held() == 0 &&
        runner->incoming.empty()) {
      pressure_.store(nullptr);  // its work went away (timeouts, cancellations)
    }
  }
}

Runner* EngineImpl::pick(Clock::time_point now, Clock::time_point& wake) {
  Runner* best = nullptr;
  Priority best_priority = Priority::kLow;
  for (const std::unique_ptr<Runner>& runner : runners_) {
    if (runner->claimed || (runner->incoming.empty() && runner->held() == 0)) continue;
    Clock::time_point ready = runner->ready_at();
    if (!runner->loaded()) ready = std::max(ready, runner->retry_at);
    if (ready > now) {
      wake = std::min(wake, ready);
      continue;
    }
    const Priority priority = runner->top_priority();
    if (best == nullptr || priority > best_priority ||
        (priority == best_priority && runner->last_step < best->last_step)) {
      best = runner.get();
      best_priority = priority;
    }
  }
  if (best != nullptr) best->claimed = true;
  return best;
}

bool EngineImpl::admitting(const Runner& runner) const {
  const Runner* waiting = pressure_.load();
  return waiting == nullptr || waiting == &runner ||
         Clock::now() - runner.loaded_at < kMinResidency;
}

EngineImpl::Pool& EngineImpl::pool(const std::string& device) {
  const auto found = pools_.find(device);
  if (found != pools_.end()) return found->second;
  return pools_[device];  // a GPU without a configured budget: unlimited
}

std::vector<std::string> EngineImpl::placement_candidates(const ModelSpec& spec) const {
  std::string device = spec.device;
  std::transform(device.begin(), device.end(), device.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (device.empty() || device == "cpu") return {"cpu"};
  if (device != "cuda") return {device};  // pinned ("cuda:N")
  std::vector<std::string> gpus;
  for (const DeviceConfig& d : config_.devices) gpus.push_back(d.name);
  if (gpus.empty()) gpus.push_back("cuda:0");
  return gpus;
}

uint64_t EngineImpl::evictable_bytes(const std::string& device, const Runner& keep) const {
  uint64_t bytes = 0;
  for (const std::unique_ptr<Runner>& other : runners_) {
    if (other.get() != &keep && other->resident && on_device(other->device, device) &&
        !other->claimed && other->active() == 0) {
      bytes += share_of(other->estimated_bytes, members_of(other->device).size());
    }
  }
  return bytes;
}

void EngineImpl::charge(const std::string& device, uint64_t bytes, bool add) {
  const std::vector<std::string> members = members_of(device);
  const uint64_t share = share_of(bytes, members.size());
  for (const std::string& member : members) {
    Pool& p = pool(member);
    if (add) {
      p.resident += share;
      ++p.models;
      p.peak = std::max(p.peak, p.resident);
    } else {
      p.resident -= share;
      --p.models;
    }
  }
}

std::string EngineImpl::place(const Runner& runner, uint64_t need, bool& evict) {
  evict = false;
  // Busy-ness of a device: the work its resident models hold. A claimed runner is stepping on
  // another executor: its own counts are not ours to read, so it counts as busy.
  const auto busy = [&](const std::string& device) {
    size_t work = 0;
    for (const std::unique_ptr<Runner>& other : runners_) {
      if (other->resident && on_device(other->device, device)) {
        work += other->incoming.size() + (other->claimed ? 1 : other->active() + other->held());
      }
    }
    return work;
  };
  std::string best;
  size_t best_busy = 0;
  uint64_t best_free = 0;
  std::string fallback;  // fits after evicting the fewest bytes
  uint64_t fallback_evicted = 0;
  for (const std::string& device : placement_candidates(runner.spec())) {
    // A split fits where each of its GPUs takes its share; its free memory is the least of
    // theirs, its work the sum.
    const std::vector<std::string> members = members_of(device);
    const uint64_t share = share_of(need, members.size());
    bool fits = true;
    bool possible = true;  // after evicting idle models
    uint64_t free = UINT64_MAX;
    uint64_t missing = 0;
    size_t work = 0;
    for (const std::string& member : members) {
      Pool& p = pool(member);
      const uint64_t member_free =
          p.budget == 0 ? UINT64_MAX : (p.budget > p.resident ? p.budget - p.resident : 0);
      free = std::min(free, member_free);
      work += busy(member);
      if (share <= member_free) continue;
      fits = false;
      if (share > p.budget || evictable_bytes(member, runner) < share - member_free) {
        possible = false;
      }
      missing += share - member_free;
    }
    if (fits) {
      const bool better = best.empty() || work < best_busy ||
                          (work == best_busy && free > best_free) ||
                          (work == best_busy && free == best_free && device == runner.device);
      if (better) {
        best = device;
        best_busy = work;
        best_free = free;
      }
      continue;
    }
    if (possible && (fallback.empty() || missing < fallback_evicted)) {
      fallback = device;
      fallback_evicted = missing;
    }
  }
  if (!best.empty()) return best;
  evict = !fallback.empty();
  return fallback;
}

bool EngineImpl::evict_one(std::unique_lock<std::mutex>& lock, const Runner& keep,
                           const std::string& device) {
  // Idle models only: no work first, then the longest idle per second of reload time.
  Runner* victim = nullptr;
  double victim_score = 0;
  const Clock::time_point now = Clock::now();
  for (const std::unique_ptr<Runner>& other : runners_) {
    if (other.get() == &keep || !other->resident || !on_device(other->device, device) ||
        other->claimed || other->active() > 0) {
      continue;
    }
    const double idle_s = std::chrono::duration<double>(now - other->last_used).count();
    const bool has_work = other->held() > 0 || !other->incoming.empty();
    const double score = (has_work ? 0.0 : 1e9) + idle_s / (1.0 + other->load_seconds);
    if (victim == nullptr || score > victim_score) {
      victim = other.get();
      victim_score = score;
    }
  }
  if (victim == nullptr) return false;
  victim->claimed = true;
  lock.unlock();
  victim->unload();
  metrics_.eviction(victim->key());
  lock.lock();
  victim->claimed = false;
  victim->resident = false;
  charge(victim->device, victim->estimated_bytes, false);
  rebuild_catalog_locked();
  return true;
}

EngineImpl::LoadOutcome EngineImpl::load(Runner& runner) {
  LoadOutcome outcome;
  std::unique_lock lock(mutex_);
  if (runner.estimated_bytes == 0) {
    lock.unlock();
    const ServeSettings settings{config_.threads, config_.batching.max_sequences};
    const uint64_t estimate =
        std::max<uint64_t>(1, loader_.estimate_bytes(runner.spec(), settings));
    lock.lock();
    runner.estimated_bytes = estimate;
  }
  const uint64_t need = runner.estimated_bytes;
  bool evict = false;
  const std::string device = place(runner, need, evict);
  if (device.empty()) {
    // No candidate can make room now: too large for every budget, or busy models hold it.
    uint64_t largest = 0;  // the most a candidate can hold (a split: its GPUs' least × count)
    bool unlimited = false;
    for (const std::string& d : placement_candidates(runner.spec())) {
      const std::vector<std::string> members = members_of(d);
      uint64_t least = UINT64_MAX;
      for (const std::string& member : members) {
        if (pool(member).budget > 0) least = std::min(least, pool(member).budget);
      }
      unlimited = unlimited || least == UINT64_MAX;
      if (least != UINT64_MAX) largest = std::max(largest, least * members.size());
    }
    if (!unlimited && need > largest) {
      outcome.error = fmt::format("{} needs {} bytes; the memory budget is {} bytes", runner.key(),
                                  need, largest);
      return outcome;
    }
    pressure_.store(&runner);
    runner.retry_at = Clock::now() + kMemoryRetry;
    outcome.state = LoadState::kBlocked;
    return outcome;
  }
  const std::vector<std::string> members = members_of(device);
  const uint64_t share = share_of(need, members.size());
  for (const std::string& member : members) {
    while (evict && pool(member).budget > 0 &&
           pool(member).resident + share > pool(member).budget) {
      if (!evict_one(lock, runner, member)) {  // a victim got busy meanwhile
        pressure_.store(&runner);
        runner.retry_at = Clock::now() + kMemoryRetry;
        outcome.state = LoadState::kBlocked;
        return outcome;
      }
    }
  }
  charge(device, need, true);
  runner.resident = true;
  runner.device = device;
  // The GPU the model loads on: a listed device's `gpu`, else the device itself (each GPU of a
  // split likewise).
  std::string load_device;
  for (const std::string& member : members) {
    const Pool& p = pool(member);
    load_device += (load_device.empty() ? "" : ",") + (p.gpu.empty() ? member : p.gpu);
  }
  if (pressure_.load() == &runner) pressure_.store(nullptr);
  lock.unlock();

  const Clock::time_point start = Clock::now();
  ServeSettings settings{config_.threads, config_.batching.max_sequences};
  ModelSpec placed = runner.spec();
  placed.device = load_device;
  try {
    outcome.model = loader_.load(placed, runner.tier(), settings);
  } catch (const std::exception& e) {
    lock.lock();
    charge(device, need, false);
    runner.resident = false;
    outcome.error = fmt::format("{}: {}", runner.key(), e.what());
    return outcome;
  }
  const uint64_t bytes = outcome.model.decoder   ? outcome.model.decoder->resident_bytes()
                         : outcome.model.encoder ? outcome.model.encoder->resident_bytes()
                                                 : need;
  metrics_.load(runner.key(), device);
  lock.lock();
  charge(device, need, false);
  charge(device, bytes, true);
  runner.estimated_bytes = bytes;
  // The estimate may have been low: make room now if others are idle.
  for (const std::string& member : members) {
    while (pool(member).budget > 0 && pool(member).resident > pool(member).budget &&
           evict_one(lock, runner, member)) {
    }
  }
  runner.loaded_at = Clock::now();
  runner.load_seconds = std::chrono::duration<double>(runner.loaded_at - start).count();
  outcome.state = LoadState::kReady;
  return outcome;
}

Metrics EngineImpl::metrics() const {
  Metrics m = metrics_.snapshot();
  m.queued = queued_.load();
  m.knobs = routing_->knobs();
  for (auto& [name, value] : std::map<std::string, double>(m.knobs)) {
    m.knobs.erase(name);
    m.knobs["routing." + name] = value;
  }
  m.knobs["batching.window_ms"] = window_ms_.load();
  m.knobs["batching.max_tokens"] = batch_max_tokens_.load();
  if (cache_ != nullptr) m.knobs["cache.max_bytes"] = static_cast<double>(cache_->max_bytes());
  const std::lock_guard lock(mutex_);
  for (const auto& [device, p] : pools_) {
    m.by_device[device] = DeviceMetrics{p.budget, p.resident, p.peak, p.models};
  }
  return m;
}

std::string EngineImpl::metrics_prometheus() const {
  std::map<std::string, double> gauges;
  gauges["polyinfer_queued_requests"] = static_cast<double>(queued_.load());
  {
    const std::lock_guard lock(mutex_);
    uint64_t total = 0;
    for (const auto& [device, p] : pools_) total += p.resident;
    gauges["polyinfer_resident_bytes"] = static_cast<double>(total);
  }
  if (cache_ != nullptr) {
    gauges["polyinfer_cache_bytes"] = static_cast<double>(cache_->bytes());
    gauges["polyinfer_cache_entries"] = static_cast<double>(cache_->entries());
  }
  std::string text = metrics_.prometheus(gauges);
  const std::lock_guard lock(mutex_);
  text += "# TYPE polyinfer_device_resident_bytes gauge\n";
  for (const auto& [device, p] : pools_) {
    text +=
        fmt::format("polyinfer_device_resident_bytes{{device=\"{}\"}} {}\n", device, p.resident);
  }
  text += "# TYPE polyinfer_device_budget_bytes gauge\n";
  for (const auto& [device, p] : pools_) {
    text += fmt::format("polyinfer_device_budget_bytes{{device=\"{}\"}} {}\n", device, p.budget);
  }
  return text;
}

}  // namespace polyinfer::inline v0::detail
