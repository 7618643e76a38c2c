// SPDX-License-Identifier: Apache-2.0
// Attention over the paged f16 / f32 KV cache: split-K ("flash decoding") partial softmax states
// per share of rows, merged in a thread-block cluster or by the last block to finish, in one
// launch (f32 sums on the CUDA cores; decode steps over f16 rows on the tensor cores); and
// storing rows into the cache.
#include "kernels/cuda/attention_mma.cuh"
#include "kernels/cuda/attention_split.cuh"

namespace polyinfer::inline v0::detail::gpu {
namespace {

using namespace attention_split;  // NOLINT(google-build-using-namespace): one kernel family

// kValues consecutive cache values as stored: one vector load when kValues is a power of two.
template <typename T, int kValues>
struct alignas((kValues & (kValues - 1)) == 0 ? sizeof(T) * kValues : sizeof(T)) Lanes {
  T v[kValues];
};

__device__ __forceinline__ float to_float(__half v) {
  return __half2float(v);
}
__device__ __forceinline__ float to_float(float v) {
  return v;
}

template <typename T, int kValues>
__device__ __forceinline__ void to_floats(const Lanes<T, kValues>& raw, float (&out)[kValues]) {
#pragma unroll
  for (int i = 0; i < kValues; ++i) out[i] = to_float(raw.v[i]);
}

// A block's shared memory: its query heads (f32, scaled), then kStages stages, each a tile of
// kTileRows key rows and as many value rows, rows padded to kPitch bytes. Once the rows are
// consumed the stages hold the warps' softmax states and the merge's per-split factors.
// Warps: with kWarps or more heads per block each warp owns whole heads (kWarpHeads of them)
// over every row of a tile; with fewer, a head's rows are shared among kParts warps. In the
// scores a key row is read by kLanes lanes, each summing kSegments / kLanes 16-byte pieces.
template <typename T, int kDim, int kHeads, int kWarps>
struct Tile {
  static constexpr int kThreads = kWarps * kWarp;
  static constexpr int kRowBytes = kDim * static_cast<int>(sizeof(T));
  static constexpr int kSegments = kRowBytes / 16;
  static constexpr int kPerSegment = 16 / static_cast<int>(sizeof(T));
  static constexpr int kParts = kHeads >= kWarps ? 1 : kWarps / kHeads;
  static constexpr int kHeadSlots = kWarps / kParts;  // warps over distinct heads
  static constexpr int kWarpHeads = kHeads / kHeadSlots;
  static constexpr int kQueryBytes = kHeads * kDim * 4;
  // Rows ≡ 16·lanes bytes (mod 128) apart: the 8 lanes of a quarter warp's 16-byte loads hit
  // distinct banks.
  static constexpr int pitch(int lanes) {
    return lanes >= 8 ? kRowBytes : kRowBytes + ((16 * lanes - kRowBytes % 128) % 128 + 128) % 128;
  }
  static constexpr int stage_bytes(int rows) { return 2 * rows * pitch(kWarp * kParts / rows); }
  static constexpr bool fits(int rows) {
    return kQueryBytes + 2 * stage_bytes(rows) <= kSharedBudget;
  }
  // At most one lane per 16-byte piece of a row (narrow rows: taller tiles).
  static constexpr bool usable(int rows) {
    return kWarp * kParts / rows >= 1 && kWarp * kParts / rows <= kSegments && fits(rows);
  }
  static constexpr int kTileRows = usable(32) ? 32 : usable(64) ? 64 : usable(16) ? 16 : 8;
  static constexpr int kLanes = kWarp * kParts / kTileRows;
  static constexpr int kWarpRows = kTileRows / kParts;
  static constexpr int kPitch = pitch(kLanes);
  static constexpr int kStageBytes = stage_bytes(kTileRows);
  static constexpr int kStages = std::min((kSharedBudget - kQueryBytes) / kStageBytes, 4);
  static constexpr int kStateBytes = kHeads * kParts * (kDim + 2) * 4;
  static constexpr int kFactorBytes = kHeads * kMaxSplits * 4;
  static constexpr int kOwnBytes = kHeads * (kDim + 2) * 4;
  static constexpr int kSharedBytes =
      kQueryBytes + std::max(kStages * kStageBytes, kStateBytes + kFactorBytes + kOwnBytes);
  static_assert(kLanes >= 1 && kLanes <= kSegments && kStages >= 2 &&
                kSharedBytes <= kSharedBudget);
};

// The 16 bytes of a row piece as floats.
__device__ __forceinline__ void piece_to_floats(const uint4& raw, float (&out)[8]) {
  const auto* h = reinterpret_cast<const __half*>(&raw);
#pragma unroll
  for (int i = 0; i < 8; ++i) out[i] = __half2float(h[i]);
}
__device__ __forceinline__ void piece_to_floats(const uint4& raw, float (&out)[4]) {
  out[0] = __uint_as_float(raw.x);
  out[1] = __uint_as_float(raw.y);
  out[2] = __uint_as_float(raw.z);
  out[3] = __uint_as_float(raw.w);
}

// Block (split, kv head · head groups + head group, token) attends over its share of the
// token's rows, the share sized from the token's own length (so fixed launch shapes, as graph
// replay needs, still spread a short context over every split). Key and value rows travel in
// tiles through a pipeline of shared-memory stages (cp.async), so a warp never waits on a
// single row: per tile, (1) each lane group scores one key row against the warp's heads, (2)
// the warp's online softmax state is rescaled once, (3) the value rows are weighted in, a lane
// holding kDim / 32 dims of each head. The warps' states are combined in shared memory; with
// several splits each block writes its state {m, l, acc[dim]} per head, and the last block of
// the token's head group to finish (an arrival counter) merges them in split order.
// In a decode step (`plan.early`) the rows of earlier steps are requested before pdl_wait(),
// while the kernels before this one still run; only the step's own rows wait for them.
// kWarps: kDecodeWarps or kPromptWarps (launch_split).
template <typename T, int kDim, int kHeads, int kWarps>
__global__ void __launch_bounds__(kWarps* kWarp)
    attention_kernel(const float* q, SplitPlan plan, DeviceKvView keys, DeviceKvView values,
                     const int32_t* positions, int causal, float scale, float* partials,
                     int* arrivals, float* out, QuantizedRows quantized) {
  using Shape = Tile<T, kDim, kHeads, kWarps>;
  constexpr int kThreads = Shape::kThreads;
  constexpr int kRows = Shape::kTileRows;
  constexpr int kPitch = Shape::kPitch;
  constexpr int kLanes = Shape::kLanes;
  constexpr int kStages = Shape::kStages;
  constexpr int kValues = kDim / kWarp;  // a lane's dims of each head's output
  constexpr int kWarpHeads = Shape::kWarpHeads;
  extern __shared__ __align__(16) unsigned char shared[];
  float* query = reinterpret_cast<float*>(shared);
  unsigned char* stages = shared + Shape::kQueryBytes;
  pdl_launch_dependents();
  if (plan.early == 0) pdl_wait();
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  const int split = static_cast<int>(blockIdx.x);
  const auto [token, kv_head, first_head, count, limit, share, active] =
      block_work<kHeads, kRows>(plan, keys, values, positions, causal);
  if (split >= active) {  // split 0 always runs, and waits
    idle_split(plan, split, active);
    return;
  }
  const int64_t begin = split * share;
  const int64_t end = min_i64(begin + share, limit);
  const int tiles = static_cast<int>(ceil_div(end - begin, kRows));
  void* const* key_blocks = token_blocks(keys, token);
  void* const* value_blocks = token_blocks(values, token);
  // Tile `tile`'s key and value rows into its stage; rows past the share become zeros.
  // kv_head by copy: HIP's clang 15 captures no structured binding.
  const auto issue = [&, kv_head = kv_head](int tile) {
    unsigned char* stage = stages + (tile % kStages) * Shape::kStageBytes;
    const int64_t first = begin + int64_t{tile} * kRows;
    for (int i = static_cast<int>(threadIdx.x); i < kRows * Shape::kSegments; i += kThreads) {
      const int r = i / Shape::kSegments;
      const int piece = i % Shape::kSegments;
      const bool valid = first + r < end;
      const int64_t row = valid ? first + r : begin;
      const auto* k =
          reinterpret_cast<const unsigned char*>(kv_row<const T>(keys, key_blocks, row, kv_head));
      const auto* v = reinterpret_cast<const unsigned char*>(
          kv_row<const T>(values, value_blocks, row, kv_head));
      copy_async(stage + r * kPitch + piece * 16, k + piece * 16, valid ? 16 : 0);
      copy_async(stage + (kRows + r) * kPitch + piece * 16, v + piece * 16, valid ? 16 : 0);
    }
  };
  int issued = 0;
  if (plan.early != 0) {
    // Rows below the first position this call gives the token's sequence were written by
    // earlier steps: their tiles are requested now.
    const int64_t ready = rows_ready(keys, positions, token, causal);
    for (; issued < kStages - 1 && issued < tiles &&
           min_i64(begin + int64_t{issued + 1} * kRows, end) <= ready;
         ++issued) {
      issue(issued);
      commit_copies();
    }
    pdl_wait();
  }
  for (int i = static_cast<int>(threadIdx.x); i < kHeads * kDim; i += kThreads) {
    const int g = i / kDim;
    query[i] =
        g < count ? q[token * plan.q_stride + (first_head + g) * kDim + i % kDim] * scale : 0.0f;
  }
  for (; issued < kStages - 1; ++issued) {
    if (issued < tiles) issue(issued);
    commit_copies();
  }

  const int slot = warp % Shape::kHeadSlots;  // the warp's first head; then + kHeadSlots, …
  const int part = warp / Shape::kHeadSlots;  // which of its head's row parts
  const int score_row = part * Shape::kWarpRows + lane / kLanes;
  const int piece = lane % kLanes;
  float m[kWarpHeads];
  float l[kWarpHeads];
  float acc[kWarpHeads][kValues];
#pragma unroll
  for (int h = 0; h < kWarpHeads; ++h) {
    m[h] = -INFINITY;
    l[h] = 0.0f;
#pragma unroll
    for (int e = 0; e < kValues; ++e) acc[h][e] = 0.0f;
  }
  for (int tile = 0; tile < tiles; ++tile) {
    wait_copies<kStages - 2>();
    __syncthreads();  // the tile is in; the stage read last iteration is free
    if (tile + kStages - 1 < tiles) issue(tile + kStages - 1);
    commit_copies();
    const unsigned char* stage = stages + (tile % kStages) * Shape::kStageBytes;
    const int rows = static_cast<int>(min_i64(kRows, end - begin - int64_t{tile} * kRows));
    // (1) Scores of the lane group's key row.
    float s[kWarpHeads];
#pragma unroll
    for (int h = 0; h < kWarpHeads; ++h) s[h] = 0.0f;
    const unsigned char* key = stage + score_row * kPitch;
#pragma unroll
    for (int i = 0; i < (Shape::kSegments + kLanes - 1) / kLanes; ++i) {
      const int at = i * kLanes + piece;
      if (Shape::kSegments % kLanes != 0 && at >= Shape::kSegments) POLYINFER_UNROLLED_EXIT;
      float k[Shape::kPerSegment];
      piece_to_floats(*reinterpret_cast<const uint4*>(key + at * 16), k);
#pragma unroll
      for (int h = 0; h < kWarpHeads; ++h) {
        const auto* qh = reinterpret_cast<const float4*>(
            query + (slot + h * Shape::kHeadSlots) * kDim + at * Shape::kPerSegment);
#pragma unroll
        for (int e = 0; e < Shape::kPerSegment / 4; ++e) {
          const float4 qv = qh[e];
          s[h] = fmaf(k[4 * e], qv.x, s[h]);
          s[h] = fmaf(k[4 * e + 1], qv.y, s[h]);
          s[h] = fmaf(k[4 * e + 2], qv.z, s[h]);
          s[h] = fmaf(k[4 * e + 3], qv.w, s[h]);
        }
      }
    }
    // (2) The warp's online softmax state, once per tile.
    const bool valid = score_row < rows;
    float p[kWarpHeads];
#pragma unroll
    for (int h = 0; h < kWarpHeads; ++h) {
#pragma unroll
      for (int offset = kLanes / 2; offset >= 1; offset /= 2) s[h] += shfl_xor(s[h], offset);
      const float score = valid ? s[h] : -INFINITY;
      const float m_new = fmaxf(m[h], warp_max(score));
      const float correction = m_new == -INFINITY ? 1.0f : expf(m[h] - m_new);
      p[h] = valid ? expf(score - m_new) : 0.0f;
      l[h] = l[h] * correction + warp_sum(piece == 0 ? p[h] : 0.0f);
      m[h] = m_new;
#pragma unroll
      for (int e = 0; e < kValues; ++e) acc[h][e] *= correction;
    }
    // (3) The value rows, weighted.
    const int first_row = part * Shape::kWarpRows;
    const int warp_rows = max(0, min(Shape::kWarpRows, rows - first_row));
#pragma unroll
    for (int i = 0; i < Shape::kWarpRows; ++i) {
      if (i >= warp_rows) POLYINFER_UNROLLED_EXIT;
      float v[kValues];
      to_floats(*reinterpret_cast<const Lanes<T, kValues>*>(
                    stage + (kRows + first_row + i) * kPitch + lane * kValues * sizeof(T)),
                v);
#pragma unroll
      for (int h = 0; h < kWarpHeads; ++h) {
        const float weight = shfl_from(p[h], i * kLanes);
#pragma unroll
        for (int e = 0; e < kValues; ++e) acc[h][e] = fmaf(weight, v[e], acc[h][e]);
      }
    }
  }
  wait_copies<0>();
  __syncthreads();  // the stages now hold: states [head][part][m, l, acc…], factors, own
  float* state = reinterpret_cast<float*>(stages);
#pragma unroll
  for (int h = 0; h < kWarpHeads; ++h) {
    float* mine = state + ((slot + h * Shape::kHeadSlots) * Shape::kParts + part) * (kDim + 2);
    if (lane == 0) {
      mine[0] = m[h];
      mine[1] = l[h];
    }
#pragma unroll
    for (int e = 0; e < kValues; ++e) mine[2 + lane * kValues + e] = acc[h][e];
  }
  __syncthreads();
  merge_and_store<kDim, kHeads, Shape::kParts, kWarps>(state, Shape::kParts, count, plan, token,
                                                       first_head, split, active, partials,
                                                       arrivals, out, quantized);
}

__device__ __forceinline__ void store_value(__half* p, float v) {
  *p = __float2half_rn(v);
}
__device__ __forceinline__ void store_value(float* p, float v) {
  *p = v;
}

// Row r of src (stride src_stride) goes to row first_row + r, or to row positions[r] of token
// r's sequence when positions is given; with src2/dst2, a second store in the same launch
// (values beside keys).
template <typename T>
__global__ void kv_store_kernel(const float* src, const float* src2, int64_t src_stride,
                                int64_t rows, int64_t first_row, const int32_t* positions,
                                DeviceKvView dst, DeviceKvView dst2) {
  pdl_begin();
  const int64_t row_values = dst.kv_heads * dst.head_dim;
  const int64_t per_view = rows * row_values;
  const int64_t total = src2 != nullptr ? 2 * per_view : per_view;
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < total; i += stride) {
    const bool second = i >= per_view;
    const int64_t k = second ? i - per_view : i;
    const DeviceKvView& view = second ? dst2 : dst;
    const float* from = second ? src2 : src;
    const int64_t r = k / row_values;
    const int64_t row = positions != nullptr ? int64_t{positions[r]} : first_row + r;
    T* block = kv_row<T>(view, token_blocks(view, positions != nullptr ? r : 0), row, 0);
    store_value(block + k % row_values, from[r * src_stride + k % row_values]);
  }
}

Status store_rows(const float* src, const float* src2, int64_t src_stride, int64_t rows,
                  int64_t first_row, const int32_t* positions, const DeviceKvView& dst,
                  const DeviceKvView& dst2, Stream stream) noexcept {
  constexpr int kThreads = 256;
  const int64_t total = rows * dst.kv_heads * dst.head_dim * (src2 != nullptr ? 2 : 1);
  if (total == 0) return Status::kOk;
  if (src == nullptr) return Status::kInvalidArgument;
  if (dst.type == KvType::kF32) {
    return launch(&kv_store_kernel<float>, dim3(grid_for(total, kThreads)), dim3(kThreads), 0,
                  stream, true, src, src2, src_stride, rows, first_row, positions, dst, dst2);
  }
  return launch(&kv_store_kernel<__half>, dim3(grid_for(total, kThreads)), dim3(kThreads), 0,
                stream, true, src, src2, src_stride, rows, first_row, positions, dst, dst2);
}

// Index i < tokens·(heads + kv_heads)·half rotates one pair of a q or k head (k pairs are
// also stored); the indices after it store one v value each. What an index needs from the
// step's metadata alone (positions, block tables, frequencies: none written by the kernels
// before it) is worked out by prepare_rope_item(), for a thread's first index before pdl_wait():
// the rotation's sincos and the cache row's block lookup then overlap the previous kernel's end.
template <typename T>
struct RopeItem {
  float* first = nullptr;   // the pair's values in qkv (v: the value), or null (no item)
  float* second = nullptr;  // null for a v value
  T* cached_first = nullptr;
  T* cached_second = nullptr;  // null unless a k pair
  double sin_angle = 0.0;
  double cos_angle = 1.0;
};

template <typename T>
__device__ __forceinline__ RopeItem<T> prepare_rope_item(int64_t index, float* qkv,
                                                         int64_t row_stride, int64_t tokens,
                                                         int64_t heads, const int32_t* positions,
                                                         const float* inv_freq, bool interleaved,
                                                         const DeviceKvView& keys,
                                                         const DeviceKvView& values) {
  RopeItem<T> item;
  const int64_t dim = keys.head_dim;
  const int64_t half = dim / 2;
  const int64_t rotated_heads = heads + keys.kv_heads;
  const int64_t pairs = tokens * rotated_heads * half;
  if (index < pairs) {
    const int64_t i = index % half;
    const int64_t head = (index / half) % rotated_heads;
    const int64_t token = index / (half * rotated_heads);
    float* row = qkv + token * row_stride + head * dim;
    const int64_t first = interleaved ? 2 * i : i;
    const int64_t second = interleaved ? 2 * i + 1 : i + half;
    item.first = row + first;
    item.second = row + second;
    // rope_kernel's rotation (double, as the reference).
    const double angle = static_cast<double>(positions[token]) * static_cast<double>(inv_freq[i]);
    sincos(angle, &item.sin_angle, &item.cos_angle);
    if (head >= heads) {
      T* cached = kv_row<T>(keys, token_blocks(keys, token), positions[token], head - heads);
      item.cached_first = cached + first;
      item.cached_second = cached + second;
    }
  } else if (index < pairs + tokens * keys.kv_heads * dim) {
    const int64_t k = index - pairs;
    const int64_t token = k / (keys.kv_heads * dim);
    const int64_t value = k % (keys.kv_heads * dim);
    item.first = qkv + token * row_stride + rotated_heads * dim + value;
    item.cached_first = kv_row<T>(values, token_blocks(values, token), positions[token], 0) + value;
  }
  return item;
}

template <typename T>
__device__ __forceinline__ void apply_rope_item(const RopeItem<T>& item) {
  if (item.second == nullptr) {  // a v value
    store_value(item.cached_first, *item.first);
    return;
  }
  const double a = *item.first;
  const double b = *item.second;
  const auto rotated_first = static_cast<float>(a * item.cos_angle - b * item.sin_angle);
  const auto rotated_second = static_cast<float>(a * item.sin_angle + b * item.cos_angle);
  *item.first = rotated_first;
  *item.second = rotated_second;
  if (item.cached_second != nullptr) {
    store_value(item.cached_first, rotated_first);
    store_value(item.cached_second, rotated_second);
  }
}

template <typename T>
__global__ void rope_kv_store_kernel(float* qkv, int64_t row_stride, int64_t tokens, int64_t heads,
                                     const int32_t* positions, const float* inv_freq,
                                     bool interleaved, DeviceKvView keys, DeviceKvView values) {
  pdl_launch_dependents();
  const int64_t total =
      tokens * ((heads + keys.kv_heads) * (keys.head_dim / 2) + keys.kv_heads * keys.head_dim);
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  int64_t index = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  RopeItem<T> item = prepare_rope_item<T>(index, qkv, row_stride, tokens, heads, positions,
                                          inv_freq, interleaved, keys, values);
  pdl_wait();  // qkv comes from the kernel before
  while (index < total) {
    apply_rope_item(item);
    index += stride;
    if (index < total) {
      item = prepare_rope_item<T>(index, qkv, row_stride, tokens, heads, positions, inv_freq,
                                  interleaved, keys, values);
    }
  }
}

template <typename T, int kDim>
Status launch_split(const float* q, const SplitPlan& plan, int64_t tokens, int64_t kv_heads,
                    const DeviceKvView& keys, const DeviceKvView& values, const int32_t* positions,
                    bool causal, float scale, float* partials, int* arrivals, float* out,
                    const QuantizedRows& quantized, Stream stream) noexcept {
  const dim3 grid(static_cast<unsigned>(plan.splits),
                  static_cast<unsigned>(kv_heads * plan.head_groups),
                  static_cast<unsigned>(tokens));
  // Decode-sized launches keep launch()'s carveout, shared with the GEMVs around them; prompts
  // and batches ask for all of it (more blocks per multiprocessor: batch 32 lost 4 % at 50).
  const auto run_as = [&]<int kHeads, int kWarps>() {
    using Shape = Tile<T, kDim, kHeads, kWarps>;
    const auto kernel = &attention_kernel<T, kDim, kHeads, kWarps>;
    if constexpr (kWarps == kPromptWarps) {
      prefer_carveout(reinterpret_cast<const void*>(kernel), 100);
    }
    return launch_in_clusters(kernel, grid, dim3(Shape::kThreads),
                              static_cast<size_t>(Shape::kSharedBytes), stream, true,
                              static_cast<unsigned>(plan.cluster), q, plan, keys, values, positions,
                              causal ? 1 : 0, scale, partials, arrivals, out, quantized);
  };
  const auto run = [&]<int kHeads>() {
#if POLYINFER_GPU_MMA_ATTENTION
    if constexpr (std::is_same_v<T, __half> && mma_fits(kDim, kHeads, kDecodeWarps)) {
      if (plan.mma != 0) {
        using Shape = MmaTile<kDim, kHeads, kDecodeWarps>;
        return launch_in_clusters(&attention_mma_kernel<kDim, kHeads, kDecodeWarps>, grid,
                                  dim3(Shape::kThreads), static_cast<size_t>(Shape::kSharedBytes),
                                  stream, true, static_cast<unsigned>(plan.cluster), q, plan, keys,
                                  values, positions, causal ? 1 : 0, scale, partials, arrivals, out,
                                  quantized);
      }
    }
#endif
    return tokens <= kGemvMaxTokens ? run_as.template operator()<kHeads, kDecodeWarps>()
                                    : run_as.template operator()<kHeads, kPromptWarps>();
  };
  // Query heads per block: 1 (multi-head), 2, up to 4, up to 8 (several blocks per kv head past
  // that).
  return plan.group == 1   ? run.template operator()<1>()
         : plan.group == 2 ? run.template operator()<2>()
         : plan.group <= 4 ? run.template operator()<4>()
                           : run.template operator()<kMaxGroup>();
}

template <int kDim>
Status launch_dim(const float* q, const SplitPlan& plan, int64_t tokens, const DeviceKvView& keys,
                  const DeviceKvView& values, const int32_t* positions, bool causal, float scale,
                  float* partials, int* arrivals, float* out, const QuantizedRows& quantized,
                  Stream stream) noexcept {
  if (scale == 0.0f) scale = 1.0f / sqrtf(static_cast<float>(kDim));
  if (keys.type == KvType::kF32) {
    return launch_split<float, kDim>(q, plan, tokens, keys.kv_heads, keys, values, positions,
                                     causal, scale, partials, arrivals, out, quantized, stream);
  }
  return launch_split<__half, kDim>(q, plan, tokens, keys.kv_heads, keys, values, positions, causal,
                                    scale, partials, arrivals, out, quantized, stream);
}

Status run_attention(Context& context, const float* q, int64_t q_stride, int64_t tokens,
                     int64_t heads, const DeviceKvView& keys, const DeviceKvView& values,
                     const int32_t* positions, bool causal, bool early, float scale, float* out,
                     void* quantized) noexcept;

}  // namespace

bool attention_supports(const DeviceKvView& view) noexcept {
  const int64_t d = view.head_dim;
  return (view.type == KvType::kF16 || view.type == KvType::kF32) && view.positions <= INT32_MAX &&
         (d == 32 || d == 64 || d == 96 || d == 128 || d == 256) && view.block_offset >= 0 &&
         view.kv_heads > 0 && view.block_rows > 0 && view.blocks != nullptr && view.positions >= 0;
}

Status kv_store(const float* src, int64_t rows, int64_t first_row, const DeviceKvView& dst,
                Stream stream) noexcept {
  if (rows < 0 || first_row < 0) return Status::kInvalidArgument;
  if (!attention_supports(dst) || dst.token_tables != nullptr) return Status::kUnsupported;
  const int64_t row_values = dst.kv_heads * dst.head_dim;
  return store_rows(src, nullptr, row_values, rows, first_row, nullptr, dst, dst, stream);
}

Status kv_store_tokens(const float* keys_src, const float* values_src, int64_t src_stride,
                       int64_t tokens, const int32_t* positions, const DeviceKvView& keys,
                       const DeviceKvView& values, Stream stream) noexcept {
  if (tokens < 0 || positions == nullptr || values_src == nullptr ||
      src_stride < keys.kv_heads * keys.head_dim) {
    return Status::kInvalidArgument;
  }
  if (!attention_supports(keys) || !attention_supports(values) || keys.type != values.type ||
      keys.kv_heads != values.kv_heads || keys.head_dim != values.head_dim ||
      keys.block_rows != values.block_rows) {
    return Status::kUnsupported;
  }
  return store_rows(keys_src, values_src, src_stride, tokens, 0, positions, keys, values, stream);
}

Status rope_kv_store_tokens(float* qkv, int64_t row_stride, int64_t tokens, int64_t heads,
                            const int32_t* positions, const float* inv_freq, RopeLayout layout,
                            const DeviceKvView& keys, const DeviceKvView& values,
                            Stream stream) noexcept {
  if (qkv == nullptr || positions == nullptr || inv_freq == nullptr || tokens < 0 || heads < 0 ||
      row_stride < (heads + 2 * keys.kv_heads) * keys.head_dim) {
    return Status::kInvalidArgument;
  }
  if (!attention_supports(keys) || !attention_supports(values) || keys.type != values.type ||
      keys.kv_heads != values.kv_heads || keys.head_dim != values.head_dim ||
      keys.block_rows != values.block_rows) {
    return Status::kUnsupported;
  }
  const int64_t total =
      tokens * ((heads + keys.kv_heads) * (keys.head_dim / 2) + keys.kv_heads * keys.head_dim);
  if (total == 0) return Status::kOk;
  constexpr int kThreads = 256;
  const bool interleaved = layout == RopeLayout::kInterleaved;
  if (keys.type == KvType::kF32) {
    return launch(&rope_kv_store_kernel<float>, dim3(grid_for(total, kThreads)), dim3(kThreads), 0,
                  stream, true, qkv, row_stride, tokens, heads, positions, inv_freq, interleaved,
                  keys, values);
  }
  return launch(&rope_kv_store_kernel<__half>, dim3(grid_for(total, kThreads)), dim3(kThreads), 0,
                stream, true, qkv, row_stride, tokens, heads, positions, inv_freq, interleaved,
                keys, values);
}

Status attention(Context& context, const float* q, int64_t tokens, int64_t heads,
                 const DeviceKvView& keys, const DeviceKvView& values, const int32_t* positions,
                 bool causal, float scale, float* out) noexcept {
  return run_attention(context, q, heads * keys.head_dim, tokens, heads, keys, values, positions,
                       causal, false, scale, out, nullptr);
}

Status attention_tokens(Context& context, const float* q, int64_t q_stride, int64_t tokens,
                        int64_t heads, const DeviceKvView& keys, const DeviceKvView& values,
                        const int32_t* positions, float scale, float* out,
                        void* quantized) noexcept {
  if (q_stride < heads * keys.head_dim) return Status::kInvalidArgument;
  return run_attention(context, q, q_stride, tokens, heads, keys, values, positions, true, true,
                       scale, out, quantized);
}

namespace {

Status run_attention(Context& context, const float* q, int64_t q_stride, int64_t tokens,
                     int64_t heads, const DeviceKvView& keys, const DeviceKvView& values,
                     const int32_t* positions, bool causal, bool early, float scale, float* out,
                     void* quantized_out) noexcept {
  if (q == nullptr || out == nullptr || tokens < 0 || heads < 1 ||
      (causal && positions == nullptr)) {
    return Status::kInvalidArgument;
  }
  if (!attention_supports(keys) || !attention_supports(values) ||
      keys.head_dim != values.head_dim || keys.kv_heads != values.kv_heads ||
      keys.type != values.type ||
      (keys.token_tables == nullptr) != (values.token_tables == nullptr) ||
      heads % keys.kv_heads != 0 || tokens > 65535) {
    return Status::kUnsupported;
  }
  if (tokens == 0) return Status::kOk;
  Context::Impl& impl = context.impl();
  const int64_t dim = keys.head_dim;
  const QuantizedRows quantized = quantized_rows(quantized_out, tokens, heads * dim);
  SplitPlan plan{};
  plan.heads = heads;
  plan.q_stride = q_stride;
  plan.group = heads / keys.kv_heads;
  plan.head_groups = ceil_div(plan.group, kMaxGroup);
  plan.early = early && causal && tokens <= kGemvMaxTokens ? 1 : 0;
  // Splits for about four blocks per multiprocessor (a decode step has few heads: its rows
  // are spread thin, so that each block's chain of tiles is short), each of at least
  // plan.min_rows rows of the capacity; blocks size their share from the token's length.
  static const auto min_rows = static_cast<int>(
      std::min<int64_t>(env_positive("POLYINFER_GPU_ATTN_MIN_ROWS", kMinSplitRows), INT32_MAX));
  plan.min_rows = min_rows;
  // Decode steps on f16 rows of ≤ 128 dims take the tensor-core kernel (CUDA, sm_80 and later),
  // whose warps take 16 rows at a time: a split has at least kMmaSplitRows rows.
  // POLYINFER_GPU_ATTN_MMA=0: never; =1: wherever it can run (also single tokens over short
  // caches); unset: by the rule below.
  static const char* mma_env = std::getenv("POLYINFER_GPU_ATTN_MMA");
  static const bool mma_setting = mma_env == nullptr || *mma_env != '0';
  static const bool mma_setting_forced = mma_env != nullptr && *mma_env == '1';
  static const auto mma_rows = static_cast<int>(
      std::min<int64_t>(env_positive("POLYINFER_GPU_ATTN_MMA_ROWS", kMmaSplitRows), INT32_MAX));
  // One token over a cache of at most kMmaLeastRows rows keeps the f32-sum kernel: measured on
  // an H200 (q4_0 llama-3-8b, batch 1 after 128 prompt tokens, 192 rows; session 18, call 4),
  // 554.1 tok/s against 548.4 / 550.0 with the tensor cores; after 1024 tokens 517.4 / 512.5
  // against 512.1 / 512.7, and batch 8 there 1900 / 1893 against 1801 / 1800.
  const int64_t capacity = std::min(keys.positions, values.positions);
  plan.mma = POLYINFER_GPU_MMA_ATTENTION && mma_setting && impl.compute_major >= 8 &&
                     keys.type == KvType::kF16 && tokens <= kGemvMaxTokens &&
                     mma_fits(static_cast<int>(dim), kMaxGroup, kDecodeWarps) &&
                     q_stride % 4 == 0 && reinterpret_cast<uintptr_t>(q) % 16 == 0 &&
                     (tokens > 1 || capacity > kMmaLeastRows || mma_setting_forced)
                 ? 1
                 : 0;
  if (plan.mma != 0) plan.min_rows = mma_rows;
  const int64_t rows = capacity;
  const int64_t base_blocks = tokens * keys.kv_heads * plan.head_groups;
  // The tensor-core kernel's blocks hold 128 registers a thread: two fit a multiprocessor, so
  // more splits than two blocks per multiprocessor would run in waves (batch 8 after 1024
  // prompt tokens: 1921 tok/s with five splits, 1888 with nine).
  const int64_t per_multiprocessor = plan.mma != 0 ? 2 : 4;
  const int64_t wanted = ceil_div(per_multiprocessor * int64_t{impl.multiprocessors}, base_blocks);
  const int64_t most = std::max<int64_t>(1, ceil_div(rows, int64_t{plan.min_rows}));
  plan.splits =
      static_cast<int>(std::clamp<int64_t>(wanted, 1, std::min<int64_t>(most, kMaxSplits)));
  // Splits merged in thread-block clusters of up to 8 (Hopper), through shared memory, for one
  // token whose splits fit one cluster; otherwise through global memory (the last split to
  // arrive merges). Measured on an H200 (q4_0 llama-3-8b decode, session 14): one token after
  // 128 prompt tokens (6 splits) 537 against 525 tok/s without clusters; after 1024 (34 splits)
  // 492 against 500; 8 and 32 tokens +4 % after 128, +5 % and +16-17 % after 1024 without.
  // POLYINFER_GPU_ATTN_CLUSTER=0: never clusters (as on HIP and before Hopper); any other
  // value: clusters wherever there are splits.
  static const int cluster_setting = [] {
    const char* env = std::getenv("POLYINFER_GPU_ATTN_CLUSTER");
    return env == nullptr || *env == '\0' ? -1 : *env == '0' ? 0 : 1;
  }();
  // The splits as clusters take them: 9-15 become 8, one cluster, since a second merge level
  // (through global memory) cost more than the longer shares (POLYINFER_GPU_ATTN_ONE_CLUSTER=0
  // keeps them).
  static const bool one_cluster = env_switch("POLYINFER_GPU_ATTN_ONE_CLUSTER");
  int cluster_splits = plan.splits;
  if (one_cluster && plan.splits > kMaxCluster && plan.splits < 2 * kMaxCluster) {
    cluster_splits = kMaxCluster;
  }
  const bool clusters =
      cluster_setting == 1 || (cluster_setting < 0 && tokens == 1 && cluster_splits <= kMaxCluster);
  plan.cluster = 1;
  if (!POLYINFER_GPU_HIP && impl.compute_major >= 9 && plan.splits > 1 && clusters) {
    plan.splits = cluster_splits;
    plan.cluster = std::min(plan.splits, kMaxCluster);
    plan.splits = static_cast<int>(ceil_div(plan.splits, plan.cluster) * plan.cluster);
  }
  float* partials = nullptr;
  int* arrivals = nullptr;
  if (plan.splits > 1) {
    POLYINFER_GPU_TRY(impl.reserve(
        impl.partials, static_cast<uint64_t>(tokens * heads * plan.splits * (dim + 2)) * 4));
    partials = impl.partials.as<float>();
    POLYINFER_GPU_TRY(
        impl.reserve_counters(impl.arrivals, static_cast<uint64_t>(base_blocks) * sizeof(int)));
    arrivals = impl.arrivals.as<int>();
  }
  const auto run = [&]<int kDim>() {
    return launch_dim<kDim>(q, plan, tokens, keys, values, positions, causal, scale, partials,
                            arrivals, out, quantized, impl.stream);
  };
  switch (dim) {
    case 32:
      return run.template operator()<32>();
    case 64:
      return run.template operator()<64>();
    case 96:
      return run.template operator()<96>();
    case 128:
      return run.template operator()<128>();
    case 256:
      return run.template operator()<256>();
    default:
      return Status::kUnsupported;
  }
}

}  // namespace

}  // namespace polyinfer::inline v0::detail::gpu
