// SPDX-License-Identifier: Apache-2.0
// GPU paged-KV store and split-K attention against kernels/ref: GQA groups below, at and above
// a block's 8 heads, causal limits at 0 and at the end, several splits, head_dim 32..256. Decode
// steps (≤ 8 tokens) over f16 rows of ≤ 128 dims run on the tensor cores, except one token over
// ≤ 256 rows; scripts/gpu_models.sh reruns these with POLYINFER_GPU_ATTN_MMA=0 and =1.
#include <algorithm>
#include <cstring>
#include <memory>

#include "kernels/ref/ops_ref.hpp"
#include "tests/cuda/check.hpp"

namespace polyinfer::detail::gpu_test {
namespace {

// f32 scores and online-softmax sums against double: ~1e-6 of the value scale.
constexpr double kTolerance = 1e-4;

// One sequence's keys or values: the same f16 bytes in host blocks (for the reference) and in
// separately allocated device blocks (for the kernels).
class PagedRows {
 public:
  PagedRows(int64_t rows, int64_t kv_heads, int64_t head_dim, int64_t block_rows,
            KvType type = KvType::kF16)
      : rows_(rows),
        kv_heads_(kv_heads),
        head_dim_(head_dim),
        block_rows_(block_rows),
        type_(type) {
    const int64_t blocks = rows / block_rows + 1;
    const uint64_t block_bytes = static_cast<uint64_t>(block_rows) * row_bytes();
    host_blocks_.assign(static_cast<size_t>(blocks), std::vector<std::byte>(block_bytes));
    for (auto& block : host_blocks_) host_pointers_.push_back(block.data());
    device_blocks_.resize(static_cast<size_t>(blocks));
    for (auto& block : device_blocks_) {
      GPU_OK(gpu::DeviceBuffer::allocate(block_bytes, &block));
      GPU_OK(gpu::fill_bytes(block.data(), 0xFF, block_bytes, test_stream()));
      pointers_.push_back(block.data());
    }
    device_pointers_ = std::make_unique<DeviceArray<void*>>(pointers_);
  }

  [[nodiscard]] int64_t row_values() const { return kv_heads_ * head_dim_; }
  [[nodiscard]] uint64_t row_bytes() const {
    return static_cast<uint64_t>(row_values()) * (type_ == KvType::kF32 ? 4 : 2);
  }
  [[nodiscard]] const std::vector<void*>& device_blocks() const { return pointers_; }

  /// Stores `values` (rows × kv_heads × head_dim) on the host with ref::kv_store and on the
  /// device with gpu::kv_store in two calls; checks that the bytes agree.
  void store(const std::vector<float>& values) {
    const uint64_t row_bytes = this->row_bytes();
    for (int64_t r = 0; r < rows_; ++r) {
      ref::kv_store(type_, values.data() + r * row_values(), 1, kv_heads_, head_dim_,
                    host_blocks_[r / block_rows_].data() + (r % block_rows_) * row_bytes);
    }
    DeviceArray<float> source(values);
    const int64_t first_part = rows_ / 2;
    GPU_OK(gpu::kv_store(source.data(), first_part, 0, device_view(), test_stream()));
    GPU_OK(gpu::kv_store(source.data() + first_part * row_values(), rows_ - first_part, first_part,
                         device_view(), test_stream()));
    GPU_OK(gpu::synchronize(test_stream()));
    for (size_t b = 0; b < device_blocks_.size(); ++b) {
      const int64_t rows_here =
          std::min(block_rows_, rows_ - static_cast<int64_t>(b) * block_rows_);
      if (rows_here <= 0) break;
      std::vector<std::byte> got(static_cast<size_t>(rows_here) * row_bytes);
      GPU_OK(gpu::copy_to_host(got.data(), device_blocks_[b].data(), got.size(), test_stream()));
      GPU_CHECK(std::memcmp(got.data(), host_blocks_[b].data(), got.size()) == 0,
                "kv_store block %zu differs from ref::kv_store", b);
    }
  }

  [[nodiscard]] KvView host_view() const {
    return KvView{type_, kv_heads_, head_dim_, block_rows_, host_pointers_.data(), rows_};
  }
  [[nodiscard]] gpu::DeviceKvView device_view() const {
    return gpu::DeviceKvView{type_, kv_heads_, head_dim_, block_rows_, device_pointers_->data(),
                             rows_};
  }

 private:
  int64_t rows_;
  int64_t kv_heads_;
  int64_t head_dim_;
  int64_t block_rows_;
  KvType type_;
  std::vector<void*> pointers_;
  std::vector<std::vector<std::byte>> host_blocks_;
  std::vector<const std::byte*> host_pointers_;
  std::vector<gpu::DeviceBuffer> device_blocks_;
  std::unique_ptr<DeviceArray<void*>> device_pointers_;
};

struct AttentionCase {
  int64_t tokens;
  int64_t heads;
  int64_t kv_heads;
  int64_t head_dim;
  int64_t rows;
  int64_t block_rows;
  bool causal;
  std::vector<int32_t> positions;
  KvType type = KvType::kF16;
};

GPU_TEST(attention_paged_split_k) {
  std::unique_ptr<gpu::Context> context;
  GPU_OK(gpu::Context::create(test_stream(), &context));
  if (!context) return;
  const AttentionCase cases[] = {
      {1, 32, 8, 128, 1000, 16, true, {999}},
      {3, 4, 4, 64, 37, 8, true, {10, 20, 36}},
      {2, 12, 1, 96, 300, 32, false, {0, 0}},
      {1, 16, 2, 256, 5000, 64, true, {4999}},
      {4, 8, 2, 128, 70, 16, true, {0, 1, 69, 35}},
      {2, 64, 8, 128, 2048, 16, true, {2047, 1000}},
      {1, 4, 2, 64, 0, 16, false, {0}},
      {3, 8, 2, 32, 45, 16, true, {3, 30, 44}},
      {2, 8, 2, 32, 700, 16, true, {699, 5}, KvType::kF32},
      {2, 32, 8, 128, 300, 16, true, {299, 100}, KvType::kF32},
      // Capacity far past the lengths (a decode graph's fixed launch): shares from the length.
      {1, 32, 8, 128, 4000, 16, true, {150}},
      {2, 28, 4, 128, 9000, 16, true, {8999, 17}},
      // Groups of 3 and 2 (fewer heads than the block's), 8 tokens, rows past a 16-row chunk.
      {8, 6, 2, 128, 333, 16, true, {332, 0, 15, 16, 17, 100, 200, 331}},
      {5, 16, 8, 64, 129, 8, false, {0, 0, 0, 0, 0}},
  };
  uint32_t seed = 40;
  for (const AttentionCase& c : cases) {
    PagedRows keys(c.rows, c.kv_heads, c.head_dim, c.block_rows, c.type);
    PagedRows values(c.rows, c.kv_heads, c.head_dim, c.block_rows, c.type);
    keys.store(gaussian(static_cast<size_t>(c.rows * keys.row_values()), seed++));
    values.store(gaussian(static_cast<size_t>(c.rows * values.row_values()), seed++));
    const std::vector<float> q =
        gaussian(static_cast<size_t>(c.tokens * c.heads * c.head_dim), seed++);
    std::vector<float> want(q.size());
    ref::attention(q.data(), c.tokens, c.heads, keys.host_view(), values.host_view(),
                   c.positions.data(), c.causal, 0.0f, want.data(), nullptr);
    DeviceArray<float> q_device(q);
    DeviceArray<int32_t> positions_device(c.positions);
    DeviceArray<float> out_device(q.size());
    out_device.poison();
    GPU_OK(gpu::attention(*context, q_device.data(), c.tokens, c.heads, keys.device_view(),
                          values.device_view(), positions_device.data(), c.causal, 0.0f,
                          out_device.data()));
    GPU_OK(gpu::synchronize(test_stream()));
    const std::vector<float> got = out_device.to_host();
    // Again: the splits' arrival counters are back at zero, the merge order fixed.
    GPU_OK(gpu::attention(*context, q_device.data(), c.tokens, c.heads, keys.device_view(),
                          values.device_view(), positions_device.data(), c.causal, 0.0f,
                          out_device.data()));
    GPU_OK(gpu::synchronize(test_stream()));
    GPU_CHECK(out_device.to_host() == got, "attention rows %lld: a second call differs",
              static_cast<long long>(c.rows));
    const double error = max_relative_error(got, want, 1e-2);
    GPU_CHECK(error <= kTolerance,
              "attention tokens %lld heads %lld/%lld dim %lld rows %lld causal %d: %g",
              static_cast<long long>(c.tokens), static_cast<long long>(c.heads),
              static_cast<long long>(c.kv_heads), static_cast<long long>(c.head_dim),
              static_cast<long long>(c.rows), c.causal ? 1 : 0, error);
  }
}

// Several sequences in one launch (the model's batched decode): per-token block tables into
// one array of every sequence's blocks, rows at an offset inside each block, strided queries;
// kv_store_tokens writes each token's row at its position.
GPU_TEST(attention_tokens_across_sequences) {
  std::unique_ptr<gpu::Context> context;
  GPU_OK(gpu::Context::create(test_stream(), &context));
  if (!context) return;
  for (const KvType type : {KvType::kF16, KvType::kF32}) {
    const int64_t heads = 8, kv_heads = 2, dim = 64, block_rows = 16;
    const int64_t row = kv_heads * dim;
    const int64_t lengths[] = {40, 3, 129};
    const auto tokens = static_cast<int64_t>(std::size(lengths));
    uint32_t seed = 70;
    // Per sequence: device rows as stored before this step (last row stale), the reference's
    // rows (last row = the new one), and the new last rows, which kv_store_tokens writes.
    std::vector<PagedRows> keys, values, keys_ref, values_ref;
    std::vector<float> new_k, new_v;
    std::vector<void*> key_table, value_table;
    std::vector<int32_t> key_tables, value_tables, positions;
    for (const int64_t n : lengths) {
      std::vector<float> k = gaussian(static_cast<size_t>(n * row), seed++);
      std::vector<float> v = gaussian(static_cast<size_t>(n * row), seed++);
      keys.emplace_back(n, kv_heads, dim, block_rows, type);
      values.emplace_back(n, kv_heads, dim, block_rows, type);
      keys.back().store(k);
      values.back().store(v);
      const std::vector<float> k_last = gaussian(static_cast<size_t>(row), seed++);
      const std::vector<float> v_last = gaussian(static_cast<size_t>(row), seed++);
      std::copy(k_last.begin(), k_last.end(), k.end() - row);
      std::copy(v_last.begin(), v_last.end(), v.end() - row);
      keys_ref.emplace_back(n, kv_heads, dim, block_rows, type);
      values_ref.emplace_back(n, kv_heads, dim, block_rows, type);
      keys_ref.back().store(k);
      values_ref.back().store(v);
      new_k.insert(new_k.end(), k_last.begin(), k_last.end());
      new_v.insert(new_v.end(), v_last.begin(), v_last.end());
      key_tables.push_back(static_cast<int32_t>(key_table.size()));
      value_tables.push_back(static_cast<int32_t>(value_table.size()));
      const auto& kb = keys.back().device_blocks();
      const auto& vb = values.back().device_blocks();
      key_table.insert(key_table.end(), kb.begin(), kb.end());
      value_table.insert(value_table.end(), vb.begin(), vb.end());
      positions.push_back(static_cast<int32_t>(n - 1));
    }
    DeviceArray<void*> key_blocks(key_table), value_blocks(value_table);
    DeviceArray<int32_t> key_tables_d(key_tables), value_tables_d(value_tables),
        positions_d(positions);
    const gpu::DeviceKvView kview{type, kv_heads,           dim, block_rows, key_blocks.data(), 129,
                                  0,    key_tables_d.data()};
    const gpu::DeviceKvView vview{
        type, kv_heads, dim, block_rows, value_blocks.data(), 129, 0, value_tables_d.data()};
    // The new rows from a strided source (as the model's fused QKV rows are).
    const int64_t stride = row + 5;
    std::vector<float> src_k(static_cast<size_t>(tokens * stride), 0.0f), src_v = src_k;
    for (int64_t t = 0; t < tokens; ++t) {
      std::copy_n(new_k.begin() + t * row, row, src_k.begin() + t * stride);
      std::copy_n(new_v.begin() + t * row, row, src_v.begin() + t * stride);
    }
    DeviceArray<float> src_k_d(src_k), src_v_d(src_v);
    GPU_OK(gpu::kv_store_tokens(src_k_d.data(), src_v_d.data(), stride, tokens, positions_d.data(),
                                kview, vview, test_stream()));
    const int64_t q_stride = heads * dim + 3 * row;
    const std::vector<float> q = gaussian(static_cast<size_t>(tokens * q_stride), seed++);
    DeviceArray<float> q_d(q);
    DeviceArray<float> out_d(static_cast<size_t>(tokens * heads * dim));
    out_d.poison();
    GPU_OK(gpu::attention_tokens(*context, q_d.data(), q_stride, tokens, heads, kview, vview,
                                 positions_d.data(), 0.0f, out_d.data()));
    GPU_OK(gpu::synchronize(test_stream()));
    const std::vector<float> got = out_d.to_host();
    for (int64_t t = 0; t < tokens; ++t) {
      std::vector<float> want(static_cast<size_t>(heads * dim));
      ref::attention(q.data() + t * q_stride, 1, heads,
                     keys_ref[static_cast<size_t>(t)].host_view(),
                     values_ref[static_cast<size_t>(t)].host_view(),
                     &positions[static_cast<size_t>(t)], true, 0.0f, want.data(), nullptr);
      const std::vector<float> mine(got.begin() + t * heads * dim,
                                    got.begin() + (t + 1) * heads * dim);
      const double error = max_relative_error(mine, want, 1e-2);
      GPU_CHECK(error <= kTolerance, "attention_tokens %s sequence %lld: %g",
                type == KvType::kF32 ? "f32" : "f16", static_cast<long long>(t), error);
    }
  }
}

GPU_TEST(attention_rejects_unsupported) {
  gpu::DeviceKvView view{KvType::kF16, 2, 80, 16, nullptr, 0};
  GPU_CHECK(!gpu::attention_supports(view), "head_dim 80 has no kernel");
  view.head_dim = 128;
  view.type = KvType::kQ8_0;
  GPU_CHECK(!gpu::attention_supports(view), "q8_0 KV has no kernel yet");
}

}  // namespace
}  // namespace polyinfer::detail::gpu_test
