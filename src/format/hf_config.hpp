// SPDX-License-Identifier: Apache-2.0
// Hugging Face config.json and GGUF metadata → polyinfer::ModelConfig.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "polyinfer/model.hpp"

namespace polyinfer::inline v0::detail {

class GgufFile;

/// Parses config.json text of LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, BertModel
/// and BertForSequenceClassification, in transformers 4.x and 5.x spellings (rope_theta at the
/// top or in rope_parameters, torch_dtype or dtype, rope_scaling or rope_parameters).
/// `where` names the file in errors ("…/config.json"). Throws Error(kUnsupported) for other
/// model types, Error(kFormat) naming the key for missing keys and wrong JSON types.
/// stored_dtype comes from (torch_)dtype; the caller may refine it from the weights.
///
///   ModelConfig config = parse_hf_config(read_text_file(dir / "config.json"), "config.json");
[[nodiscard]] ModelConfig parse_hf_config(std::string_view json_text, const std::string& where);

/// config.json flattened to printable pairs in file order ("rope_parameters.rope_theta",
/// "1000000.0"); long arrays summarised.
[[nodiscard]] std::vector<std::pair<std::string, std::string>> flatten_hf_config(
    std::string_view json_text, const std::string& where);

/// Hyper-parameters from GGUF metadata (`<arch>.embedding_length`, `.block_count`, …). Files
/// with tensors need the keys of a supported architecture (llama, qwen2, bert): missing keys
/// throw Error(kFormat) naming the key, other architectures Error(kUnsupported). Vocabulary-
/// only files (no tensors) give whatever the metadata holds. stored_dtype is left to the caller.
[[nodiscard]] ModelConfig gguf_model_config(const GgufFile& file);

}  // namespace polyinfer::inline v0::detail
