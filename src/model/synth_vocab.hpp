// SPDX-License-Identifier: Apache-2.0
// Synthetic tokenizer vocabularies of a given size, in llama.cpp's tokenizer.ggml.* form.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/gguf.hpp"
#include "polyinfer/model_writer.hpp"

namespace polyinfer::inline v0::detail {

/// A complete vocabulary as convert_hf_to_gguf.py would write it for a real tokenizer.
struct SynthVocab {
  std::string model;  ///< tokenizer.ggml.model: "llama" or "gpt2"
  std::string pre;    ///< tokenizer.ggml.pre
  std::vector<std::string> tokens;
  std::vector<float> scores;  ///< "llama" only
  std::vector<int32_t> types;
  std::vector<std::string> merges;  ///< "gpt2" only
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  int32_t unk_id = -1;
  bool add_bos = false;
  bool add_eos = false;
  bool write_add_flags = false;
  std::string chat_template;
};

/// The vocabulary of a shape's family and size:
/// - "llama": <unk> <s> </s>, byte tokens <0x00>..<0xFF> (type 6), then "▁", printable ASCII
///   with and without "▁", then lowercase strings of growing length with and without "▁",
///   scores falling by 1 per piece (SentencePiece BPE style).
/// - "gpt2": the 256 byte-level symbols in GPT-2 order, then tokens made by merges ("Ġ" or a
///   letter followed by letters, shortest first; every merge joins two existing tokens), up to
///   the shape's bos_id; then control tokens (<|begin_of_text|>… for llama-bpe, <|endoftext|>
///   <|im_start|> <|im_end|>… for qwen2) and, for qwen2, [PAD<id>] unused tokens to the end.
/// Throws Error(kInvalidArgument) when the size cannot hold the fixed tokens.
[[nodiscard]] SynthVocab make_synth_vocab(const SynthShape& shape);

/// Writes tokenizer.ggml.* (model, pre, tokens, scores, token_type, merges, special ids, add
/// flags) and tokenizer.chat_template.
void add_vocab_metadata(GgufWriter& writer, const SynthVocab& vocab);

}  // namespace polyinfer::inline v0::detail
