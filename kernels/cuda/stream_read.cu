// SPDX-License-Identifier: Apache-2.0
// The roofline of the memory-bound kernels: a read-only streaming kernel with 128-bit loads.
#include <iterator>

#include "kernels/cuda/cuda_common.cuh"

namespace polyinfer::inline v0::detail::gpu {
namespace {

// Each thread keeps kUnroll independent 16-byte loads in flight over a grid-stride loop; the
// XOR of everything read is stored only if it equals a constant (never, in practice), which
// keeps the loads alive without a write stream.
template <int kUnroll, bool kStreamLoad>
__global__ void stream_read_kernel(const uint4* data, uint64_t count, uint64_t* sink) {
  const uint64_t stride = uint64_t{gridDim.x} * blockDim.x;
  uint64_t index = uint64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  uint32_t folded = 0;
  for (; index + (kUnroll - 1) * stride < count; index += kUnroll * stride) {
    uint4 values[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      values[u] = kStreamLoad ? load_stream(data + index + u * stride) : data[index + u * stride];
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      folded ^= values[u].x ^ values[u].y ^ values[u].z ^ values[u].w;
    }
  }
  for (; index < count; index += stride) {
    const uint4 value = data[index];
    folded ^= value.x ^ value.y ^ value.z ^ value.w;
  }
  if (folded == 0x9E3779B9u) *sink = folded;
}

struct Variant {
  void (*kernel)(const uint4*, uint64_t, uint64_t*);
  int threads;
};

constexpr Variant kVariants[] = {
    {&stream_read_kernel<4, false>, 256}, {&stream_read_kernel<4, true>, 256},
    {&stream_read_kernel<8, true>, 256},  {&stream_read_kernel<8, false>, 512},
    {&stream_read_kernel<2, true>, 1024}, {&stream_read_kernel<16, true>, 128},
};

}  // namespace

int stream_read_variants() noexcept {
  return static_cast<int>(std::size(kVariants));
}

Status stream_read(const void* data, uint64_t bytes, uint64_t* sink, int variant,
                   Stream stream) noexcept {
  if (data == nullptr || sink == nullptr || bytes % 16 != 0 ||
      reinterpret_cast<uintptr_t>(data) % 16 != 0 || variant < 0 ||
      variant >= stream_read_variants()) {
    return Status::kInvalidArgument;
  }
  int device = 0;
  int multiprocessors = 0;
  POLYINFER_CUDA_TRY(cudaGetDevice(&device));
  POLYINFER_CUDA_TRY(
      cudaDeviceGetAttribute(&multiprocessors, cudaDevAttrMultiProcessorCount, device));
  const Variant& chosen = kVariants[variant];
  // A persistent grid: as many threads as the multiprocessors hold (2048 each).
  const unsigned blocks = static_cast<unsigned>(multiprocessors * (2048 / chosen.threads));
  return launch(chosen.kernel, dim3(blocks), dim3(static_cast<unsigned>(chosen.threads)), 0, stream,
                false, static_cast<const uint4*>(data), bytes / 16, sink);
}

}  // namespace polyinfer::inline v0::detail::gpu
