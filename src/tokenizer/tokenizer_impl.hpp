// SPDX-License-Identifier: Apache-2.0
// TokenizerImpl: the internal interface behind polyinfer::Tokenizer, and its factories.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "polyinfer/tokenizer.hpp"

namespace polyinfer::inline v0::detail {

class GgufFile;

/// What every tokenizer knows about itself, filled by its loader.
struct TokenizerInfo {
  std::string kind;           ///< "spm-bpe", "byte-bpe", "wordpiece"
  std::string pre_tokenizer;  ///< "qwen2", "llama-bpe", … ("" when none)
  TokenizerFlavor flavor = TokenizerFlavor::kHuggingFace;
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  int32_t pad_id = -1;
  int32_t unk_id = -1;
  std::string chat_template;
};

/// One tokenizer implementation. Implementations are immutable after construction, so every
/// const method is thread-safe.
class TokenizerImpl {
 public:
  virtual ~TokenizerImpl() = default;
  [[nodiscard]] virtual std::vector<int32_t> encode(std::string_view text,
                                                    const EncodeOptions& options) const = 0;
  /// Ids are checked by the caller (0 <= id < vocab_size()).
  [[nodiscard]] virtual std::string decode(std::span<const int32_t> ids,
                                           const DecodeOptions& options) const = 0;
  [[nodiscard]] virtual std::string token(int32_t id) const = 0;
  [[nodiscard]] virtual int32_t vocab_size() const noexcept = 0;
  [[nodiscard]] virtual bool is_special(int32_t id) const = 0;
  [[nodiscard]] const TokenizerInfo& info() const noexcept { return info_; }

 protected:
  TokenizerInfo info_;
};

/// llama.cpp behaviour from a GGUF's tokenizer.ggml.* metadata (spm, gpt2/bpe, bert/wpm).
/// Throws Error(kTokenizer / kUnsupported) naming the file and key.
[[nodiscard]] std::shared_ptr<const TokenizerImpl> make_gguf_tokenizer(const GgufFile& file);

/// transformers behaviour from tokenizer.json text (+ tokenizer_config.json text, may be empty).
/// `where` names the source in errors.
[[nodiscard]] std::shared_ptr<const TokenizerImpl> make_hf_tokenizer(
    std::string_view tokenizer_json, std::string_view tokenizer_config_json,
    const std::string& where);

/// The sentencepiece library's behaviour from a tokenizer.model (protobuf) image.
[[nodiscard]] std::shared_ptr<const TokenizerImpl> make_sentencepiece_tokenizer(
    std::string_view model_proto, std::string_view tokenizer_config_json, const std::string& where);

}  // namespace polyinfer::inline v0::detail
