// SPDX-License-Identifier: Apache-2.0
// Experiments on single-token GEMVs over long rows (bench_cuda --long-rows): where the per-call
// time beyond streaming goes on matrices of 14 KB rows, and which form of weight load streams
// best. Included by bench_cuda.cu inside its namespace; nothing here is used by the library.
//
// Session 19 also measured here, and did not keep: column segments merged in thread-block
// clusters (docs/experiments/gemv-segments.patch: 59–74 % against 84 %), and activations in
// four planes of 16-byte pieces for Q4_0 (docs/experiments/activation-planes.patch: the Q4_0
// GEMV on 8192×28672 +4 points, but rows of 4096 columns −2 to −5 and batch-1 decode −5 %).

// Weight loads of 16 bytes, by kind: 0 non-coherent, no L1 allocation, 256-byte L2 prefetch
// (load_stream() before session 19); 1 load_stream() (the same without the prefetch);
// 2 non-coherent; 3 ordinary; 4 ordinary without L1 allocation; 5 kind 0 with a 128-byte
// prefetch; 6 load_stream() with an L2 evict-first policy (data read once).
template <int kKind>
__device__ __forceinline__ uint4 load_kind(const void* p) {
  uint4 v{};
  if constexpr (kKind == 0) {
    asm("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
        : "l"(p));
  } else if constexpr (kKind == 1) {
    return load_stream(p);
  } else if constexpr (kKind == 2) {
    asm("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
        : "l"(p));
  } else if constexpr (kKind == 3) {
    asm("ld.global.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
        : "l"(p));
  } else if constexpr (kKind == 4) {
    asm("ld.global.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
        : "l"(p));
  } else if constexpr (kKind == 5) {
    asm("ld.global.nc.L1::no_allocate.L2::128B.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
        : "l"(p));
  } else {
    uint64_t policy = 0;
    asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
    asm("ld.global.nc.L1::no_allocate.L2::cache_hint.v4.u32 {%0, %1, %2, %3}, [%4], %5;"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
        : "l"(p), "l"(policy));
  }
  return v;
}
inline constexpr int kLoadKinds = 7;

// Q4_0 as in gemv_q4_0.cu, its quants loaded by load_kind<kKind>.
template <int kKind>
struct KindQ4_0 {
  struct Chunk {
    uint4 q;
    __half d;
  };
  struct Activation {
    int4 lo;
    int4 hi;
    int2 meta;
  };
  static constexpr int kQuantBytes = 16;
  static constexpr int kScaleBytes = 2;

  template <bool kShared = false>
  __device__ static Chunk load(const WeightsView& w, int64_t row, int64_t k) {
    Chunk chunk;
    chunk.q = load_kind<kKind>(w.quants + row * w.row_bytes + k * 16);
    chunk.d = load_scales<kShared, __half>(w.scales + row * w.scales_row_bytes + k * 2);
    return chunk;
  }

  __device__ static Activation load_x(const ActivationsView& x, int token, int64_t k) {
    const int8_t* qs = x.qs + token * x.cols + k * 32;
    return {load_x16(qs), load_x16(qs + 16), load_activation(x.meta + token * (x.cols / 32) + k)};
  }

  __device__ static int nibbles_dot(uint32_t q, int lo, int hi, int sum) {
    sum = dot4_i8(static_cast<int>(q & 0x0F0F0F0Fu), lo, sum);
    return dot4_i8(static_cast<int>((q >> 4) & 0x0F0F0F0Fu), hi, sum);
  }

  __device__ static float dot(const Chunk& c, const Activation& a, int64_t /*k*/) {
    int sum = nibbles_dot(c.q.x, a.lo.x, a.hi.x, 0);
    sum = nibbles_dot(c.q.y, a.lo.y, a.hi.y, sum);
    sum = nibbles_dot(c.q.z, a.lo.z, a.hi.z, sum);
    sum = nibbles_dot(c.q.w, a.lo.w, a.hi.w, sum);
    return __half2float(c.d) * __int_as_float(a.meta.x) * static_cast<float>(sum - 8 * a.meta.y);
  }
};

// row_read_kernel's loads by load_kind<kKind>.
template <int kRows, int kUnroll, int kKind>
__global__ void row_read_kind_kernel(const uint8_t* base, int64_t rows, int64_t row_bytes,
                                     uint64_t* sink) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  const int64_t first_row = (int64_t{blockIdx.x} * (blockDim.x / kWarp) + warp) * kRows;
  if (first_row >= rows) return;
  const int64_t chunks = row_bytes / 16;
  uint32_t folded = 0;
  for (int64_t k0 = lane; k0 < chunks; k0 += int64_t{kWarp} * kUnroll) {
    uint4 values[kUnroll][kRows];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const int64_t k = k0 + u * kWarp;
        const int64_t row = first_row + r < rows ? first_row + r : rows - 1;
        values[u][r] = k < chunks ? load_kind<kKind>(base + row * row_bytes + k * 16) : uint4{};
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        folded ^= values[u][r].x ^ values[u][r].y ^ values[u][r].z ^ values[u][r].w;
      }
    }
  }
  if (folded == 0x9E3779B9u) *sink = folded;
}
