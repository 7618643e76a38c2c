// SPDX-License-Identifier: Apache-2.0
// Random numbers for synthetic weights: seeded per row, normal samples by table look-up.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace polyinfer::inline v0::detail {

/// splitmix64: a 64-bit mixer, used to seed and to derive independent streams.
[[nodiscard]] constexpr uint64_t splitmix64(uint64_t& state) noexcept {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// FNV-1a of a name: tensors get streams by name, so values do not depend on tensor order.
[[nodiscard]] constexpr uint64_t name_hash(std::string_view name) noexcept {
  uint64_t hash = 0xCBF29CE484222325ULL;
  for (const char c : name) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001B3ULL;
  }
  return hash;
}

/// xoshiro256**: fast, good quality, reproducible everywhere.
class Xoshiro256 {
 public:
  /// A stream for (seed, stream, index): e.g. (user seed, tensor name hash, row).
  Xoshiro256(uint64_t seed, uint64_t stream, uint64_t index) noexcept {
    uint64_t mix = seed;
    mix = splitmix64(mix) ^ stream;
    mix = splitmix64(mix) ^ index;
    for (uint64_t& word : state_) word = splitmix64(mix);
  }
  [[nodiscard]] uint64_t next() noexcept {
    const uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

 private:
  static constexpr uint64_t rotl(uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::array<uint64_t, 4> state_{};
};

/// Standard normal samples from 32 random bits: the inverse normal CDF tabulated at 4096
/// equal-probability cells (tails cut at ±4.26σ, the 1e-5 quantiles), linear inside a cell.
/// About 1 ns per sample; mean 0 and standard deviation 1 to within 0.1 %.
class NormalTable {
 public:
  [[nodiscard]] static const NormalTable& instance();
  [[nodiscard]] float sample(uint32_t bits) const noexcept {
    const uint32_t cell = bits >> 20;
    const float fraction = static_cast<float>(bits & 0xFFFFFu) * (1.0f / 1048576.0f);
    return quantiles_[cell] + fraction * (quantiles_[cell + 1] - quantiles_[cell]);
  }

 private:
  NormalTable();
  std::array<float, 4097> quantiles_{};
};

/// Fills `count` values with mean + std · N(0, 1) from `rng`.
void fill_normal(Xoshiro256& rng, float mean, float std, float* out, int64_t count) noexcept;

}  // namespace polyinfer::inline v0::detail
