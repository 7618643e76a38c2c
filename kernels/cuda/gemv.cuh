// SPDX-License-Identifier: Apache-2.0
// Internal seam between matmul.cu and the per-format GEMV files: views and entry points.
#pragma once

#include <cstdint>

#include "kernels/cuda/cuda_common.cuh"

namespace polyinfer::inline v0::detail::gpu {

/// A DeviceMatrix as the GEMV kernels see it: row r of the quants plane starts at
/// quants + r·row_bytes and holds `chunks` 16-byte chunks; its block scales start at
/// scales + r·scales_row_bytes.
struct WeightsView {
  const uint8_t* quants = nullptr;
  const uint8_t* scales = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t chunks = 0;
  int64_t row_bytes = 0;
  int64_t scales_row_bytes = 0;
};

/// Activations of a GEMV: 8-bit blocks of 32 for the quantized formats (token t's quants at
/// qs + t·cols, its block metadata {fp16-rounded scale as float bits, Σq} at meta + t·cols/32),
/// or f32 rows for F16 / BF16 (token t at x + t·x_stride).
struct ActivationsView {
  const int8_t* qs = nullptr;
  const int2* meta = nullptr;
  const float* x = nullptr;
  int64_t cols = 0;
  int64_t x_stride = 0;
};

/// Rows per warp and 16-byte chunks per lane in flight of a GEMV kernel.
struct GemvShape {
  int rows_per_warp;
  int unroll;
};

/// The shape compiled for 2..8 activation rows (index = rows; 0 and 1 unused), with its warps
/// per block in kMultiTokenWarps. More weight rows per warp as activation rows grow: each
/// activation load then serves more weight rows, keeping L1 traffic below what the weight
/// stream needs; the unroll drops to bound registers (accumulators grow as rows × tokens).
inline constexpr GemvShape kMultiTokenShapes[] = {{0, 0}, {0, 0}, {2, 2}, {2, 2}, {2, 2},
                                                  {4, 1}, {4, 1}, {4, 1}, {4, 1}};
inline constexpr int kMultiTokenWarps = 4;

[[nodiscard]] WeightsView weights_view(const DeviceMatrix& w) noexcept;

/// Bytes of the quantized activations of `tokens` rows of `cols` (quants, then metadata).
[[nodiscard]] uint64_t quantized_activation_bytes(int64_t tokens, int64_t cols) noexcept;
/// Offset of the metadata inside those bytes (256-byte aligned).
[[nodiscard]] uint64_t quantized_activation_meta_offset(int64_t tokens, int64_t cols) noexcept;

/// Quantizes `tokens` rows of x (row stride x_stride floats, cols % 32 == 0) into `scratch` as
/// ggml's quantize_row_q8_0 does (amax/127, round half away from zero, scale rounded to fp16),
/// adding Σq per block. Lets a programmatic dependent kernel launch early.
[[nodiscard]] Status quantize_activations(const float* x, int64_t tokens, int64_t cols,
                                          int64_t x_stride, void* scratch, Stream stream) noexcept;

/// One GEMV launch per format; `config` must be one of gemv_variants() (tokens == 1) or
/// gemv_default(dtype, tokens). `programmatic`: the kernel may start before the previous one
/// on the stream ends (it waits before reading activations).
[[nodiscard]] Status gemv_q4_0(const WeightsView& w, const ActivationsView& x, int tokens, float* y,
                               int64_t y_stride, const GemvConfig& config, Stream stream,
                               bool programmatic) noexcept;
[[nodiscard]] Status gemv_q8_0(const WeightsView& w, const ActivationsView& x, int tokens, float* y,
                               int64_t y_stride, const GemvConfig& config, Stream stream,
                               bool programmatic) noexcept;
[[nodiscard]] Status gemv_q4_k(const WeightsView& w, const ActivationsView& x, int tokens, float* y,
                               int64_t y_stride, const GemvConfig& config, Stream stream,
                               bool programmatic) noexcept;
/// F16 (bf16 false) or BF16 weights; falls back to a scalar-load kernel when cols % 8 != 0 or
/// x is not 16-byte aligned row by row.
[[nodiscard]] Status gemv_half(const WeightsView& w, const ActivationsView& x, bool bf16,
                               int tokens, float* y, int64_t y_stride, const GemvConfig& config,
                               Stream stream) noexcept;

}  // namespace polyinfer::inline v0::detail::gpu
