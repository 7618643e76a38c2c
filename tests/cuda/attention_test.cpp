// SPDX-License-Identifier: Apache-2.0
// GPU paged-KV store and split-K attention against kernels/ref: GQA groups below, at and above
// a block's 8 heads, causal limits at 0 and at the end, several splits, head_dim 64..256.
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
  PagedRows(int64_t rows, int64_t kv_heads, int64_t head_dim, int64_t block_rows)
      : rows_(rows), kv_heads_(kv_heads), head_dim_(head_dim), block_rows_(block_rows) {
    const int64_t blocks = rows / block_rows + 1;
    const uint64_t block_bytes = static_cast<uint64_t>(block_rows * row_values()) * 2;
    host_blocks_.assign(static_cast<size_t>(blocks), std::vector<std::byte>(block_bytes));
    for (auto& block : host_blocks_) host_pointers_.push_back(block.data());
    device_blocks_.resize(static_cast<size_t>(blocks));
    std::vector<void*> pointers;
    for (auto& block : device_blocks_) {
      GPU_OK(gpu::DeviceBuffer::allocate(block_bytes, &block));
      GPU_OK(gpu::fill_bytes(block.data(), 0xFF, block_bytes, test_stream()));
      pointers.push_back(block.data());
    }
    device_pointers_ = std::make_unique<DeviceArray<void*>>(pointers);
  }

  [[nodiscard]] int64_t row_values() const { return kv_heads_ * head_dim_; }

  /// Stores `values` (rows × kv_heads × head_dim) on the host with ref::kv_store and on the
  /// device with gpu::kv_store in two calls; checks that the bytes agree.
  void store(const std::vector<float>& values) {
    const uint64_t row_bytes = static_cast<uint64_t>(row_values()) * 2;
    for (int64_t r = 0; r < rows_; ++r) {
      ref::kv_store(KvType::kF16, values.data() + r * row_values(), 1, kv_heads_, head_dim_,
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
    return KvView{KvType::kF16, kv_heads_, head_dim_, block_rows_, host_pointers_.data(), rows_};
  }
  [[nodiscard]] gpu::DeviceKvView device_view() const {
    return gpu::DeviceKvView{
        KvType::kF16, kv_heads_, head_dim_, block_rows_, device_pointers_->data(), rows_};
  }

 private:
  int64_t rows_;
  int64_t kv_heads_;
  int64_t head_dim_;
  int64_t block_rows_;
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
  };
  uint32_t seed = 40;
  for (const AttentionCase& c : cases) {
    PagedRows keys(c.rows, c.kv_heads, c.head_dim, c.block_rows);
    PagedRows values(c.rows, c.kv_heads, c.head_dim, c.block_rows);
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
    const double error = max_relative_error(out_device.to_host(), want, 1e-2);
    GPU_CHECK(error <= kTolerance,
              "attention tokens %lld heads %lld/%lld dim %lld rows %lld causal %d: %g",
              static_cast<long long>(c.tokens), static_cast<long long>(c.heads),
              static_cast<long long>(c.kv_heads), static_cast<long long>(c.head_dim),
              static_cast<long long>(c.rows), c.causal ? 1 : 0, error);
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
