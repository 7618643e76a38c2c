// SPDX-License-Identifier: Apache-2.0
// LlamaModel: the Llama-family decoder (Llama 2/3, Mistral, Qwen2) as a batched forward pass.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "kernels/ops.hpp"
#include "polyinfer/model.hpp"
#include "runtime/batch.hpp"
#include "runtime/kv_cache.hpp"

namespace polyinfer::inline v0::detail {

/// The sizes the forward pass works with.
struct LlamaShape {
  int64_t vocab = 0;
  int64_t hidden = 0;
  int64_t ffn = 0;
  int64_t layers = 0;
  int64_t heads = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  float norm_eps = 1e-5f;
  RopeLayout rope_layout = RopeLayout::kHalf;
};

/// A weight matrix and its optional bias.
struct Linear {
  PackedMatrix weight;
  std::vector<float> bias;  ///< empty when none
};

/// The weights of one decoder layer.
struct LlamaLayer {
  std::vector<float> attn_norm;
  Linear q, k, v, o;
  std::vector<float> ffn_norm;
  Linear gate, up, down;
};

/// Sees intermediate activations (tests): "embeddings", "layer<L>.out" (the residual stream
/// after layer L) and "final_norm", each rows × cols floats for every token of the batch.
using ActivationObserver =
    std::function<void(std::string_view name, const float* data, int64_t rows, int64_t cols)>;

/// Scratch memory of forward passes. Buffers grow to the largest batch and stay: no allocation
/// per token once warm. One workspace per thread that runs forward passes.
struct LlamaWorkspace {
  std::vector<float> x, normed, q, k, v, attn, projected, gate, up, act, last;
  std::vector<int32_t> positions;
};

/// A loaded Llama-family model. Immutable after load: forward passes on separate workspaces
/// and caches may run concurrently.
class LlamaModel {
 public:
  /// Builds the model from a file at a tier. Throws Error: kUnsupported for architectures
  /// other than llama / qwen2 (naming what is supported) and tiers the weights cannot make,
  /// kFormat for missing tensors or wrong shapes (naming the tensor).
  /// `cpu_layouts` false skips the CPU kernels' repacked copies (a model another device runs).
  [[nodiscard]] static std::unique_ptr<LlamaModel> load(const ModelFile& file, Tier tier,
                                                        bool cpu_layouts = true);

  [[nodiscard]] const ModelConfig& config() const noexcept { return file_.config(); }
  [[nodiscard]] const ModelFile& file() const noexcept { return file_; }
  [[nodiscard]] const LlamaShape& shape() const noexcept { return shape_; }
  [[nodiscard]] Tier tier() const noexcept { return tier_; }
  /// Whether every matrix is f32 or bf16 (exact in f32): the KV cache then defaults to f32.
  [[nodiscard]] bool full_precision() const noexcept { return full_precision_; }
  /// Bytes of the matrices the kernels read; of weights derived or converted at load (held
  /// outside the mapped file); of copies the kernels keep in their own layouts.
  [[nodiscard]] uint64_t weight_bytes() const noexcept { return weight_bytes_; }
  [[nodiscard]] uint64_t owned_bytes() const noexcept { return owned_bytes_; }
  [[nodiscard]] uint64_t repacked_bytes() const noexcept { return repacked_bytes_; }
  /// The KV cache rows this model writes.
  [[nodiscard]] KvCacheShape kv_shape(KvType type, int64_t block_rows = 16) const noexcept;

  /// Runs one forward pass: each entry's tokens are appended to its sequence in `cache` (at
  /// positions length…), attending to everything before; matrix products run over all tokens
  /// of the batch at once. Logits of the rows the entries ask for go to `logits`
  /// (rows × vocab, entry by entry). Returns false, computing nothing, when the KV cache has
  /// no room; throws Error(kInvalidArgument) for empty entries, ids out of range, a sequence
  /// twice, or positions beyond `context_length`.
  [[nodiscard]] bool forward(std::span<const BatchEntry> batch, KvCache& cache,
                             int64_t context_length, LlamaWorkspace& workspace, ThreadPool* pool,
                             std::vector<float>& logits,
                             const ActivationObserver* observer = nullptr) const;

  /// Rejects a batch forward() would reject (same checks, same errors), without computing.
  void check(std::span<const BatchEntry> batch, const KvCache& cache, int64_t context_length) const;

  explicit LlamaModel(ModelFile file);

  // Weights as loaded (other devices upload them from here).
  [[nodiscard]] std::span<const LlamaLayer> layers() const noexcept { return layers_; }
  [[nodiscard]] const PackedMatrix& output() const noexcept { return *output_; }
  [[nodiscard]] std::span<const float> output_norm() const noexcept { return output_norm_; }
  [[nodiscard]] const RopeTable& rope_table() const noexcept { return rope_; }
  /// The token embedding table: vocab rows of `hidden` values of `dtype`, GGUF layout.
  [[nodiscard]] DType embedding_dtype() const noexcept { return embedding_dtype_; }
  [[nodiscard]] const std::byte* embedding_data() const noexcept { return embedding_data_; }

 private:
  friend class LlamaLoader;

  void embed(std::span<const int32_t> ids, float* out) const;
  void linear(const Linear& linear, const float* x, int64_t tokens, float* y,
              ThreadPool* pool) const;

  ModelFile file_;
  LlamaShape shape_;
  Tier tier_ = Tier::kNative;
  bool full_precision_ = true;
  uint64_t weight_bytes_ = 0;
  uint64_t owned_bytes_ = 0;
  uint64_t repacked_bytes_ = 0;
  // The token embedding as looked up (any type the reference dequantizer knows).
  DType embedding_dtype_ = DType::kF32;
  const std::byte* embedding_data_ = nullptr;
  uint64_t embedding_row_bytes_ = 0;
  std::vector<LlamaLayer> layers_;
  std::vector<float> output_norm_;
  std::unique_ptr<PackedMatrix> output_;
  RopeTable rope_;
  // Storage of derived or converted weights (PackedMatrix and embedding_data_ point here).
  std::vector<std::vector<std::byte>> owned_;
};

}  // namespace polyinfer::inline v0::detail
