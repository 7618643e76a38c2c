// SPDX-License-Identifier: Apache-2.0
// Internal seam between matmul.cu and the per-format GEMV files: views and entry points.
#pragma once

#include <cstdint>

#include "kernels/common/block_formats.hpp"
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
  const uint16_t* half = nullptr;  ///< f16 bits in half_slot() order (the integer GEMM's f16 path)
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

/// Where the Q4_K quants plane keeps 16-byte chunk c (GGUF order) of a row of `chunks`: in
/// tiles of 64 chunks (1 KB, 8 super-blocks), the first halves of the 32 sub-block pairs come
/// first, then the second halves, so a warp whose lane l reads pair l of a tile loads 512
/// contiguous bytes per instruction (GGUF order: lanes 32 bytes apart, every sector fetched
/// twice). Chunks after the last whole tile keep GGUF order.
__host__ __device__ inline int64_t q4_k_chunk_offset(int64_t c, int64_t chunks) {
  const int64_t tile = c / 64;
  if (tile >= chunks / 64) return c * 16;
  return tile * 1024 + (c & 1) * 512 + (c % 64) / 2 * 16;
}

/// The 12 packed bytes of a Q4_K header as uploaded (split_q4_k_kernel): ggml's 6-bit scales
/// and mins rearranged by sub-block pair, so that pair p's four values sit in byte p of the
/// three words after {d, dmin}: word 1 byte p = sc(2p) | (sc(2p+1) >> 4) << 6, word 2 byte p =
/// m(2p) | (m(2p+1) >> 4) << 6, word 3 byte p = (sc(2p+1) & 15) | (m(2p+1) & 15) << 4. A GEMV
/// lane (one pair a chunk) then unpacks its pair with three shifts and a few masks, where
/// ggml's order (sub-blocks j and j + 4 share bytes) needed both halves and a select per value.
__host__ __device__ inline void q4_k_pair_header(const uint8_t* ggml_scales, uint8_t* out) {
  for (int p = 0; p < 4; ++p) {
    uint8_t sc0 = 0, m0 = 0, sc1 = 0, m1 = 0;
    get_scale_min_k4(2 * p, ggml_scales, &sc0, &m0);
    get_scale_min_k4(2 * p + 1, ggml_scales, &sc1, &m1);
    out[p] = static_cast<uint8_t>(sc0 | ((sc1 >> 4) << 6));
    out[4 + p] = static_cast<uint8_t>(m0 | ((m1 >> 4) << 6));
    out[8 + p] = static_cast<uint8_t>((sc1 & 15) | ((m1 & 15) << 4));
  }
}

/// The fp16 value in half `which` (0: low, 1: high) of a 32-bit word, as a float (a Q4_K
/// header's d and dmin, block scales read two at a time).
__device__ __forceinline__ float half_bits(uint32_t word, int which) {
  return __half2float(__ushort_as_half(static_cast<unsigned short>(word >> (16 * which))));
}

/// Scales and mins (6 bits each) of sub-blocks 2·pair and 2·pair + 1 of an uploaded Q4_K
/// header {d, dmin, q4_k_pair_header()} read as four words.
__device__ __forceinline__ void q4_k_pair_scale_min(const uint4& header, int pair, int* scale0,
                                                    int* min0, int* scale1, int* min1) {
  const int shift = 8 * pair;
  const uint32_t y = header.y >> shift;
  const uint32_t z = header.z >> shift;
  const uint32_t w = header.w >> shift;
  *scale0 = static_cast<int>(y & 63u);
  *min0 = static_cast<int>(z & 63u);
  *scale1 = static_cast<int>((w & 15u) | ((y >> 2) & 48u));
  *min1 = static_cast<int>(((w >> 4) & 15u) | ((z >> 2) & 48u));
}

/// Scale and min of sub-block `sub_block` (0..7) of an uploaded Q4_K header.
__device__ __forceinline__ void q4_k_scale_min(const uint4& header, int sub_block, int* scale,
                                               int* min) {
  int scale0 = 0, min0 = 0, scale1 = 0, min1 = 0;
  q4_k_pair_scale_min(header, sub_block / 2, &scale0, &min0, &scale1, &min1);
  *scale = (sub_block & 1) != 0 ? scale1 : scale0;
  *min = (sub_block & 1) != 0 ? min1 : min0;
}

/// Offset of the metadata inside quantized_activation_bytes(tokens, cols) (256-byte aligned).
[[nodiscard]] uint64_t quantized_activation_meta_offset(int64_t tokens, int64_t cols) noexcept;

/// Quantized activations of `tokens` rows of `cols` in a scratch laid out as above: token t's
/// block b has its quants at qs + t·cols + 32·b and its metadata at meta[t·cols/32 + b].
struct QuantizedRows {
  int8_t* qs = nullptr;
  int2* meta = nullptr;
};

[[nodiscard]] inline QuantizedRows quantized_rows(void* scratch, int64_t tokens,
                                                  int64_t cols) noexcept {
  if (scratch == nullptr) return {};
  auto* qs = static_cast<int8_t*>(scratch);
  return {qs, reinterpret_cast<int2*>(qs + quantized_activation_meta_offset(tokens, cols))};
}

/// Quantizes the 32 values a full warp holds (lane l: value l of the block at flat index
/// `first`, a multiple of 32, of `rows`) as quantize_activations does: same rounding, bit for bit.
/// Producers of GEMV inputs (norms, SiLU·mul, attention) call it instead of a separate launch.
__device__ __forceinline__ void quantize_warp_block(float v, const QuantizedRows& rows,
                                                    int64_t first) {
  float amax = fabsf(v);
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) amax = fmaxf(amax, shfl_xor(amax, offset));
  const float d = amax / 127.0f;
  const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
  const int q = static_cast<int>(roundf(v * inverse));
  int sum = q;
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) sum += shfl_xor(sum, offset);
  const int lane = static_cast<int>(threadIdx.x) % 32;
  rows.qs[first + lane] = static_cast<int8_t>(q);
  if (lane == 0) {
    const float stored_d = fp16_to_f32(f32_to_fp16(d));  // the block scale as GGUF keeps it
    rows.meta[first / 32] = make_int2(__float_as_int(stored_d), sum);
  }
}

/// A residual connection and the RMSNorm after it, folded into the single-token GEMVs around
/// them (gemv_add_residual(), gemv_normed()). Producer (o, down): y is the residual stream,
/// y[r] += product; with next_weight, y·next_weight into `normed` and each block's Σ y² into
/// partials[blockIdx.x]. Consumer (qkv, gate_up): its input is `normed` scaled by
/// 1/sqrt(Σ partials[0..count) / cols + eps), quantized by each block into shared memory as
/// quantize_activations() would. NormFold's scratch, plus the producer's next-norm weights.
struct FoldView : NormFold {
  const float* next_weight = nullptr;
};

/// One GEMV launch per format; `config` must be one of gemv_variants() (tokens == 1) or
/// gemv_default(dtype, tokens, cols). `programmatic`: the kernel may start before the previous one
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
/// The folded single-token GEMV (FoldView) per format: `consumer` reads fold->normed (x unused),
/// else the producer adds its products into y and sets fold->count (at most `capacity`
/// partials). `config` as for the plain GEMV; shapes without a folded kernel run (2, 2, 8, 4).
[[nodiscard]] Status gemv_fold_q4_0(const WeightsView& w, const ActivationsView& x, float* y,
                                    const GemvConfig& config, bool consumer, FoldView* fold,
                                    int64_t capacity, Stream stream) noexcept;
[[nodiscard]] Status gemv_fold_q8_0(const WeightsView& w, const ActivationsView& x, float* y,
                                    const GemvConfig& config, bool consumer, FoldView* fold,
                                    int64_t capacity, Stream stream) noexcept;
[[nodiscard]] Status gemv_fold_q4_k(const WeightsView& w, const ActivationsView& x, float* y,
                                    const GemvConfig& config, bool consumer, FoldView* fold,
                                    int64_t capacity, Stream stream) noexcept;
/// Whether launch_mmq() runs `dtype` on this context's device (int8 MMA: CUDA, sm_80 and later).
[[nodiscard]] bool mmq_available(const Context::Impl& impl, DType dtype) noexcept;
/// The integer tensor-core GEMM (mmq.cu) for Q4_0 / Q8_0 / Q4_K weights and `tokens` rows of
/// quantized activations (x.qs, x.meta); y as the GEMVs write it. `half`: its f16 MMA form,
/// the weights (any of the three) dequantized in registers against x.half (tokens rows of cols
/// f16, each block of 32 in half_slot() order, from stage_half_activations()).
[[nodiscard]] Status launch_mmq(Context::Impl& impl, const WeightsView& w, DType dtype,
                                const ActivationsView& x, int64_t tokens, float* y,
                                int64_t y_stride, bool programmatic, bool half = false) noexcept;
/// f32 rows (stride x_stride) to f16 in half_slot() order per block of 32, for launch_mmq(…, half).
[[nodiscard]] Status stage_half_activations(const float* x, int64_t tokens, int64_t cols,
                                            int64_t x_stride, uint16_t* out,
                                            Stream stream) noexcept;
/// F16 (bf16 false) or BF16 weights; falls back to a scalar-load kernel when cols % 8 != 0 or
/// x is not 16-byte aligned row by row.
[[nodiscard]] Status gemv_half(const WeightsView& w, const ActivationsView& x, bool bf16,
                               int tokens, float* y, int64_t y_stride, const GemvConfig& config,
                               Stream stream) noexcept;

}  // namespace polyinfer::inline v0::detail::gpu
