// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: GgufFile::parse on arbitrary bytes, then every value and tensor is touched.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "format/gguf.hpp"
#include "polyinfer/error.hpp"

namespace {

// Reads every element so that a bad pointer or length inside a parsed value shows up under ASan.
size_t touch(const polyinfer::detail::GgufValue& value) {
  size_t sum = value.text().size() + value.to_display().size();
  for (const char c : value.text()) sum += static_cast<unsigned char>(c);
  for (const auto& item : value.array) sum += touch(item);
  (void)value.as_number();
  (void)value.as_int();
  return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using polyinfer::detail::GgufFile;
  try {
    const GgufFile file =
        GgufFile::parse(reinterpret_cast<const std::byte*>(data), size, "fuzz.gguf");
    volatile size_t sink = 0;
    for (const auto& kv : file.metadata()) {
      sink = sink + kv.key.size() + touch(kv.value);
      (void)file.find(kv.key);
    }
    (void)file.get_int("general.alignment");
    (void)file.get_string("general.architecture");
    for (const auto& tensor : file.tensors()) {
      (void)file.find_tensor(tensor.name);
      const auto view = tensor.view();
      if (tensor.bytes > 0) {
        sink = sink + static_cast<size_t>(tensor.data[0]) +
               static_cast<size_t>(tensor.data[tensor.bytes - 1]);
      }
      // Dequantize small tensors: exercises the reference kernels on arbitrary bytes.
      if (view.elements() <= 4096) {
        const std::vector<float> values = polyinfer::to_f32(view);
        sink = sink + values.size();
      }
    }
  } catch (const polyinfer::Error&) {
    // Rejected input: the expected outcome for most mutations.
  }
  return 0;
}
