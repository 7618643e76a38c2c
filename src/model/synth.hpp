// SPDX-License-Identifier: Apache-2.0
// Synthetic models: the tensor list and metadata of a shape (for synthesize_model and tests).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/gguf.hpp"
#include "polyinfer/model_writer.hpp"

namespace polyinfer::inline v0::detail {

/// How a synthetic tensor's values are drawn.
enum class SynthInit {
  kNormal,     ///< N(0, 0.02): matrices and biases
  kNorm,       ///< 1 + N(0, 0.02): norm weights
  kRopeFreqs,  ///< Llama 3 rope_freqs (computed, not random)
};

/// One tensor of a synthetic model.
struct SynthTensor {
  std::string name;
  std::vector<int64_t> ne;  ///< ggml order
  SynthInit init = SynthInit::kNormal;
};

/// Checks a shape (positive sizes, heads divide the hidden size, kv heads divide heads, an
/// even head dimension, known architecture and tokenizer); Error(kInvalidArgument) naming the
/// field otherwise.
void validate_synth_shape(const SynthShape& shape);

/// The tensors of a shape, in llama.cpp's loader order (what llama-quantize writes).
[[nodiscard]] std::vector<SynthTensor> synth_tensors(const SynthShape& shape);

/// Llama 3's per-frequency RoPE divisors (convert_hf_to_gguf's rope_freqs), head_dim / 2 values.
[[nodiscard]] std::vector<float> llama3_rope_factors(const SynthShape& shape);

/// The metadata convert_hf_to_gguf.py would write for a model of this shape (general.*,
/// <arch>.*, tokenizer.*), file type of `type`, in the converter's order.
void add_synth_metadata(GgufWriter& writer, const SynthShape& shape, WeightType type);

}  // namespace polyinfer::inline v0::detail
