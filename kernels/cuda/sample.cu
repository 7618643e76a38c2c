// SPDX-License-Identifier: Apache-2.0
// sample_rows(): sample_pick() (kernels/ops.hpp) on the device, one block per logits row, so
// that sampling copies one pick per row instead of the vocabulary's logits.
//
// Shaped logits (temperature, penalty) are the raw row divided as it is read, or with a
// penalty the scratch row the kernel writes first. Sorted rules (top-k, top-p) take the first
// candidates in the host's order (higher logit, then lower id): a radix select over
// order-preserving keys finds the last one (ties split by a second select over the ids), the
// candidates are gathered and sorted (bitonic) in shared memory, and their weights walked in
// double, in order, as sample_pick() does. Unsorted rules (temperature and min-p alone) draw
// in id order: each thread sums a contiguous run of ids, a block scan of those sums finds the
// run holding the draw, and that thread walks it. Every pass over the row keeps eight loads in
// flight per thread: one block per row is otherwise bound by load latency.
#include <cfloat>
#include <climits>

#include "kernels/cuda/cuda_common.cuh"

namespace polyinfer::inline v0::detail::gpu {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / kWarp;
constexpr int kCandidates = 2 * kSampleCandidates;  // gathered and sorted at most
constexpr int kBins = 128;                          // the first pass: bins of 1/8 below the max
constexpr float kBinsPerUnit = 8.0f;
static_assert(kCandidates == 2 * kThreads && kWarps <= kWarp);

/// Larger float, larger key; ±0 alike (they compare equal on the host); NaN below everything.
__device__ __forceinline__ uint32_t order_key(float v) {
  if (v != v) return 0u;
  const uint32_t bits = v == 0.0f ? 0u : __float_as_uint(v);
  return (bits & 0x80000000u) != 0u ? ~bits : bits | 0x80000000u;
}

__device__ __forceinline__ float key_value(uint32_t key) {
  return __uint_as_float((key & 0x80000000u) != 0u ? key & 0x7FFFFFFFu : ~key);
}

/// A row's shaped logits: the scratch row the kernel wrote (with a penalty), or the raw row
/// divided by the temperature as it is read.
struct Shaped {
  const float* values;
  float divisor;  // 0: values are shaped already
  __device__ __forceinline__ float operator()(float v) const {
    return divisor > 0.0f ? v / divisor : v;
  }
};

/// fn(i, shaped value) over the row, strided over the block.
template <typename Fn>
__device__ __forceinline__ void for_each_shaped(const Shaped& shaped, int64_t n, const Fn& fn) {
  for_each_strided<8>(shaped.values, n, [&](int64_t i, float v) { fn(i, shaped(v)); });
}

/// fn(i, shaped value) for i in [begin, end) in order, until fn returns true; eight loads in
/// flight.
template <typename Fn>
__device__ __forceinline__ void for_each_in_run(const Shaped& shaped, int64_t begin, int64_t end,
                                                const Fn& fn) {
  constexpr int kUnroll = 8;
  for (int64_t base = begin; base < end; base += kUnroll) {
    float v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) v[u] = base + u < end ? shaped.values[base + u] : 0.0f;
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (base + u < end && fn(base + u, shaped(v[u]))) return;
    }
  }
}

struct Shared {
  uint32_t keys[kCandidates];
  int32_t ids[kCandidates];
  double weights[kCandidates];  // the candidates' weights; the id-order scan's prefix sums
  uint32_t bin_count[kBins];
  unsigned long long bin_mass[kBins];  // weights in units of 2^-40
  double sums[kWarps];
  unsigned long long best[kWarps];
  float floats[kWarps];
  uint32_t slots;
  int32_t chosen;
};

__device__ __forceinline__ double block_sum(double value, Shared& sh) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  for (int offset = kWarp / 2; offset > 0; offset /= 2) value += shfl_xor(value, offset);
  __syncthreads();
  if (lane == 0) sh.sums[warp] = value;
  __syncthreads();
  value = lane < kWarps ? sh.sums[lane] : 0.0;
  for (int offset = kWarp / 2; offset > 0; offset /= 2) value += shfl_xor(value, offset);
  return value;  // the same in every lane: each butterfly step adds the same pair
}

__device__ __forceinline__ unsigned long long block_max(unsigned long long value, Shared& sh) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    const unsigned long long other = shfl_xor(value, offset);
    value = other > value ? other : value;
  }
  __syncthreads();
  if (lane == 0) sh.best[warp] = value;
  __syncthreads();
  value = lane < kWarps ? sh.best[lane] : 0ull;
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    const unsigned long long other = shfl_xor(value, offset);
    value = other > value ? other : value;
  }
  return value;
}

/// Candidates of the unsorted rules: the draw in id order over every id's weight.
__device__ int32_t draw_in_id_order(const Shaped& shaped, int64_t vocab, float max_logit,
                                    const SampleSpec& spec, Shared& sh) {
  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid % kWarp;
  const int warp = tid / kWarp;

  // Thread t owns ids [t·run, (t + 1)·run).
  const int64_t run = ceil_div(vocab, kThreads);
  const int64_t begin = min_i64(tid * run, vocab);
  const int64_t end = min_i64(begin + run, vocab);
  const auto weight = [&](float x) {
    const double w = expf(x - max_logit);
    return w < spec.min_p ? 0.0 : w;  // min_p 0: every weight stays
  };
  double sum = 0.0;
  int32_t last = -1;
  for_each_in_run(shaped, begin, end, [&](int64_t i, float x) {
    const double w = weight(x);
    if (w != 0.0) {
      sum += w;
      last = static_cast<int32_t>(i);
    }
    return false;
  });
  // Inclusive scan of the runs' sums: within warps, then over the warps' totals.
  double inclusive = sum;
  for (int offset = 1; offset < kWarp; offset *= 2) {
    const double below = shfl_up(inclusive, offset);
    if (lane >= offset) inclusive += below;
  }
  if (lane == kWarp - 1) sh.sums[warp] = inclusive;
  if (tid == 0) sh.chosen = -1;
  __syncthreads();
  if (warp == 0) {
    double total = lane < kWarps ? sh.sums[lane] : 0.0;
    for (int offset = 1; offset < kWarp; offset *= 2) {
      const double below = shfl_up(total, offset);
      if (lane >= offset) total += below;
    }
    if (lane < kWarps) sh.sums[lane] = total;
  }
  __syncthreads();
  if (warp > 0) inclusive += sh.sums[warp - 1];
  sh.weights[tid] = inclusive;
  __syncthreads();
  const double exclusive = tid > 0 ? sh.weights[tid - 1] : 0.0;
  const double target = spec.uniform * sh.weights[kThreads - 1];
  // The runs' intervals [exclusive, inclusive) are disjoint: at most one thread claims.
  if (sum > 0.0 && exclusive <= target && target < inclusive) {
    double cumulative = exclusive;
    int32_t chosen = last;
    for_each_in_run(shaped, begin, end, [&](int64_t i, float x) {
      const double w = weight(x);
      if (w == 0.0) return false;
      cumulative += w;
      if (!(target < cumulative)) return false;
      chosen = static_cast<int32_t>(i);
      return true;
    });
    sh.chosen = chosen;
  }
  // Past the end by rounding: the last id with weight, as the host's walk ends.
  const unsigned long long last_id = block_max(static_cast<unsigned long long>(last + 1), sh);
  return sh.chosen >= 0 ? sh.chosen : static_cast<int32_t>(last_id) - 1;
}

/// Candidates of the sorted rules: −1 (deferred) when they keep more than kCandidates.
///
/// Every value within δ of the maximum is gathered into shared memory in one pass, which also
/// counts them and, for top-p over the whole vocabulary, sums the weights within and beyond.
/// δ comes from a first pass's histogram, then is searched (×4 up to 64, then everything, when
/// too few; bisected when too many) until the gathered values hold the first `count` candidates or
/// the whole nucleus: the set {max − x < δ} holds every tie of its last value, so sorting it gives
/// the host's order exactly.
__device__ int32_t draw_sorted(const Shaped& shaped, int64_t vocab, float max_logit,
                               const SampleSpec& spec, Shared& sh) {
  const int tid = static_cast<int>(threadIdx.x);
  const int64_t count = spec.top_k > 0 && spec.top_k < vocab ? spec.top_k : vocab;
  const bool nucleus_of_all = count == vocab && spec.top_p < 1.0f;
  if (count > kSampleCandidates && !nucleus_of_all) return -1;
  const int64_t need = nucleus_of_all ? 1 : count;

  // The first δ: values within 16 of the maximum counted in bins of 1/8 (with their weights
  // in fixed point, exact sums in any order), the weight beyond summed; δ is the edge of the
  // first bin that holds enough.
  for (int b = tid; b < kBins; b += kThreads) {
    sh.bin_count[b] = 0;
    sh.bin_mass[b] = 0;
  }
  __syncthreads();
  double beyond = 0.0;
  for_each_shaped(shaped, vocab, [&](int64_t, float x) {
    const float bin = (max_logit - x) * kBinsPerUnit;
    if (bin < kBins) {
      atomicAdd(&sh.bin_count[static_cast<int>(bin)], 1u);
      if (nucleus_of_all) {
        atomicAdd(&sh.bin_mass[static_cast<int>(bin)],
                  static_cast<unsigned long long>(expf(x - max_logit) * 0x1p40f));
      }
    } else if (nucleus_of_all && x == x) {
      beyond += expf(x - max_logit);
    }
  });
  if (nucleus_of_all) beyond = block_sum(beyond, sh);
  __syncthreads();
  float low = 0.0f;       // δ that gathered too few
  float high = INFINITY;  // δ that gathered too many
  float delta = 4.0f * kBins / kBinsPerUnit;
  {
    double total = beyond;
    for (int b = 0; b < kBins; ++b) total += static_cast<double>(sh.bin_mass[b]) * 0x1p-40;
    uint32_t cumulative = 0;
    unsigned long long mass = 0;
    low = kBins / kBinsPerUnit;
    for (int b = 0; b < kBins; ++b) {
      cumulative += sh.bin_count[b];
      mass += sh.bin_mass[b];
      if (cumulative >= need && (!nucleus_of_all || static_cast<double>(mass) * 0x1p-40 >=
                                                        spec.top_p * total * (1.0 + 1e-5))) {
        low = static_cast<float>(b) / kBinsPerUnit;
        delta = static_cast<float>(b + 1) / kBinsPerUnit;
        if (cumulative > kCandidates) {  // one bin holds too many: bisect within it
          high = delta;
          delta = 0.5f * (low + high);
        }
        break;
      }
    }
  }
  uint32_t gathered = 0;
  double rest = 0.0;  // Σ weights below τ
  for (int attempt = 0;; ++attempt) {
    if (attempt == 6) return -1;  // ties or a wide nucleus: not worth more passes
    if (tid == 0) sh.slots = 0;
    __syncthreads();
    double above = 0.0;
    double below = 0.0;
    for_each_shaped(shaped, vocab, [&](int64_t i, float x) {
      if (delta == INFINITY ? x == x : max_logit - x < delta) {  // the first pass's bins
        const uint32_t slot = atomicAdd(&sh.slots, 1u);
        if (slot < kCandidates) {
          sh.keys[slot] = order_key(x);
          sh.ids[slot] = static_cast<int32_t>(i);
        }
        if (nucleus_of_all) above += expf(x - max_logit);
      } else if (nucleus_of_all && x == x) {
        below += expf(x - max_logit);
      }
    });
    if (nucleus_of_all) {
      above = block_sum(above, sh);
      below = block_sum(below, sh);
    }
    __syncthreads();
    const uint32_t found = sh.slots;
    __syncthreads();  // read by all before the next attempt resets it
    // Enough: the first `need` candidates, and for the nucleus most of the mass (a margin for
    // the f32 weights here against the double ones of the walk).
    const bool enough = found >= need && (!nucleus_of_all || found == vocab ||
                                          above >= spec.top_p * (above + below) * (1.0 + 1e-5));
    if (enough && found <= kCandidates) {
      gathered = found;
      rest = below;
      break;
    }
    if (found > kCandidates) {
      if (delta == INFINITY) return -1;  // more than kCandidates values carry weight
      high = delta;
      delta = 0.5f * (low + high);
    } else {
      low = delta;
      // Past 64 below the maximum weights are below e^-64: take everything.
      delta = high < INFINITY ? 0.5f * (low + high) : delta < 64.0f ? 4.0f * delta : INFINITY;
    }
    if (high < INFINITY && !(high - low > 1e-6f * (1.0f + low))) return -1;  // ties, flat nucleus
  }

  // Bitonic sort of the gathered values (two per thread): higher key first, then lower id.
  uint32_t size = 1;
  while (size < gathered) size *= 2;
  for (uint32_t t = static_cast<uint32_t>(tid); t < size; t += kThreads) {
    if (t >= gathered) {
      sh.keys[t] = 0;  // after every candidate: the lowest key, an id above any
      sh.ids[t] = INT_MAX;
    }
  }
  __syncthreads();
  for (uint32_t span = 2; span <= size; span *= 2) {
    for (uint32_t stride = span / 2; stride > 0; stride /= 2) {
      for (uint32_t t = static_cast<uint32_t>(tid); t < size; t += kThreads) {
        const uint32_t p = t ^ stride;
        if (p <= t) continue;
        const uint32_t ka = sh.keys[t];
        const uint32_t kb = sh.keys[p];
        const int32_t ia = sh.ids[t];
        const int32_t ib = sh.ids[p];
        const bool b_first = kb > ka || (kb == ka && ib < ia);
        if (b_first == ((t & span) == 0)) {
          sh.keys[t] = kb;
          sh.keys[p] = ka;
          sh.ids[t] = ib;
          sh.ids[p] = ia;
        }
      }
      __syncthreads();
    }
  }
  const auto gathered_count = static_cast<uint32_t>(nucleus_of_all ? gathered : count);

  // Weights relative to the first (largest) candidate, as on the host.
  for (uint32_t t = static_cast<uint32_t>(tid); t < gathered_count; t += kThreads) {
    sh.weights[t] = exp(static_cast<double>(key_value(sh.keys[t])) - max_logit);
  }
  __syncthreads();
  if (tid == 0) {
    double total = 0.0;
    for (uint32_t i = 0; i < gathered_count; ++i) total += sh.weights[i];
    total += rest;
    uint32_t kept = gathered_count;
    bool deferred = false;
    if (spec.top_p < 1.0f) {  // the smallest prefix reaching top_p
      double cumulative = 0.0;
      uint32_t i = 0;
      for (; i < gathered_count; ++i) {
        cumulative += sh.weights[i];
        if (cumulative >= spec.top_p * total) break;
      }
      if (i < gathered_count) {
        kept = i + 1;
      } else {
        deferred = count > gathered_count;  // the nucleus is larger than the candidates
      }
    }
    if (deferred) {
      sh.chosen = -1;
    } else {
      total = 0.0;
      for (uint32_t i = 0; i < kept; ++i) {
        if (sh.weights[i] < spec.min_p) sh.weights[i] = 0.0;
        total += sh.weights[i];
      }
      const double target = spec.uniform * total;
      double cumulative = 0.0;
      uint32_t chosen = 0;
      for (uint32_t i = 0; i < kept; ++i) {
        if (sh.weights[i] == 0.0) continue;
        chosen = i;
        cumulative += sh.weights[i];
        if (target < cumulative) break;
      }
      sh.chosen = sh.ids[chosen];
    }
  }
  __syncthreads();
  return sh.chosen;
}

__global__ void __launch_bounds__(kThreads)
    sample_kernel(const float* logits, int64_t vocab, const SampleSpec* specs,
                  const int32_t* penalized, float* scratch, SamplePick* out) {
  __shared__ Shared sh;
  pdl_begin();
  const int tid = static_cast<int>(threadIdx.x);
  const float* row = logits + int64_t{blockIdx.x} * vocab;
  float* written = scratch + int64_t{blockIdx.x} * vocab;
  const SampleSpec spec = specs[blockIdx.x];
  const bool penalty = spec.repetition_penalty != 1.0f && spec.penalized_count > 0;

  // The raw distribution (for the log-probabilities); with a penalty, the shaped row. Eight
  // values at a time: their maximum, then one rescale (no branch per value).
  float local_max = -INFINITY;
  float local_sum = 0.0f;  // Σ exp(v − local_max)
  constexpr int kUnroll = 8;
  for (int64_t base = tid; base < vocab; base += int64_t{kThreads} * kUnroll) {
    float v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = base + int64_t{u} * kThreads;
      v[u] = i < vocab ? row[i] : -INFINITY;
    }
    float group_max = local_max;
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) group_max = v[u] > group_max ? v[u] : group_max;  // no NaN
    if (penalty) {
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t i = base + int64_t{u} * kThreads;
        if (i < vocab) written[i] = spec.temperature > 0.0f ? v[u] / spec.temperature : v[u];
      }
    }
    if (!(group_max > -INFINITY)) continue;  // nothing finite yet
    float sum = local_sum > 0.0f ? local_sum * expf(local_max - group_max) : 0.0f;
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) sum += v[u] > -INFINITY ? expf(v[u] - group_max) : 0.0f;
    local_sum = sum;
    local_max = group_max;
  }
  const float raw_max = gpu::block_max(local_max, sh.floats);
  const double raw_sum =
      block_sum(local_sum > 0.0f ? double{local_sum * expf(local_max - raw_max)} : 0.0, sh);
  if (penalty) {
    for (int j = tid; j < spec.penalized_count; j += kThreads) {
      const int32_t id = penalized[spec.penalized_begin + j];
      if (id < 0 || id >= vocab) continue;
      const float v = row[id];
      const float p = v > 0 ? v / spec.repetition_penalty : v * spec.repetition_penalty;
      written[id] = spec.temperature > 0.0f ? p / spec.temperature : p;
    }
    __syncthreads();  // the shaped row, written by the whole block, is read by the whole block
  }
  const Shaped shaped = penalty ? Shaped{written, 0.0f} : Shaped{row, spec.temperature};
  // The shaped maximum: the raw one divided (division keeps the order), or with a penalty
  // another pass.
  float max_logit = shaped(raw_max);
  if (penalty) {
    float local = -INFINITY;
    for_each_shaped(shaped, vocab, [&](int64_t, float x) { local = fmaxf(local, x); });
    max_logit = gpu::block_max(local, sh.floats);
  }

  int32_t id;
  if (spec.temperature == 0.0f) {  // the top candidate: highest key, then lowest id
    unsigned long long best = 0;
    for_each_shaped(shaped, vocab, [&](int64_t i, float x) {
      const unsigned long long candidate = (static_cast<unsigned long long>(order_key(x)) << 32) |
                                           (UINT_MAX - static_cast<uint32_t>(i));
      best = candidate > best ? candidate : best;
    });
    id = static_cast<int32_t>(UINT_MAX - static_cast<uint32_t>(block_max(best, sh)));
  } else if (spec.top_k == 0 && spec.top_p >= 1.0f) {
    id = draw_in_id_order(shaped, vocab, max_logit, spec, sh);
  } else {
    id = draw_sorted(shaped, vocab, max_logit, spec, sh);
  }
  if (tid != 0) return;
  SamplePick pick;
  if (id < 0) {
    pick.deferred = 1;
  } else if (raw_sum > 0.0) {
    const double log_normalizer = raw_max + log(raw_sum);
    pick.id = id;
    pick.logprob = static_cast<float>(row[id] - log_normalizer);
    pick.top_logprob = static_cast<float>(raw_max - log_normalizer);
  } else {  // no finite logit
    pick.id = id;
    pick.logprob = -INFINITY;
    pick.top_logprob = -INFINITY;
  }
  out[blockIdx.x] = pick;
}

}  // namespace

Status sample_rows(const float* logits, int64_t rows, int64_t vocab, const SampleSpec* specs,
                   const int32_t* penalized, float* scratch, SamplePick* out,
                   Stream stream) noexcept {
  if (logits == nullptr || specs == nullptr || scratch == nullptr || out == nullptr || rows < 0 ||
      vocab < 1 || rows > INT32_MAX || vocab > INT32_MAX) {
    return Status::kInvalidArgument;
  }
  if (rows == 0) return Status::kOk;
  return launch(&sample_kernel, dim3(static_cast<unsigned>(rows)), dim3(kThreads), 0, stream, true,
                logits, vocab, specs, penalized, scratch, out);
}

}  // namespace polyinfer::inline v0::detail::gpu
