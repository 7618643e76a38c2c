// SPDX-License-Identifier: Apache-2.0
// Batch: what one forward pass computes: a chunk of new tokens for each of several sequences.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "runtime/kv_cache.hpp"

namespace polyinfer::inline v0::detail {

/// Which logits a batch entry asks for.
enum class LogitsRows {
  kNone,  ///< none (a prompt chunk that is not the last)
  kLast,  ///< the last token's (generation)
  kAll,   ///< every token's (scoring, conformance)
};

/// One sequence's share of a forward pass: `tokens` go to the sequence's next positions
/// (KvCache::length onwards). A sequence appears at most once per batch.
struct BatchEntry {
  KvCache::SequenceId sequence = -1;
  std::span<const int32_t> tokens;
  LogitsRows logits = LogitsRows::kLast;
};

/// Rows of logits a batch produces, entry by entry, in order.
[[nodiscard]] inline int64_t logits_rows(std::span<const BatchEntry> batch) noexcept {
  int64_t rows = 0;
  for (const BatchEntry& entry : batch) {
    rows += entry.logits == LogitsRows::kAll    ? static_cast<int64_t>(entry.tokens.size())
            : entry.logits == LogitsRows::kLast ? 1
                                                : 0;
  }
  return rows;
}

}  // namespace polyinfer::inline v0::detail
