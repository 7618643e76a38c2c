// SPDX-License-Identifier: Apache-2.0
// EngineImpl, request side: admission, the exact cache, routing, cascades, ensembles, answers.
#include "engine/engine_impl.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "engine/autotuner.hpp"

namespace polyinfer::inline v0::detail {

namespace {

constexpr double kOutputTokensEma = 0.05;
constexpr int64_t kDefaultOutputTokens = 8;

double ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

/// An answer from the cache or a leader, for a request that did not run.
Response copy_answer(const Response& from) {
  Response r;
  r.text = from.text;
  r.tokens = from.tokens;
  r.values = from.values;
  r.model = from.model;
  r.tier = from.tier;
  r.confidence = from.confidence;
  r.cache_hit = true;
  return r;
}

}  // namespace

std::future<Response> EngineImpl::submit(Request request, StreamCallback on_token, bool audit) {
  auto job = std::make_shared<Job>();
  job->audit = audit;
  const Clock::time_point now = Clock::now();
  job->serial = ++serial_;
  job->submitted = now;
  job->request = std::move(request);
  job->on_token = std::move(on_token);
  job->max_tokens = job->request.max_tokens > 0 ? job->request.max_tokens : config_.max_tokens;
  if (job->request.deadline.count() > 0) job->deadline = now + job->request.deadline;
  std::future<Response> future = job->promise.get_future();
  metrics_.submitted();

  if (job->request.prompt.empty()) {
    respond_error(job, Status::kInvalidRequest, "empty prompt");
    return future;
  }
  if (job->max_tokens < 0) {
    respond_error(job, Status::kInvalidRequest, "max_tokens is negative");
    return future;
  }
  if (cache_ != nullptr && response_cacheable(job->request)) {
    std::string key = response_cache_key(job->request, job->max_tokens);
    job->cache_quality = job->request.model.empty() && job->request.kind == RequestKind::kGenerate
                             ? routing_->cache_quality(job->request.quality)
                             : Quality::kHigh;
    if (std::optional<Response> hit = cache_->lookup(key, job->cache_quality, now)) {
      respond(job, copy_answer(*hit));
      return future;
    }
    const std::lock_guard lock(inflight_mutex_);
    const auto it = followers_.find(key);
    if (it != followers_.end() && !it->second.empty() &&
        it->second.front()->cache_quality >= job->cache_quality) {
      it->second.push_back(job);  // answered with the leader's answer
      return future;
    }
    if (it == followers_.end()) {
      followers_[key].push_back(job);  // front: the leader itself
      job->leader = true;
    }
    job->cache_key = std::move(key);
    if (semantic_ != nullptr && job->request.kind == RequestKind::kGenerate) {
      Request context = job->request;
      context.prompt.clear();
      job->semantic_context = response_cache_key(context, job->max_tokens);
    }
  }
  if (queued_.fetch_add(1) >= config_.max_queue) {
    queued_.fetch_sub(1);
    respond_error(job, Status::kOverloaded,
                  fmt::format("{} requests in flight (max_queue)", config_.max_queue));
    return future;
  }
  job->counted = true;
  start(job);
  return future;
}

RequestInfo EngineImpl::request_info(const Request& request) const {
  RequestInfo info;
  info.task = request.task;
  info.model = request.model;
  info.prompt = request.prompt;
  info.prompt_tokens = static_cast<int64_t>(request.prompt.size()) + 1;
  info.quality = request.quality;
  info.max_cost = request.max_cost;
  info.priority = request.priority;
  const std::lock_guard lock(tasks_mutex_);
  const auto it = output_tokens_.find(request.task);
  info.expected_output_tokens =
      it != output_tokens_.end() ? std::llround(it->second) : kDefaultOutputTokens;
  return info;
}

void EngineImpl::learn_output_tokens(const std::string& task, int64_t tokens) {
  const std::lock_guard lock(tasks_mutex_);
  const auto [it, fresh] = output_tokens_.try_emplace(task, static_cast<double>(tokens));
  if (!fresh) it->second += kOutputTokensEma * (static_cast<double>(tokens) - it->second);
}

void EngineImpl::start(const JobPtr& job) {
  bool stopping = false;
  {
    const std::lock_guard lock(mutex_);
    stopping = stopping_;
  }
  if (stopping) {
    respond_error(job, Status::kCancelled, "the engine is shutting down");
    return;
  }
  if (!job->semantic_context.empty() && job->embedding.empty()) {
    // Semantic cache: embed the prompt first (batched with other encoder work).
    job->phase = Job::Phase::kEmbedding;
    job->plan.steps = {PlanStep{config_.cache.semantic_model, "", 0.0f}};
    if (dispatch(job, 0)) return;
    job->semantic_context.clear();
  }
  route(job);
}

void EngineImpl::route(const JobPtr& job) {
  job->phase = Job::Phase::kRunning;
  job->plan = Plan{};
  const Request& request = job->request;
  if (request.kind != RequestKind::kGenerate || !request.model.empty()) {
    // Pinned, or an encoder request: the named model, else the first of the right kind.
    PlanStep step{request.model, request.tier, 0.0f};
    if (step.model.empty()) {
      const auto entries = catalog();
      for (const CatalogEntry& entry : *entries) {
        const bool kind_ok = request.kind == RequestKind::kClassify
                                 ? entry.kind == "classifier"
                                 : entry.kind == "embedding" || entry.kind == "classifier";
        if (kind_ok && entry.serves(request.task)) {
          step = {entry.name, entry.tier, 0.0f};
          break;
        }
      }
      if (step.model.empty()) {
        respond_error(
            job, Status::kModelUnavailable,
            fmt::format("no {} model serves task '{}'",
                        request.kind == RequestKind::kClassify ? "classifier" : "embedding",
                        request.task));
        return;
      }
    }
    job->plan.kind = Plan::Kind::kSingle;
    job->plan.steps = {step};
    job->plan.reason = "pinned";
    if (!dispatch(job, 0)) {
      respond_error(job, Status::kModelUnavailable,
                    fmt::format("unknown model '{}'{}", step.model,
                                step.tier.empty() ? "" : " tier '" + step.tier + "'"));
    }
    return;
  }
  job->info = request_info(request);
  if (const std::string classifier = routing_->classifier(); !classifier.empty()) {
    job->phase = Job::Phase::kRouting;
    job->plan.steps = {PlanStep{classifier, "", 0.0f}};
    if (dispatch(job, 0)) return;
    job->phase = Job::Phase::kRunning;  // no classifier: plan without its scores
  }
  plan_and_dispatch(job);
}

void EngineImpl::plan_and_dispatch(const JobPtr& job) {
  Plan plan;
  try {
    plan = routing_->plan(job->info, *catalog());
  } catch (const std::exception& e) {
    respond_error(job, Status::kInternalError, fmt::format("routing policy: {}", e.what()));
    return;
  }
  if (plan.over_budget) {
    metrics_.over_budget();
    job->response.over_budget = true;
    if (plan.reject_over_budget) {
      respond_error(job, Status::kOverBudget, plan.reason);
      return;
    }
  }
  if (plan.steps.empty()) {
    respond_error(job, Status::kModelUnavailable,
                  fmt::format("no model serves task '{}' ({})", job->info.task, plan.reason));
    return;
  }
  job->budget_limited = plan.budget_limited || plan.over_budget;
  job->plan = std::move(plan);
  job->phase = Job::Phase::kRunning;
  if (job->plan.kind == Plan::Kind::kEnsemble) {
    const size_t steps = job->plan.steps.size();
    {
      const std::lock_guard lock(job->mutex);
      job->outstanding = static_cast<int>(steps);
      job->results.assign(steps, StepResult{});
    }
    for (size_t i = 0; i < steps; ++i) {
      if (!dispatch(job, i)) {
        StepResult missing;
        missing.status = Status::kModelUnavailable;
        missing.error = fmt::format("unknown model '{}'", job->plan.steps[i].model);
        finish_step(WorkItem{job, i, Clock::now()}, std::move(missing));
      }
    }
    return;
  }
  if (dispatch(job, 0)) return;
  StepResult missing;
  missing.status = Status::kModelUnavailable;
  missing.error = fmt::format("unknown model '{}'", job->plan.steps[0].model);
  finish_step(WorkItem{job, 0, Clock::now()}, std::move(missing));
}

void EngineImpl::finish_step(const WorkItem& item, StepResult result) {
  const JobPtr& job = item.job;
  if (job->answered.load()) return;
  const PlanStep& step = job->plan.steps[item.step];
  Runner* runner = find_runner(step.model, step.tier);
  const std::string model_tier = runner != nullptr ? runner->key() : step.model;
  if (result.prompt_tokens > 0) {
    const double units = static_cast<double>(result.prompt_tokens + result.generated_tokens) *
                         relative_cost(step.model);
    metrics_.call(model_tier, result.prompt_tokens, result.generated_tokens, result.device_seconds,
                  units);
    const std::lock_guard lock(job->mutex);
    Cost& cost = job->response.cost;
    cost.device_seconds += result.device_seconds;
    cost.units += units;
    cost.prompt_tokens += result.prompt_tokens;
    cost.generated_tokens += result.generated_tokens;
    ++cost.model_calls;
    job->response.route.push_back(model_tier);
  }
  if (job->phase == Job::Phase::kEmbedding) {
    if (result.status == Status::kCancelled || result.status == Status::kTimeout) {
      respond_error(job, result.status, result.error);
      return;
    }
    if (result.status == Status::kOk && !result.values.empty()) {
      SemanticCache::normalize(result.values);
      const std::optional<Response> hit =
          semantic_->lookup(job->semantic_context, result.values, job->cache_quality);
      if (hit) {
        Response response = copy_answer(*hit);
        {
          const std::lock_guard lock(job->mutex);
          response.cost = job->response.cost;  // the embedding was paid for
          response.route = job->response.route;
        }
        respond(job, std::move(response));
        return;
      }
      job->embedding = std::move(result.values);
    } else {
      job->semantic_context.clear();  // no embedding: go on without the semantic cache
    }
    route(job);
    return;
  }
  if (job->phase == Job::Phase::kRouting) {
    if (result.status == Status::kOk) {
      for (size_t i = 0; i < result.values.size(); ++i) {
        const std::string label = i < result.labels.size() ? result.labels[i] : std::to_string(i);
        job->info.classifier_scores.emplace_back(label, result.values[i]);
      }
    } else if (result.status == Status::kCancelled || result.status == Status::kTimeout) {
      respond_error(job, result.status, result.error);
      return;
    }
    plan_and_dispatch(job);
    return;
  }
  switch (job->plan.kind) {
    case Plan::Kind::kEnsemble: {
      {
        const std::lock_guard lock(job->mutex);
        job->results[item.step] = std::move(result);
        if (--job->outstanding > 0) return;
      }
      finish_ensemble(job);
      return;
    }
    case Plan::Kind::kSingle:
      if (result.status == Status::kOk) {
        accept(job, item.step, std::move(result));
      } else {
        respond_error(job, result.status, std::move(result.error));
      }
      return;
    case Plan::Kind::kCascade:
      break;
  }
  const bool last = item.step + 1 >= job->plan.steps.size();
  if (result.status == Status::kOk && (last || result.confidence >= step.accept_confidence)) {
    accept(job, item.step, std::move(result));
    return;
  }
  if (result.status == Status::kTimeout || result.status == Status::kCancelled ||
      result.status == Status::kInvalidRequest || result.status == Status::kInternalError) {
    respond_error(job, result.status, std::move(result.error));
    return;
  }
  escalate(job, item.step, std::move(result));
}

void EngineImpl::escalate(const JobPtr& job, size_t step, StepResult&& result) {
  // A rejected answer stays the fallback if nothing better comes.
  if (result.status == Status::kOk) {
    job->results.resize(1);
    job->results[0] = std::move(result);
    job->fallback_step = step;
  }
  StepResult* fallback = job->results.empty() ? nullptr : &job->results[0];
  for (size_t next = step + 1; next < job->plan.steps.size(); ++next) {
    if (job->request.max_cost && fallback != nullptr) {
      // The next call costs about what this one generated, at the next model's rate.
      const double estimate =
          static_cast<double>(fallback->prompt_tokens + fallback->generated_tokens) *
          relative_cost(job->plan.steps[next].model);
      if (job->response.cost.units + estimate > *job->request.max_cost) {
        job->budget_limited = true;
        break;
      }
    }
    metrics_.escalation();
    if (fallback != nullptr && config_.batching.verify_drafts) job->draft = fallback->tokens;
    if (dispatch(job, next)) return;
  }
  if (fallback != nullptr) {
    StepResult answer = std::move(*fallback);
    job->results.clear();
    accept(job, job->fallback_step, std::move(answer));
    return;
  }
  respond_error(job, Status::kModelUnavailable, "no model of the cascade could run");
}

void EngineImpl::finish_ensemble(const JobPtr& job) {
  std::vector<StepResult>& results = job->results;  // no other runner touches it now
  size_t best = results.size();
  if (job->plan.vote == Plan::Vote::kConfidence) {
    for (size_t i = 0; i < results.size(); ++i) {
      if (results[i].status != Status::kOk) continue;
      if (best == results.size() || results[i].confidence > results[best].confidence) best = i;
    }
  } else {
    size_t best_votes = 0;
    for (size_t i = 0; i < results.size(); ++i) {
      if (results[i].status != Status::kOk) continue;
      size_t votes = 0;
      for (const StepResult& other : results) {
        votes += other.status == Status::kOk && other.text == results[i].text ? 1 : 0;
      }
      if (best == results.size() || votes > best_votes ||
          (votes == best_votes && results[i].confidence > results[best].confidence)) {
        best = i;
        best_votes = votes;
      }
    }
  }
  if (best == results.size()) {
    const StepResult& first = results.front();
    respond_error(job, first.status, first.error);
    return;
  }
  StepResult answer = std::move(results[best]);
  accept(job, best, std::move(answer));
}

void EngineImpl::accept(const JobPtr& job, size_t step, StepResult&& result) {
  Response response;
  {
    const std::lock_guard lock(job->mutex);
    response = std::move(job->response);
  }
  response.status = Status::kOk;
  response.text = std::move(result.text);
  response.tokens = std::move(result.tokens);
  response.values = std::move(result.values);
  response.confidence = result.confidence;
  const PlanStep& chosen = job->plan.steps[step];
  if (Runner* runner = find_runner(chosen.model, chosen.tier); runner != nullptr) {
    response.model = runner->spec().name;
    response.tier = runner->tier();
  }
  if (job->on_token && !job->streams_live(step)) {
    for (size_t i = 0; i < result.pieces.size() && i < response.tokens.size(); ++i) {
      try {
        if (!job->on_token(result.pieces[i], response.tokens[i])) break;
      } catch (...) {
        break;
      }
    }
  }
  if (job->request.kind == RequestKind::kGenerate) {
    learn_output_tokens(job->request.task, static_cast<int64_t>(response.tokens.size()));
  }
  respond(job, std::move(response));
}

void EngineImpl::respond_error(const JobPtr& job, Status status, std::string error) {
  Response response;
  {
    const std::lock_guard lock(job->mutex);
    response = std::move(job->response);
  }
  response.status = status;
  response.error = std::move(error);
  respond(job, std::move(response));
}

void EngineImpl::respond(const JobPtr& job, Response response) {
  if (job->answered.exchange(true)) return;
  const Clock::time_point now = Clock::now();
  response.timings.total_ms = ms_between(job->submitted, now);
  const Clock::rep first = job->first_run.load();
  if (first != std::numeric_limits<Clock::rep>::max()) {
    const Clock::time_point started{Clock::duration(first)};
    response.timings.queue_ms = ms_between(job->submitted, started);
    response.timings.run_ms = ms_between(started, now);
  } else {
    response.timings.queue_ms = response.timings.total_ms;
  }
  if (response.status == Status::kOk && !response.cache_hit && !job->cache_key.empty() &&
      cache_ != nullptr) {
    cache_->insert(job->cache_key, job->budget_limited ? Quality::kLow : job->cache_quality,
                   response, now);
  }
  if (response.status == Status::kOk && !response.cache_hit && semantic_ != nullptr &&
      !job->embedding.empty() && !job->semantic_context.empty()) {
    semantic_->insert(job->semantic_context, job->embedding,
                      job->budget_limited ? Quality::kLow : job->cache_quality, response);
  }
  if (job->counted) queued_.fetch_sub(1);
  metrics_.answered(response);
  if (tuner_ != nullptr) tuner_->observe(*job, response);
  if (job->leader) release_followers(job, response);
  job->promise.set_value(std::move(response));
}

void EngineImpl::release_followers(const JobPtr& job, const Response& response) {
  std::vector<JobPtr> followers;
  {
    const std::lock_guard lock(inflight_mutex_);
    const auto it = followers_.find(job->cache_key);
    if (it == followers_.end()) return;
    followers = std::move(it->second);
    followers_.erase(it);
  }
  for (const JobPtr& follower : followers) {
    if (follower == job) continue;
    if (response.status == Status::kOk &&
        (!job->budget_limited || follower->request.quality == Quality::kLow)) {
      respond(follower, copy_answer(response));
      continue;
    }
    // The leader failed or was cut short by its budget: the follower runs on its own.
    if (response.status != Status::kOk) follower->cache_key.clear();
    if (queued_.fetch_add(1) >= config_.max_queue) {
      queued_.fetch_sub(1);
      respond_error(follower, Status::kOverloaded, "queue full");
      continue;
    }
    follower->counted = true;
    start(follower);
  }
}

}  // namespace polyinfer::inline v0::detail
