// SPDX-License-Identifier: Apache-2.0
// Reference quantizers of the 32-wide formats, f16/bf16 conversion, and the by-type dispatch.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "kernels/ref/quant_ref.hpp"

namespace polyinfer::inline v0::detail::ref {

// The loops below follow ggml-quants.c's quantize_row_*_ref statement by statement: the same
// float operations in the same order give the same bytes. Inputs are expected to be finite.

void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t elements) {
  const int64_t blocks = elements / kBlock32;
  for (int64_t i = 0; i < blocks; ++i) {
    float amax = 0.0f;  // absolute max
    float max = 0.0f;
    for (int j = 0; j < kBlock32; ++j) {
      const float v = x[i * kBlock32 + j];
      if (amax < std::fabs(v)) {
        amax = std::fabs(v);
        max = v;
      }
    }
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_fp16(d);
    for (int j = 0; j < kBlock32 / 2; ++j) {
      const float x0 = x[i * kBlock32 + 0 + j] * id;
      const float x1 = x[i * kBlock32 + kBlock32 / 2 + j] * id;
      // (int8_t)(x + 8.5f) truncates toward zero; x·id lies in [-8, 8].
      const int xi0 = std::min(15, static_cast<int>(static_cast<int8_t>(x0 + 8.5f)));
      const int xi1 = std::min(15, static_cast<int>(static_cast<int8_t>(x1 + 8.5f)));
      y[i].qs[j] = static_cast<uint8_t>(xi0 | (xi1 << 4));
    }
  }
}

void quantize_row_q4_1(const float* x, BlockQ4_1* y, int64_t elements) {
  const int64_t blocks = elements / kBlock32;
  for (int64_t i = 0; i < blocks; ++i) {
    float min = FLT_MAX;
    float max = -FLT_MAX;
    for (int j = 0; j < kBlock32; ++j) {
      const float v = x[i * kBlock32 + j];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const float d = (max - min) / ((1 << 4) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_fp16(d);
    y[i].m = f32_to_fp16(min);
    for (int j = 0; j < kBlock32 / 2; ++j) {
      const float x0 = (x[i * kBlock32 + 0 + j] - min) * id;
      const float x1 = (x[i * kBlock32 + kBlock32 / 2 + j] - min) * id;
      const int xi0 = std::min(15, static_cast<int>(static_cast<int8_t>(x0 + 0.5f)));
      const int xi1 = std::min(15, static_cast<int>(static_cast<int8_t>(x1 + 0.5f)));
      y[i].qs[j] = static_cast<uint8_t>(xi0 | (xi1 << 4));
    }
  }
}

void quantize_row_q5_0(const float* x, BlockQ5_0* y, int64_t elements) {
  const int64_t blocks = elements / kBlock32;
  for (int64_t i = 0; i < blocks; ++i) {
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < kBlock32; ++j) {
      const float v = x[i * kBlock32 + j];
      if (amax < std::fabs(v)) {
        amax = std::fabs(v);
        max = v;
      }
    }
    const float d = max / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < kBlock32 / 2; ++j) {
      const float x0 = x[i * kBlock32 + 0 + j] * id;
      const float x1 = x[i * kBlock32 + kBlock32 / 2 + j] * id;
      const auto xi0 =
          static_cast<uint8_t>(std::min(31, static_cast<int>(static_cast<int8_t>(x0 + 16.5f))));
      const auto xi1 =
          static_cast<uint8_t>(std::min(31, static_cast<int>(static_cast<int8_t>(x1 + 16.5f))));
      y[i].qs[j] = static_cast<uint8_t>((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
      qh |= ((xi0 & 0x10u) >> 4) << (j + 0);
      qh |= ((xi1 & 0x10u) >> 4) << (j + kBlock32 / 2);
    }
    std::memcpy(y[i].qh, &qh, sizeof(qh));
  }
}

void quantize_row_q5_1(const float* x, BlockQ5_1* y, int64_t elements) {
  const int64_t blocks = elements / kBlock32;
  for (int64_t i = 0; i < blocks; ++i) {
    float min = FLT_MAX;
    float max = -FLT_MAX;
    for (int j = 0; j < kBlock32; ++j) {
      const float v = x[i * kBlock32 + j];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const float d = (max - min) / ((1 << 5) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_fp16(d);
    y[i].m = f32_to_fp16(min);
    uint32_t qh = 0;
    for (int j = 0; j < kBlock32 / 2; ++j) {
      const float x0 = (x[i * kBlock32 + 0 + j] - min) * id;
      const float x1 = (x[i * kBlock32 + kBlock32 / 2 + j] - min) * id;
      const auto xi0 = static_cast<uint8_t>(x0 + 0.5f);
      const auto xi1 = static_cast<uint8_t>(x1 + 0.5f);
      y[i].qs[j] = static_cast<uint8_t>((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
      qh |= ((xi0 & 0x10u) >> 4) << (j + 0);
      qh |= ((xi1 & 0x10u) >> 4) << (j + kBlock32 / 2);
    }
    std::memcpy(y[i].qh, &qh, sizeof(qh));
  }
}

void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t elements) {
  const int64_t blocks = elements / kBlock32;
  for (int64_t i = 0; i < blocks; ++i) {
    float amax = 0.0f;
    for (int j = 0; j < kBlock32; ++j) amax = std::max(amax, std::fabs(x[i * kBlock32 + j]));
    const float d = amax / ((1 << 7) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_fp16(d);
    for (int j = 0; j < kBlock32; ++j) {
      const float x0 = x[i * kBlock32 + j] * id;
      y[i].qs[j] = static_cast<int8_t>(std::round(x0));  // roundf: half away from zero
    }
  }
}

void quantize_row_q8_0_gguf_py(const float* x, BlockQ8_0* y, int64_t elements) {
  const int64_t blocks = elements / kBlock32;
  for (int64_t i = 0; i < blocks; ++i) {
    // d = abs(blocks).max(axis=1) / 127; id = where(d == 0, 0, 1 / d), all in float32.
    float amax = 0.0f;
    for (int j = 0; j < kBlock32; ++j) amax = std::max(amax, std::fabs(x[i * kBlock32 + j]));
    const float d = amax / 127.0f;
    const float id = d == 0.0f ? 0.0f : 1.0f / d;
    y[i].d = f32_to_fp16(d);
    for (int j = 0; j < kBlock32; ++j) {
      // np_roundf: sign(n) · (floor(a) + floor(2·(a − floor(a)))) with a = |n|.
      const float n = x[i * kBlock32 + j] * id;
      const float a = std::fabs(n);
      const float floored = std::floor(a);
      const float b = floored + std::floor(2.0f * (a - floored));
      const float sign = n > 0.0f ? 1.0f : (n < 0.0f ? -1.0f : 0.0f);
      y[i].qs[j] = static_cast<int8_t>(sign * b);
    }
  }
}

void quantize_row_q8_1(const float* x, BlockQ8_1* y, int64_t elements) {
  const int64_t blocks = elements / kBlock32;
  for (int64_t i = 0; i < blocks; ++i) {
    float amax = 0.0f;
    for (int j = 0; j < kBlock32; ++j) amax = std::max(amax, std::fabs(x[i * kBlock32 + j]));
    const float d = amax / ((1 << 7) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < kBlock32 / 2; ++j) {
      const float v0 = x[i * kBlock32 + j] * id;
      const float v1 = x[i * kBlock32 + kBlock32 / 2 + j] * id;
      y[i].qs[j] = static_cast<int8_t>(std::round(v0));
      y[i].qs[kBlock32 / 2 + j] = static_cast<int8_t>(std::round(v1));
      sum += y[i].qs[j];
      sum += y[i].qs[kBlock32 / 2 + j];
    }
    y[i].s = f32_to_fp16(static_cast<float>(sum) * d);
  }
}

namespace {

// Runs a row quantizer one block at a time into `dst` (which need not be aligned for Block).
template <typename Block>
void quantize_blocks(void (*row)(const float*, Block*, int64_t), const float* src, std::byte* dst,
                     int64_t elements, int block_elements) {
  const int64_t blocks = elements / block_elements;
  Block block{};
  for (int64_t i = 0; i < blocks; ++i) {
    row(src + i * block_elements, &block, block_elements);
    std::memcpy(dst + i * static_cast<int64_t>(sizeof(Block)), &block, sizeof(Block));
  }
}

}  // namespace

bool can_quantize(DType type) noexcept {
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
      return true;
    default:
      return false;
  }
}

bool quantize(DType type, const float* src, std::byte* dst, int64_t elements) noexcept {
  switch (type) {
    case DType::kF32:
      if (elements > 0) std::memcpy(dst, src, static_cast<size_t>(elements) * sizeof(float));
      return true;
    case DType::kF16:
      for (int64_t i = 0; i < elements; ++i) {
        const Half h = f32_to_fp16(src[i]);
        std::memcpy(dst + i * 2, &h, 2);
      }
      return true;
    case DType::kBF16:
      for (int64_t i = 0; i < elements; ++i) {
        const uint16_t h = f32_to_bf16(src[i]);
        std::memcpy(dst + i * 2, &h, 2);
      }
      return true;
    case DType::kQ4_0:
      quantize_blocks(&quantize_row_q4_0, src, dst, elements, kBlock32);
      break;
    case DType::kQ4_1:
      quantize_blocks(&quantize_row_q4_1, src, dst, elements, kBlock32);
      break;
    case DType::kQ5_0:
      quantize_blocks(&quantize_row_q5_0, src, dst, elements, kBlock32);
      break;
    case DType::kQ5_1:
      quantize_blocks(&quantize_row_q5_1, src, dst, elements, kBlock32);
      break;
    case DType::kQ8_0:
      quantize_blocks(&quantize_row_q8_0, src, dst, elements, kBlock32);
      break;
    case DType::kQ8_1:
      quantize_blocks(&quantize_row_q8_1, src, dst, elements, kBlock32);
      break;
    case DType::kQ2_K:
      quantize_blocks(&quantize_row_q2_k, src, dst, elements, kBlockK);
      break;
    case DType::kQ3_K:
      quantize_blocks(&quantize_row_q3_k, src, dst, elements, kBlockK);
      break;
    case DType::kQ4_K:
      quantize_blocks(&quantize_row_q4_k, src, dst, elements, kBlockK);
      break;
    case DType::kQ5_K:
      quantize_blocks(&quantize_row_q5_k, src, dst, elements, kBlockK);
      break;
    case DType::kQ6_K:
      quantize_blocks(&quantize_row_q6_k, src, dst, elements, kBlockK);
      break;
    case DType::kQ8_K:
      quantize_blocks(&quantize_row_q8_k, src, dst, elements, kBlockK);
      break;
    default:
      return false;
  }
  return true;
}

}  // namespace polyinfer::inline v0::detail::ref
