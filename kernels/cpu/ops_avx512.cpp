// SPDX-License-Identifier: Apache-2.0
// The transformer-op kernels on 16-lane AVX-512 vectors (compiled with -mavx512f/bw/vl/dq).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
// GCC 12 warns inside its own avx512fintrin.h where conversion intrinsics start from
// _mm512_undefined_* (GCC PR 105593, fixed in 13); the warnings point at no code of ours.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstring>

#include "kernels/common/block_formats.hpp"
#include "kernels/cpu/attention_ops.hpp"
#include "kernels/cpu/isa_ops.hpp"
#include "kernels/cpu/simd_ops.hpp"

namespace polyinfer::inline v0::detail {
namespace {

/// Vector traits of __m512 with __mmask16 lane masks (see simd_ops.hpp for the interface).
struct Avx512Vec {
  using F = __m512;
  using M = __mmask16;
  static constexpr int kLanes = 16;

  static F zero() { return _mm512_setzero_ps(); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F load_n(const float* p, int n) { return _mm512_maskz_loadu_ps(first_n(n), p); }
  static void store_n(float* p, F v, int n) { _mm512_mask_storeu_ps(p, first_n(n), v); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F fnmadd(F a, F b, F c) { return _mm512_fnmadd_ps(a, b, c); }
  static F min(F a, F b) { return _mm512_min_ps(a, b); }
  static F max(F a, F b) { return _mm512_max_ps(a, b); }
  static F abs(F a) { return _mm512_abs_ps(a); }
  static M lt(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static M ge(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
  static F select(M m, F a, F b) { return _mm512_mask_blend_ps(m, b, a); }
  static M first_n(int n) {
    return n >= 16 ? static_cast<M>(0xFFFF) : static_cast<M>((1u << (n < 0 ? 0 : n)) - 1u);
  }
  static float reduce_add(F v) {
    const __m256 x = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 y = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    y = _mm_add_ps(y, _mm_movehl_ps(y, y));
    y = _mm_add_ss(y, _mm_movehdup_ps(y));
    return _mm_cvtss_f32(y);
  }
  /// The four horizontal sums of a, b, c, d into out[0..3].
  static void reduce_add4(F a, F b, F c, F d, float* out) {
    const auto halves = [](F v) {
      return _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    };
    const __m256 ab = _mm256_hadd_ps(halves(a), halves(b));
    const __m256 cd = _mm256_hadd_ps(halves(c), halves(d));
    const __m256 abcd = _mm256_hadd_ps(ab, cd);  // [a b c d | a b c d] partial sums
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1)));
  }
  /// The sixteen horizontal sums of v[0..15] into out[0..15]: one transposing add tree (45
  /// shuffles and adds) instead of four reduce_add4 trees.
  static void reduce_add16(const F* v, float* out) {
    __m512 pairs[8];  // per 128-bit lane: partial sums of v[2i], v[2i + 1] interleaved
    for (int i = 0; i < 8; ++i) {
      pairs[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]),
                               _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    }
    __m512 quads[4];  // per 128-bit lane: that lane's sums of v[4i .. 4i + 3]
    for (int i = 0; i < 4; ++i) {
      const __m512d a = _mm512_castps_pd(pairs[2 * i]);
      const __m512d b = _mm512_castps_pd(pairs[2 * i + 1]);
      quads[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)),
                               _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
    }
    constexpr int kEven = _MM_SHUFFLE(2, 0, 2, 0);
    constexpr int kOdd = _MM_SHUFFLE(3, 1, 3, 1);
    const auto fold = [](__m512 a, __m512 b) {  // lanes [a0+a1, a2+a3, b0+b1, b2+b3]
      return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, kEven), _mm512_shuffle_f32x4(a, b, kOdd));
    };
    _mm512_storeu_ps(out, fold(fold(quads[0], quads[1]), fold(quads[2], quads[3])));
  }
  static float reduce_max(F v) {
    const __m256 x = _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 y = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    y = _mm_max_ps(y, _mm_movehl_ps(y, y));
    y = _mm_max_ss(y, _mm_movehdup_ps(y));
    return _mm_cvtss_f32(y);
  }
  static F round_nearest(F v) {
    return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static F trunc(F v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC); }
  static F pow2i(F n) {
    const __m512i biased = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(biased, 23));
  }
  static F swap_pairs(F v) { return _mm512_permute_ps(v, 0xB1); }
  static F load_f16(const Half* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static void store_f16(Half* p, F v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                        _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  static F load_i8(const int8_t* p) {
    return _mm512_cvtepi32_ps(
        _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  static void store_i8(int8_t* p, F v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(v)));
  }
  static float half_to_float(Half h) { return _cvtsh_ss(h); }
};

}  // namespace

const OpsTable& ops_table_avx512() noexcept {
  static constexpr OpsTable kTable{&rms_norm_kernel<Avx512Vec>, &layer_norm_kernel<Avx512Vec>,
                                   &rope_kernel<Avx512Vec>,     &silu_mul_kernel<Avx512Vec>,
                                   &gelu_kernel<Avx512Vec>,     &softmax_kernel<Avx512Vec>,
                                   &kv_store_kernel<Avx512Vec>, &attention_kernel<Avx512Vec>};
  return kTable;
}

}  // namespace polyinfer::inline v0::detail
