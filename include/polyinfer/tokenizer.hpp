// SPDX-License-Identifier: Apache-2.0
// Tokenizers (SentencePiece BPE, byte-level BPE, WordPiece) and chat templates.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace polyinfer {
inline namespace v0 {

namespace detail {
class TokenizerImpl;
class ChatTemplateImpl;
}  // namespace detail

/// Options of Tokenizer::encode.
struct EncodeOptions {
  /// Add BOS/EOS, [CLS]/[SEP] etc. as the model's tokenizer does.
  bool add_special = false;
  /// Match special-token text ("<|im_start|>") in the input as that token, not as plain text.
  bool parse_special = true;
};

/// Options of Tokenizer::decode.
struct DecodeOptions {
  /// Leave out special (control) tokens.
  bool skip_special = false;
};

/// The behaviour a tokenizer reproduces: the Hugging Face `tokenizers` pipeline described by a
/// tokenizer.json, llama.cpp's for GGUF vocabularies, or the sentencepiece library's.
enum class TokenizerFlavor { kHuggingFace, kLlamaCpp, kSentencePiece };

/// A loaded tokenizer. Immutable after loading: every method is safe to call from many threads.
///
///   auto tok = polyinfer::Tokenizer::load("models/tiny-llama");
///   std::vector<int32_t> ids = tok.encode("Hello", {.add_special = true});
class Tokenizer {
 public:
  /// Loads from a .gguf file (vocabulary metadata) or a Hugging Face folder (tokenizer.json,
  /// else tokenizer.model). Throws polyinfer::Error naming the file and what is wrong.
  [[nodiscard]] static Tokenizer load(const std::filesystem::path& path);
  /// Loads a SentencePiece model (tokenizer.model) with the sentencepiece library's behaviour.
  [[nodiscard]] static Tokenizer load_sentencepiece(const std::filesystem::path& model_file);

  /// Text to token ids.
  [[nodiscard]] std::vector<int32_t> encode(std::string_view text,
                                            EncodeOptions options = {}) const;
  /// Token ids to text; throws polyinfer::Error for ids out of range.
  [[nodiscard]] std::string decode(std::span<const int32_t> ids, DecodeOptions options = {}) const;
  /// The vocabulary entry of one id as stored ("▁Hello", "Ġworld", "##ing").
  [[nodiscard]] std::string token(int32_t id) const;
  /// Number of ids, added tokens included.
  [[nodiscard]] int32_t vocab_size() const noexcept;
  /// Special ids; -1 when the tokenizer has none.
  [[nodiscard]] int32_t bos_id() const noexcept;
  [[nodiscard]] int32_t eos_id() const noexcept;
  [[nodiscard]] int32_t pad_id() const noexcept;
  [[nodiscard]] int32_t unk_id() const noexcept;
  /// Whether `id` is a special (control) token.
  [[nodiscard]] bool is_special(int32_t id) const;
  /// Algorithm name: "spm-bpe", "byte-bpe", "wordpiece".
  [[nodiscard]] std::string_view kind() const noexcept;
  /// Pre-tokenizer name where one applies ("qwen2", "llama-bpe", "gpt2", …), else "".
  [[nodiscard]] std::string_view pre_tokenizer() const noexcept;
  [[nodiscard]] TokenizerFlavor flavor() const noexcept;
  /// The chat template shipped with the tokenizer ("" when none).
  [[nodiscard]] const std::string& chat_template() const noexcept;

  explicit Tokenizer(std::shared_ptr<const detail::TokenizerImpl> impl);

 private:
  std::shared_ptr<const detail::TokenizerImpl> impl_;
};

/// One message of a conversation.
struct ChatMessage {
  std::string role;  ///< "system", "user", "assistant"
  std::string content;
};

/// A Jinja chat template (the subset used by ChatML/Qwen, Llama-2, Llama-3, Mistral, Phi-3
/// templates). Immutable after parsing; render() is thread-safe.
class ChatTemplate {
 public:
  /// Parses a template; throws polyinfer::Error (kTemplate) naming the line and column.
  [[nodiscard]] static ChatTemplate parse(std::string_view source);
  /// Renders `messages` to the prompt text.
  [[nodiscard]] std::string render(std::span<const ChatMessage> messages,
                                   bool add_generation_prompt, std::string_view bos_token = "",
                                   std::string_view eos_token = "") const;

  explicit ChatTemplate(std::shared_ptr<const detail::ChatTemplateImpl> impl);

 private:
  std::shared_ptr<const detail::ChatTemplateImpl> impl_;
};

}  // namespace v0
}  // namespace polyinfer
