// SPDX-License-Identifier: Apache-2.0
// BertModel: BERT encoders (absolute positions, token types, GELU, post-LayerNorm) on the CPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/ops.hpp"
#include "polyinfer/model.hpp"

namespace polyinfer::inline v0::detail {

/// The sizes the encoder works with.
struct BertShape {
  int64_t vocab = 0;
  int64_t hidden = 0;
  int64_t ffn = 0;
  int64_t layers = 0;
  int64_t heads = 0;
  int64_t head_dim = 0;
  int64_t positions = 0;    ///< rows of the position embedding: tokens per sequence at most
  int64_t token_types = 0;  ///< rows of the token-type embedding
  int64_t labels = 0;       ///< classifier outputs; 0 without a classifier head
  float norm_eps = 1e-12f;
};

/// A weight matrix and its bias (BERT has a bias on every linear layer).
struct BertLinear {
  PackedMatrix weight;
  std::vector<float> bias;  ///< empty when the file has none
};

/// A LayerNorm's weight and bias.
struct BertNorm {
  std::vector<float> weight;
  std::vector<float> bias;
};

/// The weights of one encoder layer (post-norm: x = LN(x + attn(x)); x = LN(x + ffn(x))).
struct BertLayer {
  BertLinear q, k, v, o;
  BertNorm attn_norm;
  BertLinear up, down;
  BertNorm output_norm;
};

/// One sequence of a batch: token ids and their token types (empty: all type 0).
struct BertSequence {
  std::span<const int32_t> ids;
  std::span<const int32_t> token_types;
};

/// What a forward pass returns for a batch of B sequences of T tokens in all.
struct BertOutputs {
  std::vector<int64_t> first;  ///< first token of each sequence in `hidden` (B + 1 entries)
  std::vector<float> hidden;   ///< last hidden states, T × hidden
  std::vector<float> cls;      ///< B × hidden: the first token's hidden state
  std::vector<float> mean;     ///< B × hidden: mean over each sequence's tokens
  std::vector<float> pooled;   ///< B × hidden: tanh(dense(cls)); empty without a pooler
  std::vector<float> logits;   ///< B × labels: classifier(pooled); empty without a head
};

/// Sees intermediate activations (tests): "embeddings" (after the embedding LayerNorm) and
/// "layer<L>.out", each rows × cols floats for every token of the batch.
using EncoderObserver =
    std::function<void(std::string_view name, const float* data, int64_t rows, int64_t cols)>;

/// A loaded BERT encoder. Immutable after load: forward passes may run concurrently.
class BertModel {
 public:
  /// Builds the model from a file at a tier. Throws Error: kUnsupported for architectures
  /// other than bert (naming them), activations other than exact GELU, and tiers the weights
  /// cannot make (naming the tensor); kFormat for missing tensors or wrong shapes (naming the
  /// tensor and the shape expected).
  ///
  /// Tier recipes (tier_matrix_dtype), with these encoder rules:
  /// - q4_k: a matrix whose rows are not a multiple of 256 values takes q4_0 instead (same
  ///   4.5 bits per weight; llama.cpp would take q5_0). attn_v / ffn_down of the "more bits"
  ///   layers take q6_k, or q8_0 for such rows.
  /// - the word embedding is looked up; at quantized tiers it takes the output-matrix type
  ///   (q6_k, or q8_0 for rows not a multiple of 256), as llama.cpp does for models without
  ///   an output matrix. Position and token-type embeddings, norms and biases stay f32.
  /// - the head (pooler and classifier, ≤ hidden × hidden + labels × hidden values) stays in
  ///   its stored type at quantized tiers.
  [[nodiscard]] static std::unique_ptr<BertModel> load(const ModelFile& file, Tier tier);

  [[nodiscard]] const ModelConfig& config() const noexcept { return file_.config(); }
  [[nodiscard]] const ModelFile& file() const noexcept { return file_; }
  [[nodiscard]] const BertShape& shape() const noexcept { return shape_; }
  [[nodiscard]] Tier tier() const noexcept { return tier_; }
  [[nodiscard]] bool has_pooler() const noexcept { return pooler_ != nullptr; }
  [[nodiscard]] bool has_classifier() const noexcept { return classifier_ != nullptr; }
  /// Classifier labels by id (config id2label, else "LABEL_<i>"); empty without a head.
  [[nodiscard]] const std::vector<std::string>& labels() const noexcept { return labels_; }
  /// Bytes of the matrices the kernels read, and of those held outside the mapped file.
  [[nodiscard]] uint64_t weight_bytes() const noexcept { return weight_bytes_; }
  [[nodiscard]] uint64_t owned_bytes() const noexcept { return owned_bytes_; }
  /// "name type" for every matrix, in load order (tests, reports).
  [[nodiscard]] const std::vector<std::pair<std::string, DType>>& matrix_types() const noexcept {
    return matrix_types_;
  }

  /// Runs the encoder over a batch: every sequence attends to all of its own tokens (no
  /// padding); matrix products run over all tokens of the batch at once. Throws
  /// Error(kInvalidArgument) for an empty sequence, ids or token types out of range, token
  /// types not matching the ids, or a sequence longer than shape().positions.
  [[nodiscard]] BertOutputs forward(std::span<const BertSequence> batch, ThreadPool* pool,
                                    const EncoderObserver* observer = nullptr) const;

  /// Rejects a batch forward() would reject (same checks, same errors), without computing.
  void check(std::span<const BertSequence> batch) const;

  explicit BertModel(ModelFile file);

 private:
  friend class BertLoader;

  void embed(std::span<const BertSequence> batch, float* out) const;
  static void linear(const BertLinear& linear, const float* x, int64_t tokens, float* y,
                     ThreadPool* pool);

  ModelFile file_;
  BertShape shape_;
  Tier tier_ = Tier::kNative;
  uint64_t weight_bytes_ = 0;
  uint64_t owned_bytes_ = 0;
  // The word embedding as looked up (any type the reference dequantizer knows).
  DType embedding_dtype_ = DType::kF32;
  const std::byte* embedding_data_ = nullptr;
  uint64_t embedding_row_bytes_ = 0;
  std::vector<float> position_embedding_;    // positions × hidden
  std::vector<float> token_type_embedding_;  // token_types × hidden
  BertNorm embedding_norm_;
  std::vector<BertLayer> layers_;
  std::unique_ptr<BertLinear> pooler_;
  std::unique_ptr<BertLinear> classifier_;
  std::vector<std::string> labels_;
  std::vector<std::pair<std::string, DType>> matrix_types_;
  // Storage of derived or converted weights (PackedMatrix and embedding_data_ point here).
  std::vector<std::vector<std::byte>> owned_;
};

}  // namespace polyinfer::inline v0::detail
