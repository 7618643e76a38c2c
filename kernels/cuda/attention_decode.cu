// SPDX-License-Identifier: Apache-2.0
// Attention over the paged f16 KV cache: split-K ("flash decoding") partial softmax states per
// block of rows, combined by a second kernel; and storing rows into the cache.
#include <algorithm>
#include <type_traits>

#include "kernels/cuda/context.cuh"
#include "kernels/cuda/gemv.cuh"

namespace polyinfer::inline v0::detail::gpu {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxGroup = 8;           // query heads per block (more: several head groups)
constexpr int64_t kMinSplitRows = 16;  // fewer rows per split cost more in partials than they save

struct SplitPlan {
  int64_t heads;
  int64_t q_stride;     // floats between tokens' queries
  int64_t group;        // query heads per kv head
  int64_t head_groups;  // ceil(group / kMaxGroup)
  int64_t rows_per_split;
  int splits;
};

// Loads kValues consecutive halves (kValues·2 bytes, aligned to that when kValues ∈ {2, 4, 8}).
template <int kValues>
__device__ __forceinline__ void load_values(const __half* p, float (&out)[kValues]) {
  if constexpr (kValues == 2 || kValues == 4 || kValues == 8) {
    using Vector =
        std::conditional_t<kValues == 2, uint32_t, std::conditional_t<kValues == 4, uint2, uint4>>;
    const Vector v = *reinterpret_cast<const Vector*>(p);
    const __half2* pairs = reinterpret_cast<const __half2*>(&v);
#pragma unroll
    for (int i = 0; i < kValues / 2; ++i) {
      const float2 f = __half22float2(pairs[i]);
      out[2 * i] = f.x;
      out[2 * i + 1] = f.y;
    }
  } else {
#pragma unroll
    for (int i = 0; i < kValues; ++i) out[i] = __half2float(p[i]);
  }
}

// Loads kValues consecutive floats.
template <int kValues>
__device__ __forceinline__ void load_values(const float* p, float (&out)[kValues]) {
  if constexpr (kValues == 4) {
    const float4 v = *reinterpret_cast<const float4*>(p);
    out[0] = v.x;
    out[1] = v.y;
    out[2] = v.z;
    out[3] = v.w;
  } else {
#pragma unroll
    for (int i = 0; i < kValues; ++i) out[i] = p[i];
  }
}

// The first block-table entry of `token`'s sequence.
__device__ __forceinline__ void* const* token_blocks(const DeviceKvView& view, int64_t token) {
  return view.blocks + (view.token_tables != nullptr ? view.token_tables[token] : 0);
}

template <typename T>
__device__ __forceinline__ T* kv_row(const DeviceKvView& view, void* const* blocks, int64_t row,
                                     int64_t kv_head) {
  auto* block =
      reinterpret_cast<T*>(static_cast<char*>(blocks[row / view.block_rows]) + view.block_offset);
  return block + ((row % view.block_rows) * view.kv_heads + kv_head) * view.head_dim;
}

// Block (split, kv head · head groups + head group, token). Each warp walks rows
// begin + warp, begin + warp + kWarps, … keeping an online softmax state (max m, sum l,
// weighted values) per query head in registers, lane i holding dims i·kValues…; the warps'
// states are merged in shared memory and written as the split's partial state (or, with one
// split, as the output).
template <int kValues, typename T, int kAhead>
__global__ void __launch_bounds__(kWarps* kWarp)
    attention_split_kernel(const float* q, SplitPlan plan, DeviceKvView keys, DeviceKvView values,
                           const int32_t* positions, int causal, float scale, float* partials,
                           float* out, QuantizedRows quantized) {
  constexpr int kDim = kValues * kWarp;
  __shared__ float shared_acc[kWarps][kMaxGroup][kDim];
  __shared__ float shared_m[kWarps][kMaxGroup];
  __shared__ float shared_l[kWarps][kMaxGroup];
  pdl_begin();
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  const int split = static_cast<int>(blockIdx.x);
  const int64_t token = blockIdx.z;
  const int64_t kv_head = blockIdx.y / plan.head_groups;
  const int64_t first_head = kv_head * plan.group + (blockIdx.y % plan.head_groups) * kMaxGroup;
  const int count =
      static_cast<int>(min_i64(kMaxGroup, kv_head * plan.group + plan.group - first_head));
  int64_t limit = min_i64(keys.positions, values.positions);
  if (causal) limit = max_i64(0, min_i64(int64_t{positions[token]} + 1, limit));
  const int64_t begin = split * plan.rows_per_split;
  const int64_t end = min_i64(begin + plan.rows_per_split, limit);

  float query[kMaxGroup][kValues];
  float m[kMaxGroup];
  float l[kMaxGroup];
  float acc[kMaxGroup][kValues];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int e = 0; e < kValues; ++e) {
      acc[g][e] = 0.0f;
      query[g][e] =
          g < count
              ? q[token * plan.q_stride + (first_head + g) * kDim + lane * kValues + e] * scale
              : 0.0f;
    }
  }
  void* const* key_blocks = token_blocks(keys, token);
  void* const* value_blocks = token_blocks(values, token);
  // The warp's next kAhead rows are loaded before any is used: one memory round trip per
  // kAhead rows instead of one per row (decode steps, whose few blocks are latency-bound; the
  // registers it takes cost occupancy in prompts, which run kAhead 1). Rows are still folded
  // into the softmax state one by one, in the same order.
  for (int64_t first = begin + warp; first < end; first += kWarps * kAhead) {
    float key[kAhead][kValues];
    float value[kAhead][kValues];
#pragma unroll
    for (int a = 0; a < kAhead; ++a) {
      const int64_t row = first + a * kWarps;
      if (row < end) {
        load_values<kValues>(kv_row<const T>(keys, key_blocks, row, kv_head) + lane * kValues,
                             key[a]);
        load_values<kValues>(kv_row<const T>(values, value_blocks, row, kv_head) + lane * kValues,
                             value[a]);
      }
    }
#pragma unroll
    for (int a = 0; a < kAhead; ++a) {
      if (first + a * kWarps >= end) break;
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g) {
        if (g < count) {
          float score = 0.0f;
#pragma unroll
          for (int e = 0; e < kValues; ++e) score = fmaf(query[g][e], key[a][e], score);
          score = warp_sum(score);
          const float m_new = fmaxf(m[g], score);
          const float correction = expf(m[g] - m_new);
          const float p = expf(score - m_new);
          l[g] = l[g] * correction + p;
#pragma unroll
          for (int e = 0; e < kValues; ++e) {
            acc[g][e] = fmaf(acc[g][e], correction, p * value[a][e]);
          }
          m[g] = m_new;
        }
      }
    }
  }
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
#pragma unroll
    for (int e = 0; e < kValues; ++e) shared_acc[warp][g][lane * kValues + e] = acc[g][e];
    if (lane == 0) {
      shared_m[warp][g] = m[g];
      shared_l[warp][g] = l[g];
    }
  }
  __syncthreads();
  for (int index = static_cast<int>(threadIdx.x); index < count * kDim; index += blockDim.x) {
    const int g = index / kDim;
    const int d = index % kDim;
    float m_max = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) m_max = fmaxf(m_max, shared_m[w][g]);
    float sum = 0.0f;
    float weighted = 0.0f;
    if (m_max != -INFINITY) {
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        const float factor = expf(shared_m[w][g] - m_max);
        sum += factor * shared_l[w][g];
        weighted += factor * shared_acc[w][g][d];
      }
    }
    const int64_t head_index = token * plan.heads + first_head + g;
    if (plan.splits == 1) {
      // A warp's 32 indices are 32 consecutive d of one head (kDim is a multiple of 32).
      const float result = sum > 0.0f ? weighted / sum : 0.0f;
      out[head_index * kDim + d] = result;
      if (quantized.qs != nullptr)
        quantize_warp_block(result, quantized, head_index * kDim + d - d % 32);
    } else {
      float* state = partials + (head_index * plan.splits + split) * (kDim + 2);
      state[2 + d] = weighted;
      if (d == 0) {
        state[0] = m_max;
        state[1] = sum;
      }
    }
  }
}

// One block per (token, head): merges the splits' states {m, l, acc[dim]}.
__global__ void attention_combine_kernel(const float* partials, int splits, int64_t dim, float* out,
                                         QuantizedRows quantized) {
  pdl_begin();
  const int64_t head_index = blockIdx.x;
  const float* states = partials + head_index * splits * (dim + 2);
  float m_max = -INFINITY;
#pragma unroll 8
  for (int s = 0; s < splits; ++s) m_max = fmaxf(m_max, states[s * (dim + 2)]);
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
    float sum = 0.0f;
    float weighted = 0.0f;
    if (m_max != -INFINITY) {
#pragma unroll 8
      for (int s = 0; s < splits; ++s) {
        const float* state = states + s * (dim + 2);
        const float factor = expf(state[0] - m_max);
        sum += factor * state[1];
        weighted += factor * state[2 + d];
      }
    }
    const float result = sum > 0.0f ? weighted / sum : 0.0f;
    out[head_index * dim + d] = result;  // dim is a multiple of 32: whole warps, one block each
    if (quantized.qs != nullptr)
      quantize_warp_block(result, quantized, head_index * dim + d - d % 32);
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
                    bool causal, float scale, float* partials, float* out,
                    const QuantizedRows& quantized, Stream stream) noexcept {
  const dim3 grid(static_cast<unsigned>(plan.splits),
                  static_cast<unsigned>(kv_heads * plan.head_groups),
                  static_cast<unsigned>(tokens));
  constexpr int kAhead = kValues <= 4 ? 4 : 2;
  const bool ahead = tokens <= kGemvMaxTokens;  // decode-sized steps
  using Kernel = void (*)(const float*, SplitPlan, DeviceKvView, DeviceKvView, const int32_t*, int,
                          float, float*, float*, QuantizedRows);
  Kernel kernel = nullptr;
  if (keys.type == KvType::kF32) {
    kernel = ahead ? &attention_split_kernel<kValues, float, kAhead>
                   : &attention_split_kernel<kValues, float, 1>;
  } else {
    kernel = ahead ? &attention_split_kernel<kValues, __half, kAhead>
                   : &attention_split_kernel<kValues, __half, 1>;
  }
  return launch(kernel, grid, dim3(kWarps * kWarp), 0, stream, true, q, plan, keys, values,
                positions, causal ? 1 : 0, scale, partials, out, quantized);
}

Status run_attention(Context& context, const float* q, int64_t q_stride, int64_t tokens,
                     int64_t heads, const DeviceKvView& keys, const DeviceKvView& values,
                     const int32_t* positions, bool causal, float scale, float* out,
                     void* quantized) noexcept;

}  // namespace

bool attention_supports(const DeviceKvView& view) noexcept {
  const int64_t d = view.head_dim;
  return (view.type == KvType::kF16 || view.type == KvType::kF32) &&
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
  // Enough splits for about two blocks per multiprocessor, each of at least kMinSplitRows rows.
  const int64_t rows = std::min(keys.positions, values.positions);
  const int64_t base_blocks = tokens * keys.kv_heads * plan.head_groups;
  const int64_t wanted = ceil_div(2 * int64_t{impl.multiprocessors}, base_blocks);
  const int64_t most = std::max<int64_t>(1, ceil_div(rows, kMinSplitRows));
  int64_t splits = std::clamp<int64_t>(wanted, 1, std::min<int64_t>(most, 1024));
  plan.rows_per_split = std::max<int64_t>(1, ceil_div(rows, splits));
  splits = std::max<int64_t>(1, ceil_div(rows, plan.rows_per_split));
  plan.splits = static_cast<int>(splits);
  float* partials = nullptr;
  if (plan.splits > 1) {
    POLYINFER_GPU_TRY(impl.reserve(impl.partials,
                                   static_cast<uint64_t>(tokens * heads * splits * (dim + 2)) * 4));
    partials = impl.partials.as<float>();
  }
  const Stream stream = impl.stream;
  Status status = Status::kUnsupported;
  switch (dim) {
    case 32:
      status = launch_split<1>(q, plan, tokens, keys.kv_heads, keys, values, positions, causal,
                               scale == 0.0f ? 1.0f / sqrtf(32.0f) : scale, partials, out,
                               quantized, stream);
      break;
    case 64:
      status = launch_split<2>(q, plan, tokens, keys.kv_heads, keys, values, positions, causal,
                               scale == 0.0f ? 0.125f : scale, partials, out, quantized, stream);
      break;
    case 96:
      status = launch_split<3>(q, plan, tokens, keys.kv_heads, keys, values, positions, causal,
                               scale == 0.0f ? 1.0f / sqrtf(96.0f) : scale, partials, out,
                               quantized, stream);
      break;
    case 128:
      status = launch_split<4>(q, plan, tokens, keys.kv_heads, keys, values, positions, causal,
                               scale == 0.0f ? 1.0f / sqrtf(128.0f) : scale, partials, out,
                               quantized, stream);
      break;
    case 256:
      status = launch_split<8>(q, plan, tokens, keys.kv_heads, keys, values, positions, causal,
                               scale == 0.0f ? 0.0625f : scale, partials, out, quantized, stream);
      break;
    default:
      break;
  }
  if (status != Status::kOk || plan.splits == 1) return status;
  return launch(&attention_combine_kernel, dim3(static_cast<unsigned>(tokens * heads)),
                dim3(static_cast<unsigned>(std::min<int64_t>(dim, 256))), 0, stream, true,
                static_cast<const float*>(partials), plan.splits, dim, out, quantized);
}

}  // namespace

}  // namespace polyinfer::inline v0::detail::gpu
