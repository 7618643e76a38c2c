// SPDX-License-Identifier: Apache-2.0
// Scalar reference dequantization of every GGUF block format (mirrors ggml's dequantize_row_*).
#include <cstring>
#include <type_traits>

#include "kernels/ref/quant_ref.hpp"

namespace polyinfer::inline v0::detail::ref {

void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t elements) {
  const int64_t blocks = elements / kBlock32;
  for (int64_t i = 0; i < blocks; ++i) {
    const float d = fp16_to_f32(x[i].d);
    for (int j = 0; j < kBlock32 / 2; ++j) {
      const int x0 = (x[i].qs[j] & 0x0F) - 8;
      const int x1 = (x[i].qs[j] >> 4) - 8;
      y[i * kBlock32 + j] = static_cast<float>(x0) * d;
      y[i * kBlock32 + j + kBlock32 / 2] = static_cast<float>(x1) * d;
    }
  }
}

void dequantize_row_q4_1(const BlockQ4_1* x, float* y, int64_t elements) {
  const int64_t blocks = elements / kBlock32;
  for (int64_t i = 0; i < blocks; ++i) {
    const float d = fp16_to_f32(x[i].d);
    const float m = fp16_to_f32(x[i].m);
    for (int j = 0; j < kBlock32 / 2; ++j) {
      const int x0 = x[i].qs[j] & 0x0F;
      const int x1 = x[i].qs[j] >> 4;
      y[i * kBlock32 + j] = static_cast<float>(x0) * d + m;
      y[i * kBlock32 + j + kBlock32 / 2] = static_cast<float>(x1) * d + m;
    }
  }
}

void dequantize_row_q5_0(const BlockQ5_0* x, float* y, int64_t elements) {
  const int64_t blocks = elements / kBlock32;
  for (int64_t i = 0; i < blocks; ++i) {
    const float d = fp16_to_f32(x[i].d);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, sizeof(qh));
    for (int j = 0; j < kBlock32 / 2; ++j) {
      const uint8_t xh_0 = static_cast<uint8_t>(((qh >> (j + 0)) << 4) & 0x10);
      const uint8_t xh_1 = static_cast<uint8_t>((qh >> (j + 12)) & 0x10);
      const int32_t x0 = ((x[i].qs[j] & 0x0F) | xh_0) - 16;
      const int32_t x1 = ((x[i].qs[j] >> 4) | xh_1) - 16;
      y[i * kBlock32 + j] = static_cast<float>(x0) * d;
      y[i * kBlock32 + j + kBlock32 / 2] = static_cast<float>(x1) * d;
    }
  }
}

void dequantize_row_q5_1(const BlockQ5_1* x, float* y, int64_t elements) {
  const int64_t blocks = elements / kBlock32;
  for (int64_t i = 0; i < blocks; ++i) {
    const float d = fp16_to_f32(x[i].d);
    const float m = fp16_to_f32(x[i].m);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, sizeof(qh));
    for (int j = 0; j < kBlock32 / 2; ++j) {
      const uint8_t xh_0 = static_cast<uint8_t>(((qh >> (j + 0)) << 4) & 0x10);
      const uint8_t xh_1 = static_cast<uint8_t>((qh >> (j + 12)) & 0x10);
      const int x0 = (x[i].qs[j] & 0x0F) | xh_0;
      const int x1 = (x[i].qs[j] >> 4) | xh_1;
      y[i * kBlock32 + j] = static_cast<float>(x0) * d + m;
      y[i * kBlock32 + j + kBlock32 / 2] = static_cast<float>(x1) * d + m;
    }
  }
}

void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t elements) {
  const int64_t blocks = elements / kBlock32;
  for (int64_t i = 0; i < blocks; ++i) {
    const float d = fp16_to_f32(x[i].d);
    for (int j = 0; j < kBlock32; ++j) y[i * kBlock32 + j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

void dequantize_row_q8_1(const BlockQ8_1* x, float* y, int64_t elements) {
  const int64_t blocks = elements / kBlock32;
  for (int64_t i = 0; i < blocks; ++i) {
    const float d = fp16_to_f32(x[i].d);
    for (int j = 0; j < kBlock32; ++j) y[i * kBlock32 + j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

void dequantize_row_q2_k(const BlockQ2_K* x, float* y, int64_t elements) {
  const int64_t blocks = elements / kBlockK;
  for (int64_t i = 0; i < blocks; ++i) {
    const float d = fp16_to_f32(x[i].d);
    const float min = fp16_to_f32(x[i].dmin);
    const uint8_t* q = x[i].qs;
    int is = 0;
    for (int n = 0; n < kBlockK; n += 128) {
      int shift = 0;
      for (int j = 0; j < 4; ++j) {
        uint8_t sc = x[i].scales[is++];
        float dl = d * static_cast<float>(sc & 0xF);
        float ml = min * static_cast<float>(sc >> 4);
        for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l] >> shift) & 3) - ml;
        sc = x[i].scales[is++];
        dl = d * static_cast<float>(sc & 0xF);
        ml = min * static_cast<float>(sc >> 4);
        for (int l = 0; l < 16; ++l) {
          *y++ = dl * static_cast<float>((q[l + 16] >> shift) & 3) - ml;
        }
        shift += 2;
      }
      q += 32;
    }
  }
}

void dequantize_row_q3_k(const BlockQ3_K* x, float* y, int64_t elements) {
  const int64_t blocks = elements / kBlockK;
  constexpr uint32_t kMask1 = 0x03030303;
  constexpr uint32_t kMask2 = 0x0f0f0f0f;
  for (int64_t i = 0; i < blocks; ++i) {
    const float d_all = fp16_to_f32(x[i].d);
    const uint8_t* q = x[i].qs;
    const uint8_t* hm = x[i].hmask;
    uint8_t m = 1;
    uint32_t aux[4];
    std::memcpy(aux, x[i].scales, kKScaleBytes);
    const uint32_t tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & kMask2) | (((tmp >> 4) & kMask1) << 4);
    aux[3] = ((aux[1] >> 4) & kMask2) | (((tmp >> 6) & kMask1) << 4);
    aux[0] = (aux[0] & kMask2) | (((tmp >> 0) & kMask1) << 4);
    aux[1] = (aux[1] & kMask2) | (((tmp >> 2) & kMask1) << 4);
    int8_t scales[16];
    std::memcpy(scales, aux, sizeof(scales));
    int is = 0;
    for (int n = 0; n < kBlockK; n += 128) {
      int shift = 0;
      for (int j = 0; j < 4; ++j) {
        float dl = d_all * static_cast<float>(scales[is++] - 32);
        for (int l = 0; l < 16; ++l) {
          const int v = ((q[l + 0] >> shift) & 3) - ((hm[l + 0] & m) ? 0 : 4);
          *y++ = dl * static_cast<float>(v);
        }
        dl = d_all * static_cast<float>(scales[is++] - 32);
        for (int l = 0; l < 16; ++l) {
          const int v = ((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4);
          *y++ = dl * static_cast<float>(v);
        }
        shift += 2;
        m = static_cast<uint8_t>(m << 1);
      }
      q += 32;
    }
  }
}

void dequantize_row_q4_k(const BlockQ4_K* x, float* y, int64_t elements) {
  const int64_t blocks = elements / kBlockK;
  for (int64_t i = 0; i < blocks; ++i) {
    const uint8_t* q = x[i].qs;
    const float d = fp16_to_f32(x[i].d);
    const float min = fp16_to_f32(x[i].dmin);
    int is = 0;
    uint8_t sc = 0;
    uint8_t m = 0;
    for (int j = 0; j < kBlockK; j += 64) {
      get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
      const float d1 = d * sc;
      const float m1 = min * m;
      get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc;
      const float m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
      q += 32;
      is += 2;
    }
  }
}

void dequantize_row_q5_k(const BlockQ5_K* x, float* y, int64_t elements) {
  const int64_t blocks = elements / kBlockK;
  for (int64_t i = 0; i < blocks; ++i) {
    const uint8_t* ql = x[i].qs;
    const uint8_t* qh = x[i].qh;
    const float d = fp16_to_f32(x[i].d);
    const float min = fp16_to_f32(x[i].dmin);
    int is = 0;
    uint8_t sc = 0;
    uint8_t m = 0;
    uint8_t u1 = 1;
    uint8_t u2 = 2;
    for (int j = 0; j < kBlockK; j += 64) {
      get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
      const float d1 = d * sc;
      const float m1 = min * m;
      get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc;
      const float m2 = min * m;
      for (int l = 0; l < 32; ++l) {
        *y++ = d1 * static_cast<float>((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        *y++ = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
      }
      ql += 32;
      is += 2;
      u1 = static_cast<uint8_t>(u1 << 2);
      u2 = static_cast<uint8_t>(u2 << 2);
    }
  }
}

void dequantize_row_q6_k(const BlockQ6_K* x, float* y, int64_t elements) {
  const int64_t blocks = elements / kBlockK;
  for (int64_t i = 0; i < blocks; ++i) {
    const float d = fp16_to_f32(x[i].d);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    for (int n = 0; n < kBlockK; n += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l + 0] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

void dequantize_row_q8_k(const BlockQ8_K* x, float* y, int64_t elements) {
  const int64_t blocks = elements / kBlockK;
  for (int64_t i = 0; i < blocks; ++i) {
    for (int j = 0; j < kBlockK; ++j) *y++ = x[i].d * static_cast<float>(x[i].qs[j]);
  }
}

namespace {

// Copies one block at a time out of `src` (which need not be aligned for Block) and runs the
// row function on it: the reference path favours defined behaviour over speed.
template <typename Block>
void dequantize_blocks(void (*row)(const Block*, float*, int64_t), const std::byte* src, float* dst,
                       int64_t elements, int block_elements) {
  const int64_t blocks = elements / block_elements;
  Block block;
  for (int64_t i = 0; i < blocks; ++i) {
    std::memcpy(&block, src + i * static_cast<int64_t>(sizeof(Block)), sizeof(Block));
    row(&block, dst + i * block_elements, block_elements);
  }
}

template <typename T>
void convert_scalars(const std::byte* src, float* dst, int64_t elements) {
  for (int64_t i = 0; i < elements; ++i) {
    T value;
    std::memcpy(&value, src + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
    if constexpr (std::is_same_v<T, Half>) {
      dst[i] = fp16_to_f32(value);
    } else {
      dst[i] = static_cast<float>(value);
    }
  }
}

}  // namespace

bool can_dequantize(DType type) noexcept {
  switch (type) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kQ4_0:
    case DType::kQ4_1:
    case DType::kQ5_0:
    case DType::kQ5_1:
    case DType::kQ8_0:
    case DType::kQ8_1:
    case DType::kQ2_K:
    case DType::kQ3_K:
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
    case DType::kQ8_K:
    case DType::kI8:
    case DType::kI16:
    case DType::kI32:
    case DType::kI64:
    case DType::kF64:
      return true;
  }
  return false;
}

bool dequantize(DType type, const std::byte* src, float* dst, int64_t elements) noexcept {
  switch (type) {
    case DType::kF32:
      if (elements > 0) std::memcpy(dst, src, static_cast<size_t>(elements) * sizeof(float));
      return true;
    case DType::kF16:
      convert_scalars<Half>(src, dst, elements);
      return true;
    case DType::kBF16:
      for (int64_t i = 0; i < elements; ++i) {
        uint16_t bits;
        std::memcpy(&bits, src + i * 2, 2);
        dst[i] = bf16_to_f32(bits);
      }
      return true;
    case DType::kI8:
      convert_scalars<int8_t>(src, dst, elements);
      return true;
    case DType::kI16:
      convert_scalars<int16_t>(src, dst, elements);
      return true;
    case DType::kI32:
      convert_scalars<int32_t>(src, dst, elements);
      return true;
    case DType::kI64:
      convert_scalars<int64_t>(src, dst, elements);
      return true;
    case DType::kF64:
      convert_scalars<double>(src, dst, elements);
      return true;
    case DType::kQ4_0:
      dequantize_blocks(&dequantize_row_q4_0, src, dst, elements, kBlock32);
      break;
    case DType::kQ4_1:
      dequantize_blocks(&dequantize_row_q4_1, src, dst, elements, kBlock32);
      break;
    case DType::kQ5_0:
      dequantize_blocks(&dequantize_row_q5_0, src, dst, elements, kBlock32);
      break;
    case DType::kQ5_1:
      dequantize_blocks(&dequantize_row_q5_1, src, dst, elements, kBlock32);
      break;
    case DType::kQ8_0:
      dequantize_blocks(&dequantize_row_q8_0, src, dst, elements, kBlock32);
      break;
    case DType::kQ8_1:
      dequantize_blocks(&dequantize_row_q8_1, src, dst, elements, kBlock32);
      break;
    case DType::kQ2_K:
      dequantize_blocks(&dequantize_row_q2_k, src, dst, elements, kBlockK);
      break;
    case DType::kQ3_K:
      dequantize_blocks(&dequantize_row_q3_k, src, dst, elements, kBlockK);
      break;
    case DType::kQ4_K:
      dequantize_blocks(&dequantize_row_q4_k, src, dst, elements, kBlockK);
      break;
    case DType::kQ5_K:
      dequantize_blocks(&dequantize_row_q5_k, src, dst, elements, kBlockK);
      break;
    case DType::kQ6_K:
      dequantize_blocks(&dequantize_row_q6_k, src, dst, elements, kBlockK);
      break;
    case DType::kQ8_K:
      dequantize_blocks(&dequantize_row_q8_k, src, dst, elements, kBlockK);
      break;
    default:
      return false;
  }
  return true;
}

}  // namespace polyinfer::inline v0::detail::ref
