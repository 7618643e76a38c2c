// SPDX-License-Identifier: Apache-2.0
// The kScalar matmul level: dequantize a row with the reference, then f32 dot products.
#include <vector>

#include "kernels/cpu/matmul_kernel.hpp"
#include "kernels/ref/quant_ref.hpp"

namespace polyinfer::inline v0::detail {

namespace {

// Rows are dequantized once and reused for up to token_block tokens.
constexpr int kTokenBlock = 16;

void compute(const MatmulCall& call, int64_t row_begin, int64_t row_end, int64_t token_begin,
             int64_t token_end, DType dtype) {
  thread_local std::vector<float> row;
  row.resize(static_cast<size_t>(call.cols));
  for (int64_t r = row_begin; r < row_end; ++r) {
    ref::dequantize(dtype, call.weights + r * call.row_bytes, row.data(), call.cols);
    for (int64_t t = token_begin; t < token_end; ++t) {
      const float* x = call.x + t * call.x_stride;
      float partial[8] = {};
      int64_t c = 0;
      for (; c + 8 <= call.cols; c += 8) {
        for (int i = 0; i < 8; ++i) partial[i] += row[c + i] * x[c + i];
      }
      for (; c < call.cols; ++c) partial[0] += row[c] * x[c];
      float sum = 0;
      for (float p : partial) sum += p;
      call.y[t * call.y_stride + r] = sum;
    }
  }
}

template <DType kType>
void compute_as(const MatmulCall& call, int64_t row_begin, int64_t row_end, int64_t token_begin,
                int64_t token_end) {
  compute(call, row_begin, row_end, token_begin, token_end, kType);
}

template <DType kType>
constexpr MatmulKernel scalar_kernel(const char* name) {
  return MatmulKernel{name,    kType,   Isa::kScalar,       PackLayout::kNone, 4,       kTokenBlock,
                      nullptr, nullptr, &compute_as<kType>, nullptr,           nullptr, nullptr};
}

constexpr MatmulKernel kKernels[] = {
    scalar_kernel<DType::kF32>("f32_scalar"),   scalar_kernel<DType::kF16>("f16_scalar"),
    scalar_kernel<DType::kBF16>("bf16_scalar"), scalar_kernel<DType::kQ4_0>("q4_0_scalar"),
    scalar_kernel<DType::kQ4_1>("q4_1_scalar"), scalar_kernel<DType::kQ5_0>("q5_0_scalar"),
    scalar_kernel<DType::kQ5_1>("q5_1_scalar"), scalar_kernel<DType::kQ8_0>("q8_0_scalar"),
    scalar_kernel<DType::kQ2_K>("q2_k_scalar"), scalar_kernel<DType::kQ3_K>("q3_k_scalar"),
    scalar_kernel<DType::kQ4_K>("q4_k_scalar"), scalar_kernel<DType::kQ5_K>("q5_k_scalar"),
    scalar_kernel<DType::kQ6_K>("q6_k_scalar"),
};

}  // namespace

MatmulKernelTable matmul_kernels_scalar() noexcept {
  return {kKernels, static_cast<int>(sizeof(kKernels) / sizeof(kKernels[0]))};
}

}  // namespace polyinfer::inline v0::detail
