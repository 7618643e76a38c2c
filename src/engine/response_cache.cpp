// SPDX-License-Identifier: Apache-2.0
// ResponseCache: keys, LRU list with a byte budget, expiry on lookup.
#include "engine/response_cache.hpp"

#include <fmt/format.h>

namespace polyinfer::inline v0::detail {

namespace {

constexpr uint64_t kEntryOverhead = 160;  // list node, map slot, Response's empty members

uint64_t entry_bytes(const std::string& key, const Response& response) {
  uint64_t bytes = kEntryOverhead + key.size() + response.text.size() + response.model.size() +
                   response.tier.size() + response.tokens.size() * sizeof(int32_t) +
                   response.values.size() * sizeof(float);
  for (const std::string& step : response.route) bytes += step.size() + 32;
  return bytes;
}

}  // namespace

std::string response_cache_key(const Request& request, int32_t max_tokens) {
  const SamplingParams& s = request.sampling;
  std::string key =
      fmt::format("{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|", static_cast<int>(request.kind),
                  request.task.size(), request.task, request.model, request.tier, max_tokens,
                  s.temperature, s.top_k, s.top_p, s.min_p, s.repetition_penalty, s.seed);
  for (const std::string& stop : request.stop) key += fmt::format("{}:{}|", stop.size(), stop);
  key += request.prompt;
  return key;
}

bool response_cacheable(const Request& request) {
  return request.sampling.temperature == 0.0f || request.sampling.seed != 0;
}

std::optional<Response> ResponseCache::lookup(const std::string& key, Quality quality,
                                              Clock::time_point now) {
  const std::lock_guard lock(mutex_);
  const auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  const List::iterator entry = it->second;
  if (ttl_s_ > 0 && std::chrono::duration<double>(now - entry->stored).count() > ttl_s_) {
    erase(entry);
    return std::nullopt;
  }
  if (entry->quality < quality) return std::nullopt;
  lru_.splice(lru_.begin(), lru_, entry);
  return entry->response;
}

void ResponseCache::insert(const std::string& key, Quality quality, const Response& response,
                           Clock::time_point now) {
  const std::lock_guard lock(mutex_);
  if (max_bytes_ == 0) return;
  if (const auto it = index_.find(key); it != index_.end()) {
    const bool fresh =
        ttl_s_ <= 0 || std::chrono::duration<double>(now - it->second->stored).count() <= ttl_s_;
    if (fresh && it->second->quality > quality) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return;
    }
    erase(it->second);
  }
  Entry entry;
  entry.key = key;
  entry.quality = quality;
  entry.response.text = response.text;
  entry.response.tokens = response.tokens;
  entry.response.values = response.values;
  entry.response.model = response.model;
  entry.response.tier = response.tier;
  entry.response.confidence = response.confidence;
  entry.bytes = entry_bytes(key, entry.response);
  entry.stored = now;
  if (entry.bytes > max_bytes_) return;
  bytes_ += entry.bytes;
  lru_.push_front(std::move(entry));
  index_.emplace(key, lru_.begin());
  shrink();
}

void ResponseCache::set_max_bytes(uint64_t max_bytes) {
  const std::lock_guard lock(mutex_);
  max_bytes_ = max_bytes;
  shrink();
}

uint64_t ResponseCache::max_bytes() const {
  const std::lock_guard lock(mutex_);
  return max_bytes_;
}

uint64_t ResponseCache::bytes() const {
  const std::lock_guard lock(mutex_);
  return bytes_;
}

size_t ResponseCache::entries() const {
  const std::lock_guard lock(mutex_);
  return lru_.size();
}

int64_t ResponseCache::evictions() const {
  const std::lock_guard lock(mutex_);
  return evictions_;
}

void ResponseCache::erase(List::iterator it) {
  bytes_ -= it->bytes;
  index_.erase(it->key);
  lru_.erase(it);
}

void ResponseCache::shrink() {
  while (bytes_ > max_bytes_ && !lru_.empty()) {
    erase(std::prev(lru_.end()));
    ++evictions_;
  }
}

}  // namespace polyinfer::inline v0::detail
