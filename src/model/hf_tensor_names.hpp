// SPDX-License-Identifier: Apache-2.0
// Hugging Face tensor names → GGUF tensor names (llama.cpp convert_hf_to_gguf conventions).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace polyinfer::inline v0::detail {

/// The GGUF name of a Hugging Face tensor of a model of GGUF architecture `architecture`
/// ("llama", "qwen2", "bert"): "model.layers.3.self_attn.q_proj.weight" → "blk.3.attn_q.weight",
/// "bert.pooler.dense.weight" → "cls.weight", "classifier.bias" → "cls.output.bias".
/// Names with no GGUF counterpart keep their Hugging Face spelling; nullopt for buffers that
/// are not weights (rotary inv_freq, position_ids), which a loader leaves out.
[[nodiscard]] std::optional<std::string> gguf_tensor_name(std::string_view architecture,
                                                          std::string_view hf_name);

}  // namespace polyinfer::inline v0::detail
