// SPDX-License-Identifier: Apache-2.0
// Model files: GGUF files and Hugging Face folders opened behind one read-only view.
#pragma once

#include <cstdint>
#include <filesystem>
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

}  // namespace v0
}  // namespace polyinfer
