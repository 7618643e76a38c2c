// SPDX-License-Identifier: Apache-2.0
// The decode step's fused launches against the separate ones they replace, bit for bit: norms,
// SiLU·mul and attention that also write the next GEMV's 8-bit input, matmul reading that input,
// and RoPE with the KV store in one launch. Every launch here is programmatic (PDL), so a chain
// of them also checks that each kernel waits for the one before.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>

#include "kernels/ref/ops_ref.hpp"
#include "kernels/ref/quant_ref.hpp"
#include "tests/cuda/check.hpp"

namespace polyinfer::detail::gpu_test {
namespace {

// quantize_activations() of `tokens` rows of `cols` (the reference for every fused writer),
// into a scratch poisoned like theirs so that the padding compares equal.
std::vector<uint8_t> quantized_by_launch(const DeviceArray<float>& x, int64_t tokens,
                                         int64_t cols) {
  DeviceArray<uint8_t> q(gpu::quantized_activation_bytes(tokens, cols));
  q.poison();
  GPU_OK(gpu::quantize_activations(x.data(), tokens, cols, cols, q.data(), test_stream()));
  return q.to_host();
}

GPU_TEST(norms_and_silu_write_the_quantized_input) {
  uint32_t seed = 300;
  for (const int64_t tokens : {1, 3, 8}) {
    for (const int64_t cols : {32, 96, 4096, 4128, 14336}) {
      const size_t n = static_cast<size_t>(tokens * cols);
      const std::vector<float> x = gaussian(n, seed++, 3.0f);
      const std::vector<float> delta = gaussian(n, seed++);
      const std::vector<float> weight = gaussian(static_cast<size_t>(cols), seed++);
      DeviceArray<float> weight_d(weight);
      const uint64_t q_bytes = gpu::quantized_activation_bytes(tokens, cols);

      // rms_norm
      DeviceArray<float> x_d(x), plain(n), fused(n);
      DeviceArray<uint8_t> q(q_bytes);
      q.poison();
      GPU_OK(gpu::rms_norm(x_d.data(), weight_d.data(), 1e-5f, tokens, cols, plain.data(),
                           test_stream()));
      GPU_OK(gpu::rms_norm(x_d.data(), weight_d.data(), 1e-5f, tokens, cols, fused.data(),
                           test_stream(), q.data()));
      GPU_CHECK(same_bits(plain.to_host(), fused.to_host()), "rms_norm %lldx%lld y",
                static_cast<long long>(tokens), static_cast<long long>(cols));
      GPU_CHECK(same_bits(q.to_host(), quantized_by_launch(plain, tokens, cols)),
                "rms_norm %lldx%lld quantized", static_cast<long long>(tokens),
                static_cast<long long>(cols));

      // add_rms_norm, out of place (rows split over blocks for these few rows): the residual
      // bit for bit (one f32 add), y against kernels/ref to f32 rounding, y the same with and
      // without the quantized copy, which is quantize_activations() of y bit for bit.
      DeviceArray<float> x_in(x), delta_d(delta), x_out(n);
      q.poison();
      GPU_OK(gpu::add_rms_norm(x_in.data(), delta_d.data(), x_out.data(), weight_d.data(), 1e-5f,
                               tokens, cols, plain.data(), test_stream()));
      GPU_OK(gpu::add_rms_norm(x_in.data(), delta_d.data(), x_out.data(), weight_d.data(), 1e-5f,
                               tokens, cols, fused.data(), test_stream(), q.data()));
      std::vector<float> residual(n);
      for (size_t i = 0; i < n; ++i) residual[i] = x[i] + delta[i];
      std::vector<float> want(n);
      ref::rms_norm(residual.data(), weight.data(), 1e-5f, tokens, cols, want.data());
      GPU_CHECK(same_bits(x_out.to_host(), residual) && same_bits(x_in.to_host(), x),
                "add_rms_norm %lldx%lld residual", static_cast<long long>(tokens),
                static_cast<long long>(cols));
      const double error = max_relative_error(fused.to_host(), want, 1e-3);
      GPU_CHECK(error <= 2e-5, "add_rms_norm %lldx%lld y: %g", static_cast<long long>(tokens),
                static_cast<long long>(cols), error);
      GPU_CHECK(same_bits(plain.to_host(), fused.to_host()), "add_rms_norm %lldx%lld y with q",
                static_cast<long long>(tokens), static_cast<long long>(cols));
      GPU_CHECK(same_bits(q.to_host(), quantized_by_launch(fused, tokens, cols)),
                "add_rms_norm %lldx%lld quantized", static_cast<long long>(tokens),
                static_cast<long long>(cols));

      // silu_mul_rows over gate|up rows of 2·cols
      DeviceArray<float> gate_up(gaussian(2 * n, seed++, 2.0f));
      q.poison();
      GPU_OK(gpu::silu_mul_rows(gate_up.data(), tokens, cols, plain.data(), test_stream()));
      GPU_OK(
          gpu::silu_mul_rows(gate_up.data(), tokens, cols, fused.data(), test_stream(), q.data()));
      GPU_CHECK(same_bits(plain.to_host(), fused.to_host()), "silu_mul_rows %lldx%lld out",
                static_cast<long long>(tokens), static_cast<long long>(cols));
      GPU_CHECK(same_bits(q.to_host(), quantized_by_launch(plain, tokens, cols)),
                "silu_mul_rows %lldx%lld quantized", static_cast<long long>(tokens),
                static_cast<long long>(cols));
    }
  }
  // Widths that are not whole blocks cannot carry a quantized copy.
  DeviceArray<float> x(40), y(40), w(40);
  DeviceArray<uint8_t> q(gpu::quantized_activation_bytes(1, 64));
  GPU_CHECK(gpu::rms_norm(x.data(), w.data(), 1e-5f, 1, 40, y.data(), test_stream(), q.data()) ==
                gpu::Status::kInvalidArgument,
            "cols 40 with a quantized output");
}

// A quantized matrix of gaussian weights on the device.
gpu::DeviceMatrix quantized_matrix(DType dtype, int64_t rows, int64_t cols, uint32_t seed) {
  const std::vector<float> source = gaussian(static_cast<size_t>(rows * cols), seed, 0.5f);
  const int64_t blocks = dtype == DType::kQ4_K ? rows * cols / 256 : rows * cols / 32;
  const int64_t block_bytes = dtype == DType::kQ4_K ? 144 : dtype == DType::kQ8_0 ? 34 : 18;
  std::vector<std::byte> bytes(static_cast<size_t>(blocks * block_bytes));
  GPU_CHECK(ref::quantize(dtype, source.data(), bytes.data(), rows * cols), "quantize");
  gpu::DeviceMatrix w;
  GPU_OK(gpu::DeviceMatrix::upload(dtype, rows, cols, bytes.data(), test_stream(), &w));
  return w;
}

GPU_TEST(matmul_reads_the_quantized_input) {
  std::unique_ptr<gpu::Context> context;
  GPU_OK(gpu::Context::create(test_stream(), &context));
  if (!context) return;
  uint32_t seed = 400;
  for (const DType dtype : {DType::kQ4_0, DType::kQ8_0, DType::kQ4_K}) {
    const int64_t rows = 300;
    const int64_t cols = 512;
    const gpu::DeviceMatrix w = quantized_matrix(dtype, rows, cols, seed++);
    for (const int64_t tokens : {1, 5, 8, 9, 40}) {  // the GEMVs, then the integer GEMM
      if (!gpu::matmul_reads_quantized(*context, dtype, tokens)) continue;
      DeviceArray<float> x(gaussian(static_cast<size_t>(tokens * cols), seed++));
      DeviceArray<uint8_t> xq(gpu::quantized_activation_bytes(tokens, cols));
      GPU_OK(gpu::quantize_activations(x.data(), tokens, cols, cols, xq.data(), test_stream()));
      DeviceArray<float> want(static_cast<size_t>(tokens * rows));
      DeviceArray<float> got(static_cast<size_t>(tokens * rows));
      got.poison();
      GPU_OK(gpu::matmul(*context, w, x.data(), tokens, cols, want.data(), rows));
      // x poisoned: the result can only come from xq.
      DeviceArray<float> poisoned(static_cast<size_t>(tokens * cols));
      poisoned.poison();
      GPU_OK(gpu::matmul(*context, w, poisoned.data(), xq.data(), tokens, cols, got.data(), rows));
      GPU_CHECK(same_bits(want.to_host(), got.to_host()), "dtype %d tokens %lld",
                static_cast<int>(dtype), static_cast<long long>(tokens));
    }
  }
}

// The residual connection and RMSNorm folded into the GEMVs around them (decode) against
// matmul + add_rms_norm + matmul: the residual bit for bit (the same sums, one f32 add), the
// norm's input bit for bit, its sum of squares to f32 rounding, and the consumer's products
// to the rounding of 1/rms (the two quantize x·(1/rms)·weight, multiplied in another order).
// Shapes reach the producer's split and unsplit kernels and consumers with several row groups
// per block (more rows than the blocks that fit at once take).
GPU_TEST(norm_folded_into_the_gemvs) {
  std::unique_ptr<gpu::Context> context;
  GPU_OK(gpu::Context::create(test_stream(), &context));
  if (!context) return;
  uint32_t seed = 700;
  for (const DType dtype : {DType::kQ4_0, DType::kQ8_0, DType::kQ4_K}) {
    struct Shape {
      int64_t hidden, inner, outer;  // o: hidden × inner; gate_up: outer × hidden
    };
    for (const Shape shape :
         {Shape{256, 512, 300}, Shape{1024, 4608, 20000}, Shape{4096, 4096, 6144}}) {
      const int64_t hidden = shape.hidden;
      const gpu::DeviceMatrix o = quantized_matrix(dtype, hidden, shape.inner, seed++);
      const gpu::DeviceMatrix up = quantized_matrix(dtype, shape.outer, hidden, seed++);
      const std::vector<float> residual = gaussian(static_cast<size_t>(hidden), seed++, 3.0f);
      DeviceArray<float> attn(gaussian(static_cast<size_t>(shape.inner), seed++));
      DeviceArray<float> norm_weight(gaussian(static_cast<size_t>(hidden), seed++));
      DeviceArray<uint8_t> attn_q(gpu::quantized_activation_bytes(1, shape.inner));
      GPU_OK(gpu::quantize_activations(attn.data(), 1, shape.inner, shape.inner, attn_q.data(),
                                       test_stream()));
      // Separate launches.
      DeviceArray<float> x(residual), x_next(static_cast<size_t>(hidden));
      DeviceArray<float> projected(static_cast<size_t>(hidden)),
          normed(static_cast<size_t>(hidden));
      DeviceArray<uint8_t> normed_q(gpu::quantized_activation_bytes(1, hidden));
      DeviceArray<float> want(static_cast<size_t>(shape.outer));
      GPU_OK(gpu::matmul(*context, o, attn.data(), attn_q.data(), 1, shape.inner, projected.data(),
                         hidden));
      GPU_OK(gpu::add_rms_norm(x.data(), projected.data(), x_next.data(), norm_weight.data(), 1e-5f,
                               1, hidden, normed.data(), test_stream(), normed_q.data()));
      GPU_OK(gpu::matmul(*context, up, normed.data(), normed_q.data(), 1, hidden, want.data(),
                         shape.outer));
      // Folded.
      DeviceArray<float> folded_x(residual), fold_normed(static_cast<size_t>(hidden));
      DeviceArray<float> partials(static_cast<size_t>(gpu::kNormFoldPartials));
      DeviceArray<float> got(static_cast<size_t>(shape.outer));
      fold_normed.poison();
      partials.poison();
      got.poison();
      gpu::NormFold fold{fold_normed.data(), partials.data(), 0, 1e-5f};
      GPU_OK(gpu::gemv_add_residual(*context, o, attn_q.data(), folded_x.data(), norm_weight.data(),
                                    &fold));
      GPU_OK(gpu::gemv_normed(*context, up, fold, got.data()));
      const std::string what = "dtype " + std::to_string(static_cast<int>(dtype)) + " hidden " +
                               std::to_string(hidden) + " outer " + std::to_string(shape.outer);
      const std::vector<float> sum = x_next.to_host();
      GPU_CHECK(same_bits(sum, folded_x.to_host()), "%s: residual", what.c_str());
      const std::vector<float> weight = norm_weight.to_host();
      std::vector<float> expected_normed(sum.size());
      double squares = 0;
      for (size_t i = 0; i < sum.size(); ++i) {
        expected_normed[i] = sum[i] * weight[i];
        squares += static_cast<double>(sum[i]) * sum[i];
      }
      GPU_CHECK(same_bits(expected_normed, fold_normed.to_host()), "%s: norm input", what.c_str());
      GPU_CHECK(fold.count >= 1 && fold.count <= gpu::kNormFoldPartials, "%s: %d partials",
                what.c_str(), fold.count);
      const std::vector<float> parts = partials.to_host();
      double folded_squares = 0;
      for (int i = 0; i < fold.count; ++i) folded_squares += parts[static_cast<size_t>(i)];
      GPU_CHECK(std::abs(folded_squares - squares) <= 1e-5 * squares, "%s: squares %g vs %g",
                what.c_str(), folded_squares, squares);
      const std::vector<float> a = want.to_host();
      const std::vector<float> b = got.to_host();
      float scale = 0.0f;
      for (const float v : a) scale = std::max(scale, std::abs(v));
      float worst = 0.0f;
      for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
      GPU_CHECK(scale > 0.0f && worst <= 1e-4f * scale, "%s: products differ by %g (max %g)",
                what.c_str(), static_cast<double>(worst), static_cast<double>(scale));
    }
  }
}

// Paged rows of `sequences` sequences, `blocks_each` blocks of block_rows each, one table.
struct Pages {
  Pages(KvType type, int64_t sequences, int64_t blocks_each, int64_t block_rows, int64_t kv_heads,
        int64_t dim)
      : block_bytes(static_cast<uint64_t>(block_rows * kv_heads * dim) *
                    (type == KvType::kF16 ? 2 : 4)),
        storage(static_cast<size_t>(block_bytes * sequences * blocks_each)) {
    storage.poison();
    std::vector<void*> pointers;
    for (int64_t b = 0; b < sequences * blocks_each; ++b) {
      pointers.push_back(storage.data() + b * block_bytes);
    }
    table = std::make_unique<DeviceArray<void*>>(pointers);
    std::vector<int32_t> starts;
    for (int64_t s = 0; s < sequences; ++s) starts.push_back(static_cast<int32_t>(s * blocks_each));
    token_tables = std::make_unique<DeviceArray<int32_t>>(starts);
    view = gpu::DeviceKvView{type,
                             kv_heads,
                             dim,
                             block_rows,
                             table->data(),
                             blocks_each * block_rows,
                             0,
                             token_tables->data()};
  }
  uint64_t block_bytes;
  DeviceArray<uint8_t> storage;
  std::unique_ptr<DeviceArray<void*>> table;
  std::unique_ptr<DeviceArray<int32_t>> token_tables;
  gpu::DeviceKvView view;
};

GPU_TEST(rope_and_kv_store_in_one_launch) {
  uint32_t seed = 500;
  for (const KvType type : {KvType::kF16, KvType::kF32}) {
    for (const RopeLayout layout : {RopeLayout::kInterleaved, RopeLayout::kHalf}) {
      for (const int64_t dim : {64, 128}) {
        const int64_t heads = 4, kv_heads = 2, block_rows = 16, tokens = 3, blocks_each = 4;
        const int64_t stride = (heads + 2 * kv_heads) * dim + 4;
        std::vector<float> inv_freq(static_cast<size_t>(dim / 2));
        for (size_t i = 0; i < inv_freq.size(); ++i) {
          inv_freq[i] = std::pow(10000.0f, -2.0f * static_cast<float>(i) / static_cast<float>(dim));
        }
        DeviceArray<float> inv_freq_d(inv_freq);
        DeviceArray<int32_t> positions(std::vector<int32_t>{0, 17, 63});
        const std::vector<float> qkv = gaussian(static_cast<size_t>(tokens * stride), seed++);
        DeviceArray<float> separate(qkv), fused(qkv);
        Pages keys_a(type, tokens, blocks_each, block_rows, kv_heads, dim);
        Pages values_a(type, tokens, blocks_each, block_rows, kv_heads, dim);
        Pages keys_b(type, tokens, blocks_each, block_rows, kv_heads, dim);
        Pages values_b(type, tokens, blocks_each, block_rows, kv_heads, dim);
        GPU_OK(gpu::rope(separate.data(), tokens, heads + kv_heads, dim, stride, positions.data(),
                         inv_freq_d.data(), layout, test_stream()));
        GPU_OK(gpu::kv_store_tokens(separate.data() + heads * dim,
                                    separate.data() + (heads + kv_heads) * dim, stride, tokens,
                                    positions.data(), keys_a.view, values_a.view, test_stream()));
        GPU_OK(gpu::rope_kv_store_tokens(fused.data(), stride, tokens, heads, positions.data(),
                                         inv_freq_d.data(), layout, keys_b.view, values_b.view,
                                         test_stream()));
        GPU_CHECK(same_bits(separate.to_host(), fused.to_host()), "qkv rows, dim %lld",
                  static_cast<long long>(dim));
        GPU_CHECK(same_bits(keys_a.storage.to_host(), keys_b.storage.to_host()) &&
                      same_bits(values_a.storage.to_host(), values_b.storage.to_host()),
                  "cached rows, dim %lld type %d layout %d", static_cast<long long>(dim),
                  static_cast<int>(type), static_cast<int>(layout));
      }
    }
  }
}

GPU_TEST(attention_writes_the_quantized_output) {
  std::unique_ptr<gpu::Context> context;
  GPU_OK(gpu::Context::create(test_stream(), &context));
  if (!context) return;
  uint32_t seed = 600;
  // 5 rows: one split, the split kernel writes the output; 300 rows: several, the combine does.
  for (const int64_t rows : {5, 300}) {
    const int64_t heads = 8, kv_heads = 2, dim = 128, block_rows = 16, tokens = 2;
    const int64_t blocks_each = (rows + block_rows - 1) / block_rows;
    Pages keys(KvType::kF16, tokens, blocks_each, block_rows, kv_heads, dim);
    Pages values(KvType::kF16, tokens, blocks_each, block_rows, kv_heads, dim);
    // Fill every row of both sequences through kv_store_tokens, one position at a time.
    for (int64_t r = 0; r < rows; ++r) {
      DeviceArray<float> k(gaussian(static_cast<size_t>(tokens * kv_heads * dim), seed++));
      DeviceArray<float> v(gaussian(static_cast<size_t>(tokens * kv_heads * dim), seed++));
      DeviceArray<int32_t> at(
          std::vector<int32_t>(static_cast<size_t>(tokens), static_cast<int32_t>(r)));
      GPU_OK(gpu::kv_store_tokens(k.data(), v.data(), kv_heads * dim, tokens, at.data(), keys.view,
                                  values.view, test_stream()));
      GPU_OK(gpu::synchronize(test_stream()));  // `at`, `k` and `v` go out of scope
    }
    keys.view.positions = rows;
    values.view.positions = rows;
    DeviceArray<int32_t> positions(
        std::vector<int32_t>{static_cast<int32_t>(rows - 2), static_cast<int32_t>(rows - 1)});
    const int64_t width = heads * dim;
    DeviceArray<float> q(gaussian(static_cast<size_t>(tokens * width), seed++));
    DeviceArray<float> plain(static_cast<size_t>(tokens * width));
    DeviceArray<float> fused(static_cast<size_t>(tokens * width));
    DeviceArray<uint8_t> xq(gpu::quantized_activation_bytes(tokens, width));
    xq.poison();
    GPU_OK(gpu::attention_tokens(*context, q.data(), width, tokens, heads, keys.view, values.view,
                                 positions.data(), 0.0f, plain.data()));
    GPU_OK(gpu::attention_tokens(*context, q.data(), width, tokens, heads, keys.view, values.view,
                                 positions.data(), 0.0f, fused.data(), xq.data()));
    GPU_CHECK(same_bits(plain.to_host(), fused.to_host()), "rows %lld: output",
              static_cast<long long>(rows));
    GPU_CHECK(same_bits(xq.to_host(), quantized_by_launch(plain, tokens, width)),
              "rows %lld: quantized output", static_cast<long long>(rows));
  }
}

}  // namespace
}  // namespace polyinfer::detail::gpu_test
