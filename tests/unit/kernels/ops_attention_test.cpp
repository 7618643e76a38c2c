// SPDX-License-Identifier: Apache-2.0
// KV rows (f32 / f16 / q8_0) and grouped-query attention over paged views, at every ISA level
// against kernels/ref; causal masking, scattered blocks, thread-pool splitting, error bounds.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/common/block_formats.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "kernels/ops.hpp"
#include "kernels/ref/ops_ref.hpp"
#include "ops_test_support.hpp"

namespace polyinfer::detail {
namespace {

using test_ops::gaussian;
using test_ops::isa_levels;
using test_ops::IsaScope;

const char* kv_name(KvType type) {
  switch (type) {
    case KvType::kF32:
      return "f32";
    case KvType::kF16:
      return "f16";
    case KvType::kQ8_0:
      return "q8_0";
  }
  return "?";
}

/// A paged cache of `rows` rows whose blocks sit in a pool in shuffled order, with unused
/// blocks between them: a kernel that assumes contiguous blocks reads the wrong rows.
struct PagedKv {
  std::vector<std::byte> pool;
  std::vector<const std::byte*> blocks;
  KvView view;

  PagedKv(KvType type, const std::vector<float>& values, int64_t rows, int64_t kv_heads,
          int64_t head_dim, int64_t block_rows, uint32_t seed) {
    const uint64_t row_bytes = kv_row_bytes(type, kv_heads, head_dim);
    const int64_t block_count = (rows + block_rows - 1) / block_rows;
    const uint64_t block_bytes = row_bytes * static_cast<uint64_t>(block_rows);
    pool.assign(block_bytes * static_cast<uint64_t>(2 * block_count + 1), std::byte{0xA5});
    std::vector<int64_t> slots(static_cast<size_t>(2 * block_count + 1));
    std::iota(slots.begin(), slots.end(), 0);
    std::shuffle(slots.begin(), slots.end(), std::mt19937(seed));
    for (int64_t b = 0; b < block_count; ++b) {
      blocks.push_back(pool.data() +
                       static_cast<uint64_t>(slots[static_cast<size_t>(b)]) * block_bytes);
    }
    for (int64_t r = 0; r < rows; ++r) {
      auto* dst = const_cast<std::byte*>(blocks[static_cast<size_t>(r / block_rows)]) +
                  static_cast<uint64_t>(r % block_rows) * row_bytes;
      ref::kv_store(type, &values[static_cast<size_t>(r * kv_heads * head_dim)], 1, kv_heads,
                    head_dim, dst);
    }
    view.type = type;
    view.kv_heads = kv_heads;
    view.head_dim = head_dim;
    view.block_rows = block_rows;
    view.blocks = blocks.data();
    view.positions = rows;
  }
};

TEST_CASE("kv_row_bytes per type", "[kernels][ops]") {
  CHECK(kv_row_bytes(KvType::kF32, 8, 64) == 2048);
  CHECK(kv_row_bytes(KvType::kF16, 8, 64) == 1024);
  CHECK(kv_row_bytes(KvType::kQ8_0, 8, 64) == 16 * sizeof(BlockQ8_0));
  CHECK(kv_row_bytes(KvType::kQ8_0, 2, 32) == 2 * 34);
}

TEST_CASE("kv_store writes the reference bytes at every ISA level", "[kernels][ops]") {
  constexpr int64_t kRows = 5;
  constexpr int64_t kKvHeads = 2;
  for (const int64_t head_dim : {int64_t{32}, int64_t{64}, int64_t{128}}) {
    std::vector<float> src = gaussian(static_cast<size_t>(kRows * kKvHeads * head_dim), 11);
    // One block with amax 127 (d = 1, 1/d = 1): exact halves test the rounding, which must be
    // std::round's (half away from zero), not the vector default (half to even).
    const float halves[] = {127.0f, 2.5f, -3.5f, 0.5f, -0.5f, 1.5f, -2.5f, 126.5f};
    std::copy(std::begin(halves), std::end(halves), src.begin() + 32);
    std::fill(src.begin() + 64, src.begin() + 96, 0.0f);  // an all-zero block: d = 0
    src[100] = 70000.0f;                                  // beyond f16 range: infinity
    for (const KvType type : {KvType::kF32, KvType::kF16, KvType::kQ8_0}) {
      const uint64_t bytes = kv_row_bytes(type, kKvHeads, head_dim) * kRows;
      std::vector<std::byte> want(bytes);
      ref::kv_store(type, src.data(), kRows, kKvHeads, head_dim, want.data());
      for (const Isa isa : isa_levels()) {
        IsaScope scope(isa);
        CAPTURE(isa_name(isa), kv_name(type), head_dim);
        std::vector<std::byte> got(bytes);
        kv_store(type, src.data(), kRows, kKvHeads, head_dim, got.data());
        CHECK(got == want);
      }
    }
  }
}

struct Shape {
  int64_t heads;
  int64_t kv_heads;
  int64_t head_dim;
};

constexpr Shape kShapes[] = {{8, 2, 32}, {8, 2, 64}, {6, 2, 128}, {4, 4, 64}, {8, 2, 128}};

TEST_CASE("attention matches the reference on the same cache at every ISA level",
          "[kernels][ops][attention]") {
  constexpr int64_t kCached = 77;     // rows in the cache
  constexpr int64_t kBlockRows = 16;  // positions cross block boundaries at 16, 32, 48, 64
  const std::vector<int32_t> positions = {0, 15, 16, 40, 63, 64, 76};
  const auto tokens = static_cast<int64_t>(positions.size());
  for (const Shape& shape : kShapes) {
    const int64_t row_values = shape.kv_heads * shape.head_dim;
    const std::vector<float> keys = gaussian(static_cast<size_t>(kCached * row_values), 12);
    const std::vector<float> values = gaussian(static_cast<size_t>(kCached * row_values), 13);
    const std::vector<float> q =
        gaussian(static_cast<size_t>(tokens * shape.heads * shape.head_dim), 14, 0.5f);
    for (const KvType type : {KvType::kF32, KvType::kF16, KvType::kQ8_0}) {
      const PagedKv k(type, keys, kCached, shape.kv_heads, shape.head_dim, kBlockRows, 1);
      const PagedKv v(type, values, kCached, shape.kv_heads, shape.head_dim, kBlockRows, 2);
      for (const bool causal : {true, false}) {
        std::vector<float> want(q.size());
        ref::attention(q.data(), tokens, shape.heads, k.view, v.view, positions.data(), causal,
                       0.0f, want.data(), nullptr);
        for (const Isa isa : isa_levels()) {
          IsaScope scope(isa);
          CAPTURE(isa_name(isa), kv_name(type), shape.heads, shape.kv_heads, shape.head_dim,
                  causal);
          std::vector<float> got(q.size(), std::numeric_limits<float>::quiet_NaN());
          attention(q.data(), tokens, shape.heads, k.view, v.view, positions.data(), causal, 0.0f,
                    got.data(), nullptr);
          CHECK(test_ops::max_abs_error(got, want) < 2e-6);
        }
      }
    }
  }
}

TEST_CASE("attention: groups above 8 heads, head sizes off the vector width, block sizes",
          "[kernels][ops][attention]") {
  // 20 query heads on 2 kv heads (groups of 10: split 8 + 2); head_dim 36 leaves a tail at
  // every width; block_rows 1 and 5 make every row or every fifth row a block boundary.
  const Shape shape{20, 2, 36};
  constexpr int64_t kCached = 23;
  const std::vector<int32_t> positions = {3, 22};
  const int64_t row_values = shape.kv_heads * shape.head_dim;
  const std::vector<float> keys = gaussian(static_cast<size_t>(kCached * row_values), 15);
  const std::vector<float> values = gaussian(static_cast<size_t>(kCached * row_values), 16);
  const std::vector<float> q = gaussian(static_cast<size_t>(2 * shape.heads * shape.head_dim), 17);
  for (const int64_t block_rows : {int64_t{1}, int64_t{5}}) {
    for (const KvType type : {KvType::kF32, KvType::kF16}) {
      const PagedKv k(type, keys, kCached, shape.kv_heads, shape.head_dim, block_rows, 3);
      const PagedKv v(type, values, kCached, shape.kv_heads, shape.head_dim, block_rows, 4);
      std::vector<float> want(q.size());
      ref::attention(q.data(), 2, shape.heads, k.view, v.view, positions.data(), true, 0.3f,
                     want.data(), nullptr);
      for (const Isa isa : isa_levels()) {
        IsaScope scope(isa);
        CAPTURE(isa_name(isa), kv_name(type), block_rows);
        std::vector<float> got(q.size());
        attention(q.data(), 2, shape.heads, k.view, v.view, positions.data(), true, 0.3f,
                  got.data(), nullptr);
        CHECK(test_ops::max_abs_error(got, want) < 2e-6);
      }
    }
  }
}

TEST_CASE("attention never reads cache rows after the query's position",
          "[kernels][ops][attention]") {
  const Shape shape{8, 2, 64};
  constexpr int64_t kCached = 50;
  const int64_t row_values = shape.kv_heads * shape.head_dim;
  std::vector<float> keys = gaussian(static_cast<size_t>(kCached * row_values), 18);
  std::vector<float> values = gaussian(static_cast<size_t>(kCached * row_values), 19);
  const std::vector<float> q = gaussian(static_cast<size_t>(shape.heads * shape.head_dim), 20);
  const int32_t position = 29;
  // The truth: a cache of exactly position + 1 rows, attended to without a mask.
  const PagedKv k_short(KvType::kF32, keys, position + 1, shape.kv_heads, shape.head_dim, 8, 5);
  const PagedKv v_short(KvType::kF32, values, position + 1, shape.kv_heads, shape.head_dim, 8, 6);
  std::vector<float> want(q.size());
  ref::attention(q.data(), 1, shape.heads, k_short.view, v_short.view, nullptr, false, 0.0f,
                 want.data(), nullptr);
  // The full cache with NaN in every row after the position: one read of them poisons the sum.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::fill(keys.begin() + (position + 1) * row_values, keys.end(), nan);
  std::fill(values.begin() + (position + 1) * row_values, values.end(), nan);
  const PagedKv k(KvType::kF32, keys, kCached, shape.kv_heads, shape.head_dim, 8, 7);
  const PagedKv v(KvType::kF32, values, kCached, shape.kv_heads, shape.head_dim, 8, 8);
  for (const Isa isa : isa_levels()) {
    IsaScope scope(isa);
    CAPTURE(isa_name(isa));
    std::vector<float> got(q.size());
    attention(q.data(), 1, shape.heads, k.view, v.view, &position, true, 0.0f, got.data(), nullptr);
    CHECK(test_ops::max_abs_error(got, want) < 2e-6);
  }
}

TEST_CASE("attention error per KV type against an f32 cache", "[kernels][ops][attention]") {
  // Stated bounds on max |out − out_f32| for unit-variance K, V and q, 300 cached rows:
  // f32 2e−6 (rounding only), f16 1e−3 (11-bit mantissas; measured 1.2e−4), q8_0 1e−2
  // (8-bit blocks with an f16 scale; measured 3.1e−3).
  constexpr int64_t kCached = 300;
  const std::vector<int32_t> positions = {299};
  for (const Shape& shape : kShapes) {
    const int64_t row_values = shape.kv_heads * shape.head_dim;
    const std::vector<float> keys = gaussian(static_cast<size_t>(kCached * row_values), 21);
    const std::vector<float> values = gaussian(static_cast<size_t>(kCached * row_values), 22);
    const std::vector<float> q = gaussian(static_cast<size_t>(shape.heads * shape.head_dim), 23);
    const PagedKv k32(KvType::kF32, keys, kCached, shape.kv_heads, shape.head_dim, 32, 9);
    const PagedKv v32(KvType::kF32, values, kCached, shape.kv_heads, shape.head_dim, 32, 10);
    std::vector<float> want(q.size());
    ref::attention(q.data(), 1, shape.heads, k32.view, v32.view, positions.data(), true, 0.0f,
                   want.data(), nullptr);
    for (const auto& [type, bound] : {std::pair{KvType::kF32, 2e-6}, std::pair{KvType::kF16, 1e-3},
                                      std::pair{KvType::kQ8_0, 1e-2}}) {
      const PagedKv k(type, keys, kCached, shape.kv_heads, shape.head_dim, 32, 11);
      const PagedKv v(type, values, kCached, shape.kv_heads, shape.head_dim, 32, 12);
      for (const Isa isa : isa_levels()) {
        IsaScope scope(isa);
        CAPTURE(isa_name(isa), kv_name(type), shape.heads, shape.kv_heads, shape.head_dim);
        std::vector<float> got(q.size());
        attention(q.data(), 1, shape.heads, k.view, v.view, positions.data(), true, 0.0f,
                  got.data(), nullptr);
        CHECK(test_ops::max_abs_error(got, want) < bound);
      }
    }
  }
}

TEST_CASE("attention split over a thread pool equals the single-threaded result",
          "[kernels][ops][attention]") {
  const Shape shape{8, 2, 64};
  constexpr int64_t kCached = 130;
  std::vector<int32_t> positions(33);
  std::iota(positions.begin(), positions.end(), 97);  // a prompt chunk at the end of the cache
  const auto tokens = static_cast<int64_t>(positions.size());
  const int64_t row_values = shape.kv_heads * shape.head_dim;
  const std::vector<float> keys = gaussian(static_cast<size_t>(kCached * row_values), 24);
  const std::vector<float> values = gaussian(static_cast<size_t>(kCached * row_values), 25);
  const std::vector<float> q =
      gaussian(static_cast<size_t>(tokens * shape.heads * shape.head_dim), 26);
  const PagedKv k(KvType::kF16, keys, kCached, shape.kv_heads, shape.head_dim, 16, 13);
  const PagedKv v(KvType::kF16, values, kCached, shape.kv_heads, shape.head_dim, 16, 14);
  ThreadPool pool(3);
  for (const Isa isa : isa_levels()) {
    IsaScope scope(isa);
    CAPTURE(isa_name(isa));
    std::vector<float> single(q.size()), split(q.size());
    attention(q.data(), tokens, shape.heads, k.view, v.view, positions.data(), true, 0.0f,
              single.data(), nullptr);
    attention(q.data(), tokens, shape.heads, k.view, v.view, positions.data(), true, 0.0f,
              split.data(), &pool);
    CHECK(split == single);
  }
}

}  // namespace
}  // namespace polyinfer::detail
