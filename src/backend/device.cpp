// SPDX-License-Identifier: Apache-2.0
// Device names and the build's backends.
#include "backend/device.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>

#include "common/fail.hpp"

namespace polyinfer::inline v0::detail {

std::string Device::name() const {
  if (kind == Kind::kCpu) return "cpu";
  return fmt::format("{}:{}", hip_built() ? "hip" : "cuda", ordinal);
}

bool cuda_built() noexcept {
#if defined(POLYINFER_HAVE_CUDA)
  return true;
#else
  return false;
#endif
}

bool hip_built() noexcept {
#if defined(POLYINFER_HAVE_HIP)
  return true;
#else
  return false;
#endif
}

Device parse_device(std::string_view text, std::string_view where) {
  std::string lower;
  for (const char c : text) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.empty() || lower == "cpu") return {};
  Device device{Device::Kind::kCuda, 0};
  const bool hip = lower.starts_with("hip");
  const std::string_view prefix = hip ? "hip" : "cuda";
  if (lower != prefix) {
    const bool prefixed =
        lower.starts_with(prefix) && lower.size() > prefix.size() && lower[prefix.size()] == ':';
    const std::string_view rest =
        prefixed ? std::string_view(lower).substr(prefix.size() + 1) : std::string_view();
    const auto [end, error] =
        std::from_chars(rest.data(), rest.data() + rest.size(), device.ordinal);
    if (!prefixed || rest.empty() || error != std::errc() || end != rest.data() + rest.size() ||
        device.ordinal < 0) {
      fail(ErrorCode::kInvalidArgument, std::string(where),
           "unknown device '{}' (cpu, cuda, cuda:N, hip, hip:N)", text);
    }
  }
  if (hip && !hip_built()) {
    fail(ErrorCode::kUnsupported, std::string(where),
         "device '{}': this build has no HIP backend (configure with POLYINFER_WITH_HIP=ON)", text);
  }
  if (!cuda_built()) {
    fail(ErrorCode::kUnsupported, std::string(where),
         "device '{}': this build has no CUDA backend (configure with POLYINFER_WITH_CUDA=ON)",
         text);
  }
  return device;
}

Placement parse_placement(std::string_view text, std::string_view where) {
  if (text.find(',') == std::string_view::npos) return {parse_device(text, where), {}};
  Placement placement;
  for (size_t at = 0; at <= text.size();) {
    const size_t comma = std::min(text.find(',', at), text.size());
    const std::string_view item = text.substr(at, comma - at);
    at = comma + 1;
    const Device device = parse_device(item, where);
    if (!device.is_gpu()) {
      fail(ErrorCode::kInvalidArgument, std::string(where),
           "'{}': a split lists GPUs only (cuda:0,cuda:1)", text);
    }
    if (placement.split.empty()) placement.device = device;
    placement.split.push_back(device.ordinal);
  }
  return placement;
}

}  // namespace polyinfer::inline v0::detail
