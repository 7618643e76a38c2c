// SPDX-License-Identifier: Apache-2.0
// Q4_0 GEMV: 4-bit weights × 8-bit activation blocks with dp4a, 1..8 activation rows.
#include "kernels/cuda/gemv_q4_0.cuh"

namespace polyinfer::inline v0::detail::gpu {

Status gemv_q4_0(const WeightsView& w, const ActivationsView& x, int tokens, float* y,
                 int64_t y_stride, const GemvConfig& config, Stream stream,
                 bool programmatic) noexcept {
  return dispatch_gemv<FormatQ4_0>(w, x, tokens, y, y_stride, config, stream, programmatic);
}

Status gemv_fold_q4_0(const WeightsView& w, const ActivationsView& x, float* y,
                      const GemvConfig& config, bool consumer, FoldView* fold, int64_t capacity,
                      Stream stream) noexcept {
  return dispatch_gemv_fold<FormatQ4_0>(w, x, y, config, consumer, fold, capacity, stream);
}

}  // namespace polyinfer::inline v0::detail::gpu
