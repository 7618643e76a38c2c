// SPDX-License-Identifier: Apache-2.0
// Model files: GGUF files and Hugging Face folders opened behind one read-only view.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "polyinfer/tensor.hpp"
#include "polyinfer/tokenizer.hpp"

namespace polyinfer {
inline namespace v0 {

namespace detail {
class ModelFileImpl;
}

/// Where a model came from.
enum class ModelFormat { kGguf, kHuggingFace };

/// RoPE frequency scaling (Llama 3.1 "llama3", "linear"); type "" when none.
struct RopeScaling {
  std::string type;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_positions = 0;
};

/// Hyper-parameters of a model, from GGUF metadata or config.json, in one vocabulary.
struct ModelConfig {
  std::string architecture;  ///< "llama", "qwen2", "bert" (GGUF's general.architecture names)
  std::string source_architecture;  ///< as the file says ("LlamaForCausalLM", "llama", …)
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_positions = 0;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  /// Q/K rows are stored permuted for RoPE on adjacent pairs (llama GGUF); else rotate-half.
  bool rope_interleaved = false;
  double norm_eps = 1e-5;
  bool tie_embeddings = false;
  bool attention_bias = false;
  std::string hidden_act;  ///< "silu", "gelu", …
  // Encoders (BERT).
  int64_t type_vocab_size = 0;
  std::vector<std::string> labels;  ///< classifier labels by id (empty when not a classifier)
  /// Element type the weights are stored in (the most common among matrices).
  DType stored_dtype = DType::kF32;
};

/// Name, type and shape of one stored tensor (shape row-major, outermost first).
struct TensorInfo {
  std::string name;  ///< GGUF naming ("blk.0.attn_q.weight"), also for Hugging Face folders
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t bytes = 0;
};

/// A model file opened read-only: weights memory-mapped (zero copy), metadata, tokenizer.
/// Immutable after open: safe to share between threads.
///
///   auto model = polyinfer::ModelFile::open("tiny-llama-q8_0.gguf");
///   polyinfer::TensorView w = model.tensor("blk.0.attn_q.weight");
class ModelFile {
 public:
  /// Opens a .gguf file or a Hugging Face folder (config.json + *.safetensors). Throws
  /// polyinfer::Error naming the file and the problem.
  [[nodiscard]] static ModelFile open(const std::filesystem::path& path);

  [[nodiscard]] ModelFormat format() const noexcept;
  [[nodiscard]] const std::filesystem::path& path() const noexcept;
  [[nodiscard]] const ModelConfig& config() const noexcept;
  /// Every weight tensor, in file order.
  [[nodiscard]] std::span<const TensorInfo> tensors() const noexcept;
  /// Whether a tensor of that (GGUF) name exists.
  [[nodiscard]] bool has_tensor(std::string_view name) const noexcept;
  /// The stored bytes of a tensor; throws polyinfer::Error (kNotFound) when absent.
  [[nodiscard]] TensorView tensor(std::string_view name) const;
  /// Metadata as printable key/value pairs (long arrays summarised), in file order.
  [[nodiscard]] std::span<const std::pair<std::string, std::string>> metadata() const noexcept;
  /// Whether the file carries a tokenizer (vocabulary-only GGUFs do; some weight files do not).
  [[nodiscard]] bool has_tokenizer() const noexcept;
  /// The tokenizer; throws polyinfer::Error when the file has none.
  [[nodiscard]] const Tokenizer& tokenizer() const;
  /// The chat template text, "" when none.
  [[nodiscard]] const std::string& chat_template() const noexcept;

  explicit ModelFile(std::shared_ptr<const detail::ModelFileImpl> impl);

 private:
  std::shared_ptr<const detail::ModelFileImpl> impl_;
};

// ---------------------------------------------------------------------------------------------
// Language models (decoders of the Llama family: Llama 2/3, Mistral, Qwen2) on the CPU.

namespace detail {
class LanguageModelImpl;
}

/// The weight precision a model runs at: as stored, or derived from float weights at load time.
enum class Tier { kNative, kF32, kF16, kQ8_0, kQ4_0, kQ4_K };

/// "native", "f32", "f16", "q8_0", "q4_0", "q4_k".
[[nodiscard]] std::string_view tier_name(Tier tier) noexcept;
/// Parses a tier name (case-insensitive); nullopt for unknown names.
[[nodiscard]] std::optional<Tier> tier_from_name(std::string_view name) noexcept;

/// Element type of the KV cache. kAuto: f32 when the weights run in f32 or bf16 (results then
/// match an fp32 reference), f16 otherwise.
enum class KvCacheType { kAuto, kF32, kF16, kQ8_0 };

/// How LanguageModel::load prepares a model.
struct LoadOptions {
  Tier tier = Tier::kNative;
  int threads = 0;             ///< CPU threads for the kernels; 0: all hardware threads
  int64_t context_length = 0;  ///< positions per sequence; 0: the model's, at most 4096
  KvCacheType kv_type = KvCacheType::kAuto;
  uint64_t kv_cache_bytes = 0;  ///< KV cache budget; 0: two sequences of full context
  /// Where decoders run: "cpu", "cuda" / "cuda:N" (weights and KV cache in GPU memory; the
  /// KV cache is f16, or f32 for f32/bf16 weights), or "cuda:0,cuda:1" (split over those GPUs:
  /// tensor parallelism). Encoders run on the CPU.
  std::string device = "cpu";
};

/// How the next token is chosen. Applied in this order: repetition penalty, temperature,
/// top-k, top-p, min-p; then a draw from the remaining distribution.
struct SamplingParams {
  float temperature = 0.0f;         ///< 0: greedy (argmax, ties to the lowest id)
  int32_t top_k = 0;                ///< keep the k most likely tokens; 0: off
  float top_p = 1.0f;               ///< keep the smallest set with this much probability; 1: off
  float min_p = 0.0f;               ///< drop tokens below min_p × the top probability; 0: off
  float repetition_penalty = 1.0f;  ///< HF rule over prompt and output tokens; 1: off
  uint64_t seed = 0;                ///< same seed, same model, same prompt: same tokens
};

/// Options of LanguageModel::generate.
struct GenerationOptions {
  int32_t max_tokens = 128;  ///< generated tokens at most (stop token included)
  SamplingParams sampling;
  bool stop_at_eos = true;                ///< stop on the model's end ids (EOS, generation_config)
  std::vector<int32_t> stop_ids;          ///< further ids that end generation (kept in `ids`)
  std::vector<std::string> stop_strings;  ///< text that ends generation (cut from `text`)
};

/// Why generation ended.
enum class StopReason { kStopToken, kStopString, kMaxTokens, kContextFull, kCancelled };

/// "stop_token", "stop_string", "max_tokens", "context_full", "cancelled".
[[nodiscard]] std::string_view stop_reason_name(StopReason reason) noexcept;

/// One generated token, as the streaming callback sees it.
struct GeneratedToken {
  int32_t id = 0;
  std::string_view text;     ///< text that became final with this token (may be empty)
  float logprob = 0.0f;      ///< log p(id) under the model's unmodified distribution
  float top_logprob = 0.0f;  ///< log p of the most likely token (confidence)
};

/// The result of LanguageModel::generate.
struct Generation {
  std::vector<int32_t> ids;         ///< generated ids, a stop id included
  std::string text;                 ///< decoded ids without special tokens, stop string cut
  std::vector<float> logprobs;      ///< per id: log p under the unmodified distribution
  std::vector<float> top_logprobs;  ///< per id: log p of the most likely token
  StopReason stop_reason = StopReason::kMaxTokens;
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;  ///< prompt positions reused from the prefix cache
};

/// Called for every generated token; return false to stop (StopReason::kCancelled).
using TokenCallback = std::function<bool(const GeneratedToken&)>;

/// A decoder model loaded for inference on the CPU or a GPU (LoadOptions::device), with its KV
/// cache (prefix caching between calls) and tokenizer. Calls are serialized by an internal mutex:
/// any thread may call, one call runs at a time.
///
///   auto lm = polyinfer::LanguageModel::load("tiny-llama-q8_0.gguf");
///   polyinfer::Generation g = lm.generate("Once upon a time", {.max_tokens = 32});
class LanguageModel {
 public:
  /// Loads a GGUF file or Hugging Face folder. Throws polyinfer::Error for unsupported
  /// architectures, missing tensors, or a tier the stored weights cannot make.
  [[nodiscard]] static LanguageModel load(const std::filesystem::path& path,
                                          const LoadOptions& options = {});

  [[nodiscard]] const ModelConfig& config() const noexcept;
  [[nodiscard]] Tier tier() const noexcept;
  /// Positions per sequence (prompt and generated tokens together).
  [[nodiscard]] int64_t context_length() const noexcept;
  /// Whether the model has a tokenizer (text prompts need one).
  [[nodiscard]] bool has_tokenizer() const noexcept;
  /// The tokenizer; throws polyinfer::Error when the model has none.
  [[nodiscard]] const Tokenizer& tokenizer() const;
  /// Ids that end generation by default (EOS, generation_config.json's eos_token_id).
  [[nodiscard]] std::span<const int32_t> eos_ids() const noexcept;
  /// Bytes of the weights the kernels read (in place or derived).
  [[nodiscard]] uint64_t weight_bytes() const noexcept;
  /// Bytes of weights derived or converted at load, held besides the mapped file; 0 when the
  /// stored weights are used in place.
  [[nodiscard]] uint64_t owned_weight_bytes() const noexcept;
  /// Bytes of weight copies the CPU kernels keep in their own layouts (interleaved blocks).
  [[nodiscard]] uint64_t repacked_weight_bytes() const noexcept;
  /// Bytes the KV cache holds now (allocated blocks), and its budget.
  [[nodiscard]] uint64_t kv_cache_bytes() const;
  [[nodiscard]] uint64_t kv_cache_budget_bytes() const noexcept;

  /// Logits at every position of `ids` (a fresh sequence): tokens × vocab_size floats.
  [[nodiscard]] std::vector<float> logits(std::span<const int32_t> ids);
  /// Generates from prompt ids; a prompt prefix seen before is reused from the KV cache.
  [[nodiscard]] Generation generate(std::span<const int32_t> prompt,
                                    const GenerationOptions& options = {});
  /// Generates from text, encoded with the model's special tokens (BOS).
  [[nodiscard]] Generation generate(std::string_view prompt, const GenerationOptions& options = {});
  /// Generates, calling `on_token` as each token is chosen.
  Generation generate(std::span<const int32_t> prompt, const GenerationOptions& options,
                      const TokenCallback& on_token);

  LanguageModel(LanguageModel&&) noexcept;
  LanguageModel& operator=(LanguageModel&&) noexcept;
  ~LanguageModel();
  explicit LanguageModel(std::unique_ptr<detail::LanguageModelImpl> impl);

 private:
  std::unique_ptr<detail::LanguageModelImpl> impl_;
};

// ---------------------------------------------------------------------------------------------
// Encoders (BERT) on the CPU: hidden states, pooled embeddings, sequence classification.

namespace detail {
class EncoderImpl;
}

/// Which vector Encoder::embed returns.
enum class Pooling {
  kMean,    ///< mean of the last hidden states over all tokens ([CLS] and [SEP] included)
  kCls,     ///< last hidden state of the first token ([CLS])
  kPooler,  ///< BERT's pooler output tanh(dense(CLS)); needs a model with a pooler
};

/// "mean", "cls", "pooler".
[[nodiscard]] std::string_view pooling_name(Pooling pooling) noexcept;
/// Parses a pooling name (case-insensitive); nullopt for unknown names.
[[nodiscard]] std::optional<Pooling> pooling_from_name(std::string_view name) noexcept;

/// Everything one encoder pass yields for one text.
struct Encoding {
  std::vector<int32_t> ids;  ///< token ids, [CLS] … [SEP] included
  int64_t hidden_size = 0;
  std::vector<float> hidden;  ///< last hidden states: ids.size() × hidden_size, row-major
  std::vector<float> cls;     ///< hidden state of the first token
  std::vector<float> mean;    ///< mean of the hidden states over all tokens
  std::vector<float> pooled;  ///< pooler output tanh(dense(cls)); empty without a pooler
  std::vector<float> logits;  ///< classifier logits by label id; empty without a classifier
  std::vector<float> probs;   ///< softmax of logits
  int32_t label = -1;         ///< argmax of logits (the first of equal ones); -1 without one
};

/// The result of Encoder::classify.
struct Classification {
  int32_t label = -1;
  std::string label_name;     ///< config.json id2label (or GGUF labels); "LABEL_<id>" if none
  std::vector<float> scores;  ///< softmax probabilities by label id
  std::vector<float> logits;  ///< raw classifier outputs by label id
};

/// A BERT encoder (BertModel, BertForSequenceClassification) loaded for inference on the CPU,
/// with its tokenizer. Every method is const and safe to call from many threads at once;
/// concurrent calls share one thread pool, whose parallel loops run one at a time.
///
///   auto encoder = polyinfer::Encoder::load("intent");
///   polyinfer::Classification c = encoder.classify("Is my pension at risk?");
///   std::vector<float> e = encoder.embed("Is my pension at risk?", polyinfer::Pooling::kMean);
class Encoder {
 public:
  /// Loads a Hugging Face folder or GGUF file; reads `tier` and `threads` of the options.
  /// Throws polyinfer::Error for non-BERT architectures (decoders load as LanguageModel),
  /// missing tensors (named), or a tier the stored weights cannot make.
  [[nodiscard]] static Encoder load(const std::filesystem::path& path,
                                    const LoadOptions& options = {});

  [[nodiscard]] const ModelConfig& config() const noexcept;
  [[nodiscard]] Tier tier() const noexcept;
  /// Tokens per text at most ([CLS] and [SEP] included): the model's position embeddings.
  [[nodiscard]] int64_t max_tokens() const noexcept;
  [[nodiscard]] bool has_pooler() const noexcept;
  [[nodiscard]] bool has_classifier() const noexcept;
  /// Classifier labels by id; empty without a classifier.
  [[nodiscard]] std::span<const std::string> labels() const noexcept;
  [[nodiscard]] bool has_tokenizer() const noexcept;
  /// The tokenizer; throws polyinfer::Error when the model has none.
  [[nodiscard]] const Tokenizer& tokenizer() const;
  /// Bytes of the weights the kernels read, and of those held besides the mapped file.
  [[nodiscard]] uint64_t weight_bytes() const noexcept;
  [[nodiscard]] uint64_t owned_weight_bytes() const noexcept;

  /// Encodes a text ([CLS] text [SEP], token type 0). Throws Error(kInvalidArgument) for text
  /// with no tokens and for text longer than max_tokens() (no silent truncation).
  [[nodiscard]] Encoding encode(std::string_view text) const;
  /// Encodes several texts in one batch (no padding: each attends to its own tokens).
  [[nodiscard]] std::vector<Encoding> encode_batch(std::span<const std::string> texts) const;
  /// Encodes token ids as given (special tokens included); `token_types` empty means all 0.
  [[nodiscard]] Encoding encode_ids(std::span<const int32_t> ids,
                                    std::span<const int32_t> token_types = {}) const;
  /// Encodes several id sequences in one batch.
  [[nodiscard]] std::vector<Encoding> encode_ids_batch(
      std::span<const std::vector<int32_t>> ids) const;
  /// One embedding vector of a text (hidden_size floats).
  [[nodiscard]] std::vector<float> embed(std::string_view text,
                                         Pooling pooling = Pooling::kMean) const;
  /// The label of a text and the probability of every label; needs a classifier.
  [[nodiscard]] Classification classify(std::string_view text) const;

  Encoder(Encoder&&) noexcept;
  Encoder& operator=(Encoder&&) noexcept;
  ~Encoder();
  explicit Encoder(std::unique_ptr<detail::EncoderImpl> impl);

 private:
  std::unique_ptr<detail::EncoderImpl> impl_;
};

}  // namespace v0
}  // namespace polyinfer
