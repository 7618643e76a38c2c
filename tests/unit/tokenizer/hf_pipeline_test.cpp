// SPDX-License-Identifier: Apache-2.0
// tokenizer.json pipelines and tokenizer.model details on small hand-written inputs; expected
// values come from tokenizers 0.23.2, transformers 5.17.0 and sentencepiece 0.2.2.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "polyinfer/tokenizer.hpp"
#include "support/fixtures.hpp"
#include "tokenizer/tokenizer_impl.hpp"

namespace {

using Ids = std::vector<int32_t>;

// WordLevel over WhitespaceSplit, Lowercase normalizer, <mask> with lstrip/rstrip, "Wow" a
// normalized single-word token, <s> prepended by the post-processor, WordPiece decoder.
const char* const kWordLevelJson = R"({
  "version": "1.0",
  "added_tokens": [
    {"id": 0, "content": "[UNK]", "single_word": false, "lstrip": false, "rstrip": false,
     "normalized": false, "special": true},
    {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false,
     "normalized": false, "special": true},
    {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false,
     "normalized": false, "special": true},
    {"id": 9, "content": "<mask>", "single_word": false, "lstrip": true, "rstrip": true,
     "normalized": false, "special": true},
    {"id": 10, "content": "Wow", "single_word": true, "lstrip": false, "rstrip": false,
     "normalized": true, "special": false}],
  "normalizer": {"type": "Lowercase"},
  "pre_tokenizer": {"type": "WhitespaceSplit"},
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
    "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
    "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
  "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
  "model": {"type": "WordLevel", "unk_token": "[UNK]",
    "vocab": {"[UNK]": 0, "<s>": 1, "</s>": 2, "hello": 3, "world": 4, ".": 5, "it": 6, "'s": 7,
              "<pad>": 8, "<mask>": 9}}
})";

const char* const kConfigJson = R"({
  "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
  "pad_token": "<pad>", "unk_token": "[UNK]", "add_bos_token": true, "add_eos_token": true,
  "clean_up_tokenization_spaces": true,
  "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]
})";

polyinfer::Tokenizer load(const std::string& json, const std::string& config = "") {
  return polyinfer::Tokenizer(
      polyinfer::detail::make_hf_tokenizer(json, config, "test/tokenizer.json"));
}

std::vector<uint8_t> from_hex(std::string_view hex) {
  std::vector<uint8_t> bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return bytes;
}

}  // namespace

TEST_CASE("added tokens: lstrip/rstrip, single_word, normalized, parse_special",
          "[tokenizer][hf]") {
  const auto tok = load(kWordLevelJson);
  CHECK(tok.kind() == "wordlevel");
  CHECK(tok.encode("Hello world .") == Ids{3, 4, 5});
  CHECK(tok.encode("Hello world .", {.add_special = true}) == Ids{1, 3, 4, 5});
  CHECK(tok.encode("hello <mask> world") == Ids{3, 9, 4});
  CHECK(tok.encode("hello<mask>world") == Ids{3, 9, 4});
  CHECK(tok.encode("wow Wow wowza") == Ids{10, 10, 0});  // matched after lowercasing
  CHECK(tok.encode("Wowza WOW") == Ids{0, 10});          // not inside a word
  CHECK(tok.encode("<s> hello </s>") == Ids{1, 3, 2});
  CHECK(tok.encode("<pad> hello") == Ids{8, 3});
  // Special tokens become plain text; "<mask>" still is a word of the vocabulary.
  CHECK(tok.encode("hello <mask> world", {.parse_special = false}) == Ids{3, 9, 4});
  CHECK(tok.encode("hello<mask>world", {.parse_special = false}) == Ids{0});

  CHECK(tok.decode(Ids{3, 4, 5}) == "hello world.");
  CHECK(tok.decode(Ids{10, 10, 0}) == "wow wow [UNK]");  // normalized tokens decode normalized
  CHECK(tok.decode(Ids{1, 10, 10, 0}, {.skip_special = true}) == "wow wow");
  CHECK(tok.decode(Ids{1, 3, 9, 4}, {.skip_special = true}) == "hello world");
  CHECK(tok.decode(Ids{1, 8, 3}, {.skip_special = true}) == "<pad> hello");  // <pad>: model token
  CHECK(tok.decode(Ids{6, 7}) == "it's");
  CHECK(tok.is_special(9));
  CHECK_FALSE(tok.is_special(10));
  CHECK(tok.token(10) == "wow");
  CHECK(tok.vocab_size() == 11);
}

TEST_CASE("tokenizer_config.json: named special tokens, cleanup, chat_template, add_*_token",
          "[tokenizer][hf]") {
  const auto tok = load(kWordLevelJson, kConfigJson);
  CHECK(tok.bos_id() == 1);
  CHECK(tok.eos_id() == 2);
  CHECK(tok.pad_id() == 8);
  CHECK(tok.unk_id() == 0);
  CHECK(tok.chat_template() == "D");
  // transformers drops add_bos_token / add_eos_token when tokenizer.json exists: no </s>.
  CHECK(tok.encode("Hello world .", {.add_special = true}) == Ids{1, 3, 4, 5});
  // pad_token is a model token: transformers makes it a special added token.
  CHECK(tok.is_special(8));
  CHECK(tok.decode(Ids{1, 8, 3}, {.skip_special = true}) == "hello");
  CHECK(tok.decode(Ids{1, 3, 4, 5}) == "<s> hello world.");
  CHECK(tok.decode(Ids{1, 1, 3, 2}) == "<s> <s> hello </s>");

  const auto split = load(kWordLevelJson, R"({"split_special_tokens": true})");
  CHECK(split.encode("hello<mask>world") == Ids{0});
  CHECK(split.encode("<s> hello </s>") == Ids{1, 3, 2});  // words of the vocabulary
}

TEST_CASE("clean_up_tokenization_spaces is skipped for BPE models, as transformers does",
          "[tokenizer][hf]") {
  POLYINFER_SHARED_OR_RETURN(folder, "fixtures/models/tiny-qwen2");
  const std::string json = polyinfer::test::read_file(folder / "tokenizer.json");
  const auto tok = load(json, R"({"clean_up_tokenization_spaces": true})");
  const Ids ids = tok.encode("Hello , world !");
  CHECK(ids == Ids{39, 68, 75, 359, 220, 11, 301, 262, 75, 67, 220, 0});
  CHECK(tok.decode(ids) == "Hello , world !");
  CHECK(tok.kind() == "byte-bpe");
}

TEST_CASE("decoders and normalizers on a BPE pipeline", "[tokenizer][hf]") {
  // Byte fallback BPE without merges, Prepend + Replace normalizer (Llama-2 legacy style).
  std::string vocab = R"("<unk>": 0, "\u2581": 1, "a": 2, "b": 3, "\u2581a": 4)";
  for (int b = 0; b < 256; ++b) {
    char name[16];
    std::snprintf(name, sizeof(name), ", \"<0x%02X>\": %d", b, 5 + b);
    vocab += name;
  }
  const std::string json = R"({"normalizer": {"type": "Sequence", "normalizers": [
      {"type": "Prepend", "prepend": "\u2581"},
      {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
    "decoder": {"type": "Sequence", "decoders": [
      {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
      {"type": "ByteFallback"}, {"type": "Fuse"},
      {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
    "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true, "fuse_unk": true,
      "vocab": {)" + vocab +
                           R"(}, "merges": ["\u2581 a"]}})";
  const auto tok = load(json);
  CHECK(tok.kind() == "spm-bpe");
  // "▁a▁b" + byte fallback for "é" (C3 A9).
  CHECK(tok.encode("a b\xC3\xA9") == Ids{4, 1, 3, 5 + 0xC3, 5 + 0xA9});
  CHECK(tok.decode(Ids{4, 1, 3, 5 + 0xC3, 5 + 0xA9}) == "a b\xC3\xA9");
  // An incomplete byte run decodes to one U+FFFD per byte.
  CHECK(tok.decode(Ids{2, 5 + 0xC3, 3}) ==
        "a\xEF\xBF\xBD"
        "b");
}

TEST_CASE("Unigram model: Viterbi segmentation and fused unknown runs", "[tokenizer][hf]") {
  const auto tok = load(R"({"version": "1.0",
    "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always",
                      "split": true},
    "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always"},
    "model": {"type": "Unigram", "unk_id": 0, "byte_fallback": false,
      "vocab": [["<unk>", 0.0], ["\u2581", -2.0], ["a", -3.0], ["b", -3.0], ["ab", -4.5],
                ["\u2581ab", -4.0], ["\u2581a", -3.5], ["c", -6.0], ["bc", -5.0]]}})");
  CHECK(tok.kind() == "spm-unigram");
  CHECK(tok.unk_id() == 0);
  CHECK(tok.encode("ab") == Ids{5});
  CHECK(tok.encode("abc") == Ids{6, 8});
  CHECK(tok.encode("a bc") == Ids{6, 1, 8});
  CHECK(tok.encode("xyab") == Ids{1, 0, 4});  // "xy" is one fused <unk>
  CHECK(tok.encode("b x y") == Ids{1, 3, 1, 0, 1, 0});
  CHECK(tok.decode(Ids{1, 0, 4}) == "<unk>ab");
  CHECK(tok.decode(Ids{1, 3, 1, 0, 1, 0}) == "b <unk> <unk>");
}

TEST_CASE("sentencepiece BPE: UNUSED resegmentation, user-defined symbols, unknown runs",
          "[tokenizer][sentencepiece]") {
  // ModelProto built with sentencepiece_model_pb2: <unk> <s> </s> ▁ a b c ab ▁ab bc(UNUSED) abc
  // <sep>(USER_DEFINED) ▁c; BPE, identity normalization.
  const auto bytes = from_hex(
      "0a0e0a053c756e6b3e150000000018020a0c0a033c733e150000000018030a0d0a043c2f733e150000000018"
      "030a0c0a03e2968115000080bf18010a0a0a016115000000c018010a0a0a016215000040c018010a0a0a0163"
      "15000080c018010a0b0a026162150000c0bf18010a0e0a05e296816162150000a0bf18010a0b0a0262631500"
      "0000bf18050a0c0a0361626315000040bf18010a0e0a053c7365703e150000000018040a0d0a04e296816315"
      "000020c01801120218021a0e0a086964656e7469747918012001");
  const polyinfer::Tokenizer tok(polyinfer::detail::make_sentencepiece_tokenizer(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), "",
      "synthetic.model"));
  CHECK(tok.kind() == "spm-bpe");
  CHECK(tok.encode("abc") == Ids{3, 10});
  CHECK(tok.encode("ab c") == Ids{8, 12});
  CHECK(tok.encode("bc") == Ids{3, 5, 6});  // merged through the UNUSED "bc", then split again
  CHECK(tok.encode("a<sep>bc") == Ids{3, 4, 11, 5, 6});
  CHECK(tok.encode("  ab   c  ") == Ids{8, 12});
  CHECK(tok.encode("abcx") == Ids{3, 10, 0});
  CHECK(tok.encode("xx") == Ids{3, 0});
  CHECK(tok.encode("").empty());
  CHECK(tok.encode("bcbc") == Ids{3, 5, 6, 5, 6});
  CHECK(tok.encode("abc", {.add_special = true}) == Ids{1, 3, 10});
  CHECK(tok.decode(Ids{3, 10, 0}) == "abc \xE2\x81\x87 ");
  CHECK(tok.decode(Ids{1, 8, 11, 0, 6, 2}) == "ab<sep> \xE2\x81\x87 c");
  CHECK(tok.is_special(1));
  CHECK_FALSE(tok.is_special(11));
}
