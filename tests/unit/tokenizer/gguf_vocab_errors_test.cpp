// SPDX-License-Identifier: Apache-2.0
// GGUF tokenizers: unknown or inconsistent tokenizer.ggml.* metadata gives clear errors.
#include <catch2/catch.hpp>

#include <string>

#include "gguf_test_vocab.hpp"
#include "polyinfer/error.hpp"

namespace {

using polyinfer::Error;
using polyinfer::ErrorCode;
using polyinfer::detail::GgufValue;
using polyinfer::detail::GgufWriter;
using polyinfer::detail::make_gguf_tokenizer;
using polyinfer::test::parse_image;

// Loads and returns the error; FAILs when loading succeeds.
Error load_error(const GgufWriter& writer) {
  const auto image = parse_image(writer, "bad.gguf");
  try {
    (void)make_gguf_tokenizer(*image.file);
  } catch (const Error& error) {
    return error;
  }
  FAIL("loading succeeded");
  return Error(ErrorCode::kInternal, "", "");
}

void check_error(const Error& error, ErrorCode code, const std::string& key,
                 const std::string& message_part = "") {
  INFO(error.what());
  CHECK(error.code() == code);
  CHECK(error.where().find("bad.gguf") != std::string::npos);
  CHECK(error.where().find(key) != std::string::npos);
  if (!message_part.empty()) CHECK(error.message().find(message_part) != std::string::npos);
}

}  // namespace

TEST_CASE("gguf tokenizer: unknown tokenizer model", "[tokenizer][gguf]") {
  auto writer = polyinfer::test::spm_writer();
  writer.set("tokenizer.ggml.model", GgufValue::make_string("sentencepiece-unigram"));
  check_error(load_error(writer), ErrorCode::kUnsupported, "tokenizer.ggml.model",
              "sentencepiece-unigram");
}

TEST_CASE("gguf tokenizer: unknown BPE pre-tokenizer", "[tokenizer][gguf]") {
  check_error(load_error(polyinfer::test::bpe_writer("my-new-model")), ErrorCode::kUnsupported,
              "tokenizer.ggml.pre", "my-new-model");
}

TEST_CASE("gguf tokenizer: missing model and tokens", "[tokenizer][gguf]") {
  GgufWriter no_model;
  no_model.set("tokenizer.ggml.tokens", polyinfer::test::string_array({"a"}));
  check_error(load_error(no_model), ErrorCode::kTokenizer, "tokenizer.ggml.model", "missing");

  GgufWriter no_tokens;
  no_tokens.set("tokenizer.ggml.model", GgufValue::make_string("llama"));
  check_error(load_error(no_tokens), ErrorCode::kTokenizer, "tokenizer.ggml.tokens", "missing");
}

TEST_CASE("gguf tokenizer: arrays of different lengths", "[tokenizer][gguf]") {
  auto scores = polyinfer::test::spm_writer();
  scores.set("tokenizer.ggml.scores", polyinfer::test::f32_array({0, 0, 0}));
  check_error(load_error(scores), ErrorCode::kTokenizer, "tokenizer.ggml.scores",
              "has 3 entries but tokenizer.ggml.tokens has 13");

  auto types = polyinfer::test::spm_writer();
  types.set("tokenizer.ggml.token_type", polyinfer::test::i32_array({1, 1}));
  check_error(load_error(types), ErrorCode::kTokenizer, "tokenizer.ggml.token_type",
              "has 2 entries");
}

TEST_CASE("gguf tokenizer: special ids out of range", "[tokenizer][gguf]") {
  auto bos = polyinfer::test::spm_writer();
  bos.set("tokenizer.ggml.bos_token_id", GgufValue::make_u32(13));
  check_error(load_error(bos), ErrorCode::kTokenizer, "tokenizer.ggml.bos_token_id",
              "out of range");

  auto pad = polyinfer::test::spm_writer();
  pad.set("tokenizer.ggml.padding_token_id", GgufValue::make_i32(-1));
  check_error(load_error(pad), ErrorCode::kTokenizer, "tokenizer.ggml.padding_token_id");
}

TEST_CASE("gguf tokenizer: merges of unknown tokens", "[tokenizer][gguf]") {
  auto unknown = polyinfer::test::bpe_writer("gpt-2");
  unknown.set("tokenizer.ggml.merges", polyinfer::test::string_array({"a b", "a z"}));
  check_error(load_error(unknown), ErrorCode::kTokenizer, "tokenizer.ggml.merges", "'z'");

  auto malformed = polyinfer::test::bpe_writer("gpt-2");
  malformed.set("tokenizer.ggml.merges", polyinfer::test::string_array({"ab"}));
  check_error(load_error(malformed), ErrorCode::kTokenizer, "tokenizer.ggml.merges");

  GgufWriter missing;
  missing.set("tokenizer.ggml.model", GgufValue::make_string("gpt2"));
  missing.set("tokenizer.ggml.tokens", polyinfer::test::string_array({"a"}));
  check_error(load_error(missing), ErrorCode::kTokenizer, "tokenizer.ggml.merges", "missing");
}

TEST_CASE("gguf tokenizer: duplicate entries", "[tokenizer][gguf]") {
  auto writer = polyinfer::test::spm_writer();
  writer.set("tokenizer.ggml.tokens",
             polyinfer::test::string_array(
                 {"<unk>", "<s>", "</s>", "a", "b", "a", "c", "d", "e", "f", "g", "h", "i"}));
  check_error(load_error(writer), ErrorCode::kTokenizer, "tokenizer.ggml.tokens",
              "entries 3 and 5");
}

TEST_CASE("gguf tokenizer: wrongly typed metadata", "[tokenizer][gguf]") {
  auto writer = polyinfer::test::spm_writer();
  writer.set("tokenizer.ggml.model", GgufValue::make_u32(3));
  const Error error = load_error(writer);
  INFO(error.what());
  CHECK(error.code() == ErrorCode::kFormat);  // the GGUF reader's typed look-up
  CHECK(std::string(error.what()).find("tokenizer.ggml.model") != std::string::npos);
}
