// SPDX-License-Identifier: Apache-2.0
// Streaming GGUF tensor writer: rows made as f32, quantized in parallel, written in order.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "format/gguf.hpp"
#include "polyinfer/tensor.hpp"

namespace polyinfer::inline v0::detail {

/// One tensor to write: its name, stored type, ggml shape and where its rows come from.
struct StreamTensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> ne;  ///< ggml order: ne[0] is the row length
  /// Writes rows [first_row, first_row + rows) as f32 into `out` (rows × ne[0] floats). Called
  /// from several threads at once for disjoint ranges; must not throw for valid ranges.
  std::function<void(int64_t first_row, int64_t rows, float* out)> fill;
  /// q8_0 with gguf-py's rounding (convert_hf_to_gguf --outtype q8_0) instead of ggml's.
  bool gguf_py_q8_0 = false;

  [[nodiscard]] int64_t rows() const noexcept;
};

/// Declares `tensors` on `writer` (after its metadata) and writes the file: each tensor is cut
/// into chunks of whole rows (about `chunk_elements` values), a window of chunks is filled and
/// quantized on `threads` threads (0: all hardware threads), then written in order. Memory
/// stays near threads × 4 chunks. Throws what GgufWriter::write_streaming throws; the
/// partial file is removed on error.
void write_streamed(GgufWriter& writer, const std::vector<StreamTensor>& tensors,
                    const std::filesystem::path& path, int threads,
                    int64_t chunk_elements = int64_t{1} << 18);

}  // namespace polyinfer::inline v0::detail
