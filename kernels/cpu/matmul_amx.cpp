// SPDX-License-Identifier: Apache-2.0
// Matmul kernels for AMX-INT8 / AMX-BF16 tiles (batches of tokens).
#include "kernels/cpu/matmul_kernel.hpp"

namespace polyinfer::inline v0::detail {

MatmulKernelTable matmul_kernels_amx() noexcept { return {nullptr, 0}; }

}  // namespace polyinfer::inline v0::detail
