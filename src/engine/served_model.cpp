// SPDX-License-Identifier: Apache-2.0
// The real ServedDecoder (LlamaModel + KvCache) and ServedEncoder (Encoder) and their loader.
#include "engine/served_model.hpp"

#include "model/end_ids.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <system_error>

#include "backend/device.hpp"
#include "common/fail.hpp"
#include "common/mapped_file.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "model/llama.hpp"
#include "model/llama_gpu.hpp"

namespace polyinfer::inline v0::detail {

namespace {

constexpr int64_t kMaxContext = 4096;

Tier parse_tier(const ModelSpec& spec, const std::string& tier) {
  const std::optional<Tier> parsed = tier_from_name(tier);
  if (!parsed) {
    fail(ErrorCode::kInvalidArgument, fmt::format("model {}: tier", spec.name),
         "unknown tier '{}' (native, f32, f16, q8_0, q4_0, q4_k)", tier);
  }
  return *parsed;
}

// Positions per sequence a served decoder keeps.
int64_t served_context(const ModelConfig& config, const ModelSpec& spec) {
  const int64_t model_max = config.max_positions > 0 ? config.max_positions : kMaxContext;
  return spec.context_length > 0 ? std::min<int64_t>(spec.context_length, model_max)
                                 : std::min(model_max, kMaxContext);
}

// The KV cache budget: every sequence at full context, plus room for cached prefixes.
uint64_t kv_budget(const KvCacheShape& shape, int64_t context, const ServeSettings& settings) {
  const uint64_t row = kv_row_bytes(shape.type, shape.kv_heads, shape.head_dim);
  const uint64_t block = row * static_cast<uint64_t>(2 * shape.layers * shape.block_rows) + 64;
  const auto blocks = static_cast<uint64_t>((context + shape.block_rows - 1) / shape.block_rows);
  return (static_cast<uint64_t>(std::max(1, settings.max_sequences)) * (blocks + 1) + 8) * block;
}

class LlamaDecoder final : public ServedDecoder {
 public:
  LlamaDecoder(const ModelSpec& spec, const std::string& tier, const ServeSettings& settings)
      : file_(ModelFile::open(spec.path)) {
    const Placement placement =
        parse_placement(spec.device, fmt::format("model {}: device", spec.name));
    const Device device = placement.device;
    model_ = LlamaModel::load(file_, parse_tier(spec, tier), /*cpu_layouts=*/!device.is_gpu());
    if (!placement.split.empty()) {
      gpu_ = GpuLlama::create(*model_, placement.split);
    } else if (device.is_gpu()) {
      gpu_ = GpuLlama::create(*model_, device.ordinal);
    }
    context_ = served_context(file_.config(), spec);
    const KvType kv_type = model_->full_precision() ? KvType::kF32 : KvType::kF16;
    const KvCacheShape shape = gpu_ ? gpu_->kv_shape(kv_type) : model_->kv_shape(kv_type);
    const uint64_t budget = kv_budget(shape, context_, settings);
    cache_ = std::make_unique<KvCache>(shape, budget, gpu_ ? gpu_->kv_memory() : nullptr);
    if (settings.threads > 1 && !gpu_) pool_ = std::make_unique<ThreadPool>(settings.threads);
    eos_ = model_end_ids(file_);
  }

  std::vector<int32_t> encode(std::string_view prompt) const override {
    if (!file_.has_tokenizer()) {
      fail(ErrorCode::kInvalidArgument, file_.path().string(), "the model has no tokenizer");
    }
    return file_.tokenizer().encode(prompt, {.add_special = true});
  }
  std::string decode(std::span<const int32_t> ids) const override {
    if (!file_.has_tokenizer()) return {};
    return file_.tokenizer().decode(ids, {.skip_special = true});
  }
  const Tokenizer* tokenizer() const override {
    return file_.has_tokenizer() ? &file_.tokenizer() : nullptr;
  }
  std::span<const int32_t> eos_ids() const override { return eos_; }
  int64_t vocab() const override { return model_->shape().vocab; }
  int64_t context_length() const override { return context_; }
  uint64_t resident_bytes() const override {
    // On a GPU: what the device holds (weights as uploaded, converted formats included).
    return (gpu_ ? gpu_->device_weight_bytes() : model_->weight_bytes()) + cache_->budget_bytes();
  }
  int32_t create_sequence() override { return cache_->create(); }
  void release_sequence(int32_t sequence) override { cache_->release(sequence); }
  int64_t reuse_prefix(int32_t sequence, std::span<const int32_t> tokens,
                       int64_t max_rows) override {
    return cache_->reuse_prefix(sequence, tokens, max_rows);
  }
  bool forward(std::span<const BatchEntry> batch, std::vector<float>& logits) override {
    if (gpu_) return gpu_->forward(batch, *cache_, context_, logits);
    return model_->forward(batch, *cache_, context_, workspace_, pool_.get(), logits);
  }
  bool forward_sample(std::span<const BatchEntry> batch, std::span<const SampleSpec> specs,
                      std::span<const int32_t> penalized, std::vector<SamplePick>& picks) override {
    if (gpu_) return gpu_->forward_sample(batch, *cache_, context_, specs, penalized, picks);
    return ServedDecoder::forward_sample(batch, specs, penalized, picks);
  }
  bool forward_greedy(std::span<const BatchEntry> batch, std::vector<GreedyPick>& picks) override {
    if (gpu_) return gpu_->forward_greedy(batch, *cache_, context_, picks);
    if (!forward(batch, logits_)) return false;
    greedy_picks(logits_, model_->shape().vocab, picks);
    return true;
  }

 private:
  ModelFile file_;
  std::unique_ptr<LlamaModel> model_;
  std::unique_ptr<GpuLlama> gpu_;  // set when the model runs on a GPU
  std::unique_ptr<KvCache> cache_;
  std::unique_ptr<ThreadPool> pool_;
  LlamaWorkspace workspace_;
  std::vector<float> logits_;  // forward_greedy on the CPU
  std::vector<int32_t> eos_;
  int64_t context_ = 0;
};

class BertEncoder final : public ServedEncoder {
 public:
  BertEncoder(const ModelSpec& spec, const std::string& tier, const ServeSettings& settings)
      : encoder_(Encoder::load(spec.path, {.tier = parse_tier(spec, tier),
                                           .threads = std::max(1, settings.threads)})) {}

  std::vector<int32_t> encode(std::string_view text) const override {
    if (text.empty()) fail(ErrorCode::kInvalidArgument, "prompt", "empty text");
    std::vector<int32_t> ids = encoder_.tokenizer().encode(text, {.add_special = true});
    if (static_cast<int64_t>(ids.size()) > encoder_.max_tokens()) {
      fail(ErrorCode::kInvalidArgument, "prompt", "{} tokens; the encoder takes at most {}",
           ids.size(), encoder_.max_tokens());
    }
    return ids;
  }
  std::vector<std::string> labels() const override {
    const auto labels = encoder_.labels();
    return {labels.begin(), labels.end()};
  }
  uint64_t resident_bytes() const override { return encoder_.weight_bytes(); }
  std::vector<std::vector<float>> run(std::span<const std::vector<int32_t>> batch,
                                      bool classify) const override {
    std::vector<Encoding> encodings = encoder_.encode_ids_batch(batch);
    std::vector<std::vector<float>> result;
    result.reserve(encodings.size());
    for (Encoding& encoding : encodings) {
      result.push_back(classify ? std::move(encoding.probs) : std::move(encoding.mean));
    }
    return result;
  }

 private:
  Encoder encoder_;
};

}  // namespace

bool ServedDecoder::forward_sample(std::span<const BatchEntry> batch,
                                   std::span<const SampleSpec> specs,
                                   std::span<const int32_t> penalized,
                                   std::vector<SamplePick>& picks) {
  if (!forward(batch, sample_logits_)) return false;
  const int64_t vocab = this->vocab();
  const auto rows = static_cast<int64_t>(sample_logits_.size()) / vocab;
  if (static_cast<int64_t>(specs.size()) != rows) {
    fail(ErrorCode::kInvalidArgument, "sampling", "{} sampling specs for {} logits rows",
         specs.size(), rows);
  }
  picks.resize(specs.size());
  for (size_t r = 0; r < specs.size(); ++r) {
    picks[r] = sample_pick(sample_logits_.data() + static_cast<int64_t>(r) * vocab, vocab, specs[r],
                           penalized.data(), sample_scratch_);
  }
  return true;
}

LoadedModel load_served_model(const ModelSpec& spec, const std::string& tier,
                              const ServeSettings& settings) {
  LoadedModel loaded;
  if (spec.kind == "decoder") {
    loaded.decoder = std::make_unique<LlamaDecoder>(spec, tier, settings);
  } else if (spec.kind == "classifier" || spec.kind == "embedding") {
    loaded.encoder = std::make_unique<BertEncoder>(spec, tier, settings);
  } else {
    fail(ErrorCode::kInvalidArgument, fmt::format("model {}: kind", spec.name),
         "unknown kind '{}' (decoder, classifier, embedding)", spec.kind);
  }
  return loaded;
}

uint64_t estimate_model_bytes(const ModelSpec& spec, const ServeSettings& settings) {
  try {
    const ModelFile file = ModelFile::open(spec.path);
    uint64_t bytes = 0;
    for (const TensorInfo& info : file.tensors()) bytes += info.bytes;
    const ModelConfig& config = file.config();
    if (spec.kind == "decoder" && config.num_layers > 0 && config.num_kv_heads > 0) {
      // The KV cache at f16 (f32 for f32 files, which keep f32 at the native tier).
      const int64_t head_dim = config.head_dim > 0    ? config.head_dim
                               : config.num_heads > 0 ? config.hidden_size / config.num_heads
                                                      : 0;
      const KvType type = config.stored_dtype == DType::kF32 ? KvType::kF32 : KvType::kF16;
      const KvCacheShape shape{config.num_layers, config.num_kv_heads, head_dim, type};
      if (head_dim > 0) bytes += kv_budget(shape, served_context(config, spec), settings);
    }
    return bytes;
  } catch (const Error&) {
    return 0;  // the load reports the problem
  }
}

}  // namespace polyinfer::inline v0::detail
