// SPDX-License-Identifier: Apache-2.0
// SemanticCache: a linear scan over unit vectors of the same context.
#include "engine/semantic_cache.hpp"

#include <cmath>

namespace polyinfer::inline v0::detail {

void SemanticCache::normalize(std::vector<float>& vector) {
  double norm = 0;
  for (const float x : vector) norm += static_cast<double>(x) * x;
  if (norm <= 0) return;
  const auto scale = static_cast<float>(1.0 / std::sqrt(norm));
  for (float& x : vector) x *= scale;
}

std::optional<Response> SemanticCache::lookup(const std::string& context,
                                              const std::vector<float>& embedding,
                                              Quality quality) {
  const std::lock_guard lock(mutex_);
  auto best = lru_.end();
  double best_similarity = threshold_;
  for (auto it = lru_.begin(); it != lru_.end(); ++it) {
    if (it->quality < quality || it->context != context ||
        it->embedding.size() != embedding.size()) {
      continue;
    }
    double dot = 0;
    for (size_t i = 0; i < embedding.size(); ++i)
      dot += static_cast<double>(it->embedding[i]) * embedding[i];
    if (dot >= best_similarity) {
      best_similarity = dot;
      best = it;
    }
  }
  if (best == lru_.end()) return std::nullopt;
  lru_.splice(lru_.begin(), lru_, best);
  return best->response;
}

void SemanticCache::insert(const std::string& context, std::vector<float> embedding,
                           Quality quality, const Response& response) {
  if (max_entries_ == 0 || embedding.empty()) return;
  Entry entry;
  entry.context = context;
  entry.embedding = std::move(embedding);
  entry.quality = quality;
  entry.response.text = response.text;
  entry.response.tokens = response.tokens;
  entry.response.values = response.values;
  entry.response.model = response.model;
  entry.response.tier = response.tier;
  entry.response.confidence = response.confidence;
  const std::lock_guard lock(mutex_);
  lru_.push_front(std::move(entry));
  while (lru_.size() > max_entries_) lru_.pop_back();
}

size_t SemanticCache::entries() const {
  const std::lock_guard lock(mutex_);
  return lru_.size();
}

}  // namespace polyinfer::inline v0::detail
