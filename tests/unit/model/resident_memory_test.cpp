// SPDX-License-Identifier: Apache-2.0
// Resident memory of a loaded model: mapped weights that the CPU kernels repacked leave memory.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "polyinfer/model.hpp"
#include "polyinfer/model_writer.hpp"

namespace polyinfer::detail {
namespace {

namespace fs = std::filesystem;

// File-backed resident bytes of this process (RssFile of /proc/self/status); -1 when unknown.
int64_t resident_file_bytes() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "RssFile:") {
      int64_t kib = -1;
      status >> kib;
      return kib * 1024;
    }
    status.ignore(1 << 16, '\n');
  }
  return -1;
}

TEST_CASE("repacked weights leave the mapped file's pages out of memory", "[model][memory]") {
  if (resident_file_bytes() < 0) {
    WARN("no RssFile in /proc/self/status: skipped");
    return;
  }
  const fs::path path =
      fs::temp_directory_path() / ("polyinfer-rss-" + std::to_string(::getpid()) + ".gguf");
  struct Remove {
    fs::path path;
    ~Remove() {
      std::error_code ec;
      fs::remove(path, ec);
    }
  } remove{path};
  // ~56 MB of Q8_0 matrices: far above what the test binary's own pages move by.
  synthesize_model(synth_custom_shape(1024, 4, 2816, 16, 4, 4096), path,
                   {.type = WeightType::kQ8_0});
  const auto file_bytes = static_cast<int64_t>(fs::file_size(path));

  const int64_t before = resident_file_bytes();
  LanguageModel model = LanguageModel::load(path, {.threads = 1, .context_length = 64});
  if (model.repacked_weight_bytes() == 0) {
    WARN("the kernels use the stored layout at this ISA level: nothing to release");
    return;
  }
  const int64_t loaded = resident_file_bytes() - before;
  INFO("file " << file_bytes << " bytes, repacked " << model.repacked_weight_bytes()
               << ", file-backed resident after load +" << loaded);
  CHECK(loaded < file_bytes / 4);

  // Inference reads the repacked copies (and a few embedding rows), not the mapped matrices.
  const std::array<int32_t, 4> ids = {1, 17, 300, 4000};
  const std::vector<float> logits = model.logits(ids);
  REQUIRE(logits.size() == ids.size() * 4096);
  const int64_t after = resident_file_bytes() - before;
  INFO("file-backed resident after inference +" << after);
  CHECK(after < file_bytes / 4);
}

}  // namespace
}  // namespace polyinfer::detail
