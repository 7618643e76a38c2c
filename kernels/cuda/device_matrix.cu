// SPDX-License-Identifier: Apache-2.0
// DeviceMatrix: GGUF weights uploaded and split into a quants plane and a scales plane.
#include <utility>

#include "kernels/common/block_formats.hpp"
#include "kernels/cuda/gemv.cuh"

namespace polyinfer::inline v0::detail::gpu {
namespace {

// GGUF blocks are 18 (Q4_0) or 34 (Q8_0) bytes: rows of them are not 16-byte aligned. Splitting
// each block's scale bytes (Q4_K: its 16-byte header) from its quants puts every row of quants
// on a 16-byte boundary, so the GEMV reads them with 128-bit loads.
template <int kBlockBytes, int kScaleBytes>
__global__ void split_blocks_kernel(const uint8_t* gguf, int64_t blocks, uint8_t* quants,
                                    uint8_t* scales) {
  constexpr int kQuantBytes = kBlockBytes - kScaleBytes;
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t block = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; block < blocks;
       block += stride) {
    const uint8_t* src = gguf + block * kBlockBytes;
#pragma unroll
    for (int i = 0; i < kScaleBytes; ++i) scales[block * kScaleBytes + i] = src[i];
#pragma unroll
    for (int i = 0; i < kQuantBytes; ++i) quants[block * kQuantBytes + i] = src[kScaleBytes + i];
  }
}

// Q4_K: header to the scales plane (its packed scales in q4_k_pair_header's order), quants to
// the tiled order of q4_k_chunk_offset.
__global__ void split_q4_k_kernel(const uint8_t* gguf, int64_t blocks, int64_t row_blocks,
                                  uint8_t* quants, uint8_t* scales) {
  constexpr int kQuantBytes = static_cast<int>(sizeof(BlockQ4_K)) - 16;
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  const int64_t row_chunks = row_blocks * (kQuantBytes / 16);
  for (int64_t block = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; block < blocks;
       block += stride) {
    const uint8_t* src = gguf + block * sizeof(BlockQ4_K);
#pragma unroll
    for (int i = 0; i < 4; ++i) scales[block * 16 + i] = src[i];
    q4_k_pair_header(src + 4, scales + block * 16 + 4);
    const int64_t row = block / row_blocks;
    uint8_t* row_quants = quants + row * row_blocks * kQuantBytes;
    for (int chunk = 0; chunk < kQuantBytes / 16; ++chunk) {
      const int64_t c = (block % row_blocks) * (kQuantBytes / 16) + chunk;
      uint8_t* dst = row_quants + q4_k_chunk_offset(c, row_chunks);
#pragma unroll
      for (int i = 0; i < 16; ++i) dst[i] = src[16 + 16 * chunk + i];
    }
  }
}

struct Layout {
  int block_elements = 0;  // weights per GGUF block
  int block_bytes = 0;     // bytes per GGUF block (element bytes for F16 / BF16 / F32)
  int scale_bytes = 0;     // bytes per block moved to the scales plane (0: no split)
};

Layout layout_of(DType dtype) noexcept {
  switch (dtype) {
    case DType::kQ4_0:
      return {kBlock32, static_cast<int>(sizeof(BlockQ4_0)), 2};
    case DType::kQ8_0:
      return {kBlock32, static_cast<int>(sizeof(BlockQ8_0)), 2};
    case DType::kQ4_K:
      return {kBlockK, static_cast<int>(sizeof(BlockQ4_K)), 16};
    case DType::kF16:
    case DType::kBF16:
      return {1, 2, 0};
    case DType::kF32:
      return {1, 4, 0};
    default:
      return {};
  }
}

uint64_t round_up_256(uint64_t bytes) {
  return (bytes + 255) / 256 * 256;
}

}  // namespace

bool matmul_supports(DType dtype, int64_t cols) noexcept {
  const Layout layout = layout_of(dtype);
  return layout.block_elements > 0 && cols > 0 && cols % layout.block_elements == 0;
}

const void* DeviceMatrix::scales() const noexcept {
  return layout_of(dtype_).scale_bytes > 0
             ? static_cast<const uint8_t*>(storage_.data()) + scales_offset_
             : nullptr;
}

Status DeviceMatrix::import_device(DType dtype, int64_t rows, int64_t cols,
                                   const std::byte* device_data, Stream stream,
                                   DeviceMatrix* out) noexcept {
  if (out == nullptr || device_data == nullptr || rows < 1) return Status::kInvalidArgument;
  if (!matmul_supports(dtype, cols)) return Status::kUnsupported;
  const Layout layout = layout_of(dtype);
  const int64_t blocks = rows * (cols / layout.block_elements);
  const uint64_t total_bytes = static_cast<uint64_t>(blocks) * layout.block_bytes;
  const uint64_t quant_bytes =
      static_cast<uint64_t>(blocks) * (layout.block_bytes - layout.scale_bytes);
  DeviceMatrix matrix;
  matrix.dtype_ = dtype;
  matrix.rows_ = rows;
  matrix.cols_ = cols;
  matrix.bytes_ = total_bytes;
  matrix.scales_offset_ = layout.scale_bytes > 0 ? round_up_256(quant_bytes) : 0;
  const uint64_t storage_bytes =
      matrix.scales_offset_ + static_cast<uint64_t>(blocks) * layout.scale_bytes;
  POLYINFER_GPU_TRY(DeviceBuffer::allocate(layout.scale_bytes > 0 ? storage_bytes : total_bytes,
                                           &matrix.storage_));
  auto* base = static_cast<uint8_t*>(matrix.storage_.data());
  const auto* src = reinterpret_cast<const uint8_t*>(device_data);
  constexpr int kThreads = 256;
  const dim3 grid(grid_for(blocks, kThreads));
  switch (dtype) {
    case DType::kQ4_0:
      POLYINFER_GPU_TRY(launch(&split_blocks_kernel<sizeof(BlockQ4_0), 2>, grid, dim3(kThreads), 0,
                               stream, false, src, blocks, base, base + matrix.scales_offset_));
      break;
    case DType::kQ8_0:
      POLYINFER_GPU_TRY(launch(&split_blocks_kernel<sizeof(BlockQ8_0), 2>, grid, dim3(kThreads), 0,
                               stream, false, src, blocks, base, base + matrix.scales_offset_));
      break;
    case DType::kQ4_K:
      POLYINFER_GPU_TRY(launch(&split_q4_k_kernel, grid, dim3(kThreads), 0, stream, false, src,
                               blocks, cols / kBlockK, base, base + matrix.scales_offset_));
      break;
    default:
      POLYINFER_CUDA_TRY(
          cudaMemcpyAsync(base, src, total_bytes, cudaMemcpyDeviceToDevice, native(stream)));
      break;
  }
  *out = std::move(matrix);
  return Status::kOk;
}

Status DeviceMatrix::upload(DType dtype, int64_t rows, int64_t cols, const std::byte* host_data,
                            Stream stream, DeviceMatrix* out) noexcept {
  if (out == nullptr || host_data == nullptr || rows < 1) return Status::kInvalidArgument;
  if (!matmul_supports(dtype, cols)) return Status::kUnsupported;
  const Layout layout = layout_of(dtype);
  const uint64_t total_bytes =
      static_cast<uint64_t>(rows * (cols / layout.block_elements)) * layout.block_bytes;
  DeviceBuffer staging;
  POLYINFER_GPU_TRY(DeviceBuffer::allocate(total_bytes, &staging));
  POLYINFER_GPU_TRY(copy_to_device(staging.data(), host_data, total_bytes, stream));
  POLYINFER_GPU_TRY(
      import_device(dtype, rows, cols, static_cast<const std::byte*>(staging.data()), stream, out));
  return synchronize(stream);  // before `staging` is freed
}

WeightsView weights_view(const DeviceMatrix& w) noexcept {
  WeightsView view;
  view.quants = static_cast<const uint8_t*>(w.quants());
  view.scales = static_cast<const uint8_t*>(w.scales());
  view.rows = w.rows();
  view.cols = w.cols();
  const int64_t cols = w.cols();
  switch (w.dtype()) {
    case DType::kQ4_0:
      view.row_bytes = cols / 2;
      view.chunks = cols / 32;
      view.scales_row_bytes = cols / 32 * 2;
      break;
    case DType::kQ8_0:
      view.row_bytes = cols;
      view.chunks = cols / 16;
      view.scales_row_bytes = cols / 32 * 2;
      break;
    case DType::kQ4_K:
      view.row_bytes = cols / 2;
      view.chunks = cols / 32;
      view.scales_row_bytes = cols / 256 * 16;
      break;
    case DType::kF16:
    case DType::kBF16:
      view.row_bytes = cols * 2;
      view.chunks = cols / 8;
      break;
    default:
      view.row_bytes = cols * 4;
      view.chunks = cols / 4;
      break;
  }
  return view;
}

}  // namespace polyinfer::inline v0::detail::gpu
