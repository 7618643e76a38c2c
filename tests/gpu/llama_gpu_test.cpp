// SPDX-License-Identifier: Apache-2.0
// Llama / Qwen2 on cuda:0 against the fixtures' references with the CPU bounds, and the GPU
// forward pass's own invariants: batches equal single sequences, prefix sharing, decode graphs.
// Without a GPU (CI) every case says so and passes: nothing here can run there.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

#include "conformance/model/llama_support.hpp"
#include "kernels/cuda/cuda_ops.hpp"
#include "model/llama.hpp"
#include "model/llama_gpu.hpp"
#include "polyinfer/model.hpp"
#include "support/fixtures.hpp"

namespace {

using polyinfer::Generation;
using polyinfer::GenerationOptions;
using polyinfer::KvCacheType;
using polyinfer::LanguageModel;
using polyinfer::LoadOptions;
using polyinfer::Tier;
using polyinfer::test::Difference;
using polyinfer::test::greedy_matches;
using polyinfer::test::prompt_logits;
using polyinfer::test::ReferenceFile;
using polyinfer::test::report_line;
namespace detail = polyinfer::detail;

constexpr const char* kModels[] = {"tiny-llama", "tiny-qwen2"};
constexpr double kF32Bound = 1e-4;  // × scale
constexpr double kF16Bound = 3e-3;  // × scale

bool have_gpu() {
  if (detail::gpu::device_count() > 0) return true;
  WARN("no GPU: the cuda model tests did not run");
  return false;
}

LoadOptions gpu_options(Tier tier, KvCacheType kv = KvCacheType::kF32) {
  return LoadOptions{.tier = tier, .threads = 1, .kv_type = kv, .device = "cuda:0"};
}

}  // namespace

TEST_CASE("cuda: f32 and f16 models match transformers with the CPU bounds", "[gpu][llama]") {
  if (!have_gpu()) return;
  for (const char* name : kModels) {
    POLYINFER_SHARED_OR_RETURN(folder, std::string("fixtures/models/") + name);
    const ReferenceFile reference(folder / "reference.safetensors");
    {
      LanguageModel model = LanguageModel::load(folder, gpu_options(Tier::kNative));
      const Difference logits = prompt_logits(model, reference, reference);
      report_line(name, "cuda hf f32", "transformers", logits, kF32Bound * logits.scale);
      CHECK(logits.max_abs <= kF32Bound * logits.scale);
      const int compared = greedy_matches(model, reference, 2 * kF32Bound * logits.scale, name);
      CHECK(compared > 0);
    }
    {
      LanguageModel model = LanguageModel::load(folder / "gguf" / fmt::format("{}-f16.gguf", name),
                                                gpu_options(Tier::kNative));
      const Difference logits = prompt_logits(model, reference, reference);
      report_line(name, "cuda gguf f16", "transformers", logits, kF16Bound * logits.scale);
      CHECK(logits.max_abs <= kF16Bound * logits.scale);
      CHECK(greedy_matches(model, reference, 2 * kF16Bound * logits.scale, name) > 0);
    }
  }
}

TEST_CASE("cuda: quantized GGUFs and derived tiers match llama.cpp", "[gpu][llama]") {
  if (!have_gpu()) return;
  struct Form {
    const char* quant;
    Tier derived;  // the tier derived from f32 with the same recipe
    double bound;  // vs llama.cpp
  };
  const Form forms[] = {
      {"q8_0", Tier::kQ8_0, 0.05}, {"q4_0", Tier::kQ4_0, 0.06}, {"q4_k_m", Tier::kQ4_K, 0.06}};
  for (const char* name : kModels) {
    POLYINFER_SHARED_OR_RETURN(folder, std::string("fixtures/models/") + name);
    const ReferenceFile reference(folder / "reference.safetensors");
    for (const Form& form : forms) {
      const ReferenceFile llamacpp(folder / fmt::format("llamacpp.{}.safetensors", form.quant));
      INFO(name << " " << form.quant);
      LanguageModel stored =
          LanguageModel::load(folder / "gguf" / fmt::format("{}-{}.gguf", name, form.quant),
                              gpu_options(Tier::kNative));
      const Difference from_file = prompt_logits(stored, reference, llamacpp);
      report_line(name, fmt::format("cuda gguf {}", form.quant), "llama.cpp", from_file,
                  form.bound);
      CHECK(from_file.max_abs <= form.bound);
      LanguageModel derived = LanguageModel::load(folder, gpu_options(form.derived));
      const Difference from_f32 = prompt_logits(derived, reference, llamacpp);
      report_line(name, fmt::format("cuda hf→{}", polyinfer::tier_name(form.derived)), "llama.cpp",
                  from_f32, form.bound);
      CHECK(from_f32.max_abs <= form.bound);
    }
  }
}

TEST_CASE("cuda: the KV-cache path lands on gen_logits; graphs replay the same steps",
          "[gpu][llama]") {
  if (!have_gpu()) return;
  for (const char* name : kModels) {
    POLYINFER_SHARED_OR_RETURN(folder, std::string("fixtures/models/") + name);
    const ReferenceFile reference(folder / "reference.safetensors");
    const polyinfer::ModelFile file = polyinfer::ModelFile::open(folder);
    const auto llama = detail::LlamaModel::load(file, Tier::kNative, false);
    const auto gpu = detail::GpuLlama::create(*llama, 0);
    detail::KvCache cache(llama->kv_shape(detail::KvType::kF32), 64 << 20, gpu->kv_memory());
    const int64_t vocab = llama->shape().vocab;
    std::vector<float> out;
    Difference kv_path;
    // Teacher-forced through the cache one token per pass: the second pass of each batch size
    // is captured as a graph and later passes replay it.
    for (int c = 0; c < reference.cases(); ++c) {
      const std::vector<int32_t> prompt = reference.i32(fmt::format("case{}.ids", c));
      const std::vector<int32_t> generated = reference.i32(fmt::format("case{}.gen_ids", c));
      const std::vector<float> gen_logits = reference.f32(fmt::format("case{}.gen_logits", c));
      const auto sequence = cache.create();
      const detail::BatchEntry first{sequence, prompt, detail::LogitsRows::kLast};
      REQUIRE(gpu->forward(std::span(&first, 1), cache, 512, out));
      kv_path.add(out.data(), gen_logits.data(), 1, vocab);
      for (size_t k = 0; k + 1 < generated.size(); ++k) {
        const detail::BatchEntry step{sequence, std::span(&generated[k], 1),
                                      detail::LogitsRows::kLast};
        REQUIRE(gpu->forward(std::span(&step, 1), cache, 512, out));
        kv_path.add(out.data(), gen_logits.data() + static_cast<int64_t>(k + 1) * vocab, 1, vocab);
      }
      cache.release(sequence);
    }
    INFO(name << " KV path vs gen_logits: " << kv_path.summary());
    report_line(name, "cuda kv path", "gen_logits", kv_path, kF32Bound * kv_path.scale);
    CHECK(kv_path.max_abs <= kF32Bound * kv_path.scale);
  }
}

TEST_CASE("cuda: a batch of sequences equals each sequence alone; shared prefixes agree",
          "[gpu][llama]") {
  if (!have_gpu()) return;
  POLYINFER_SHARED_OR_RETURN(folder, "fixtures/models/tiny-qwen2");
  const polyinfer::ModelFile file = polyinfer::ModelFile::open(folder);
  // F32 weights take the same cuBLAS path at every batch size: equal to rounding. Q8_0 runs
  // GEMV (8-bit activations) for small batches and GEMM (f16 activations) for large ones, so
  // batch composition changes rounding: the llama.cpp q8_0 bound applies.
  struct Form {
    Tier tier;
    detail::KvType kv;
    double bound;  // × scale
  };
  const Form forms[] = {{Tier::kNative, detail::KvType::kF32, 1e-4},
                        {Tier::kQ8_0, detail::KvType::kF16, 0.05}};
  for (const Form& form : forms) {
    const auto llama = detail::LlamaModel::load(file, form.tier, false);
    const auto gpu = detail::GpuLlama::create(*llama, 0);
    const int64_t vocab = llama->shape().vocab;
    const std::vector<std::vector<int32_t>> prompts = {
        {1, 5, 9, 22, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53},
        {7, 3},
        {1, 5, 9, 22, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 60, 61, 62}};
    const int32_t next[] = {100, 200, 300};

    // Alone: each prompt, then one decode step, in a cache of its own.
    std::vector<std::vector<float>> alone;
    for (size_t i = 0; i < prompts.size(); ++i) {
      detail::KvCache cache(llama->kv_shape(form.kv), 16 << 20, gpu->kv_memory());
      const auto s = cache.create();
      std::vector<float> out;
      const detail::BatchEntry prefill{s, prompts[i], detail::LogitsRows::kLast};
      REQUIRE(gpu->forward(std::span(&prefill, 1), cache, 256, out));
      alone.push_back(out);
      const detail::BatchEntry step{s, std::span(&next[i], 1), detail::LogitsRows::kLast};
      REQUIRE(gpu->forward(std::span(&step, 1), cache, 256, out));
      alone.push_back(out);
    }

    // Together: the three prefills in one pass (the third sharing the first's full block), then
    // the three decode steps in one pass, three times so that the batch-3 graph is captured.
    for (int round = 0; round < 3; ++round) {
      detail::KvCache cache(llama->kv_shape(form.kv), 16 << 20, gpu->kv_memory());
      std::vector<detail::KvCache::SequenceId> ids;
      for (size_t i = 0; i < prompts.size(); ++i) ids.push_back(cache.create());
      std::vector<float> out;
      const detail::BatchEntry first{ids[0], prompts[0], detail::LogitsRows::kLast};
      REQUIRE(gpu->forward(std::span(&first, 1), cache, 256, out));
      // The third prompt reuses the first's registered block of 16 tokens.
      const int64_t reused = cache.reuse_prefix(ids[2], prompts[2], 18);
      CHECK(reused == 16);
      const std::vector<detail::BatchEntry> prefill = {
          {ids[1], prompts[1], detail::LogitsRows::kLast},
          {ids[2], std::span(prompts[2]).subspan(static_cast<size_t>(reused)),
           detail::LogitsRows::kLast}};
      REQUIRE(gpu->forward(prefill, cache, 256, out));
      Difference prefills;
      prefills.add(out.data(), alone[2].data(), 1, vocab);
      prefills.add(out.data() + vocab, alone[4].data(), 1, vocab);
      INFO("round " << round << " prefills: " << prefills.summary());
      CHECK(prefills.max_abs <= form.bound * prefills.scale);
      const std::vector<detail::BatchEntry> decode = {
          {ids[0], std::span(&next[0], 1), detail::LogitsRows::kLast},
          {ids[1], std::span(&next[1], 1), detail::LogitsRows::kLast},
          {ids[2], std::span(&next[2], 1), detail::LogitsRows::kLast}};
      REQUIRE(gpu->forward(decode, cache, 256, out));
      Difference steps;
      for (size_t i = 0; i < 3; ++i) {
        steps.add(out.data() + static_cast<int64_t>(i) * vocab, alone[2 * i + 1].data(), 1, vocab);
      }
      INFO("round " << round << " decode: " << steps.summary());
      CHECK(steps.max_abs <= form.bound * steps.scale);
      CHECK(steps.top1_same == 3);
    }
  }
}

TEST_CASE("cuda: greedy picks on the device equal the pick from the copied logits",
          "[gpu][llama]") {
  if (!have_gpu()) return;
  POLYINFER_SHARED_OR_RETURN(folder, "fixtures/models/tiny-llama");
  const polyinfer::ModelFile file = polyinfer::ModelFile::open(folder);
  const auto llama = detail::LlamaModel::load(file, Tier::kQ8_0, false);
  const auto gpu = detail::GpuLlama::create(*llama, 0);
  const int64_t vocab = llama->shape().vocab;
  detail::KvCache cache(llama->kv_shape(detail::KvType::kF16), 16 << 20, gpu->kv_memory());
  const std::vector<int32_t> prompt = {1, 17, 230, 5, 99, 4, 61};
  // Two identical sequences: one reads logits, the other picks on the device (a prompt pass,
  // then decode steps past the graph capture).
  const auto a = cache.create();
  const auto b = cache.create();
  std::vector<float> logits;
  std::vector<detail::GreedyPick> picks;
  int32_t next_a = 0;
  int32_t next_b = 0;
  for (int step = 0; step < 5; ++step) {
    const std::span<const int32_t> tokens_a = step == 0 ? std::span(prompt) : std::span(&next_a, 1);
    const std::span<const int32_t> tokens_b = step == 0 ? std::span(prompt) : std::span(&next_b, 1);
    const detail::BatchEntry entry_a{a, tokens_a, detail::LogitsRows::kLast};
    const detail::BatchEntry entry_b{b, tokens_b, detail::LogitsRows::kLast};
    REQUIRE(gpu->forward(std::span(&entry_a, 1), cache, 64, logits));
    REQUIRE(gpu->forward_greedy(std::span(&entry_b, 1), cache, 64, picks));
    REQUIRE(picks.size() == 1);
    const detail::GreedyPick want = detail::greedy_pick(logits.data(), vocab);
    INFO("step " << step);
    CHECK(picks[0].id == want.id);
    CHECK(picks[0].logprob == Approx(want.logprob).margin(1e-4));
    next_a = want.id;
    next_b = picks[0].id;
  }
  // Both in one pass: one pick per sequence.
  const std::vector<detail::BatchEntry> both = {
      {a, std::span(&next_a, 1), detail::LogitsRows::kLast},
      {b, std::span(&next_b, 1), detail::LogitsRows::kLast}};
  REQUIRE(gpu->forward_greedy(both, cache, 64, picks));
  REQUIRE(picks.size() == 2);
  CHECK(picks[0].id == picks[1].id);
}

TEST_CASE("cuda: sampling on the device picks what sample_pick picks from the copied logits",
          "[gpu][llama][sample]") {
  if (!have_gpu()) return;
  POLYINFER_SHARED_OR_RETURN(folder, "fixtures/models/tiny-llama");
  const polyinfer::ModelFile file = polyinfer::ModelFile::open(folder);
  const auto llama = detail::LlamaModel::load(file, Tier::kQ8_0, false);
  const auto gpu = detail::GpuLlama::create(*llama, 0);
  const int64_t vocab = llama->shape().vocab;
  detail::KvCache cache(llama->kv_shape(detail::KvType::kF16), 16 << 20, gpu->kv_memory());
  std::vector<int32_t> history = {1, 17, 230, 5, 99, 4, 61};
  // Rules per step: temperature alone (id order), top-k, top-p with min-p, a penalty, top-k
  // past the device's candidates (finished on the host), temperature 0 with a penalty.
  const detail::SampleSpec rules[] = {{1.0f, 0, 1.0f, 0.0f, 1.0f},    {0.8f, 40, 1.0f, 0.0f, 1.0f},
                                      {1.1f, 0, 0.9f, 0.02f, 1.0f},   {0.9f, 0, 1.0f, 0.0f, 1.5f},
                                      {1.0f, 5000, 1.0f, 0.0f, 1.0f}, {0.0f, 0, 1.0f, 0.0f, 1.3f}};
  const auto a = cache.create();
  const auto b = cache.create();
  std::vector<float> logits;
  std::vector<detail::SamplePick> picks;
  std::vector<int32_t> penalized;
  detail::SampleScratch scratch;
  std::mt19937_64 rng(7);
  size_t fed = 0;  // history ids already in the cache
  for (int step = 0; step < 12; ++step) {
    detail::SampleSpec spec = rules[step % std::size(rules)];
    spec.uniform = static_cast<double>(rng() >> 11) * 0x1.0p-53;
    penalized.clear();
    if (spec.repetition_penalty != 1.0f) {
      for (const int32_t id : history) {
        if (std::find(penalized.begin(), penalized.end(), id) == penalized.end()) {
          penalized.push_back(id);
        }
      }
    }
    spec.penalized_count = static_cast<int32_t>(penalized.size());
    const auto tokens = std::span(history).subspan(fed);
    const detail::BatchEntry entry_a{a, tokens, detail::LogitsRows::kLast};
    const detail::BatchEntry entry_b{b, tokens, detail::LogitsRows::kLast};
    REQUIRE(gpu->forward(std::span(&entry_a, 1), cache, 64, logits));
    REQUIRE(gpu->forward_sample(std::span(&entry_b, 1), cache, 64, std::span(&spec, 1), penalized,
                                picks));
    REQUIRE(picks.size() == 1);
    const detail::SamplePick want =
        detail::sample_pick(logits.data(), vocab, spec, penalized.data(), scratch);
    INFO("step " << step);
    CHECK(picks[0].deferred == 0);
    CHECK(picks[0].id == want.id);
    CHECK(picks[0].logprob == Approx(want.logprob).margin(1e-4));
    CHECK(picks[0].top_logprob == Approx(want.top_logprob).margin(1e-4));
    fed = history.size();
    history.push_back(want.id);
  }
  // The Engine's path: LanguageModel::generate samples on the device, seeded: the same tokens
  // twice.
  LanguageModel model = LanguageModel::load(folder, gpu_options(Tier::kQ8_0, KvCacheType::kF16));
  GenerationOptions options;
  options.max_tokens = 24;
  options.stop_at_eos = false;
  options.sampling = {.temperature = 0.9f, .top_k = 50, .top_p = 0.95f, .seed = 11};
  const std::vector<int32_t> prompt = {1, 17, 230, 5};
  const Generation first = model.generate(prompt, options);
  const Generation second = model.generate(prompt, options);
  CHECK(first.ids.size() == 24);
  CHECK(first.ids == second.ids);
  for (const float logprob : first.logprobs) CHECK(logprob <= 0.0f);
}

TEST_CASE("cuda: a model split in two (tensor parallel) equals the model on one GPU",
          "[gpu][llama][split]") {
  if (!have_gpu()) return;
  // Two ranks on cuda:0 (the local reducer); across GPUs the same ranks all-reduce with NCCL.
  const int ordinals[] = {0, 0};
  for (const char* name : kModels) {
    POLYINFER_SHARED_OR_RETURN(folder, std::string("fixtures/models/") + name);
    const ReferenceFile reference(folder / "reference.safetensors");
    const polyinfer::ModelFile file = polyinfer::ModelFile::open(folder);
    for (const Tier tier : {Tier::kNative, Tier::kF16, Tier::kQ8_0, Tier::kQ4_0}) {
      const auto llama = detail::LlamaModel::load(file, tier, false);
      const auto one = detail::GpuLlama::create(*llama, 0);
      const auto split = detail::GpuLlama::create(*llama, ordinals);
      CHECK(split->kv_shape(detail::KvType::kF16).kv_heads * 2 ==
            one->kv_shape(detail::KvType::kF16).kv_heads);
      detail::KvCache cache_one(one->kv_shape(detail::KvType::kF16), 16 << 20, one->kv_memory());
      detail::KvCache cache_split(split->kv_shape(detail::KvType::kF16), 16 << 20,
                                  split->kv_memory());
      const int64_t vocab = llama->shape().vocab;
      Difference prompts;
      Difference steps;
      int same_picks = 0;
      int picks = 0;
      for (int c = 0; c < reference.cases(); ++c) {
        const std::vector<int32_t> prompt = reference.i32(fmt::format("case{}.ids", c));
        const std::vector<int32_t> generated = reference.i32(fmt::format("case{}.gen_ids", c));
        const auto a = cache_one.create();
        const auto b = cache_split.create();
        std::vector<float> want;
        std::vector<float> got;
        const detail::BatchEntry first_a{a, prompt, detail::LogitsRows::kAll};
        const detail::BatchEntry first_b{b, prompt, detail::LogitsRows::kAll};
        REQUIRE(one->forward(std::span(&first_a, 1), cache_one, 512, want));
        REQUIRE(split->forward(std::span(&first_b, 1), cache_split, 512, got));
        prompts.add(got, want, vocab);
        // Decode steps through the mirrored KV memory, logits and greedy picks.
        for (size_t k = 0; k + 1 < generated.size() && k < 6; ++k) {
          const detail::BatchEntry step_a{a, std::span(&generated[k], 1),
                                          detail::LogitsRows::kLast};
          const detail::BatchEntry step_b{b, std::span(&generated[k], 1),
                                          detail::LogitsRows::kLast};
          REQUIRE(one->forward(std::span(&step_a, 1), cache_one, 512, want));
          if (k % 2 == 0) {
            REQUIRE(split->forward(std::span(&step_b, 1), cache_split, 512, got));
            steps.add(got, want, vocab);
          } else {
            std::vector<detail::GreedyPick> pick;
            REQUIRE(split->forward_greedy(std::span(&step_b, 1), cache_split, 512, pick));
            same_picks += pick[0].id == detail::greedy_pick(want.data(), vocab).id ? 1 : 0;
            ++picks;
          }
        }
        cache_one.release(a);
        cache_split.release(b);
      }
      const std::string label = fmt::format("split 2 {}", polyinfer::tier_name(tier));
      INFO(name << " " << label << " prompts: " << prompts.summary()
                << " steps: " << steps.summary());
      // F32/F16 weights: the F16 bound. Quantized tiers quantize the activations to 8-bit
      // blocks for single tokens (the GEMVs) and for prompts up to the integer GEMM's row
      // limit: the all-reduced sums differ from one GPU's in the last bits, which can move a
      // value across a rounding step (measured 0.0068-0.0113 on the fixtures), as a batch's
      // composition does in the batch test.
      const bool quantized = tier == Tier::kQ8_0 || tier == Tier::kQ4_0;
      const double prompt_bound = (quantized ? 0.05 : kF16Bound) * prompts.scale;
      report_line(name, "cuda " + label, "one GPU", prompts, prompt_bound);
      CHECK(prompts.max_abs <= prompt_bound);
      CHECK(steps.max_abs <= (quantized ? 0.05 : kF16Bound) * steps.scale);
      CHECK(steps.top1_same == steps.rows);
      CHECK(same_picks == picks);
    }
  }
}

TEST_CASE("cuda: splits that do not divide are refused", "[gpu][llama][split]") {
  if (!have_gpu()) return;
  POLYINFER_SHARED_OR_RETURN(folder, "fixtures/models/tiny-llama");
  const polyinfer::ModelFile file = polyinfer::ModelFile::open(folder);
  const auto llama = detail::LlamaModel::load(file, Tier::kNative, false);
  const int four[] = {0, 0, 0, 0};  // 2 KV heads do not split in 4
  CHECK_THROWS_WITH(detail::GpuLlama::create(*llama, four), Catch::Contains("do not split"));
  const auto q4_k = detail::LlamaModel::load(file, Tier::kQ4_K, false);
  const int two[] = {0, 0};  // 128 attention columns per rank: not whole 256-blocks
  CHECK_THROWS_WITH(detail::GpuLlama::create(*q4_k, two), Catch::Contains("blocks"));
  const int missing[] = {0, 9};
  CHECK_THROWS_WITH(detail::GpuLlama::create(*llama, missing), Catch::Contains("no such GPU"));
}

TEST_CASE("cuda: bad devices and shapes get clear errors", "[gpu][llama]") {
  POLYINFER_SHARED_OR_RETURN(folder, "fixtures/models/tiny-llama");
  LoadOptions options = gpu_options(Tier::kNative);
  options.device = "cuda:99";
  CHECK_THROWS_WITH(LanguageModel::load(folder, options), Catch::Contains("no such GPU"));
  options.device = "tpu";
  CHECK_THROWS_WITH(LanguageModel::load(folder, options), Catch::Contains("unknown device"));
  if (!have_gpu()) return;
  options = gpu_options(Tier::kNative, KvCacheType::kQ8_0);
  CHECK_THROWS_WITH(LanguageModel::load(folder, options), Catch::Contains("CPU-only"));
}
