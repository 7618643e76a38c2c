// SPDX-License-Identifier: Apache-2.0
// GGUF tokenizers on small vocabularies written in the test: merges, byte fallback, special
// tokens, add_special, decoding.
#include <catch2/catch.hpp>

#include "gguf_test_vocab.hpp"
#include "polyinfer/tokenizer.hpp"

namespace {

using polyinfer::Tokenizer;
using polyinfer::detail::GgufValue;
using polyinfer::detail::make_gguf_tokenizer;
using polyinfer::test::parse_image;
using Ids = std::vector<int32_t>;

Tokenizer load(const polyinfer::detail::GgufWriter& writer) {
  const auto image = parse_image(writer, "test.gguf");
  return Tokenizer(make_gguf_tokenizer(*image.file));  // keeps no pointer into the image
}

}  // namespace

TEST_CASE("gguf spm: score-ordered merges, byte fallback, unknown bytes", "[tokenizer][gguf]") {
  const Tokenizer tok = load(polyinfer::test::spm_writer());
  CHECK(tok.kind() == "spm-bpe");
  CHECK(tok.flavor() == polyinfer::TokenizerFlavor::kLlamaCpp);
  CHECK(tok.bos_id() == 1);
  CHECK(tok.eos_id() == 2);
  CHECK(tok.unk_id() == 0);
  CHECK(tok.pad_id() == -1);
  CHECK(tok.vocab_size() == 13);
  CHECK(tok.is_special(1));
  CHECK_FALSE(tok.is_special(12));  // user-defined, not control

  const polyinfer::EncodeOptions plain{.add_special = false, .parse_special = false};
  // "▁ab": ▁a (-4) merges before ab (-5), then ▁a+b = ▁ab (-0.5).
  CHECK(tok.encode("ab", plain) == Ids{11});
  CHECK(tok.encode("ba", plain) == Ids{6, 8, 7});
  CHECK(tok.encode("c", plain) == Ids{6, 3});            // <0x63>
  CHECK(tok.encode("\xc3\xa9", plain) == Ids{6, 4, 5});  // é → <0xC3> <0xA9>
  CHECK(tok.encode("d", plain) == Ids{6, 0});            // no byte token: <unk>
  CHECK(tok.encode("", plain).empty());
  CHECK(tok.encode("ab", {.add_special = true, .parse_special = false}) == Ids{1, 11});
  CHECK(tok.encode("", {.add_special = true, .parse_special = false}) == Ids{1});

  // Control tokens only with parse_special; user-defined ones always. A run after a special
  // token gets the "▁" prefix again.
  CHECK(tok.encode("<s>ab", {.add_special = false, .parse_special = true}) == Ids{1, 11});
  CHECK(tok.encode("<|user|>ab", plain) == Ids{12, 11});
  CHECK(tok.encode("ab<|user|>", plain) == Ids{11, 12});

  CHECK(tok.decode(Ids{11}) == "ab");         // the prefix space is removed
  CHECK(tok.decode(Ids{6, 11}) == " ab");     // only once
  CHECK(tok.decode(Ids{1, 11}) == "<s> ab");  // after BOS it is not
  CHECK(tok.decode(Ids{1, 11}, {.skip_special = true}) == " ab");
  CHECK(tok.decode(Ids{6, 4, 5}) == "\xc3\xa9");
  CHECK(tok.decode(Ids{12}, {.skip_special = true}) == "<|user|>");
  CHECK(tok.token(11) ==
        "\xe2\x96\x81"
        "ab");
}

TEST_CASE("gguf spm: add_space_prefix and add_bos from metadata", "[tokenizer][gguf]") {
  auto writer = polyinfer::test::spm_writer();
  writer.set("tokenizer.ggml.add_space_prefix", GgufValue::make_bool(false));
  writer.set("tokenizer.ggml.add_bos_token", GgufValue::make_bool(false));
  writer.set("tokenizer.ggml.add_eos_token", GgufValue::make_bool(true));
  const Tokenizer tok = load(writer);
  CHECK(tok.encode("ab", {.add_special = true, .parse_special = false}) == Ids{10, 2});
  CHECK(tok.decode(Ids{10, 2}, {.skip_special = true}) == "ab");
}

TEST_CASE("gguf spm: phi-3 strips whitespace after its special tokens", "[tokenizer][gguf]") {
  auto writer = polyinfer::test::spm_writer();
  writer.set("general.name", GgufValue::make_string("Phi3 mini"));
  const Tokenizer tok = load(writer);
  // <|user|> gets RSTRIP: the spaces after it are dropped, so "ab" is a run of its own.
  CHECK(tok.encode("<|user|>  ab", {.add_special = false, .parse_special = false}) == Ids{12, 11});
  // <s> does not.
  CHECK(tok.encode("<s> ab", {.add_special = false, .parse_special = true}) == Ids{1, 6, 11});
}

TEST_CASE("gguf byte-level bpe: ranked merges and special tokens", "[tokenizer][gguf]") {
  const Tokenizer tok = load(polyinfer::test::bpe_writer("gpt-2"));
  CHECK(tok.kind() == "byte-bpe");
  CHECK(tok.pre_tokenizer() == "gpt-2");
  CHECK(tok.bos_id() == 8);
  const polyinfer::EncodeOptions plain{.add_special = false, .parse_special = false};
  CHECK(tok.encode("ab ab", plain) == Ids{4, 5});
  CHECK(tok.encode("abc", plain) == Ids{4, 2});  // "a b" (rank 0) first, then nothing
  CHECK(tok.encode("bc", plain) == Ids{6});
  CHECK(tok.encode("ab", {.add_special = true, .parse_special = false}) == Ids{4});  // no BOS
  CHECK(tok.encode("ab<|endoftext|>", {.add_special = false, .parse_special = true}) == Ids{4, 8});
  // As plain text, "<|endoftext|>" has no entries; llama.cpp drops such bytes.
  CHECK(tok.encode("ab<|endoftext|>", plain) == Ids{4});
  CHECK(tok.decode(Ids{4, 5}) == "ab ab");
  CHECK(tok.decode(Ids{4, 8}) == "ab<|endoftext|>");
  CHECK(tok.decode(Ids{4, 8}, {.skip_special = true}) == "ab");
}

TEST_CASE("gguf byte-level bpe: llama-bpe ignores merges for whole words", "[tokenizer][gguf]") {
  const Tokenizer tok = load(polyinfer::test::bpe_writer("llama-bpe"));
  const polyinfer::EncodeOptions plain{.add_special = false, .parse_special = false};
  CHECK(tok.encode("abc", plain) == Ids{7});
  CHECK(tok.encode("abc", {.add_special = true, .parse_special = false}) == Ids{8, 7});
}

TEST_CASE("gguf wordpiece: llama.cpp's BERT pre-processing", "[tokenizer][gguf]") {
  polyinfer::detail::GgufWriter writer;
  writer.set("tokenizer.ggml.model", GgufValue::make_string("bert"));
  writer.set("tokenizer.ggml.tokens",
             polyinfer::test::string_array({"[PAD]", "[UNK]", "[CLS]", "[SEP]",
                                            "\xe2\x96\x81"
                                            "un",
                                            "aff", "able",
                                            "\xe2\x96\x81"
                                            "!",
                                            "\xe2\x96\x81"
                                            "cafe",
                                            "\xe2\x96\x81"
                                            "a"}));
  writer.set("tokenizer.ggml.token_type",
             polyinfer::test::i32_array({3, 3, 3, 3, 1, 1, 1, 1, 1, 1}));
  writer.set("tokenizer.ggml.unknown_token_id", GgufValue::make_u32(1));
  writer.set("tokenizer.ggml.cls_token_id", GgufValue::make_u32(2));
  writer.set("tokenizer.ggml.seperator_token_id", GgufValue::make_u32(3));
  writer.set("tokenizer.ggml.padding_token_id", GgufValue::make_u32(0));
  const Tokenizer tok = load(writer);
  CHECK(tok.kind() == "wordpiece");
  CHECK(tok.bos_id() == 2);  // [CLS]
  const polyinfer::EncodeOptions plain{.add_special = false, .parse_special = false};
  CHECK(tok.encode("UnAffable!", plain) == Ids{4, 5, 6, 7});
  CHECK(tok.encode("Caf\xc3\xa9 unx", plain) == Ids{8, 1});  // é → e; "unx" has no split
  CHECK(tok.encode("a", {.add_special = true, .parse_special = false}) == Ids{2, 9, 3});
  CHECK(tok.decode(Ids{4, 5, 6, 7}) == " unaffable!");  // clean-up removes " !"
}
