// SPDX-License-Identifier: Apache-2.0
// The transformer-op kernels on 8-lane AVX2 vectors (compiled with -mavx2 -mfma -mf16c).
#include <immintrin.h>

#include <cstring>

#include "kernels/common/block_formats.hpp"
#include "kernels/cpu/attention_ops.hpp"
#include "kernels/cpu/isa_ops.hpp"
#include "kernels/cpu/simd_ops.hpp"

namespace polyinfer::inline v0::detail {
namespace {

/// Vector traits of __m256 (see simd_ops.hpp for the interface).
struct Avx2Vec {
  using F = __m256;
  using M = __m256;
  static constexpr int kLanes = 8;

  static __m256i lanes_below(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static F zero() { return _mm256_setzero_ps(); }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static F load_n(const float* p, int n) { return _mm256_maskload_ps(p, lanes_below(n)); }
  static void store_n(float* p, F v, int n) { _mm256_maskstore_ps(p, lanes_below(n), v); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F fnmadd(F a, F b, F c) { return _mm256_fnmadd_ps(a, b, c); }
  static F min(F a, F b) { return _mm256_min_ps(a, b); }
  static F max(F a, F b) { return _mm256_max_ps(a, b); }
  static F abs(F a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static M lt(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static M ge(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
  static F select(M m, F a, F b) { return _mm256_blendv_ps(b, a, m); }
  static M first_n(int n) { return _mm256_castsi256_ps(lanes_below(n)); }
  static float reduce_add(F v) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
  }
  /// The four horizontal sums of a, b, c, d into out[0..3].
  static void reduce_add4(F a, F b, F c, F d, float* out) {
    const __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1)));
  }
  static float reduce_max(F v) {
    __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_max_ps(x, _mm_movehl_ps(x, x));
    x = _mm_max_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
  }
  static F round_nearest(F v) {
    return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static F trunc(F v) { return _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC); }
  static F pow2i(F n) {
    const __m256i biased = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(biased, 23));
  }
  static F swap_pairs(F v) { return _mm256_permute_ps(v, 0xB1); }
  static F load_f16(const Half* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static void store_f16(Half* p, F v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  static F load_i8(const int8_t* p) {
    return _mm256_cvtepi32_ps(
        _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  static void store_i8(int8_t* p, F v) {
    const __m256i i32 = _mm256_cvtps_epi32(v);
    const __m128i i16 =
        _mm_packs_epi32(_mm256_castsi256_si128(i32), _mm256_extracti128_si256(i32, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packs_epi16(i16, i16));
  }
  static float half_to_float(Half h) { return _cvtsh_ss(h); }
};

}  // namespace

const OpsTable& ops_table_avx2() noexcept {
  static constexpr OpsTable kTable{&rms_norm_kernel<Avx2Vec>, &layer_norm_kernel<Avx2Vec>,
                                   &rope_kernel<Avx2Vec>,     &silu_mul_kernel<Avx2Vec>,
                                   &gelu_kernel<Avx2Vec>,     &softmax_kernel<Avx2Vec>,
                                   &kv_store_kernel<Avx2Vec>, &attention_kernel<Avx2Vec>};
  return kTable;
}

}  // namespace polyinfer::inline v0::detail
