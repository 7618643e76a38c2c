// SPDX-License-Identifier: Apache-2.0
// Streaming GGUF tensor writer: rows made as f32, quantized in parallel, written in order.
#include "model/convert_stream.hpp"

#include <algorithm>
#include <cstring>
#include <exception>
#include <mutex>

#include "common/fail.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "kernels/ref/quant_ref.hpp"

namespace polyinfer::inline v0::detail {

int64_t StreamTensor::rows() const noexcept {
  int64_t rows = 1;
  for (size_t d = 1; d < ne.size(); ++d) rows *= ne[d];
  return rows;
}

namespace {

/// Converts `rows` rows of f32 to the tensor's type.
void encode_rows(const StreamTensor& tensor, const float* values, int64_t elements,
                 std::byte* out) {
  if (tensor.dtype == DType::kQ8_0 && tensor.gguf_py_q8_0) {
    std::vector<BlockQ8_0> blocks(static_cast<size_t>(elements / 32));
    ref::quantize_row_q8_0_gguf_py(values, blocks.data(), elements);
    std::memcpy(out, blocks.data(), blocks.size() * sizeof(BlockQ8_0));
    return;
  }
  if (!ref::quantize(tensor.dtype, values, out, elements)) {
    fail(ErrorCode::kUnsupported, tensor.name, "no quantizer for {}", dtype_name(tensor.dtype));
  }
}

}  // namespace

void write_streamed(GgufWriter& writer, const std::vector<StreamTensor>& tensors,
                    const std::filesystem::path& path, int threads, int64_t chunk_elements) {
  const size_t first = writer.tensor_count();
  for (const StreamTensor& t : tensors) writer.declare_tensor(t.name, t.dtype, t.ne);
  ThreadPool pool(threads);
  const int64_t window = int64_t{4} * pool.threads();

  writer.write_streaming(path, [&](size_t index, const GgufWriter::TensorSink& sink) {
    const StreamTensor& tensor = tensors.at(index - first);
    const int64_t row = tensor.ne.at(0);
    const int64_t rows = tensor.rows();
    const int64_t chunk_rows = std::max<int64_t>(1, chunk_elements / row);
    const int64_t chunks = (rows + chunk_rows - 1) / chunk_rows;
    std::vector<std::vector<std::byte>> encoded(static_cast<size_t>(std::min(chunks, window)));
    std::exception_ptr error;
    std::mutex error_mutex;
    for (int64_t begin = 0; begin < chunks; begin += window) {
      const int64_t count = std::min(window, chunks - begin);
      pool.parallel_for(count, [&](int64_t lo, int64_t hi) {
        thread_local std::vector<float> values;
        for (int64_t c = lo; c < hi; ++c) {
          try {
            const int64_t first_row = (begin + c) * chunk_rows;
            const int64_t n = std::min(chunk_rows, rows - first_row);
            values.resize(static_cast<size_t>(n * row));
            tensor.fill(first_row, n, values.data());
            auto& out = encoded[static_cast<size_t>(c)];
            out.resize(dtype_bytes(tensor.dtype, n * row));
            encode_rows(tensor, values.data(), n * row, out.data());
          } catch (...) {
            const std::lock_guard lock(error_mutex);
            if (!error) error = std::current_exception();
          }
        }
      });
      if (error) std::rethrow_exception(error);
      for (int64_t c = 0; c < count; ++c) sink(encoded[static_cast<size_t>(c)]);
    }
  });
}

}  // namespace polyinfer::inline v0::detail
