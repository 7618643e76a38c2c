// SPDX-License-Identifier: Apache-2.0
// The GEMV kernel every weight format shares (warps over rows, 16-byte chunks per lane), and
// the table of launch shapes compiled for it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "kernels/cuda/gemv.cuh"

namespace polyinfer::inline v0::detail::gpu {

inline constexpr int kGemvMaxWarps = 8;

/// 16 weight bytes: streamed from global memory, or (kShared) from a bulk kernel's stage.
template <bool kShared>
__device__ __forceinline__ uint4 load_weights16(const uint8_t* p) {
  if constexpr (kShared) {
    return *reinterpret_cast<const uint4*>(p);
  } else {
    return load_stream(p);
  }
}

/// A block scale (or Q4_K header) of type T: through the read-only path, or from a stage.
template <bool kShared, typename T>
__device__ __forceinline__ T load_scales(const uint8_t* p) {
  if constexpr (kShared) {
    return *reinterpret_cast<const T*>(p);
  } else {
    return __ldg(reinterpret_cast<const T*>(p));
  }
}

/// Loads chunk base + u·stride of every row into chunks[u][r] (u < kUnroll), past the row
/// end left unset.
template <class Format, int kRows, int kUnroll>
__device__ __forceinline__ void load_chunks(const WeightsView& w, const int64_t (&row)[kRows],
                                            int64_t base, int64_t stride,
                                            typename Format::Chunk (&chunks)[kUnroll][kRows]) {
#pragma unroll
  for (int u = 0; u < kUnroll; ++u) {
    const int64_t k = base + u * stride;
    if (k < w.chunks) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) chunks[u][r] = Format::load(w, row[r], k);
    }
  }
}

/// acc[r][t] += the dot products of the chunks load_chunks() gave for `base`. kActivationsFirst
/// (a format's choice, plain kernel only) requests a single token's activations for every unroll
/// step before the first product, and with several tokens token t + 1's before token t's
/// products. Left to itself, ptxas may issue some of them only after the first products have
/// waited for the weights, adding an L1 round trip to every step; holding them all costs
/// registers, so each format says where it pays (Format::activations_first(tokens, rows,
/// unroll, splits)). The folded kernels keep ptxas's order: Q4_K's lost there even held to the
/// same blocks a multiprocessor (batch-1 decode 521 against 547 tok/s, session 20).
template <class Format, int kTokens, int kRows, int kUnroll, bool kActivationsFirst = false>
__device__ __forceinline__ void dot_chunks(const WeightsView& w, const ActivationsView& x,
                                           int64_t base, int64_t stride,
                                           const typename Format::Chunk (&chunks)[kUnroll][kRows],
                                           float (&acc)[kRows][kTokens]) {
  if constexpr (kTokens == 1 && kActivationsFirst) {
    typename Format::Activation a[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (base + u * stride < w.chunks) a[u] = Format::load_x(x, 0, base + u * stride);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t k = base + u * stride;
      if (k < w.chunks) {
#pragma unroll
        for (int r = 0; r < kRows; ++r) acc[r][0] += Format::dot(chunks[u][r], a[u], k);
      }
    }
  } else {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t k = base + u * stride;
      if (k < w.chunks) {
        typename Format::Activation next;
        if constexpr (kActivationsFirst) next = Format::load_x(x, 0, k);
#pragma unroll
        for (int t = 0; t < kTokens; ++t) {
          typename Format::Activation a;
          if constexpr (kActivationsFirst) {
            a = next;
            if (t + 1 < kTokens) next = Format::load_x(x, t + 1, k);
          } else {
            a = Format::load_x(x, t, k);
          }
#pragma unroll
          for (int r = 0; r < kRows; ++r) acc[r][t] += Format::dot(chunks[u][r], a, k);
        }
      }
    }
  }
}

/// y[t][r] = Σ_k Format::dot(chunk k of row r, activations of token t for chunk k).
/// Each group of kSplits warps owns kRows consecutive weight rows; lane l of split s takes
/// chunks 32s + l, 32s + l + 32·kSplits, …; each step loads kUnroll chunks of every row before
/// using any, so kRows·kUnroll 16-byte loads per lane are in flight, and the activations loaded
/// for a chunk serve all kRows rows. Splitting long rows over several warps (summed through
/// shared memory) gives more, smaller work items, so the last wave of a matrix with few rows
/// does not leave SMs idle. The first chunks are loaded before pdl_wait() (only the activations
/// come from the previous kernel): launched early, a GEMV streams its weights while the kernels
/// before it (norms, attention) still run; with kRows·kUnroll·32 chunks covering a 4096-column
/// Q4_0 row pair, all of them. Tried and slower: asking L2 for every row of the warp up front
/// with a bulk prefetch (377 vs 401 tok/s); issuing each step's loads before using the previous
/// step's chunks (Q4_0 8192×28672: 74.8 % of streaming against 80.1 %).
template <class Format, int kTokens, int kRows, int kUnroll, int kSplits>
__global__ void __launch_bounds__(kGemvMaxWarps* kWarp)
    gemv_kernel(WeightsView w, ActivationsView x, float* y, int64_t y_stride) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp_in_block = static_cast<int>(threadIdx.x) / kWarp;
  const int split = warp_in_block % kSplits;
  const int64_t group = (int64_t{blockIdx.x} * (blockDim.x / kWarp) + warp_in_block) / kSplits;
  const int64_t first_row = group * kRows;
  pdl_launch_dependents();
  // A split warp past the last row still reaches the __syncthreads() below.
  if (kSplits == 1 && first_row >= w.rows) return;
  int64_t row[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) row[r] = first_row + r < w.rows ? first_row + r : w.rows - 1;
  float acc[kRows][kTokens];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
#pragma unroll
    for (int t = 0; t < kTokens; ++t) acc[r][t] = 0.0f;
  }
  constexpr int64_t kStride = int64_t{kWarp} * kSplits;
  constexpr int64_t kStep = kStride * kUnroll;
  const int64_t start = split * kWarp + lane;
  bool waiting = true;
  for (int64_t base = start; base < w.chunks; base += kStep) {
    typename Format::Chunk chunks[kUnroll][kRows];
    load_chunks<Format, kRows, kUnroll>(w, row, base, kStride, chunks);
    if (waiting) {
      pdl_wait();
      waiting = false;
    }
    constexpr bool kFirst = Format::activations_first(kTokens, kRows, kUnroll, kSplits);
    dot_chunks<Format, kTokens, kRows, kUnroll, kFirst>(w, x, base, kStride, chunks, acc);
  }
  if constexpr (kSplits == 1) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
#pragma unroll
      for (int t = 0; t < kTokens; ++t) {
        const float sum = warp_sum(acc[r][t]);
        if (lane == 0 && first_row + r < w.rows) y[t * y_stride + first_row + r] = sum;
      }
    }
  } else {
    __shared__ float partial[kGemvMaxWarps][kRows][kTokens];
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
#pragma unroll
      for (int t = 0; t < kTokens; ++t) {
        const float sum = warp_sum(acc[r][t]);
        if (lane == 0) partial[warp_in_block][r][t] = sum;
      }
    }
    __syncthreads();
    // Lane r·kTokens + t of the group's first warp adds the splits of row r, token t.
    if (split == 0 && lane < kRows * kTokens) {
      const int r = lane / kTokens;
      const int t = lane % kTokens;
      float sum = 0.0f;
#pragma unroll
      for (int s = 0; s < kSplits; ++s) sum += partial[warp_in_block + s][r][t];
      if (first_row + r < w.rows) y[t * y_stride + first_row + r] = sum;
    }
  }
}

/// Chunks per stage of gemv_bulk_kernel<Format, kUnroll, kWarps, kStages>.
template <int kUnroll, int kWarps>
__host__ __device__ constexpr int gemv_bulk_stage_chunks() {
  return kWarps * kUnroll * kWarp;
}

/// Single-token GEMV whose weights reach shared memory by bulk copies (Hopper's TMA) instead of
/// per-lane loads. Persistent blocks (two per multiprocessor) take contiguous shares of the rows:
/// their quants (and scales) are one contiguous range of each plane, which the block's last warp
/// copies stage by stage, two copies a stage, up to kStages stages ahead of the kWarps warps that
/// use them. Warp w takes kUnroll consecutive 32-chunk slices of each stage, lane l chunk l of a
/// slice; a slice lies in one row, and the warp adds its sum for a row into a shared row sum
/// when its slices move to the next row. Weight bytes in flight no longer depend
/// on how many loads the warps keep outstanding, and the first kStages stages are requested
/// before pdl_wait(): launched early, the kernel streams while the kernels before it run.
/// Requires (bulk_gemv_fits()) unpadded rows of a multiple of 32 chunks, 16-byte aligned.
/// Measured on an H200 (docs/benchmarks.md): F16 rows of 14336 columns and more stream at
/// 90–97 % (the plain kernel 86–93 %), but rows of 4096 columns and the quantized formats
/// stay at 25–80 %: with one row per lane, every chunk costs its own activation loads, where
/// the plain kernel shares them over 2–4 rows. So matmul() takes it for long F16 rows only.
/// Tried: per-row segment copies (32 small copies a stage: 18–36 %), 8 consumer warps (53 %
/// on Q4_0 8192×28672 against 63 % with 16), more stages (no gain).
template <class Format, int kUnroll, int kWarps, int kStages>
__global__ void __launch_bounds__((kWarps + 1) * kWarp)
    gemv_bulk_kernel(WeightsView w, ActivationsView x, float* y) {
#if POLYINFER_GPU_BULK_COPY
  constexpr int kStageChunks = gemv_bulk_stage_chunks<kUnroll, kWarps>();
  constexpr int kStageQuants = kStageChunks * Format::kQuantBytes;
  constexpr int kStageScales = kStageChunks * Format::kScaleBytes;
  constexpr int kStageBytes = kStageQuants + kStageScales;
  extern __shared__ __align__(128) uint8_t stages[];
  __shared__ uint64_t full[kStages];   // the stage's bytes have landed
  __shared__ uint64_t empty[kStages];  // every consumer warp is done with the stage
  float* row_sums = reinterpret_cast<float*>(stages + kStages * kStageBytes);
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int64_t first_row = w.rows * blockIdx.x / gridDim.x;
  const int64_t end_row = w.rows * (blockIdx.x + 1) / gridDim.x;
  const int64_t total = (end_row - first_row) * w.chunks;  // this block's chunks
  const int64_t items = ceil_div(total, int64_t{kStageChunks});
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbarrier_init(&full[s], 1);
      mbarrier_init(&empty[s], kWarps);
    }
  }
  for (int64_t r = threadIdx.x; r < end_row - first_row; r += blockDim.x) row_sums[r] = 0.0f;
  __syncthreads();
  pdl_launch_dependents();
  if (warp == kWarps) {
    if (lane == 0) {  // producer
      const uint64_t policy = evict_first_policy();
      const uint8_t* quants = w.quants + first_row * w.row_bytes;
      const uint8_t* scales = w.scales + first_row * w.scales_row_bytes;
      for (int64_t item = 0; item < items; ++item) {
        const int slot = static_cast<int>(item % kStages);
        if (item >= kStages) {
          mbarrier_wait(&empty[slot], static_cast<uint32_t>(item / kStages - 1) & 1);
        }
        const int64_t left = total - item * kStageChunks;
        const auto chunks = static_cast<uint32_t>(left < kStageChunks ? left : kStageChunks);
        const uint32_t quant_bytes = chunks * Format::kQuantBytes;
        const uint32_t scale_bytes = chunks * Format::kScaleBytes;
        uint8_t* stage = stages + slot * kStageBytes;
        mbarrier_arrive_expect(&full[slot], quant_bytes + scale_bytes);
        bulk_copy(stage, quants + item * kStageQuants, quant_bytes, &full[slot], policy);
        if (scale_bytes > 0) {
          bulk_copy(stage + kStageQuants, scales + item * kStageScales, scale_bytes, &full[slot],
                    policy);
        }
      }
    }
    return;
  }
  pdl_wait();  // the activations come from the previous kernel
  const auto row_chunks = static_cast<uint32_t>(w.chunks);
  int64_t sum_row = first_row;  // the row `acc` adds up
  float acc = 0.0f;
  const auto flush = [&] {
    const float sum = warp_sum(acc);
    if (lane == 0) atomicAdd(&row_sums[sum_row - first_row], sum);
    acc = 0.0f;
  };
  for (int64_t item = 0; item < items; ++item) {
    const int slot = static_cast<int>(item % kStages);
    uint8_t* stage = stages + slot * kStageBytes;
    // The stage as the block's planes shifted: Format::load's row/chunk offsets land in it.
    WeightsView view = w;
    view.quants = stage - item * kStageQuants - first_row * w.row_bytes;
    view.scales = stage + kStageQuants - item * kStageScales - first_row * w.scales_row_bytes;
    // Warp w takes the stage's slices w·kUnroll.. (consecutive: they change rows seldom).
    const auto flat = static_cast<uint32_t>(item * kStageChunks + warp * kUnroll * kWarp);
    int64_t row = first_row + flat / row_chunks;
    auto k = static_cast<int64_t>(flat % row_chunks + lane);
    int64_t rows[kUnroll];
    int64_t ks[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      rows[u] = row;
      ks[u] = k;
      k += kWarp;
      if (k >= w.chunks) {  // rows hold whole slices: a step crosses one row end at most
        k -= w.chunks;
        ++row;
      }
    }
    mbarrier_wait(&full[slot], static_cast<uint32_t>(item / kStages) & 1);
    typename Format::Chunk chunks[kUnroll];
    typename Format::Activation activations[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (rows[u] < end_row) {
        chunks[u] = Format::template load<true>(view, rows[u], ks[u]);
        activations[u] = Format::load_x(x, 0, ks[u]);
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (rows[u] < end_row) {
        const float value = Format::dot(chunks[u], activations[u], ks[u]);
        if (rows[u] != sum_row) {  // the same for the whole warp
          flush();
          sum_row = rows[u];
        }
        acc += value;
      }
    }
    __syncwarp();
    if (lane == 0) mbarrier_arrive(&empty[slot]);
  }
  if (sum_row < end_row) flush();
  // The consumer warps only (the producer may have left).
  asm volatile("bar.sync 1, %0;" ::"n"(kWarps * kWarp) : "memory");
  for (int64_t r = threadIdx.x; r < end_row - first_row; r += kWarps * kWarp) {
    y[first_row + r] = row_sums[r];
  }
#else
  (void)w;
  (void)x;
  (void)y;
#endif
}

using GemvKernel = void (*)(WeightsView, ActivationsView, float*, int64_t);

template <class Format, int kTokens, int kRows, int kUnroll, int kSplits = 1>
constexpr GemvKernel gemv_entry() {
  return &gemv_kernel<Format, kTokens, kRows, kUnroll, kSplits>;
}

template <class Format, int kTokens>
constexpr GemvKernel multi_token_entry() {
  return gemv_entry<Format, kTokens, kMultiTokenShapes[kTokens].rows_per_warp,
                    kMultiTokenShapes[kTokens].unroll>();
}

/// The compiled kernel for `tokens` and `config`, or null. One token: (rows per warp, unroll,
/// splits) of (1, 2, 1), (1, 4, 1), (1, 8, 1), (2, 2, 1), (2, 4, 1), (4, 2, 1), (1, 8, 2),
/// (2, 2, 2), (2, 2, 4), (2, 4, 2); 2..8 tokens: kMultiTokenShapes, unsplit.
template <class Format>
GemvKernel pick_gemv(int tokens, const GemvConfig& config) noexcept {
  const int rows = config.rows_per_warp;
  const int unroll = config.unroll;
  const int splits = std::max(config.splits, 1);
  if (tokens == 1) {
    if (splits == 1) {
      if (rows == 1 && unroll == 2) return gemv_entry<Format, 1, 1, 2>();
      if (rows == 1 && unroll == 4) return gemv_entry<Format, 1, 1, 4>();
      if (rows == 1 && unroll == 8) return gemv_entry<Format, 1, 1, 8>();
      if (rows == 2 && unroll == 2) return gemv_entry<Format, 1, 2, 2>();
      if (rows == 2 && unroll == 4) return gemv_entry<Format, 1, 2, 4>();
      if (rows == 4 && unroll == 2) return gemv_entry<Format, 1, 4, 2>();
    } else if (splits == 2) {
      if (rows == 1 && unroll == 8) return gemv_entry<Format, 1, 1, 8, 2>();
      if (rows == 2 && unroll == 2) return gemv_entry<Format, 1, 2, 2, 2>();
      if (rows == 2 && unroll == 4) return gemv_entry<Format, 1, 2, 4, 2>();
    } else if (splits == 4) {
      if (rows == 2 && unroll == 2) return gemv_entry<Format, 1, 2, 2, 4>();
    }
    return nullptr;
  }
  if (tokens < 2 || tokens > kGemvMaxTokens) return nullptr;
  const GemvShape shape = kMultiTokenShapes[tokens];
  if (rows != shape.rows_per_warp || unroll != shape.unroll || splits != 1) return nullptr;
  switch (tokens) {
    case 2:
      return multi_token_entry<Format, 2>();
    case 3:
      return multi_token_entry<Format, 3>();
    case 4:
      return multi_token_entry<Format, 4>();
    case 5:
      return multi_token_entry<Format, 5>();
    case 6:
      return multi_token_entry<Format, 6>();
    case 7:
      return multi_token_entry<Format, 7>();
    default:
      return multi_token_entry<Format, 8>();
  }
}

using GemvBulkKernel = void (*)(WeightsView, ActivationsView, float*);

/// The compiled bulk-copy kernel for `config` (1 row per warp; unroll: 32-chunk slices per warp
/// and stage; warps; stages) and its stages' shared memory, or null: (unroll, warps, stages) of
/// (4, 8, 4), (2, 8, 8), (2, 16, 4), (2, 16, 6), (1, 16, 8), (2, 16, 3), (1, 16, 6).
template <class Format>
GemvBulkKernel pick_gemv_bulk(const GemvConfig& config, int* stage_bytes) noexcept {
  const int unroll = config.unroll;
  const int stages = config.stages;
  const int warps = config.warps_per_block;
  if (config.rows_per_warp != 1 || std::max(config.splits, 1) != 1) return nullptr;
#define POLYINFER_BULK_SHAPE(U, W, S)                                                         \
  if (unroll == (U) && warps == (W) && stages == (S)) {                                       \
    *stage_bytes =                                                                            \
        (S)*gemv_bulk_stage_chunks<(U), (W)>() * (Format::kQuantBytes + Format::kScaleBytes); \
    return &gemv_bulk_kernel<Format, (U), (W), (S)>;                                          \
  }
  POLYINFER_BULK_SHAPE(4, 8, 4)
  POLYINFER_BULK_SHAPE(2, 8, 8)
  POLYINFER_BULK_SHAPE(2, 16, 4)
  POLYINFER_BULK_SHAPE(2, 16, 6)
  POLYINFER_BULK_SHAPE(1, 16, 8)
  POLYINFER_BULK_SHAPE(2, 16, 3)
  POLYINFER_BULK_SHAPE(1, 16, 6)
#undef POLYINFER_BULK_SHAPE
  return nullptr;
}

/// Whether gemv_bulk_kernel takes `w`: rows of a multiple of 32 chunks with nothing between
/// them (a block's rows are then one range of each plane), 16-byte aligned planes.
template <class Format>
bool bulk_gemv_fits(const WeightsView& w) noexcept {
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  const bool scales = Format::kScaleBytes == 0 ||
                      (aligned(w.scales) && w.scales_row_bytes == w.chunks * Format::kScaleBytes);
  return w.rows > 0 && w.chunks > 0 && w.chunks % kWarp == 0 && aligned(w.quants) &&
         w.rows * w.chunks < (int64_t{1} << 31) && w.row_bytes == w.chunks * Format::kQuantBytes &&
         scales;
}

/// Launches the bulk-copy GEMV for one token: one block per multiprocessor (at most one per
/// row); kUnsupported where the device has no bulk copies or `w` does not fit.
template <class Format>
Status dispatch_gemv_bulk(const WeightsView& w, const ActivationsView& x, float* y,
                          const GemvConfig& config, Stream stream, bool programmatic) noexcept {
  int stage_bytes = 0;
  const GemvBulkKernel kernel = pick_gemv_bulk<Format>(config, &stage_bytes);
  const DeviceTraits traits = current_device_traits();
  if (kernel == nullptr || !traits.bulk_copies || !bulk_gemv_fits<Format>(w)) {
    return Status::kUnsupported;
  }
  // Two blocks per multiprocessor: F16 8192×28672 97 % of streaming against 91 % with one
  // (H200, docs/benchmarks.md). POLYINFER_GPU_BULK_BLOCKS=1..4 overrides (tuning).
  static const int per_multiprocessor = [] {
    const char* env = std::getenv("POLYINFER_GPU_BULK_BLOCKS");
    const int n = env != nullptr ? std::atoi(env) : 2;
    return n >= 1 && n <= 4 ? n : 2;
  }();
  // Never more blocks than fit at once: a block left for a second wave would find its share
  // still whole when the first wave ends (Q4_0 stages of 18 KB: one block of 74 KB fits a
  // multiprocessor at launch()'s carveout, not two). Fewer blocks take more rows each, so their
  // row sums grow: size again until the blocks fit (fewer each time, so this ends).
  int64_t blocks = 0;
  int shared_bytes = 0;
  for (int per_sm = per_multiprocessor;;) {
    blocks = std::min<int64_t>(int64_t{traits.multiprocessors} * per_sm, w.rows);
    const int64_t row_sums = ceil_div(w.rows, blocks) * 4;
    if (row_sums > 32 * 1024) return Status::kUnsupported;
    shared_bytes = stage_bytes + static_cast<int>(row_sums);
    POLYINFER_GPU_TRY(allow_shared_bytes(reinterpret_cast<const void*>(kernel), shared_bytes));
    int fitting = 0;
    POLYINFER_GPU_TRY(occupancy(reinterpret_cast<const void*>(kernel),
                                (config.warps_per_block + 1) * kWarp, shared_bytes, &fitting));
    if (fitting >= per_sm) break;
    if (fitting < 1) return Status::kUnsupported;
    per_sm = fitting;
  }
  return launch(kernel, dim3(static_cast<unsigned>(blocks)),
                dim3(static_cast<unsigned>((config.warps_per_block + 1) * kWarp)),
                static_cast<size_t>(shared_bytes), stream, programmatic, w, x, y);
}

/// Launches Format's GEMV for `tokens` activation rows with `config`. A single-token config with
/// stages runs gemv_bulk_kernel where the device and `w` allow it, else the plain kernel of the
/// same shape with at most 8 warps (or (2, 2, 8) where that shape has no plain kernel).
template <class Format>
Status dispatch_gemv(const WeightsView& w, const ActivationsView& x, int tokens, float* y,
                     int64_t y_stride, const GemvConfig& requested, Stream stream,
                     bool programmatic) noexcept {
  GemvConfig config = requested;
  if (config.stages > 0) {
    if (tokens != 1) return Status::kUnsupported;
    const Status status = dispatch_gemv_bulk<Format>(w, x, y, config, stream, programmatic);
    if (status != Status::kUnsupported) return status;
    config.stages = 0;
    config.warps_per_block = std::min(config.warps_per_block, kGemvMaxWarps);
    if (pick_gemv<Format>(1, config) == nullptr) config = GemvConfig{2, 2, 8, 1};
  }
  const GemvKernel kernel = pick_gemv<Format>(tokens, config);
  const int warps = config.warps_per_block;
  const int splits = std::max(config.splits, 1);
  if (kernel == nullptr || warps < 1 || warps > kGemvMaxWarps || warps % splits != 0) {
    return Status::kUnsupported;
  }
  const int64_t blocks = ceil_div(w.rows, int64_t{config.rows_per_warp} * (warps / splits));
  return launch(kernel, dim3(static_cast<unsigned>(blocks)),
                dim3(static_cast<unsigned>(warps * kWarp)), 0, stream, programmatic, w, x, y,
                y_stride);
}

/// An activation load: an ordinary (coherent) load, never the read-only path (__ldg,
/// ld.global.nc). Activations come from the kernel before, which with programmatic launch may
/// still be writing them while this one starts: the read-only path assumes data unchanged for
/// the kernel's whole life, and the compiler may move such loads above pdl_wait() (seen: wrong
/// logits under PDL until these loads were made ordinary).
template <typename T>
__device__ __forceinline__ T load_activation(const T* p) {
  return *p;
}

/// 16 activation quants.
__device__ __forceinline__ int4 load_x16(const int8_t* p) {
  return load_activation(reinterpret_cast<const int4*>(p));
}

/// The consumer's prologue: `normed` · 1/rms quantized into qs (cols) and meta (cols / 32) in
/// shared memory; two threads per block of 32, 16 values each. The first pass's values are
/// requested before the sum of the partials, so both come in one round trip.
template <int kThreads>
__device__ __forceinline__ void stage_normed_input(const FoldView& fold, int64_t cols, int8_t* qs,
                                                   int2* meta, float* reduce) {
  const int t = static_cast<int>(threadIdx.x);
  const int64_t halves = cols / 16;
  const int passes = static_cast<int>(ceil_div(halves, int64_t{kThreads}));
  float4 v[4];
  const auto load = [&](int64_t h) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      v[i] = h < halves ? load_activation(reinterpret_cast<const float4*>(fold.normed + h * 16) + i)
                        : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
  };
  load(t);
  // Four loads in flight a thread (a loop of single loads waits a round trip for each; 1024
  // partials over 256 threads are one round; eight in flight spill the first chunks).
  float part = 0.0f;
  for (int base = 0; base < fold.count; base += 4 * kThreads) {
    float loaded[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int i = base + t + j * kThreads;
      loaded[j] = i < fold.count ? load_activation(fold.partials + i) : 0.0f;
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) part += loaded[j];
  }
  part = warp_sum(part);
  if (t % kWarp == 0) reduce[t / kWarp] = part;
  __syncthreads();
  float total = 0.0f;
#pragma unroll
  for (int w = 0; w < kThreads / kWarp; ++w) total += reduce[w];
  const float inverse = 1.0f / sqrtf(total / static_cast<float>(cols) + fold.eps);
  for (int pass = 0;;) {
    const int64_t h = t + int64_t{pass} * kThreads;
    // max |v·inverse| = (max |v|)·inverse: rounding a product by a positive factor keeps order.
    float amax = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      amax = fmaxf(amax,
                   fmaxf(fmaxf(fabsf(v[i].x), fabsf(v[i].y)), fmaxf(fabsf(v[i].z), fabsf(v[i].w))));
    }
    amax *= inverse;
    amax = fmaxf(amax, shfl_xor(amax, 1));  // the other half of the block of 32
    const float d = amax / 127.0f;
    const float scale = d != 0.0f ? 1.0f / d : 0.0f;
    const float values[16] = {v[0].x, v[0].y, v[0].z, v[0].w, v[1].x, v[1].y, v[1].z, v[1].w,
                              v[2].x, v[2].y, v[2].z, v[2].w, v[3].x, v[3].y, v[3].z, v[3].w};
    uint32_t packed[4];
    int sum = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      uint32_t word = 0;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int q = static_cast<int>(roundf(values[4 * i + j] * inverse * scale));
        sum += q;
        word |= (static_cast<uint32_t>(q) & 0xFFu) << (8 * j);
      }
      packed[i] = word;
    }
    sum += shfl_xor(sum, 1);
    if (h < halves) {
      *reinterpret_cast<uint4*>(qs + h * 16) =
          make_uint4(packed[0], packed[1], packed[2], packed[3]);
      if (h % 2 == 0) meta[h / 2] = make_int2(__float_as_int(fp16_to_f32(f32_to_fp16(d))), sum);
    }
    if (++pass >= passes) break;
    load(t + int64_t{pass} * kThreads);
  }
  __syncthreads();
}

/// Blocks a multiprocessor the folded kernel of a shape is compiled for: those of the plain
/// kernel of that shape (its registers under ptxas; sm_90) where the fold fits them without
/// spilling (the consumers' prologue needs more: three blocks of 8 warps). Q4_K's 32-byte chunks
/// take what they need (held to 80 registers they spill).
template <class Format, int kRows, int kSplits, int kWarps, bool kNormIn>
constexpr int gemv_fold_min_blocks() {
  if constexpr (sizeof(typename Format::Chunk) > 32) return 1;
  if constexpr (kSplits == 4 && !kNormIn)
    return Format::kQuantBytes == 16 && Format::kScaleBytes == 2 ? 5 : 4;
  if constexpr (kRows == 4) return 2;
  return 24 / kWarps;
}

/// The single-token GEMV with a folded norm (FoldView): kNormIn, the consumer (blocks then take
/// the items blockIdx.x, + gridDim.x, …, so that each quantizes its input once); else the
/// producer. Shapes as gemv_kernel (kWarps warps a block); the first item's first chunks are
/// loaded before pdl_wait() as there.
template <class Format, int kRows, int kUnroll, int kSplits, int kWarps, bool kNormIn>
__global__ void __launch_bounds__(kWarps* kWarp,
                                  (gemv_fold_min_blocks<Format, kRows, kSplits, kWarps, kNormIn>()))
    gemv_fold_kernel(WeightsView w, ActivationsView x, float* y, FoldView fold, int64_t items) {
  constexpr int kThreads = kWarps * kWarp;
  constexpr int kGroups = kWarps / kSplits;  // row groups a block
  constexpr int64_t kStride = int64_t{kWarp} * kSplits;
  constexpr int64_t kStep = kStride * kUnroll;
  using Chunk = typename Format::Chunk;
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp_in_block = static_cast<int>(threadIdx.x) / kWarp;
  const int split = warp_in_block % kSplits;
  const int64_t start = split * kWarp + lane;
  __shared__ float partial[kWarps][kRows];
  __shared__ float reduce[kWarps];
  extern __shared__ __align__(16) uint8_t staged[];
  pdl_launch_dependents();
  const auto rows_of = [&](int64_t item, int64_t(&row)[kRows]) {
    const int64_t first_row = (item * kGroups + warp_in_block / kSplits) * kRows;
#pragma unroll
    for (int r = 0; r < kRows; ++r) row[r] = first_row + r < w.rows ? first_row + r : w.rows - 1;
    return first_row;
  };
  int64_t row[kRows];
  int64_t first_row = rows_of(blockIdx.x, row);
  Chunk first[kUnroll][kRows];
  load_chunks<Format, kRows, kUnroll>(w, row, start, kStride, first);
  float next_weight[kRows];  // the producer's rows' next-norm weights (constant: before the wait)
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    next_weight[r] =
        !kNormIn && fold.next_weight != nullptr ? __ldg(fold.next_weight + row[r]) : 0.0f;
  }
  pdl_wait();
  ActivationsView input = x;
  float residual[kRows];
  if constexpr (kNormIn) {
    auto* qs = reinterpret_cast<int8_t*>(staged);
    auto* meta = reinterpret_cast<int2*>(staged + w.cols);
    stage_normed_input<kThreads>(fold, w.cols, qs, meta, reduce);
    input.qs = qs;
    input.meta = meta;
  } else {
#pragma unroll
    for (int r = 0; r < kRows; ++r) residual[r] = load_activation(y + row[r]);
  }
  float squares = 0.0f;  // the producer's Σ y² over the rows this thread writes
  // Sums the item's products (the first item starts with the preloaded chunks) and writes them.
  const auto finish = [&](float(&acc)[kRows][1]) {
    float sums[kRows];
    if constexpr (kSplits == 1) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) sums[r] = warp_sum(acc[r][0]);
    } else {
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const float sum = warp_sum(acc[r][0]);
        if (lane == 0) partial[warp_in_block][r] = sum;
      }
      __syncthreads();
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        sums[r] = 0.0f;
#pragma unroll
        for (int s = 0; s < kSplits; ++s) sums[r] += partial[warp_in_block - split + s][r];
      }
      __syncthreads();  // the next item writes `partial` again
    }
    if (split != 0 || lane != 0) return;
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      if (first_row + r >= w.rows) continue;
      if constexpr (kNormIn) {
        y[first_row + r] = sums[r];
      } else {
        const float value = residual[r] + sums[r];
        y[first_row + r] = value;
        if (fold.next_weight != nullptr) {
          fold.normed[first_row + r] = value * next_weight[r];
          squares += value * value;
        }
      }
    }
  };
  {
    float acc[kRows][1] = {};
    dot_chunks<Format, 1, kRows, kUnroll>(w, input, start, kStride, first, acc);
    for (int64_t base = start + kStep; base < w.chunks; base += kStep) {
      Chunk chunks[kUnroll][kRows];
      load_chunks<Format, kRows, kUnroll>(w, row, base, kStride, chunks);
      dot_chunks<Format, 1, kRows, kUnroll>(w, input, base, kStride, chunks, acc);
    }
    finish(acc);
  }
  if constexpr (kNormIn) {
    for (int64_t item = blockIdx.x + int64_t{gridDim.x}; item < items; item += gridDim.x) {
      first_row = rows_of(item, row);
      float acc[kRows][1] = {};
      for (int64_t base = start; base < w.chunks; base += kStep) {
        Chunk chunks[kUnroll][kRows];
        load_chunks<Format, kRows, kUnroll>(w, row, base, kStride, chunks);
        dot_chunks<Format, 1, kRows, kUnroll>(w, input, base, kStride, chunks, acc);
      }
      finish(acc);
    }
  } else if (fold.next_weight != nullptr) {
    const float sum = warp_sum(squares);
    if (lane == 0) reduce[warp_in_block] = sum;
    __syncthreads();
    if (threadIdx.x == 0) {
      float total = 0.0f;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) total += reduce[w];
      fold.partials[blockIdx.x] = total;
    }
  }
}

using GemvFoldKernel = void (*)(WeightsView, ActivationsView, float*, FoldView, int64_t);

/// The folded kernel for `config` (consumer: kNormIn), or null: (rows per warp, unroll, warps,
/// splits) of (2, 4, 8, 1), (2, 2, 8, 4), (2, 2, 4, 1), (4, 2, 8, 1), the decode defaults.
template <class Format, bool kNormIn>
GemvFoldKernel pick_gemv_fold(const GemvConfig& c) noexcept {
  const int splits = std::max(c.splits, 1);
  if (c.stages != 0) return nullptr;
  if (c.rows_per_warp == 2 && c.unroll == 4 && c.warps_per_block == 8 && splits == 1) {
    return &gemv_fold_kernel<Format, 2, 4, 1, 8, kNormIn>;
  }
  if (c.rows_per_warp == 2 && c.unroll == 2 && c.warps_per_block == 8 && splits == 4) {
    return &gemv_fold_kernel<Format, 2, 2, 4, 8, kNormIn>;
  }
  if (c.rows_per_warp == 2 && c.unroll == 2 && c.warps_per_block == 4 && splits == 1) {
    return &gemv_fold_kernel<Format, 2, 2, 1, 4, kNormIn>;
  }
  if (c.rows_per_warp == 4 && c.unroll == 2 && c.warps_per_block == 8 && splits == 1) {
    return &gemv_fold_kernel<Format, 4, 2, 1, 8, kNormIn>;
  }
  return nullptr;
}

/// Launches the folded GEMV (one token) with `config`, or (2, 2, 8, 4) where that shape has no
/// folded kernel. Producer: one block per item, fold.count set to the blocks (the partials it
/// writes; at most `capacity`). Consumer: at most the blocks that fit at once.
template <class Format>
Status dispatch_gemv_fold(const WeightsView& w, const ActivationsView& x, float* y,
                          const GemvConfig& requested, bool consumer, FoldView* fold,
                          int64_t capacity, Stream stream) noexcept {
  GemvConfig config = requested;
  const auto pick = [&] {
    return consumer ? pick_gemv_fold<Format, true>(config) : pick_gemv_fold<Format, false>(config);
  };
  if (pick() == nullptr) config = GemvConfig{2, 2, 8, 4};
  const GemvFoldKernel kernel = pick();
  if (kernel == nullptr) return Status::kUnsupported;
  const int threads = config.warps_per_block * kWarp;
  const int64_t items = ceil_div(w.rows, int64_t{config.rows_per_warp} *
                                             (config.warps_per_block / std::max(config.splits, 1)));
  int64_t blocks = items;
  int shared_bytes = 0;
  if (consumer) {
    if (w.cols % 32 != 0 || fold->count < 1) return Status::kInvalidArgument;
    shared_bytes = static_cast<int>(w.cols + w.cols / 32 * 8);
    if (shared_bytes > 48 * 1024) return Status::kUnsupported;
    int fitting = 0;
    POLYINFER_GPU_TRY(
        occupancy(reinterpret_cast<const void*>(kernel), threads, shared_bytes, &fitting));
    const DeviceTraits traits = current_device_traits();
    // POLYINFER_GPU_FOLD_GRID=items: a block per item instead (each quantizing the input; tuning).
    static const bool per_item = [] {
      const char* env = std::getenv("POLYINFER_GPU_FOLD_GRID");
      return env != nullptr && std::string_view(env) == "items";
    }();
    if (!per_item) {
      blocks = std::min<int64_t>(items, int64_t{std::max(fitting, 1)} * traits.multiprocessors);
    }
  } else {
    if (fold->next_weight != nullptr && items > capacity) return Status::kUnsupported;
    fold->count = static_cast<int>(items);
  }
  return launch(kernel, dim3(static_cast<unsigned>(blocks)), dim3(static_cast<unsigned>(threads)),
                static_cast<size_t>(shared_bytes), stream, true, w, x, y, *fold, items);
}

}  // namespace polyinfer::inline v0::detail::gpu
