// SPDX-License-Identifier: Apache-2.0
// llama.cpp's pre-tokenizer table on PCRE2: every entry compiles, and the splits follow
// llama.cpp's unicode_regex_split where PCRE2 on its own would differ.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tokenizer/pre_tokenizers.hpp"

namespace {

using polyinfer::detail::llama_pre_tokenizer_spec;
using polyinfer::detail::RegexPreTokenizer;
using Pieces = std::vector<std::string>;

Pieces split(std::string_view pre, std::string_view text) {
  const auto spec = llama_pre_tokenizer_spec(pre);
  REQUIRE(spec);
  const RegexPreTokenizer splitter(spec->regexes);
  std::vector<std::string_view> views;
  splitter.split(text, views);
  return Pieces(views.begin(), views.end());
}

}  // namespace

TEST_CASE("llama pre-tokenizers: every name compiles and splits", "[tokenizer][gguf]") {
  const std::string text =
      "Hello, y'all! 3.14159 \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\xa6\x99\n\n  tabs\there "
      "\xce\x95\xce\xbb\xce\xbb\xce\xb7\xce\xbd\xce\xb9\xce\xba\xce\xac <sentinel:3>   ";
  for (const std::string_view name : {"",
                                      "default",
                                      "llama3",
                                      "llama-v3",
                                      "llama-bpe",
                                      "falcon3",
                                      "deepseek-llm",
                                      "deepseek-coder",
                                      "deepseek-v3",
                                      "falcon",
                                      "mpt",
                                      "starcoder",
                                      "gpt-2",
                                      "phi-2",
                                      "jina-es",
                                      "jina-de",
                                      "gigachat",
                                      "jina-v1-en",
                                      "jina-v2-es",
                                      "jina-v2-de",
                                      "jina-v2-code",
                                      "roberta-bpe",
                                      "gpt-neox",
                                      "refact",
                                      "command-r",
                                      "qwen2",
                                      "stablelm2",
                                      "olmo",
                                      "dbrx",
                                      "smaug-bpe",
                                      "poro-chat",
                                      "chatglm-bpe",
                                      "viking",
                                      "jais",
                                      "tekken",
                                      "smollm",
                                      "codeshell",
                                      "bloom",
                                      "gpt3-finnish",
                                      "exaone",
                                      "chameleon",
                                      "minerva-7b",
                                      "megrez"}) {
    INFO("pre '" << name << "'");
    const Pieces pieces = split(name, text);
    std::string joined;
    for (const auto& piece : pieces) joined += piece;
    CHECK(joined == text);  // splitting loses and adds nothing
  }
  CHECK_FALSE(llama_pre_tokenizer_spec("not-a-pre-tokenizer"));
}

TEST_CASE("llama pre-tokenizers: flags per name", "[tokenizer][gguf]") {
  CHECK(llama_pre_tokenizer_spec("llama-bpe")->ignore_merges);
  CHECK(llama_pre_tokenizer_spec("llama-bpe")->add_bos);
  CHECK_FALSE(llama_pre_tokenizer_spec("qwen2")->clean_spaces);
  CHECK(llama_pre_tokenizer_spec("megrez")->clean_spaces);  // qwen2 regex, clean_spaces kept
  CHECK(llama_pre_tokenizer_spec("chatglm-bpe")->no_bos);
  CHECK(llama_pre_tokenizer_spec("gpt-2")->type == "gpt2");
}

TEST_CASE("llama pre-tokenizers: gpt2 split", "[tokenizer][gguf]") {
  CHECK(split("gpt-2", "Hello  world") == Pieces{"Hello", " ", " world"});
  CHECK(split("gpt-2", "I've 12 apples!!") == Pieces{"I", "'ve", " 12", " apples", "!!"});
  // U+0085 is whitespace for llama.cpp (Python's \s), not for PCRE2's \s.
  CHECK(split("gpt-2", "!\xc2\x85x") == Pieces{"!", "\xc2\x85", "x"});
  CHECK(split("gpt-2", "a \n") == Pieces{"a", " \n"});
}

TEST_CASE("llama pre-tokenizers: llama3 and qwen2 split", "[tokenizer][gguf]") {
  CHECK(split("llama-bpe", "Hello 1234\n\n  x") ==
        Pieces{"Hello", " ", "123", "4", "\n\n", " ", " x"});
  CHECK(split("llama-bpe", "DON'T") == Pieces{"DON", "'T"});
  CHECK(split("qwen2", "x=1234;") == Pieces{"x", "=", "1", "2", "3", "4", ";"});
  CHECK(split("qwen2", "e\xcc\x81") == Pieces{"e", "\xcc\x81"});  // combining mark apart
}

TEST_CASE("llama pre-tokenizers: deepseek-llm's regex sequence", "[tokenizer][gguf]") {
  // Letters (its explicit class), then CJK, then digits.
  CHECK(split("deepseek-llm", "hello \xe4\xb8\x96\xe7\x95\x8c 123") ==
        Pieces{"hello", " ", "\xe4\xb8\x96\xe7\x95\x8c", " ", "123"});
  // "µ" is in the letter class, but the next regex's ASCII range ":-~" (letters included)
  // splits the piece again: later regexes re-split earlier pieces.
  CHECK(split("deepseek-llm", "\xc2\xb5\xc2\xb5 ab\xc2\xb5") ==
        Pieces{"\xc2\xb5\xc2\xb5", " ab", "\xc2\xb5"});
  // U+2126 OHM SIGN is a letter too, but the CJK regex's range U+0800..U+4E00 then takes it apart.
  CHECK(split("deepseek-llm", "a\xe2\x84\xa6!") == Pieces{"a", "\xe2\x84\xa6", "!"});
  CHECK(split("deepseek-llm", "x\n\ny") == Pieces{"x", "\n", "\n", "y"});
}

TEST_CASE("llama pre-tokenizers: invalid UTF-8 bytes are pieces of their own",
          "[tokenizer][gguf]") {
  CHECK(split("gpt-2",
              "ab\xff"
              "cd") == Pieces{"ab", "\xff", "cd"});
}

TEST_CASE("adapt_llama_regex", "[tokenizer][gguf]") {
  using polyinfer::detail::adapt_llama_regex;
  const std::string ws =
      "\\t-\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
      "\\x{205F}\\x{3000}";
  CHECK(adapt_llama_regex("\\s+$") == "[" + ws + "]+\\z");
  CHECK(adapt_llama_regex("[^\\s\\p{L}]") == "[^" + ws + "\\p{L}]");
  CHECK(adapt_llama_regex("\\s+(?!\\S)") == "[" + ws + "]+(?![^" + ws + "])");
  CHECK(adapt_llama_regex("[$]\\$") == "[$]\\$");
}
