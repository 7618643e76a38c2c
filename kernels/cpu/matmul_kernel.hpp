// SPDX-License-Identifier: Apache-2.0
// What a matmul kernel looks like to the dispatcher: call arguments, kernel table rows, layouts.
#pragma once

// This header is included by the per-ISA translation units, which are compiled with their own
// -m flags: it must declare only (no inline functions, no templates), so that no function
// compiled for one ISA can be picked by the linker for another.

#include <cstddef>
#include <cstdint>

#include "kernels/ops.hpp"

namespace polyinfer::inline v0::detail {

/// Repacked weight layouts made once by PackedMatrix. All group 16 consecutive rows (the last
/// group padded with zero rows) and keep GGUF's column blocks; within a group, the 4 bytes of
/// columns 4k..4k+3 of the 16 rows lie next to each other (64 bytes: one 512-bit register),
/// which is also an AMX B-tile row.
enum class PackLayout : uint8_t {
  kNone = 0,  ///< the stored GGUF bytes
  /// Per group and block of 32: Half d[16]; uint8 qs[4][16][4]: byte (k, r, t) is byte 4k+t of
  /// row r's GGUF qs, so low nibbles are columns 4k+t and high nibbles 16+4k+t.
  kQ4_0x16 = 1,
  /// Per group and block of 32: Half d[16]; uint8 qs[8][16][4] = q + 128 of column 4k+t.
  kQ8_0x16 = 2,
  /// Per group and super-block of 256: Half d[16], dmin[16]; uint8 scales[8][16] (6-bit scale
  /// of sub-block s, row r); uint8 mins[4][16][2] (mins of sub-blocks 2i, 2i+1); uint8
  /// qs[4][8][16][4]: byte (p, k, r, t) is GGUF byte 32p + 4k + t of row r, its low nibble
  /// column 64p + 4k + t (sub-block 2p), its high nibble column 64p + 32 + 4k + t (2p + 1).
  kQ4_Kx16 = 3,
  /// Per group and super-block: Half d[16]; int8 scales[16][16]; uint8 ql[4][8][16][4] (low 4
  /// bits of the 6-bit q, columns as in kQ4_Kx16); uint8 qh[4][4][16][4]: plane (p, m) holds
  /// the top 2 bits of registers k = 2m (bits 0–1 low-nibble column, 2–3 high) and 2m + 1
  /// (bits 4–5, 6–7).
  kQ6_Kx16 = 4,
  /// Per group, per column c: float w[16] (the 16 rows' values of column c).
  kF32x16 = 5,
  /// Per group, per column c: Half w[16].
  kF16x16 = 6,
  /// Per group, per column pair p: uint16 w[16][2] = bf16 of columns 2p, 2p+1 (the last pair
  /// zero-padded when cols is odd): one vdpbf16ps operand, or two f32 vectors by shifts.
  kBF16x16 = 7,
};

/// Rows per group of the packed layouts.
inline constexpr int kPackRows = 16;

/// Bytes per (group, block) of each packed layout.
inline constexpr int64_t kQ4_0x16Bytes = 32 + 256;
inline constexpr int64_t kQ8_0x16Bytes = 32 + 512;
inline constexpr int64_t kQ4_Kx16Bytes = 64 + 128 + 128 + 2048;
inline constexpr int64_t kQ6_Kx16Bytes = 32 + 256 + 2048 + 1024;

/// What PackedMatrix::packed() points to.
struct PackedWeights {
  PackLayout layout = PackLayout::kNone;
  const std::byte* data = nullptr;  ///< 64-byte aligned
  uint64_t bytes = 0;
};

/// One matmul as a kernel sees it: y[t][r] = Σ_c W[r][c]·x[t][c].
struct MatmulCall {
  const std::byte* weights;  ///< stored GGUF bytes, rows × row_bytes
  const std::byte* packed;   ///< the kernel's packed layout, or null
  int64_t rows;
  int64_t cols;
  int64_t row_bytes;
  const float* x;
  int64_t x_stride;
  int64_t tokens;
  float* y;
  int64_t y_stride;
  std::byte* act;  ///< scratch of act_bytes(tokens, cols) bytes, 64-byte aligned
  int threads;     ///< threads of the pool running the call (for whole-call kernels)
};

/// One row of the kernel registry (operation: matmul). Work is split into units of
/// row_block rows × token_block tokens; compute() gets whole units (the last may be short).
struct MatmulKernel {
  const char* name;
  DType dtype;
  Isa isa;
  PackLayout layout;  ///< the packed layout it reads; kNone reads the stored bytes
  int row_block;
  int token_block;
  /// Scratch for activations (quantized, converted); null when none.
  uint64_t (*act_bytes)(int64_t tokens, int64_t cols);
  /// Prepares activations of tokens [token_begin, token_end) into call.act; may be null.
  void (*prepare)(const MatmulCall& call, int64_t token_begin, int64_t token_end);
  /// Computes y for rows [row_begin, row_end) × tokens [token_begin, token_end).
  void (*compute)(const MatmulCall& call, int64_t row_begin, int64_t row_end, int64_t token_begin,
                  int64_t token_end);
  /// Whether it can run this shape (null: any shape with whole blocks).
  bool (*supports)(int64_t rows, int64_t cols, int64_t tokens);
  /// Higher wins among supported kernels; measured in benchmarks/bench_matmul.cpp.
  double (*score)(int64_t rows, int64_t cols, int64_t tokens);
  /// A kernel that runs the whole call itself (oneDNN); replaces prepare/compute when set.
  /// Returns false, y unwritten, when it failed. Such kernels are picked by measurement: the
  /// first call of a shape class times them against the best native kernel (dispatch.cpp).
  bool (*run)(const MatmulCall& call);
};

/// A table of kernels: `count` rows at `kernels`.
struct MatmulKernelTable {
  const MatmulKernel* kernels;
  int count;
};

// One per translation unit; a unit not built for this compiler returns an empty table.
MatmulKernelTable matmul_kernels_scalar() noexcept;
MatmulKernelTable matmul_kernels_avx2() noexcept;
MatmulKernelTable matmul_kernels_avx512() noexcept;
MatmulKernelTable matmul_kernels_avx512vnni() noexcept;
MatmulKernelTable matmul_kernels_amx() noexcept;
MatmulKernelTable matmul_kernels_amx_bf16() noexcept;
MatmulKernelTable matmul_kernels_onednn() noexcept;

/// Repacks rows × cols weights of `dtype` into `layout` (pack_bytes() bytes at `out`).
void pack_weights(PackLayout layout, const std::byte* weights, int64_t rows, int64_t cols,
                  std::byte* out) noexcept;
/// Bytes of `layout` for rows × cols.
[[nodiscard]] uint64_t pack_bytes(PackLayout layout, int64_t rows, int64_t cols) noexcept;

/// Whether the CPU has AVX512-BF16 (vdpbf16ps), independently of the ISA level.
[[nodiscard]] bool cpu_has_avx512_bf16() noexcept;

}  // namespace polyinfer::inline v0::detail
