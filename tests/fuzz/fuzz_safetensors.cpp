// SPDX-License-Identifier: Apache-2.0
// libFuzzer entry point: the safetensors header parser over arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "format/safetensors.hpp"
#include "polyinfer/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto file = polyinfer::detail::SafetensorsFile::parse(
        reinterpret_cast<const std::byte*>(data), size, "fuzz.safetensors");
    // Touch every tensor's bytes: a parse that accepted bad offsets would read out of bounds.
    uint8_t sum = 0;
    for (const auto& tensor : file.tensors()) {
      for (uint64_t i = 0; i < tensor.bytes(); ++i) {
        sum = static_cast<uint8_t>(sum + static_cast<uint8_t>(tensor.data[i]));
      }
      (void)file.find(tensor.name);
    }
    volatile uint8_t sink = sum;
    (void)sink;
  } catch (const polyinfer::Error&) {
    // Rejected input: the expected outcome for most bytes.
  }
  try {
    (void)polyinfer::detail::parse_safetensors_index(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.index.json");
  } catch (const polyinfer::Error&) {
  }
  return 0;
}
