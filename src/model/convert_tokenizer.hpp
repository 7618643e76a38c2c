// SPDX-License-Identifier: Apache-2.0
// Tokenizer metadata of a converted model: llama.cpp's set_vocab + SpecialVocab, and the
// embedded Hugging Face tokenizer.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <string_view>

#include "format/gguf.hpp"
#include "polyinfer/model_writer.hpp"

namespace polyinfer::inline v0::detail {

/// Which llama.cpp vocabulary a Hugging Face tokenizer maps to.
enum class GgufVocabKind {
  kNone,  ///< none: only tokenizer.huggingface.json is written
  kSpm,   ///< "llama" from tokenizer.model (SentencePiece)
  kGpt2,  ///< "gpt2" byte-level BPE with merges and a pre-tokenizer llama.cpp knows
  kBert,  ///< "bert" (WPM) for the standard uncased BERT pipeline
};

/// What a folder's tokenizer maps to.
struct GgufVocabChoice {
  GgufVocabKind kind = GgufVocabKind::kNone;
  std::string pre;     ///< tokenizer.ggml.pre
  bool exact = false;  ///< llama.cpp's tokenizer reproduces the folder's on ordinary text
};

/// The vocabulary a folder maps to:
/// - tokenizer.model present (decoders): kSpm, as convert_hf_to_gguf's _set_vocab_sentencepiece
///   (exact; llama.cpp's leading-space rules are its known divergences);
/// - tokenizer.json byte-level BPE with merges, no byte fallback, NFC or no normalizer,
///   ByteLevel decoder, and either GPT-2's ByteLevel regex ("gpt2") or a Split with Qwen2's
///   ("qwen2") or Llama 3's ("llama-bpe") regex followed by ByteLevel without regex: kGpt2
///   (exact);
/// - tokenizer.json WordPiece "##" with BertNormalizer(lowercase), BertPreTokenizer alone and
///   a [CLS] … [SEP] post-processor (BERT architecture): kBert, not exact (llama.cpp's WPM has
///   no max_input_chars_per_word: a word over 100 characters is not [UNK]);
/// - anything else (byte-level BPE without merges, extra pre-tokenizers such as Digits,
///   cased WordPiece, unknown regexes): kNone.
[[nodiscard]] GgufVocabChoice gguf_vocab_choice(const std::filesystem::path& folder,
                                                std::string_view architecture);

/// Writes the tokenizer metadata of `folder` (config = config.json) and returns what it holds:
/// "ggml+hf", "ggml", "hf" or "none" (see WriteSummary::tokenizer). tokenizer.ggml.* is written
/// for an exact choice (kAuto), never (kHuggingFace), or whenever one maps (kGgml; Error
/// kUnsupported when none does). Keys, in order: [bert: tokenizer.ggml.token_type_count];
/// tokenizer.ggml.model, pre, tokens, scores (spm), token_type, merges (gpt2); special ids,
/// add_bos/add_eos, tokenizer.chat_template (as gguf-py's SpecialVocab reads
/// tokenizer_config.json, tokenizer.json and config.json); then polyinfer's additions:
/// tokenizer.ggml.bos_token_id = [CLS] for BERT (llama.cpp's WPM takes [CLS] from bos),
/// generation_config.json's further end ids as eot/eom ids, tokenizer.huggingface.json and
/// tokenizer.huggingface.config_json.
std::string add_converted_tokenizer(GgufWriter& writer, const std::filesystem::path& folder,
                                    const nlohmann::ordered_json& config,
                                    std::string_view architecture, TokenizerMetadata mode);

}  // namespace polyinfer::inline v0::detail
