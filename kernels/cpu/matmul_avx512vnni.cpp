// SPDX-License-Identifier: Apache-2.0
// Matmul kernels for AVX-512 VNNI (vpdpbusd, vpdpwssd), and BF16 GEMM with vdpbf16ps where the
// CPU has AVX512-BF16 (checked per call: Ice Lake has VNNI without it).
#define POLYINFER_SIMD16_VNNI 1
#include "kernels/cpu/simd16_avx512.hpp"
// The bodies below use the operations above.
#include "kernels/cpu/matmul_float.hpp"
#include "kernels/cpu/matmul_quant_x16.hpp"

namespace polyinfer::inline v0::detail {
namespace {

constexpr Isa kIsa = Isa::kAvx512Vnni;
constexpr int kTokenBlock = 64;

// ---- BF16 weights × bf16 activations (vdpbf16ps) ----------------------------------------------

int64_t act_bf16_stride(int64_t cols) {
  return round_up64((cols + 31) / 32 * 32 * 2);
}

uint64_t act_bf16_bytes(int64_t tokens, int64_t cols) {
  return static_cast<uint64_t>(tokens * act_bf16_stride(cols));
}

// x rounded to bf16 (ties to even, as f32_to_bf16), zero-padded to 32 columns.
__attribute__((target("avx512bf16"))) void prepare_bf16(const MatmulCall& call, int64_t token_begin,
                                                        int64_t token_end) {
  for (int64_t t = token_begin; t < token_end; ++t) {
    const float* x = call.x + t * call.x_stride;
    auto* out = reinterpret_cast<__m512i*>(call.act + t * act_bf16_stride(call.cols));
    for (int64_t c = 0; c < call.cols; c += 32, ++out) {
      const int64_t rest = call.cols - c;
      const auto lo_mask = static_cast<__mmask16>(rest >= 16 ? 0xFFFF : (1u << rest) - 1u);
      const auto hi_mask = static_cast<__mmask16>(rest >= 32   ? 0xFFFF
                                                  : rest <= 16 ? 0
                                                               : (1u << (rest - 16)) - 1u);
      const __m512 lo = _mm512_maskz_loadu_ps(lo_mask, x + c);
      const __m512 hi = _mm512_maskz_loadu_ps(hi_mask, x + c + 16);
      _mm512_storeu_si512(out, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)));
    }
  }
}

// Lane r of acc is row r of a group: vdpbf16ps adds w[r][2p]·x[2p] + w[r][2p+1]·x[2p+1], the
// activation pair broadcast, for column pairs [p0, p1).
template <int G, int T>
__attribute__((target("avx512bf16"))) void bf16_x16_tile(const std::byte* w, int64_t group_bytes,
                                                         int64_t p0, int64_t p1, const std::byte* x,
                                                         int64_t x_stride, float* y,
                                                         int64_t y_stride, const int (&rows)[G],
                                                         bool accumulate) {
  __m512 acc[G][T];
  for (int g = 0; g < G; ++g) {
    for (int t = 0; t < T; ++t) acc[g][t] = _mm512_setzero_ps();
  }
  for (int64_t p = p0; p < p1; ++p) {
    __m512bh wv[G];
    for (int g = 0; g < G; ++g) {
      wv[g] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(w + g * group_bytes + p * 64));
    }
    for (int t = 0; t < T; ++t) {
      int32_t pair;
      std::memcpy(&pair, x + t * x_stride + p * 4, 4);
      const auto xb = reinterpret_cast<__m512bh>(_mm512_set1_epi32(pair));
      for (int g = 0; g < G; ++g) acc[g][t] = _mm512_dpbf16_ps(acc[g][t], wv[g], xb);
    }
  }
  for (int g = 0; g < G; ++g) {
    if (rows[g] == 0) continue;
    const auto mask = static_cast<__mmask16>(rows[g] == kPackRows ? 0xFFFF : (1u << rows[g]) - 1u);
    for (int t = 0; t < T; ++t) {
      float* out = y + t * y_stride + g * kPackRows;
      const __m512 sum =
          accumulate ? _mm512_add_ps(acc[g][t], _mm512_maskz_loadu_ps(mask, out)) : acc[g][t];
      _mm512_mask_storeu_ps(out, mask, sum);
    }
  }
}

template <int G>
void bf16_x16_groups(const MatmulCall& call, int64_t row, int64_t row_end, int64_t p0, int64_t p1,
                     int64_t token_begin, int64_t token_end) {
  const int64_t group_bytes = PackedBF16::group_bytes(call.cols);
  const int64_t x_stride = act_bf16_stride(call.cols);
  const std::byte* w = call.packed + row / kPackRows * group_bytes;
  int rows[G];
  for (int g = 0; g < G; ++g) rows[g] = group_rows(row, g, row_end);
  for_tiles<8>(token_begin, token_end, [&](int64_t t0, auto tokens) {
    constexpr int kTokens = decltype(tokens)::value;
    bf16_x16_tile<G, kTokens>(w, group_bytes, p0, p1, call.act + t0 * x_stride, x_stride,
                              call.y + t0 * call.y_stride + row, call.y_stride, rows, p0 > 0);
  });
}

void compute_bf16_dot(const MatmulCall& call, int64_t row_begin, int64_t row_end,
                      int64_t token_begin, int64_t token_end) {
  const int64_t pairs = (call.cols + 1) / 2;
  constexpr int64_t kChunkPairs = kFloatChunk / 2;
  for (int64_t p0 = 0; p0 < pairs; p0 += kChunkPairs) {
    const int64_t p1 = pairs - p0 < kChunkPairs ? pairs : p0 + kChunkPairs;
    int64_t row = row_begin;
    for (; row + kPackRows < row_end; row += 2 * kPackRows) {
      bf16_x16_groups<2>(call, row, row_end, p0, p1, token_begin, token_end);
    }
    if (row < row_end) bf16_x16_groups<1>(call, row, row_end, p0, p1, token_begin, token_end);
  }
}

// Batches only: a single token is bandwidth-bound, and the f32 path keeps x exact there.
bool bf16_dot_supports(int64_t, int64_t, int64_t tokens) {
  return tokens >= 8 && cpu_has_avx512_bf16();
}
double bf16_dot_score(int64_t, int64_t, int64_t) {
  return 35;
}

constexpr MatmulKernel kKernels[] = {
    make_kernel("q4_0_avx512vnni_x16", DType::kQ4_0, kIsa, PackLayout::kQ4_0x16, kTokenBlock,
                &act_q8_0_bytes, &prepare_q8_0<8>, &compute_q8_blocks<false, 8>),
    make_kernel("q8_0_avx512vnni_x16", DType::kQ8_0, kIsa, PackLayout::kQ8_0x16, kTokenBlock,
                &act_q8_0_bytes, &prepare_q8_0<128>, &compute_q8_blocks<true, 8>),
    make_kernel("q4_k_avx512vnni_x16", DType::kQ4_K, kIsa, PackLayout::kQ4_Kx16, kTokenBlock,
                &act_q8_k_bytes, &prepare_q8_k, &compute_k_quant<false, 4>),
    make_kernel("q6_k_avx512vnni_x16", DType::kQ6_K, kIsa, PackLayout::kQ6_Kx16, kTokenBlock,
                &act_q8_k_bytes, &prepare_q8_k, &compute_k_quant<true, 4>),
    MatmulKernel{"bf16_avx512vnni_bf16dot", DType::kBF16, kIsa, PackLayout::kBF16x16, 32,
                 kTokenBlock, &act_bf16_bytes, &prepare_bf16, &compute_bf16_dot, &bf16_dot_supports,
                 &bf16_dot_score, nullptr},
};

}  // namespace

MatmulKernelTable matmul_kernels_avx512vnni() noexcept {
  return {kKernels, static_cast<int>(sizeof(kKernels) / sizeof(kKernels[0]))};
}

}  // namespace polyinfer::inline v0::detail
