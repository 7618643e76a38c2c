// SPDX-License-Identifier: Apache-2.0
// Metadata pieces shared by convert and synth: general.* keys as convert_hf_to_gguf writes them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "format/gguf.hpp"
#include "model/convert_stream.hpp"
#include "polyinfer/model_writer.hpp"

namespace polyinfer::inline v0::detail {

/// gguf-py's size_label: "1.4M", "460K", "7.2B" (two significant digits at least).
[[nodiscard]] std::string gguf_size_label(int64_t parameters);

/// gguf-py's Metadata.id_to_title: "tiny-llama" → "Tiny Llama" (lower-case words title-cased,
/// versions and numbers kept).
[[nodiscard]] std::string gguf_model_title(std::string_view model_id);

/// general.architecture, general.type ("model"), general.name, general.size_label.
void add_general_metadata(GgufWriter& writer, std::string_view architecture, std::string_view name,
                          int64_t parameters);

/// general.file_type at this point of the metadata, for the converter's layouts (f32, f16,
/// bf16, q8_0); the q4 layouts get it at the end (finish_metadata), as llama-quantize moves it.
void add_file_type_in_place(GgufWriter& writer, WeightType type);

/// general.quantization_version (2), then general.file_type for the q4 layouts.
void finish_metadata(GgufWriter& writer, WeightType type);

/// Sum of elements of all tensors.
[[nodiscard]] int64_t count_parameters(const std::vector<StreamTensor>& tensors);

/// The summary of a written file.
[[nodiscard]] WriteSummary summarize_written(const std::vector<StreamTensor>& tensors,
                                             const std::filesystem::path& path,
                                             std::string tokenizer, double seconds);

/// convert_hf_to_gguf's rope_freqs.weight for Llama 3 RoPE scaling: head_dim / 2 divisors (1 for
/// high frequencies, `factor` for low ones, smoothed between); original context 8192 when the
/// scaling does not name one (the converter's default).
[[nodiscard]] std::vector<float> llama3_rope_factors(const RopeScaling& scaling, double rope_theta,
                                                     int64_t head_dim);

/// A GGUF string array.
[[nodiscard]] GgufValue gguf_string_array(const std::vector<std::string>& items);

}  // namespace polyinfer::inline v0::detail
