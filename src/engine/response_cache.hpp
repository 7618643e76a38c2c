// SPDX-License-Identifier: Apache-2.0
// ResponseCache: exact-match answers (LRU within a byte budget, with a time to live).
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "polyinfer/engine.hpp"

namespace polyinfer::inline v0::detail {

/// The key of a request in the exact cache: everything that decides its answer.
[[nodiscard]] std::string response_cache_key(const Request& request, int32_t max_tokens);

/// Whether a request's answer is reproducible (greedy, or sampled with a fixed seed).
[[nodiscard]] bool response_cacheable(const Request& request);

/// Exact response cache. An entry made for quality q answers lookups of quality ≤ q; a better
/// answer replaces a worse one. Least recently used entries go first when over max_bytes.
/// Thread-safe (one mutex; lookups and inserts are short).
class ResponseCache {
 public:
  using Clock = std::chrono::steady_clock;

  ResponseCache(uint64_t max_bytes, double ttl_s) : max_bytes_(max_bytes), ttl_s_(ttl_s) {}

  /// The cached answer (status kOk) for `key` at `quality`, or nullopt.
  [[nodiscard]] std::optional<Response> lookup(const std::string& key, Quality quality,
                                               Clock::time_point now);
  /// Stores an answer (only the answer fields: text, tokens, values, model, tier, confidence).
  void insert(const std::string& key, Quality quality, const Response& response,
              Clock::time_point now);
  void set_max_bytes(uint64_t max_bytes);
  [[nodiscard]] uint64_t max_bytes() const;
  [[nodiscard]] uint64_t bytes() const;
  [[nodiscard]] size_t entries() const;
  [[nodiscard]] int64_t evictions() const;

 private:
  struct Entry {
    std::string key;
    Quality quality = Quality::kLow;
    Response response;
    uint64_t bytes = 0;
    Clock::time_point stored;
  };
  using List = std::list<Entry>;

  void erase(List::iterator it);
  void shrink();

  mutable std::mutex mutex_;
  uint64_t max_bytes_;
  double ttl_s_;
  uint64_t bytes_ = 0;
  int64_t evictions_ = 0;
  List lru_;  // most recent first
  std::unordered_map<std::string, List::iterator> index_;
};

}  // namespace polyinfer::inline v0::detail
