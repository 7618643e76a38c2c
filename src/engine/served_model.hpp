// SPDX-License-Identifier: Apache-2.0
// ServedDecoder / ServedEncoder: the seam between the Engine's schedulers and the models.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/ops.hpp"
#include "polyinfer/engine.hpp"
#include "polyinfer/tokenizer.hpp"
#include "runtime/batch.hpp"

namespace polyinfer::inline v0::detail {

/// A decoder as the continuous batcher drives it: sequences in a KV cache, batched forward
/// passes. Used by one executor at a time (the runner's claim), so implementations need no lock.
class ServedDecoder {
 public:
  virtual ~ServedDecoder() = default;
  /// Prompt ids with the model's special tokens (BOS); throws Error for text it cannot encode.
  [[nodiscard]] virtual std::vector<int32_t> encode(std::string_view prompt) const = 0;
  /// Text of generated ids, special tokens left out.
  [[nodiscard]] virtual std::string decode(std::span<const int32_t> ids) const = 0;
  /// The tokenizer for incremental text (stop strings, streaming); null when there is none.
  [[nodiscard]] virtual const Tokenizer* tokenizer() const = 0;
  /// Ids that end generation.
  [[nodiscard]] virtual std::span<const int32_t> eos_ids() const = 0;
  [[nodiscard]] virtual int64_t vocab() const = 0;
  [[nodiscard]] virtual int64_t context_length() const = 0;
  /// Bytes held in memory: weights and the KV cache budget.
  [[nodiscard]] virtual uint64_t resident_bytes() const = 0;

  [[nodiscard]] virtual int32_t create_sequence() = 0;
  virtual void release_sequence(int32_t sequence) = 0;
  /// Shares cached KV blocks of a prefix of `tokens` (at most max_rows); returns the rows reused.
  virtual int64_t reuse_prefix(int32_t sequence, std::span<const int32_t> tokens,
                               int64_t max_rows) = 0;
  /// One forward pass (see LlamaModel::forward); false when the KV cache has no room.
  [[nodiscard]] virtual bool forward(std::span<const BatchEntry> batch,
                                     std::vector<float>& logits) = 0;
  /// forward() with each logits row reduced to its greedy_pick (on the GPU when the model runs
  /// there, so only the picks are copied); what a step of greedy sequences needs.
  [[nodiscard]] virtual bool forward_greedy(std::span<const BatchEntry> batch,
                                            std::vector<GreedyPick>& picks) = 0;
  /// forward() with logits row r sampled under specs[r] (one per row; penalized ranges index
  /// `penalized`), on the GPU when the model runs there. The default samples forward()'s
  /// logits with sample_pick().
  [[nodiscard]] virtual bool forward_sample(std::span<const BatchEntry> batch,
                                            std::span<const SampleSpec> specs,
                                            std::span<const int32_t> penalized,
                                            std::vector<SamplePick>& picks);

 private:
  std::vector<float> sample_logits_;  // forward_sample() by default
  SampleScratch sample_scratch_;
};

/// An encoder as the batching window drives it. Const methods; one caller at a time.
class ServedEncoder {
 public:
  virtual ~ServedEncoder() = default;
  /// [CLS] text [SEP]; throws Error(kInvalidArgument) for empty or too long text.
  [[nodiscard]] virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  /// Classifier labels by id (empty without a head).
  [[nodiscard]] virtual std::vector<std::string> labels() const = 0;
  [[nodiscard]] virtual uint64_t resident_bytes() const = 0;
  /// Per sequence: label probabilities (classify) or the mean-pooled embedding.
  [[nodiscard]] virtual std::vector<std::vector<float>> run(
      std::span<const std::vector<int32_t>> batch, bool classify) const = 0;
};

/// What loading one (model, tier) yields: exactly one of the two.
struct LoadedModel {
  std::unique_ptr<ServedDecoder> decoder;
  std::unique_ptr<ServedEncoder> encoder;
};

/// How a model is loaded for serving.
struct ServeSettings {
  int32_t threads = 1;
  int32_t max_sequences = 32;  ///< the KV cache holds this many full-context sequences
};

/// The real loader: LlamaModel for "decoder", Encoder for "classifier" / "embedding".
[[nodiscard]] LoadedModel load_served_model(const ModelSpec& spec, const std::string& tier,
                                            const ServeSettings& settings);

/// Bytes a model will take before it is loaded: its stored tensors, and for decoders the KV
/// cache budget `settings` gives it (0 if the file cannot be read).
[[nodiscard]] uint64_t estimate_model_bytes(const ModelSpec& spec, const ServeSettings& settings);

/// How the engine loads models and sizes them beforehand; tests substitute fakes.
struct ModelLoader {
  /// Loads a (model, tier); throws Error.
  std::function<LoadedModel(const ModelSpec&, const std::string& tier, const ServeSettings&)> load =
      load_served_model;
  /// Bytes before loading, for the memory budget (corrected by the measured bytes after).
  std::function<uint64_t(const ModelSpec&, const ServeSettings&)> estimate_bytes =
      estimate_model_bytes;
};

}  // namespace polyinfer::inline v0::detail
