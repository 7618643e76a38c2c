// SPDX-License-Identifier: Apache-2.0
// model_end_ids: the token ids that end generation for a model file (EOS, EOT, EOM).
#pragma once

#include <cstdint>
#include <vector>

#include "polyinfer/model.hpp"

namespace polyinfer::inline v0::detail {

/// Sorted, unique ids that end generation: the tokenizer's EOS, plus generation_config.json's
/// eos_token_id list (Hugging Face folders) or tokenizer.ggml.eot_token_id / eom_token_id (GGUF).
[[nodiscard]] std::vector<int32_t> model_end_ids(const ModelFile& file);

}  // namespace polyinfer::inline v0::detail
