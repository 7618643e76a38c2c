// SPDX-License-Identifier: Apache-2.0
// Decode attention on the tensor cores (CUDA; attention_decode.cu launches it).
#pragma once

#include <cstring>

#include "kernels/cuda/attention_split.cuh"

namespace polyinfer::inline v0::detail::gpu::attention_split {

// The query operands (dim · 32 bytes), then the warps' states over them.
constexpr int mma_shared_bytes(int dim, int heads, int warps) {
  return std::max(dim * 32,
                  (heads * warps * (dim + 2) + heads * kMaxSplits + heads * (dim + 2)) * 4);
}
// Whether the kernel is built for these shapes (others take attention_kernel); run_attention()
// asks it with kMaxGroup heads, which fit wherever fewer do.
constexpr bool mma_fits(int dim, int heads, int warps) {
  return dim % 32 == 0 && dim <= 128 && heads <= kMaxGroup &&
         mma_shared_bytes(dim, heads, warps) <= kSharedBudget;
}

#if POLYINFER_GPU_MMA_ATTENTION
// A block's shape: kWarps warps, 16 rows each at a time, a lane's share of each row.
template <int kDim, int kHeads, int kWarps>
struct MmaTile {
  static constexpr int kThreads = kWarps * kWarp;
  static constexpr int kRows = 16;               // rows a warp takes at a time
  static constexpr int kKeyPieces = kDim / 32;   // 16-byte pieces of a key row per lane
  static constexpr int kValueWords = kDim / 16;  // words (2 dims) of a value row per lane
  static constexpr int kValuePieceBytes = kDim % 64 == 0 ? 16 : 8;
  static constexpr int kValuePieces = kValueWords * 4 / kValuePieceBytes;
  static constexpr int kSharedBytes = mma_shared_bytes(kDim, kHeads, kWarps);
  static_assert(mma_fits(kDim, kHeads, kWarps));
};

__device__ __forceinline__ uint32_t half2_bits(__half2 h) {
  uint32_t bits;
  memcpy(&bits, &h, sizeof(bits));
  return bits;
}

// (x, y) as f16 pairs hi and lo with hi + lo = (x, y) to ~22 bits.
__device__ __forceinline__ void split_half2(float x, float y, uint32_t& hi, uint32_t& lo) {
  const __half2 h = __floats2half2_rn(x, y);
  const float2 back = __half22float2(h);
  hi = half2_bits(h);
  lo = half2_bits(__floats2half2_rn(x - back.x, y - back.y));
}

// A shared-memory load the compiler keeps where it is written (not hoisted out of a loop into
// registers held across it).
__device__ __forceinline__ uint4 load_shared_volatile(const uint4* p) {
  uint4 v;
  asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "r"(static_cast<uint32_t>(__cvta_generic_to_shared(p))));
  return v;
}

// c += a·b, m16n8k16, f16 operands, f32 sums.
__device__ __forceinline__ void mma_16816(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                          uint32_t a3, uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#else
  (void)c, (void)a0, (void)a1, (void)a2, (void)a3, (void)b0, (void)b1;
  __trap();
#endif
}

// Decode attention on the tensor cores (f16 KV, head_dim a multiple of 32 up to 128, tokens ≤
// kGemvMaxTokens; sm_80 and later), one block per split as attention_kernel's. A warp takes 16
// key and value rows at a time straight into registers (no shared-memory stages; the query
// operands sit in shared memory, so that a thread stays within 128 registers, two blocks a
// multiprocessor) and all of the block's query heads (≤ 8):
//   S = Q·Kᵀ    mma.m16n8k16, M = the heads (rows 8-15 zero), N = 8 rows, K = 16 dims;
//   Oᵀ += Vᵀ·Pᵀ  M = 16 dims, N = the heads, K = the 16 rows.
// S's accumulator layout is Pᵀ's operand layout, so the probabilities never leave the lane that
// computed them. q (f32) and p are each split into f16 hi + lo and multiplied twice, so the
// products keep ~22 bits as the f32 kernel's do (|q|·scale must stay within f16's 65504); the
// sums are f32. Dims are permuted per lane (the sums over them are order-free; the outputs land
// where the lane knows), so that each lane reads whole 16- or 8-byte pieces of its rows, each
// instruction 64 or 128 contiguous bytes of a row. The warps' states then go through
// merge_and_store() as the f32 kernel's do.
template <int kDim, int kHeads, int kWarps>
__global__ void __launch_bounds__(kWarps* kWarp, 2)
    attention_mma_kernel(const float* q, SplitPlan plan, DeviceKvView keys, DeviceKvView values,
                         const int32_t* positions, int causal, float scale, float* partials,
                         int* arrivals, float* out, QuantizedRows quantized) {
  using Shape = MmaTile<kDim, kHeads, kWarps>;
  constexpr int kRows = Shape::kRows;
  constexpr int kKeyPieces = Shape::kKeyPieces;
  constexpr int kValueWords = Shape::kValueWords;
  constexpr int kValuePieces = Shape::kValuePieces;
  constexpr int kPieceWords = Shape::kValuePieceBytes / 4;
  extern __shared__ __align__(16) unsigned char shared[];
  pdl_launch_dependents();
  if (plan.early == 0) pdl_wait();
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  const int g = lane / 4;  // the mma's group: a query head, a key row, a value dim pair
  const int c = lane % 4;  // its thread in the group
  const int split = static_cast<int>(blockIdx.x);
  const auto [token, kv_head, first_head, count, limit, share, active] =
      block_work<kHeads, kRows>(plan, keys, values, positions, causal);
  if (split >= active) {
    idle_split(plan, split, active);
    return;
  }
  // Rows fit 32 bits (attention_supports()).
  const int begin = split * share;  // < limit
  const int end = static_cast<int>(min_i64(int64_t{begin} + share, limit));
  const int chunks = (end - begin + kRows - 1) / kRows;
  void* const* key_blocks = token_blocks(keys, token);
  void* const* value_blocks = token_blocks(values, token);

  // A chunk's rows into registers, zeros past the share (the values must be finite: 0·NaN).
  // Keys: rows g and 8 + g, the lane's 16-byte pieces at 16c + 64i. Values: rows 2c, 2c + 1,
  // 8 + 2c, 9 + 2c, the lane's pieces at b·g + 8b·p (b the piece's bytes).
  uint4 key_raw[2][kKeyPieces];
  uint32_t value_raw[4][kValueWords];
  // kv_head by copy: HIP's clang 15 captures no structured binding.
  const auto load_chunk = [&, kv_head = kv_head](int chunk) {
    const int first = begin + chunk * kRows;
#pragma unroll
    for (int n = 0; n < 2; ++n) {
      const int row = first + 8 * n + g;
      const bool valid = row < end;
      const auto* k = kv_row<const __half>(keys, key_blocks, valid ? row : begin, kv_head);
#pragma unroll
      for (int i = 0; i < kKeyPieces; ++i) {
        key_raw[n][i] =
            valid ? *reinterpret_cast<const uint4*>(k + 8 * c + 32 * i) : make_uint4(0, 0, 0, 0);
      }
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int row = first + (j < 2 ? 2 * c + j : 8 + 2 * c + j - 2);
      const bool valid = row < end;
      const auto* v = reinterpret_cast<const unsigned char*>(
          kv_row<const __half>(values, value_blocks, valid ? row : begin, kv_head));
#pragma unroll
      for (int p = 0; p < kValuePieces; ++p) {
        const unsigned char* at = v + Shape::kValuePieceBytes * g + 8 * Shape::kValuePieceBytes * p;
        if constexpr (kPieceWords == 4) {
          const uint4 w = valid ? *reinterpret_cast<const uint4*>(at) : make_uint4(0, 0, 0, 0);
          value_raw[j][4 * p] = w.x;
          value_raw[j][4 * p + 1] = w.y;
          value_raw[j][4 * p + 2] = w.z;
          value_raw[j][4 * p + 3] = w.w;
        } else {
          const uint2 w = valid ? *reinterpret_cast<const uint2*>(at) : make_uint2(0, 0);
          value_raw[j][2 * p] = w.x;
          value_raw[j][2 * p + 1] = w.y;
        }
      }
    }
  };
  int chunk = warp;
  bool loaded = false;
  if (plan.early != 0) {
    // Rows below the first position this call gives the token's sequence were written by
    // earlier steps: the warp's first chunk is requested now if it lies below it.
    const int64_t ready = rows_ready(keys, positions, token, causal);
    if (chunk < chunks && min(begin + (chunk + 1) * kRows, end) <= ready) {
      load_chunk(chunk);
      loaded = true;
    }
    pdl_wait();
  }
  // The warp's first chunk is requested before the queries are read (one round trip for both).
  if (!loaded && chunk < chunks) {
    load_chunk(chunk);
    loaded = true;
  }
  // The query heads, scaled, as the S product's operand: f16 hi + lo words, one uint4 {hi, hi,
  // lo, lo} per (k-step, lane), read from shared memory at each step (registers are the limit
  // of this kernel). k-step 2i + h of lane (g, c) pairs dims 8c + 32i + 4h + {0, 1} and
  // + {2, 3} of head g: words 2h and 2h + 1 of the lane's key piece i.
  auto* q_frags = reinterpret_cast<uint4*>(shared);
  for (int f = static_cast<int>(threadIdx.x); f < kDim / 16 * kWarp; f += Shape::kThreads) {
    const int step = f / kWarp;
    const int fg = f % kWarp / 4;
    const int fc = f % 4;
    float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (fg < count) {
      v = *reinterpret_cast<const float4*>(q + token * plan.q_stride + (first_head + fg) * kDim +
                                           8 * fc + 32 * (step / 2) + 4 * (step % 2));
    }
    uint4 frag;
    split_half2(v.x * scale, v.y * scale, frag.x, frag.z);
    split_half2(v.z * scale, v.w * scale, frag.y, frag.w);
    q_frags[f] = frag;
  }
  __syncthreads();
  // The lane's state: m and l of head g; acc[t] the accumulator of dims (word t: lo, hi) ×
  // heads (2c, 2c + 1) in the mma's C layout {lo·2c, lo·2c+1, hi·2c, hi·2c+1}.
  float m = -INFINITY;
  float l = 0.0f;
  float acc[kValueWords][4];
#pragma unroll
  for (int t = 0; t < kValueWords; ++t) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.0f;
  for (; chunk < chunks; chunk += kWarps) {
    if (!loaded) load_chunk(chunk);
    loaded = false;
    // Scores of head g against rows 2c, 2c + 1 (s[0]) and 8 + 2c, 9 + 2c (s[1]).
    float s[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
#pragma unroll
    for (int i = 0; i < kKeyPieces; ++i) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const uint4 frag = load_shared_volatile(q_frags + (2 * i + h) * kWarp + lane);
#pragma unroll
        for (int n = 0; n < 2; ++n) {
          const uint32_t b0 = h == 0 ? key_raw[n][i].x : key_raw[n][i].z;
          const uint32_t b1 = h == 0 ? key_raw[n][i].y : key_raw[n][i].w;
          mma_16816(s[n], frag.x, 0u, frag.y, 0u, b0, b1);
          mma_16816(s[n], frag.z, 0u, frag.w, 0u, b0, b1);
        }
      }
    }
    // The online softmax of head g over the chunk (its rows spread over the 4 lanes of g).
    const int rows_left = end - (begin + chunk * kRows);
    float x[4];
    x[0] = 2 * c < rows_left ? s[0][0] : -INFINITY;
    x[1] = 2 * c + 1 < rows_left ? s[0][1] : -INFINITY;
    x[2] = 8 + 2 * c < rows_left ? s[1][0] : -INFINITY;
    x[3] = 9 + 2 * c < rows_left ? s[1][1] : -INFINITY;
    float top = fmaxf(fmaxf(x[0], x[1]), fmaxf(x[2], x[3]));
    top = fmaxf(top, shfl_xor(top, 1));
    top = fmaxf(top, shfl_xor(top, 2));
    const float m_new = fmaxf(m, top);
    const float correction = m_new == -INFINITY ? 1.0f : expf(m - m_new);
    float p[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) p[j] = x[j] == -INFINITY ? 0.0f : expf(x[j] - m_new);
    float sum = (p[0] + p[1]) + (p[2] + p[3]);
    sum += shfl_xor(sum, 1);
    sum += shfl_xor(sum, 2);
    l = l * correction + sum;
    m = m_new;
    // Rescale the accumulators of heads 2c and 2c + 1 (their corrections live in lanes 8c and
    // 8c + 4).
    const float correction_a = shfl_from(correction, 8 * c);
    const float correction_b = shfl_from(correction, 8 * c + 4);
    uint32_t p_hi[2];
    uint32_t p_lo[2];
    split_half2(p[0], p[1], p_hi[0], p_lo[0]);
    split_half2(p[2], p[3], p_hi[1], p_lo[1]);
#pragma unroll
    for (int t = 0; t < kValueWords; ++t) {
      acc[t][0] *= correction_a;
      acc[t][1] *= correction_b;
      acc[t][2] *= correction_a;
      acc[t][3] *= correction_b;
      // Vᵀ's operand: dims (lo, hi of word t) × rows (2c, 2c + 1 | 8 + 2c, 9 + 2c).
      const uint32_t a0 = __byte_perm(value_raw[0][t], value_raw[1][t], 0x5410);
      const uint32_t a1 = __byte_perm(value_raw[0][t], value_raw[1][t], 0x7632);
      const uint32_t a2 = __byte_perm(value_raw[2][t], value_raw[3][t], 0x5410);
      const uint32_t a3 = __byte_perm(value_raw[2][t], value_raw[3][t], 0x7632);
      mma_16816(acc[t], a0, a1, a2, a3, p_hi[0], p_hi[1]);
      mma_16816(acc[t], a0, a1, a2, a3, p_lo[0], p_lo[1]);
    }
  }
  // The warps' states, in merge_and_store()'s layout (warp = part), over the query operands.
  __syncthreads();
  float* state = reinterpret_cast<float*>(shared);
  if (c == 0 && g < count) {
    float* mine = state + (g * kWarps + warp) * (kDim + 2);
    mine[0] = m;
    mine[1] = l;
  }
#pragma unroll
  for (int t = 0; t < kValueWords; ++t) {
    // Word t of the lane's value pieces: piece t / kPieceWords, word t % kPieceWords.
    const int dim = (Shape::kValuePieceBytes * g + 8 * Shape::kValuePieceBytes * (t / kPieceWords) +
                     4 * (t % kPieceWords)) /
                    2;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int head = 2 * c + h;
      if (head < count) {
        float* mine = state + (head * kWarps + warp) * (kDim + 2) + 2;
        mine[dim] = acc[t][h];
        mine[dim + 1] = acc[t][2 + h];
      }
    }
  }
  __syncthreads();
  // Only the warps that held a chunk are combined.
  merge_and_store<kDim, kHeads, kWarps, kWarps>(state, max(1, min(kWarps, chunks)), count, plan,
                                                token, first_head, split, active, partials,
                                                arrivals, out, quantized);
}
#endif  // POLYINFER_GPU_MMA_ATTENTION
}  // namespace polyinfer::inline v0::detail::gpu::attention_split
