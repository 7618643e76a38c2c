// SPDX-License-Identifier: Apache-2.0
// The table of transformer-op kernels each ISA translation unit exports (ops_<isa>.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/ops.hpp"

namespace polyinfer::inline v0::detail {

/// Arguments of attention() with the scale resolved; work items are (token, kv head) pairs,
/// token-major: item = token · kv_heads + kv_head, covering that kv head's query heads.
struct AttentionArgs {
  const float* q = nullptr;
  int64_t tokens = 0;
  int64_t heads = 0;
  const KvView* keys = nullptr;
  const KvView* values = nullptr;
  const int32_t* positions = nullptr;
  bool causal = true;
  float scale = 1.0f;
  float* out = nullptr;
};

/// One ISA level's kernels; the signatures are those of kernels/ops.hpp except attention,
/// which computes work items [begin, end) so that the caller can split them over threads.
struct OpsTable {
  void (*rms_norm)(const float* x, const float* weight, float eps, int64_t rows, int64_t cols,
                   float* y);
  void (*layer_norm)(const float* x, const float* weight, const float* bias, float eps,
                     int64_t rows, int64_t cols, float* y);
  void (*rope)(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t row_stride,
               const int32_t* positions, const RopeTable& table, RopeLayout layout);
  void (*silu_mul)(const float* gate, const float* up, float* out, int64_t count);
  void (*gelu)(const float* x, float* out, int64_t count);
  void (*softmax)(float* x, int64_t rows, int64_t cols);
  void (*kv_store)(KvType type, const float* src, int64_t rows, int64_t kv_heads, int64_t head_dim,
                   std::byte* dst);
  void (*attention)(const AttentionArgs& args, int64_t begin, int64_t end);
};

/// Portable C++ kernels (the generic code with one-lane vectors), for CPUs below AVX2.
[[nodiscard]] const OpsTable& ops_table_scalar() noexcept;
#if defined(POLYINFER_X86_KERNELS)
/// AVX2 + FMA + F16C kernels (ops_avx2.cpp); call only when active_isa() ≥ kAvx2.
[[nodiscard]] const OpsTable& ops_table_avx2() noexcept;
/// AVX-512 F/BW/VL/DQ kernels (ops_avx512.cpp); call only when active_isa() ≥ kAvx512.
[[nodiscard]] const OpsTable& ops_table_avx512() noexcept;
#endif

}  // namespace polyinfer::inline v0::detail
