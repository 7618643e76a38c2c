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
#define POLYINFER_LOAD_KIND(instruction, ...)                      \
  asm(instruction " {%0, %1, %2, %3}, [%4]" __VA_OPT__(", %5") ";" \
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)                 \
      : "l"(p)__VA_OPT__(, "l"(__VA_ARGS__)))
template <int kKind>
__device__ __forceinline__ uint4 load_kind(const void* p) {
  if constexpr (kKind == 1) return load_stream(p);
  uint4 v{};
  if constexpr (kKind == 0) POLYINFER_LOAD_KIND("ld.global.nc.L1::no_allocate.L2::256B.v4.u32");
  if constexpr (kKind == 2) POLYINFER_LOAD_KIND("ld.global.nc.v4.u32");
  if constexpr (kKind == 3) POLYINFER_LOAD_KIND("ld.global.v4.u32");
  if constexpr (kKind == 4) POLYINFER_LOAD_KIND("ld.global.L1::no_allocate.v4.u32");
  if constexpr (kKind == 5) POLYINFER_LOAD_KIND("ld.global.nc.L1::no_allocate.L2::128B.v4.u32");
  if constexpr (kKind == 6) {
    uint64_t policy = 0;
    asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
    POLYINFER_LOAD_KIND("ld.global.nc.L1::no_allocate.L2::cache_hint.v4.u32", policy);
  }
  return v;
}
#undef POLYINFER_LOAD_KIND
inline constexpr int kLoadKinds = 7;

// Q4_0 (gemv_q4_0.cuh) with its quants loaded by load_kind<kKind>, and its scales through the
// read-only path (the library's) or (kScalesUnallocated) without L1 allocation.
template <int kKind, bool kScalesUnallocated = false>
struct KindQ4_0 : FormatQ4_0 {
  template <bool kShared = false>
  __device__ static Chunk load(const WeightsView& w, int64_t row, int64_t k) {
    Chunk chunk;
    chunk.q = load_kind<kKind>(w.quants + row * w.row_bytes + k * 16);
    const uint8_t* scale = w.scales + row * w.scales_row_bytes + k * 2;
    if constexpr (kScalesUnallocated) {
      unsigned short bits;
      asm("ld.global.nc.L1::no_allocate.u16 %0, [%1];" : "=h"(bits) : "l"(scale));
      chunk.d = __ushort_as_half(bits);
    } else {
      chunk.d = load_scales<kShared, __half>(scale);
    }
    return chunk;
  }
};
