// SPDX-License-Identifier: Apache-2.0
// GGUF files that carry a Hugging Face tokenizer.json (tokenizer.huggingface.json) instead of a
// llama.cpp vocabulary: the rule that picks it, and its loader.
#pragma once

#include <memory>
#include <string_view>

#include "tokenizer/tokenizer_impl.hpp"

namespace polyinfer::inline v0::detail {

class GgufFile;

/// The tokenizer.json text (a standard GGUF key).
inline constexpr std::string_view kGgufHfJsonKey = "tokenizer.huggingface.json";
/// The tokenizer_config.json text (polyinfer's key, written by `polyinfer convert`).
inline constexpr std::string_view kGgufHfConfigKey = "tokenizer.huggingface.config_json";

/// Whether the file's tokenizer is the embedded Hugging Face one: it has
/// tokenizer.huggingface.json and no tokenizer.ggml.model (a llama.cpp vocabulary, when
/// present, wins: the file then tokenizes as llama.cpp does).
[[nodiscard]] bool uses_gguf_hf_tokenizer(const GgufFile& file) noexcept;

/// transformers behaviour from tokenizer.huggingface.json, with tokenizer_config.json from
/// tokenizer.huggingface.config_json; without that key a config is made from the file's
/// tokenizer.ggml.{bos,eos,padding,unknown}_token_id (their token texts) and
/// tokenizer.chat_template. Errors name the file and key.
[[nodiscard]] std::shared_ptr<const TokenizerImpl> make_gguf_hf_tokenizer(const GgufFile& file);

}  // namespace polyinfer::inline v0::detail
