// SPDX-License-Identifier: Apache-2.0
// A minimal test harness for the GPU tests (GPU machines may lack Catch2) and their helpers:
// device arrays, random data, error measures.
#pragma once

#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_ops.hpp"

namespace polyinfer::detail::gpu_test {

/// A registered test case.
struct Case {
  const char* name;
  void (*run)();
};

std::vector<Case>& registry();

struct Registrar {
  Registrar(const char* name, void (*run)()) { registry().push_back({name, run}); }
};

/// Records a failed check (file, line, what) and prints it; the case continues.
void record_failure(const char* file, int line, const std::string& what);
/// Checks made so far (failed or not).
void record_check();

/// printf into a std::string.
std::string format(const char* pattern, ...) __attribute__((format(printf, 1, 2)));

}  // namespace polyinfer::detail::gpu_test

#define GPU_TEST(name)                                                                  \
  static void name();                                                                   \
  static const ::polyinfer::detail::gpu_test::Registrar name##_registrar(#name, &name); \
  static void name()

/// Checks `condition`; on failure prints the condition and the printf-style context.
#define GPU_CHECK(condition, ...)                                                               \
  do {                                                                                          \
    ::polyinfer::detail::gpu_test::record_check();                                              \
    if (!(condition)) {                                                                         \
      ::polyinfer::detail::gpu_test::record_failure(                                            \
          __FILE__, __LINE__,                                                                   \
          std::string(#condition) + ": " + ::polyinfer::detail::gpu_test::format(__VA_ARGS__)); \
    }                                                                                           \
  } while (0)

/// Checks that a gpu::Status is kOk.
#define GPU_OK(expression)                                                                 \
  do {                                                                                     \
    const ::polyinfer::detail::gpu::Status gpu_ok_status_ = (expression);                  \
    GPU_CHECK(gpu_ok_status_ == ::polyinfer::detail::gpu::Status::kOk, "%s returned %s",   \
              #expression,                                                                 \
              std::string(::polyinfer::detail::gpu::status_name(gpu_ok_status_)).c_str()); \
  } while (0)

namespace polyinfer::detail::gpu_test {

/// Whether two host arrays hold the same bytes (floats compared bit for bit, NaNs included).
template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

/// The stream every test works on: an owned non-blocking stream, as the backend will use (the
/// GEMV's programmatic dependent launch is exercised there, not on the legacy stream).
gpu::Stream test_stream();

/// A typed device array with host round trips (aborts the check, not the program, on errors).
template <typename T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t count) : count_(count) {
    GPU_OK(gpu::DeviceBuffer::allocate(count * sizeof(T), &buffer_));
  }
  explicit DeviceArray(const std::vector<T>& values) : DeviceArray(values.size()) {
    GPU_OK(gpu::copy_to_device(buffer_.data(), values.data(), values.size() * sizeof(T),
                               test_stream()));
  }
  [[nodiscard]] T* data() const { return buffer_.as<T>(); }
  [[nodiscard]] size_t size() const { return count_; }
  [[nodiscard]] std::vector<T> to_host() const {
    std::vector<T> values(count_);
    GPU_OK(gpu::copy_to_host(values.data(), buffer_.data(), count_ * sizeof(T), test_stream()));
    return values;
  }
  /// Fills every byte with 0xFF (NaN for floats): unwritten outputs show.
  void poison() {
    GPU_OK(gpu::fill_bytes(buffer_.data(), 0xFF, count_ * sizeof(T), test_stream()));
  }

 private:
  size_t count_;
  gpu::DeviceBuffer buffer_;
};

inline std::vector<float> gaussian(size_t count, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> values(count);
  for (float& v : values) v = dist(rng);
  return values;
}

/// Largest |got − want| / (floor + |want|); NaN in `got` counts as infinite.
inline double max_relative_error(const std::vector<float>& got, const std::vector<float>& want,
                                 double floor) {
  double worst = 0.0;
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    const double error = std::fabs(static_cast<double>(got[i]) - want[i]);
    worst = std::max(worst, error / (floor + std::fabs(static_cast<double>(want[i]))));
  }
  return worst;
}

}  // namespace polyinfer::detail::gpu_test
