// SPDX-License-Identifier: Apache-2.0
// Quantized GEMM on int8 tensor cores (mma.sync m16n8k32, sm_80 and later) for 9 to a few
// hundred activation rows: Q4_0 / Q8_0 / Q4_K weights read once, in their upload layout, against
// activations quantized to 8-bit blocks of 32; one MMA per block of 32 columns, its scales
// applied in f32. The weights are not dequantized to f16 first, as the cuBLAS path does.
#include <algorithm>
#include <cstdlib>
#include <string_view>
#include <type_traits>

#include "kernels/cuda/context.cuh"
#include "kernels/cuda/gemv_kernel.cuh"

#if !POLYINFER_GPU_HIP && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define POLYINFER_MMQ_DEVICE 1
#else
#define POLYINFER_MMQ_DEVICE 0
#endif

namespace polyinfer::inline v0::detail::gpu {
// HIP has no mma.sync: there mmq_available() is false and nothing below is compiled.
#if !POLYINFER_GPU_HIP
namespace {

constexpr int kMmqWarps = 4;
// A warp owns 32 weight rows: two 16-row MMA tiles. Lane l (g = l / 4, t = l % 4) reads rows
// g and g + 8 of each tile: its four "thread rows" i = 0..3 are tile i / 2, row g + 8·(i % 2).
constexpr int kWarpRows = 32;
constexpr int kBlockRows = kMmqWarps * kWarpRows;
constexpr int kThreadRows = 4;
// Every format's chunk is 128 quant bytes per row (Q4_0: 8 blocks, Q8_0: 4, Q4_K: one
// super-block), staged in rows of 144 bytes: a lane's word at 16b + 4t (or 32b + 4t) of rows
// g = 0..7 then falls in bank 4g + … + t, distinct for the 32 lanes.
constexpr int kChunkBytes = 128;
constexpr int kRowBytes = kChunkBytes + 16;
constexpr int kScaleBytes = 16;  // per row and chunk: 8 fp16 scales, 4, or the Q4_K header

/// c = a·b for one block of 32 columns: a is 16 weight rows × 32 (s8), b 32 × 8 tokens (s8).
/// Fragments as PTX's m16n8k32 .s8: a[0] row g, columns 4t..4t+3; a[1] row g + 8, the same
/// columns; a[2] / a[3] columns 16 + 4t..; b0 token g, columns 4t..4t+3; b1 columns 16 + 4t..;
/// c[0], c[1] row g, tokens 2t, 2t + 1; c[2], c[3] row g + 8.
__device__ __forceinline__ void mma_block(const uint32_t (&a)[4], uint32_t b0, uint32_t b1,
                                          int (&c)[4]) {
#if POLYINFER_MMQ_DEVICE
  asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%10, %10, %10, %10};"
      : "=r"(c[0]), "=r"(c[1]), "=r"(c[2]), "=r"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "r"(0));
#else
  (void)a;
  (void)b0;
  (void)b1;
  c[0] = c[1] = c[2] = c[3] = 0;
#if defined(__CUDA_ARCH__)
  __trap();  // code built for a GPU before sm_80 running on a later one: fail, never wrong sums
#endif
#endif
}

/// c += a·b for 16 weight rows × 16 columns (f16) and 8 tokens, f32 accumulation. Fragments as
/// PTX's m16n8k16 .f16: a[0] row g, columns 2t, 2t + 1; a[1] row g + 8; a[2] / a[3] columns
/// 8 + 2t, 9 + 2t; b0 token g, columns 2t, 2t + 1; b1 columns 8 + 2t, 9 + 2t; c as mma_block's.
__device__ __forceinline__ void mma_half(const uint32_t (&a)[4], uint32_t b0, uint32_t b1,
                                         float (&c)[4]) {
#if POLYINFER_MMQ_DEVICE
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  (void)a;
  (void)b0;
  (void)b1;
  (void)c;
#if defined(__CUDA_ARCH__)
  __trap();
#endif
#endif
}

__device__ __forceinline__ uint32_t word_at(const uint8_t* p) {
  return *reinterpret_cast<const uint32_t*>(p);
}

/// Stages the `count` fp16 scales of a row's chunk (first block `first` of `blocks`): one
/// asynchronous copy where whole and aligned, else ordinary loads (the last scale repeated
/// past the row's end, where the activations are zeros).
template <int kCount>
__device__ __forceinline__ void stage_scales(uint8_t* shared, const uint8_t* row_scales,
                                             int64_t first, int64_t blocks) {
  const auto* halves = reinterpret_cast<const unsigned short*>(row_scales);
  const unsigned short* source = halves + first;
  constexpr int kBytes = 2 * kCount;
  if (first + kCount <= blocks && (reinterpret_cast<uintptr_t>(source) % kBytes) == 0) {
    copy_async<kBytes>(shared, source, kBytes);
    return;
  }
  auto* target = reinterpret_cast<unsigned short*>(shared);
  for (int i = 0; i < kCount; ++i) target[i] = halves[min_i64(first + i, blocks - 1)];
}

/// Block scale `which` (0 or 1) of a word holding two f16 scales, in both halves of a pair.
__device__ __forceinline__ __half2 scale_pair(uint32_t word, int which) {
  const __half d = __ushort_as_half(static_cast<unsigned short>(word >> (16 * which)));
  return __halves2half2(d, d);
}

/// (v − bias)·d for a pair of f16 numbers v = 1024 + q (q's bits under the exponent of 1024):
/// the pair of weights q·d as an MMA operand word (Q4_0 / Q8_0's half_fragments).
__device__ __forceinline__ uint32_t scaled_pair(uint32_t bits, __half2 bias, __half2 d) {
  const __half2 q = __hsub2(*reinterpret_cast<const __half2*>(&bits), bias);
  const __half2 v = __hmul2(q, d);
  return *reinterpret_cast<const uint32_t*>(&v);
}

constexpr uint32_t kLowNibbles = 0x0F0F0F0Fu;

// A format gives: piece() (global address of 16-byte piece p, 0..7, of a row's chunk, and how
// many of its bytes exist), stage_row_scales(), fragments() (the A tiles of block b from the
// staged rows) and scales() (per tile row: the factor ws of Σ q·qx and, with kMin, wm of Σ qx:
// y += dx·(ws·Σ q·qx − wm·Σ qx)).

// Q4_0: block b is 16 bytes, byte j holding element j (low nibble) and j + 16 (high); a lane's
// word at byte 4t gives both of its operand words. Σ d(q − 8)·qx = d·Σ q·qx − 8d·Σ qx.
struct MmqQ4_0 {
  static constexpr int kBlocks = 8;
  static constexpr bool kMin = true;

  __device__ static const uint8_t* piece(const WeightsView& w, int64_t row, int64_t chunk, int p,
                                         int* bytes) {
    const int64_t block = chunk * kBlocks + p;
    *bytes = block < w.cols / 32 ? 16 : 0;
    return w.quants + row * w.row_bytes + min_i64(block, w.cols / 32 - 1) * 16;
  }

  __device__ static void stage_row_scales(const WeightsView& w, int64_t row, int64_t chunk,
                                          uint8_t* shared) {
    stage_scales<8>(shared, w.scales + row * w.scales_row_bytes, chunk * kBlocks, w.cols / 32);
  }

  __device__ static void fragments(const uint8_t* const (&rows)[kThreadRows], int b, int t,
                                   uint32_t (&a)[2][4]) {
#pragma unroll
    for (int f = 0; f < 2; ++f) {
      const uint32_t top = word_at(rows[2 * f] + 16 * b + 4 * t);
      const uint32_t bottom = word_at(rows[2 * f + 1] + 16 * b + 4 * t);
      a[f][0] = top & kLowNibbles;
      a[f][1] = bottom & kLowNibbles;
      a[f][2] = (top >> 4) & kLowNibbles;
      a[f][3] = (bottom >> 4) & kLowNibbles;
    }
  }

  __device__ static void scales(const uint4 (&s)[kThreadRows], int b, float (&ws)[kThreadRows],
                                float (&wm)[kThreadRows]) {
#pragma unroll
    for (int i = 0; i < kThreadRows; ++i) {
      const uint32_t word = b < 2 ? s[i].x : b < 4 ? s[i].y : b < 6 ? s[i].z : s[i].w;
      ws[i] = half_bits(word, b & 1);
      wm[i] = 8.0f * ws[i];
    }
  }

  /// f16 fragments of block b, weights d·(q − 8) rounded to f16, for two k16 MMAs per tile
  /// (a[f][m]): with w the word at byte 4t, nibble pairs (w >> s) & 0x000F000F are elements
  /// {4t, 4t + 2} (s = 0), {4t + 1, 4t + 3} (8), {4t + 16, 4t + 18} (4), {4t + 17, 4t + 19} (12).
  /// MMA m takes them as columns {2t, 2t + 1} and {8 + 2t, 9 + 2t}: the k order half_slot()
  /// stages the activations in.
  __device__ static void half_fragments(const uint8_t* const (&rows)[kThreadRows],
                                        const uint4 (&s)[kThreadRows], int b, int t,
                                        uint32_t (&a)[2][2][4]) {
#pragma unroll
    for (int f = 0; f < 2; ++f) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {  // row g, then g + 8
        const int i = 2 * f + h;
        const uint32_t word = word_at(rows[i] + 16 * b + 4 * t);
        const uint32_t scales = b < 2 ? s[i].x : b < 4 ? s[i].y : b < 6 ? s[i].z : s[i].w;
        const __half2 d = scale_pair(scales, b & 1);
        const __half2 bias = __float2half2_rn(1032.0f);  // 1024 (the magic) + 8
        const auto dequantize = [&](uint32_t nibbles) {
          return scaled_pair((nibbles & 0x000F000Fu) | 0x64006400u, bias, d);  // f16 1024 + q
        };
        a[f][0][h] = dequantize(word);
        a[f][0][2 + h] = dequantize(word >> 8);
        a[f][1][h] = dequantize(word >> 4);
        a[f][1][2 + h] = dequantize(word >> 12);
      }
    }
  }
};

/// Where the f16 MMA path stages element e (0..31) of an activation block: the column the
/// weight fragments of MmqQ4_0::half_fragments give it.
__host__ __device__ constexpr int half_slot(int e) {
  const int m = e / 16;  // which k16 MMA
  const int r = e % 16;
  const int t = r / 4;
  const int odd = r % 2;  // elements 4t + 1, 4t + 3 go to columns 8 + 2t, 9 + 2t
  const int high = (r % 4) / 2;
  return 16 * m + (odd != 0 ? 8 : 0) + 2 * t + high;
}

// Q8_0: block b is 32 bytes; a lane's operand words are those at bytes 4t and 16 + 4t.
struct MmqQ8_0 {
  static constexpr int kBlocks = 4;
  static constexpr bool kMin = false;

  __device__ static const uint8_t* piece(const WeightsView& w, int64_t row, int64_t chunk, int p,
                                         int* bytes) {
    const int64_t block = chunk * kBlocks + p / 2;
    *bytes = block < w.cols / 32 ? 16 : 0;
    return w.quants + row * w.row_bytes + min_i64(block, w.cols / 32 - 1) * 32 + 16 * (p % 2);
  }

  __device__ static void stage_row_scales(const WeightsView& w, int64_t row, int64_t chunk,
                                          uint8_t* shared) {
    stage_scales<4>(shared, w.scales + row * w.scales_row_bytes, chunk * kBlocks, w.cols / 32);
  }

  __device__ static void fragments(const uint8_t* const (&rows)[kThreadRows], int b, int t,
                                   uint32_t (&a)[2][4]) {
#pragma unroll
    for (int f = 0; f < 2; ++f) {
      a[f][0] = word_at(rows[2 * f] + 32 * b + 4 * t);
      a[f][1] = word_at(rows[2 * f + 1] + 32 * b + 4 * t);
      a[f][2] = word_at(rows[2 * f] + 32 * b + 16 + 4 * t);
      a[f][3] = word_at(rows[2 * f + 1] + 32 * b + 16 + 4 * t);
    }
  }

  __device__ static void scales(const uint4 (&s)[kThreadRows], int b, float (&ws)[kThreadRows],
                                float (&wm)[kThreadRows]) {
#pragma unroll
    for (int i = 0; i < kThreadRows; ++i) {
      ws[i] = half_bits(b < 2 ? s[i].x : s[i].y, b & 1);
      wm[i] = 0.0f;
    }
  }

  /// f16 fragments of block b in half_slot() order, weights d·q rounded to f16: the word at
  /// byte 16m + 4t holds elements 16m + 4t … 16m + 4t + 3; bytes {0, 2} and {1, 3}, biased to
  /// unsigned and placed under the f16 exponent of 1024, are the pairs MMA m takes.
  __device__ static void half_fragments(const uint8_t* const (&rows)[kThreadRows],
                                        const uint4 (&s)[kThreadRows], int b, int t,
                                        uint32_t (&a)[2][2][4]) {
#pragma unroll
    for (int f = 0; f < 2; ++f) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {  // row g, then g + 8
        const int i = 2 * f + h;
        const __half2 d = scale_pair(b < 2 ? s[i].x : s[i].y, b & 1);
        const __half2 bias = __float2half2_rn(1152.0f);  // 1024 (the magic) + 128
#pragma unroll
        for (int m = 0; m < 2; ++m) {
          const uint32_t word = word_at(rows[i] + 32 * b + 16 * m + 4 * t) ^ 0x80808080u;
          a[f][m][h] = scaled_pair(__byte_perm(word, 0x64646464u, 0x5240), bias, d);
          a[f][m][2 + h] = scaled_pair(__byte_perm(word, 0x64646464u, 0x5341), bias, d);
        }
      }
    }
  }
};

// Q4_K: a chunk is one super-block (8 sub-blocks of 32), staged in GGUF order (its pieces found
// through q4_k_chunk_offset). Quant bytes 32p..32p+31 hold sub-block 2p in their low nibbles
// and 2p + 1 in their high ones. Σ (d·sc·q − dmin·m)·qx = d·sc·Σ q·qx − dmin·m·Σ qx.
struct MmqQ4_K {
  static constexpr int kBlocks = 8;
  static constexpr bool kMin = true;

  __device__ static const uint8_t* piece(const WeightsView& w, int64_t row, int64_t chunk, int p,
                                         int* bytes) {
    *bytes = 16;  // rows are whole super-blocks
    return w.quants + row * w.row_bytes + q4_k_chunk_offset(chunk * 8 + p, w.chunks);
  }

  __device__ static void stage_row_scales(const WeightsView& w, int64_t row, int64_t chunk,
                                          uint8_t* shared) {
    copy_async<16>(shared, w.scales + row * w.scales_row_bytes + chunk * 16, 16);
  }

  __device__ static void fragments(const uint8_t* const (&rows)[kThreadRows], int b, int t,
                                   uint32_t (&a)[2][4]) {
    const int pair = b / 2;
    const int shift = 4 * (b & 1);
#pragma unroll
    for (int f = 0; f < 2; ++f) {
      a[f][0] = (word_at(rows[2 * f] + 32 * pair + 4 * t) >> shift) & kLowNibbles;
      a[f][1] = (word_at(rows[2 * f + 1] + 32 * pair + 4 * t) >> shift) & kLowNibbles;
      a[f][2] = (word_at(rows[2 * f] + 32 * pair + 16 + 4 * t) >> shift) & kLowNibbles;
      a[f][3] = (word_at(rows[2 * f + 1] + 32 * pair + 16 + 4 * t) >> shift) & kLowNibbles;
    }
  }

  __device__ static void scales(const uint4 (&s)[kThreadRows], int b, float (&ws)[kThreadRows],
                                float (&wm)[kThreadRows]) {
#pragma unroll
    for (int i = 0; i < kThreadRows; ++i) {
      int scale = 0;
      int min = 0;
      q4_k_scale_min(s[i], b, &scale, &min);
      ws[i] = half_bits(s[i].x, 0) * static_cast<float>(scale);
      wm[i] = half_bits(s[i].x, 1) * static_cast<float>(min);
    }
  }

  /// f16 fragments of sub-block b in half_slot() order, weights d·sc·q − dmin·m (one f16 fma
  /// on the factors rounded to f16): the word at byte 32(b / 2) + 16m + 4t, shifted to b's
  /// nibbles, gives elements {4t, 4t + 2} and, 8 bits on, {4t + 1, 4t + 3} of MMA m.
  __device__ static void half_fragments(const uint8_t* const (&rows)[kThreadRows],
                                        const uint4 (&s)[kThreadRows], int b, int t,
                                        uint32_t (&a)[2][2][4]) {
    const int pair = b / 2;
    const int shift = 4 * (b & 1);
#pragma unroll
    for (int f = 0; f < 2; ++f) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {  // row g, then g + 8
        const int i = 2 * f + h;
        int scale = 0;
        int min = 0;
        q4_k_scale_min(s[i], b, &scale, &min);
        const __half2 factor = __float2half2_rn(half_bits(s[i].x, 0) * static_cast<float>(scale));
        const __half2 offset = __float2half2_rn(-half_bits(s[i].x, 1) * static_cast<float>(min));
        const __half2 magic = __float2half2_rn(1024.0f);
        const auto dequantize = [&](uint32_t nibbles) {
          const uint32_t bits = (nibbles & 0x000F000Fu) | 0x64006400u;  // f16 1024 + q
          const __half2 q = __hsub2(*reinterpret_cast<const __half2*>(&bits), magic);
          const __half2 v = __hfma2(q, factor, offset);
          return *reinterpret_cast<const uint32_t*>(&v);
        };
#pragma unroll
        for (int m = 0; m < 2; ++m) {
          const uint32_t word = word_at(rows[i] + 32 * pair + 16 * m + 4 * t) >> shift;
          a[f][m][h] = dequantize(word);
          a[f][m][2 + h] = dequantize(word >> 8);
        }
      }
    }
  }
};

/// x (f32 rows of `cols`, stride x_stride) → f16 rows of `cols`, each block of 32 in
/// half_slot() order. Launched programmatically: x may be the previous kernel's output.
__global__ void stage_half_kernel(const float* x, int64_t cols, int64_t x_stride, uint16_t* out) {
  pdl_begin();
  const int64_t token = blockIdx.y;  // one grid row per token: no division per value
  const float* row = x + token * x_stride;
  uint16_t* staged = out + token * cols;
  for (int64_t c = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; c < cols;
       c += int64_t{gridDim.x} * blockDim.x) {
    const __half v = __float2half_rn(row[c]);
    staged[c - c % 32 + half_slot(static_cast<int>(c % 32))] = __half_as_ushort(v);
  }
}

/// Shared memory of one pipeline stage: the block's weight rows, their scales, the tokens'
/// activation quants (rows of kBlocks·32 + 16 bytes: bank-conflict-free operand reads) and
/// their block metadata {scale bits, Σ q} by [block][token].
/// With kHalf (the f16 MMA path): activation rows of f16 in half_slot() order, no metadata.
template <class Format, int kTokens, bool kHalf = false>
struct Stage {
  static constexpr int kActivationRow = Format::kBlocks * 32 * (kHalf ? 2 : 1) + 16;
  static constexpr int kWeights = 0;
  static constexpr int kScales = kWeights + kBlockRows * kRowBytes;
  static constexpr int kActivations = kScales + kBlockRows * kScaleBytes;
  static constexpr int kMeta = kActivations + kTokens * kActivationRow;
  static constexpr int kBytes = kMeta + (kHalf ? 0 : Format::kBlocks * kTokens * 8);
};

/// y[t][r] = Σ_c W[r][c]·x̂[t][c] for the block's 128 rows × 8·kGroups tokens over its share of
/// the chunks (blockIdx.y: split of the columns). A pipeline of kStages chunks: weights,
/// scales and activations are copied to shared memory asynchronously (cp.async, 16-byte
/// coalesced pieces) while the MMAs run on an earlier chunk; the first chunks' weights are
/// requested before pdl_wait(). With several splits, each writes its partial sums; the last to
/// arrive adds them in split order (deterministic) and leaves its counter at zero.
/// kHalf (Q4_0): f16 MMA on weights dequantized in registers (scale folded in) against f16
/// activations (x.half, staged in half_slot() order): the sums accumulate in the MMA, with no
/// per-block scaling after it.
template <class Format, int kGroups, int kStages, bool kHalf = false>
__global__ void __launch_bounds__(kMmqWarps* kWarp)
    mmq_kernel(WeightsView w, ActivationsView x, int64_t tokens, float* y, int64_t y_stride,
               int64_t chunks_per_split, float* partials, int* arrivals) {
  constexpr int kTokens = 8 * kGroups;
  constexpr int kBlocks = Format::kBlocks;
  using Layout = Stage<Format, kTokens, kHalf>;
  extern __shared__ __align__(16) uint8_t shared[];

  const int thread = static_cast<int>(threadIdx.x);
  const int lane = thread % kWarp;
  const int warp = thread / kWarp;
  const int g = lane / 4;
  const int t = lane % 4;
  const int64_t block_row = int64_t{blockIdx.x} * kBlockRows;
  const int64_t first_row = block_row + warp * kWarpRows;
  const int64_t first_token = int64_t{blockIdx.z} * kTokens;
  const int64_t blocks = w.cols / 32;
  const int64_t chunks = ceil_div(blocks, kBlocks);
  const int64_t chunk_begin = int64_t{blockIdx.y} * chunks_per_split;
  const int64_t count = min_i64(chunks, chunk_begin + chunks_per_split) - chunk_begin;
  pdl_launch_dependents();

  const auto stage_base = [&](int64_t i) { return shared + (i % kStages) * Layout::kBytes; };
  const auto issue_weights = [&](int64_t i) {
    uint8_t* base = stage_base(i);
    const int64_t chunk = chunk_begin + i;
    for (int index = thread; index < kBlockRows * 8; index += kMmqWarps * kWarp) {
      const int r = index / 8;
      const int p = index % 8;
      const int64_t row = min_i64(block_row + r, w.rows - 1);
      int bytes = 0;
      const uint8_t* source = Format::piece(w, row, chunk, p, &bytes);
      copy_async<16>(base + Layout::kWeights + r * kRowBytes + 16 * p, source, bytes);
    }
    for (int r = thread; r < kBlockRows; r += kMmqWarps * kWarp) {
      Format::stage_row_scales(w, min_i64(block_row + r, w.rows - 1), chunk,
                               base + Layout::kScales + r * kScaleBytes);
    }
  };
  const auto issue_activations = [&](int64_t i) {
    uint8_t* base = stage_base(i);
    const int64_t first_block = (chunk_begin + i) * kBlocks;
    // Activation rows: 8-bit quants, or (kHalf) f16 in half_slot() order; 16-byte pieces.
    constexpr int kElement = kHalf ? 2 : 1;
    constexpr int kPieces = 2 * kElement;  // per block of 32
    const auto* plane =
        kHalf ? reinterpret_cast<const uint8_t*>(x.half) : reinterpret_cast<const uint8_t*>(x.qs);
    for (int index = thread; index < kTokens * kBlocks * kPieces; index += kMmqWarps * kWarp) {
      const int token = index / (kBlocks * kPieces);
      const int p = index % (kBlocks * kPieces);
      const int64_t block = first_block + p / kPieces;
      const bool valid = first_token + token < tokens && block < blocks;
      const uint8_t* source = valid ? plane +
                                          ((first_token + token) * x.cols + block * 32) * kElement +
                                          16 * (p % kPieces)
                                    : plane;
      copy_async<16>(base + Layout::kActivations + token * Layout::kActivationRow + 16 * p, source,
                     valid ? 16 : 0);
    }
    if constexpr (!kHalf) {
      for (int index = thread; index < kTokens * kBlocks; index += kMmqWarps * kWarp) {
        const int token = index / kBlocks;
        const int b = index % kBlocks;
        const int64_t block = first_block + b;
        const bool valid = first_token + token < tokens && block < blocks;
        const int2* source = valid ? x.meta + (first_token + token) * blocks + block : x.meta;
        copy_async<8>(base + Layout::kMeta + (b * kTokens + token) * 8, source, valid ? 8 : 0);
      }
    }
  };

  float acc[2][kGroups][4];
#pragma unroll
  for (int f = 0; f < 2; ++f) {
#pragma unroll
    for (int j = 0; j < kGroups; ++j) {
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[f][j][i] = 0.0f;
    }
  }
  // Weights only before the wait: the activations may be the previous kernel's output.
  for (int i = 0; i < kStages - 1; ++i) {
    if (i < count) issue_weights(i);
  }
  pdl_wait();
  for (int i = 0; i < kStages - 1; ++i) {
    if (i < count) issue_activations(i);
    commit_copies();
  }
  int local_rows[kThreadRows];
#pragma unroll
  for (int i = 0; i < kThreadRows; ++i) {
    local_rows[i] = warp * kWarpRows + 16 * (i / 2) + 8 * (i % 2) + g;
  }
  for (int64_t i = 0; i < count; ++i) {
    wait_copies<kStages - 2>();  // chunk i has landed (for this thread; the barrier: for all)
    __syncthreads();             // … and every thread is done with chunk i − 1's stage
    if (i + kStages - 1 < count) {
      issue_weights(i + kStages - 1);
      issue_activations(i + kStages - 1);
    }
    commit_copies();
    const uint8_t* base = stage_base(i);
    const uint8_t* rows[kThreadRows];
    uint4 row_scales[kThreadRows];
#pragma unroll
    for (int r = 0; r < kThreadRows; ++r) {
      rows[r] = base + Layout::kWeights + local_rows[r] * kRowBytes;
      row_scales[r] =
          *reinterpret_cast<const uint4*>(base + Layout::kScales + local_rows[r] * kScaleBytes);
    }
    const uint8_t* activations = base + Layout::kActivations;
    const int64_t valid = min_i64(kBlocks, blocks - (chunk_begin + i) * kBlocks);
    if constexpr (kHalf) {
#pragma unroll
      for (int b = 0; b < kBlocks; ++b) {
        if (b < valid) {
          uint32_t a[2][2][4];
          Format::half_fragments(rows, row_scales, b, t, a);
#pragma unroll
          for (int j = 0; j < kGroups; ++j) {
            const uint8_t* operand = activations + (8 * j + g) * Layout::kActivationRow + 64 * b;
#pragma unroll
            for (int m = 0; m < 2; ++m) {
              const uint32_t b0 = word_at(operand + 32 * m + 4 * t);
              const uint32_t b1 = word_at(operand + 32 * m + 16 + 4 * t);
#pragma unroll
              for (int f = 0; f < 2; ++f) mma_half(a[f][m], b0, b1, acc[f][j]);
            }
          }
        }
      }
    } else {
      const int4* meta = reinterpret_cast<const int4*>(base + Layout::kMeta);
#pragma unroll
      for (int b = 0; b < kBlocks; ++b) {
        if (b < valid) {
          uint32_t a[2][4];
          float ws[kThreadRows];
          float wm[kThreadRows];
          Format::fragments(rows, b, t, a);
          Format::scales(row_scales, b, ws, wm);
#pragma unroll
          for (int j = 0; j < kGroups; ++j) {
            const uint8_t* operand = activations + (8 * j + g) * Layout::kActivationRow + 32 * b;
            const uint32_t b0 = word_at(operand + 4 * t);
            const uint32_t b1 = word_at(operand + 16 + 4 * t);
            const int4 m = meta[(b * kTokens + 8 * j + 2 * t) / 2];  // tokens 2t, 2t + 1
            const float dx0 = __int_as_float(m.x);
            const float dx1 = __int_as_float(m.z);
#pragma unroll
            for (int f = 0; f < 2; ++f) {
              int c[4];
              mma_block(a[f], b0, b1, c);
              // |c| ≤ 32·127·127 < 2^22: small_int_to_float is exact.
              acc[f][j][0] = fmaf(ws[2 * f] * dx0, small_int_to_float(c[0]), acc[f][j][0]);
              acc[f][j][1] = fmaf(ws[2 * f] * dx1, small_int_to_float(c[1]), acc[f][j][1]);
              acc[f][j][2] = fmaf(ws[2 * f + 1] * dx0, small_int_to_float(c[2]), acc[f][j][2]);
              acc[f][j][3] = fmaf(ws[2 * f + 1] * dx1, small_int_to_float(c[3]), acc[f][j][3]);
              if constexpr (Format::kMin) {
                const float sum0 = dx0 * small_int_to_float(m.y);  // dx·Σ qx, |Σ qx| ≤ 4064
                const float sum1 = dx1 * small_int_to_float(m.w);
                acc[f][j][0] = fmaf(-wm[2 * f], sum0, acc[f][j][0]);
                acc[f][j][1] = fmaf(-wm[2 * f], sum1, acc[f][j][1]);
                acc[f][j][2] = fmaf(-wm[2 * f + 1], sum0, acc[f][j][2]);
                acc[f][j][3] = fmaf(-wm[2 * f + 1], sum1, acc[f][j][3]);
              }
            }
          }
        }
      }
    }
  }
  wait_copies<0>();  // no copy may land after the block exits

  const bool split = gridDim.y > 1;
#pragma unroll
  for (int f = 0; f < 2; ++f) {
#pragma unroll
    for (int j = 0; j < kGroups; ++j) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int64_t r = first_row + 16 * f + g + 8 * (i / 2);
        const int64_t token = first_token + 8 * j + 2 * t + (i % 2);
        if (r >= w.rows || token >= tokens) continue;
        if (split) {
          partials[(int64_t{blockIdx.y} * tokens + token) * w.rows + r] = acc[f][j][i];
        } else {
          y[token * y_stride + r] = acc[f][j][i];
        }
      }
    }
  }
  if (!split) return;
  if (!arrives_last(arrivals + int64_t{blockIdx.z} * gridDim.x + blockIdx.x,
                    static_cast<int>(gridDim.y))) {
    return;
  }
  // Four outputs per thread at a time, each over every split: their loads are all in flight
  // together (one output at a time, this tail took longer than the MMAs at 4096 rows).
  constexpr int kOutputs = 4;
  const int splits = static_cast<int>(gridDim.y);
  for (int first = thread; first < kBlockRows * kTokens; first += kOutputs * kMmqWarps * kWarp) {
    float sum[kOutputs];
    const float* source[kOutputs];
    bool valid[kOutputs];
#pragma unroll
    for (int o = 0; o < kOutputs; ++o) {
      const int index = first + o * kMmqWarps * kWarp;
      const int64_t r = block_row + index % kBlockRows;
      const int64_t token = first_token + index / kBlockRows;
      valid[o] = index < kBlockRows * kTokens && r < w.rows && token < tokens;
      source[o] = partials + (valid[o] ? token * w.rows + r : 0);
      sum[o] = 0.0f;
    }
    const int64_t split_stride = tokens * w.rows;
#pragma unroll 4
    for (int s = 0; s < splits; ++s) {
#pragma unroll
      for (int o = 0; o < kOutputs; ++o) sum[o] += load_coherent(source[o] + s * split_stride);
    }
#pragma unroll
    for (int o = 0; o < kOutputs; ++o) {
      if (!valid[o]) continue;
      const int index = first + o * kMmqWarps * kWarp;
      y[(first_token + index / kBlockRows) * y_stride + block_row + index % kBlockRows] = sum[o];
    }
  }
}

/// Launches mmq_kernel<Format, kGroups, kStages> with its dynamic shared memory (the limit set
/// once per device).
template <class Format, int kGroups, int kStages, bool kHalf>
Status launch_groups(Context::Impl& impl, dim3 grid, bool programmatic, const WeightsView& w,
                     const ActivationsView& x, int64_t tokens, float* y, int64_t y_stride,
                     int64_t per_split, float* partials, int* arrivals) noexcept {
  constexpr size_t kShared = size_t{kStages} * Stage<Format, 8 * kGroups, kHalf>::kBytes;
  const auto kernel = &mmq_kernel<Format, kGroups, kStages, kHalf>;
  POLYINFER_GPU_TRY(
      allow_shared_bytes(reinterpret_cast<const void*>(kernel), static_cast<int>(kShared)));
  prefer_carveout(reinterpret_cast<const void*>(kernel), 100);  // two blocks per multiprocessor
  return launch(kernel, grid, dim3(kMmqWarps * kWarp), kShared, impl.stream, programmatic, w, x,
                tokens, y, y_stride, per_split, partials, arrivals);
}

template <class Format, bool kHalf = false>
Status dispatch_mmq(Context::Impl& impl, const WeightsView& w, const ActivationsView& x,
                    int64_t tokens, float* y, int64_t y_stride, bool programmatic) noexcept {
  const int groups = tokens <= 16 ? 2 : tokens <= 32 ? 4 : 8;
  const int64_t tile_tokens = 8 * groups;
  const int64_t row_tiles = ceil_div(w.rows, kBlockRows);
  const int64_t token_tiles = ceil_div(tokens, tile_tokens);
  const int64_t chunks = ceil_div(w.cols / 32, Format::kBlocks);
  if (row_tiles > INT32_MAX || token_tiles > 65535) return Status::kUnsupported;
  // Splits of the columns, each of at least two chunks, for one wave of up to two blocks per
  // multiprocessor (Q4_0, Q4_K), or at least two blocks per multiprocessor (Q8_0). Measured on
  // an H200 (docs/benchmarks.md, session 10): rounding down, Q4_0 14336×4096 at 16 tokens took
  // 30.4 µs against 37.5 (q4_0 decode of 16–64 sequences +4–5 %), Q4_K 38.4 against 46.9, but
  // Q8_0 45.0 against 35.4. POLYINFER_GPU_MMQ_WAVE=floor / ceil picks one rounding (tuning).
  const int64_t base = row_tiles * token_tiles;
  static const int wave = [] {
    const char* env = std::getenv("POLYINFER_GPU_MMQ_WAVE");
    if (env == nullptr) return 0;
    return std::string_view(env) == "ceil" ? 1 : std::string_view(env) == "floor" ? -1 : 0;
  }();
  const bool round_up = wave > 0 || (wave == 0 && std::is_same_v<Format, MmqQ8_0>);
  const int64_t resident = 2 * int64_t{impl.multiprocessors};
  const int64_t wanted =
      round_up ? ceil_div(resident, base) : std::max<int64_t>(1, resident / base);
  int64_t splits = std::clamp<int64_t>(wanted, 1, std::max<int64_t>(1, chunks / 2));
  splits = std::min<int64_t>(splits, 65535);
  const int64_t per_split = ceil_div(chunks, splits);
  splits = ceil_div(chunks, per_split);
  float* partials = nullptr;
  int* arrivals = nullptr;
  if (splits > 1) {
    POLYINFER_GPU_TRY(
        impl.reserve(impl.gemm_partials, static_cast<uint64_t>(splits * tokens * w.rows) * 4));
    partials = impl.gemm_partials.as<float>();
    POLYINFER_GPU_TRY(
        impl.reserve_counters(impl.gemm_arrivals, static_cast<uint64_t>(base) * sizeof(int)));
    arrivals = impl.gemm_arrivals.as<int>();
  }
  const dim3 grid(static_cast<unsigned>(row_tiles), static_cast<unsigned>(splits),
                  static_cast<unsigned>(token_tiles));
  // Pipeline depth, measured on an H200 (bench_cuda --gemm, both depths side by side,
  // docs/measurements/gpu-2026-11-25-session7.txt): three chunks in flight for 16 and 32
  // tokens (q4_0 4096×4096: 14.2 against 17.9 us at 16 tokens, 21.6 against 24.9 at 32); two
  // for 64 (84 instead of 126 KB of stages: two blocks per multiprocessor instead of one; 38.5
  // against 52.1).
  switch (groups) {
    case 2:
      return launch_groups<Format, 2, 3, kHalf>(impl, grid, programmatic, w, x, tokens, y, y_stride,
                                                per_split, partials, arrivals);
    case 4:
      return launch_groups<Format, 4, 3, kHalf>(impl, grid, programmatic, w, x, tokens, y, y_stride,
                                                per_split, partials, arrivals);
    default:
      return launch_groups<Format, 8, 2, kHalf>(impl, grid, programmatic, w, x, tokens, y, y_stride,
                                                per_split, partials, arrivals);
  }
}

}  // namespace
#endif

Status stage_half_activations(const float* x, int64_t tokens, int64_t cols, int64_t x_stride,
                              uint16_t* out, Stream stream) noexcept {
#if POLYINFER_GPU_HIP
  (void)x;
  (void)tokens;
  (void)cols;
  (void)x_stride;
  (void)out;
  (void)stream;
  return Status::kUnsupported;
#else
  if (tokens < 1 || tokens > 65535 || cols < 32 || cols % 32 != 0) {
    return Status::kInvalidArgument;
  }
  const dim3 grid(std::min(grid_for(cols, 256), 64u), static_cast<unsigned>(tokens));
  return launch(&stage_half_kernel, grid, dim3(256), 0, stream, true, x, cols, x_stride, out);
#endif
}

bool mmq_available(const Context::Impl& impl, DType dtype) noexcept {
  if (POLYINFER_GPU_HIP) return false;
  if (dtype != DType::kQ4_0 && dtype != DType::kQ8_0 && dtype != DType::kQ4_K) return false;
  return impl.compute_major >= 8;
}

Status launch_mmq(Context::Impl& impl, const WeightsView& w, DType dtype, const ActivationsView& x,
                  int64_t tokens, float* y, int64_t y_stride, bool programmatic,
                  bool half) noexcept {
  if (!mmq_available(impl, dtype)) return Status::kUnsupported;
#if POLYINFER_GPU_HIP
  (void)w;
  (void)x;
  (void)tokens;
  (void)y;
  (void)y_stride;
  (void)programmatic;
  (void)half;
  return Status::kUnsupported;
#else
  switch (dtype) {
    case DType::kQ4_0:
      return half ? dispatch_mmq<MmqQ4_0, true>(impl, w, x, tokens, y, y_stride, programmatic)
                  : dispatch_mmq<MmqQ4_0>(impl, w, x, tokens, y, y_stride, programmatic);
    case DType::kQ8_0:
      return half ? dispatch_mmq<MmqQ8_0, true>(impl, w, x, tokens, y, y_stride, programmatic)
                  : dispatch_mmq<MmqQ8_0>(impl, w, x, tokens, y, y_stride, programmatic);
    case DType::kQ4_K:
      return half ? dispatch_mmq<MmqQ4_K, true>(impl, w, x, tokens, y, y_stride, programmatic)
                  : dispatch_mmq<MmqQ4_K>(impl, w, x, tokens, y, y_stride, programmatic);
    default:
      return Status::kUnsupported;
  }
#endif
}

}  // namespace polyinfer::inline v0::detail::gpu
