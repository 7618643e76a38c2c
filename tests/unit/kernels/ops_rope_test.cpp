// SPDX-License-Identifier: Apache-2.0
// RoPE: inverse-frequency tables (plain, linear, llama3), a hand-computed rotation, both
// layouts at every ISA level against kernels/ref, and the GGUF permutation between them.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "kernels/ops.hpp"
#include "kernels/ref/ops_ref.hpp"
#include "ops_test_support.hpp"

namespace polyinfer::detail {
namespace {

using test_ops::gaussian;
using test_ops::isa_levels;
using test_ops::IsaScope;

TEST_CASE("rope tables: plain, linear and invalid arguments", "[kernels][ops]") {
  const RopeTable plain = make_rope_table(4, 10000.0, "", 1.0, 1.0, 4.0, 8192);
  REQUIRE(plain.head_dim == 4);
  CHECK(plain.inv_freq[0] == 1.0f);
  CHECK(plain.inv_freq[1] == 0.01f);
  const RopeTable linear = make_rope_table(4, 10000.0, "linear", 4.0, 1.0, 4.0, 8192);
  REQUIRE(linear.head_dim == 4);
  CHECK(linear.inv_freq[0] == 0.25f);
  CHECK(linear.inv_freq[1] == 0.0025f);
  CHECK(make_rope_table(4, 10000.0, "yarn", 4.0, 1.0, 4.0, 8192).head_dim == 0);
  CHECK(make_rope_table(5, 10000.0, "", 1.0, 1.0, 4.0, 8192).head_dim == 0);
  CHECK(make_rope_table(4, 10000.0, "llama3", 8.0, 4.0, 1.0, 8192).head_dim == 0);
  CHECK(make_rope_table(4, 10000.0, "llama3", 8.0, 1.0, 4.0, 0).head_dim == 0);
}

TEST_CASE("llama3 rope scaling equals transformers' _compute_llama3_parameters", "[kernels][ops]") {
  // Llama 3.1 8B: rope_theta 500000, head_dim 128, factor 8, low_freq_factor 1,
  // high_freq_factor 4, original_max_position_embeddings 8192. Expected values computed in
  // Python (float64, `math`) with the transformers formula term for term:
  //   inv = 1 / base ** (2i / dim); wavelen = 2π / inv
  //   scaled = inv / factor if wavelen > 8192 / low else inv
  //   if not (wavelen < 8192 / high) and not (wavelen > 8192 / low):
  //     smooth = (8192 / wavelen − low) / (high − low)
  //     scaled = (1 − smooth) · scaled / factor + smooth · scaled
  // Indices 0–28 keep θ_i (high frequency), 29–34 are interpolated, 35–63 are divided by 8.
  // transformers evaluates in float32: its values agree with these to ~2e−7 relative.
  const RopeTable table = make_rope_table(128, 500000.0, "llama3", 8.0, 1.0, 4.0, 8192);
  REQUIRE(table.head_dim == 128);
  const std::pair<int, double> expected[] = {
      {0, 1.0},
      {1, 0.8146172338565447},
      {20, 0.016560440080994446},
      {28, 0.0032114459947525913},
      {29, 0.002166570763503359},
      {30, 0.0013718935677611381},
      {31, 0.0008567514129196321},
      {32, 0.0005248461609929547},
      {33, 0.00031269375038406517},
      {34, 0.00017850781276799638},
      {35, 9.556212353964683e-05},
      {40, 3.428102195952591e-05},
      {50, 4.411534674558404e-06},
      {63, 3.068925988914511e-07},
  };
  for (const auto& [index, value] : expected) {
    CAPTURE(index);
    CHECK(table.inv_freq[index] == Approx(value).epsilon(1e-6));
  }
}

TEST_CASE("rope rotates a hand-computed case in both layouts", "[kernels][ops]") {
  // head_dim 4, θ = 10000: inverse frequencies 1 and 0.01; x = (1, 2, 3, 4) at position 3.
  // Interleaved pairs (x0, x1) at angle 3 and (x2, x3) at 0.03; half pairs (x0, x2) at 3 and
  // (x1, x3) at 0.03: (a, b) → (a·cos − b·sin, a·sin + b·cos), evaluated in Python.
  const RopeTable table = make_rope_table(4, 10000.0, "", 1.0, 1.0, 4.0, 8192);
  const int32_t position = 3;
  const float interleaved[] = {-1.27223251272018f, -1.8388649851410237f, 2.87866810043698f,
                               4.088186635603437f};
  const float half[] = {-1.413352520780047f, 1.8791180666879925f, -2.828857481741469f,
                        4.058191135400942f};
  for (const Isa isa : isa_levels()) {
    IsaScope scope(isa);
    CAPTURE(isa_name(isa));
    float x[] = {1.0f, 2.0f, 3.0f, 4.0f};
    rope(x, 1, 1, 4, 4, &position, table, RopeLayout::kInterleaved);
    for (int i = 0; i < 4; ++i) CHECK(x[i] == Approx(interleaved[i]).epsilon(1e-6));
    float y[] = {1.0f, 2.0f, 3.0f, 4.0f};
    rope(y, 1, 1, 4, 4, &position, table, RopeLayout::kHalf);
    for (int i = 0; i < 4; ++i) CHECK(y[i] == Approx(half[i]).epsilon(1e-6));
  }
}

TEST_CASE("rope matches the reference at every ISA level", "[kernels][ops]") {
  for (const int64_t head_dim : {int64_t{32}, int64_t{64}, int64_t{128}, int64_t{18}}) {
    constexpr int64_t kTokens = 5;
    constexpr int64_t kHeads = 3;
    const int64_t row_stride = kHeads * head_dim + 7;  // rows with padding after the heads
    const RopeTable table = make_rope_table(head_dim, 500000.0, "llama3", 8.0, 1.0, 4.0, 8192);
    const std::vector<int32_t> positions = {0, 1, 17, 4095, 131071};
    const std::vector<float> x = gaussian(static_cast<size_t>(kTokens * row_stride), 9);
    for (const RopeLayout layout : {RopeLayout::kInterleaved, RopeLayout::kHalf}) {
      std::vector<float> want = x;
      ref::rope(want.data(), kTokens, kHeads, head_dim, row_stride, positions.data(), table,
                layout);
      for (const Isa isa : isa_levels()) {
        IsaScope scope(isa);
        CAPTURE(isa_name(isa), head_dim, layout == RopeLayout::kHalf);
        std::vector<float> got = x;
        rope(got.data(), kTokens, kHeads, head_dim, row_stride, positions.data(), table, layout);
        CHECK(test_ops::max_abs_error(got, want) < 2e-6);
        for (int64_t t = 0; t < kTokens; ++t) {  // the padding is untouched
          for (int64_t c = kHeads * head_dim; c < row_stride; ++c) {
            CHECK(got[static_cast<size_t>(t * row_stride + c)] ==
                  x[static_cast<size_t>(t * row_stride + c)]);
          }
        }
      }
    }
  }
}

TEST_CASE("interleaved rope on GGUF-permuted rows equals half rope on HF rows", "[kernels][ops]") {
  // convert_hf_to_gguf permutes q/k weights w.reshape(n_head, 2, head_dim/2, in).swapaxes(1, 2):
  // within a head, GGUF row 2j + k is HF row k·head_dim/2 + j. So the GGUF model's q (kInterleaved)
  // is the HF model's q (kHalf) permuted the same way, before and after RoPE: bit for bit,
  // since both layouts evaluate a·cos − b·sin and a·sin + b·cos with the same operations.
  constexpr int64_t kTokens = 4;
  constexpr int64_t kHeads = 6;
  for (const int64_t head_dim : {int64_t{32}, int64_t{64}, int64_t{128}}) {
    const RopeTable table = make_rope_table(head_dim, 10000.0, "", 1.0, 1.0, 4.0, 8192);
    const std::vector<int32_t> positions = {0, 5, 600, 7000};
    const std::vector<float> hf = gaussian(static_cast<size_t>(kTokens * kHeads * head_dim), 10);
    const auto permute = [&](const std::vector<float>& rows) {
      std::vector<float> out(rows.size());
      const int64_t half = head_dim / 2;
      for (int64_t r = 0; r < kTokens * kHeads; ++r) {
        for (int64_t j = 0; j < half; ++j) {
          for (int64_t k = 0; k < 2; ++k) {
            out[static_cast<size_t>(r * head_dim + 2 * j + k)] =
                rows[static_cast<size_t>(r * head_dim + k * half + j)];
          }
        }
      }
      return out;
    };
    for (const Isa isa : isa_levels()) {
      IsaScope scope(isa);
      CAPTURE(isa_name(isa), head_dim);
      std::vector<float> rotated_hf = hf;
      rope(rotated_hf.data(), kTokens, kHeads, head_dim, kHeads * head_dim, positions.data(), table,
           RopeLayout::kHalf);
      std::vector<float> rotated_gguf = permute(hf);
      rope(rotated_gguf.data(), kTokens, kHeads, head_dim, kHeads * head_dim, positions.data(),
           table, RopeLayout::kInterleaved);
      CHECK(rotated_gguf == permute(rotated_hf));
    }
  }
}

}  // namespace
}  // namespace polyinfer::detail
