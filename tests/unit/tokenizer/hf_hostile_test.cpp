// SPDX-License-Identifier: Apache-2.0
// Hostile tokenizer.json / tokenizer_config.json / tokenizer.model input: every failure is a
// polyinfer::Error of the right code naming the file and the JSON path or byte offset.
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "polyinfer/error.hpp"
#include "polyinfer/tokenizer.hpp"
#include "support/fixtures.hpp"
#include "tokenizer/tokenizer_impl.hpp"

namespace {

using polyinfer::Error;
using polyinfer::ErrorCode;
namespace detail = polyinfer::detail;

/// Runs `load` and checks it throws Error(code) whose where() contains every `parts`.
void expect_error(const std::function<void()>& load, ErrorCode code,
                  const std::vector<std::string>& parts) {
  try {
    load();
    FAIL("no error thrown");
  } catch (const Error& e) {
    INFO("what(): " << e.what());
    CHECK(e.code() == code);
    for (const std::string& part : parts) CHECK(e.where().find(part) != std::string::npos);
  }
}

void expect_json_error(const std::string& json, ErrorCode code,
                       const std::vector<std::string>& parts, const std::string& config = "") {
  expect_error([&] { (void)detail::make_hf_tokenizer(json, config, "x/tokenizer.json"); }, code,
               parts);
}

/// A valid minimal tokenizer.json around one model (and optional extra top-level members).
std::string with_model(const std::string& model, const std::string& extra = "") {
  return R"({"version": "1.0", )" + extra + R"("model": )" + model + "}";
}

const std::string kWordLevel =
    R"({"type": "WordLevel", "vocab": {"[UNK]": 0, "a": 1, "b": 2}, "unk_token": "[UNK]"})";

/// Small deterministic mutations (bit flips, truncation, byte overwrites, chunk copies).
std::string mutate(std::string data, uint64_t& state) {
  auto next = [&state] {
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  };
  static constexpr char kBytes[] = {'\0', '\x01', '\x7F', '\x80', '\xFF', '"', '{',
                                    '}',  '[',    ']',    ':',    ',',    '9', '-'};
  const int edits = 1 + static_cast<int>(next() % 6);
  for (int e = 0; e < edits && !data.empty(); ++e) {
    const size_t at = next() % data.size();
    switch (next() % 5) {
      case 0:
        data[at] = static_cast<char>(data[at] ^ (1 << (next() % 8)));
        break;
      case 1:
        data[at] = kBytes[next() % sizeof(kBytes)];
        break;
      case 2:
        data.resize(at);
        break;
      case 3:
        data.insert(next() % data.size(), data.substr(at, 1 + next() % 32));
        break;
      default:
        data.erase(at, 1 + next() % 32);
    }
  }
  return data;
}

/// Rewrites one random node of a JSON tree: removes it, retypes it or changes its value.
void mutate_json(nlohmann::json& root, uint64_t& state) {
  auto next = [&state] {
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  };
  nlohmann::json* node = &root;
  nlohmann::json* parent = nullptr;
  std::string key;
  for (int depth = 0; depth < 8 && !node->empty() && (node->is_object() || node->is_array());
       ++depth) {
    if (depth > 0 && next() % 3 == 0) break;
    const size_t index = next() % node->size();
    parent = node;
    if (node->is_object()) {
      auto it = node->begin();
      std::advance(it, static_cast<std::ptrdiff_t>(index));
      key = it.key();
      node = &*it;
    } else {
      key = std::to_string(index);
      node = &(*node)[index];
    }
  }
  static const nlohmann::json kValues[] = {nullptr,
                                           true,
                                           0,
                                           -1,
                                           2147483647,
                                           1e300,
                                           "",
                                           "\xE2\x96\x81",
                                           "<s>",
                                           "(?:",
                                           "Isolated",
                                           nlohmann::json::array(),
                                           nlohmann::json::object(),
                                           nlohmann::json::array({1, "a"}),
                                           nlohmann::json::object({{"type", "Sequence"}})};
  switch (next() % 3) {
    case 0:
      if (parent != nullptr && parent->is_object()) {
        parent->erase(key);
        return;
      }
      [[fallthrough]];
    case 1:
      *node = kValues[next() % std::size(kValues)];
      return;
    default:
      if (node->is_number_integer()) {
        *node = node->get<int64_t>() + static_cast<int64_t>(next() % 5) - 2;
      } else if (node->is_string() && !node->get<std::string>().empty()) {
        std::string text = node->get<std::string>();
        text.erase(next() % text.size(), 1);
        *node = text;
      } else if (node->is_boolean()) {
        *node = !node->get<bool>();
      } else {
        *node = kValues[next() % std::size(kValues)];
      }
  }
}

}  // namespace

TEST_CASE("tokenizer.json: malformed JSON names the file", "[tokenizer][hf][hostile]") {
  expect_json_error(R"({"model": {"type": "BPE", )", ErrorCode::kFormat, {"x/tokenizer.json"});
  expect_json_error("", ErrorCode::kFormat, {"x/tokenizer.json"});
  expect_json_error("[1, 2, 3]", ErrorCode::kFormat, {"x/tokenizer.json"});
  expect_json_error(R"({"version": "1.0"})", ErrorCode::kFormat, {"x/tokenizer.json", "model"});
}

TEST_CASE("tokenizer.json: unknown component types are kUnsupported with their JSON path",
          "[tokenizer][hf][hostile]") {
  expect_json_error(with_model(R"({"type": "Transformer", "vocab": {}})"), ErrorCode::kUnsupported,
                    {"x/tokenizer.json", "model.type"});
  expect_json_error(
      with_model(kWordLevel,
                 R"("normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"},
                    {"type": "Klingon"}]}, )"),
      ErrorCode::kUnsupported, {"normalizer.normalizers[1].type"});
  expect_json_error(with_model(kWordLevel, R"("pre_tokenizer": {"type": "Magic"}, )"),
                    ErrorCode::kUnsupported, {"pre_tokenizer.type"});
  expect_json_error(with_model(kWordLevel, R"("decoder": {"type": "Magic"}, )"),
                    ErrorCode::kUnsupported, {"decoder.type"});
  expect_json_error(with_model(kWordLevel, R"("post_processor": {"type": "Magic"}, )"),
                    ErrorCode::kUnsupported, {"post_processor.type"});
  expect_json_error(with_model(kWordLevel,
                               R"("pre_tokenizer": {"type": "Split", "pattern": {"String": "x"},
                    "behavior": "Sideways"}, )"),
                    ErrorCode::kUnsupported, {"pre_tokenizer.behavior"});
}

TEST_CASE("tokenizer.json: wrongly typed or inconsistent members are kFormat with their path",
          "[tokenizer][hf][hostile]") {
  expect_json_error(
      with_model(R"({"type": "BPE", "vocab": {"a": 0}, "merges": [], "byte_fallback": "yes"})"),
      ErrorCode::kFormat, {"model.byte_fallback"});
  expect_json_error(with_model(R"({"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a c"]})"),
                    ErrorCode::kFormat, {"model.merges[0]"});
  expect_json_error(with_model(R"({"type": "BPE", "vocab": {"a": 0}, "merges": ["a b c"]})"),
                    ErrorCode::kFormat, {"model.merges[0]"});
  expect_json_error(with_model(R"({"type": "WordLevel", "vocab": {"a": 2000000000}})"),
                    ErrorCode::kFormat, {"model.vocab.a"});
  expect_json_error(with_model(R"({"type": "WordLevel", "vocab": {"a": -1}})"), ErrorCode::kFormat,
                    {"model.vocab.a"});
  expect_json_error(with_model(R"({"type": "WordLevel", "vocab": {"a": "zero"}})"),
                    ErrorCode::kFormat, {"model.vocab.a"});
  expect_json_error(with_model(R"({"type": "WordLevel", "vocab": []})"), ErrorCode::kFormat,
                    {"model.vocab"});
  expect_json_error(
      with_model(kWordLevel, R"("pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(a"},
                                "behavior": "Isolated"}, )"),
      ErrorCode::kFormat, {"pre_tokenizer.pattern.Regex"});
  expect_json_error(with_model(kWordLevel, R"("pre_tokenizer": {"type": "Metaspace",
                                              "replacement": "ab"}, )"),
                    ErrorCode::kFormat, {"pre_tokenizer.replacement"});
  expect_json_error(with_model(kWordLevel, R"("post_processor": {"type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}], "special_tokens": {}}, )"),
                    ErrorCode::kFormat, {"post_processor.single[0].SpecialToken.id"});
  expect_json_error(with_model(kWordLevel, R"("added_tokens": [{"id": 5}], )"), ErrorCode::kFormat,
                    {"added_tokens[0].content"});
  expect_json_error(with_model(kWordLevel, R"("added_tokens": {"id": 5}, )"), ErrorCode::kFormat,
                    {"added_tokens"});
}

TEST_CASE("tokenizer.json: deeply nested Sequences are refused", "[tokenizer][hf][hostile]") {
  std::string nested = R"({"type": "NFC"})";
  for (int i = 0; i < 100; ++i) {
    nested = R"({"type": "Sequence", "normalizers": [)" + nested + "]}";
  }
  expect_json_error(with_model(kWordLevel, R"("normalizer": )" + nested + ", "), ErrorCode::kFormat,
                    {"normalizer.normalizers[0]"});
}

TEST_CASE("tokenizer_config.json errors name tokenizer_config.json", "[tokenizer][hf][hostile]") {
  expect_json_error(with_model(kWordLevel), ErrorCode::kFormat, {"x/tokenizer_config.json"},
                    "{not json");
  expect_json_error(with_model(kWordLevel), ErrorCode::kFormat,
                    {"x/tokenizer_config.json", "clean_up_tokenization_spaces"},
                    R"({"clean_up_tokenization_spaces": "yes"})");
  expect_json_error(with_model(kWordLevel), ErrorCode::kFormat,
                    {"x/tokenizer_config.json", "chat_template[0]"},
                    R"({"chat_template": [{"name": "default"}]})");
}

TEST_CASE("Tokenizer::load reports the path of a broken tokenizer.json",
          "[tokenizer][hf][hostile]") {
  const auto folder = std::filesystem::temp_directory_path() / "polyinfer_hf_hostile_test";
  std::filesystem::create_directories(folder);
  std::ofstream(folder / "tokenizer.json") << with_model(R"({"type": "Mystery"})");
  expect_error([&] { (void)polyinfer::Tokenizer::load(folder); }, ErrorCode::kUnsupported,
               {(folder / "tokenizer.json").string(), "model.type"});
  std::filesystem::remove_all(folder);
}

TEST_CASE("tokenizer.model: truncated or garbage protobuf is kFormat naming file@offset",
          "[tokenizer][sentencepiece][hostile]") {
  POLYINFER_SHARED_OR_RETURN(model_path, "fixtures/models/tiny-llama/tokenizer.model");
  const std::string bytes = polyinfer::test::read_file(model_path);
  const std::string where = "m/tokenizer.model";
  // Cut inside the last length-delimited field: it runs past the end of the file.
  expect_error(
      [&] {
        (void)detail::make_sentencepiece_tokenizer(bytes.substr(0, bytes.size() - 3), "", where);
      },
      ErrorCode::kFormat, {where + "@"});
  expect_error([&] { (void)detail::make_sentencepiece_tokenizer("", "", where); },
               ErrorCode::kFormat, {where});
  expect_error([&] { (void)detail::make_sentencepiece_tokenizer("\xFF\xFF\xFF", "", where); },
               ErrorCode::kFormat, {where});
  // Every prefix either loads (a cut between fields) or fails with kFormat naming the file.
  for (size_t cut = 0; cut < bytes.size(); cut += 97) {
    try {
      (void)detail::make_sentencepiece_tokenizer(bytes.substr(0, cut), "", where);
    } catch (const Error& e) {
      INFO(e.what());
      CHECK(e.code() == ErrorCode::kFormat);
      CHECK(e.where().find(where) != std::string::npos);
    }
  }
}

TEST_CASE("tokenizer.model: a model without <unk> is refused",
          "[tokenizer][sentencepiece][hostile]") {
  // ModelProto{pieces: [{piece: "a", score: 0, type: NORMAL}]}
  const std::string proto = std::string(
      "\x0A\x07\x0A\x01"
      "a"
      "\x15\x00\x00\x00\x00",
      9);
  expect_error([&] { (void)detail::make_sentencepiece_tokenizer(proto, "", "m.model"); },
               ErrorCode::kFormat, {"m.model"});
}

TEST_CASE("mutated tokenizer files fail only with polyinfer::Error",
          "[tokenizer][hf][sentencepiece][hostile]") {
  POLYINFER_SHARED_OR_RETURN(models, "fixtures/models");
  uint64_t state = 2024;
  size_t loaded = 0;
  for (const char* model : {"tiny-llama", "tiny-qwen2", "tiny-bert"}) {
    const std::string seed = polyinfer::test::read_file(models / model / "tokenizer.json");
    for (int i = 0; i < 60; ++i) {
      const std::string input = mutate(seed, state);
      try {
        const polyinfer::Tokenizer tokenizer(detail::make_hf_tokenizer(input, "", "m.json"));
        (void)tokenizer.encode("Hello <s> world 123 caf\xC3\xA9", {.add_special = true});
        ++loaded;
      } catch (const Error&) {
      }
    }
  }
  // Structural mutations: the JSON stays valid, the pipeline description does not.
  for (const char* model : {"tiny-llama", "tiny-qwen2", "tiny-bert"}) {
    const auto seed =
        nlohmann::json::parse(polyinfer::test::read_file(models / model / "tokenizer.json"));
    for (int i = 0; i < 150; ++i) {
      nlohmann::json tree = seed;
      for (uint64_t k = 0, n = 1 + state % 3; k < n; ++k) mutate_json(tree, state);
      try {
        const polyinfer::Tokenizer tokenizer(detail::make_hf_tokenizer(
            tree.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "", "m.json"));
        const auto ids = tokenizer.encode("  Hello <s> world 123 caf\xC3\xA9 \xE4\xB8\xAD",
                                          {.add_special = true});
        std::vector<int32_t> valid;
        for (const int32_t id : ids) {
          if (id >= 0 && id < tokenizer.vocab_size()) valid.push_back(id);
        }
        (void)tokenizer.decode(valid);
        ++loaded;
      } catch (const Error&) {
      }
    }
  }
  const std::string seed = polyinfer::test::read_file(models / "tiny-llama/tokenizer.model");
  for (int i = 0; i < 200; ++i) {
    const std::string input = mutate(seed, state);
    try {
      const polyinfer::Tokenizer tokenizer(detail::make_sentencepiece_tokenizer(input, "", "m"));
      const auto ids = tokenizer.encode("  Hello   world \xE4\xB8\xAD", {.add_special = true});
      (void)tokenizer.decode(ids);
      ++loaded;
    } catch (const Error&) {
    }
  }
  CHECK(loaded > 0);
}
