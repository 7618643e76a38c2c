// SPDX-License-Identifier: Apache-2.0
// Fake ServedDecoder / ServedEncoder for Engine tests: byte tokens, answers from a rule.
#pragma once

#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine_impl.hpp"
#include "engine/served_model.hpp"
#include "polyinfer/error.hpp"

namespace polyinfer::test {

/// How a fake decoder answers: the text after the first '=' of the prompt is generated from
/// `answer(prompt)` + "\n", each token with top-1 probability `confidence(prompt)`.
struct FakeBehaviour {
  std::function<std::string(const std::string&)> answer = [](const std::string& p) {
    return std::string(p.rbegin(), p.rend());
  };
  std::function<float(const std::string&)> confidence = [](const std::string&) { return 0.99f; };
  std::chrono::microseconds step_time{0};  ///< busy time per forward pass
  uint64_t bytes = 1000;                   ///< resident bytes
  std::chrono::milliseconds load_time{0};
  bool fail_load = false;
};

/// Counters shared by every instance of a fake model (it may be loaded several times).
struct FakeStats {
  std::atomic<int> loads{0};
  std::atomic<int> unloads{0};
  std::atomic<int> forwards{0};
  std::atomic<int> greedy_forwards{0};  ///< of those, passes that returned greedy picks
  std::atomic<int> max_batch{0};
  std::atomic<int> live{0};  ///< loaded instances now

  /// The device of every load, in order (the Engine's placement).
  std::vector<std::string> devices() {
    const std::lock_guard lock(mutex);
    return placed;
  }
  void placed_on(const std::string& device) {
    const std::lock_guard lock(mutex);
    placed.push_back(device);
  }

 private:
  std::mutex mutex;
  std::vector<std::string> placed;
};

class FakeDecoder final : public detail::ServedDecoder {
 public:
  static constexpr int32_t kBos = 256;
  static constexpr int32_t kEos = 257;

  FakeDecoder(FakeBehaviour behaviour, std::shared_ptr<FakeStats> stats)
      : behaviour_(std::move(behaviour)), stats_(std::move(stats)) {
    ++stats_->loads;
    ++stats_->live;
  }
  ~FakeDecoder() override {
    ++stats_->unloads;
    --stats_->live;
  }

  std::vector<int32_t> encode(std::string_view prompt) const override {
    std::vector<int32_t> ids{kBos};
    for (const char c : prompt) ids.push_back(static_cast<unsigned char>(c));
    return ids;
  }
  std::string decode(std::span<const int32_t> ids) const override {
    std::string text;
    for (const int32_t id : ids) {
      if (id < 256) text += static_cast<char>(id);
    }
    return text;
  }
  const Tokenizer* tokenizer() const override { return nullptr; }
  std::span<const int32_t> eos_ids() const override { return eos_; }
  int64_t vocab() const override { return 259; }
  int64_t context_length() const override { return 64; }
  uint64_t resident_bytes() const override { return behaviour_.bytes; }
  int32_t create_sequence() override {
    sequences_[next_] = {};
    return next_++;
  }
  void release_sequence(int32_t sequence) override { sequences_.erase(sequence); }
  int64_t reuse_prefix(int32_t, std::span<const int32_t>, int64_t) override { return 0; }

  /// Logits after `text`: the prompt ends at the first '='; what follows is the answer so far.
  void predict(const std::string& text, float* logits) const {
    const size_t equals = text.find('=');
    const std::string prompt =
        text.substr(0, equals == std::string::npos ? text.size() : equals + 1);
    const std::string so_far = equals == std::string::npos ? "" : text.substr(equals + 1);
    const std::string answer = behaviour_.answer(prompt) + "\n";
    const int32_t next =
        so_far.size() < answer.size() ? static_cast<unsigned char>(answer[so_far.size()]) : kEos;
    // Logit L on the answer token: top-1 probability p = e^L / (e^L + vocab − 1).
    const double p = std::clamp<double>(behaviour_.confidence(prompt), 1e-4, 0.999999);
    logits[next] = static_cast<float>(std::log(p * static_cast<double>(vocab() - 1) / (1 - p)));
  }

  bool forward(std::span<const detail::BatchEntry> batch, std::vector<float>& logits) override {
    ++stats_->forwards;
    int seen = stats_->max_batch.load();
    while (static_cast<int>(batch.size()) > seen &&
           !stats_->max_batch.compare_exchange_weak(seen, static_cast<int>(batch.size()))) {
    }
    if (behaviour_.step_time.count() > 0) {
      const auto until = std::chrono::steady_clock::now() + behaviour_.step_time;
      while (std::chrono::steady_clock::now() < until) {
      }
    }
    logits.assign(static_cast<size_t>(detail::logits_rows(batch) * vocab()), 0.0f);
    size_t row = 0;
    for (const detail::BatchEntry& entry : batch) {
      std::vector<int32_t>& tokens = sequences_.at(entry.sequence);
      const size_t before = tokens.size();
      tokens.insert(tokens.end(), entry.tokens.begin(), entry.tokens.end());
      if (entry.logits == detail::LogitsRows::kNone) continue;
      // One row per position asked for: the prediction after the tokens up to there.
      const size_t first = entry.logits == detail::LogitsRows::kAll ? before : tokens.size() - 1;
      for (size_t end = first + 1; end <= tokens.size(); ++end, ++row) {
        const std::vector<int32_t> prefix(tokens.begin(), tokens.begin() + static_cast<long>(end));
        predict(decode(prefix), logits.data() + row * static_cast<size_t>(vocab()));
      }
    }
    return true;
  }

  bool forward_greedy(std::span<const detail::BatchEntry> batch,
                      std::vector<detail::GreedyPick>& picks) override {
    ++stats_->greedy_forwards;
    std::vector<float> logits;
    if (!forward(batch, logits)) return false;
    detail::greedy_picks(logits, vocab(), picks);
    return true;
  }

 private:
  FakeBehaviour behaviour_;
  std::shared_ptr<FakeStats> stats_;
  std::vector<int32_t> eos_{10, kEos};
  std::map<int32_t, std::vector<int32_t>> sequences_;
  int32_t next_ = 0;
};

/// A classifier over labels: probabilities from a rule.
class FakeEncoder final : public detail::ServedEncoder {
 public:
  FakeEncoder(std::vector<std::string> labels,
              std::function<std::vector<float>(const std::string&)> probs,
              std::shared_ptr<FakeStats> stats)
      : labels_(std::move(labels)), probs_(std::move(probs)), stats_(std::move(stats)) {
    ++stats_->loads;
    ++stats_->live;
  }
  ~FakeEncoder() override {
    ++stats_->unloads;
    --stats_->live;
  }
  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    for (const char c : text) ids.push_back(static_cast<unsigned char>(c));
    return ids;
  }
  std::vector<std::string> labels() const override { return labels_; }
  uint64_t resident_bytes() const override { return 100; }
  std::vector<std::vector<float>> run(std::span<const std::vector<int32_t>> batch,
                                      bool /*classify*/) const override {
    ++stats_->forwards;
    std::vector<std::vector<float>> out;
    for (const auto& ids : batch) {
      std::string text;
      for (const int32_t id : ids) text += static_cast<char>(id);
      out.push_back(probs_(text));
    }
    return out;
  }

 private:
  std::vector<std::string> labels_;
  std::function<std::vector<float>(const std::string&)> probs_;
  std::shared_ptr<FakeStats> stats_;
};

/// Fake models by name, and the loader the EngineImpl takes.
struct FakeZoo {
  std::map<std::string, FakeBehaviour> decoders;
  std::map<std::string, std::function<std::vector<float>(const std::string&)>> encoders;
  std::vector<std::string> labels{"small", "medium", "large"};
  std::map<std::string, std::shared_ptr<FakeStats>> stats;

  FakeStats& of(const std::string& name) {
    auto& s = stats[name];
    if (!s) s = std::make_shared<FakeStats>();
    return *s;
  }

  detail::ModelLoader loader() {
    for (const auto& [name, _] : decoders) (void)of(name);
    for (const auto& [name, _] : encoders) (void)of(name);
    detail::ModelLoader loader;
    loader.load = [this](const ModelSpec& spec, const std::string&, const detail::ServeSettings&) {
      detail::LoadedModel loaded;
      if (const auto it = decoders.find(spec.name); it != decoders.end()) {
        if (it->second.load_time.count() > 0) std::this_thread::sleep_for(it->second.load_time);
        if (it->second.fail_load) throw Error(ErrorCode::kIo, spec.name, "fake load failure");
        stats.at(spec.name)->placed_on(spec.device);
        loaded.decoder = std::make_unique<FakeDecoder>(it->second, stats.at(spec.name));
      } else if (const auto enc = encoders.find(spec.name); enc != encoders.end()) {
        loaded.encoder = std::make_unique<FakeEncoder>(labels, enc->second, stats.at(spec.name));
      } else {
        throw Error(ErrorCode::kNotFound, spec.name, "no such fake model");
      }
      return loaded;
    };
    loader.estimate_bytes = [this](const ModelSpec& spec,
                                   const detail::ServeSettings&) -> uint64_t {
      const auto it = decoders.find(spec.name);
      return it != decoders.end() ? it->second.bytes : 100;
    };
    return loader;
  }
};

/// A model spec for a fake (path unused).
inline ModelSpec fake_spec(std::string name, double relative_cost, double quality = 1.0,
                           std::string kind = "decoder") {
  ModelSpec spec;
  spec.name = std::move(name);
  spec.path = "/nonexistent/" + spec.name;
  spec.kind = std::move(kind);
  spec.relative_cost = relative_cost;
  spec.quality = quality;
  return spec;
}

/// An Engine over fakes.
inline std::unique_ptr<Engine> fake_engine(EngineConfig config, FakeZoo& zoo) {
  return std::make_unique<Engine>(
      std::make_unique<detail::EngineImpl>(std::move(config), zoo.loader()));
}

}  // namespace polyinfer::test
