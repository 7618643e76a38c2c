// SPDX-License-Identifier: Apache-2.0
// Small GGUF vocabularies written in memory for the GGUF tokenizer unit tests.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "format/gguf.hpp"
#include "tokenizer/tokenizer_impl.hpp"

namespace polyinfer::test {

/// A GGUF image in memory and the file parsed from it (the file points into the image).
struct GgufImage {
  std::vector<std::byte> bytes;
  std::unique_ptr<detail::GgufFile> file;
};

inline detail::GgufValue string_array(const std::vector<std::string>& items) {
  std::vector<detail::GgufValue> values;
  for (const auto& item : items) values.push_back(detail::GgufValue::make_string(item));
  return detail::GgufValue::make_array(detail::GgufType::kString, std::move(values));
}

inline detail::GgufValue f32_array(const std::vector<float>& items) {
  std::vector<detail::GgufValue> values;
  for (const float item : items) values.push_back(detail::GgufValue::make_f32(item));
  return detail::GgufValue::make_array(detail::GgufType::kF32, std::move(values));
}

inline detail::GgufValue i32_array(const std::vector<int32_t>& items) {
  std::vector<detail::GgufValue> values;
  for (const int32_t item : items) values.push_back(detail::GgufValue::make_i32(item));
  return detail::GgufValue::make_array(detail::GgufType::kI32, std::move(values));
}

inline GgufImage parse_image(const detail::GgufWriter& writer, const std::string& name) {
  GgufImage image;
  image.bytes = writer.serialize();
  image.file = std::make_unique<detail::GgufFile>(
      detail::GgufFile::parse(image.bytes.data(), image.bytes.size(), name));
  return image;
}

/// A SentencePiece-style vocabulary: <unk> <s> </s>, byte tokens for 'c' and the bytes of "é",
/// and scored pieces.
inline detail::GgufWriter spm_writer() {
  detail::GgufWriter writer;
  writer.set("general.name", detail::GgufValue::make_string("test-spm"));
  writer.set("tokenizer.ggml.model", detail::GgufValue::make_string("llama"));
  writer.set("tokenizer.ggml.tokens", string_array({"<unk>", "<s>", "</s>", "<0x63>", "<0xC3>",
                                                    "<0xA9>", "\xe2\x96\x81", "a", "b",
                                                    "\xe2\x96\x81"
                                                    "a",
                                                    "ab",
                                                    "\xe2\x96\x81"
                                                    "ab",
                                                    "<|user|>"}));
  writer.set("tokenizer.ggml.scores", f32_array({0, 0, 0, 0, 0, 0, -1, -2, -3, -4, -5, -0.5f, 0}));
  writer.set("tokenizer.ggml.token_type", i32_array({2, 3, 3, 6, 6, 6, 1, 1, 1, 1, 1, 1, 4}));
  writer.set("tokenizer.ggml.bos_token_id", detail::GgufValue::make_u32(1));
  writer.set("tokenizer.ggml.eos_token_id", detail::GgufValue::make_u32(2));
  writer.set("tokenizer.ggml.unknown_token_id", detail::GgufValue::make_u32(0));
  return writer;
}

/// A byte-level BPE vocabulary: the GPT-2 code points of "a", "b", "c", " " (Ġ), merges
/// "a b", "Ġ ab", "b c" and a control token.
inline detail::GgufWriter bpe_writer(const std::string& pre) {
  detail::GgufWriter writer;
  writer.set("tokenizer.ggml.model", detail::GgufValue::make_string("gpt2"));
  writer.set("tokenizer.ggml.pre", detail::GgufValue::make_string(pre));
  writer.set("tokenizer.ggml.tokens", string_array({"a", "b", "c", "\xc4\xa0", "ab",
                                                    "\xc4\xa0"
                                                    "ab",
                                                    "bc", "abc", "<|endoftext|>"}));
  writer.set("tokenizer.ggml.token_type", i32_array({1, 1, 1, 1, 1, 1, 1, 1, 3}));
  writer.set("tokenizer.ggml.merges", string_array({"a b", "\xc4\xa0 ab", "b c"}));
  writer.set("tokenizer.ggml.bos_token_id", detail::GgufValue::make_u32(8));
  writer.set("tokenizer.ggml.eos_token_id", detail::GgufValue::make_u32(8));
  return writer;
}

}  // namespace polyinfer::test
