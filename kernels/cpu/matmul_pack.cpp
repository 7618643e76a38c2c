// SPDX-License-Identifier: Apache-2.0
// Load-time repacking of GGUF blocks into 16-row interleaved layouts (see PackLayout).
#include <cstring>

#include "kernels/common/block_formats.hpp"
#include "kernels/cpu/matmul_kernel.hpp"

namespace polyinfer::inline v0::detail {

namespace {

int64_t groups_of(int64_t rows) {
  return (rows + kPackRows - 1) / kPackRows;
}

// Copies block `block` of row `row` out of the stored matrix (unaligned), or a zero block for
// the padding rows of the last group.
template <typename Block>
Block load_block(const std::byte* weights, int64_t rows, int64_t blocks_per_row, int64_t row,
                 int64_t block) {
  Block out;
  if (row < rows) {
    std::memcpy(&out, weights + (row * blocks_per_row + block) * int64_t{sizeof(Block)},
                sizeof(Block));
  } else {
    std::memset(&out, 0, sizeof(Block));
  }
  return out;
}

void pack_q4_0(const std::byte* weights, int64_t rows, int64_t cols, std::byte* out) {
  const int64_t blocks = cols / kBlock32;
  for (int64_t g = 0; g < groups_of(rows); ++g) {
    for (int64_t b = 0; b < blocks; ++b, out += kQ4_0x16Bytes) {
      auto* d = reinterpret_cast<Half*>(out);
      auto* qs = reinterpret_cast<uint8_t*>(out + 32);
      for (int r = 0; r < kPackRows; ++r) {
        const auto block = load_block<BlockQ4_0>(weights, rows, blocks, g * kPackRows + r, b);
        d[r] = block.d;
        for (int k = 0; k < 4; ++k) {
          for (int t = 0; t < 4; ++t) qs[(k * kPackRows + r) * 4 + t] = block.qs[4 * k + t];
        }
      }
    }
  }
}

void pack_q8_0(const std::byte* weights, int64_t rows, int64_t cols, std::byte* out) {
  const int64_t blocks = cols / kBlock32;
  for (int64_t g = 0; g < groups_of(rows); ++g) {
    for (int64_t b = 0; b < blocks; ++b, out += kQ8_0x16Bytes) {
      auto* d = reinterpret_cast<Half*>(out);
      auto* qs = reinterpret_cast<uint8_t*>(out + 32);
      for (int r = 0; r < kPackRows; ++r) {
        const auto block = load_block<BlockQ8_0>(weights, rows, blocks, g * kPackRows + r, b);
        d[r] = block.d;
        for (int k = 0; k < 8; ++k) {
          for (int t = 0; t < 4; ++t) {
            // Unsigned q + 128, so that vpdpbusd takes weights as its u8 operand.
            qs[(k * kPackRows + r) * 4 + t] = static_cast<uint8_t>(block.qs[4 * k + t] + 128);
          }
        }
      }
    }
  }
}

// 6-bit quants (0..63) of one Q6_K super-block in column order.
void q6_k_values(const BlockQ6_K& block, uint8_t* q) {
  for (int n = 0; n < 2; ++n) {
    const uint8_t* ql = block.ql + 64 * n;
    const uint8_t* qh = block.qh + 32 * n;
    uint8_t* out = q + 128 * n;
    for (int l = 0; l < 32; ++l) {
      out[l + 0] = static_cast<uint8_t>((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4));
      out[l + 32] = static_cast<uint8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
      out[l + 64] = static_cast<uint8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
      out[l + 96] = static_cast<uint8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
    }
  }
}

void pack_q4_k(const std::byte* weights, int64_t rows, int64_t cols, std::byte* out) {
  const int64_t blocks = cols / kBlockK;
  for (int64_t g = 0; g < groups_of(rows); ++g) {
    for (int64_t b = 0; b < blocks; ++b, out += kQ4_Kx16Bytes) {
      auto* d = reinterpret_cast<Half*>(out);
      auto* dmin = reinterpret_cast<Half*>(out + 32);
      auto* scales = reinterpret_cast<uint8_t*>(out + 64);
      auto* mins = reinterpret_cast<uint8_t*>(out + 192);
      auto* qs = reinterpret_cast<uint8_t*>(out + 320);
      for (int r = 0; r < kPackRows; ++r) {
        const auto block = load_block<BlockQ4_K>(weights, rows, blocks, g * kPackRows + r, b);
        d[r] = block.d;
        dmin[r] = block.dmin;
        for (int s = 0; s < 8; ++s) {
          uint8_t scale = 0;
          uint8_t min = 0;
          get_scale_min_k4(s, block.scales, &scale, &min);
          scales[s * kPackRows + r] = scale;
          mins[((s / 2) * kPackRows + r) * 2 + (s % 2)] = min;
        }
        // Pair p covers columns 64p..64p+63: GGUF bytes qs[32p + i] hold column 64p + i (low)
        // and 64p + 32 + i (high); register k, lane r takes bytes 32p + 4k .. 32p + 4k + 3.
        for (int p = 0; p < 4; ++p) {
          for (int k = 0; k < 8; ++k) {
            for (int t = 0; t < 4; ++t) {
              qs[((p * 8 + k) * kPackRows + r) * 4 + t] = block.qs[32 * p + 4 * k + t];
            }
          }
        }
      }
    }
  }
}

void pack_q6_k(const std::byte* weights, int64_t rows, int64_t cols, std::byte* out) {
  const int64_t blocks = cols / kBlockK;
  for (int64_t g = 0; g < groups_of(rows); ++g) {
    for (int64_t b = 0; b < blocks; ++b, out += kQ6_Kx16Bytes) {
      auto* d = reinterpret_cast<Half*>(out);
      auto* scales = reinterpret_cast<int8_t*>(out + 32);
      auto* ql = reinterpret_cast<uint8_t*>(out + 288);
      auto* qh = reinterpret_cast<uint8_t*>(out + 288 + 2048);
      for (int r = 0; r < kPackRows; ++r) {
        const auto block = load_block<BlockQ6_K>(weights, rows, blocks, g * kPackRows + r, b);
        d[r] = block.d;
        for (int s = 0; s < 16; ++s) scales[s * kPackRows + r] = block.scales[s];
        uint8_t q[kBlockK];
        q6_k_values(block, q);
        // As Q4_K: pair p, register k, lane r, byte t: low nibble column 64p + 4k + t, high
        // nibble column 64p + 32 + 4k + t. Plane m of pair p holds the top two bits of
        // registers 2m (bits 0-1 low, 2-3 high nibble) and 2m+1 (bits 4-5, 6-7).
        for (int p = 0; p < 4; ++p) {
          for (int k = 0; k < 8; ++k) {
            for (int t = 0; t < 4; ++t) {
              const uint8_t lo = q[64 * p + 4 * k + t];
              const uint8_t hi = q[64 * p + 32 + 4 * k + t];
              ql[((p * 8 + k) * kPackRows + r) * 4 + t] =
                  static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
              uint8_t& plane = qh[((p * 4 + k / 2) * kPackRows + r) * 4 + t];
              const int shift = (k % 2) * 4;
              plane =
                  static_cast<uint8_t>(plane | ((lo >> 4) << shift) | ((hi >> 4) << (shift + 2)));
            }
          }
        }
      }
    }
  }
}

// Float formats: column-major within a group of 16 rows (BF16 keeps column pairs together).
// Written in output order, reading 16 rows side by side (a 16-row transpose).
template <typename T, bool kPairs>
void pack_float(const std::byte* weights, int64_t rows, int64_t cols, std::byte* out) {
  const int64_t padded = kPairs ? (cols + 1) / 2 * 2 : cols;
  auto* dst = reinterpret_cast<T*>(out);
  for (int64_t g = 0; g < groups_of(rows); ++g) {
    const T* src[kPackRows];
    int valid = 0;
    for (int r = 0; r < kPackRows; ++r) {
      const int64_t row = g * kPackRows + r;
      src[r] = row < rows ? reinterpret_cast<const T*>(weights + row * cols * int64_t{sizeof(T)})
                          : nullptr;
      valid += row < rows;
    }
    T* group = dst + g * kPackRows * padded;
    constexpr int kWidth = kPairs ? 2 : 1;
    for (int64_t c = 0; c < cols; c += kWidth) {
      T* slot = group + c * kPackRows;
      for (int r = 0; r < valid; ++r) {
        T value;
        std::memcpy(&value, src[r] + c, sizeof(T));
        slot[r * kWidth] = value;
        if constexpr (kPairs) {
          if (c + 1 < cols) {
            std::memcpy(&value, src[r] + c + 1, sizeof(T));
            slot[r * kWidth + 1] = value;
          }
        }
      }
    }
  }
}

}  // namespace

uint64_t pack_bytes(PackLayout layout, int64_t rows, int64_t cols) noexcept {
  const auto groups = static_cast<uint64_t>(groups_of(rows));
  switch (layout) {
    case PackLayout::kNone:
      return 0;
    case PackLayout::kQ4_0x16:
      return groups * static_cast<uint64_t>(cols / kBlock32) * kQ4_0x16Bytes;
    case PackLayout::kQ8_0x16:
      return groups * static_cast<uint64_t>(cols / kBlock32) * kQ8_0x16Bytes;
    case PackLayout::kQ4_Kx16:
      return groups * static_cast<uint64_t>(cols / kBlockK) * kQ4_Kx16Bytes;
    case PackLayout::kQ6_Kx16:
      return groups * static_cast<uint64_t>(cols / kBlockK) * kQ6_Kx16Bytes;
    case PackLayout::kF32x16:
      return groups * static_cast<uint64_t>(cols) * kPackRows * 4;
    case PackLayout::kF16x16:
      return groups * static_cast<uint64_t>(cols) * kPackRows * 2;
    case PackLayout::kBF16x16:
      return groups * static_cast<uint64_t>((cols + 1) / 2) * kPackRows * 4;
  }
  return 0;
}

void pack_weights(PackLayout layout, const std::byte* weights, int64_t rows, int64_t cols,
                  std::byte* out) noexcept {
  std::memset(out, 0, pack_bytes(layout, rows, cols));
  switch (layout) {
    case PackLayout::kNone:
      return;
    case PackLayout::kQ4_0x16:
      return pack_q4_0(weights, rows, cols, out);
    case PackLayout::kQ8_0x16:
      return pack_q8_0(weights, rows, cols, out);
    case PackLayout::kQ4_Kx16:
      return pack_q4_k(weights, rows, cols, out);
    case PackLayout::kQ6_Kx16:
      return pack_q6_k(weights, rows, cols, out);
    case PackLayout::kF32x16:
      return pack_float<uint32_t, false>(weights, rows, cols, out);
    case PackLayout::kF16x16:
      return pack_float<uint16_t, false>(weights, rows, cols, out);
    case PackLayout::kBF16x16:
      return pack_float<uint16_t, true>(weights, rows, cols, out);
  }
}

}  // namespace polyinfer::inline v0::detail
