// SPDX-License-Identifier: Apache-2.0
// Internal helpers of the .cu files: error mapping, warp reductions, dp4a, PDL, launches.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <type_traits>

#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/hip_compat.hpp"

namespace polyinfer::inline v0::detail::gpu {

/// Lanes of a logical warp: 32 on NVIDIA; a half wave on AMD wave64 (see hip_compat.hpp).
inline constexpr int kWarp = 32;

/// A tuning switch from the environment (read once per call site): on unless it starts with '0'.
inline bool env_switch(const char* name) noexcept {
  const char* env = std::getenv(name);
  return env == nullptr || *env != '0';
}

/// A positive integer from the environment, else `fallback` (unset, zero, negative or not a
/// number).
inline int64_t env_positive(const char* name, int64_t fallback) noexcept {
  const char* env = std::getenv(name);
  const long long value = env != nullptr ? std::strtoll(env, nullptr, 10) : 0;
  return value > 0 ? static_cast<int64_t>(value) : fallback;
}

/// Maps a runtime error to a Status (and clears CUDA's sticky last error for non-fatal ones).
inline Status status_of(cudaError_t error) noexcept {
  switch (error) {
    case cudaSuccess:
      return Status::kOk;
    case cudaErrorMemoryAllocation:
      return Status::kOutOfMemory;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
      return Status::kNoDevice;
    default:
      return Status::kDeviceError;
  }
}

#if POLYINFER_GPU_BLAS
inline Status status_of(cublasStatus_t status) noexcept {
  return status == CUBLAS_STATUS_SUCCESS ? Status::kOk : Status::kDeviceError;
}
#endif

/// The status of the launch just made.
inline Status launch_status() noexcept {
  return status_of(cudaGetLastError());
}

inline cudaStream_t native(Stream stream) noexcept {
  return static_cast<cudaStream_t>(stream.native);
}

#define POLYINFER_GPU_TRY(expr)                                 \
  do {                                                          \
    const ::polyinfer::detail::gpu::Status pi_status_ = (expr); \
    if (pi_status_ != ::polyinfer::detail::gpu::Status::kOk) {  \
      return pi_status_;                                        \
    }                                                           \
  } while (0)

#define POLYINFER_CUDA_TRY(expr) POLYINFER_GPU_TRY(::polyinfer::detail::gpu::status_of(expr))

__host__ __device__ inline constexpr int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}
__host__ __device__ __forceinline__ int64_t min_i64(int64_t a, int64_t b) {
  return a < b ? a : b;
}
__host__ __device__ __forceinline__ int64_t max_i64(int64_t a, int64_t b) {
  return a > b ? a : b;
}

/// `value` of lane ^ offset (float, int, double, unsigned long long: the types both runtimes'
/// shuffles take).
template <typename T>
__device__ __forceinline__ T shfl_xor(T value, int offset) {
#if POLYINFER_GPU_HIP
  return __shfl_xor(value, offset, kWarp);
#else
  return __shfl_xor_sync(0xFFFFFFFFu, value, offset);
#endif
}

/// `value` of lane − delta (a lane below delta keeps its own).
template <typename T>
__device__ __forceinline__ T shfl_up(T value, int delta) {
#if POLYINFER_GPU_HIP
  return __shfl_up(value, static_cast<unsigned>(delta), kWarp);
#else
  return __shfl_up_sync(0xFFFFFFFFu, value, static_cast<unsigned>(delta));
#endif
}

/// `value` of lane `lane` of the warp.
__device__ __forceinline__ float shfl_from(float value, int lane) {
#if POLYINFER_GPU_HIP
  return __shfl(value, lane, kWarp);
#else
  return __shfl_sync(0xFFFFFFFFu, value, lane);
#endif
}

#if !POLYINFER_GPU_HIP && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define POLYINFER_GPU_COPY_ASYNC 1
#else
#define POLYINFER_GPU_COPY_ASYNC 0
#endif

/// Copies kBytes (16, through L2 only, or 8) from global to shared memory without registers
/// (cp.async, sm_80 and later; elsewhere an ordinary copy, done at once); `bytes` 0 writes
/// zeros instead (the source must still be a valid address).
template <int kBytes>
__device__ __forceinline__ void copy_async(void* shared, const void* global, int bytes) {
  static_assert(kBytes == 16 || kBytes == 8);
#if POLYINFER_GPU_COPY_ASYNC
  const auto address = static_cast<uint32_t>(__cvta_generic_to_shared(shared));
  if constexpr (kBytes == 16) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(address), "l"(global),
                 "r"(bytes)
                 : "memory");
  } else {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;" ::"r"(address), "l"(global),
                 "r"(bytes)
                 : "memory");
  }
#else
  using Piece = std::conditional_t<kBytes == 16, uint4, uint2>;
  *static_cast<Piece*>(shared) = bytes != 0 ? *static_cast<const Piece*>(global) : Piece{};
#endif
}

/// 16-byte copy_async().
__device__ __forceinline__ void copy_async(void* shared, const void* global, int bytes) {
  copy_async<16>(shared, global, bytes);
}

/// Closes the group of this thread's copies issued since the last commit.
__device__ __forceinline__ void commit_copies() {
#if POLYINFER_GPU_COPY_ASYNC
  asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}

/// Waits until at most kPending of this thread's committed copy groups are in flight.
template <int kPending>
__device__ __forceinline__ void wait_copies() {
#if POLYINFER_GPU_COPY_ASYNC
  asm volatile("cp.async.wait_group %0;" ::"n"(kPending) : "memory");
#endif
}

// Bulk copies (Hopper's TMA, 1-D) into shared memory, completed on an mbarrier. Device code
// uses them only where POLYINFER_GPU_BULK_COPY is 1 (CUDA, sm_90 and later); the host checks
// bulk_copies_available() before launching a kernel that needs them.
#if !POLYINFER_GPU_HIP && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define POLYINFER_GPU_BULK_COPY 1

__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

/// Makes `barrier` expect `arrivals` arrivals per phase (one thread, before a __syncthreads()).
__device__ __forceinline__ void mbarrier_init(uint64_t* barrier, unsigned arrivals) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(shared_address(barrier)),
               "r"(arrivals)
               : "memory");
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}

/// Arrives on `barrier` and adds `bytes` to the bytes its phase waits for.
__device__ __forceinline__ void mbarrier_arrive_expect(uint64_t* barrier, uint32_t bytes) {
  asm volatile(
      "mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(shared_address(barrier)),
      "r"(bytes)
      : "memory");
}

__device__ __forceinline__ void mbarrier_arrive(uint64_t* barrier) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(shared_address(barrier))
               : "memory");
}

/// Waits until the phase of `barrier` with this parity has completed.
__device__ __forceinline__ void mbarrier_wait(uint64_t* barrier, uint32_t parity) {
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, "
        "1, 0, p;\n}"
        : "=r"(done)
        : "r"(shared_address(barrier)), "r"(parity)
        : "memory");
  } while (done == 0);
}

/// Copies `bytes` (a multiple of 16; both addresses 16-byte aligned) from global to shared
/// memory; completion counts against `barrier`'s expected bytes. Weights read once: the copy
/// asks L2 to evict them first.
__device__ __forceinline__ void bulk_copy(void* shared, const void* global, uint32_t bytes,
                                          uint64_t* barrier, uint64_t policy) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], "
      "[%1], %2, [%3], %4;" ::"r"(shared_address(shared)),
      "l"(global), "r"(bytes), "r"(shared_address(barrier)), "l"(policy)
      : "memory");
}

/// The L2 policy bulk_copy() takes for data read once.
__device__ __forceinline__ uint64_t evict_first_policy() {
  uint64_t policy = 0;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
  return policy;
}
#else
#define POLYINFER_GPU_BULK_COPY 0
#endif

/// A load of data other blocks wrote during this kernel (after their __threadfence()): from L2,
/// past this multiprocessor's non-coherent L1.
__device__ __forceinline__ float load_coherent(const float* p) {
#if POLYINFER_GPU_HIP
  return *static_cast<const volatile float*>(p);  // volatile: a glc load on AMD GPUs
#else
  return __ldcg(p);
#endif
}

/// Split-K arrival, called by the whole block once its partial results are written: makes them
/// visible device-wide and counts the block in at `counter`. True, in every thread, for the
/// last of `expected` blocks to arrive, which may then read the others' results with
/// load_coherent(); that block leaves the counter at zero for the next launch.
__device__ __forceinline__ bool arrives_last(int* counter, int expected) {
  __shared__ int last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    last = atomicAdd(counter, 1) == expected - 1 ? 1 : 0;
    if (last != 0) *counter = 0;
  }
  __syncthreads();
  if (last == 0) return false;
  __threadfence();
  return true;
}

/// fn(i, values[i]) for i = threadIdx.x, + blockDim.x, … below n, with kUnroll loads in
/// flight per thread (a row read by one block is otherwise bound by the latency of each load).
template <int kUnroll, typename Fn>
__device__ __forceinline__ void for_each_strided(const float* values, int64_t n, const Fn& fn) {
  const int64_t step = blockDim.x;
  for (int64_t base = threadIdx.x; base < n; base += step * kUnroll) {
    float v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = base + u * step;
      v[u] = i < n ? values[i] : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = base + u * step;
      if (i < n) fn(i, v[u]);
    }
  }
}

/// Sum over the 32 lanes of a warp, result in every lane.
__device__ __forceinline__ float warp_sum(float value) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) value += shfl_xor(value, offset);
  return value;
}

__device__ __forceinline__ float warp_max(float value) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    value = fmaxf(value, shfl_xor(value, offset));
  }
  return value;
}

/// Sum over a block of up to 1024 threads (a multiple of 32); `shared` holds 32 floats. Every
/// thread gets the result; the block may call it again after it returns.
__device__ __forceinline__ float block_sum(float value, float* shared) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  const int warps = static_cast<int>(blockDim.x) / kWarp;
  value = warp_sum(value);
  __syncthreads();  // an earlier call may still be reading `shared`
  if (lane == 0) shared[warp] = value;
  __syncthreads();
  value = lane < warps ? shared[lane] : 0.0f;
  return warp_sum(value);
}

__device__ __forceinline__ float block_max(float value, float* shared) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  const int warps = static_cast<int>(blockDim.x) / kWarp;
  value = warp_max(value);
  __syncthreads();
  if (lane == 0) shared[warp] = value;
  __syncthreads();
  value = lane < warps ? shared[lane] : -INFINITY;
  return warp_max(value);
}

/// c + Σ a.byte[i]·b.byte[i] over 4 signed bytes (dp4a).
__device__ __forceinline__ int dot4_i8(int a, int b, int c) {
#if !POLYINFER_GPU_HIP
  return __dp4a(a, b, c);
#elif defined(__gfx906__) || defined(__gfx908__) || defined(__gfx90a__) || defined(__gfx940__) || \
    defined(__gfx941__) || defined(__gfx942__)
  return __builtin_amdgcn_sdot4(a, b, c, false);
#elif defined(__gfx1100__) || defined(__gfx1101__) || defined(__gfx1102__)
  return __builtin_amdgcn_sudot4(true, a, true, b, c, false);
#else
  for (int i = 0; i < 4; ++i) {
    c += static_cast<int8_t>(a >> (8 * i)) * static_cast<int8_t>(b >> (8 * i));
  }
  return c;
#endif
}

/// float(v) for |v| < 2^22, exactly, on the FP32/INT32 pipes: 0x4B400000 is 1.5·2^23, whose
/// float spacing is 1, so adding v to its bits and subtracting 1.5·2^23 again is exact. An
/// ordinary conversion (I2F) runs at a quarter of the rate or less: with several per 32 weights
/// (Q4_K), it limited the GEMVs below the memory bandwidth.
__device__ __forceinline__ float small_int_to_float(int v) {
  return __int_as_float(0x4B400000 + v) - 12582912.0f;
}

/// Programmatic dependent launch (Hopper): a kernel launched with launch(…, programmatic=true)
/// may start before its predecessor ends; pdl_wait() blocks until the predecessor has finished
/// and its writes are visible. Anything read before it must not come from the predecessor.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

/// Lets the dependent grid launch now (it still waits for this grid's end in pdl_wait()).
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;");
#endif
}

/// The start of every kernel of the forward pass but the GEMVs: lets the next kernel launch
/// (a GEMV then streams its weights during this one), then waits for the previous one. With
/// every kernel of a chain launched programmatically, each waits for its predecessor, which
/// waited for its own: the chain stays ordered, while launches and weight loads overlap.
__device__ __forceinline__ void pdl_begin() {
  pdl_launch_dependents();
  pdl_wait();
}

/// 128-bit load of data read once (weights): non-coherent, no L1 allocation. No L2 prefetch
/// hint: with `.L2::256B` (H200, session 19, bench_cuda --long-rows, call 7) the rows' loads
/// alone streamed at 87 % against 91 %, and the Q4_0 GEMV 1–4 points slower (8192×28672 81
/// against 83 %, 14336×4096 launched programmatically 76 against 80 %).
__device__ __forceinline__ uint4 load_stream(const void* address) {
#if !POLYINFER_GPU_HIP && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(address));
  return v;
#else
  return *static_cast<const uint4*>(address);
#endif
}

/// The current device's multiprocessor count, and whether it runs bulk copies (CUDA, compute
/// capability 9 and later); looked up once per device.
struct DeviceTraits {
  int multiprocessors = 1;
  bool bulk_copies = false;  ///< Hopper's bulk copies (CUDA, sm_90 and later)
  bool clusters = false;     ///< thread-block clusters with distributed shared memory (the same)
};
[[nodiscard]] DeviceTraits current_device_traits() noexcept;

/// Whether launch() honours `programmatic` (POLYINFER_GPU_PDL=0 turns it off, for comparisons).
[[nodiscard]] bool programmatic_launches() noexcept;

/// Sets `kernel`'s preferred shared-memory carveout (percent of the unified L1 / shared memory)
/// on the current device, the first time it is asked for that device; later calls keep the
/// first value. POLYINFER_GPU_CARVEOUT=-1 leaves every kernel at the driver's choice, another
/// value replaces kCarveout (comparisons). No-op on HIP.
void prefer_carveout(const void* kernel, int percent) noexcept;

/// Lets `kernel` launch with `bytes` of dynamic shared memory on the current device (over the
/// default 48 KB needs the opt-in; set when a kernel asks for more than before on that
/// device). No-op on HIP.
[[nodiscard]] Status allow_shared_bytes(const void* kernel, int bytes) noexcept;

/// Blocks of `kernel` (`threads` each, `shared_bytes` of dynamic shared memory) that fit on one
/// multiprocessor of the current device at launch()'s carveout; looked up once per shape.
[[nodiscard]] Status occupancy(const void* kernel, int threads, int shared_bytes,
                               int* blocks) noexcept;

/// The carveout launch() asks for. The driver picks a carveout per kernel from its shared memory
/// needs; when consecutive kernels of a chain differ, a multiprocessor must drain before it
/// switches, and the attention launch in a batch-1 decode step paid for that (llama-3-8b Q4_0:
/// 461 tok/s at the driver's choice, 493 with every kernel at 50 %). Kernels that need more
/// shared memory for their occupancy (the integer GEMM, prompt-sized attention) ask for 100.
inline constexpr int kCarveout = 50;

/// Launches `kernel` in thread-block clusters of `cluster` blocks along x (Hopper; 1: none,
/// and always none on HIP); with `programmatic` (CUDA, sm_90) it may overlap the end of the
/// previous kernel on the stream, which it must then wait for with pdl_wait().
template <typename... Params, typename... Args>
Status launch_in_clusters(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes,
                          Stream stream, bool programmatic, unsigned cluster,
                          Args... args) noexcept {
#if POLYINFER_GPU_HIP
  (void)programmatic;
  (void)cluster;
  kernel<<<grid, block, shared_bytes, native(stream)>>>(static_cast<Params>(args)...);
  return launch_status();
#else
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  config.stream = native(stream);
  cudaLaunchAttribute attributes[2];
  unsigned count = 0;
  if (cluster > 1) {
    attributes[count].id = cudaLaunchAttributeClusterDimension;
    attributes[count].val.clusterDim.x = cluster;
    attributes[count].val.clusterDim.y = 1;
    attributes[count].val.clusterDim.z = 1;
    ++count;
  }
  if (programmatic && programmatic_launches()) {
    attributes[count].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attributes[count].val.programmaticStreamSerializationAllowed = 1;
    ++count;
  }
  config.attrs = attributes;
  config.numAttrs = count;
  prefer_carveout(reinterpret_cast<const void*>(kernel), kCarveout);
  return status_of(cudaLaunchKernelEx(&config, kernel, static_cast<Params>(args)...));
#endif
}

/// launch_in_clusters() without clusters.
template <typename... Params, typename... Args>
Status launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes, Stream stream,
              bool programmatic, Args... args) noexcept {
  return launch_in_clusters(kernel, grid, block, shared_bytes, stream, programmatic, 1u, args...);
}

/// Blocks for a grid-stride loop over `count` items with `threads` per block.
inline unsigned grid_for(int64_t count, int threads) noexcept {
  const int64_t blocks = ceil_div(count, threads);
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65535 * 16 ? 65535 * 16 : blocks));
}

}  // namespace polyinfer::inline v0::detail::gpu
