// SPDX-License-Identifier: Apache-2.0
// GPU norms, RoPE, element-wise ops, softmax and the streaming kernel against kernels/ref.
#include <cmath>
#include <cstring>

#include "kernels/ref/ops_ref.hpp"
#include "tests/cuda/check.hpp"

namespace polyinfer::detail::gpu_test {
namespace {

// f32 sums and library exp / erfc against double references: a few ulps per element, a few
// more for block-reduced sums.
constexpr double kTolerance = 2e-5;

GPU_TEST(norms) {
  uint32_t seed = 1;
  for (const auto& [rows, cols] :
       {std::pair<int64_t, int64_t>{3, 1}, {5, 4096}, {2, 1000}, {130, 257}, {1, 14336}}) {
    const std::vector<float> x = gaussian(static_cast<size_t>(rows * cols), seed++, 3.0f);
    const std::vector<float> weight = gaussian(static_cast<size_t>(cols), seed++);
    const std::vector<float> bias = gaussian(static_cast<size_t>(cols), seed++);
    DeviceArray<float> x_device(x);
    DeviceArray<float> weight_device(weight);
    DeviceArray<float> bias_device(bias);
    DeviceArray<float> y_device(x.size());
    std::vector<float> want(x.size());

    y_device.poison();
    GPU_OK(gpu::rms_norm(x_device.data(), weight_device.data(), 1e-5f, rows, cols, y_device.data(),
                         test_stream()));
    ref::rms_norm(x.data(), weight.data(), 1e-5f, rows, cols, want.data());
    double error = max_relative_error(y_device.to_host(), want, 1e-3);
    GPU_CHECK(error <= kTolerance, "rms_norm %lldx%lld: %g", static_cast<long long>(rows),
              static_cast<long long>(cols), error);

    for (const bool with_bias : {false, true}) {
      y_device.poison();
      GPU_OK(gpu::layer_norm(x_device.data(), weight_device.data(),
                             with_bias ? bias_device.data() : nullptr, 1e-5f, rows, cols,
                             y_device.data(), test_stream()));
      ref::layer_norm(x.data(), weight.data(), with_bias ? bias.data() : nullptr, 1e-5f, rows, cols,
                      want.data());
      // Error relative to max(|y|, 1): with a bias, w·x̂ + b cancels to near zero in places, where
      // a relative bound measures only f32 rounding of the two addends (seen: 6e-5 at |y|~1e-3).
      error = max_relative_error(y_device.to_host(), want, 1.0);
      GPU_CHECK(error <= kTolerance, "layer_norm %lldx%lld bias %d: %g",
                static_cast<long long>(rows), static_cast<long long>(cols), with_bias ? 1 : 0,
                error);
    }
  }
}

GPU_TEST(rope_both_layouts) {
  uint32_t seed = 10;
  for (const int64_t head_dim : {64, 128, 96}) {
    for (const RopeLayout layout : {RopeLayout::kInterleaved, RopeLayout::kHalf}) {
      for (const bool llama3 : {false, true}) {
        const int64_t tokens = 5;
        const int64_t heads = 3;
        const int64_t row_stride = heads * head_dim + 7;
        const RopeTable table =
            ref::make_rope_table(head_dim, 500000.0, llama3 ? "llama3" : "", 8.0, 1.0, 4.0, 8192);
        const std::vector<float> inv_freq(table.inv_freq.get(),
                                          table.inv_freq.get() + head_dim / 2);
        std::mt19937 rng(seed);
        std::uniform_int_distribution<int32_t> position(0, 131071);
        std::vector<int32_t> positions(static_cast<size_t>(tokens));
        for (int32_t& p : positions) p = position(rng);
        positions[0] = 0;
        std::vector<float> x = gaussian(static_cast<size_t>(tokens * row_stride), seed++);
        DeviceArray<float> x_device(x);
        DeviceArray<int32_t> positions_device(positions);
        DeviceArray<float> inv_freq_device(inv_freq);
        GPU_OK(gpu::rope(x_device.data(), tokens, heads, head_dim, row_stride,
                         positions_device.data(), inv_freq_device.data(), layout, test_stream()));
        ref::rope(x.data(), tokens, heads, head_dim, row_stride, positions.data(), table, layout);
        const double error = max_relative_error(x_device.to_host(), x, 1e-3);
        GPU_CHECK(error <= 1e-6, "rope dim %lld layout %d llama3 %d: %g",
                  static_cast<long long>(head_dim), static_cast<int>(layout), llama3 ? 1 : 0,
                  error);
      }
    }
  }
}

GPU_TEST(elementwise) {
  for (const int64_t count : {int64_t{1}, int64_t{1000003}}) {
    const std::vector<float> a = gaussian(static_cast<size_t>(count), 20, 4.0f);
    const std::vector<float> b = gaussian(static_cast<size_t>(count), 21);
    DeviceArray<float> a_device(a);
    DeviceArray<float> b_device(b);
    DeviceArray<float> out_device(a.size());
    std::vector<float> want(a.size());

    out_device.poison();
    GPU_OK(
        gpu::silu_mul(a_device.data(), b_device.data(), out_device.data(), count, test_stream()));
    ref::silu_mul(a.data(), b.data(), want.data(), count);
    double error = max_relative_error(out_device.to_host(), want, 1e-6);
    GPU_CHECK(error <= kTolerance, "silu_mul %lld: %g", static_cast<long long>(count), error);

    out_device.poison();
    GPU_OK(gpu::gelu(a_device.data(), out_device.data(), count, test_stream()));
    ref::gelu(a.data(), want.data(), count);
    error = max_relative_error(out_device.to_host(), want, 1e-6);
    GPU_CHECK(error <= kTolerance, "gelu %lld: %g", static_cast<long long>(count), error);

    GPU_OK(gpu::add(a_device.data(), b_device.data(), a_device.data(), count,
                    test_stream()));  // aliased
    for (size_t i = 0; i < a.size(); ++i) want[i] = a[i] + b[i];
    error = max_relative_error(a_device.to_host(), want, 0.0);
    GPU_CHECK(error == 0.0, "add %lld: %g", static_cast<long long>(count), error);
  }
}

GPU_TEST(softmax_rows) {
  uint32_t seed = 30;
  for (const auto& [rows, cols] :
       {std::pair<int64_t, int64_t>{3, 1}, {4, 7}, {2, 5000}, {1, 128256}}) {
    std::vector<float> x = gaussian(static_cast<size_t>(rows * cols), seed++, 5.0f);
    DeviceArray<float> x_device(x);
    GPU_OK(gpu::softmax(x_device.data(), rows, cols, test_stream()));
    ref::softmax(x.data(), rows, cols);
    const double error = max_relative_error(x_device.to_host(), x, 1e-9);
    GPU_CHECK(error <= kTolerance, "softmax %lldx%lld: %g", static_cast<long long>(rows),
              static_cast<long long>(cols), error);
  }
}

GPU_TEST(greedy_rows_match_the_cpu_pick) {
  uint32_t seed = 40;
  for (const auto& [rows, vocab] : {std::pair<int64_t, int64_t>{1, 1},
                                    {3, 7},
                                    {5, 1025},
                                    {2, 32000},
                                    {1, 128256},
                                    {130, 4099}}) {
    std::vector<float> logits = gaussian(static_cast<size_t>(rows * vocab), seed++, 4.0f);
    for (int64_t r = 0; r < rows; ++r) {
      float* row = logits.data() + r * vocab;
      if (r % 3 == 1 && vocab > 3) {  // a tie for the maximum: the lower id wins
        row[vocab - 1] = 50.0f;
        row[vocab / 2] = 50.0f;
      }
      if (r % 3 == 2 && vocab > 2) row[0] = -INFINITY;  // masked logits add nothing
    }
    DeviceArray<float> logits_device(logits);
    DeviceArray<GreedyPick> picks_device(static_cast<size_t>(rows));
    GPU_OK(gpu::greedy_rows(logits_device.data(), rows, vocab, picks_device.data(), test_stream()));
    const std::vector<GreedyPick> picks = picks_device.to_host();
    for (int64_t r = 0; r < rows; ++r) {
      const GreedyPick want = greedy_pick(logits.data() + r * vocab, vocab);
      const GreedyPick got = picks[static_cast<size_t>(r)];
      GPU_CHECK(got.id == want.id, "greedy %lldx%lld row %lld: id %d, want %d",
                static_cast<long long>(rows), static_cast<long long>(vocab),
                static_cast<long long>(r), got.id, want.id);
      // f32 sum of exps against a double one: relative to the normalizer's size.
      GPU_CHECK(std::fabs(got.logprob - want.logprob) <= 1e-5 * (1.0 + std::fabs(want.logprob)),
                "greedy %lldx%lld row %lld: logprob %g, want %g", static_cast<long long>(rows),
                static_cast<long long>(vocab), static_cast<long long>(r), got.logprob,
                want.logprob);
    }
  }
  DeviceArray<float> one(1);
  GPU_CHECK(
      gpu::greedy_rows(one.data(), 1, 0, nullptr, test_stream()) == gpu::Status::kInvalidArgument,
      "an empty vocabulary is refused");
}

GPU_TEST(sample_rows_match_the_host_sampler) {
  // Rules per row, cycled: {temperature, top_k, top_p, min_p, penalty}.
  const SampleSpec rules[] = {{0.8f, 0, 1.0f, 0.0f, 1.0f}, {1.0f, 40, 1.0f, 0.0f, 1.0f},
                              {0.7f, 0, 0.9f, 0.0f, 1.0f}, {1.2f, 50, 0.8f, 0.05f, 1.0f},
                              {0.6f, 0, 1.0f, 0.1f, 1.0f}, {0.0f, 0, 1.0f, 0.0f, 1.3f},
                              {1.0f, 1, 1.0f, 0.0f, 1.0f}, {0.9f, 1024, 1.0f, 0.0f, 1.2f},
                              {0.5f, 3, 0.5f, 0.0f, 0.8f}, {1.0f, 2000, 0.95f, 0.0f, 1.0f},
                              {1.5f, 0, 0.3f, 0.0f, 1.0f}, {1.0f, 100000, 1.0f, 0.0f, 1.0f}};
  constexpr int64_t kRules = sizeof(rules) / sizeof(rules[0]);
  uint32_t seed = 70;
  int64_t compared = 0;
  int64_t deferred = 0;
  for (const auto& [rows, vocab] : {std::pair<int64_t, int64_t>{12, 1},
                                    {24, 7},
                                    {36, 1025},
                                    {24, 32000},
                                    {36, 128256},
                                    {12, 4099}}) {
    std::vector<float> logits = gaussian(static_cast<size_t>(rows * vocab), seed++, 3.0f);
    std::mt19937_64 rng(seed++);
    std::vector<SampleSpec> specs(static_cast<size_t>(rows));
    std::vector<int32_t> penalized;
    for (int64_t r = 0; r < rows; ++r) {
      float* row = logits.data() + r * vocab;
      const int64_t kind = (r / kRules) % 3;
      if (kind == 1) {  // coarse logits: ties across every boundary
        for (int64_t i = 0; i < vocab; ++i) row[i] = std::round(row[i] * 2.0f) / 2.0f;
      } else if (kind == 2 && vocab > 4) {  // masked logits add nothing
        for (int64_t i = 0; i < vocab; i += 3) row[i] = -INFINITY;
      }
      SampleSpec& spec = specs[static_cast<size_t>(r)];
      spec = rules[r % kRules];
      spec.uniform = static_cast<double>(rng() >> 11) * 0x1.0p-53;
      spec.penalized_begin = static_cast<int32_t>(penalized.size());
      if (spec.repetition_penalty != 1.0f) {  // distinct ids
        for (int64_t i = static_cast<int64_t>(r % 5); i < vocab; i += 7 + r % 3) {
          penalized.push_back(static_cast<int32_t>(i));
        }
      }
      spec.penalized_count = static_cast<int32_t>(penalized.size()) - spec.penalized_begin;
    }
    if (penalized.empty()) penalized.push_back(0);
    DeviceArray<float> logits_device(logits);
    DeviceArray<SampleSpec> specs_device(specs);
    DeviceArray<int32_t> penalized_device(penalized);
    DeviceArray<float> scratch(static_cast<size_t>(rows * vocab));
    DeviceArray<SamplePick> picks_device(static_cast<size_t>(rows));
    picks_device.poison();
    GPU_OK(gpu::sample_rows(logits_device.data(), rows, vocab, specs_device.data(),
                            penalized_device.data(), scratch.data(), picks_device.data(),
                            test_stream()));
    const std::vector<SamplePick> picks = picks_device.to_host();
    GPU_OK(gpu::sample_rows(logits_device.data(), rows, vocab, specs_device.data(),
                            penalized_device.data(), scratch.data(), picks_device.data(),
                            test_stream()));
    GPU_CHECK(same_bits(picks_device.to_host(), picks), "sample %lldx%lld: a second run differs",
              static_cast<long long>(rows), static_cast<long long>(vocab));
    SampleScratch host_scratch;
    for (int64_t r = 0; r < rows; ++r) {
      const SampleSpec& spec = specs[static_cast<size_t>(r)];
      const SamplePick want =
          sample_pick(logits.data() + r * vocab, vocab, spec, penalized.data(), host_scratch);
      const SamplePick got = picks[static_cast<size_t>(r)];
      const int64_t count = spec.top_k > 0 && spec.top_k < vocab ? spec.top_k : vocab;
      const bool sorted = spec.temperature > 0.0f && (spec.top_k > 0 || spec.top_p < 1.0f);
      if (got.deferred != 0) {
        deferred += 1;
        GPU_CHECK(sorted && count > gpu::kSampleCandidates,
                  "sample %lldx%lld row %lld: deferred with %lld candidates",
                  static_cast<long long>(rows), static_cast<long long>(vocab),
                  static_cast<long long>(r), static_cast<long long>(count));
        continue;
      }
      compared += 1;
      GPU_CHECK(got.id == want.id, "sample %lldx%lld row %lld (rules %lld): id %d, want %d",
                static_cast<long long>(rows), static_cast<long long>(vocab),
                static_cast<long long>(r), static_cast<long long>(r % kRules), got.id, want.id);
      GPU_CHECK(std::fabs(got.logprob - want.logprob) <= 1e-5 * (1.0 + std::fabs(want.logprob)),
                "sample %lldx%lld row %lld: logprob %g, want %g", static_cast<long long>(rows),
                static_cast<long long>(vocab), static_cast<long long>(r), got.logprob,
                want.logprob);
      GPU_CHECK(std::fabs(got.top_logprob - want.top_logprob) <=
                    1e-5 * (1.0 + std::fabs(want.top_logprob)),
                "sample %lldx%lld row %lld: top logprob %g, want %g", static_cast<long long>(rows),
                static_cast<long long>(vocab), static_cast<long long>(r), got.top_logprob,
                want.top_logprob);
    }
  }
  // Most rows are decided on the device (the deferred ones: top-k 2000 or wide nuclei).
  GPU_CHECK(compared >= 4 * deferred, "sample: %lld rows compared, %lld deferred",
            static_cast<long long>(compared), static_cast<long long>(deferred));
  DeviceArray<float> one(1);
  GPU_CHECK(gpu::sample_rows(one.data(), 1, 0, nullptr, nullptr, nullptr, nullptr, test_stream()) ==
                gpu::Status::kInvalidArgument,
            "an empty vocabulary is refused");
}

GPU_TEST(stream_read_runs) {
  const size_t words = (size_t{64} << 20) / 4;
  DeviceArray<uint32_t> data(words);
  DeviceArray<uint64_t> sink(1);
  GPU_OK(gpu::fill_bytes(data.data(), 0x5A, words * 4, test_stream()));
  for (int variant = 0; variant < gpu::stream_read_variants(); ++variant) {
    GPU_OK(gpu::stream_read(data.data(), words * 4, sink.data(), variant, test_stream()));
  }
  GPU_OK(gpu::synchronize(test_stream()));
  GPU_CHECK(gpu::stream_read(data.data(), 8, sink.data(), 0, test_stream()) ==
                gpu::Status::kInvalidArgument,
            "sizes not a multiple of 16 are refused");
}

}  // namespace
}  // namespace polyinfer::detail::gpu_test
