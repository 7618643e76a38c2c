// SPDX-License-Identifier: Apache-2.0
// Attention over the paged f16 / f32 KV cache: split-K ("flash decoding") partial softmax states
// per share of rows, merged by the last block to finish, in one launch; and storing rows into
// the cache.
#include <algorithm>
#include <type_traits>

#include "kernels/cuda/context.cuh"
#include "kernels/cuda/gemv.cuh"

namespace polyinfer::inline v0::detail::gpu {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxGroup = 8;            // query heads per block (more: several head groups)
constexpr int64_t kMinSplitRows = 32;   // fewer rows per split cost more in partials than they save
constexpr int kChunkRows = 256;         // rows whose scores a block holds in shared memory at once
constexpr int kMaxSplits = kChunkRows;  // the merge keeps a factor per split where the scores were

struct SplitPlan {
  int64_t heads;
  int64_t q_stride;     // floats between tokens' queries
  int64_t group;        // query heads per kv head
  int64_t head_groups;  // ceil(group / kMaxGroup)
  int splits;           // blocks per (token, head group); a token's rows are shared among them
};

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

// The first block-table entry of `token`'s sequence.
__device__ __forceinline__ void* const* token_blocks(const DeviceKvView& view, int64_t token) {
  return view.blocks + (view.token_tables != nullptr ? view.token_tables[token] : 0);
}

// Row `row` of kv head `kv_head`. 32-bit division (attention_supports() bounds the rows): the
// 64-bit one is a long subroutine, and it ran for every row.
template <typename T>
__device__ __forceinline__ T* kv_row(const DeviceKvView& view, void* const* blocks, int64_t row,
                                     int64_t kv_head) {
  const auto r = static_cast<uint32_t>(row);
  const auto block_rows = static_cast<uint32_t>(view.block_rows);
  const uint32_t block_index = r / block_rows;
  const uint32_t in_block = r - block_index * block_rows;
  auto* block = reinterpret_cast<T*>(static_cast<char*>(blocks[block_index]) + view.block_offset);
  return block + (int64_t{in_block} * view.kv_heads + kv_head) * view.head_dim;
}

// The warp's next kAhead rows (chunk + first + a·kWarps, lane's kValues values of kv head
// kv_head) as stored, past the chunk's `rows` clamped to its last: branch-free, so every
// block-table and row load is in flight before the first is used (a load guarded by a branch
// and converted inside it made each row a separate round trip).
template <int kValues, int kAhead, typename T>
__device__ __forceinline__ void load_rows(const DeviceKvView& view, void* const* blocks,
                                          int64_t chunk, int first, int rows, int64_t kv_head,
                                          int lane, Lanes<T, kValues> (&raw)[kAhead]) {
  const T* row[kAhead];
#pragma unroll
  for (int a = 0; a < kAhead; ++a) {
    row[a] = kv_row<const T>(view, blocks, chunk + min(first + a * kWarps, rows - 1), kv_head);
  }
#pragma unroll
  for (int a = 0; a < kAhead; ++a) {
    raw[a] = *reinterpret_cast<const Lanes<T, kValues>*>(row[a] + lane * kValues);
  }
}

// Sums v[h] (h < kGroup, a power of two ≤ 8) over the warp's lanes in kGroup + 1 + … shuffles
// instead of kGroup × 5: each step sends half of the values still held to the partner lane and
// keeps the other half. Lanes l with l % (32 / kGroup) == 0 end with the sum of head
// group_sum_head<kGroup>(l) in v[0].
template <int kGroup>
inline constexpr int kGroupSteps = kGroup >= 8   ? 3
                                   : kGroup >= 4 ? 2
                                   : kGroup >= 2 ? 1
                                                 : 0;

template <int kGroup>
__device__ __forceinline__ int group_sum_head(int lane) {
  int head = 0;
#pragma unroll
  for (int step = 0; step < kGroupSteps<kGroup>; ++step) {
    if ((lane & (16 >> step)) != 0) head += kGroup >> (step + 1);
  }
  return head;
}

template <int kGroup>
__device__ __forceinline__ void group_sum(float (&v)[kGroup], int lane) {
  static_assert(kGroup == 1 || kGroup == 2 || kGroup == 4 || kGroup == 8, "a power of two ≤ 8");
  static_assert(kWarp == 32, "offsets below are a 32-lane warp's");
#pragma unroll
  for (int step = 0; step < kGroupSteps<kGroup>; ++step) {
    const int offset = 16 >> step;
    const int half = kGroup >> (step + 1);
    const bool upper = (lane & offset) != 0;
#pragma unroll
    for (int i = 0; i < half; ++i) {
      const float send = upper ? v[i] : v[i + half];
      const float keep = upper ? v[i + half] : v[i];
      v[i] = keep + shfl_xor(send, offset);
    }
  }
#pragma unroll
  for (int offset = 16 >> kGroupSteps<kGroup>; offset >= 1; offset /= 2) {
    v[0] += shfl_xor(v[0], offset);
  }
}

// Block (split, kv head · head groups + head group, token) attends over its share of the
// token's rows, the share sized from the token's own length (so fixed launch shapes, as graph
// replay needs, still spread a short context over every split). It walks the share in chunks
// of kChunkRows: (1) the scores of the chunk's rows for its query heads into shared memory,
// the warps taking rows in turn, kAhead rows' loads in flight per warp; (2) per head, the
// chunk's max and exp(score − max), the running state rescaled once per chunk; (3) the
// value rows weighted by those, each lane holding kValues dims of every head. No step waits
// on the one before within a chunk, as a per-row online softmax would. With several splits,
// each writes its state {m, l, acc[dim]} per head, and the last block of the token's head
// group to finish (an arrival counter) merges them in split order and writes the output.
// Registers: head_dim ≤ 96 keeps three blocks per multiprocessor; larger heads take what their
// per-lane query, keys and sums need (capping them spilled).
template <int kValues, int kGroup, typename T, int kAhead>
__global__ void __launch_bounds__(kWarps* kWarp, kValues <= 3 ? 3 : 1)
    attention_split_kernel(const float* q, SplitPlan plan, DeviceKvView keys, DeviceKvView values,
                           const int32_t* positions, int causal, float scale, float* partials,
                           int* arrivals, float* out, QuantizedRows quantized) {
  constexpr int kDim = kValues * kWarp;
  __shared__ float shared_p[kGroup][kChunkRows];
  __shared__ float shared_acc[kWarps][kGroup][kDim];
  __shared__ float shared_m[kGroup];
  __shared__ float shared_l[kGroup];
  __shared__ float shared_correction[kGroup];
  pdl_begin();
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  const int split = static_cast<int>(blockIdx.x);
  const int64_t token = blockIdx.z;
  const int64_t kv_head = blockIdx.y / plan.head_groups;
  const int64_t first_head = kv_head * plan.group + (blockIdx.y % plan.head_groups) * kMaxGroup;
  const int count =
      static_cast<int>(min_i64(kGroup, kv_head * plan.group + plan.group - first_head));
  int64_t limit = min_i64(keys.positions, values.positions);
  if (causal) limit = max_i64(0, min_i64(int64_t{positions[token]} + 1, limit));
  const int64_t share = max_i64(kMinSplitRows, ceil_div(limit, plan.splits));
  const int active = static_cast<int>(max_i64(1, ceil_div(limit, share)));
  if (split >= active) return;
  const int64_t begin = split * share;
  const int64_t end = min_i64(begin + share, limit);

  float query[kGroup][kValues];
  float acc[kGroup][kValues];
#pragma unroll
  for (int g = 0; g < kGroup; ++g) {
#pragma unroll
    for (int e = 0; e < kValues; ++e) {
      acc[g][e] = 0.0f;
      query[g][e] =
          g < count
              ? q[token * plan.q_stride + (first_head + g) * kDim + lane * kValues + e] * scale
              : 0.0f;
    }
  }
  if (threadIdx.x < kGroup) {
    shared_m[threadIdx.x] = -INFINITY;
    shared_l[threadIdx.x] = 0.0f;
  }
  void* const* key_blocks = token_blocks(keys, token);
  void* const* value_blocks = token_blocks(values, token);
  for (int64_t chunk = begin; chunk < end; chunk += kChunkRows) {
    const int rows = static_cast<int>(min_i64(kChunkRows, end - chunk));
    // A chunk of one load batch per warp (decode shares) loads its value rows with its keys:
    // one memory round trip fewer.
    const bool single = rows <= kWarps * kAhead;
    Lanes<T, kValues> early[kAhead];
    if (single)
      load_rows<kValues, kAhead>(values, value_blocks, chunk, warp, rows, kv_head, lane, early);
    // (1) Scores.
    for (int first = warp; first < rows; first += kWarps * kAhead) {
      Lanes<T, kValues> raw[kAhead];
      load_rows<kValues, kAhead>(keys, key_blocks, chunk, first, rows, kv_head, lane, raw);
#pragma unroll
      for (int a = 0; a < kAhead; ++a) {
        const int r = first + a * kWarps;
        if (r >= rows) break;
        float key[kValues];
        to_floats(raw[a], key);
        float score[kGroup];
#pragma unroll
        for (int g = 0; g < kGroup; ++g) {
          score[g] = 0.0f;
#pragma unroll
          for (int e = 0; e < kValues; ++e) score[g] = fmaf(query[g][e], key[e], score[g]);
        }
        group_sum<kGroup>(score, lane);
        const int g = group_sum_head<kGroup>(lane);
        if (lane % (kWarp / kGroup) == 0 && g < count) shared_p[g][r] = score[0];
      }
    }
    __syncthreads();
    // (2) Per head: the chunk's max, p = exp(score − max), the running state.
    for (int g = warp; g < count; g += kWarps) {
      float m = -INFINITY;
      for (int r = lane; r < rows; r += kWarp) m = fmaxf(m, shared_p[g][r]);
      m = fmaxf(warp_max(m), shared_m[g]);
      float l = 0.0f;
      for (int r = lane; r < rows; r += kWarp) {
        const float p = expf(shared_p[g][r] - m);
        shared_p[g][r] = p;
        l += p;
      }
      l = warp_sum(l);
      if (lane == 0) {
        const float correction = shared_m[g] == -INFINITY ? 0.0f : expf(shared_m[g] - m);
        shared_correction[g] = correction;
        shared_l[g] = shared_l[g] * correction + l;
        shared_m[g] = m;
      }
    }
    __syncthreads();
    // (3) Weighted values.
#pragma unroll
    for (int g = 0; g < kGroup; ++g) {
      if (g < count) {
        const float correction = shared_correction[g];
#pragma unroll
        for (int e = 0; e < kValues; ++e) acc[g][e] *= correction;
      }
    }
    for (int first = warp; first < rows; first += kWarps * kAhead) {
      Lanes<T, kValues> raw[kAhead];
      if (single) {
#pragma unroll
        for (int a = 0; a < kAhead; ++a) raw[a] = early[a];
      } else {
        load_rows<kValues, kAhead>(values, value_blocks, chunk, first, rows, kv_head, lane, raw);
      }
#pragma unroll
      for (int a = 0; a < kAhead; ++a) {
        const int r = first + a * kWarps;
        if (r >= rows) break;
        float value[kValues];
        to_floats(raw[a], value);
#pragma unroll
        for (int g = 0; g < kGroup; ++g) {
          if (g < count) {
            const float p = shared_p[g][r];
#pragma unroll
            for (int e = 0; e < kValues; ++e) acc[g][e] = fmaf(p, value[e], acc[g][e]);
          }
        }
      }
    }
    __syncthreads();  // shared_p is the next chunk's
  }
#pragma unroll
  for (int g = 0; g < kGroup; ++g) {
#pragma unroll
    for (int e = 0; e < kValues; ++e) shared_acc[warp][g][lane * kValues + e] = acc[g][e];
  }
  __syncthreads();
  // A warp's 32 indices are 32 consecutive d of one head (kDim is a multiple of 32).
  for (int index = static_cast<int>(threadIdx.x); index < count * kDim; index += blockDim.x) {
    const int g = index / kDim;
    const int d = index % kDim;
    float weighted = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) weighted += shared_acc[w][g][d];
    const int64_t head_index = token * plan.heads + first_head + g;
    if (active == 1) {
      const float sum = shared_l[g];
      const float result = sum > 0.0f ? weighted / sum : 0.0f;
      out[head_index * kDim + d] = result;
      if (quantized.qs != nullptr)
        quantize_warp_block(result, quantized, head_index * kDim + d - d % 32);
    } else {
      float* state = partials + (head_index * plan.splits + split) * (kDim + 2);
      state[2 + d] = weighted;
      if (d == 0) {
        state[0] = shared_m[g];
        state[1] = shared_l[g];
      }
    }
  }
  if (active == 1) return;
  if (!arrives_last(arrivals + token * gridDim.y + blockIdx.y, active)) return;
  // Per head: the splits' max, each split's factor exp(m_s − max) (into shared_p) and the
  // total l; then each output sums its splits' values (coherent loads: other blocks wrote
  // these during this kernel).
  for (int g = warp; g < count; g += kWarps) {
    const float* states =
        partials + (token * plan.heads + first_head + g) * plan.splits * (kDim + 2);
    float m_max = -INFINITY;
    for (int s = lane; s < active; s += kWarp)
      m_max = fmaxf(m_max, load_coherent(states + s * (kDim + 2)));
    m_max = warp_max(m_max);
    float sum = 0.0f;
    for (int s = lane; s < active; s += kWarp) {
      const float factor =
          m_max == -INFINITY ? 0.0f : expf(load_coherent(states + s * (kDim + 2)) - m_max);
      shared_p[g][s] = factor;
      sum += factor * load_coherent(states + s * (kDim + 2) + 1);
    }
    sum = warp_sum(sum);
    if (lane == 0) shared_l[g] = sum;
  }
  __syncthreads();
  for (int index = static_cast<int>(threadIdx.x); index < count * kDim; index += blockDim.x) {
    const int g = index / kDim;
    const int d = index % kDim;
    const int64_t head_index = token * plan.heads + first_head + g;
    const float* values_d = partials + head_index * plan.splits * (kDim + 2) + 2 + d;
    float weighted = 0.0f;
#pragma unroll 8
    for (int s = 0; s < active; ++s) {
      weighted = fmaf(shared_p[g][s], load_coherent(values_d + s * (kDim + 2)), weighted);
    }
    const float sum = shared_l[g];
    const float result = sum > 0.0f ? weighted / sum : 0.0f;
    out[head_index * kDim + d] = result;
    if (quantized.qs != nullptr)
      quantize_warp_block(result, quantized, head_index * kDim + d - d % 32);
  }
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

// rope_kernel's rotation of pair i of a head at `position` (double, as the reference).
__device__ __forceinline__ void rotate_pair(float* first, float* second, int32_t position,
                                            float inv_freq) {
  const double angle = static_cast<double>(position) * static_cast<double>(inv_freq);
  double sin_angle = 0.0;
  double cos_angle = 0.0;
  sincos(angle, &sin_angle, &cos_angle);
  const double a = *first;
  const double b = *second;
  *first = static_cast<float>(a * cos_angle - b * sin_angle);
  *second = static_cast<float>(a * sin_angle + b * cos_angle);
}

// Index i < tokens·(heads + kv_heads)·half rotates one pair of a q or k head (k pairs are
// also stored); the indices after it store one v value each.
template <typename T>
__global__ void rope_kv_store_kernel(float* qkv, int64_t row_stride, int64_t tokens, int64_t heads,
                                     const int32_t* positions, const float* inv_freq,
                                     bool interleaved, DeviceKvView keys, DeviceKvView values) {
  pdl_begin();
  const int64_t dim = keys.head_dim;
  const int64_t half = dim / 2;
  const int64_t rotated_heads = heads + keys.kv_heads;
  const int64_t pairs = tokens * rotated_heads * half;
  const int64_t v_values = tokens * keys.kv_heads * dim;
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t index = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; index < pairs + v_values;
       index += stride) {
    if (index < pairs) {
      const int64_t i = index % half;
      const int64_t head = (index / half) % rotated_heads;
      const int64_t token = index / (half * rotated_heads);
      float* row = qkv + token * row_stride + head * dim;
      const int64_t first = interleaved ? 2 * i : i;
      const int64_t second = interleaved ? 2 * i + 1 : i + half;
      rotate_pair(row + first, row + second, positions[token], inv_freq[i]);
      if (head >= heads) {
        T* cached = kv_row<T>(keys, token_blocks(keys, token), positions[token], head - heads);
        store_value(cached + first, row[first]);
        store_value(cached + second, row[second]);
      }
    } else {
      const int64_t k = index - pairs;
      const int64_t token = k / (keys.kv_heads * dim);
      const int64_t value = k % (keys.kv_heads * dim);
      T* cached = kv_row<T>(values, token_blocks(values, token), positions[token], 0);
      store_value(cached + value, qkv[token * row_stride + rotated_heads * dim + value]);
    }
  }
}

template <int kValues>
Status launch_split(const float* q, const SplitPlan& plan, int64_t tokens, int64_t kv_heads,
                    const DeviceKvView& keys, const DeviceKvView& values, const int32_t* positions,
                    bool causal, float scale, float* partials, int* arrivals, float* out,
                    const QuantizedRows& quantized, Stream stream) noexcept {
  const dim3 grid(static_cast<unsigned>(plan.splits),
                  static_cast<unsigned>(kv_heads * plan.head_groups),
                  static_cast<unsigned>(tokens));
  using Kernel = void (*)(const float*, SplitPlan, DeviceKvView, DeviceKvView, const int32_t*, int,
                          float, float*, int*, float*, QuantizedRows);
  // Decode-sized steps have few blocks: more rows in flight per warp. Prompts have blocks
  // enough, and the registers would cost occupancy. Query heads per block: 1 (multi-head), up
  // to 4, up to 8 (and several blocks per kv head past that).
  constexpr int kAhead = kValues <= 4 ? 8 : 4;
  const bool ahead = tokens <= kGemvMaxTokens;
  const bool f32 = keys.type == KvType::kF32;
  const auto pick = [&]<int kGroup>() -> Kernel {
    if (f32) {
      return ahead ? &attention_split_kernel<kValues, kGroup, float, kAhead>
                   : &attention_split_kernel<kValues, kGroup, float, 2>;
    }
    return ahead ? &attention_split_kernel<kValues, kGroup, __half, kAhead>
                 : &attention_split_kernel<kValues, kGroup, __half, 2>;
  };
  const Kernel kernel = plan.group == 1   ? pick.template operator()<1>()
                        : plan.group <= 4 ? pick.template operator()<4>()
                                          : pick.template operator()<kMaxGroup>();
  return launch(kernel, grid, dim3(kWarps * kWarp), 0, stream, true, q, plan, keys, values,
                positions, causal ? 1 : 0, scale, partials, arrivals, out, quantized);
}

Status run_attention(Context& context, const float* q, int64_t q_stride, int64_t tokens,
                     int64_t heads, const DeviceKvView& keys, const DeviceKvView& values,
                     const int32_t* positions, bool causal, float scale, float* out,
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
                       causal, scale, out, nullptr);
}

Status attention_tokens(Context& context, const float* q, int64_t q_stride, int64_t tokens,
                        int64_t heads, const DeviceKvView& keys, const DeviceKvView& values,
                        const int32_t* positions, float scale, float* out,
                        void* quantized) noexcept {
  if (q_stride < heads * keys.head_dim) return Status::kInvalidArgument;
  return run_attention(context, q, q_stride, tokens, heads, keys, values, positions, true, scale,
                       out, quantized);
}

namespace {

Status run_attention(Context& context, const float* q, int64_t q_stride, int64_t tokens,
                     int64_t heads, const DeviceKvView& keys, const DeviceKvView& values,
                     const int32_t* positions, bool causal, float scale, float* out,
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
  // Splits for about four blocks per multiprocessor (a decode step has few heads: its rows
  // are spread thin, so that each warp's chain of dependent loads and sums is short), each of
  // at least kMinSplitRows rows of the capacity; blocks size their share from the token's
  // length.
  const int64_t rows = std::min(keys.positions, values.positions);
  const int64_t base_blocks = tokens * keys.kv_heads * plan.head_groups;
  const int64_t wanted = ceil_div(4 * int64_t{impl.multiprocessors}, base_blocks);
  const int64_t most = std::max<int64_t>(1, ceil_div(rows, kMinSplitRows));
  plan.splits =
      static_cast<int>(std::clamp<int64_t>(wanted, 1, std::min<int64_t>(most, kMaxSplits)));
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
  const Stream stream = impl.stream;
  Status status = Status::kUnsupported;
  switch (dim) {
    case 32:
      status = launch_split<1>(q, plan, tokens, keys.kv_heads, keys, values, positions, causal,
                               scale == 0.0f ? 1.0f / sqrtf(32.0f) : scale, partials, arrivals, out,
                               quantized, stream);
      break;
    case 64:
      status = launch_split<2>(q, plan, tokens, keys.kv_heads, keys, values, positions, causal,
                               scale == 0.0f ? 0.125f : scale, partials, arrivals, out, quantized,
                               stream);
      break;
    case 96:
      status = launch_split<3>(q, plan, tokens, keys.kv_heads, keys, values, positions, causal,
                               scale == 0.0f ? 1.0f / sqrtf(96.0f) : scale, partials, arrivals, out,
                               quantized, stream);
      break;
    case 128:
      status = launch_split<4>(q, plan, tokens, keys.kv_heads, keys, values, positions, causal,
                               scale == 0.0f ? 1.0f / sqrtf(128.0f) : scale, partials, arrivals,
                               out, quantized, stream);
      break;
    case 256:
      status = launch_split<8>(q, plan, tokens, keys.kv_heads, keys, values, positions, causal,
                               scale == 0.0f ? 0.0625f : scale, partials, arrivals, out, quantized,
                               stream);
      break;
    default:
      break;
  }
  return status;
}

}  // namespace

}  // namespace polyinfer::inline v0::detail::gpu
