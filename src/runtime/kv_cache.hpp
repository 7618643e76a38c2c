// SPDX-License-Identifier: Apache-2.0
// KvCache: a paged KV cache of fixed-size blocks with reference-counted prefix sharing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kernels/ops.hpp"

namespace polyinfer::inline v0::detail {

/// What one model's cache rows look like.
struct KvCacheShape {
  int64_t layers = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  KvType type = KvType::kF16;
  int64_t block_rows = 16;  ///< positions per block
};

/// Where a KvCache keeps its blocks when not in host memory (a GPU's memory, say).
class KvMemory {
 public:
  virtual ~KvMemory() = default;
  /// `bytes` bytes, 256-byte aligned; null when there is no more memory.
  [[nodiscard]] virtual std::byte* allocate(uint64_t bytes) noexcept = 0;
  virtual void release(std::byte* data) noexcept = 0;
  /// Copies `bytes` bytes between two allocations (copy-on-write of a shared block).
  virtual void copy(std::byte* dst, const std::byte* src, uint64_t bytes) = 0;
};

/// Keys and values of every layer, for many sequences, in blocks of `block_rows` positions.
/// A block holds, for its positions, K and V rows of every layer: layer l's keys at
/// [2l · block_rows, (2l + 1) · block_rows) rows, its values next.
///
/// Prefix sharing: a block filled by a sequence is registered under its tokens and the block
/// before it, so another sequence starting with the same tokens reuses it (reuse_prefix).
/// Registered blocks are immutable; writing into a shared or registered block copies it first.
/// Released registered blocks stay cached until their memory is needed (least recently used
/// first). Memory comes from the budget in slabs; running out is a status, never a crash.
///
/// Not thread-safe: one owner (a model's caller, or the Engine's scheduler thread) uses it.
class KvCache {
 public:
  using SequenceId = int32_t;
  enum class Kind { kKeys = 0, kValues = 1 };

  /// Throws Error(kInvalidArgument) for a shape the KV kernels cannot hold. Blocks live in host
  /// memory, or in `memory` when given: row() and view() then return its pointers.
  KvCache(const KvCacheShape& shape, uint64_t budget_bytes,
          std::shared_ptr<KvMemory> memory = nullptr);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  [[nodiscard]] const KvCacheShape& shape() const noexcept { return shape_; }
  /// Bytes of one K or V row (kv_heads × head_dim values) and of a whole block.
  [[nodiscard]] uint64_t row_bytes() const noexcept { return row_bytes_; }
  [[nodiscard]] uint64_t block_bytes() const noexcept { return block_bytes_; }
  [[nodiscard]] uint64_t budget_bytes() const noexcept { return budget_bytes_; }
  /// Bytes of the slabs allocated so far.
  [[nodiscard]] uint64_t allocated_bytes() const noexcept;
  /// Bytes of blocks held by sequences.
  [[nodiscard]] uint64_t used_bytes() const noexcept;
  /// Bytes of blocks held only by the prefix cache (reclaimable).
  [[nodiscard]] uint64_t cached_bytes() const noexcept;
  /// Blocks that reserve() could still obtain (free, reclaimable or within the budget).
  [[nodiscard]] int64_t available_blocks() const noexcept;
  /// Blocks a sequence needs for `positions` positions.
  [[nodiscard]] int64_t blocks_for(int64_t positions) const noexcept;

  /// A new empty sequence.
  [[nodiscard]] SequenceId create();
  /// A new sequence sharing every block (and token) of `source`; writes copy on demand.
  [[nodiscard]] SequenceId fork(SequenceId source);
  /// Drops a sequence; its registered blocks stay in the prefix cache.
  void release(SequenceId sequence);
  /// Live sequences.
  [[nodiscard]] int64_t sequences() const noexcept;

  /// Positions written and committed.
  [[nodiscard]] int64_t length(SequenceId sequence) const;
  /// The tokens of those positions.
  [[nodiscard]] std::span<const int32_t> tokens(SequenceId sequence) const;

  /// For an empty sequence: shares the cached blocks that hold a prefix of `tokens`, whole
  /// blocks only, and sets the length to min(rows matched, max_rows). Returns that length.
  int64_t reuse_prefix(SequenceId sequence, std::span<const int32_t> tokens, int64_t max_rows);

  /// Makes positions [length, length + rows) writable: allocates blocks and copies a shared
  /// last block. False when the memory is not there; the sequence is then unchanged.
  [[nodiscard]] bool reserve(SequenceId sequence, int64_t rows);
  /// Row `position` (reserved) of layer `layer` keys or values.
  [[nodiscard]] std::byte* row(SequenceId sequence, int64_t layer, Kind kind, int64_t position);
  /// Rows [0, positions) of layer `layer` keys or values, for attention().
  [[nodiscard]] KvView view(SequenceId sequence, int64_t layer, Kind kind, int64_t positions) const;
  /// Marks the next tokens.size() reserved positions as written with these tokens; blocks that
  /// become full are registered for prefix sharing.
  void commit(SequenceId sequence, std::span<const int32_t> tokens);

 private:
  struct Block {
    std::byte* data = nullptr;
    int32_t refs = 0;
    uint32_t generation = 0;  // bumped when a block is reclaimed: stale parent links mismatch
    bool registered = false;
    uint64_t key = 0;
    int32_t parent = -1;
    uint32_t parent_generation = 0;
    std::vector<int32_t> tokens;  // the block's tokens while registered
    uint64_t last_use = 0;
  };
  struct Sequence {
    bool live = false;
    std::vector<int32_t> blocks;
    std::vector<int32_t> tokens;
    // Per layer and kind (index 2·layer + kind): one pointer per block, for KvView.
    std::vector<std::vector<const std::byte*>> pointers;
  };

  [[nodiscard]] Sequence& live(SequenceId sequence, const char* what);
  [[nodiscard]] const Sequence& live(SequenceId sequence, const char* what) const;
  [[nodiscard]] int32_t take_block();  // -1 when none can be had
  void add_ref(int32_t block);
  void drop_ref(int32_t block);
  void set_block(Sequence& sequence, size_t index, int32_t block);
  void push_block(Sequence& sequence, int32_t block);
  [[nodiscard]] uint64_t block_key(int32_t parent, std::span<const int32_t> tokens) const;
  [[nodiscard]] int32_t find_cached(int32_t parent, std::span<const int32_t> tokens) const;
  void register_block(int32_t block, int32_t parent, std::span<const int32_t> tokens);
  void unregister_block(int32_t block);

  KvCacheShape shape_;
  uint64_t row_bytes_ = 0;
  uint64_t block_bytes_ = 0;
  uint64_t budget_bytes_ = 0;
  int64_t max_blocks_ = 0;
  int64_t blocks_per_slab_ = 0;
  std::shared_ptr<KvMemory> memory_;
  std::vector<std::unique_ptr<std::byte[]>> slabs_;  // host memory
  std::vector<std::byte*> memory_slabs_;             // from memory_
  std::vector<Block> blocks_;
  std::vector<int32_t> free_;                              // refs 0, not registered
  std::set<std::pair<uint64_t, int32_t>> reclaimable_;     // (last_use, block): refs 0, registered
  std::unordered_multimap<uint64_t, int32_t> registered_;  // key → block
  std::vector<Sequence> sequences_;
  std::vector<SequenceId> free_sequences_;
  int64_t used_blocks_ = 0;
  uint64_t clock_ = 0;
};

}  // namespace polyinfer::inline v0::detail
