// SPDX-License-Identifier: Apache-2.0
// ModelFile on broken and unusual folders: every failure is a polyinfer::Error naming the file.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <cstring>

#include "format/gguf.hpp"
#include "format/safetensors.hpp"
#include "polyinfer/error.hpp"
#include "polyinfer/model.hpp"
#include "support/fixtures.hpp"
#include "unit/model/safetensors_builder.hpp"

namespace {

namespace fs = std::filesystem;
using polyinfer::Error;
using polyinfer::ErrorCode;
using polyinfer::ModelFile;
using polyinfer::test::read_file;
using polyinfer::test::TempFolder;
using polyinfer::test::write_binary;

/// Opening `path` must fail with `code`, what() naming `needle` (and `needle2` when given).
void expect_open_error(const fs::path& path, ErrorCode code, const std::string& needle,
                       const std::string& needle2 = "") {
  try {
    (void)ModelFile::open(path);
    FAIL("opened " << path.string());
  } catch (const Error& e) {
    INFO(e.what());
    CHECK(e.code() == code);
    CHECK_THAT(e.what(), Catch::Contains(needle));
    if (!needle2.empty()) CHECK_THAT(e.what(), Catch::Contains(needle2));
  }
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("model file: broken config.json", "[model_file][hostile]") {
  POLYINFER_SHARED_OR_RETURN(source, "fixtures/models/tiny-bert");
  const TempFolder folder("pi-config");
  fs::copy_file(source / "model.safetensors", folder.path() / "model.safetensors");
  const std::string config = read_file(source / "config.json");
  const fs::path config_path = folder.path() / "config.json";

  SECTION("the copy opens") {
    write_binary(config_path, config);
    const ModelFile model = ModelFile::open(folder.path());
    CHECK(model.config().labels.size() == 4);
    CHECK(ModelFile::open(config_path).tensors().size() == model.tensors().size());
  }
  SECTION("unknown model_type") {
    write_binary(config_path,
                 replaced(config, "\"model_type\": \"bert\"", "\"model_type\": \"t5\""));
    expect_open_error(folder.path(), ErrorCode::kUnsupported, "config.json", "t5");
  }
  SECTION("unknown architecture") {
    write_binary(config_path,
                 replaced(replaced(config, "BertForSequenceClassification", "BertForMaskedLM"),
                          "\"model_type\": \"bert\",", ""));
    expect_open_error(folder.path(), ErrorCode::kUnsupported, "config.json", "BertForMaskedLM");
  }
  SECTION("missing hidden_size") {
    write_binary(config_path, replaced(config, "\"hidden_size\": 128,", ""));
    expect_open_error(folder.path(), ErrorCode::kFormat, "config.json", "hidden_size");
  }
  SECTION("wrong types") {
    write_binary(config_path,
                 replaced(config, "\"num_hidden_layers\": 2", "\"num_hidden_layers\": \"2\""));
    expect_open_error(folder.path(), ErrorCode::kFormat, "config.json", "num_hidden_layers");
    write_binary(config_path,
                 replaced(config, "\"layer_norm_eps\": 1e-12", "\"layer_norm_eps\": [1e-12]"));
    expect_open_error(folder.path(), ErrorCode::kFormat, "config.json", "layer_norm_eps");
    write_binary(config_path, replaced(config, "\"0\": \"investment_advice\"", "\"0\": 5"));
    expect_open_error(folder.path(), ErrorCode::kFormat, "config.json", "id2label");
  }
  SECTION("malformed JSON") {
    write_binary(config_path, config.substr(0, config.size() / 2));
    expect_open_error(folder.path(), ErrorCode::kFormat, "config.json", "JSON");
  }
  SECTION("config disagrees with the weights") {
    write_binary(config_path, replaced(config, "\"vocab_size\": 512", "\"vocab_size\": 500"));
    expect_open_error(folder.path(), ErrorCode::kFormat, "token_embd");
  }
  SECTION("no config.json") {
    expect_open_error(folder.path(), ErrorCode::kNotFound, "config.json");
  }
}

TEST_CASE("model file: broken model.safetensors", "[model_file][hostile]") {
  POLYINFER_SHARED_OR_RETURN(source, "fixtures/models/tiny-bert");
  const TempFolder folder("pi-weights");
  fs::copy_file(source / "config.json", folder.path() / "config.json");
  const std::string weights = read_file(source / "model.safetensors");
  const fs::path weights_path = folder.path() / "model.safetensors";
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, weights.data(), 8);

  SECTION("truncated at many lengths") {
    for (const size_t length :
         {size_t{0}, size_t{3}, size_t{8}, size_t{9}, size_t{100}, size_t{header_bytes},
          size_t{header_bytes + 7}, size_t{header_bytes + 8}, size_t{header_bytes + 1000},
          weights.size() / 2, weights.size() - 1}) {
      INFO("length " << length);
      write_binary(weights_path, weights.substr(0, length));
      expect_open_error(folder.path(), ErrorCode::kFormat, "model.safetensors");
    }
  }
  SECTION("header length past the end") {
    std::string broken = weights;
    broken[6] = '\x01';
    write_binary(weights_path, broken);
    expect_open_error(folder.path(), ErrorCode::kFormat, "model.safetensors@0");
  }
  SECTION("offsets past the end, overlapping, size mismatch") {
    const std::string header = weights.substr(8, header_bytes);
    const std::string last_end = "1654288]";  // classifier.weight, the last tensor
    REQUIRE(header.find(last_end) != std::string::npos);
    const auto with_header = [&](const std::string& new_header) {
      std::string padded = new_header;
      padded.resize(header.size(), ' ');
      return weights.substr(0, 8) + padded + weights.substr(8 + header_bytes);
    };
    write_binary(weights_path,
                 with_header(replaced(header, "[1652240,1654288]", "[1652240,9654288]")));
    expect_open_error(folder.path(), ErrorCode::kFormat, "model.safetensors", "classifier.weight");
    write_binary(weights_path,
                 with_header(replaced(header, "[1652240,1654288]", "[1652224,1654272]")));
    expect_open_error(folder.path(), ErrorCode::kFormat, "model.safetensors", "overlap");
    write_binary(weights_path,
                 with_header(replaced(header, "\"shape\":[4,128]", "\"shape\":[4,127]")));
    expect_open_error(folder.path(), ErrorCode::kFormat, "model.safetensors", "classifier.weight");
  }
  SECTION("no weights file") {
    expect_open_error(folder.path(), ErrorCode::kNotFound, "model.safetensors");
  }
}

TEST_CASE("model file: a sharded folder loads like the single file", "[model_file]") {
  POLYINFER_SHARED_OR_RETURN(source, "fixtures/models/tiny-llama");
  const TempFolder folder("pi-sharded");
  fs::copy_file(source / "config.json", folder.path() / "config.json");
  const auto single = polyinfer::detail::SafetensorsFile::open(source / "model.safetensors");
  const auto& tensors = single.tensors();
  std::vector<polyinfer::test::SafetensorsEntry> shards[2];
  std::string weight_map;
  const auto shard_name = [](int shard) {
    return fmt::format("model-{:05}-of-00002.safetensors", shard + 1);
  };
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& tensor = tensors[i];
    std::string shape = "[";
    for (size_t d = 0; d < tensor.shape.size(); ++d) {
      shape += fmt::format("{}{}", d > 0 ? "," : "", tensor.shape[d]);
    }
    const int shard = i < tensors.size() / 2 ? 0 : 1;
    shards[shard].push_back(
        {tensor.name, std::string(polyinfer::detail::safetensors_dtype_name(tensor.dtype)),
         shape + "]", std::string(reinterpret_cast<const char*>(tensor.data), tensor.bytes()), ""});
    weight_map += fmt::format("{}\"{}\":\"{}\"", i > 0 ? "," : "", tensor.name, shard_name(shard));
  }
  for (int shard = 0; shard < 2; ++shard) {
    write_binary(folder.path() / shard_name(shard),
                 polyinfer::test::safetensors_image(shards[shard], R"({"format":"pt"})"));
  }
  write_binary(folder.path() / "model.safetensors.index.json",
               R"({"metadata": {"total_size": 1}, "weight_map": {)" + weight_map + "}}");

  const ModelFile expected = ModelFile::open(source);
  const ModelFile sharded = ModelFile::open(folder.path());
  REQUIRE(sharded.tensors().size() == expected.tensors().size());
  for (const auto& info : expected.tensors()) {
    INFO(info.name);
    REQUIRE(sharded.has_tensor(info.name));
    const auto a = expected.tensor(info.name);
    const auto b = sharded.tensor(info.name);
    CHECK(a.dtype == b.dtype);
    CHECK(a.shape == b.shape);
    REQUIRE(a.bytes == b.bytes);
    CHECK(std::memcmp(a.data, b.data, a.bytes) == 0);
  }
  CHECK(sharded.config().hidden_size == expected.config().hidden_size);
  CHECK_FALSE(sharded.has_tokenizer());  // no tokenizer files copied
  CHECK_THROWS_MATCHES(sharded.tokenizer(), Error, Catch::Predicate<Error>([](const Error& e) {
                         return e.code() == ErrorCode::kTokenizer;
                       }));
}

TEST_CASE("model file: chat templates from tokenizer_config.json", "[model_file]") {
  POLYINFER_SHARED_OR_RETURN(source, "fixtures/models/tiny-bert");
  const TempFolder folder("pi-template");
  fs::copy_file(source / "config.json", folder.path() / "config.json");
  fs::copy_file(source / "model.safetensors", folder.path() / "model.safetensors");
  const fs::path config = folder.path() / "tokenizer_config.json";
  write_binary(config, R"({"chat_template": [{"name": "tool_use", "template": "T"},
                                             {"name": "default", "template": "D"}]})");
  CHECK(ModelFile::open(folder.path()).chat_template() == "D");
  write_binary(config, R"({"chat_template": "S"})");
  CHECK(ModelFile::open(folder.path()).chat_template() == "S");
  write_binary(config, R"({"chat_template": 3})");
  expect_open_error(folder.path(), ErrorCode::kFormat, "tokenizer_config.json", "chat_template");
  write_binary(folder.path() / "chat_template.jinja", "J");
  CHECK(ModelFile::open(folder.path()).chat_template() == "J");
}

TEST_CASE("model file: paths that are not models", "[model_file][hostile]") {
  const TempFolder folder("pi-paths");
  expect_open_error(folder.path() / "missing.gguf", ErrorCode::kIo, "missing.gguf");
  write_binary(folder.path() / "notes.txt", "hello");
  expect_open_error(folder.path() / "notes.txt", ErrorCode::kFormat, "notes.txt");
  write_binary(folder.path() / "bad.gguf", "GGUF\x03");
  expect_open_error(folder.path() / "bad.gguf", ErrorCode::kFormat, "bad.gguf");
}

TEST_CASE("model file: a GGUF without tokenizer", "[model_file]") {
  using polyinfer::detail::GgufValue;
  polyinfer::detail::GgufWriter writer;
  writer.set("general.architecture", GgufValue::make_string("qwen2"));
  writer.set("qwen2.embedding_length", GgufValue::make_u32(32));
  writer.set("qwen2.block_count", GgufValue::make_u32(1));
  writer.set("qwen2.feed_forward_length", GgufValue::make_u32(64));
  writer.set("qwen2.attention.head_count", GgufValue::make_u32(2));
  writer.set("qwen2.context_length", GgufValue::make_u32(64));
  writer.set("qwen2.attention.layer_norm_rms_epsilon", GgufValue::make_f32(1e-6f));
  writer.add_tensor("token_embd.weight", polyinfer::DType::kF32, {32, 16},
                    std::vector<std::byte>(32 * 16 * 4));
  writer.add_tensor("output.weight", polyinfer::DType::kF16, {32, 16},
                    std::vector<std::byte>(32 * 16 * 2));
  const TempFolder folder("pi-gguf");
  writer.write(folder.path() / "plain.gguf");
  const ModelFile model = ModelFile::open(folder.path() / "plain.gguf");
  CHECK(model.config().vocab_size == 16);
  CHECK(model.config().head_dim == 16);
  CHECK_FALSE(model.config().tie_embeddings);
  CHECK(model.tensors().size() == 2);
  CHECK(model.tensor("token_embd.weight").shape == std::vector<int64_t>{16, 32});
  CHECK_FALSE(model.has_tokenizer());
  CHECK(model.chat_template().empty());
  CHECK_THROWS_WITH(model.tokenizer(), Catch::Contains("plain.gguf"));
}
