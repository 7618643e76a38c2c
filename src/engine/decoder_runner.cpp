// SPDX-License-Identifier: Apache-2.0
// DecoderRunner: continuous batching (decode tokens + prompt chunks per step), preemption,
// deadlines, cancellation, per-sequence cost from the step's thread CPU time.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "common/fail.hpp"

#include "engine/engine_impl.hpp"
#include "engine/runner.hpp"

namespace polyinfer::inline v0::detail {

namespace {

constexpr auto kWaitingSweep = std::chrono::milliseconds(2);

}  // namespace

bool DecoderRunner::Order::operator()(const SequencePtr& a, const SequencePtr& b) const noexcept {
  if (a->priority != b->priority) return a->priority > b->priority;
  if (a->item.job->serial != b->item.job->serial) return a->item.job->serial < b->item.job->serial;
  return a->item.step < b->item.step;
}

DecoderRunner::~DecoderRunner() = default;

Priority DecoderRunner::top_priority() const noexcept {
  Priority top = waiting_.empty() ? Priority::kLow : (*waiting_.begin())->priority;
  for (const SequencePtr& s : active_) top = std::max(top, s->priority);
  for (const WorkItem& item : incoming) top = std::max(top, item.job->request.priority);
  return top;
}

Clock::time_point DecoderRunner::ready_at() const noexcept {
  return held() + incoming.size() > 0 ? Clock::time_point::min() : Clock::time_point::max();
}

uint64_t DecoderRunner::resident_bytes() const noexcept {
  return decoder_ != nullptr ? decoder_->resident_bytes() : 0;
}

void DecoderRunner::unload() {
  for (SequencePtr& s : active_) {  // not expected (eviction waits for idle), but keep them
    s->kv = -1;
    s->computed = 0;
    waiting_.insert(std::move(s));
  }
  active_.clear();
  decoder_ = nullptr;
  model_ = {};
  loaded_ = false;
}

void DecoderRunner::fail_all(Status status, const std::string& message) {
  for (SequencePtr& s : active_) finish(*s, status, message);
  active_.clear();
  while (!waiting_.empty()) {
    SequencePtr s = std::move(waiting_.extract(waiting_.begin()).value());
    finish(*s, status, message);
  }
  unload();
}

DecoderRunner::SequencePtr DecoderRunner::make_sequence(WorkItem item) {
  auto s = std::make_unique<Sequence>();
  s->priority = item.job->request.priority;
  s->max_tokens = item.job->max_tokens;
  const SamplingParams& sampling = item.job->request.sampling;
  s->greedy = sampling.temperature == 0.0f && sampling.repetition_penalty == 1.0f;
  s->live = item.job->streams_live(item.step);
  if (s->greedy && engine_.verify_drafts()) s->draft = item.job->draft;
  s->item = std::move(item);
  return s;
}

bool DecoderRunner::admit(Sequence& s) {
  Job& job = *s.item.job;
  if (s.ids.empty()) {  // first admission: tokenize, check, set up sampling and text
    const double cpu_start = thread_cpu_seconds();
    try {
      s.ids = decoder_->encode(job.request.prompt);
      if (s.ids.empty()) throw Error(ErrorCode::kInvalidArgument, "prompt", "no tokens");
      s.prompt_length = static_cast<int64_t>(s.ids.size());
      const int64_t room = decoder_->context_length() - s.prompt_length;
      if (room < 1) {
        throw Error(ErrorCode::kInvalidArgument, "prompt",
                    fmt::format("{} tokens leave no room in the context of {} tokens",
                                s.prompt_length, decoder_->context_length()));
      }
      s.max_tokens = static_cast<int32_t>(std::min<int64_t>(s.max_tokens, room));
      if (!s.greedy) s.sampler.emplace(job.request.sampling);
      if ((job.on_token || !job.request.stop.empty()) && decoder_->tokenizer() != nullptr) {
        s.stream.emplace(*decoder_->tokenizer(), s.ids, job.request.stop);
      }
    } catch (const std::exception& e) {
      finish(s, Status::kInvalidRequest, e.what());
      return false;
    }
    s.ids.reserve(static_cast<size_t>(s.prompt_length + s.max_tokens));
    const auto draft_length = static_cast<int64_t>(s.draft.size());
    const bool draft_fits = draft_length > 0 && draft_length <= s.max_tokens &&
                            std::all_of(s.draft.begin(), s.draft.end(), [&](int32_t id) {
                              return id >= 0 && id < decoder_->vocab();
                            });
    if (draft_fits) {
      s.ids.insert(s.ids.end(), s.draft.begin(), s.draft.end());
      s.draft_length = draft_length;
    }
    s.draft.clear();
    s.device_seconds += thread_cpu_seconds() - cpu_start;
    job.mark_started(Clock::now());
  }
  s.kv = decoder_->create_sequence();
  // A draft needs logits from the last prompt position on: reuse at most up to there.
  const int64_t reusable =
      s.draft_length > 0 ? s.prompt_length - 1 : static_cast<int64_t>(s.ids.size()) - 1;
  s.computed = decoder_->reuse_prefix(s.kv, s.ids, reusable);
  return true;
}

void DecoderRunner::suspend(size_t index) {
  SequencePtr s = std::move(active_[index]);
  active_.erase(active_.begin() + static_cast<std::ptrdiff_t>(index));
  decoder_->release_sequence(s->kv);
  s->kv = -1;
  s->computed = 0;
  waiting_.insert(std::move(s));
  engine_.registry().preemption();
}

void DecoderRunner::finish(Sequence& s, Status status, std::string error) {
  if (s.kv >= 0 && decoder_ != nullptr) decoder_->release_sequence(s.kv);
  s.kv = -1;
  StepResult result;
  result.status = status;
  result.error = std::move(error);
  result.prompt_tokens = s.prompt_length;
  result.generated_tokens = std::max<int64_t>(0, generated(s));
  result.device_seconds = s.device_seconds;
  if (status == Status::kOk) {
    result.tokens.assign(s.ids.begin() + s.prompt_length, s.ids.end());
    if (s.stream) {
      (void)s.stream->finish();
      result.text = s.stream->text();
    } else {
      result.text = decoder_->decode(result.tokens);
    }
    result.confidence = std::exp(s.min_top_logprob);
    result.pieces = std::move(s.pieces);
  }
  engine_.finish_step(s.item, std::move(result));
}

void DecoderRunner::sweep(Clock::time_point now) {
  const auto reason = [&](const Job& job) -> std::pair<Status, const char*> {
    if (job.answered.load(std::memory_order_relaxed)) return {Status::kCancelled, "answered"};
    if (job.cancelled()) return {Status::kCancelled, "cancelled"};
    if (job.expired(now)) return {Status::kTimeout, "deadline passed"};
    return {Status::kOk, nullptr};
  };
  for (size_t i = active_.size(); i-- > 0;) {
    const auto [status, why] = reason(*active_[i]->item.job);
    if (status == Status::kOk) continue;
    finish(*active_[i], status, why);
    active_.erase(active_.begin() + static_cast<std::ptrdiff_t>(i));
  }
  if (now < next_sweep_) return;
  next_sweep_ = now + kWaitingSweep;
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    const auto [status, why] = reason(*(*it)->item.job);
    if (status == Status::kOk) {
      ++it;
      continue;
    }
    SequencePtr s = std::move(waiting_.extract(it++).value());
    finish(*s, status, why);
  }
}

void DecoderRunner::prepare_specs() {
  specs_.clear();
  penalized_.clear();
  const int64_t vocab = decoder_->vocab();
  for (size_t k = 0; k < entries_.size(); ++k) {
    const BatchEntry& entry = entries_[k];
    Sequence& s = *entry_sequences_[k];
    const auto rows = static_cast<int64_t>(entry.logits == LogitsRows::kAll    ? entry.tokens.size()
                                           : entry.logits == LogitsRows::kLast ? 1
                                                                               : 0);
    for (int64_t r = 0; r < rows; ++r) {
      if (s.greedy) {  // the top candidate, as greedy_pick
        SampleSpec spec;
        spec.temperature = 0.0f;
        specs_.push_back(spec);
        continue;
      }
      SampleSpec spec = s.sampler->prepare(vocab, s.ids, penalized_);
      if (spec.temperature > 0.0f) {
        if (!s.uniform) s.uniform = s.sampler->next_uniform();
        spec.uniform = *s.uniform;
      }
      specs_.push_back(spec);
    }
  }
}

int DecoderRunner::emit(Sequence& s, int32_t id, float top_logprob) {
  s.ids.push_back(id);
  s.min_top_logprob = std::min(s.min_top_logprob, top_logprob);

  const std::span<const int32_t> eos = decoder_->eos_ids();
  bool stop = std::find(eos.begin(), eos.end(), id) != eos.end();
  std::string_view piece;
  std::string joined;
  if (s.stream) {
    piece = s.stream->push(id);
    stop = stop || s.stream->stopped();
  }
  stop = stop || generated(s) >= s.max_tokens ||
         static_cast<int64_t>(s.ids.size()) >= decoder_->context_length();
  if (stop && s.stream) {
    joined.assign(piece);
    joined += s.stream->finish();
    piece = joined;
  }
  const Job& job = *s.item.job;
  bool cancelled = false;
  if (job.on_token) {
    if (s.live) {
      try {
        cancelled = !job.on_token(piece, id);
      } catch (...) {  // a throwing callback cancels its own request, nothing else
        cancelled = true;
      }
    } else {
      s.pieces.emplace_back(piece);
    }
  }
  return cancelled ? 2 : stop ? 1 : 0;
}

int DecoderRunner::verify(Sequence& s, const GreedyPick* picks) {
  const int64_t prompt = s.prompt_length;
  const int64_t draft_length = s.draft_length;
  s.draft.assign(s.ids.begin() + prompt, s.ids.end());
  s.ids.resize(static_cast<size_t>(prompt));
  s.draft_length = 0;
  int outcome = 0;
  for (int64_t i = 0; i <= draft_length && outcome == 0; ++i) {
    // The row of position prompt − 1 + i predicts token i of the answer.
    const auto [id, top_logprob] = picks[prompt - 1 + i - s.logits_first];
    outcome = emit(s, id, top_logprob);
    if (i == draft_length || id != s.draft[static_cast<size_t>(i)]) break;
  }
  s.draft.clear();
  // The cache holds the whole draft; past a disagreement it is wrong: start the sequence over
  // (its full blocks come back from the prefix cache).
  if (outcome == 0 && s.computed > static_cast<int64_t>(s.ids.size()) - 1) {
    decoder_->release_sequence(s.kv);
    s.kv = decoder_->create_sequence();
    s.computed = decoder_->reuse_prefix(s.kv, s.ids, static_cast<int64_t>(s.ids.size()) - 1);
  }
  return outcome;
}

void DecoderRunner::step(std::vector<WorkItem>& incoming_items) {
  for (WorkItem& item : incoming_items) waiting_.insert(make_sequence(std::move(item)));
  incoming_items.clear();
  const Clock::time_point now = Clock::now();
  if (!loaded_) {
    sweep(now);
    if (waiting_.empty()) return;
    std::string error;
    const LoadState state = ensure_loaded(error);
    if (state == LoadState::kBlocked) return;
    if (state == LoadState::kFailed) {
      fail_all(Status::kModelUnavailable, error);
      return;
    }
    decoder_ = model_.decoder.get();
  }
  sweep(now);

  // Admission, preempting lower priorities when every slot is taken.
  const auto max_sequences = static_cast<size_t>(std::max(1, engine_.batch_max_sequences()));
  const bool admitting = engine_.admitting(*this);
  while (!waiting_.empty()) {
    const Priority best = (*waiting_.begin())->priority;
    if (active_.size() >= max_sequences) {
      size_t lowest = 0;
      for (size_t i = 1; i < active_.size(); ++i) {
        if (active_[i]->priority < active_[lowest]->priority ||
            (active_[i]->priority == active_[lowest]->priority &&
             active_[i]->item.job->serial > active_[lowest]->item.job->serial)) {
          lowest = i;
        }
      }
      if (best <= active_[lowest]->priority) break;
      suspend(lowest);
      continue;
    }
    if (!admitting) break;  // another model waits for memory: drain, then be evicted
    SequencePtr s = std::move(waiting_.extract(waiting_.begin()).value());
    if (admit(*s)) active_.push_back(std::move(s));
  }
  if (active_.empty()) return;

  // One forward pass: decode tokens first, then prompt chunks within the token budget.
  const double cpu_start = thread_cpu_seconds();
  const Clock::time_point wall_start = Clock::now();
  bool greedy_step = false;
  for (;;) {
    entries_.clear();
    entry_sequences_.clear();
    int64_t budget = std::max(1, engine_.batch_max_tokens());
    int64_t rows = 0;
    for (const bool decode : {true, false}) {
      for (SequencePtr& s : active_) {
        const int64_t pending = static_cast<int64_t>(s->ids.size()) - s->computed;
        if ((pending == 1) != decode || (!decode && budget <= 0)) continue;
        int64_t take = decode ? 1 : std::min(pending, budget);
        if (s->draft_length > 0 && take < pending) {
          // A draft's logits come in one entry from the last prompt position on.
          const int64_t before = s->prompt_length - 1 - s->computed;
          take = before > 0 ? std::min(take, before) : pending;
        }
        const bool last = take == pending;
        const bool all = last && s->draft_length > 0;
        entries_.push_back(
            {s->kv,
             std::span(s->ids).subspan(static_cast<size_t>(s->computed), static_cast<size_t>(take)),
             all    ? LogitsRows::kAll
             : last ? LogitsRows::kLast
                    : LogitsRows::kNone});
        entry_sequences_.push_back(s.get());
        s->step_tokens = take;
        s->logits_row = last ? rows : -1;
        s->logits_first = s->computed;
        rows += all ? take : last ? 1 : 0;
        budget -= take;
      }
    }
    // Greedy sequences only need each row's argmax: reduced where the model runs.
    greedy_step = std::all_of(entry_sequences_.begin(), entry_sequences_.end(),
                              [](const Sequence* s) { return s->greedy || s->logits_row < 0; });
    bool ok = false;
    try {
      if (greedy_step) {
        ok = decoder_->forward_greedy(entries_, picks_);
      } else {
        prepare_specs();
        ok = decoder_->forward_sample(entries_, specs_, penalized_, sampled_);
      }
    } catch (const std::exception& e) {
      for (SequencePtr& s : active_) finish(*s, Status::kInternalError, e.what());
      active_.clear();
      return;
    }
    if (ok) break;
    // The KV cache is full: the lowest priority, newest sequence waits.
    if (active_.size() <= 1) {
      finish(*active_.front(), Status::kInvalidRequest, "the KV cache cannot hold the sequence");
      active_.clear();
      return;
    }
    size_t lowest = active_.size() - 1;
    for (size_t i = 0; i < active_.size(); ++i) {
      if (active_[i]->priority < active_[lowest]->priority) lowest = i;
    }
    suspend(lowest);
  }

  // Emit the picks, then share the step's CPU time among the sequences by tokens.
  int64_t step_tokens = 0;
  done_.clear();
  for (Sequence* s : entry_sequences_) {
    s->computed += s->step_tokens;
    step_tokens += s->step_tokens;
    if (s->logits_row < 0) continue;
    int outcome = 0;
    if (!s->greedy) {
      const SamplePick& pick = sampled_[static_cast<size_t>(s->logits_row)];
      s->uniform.reset();
      outcome = emit(*s, pick.id, pick.top_logprob);
    } else {
      const GreedyPick* picks = picks_.data() + s->logits_row;
      if (!greedy_step) {  // a step with sampled sequences: the picks of temperature-0 specs
        const int64_t rows = s->draft_length > 0 ? s->step_tokens : 1;
        row_picks_.resize(static_cast<size_t>(rows));
        for (int64_t r = 0; r < rows; ++r) {
          const SamplePick& pick = sampled_[static_cast<size_t>(s->logits_row + r)];
          row_picks_[static_cast<size_t>(r)] = {pick.id, pick.logprob};
        }
        picks = row_picks_.data();
      }
      outcome = s->draft_length > 0 ? verify(*s, picks) : emit(*s, picks->id, picks->logprob);
    }
    if (outcome != 0) done_.emplace_back(s, outcome == 2);
  }
  const double cpu_seconds =
      step_seconds(thread_cpu_seconds() - cpu_start,
                   std::chrono::duration<double>(Clock::now() - wall_start).count());
  for (Sequence* s : entry_sequences_) {
    s->device_seconds +=
        cpu_seconds * static_cast<double>(s->step_tokens) / static_cast<double>(step_tokens);
  }
  for (const auto& [s, cancelled] : done_) {
    finish(*s, cancelled ? Status::kCancelled : Status::kOk, cancelled ? "cancelled" : "");
    const auto it = std::find_if(active_.begin(), active_.end(),
                                 [&](const SequencePtr& p) { return p.get() == s; });
    active_.erase(it);
  }
}

}  // namespace polyinfer::inline v0::detail
