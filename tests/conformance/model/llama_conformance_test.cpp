// SPDX-License-Identifier: Apache-2.0
// Llama / Qwen2 forward passes against transformers and llama.cpp logits (fixtures README bounds).
#include <catch2/catch.hpp>

#include "conformance/model/llama_support.hpp"
#include "model/llama.hpp"
#include "polyinfer/model.hpp"
#include "support/fixtures.hpp"

namespace {

namespace fs = std::filesystem;
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

constexpr const char* kModels[] = {"tiny-llama", "tiny-qwen2"};
constexpr double kF32Bound = 1e-4;  // × scale
constexpr double kF16Bound = 3e-3;  // × scale

LoadOptions options_for(Tier tier) {
  // An f32 KV cache, as llama.cpp's logits were made with, so that only the weights differ.
  return LoadOptions{.tier = tier, .threads = 1, .kv_type = KvCacheType::kF32};
}

}  // namespace

TEST_CASE("llama f32 (HF folder) matches transformers: logits, hidden states, greedy, KV path",
          "[llama][conformance]") {
  for (const char* name : kModels) {
    POLYINFER_SHARED_OR_RETURN(folder, std::string("fixtures/models/") + name);
    const ReferenceFile reference(folder / "reference.safetensors");
    LanguageModel model = LanguageModel::load(folder, options_for(Tier::kNative));
    CHECK(model.owned_weight_bytes() == 0);  // f32 safetensors are used in place
    const int64_t vocab = model.config().vocab_size;

    // Logits at every prompt position.
    const Difference logits = prompt_logits(model, reference, reference);
    report_line(name, "hf f32", "transformers", logits, kF32Bound * logits.scale);
    CHECK(logits.max_abs <= kF32Bound * logits.scale);

    // Greedy continuation: every step has a margin ≥ 1.1e-3, so all 24 are checkable.
    const int compared = greedy_matches(model, reference, 2 * kF32Bound * logits.scale, name);
    std::cout << fmt::format("conformance | {:<11} | hf f32 greedy: {} ids compared, all equal\n",
                             name, compared);

    // Hidden states of case 0 and the KV-cache path, through the model's own API.
    const polyinfer::ModelFile file = polyinfer::ModelFile::open(folder);
    const auto llama = polyinfer::detail::LlamaModel::load(file, Tier::kNative);
    polyinfer::detail::KvCache cache(llama->kv_shape(polyinfer::detail::KvType::kF32), 64 << 20);
    polyinfer::detail::LlamaWorkspace workspace;
    std::vector<float> out;

    const std::vector<int32_t> ids = reference.i32("case0.ids");
    Difference hidden;
    const polyinfer::detail::ActivationObserver observer =
        [&](std::string_view what, const float* data, int64_t rows, int64_t cols) {
          const std::string tensor =
              what == "embeddings" ? "case0.embeddings" : "case0." + std::string(what);
          if (!reference.has(tensor)) return;
          const std::vector<float> expected = reference.f32(tensor);
          REQUIRE(static_cast<int64_t>(expected.size()) == rows * cols);
          Difference one;
          one.add(data, expected.data(), rows, cols);
          INFO(name << " " << tensor << ": " << one.summary());
          CHECK(one.max_abs <= kF32Bound * one.scale);
          hidden.max_abs = std::max(hidden.max_abs, one.max_abs);
          hidden.scale = std::max(hidden.scale, one.scale);
        };
    for (int c = 0; c < reference.cases(); ++c) {
      const std::vector<int32_t> prompt = reference.i32(fmt::format("case{}.ids", c));
      const std::vector<int32_t> generated = reference.i32(fmt::format("case{}.gen_ids", c));
      const std::vector<float> gen_logits = reference.f32(fmt::format("case{}.gen_logits", c));
      const auto sequence = cache.create();
      const polyinfer::detail::BatchEntry first{sequence, prompt,
                                                polyinfer::detail::LogitsRows::kLast};
      REQUIRE(llama->forward(std::span(&first, 1), cache, 512, workspace, nullptr, out,
                             c == 0 ? &observer : nullptr));
      Difference kv_path;
      kv_path.add(out.data(), gen_logits.data(), 1, vocab);
      // Teacher-forced with the reference's tokens, one token per pass through the cache.
      for (size_t k = 0; k + 1 < generated.size(); ++k) {
        const polyinfer::detail::BatchEntry step{sequence, std::span(&generated[k], 1),
                                                 polyinfer::detail::LogitsRows::kLast};
        REQUIRE(llama->forward(std::span(&step, 1), cache, 512, workspace, nullptr, out));
        kv_path.add(out.data(), gen_logits.data() + static_cast<int64_t>(k + 1) * vocab, 1, vocab);
      }
      cache.release(sequence);
      INFO(name << " case " << c << " KV path vs gen_logits: " << kv_path.summary());
      CHECK(kv_path.max_abs <= kF32Bound * kv_path.scale);
      if (c == 0) report_line(name, "hf f32 kv path", "gen_logits", kv_path, kF32Bound);
    }
    report_line(name, "hf f32 hidden", "transformers", hidden, kF32Bound * hidden.scale);
  }
}

TEST_CASE("llama f16 GGUF matches transformers within 3e-3 × scale", "[llama][conformance]") {
  for (const char* name : kModels) {
    POLYINFER_SHARED_OR_RETURN(folder, std::string("fixtures/models/") + name);
    const ReferenceFile reference(folder / "reference.safetensors");
    LanguageModel model = LanguageModel::load(folder / "gguf" / fmt::format("{}-f16.gguf", name),
                                              options_for(Tier::kNative));
    const Difference logits = prompt_logits(model, reference, reference);
    report_line(name, "gguf f16", "transformers", logits, kF16Bound * logits.scale);
    CHECK(logits.max_abs <= kF16Bound * logits.scale);
    const int compared = greedy_matches(model, reference, 2 * kF16Bound * logits.scale, name);
    std::cout << fmt::format("conformance | {:<11} | gguf f16 greedy: {} ids compared, equal\n",
                             name, compared);
  }
}

TEST_CASE("llama quantized GGUFs match llama.cpp's logits for the same files",
          "[llama][conformance]") {
  struct Form {
    const char* quant;
    double bound;         // vs llama.cpp
    double sanity_bound;  // vs transformers
  };
  const Form forms[] = {{"q8_0", 0.05, 0.08}, {"q4_0", 0.06, 0.6}, {"q4_k_m", 0.06, 0.6}};
  for (const char* name : kModels) {
    POLYINFER_SHARED_OR_RETURN(folder, std::string("fixtures/models/") + name);
    const ReferenceFile reference(folder / "reference.safetensors");
    for (const Form& form : forms) {
      const ReferenceFile llamacpp(folder / fmt::format("llamacpp.{}.safetensors", form.quant));
      LanguageModel model =
          LanguageModel::load(folder / "gguf" / fmt::format("{}-{}.gguf", name, form.quant),
                              options_for(Tier::kNative));
      INFO(name << " " << form.quant);
      CHECK(model.owned_weight_bytes() == 0);  // stored weights are used in place
      const Difference vs_llamacpp = prompt_logits(model, reference, llamacpp);
      const Difference vs_reference = prompt_logits(model, reference, reference);
      const std::string label = fmt::format("gguf {}", form.quant);
      report_line(name, label, "llama.cpp", vs_llamacpp, form.bound);
      report_line(name, label, "transformers", vs_reference, form.sanity_bound);
      INFO(name << " " << label);
      CHECK(vs_llamacpp.max_abs <= form.bound);
      CHECK(vs_reference.max_abs <= form.sanity_bound);
    }
  }
}

TEST_CASE("llama tiers derived from f32 weights at load time", "[llama][conformance]") {
  struct Form {
    Tier tier;
    const char* llamacpp;  // the llama.cpp file made with the same recipe, or null
    double bound_reference;
    bool relative;  // bound_reference × scale
  };
  const Form forms[] = {{Tier::kF16, nullptr, kF16Bound, true},
                        {Tier::kQ8_0, "q8_0", 0.08, false},
                        {Tier::kQ4_0, "q4_0", 0.6, false},
                        {Tier::kQ4_K, "q4_k_m", 0.6, false}};
  for (const char* name : kModels) {
    POLYINFER_SHARED_OR_RETURN(folder, std::string("fixtures/models/") + name);
    const ReferenceFile reference(folder / "reference.safetensors");
    for (const Form& form : forms) {
      LanguageModel model = LanguageModel::load(folder, options_for(form.tier));
      CHECK(model.tier() == form.tier);
      CHECK(model.owned_weight_bytes() > 0);
      const std::string label = fmt::format("hf→{}", polyinfer::tier_name(form.tier));
      const Difference vs_reference = prompt_logits(model, reference, reference);
      const double bound =
          form.relative ? form.bound_reference * vs_reference.scale : form.bound_reference;
      report_line(name, label, "transformers", vs_reference, bound);
      INFO(name << " " << label);
      CHECK(vs_reference.max_abs <= bound);
      if (form.llamacpp != nullptr) {
        // The recipes mirror llama-quantize (Q6_K output, Q4_K_M's more-bits layers), so the
        // weights equal the GGUF's and llama.cpp's bounds apply.
        const ReferenceFile llamacpp(folder /
                                     fmt::format("llamacpp.{}.safetensors", form.llamacpp));
        const Difference vs_llamacpp = prompt_logits(model, reference, llamacpp);
        report_line(name, label, fmt::format("llama.cpp {}", form.llamacpp), vs_llamacpp,
                    form.tier == Tier::kQ8_0 ? 0.05 : 0.06);
        CHECK(vs_llamacpp.max_abs <= (form.tier == Tier::kQ8_0 ? 0.05 : 0.06));
      }
    }
  }
}
