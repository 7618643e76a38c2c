// SPDX-License-Identifier: Apache-2.0
// GGUF block layouts (bit-compatible with ggml) and fp16/bf16 <-> f32 conversions, host and device.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define POLYINFER_HOST_DEVICE __host__ __device__
#else
#define POLYINFER_HOST_DEVICE
#endif

namespace polyinfer::inline v0::detail {

/// Weights per block of the 32-wide formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1).
inline constexpr int kBlock32 = 32;
/// Weights per super-block of the K-quants.
inline constexpr int kBlockK = 256;
/// Bytes of packed 6-bit scales and mins in Q4_K / Q5_K (and of 6-bit scales in Q3_K).
inline constexpr int kKScaleBytes = 12;

/// Raw IEEE binary16 bits, as GGUF stores them (ggml_half).
using Half = uint16_t;

/// x = d·(q − 8); low nibbles hold elements 0–15, high nibbles 16–31.
struct BlockQ4_0 {
  Half d;
  uint8_t qs[kBlock32 / 2];
};
/// x = d·q + m.
struct BlockQ4_1 {
  Half d;
  Half m;
  uint8_t qs[kBlock32 / 2];
};
/// x = d·(q − 16); the fifth bit of element j is bit j of qh.
struct BlockQ5_0 {
  Half d;
  uint8_t qh[4];
  uint8_t qs[kBlock32 / 2];
};
/// x = d·q + m, fifth bits as in Q5_0.
struct BlockQ5_1 {
  Half d;
  Half m;
  uint8_t qh[4];
  uint8_t qs[kBlock32 / 2];
};
/// x = d·q.
struct BlockQ8_0 {
  Half d;
  int8_t qs[kBlock32];
};
/// x = d·q; s = d·Σq (activations for Q4_1 / Q5_1 dot products).
struct BlockQ8_1 {
  Half d;
  Half s;
  int8_t qs[kBlock32];
};
/// 16 sub-blocks of 16: 4-bit scale (low) and min (high) per sub-block, 2-bit quants.
struct BlockQ2_K {
  uint8_t scales[kBlockK / 16];
  uint8_t qs[kBlockK / 4];
  Half d;
  Half dmin;
};
/// 16 sub-blocks of 16: 6-bit signed scales, 2 low bits in qs and the high bit in hmask.
struct BlockQ3_K {
  uint8_t hmask[kBlockK / 8];
  uint8_t qs[kBlockK / 4];
  uint8_t scales[kKScaleBytes];
  Half d;
};
/// 8 sub-blocks of 32: x = d·sc·q − dmin·m with 6-bit sc, m packed in `scales`.
struct BlockQ4_K {
  Half d;
  Half dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qs[kBlockK / 2];
};
/// As Q4_K with a fifth bit per weight in qh.
struct BlockQ5_K {
  Half d;
  Half dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kBlockK / 8];
  uint8_t qs[kBlockK / 2];
};
/// 16 sub-blocks of 16: x = d·scale·(q − 32), 4 low bits in ql, 2 high bits in qh.
struct BlockQ6_K {
  uint8_t ql[kBlockK / 2];
  uint8_t qh[kBlockK / 4];
  int8_t scales[kBlockK / 16];
  Half d;
};
/// Activations for K-quant dot products: x = d·q; bsums are sums of 16 quants.
struct BlockQ8_K {
  float d;
  int8_t qs[kBlockK];
  int16_t bsums[kBlockK / 16];
};

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);

// std::memcpy is a host function to clang's HIP device compilation; its builtin is not.
#if defined(__HIP_DEVICE_COMPILE__)
#define POLYINFER_MEMCPY __builtin_memcpy
#else
#define POLYINFER_MEMCPY std::memcpy
#endif

POLYINFER_HOST_DEVICE inline uint32_t f32_bits(float value) {
  uint32_t bits;
  POLYINFER_MEMCPY(&bits, &value, sizeof bits);
  return bits;
}

POLYINFER_HOST_DEVICE inline float f32_from_bits(uint32_t bits) {
  float value;
  POLYINFER_MEMCPY(&value, &bits, sizeof value);
  return value;
}

/// Exact binary16 → binary32 (subnormals, infinities and NaN payloads preserved).
POLYINFER_HOST_DEVICE inline float fp16_to_f32(Half h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0x1F) return f32_from_bits(sign | 0x7F800000u | (mantissa << 13));
  if (exponent != 0) return f32_from_bits(sign | ((exponent + 112) << 23) | (mantissa << 13));
  if (mantissa == 0) return f32_from_bits(sign);
  // Subnormal: normalise the mantissa.
  int shift = 0;
  while ((mantissa & 0x400u) == 0) {
    mantissa <<= 1;
    ++shift;
  }
  mantissa &= 0x3FFu;
  return f32_from_bits(sign | (static_cast<uint32_t>(113 - shift) << 23) | (mantissa << 13));
}

/// binary32 → binary16 rounding to nearest, ties to even, as ggml (F16C `_cvtss_sh(x, 0)` and
/// its portable fallback) and numpy do. NaN becomes a quiet NaN keeping the payload's top bits.
POLYINFER_HOST_DEVICE inline Half f32_to_fp16(float value) {
  const uint32_t bits = f32_bits(value);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) {  // NaN
    return static_cast<Half>(sign | 0x7E00u | ((magnitude >> 13) & 0x3FFu));
  }
  if (magnitude >= 0x47800000u) {  // ≥ 65536 (and infinity): overflow to infinity
    // Values in [65520, 65536) round up to infinity too; handled below by the normal path.
    return static_cast<Half>(sign | 0x7C00u);
  }
  if (magnitude < 0x38800000u) {  // below the smallest normal half (2^-14): subnormal or zero
    if (magnitude < 0x33000000u) return static_cast<Half>(sign);  // < 2^-25 rounds to zero
    const uint32_t exponent = magnitude >> 23;
    const uint32_t mantissa = (magnitude & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126 - exponent;  // 14..24 bits dropped beyond the 10-bit field
    const uint32_t halfway = 1u << (shift - 1);
    uint32_t result = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1);
    if (rest > halfway || (rest == halfway && (result & 1u) != 0)) ++result;
    return static_cast<Half>(sign | result);
  }
  // Normal range: rebias the exponent and round the 13 dropped mantissa bits.
  uint32_t result = magnitude - 0x38000000u;  // exponent − 112
  const uint32_t rest = result & 0x1FFFu;
  result >>= 13;
  if (rest > 0x1000u || (rest == 0x1000u && (result & 1u) != 0)) ++result;  // may carry to inf
  return static_cast<Half>(sign | result);
}

/// bfloat16 (top half of a binary32) → binary32, exact.
POLYINFER_HOST_DEVICE inline float bf16_to_f32(uint16_t h) {
  return f32_from_bits(static_cast<uint32_t>(h) << 16);
}

/// binary32 → bfloat16 as ggml_compute_fp32_to_bf16: ties to even, NaN forced quiet.
POLYINFER_HOST_DEVICE inline uint16_t f32_to_bf16(float value) {
  const uint32_t bits = f32_bits(value);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 64u);
  return static_cast<uint16_t>((bits + (0x7FFFu + ((bits >> 16) & 1u))) >> 16);
}

/// Unpacks the 6-bit scale and min of sub-block j (0..7) of Q4_K / Q5_K (ggml get_scale_min_k4).
POLYINFER_HOST_DEVICE inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* scale,
                                                   uint8_t* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
  }
}

}  // namespace polyinfer::inline v0::detail
