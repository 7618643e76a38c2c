// SPDX-License-Identifier: Apache-2.0
// Scalar matmul references: dequantized f32 product, and the exact-integer quantized product.
#include <cstring>
#include <vector>

#include "kernels/ref/ops_ref.hpp"
#include "kernels/ref/quant_ref.hpp"

namespace polyinfer::inline v0::detail::ref {

namespace {

// Bytes of one row of `cols` values (cols a multiple of the block size).
int64_t row_bytes_of(DType dtype, int64_t cols) {
  switch (dtype) {
    case DType::kF32:
    case DType::kI32:
      return cols * 4;
    case DType::kF16:
    case DType::kBF16:
    case DType::kI16:
      return cols * 2;
    case DType::kI8:
      return cols;
    case DType::kI64:
    case DType::kF64:
      return cols * 8;
    case DType::kQ4_0:
      return cols / kBlock32 * int64_t{sizeof(BlockQ4_0)};
    case DType::kQ4_1:
      return cols / kBlock32 * int64_t{sizeof(BlockQ4_1)};
    case DType::kQ5_0:
      return cols / kBlock32 * int64_t{sizeof(BlockQ5_0)};
    case DType::kQ5_1:
      return cols / kBlock32 * int64_t{sizeof(BlockQ5_1)};
    case DType::kQ8_0:
      return cols / kBlock32 * int64_t{sizeof(BlockQ8_0)};
    case DType::kQ8_1:
      return cols / kBlock32 * int64_t{sizeof(BlockQ8_1)};
    case DType::kQ2_K:
      return cols / kBlockK * int64_t{sizeof(BlockQ2_K)};
    case DType::kQ3_K:
      return cols / kBlockK * int64_t{sizeof(BlockQ3_K)};
    case DType::kQ4_K:
      return cols / kBlockK * int64_t{sizeof(BlockQ4_K)};
    case DType::kQ5_K:
      return cols / kBlockK * int64_t{sizeof(BlockQ5_K)};
    case DType::kQ6_K:
      return cols / kBlockK * int64_t{sizeof(BlockQ6_K)};
    case DType::kQ8_K:
      return cols / kBlockK * int64_t{sizeof(BlockQ8_K)};
  }
  return 0;
}

// Copies a row of blocks out of (possibly unaligned) storage.
template <typename Block>
std::vector<Block> load_row(const std::byte* w, int64_t row, int64_t blocks) {
  std::vector<Block> out(static_cast<size_t>(blocks));
  std::memcpy(out.data(), w + row * blocks * int64_t{sizeof(Block)},
              static_cast<size_t>(blocks) * sizeof(Block));
  return out;
}

// Quantizes each token's activations, then y[t][r] = dot(W row r, x̂ row t).
template <typename WBlock, typename XBlock, int kBlockElements>
void quantized_product(double (*dot)(const WBlock*, const XBlock*, int64_t),
                       void (*quantize_row)(const float*, XBlock*, int64_t), const std::byte* w,
                       int64_t rows, int64_t cols, const float* x, int64_t tokens, int64_t x_stride,
                       float* y, int64_t y_stride) {
  const int64_t blocks = cols / kBlockElements;
  std::vector<XBlock> xq(static_cast<size_t>(blocks * tokens));
  for (int64_t t = 0; t < tokens; ++t) quantize_row(x + t * x_stride, &xq[t * blocks], cols);
  for (int64_t r = 0; r < rows; ++r) {
    const std::vector<WBlock> row = load_row<WBlock>(w, r, blocks);
    for (int64_t t = 0; t < tokens; ++t) {
      y[t * y_stride + r] = static_cast<float>(dot(row.data(), &xq[t * blocks], cols));
    }
  }
}

}  // namespace

void matmul(DType dtype, const std::byte* w, int64_t rows, int64_t cols, const float* x,
            int64_t tokens, int64_t x_stride, float* y, int64_t y_stride) {
  const int64_t row_bytes = row_bytes_of(dtype, cols);
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    if (!dequantize(dtype, w + r * row_bytes, row.data(), cols)) return;
    for (int64_t t = 0; t < tokens; ++t) {
      const float* xt = x + t * x_stride;
      double sum = 0;
      for (int64_t c = 0; c < cols; ++c) sum += double{row[c]} * double{xt[c]};
      y[t * y_stride + r] = static_cast<float>(sum);
    }
  }
}

DType matmul_activation_type(DType dtype) noexcept {
  switch (dtype) {
    case DType::kQ4_0:
    case DType::kQ8_0:
      return DType::kQ8_0;
    case DType::kQ4_K:
    case DType::kQ6_K:
      return DType::kQ8_K;
    default:
      return DType::kF32;
  }
}

double dot_q4_0_q8_0(const BlockQ4_0* w, const BlockQ8_0* x, int64_t cols) noexcept {
  double sum = 0;
  for (int64_t b = 0; b < cols / kBlock32; ++b) {
    int sumi = 0;
    for (int j = 0; j < kBlock32 / 2; ++j) {
      sumi += ((w[b].qs[j] & 0xF) - 8) * x[b].qs[j];
      sumi += ((w[b].qs[j] >> 4) - 8) * x[b].qs[j + kBlock32 / 2];
    }
    sum += double{fp16_to_f32(w[b].d)} * double{fp16_to_f32(x[b].d)} * sumi;
  }
  return sum;
}

double dot_q8_0_q8_0(const BlockQ8_0* w, const BlockQ8_0* x, int64_t cols) noexcept {
  double sum = 0;
  for (int64_t b = 0; b < cols / kBlock32; ++b) {
    int sumi = 0;
    for (int j = 0; j < kBlock32; ++j) sumi += w[b].qs[j] * x[b].qs[j];
    sum += double{fp16_to_f32(w[b].d)} * double{fp16_to_f32(x[b].d)} * sumi;
  }
  return sum;
}

double dot_q4_k_q8_k(const BlockQ4_K* w, const BlockQ8_K* x, int64_t cols) noexcept {
  double sum = 0;
  for (int64_t b = 0; b < cols / kBlockK; ++b) {
    // x = d·sc·q − dmin·m per sub-block of 32: Σ w·x̂ = dx·(d·Σ sc·Σq·q8 − dmin·Σ m·Σq8).
    int64_t scaled = 0;
    int64_t mins = 0;
    for (int s = 0; s < 8; ++s) {
      uint8_t scale = 0;
      uint8_t min = 0;
      get_scale_min_k4(s, w[b].scales, &scale, &min);
      const uint8_t* q = w[b].qs + 32 * (s / 2);
      const int8_t* q8 = x[b].qs + 32 * s;
      int sumi = 0;
      for (int l = 0; l < 32; ++l) sumi += ((s % 2 == 0) ? (q[l] & 0xF) : (q[l] >> 4)) * q8[l];
      scaled += int64_t{scale} * sumi;
      mins += int64_t{min} * (x[b].bsums[2 * s] + x[b].bsums[2 * s + 1]);
    }
    sum += double{x[b].d} * (double{fp16_to_f32(w[b].d)} * static_cast<double>(scaled) -
                             double{fp16_to_f32(w[b].dmin)} * static_cast<double>(mins));
  }
  return sum;
}

double dot_q6_k_q8_k(const BlockQ6_K* w, const BlockQ8_K* x, int64_t cols) noexcept {
  double sum = 0;
  for (int64_t b = 0; b < cols / kBlockK; ++b) {
    int8_t q[kBlockK];
    for (int n = 0; n < 2; ++n) {
      const uint8_t* ql = w[b].ql + 64 * n;
      const uint8_t* qh = w[b].qh + 32 * n;
      int8_t* out = q + 128 * n;
      for (int l = 0; l < 32; ++l) {
        out[l + 0] = static_cast<int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        out[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        out[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        out[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
    }
    int64_t sumi = 0;
    for (int s = 0; s < 16; ++s) {
      int sub = 0;
      for (int l = 0; l < 16; ++l) sub += q[16 * s + l] * x[b].qs[16 * s + l];
      sumi += int64_t{w[b].scales[s]} * sub;
    }
    sum += double{fp16_to_f32(w[b].d)} * double{x[b].d} * static_cast<double>(sumi);
  }
  return sum;
}

void matmul_quantized(DType dtype, const std::byte* w, int64_t rows, int64_t cols, const float* x,
                      int64_t tokens, int64_t x_stride, float* y, int64_t y_stride) {
  switch (dtype) {
    case DType::kQ4_0:
      return quantized_product<BlockQ4_0, BlockQ8_0, kBlock32>(
          &dot_q4_0_q8_0, &quantize_row_q8_0, w, rows, cols, x, tokens, x_stride, y, y_stride);
    case DType::kQ8_0:
      return quantized_product<BlockQ8_0, BlockQ8_0, kBlock32>(
          &dot_q8_0_q8_0, &quantize_row_q8_0, w, rows, cols, x, tokens, x_stride, y, y_stride);
    case DType::kQ4_K:
      return quantized_product<BlockQ4_K, BlockQ8_K, kBlockK>(
          &dot_q4_k_q8_k, &quantize_row_q8_k, w, rows, cols, x, tokens, x_stride, y, y_stride);
    case DType::kQ6_K:
      return quantized_product<BlockQ6_K, BlockQ8_K, kBlockK>(
          &dot_q6_k_q8_k, &quantize_row_q8_k, w, rows, cols, x, tokens, x_stride, y, y_stride);
    default:
      return matmul(dtype, w, rows, cols, x, tokens, x_stride, y, y_stride);
  }
}

}  // namespace polyinfer::inline v0::detail::ref
