// SPDX-License-Identifier: Apache-2.0
// 16-lane vector operations for the matmul bodies, on AVX-512 (F/BW/VL/DQ, VNNI when enabled).
//
// Include only from an AVX-512 translation unit (matmul_avx512*.cpp, matmul_amx.cpp), after
// defining POLYINFER_SIMD16_VNNI to 0 or 1. Everything has internal linkage: see
// matmul_kernel.hpp for why.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#if !defined(POLYINFER_SIMD16_VNNI)
#error "define POLYINFER_SIMD16_VNNI before including simd16_avx512.hpp"
#endif

namespace polyinfer::inline v0::detail {
namespace {

using VI = __m512i;  // 16 × int32 (or 64 × int8, 32 × int16)
using VF = __m512;   // 16 × float

inline VI vi_load(const void* p) {
  return _mm512_loadu_si512(p);
}
inline VI vi_zero() {
  return _mm512_setzero_si512();
}
inline VI vi_set1(int32_t v) {
  return _mm512_set1_epi32(v);
}
inline VI vi_set1_i8(int8_t v) {
  return _mm512_set1_epi8(v);
}
inline VI vi_bcast32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}
inline VI vi_and(VI a, VI b) {
  return _mm512_and_si512(a, b);
}
inline VI vi_or(VI a, VI b) {
  return _mm512_or_si512(a, b);
}
inline VI vi_srl16(VI a, int n) {
  return _mm512_srli_epi16(a, static_cast<unsigned>(n));
}
inline VI vi_sll16(VI a, int n) {
  return _mm512_slli_epi16(a, static_cast<unsigned>(n));
}
inline VI vi_add(VI a, VI b) {
  return _mm512_add_epi32(a, b);
}
inline VI vi_sub(VI a, VI b) {
  return _mm512_sub_epi32(a, b);
}
inline VI vi_mullo(VI a, VI b) {
  return _mm512_mullo_epi32(a, b);
}
inline VI vi_u8_to_i32(const uint8_t* p) {
  return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline VI vi_i8_to_i32(const int8_t* p) {
  return _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
/// 32 bytes → 32 × int16 (lane i holds bytes 2i, 2i+1 zero-extended).
inline VI vi_u8_to_i16(const uint8_t* p) {
  return _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

#if POLYINFER_SIMD16_VNNI
/// acc + Σ of 4 u8·s8 products per 32-bit lane (vpdpbusd), for any u8.
inline VI vi_dpbusd(VI acc, VI u, VI s) {
  return _mm512_dpbusd_epi32(acc, u, s);
}
/// The same for u ≤ 127 (no int16 saturation in the emulation).
inline VI vi_dpbusd_small(VI acc, VI u, VI s) {
  return _mm512_dpbusd_epi32(acc, u, s);
}
/// acc + Σ of 2 int16 products per lane (vpdpwssd).
inline VI vi_dpwssd(VI acc, VI a, VI b) {
  return _mm512_dpwssd_epi32(acc, a, b);
}
#else
inline VI vi_dpbusd_small(VI acc, VI u, VI s) {
  const VI pairs = _mm512_maddubs_epi16(u, s);
  return _mm512_add_epi32(acc, _mm512_madd_epi16(pairs, _mm512_set1_epi16(1)));
}
inline VI vi_dpbusd(VI acc, VI u, VI s) {
  // u = 16·hi + lo keeps each vpmaddubsw pair below int16 saturation.
  const VI mask = _mm512_set1_epi8(0x0F);
  const VI lo = _mm512_maddubs_epi16(_mm512_and_si512(u, mask), s);
  const VI hi = _mm512_maddubs_epi16(_mm512_and_si512(_mm512_srli_epi16(u, 4), mask), s);
  acc = _mm512_add_epi32(acc, _mm512_madd_epi16(lo, _mm512_set1_epi16(1)));
  return _mm512_add_epi32(acc, _mm512_madd_epi16(hi, _mm512_set1_epi16(16)));
}
inline VI vi_dpwssd(VI acc, VI a, VI b) {
  return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
}
#endif

/// (a & c) | b per bit: merges a masked nibble with pre-masked high bits.
inline VI vi_and_or(VI a, VI b, VI c) {
  return _mm512_ternarylogic_epi32(a, b, c, 0xEC);
}

/// Stores 16 int32 values in [−128, 127] as int8.
inline void vi_store_i8(int8_t* p, VI v) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtepi32_epi8(v));
}
inline int32_t vi_reduce(VI v) {
  return _mm512_reduce_add_epi32(v);
}

inline VF vf_zero() {
  return _mm512_setzero_ps();
}
inline VF vf_set1(float v) {
  return _mm512_set1_ps(v);
}
inline VF vf_load(const float* p) {
  return _mm512_loadu_ps(p);
}
inline VF vf_load_n(const float* p, int n) {
  return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1u), p);
}
inline VF vf_from_half(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline VF vf_from_bf16(const uint16_t* p) {
  const __m512i wide =
      _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}
/// Column pairs of bf16 (lane r: low half column 2p, high half 2p + 1) → two f32 vectors.
inline void vf_from_bf16_pairs(const void* p, VF* even, VF* odd) {
  const __m512i v = _mm512_loadu_si512(p);
  *even = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  *odd = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(-65536)));
}
inline VF vf_cvt(VI v) {
  return _mm512_cvtepi32_ps(v);
}
inline VF vf_add(VF a, VF b) {
  return _mm512_add_ps(a, b);
}
inline VF vf_sub(VF a, VF b) {
  return _mm512_sub_ps(a, b);
}
inline VF vf_mul(VF a, VF b) {
  return _mm512_mul_ps(a, b);
}
inline VF vf_fmadd(VF a, VF b, VF c) {
  return _mm512_fmadd_ps(a, b, c);
}
inline VF vf_fnmadd(VF a, VF b, VF c) {
  return _mm512_fnmadd_ps(a, b, c);
}
inline VF vf_abs(VF a) {
  return _mm512_abs_ps(a);
}
inline VF vf_max(VF a, VF b) {
  return _mm512_max_ps(a, b);
}
inline float vf_reduce(VF v) {
  return _mm512_reduce_add_ps(v);
}
inline float vf_reduce_max(VF v) {
  return _mm512_reduce_max_ps(v);
}
inline void vf_store(float* p, VF v) {
  _mm512_storeu_ps(p, v);
}
inline void vf_store_n(float* p, VF v, int n) {
  _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1u), v);
}
/// Bit mask of the lanes where a == b.
inline unsigned vf_eq_mask(VF a, VF b) {
  return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ);
}
/// roundf: to nearest, halves away from zero; exact (no x + 0.5 rounding).
inline VI vi_round_away(VF v) {
  const VF t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __mmask16 up =
      _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  const VF one = _mm512_castsi512_ps(
      _mm512_or_si512(_mm512_castps_si512(_mm512_set1_ps(1.0f)),
                      _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(INT32_MIN))));
  return _mm512_cvttps_epi32(_mm512_mask_add_ps(t, up, t, one));
}
/// Round to nearest, ties to even (cvtps2dq under the default MXCSR).
inline VI vi_round_even(VF v) {
  return _mm512_cvtps_epi32(v);
}
inline VI vi_min(VI a, VI b) {
  return _mm512_min_epi32(a, b);
}

/// binary32 → binary16 → binary32 with ties to even (as f32_to_fp16).
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
