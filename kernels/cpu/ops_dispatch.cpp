// SPDX-License-Identifier: Apache-2.0
// Entry points of the transformer ops in kernels/ops.hpp: pick the ISA table, split attention.
#include <cmath>

#include "kernels/cpu/isa_ops.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "kernels/ops.hpp"
#include "kernels/ref/ops_ref.hpp"

namespace polyinfer::inline v0::detail {
namespace {

// Looked up on every call rather than cached, so that force_isa() (tests, benchmarks) takes
// effect at once: active_isa() is an atomic load and the tables are constants.
const OpsTable& isa_ops() noexcept {
#if defined(POLYINFER_X86_KERNELS)
  const Isa isa = active_isa();
  if (isa >= Isa::kAvx512) return ops_table_avx512();
  if (isa >= Isa::kAvx2) return ops_table_avx2();
#endif
  return ops_table_scalar();
}

}  // namespace

void rms_norm(const float* x, const float* weight, float eps, int64_t rows, int64_t cols,
              float* y) {
  if (rows <= 0 || cols <= 0) return;
  isa_ops().rms_norm(x, weight, eps, rows, cols, y);
}

void layer_norm(const float* x, const float* weight, const float* bias, float eps, int64_t rows,
                int64_t cols, float* y) {
  if (rows <= 0 || cols <= 0) return;
  isa_ops().layer_norm(x, weight, bias, eps, rows, cols, y);
}

RopeTable make_rope_table(int64_t head_dim, double theta, std::string_view scaling, double factor,
                          double low_freq_factor, double high_freq_factor,
                          int64_t original_max_positions) {
  // Built once per model: the reference is the implementation.
  return ref::make_rope_table(head_dim, theta, scaling, factor, low_freq_factor, high_freq_factor,
                              original_max_positions);
}

void rope(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t row_stride,
          const int32_t* positions, const RopeTable& rope_table, RopeLayout layout) {
  // A table for another head size, or an empty one (make_rope_table rejected its arguments),
  // leaves x as it is: kernels do not throw, model code checks the table when it loads.
  if (tokens <= 0 || heads <= 0 || head_dim <= 0 || rope_table.head_dim != head_dim) return;
  isa_ops().rope(x, tokens, heads, head_dim, row_stride, positions, rope_table, layout);
}

void silu_mul(const float* gate, const float* up, float* out, int64_t count) {
  if (count > 0) isa_ops().silu_mul(gate, up, out, count);
}

void gelu(const float* x, float* out, int64_t count) {
  if (count > 0) isa_ops().gelu(x, out, count);
}

void softmax(float* x, int64_t rows, int64_t cols) {
  if (rows > 0 && cols > 0) isa_ops().softmax(x, rows, cols);
}

uint64_t kv_row_bytes(KvType type, int64_t kv_heads, int64_t head_dim) noexcept {
  return ref::kv_row_bytes(type, kv_heads, head_dim);
}

void kv_store(KvType type, const float* src, int64_t rows, int64_t kv_heads, int64_t head_dim,
              std::byte* dst) {
  if (rows > 0 && kv_heads > 0 && head_dim > 0) {
    isa_ops().kv_store(type, src, rows, kv_heads, head_dim, dst);
  }
}

void attention(const float* q, int64_t tokens, int64_t heads, const KvView& keys,
               const KvView& values, const int32_t* positions, bool causal, float scale, float* out,
               ThreadPool* pool) {
  if (tokens <= 0 || heads <= 0 || keys.kv_heads <= 0 || keys.head_dim <= 0) return;
  AttentionArgs args;
  args.q = q;
  args.tokens = tokens;
  args.heads = heads;
  args.keys = &keys;
  args.values = &values;
  args.positions = positions;
  args.causal = causal;
  args.scale = scale != 0.0f ? scale : 1.0f / std::sqrt(static_cast<float>(keys.head_dim));
  args.out = out;
  const auto kernel = isa_ops().attention;
  const int64_t items = tokens * keys.kv_heads;
  if (pool != nullptr && pool->threads() > 1 && items > 1) {
    pool->parallel_for(items, [&](int64_t begin, int64_t end) { kernel(args, begin, end); });
  } else {
    kernel(args, 0, items);
  }
}

}  // namespace polyinfer::inline v0::detail
