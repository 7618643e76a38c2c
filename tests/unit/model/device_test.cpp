// SPDX-License-Identifier: Apache-2.0
// Device names: what parses, what is refused and how the refusal reads, with and without CUDA.
#include <catch2/catch.hpp>

#include "backend/device.hpp"
#include "polyinfer/error.hpp"
#include "polyinfer/model.hpp"
#include "support/fixtures.hpp"

using polyinfer::Error;
using polyinfer::ErrorCode;
using polyinfer::detail::cuda_built;
using polyinfer::detail::Device;
using polyinfer::detail::parse_device;

namespace {

// parse_device(text, where) throws Error(code) whose message names `where` and `fragment`.
void check_refused(const char* text, const char* where, ErrorCode code, const char* fragment) {
  INFO(text);
  try {
    (void)parse_device(text, where);
    FAIL("accepted");
  } catch (const Error& e) {
    CHECK(e.code() == code);
    CHECK(std::string(e.what()).find(where) != std::string::npos);
    CHECK(std::string(e.what()).find(fragment) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("device names: cpu, cuda, cuda:N", "[device]") {
  CHECK(parse_device("", "d").kind == Device::Kind::kCpu);
  CHECK(parse_device("cpu", "d").kind == Device::Kind::kCpu);
  CHECK(parse_device("CPU", "d").name() == "cpu");
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "cuda:1x", "cud", "cpu:0", "tpu"}) {
    check_refused(bad, "model m: device", ErrorCode::kInvalidArgument, "cpu, cuda, cuda:N");
  }
  if (cuda_built()) {
    const std::string gpu = polyinfer::detail::hip_built() ? "hip" : "cuda";
    CHECK(parse_device("cuda", "d").name() == gpu + ":0");
    const Device device = parse_device("CUDA:3", "d");
    CHECK(device.is_gpu());
    CHECK(device.ordinal == 3);
    CHECK(device.name() == gpu + ":3");
  } else {
    check_refused("cuda:0", "d", ErrorCode::kUnsupported, "no CUDA backend");
  }
}

TEST_CASE("device names: hip, hip:N", "[device]") {
  using polyinfer::detail::hip_built;
  for (const char* bad : {"hip:", "hip:x", "hip:-1", "hipp", "hip0"}) {
    INFO(bad);
    CHECK_THROWS_WITH(parse_device(bad, "d"),
                      Catch::Contains("unknown device") && Catch::Contains("hip:N"));
  }
  if (hip_built()) {
    CHECK(parse_device("HIP:2", "d").ordinal == 2);
    CHECK(parse_device("hip", "d").name() == "hip:0");
    CHECK(parse_device("cuda:1", "d").name() == "hip:1");  // the same GPUs
  } else {
    check_refused("hip:0", "model m: device", ErrorCode::kUnsupported, "no HIP backend");
  }
}

TEST_CASE("device lists: a split over GPUs", "[device]") {
  using polyinfer::detail::parse_placement;
  CHECK(parse_placement("cpu", "d").split.empty());
  CHECK_THROWS_WITH(parse_placement("cpu,cuda:1", "model m: device"),
                    Catch::Contains("model m: device"));
  CHECK_THROWS_WITH(parse_placement("gpu,cuda:0", "d"), Catch::Contains("unknown device"));
  if (cuda_built()) {
    const auto placement = parse_placement("cuda:1,CUDA:0", "d");
    CHECK(placement.device.ordinal == 1);
    CHECK(placement.split == std::vector<int>{1, 0});
    CHECK(parse_placement("cuda:2", "d").split.empty());
    CHECK_THROWS_WITH(parse_placement("cuda:0,cpu", "d"), Catch::Contains("GPUs only"));
  } else {
    CHECK_THROWS_WITH(parse_placement("cuda:0,cuda:1", "d"), Catch::Contains("no CUDA backend"));
  }
}

TEST_CASE("device option: encoders refuse a GPU, decoders name what is missing", "[device]") {
  POLYINFER_SHARED_OR_RETURN(bert, "fixtures/models/tiny-bert");
  POLYINFER_SHARED_OR_RETURN(llama, "fixtures/models/tiny-llama");
  CHECK_THROWS_WITH(polyinfer::Encoder::load(bert, {.device = "cuda:0"}),
                    Catch::Contains("encoders run on the cpu"));
  // cuda:64 exists nowhere: either no such GPU or no CUDA backend, never a crash.
  CHECK_THROWS_WITH(polyinfer::LanguageModel::load(llama, {.device = "cuda:64"}),
                    Catch::Contains("no such GPU") || Catch::Contains("no CUDA backend"));
  CHECK_THROWS_WITH(polyinfer::LanguageModel::load(llama, {.device = "vulkan"}),
                    Catch::Contains("unknown device"));
}
