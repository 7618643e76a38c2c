// SPDX-License-Identifier: Apache-2.0
// llama.cpp's test-tokenizer-0 cases: every fixtures/vocab/ggml-vocab-*.gguf against .inp/.out.
#include <catch2/catch.hpp>

#include <sstream>
#include <string>
#include <vector>

#include "polyinfer/tokenizer.hpp"
#include "support/fixtures.hpp"

namespace {

constexpr std::string_view kSeparator = "\n__ggml_vocab_test__\n";

std::vector<std::string> split_inputs(const std::string& text) {
  std::vector<std::string> out;
  size_t begin = 0;
  while (true) {
    const size_t end = text.find(kSeparator, begin);
    if (end == std::string::npos) break;
    out.push_back(text.substr(begin, end - begin));
    begin = end + kSeparator.size();
  }
  return out;
}

std::vector<std::vector<int32_t>> parse_outputs(const std::string& text) {
  std::vector<std::vector<int32_t>> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream numbers(line);
    std::vector<int32_t> ids;
    int32_t id = 0;
    while (numbers >> id) ids.push_back(id);
    out.push_back(std::move(ids));
  }
  return out;
}

std::string show(const std::vector<int32_t>& ids) {
  std::string out;
  for (const int32_t id : ids) out += ' ' + std::to_string(id);
  return out;
}

// Every case is CHECKed; the number of exact matches is reported.
void run_vocab(const std::string& name, std::string_view expected_pre,
               std::string_view expected_kind) {
  POLYINFER_SHARED_OR_RETURN(dir, "fixtures/vocab");
  const auto gguf = dir / ("ggml-vocab-" + name + ".gguf");
  const auto tokenizer = polyinfer::Tokenizer::load(gguf);
  CHECK(tokenizer.flavor() == polyinfer::TokenizerFlavor::kLlamaCpp);
  CHECK(tokenizer.kind() == expected_kind);
  CHECK(tokenizer.pre_tokenizer() == expected_pre);

  const auto inputs = split_inputs(polyinfer::test::read_file(gguf.string() + ".inp"));
  const auto outputs = parse_outputs(polyinfer::test::read_file(gguf.string() + ".out"));
  REQUIRE(inputs.size() == outputs.size());
  size_t passed = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto ids = tokenizer.encode(inputs[i], {.add_special = false, .parse_special = false});
    INFO(name << " case " << i << " text '" << inputs[i] << "'\n  got     " << show(ids)
              << "\n  expected" << show(outputs[i]));
    CHECK(ids == outputs[i]);
    if (ids == outputs[i]) ++passed;
  }
  WARN(name << ": " << passed << "/" << inputs.size() << " cases exact");
}

}  // namespace

TEST_CASE("gguf vocab llama-spm matches llama.cpp", "[tokenizer][gguf][conformance]") {
  run_vocab("llama-spm", "default", "spm-bpe");
}

TEST_CASE("gguf vocab phi-3 matches llama.cpp", "[tokenizer][gguf][conformance]") {
  run_vocab("phi-3", "default", "spm-bpe");
}

TEST_CASE("gguf vocab gpt-2 matches llama.cpp", "[tokenizer][gguf][conformance]") {
  run_vocab("gpt-2", "gpt-2", "byte-bpe");
}

TEST_CASE("gguf vocab bert-bge matches llama.cpp", "[tokenizer][gguf][conformance]") {
  run_vocab("bert-bge", "bert-bge", "wordpiece");
}
