// SPDX-License-Identifier: Apache-2.0
// Device names ("cpu", "cuda", "cuda:N", "hip", "hip:N") and what this build and machine offer.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace polyinfer::inline v0::detail {

/// Where a model runs.
struct Device {
  enum class Kind { kCpu, kCuda };
  Kind kind = Kind::kCpu;
  int ordinal = 0;  ///< GPU index for kCuda

  [[nodiscard]] bool is_gpu() const noexcept { return kind != Kind::kCpu; }
  /// "cpu", or "cuda:N" ("hip:N" in a HIP build).
  [[nodiscard]] std::string name() const;
};

/// Parses "cpu", "cuda" (= cuda:0), "cuda:N", "hip" or "hip:N" (case-insensitive; "" is cpu).
/// A HIP build's GPU backend answers to both names (as ROCm builds of PyTorch answer to
/// "cuda"); hip names need a HIP build. Throws Error(kInvalidArgument) naming `where` for
/// anything else, and Error(kUnsupported) for a GPU the build has no backend for.
[[nodiscard]] Device parse_device(std::string_view text, std::string_view where);

/// Where a model runs: one device, or a tensor-parallel split over several GPUs.
struct Placement {
  Device device;           ///< the device, or the split's first GPU
  std::vector<int> split;  ///< GPU ordinals of a split (2 or more), else empty
};

/// parse_device, or a comma-separated list of GPUs for a split ("cuda:0,cuda:1"; one GPU
/// listed twice puts two ranks on it). Throws as parse_device; a list with "cpu" is refused.
[[nodiscard]] Placement parse_placement(std::string_view text, std::string_view where);

/// Whether this build has a GPU backend (POLYINFER_WITH_CUDA, or POLYINFER_WITH_HIP).
[[nodiscard]] bool cuda_built() noexcept;
/// Whether that backend is HIP (POLYINFER_WITH_HIP).
[[nodiscard]] bool hip_built() noexcept;

}  // namespace polyinfer::inline v0::detail
