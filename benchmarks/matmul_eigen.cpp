// SPDX-License-Identifier: Apache-2.0
// Eigen f32 GEMM for bench_matmul, in its own unit: compiled with -march=native and OpenMP
// (so that Eigen vectorizes and threads as it would in an application built for the machine).
#include <Eigen/Core>

namespace polyinfer::bench {

/// y (tokens × rows, row-major) = x (tokens × cols) · Wᵀ, W rows × cols row-major.
void eigen_gemm_f32(const float* w, int64_t rows, int64_t cols, const float* x, int64_t tokens,
                    float* y, int threads) {
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::setNbThreads(threads);
  const Eigen::Map<const RowMajor> weights(w, rows, cols);
  const Eigen::Map<const RowMajor> input(x, tokens, cols);
  Eigen::Map<RowMajor> output(y, tokens, rows);
  output.noalias() = input * weights.transpose();
}

}  // namespace polyinfer::bench
