// SPDX-License-Identifier: Apache-2.0
// libFuzzer entry point: config.json → ModelConfig and the flattened metadata.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "format/hf_config.hpp"
#include "polyinfer/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const polyinfer::ModelConfig config = polyinfer::detail::parse_hf_config(text, "config.json");
    // Accepted configs must be self-consistent.
    if (config.hidden_size <= 0 || config.num_heads <= 0 || config.num_kv_heads <= 0 ||
        config.num_heads % config.num_kv_heads != 0 || config.head_dim <= 0) {
      __builtin_trap();
    }
  } catch (const polyinfer::Error&) {
  }
  try {
    (void)polyinfer::detail::flatten_hf_config(text, "config.json");
  } catch (const polyinfer::Error&) {
  }
  return 0;
}
