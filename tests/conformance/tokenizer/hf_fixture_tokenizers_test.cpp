// SPDX-License-Identifier: Apache-2.0
// tokenizer.json / tokenizer.model tokenizers of the fixture models against transformers'
// and sentencepiece's results (tokenizers.json, cases.json, dev sets).
#include <catch2/catch.hpp>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "polyinfer/tokenizer.hpp"
#include "support/fixtures.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string show(const std::vector<int32_t>& ids) {
  std::string out;
  for (const int32_t id : ids) {
    out += ' ';
    out += std::to_string(id);
  }
  return out;
}

/// Tallies one field of the conformance set: how many cases matched, and the first misses.
struct Field {
  std::string name;
  size_t passed = 0;
  size_t total = 0;
  std::vector<std::string> misses;

  template <typename T>
  void check(size_t index, const std::string& text, const T& got, const T& want) {
    ++total;
    if (got == want) {
      ++passed;
      return;
    }
    if (misses.size() < 8) {
      std::ostringstream out;
      out << "case " << index << " " << json(text).dump() << ": got " << render(got) << ", want "
          << render(want);
      misses.push_back(out.str());
    }
  }

  void report() const {
    INFO(name << ": " << passed << "/" << total << " exact");
    for (const std::string& miss : misses) UNSCOPED_INFO(miss);
    CHECK(passed == total);
  }

 private:
  static std::string render(const std::vector<int32_t>& ids) {
    std::string out = "[";
    out += show(ids);
    out += " ]";
    return out;
  }
  static std::string render(const std::string& text) { return json(text).dump(); }
};

/// Every field of tokenizers.json for one model folder, loaded through Tokenizer::load.
void run_conformance(const std::string& model) {
  POLYINFER_SHARED_OR_RETURN(folder, "fixtures/models/" + model);
  const json cases = json::parse(polyinfer::test::read_file(folder / "tokenizers.json"))["cases"];
  REQUIRE(cases.size() == 177);
  const auto tokenizer = polyinfer::Tokenizer::load(folder);
  CHECK(tokenizer.flavor() == polyinfer::TokenizerFlavor::kHuggingFace);

  Field ids{"ids"};
  Field with_special{"ids_with_special"};
  Field decoded{"decoded"};
  Field decoded_with_special{"decoded_with_special"};
  Field decoded_skip_special{"decoded_skip_special"};
  for (size_t i = 0; i < cases.size(); ++i) {
    const json& c = cases[i];
    const auto text = c["text"].get<std::string>();
    const auto want_ids = c["ids"].get<std::vector<int32_t>>();
    const auto want_with_special = c["ids_with_special"].get<std::vector<int32_t>>();
    ids.check(i, text, tokenizer.encode(text, {.add_special = false}), want_ids);
    with_special.check(i, text, tokenizer.encode(text, {.add_special = true}), want_with_special);
    // decoded = decode(ids); the two others decode ids_with_special.
    decoded.check(i, text, tokenizer.decode(want_ids), c["decoded"].get<std::string>());
    decoded_with_special.check(i, text, tokenizer.decode(want_with_special),
                               c["decoded_with_special"].get<std::string>());
    decoded_skip_special.check(i, text, tokenizer.decode(want_with_special, {.skip_special = true}),
                               c["decoded_skip_special"].get<std::string>());
  }
  for (const Field* field :
       {&ids, &with_special, &decoded, &decoded_with_special, &decoded_skip_special}) {
    field->report();
  }
}

}  // namespace

TEST_CASE("tiny-llama tokenizer.json matches transformers on 177 strings",
          "[tokenizer][hf][conformance]") {
  run_conformance("tiny-llama");
}

TEST_CASE("tiny-qwen2 tokenizer.json matches transformers on 177 strings",
          "[tokenizer][hf][conformance]") {
  run_conformance("tiny-qwen2");
}

TEST_CASE("tiny-bert tokenizer.json matches transformers on 177 strings",
          "[tokenizer][hf][conformance]") {
  run_conformance("tiny-bert");
}

TEST_CASE("tiny-llama tokenizer.model matches sentencepiece on 177 strings",
          "[tokenizer][sentencepiece][conformance]") {
  POLYINFER_SHARED_OR_RETURN(folder, "fixtures/models/tiny-llama");
  const json cases = json::parse(polyinfer::test::read_file(folder / "tokenizers.json"))["cases"];
  const auto tokenizer = polyinfer::Tokenizer::load_sentencepiece(folder / "tokenizer.model");
  CHECK(tokenizer.flavor() == polyinfer::TokenizerFlavor::kSentencePiece);
  CHECK(tokenizer.vocab_size() == 512);
  CHECK(tokenizer.bos_id() == 1);
  CHECK(tokenizer.eos_id() == 2);
  CHECK(tokenizer.unk_id() == 0);
  Field spm_ids{"spm_ids"};
  Field round_trip{"decode(spm_ids) == text"};
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto text = cases[i]["text"].get<std::string>();
    const auto want = cases[i]["spm_ids"].get<std::vector<int32_t>>();
    spm_ids.check(i, text, tokenizer.encode(text, {.add_special = false}), want);
    // Identity normalization, no whitespace folding and byte fallback: lossless (the decoder
    // drops exactly the dummy prefix).
    round_trip.check(i, text, tokenizer.decode(want), text);
  }
  spm_ids.report();
  round_trip.report();
  CHECK(tokenizer.encode("Hello", {.add_special = true}).front() == 1);
}

TEST_CASE("taskmodels byte-level tokenizers encode prompts as <s> + bytes",
          "[tokenizer][hf][conformance]") {
  POLYINFER_SHARED_OR_RETURN(shared, "taskmodels");
  for (const char* size : {"small", "medium", "large"}) {
    const auto tokenizer = polyinfer::Tokenizer::load(shared / size);
    CHECK(tokenizer.kind() == "byte-bpe");
    CHECK(tokenizer.vocab_size() == 259);
    CHECK(tokenizer.bos_id() == 256);
    CHECK(tokenizer.eos_id() == 257);
    CHECK(tokenizer.pad_id() == 258);
    CHECK(tokenizer.encode("add 318 552 =", {.add_special = true}) ==
          std::vector<int32_t>{256, 97, 100, 100, 32, 51, 49, 56, 32, 53, 53, 50, 32, 61});
  }
  const auto tokenizer = polyinfer::Tokenizer::load(shared / "small");
  std::istringstream lines(polyinfer::test::read_file(shared / "dev.jsonl"));
  Field prompts{"taskmodels dev prompts"};
  Field answers{"taskmodels dev answers decode"};
  std::string line;
  size_t index = 0;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    const json item = json::parse(line);
    const auto prompt = item["prompt"].get<std::string>();
    std::vector<int32_t> want{256};
    for (const char c : prompt) want.push_back(static_cast<unsigned char>(c));
    const auto got = tokenizer.encode(prompt, {.add_special = true});
    prompts.check(index, prompt, got, want);
    CHECK(got.size() == item["n_prompt_tokens"].get<size_t>());
    const auto answer = item["answer"].get<std::string>();
    answers.check(index, answer, tokenizer.decode(tokenizer.encode(answer)), answer);
    ++index;
  }
  CHECK(index == 600);
  prompts.report();
  answers.report();
}

TEST_CASE("WordPiece classifiers (intent, router) reproduce cases.json input_ids",
          "[tokenizer][hf][conformance]") {
  for (const char* relative : {"intent", "taskmodels/router"}) {
    POLYINFER_SHARED_OR_RETURN(folder, relative);
    const auto tokenizer = polyinfer::Tokenizer::load(folder);
    CHECK(tokenizer.kind() == "wordpiece");
    const json cases = json::parse(polyinfer::test::read_file(folder / "cases.json"))["cases"];
    Field input_ids{std::string(relative) + " input_ids"};
    for (size_t i = 0; i < cases.size(); ++i) {
      const auto text = cases[i]["text"].get<std::string>();
      input_ids.check(i, text, tokenizer.encode(text, {.add_special = true}),
                      cases[i]["input_ids"].get<std::vector<int32_t>>());
    }
    CHECK(input_ids.total > 0);
    input_ids.report();
  }
  POLYINFER_SHARED_OR_RETURN(router, "taskmodels/router");
  const auto tokenizer = polyinfer::Tokenizer::load(router);
  std::istringstream lines(polyinfer::test::read_file(router / "router-dev.jsonl"));
  std::string line;
  size_t checked = 0;
  size_t matched = 0;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    const json item = json::parse(line);
    const auto ids = tokenizer.encode(item["text"].get<std::string>(), {.add_special = true});
    matched += ids.size() == item["n_tokens"].get<size_t>() ? 1 : 0;
    ++checked;
  }
  INFO("router-dev.jsonl: " << matched << "/" << checked << " token counts match");
  CHECK(checked > 0);
  CHECK(matched == checked);
}
