// SPDX-License-Identifier: Apache-2.0
// Writing GGUF model files: Hugging Face conversion and random-weight models of real shapes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "polyinfer/model.hpp"

namespace polyinfer {
inline namespace v0 {

/// The weight layout of a written GGUF file (`polyinfer convert|synth --type`). Tensors that
/// llama.cpp keeps in f32 (1-D tensors, norms, biases, BERT position and token-type embeddings)
/// stay f32 in every layout.
///
/// - kF32, kF16, kBF16, kQ8_0: every matrix in that type, as `convert_hf_to_gguf.py --outtype`
///   writes it (q8_0 falls back to f16 for rows that are not a multiple of 32).
/// - kQ4_0: `llama-quantize Q4_0`: q4_0, the output projection (or the token embedding when it
///   is tied) q6_k.
/// - kQ4_K_M: `llama-quantize Q4_K_M`: q4_k; the output projection q6_k; attn_v and ffn_down of
///   llama.cpp's "more bits" layers (use_more_bits: the first and last eighth of the layers and
///   every third one between) q6_k.
/// - kQ4_K: every matrix q4_k, the output projection included (`llama-quantize --pure Q4_K_M`).
/// In the q4 layouts a row length that does not fit the type's block takes llama.cpp's
/// fallback: q4_k → q5_0, q6_k → q8_0, then f16 (where llama.cpp gives up on q4_0, f16 too).
enum class WeightType { kF32, kF16, kBF16, kQ8_0, kQ4_0, kQ4_K, kQ4_K_M };

/// "f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q4_k_m".
[[nodiscard]] std::string_view weight_type_name(WeightType type) noexcept;
/// Parses a layout name (case-insensitive); nullopt for unknown names.
[[nodiscard]] std::optional<WeightType> weight_type_from_name(std::string_view name) noexcept;

/// What a writer produced.
struct WriteSummary {
  uint64_t file_bytes = 0;
  int64_t tensors = 0;
  int64_t parameters = 0;  ///< elements of every tensor
  /// Tensors per element type, by type name ("q4_0" → 155), in order of first appearance.
  std::vector<std::pair<std::string, int64_t>> tensors_by_type;
  /// What the tokenizer metadata holds: "ggml+hf" (tokenizer.ggml.* and
  /// tokenizer.huggingface.json), "ggml", "hf" (tokenizer.huggingface.json only), "none".
  std::string tokenizer;
  double seconds = 0;
};

// ---------------------------------------------------------------------------------------------
// Hugging Face folders → GGUF.

/// Which tokenizer metadata convert_model writes. tokenizer.huggingface.json (the folder's
/// tokenizer.json) and tokenizer.chat_template are always written.
enum class TokenizerMetadata {
  /// tokenizer.ggml.* too when llama.cpp's tokenizer reproduces the folder's on ordinary text:
  /// SentencePiece (tokenizer.model) and byte-level BPE with merges and a pre-tokenizer regex
  /// llama.cpp knows (gpt2, llama-bpe, qwen2). Not for WordPiece (llama.cpp's WPM has no
  /// 100-character word limit) nor anything else: those tokenize through the embedded
  /// tokenizer.json, exactly as the folder.
  kAuto,
  kHuggingFace,  ///< only tokenizer.huggingface.json
  kGgml,         ///< tokenizer.ggml.* whenever it maps (standard uncased BERT WordPiece included)
};

/// Options of convert_model.
struct ConvertOptions {
  WeightType type = WeightType::kF16;
  TokenizerMetadata tokenizer = TokenizerMetadata::kAuto;
  int threads = 0;   ///< quantization threads; 0: all hardware threads
  std::string name;  ///< general.name; "" derives it from the folder name as llama.cpp does
};

/// Converts a Hugging Face folder (Llama, Mistral, Qwen2, BERT) to a GGUF file laid out as
/// llama.cpp's convert_hf_to_gguf.py (+ llama-quantize for the q4 layouts) would: tensor names,
/// ggml shapes, Llama Q/K rows permuted for RoPE on adjacent pairs, metadata keys, tokenizer.ggml.*
/// where the tokenizer maps faithfully (TokenizerMetadata), and always tokenizer.huggingface.json
/// and tokenizer.chat_template. Tensors are converted a block of rows at a time and written
/// straight to the file. Throws polyinfer::Error naming the file, tensor or key.
///
///   polyinfer::convert_model("tiny-llama", "tiny-llama-q8_0.gguf",
///                            {.type = polyinfer::WeightType::kQ8_0});
WriteSummary convert_model(const std::filesystem::path& hf_folder, const std::filesystem::path& out,
                           const ConvertOptions& options = {});

// ---------------------------------------------------------------------------------------------
// Random-weight models of real shapes.

/// The hyper-parameters of a synthetic decoder.
struct SynthShape {
  std::string name;                    ///< "tinyllama-1.1b", or "custom"
  std::string architecture = "llama";  ///< GGUF architecture: "llama" or "qwen2"
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t intermediate_size = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t vocab_size = 0;
  int64_t context_length = 4096;
  double rope_theta = 10000.0;
  double norm_eps = 1e-5;
  bool tie_embeddings = false;
  bool attention_bias = false;  ///< q/k/v biases (Qwen2)
  RopeScaling rope_scaling;     ///< type "llama3" adds rope_freqs.weight (Llama 3.1 and later)
  /// "llama": SentencePiece-style vocabulary with byte fallback <0x00>..<0xFF>;
  /// "gpt2": byte-level BPE with merges (pre_tokenizer "llama-bpe" or "qwen2").
  std::string tokenizer = "llama";
  std::string pre_tokenizer;
  int32_t bos_id = 1;
  int32_t eos_id = 2;
};

/// The built-in shapes: tinyllama-1.1b, llama-2-7b, llama-3-8b, llama-3.2-1b, qwen2.5-0.5b.
[[nodiscard]] std::span<const SynthShape> synth_shapes() noexcept;
/// A built-in shape by name (case-insensitive); nullopt for unknown names.
[[nodiscard]] std::optional<SynthShape> synth_shape(std::string_view name);
/// A custom Llama shape (SentencePiece-style vocabulary; `vocab` at least 512).
[[nodiscard]] SynthShape synth_custom_shape(int64_t hidden, int64_t layers, int64_t ffn,
                                            int64_t heads, int64_t kv_heads, int64_t vocab);

/// Options of synthesize_model.
struct SynthOptions {
  WeightType type = WeightType::kQ4_0;
  uint64_t seed = 0;
  int threads = 0;  ///< 0: all hardware threads
};

/// Writes a GGUF of `shape` with random weights: matrices and biases ~ N(0, 0.02), norm weights
/// 1 + N(0, 0.02), a synthetic tokenizer vocabulary of the shape's size and family; the same
/// seed gives the same file whatever the thread count. Weights are generated and quantized a
/// block of rows at a time and streamed to the file (memory stays a few MiB per thread).
/// llama.cpp loads the result. Throws polyinfer::Error for an invalid shape or I/O failure.
///
///   auto shape = *polyinfer::synth_shape("tinyllama-1.1b");
///   polyinfer::synthesize_model(shape, "tinyllama-q4_0.gguf", {.type = WeightType::kQ4_0});
WriteSummary synthesize_model(const SynthShape& shape, const std::filesystem::path& out,
                              const SynthOptions& options = {});

}  // namespace v0
}  // namespace polyinfer
