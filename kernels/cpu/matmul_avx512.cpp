// SPDX-License-Identifier: Apache-2.0
// Matmul kernels for AVX-512 F/BW/VL/DQ without VNNI (vpdpbusd emulated with vpmaddubsw).
#define POLYINFER_SIMD16_VNNI 0
#include "kernels/cpu/simd16_avx512.hpp"
// The bodies below use the operations above.
#include "kernels/cpu/matmul_float.hpp"
#include "kernels/cpu/matmul_quant_x16.hpp"

namespace polyinfer::inline v0::detail {
namespace {

constexpr Isa kIsa = Isa::kAvx512;
constexpr int kTokenBlock = 64;

constexpr MatmulKernel kKernels[] = {
    make_kernel("f32_avx512_x16", DType::kF32, kIsa, PackLayout::kF32x16, kTokenBlock, nullptr,
                nullptr, &compute_float_x16<PackedF32, 2, 8>, 32),
    make_kernel("f16_avx512_x16", DType::kF16, kIsa, PackLayout::kF16x16, kTokenBlock, nullptr,
                nullptr, &compute_float_x16<PackedF16, 4, 6>, 64),
    make_kernel("bf16_avx512_x16", DType::kBF16, kIsa, PackLayout::kBF16x16, kTokenBlock, nullptr,
                nullptr, &compute_float_x16<PackedBF16, 2, 8>, 32),
    make_kernel("q4_0_avx512_x16", DType::kQ4_0, kIsa, PackLayout::kQ4_0x16, kTokenBlock,
                &act_q8_0_bytes, &prepare_q8_0<8>, &compute_q8_blocks<false, 8>),
    make_kernel("q8_0_avx512_x16", DType::kQ8_0, kIsa, PackLayout::kQ8_0x16, kTokenBlock,
                &act_q8_0_bytes, &prepare_q8_0<128>, &compute_q8_blocks<true, 8>),
    make_kernel("q4_k_avx512_x16", DType::kQ4_K, kIsa, PackLayout::kQ4_Kx16, kTokenBlock,
                &act_q8_k_bytes, &prepare_q8_k, &compute_k_quant<false, 4>),
    make_kernel("q6_k_avx512_x16", DType::kQ6_K, kIsa, PackLayout::kQ6_Kx16, kTokenBlock,
                &act_q8_k_bytes, &prepare_q8_k, &compute_k_quant<true, 4>),
};

}  // namespace

MatmulKernelTable matmul_kernels_avx512() noexcept {
  return {kKernels, static_cast<int>(sizeof(kKernels) / sizeof(kKernels[0]))};
}

}  // namespace polyinfer::inline v0::detail
