// SPDX-License-Identifier: Apache-2.0
// Batched forward passes equal single ones; prefix sharing and copy-on-write equal fresh runs.
#include <catch2/catch.hpp>

#include <numeric>

#include "conformance/model/llama_support.hpp"
#include "model/llama.hpp"
#include "polyinfer/model.hpp"
#include "support/fixtures.hpp"

namespace {

namespace fs = std::filesystem;
using polyinfer::ModelFile;
using polyinfer::Tier;
using polyinfer::detail::BatchEntry;
using polyinfer::detail::KvCache;
using polyinfer::detail::KvType;
using polyinfer::detail::LlamaModel;
using polyinfer::detail::LlamaWorkspace;
using polyinfer::detail::LogitsRows;
using polyinfer::test::Difference;
using polyinfer::test::ReferenceFile;

constexpr int64_t kContext = 512;

/// A model with a cache and workspace of its own: fresh state for each comparison.
struct Runner {
  const LlamaModel& model;
  KvCache cache;
  LlamaWorkspace workspace;
  std::vector<float> logits;

  explicit Runner(const LlamaModel& m, KvType type = KvType::kF32, int64_t budget = 64 << 20)
      : model(m), cache(m.kv_shape(type), static_cast<uint64_t>(budget)) {}

  std::vector<float> run(std::span<const BatchEntry> batch) {
    REQUIRE(model.forward(batch, cache, kContext, workspace, nullptr, logits));
    return logits;
  }
  std::vector<float> run(KvCache::SequenceId sequence, std::span<const int32_t> tokens,
                         LogitsRows rows = LogitsRows::kAll) {
    const BatchEntry entry{sequence, tokens, rows};
    return run(std::span(&entry, 1));
  }
};

std::vector<std::vector<int32_t>> prompts_of(const ReferenceFile& reference) {
  std::vector<std::vector<int32_t>> prompts;
  for (int c = 0; c < reference.cases(); ++c) {
    prompts.push_back(reference.i32(fmt::format("case{}.ids", c)));
  }
  return prompts;
}

/// Prompts and continuations: the fixtures' cases, or task prompts for a task model
/// (<s> = 256, then one id per byte).
std::pair<std::vector<std::vector<int32_t>>, std::vector<std::vector<int32_t>>> inputs_of(
    const fs::path& folder) {
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::vector<int32_t>> next;
  if (fs::exists(folder / "reference.safetensors")) {
    const ReferenceFile reference(folder / "reference.safetensors");
    prompts = prompts_of(reference);
    for (int c = 0; c < reference.cases(); ++c) {
      next.push_back(reference.i32(fmt::format("case{}.gen_ids", c)));
    }
    return {prompts, next};
  }
  for (const std::string text : {"add 536465 863580 =", "sort qhofimfyj =", "rev hello =",
                                 "add 7 5 =", "rev abcdefghijkl ="}) {
    std::vector<int32_t> ids{256};
    for (const char c : text) ids.push_back(static_cast<unsigned char>(c));
    prompts.push_back(ids);
    next.push_back({49, 50, 51, 10});
  }
  return {prompts, next};
}

/// Max |a − b| relative to max(1, max|b|).
double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  Difference diff;
  diff.add(a.data(), b.data(), 1, static_cast<int64_t>(a.size()));
  return diff.relative();
}

}  // namespace

TEST_CASE("llama: several sequences in one batch equal one at a time", "[llama][batch]") {
  struct Form {
    const char* model;
    const char* file;  // under the model folder; "" for the HF folder
    double bound;      // relative
  };
  // Quantized forms too: batched matrix products must agree with single-token ones.
  const Form forms[] = {{"tiny-llama", "", 1e-5},
                        {"tiny-qwen2", "", 1e-5},
                        {"tiny-llama", "gguf/tiny-llama-q4_0.gguf", 1e-4},
                        {"tiny-qwen2", "gguf/tiny-qwen2-q4_k_m.gguf", 1e-4},
                        {"tiny-llama", "gguf/tiny-llama-q8_0.gguf", 1e-4},
                        // bf16: the batched kernel rounds activations to bf16 (vdpbf16ps),
                        // as llama.cpp's does, the single-token one does not: ~1e-3 apart.
                        {"../../taskmodels/large", "", 2e-3}};
  for (const Form& form : forms) {
    POLYINFER_SHARED_OR_RETURN(folder, std::string("fixtures/models/") + form.model);
    const fs::path path = *form.file ? folder / form.file : folder;
    const ModelFile file = ModelFile::open(path);
    const auto model = LlamaModel::load(file, Tier::kNative);
    const auto [prompts, next] = inputs_of(folder);
    const size_t count = prompts.size();
    const int64_t vocab = model->shape().vocab;
    constexpr int kSteps = 4;
    INFO(form.model << " " << (*form.file ? form.file : "hf"));

    // One at a time: the prompt, then kSteps decode steps with the reference's tokens.
    std::vector<std::vector<float>> single_prompt(count);
    std::vector<std::vector<std::vector<float>>> single_steps(count);
    for (size_t c = 0; c < count; ++c) {
      Runner runner(*model);
      const auto sequence = runner.cache.create();
      single_prompt[c] = runner.run(sequence, prompts[c]);
      for (int k = 0; k < kSteps; ++k) {
        single_steps[c].push_back(runner.run(
            sequence, std::span(&next[c][static_cast<size_t>(k)], 1), LogitsRows::kLast));
      }
    }

    // All prompts in one pass, then every sequence's next token in one pass per step.
    Runner batched(*model);
    std::vector<BatchEntry> batch;
    for (size_t c = 0; c < count; ++c) {
      batch.push_back({batched.cache.create(), prompts[c], LogitsRows::kAll});
    }
    const std::vector<float> all = batched.run(batch);
    double worst = 0.0;
    size_t row = 0;
    for (size_t c = 0; c < count; ++c) {
      const std::vector<float> part(
          all.begin() + static_cast<int64_t>(row) * vocab,
          all.begin() + static_cast<int64_t>(row + prompts[c].size()) * vocab);
      worst = std::max(worst, relative_difference(part, single_prompt[c]));
      row += prompts[c].size();
    }
    for (int k = 0; k < kSteps; ++k) {
      for (size_t c = 0; c < count; ++c) {
        batch[c].tokens = std::span(&next[c][static_cast<size_t>(k)], 1);
        batch[c].logits = LogitsRows::kLast;
      }
      const std::vector<float> step = batched.run(batch);
      for (size_t c = 0; c < count; ++c) {
        const std::vector<float> part(step.begin() + static_cast<int64_t>(c) * vocab,
                                      step.begin() + static_cast<int64_t>(c + 1) * vocab);
        worst = std::max(worst, relative_difference(part, single_steps[c][static_cast<size_t>(k)]));
      }
    }

    // The prompt fed one token per pass (the decode path) equals the whole prompt at once.
    Runner stepwise(*model);
    const auto sequence = stepwise.cache.create();
    std::vector<float> rows;
    for (const int32_t& id : prompts[2]) {
      const std::vector<float> one = stepwise.run(sequence, std::span(&id, 1), LogitsRows::kLast);
      rows.insert(rows.end(), one.begin(), one.end());
    }
    worst = std::max(worst, relative_difference(rows, single_prompt[2]));
    std::cout << fmt::format("batch       | {:<11} | {:<28} | batched vs single: {:.3g}\n",
                             form.model, *form.file ? form.file : "hf folder", worst);
    CHECK(worst <= form.bound);
  }
}

TEST_CASE("llama: prefix sharing and copy-on-write give the logits of a fresh run", "[llama][kv]") {
  POLYINFER_SHARED_OR_RETURN(folder, "fixtures/models/tiny-llama");
  const ReferenceFile reference(folder / "reference.safetensors");
  const ModelFile file = ModelFile::open(folder);
  const auto model = LlamaModel::load(file, Tier::kNative);
  const int64_t vocab = model->shape().vocab;
  const std::vector<int32_t> long_prompt = reference.i32("case5.ids");  // ~200 tokens
  REQUIRE(long_prompt.size() > 64);
  const auto rows_from = [&](const std::vector<float>& logits, size_t first) {
    return std::vector<float>(logits.begin() + static_cast<int64_t>(first) * vocab, logits.end());
  };

  SECTION("a second sequence reuses the cached blocks of a first one") {
    std::vector<int32_t> extended = long_prompt;
    for (int32_t id : {5, 77, 300, 12}) extended.push_back(id);
    Runner fresh(*model);
    const std::vector<float> expected = fresh.run(fresh.cache.create(), extended);

    Runner shared(*model);
    const auto first = shared.cache.create();
    (void)shared.run(first, long_prompt);
    shared.cache.release(first);
    CHECK(shared.cache.used_bytes() == 0);
    CHECK(shared.cache.cached_bytes() > 0);
    const auto second = shared.cache.create();
    const int64_t reused = shared.cache.reuse_prefix(second, extended, 1 << 30);
    const int64_t block_rows = shared.cache.shape().block_rows;
    CHECK(reused == static_cast<int64_t>(long_prompt.size()) / block_rows * block_rows);
    const std::vector<float> rest =
        shared.run(second, std::span(extended).subspan(static_cast<size_t>(reused)));
    const double diff = relative_difference(rest, rows_from(expected, static_cast<size_t>(reused)));
    std::cout << fmt::format("kv          | prefix reuse of {} positions: max rel diff {:.3g}\n",
                             reused, diff);
    CHECK(diff <= 1e-5);
  }

  SECTION("a shared partially filled block is copied before it is written") {
    const std::vector<int32_t> prefix(long_prompt.begin(), long_prompt.begin() + 20);
    Runner runner(*model);
    const auto a = runner.cache.create();
    (void)runner.run(a, prefix);
    const auto b = runner.cache.fork(a);
    CHECK(runner.cache.length(b) == 20);
    const int32_t x = 42;
    const int32_t y = 400;
    const std::vector<float> after_x = runner.run(a, std::span(&x, 1), LogitsRows::kLast);
    const std::vector<float> after_y = runner.run(b, std::span(&y, 1), LogitsRows::kLast);
    const int32_t z = 7;  // a again: its block must not have seen b's write
    const std::vector<float> after_xz = runner.run(a, std::span(&z, 1), LogitsRows::kLast);

    for (const auto& [tail, got] :
         {std::pair{std::vector<int32_t>{x}, after_x}, std::pair{std::vector<int32_t>{y}, after_y},
          std::pair{std::vector<int32_t>{x, z}, after_xz}}) {
      std::vector<int32_t> whole = prefix;
      whole.insert(whole.end(), tail.begin(), tail.end());
      Runner fresh(*model);
      const std::vector<float> expected = fresh.run(fresh.cache.create(), whole);
      CHECK(relative_difference(got, rows_from(expected, whole.size() - 1)) <= 1e-5);
    }
  }

  SECTION("reusing a registered block and rewriting its last row copies it") {
    const std::vector<int32_t> prompt(long_prompt.begin(), long_prompt.begin() + 32);
    Runner runner(*model);
    const auto first = runner.cache.create();
    const std::vector<float> expected = runner.run(first, prompt);
    runner.cache.release(first);
    for (int round = 0; round < 2; ++round) {
      const auto again = runner.cache.create();
      CHECK(runner.cache.reuse_prefix(again, prompt, 31) == 31);
      const std::vector<float> last =
          runner.run(again, std::span(prompt).subspan(31), LogitsRows::kLast);
      CHECK(relative_difference(last, rows_from(expected, 31)) <= 1e-5);
      runner.cache.release(again);
    }
  }
}

TEST_CASE("LanguageModel: a repeated prompt reuses the prefix cache with identical results",
          "[llama][kv]") {
  POLYINFER_SHARED_OR_RETURN(folder, "fixtures/models/tiny-qwen2");
  const ReferenceFile reference(folder / "reference.safetensors");
  polyinfer::LanguageModel model = polyinfer::LanguageModel::load(folder, {.threads = 1});
  const std::vector<int32_t> prompt = reference.i32("case5.ids");
  const polyinfer::GenerationOptions options{
      .max_tokens = 12,
      .sampling = {.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .seed = 11},
      .stop_at_eos = false};
  const polyinfer::Generation first = model.generate(prompt, options);
  const polyinfer::Generation second = model.generate(prompt, options);
  CHECK(first.cached_prompt_tokens == 0);
  CHECK(second.cached_prompt_tokens > 0);
  CHECK(second.ids == first.ids);
  // The reused run computes the prompt in other chunks (one token instead of all), so matrix
  // products run at other token counts: equal up to f32 rounding (bit-equal at some ISA
  // levels, not at AVX2).
  REQUIRE(second.logprobs.size() == first.logprobs.size());
  for (size_t i = 0; i < first.logprobs.size(); ++i) {
    CHECK(second.logprobs[i] == Approx(first.logprobs[i]).margin(1e-5));
  }
  CHECK(model.kv_cache_bytes() > 0);
  CHECK(model.kv_cache_bytes() <= model.kv_cache_budget_bytes());
}

TEST_CASE("llama: a full KV cache is a status, and the LanguageModel an error", "[llama][kv]") {
  POLYINFER_SHARED_OR_RETURN(folder, "fixtures/models/tiny-llama");
  const ModelFile file = ModelFile::open(folder);
  const auto model = LlamaModel::load(file, Tier::kNative);
  const polyinfer::detail::KvCacheShape shape = model->kv_shape(KvType::kF16);
  KvCache small(shape, 3 * KvCache(shape, 1 << 20).block_bytes());  // three blocks
  LlamaWorkspace workspace;
  std::vector<float> logits;
  std::vector<int32_t> ids(60);
  std::iota(ids.begin(), ids.end(), 3);
  const auto sequence = small.create();
  const BatchEntry entry{sequence, ids, LogitsRows::kLast};
  CHECK_FALSE(model->forward(std::span(&entry, 1), small, kContext, workspace, nullptr, logits));
  CHECK(small.length(sequence) == 0);
  const BatchEntry fits{sequence, std::span(ids).first(40), LogitsRows::kLast};
  CHECK(model->forward(std::span(&fits, 1), small, kContext, workspace, nullptr, logits));
  CHECK(small.length(sequence) == 40);

  polyinfer::LanguageModel lm =
      polyinfer::LanguageModel::load(folder, {.threads = 1,
                                              .kv_type = polyinfer::KvCacheType::kF16,
                                              .kv_cache_bytes = 3 * small.block_bytes()});
  CHECK_THROWS_WITH(lm.logits(ids), Catch::Contains("out of memory"));
  CHECK(lm.logits(std::span(ids).first(40)).size() ==
        40 * static_cast<size_t>(model->shape().vocab));
}

TEST_CASE("llama: f16 and q8_0 KV caches stay close to the f32 reference", "[llama][kv]") {
  struct Form {
    polyinfer::KvCacheType type;
    const char* name;
    double bound;  // absolute; logits are O(1)
  };
  const Form forms[] = {{polyinfer::KvCacheType::kF16, "kv f16", 3e-3},
                        {polyinfer::KvCacheType::kQ8_0, "kv q8_0", 0.05}};
  for (const char* name : {"tiny-llama", "tiny-qwen2"}) {
    POLYINFER_SHARED_OR_RETURN(folder, std::string("fixtures/models/") + name);
    const ReferenceFile reference(folder / "reference.safetensors");
    for (const Form& form : forms) {
      polyinfer::LanguageModel model =
          polyinfer::LanguageModel::load(folder, {.threads = 1, .kv_type = form.type});
      Difference diff;
      for (int c = 0; c < reference.cases(); ++c) {
        diff.add(model.logits(reference.i32(fmt::format("case{}.ids", c))),
                 reference.f32(fmt::format("case{}.logits", c)), model.config().vocab_size);
      }
      polyinfer::test::report_line(name, std::string("hf f32, ") + form.name, "transformers", diff,
                                   form.bound);
      CHECK(diff.max_abs <= form.bound);
    }
  }
}
