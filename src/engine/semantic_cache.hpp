// SPDX-License-Identifier: Apache-2.0
// SemanticCache: answers of earlier prompts whose embedding is close enough (cosine similarity).
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "polyinfer/engine.hpp"

namespace polyinfer::inline v0::detail {

/// Near-duplicate prompts share an answer: a lookup returns the most similar stored answer of
/// the same context (everything of the exact key but the prompt) whose cosine similarity
/// reaches the threshold and whose quality is enough. Least recently used entries go first
/// beyond max_entries. Thread-safe (one mutex; lookups scan the entries).
class SemanticCache {
 public:
  SemanticCache(double threshold, size_t max_entries)
      : threshold_(threshold), max_entries_(max_entries) {}

  /// Scales a vector to unit length (zero vectors stay zero).
  static void normalize(std::vector<float>& vector);

  /// The best answer at similarity ≥ threshold; `embedding` unit length.
  [[nodiscard]] std::optional<Response> lookup(const std::string& context,
                                               const std::vector<float>& embedding,
                                               Quality quality);
  void insert(const std::string& context, std::vector<float> embedding, Quality quality,
              const Response& response);
  [[nodiscard]] size_t entries() const;

 private:
  struct Entry {
    std::string context;
    std::vector<float> embedding;
    Quality quality = Quality::kLow;
    Response response;
  };

  mutable std::mutex mutex_;
  double threshold_;
  size_t max_entries_;
  std::list<Entry> lru_;  // most recent first
};

}  // namespace polyinfer::inline v0::detail
