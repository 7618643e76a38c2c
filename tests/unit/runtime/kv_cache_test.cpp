// SPDX-License-Identifier: Apache-2.0
// KvCache: block accounting, prefix registry, copy-on-write, reclaiming, running out.
#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <numeric>
#include <vector>

#include "polyinfer/error.hpp"
#include "runtime/kv_cache.hpp"

namespace {

using polyinfer::detail::KvCache;
using polyinfer::detail::KvCacheShape;
using polyinfer::detail::KvType;
using Kind = KvCache::Kind;

const KvCacheShape kShape{
    .layers = 2, .kv_heads = 2, .head_dim = 32, .type = KvType::kF32, .block_rows = 4};

std::vector<int32_t> iota_tokens(int count, int first = 100) {
  std::vector<int32_t> tokens(static_cast<size_t>(count));
  std::iota(tokens.begin(), tokens.end(), first);
  return tokens;
}

/// Writes `position` + 1000·layer + 10000·kind into the first float of every row.
void fill(KvCache& cache, KvCache::SequenceId sequence, int64_t from, int64_t to) {
  for (int64_t p = from; p < to; ++p) {
    for (int64_t layer = 0; layer < kShape.layers; ++layer) {
      for (const Kind kind : {Kind::kKeys, Kind::kValues}) {
        const float marker = static_cast<float>(p + 1000 * layer + 10000 * static_cast<int>(kind));
        std::memcpy(cache.row(sequence, layer, kind, p), &marker, sizeof marker);
      }
    }
  }
}

float marker_at(const KvCache& cache, KvCache::SequenceId sequence, int64_t layer, Kind kind,
                int64_t position) {
  const auto view = cache.view(sequence, layer, kind, position + 1);
  const std::byte* block = view.blocks[position / view.block_rows];
  float value;
  std::memcpy(&value, block + (position % view.block_rows) * cache.row_bytes(), sizeof value);
  return value;
}

}  // namespace

TEST_CASE("KvCache: blocks, rows and views", "[kv_cache]") {
  KvCache cache(kShape, 64 * 4096);
  CHECK(cache.row_bytes() == 2 * 32 * 4);
  CHECK(cache.block_bytes() == 4 * 2 * 2 * 256);
  CHECK(cache.blocks_for(0) == 0);
  CHECK(cache.blocks_for(9) == 3);
  const auto sequence = cache.create();
  REQUIRE(cache.reserve(sequence, 10));
  CHECK(cache.used_bytes() == 3 * cache.block_bytes());
  CHECK(cache.length(sequence) == 0);
  fill(cache, sequence, 0, 10);
  cache.commit(sequence, iota_tokens(10));
  CHECK(cache.length(sequence) == 10);
  CHECK(cache.tokens(sequence).size() == 10);
  for (int64_t p : {0, 3, 4, 9}) {
    CHECK(marker_at(cache, sequence, 1, Kind::kValues, p) == static_cast<float>(p + 11000));
    CHECK(marker_at(cache, sequence, 0, Kind::kKeys, p) == static_cast<float>(p));
  }
  const auto view = cache.view(sequence, 1, Kind::kKeys, 10);
  CHECK(view.positions == 10);
  CHECK(view.kv_heads == 2);
  CHECK(view.block_rows == 4);
  CHECK_THROWS_AS(cache.view(sequence, 0, Kind::kKeys, 13), polyinfer::Error);
  CHECK_THROWS_AS(cache.length(99), polyinfer::Error);
  cache.release(sequence);
  CHECK_THROWS_AS(cache.length(sequence), polyinfer::Error);
  CHECK(cache.used_bytes() == 0);
  CHECK(cache.cached_bytes() == 2 * cache.block_bytes());  // the two full blocks stay cached
}

TEST_CASE("KvCache: prefixes are shared by whole blocks", "[kv_cache]") {
  KvCache cache(kShape, 64 * 4096);
  const auto first = cache.create();
  REQUIRE(cache.reserve(first, 10));
  fill(cache, first, 0, 10);
  cache.commit(first, iota_tokens(10));

  // While the first sequence lives: a second shares its two full blocks.
  const auto second = cache.create();
  std::vector<int32_t> prompt = iota_tokens(10);
  prompt.push_back(7);
  CHECK(cache.reuse_prefix(second, prompt, 100) == 8);
  CHECK(cache.used_bytes() == 3 * cache.block_bytes());  // nothing new
  CHECK(marker_at(cache, second, 1, Kind::kKeys, 7) == 1007.0f);
  CHECK(cache.view(second, 0, Kind::kKeys, 8).blocks[1] ==
        cache.view(first, 0, Kind::kKeys, 8).blocks[1]);

  // A different token in the second block: only the first block matches.
  const auto third = cache.create();
  std::vector<int32_t> other = iota_tokens(10);
  other[5] = 1;
  CHECK(cache.reuse_prefix(third, other, 100) == 4);
  // max_rows cuts inside a shared block: the block is kept, the length is cut.
  const auto fourth = cache.create();
  CHECK(cache.reuse_prefix(fourth, prompt, 6) == 6);
  CHECK(cache.tokens(fourth).size() == 6);
  CHECK_THROWS_AS(cache.reuse_prefix(fourth, prompt, 6), polyinfer::Error);  // not empty

  // Writing position 6 of the shared block copies it; the original keeps its rows.
  const void* before = cache.view(fourth, 0, Kind::kKeys, 6).blocks[1];
  REQUIRE(cache.reserve(fourth, 1));
  const void* after = cache.view(fourth, 0, Kind::kKeys, 7).blocks[1];
  CHECK(before != after);
  CHECK(marker_at(cache, fourth, 0, Kind::kValues, 5) == 10005.0f);  // copied
  const float overwrite = -1.0f;
  std::memcpy(cache.row(fourth, 0, Kind::kKeys, 6), &overwrite, sizeof overwrite);
  CHECK(marker_at(cache, first, 0, Kind::kKeys, 6) == 6.0f);
  CHECK(marker_at(cache, second, 0, Kind::kKeys, 6) == 6.0f);
}

TEST_CASE("KvCache: fork shares blocks and copies the partial last block on write", "[kv_cache]") {
  KvCache cache(kShape, 64 * 4096);
  const auto parent = cache.create();
  REQUIRE(cache.reserve(parent, 6));
  fill(cache, parent, 0, 6);
  cache.commit(parent, iota_tokens(6));
  const uint64_t used = cache.used_bytes();
  const auto child = cache.fork(parent);
  CHECK(cache.used_bytes() == used);
  CHECK(cache.length(child) == 6);
  REQUIRE(cache.reserve(child, 1));
  CHECK(cache.used_bytes() == used + cache.block_bytes());
  const float value = 42.0f;
  std::memcpy(cache.row(child, 1, Kind::kValues, 5), &value, sizeof value);  // copied rows
  CHECK(marker_at(cache, parent, 1, Kind::kValues, 5) == 11005.0f);
  CHECK(marker_at(cache, child, 1, Kind::kValues, 4) == 11004.0f);
  // The parent writes too: its block is no longer shared, so no copy.
  REQUIRE(cache.reserve(parent, 1));
  CHECK(cache.used_bytes() == used + cache.block_bytes());
}

TEST_CASE("KvCache: an identical block committed twice is stored once", "[kv_cache]") {
  KvCache cache(kShape, 64 * 4096);
  const auto a = cache.create();
  const auto b = cache.create();
  REQUIRE(cache.reserve(a, 4));
  REQUIRE(cache.reserve(b, 4));
  CHECK(cache.used_bytes() == 2 * cache.block_bytes());
  cache.commit(a, iota_tokens(4));
  cache.commit(b, iota_tokens(4));
  CHECK(cache.used_bytes() == cache.block_bytes());
  CHECK(cache.view(a, 0, Kind::kKeys, 4).blocks[0] == cache.view(b, 0, Kind::kKeys, 4).blocks[0]);
}

TEST_CASE("KvCache: running out is a status, and cached blocks are reclaimed oldest first",
          "[kv_cache]") {
  KvCache cache(kShape, 3 * 4096);
  CHECK(cache.available_blocks() == 3);
  const auto big = cache.create();
  CHECK_FALSE(cache.reserve(big, 13));  // 4 blocks
  CHECK(cache.length(big) == 0);
  CHECK(cache.used_bytes() == 0);
  cache.release(big);

  // Two cached prefixes of one block each, the first older.
  for (int first_token : {100, 200}) {
    const auto sequence = cache.create();
    REQUIRE(cache.reserve(sequence, 4));
    cache.commit(sequence, iota_tokens(4, first_token));
    cache.release(sequence);
  }
  CHECK(cache.cached_bytes() == 2 * cache.block_bytes());
  // Needing three blocks reclaims both cached ones, the older first.
  const auto sequence = cache.create();
  REQUIRE(cache.reserve(sequence, 8));
  CHECK(cache.cached_bytes() == cache.block_bytes());
  const auto probe = cache.create();
  CHECK(cache.reuse_prefix(probe, iota_tokens(4, 100), 4) == 0);  // reclaimed
  cache.release(probe);
  const auto probe2 = cache.create();
  CHECK(cache.reuse_prefix(probe2, iota_tokens(4, 200), 4) == 4);  // still cached
  CHECK_FALSE(cache.reserve(sequence, 9));  // all three blocks are in use now
  CHECK(cache.allocated_bytes() == 3 * cache.block_bytes());
}

TEST_CASE("KvCache: bad shapes and budgets are errors", "[kv_cache]") {
  KvCacheShape q8 = kShape;
  q8.type = KvType::kQ8_0;
  q8.head_dim = 16;
  CHECK_THROWS_AS(KvCache(q8, 1 << 20), polyinfer::Error);
  CHECK_THROWS_AS(KvCache(kShape, 100), polyinfer::Error);
  KvCacheShape empty = kShape;
  empty.layers = 0;
  CHECK_THROWS_AS(KvCache(empty, 1 << 20), polyinfer::Error);
  q8.head_dim = 32;
  const KvCache cache(q8, 1 << 20);
  CHECK(cache.row_bytes() == 2 * 34);
}

namespace {

/// Host memory behind the KvMemory interface, counting what the cache asks of it (a GPU's
/// memory in production): the cache must allocate once, copy shared blocks through it, and
/// release what it took.
class CountingMemory final : public polyinfer::detail::KvMemory {
 public:
  std::byte* allocate(uint64_t bytes) noexcept override {
    ++allocations;
    if (bytes > limit) return nullptr;
    buffers.push_back(std::make_unique<std::byte[]>(bytes));
    return buffers.back().get();
  }
  void release(std::byte* data) noexcept override {
    ++releases;
    released = data;
  }
  void copy(std::byte* dst, const std::byte* src, uint64_t bytes) override {
    ++copies;
    std::memcpy(dst, src, bytes);
  }

  uint64_t limit = uint64_t{1} << 30;
  int allocations = 0;
  int releases = 0;
  int copies = 0;
  std::byte* released = nullptr;
  std::vector<std::unique_ptr<std::byte[]>> buffers;
};

}  // namespace

TEST_CASE("KvCache: blocks in a KvMemory (device memory) behave as host blocks", "[kv_cache]") {
  auto memory = std::make_shared<CountingMemory>();
  {
    KvCache cache(kShape, 64 * 4096, memory);
    CHECK(memory->allocations == 1);  // the whole budget up front
    const std::byte* base = memory->buffers.front().get();
    const auto parent = cache.create();
    REQUIRE(cache.reserve(parent, 6));
    fill(cache, parent, 0, 6);
    // Rows and views point into the memory's allocation.
    const std::byte* row = cache.row(parent, 1, Kind::kKeys, 5);
    CHECK(row >= base);
    CHECK(row < base + 64 * 4096);
    cache.commit(parent, iota_tokens(6));
    // Copy-on-write of the shared partial block goes through the memory's copy.
    const auto child = cache.fork(parent);
    REQUIRE(cache.reserve(child, 1));
    CHECK(memory->copies == 1);
    CHECK(marker_at(cache, child, 1, Kind::kValues, 5) == 11005.0f);
    // Prefix reuse shares blocks without copying.
    const auto other = cache.create();
    CHECK(cache.reuse_prefix(other, iota_tokens(6), 6) == 4);
    CHECK(marker_at(cache, other, 0, Kind::kKeys, 3) == 3.0f);
    CHECK(memory->copies == 1);
    CHECK(cache.allocated_bytes() ==
          static_cast<uint64_t>(64 * 4096 / cache.block_bytes()) * cache.block_bytes());
  }
  CHECK(memory->releases == 1);
  CHECK(memory->released == memory->buffers.front().get());
}

TEST_CASE("KvCache: a KvMemory without room for the budget is a clear error", "[kv_cache]") {
  auto memory = std::make_shared<CountingMemory>();
  memory->limit = 1024;
  CHECK_THROWS_WITH(KvCache(kShape, 64 * 4096, memory),
                    Catch::Contains("could not allocate") && Catch::Contains("kv cache"));
}
