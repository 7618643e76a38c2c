// SPDX-License-Identifier: Apache-2.0
// Matmul kernels on AMX-INT8 tiles for batches of tokens (Q8_0, Q4_0, Q4_K weights).
//
// C[16 tokens][16 rows] += A[16 tokens][32 int8 activations] · B[32 columns][16 rows] with
// tdpbsud (A signed, B unsigned). B is a 16-row group of the packed layouts (PackLayout): its
// 64-byte lines are exactly AMX B-tile rows (4 columns × 16 rows), so Q8_0 tiles load straight
// from the packed matrix and 4-bit formats are unpacked once per group into a staging buffer.
// Scales differ per block of 32, so each tile product is stored and scaled with AVX-512
// (integer for Q4_K's 6-bit sub-block scales, float for the block scales).
#define POLYINFER_SIMD16_VNNI 1
#include "kernels/cpu/simd16_avx512.hpp"
// The bodies below use the operations above.
#include "kernels/cpu/matmul_quant_x16.hpp"

namespace polyinfer::inline v0::detail {
namespace {

constexpr int kTile = 16;        // tokens per A tile, rows per B tile
constexpr int kTokenBlock = 64;  // tokens per compute unit: 4 token tiles
constexpr int kTokenTiles = kTokenBlock / kTile;
constexpr int64_t kChunkCols = 2048;  // columns unpacked into staging at a time (32 KiB)

// Tiles: 0–3 accumulators C (16 × 64 bytes); 4, 5 activations A (16 × 32); 6, 7 weights B
// (8 × 64). Four blocks run per stage, so the epilogue of one stage (AVX-512) overlaps the
// tile products of the next.
constexpr int kStage = 4;

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

void configure_tiles() {
  TileConfig config;
  for (int c = 0; c < 4; ++c) {
    config.rows[c] = kTile;
    config.colsb[c] = 64;
  }
  for (int a = 4; a <= 5; ++a) {
    config.rows[a] = kTile;
    config.colsb[a] = 32;
  }
  for (int b = 6; b <= 7; ++b) {
    config.rows[b] = 8;
    config.colsb[b] = 64;
  }
  // Inline asm with the whole struct as input: GCC 12 drops the stores of rows/colsb before
  // _tile_loadconfig (it does not see the builtin read them), leaving the tiles unconfigured.
  __asm__ volatile("ldtilecfg %0" : : "m"(config));
}

// C[j] = A[j]·B[j] for `count` (1..4) blocks; A rows `a_stride` apart, B 64-byte rows; the
// products are stored to c[j].
inline void tile_products(int count, const int8_t* const (&a)[kStage], int64_t a_stride,
                          const uint8_t* const (&b)[kStage], int32_t (*c)[kTile * kTile]) {
  _tile_zero(0);
  _tile_loadd(4, a[0], a_stride);
  _tile_loadd(6, b[0], 64);
  _tile_dpbsud(0, 4, 6);
  if (count > 1) {
    _tile_zero(1);
    _tile_loadd(5, a[1], a_stride);
    _tile_loadd(7, b[1], 64);
    _tile_dpbsud(1, 5, 7);
  }
  if (count > 2) {
    _tile_zero(2);
    _tile_loadd(4, a[2], a_stride);
    _tile_loadd(6, b[2], 64);
    _tile_dpbsud(2, 4, 6);
  }
  if (count > 3) {
    _tile_zero(3);
    _tile_loadd(5, a[3], a_stride);
    _tile_loadd(7, b[3], 64);
    _tile_dpbsud(3, 5, 7);
  }
  _tile_stored(0, c[0], 64);
  if (count > 1) _tile_stored(1, c[1], 64);
  if (count > 2) _tile_stored(2, c[2], 64);
  if (count > 3) _tile_stored(3, c[3], 64);
}

// ---- activations, laid out per tile of 16 tokens ----------------------------------------------
//
// Q8_0 (Q4_0 / Q8_0 weights): per block b an A tile qs[16][32] (512 bytes); then d[blocks][16]
// and bias[blocks][16] (−offset·Σq). Q8_K (Q4_K): per sub-block an A tile qs[16][32]; then
// d[blocks][16], bsums[blocks][16][16], sums32[blocks][16][8]. The last tile's missing tokens
// hold stale bytes; their results are dropped.

int64_t tile_bytes_q8_0(int64_t cols) {
  return cols / kBlock32 * (512 + 64 + 64);
}
int64_t tile_bytes_q8_k(int64_t cols) {
  return cols / kBlockK * (8 * 512 + 64 + 512 + 256);
}

uint64_t act_q8_0_tiles(int64_t tokens, int64_t cols) {
  return static_cast<uint64_t>((tokens + kTile - 1) / kTile * tile_bytes_q8_0(cols));
}
uint64_t act_q8_k_tiles(int64_t tokens, int64_t cols) {
  return static_cast<uint64_t>((tokens + kTile - 1) / kTile * tile_bytes_q8_k(cols));
}

struct TileQ8_0 {
  const int8_t* qs;
  const float* d;
  const int32_t* bias;
};

TileQ8_0 tile_q8_0(const std::byte* act, int64_t cols, int64_t tile) {
  const int64_t blocks = cols / kBlock32;
  const std::byte* base = act + tile * tile_bytes_q8_0(cols);
  return {reinterpret_cast<const int8_t*>(base),
          reinterpret_cast<const float*>(base + blocks * 512),
          reinterpret_cast<const int32_t*>(base + blocks * 576)};
}

template <int kOffset>
void prepare_tiles_q8_0(const MatmulCall& call, int64_t token_begin, int64_t token_end) {
  const int64_t blocks = call.cols / kBlock32;
  for (int64_t t = token_begin; t < token_end; ++t) {
    std::byte* base = call.act + t / kTile * tile_bytes_q8_0(call.cols);
    const int64_t lane = t % kTile;
    quantize_q8_0_blocks<kOffset>(call.x + t * call.x_stride, call.cols,
                                  {reinterpret_cast<int8_t*>(base) + lane * 32, 512,
                                   reinterpret_cast<float*>(base + blocks * 512) + lane,
                                   reinterpret_cast<int32_t*>(base + blocks * 576) + lane, kTile});
  }
}

struct TileQ8K {
  const int8_t* qs;
  const float* d;
  const int16_t* sums32;
};

TileQ8K tile_q8_k(const std::byte* act, int64_t cols, int64_t tile) {
  const int64_t blocks = cols / kBlockK;
  const std::byte* base = act + tile * tile_bytes_q8_k(cols);
  return {reinterpret_cast<const int8_t*>(base),
          reinterpret_cast<const float*>(base + blocks * 4096),
          reinterpret_cast<const int16_t*>(base + blocks * (4096 + 64 + 512))};
}

void prepare_tiles_q8_k(const MatmulCall& call, int64_t token_begin, int64_t token_end) {
  const int64_t blocks = call.cols / kBlockK;
  for (int64_t t = token_begin; t < token_end; ++t) {
    std::byte* base = call.act + t / kTile * tile_bytes_q8_k(call.cols);
    const int64_t lane = t % kTile;
    quantize_q8_k_blocks(
        call.x + t * call.x_stride, call.cols,
        {reinterpret_cast<int8_t*>(base) + lane * 32, 512,
         reinterpret_cast<float*>(base + blocks * 4096) + lane, kTile,
         reinterpret_cast<int16_t*>(base + blocks * (4096 + 64)) + lane * 16, kTile * 16,
         reinterpret_cast<int16_t*>(base + blocks * (4096 + 64 + 512)) + lane * 8, kTile * 8});
  }
}

// Writes token tile accumulators (16 tokens × 16 rows) to y: `tokens` tokens, `rows` rows.
void store_tile(const float* acc, float* y, int64_t y_stride, int tokens, int rows) {
  for (int t = 0; t < tokens; ++t) {
    if (rows == kPackRows) {
      vf_store(y + t * y_stride, vf_load(acc + t * kTile));
    } else {
      vf_store_n(y + t * y_stride, vf_load(acc + t * kTile), rows);
    }
  }
}

// Stage products live in a ring of kRing buffers: the epilogue of stage s − 2 runs after the
// tile products of stage s are issued, so it never waits for a tile store still in flight.
constexpr int kRing = 3;

template <bool kQ8>
void compute_amx_q8_blocks(const MatmulCall& call, int64_t row_begin, int64_t row_end,
                           int64_t token_begin, int64_t token_end) {
  constexpr int64_t kStep = kQ8 ? kQ8_0x16Bytes : kQ4_0x16Bytes;
  constexpr int64_t kChunkBlocks = kChunkCols / kBlock32;
  configure_tiles();
  const int64_t blocks = call.cols / kBlock32;
  const int tiles = static_cast<int>((token_end - token_begin + kTile - 1) / kTile);
  alignas(64) float acc_store[kTokenTiles][kTile * kTile];
  alignas(64) int32_t c_tiles[kRing][kStage][kTile * kTile];
  alignas(64) uint8_t staging[kQ8 ? 64 : kChunkBlocks * 512];
  for (int64_t row = row_begin; row < row_end; row += kPackRows) {
    const uint8_t* group =
        reinterpret_cast<const uint8_t*>(call.packed) + row / kPackRows * blocks * kStep;
    for (int64_t chunk = 0; chunk < blocks; chunk += kChunkBlocks) {
      const int64_t chunk_end = blocks - chunk < kChunkBlocks ? blocks : chunk + kChunkBlocks;
      if constexpr (!kQ8) {
        // Nibbles → bytes: B rows 0–3 take the low nibbles (columns 4k..4k+3), 4–7 the high.
        const VI nibble = vi_set1_i8(0x0F);
        for (int64_t b = chunk; b < chunk_end; ++b) {
          const uint8_t* q = group + b * kStep + 32;
          uint8_t* out = staging + (b - chunk) * 512;
          for (int k = 0; k < 4; ++k) {
            const VI v = vi_load(q + 64 * k);
            _mm512_store_si512(out + 64 * k, vi_and(v, nibble));
            _mm512_store_si512(out + 64 * (4 + k), vi_and(vi_srl16(v, 4), nibble));
          }
        }
      }
      const int64_t stages = (chunk_end - chunk + kStage - 1) / kStage;
      for (int tile = 0; tile < tiles; ++tile) {
        const TileQ8_0 x = tile_q8_0(call.act, call.cols, token_begin / kTile + tile);
        VF acc[kTile];
        for (int t = 0; t < kTile; ++t) {
          acc[t] = chunk == 0 ? vf_zero() : vf_load(acc_store[tile] + t * kTile);
        }
        for (int64_t stage = 0; stage < stages + 2; ++stage) {
          if (stage < stages) {
            const int64_t first = chunk + stage * kStage;
            const int count =
                static_cast<int>(chunk_end - first < kStage ? chunk_end - first : kStage);
            const int8_t* a_ptr[kStage];
            const uint8_t* b_ptr[kStage];
            for (int j = 0; j < kStage; ++j) {
              const int64_t b = first + (j < count ? j : 0);
              a_ptr[j] = x.qs + b * 512;
              b_ptr[j] = kQ8 ? group + b * kStep + 32 : staging + (b - chunk) * 512;
            }
            tile_products(count, a_ptr, 32, b_ptr, c_tiles[stage % kRing]);
          }
          if (stage >= 2) {
            // acc[t] += d_w·d_x[t]·(C[t] + bias[t]) for the blocks of stage − 2.
            const int64_t done = stage - 2;
            const int64_t first = chunk + done * kStage;
            for (int j = 0; j < kStage && first + j < chunk_end; ++j) {
              const int64_t b = first + j;
              const int32_t* c = c_tiles[done % kRing][j];
              const VF dw = vf_from_half(reinterpret_cast<const uint16_t*>(group + b * kStep));
              const float* d = x.d + b * kTile;
              const int32_t* bias = x.bias + b * kTile;
              for (int t = 0; t < kTile; ++t) {
                const VI sum = vi_add(vi_load(c + t * kTile), vi_set1(bias[t]));
                acc[t] = vf_fmadd(vf_cvt(sum), vf_mul(dw, vf_set1(d[t])), acc[t]);
              }
            }
          }
        }
        for (int t = 0; t < kTile; ++t) vf_store(acc_store[tile] + t * kTile, acc[t]);
      }
    }
    const int rows = static_cast<int>(row_end - row < kPackRows ? row_end - row : kPackRows);
    for (int tile = 0; tile < tiles; ++tile) {
      const int64_t t0 = token_begin + tile * kTile;
      const int tokens = static_cast<int>(token_end - t0 < kTile ? token_end - t0 : kTile);
      store_tile(acc_store[tile], call.y + t0 * call.y_stride + row, call.y_stride, tokens, rows);
    }
  }
  _tile_release();
}

// Q4_K: per sub-block of 32, C = A·B (B = 4-bit q); per super-block,
// acc[t] += d_x[t]·(Σ_s (d·sc_s)·C_s[t] − dmin·Σ_s m_s·Σx_s). Stages are half super-blocks.
void compute_amx_q4_k(const MatmulCall& call, int64_t row_begin, int64_t row_end,
                      int64_t token_begin, int64_t token_end) {
  constexpr int64_t kChunkBlocks = kChunkCols / kBlockK;
  configure_tiles();
  const int64_t blocks = call.cols / kBlockK;
  const int tiles = static_cast<int>((token_end - token_begin + kTile - 1) / kTile);
  alignas(64) float acc_store[kTokenTiles][kTile * kTile];
  alignas(64) int32_t c_tiles[kRing][kStage][kTile * kTile];
  alignas(64) uint8_t staging[kChunkBlocks * 8 * 512];
  const VI nibble = vi_set1_i8(0x0F);
  for (int64_t row = row_begin; row < row_end; row += kPackRows) {
    const uint8_t* group =
        reinterpret_cast<const uint8_t*>(call.packed) + row / kPackRows * blocks * kQ4_Kx16Bytes;
    for (int tile = 0; tile < tiles; ++tile) {
      for (int i = 0; i < kTile * kTile; ++i) acc_store[tile][i] = 0;
    }
    for (int64_t chunk = 0; chunk < blocks; chunk += kChunkBlocks) {
      const int64_t chunk_end = blocks - chunk < kChunkBlocks ? blocks : chunk + kChunkBlocks;
      // Sub-block s of a super-block: 8 B rows (columns 4k..4k+3 of the 32).
      for (int64_t b = chunk; b < chunk_end; ++b) {
        const uint8_t* qs = group + b * kQ4_Kx16Bytes + 320;
        uint8_t* out = staging + (b - chunk) * 8 * 512;
        for (int p = 0; p < 4; ++p) {
          for (int k = 0; k < 8; ++k) {
            const VI v = vi_load(qs + (p * 8 + k) * 64);
            _mm512_store_si512(out + (2 * p) * 512 + 64 * k, vi_and(v, nibble));
            _mm512_store_si512(out + (2 * p + 1) * 512 + 64 * k, vi_and(vi_srl16(v, 4), nibble));
          }
        }
      }
      const int64_t stages = 2 * (chunk_end - chunk);
      for (int tile = 0; tile < tiles; ++tile) {
        const TileQ8K x = tile_q8_k(call.act, call.cols, token_begin / kTile + tile);
        float* acc = acc_store[tile];
        VF partial[kTile];
        for (int64_t stage = 0; stage < stages + 2; ++stage) {
          if (stage < stages) {
            const int64_t b = chunk + stage / 2;
            const int first = 4 * static_cast<int>(stage % 2);
            const int8_t* a_ptr[kStage];
            const uint8_t* b_ptr[kStage];
            for (int j = 0; j < kStage; ++j) {
              a_ptr[j] = x.qs + (8 * b + first + j) * 512;
              b_ptr[j] = staging + ((b - chunk) * 8 + first + j) * 512;
            }
            tile_products(kStage, a_ptr, 32, b_ptr, c_tiles[stage % kRing]);
          }
          if (stage < 2) continue;
          const int64_t done = stage - 2;
          const int64_t b = chunk + done / 2;
          const int half = static_cast<int>(done % 2);
          const uint8_t* w = group + b * kQ4_Kx16Bytes;
          const VF d = vf_from_half(reinterpret_cast<const uint16_t*>(w));
          VF scale[kStage];
          for (int j = 0; j < kStage; ++j) {
            scale[j] = vf_mul(d, vf_cvt(vi_u8_to_i32(w + 64 + (4 * half + j) * kPackRows)));
          }
          for (int t = 0; t < kTile; ++t) {
            VF sum = half == 0 ? vf_zero() : partial[t];
            for (int j = 0; j < kStage; ++j) {
              sum = vf_fmadd(vf_cvt(vi_load(c_tiles[done % kRing][j] + t * kTile)), scale[j], sum);
            }
            partial[t] = sum;
          }
          if (half == 1) {
            const VF dmin = vf_from_half(reinterpret_cast<const uint16_t*>(w + 32));
            VI mins[4];
            for (int i = 0; i < 4; ++i) mins[i] = vi_u8_to_i16(w + 192 + i * 32);
            const float* dx = x.d + b * kTile;
            const int16_t* sums = x.sums32 + b * kTile * 8;
            for (int t = 0; t < kTile; ++t) {
              VI min_sum = vi_zero();
              for (int i = 0; i < 4; ++i) {
                min_sum = vi_dpwssd(min_sum, mins[i], vi_bcast32(sums + t * 8 + 2 * i));
              }
              const VF block = vf_fnmadd(dmin, vf_cvt(min_sum), partial[t]);
              vf_store(acc + t * kTile, vf_fmadd(block, vf_set1(dx[t]), vf_load(acc + t * kTile)));
            }
          }
        }
      }
    }
    const int rows = static_cast<int>(row_end - row < kPackRows ? row_end - row : kPackRows);
    for (int tile = 0; tile < tiles; ++tile) {
      const int64_t t0 = token_begin + tile * kTile;
      const int tokens = static_cast<int>(token_end - t0 < kTile ? token_end - t0 : kTile);
      store_tile(acc_store[tile], call.y + t0 * call.y_stride + row, call.y_stride, tokens, rows);
    }
  }
  _tile_release();
}

// Below a tile of tokens the AVX-512 VNNI kernels do as well without the tile round trips.
bool amx_supports(int64_t, int64_t, int64_t tokens) {
  return tokens >= kTile;
}
double amx_score(int64_t, int64_t, int64_t) {
  return 50;
}

constexpr MatmulKernel amx_kernel(const char* name, DType dtype, PackLayout layout,
                                  uint64_t (*act_bytes)(int64_t, int64_t),
                                  void (*prepare)(const MatmulCall&, int64_t, int64_t),
                                  void (*compute)(const MatmulCall&, int64_t, int64_t, int64_t,
                                                  int64_t)) {
  return MatmulKernel{name,      dtype,   Isa::kAmx, layout,        kPackRows,  kTokenBlock,
                      act_bytes, prepare, compute,   &amx_supports, &amx_score, nullptr};
}

constexpr MatmulKernel kKernels[] = {
    amx_kernel("q8_0_amx", DType::kQ8_0, PackLayout::kQ8_0x16, &act_q8_0_tiles,
               &prepare_tiles_q8_0<128>, &compute_amx_q8_blocks<true>),
    amx_kernel("q4_0_amx", DType::kQ4_0, PackLayout::kQ4_0x16, &act_q8_0_tiles,
               &prepare_tiles_q8_0<8>, &compute_amx_q8_blocks<false>),
    amx_kernel("q4_k_amx", DType::kQ4_K, PackLayout::kQ4_Kx16, &act_q8_k_tiles, &prepare_tiles_q8_k,
               &compute_amx_q4_k),
};

}  // namespace

MatmulKernelTable matmul_kernels_amx() noexcept {
  return {kKernels, static_cast<int>(sizeof(kKernels) / sizeof(kKernels[0]))};
}

}  // namespace polyinfer::inline v0::detail
