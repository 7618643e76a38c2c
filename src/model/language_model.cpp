// SPDX-License-Identifier: Apache-2.0
// LanguageModel: a LlamaModel with its KV cache, thread pool, sampler and tokenizer.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <mutex>
#include <system_error>

#include "backend/device.hpp"
#include "common/fail.hpp"
#include "common/mapped_file.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "model/end_ids.hpp"
#include "model/llama.hpp"
#include "model/llama_gpu.hpp"
#include "runtime/sampler.hpp"
#include "runtime/text_stream.hpp"

namespace polyinfer {
inline namespace v0 {

namespace detail {

namespace {

constexpr int64_t kDefaultMaxContext = 4096;
constexpr int64_t kChunkTokens = 256;  // prompt positions per forward pass
// On a GPU, prompts (whose logits are not kept) go in larger passes: the GEMM path's weight
// conversion is paid once per pass.
constexpr int64_t kGpuChunkTokens = 2048;

KvType kv_type_for(KvCacheType type, bool f32_weights) {
  switch (type) {
    case KvCacheType::kF32:
      return KvType::kF32;
    case KvCacheType::kF16:
      return KvType::kF16;
    case KvCacheType::kQ8_0:
      return KvType::kQ8_0;
    case KvCacheType::kAuto:
      break;
  }
  return f32_weights ? KvType::kF32 : KvType::kF16;
}

}  // namespace

class LanguageModelImpl {
 public:
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<GpuLlama> gpu;  ///< set when the model runs on a GPU
  std::unique_ptr<KvCache> cache;
  std::unique_ptr<ThreadPool> pool;
  int64_t context_length = 0;
  std::vector<int32_t> eos_ids;
  std::mutex mutex;
  LlamaWorkspace workspace;
  std::vector<float> logits;
  std::vector<GreedyPick> picks;  ///< greedy decoding on a GPU
  SampleSpec spec;                ///< sampling on a GPU: the next pick's rules and draw
  std::vector<int32_t> penalized;
  std::vector<SamplePick> sampled;

  /// Where a pass's logits rows go: copied to `logits`, or on a GPU reduced there to `picks`
  /// (greedy) or to `sampled` (under `spec`).
  enum class Reduce { kLogits, kGreedy, kSample };

  /// A sequence of the cache, released when the scope ends (errors included).
  class Sequence {
   public:
    explicit Sequence(KvCache& cache) : cache_(cache), id_(cache.create()) {}
    ~Sequence() { cache_.release(id_); }
    Sequence(const Sequence&) = delete;
    Sequence& operator=(const Sequence&) = delete;
    [[nodiscard]] KvCache::SequenceId id() const noexcept { return id_; }

   private:
    KvCache& cache_;
    KvCache::SequenceId id_;
  };

  void check_prompt(std::span<const int32_t> ids, const char* what) const {
    if (ids.empty()) fail(ErrorCode::kInvalidArgument, what, "empty prompt (no token ids)");
    if (static_cast<int64_t>(ids.size()) > context_length) {
      fail(ErrorCode::kInvalidArgument, what, "{} tokens do not fit the context of {} tokens",
           ids.size(), context_length);
    }
    const int64_t vocab = model->shape().vocab;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] >= vocab) {
        fail(ErrorCode::kInvalidArgument, fmt::format("{}: token {}", what, i),
             "id {} is out of range (vocabulary of {})", ids[i], vocab);
      }
    }
  }

  /// One forward pass for one sequence; the rows asked for are reduced as `reduce` says (on
  /// the CPU they always land in `logits`).
  void run(KvCache::SequenceId sequence, std::span<const int32_t> tokens, LogitsRows rows,
           Reduce reduce = Reduce::kLogits) {
    const BatchEntry entry{sequence, tokens, rows};
    const auto batch = std::span(&entry, 1);
    const bool ok =
        !gpu ? model->forward(batch, *cache, context_length, workspace, pool.get(), logits)
        : reduce == Reduce::kGreedy ? gpu->forward_greedy(batch, *cache, context_length, picks)
        : reduce == Reduce::kSample ? gpu->forward_sample(batch, *cache, context_length,
                                                          std::span(&spec, 1), penalized, sampled)
                                    : gpu->forward(batch, *cache, context_length, logits);
    if (!ok) {
      fail(ErrorCode::kInvalidArgument, "kv cache",
           "out of memory for {} more positions: {} blocks of {} bytes left of a {}-byte budget",
           tokens.size(), cache->available_blocks(), cache->block_bytes(), cache->budget_bytes());
    }
  }

  Generation generate(std::span<const int32_t> prompt, const GenerationOptions& options,
                      const TokenCallback* on_token);
};

Generation LanguageModelImpl::generate(std::span<const int32_t> prompt,
                                       const GenerationOptions& options,
                                       const TokenCallback* on_token) {
  check_prompt(prompt, "generate");
  if (options.max_tokens < 0) {
    fail(ErrorCode::kInvalidArgument, "generate", "max_tokens {} is negative", options.max_tokens);
  }
  const ModelFile& file = model->file();
  if (!options.stop_strings.empty() && !file.has_tokenizer()) {
    fail(ErrorCode::kInvalidArgument, "generate", "stop strings need a tokenizer; {} has none",
         file.path().string());
  }
  Sampler sampler(options.sampling);
  // On a GPU the logits stay there: greedy without penalties takes the argmax there, any other
  // rule samples there (a pick copied per token, not the logits); the same ids and
  // log-probabilities as the sampler's, up to rounding.
  const Reduce reduce =
      gpu == nullptr ? Reduce::kLogits
      : options.sampling.temperature == 0.0f && options.sampling.repetition_penalty == 1.0f
          ? Reduce::kGreedy
          : Reduce::kSample;
  std::vector<int32_t> stop_ids = options.stop_ids;
  if (options.stop_at_eos) stop_ids.insert(stop_ids.end(), eos_ids.begin(), eos_ids.end());
  std::optional<TextStream> stream;
  if (file.has_tokenizer()) stream.emplace(file.tokenizer(), prompt, options.stop_strings);

  Generation result;
  result.prompt_tokens = static_cast<int64_t>(prompt.size());
  if (options.max_tokens == 0) return result;

  std::vector<int32_t> history(prompt.begin(), prompt.end());
  const auto prepare = [&] {  // before the pass whose logits pick the next token
    if (reduce != Reduce::kSample) return;
    penalized.clear();
    spec = sampler.prepare(model->shape().vocab, history, penalized);
    if (spec.temperature > 0.0f) spec.uniform = sampler.next_uniform();
  };

  Sequence sequence(*cache);
  // Reuse cached blocks of the prompt; the last prompt position is always computed (its logits
  // choose the first token).
  const int64_t cached =
      cache->reuse_prefix(sequence.id(), prompt, static_cast<int64_t>(prompt.size()) - 1);
  result.cached_prompt_tokens = cached;
  for (auto begin = static_cast<size_t>(cached); begin < prompt.size();) {
    const auto chunk = static_cast<size_t>(gpu ? kGpuChunkTokens : kChunkTokens);
    const size_t count = std::min(prompt.size() - begin, chunk);
    const bool last = begin + count == prompt.size();
    if (last) prepare();
    run(sequence.id(), prompt.subspan(begin, count), last ? LogitsRows::kLast : LogitsRows::kNone,
        last ? reduce : Reduce::kLogits);
    begin += count;
  }

  std::string piece;
  for (;;) {
    const SampledToken token =
        reduce == Reduce::kGreedy ? SampledToken{picks[0].id, picks[0].logprob, picks[0].logprob}
        : reduce == Reduce::kSample
            ? SampledToken{sampled[0].id, sampled[0].logprob, sampled[0].top_logprob}
            : sampler.sample(logits, history);
    history.push_back(token.id);
    result.ids.push_back(token.id);
    result.logprobs.push_back(token.logprob);
    result.top_logprobs.push_back(token.top_logprob);
    piece.assign(stream ? stream->push(token.id) : std::string_view());

    std::optional<StopReason> stop;
    if (std::find(stop_ids.begin(), stop_ids.end(), token.id) != stop_ids.end()) {
      stop = StopReason::kStopToken;
    } else if (stream && stream->stopped()) {
      stop = StopReason::kStopString;
    } else if (static_cast<int64_t>(result.ids.size()) >= options.max_tokens) {
      stop = StopReason::kMaxTokens;
    } else if (cache->length(sequence.id()) >= context_length) {
      stop = StopReason::kContextFull;
    }
    if (stop && stream) piece += stream->finish();
    if (on_token != nullptr && *on_token) {
      const GeneratedToken generated{token.id, piece, token.logprob, token.top_logprob};
      if (!(*on_token)(generated) && !stop) stop = StopReason::kCancelled;
    }
    if (stop) {
      if (stream) {
        (void)stream->finish();
        result.text = stream->text();
      }
      result.stop_reason = *stop;
      return result;
    }
    prepare();
    run(sequence.id(), std::span(&result.ids.back(), 1), LogitsRows::kLast, reduce);
  }
}

}  // namespace detail

std::string_view stop_reason_name(StopReason reason) noexcept {
  switch (reason) {
    case StopReason::kStopToken:
      return "stop_token";
    case StopReason::kStopString:
      return "stop_string";
    case StopReason::kMaxTokens:
      return "max_tokens";
    case StopReason::kContextFull:
      return "context_full";
    case StopReason::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

LanguageModel LanguageModel::load(const std::filesystem::path& path, const LoadOptions& options) {
  using detail::fail;
  const std::string where = path.string();
  if (options.threads < 0) {
    fail(ErrorCode::kInvalidArgument, where, "threads {} is negative", options.threads);
  }
  if (options.context_length < 0) {
    fail(ErrorCode::kInvalidArgument, where, "context_length {} is negative",
         options.context_length);
  }
  const detail::Placement placement = detail::parse_placement(options.device, where + ": device");
  const detail::Device device = placement.device;
  const ModelFile file = ModelFile::open(path);
  auto impl = std::make_unique<detail::LanguageModelImpl>();
  impl->model = detail::LlamaModel::load(file, options.tier, /*cpu_layouts=*/!device.is_gpu());
  if (!placement.split.empty()) {
    impl->gpu = detail::GpuLlama::create(*impl->model, placement.split);
  } else if (device.is_gpu()) {
    impl->gpu = detail::GpuLlama::create(*impl->model, device.ordinal);
  }
  const ModelConfig& config = file.config();

  const int64_t model_max =
      config.max_positions > 0 ? config.max_positions : detail::kDefaultMaxContext;
  impl->context_length = options.context_length > 0
                             ? options.context_length
                             : std::min(model_max, detail::kDefaultMaxContext);
  if (impl->context_length > model_max) {
    fail(ErrorCode::kInvalidArgument, where,
         "context_length {} exceeds the {} positions the model was trained for",
         impl->context_length, model_max);
  }

  const detail::KvType kv_type =
      detail::kv_type_for(options.kv_type, impl->model->full_precision());
  const detail::KvCacheShape shape =
      impl->gpu ? impl->gpu->kv_shape(kv_type) : impl->model->kv_shape(kv_type);
  uint64_t budget = options.kv_cache_bytes;
  if (budget == 0) {
    const uint64_t row = detail::kv_row_bytes(shape.type, shape.kv_heads, shape.head_dim);
    const uint64_t block = row * static_cast<uint64_t>(2 * shape.layers * shape.block_rows) + 64;
    const auto blocks =
        static_cast<uint64_t>((impl->context_length + shape.block_rows - 1) / shape.block_rows + 1);
    budget = 2 * blocks * block;
  }
  if (impl->gpu && shape.type == detail::KvType::kQ8_0) {
    fail(ErrorCode::kUnsupported, where, "a q8_0 KV cache is CPU-only (use f16 on {})",
         device.name());
  }
  impl->cache = std::make_unique<detail::KvCache>(shape, budget,
                                                  impl->gpu ? impl->gpu->kv_memory() : nullptr);
  if (!impl->gpu) impl->pool = std::make_unique<detail::ThreadPool>(options.threads);

  impl->eos_ids = detail::model_end_ids(file);
  return LanguageModel(std::move(impl));
}

LanguageModel::LanguageModel(std::unique_ptr<detail::LanguageModelImpl> impl)
    : impl_(std::move(impl)) {}
LanguageModel::LanguageModel(LanguageModel&&) noexcept = default;
LanguageModel& LanguageModel::operator=(LanguageModel&&) noexcept = default;
LanguageModel::~LanguageModel() = default;

const ModelConfig& LanguageModel::config() const noexcept {
  return impl_->model->config();
}
Tier LanguageModel::tier() const noexcept {
  return impl_->model->tier();
}
int64_t LanguageModel::context_length() const noexcept {
  return impl_->context_length;
}
bool LanguageModel::has_tokenizer() const noexcept {
  return impl_->model->file().has_tokenizer();
}
const Tokenizer& LanguageModel::tokenizer() const {
  return impl_->model->file().tokenizer();
}
std::span<const int32_t> LanguageModel::eos_ids() const noexcept {
  return impl_->eos_ids;
}
uint64_t LanguageModel::weight_bytes() const noexcept {
  return impl_->model->weight_bytes();
}
uint64_t LanguageModel::owned_weight_bytes() const noexcept {
  return impl_->model->owned_bytes();
}
uint64_t LanguageModel::repacked_weight_bytes() const noexcept {
  return impl_->model->repacked_bytes();
}
uint64_t LanguageModel::kv_cache_bytes() const {
  const std::lock_guard lock(impl_->mutex);
  return impl_->cache->allocated_bytes();
}
uint64_t LanguageModel::kv_cache_budget_bytes() const noexcept {
  return impl_->cache->budget_bytes();
}

std::vector<float> LanguageModel::logits(std::span<const int32_t> ids) {
  const std::lock_guard lock(impl_->mutex);
  impl_->check_prompt(ids, "logits");
  const int64_t vocab = impl_->model->shape().vocab;
  std::vector<float> result;
  result.reserve(ids.size() * static_cast<size_t>(vocab));
  const detail::LanguageModelImpl::Sequence sequence(*impl_->cache);
  for (size_t begin = 0; begin < ids.size(); begin += detail::kChunkTokens) {
    const size_t count = std::min(ids.size() - begin, static_cast<size_t>(detail::kChunkTokens));
    impl_->run(sequence.id(), ids.subspan(begin, count), detail::LogitsRows::kAll);
    result.insert(result.end(), impl_->logits.begin(), impl_->logits.end());
  }
  return result;
}

Generation LanguageModel::generate(std::span<const int32_t> prompt,
                                   const GenerationOptions& options) {
  const std::lock_guard lock(impl_->mutex);
  return impl_->generate(prompt, options, nullptr);
}

Generation LanguageModel::generate(std::string_view prompt, const GenerationOptions& options) {
  const std::vector<int32_t> ids = tokenizer().encode(prompt, {.add_special = true});
  const std::lock_guard lock(impl_->mutex);
  return impl_->generate(ids, options, nullptr);
}

Generation LanguageModel::generate(std::span<const int32_t> prompt,
                                   const GenerationOptions& options,
                                   const TokenCallback& on_token) {
  const std::lock_guard lock(impl_->mutex);
  return impl_->generate(prompt, options, &on_token);
}

}  // namespace v0
}  // namespace polyinfer
