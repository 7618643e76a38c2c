// SPDX-License-Identifier: Apache-2.0
// A deterministic mutation driver for the fuzz targets where libFuzzer is not available (gcc
// builds, CI): runs LLVMFuzzerTestOneInput on each seed, its truncations and random mutations.
//   fuzz_smoke_X ITERATIONS_PER_SEED SEED_FILE_OR_DIR...
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(next() % n); }
};

void run(const std::vector<uint8_t>& input) {
  // Copy into an exactly-sized heap buffer so ASan sees reads past the end.
  std::vector<uint8_t> exact(input);
  exact.shrink_to_fit();
  LLVMFuzzerTestOneInput(exact.empty() ? nullptr : exact.data(), exact.size());
}

std::vector<uint8_t> mutate(std::vector<uint8_t> data, SplitMix64& rng) {
  static constexpr uint8_t kInteresting[] = {0x00, 0x01, 0x7F, 0x80, 0xFF, '"', '{', '}', '[', ']'};
  const int edits = 1 + static_cast<int>(rng.below(8));
  for (int e = 0; e < edits; ++e) {
    switch (rng.below(6)) {
      case 0:
        if (!data.empty()) data[rng.below(data.size())] ^= static_cast<uint8_t>(1u << rng.below(8));
        break;
      case 1:
        if (!data.empty()) data[rng.below(data.size())] = kInteresting[rng.below(10)];
        break;
      case 2:
        if (!data.empty()) data.resize(rng.below(data.size()));
        break;
      case 3: {  // overwrite 8 bytes with a large or negative count
        if (data.size() >= 8) {
          const size_t at = rng.below(data.size() - 7);
          const uint64_t value = rng.below(2) ? ~0ull >> rng.below(64) : rng.below(1u << 20);
          for (int b = 0; b < 8; ++b) data[at + b] = static_cast<uint8_t>(value >> (8 * b));
        }
        break;
      }
      case 4: {  // duplicate a chunk
        if (!data.empty() && data.size() < (1u << 22)) {
          const size_t at = rng.below(data.size());
          const size_t len = 1 + rng.below(std::min<size_t>(64, data.size() - at));
          data.insert(data.begin() + static_cast<std::ptrdiff_t>(rng.below(data.size())),
                      data.begin() + static_cast<std::ptrdiff_t>(at),
                      data.begin() + static_cast<std::ptrdiff_t>(at + len));
        }
        break;
      }
      default: {  // delete a chunk
        if (!data.empty()) {
          const size_t at = rng.below(data.size());
          const size_t len = 1 + rng.below(std::min<size_t>(64, data.size() - at));
          data.erase(data.begin() + static_cast<std::ptrdiff_t>(at),
                     data.begin() + static_cast<std::ptrdiff_t>(at + len));
        }
      }
    }
  }
  return data;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s ITERATIONS_PER_SEED SEED...\n", argv[0]);
    return 2;
  }
  const long iterations = std::strtol(argv[1], nullptr, 10);
  std::vector<std::filesystem::path> seeds;
  for (int i = 2; i < argc; ++i) {
    const std::filesystem::path p = argv[i];
    if (std::filesystem::is_directory(p)) {
      for (const auto& entry : std::filesystem::recursive_directory_iterator(p)) {
        if (entry.is_regular_file()) seeds.push_back(entry.path());
      }
    } else if (std::filesystem::exists(p)) {
      seeds.push_back(p);
    } else if (std::getenv("CI") != nullptr) {
      std::fprintf(stderr, "seed missing under CI: %s\n", p.c_str());
      return 1;
    }
  }
  SplitMix64 rng{12345};
  long runs = 0;
  for (const auto& seed : seeds) {
    std::ifstream in(seed, std::ios::binary);
    const std::vector<uint8_t> data{std::istreambuf_iterator<char>(in),
                                    std::istreambuf_iterator<char>()};
    run(data);
    for (size_t cut : {size_t{0}, size_t{1}, size_t{4}, size_t{8}, data.size() / 2,
                       data.size() > 0 ? data.size() - 1 : 0}) {
      if (cut <= data.size()) run({data.begin(), data.begin() + static_cast<std::ptrdiff_t>(cut)});
    }
    for (long i = 0; i < iterations; ++i) run(mutate(data, rng));
    runs += iterations + 7;
  }
  std::printf("%ld inputs from %zu seeds, no crash\n", runs, seeds.size());
  return seeds.empty() ? 1 : 0;
}
