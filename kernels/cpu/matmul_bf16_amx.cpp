// SPDX-License-Identifier: Apache-2.0
// BF16 weight GEMM on AMX-BF16 tiles (tdpbf16ps) for batches of tokens.
//
// C[16 rows][16 tokens] += A[16 rows][32 bf16 weights] · B[16 column pairs][16 tokens × 2]:
// the weights are the A operand, so BF16 rows load straight from the stored matrix (no
// repacking). Activations are rounded to bf16 once per call, laid out as B tiles.
//
// F16 weights have no kernel here (removed in session 16): split into bf16 hi + lo they were
// exact, but with the activations in bf16, f16 models missed their f16 bounds against
// transformers (tiny-llama 5.6e-3 against 4.6e-3 × scale) on the first AMX machine that ran the
// tests. Exact activations need a hi + lo split of x too (three tile products).
// Sums stay in fp32 tiles over the whole row: the only epilogue is the final transpose to y.
#include <immintrin.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels/cpu/matmul_kernel.hpp"

namespace polyinfer::inline v0::detail {
namespace {

constexpr int kTile = 16;
// Tokens per unit, four token tiles (C tiles 0–3) at a time. A unit's activations (B tiles)
// must stay in L2 while its groups of weights stream by: 64 tokens × 4096 columns = 512 KiB of
// bf16.
constexpr int kTokenBlock = 64;

int64_t round_up(int64_t value, int64_t step) {
  return (value + step - 1) / step * step;
}

// Activations, per tile of 16 tokens: per block of 32 columns a B tile of 16 lines, line p
// holding (x[t][2p], x[t][2p+1]) for t = 0..15 as bf16 pairs (1 KiB).
int64_t act_tile_bytes(int64_t cols) {
  return round_up(cols, 32) / 32 * 1024;
}

uint64_t act_bytes(int64_t tokens, int64_t cols) {
  return static_cast<uint64_t>(round_up(tokens, kTile) / kTile * act_tile_bytes(cols));
}

// x rounded to bf16 (ties to even), zero past the last column.
void prepare(const MatmulCall& call, int64_t token_begin, int64_t token_end) {
  const int64_t blocks = round_up(call.cols, 32) / 32;
  // Lane p of a bf16 pair vector goes to line p: 64 bytes apart.
  const __m512i offsets =
      _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                         _mm512_set1_epi32(64));
  for (int64_t t = token_begin; t < token_end; ++t) {
    const float* x = call.x + t * call.x_stride;
    std::byte* tile = call.act + t / kTile * act_tile_bytes(call.cols) + (t % kTile) * 4;
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t c = b * 32;
      const int64_t rest = call.cols - c;
      const auto lo_mask = static_cast<__mmask16>(rest >= 16 ? 0xFFFF : (1u << rest) - 1u);
      const auto hi_mask = static_cast<__mmask16>(rest >= 32   ? 0xFFFF
                                                  : rest <= 16 ? 0
                                                               : (1u << (rest - 16)) - 1u);
      const __m512 lo = _mm512_maskz_loadu_ps(lo_mask, x + c);
      const __m512 hi = _mm512_maskz_loadu_ps(hi_mask, x + c + 16);
      const auto pairs = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));
      _mm512_i32scatter_epi32(tile + b * 1024, offsets, pairs, 1);
    }
  }
}

// A 16 × 32 bf16 tile per block; 64-byte lines `stride` apart.
struct TileConfig {
  alignas(64) uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

void configure_tiles() {
  TileConfig config;
  for (int i = 0; i < 8; ++i) {
    config.rows[i] = kTile;
    config.colsb[i] = 64;
  }
  // Inline asm with the whole struct as input (see matmul_amx.cpp).
  __asm__ volatile("ldtilecfg %0" : : "m"(config));
}

// Per thread: bf16 staging for one group of rows, grown as needed.
struct Staging {
  uint16_t* data = nullptr;
  int64_t elements = 0;
  Staging() = default;
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;
  ~Staging() { std::free(data); }
  uint16_t* get(int64_t count) {
    if (count > elements) {
      std::free(data);
      elements = count;
      data = static_cast<uint16_t*>(std::aligned_alloc(64, static_cast<size_t>(count) * 2));
    }
    return data;
  }
};

// Copies 16 rows of BF16 weights into staging rows of `width` columns, zero past the matrix (the
// last group's missing rows, the last columns).
void stage_rows(const MatmulCall& call, int64_t row, int64_t width, uint16_t* staged) {
  for (int r = 0; r < kTile; ++r) {
    uint16_t* out = staged + r * width;
    const bool valid = row + r < call.rows;
    const auto* src = reinterpret_cast<const uint16_t*>(call.weights + (row + r) * call.row_bytes);
    for (int64_t c = 0; c < width; c += 16) {
      const int64_t rest = valid ? call.cols - c : 0;
      const auto mask = static_cast<__mmask16>(rest >= 16  ? 0xFFFF
                                               : rest <= 0 ? 0
                                                           : (1u << rest) - 1u);
      _mm256_store_si256(reinterpret_cast<__m256i*>(out + c),
                         _mm256_maskz_loadu_epi16(mask, src + c));
    }
  }
}

// Stores C[16 rows][16 tokens] transposed into y[t][r] for `tokens` tokens and `rows` rows.
void store_transposed(const float* c, float* y, int64_t y_stride, int tokens, int rows) {
  const __m512i column =
      _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                         _mm512_set1_epi32(16));
  const auto mask = static_cast<__mmask16>(rows == kTile ? 0xFFFF : (1u << rows) - 1u);
  for (int t = 0; t < tokens; ++t) {
    const __m512 values = _mm512_i32gather_ps(_mm512_add_epi32(column, _mm512_set1_epi32(t)), c, 4);
    _mm512_mask_storeu_ps(y + t * y_stride, mask, values);
  }
}

void compute(const MatmulCall& call, int64_t row_begin, int64_t row_end, int64_t token_begin,
             int64_t token_end) {
  thread_local Staging staging;
  configure_tiles();
  const int64_t tile_bytes = act_tile_bytes(call.cols);
  const int64_t width = round_up(call.cols, 32);
  uint16_t* staged = nullptr;
  alignas(64) float c_out[kTile * kTile];
  for (int64_t row = row_begin; row < row_end; row += kTile) {
    // Rows of a full group load in place; a partial group goes through staging.
    const bool in_place = row + kTile <= call.rows;
    const std::byte* a_base = call.weights + row * call.row_bytes;
    int64_t a_stride = call.row_bytes;
    if (!in_place) {
      if (staged == nullptr) staged = staging.get(kTile * width);
      stage_rows(call, row, width, staged);
      a_base = reinterpret_cast<const std::byte*>(staged);
      a_stride = width * 2;
    }
    const int rows = static_cast<int>(row_end - row < kTile ? row_end - row : kTile);
    for (int64_t t0 = token_begin; t0 < token_end; t0 += 4 * kTile) {
      const int tiles =
          static_cast<int>(token_end - t0 >= 4 * kTile ? 4 : (token_end - t0 + kTile - 1) / kTile);
      const std::byte* act = call.act + t0 / kTile * tile_bytes;
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      for (int64_t c = 0; c < call.cols; c += 32) {
        const std::byte* b_tiles = act + c / 32 * 1024;
        _tile_loadd(4, a_base + c * 2, a_stride);
        // Token tiles 0..tiles-1 into C tiles 0..3 (B alternates between tiles 6 and 7).
        _tile_loadd(6, b_tiles, 64);
        _tile_dpbf16ps(0, 4, 6);
        if (tiles > 1) {
          _tile_loadd(7, b_tiles + tile_bytes, 64);
          _tile_dpbf16ps(1, 4, 7);
        }
        if (tiles > 2) {
          _tile_loadd(6, b_tiles + 2 * tile_bytes, 64);
          _tile_dpbf16ps(2, 4, 6);
        }
        if (tiles > 3) {
          _tile_loadd(7, b_tiles + 3 * tile_bytes, 64);
          _tile_dpbf16ps(3, 4, 7);
        }
      }
      for (int tile = 0; tile < tiles; ++tile) {
        switch (tile) {
          case 0:
            _tile_stored(0, c_out, 64);
            break;
          case 1:
            _tile_stored(1, c_out, 64);
            break;
          case 2:
            _tile_stored(2, c_out, 64);
            break;
          default:
            _tile_stored(3, c_out, 64);
            break;
        }
        const int64_t first = t0 + tile * kTile;
        const int tokens = static_cast<int>(token_end - first < kTile ? token_end - first : kTile);
        store_transposed(c_out, call.y + first * call.y_stride + row, call.y_stride, tokens, rows);
      }
    }
  }
  _tile_release();
}

// Whole blocks of 32 columns (the tiles read 64-byte lines of each row), at least a tile of
// tokens.
bool supports(int64_t, int64_t cols, int64_t tokens) {
  return tokens >= kTile && cols % 32 == 0;
}
double score(int64_t, int64_t, int64_t) {
  return 50;
}

constexpr MatmulKernel kKernels[] = {
    MatmulKernel{"bf16_amx_bf16", DType::kBF16, Isa::kAmx, PackLayout::kNone, kTile, kTokenBlock,
                 &act_bytes, &prepare, &compute, &supports, &score, nullptr},
};

}  // namespace

MatmulKernelTable matmul_kernels_amx_bf16() noexcept {
  return {kKernels, static_cast<int>(sizeof(kKernels) / sizeof(kKernels[0]))};
}

}  // namespace polyinfer::inline v0::detail
