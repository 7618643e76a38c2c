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

template <int R, int T>
__attribute__((target("avx512bf16"))) void bf16_tile(const std::byte* w, int64_t row_bytes,
                                                     const std::byte* x, int64_t x_stride,
                                                     int64_t k0, int64_t k1, float* y,
                                                     int64_t y_stride, bool accumulate) {
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  }
  for (int64_t c = k0; c < k1; c += 32) {
    // Past the last column the activations are zero; the weights are not read there.
    const int64_t rest = k1 - c;
    const auto mask = static_cast<__mmask32>(rest >= 32 ? 0xFFFFFFFFu : (1u << rest) - 1u);
    __m512bh xv[T];
    for (int t = 0; t < T; ++t) {
      xv[t] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(x + t * x_stride + c * 2));
    }
    for (int r = 0; r < R; ++r) {
      const __m512bh wv =
          reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(mask, w + r * row_bytes + c * 2));
      for (int t = 0; t < T; ++t) acc[r][t] = _mm512_dpbf16_ps(acc[r][t], wv, xv[t]);
    }
  }
  for (int t = 0; t < T; ++t) {
    for (int r = 0; r < R; ++r) {
      const float sum = _mm512_reduce_add_ps(acc[r][t]);
      float& out = y[t * y_stride + r];
      out = accumulate ? out + sum : sum;
    }
  }
}

void compute_bf16_dot(const MatmulCall& call, int64_t row_begin, int64_t row_end,
                      int64_t token_begin, int64_t token_end) {
  const int64_t x_stride = act_bf16_stride(call.cols);
  for (int64_t k0 = 0; k0 < call.cols; k0 += kFloatChunk) {
    const int64_t k1 = call.cols - k0 < kFloatChunk ? call.cols : k0 + kFloatChunk;
    const bool accumulate = k0 > 0;
    for_tiles<4>(row_begin, row_end, [&](int64_t r0, auto rows) {
      constexpr int kRows = decltype(rows)::value;
      for_tiles<4>(token_begin, token_end, [&](int64_t t0, auto tokens) {
        constexpr int kTokens = decltype(tokens)::value;
        bf16_tile<kRows, kTokens>(call.weights + r0 * call.row_bytes, call.row_bytes,
                                  call.act + t0 * x_stride, x_stride, k0, k1,
                                  call.y + t0 * call.y_stride + r0, call.y_stride, accumulate);
      });
    });
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
    MatmulKernel{"bf16_avx512vnni_bf16dot", DType::kBF16, kIsa, PackLayout::kNone, 16, kTokenBlock,
                 &act_bf16_bytes, &prepare_bf16, &compute_bf16_dot, &bf16_dot_supports,
                 &bf16_dot_score, nullptr},
};

}  // namespace

MatmulKernelTable matmul_kernels_avx512vnni() noexcept {
  return {kKernels, static_cast<int>(sizeof(kKernels) / sizeof(kKernels[0]))};
}

}  // namespace polyinfer::inline v0::detail
