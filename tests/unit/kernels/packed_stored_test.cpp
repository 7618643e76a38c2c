// SPDX-License-Identifier: Apache-2.0
// PackedMatrix::reads_stored: whether a repacked matrix's stored bytes are still read (memory).
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/ops.hpp"

namespace polyinfer::detail {
namespace {

struct Format {
  DType dtype;
  int64_t elements;  // per block
  int64_t bytes;     // per block
};

// Restores the detected level when a test ends.
struct IsaGuard {
  ~IsaGuard() { force_isa(detect_isa()); }
};

TEST_CASE("repacked matrices are computed from their packed copy only", "[kernels][matmul]") {
  IsaGuard guard;
  constexpr int64_t kRows = 48;
  constexpr int64_t kCols = 512;
  const Format formats[] = {{DType::kF16, 1, 2},
                            {DType::kQ8_0, 32, 34},
                            {DType::kQ4_0, 32, 18},
                            {DType::kQ4_K, 256, 144},
                            {DType::kQ6_K, 256, 210}};
  for (const Format& format : formats) {
    const std::vector<std::byte> stored(
        static_cast<size_t>(kRows * kCols / format.elements * format.bytes));
    const PackedMatrix in_place(format.dtype, kRows, kCols, stored.data(), /*repack=*/false);
    CHECK(in_place.packed_bytes() == 0);
    CHECK(in_place.reads_stored());
    for (int level = 0; level <= static_cast<int>(detect_isa()); ++level) {
      force_isa(static_cast<Isa>(level));
      const PackedMatrix packed(format.dtype, kRows, kCols, stored.data());
      INFO("format " << static_cast<int>(format.dtype) << " level "
                     << isa_name(static_cast<Isa>(level)));
      if (packed.packed_bytes() == 0) {
        CHECK(packed.reads_stored());
        continue;
      }
      // Whatever the batch, the kernel picked reads the packed copy, so the stored pages may go.
      CHECK_FALSE(packed.reads_stored());
      for (int64_t tokens : {1, 7, 8, 64, 512}) {
        const std::string kernel(matmul_kernel_name(packed, tokens));
        INFO("tokens " << tokens << " kernel " << kernel);
        CHECK(kernel.find("_scalar") == std::string::npos);
        CHECK(kernel.find("onednn") == std::string::npos);
      }
    }
  }
}

}  // namespace
}  // namespace polyinfer::detail
