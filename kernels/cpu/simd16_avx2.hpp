// SPDX-License-Identifier: Apache-2.0
// 16-lane vector operations for the matmul bodies on AVX2 + FMA + F16C: pairs of 256-bit halves.
//
// Include only from matmul_avx2.cpp. Lanes 0–7 live in .a, 8–15 in .b; byte, int16 and int32
// views of a 64-byte vector map the same way as one 512-bit register. Internal linkage: see
// matmul_kernel.hpp.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace polyinfer::inline v0::detail {
namespace {

struct VI {
  __m256i a, b;
};
struct VF {
  __m256 a, b;
};

inline VI vi_load(const void* p) {
  const auto* q = static_cast<const __m256i*>(p);
  return {_mm256_loadu_si256(q), _mm256_loadu_si256(q + 1)};
}
inline VI vi_zero() {
  return {_mm256_setzero_si256(), _mm256_setzero_si256()};
}
inline VI vi_set1(int32_t v) {
  return {_mm256_set1_epi32(v), _mm256_set1_epi32(v)};
}
inline VI vi_set1_i8(int8_t v) {
  return {_mm256_set1_epi8(v), _mm256_set1_epi8(v)};
}
inline VI vi_bcast32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return vi_set1(v);
}
inline VI vi_and(VI x, VI y) {
  return {_mm256_and_si256(x.a, y.a), _mm256_and_si256(x.b, y.b)};
}
inline VI vi_or(VI x, VI y) {
  return {_mm256_or_si256(x.a, y.a), _mm256_or_si256(x.b, y.b)};
}
inline VI vi_srl16(VI x, int n) {
  return {_mm256_srli_epi16(x.a, n), _mm256_srli_epi16(x.b, n)};
}
inline VI vi_sll16(VI x, int n) {
  return {_mm256_slli_epi16(x.a, n), _mm256_slli_epi16(x.b, n)};
}
inline VI vi_add(VI x, VI y) {
  return {_mm256_add_epi32(x.a, y.a), _mm256_add_epi32(x.b, y.b)};
}
inline VI vi_sub(VI x, VI y) {
  return {_mm256_sub_epi32(x.a, y.a), _mm256_sub_epi32(x.b, y.b)};
}
inline VI vi_mullo(VI x, VI y) {
  return {_mm256_mullo_epi32(x.a, y.a), _mm256_mullo_epi32(x.b, y.b)};
}
inline VI vi_min(VI x, VI y) {
  return {_mm256_min_epi32(x.a, y.a), _mm256_min_epi32(x.b, y.b)};
}
inline VI vi_u8_to_i32(const uint8_t* p) {
  return {_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))),
          _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8)))};
}
inline VI vi_i8_to_i32(const int8_t* p) {
  return {_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))),
          _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8)))};
}
inline VI vi_u8_to_i16(const uint8_t* p) {
  return {_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
          _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)))};
}

inline __m256i dpbusd_small_half(__m256i acc, __m256i u, __m256i s) {
  const __m256i pairs = _mm256_maddubs_epi16(u, s);
  return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}
/// acc + Σ of 4 u8·s8 products per lane, for u ≤ 127 (vpmaddubsw does not saturate).
inline VI vi_dpbusd_small(VI acc, VI u, VI s) {
  return {dpbusd_small_half(acc.a, u.a, s.a), dpbusd_small_half(acc.b, u.b, s.b)};
}
inline __m256i dpbusd_half(__m256i acc, __m256i u, __m256i s) {
  const __m256i mask = _mm256_set1_epi8(0x0F);
  const __m256i lo = _mm256_maddubs_epi16(_mm256_and_si256(u, mask), s);
  const __m256i hi = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(u, 4), mask), s);
  acc = _mm256_add_epi32(acc, _mm256_madd_epi16(lo, _mm256_set1_epi16(1)));
  return _mm256_add_epi32(acc, _mm256_madd_epi16(hi, _mm256_set1_epi16(16)));
}
/// The same for any u8 (u = 16·hi + lo).
inline VI vi_dpbusd(VI acc, VI u, VI s) {
  return {dpbusd_half(acc.a, u.a, s.a), dpbusd_half(acc.b, u.b, s.b)};
}
inline VI vi_dpwssd(VI acc, VI x, VI y) {
  return {_mm256_add_epi32(acc.a, _mm256_madd_epi16(x.a, y.a)),
          _mm256_add_epi32(acc.b, _mm256_madd_epi16(x.b, y.b))};
}
/// (a & c) | b per bit.
inline VI vi_and_or(VI x, VI y, VI c) {
  return vi_or(vi_and(x, c), y);
}

inline void vi_store_i8(int8_t* p, VI v) {
  const __m256i words = _mm256_permute4x64_epi64(_mm256_packs_epi32(v.a, v.b), 0xD8);
  const __m128i bytes =
      _mm_packs_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), bytes);
}
inline int32_t vi_reduce(VI v) {
  const __m256i s = _mm256_add_epi32(v.a, v.b);
  __m128i q = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0x4E));
  q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0xB1));
  return _mm_cvtsi128_si32(q);
}

inline VF vf_zero() {
  return {_mm256_setzero_ps(), _mm256_setzero_ps()};
}
inline VF vf_set1(float v) {
  return {_mm256_set1_ps(v), _mm256_set1_ps(v)};
}
inline VF vf_load(const float* p) {
  return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)};
}
inline VF vf_load_n(const float* p, int n) {
  alignas(32) float tmp[16] = {};
  std::memcpy(tmp, p, static_cast<size_t>(n) * sizeof(float));
  return vf_load(tmp);
}
inline VF vf_from_half(const uint16_t* p) {
  return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
          _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)))};
}
inline __m256 bf16_half(const uint16_t* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}
inline VF vf_from_bf16(const uint16_t* p) {
  return {bf16_half(p), bf16_half(p + 8)};
}
/// Column pairs of bf16 (lane r: low half column 2p, high half 2p + 1) → two f32 vectors.
inline void vf_from_bf16_pairs(const void* p, VF* even, VF* odd) {
  const VI v = vi_load(p);
  const __m256i high = _mm256_set1_epi32(-65536);
  *even = {_mm256_castsi256_ps(_mm256_slli_epi32(v.a, 16)),
           _mm256_castsi256_ps(_mm256_slli_epi32(v.b, 16))};
  *odd = {_mm256_castsi256_ps(_mm256_and_si256(v.a, high)),
          _mm256_castsi256_ps(_mm256_and_si256(v.b, high))};
}
inline VF vf_cvt(VI v) {
  return {_mm256_cvtepi32_ps(v.a), _mm256_cvtepi32_ps(v.b)};
}
inline VF vf_add(VF x, VF y) {
  return {_mm256_add_ps(x.a, y.a), _mm256_add_ps(x.b, y.b)};
}
inline VF vf_sub(VF x, VF y) {
  return {_mm256_sub_ps(x.a, y.a), _mm256_sub_ps(x.b, y.b)};
}
inline VF vf_mul(VF x, VF y) {
  return {_mm256_mul_ps(x.a, y.a), _mm256_mul_ps(x.b, y.b)};
}
inline VF vf_fmadd(VF x, VF y, VF z) {
  return {_mm256_fmadd_ps(x.a, y.a, z.a), _mm256_fmadd_ps(x.b, y.b, z.b)};
}
inline VF vf_fnmadd(VF x, VF y, VF z) {
  return {_mm256_fnmadd_ps(x.a, y.a, z.a), _mm256_fnmadd_ps(x.b, y.b, z.b)};
}
inline VF vf_abs(VF x) {
  const __m256 mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  return {_mm256_and_ps(x.a, mask), _mm256_and_ps(x.b, mask)};
}
inline VF vf_max(VF x, VF y) {
  return {_mm256_max_ps(x.a, y.a), _mm256_max_ps(x.b, y.b)};
}
inline float reduce_half(__m256 v) {
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
}
inline float vf_reduce(VF v) {
  return reduce_half(_mm256_add_ps(v.a, v.b));
}
inline float vf_reduce_max(VF v) {
  __m256 m = _mm256_max_ps(v.a, v.b);
  __m128 q = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  q = _mm_max_ps(q, _mm_movehl_ps(q, q));
  q = _mm_max_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
}
inline void vf_store(float* p, VF v) {
  _mm256_storeu_ps(p, v.a);
  _mm256_storeu_ps(p + 8, v.b);
}
inline void vf_store_n(float* p, VF v, int n) {
  alignas(32) float tmp[16];
  vf_store(tmp, v);
  std::memcpy(p, tmp, static_cast<size_t>(n) * sizeof(float));
}
inline unsigned vf_eq_mask(VF x, VF y) {
  const auto lo = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(x.a, y.a, _CMP_EQ_OQ)));
  const auto hi = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(x.b, y.b, _CMP_EQ_OQ)));
  return lo | (hi << 8);
}
inline __m256i round_away_half(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN));
  const __m256 diff = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
  const __m256 up = _mm256_cmp_ps(diff, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  const __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, sign));
  return _mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_and_ps(up, one)));
}
/// roundf: to nearest, halves away from zero; exact.
inline VI vi_round_away(VF v) {
  return {round_away_half(v.a), round_away_half(v.b)};
}
/// Ties to even (cvtps2dq under the default MXCSR).
inline VI vi_round_even(VF v) {
  return {_mm256_cvtps_epi32(v.a), _mm256_cvtps_epi32(v.b)};
}

inline float round_to_half(float v) {
  return _cvtsh_ss(_cvtss_sh(v, _MM_FROUND_TO_NEAREST_INT));
}
inline float half_to_float(uint16_t h) {
  return _cvtsh_ss(h);
}

/// Prefetch into L2 (streamed weights: L1's fill buffers stay free for the loads in use).
inline void prefetch(const void* p) {
  _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T1);
}

}  // namespace
}  // namespace polyinfer::inline v0::detail
