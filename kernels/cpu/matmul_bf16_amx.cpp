// SPDX-License-Identifier: Apache-2.0
// BF16 and F16 weight GEMMs on AMX-BF16 tiles (tdpbf16ps) for batches of tokens.
//
// BF16: C[16 rows][16 tokens] += A[16 rows][32 bf16 weights] · B[16 column pairs][16 tokens × 2]:
// the weights are the A operand, so BF16 rows load straight from the stored matrix (no
// repacking). Activations are rounded to bf16 once per call, laid out as B tiles.
//
// F16: w is exact in two bf16 terms, w = wh + wl (f16 has 11 significant bits, bf16 8; wh
// rounded, so |wl| ≤ 2^-8·|w|), and x is split the same way, x ≈ xh + xl (|x − xh − xl| ≤
// 2^-16·|x|), so y = xh·wh + xh·wl + xl·wh, each product exact and summed in f32; the dropped
// xl·wl is ≤ 2^-16·|x·w|. Per product at most 2^-15 relative (tests: 2^-15·Σ|w·x|), against
// 2^-8 with x rounded to bf16, which made session 5's kernel miss the f16 models' bounds against
// transformers. A fourth product (xl·wl) cost 15 % and still leaves x's 2^-16. C[16 tokens][16
// rows] += A[16 tokens][32 columns of x] · B[16 column pairs][16 rows × 2]: the weights are the B
// operand, read from the kF16x16 layout the AVX-512 kernels use (no second copy) and split into
// bf16 B tiles block by block, while the previous block's tile products run. Sums stay in fp32
// tiles over the whole row: the only epilogue is the store to y.
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

// Blocks of 32 columns (the last zero-padded).
int64_t blocks32(int64_t cols) {
  return round_up(cols, 32) / 32;
}

// Activations, per tile of 16 tokens: per block of 32 columns a B tile of 16 lines, line p
// holding (x[t][2p], x[t][2p+1]) for t = 0..15 as bf16 pairs (1 KiB).
int64_t act_tile_bytes(int64_t cols) {
  return blocks32(cols) * 1024;
}

uint64_t act_bytes(int64_t tokens, int64_t cols) {
  return static_cast<uint64_t>(round_up(tokens, kTile) / kTile * act_tile_bytes(cols));
}

// Columns 32b..32b + 15 and 32b + 16..32b + 31 of the row x, zero past `cols`.
inline void load_block32(const float* x, int64_t b, int64_t cols, __m512* lo, __m512* hi) {
  const int64_t c = b * 32;
  const int64_t rest = cols - c;
  const auto lo_mask = static_cast<__mmask16>(rest >= 16 ? 0xFFFF : (1u << rest) - 1u);
  const auto hi_mask = static_cast<__mmask16>(rest >= 32   ? 0xFFFF
                                              : rest <= 16 ? 0
                                                           : (1u << (rest - 16)) - 1u);
  *lo = _mm512_maskz_loadu_ps(lo_mask, x + c);
  *hi = _mm512_maskz_loadu_ps(hi_mask, x + c + 16);
}

// x rounded to bf16 (ties to even), zero past the last column.
void prepare(const MatmulCall& call, int64_t token_begin, int64_t token_end) {
  const int64_t blocks = blocks32(call.cols);
  // Lane p of a bf16 pair vector goes to line p: 64 bytes apart.
  const __m512i offsets =
      _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                         _mm512_set1_epi32(64));
  for (int64_t t = token_begin; t < token_end; ++t) {
    const float* x = call.x + t * call.x_stride;
    std::byte* tile = call.act + t / kTile * act_tile_bytes(call.cols) + (t % kTile) * 4;
    for (int64_t b = 0; b < blocks; ++b) {
      __m512 lo;
      __m512 hi;
      load_block32(x, b, call.cols, &lo, &hi);
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

// Stores accumulator tile `tile` (0–3: the tile intrinsics take literal numbers) to 16 lines of
// 64 bytes at c.
void store_c_tile(int tile, float* c) {
  switch (tile) {
    case 0:
      _tile_stored(0, c, 64);
      break;
    case 1:
      _tile_stored(1, c, 64);
      break;
    case 2:
      _tile_stored(2, c, 64);
      break;
    default:
      _tile_stored(3, c, 64);
      break;
  }
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
        store_c_tile(tile, c_out);
        const int64_t first = t0 + tile * kTile;
        const int tokens = static_cast<int>(token_end - first < kTile ? token_end - first : kTile);
        store_transposed(c_out, call.y + first * call.y_stride + row, call.y_stride, tokens, rows);
      }
    }
  }
  _tile_release();
}

// ---- F16 weights: three bf16 tile products per block ------------------------------------------

// Activations, per tile of 16 tokens and block b of 32 columns: an A tile of xh (16 lines, line
// m = token m's 32 columns as bf16), then one of xl: 2 KiB, tiles of a token tile consecutive.
uint64_t f16_act_bytes(int64_t tokens, int64_t cols) {
  return static_cast<uint64_t>(round_up(tokens, kTile) / kTile * blocks32(cols) * 2048);
}

// 16 floats to bf16, rounded (hi), and the rest, rounded (lo).
inline void split16(__m512 v, __m256i* hi, __m256i* lo) {
  const auto h = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v));
  const __m512 back = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  *hi = h;
  *lo = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_sub_ps(v, back)));
}

void prepare_f16(const MatmulCall& call, int64_t token_begin, int64_t token_end) {
  const int64_t blocks = blocks32(call.cols);
  for (int64_t t = token_begin; t < token_end; ++t) {
    const float* x = call.x + t * call.x_stride;
    std::byte* line = call.act + (t / kTile) * blocks * 2048 + (t % kTile) * 64;
    for (int64_t b = 0; b < blocks; ++b) {
      __m512 first;
      __m512 second;
      load_block32(x, b, call.cols, &first, &second);
      __m256i h0;
      __m256i l0;
      __m256i h1;
      __m256i l1;
      split16(first, &h0, &l0);
      split16(second, &h1, &l1);
      std::byte* tile = line + b * 2048;
      _mm512_store_si512(tile, _mm512_inserti64x4(_mm512_castsi256_si512(h0), h1, 1));
      _mm512_store_si512(tile + 1024, _mm512_inserti64x4(_mm512_castsi256_si512(l0), l1, 1));
    }
  }
}

// Lines [first_line, end_line) of block b of a kF16x16 group (columns 32b.., 16 halves each) as
// two B tiles: line p holds, per row n, the bf16 pair of columns 32b + 2p, 32b + 2p + 1: hi parts
// at out, lo parts at out + 1 KiB. Both exact: wh is w rounded to bf16, and wl = w − wh has at
// most 3 significant bits (f16 has 11, bf16 8).
inline void split_weights(const uint16_t* group, int64_t cols, int64_t b, int first_line,
                          int end_line, std::byte* out) {
  const __m512i high_half = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  const __m512i half_ulp = _mm512_set1_epi32(0x8000);
  const int64_t first = b * 32;
  const bool whole = first + 32 <= cols;
  for (int p = first_line; p < end_line; ++p) {
    const int64_t c = first + 2 * p;
    const uint16_t* src = group + c * kTile;  // columns c and c + 1, 16 rows each
    __m512 even;
    __m512 odd;
    if (whole) {
      even = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src)));
      odd = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + kTile)));
    } else {
      even = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(c < cols ? 0xFFFF : 0, src));
      odd = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(c + 1 < cols ? 0xFFFF : 0, src + kTile));
    }
    // Rounded to nearest (ties away), so |wl| ≤ 2^-8·|w|: the bits plus half a bf16 ulp, cut.
    const __m512i even_round = _mm512_add_epi32(_mm512_castps_si512(even), half_ulp);
    const __m512i odd_hi =
        _mm512_and_si512(_mm512_add_epi32(_mm512_castps_si512(odd), half_ulp), high_half);
    const __m512i even_hi = _mm512_and_si512(even_round, high_half);
    const __m512 even_lo = _mm512_sub_ps(even, _mm512_castsi512_ps(even_hi));
    const __m512 odd_lo = _mm512_sub_ps(odd, _mm512_castsi512_ps(odd_hi));
    // even's bf16 in the low half of each 32-bit lane, odd's in the high half (odd_lo's low
    // 16 bits are zero: it has at most 3 significant bits).
    _mm512_store_si512(out + p * 64, _mm512_or_si512(_mm512_srli_epi32(even_round, 16), odd_hi));
    _mm512_store_si512(out + 1024 + p * 64,
                       _mm512_or_si512(_mm512_srli_epi32(_mm512_castps_si512(even_lo), 16),
                                       _mm512_castps_si512(odd_lo)));
  }
}

// C tile j += the three products of token tile j's A tiles (xh, xl at a) with B tiles 6 (wh)
// and 7 (wl). A macro: the tile intrinsics take literal tile numbers.
#define POLYINFER_F16_PRODUCTS(C, a) \
  do {                               \
    _tile_loadd(4, (a), 64);         \
    _tile_dpbf16ps(C, 4, 6);         \
    _tile_dpbf16ps(C, 4, 7);         \
    _tile_loadd(5, (a) + 1024, 64);  \
    _tile_dpbf16ps(C, 5, 6);         \
  } while (false)

void compute_f16(const MatmulCall& call, int64_t row_begin, int64_t row_end, int64_t token_begin,
                 int64_t token_end) {
  configure_tiles();
  const int64_t blocks = blocks32(call.cols);
  const int tiles = static_cast<int>((token_end - token_begin + kTile - 1) / kTile);
  const std::byte* act = call.act + token_begin / kTile * blocks * 2048;
  const int64_t act_tile = blocks * 2048;  // bytes between token tiles
  // Split B tiles: block b in ring[b % kRing], split kAhead blocks ahead, a quarter after each
  // token tile's products, so the vector units work while the tiles do.
  constexpr int kRing = 4;
  constexpr int kAhead = 2;
  alignas(64) std::byte ring[kRing][2048];
  alignas(64) float c_out[kTile * kTile];
  for (int64_t row = row_begin; row < row_end; row += kTile) {
    const auto* group =
        reinterpret_cast<const uint16_t*>(call.packed) + row / kTile * kTile * call.cols;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int64_t b = 0; b < kAhead && b < blocks; ++b) {
      split_weights(group, call.cols, b, 0, 16, ring[b % kRing]);
    }
    for (int64_t b = 0; b < blocks; ++b) {
      _tile_loadd(6, ring[b % kRing], 64);
      _tile_loadd(7, ring[b % kRing] + 1024, 64);
      const std::byte* a = act + b * 2048;
      const int64_t next = b + kAhead;
      std::byte* out = ring[next % kRing];
      const bool split = next < blocks;
      POLYINFER_F16_PRODUCTS(0, a);
      if (split) split_weights(group, call.cols, next, 0, 4, out);
      if (tiles > 1) POLYINFER_F16_PRODUCTS(1, a + act_tile);
      if (split) split_weights(group, call.cols, next, 4, 8, out);
      if (tiles > 2) POLYINFER_F16_PRODUCTS(2, a + 2 * act_tile);
      if (split) split_weights(group, call.cols, next, 8, 12, out);
      if (tiles > 3) POLYINFER_F16_PRODUCTS(3, a + 3 * act_tile);
      if (split) split_weights(group, call.cols, next, 12, 16, out);
    }
    const int rows = static_cast<int>(row_end - row < kTile ? row_end - row : kTile);
    const auto mask = static_cast<__mmask16>(rows == kTile ? 0xFFFF : (1u << rows) - 1u);
    for (int tile = 0; tile < tiles; ++tile) {
      store_c_tile(tile, c_out);
      const int64_t first = token_begin + tile * kTile;
      const int64_t tokens = token_end - first < kTile ? token_end - first : kTile;
      for (int64_t t = 0; t < tokens; ++t) {
        _mm512_mask_storeu_ps(call.y + (first + t) * call.y_stride + row, mask,
                              _mm512_load_ps(c_out + t * kTile));
      }
    }
  }
  _tile_release();
}

#undef POLYINFER_F16_PRODUCTS

// At least a tile of tokens; any columns (the last block is zero-padded on both sides).
bool f16_supports(int64_t, int64_t, int64_t tokens) {
  return tokens >= kTile;
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
    MatmulKernel{"f16_amx_split", DType::kF16, Isa::kAmx, PackLayout::kF16x16, kTile, kTokenBlock,
                 &f16_act_bytes, &prepare_f16, &compute_f16, &f16_supports, &score, nullptr},
};

}  // namespace

MatmulKernelTable matmul_kernels_amx_bf16() noexcept {
  return {kKernels, static_cast<int>(sizeof(kKernels) / sizeof(kKernels[0]))};
}

}  // namespace polyinfer::inline v0::detail
