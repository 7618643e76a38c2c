// SPDX-License-Identifier: Apache-2.0
// KvCache: block pool, block tables per sequence, prefix registry and copy-on-write.
#include "runtime/kv_cache.hpp"

#include <algorithm>
#include <cstring>

#include "common/fail.hpp"

namespace polyinfer::inline v0::detail {

namespace {

constexpr uint64_t kAlignment = 64;
constexpr uint64_t kSlabTargetBytes = uint64_t{2} << 20;

uint64_t mix(uint64_t hash, uint64_t value) {
  // splitmix64 finaliser over hash ^ value: cheap and well spread.
  uint64_t z = hash ^ (value + 0x9e3779b97f4a7c15ULL + (hash << 6) + (hash >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

KvCache::KvCache(const KvCacheShape& shape, uint64_t budget_bytes, std::shared_ptr<KvMemory> memory)
    : shape_(shape), budget_bytes_(budget_bytes), memory_(std::move(memory)) {
  if (shape.layers <= 0 || shape.kv_heads <= 0 || shape.head_dim <= 0 || shape.block_rows <= 0) {
    fail(ErrorCode::kInvalidArgument, "kv cache",
         "bad shape: {} layers, {} kv heads, head_dim {}, {} rows per block", shape.layers,
         shape.kv_heads, shape.head_dim, shape.block_rows);
  }
  if (shape.type == KvType::kQ8_0 && shape.head_dim % 32 != 0) {
    fail(ErrorCode::kInvalidArgument, "kv cache",
         "a q8_0 KV cache needs head_dim a multiple of 32 (head_dim is {})", shape.head_dim);
  }
  row_bytes_ = kv_row_bytes(shape.type, shape.kv_heads, shape.head_dim);
  const uint64_t raw = static_cast<uint64_t>(shape.block_rows * shape.layers * 2) * row_bytes_;
  block_bytes_ = (raw + kAlignment - 1) / kAlignment * kAlignment;
  max_blocks_ = static_cast<int64_t>(budget_bytes / block_bytes_);
  if (max_blocks_ < 1) {
    fail(ErrorCode::kInvalidArgument, "kv cache", "a budget of {} bytes holds no block of {} bytes",
         budget_bytes, block_bytes_);
  }
  blocks_per_slab_ =
      std::clamp<int64_t>(static_cast<int64_t>(kSlabTargetBytes / block_bytes_), 1, max_blocks_);
  if (memory_) {
    // Device memory: the whole budget at once (no allocation, and no failure, mid-batch).
    std::byte* base = memory_->allocate(static_cast<uint64_t>(max_blocks_) * block_bytes_);
    if (base == nullptr) {
      fail(ErrorCode::kOutOfMemory, "kv cache", "could not allocate the {}-byte budget",
           static_cast<uint64_t>(max_blocks_) * block_bytes_);
    }
    memory_slabs_.push_back(base);
    for (int64_t i = max_blocks_ - 1; i >= 0; --i) free_.push_back(static_cast<int32_t>(i));
    for (int64_t i = 0; i < max_blocks_; ++i) {
      Block block;
      block.data = base + static_cast<uint64_t>(i) * block_bytes_;
      blocks_.push_back(std::move(block));
    }
  }
}

KvCache::~KvCache() {
  for (std::byte* slab : memory_slabs_) memory_->release(slab);
}

uint64_t KvCache::allocated_bytes() const noexcept {
  return blocks_.size() * block_bytes_;
}
uint64_t KvCache::used_bytes() const noexcept {
  return static_cast<uint64_t>(used_blocks_) * block_bytes_;
}
uint64_t KvCache::cached_bytes() const noexcept {
  return reclaimable_.size() * block_bytes_;
}

int64_t KvCache::available_blocks() const noexcept {
  return static_cast<int64_t>(free_.size() + reclaimable_.size()) + max_blocks_ -
         static_cast<int64_t>(blocks_.size());
}

int64_t KvCache::blocks_for(int64_t positions) const noexcept {
  return (positions + shape_.block_rows - 1) / shape_.block_rows;
}

KvCache::Sequence& KvCache::live(SequenceId sequence, const char* what) {
  return const_cast<Sequence&>(std::as_const(*this).live(sequence, what));
}

const KvCache::Sequence& KvCache::live(SequenceId sequence, const char* what) const {
  if (sequence < 0 || static_cast<size_t>(sequence) >= sequences_.size() ||
      !sequences_[static_cast<size_t>(sequence)].live) {
    fail(ErrorCode::kInvalidArgument, "kv cache", "{}: no live sequence {}", what, sequence);
  }
  return sequences_[static_cast<size_t>(sequence)];
}

KvCache::SequenceId KvCache::create() {
  SequenceId id;
  if (!free_sequences_.empty()) {
    id = free_sequences_.back();
    free_sequences_.pop_back();
  } else {
    id = static_cast<SequenceId>(sequences_.size());
    sequences_.emplace_back();
  }
  Sequence& s = sequences_[static_cast<size_t>(id)];
  s.live = true;
  s.blocks.clear();
  s.tokens.clear();
  s.pointers.resize(static_cast<size_t>(shape_.layers * 2));
  for (auto& pointers : s.pointers) pointers.clear();
  return id;
}

KvCache::SequenceId KvCache::fork(SequenceId source) {
  (void)live(source, "fork");
  const SequenceId id = create();
  // create() may reallocate sequences_: look the source up again.
  const Sequence& from = sequences_[static_cast<size_t>(source)];
  Sequence& to = sequences_[static_cast<size_t>(id)];
  to.tokens = from.tokens;
  const auto shared = static_cast<size_t>(blocks_for(static_cast<int64_t>(from.tokens.size())));
  const std::vector<int32_t> blocks(from.blocks.begin(), from.blocks.begin() + shared);
  for (const int32_t block : blocks) push_block(to, block);
  return id;
}

void KvCache::release(SequenceId sequence) {
  Sequence& s = live(sequence, "release");
  for (const int32_t block : s.blocks) drop_ref(block);
  s.live = false;
  s.blocks.clear();
  s.tokens.clear();
  for (auto& pointers : s.pointers) pointers.clear();
  free_sequences_.push_back(sequence);
}

int64_t KvCache::sequences() const noexcept {
  return static_cast<int64_t>(sequences_.size() - free_sequences_.size());
}

int64_t KvCache::length(SequenceId sequence) const {
  return static_cast<int64_t>(live(sequence, "length").tokens.size());
}

std::span<const int32_t> KvCache::tokens(SequenceId sequence) const {
  return live(sequence, "tokens").tokens;
}

int64_t KvCache::reuse_prefix(SequenceId sequence, std::span<const int32_t> tokens,
                              int64_t max_rows) {
  Sequence& s = live(sequence, "reuse_prefix");
  if (!s.tokens.empty() || !s.blocks.empty()) {
    fail(ErrorCode::kInvalidArgument, "kv cache", "reuse_prefix on a sequence that is not empty");
  }
  const auto rows = static_cast<size_t>(shape_.block_rows);
  int32_t parent = -1;
  for (size_t begin = 0; begin + rows <= tokens.size(); begin += rows) {
    const int32_t block = find_cached(parent, tokens.subspan(begin, rows));
    if (block < 0) break;
    push_block(s, block);
    parent = block;
  }
  const int64_t matched = static_cast<int64_t>(s.blocks.size()) * shape_.block_rows;
  const int64_t length = std::clamp<int64_t>(std::min(matched, max_rows), 0, matched);
  while (static_cast<int64_t>(s.blocks.size()) > blocks_for(length)) {
    drop_ref(s.blocks.back());
    s.blocks.pop_back();
    for (auto& pointers : s.pointers) pointers.pop_back();
  }
  s.tokens.assign(tokens.begin(), tokens.begin() + length);
  return length;
}

bool KvCache::reserve(SequenceId sequence, int64_t rows) {
  Sequence& s = live(sequence, "reserve");
  if (rows <= 0) return true;
  const auto length = static_cast<int64_t>(s.tokens.size());
  const auto capacity = static_cast<int64_t>(s.blocks.size()) * shape_.block_rows;
  // Positions [length, capacity) of the last block are about to be written: a block shared with
  // another sequence, or registered for sharing, is copied first.
  const size_t write_block = static_cast<size_t>(length / shape_.block_rows);
  bool copy = false;
  if (length < capacity) {
    const Block& block = blocks_[static_cast<size_t>(s.blocks[write_block])];
    copy = block.refs > 1 || block.registered;
  }
  const int64_t more = std::max<int64_t>(0, blocks_for(length + rows) - blocks_for(capacity));
  if (more + (copy ? 1 : 0) > available_blocks()) return false;
  if (copy) {
    const int32_t fresh = take_block();
    const int32_t old = s.blocks[write_block];
    std::byte* to = blocks_[static_cast<size_t>(fresh)].data;
    const std::byte* from = blocks_[static_cast<size_t>(old)].data;
    if (memory_) {
      memory_->copy(to, from, block_bytes_);
    } else {
      std::memcpy(to, from, block_bytes_);
    }
    add_ref(fresh);
    set_block(s, write_block, fresh);
  }
  for (int64_t i = 0; i < more; ++i) {
    push_block(s, take_block());
  }
  return true;
}

std::byte* KvCache::row(SequenceId sequence, int64_t layer, Kind kind, int64_t position) {
  Sequence& s = live(sequence, "row");
  const auto index = static_cast<size_t>(position / shape_.block_rows);
  if (position < 0 || index >= s.blocks.size() || layer < 0 || layer >= shape_.layers) {
    fail(ErrorCode::kInternal, "kv cache", "row {} of layer {} is not reserved", position, layer);
  }
  const int64_t slot =
      (2 * layer + static_cast<int64_t>(kind)) * shape_.block_rows + position % shape_.block_rows;
  return blocks_[static_cast<size_t>(s.blocks[index])].data +
         static_cast<uint64_t>(slot) * row_bytes_;
}

KvView KvCache::view(SequenceId sequence, int64_t layer, Kind kind, int64_t positions) const {
  const Sequence& s = live(sequence, "view");
  const auto& pointers = s.pointers[static_cast<size_t>(2 * layer + static_cast<int64_t>(kind))];
  if (positions > static_cast<int64_t>(pointers.size()) * shape_.block_rows) {
    fail(ErrorCode::kInternal, "kv cache", "view of {} positions exceeds the reserved blocks",
         positions);
  }
  return KvView{shape_.type,       shape_.kv_heads, shape_.head_dim,
                shape_.block_rows, pointers.data(), positions};
}

void KvCache::commit(SequenceId sequence, std::span<const int32_t> tokens) {
  Sequence& s = live(sequence, "commit");
  const auto old_length = static_cast<int64_t>(s.tokens.size());
  const int64_t new_length = old_length + static_cast<int64_t>(tokens.size());
  if (new_length > static_cast<int64_t>(s.blocks.size()) * shape_.block_rows) {
    fail(ErrorCode::kInternal, "kv cache", "commit of {} positions beyond the reserved blocks",
         new_length);
  }
  s.tokens.insert(s.tokens.end(), tokens.begin(), tokens.end());
  const auto rows = static_cast<size_t>(shape_.block_rows);
  for (auto index = static_cast<size_t>(old_length / shape_.block_rows);
       (index + 1) * rows <= static_cast<size_t>(new_length); ++index) {
    const int32_t block = s.blocks[index];
    if (blocks_[static_cast<size_t>(block)].registered) continue;
    const int32_t parent = index == 0 ? -1 : s.blocks[index - 1];
    const std::span<const int32_t> block_tokens(s.tokens.data() + index * rows, rows);
    if (const int32_t twin = find_cached(parent, block_tokens); twin >= 0) {
      add_ref(twin);  // the same prefix is cached already: share it, free ours
      set_block(s, index, twin);
    } else {
      register_block(block, parent, block_tokens);
    }
  }
}

int32_t KvCache::take_block() {
  if (free_.empty() && static_cast<int64_t>(blocks_.size()) < max_blocks_) {
    const int64_t count =
        std::min<int64_t>(blocks_per_slab_, max_blocks_ - static_cast<int64_t>(blocks_.size()));
    auto slab =
        std::make_unique<std::byte[]>(static_cast<size_t>(count) * block_bytes_ + kAlignment);
    auto address = reinterpret_cast<uintptr_t>(slab.get());
    address = (address + kAlignment - 1) / kAlignment * kAlignment;
    auto* base = reinterpret_cast<std::byte*>(address);
    for (int64_t i = count - 1; i >= 0; --i) {
      free_.push_back(static_cast<int32_t>(blocks_.size() + static_cast<size_t>(i)));
    }
    for (int64_t i = 0; i < count; ++i) {
      Block block;
      block.data = base + static_cast<uint64_t>(i) * block_bytes_;
      blocks_.push_back(std::move(block));
    }
    slabs_.push_back(std::move(slab));
  }
  if (!free_.empty()) {
    const int32_t block = free_.back();
    free_.pop_back();
    return block;
  }
  if (!reclaimable_.empty()) {
    const int32_t block = reclaimable_.begin()->second;
    reclaimable_.erase(reclaimable_.begin());
    unregister_block(block);
    return block;
  }
  fail(ErrorCode::kInternal, "kv cache", "no block left (reserve checks availability first)");
}

void KvCache::add_ref(int32_t index) {
  Block& block = blocks_[static_cast<size_t>(index)];
  if (block.refs++ == 0) {
    ++used_blocks_;
    if (block.registered) reclaimable_.erase({block.last_use, index});
  }
}

void KvCache::drop_ref(int32_t index) {
  Block& block = blocks_[static_cast<size_t>(index)];
  if (--block.refs > 0) return;
  --used_blocks_;
  if (block.registered) {
    block.last_use = ++clock_;
    reclaimable_.insert({block.last_use, index});
  } else {
    free_.push_back(index);
  }
}

void KvCache::set_block(Sequence& sequence, size_t index, int32_t block) {
  const int32_t old = sequence.blocks[index];
  sequence.blocks[index] = block;
  for (size_t slot = 0; slot < sequence.pointers.size(); ++slot) {
    sequence.pointers[slot][index] = blocks_[static_cast<size_t>(block)].data +
                                     slot * static_cast<uint64_t>(shape_.block_rows) * row_bytes_;
  }
  drop_ref(old);
}

void KvCache::push_block(Sequence& sequence, int32_t block) {
  add_ref(block);
  sequence.blocks.push_back(block);
  for (size_t slot = 0; slot < sequence.pointers.size(); ++slot) {
    sequence.pointers[slot].push_back(blocks_[static_cast<size_t>(block)].data +
                                      slot * static_cast<uint64_t>(shape_.block_rows) * row_bytes_);
  }
}

uint64_t KvCache::block_key(int32_t parent, std::span<const int32_t> tokens) const {
  uint64_t hash = mix(0x6b76636163686521ULL, static_cast<uint64_t>(static_cast<int64_t>(parent)));
  if (parent >= 0) hash = mix(hash, blocks_[static_cast<size_t>(parent)].generation);
  for (const int32_t token : tokens) hash = mix(hash, static_cast<uint32_t>(token));
  return hash;
}

int32_t KvCache::find_cached(int32_t parent, std::span<const int32_t> tokens) const {
  const uint32_t parent_generation =
      parent >= 0 ? blocks_[static_cast<size_t>(parent)].generation : 0;
  const auto [first, last] = registered_.equal_range(block_key(parent, tokens));
  for (auto it = first; it != last; ++it) {
    const Block& block = blocks_[static_cast<size_t>(it->second)];
    if (block.parent == parent && block.parent_generation == parent_generation &&
        std::equal(tokens.begin(), tokens.end(), block.tokens.begin(), block.tokens.end())) {
      return it->second;
    }
  }
  return -1;
}

void KvCache::register_block(int32_t index, int32_t parent, std::span<const int32_t> tokens) {
  Block& block = blocks_[static_cast<size_t>(index)];
  block.registered = true;
  block.key = block_key(parent, tokens);
  block.parent = parent;
  block.parent_generation = parent >= 0 ? blocks_[static_cast<size_t>(parent)].generation : 0;
  block.tokens.assign(tokens.begin(), tokens.end());
  registered_.emplace(block.key, index);
}

void KvCache::unregister_block(int32_t index) {
  Block& block = blocks_[static_cast<size_t>(index)];
  const auto [first, last] = registered_.equal_range(block.key);
  for (auto it = first; it != last; ++it) {
    if (it->second == index) {
      registered_.erase(it);
      break;
    }
  }
  block.registered = false;
  block.tokens.clear();
  block.parent = -1;
  ++block.generation;
}

}  // namespace polyinfer::inline v0::detail
