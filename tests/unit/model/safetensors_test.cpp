// SPDX-License-Identifier: Apache-2.0
// safetensors reader: valid images, every header check, truncation, sharded sets.
#include <catch2/catch.hpp>

#include <cstring>

#include "format/safetensors.hpp"
#include "polyinfer/error.hpp"
#include "unit/model/safetensors_builder.hpp"

namespace {

using polyinfer::Error;
using polyinfer::ErrorCode;
using polyinfer::detail::SafetensorsDType;
using polyinfer::detail::SafetensorsFile;
using polyinfer::detail::SafetensorsSet;
using polyinfer::test::f32_bytes;
using polyinfer::test::safetensors_header;
using polyinfer::test::safetensors_image;
using polyinfer::test::SafetensorsEntry;

SafetensorsFile parse(const std::string& image, std::string name = "mem.safetensors") {
  return SafetensorsFile::parse(reinterpret_cast<const std::byte*>(image.data()), image.size(),
                                std::move(name));
}

/// Parses `image`, which must fail with `code`; returns what().
std::string parse_error(const std::string& image, ErrorCode code = ErrorCode::kFormat) {
  try {
    (void)parse(image, "bad.safetensors");
  } catch (const Error& e) {
    CHECK(e.code() == code);
    CHECK(std::string(e.what()).find("bad.safetensors") != std::string::npos);
    return e.what();
  }
  FAIL("no error for a broken image");
  return {};
}

std::vector<SafetensorsEntry> two_tensors() {
  return {{"a", "F32", "[2, 3]", f32_bytes(6), ""}, {"b", "F16", "[4]", std::string(8, '\1'), ""}};
}

}  // namespace

TEST_CASE("safetensors: a valid image parses", "[safetensors]") {
  const std::string image = safetensors_image(two_tensors(), R"({"format":"pt"})");
  const SafetensorsFile file = parse(image);
  REQUIRE(file.tensors().size() == 2);
  const auto* a = file.find("a");
  REQUIRE(a != nullptr);
  CHECK(a->dtype == SafetensorsDType::kF32);
  CHECK(a->shape == std::vector<int64_t>{2, 3});
  CHECK(a->bytes() == 24);
  CHECK(a->elements() == 6);
  float third = 0;
  std::memcpy(&third, a->data + 8, 4);
  CHECK(third == 2.0f);
  const auto* b = file.find("b");
  REQUIRE(b != nullptr);
  CHECK(b->dtype == SafetensorsDType::kF16);
  CHECK(b->data == a->data + 24);
  CHECK(file.find("c") == nullptr);
  REQUIRE(file.metadata().size() == 1);
  CHECK(file.metadata()[0] == std::pair<std::string, std::string>{"format", "pt"});
  CHECK(file.data_offset() % 8 == 0);
}

TEST_CASE("safetensors: every dtype, scalars and empty tensors", "[safetensors]") {
  const std::vector<std::pair<std::string, int>> types{
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"U16", 2}, {"I16", 2}, {"F16", 2}, {"BF16", 2},
      {"U32", 4},  {"I32", 4}, {"F32", 4}, {"U64", 8}, {"I64", 8}, {"F64", 8}};
  std::vector<SafetensorsEntry> entries;
  for (const auto& [name, bytes] : types) {
    entries.push_back({"t_" + name, name, "[3]", std::string(3 * bytes, '\0'), ""});
  }
  entries.push_back({"scalar", "F32", "[]", std::string(4, '\0'), ""});
  entries.push_back({"empty", "F32", "[0, 5]", "", ""});
  const std::string image = safetensors_image(entries);
  const SafetensorsFile file = parse(image);
  CHECK(file.tensors().size() == types.size() + 2);
  CHECK(file.find("scalar")->elements() == 1);
  CHECK(file.find("empty")->bytes() == 0);
  CHECK(polyinfer::detail::to_dtype(SafetensorsDType::kBF16) == polyinfer::DType::kBF16);
  CHECK(!polyinfer::detail::to_dtype(SafetensorsDType::kU8));
}

TEST_CASE("safetensors: tensors come in data order", "[safetensors]") {
  const std::string data = f32_bytes(2);
  const std::vector<SafetensorsEntry> entries{{"z_first", "F32", "[1]", "", "[0, 4]"},
                                              {"a_second", "F32", "[1]", "", "[4, 8]"}};
  const SafetensorsFile file = parse(safetensors_image(safetensors_header(entries), data));
  CHECK(file.tensors()[0].name == "z_first");
  CHECK(file.tensors()[1].name == "a_second");
}

TEST_CASE("safetensors: truncation at every length fails cleanly", "[safetensors]") {
  const std::string image = safetensors_image(two_tensors(), R"({"format":"pt"})");
  for (size_t length = 0; length < image.size(); ++length) {
    INFO("length " << length);
    parse_error(image.substr(0, length));
  }
}

TEST_CASE("safetensors: header checks", "[safetensors]") {
  SECTION("header length past the end") {
    std::string image = safetensors_image(two_tensors());
    image[0] = '\xff';
    image[1] = '\xff';
    CHECK_THAT(parse_error(image), Catch::Contains("bad.safetensors@0"));
    std::string huge = image;
    for (int i = 0; i < 8; ++i) huge[i] = '\xff';
    parse_error(huge);
  }
  SECTION("malformed JSON names the offset") {
    const std::string what = parse_error(safetensors_image("{\"a\": [1, 2", ""));
    CHECK_THAT(what, Catch::Contains("bad.safetensors@"));
    CHECK_THAT(what, Catch::Contains("JSON"));
  }
  SECTION("not an object") {
    parse_error(safetensors_image("[1, 2, 3]", ""));
  }
  SECTION("deep nesting") {
    parse_error(safetensors_image(std::string(10000, '[') + std::string(10000, ']'), ""));
  }
  SECTION("invalid UTF-8 in a name") {
    parse_error(safetensors_image("{\"\xff\": 1}", ""));
  }
  SECTION("__metadata__ must be an object") {
    parse_error(safetensors_image(R"({"__metadata__": 3})", ""));
  }
}

TEST_CASE("safetensors: entry checks", "[safetensors]") {
  const auto broken = [](SafetensorsEntry entry, std::string data,
                         ErrorCode code = ErrorCode::kFormat) {
    std::vector<SafetensorsEntry> entries{std::move(entry)};
    const std::string what =
        parse_error(safetensors_image(safetensors_header(entries), data), code);
    CHECK_THAT(what, Catch::Contains("bad.safetensors: w"));
    return what;
  };
  const std::string data = f32_bytes(6);
  SECTION("offsets past the end") {
    broken({"w", "F32", "[6]", "", "[0, 28]"}, data);
  }
  SECTION("begin after end") {
    broken({"w", "F32", "[0]", "", "[8, 4]"}, data);
  }
  SECTION("size does not match the shape") {
    CHECK_THAT(broken({"w", "F32", "[2, 2]", "", "[0, 24]"}, data), Catch::Contains("needs 16"));
  }
  SECTION("shape overflow") {
    broken({"w", "F32", "[4294967296, 4294967296, 16]", "", "[0, 24]"}, data);
  }
  SECTION("negative dimension") {
    broken({"w", "F32", "[-1, 6]", "", "[0, 24]"}, data);
  }
  SECTION("fractional dimension") {
    broken({"w", "F32", "[1.5]", "", "[0, 24]"}, data);
  }
  SECTION("offsets of the wrong shape") {
    broken({"w", "F32", "[6]", "", "[0]"}, data);
  }
  SECTION("offsets of the wrong type") {
    broken({"w", "F32", "[6]", "", "[\"0\", 24]"}, data);
  }
  SECTION("unknown dtype") {
    broken({"w", "F8_E4M3X", "[6]", "", "[0, 24]"}, data, ErrorCode::kUnsupported);
  }
  SECTION("entry not an object") {
    parse_error(safetensors_image(R"({"w": [1]})", ""));
  }
  SECTION("missing keys") {
    parse_error(safetensors_image(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", data));
    parse_error(safetensors_image(R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", data));
    parse_error(safetensors_image(R"({"w": {"dtype": "F32", "shape": [1]}})", data));
  }
}

TEST_CASE("safetensors: overlapping tensors are refused", "[safetensors]") {
  const std::string data = f32_bytes(6);
  SECTION("partial overlap") {
    const std::vector<SafetensorsEntry> entries{{"a", "F32", "[4]", "", "[0, 16]"},
                                                {"b", "F32", "[2]", "", "[8, 16]"}};
    CHECK_THAT(parse_error(safetensors_image(safetensors_header(entries), data)),
               Catch::Contains("overlap"));
  }
  SECTION("one inside another") {
    const std::vector<SafetensorsEntry> entries{{"a", "F32", "[6]", "", "[0, 24]"},
                                                {"b", "F32", "[1]", "", "[12, 16]"}};
    parse_error(safetensors_image(safetensors_header(entries), data));
  }
  SECTION("the same bytes twice") {
    const std::vector<SafetensorsEntry> entries{{"a", "F32", "[2]", "", "[0, 8]"},
                                                {"b", "F32", "[2]", "", "[0, 8]"}};
    parse_error(safetensors_image(safetensors_header(entries), data));
  }
  SECTION("empty tensors overlap nothing") {
    const std::vector<SafetensorsEntry> entries{{"a", "F32", "[2]", "", "[0, 8]"},
                                                {"b", "F32", "[0]", "", "[4, 4]"}};
    CHECK(parse(safetensors_image(safetensors_header(entries), data)).tensors().size() == 2);
  }
}

TEST_CASE("safetensors: index.json", "[safetensors]") {
  const auto map = polyinfer::detail::parse_safetensors_index(
      R"({"metadata": {"total_size": 8}, "weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}})",
      "index.json");
  REQUIRE(map.size() == 2);
  CHECK(map[1] == std::pair<std::string, std::string>{"b", "s2.safetensors"});
  for (const char* bad :
       {R"({"weight_map": {"a": "../x.safetensors"}})", R"({"weight_map": {"a": "/etc/passwd"}})",
        R"({"weight_map": {"a": 3}})", R"({"weight_map": []})", R"({})", R"([)"}) {
    INFO(bad);
    try {
      (void)polyinfer::detail::parse_safetensors_index(bad, "index.json");
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::kFormat);
      CHECK_THAT(e.what(), Catch::Contains("index.json"));
    }
  }
}

TEST_CASE("safetensors: sharded folders", "[safetensors]") {
  using polyinfer::test::write_binary;
  polyinfer::test::TempFolder folder("pi-shards");
  write_binary(folder.path() / "s1.safetensors",
               safetensors_image({{"a", "F32", "[2]", f32_bytes(2), ""}}));
  write_binary(folder.path() / "s2.safetensors",
               safetensors_image({{"b", "F32", "[3]", f32_bytes(3), ""}}));
  const auto index = folder.path() / "model.safetensors.index.json";

  SECTION("both shards load") {
    write_binary(index, R"({"weight_map": {"b": "s2.safetensors", "a": "s1.safetensors"}})");
    const SafetensorsSet set = SafetensorsSet::open_folder(folder.path());
    REQUIRE(set.entries().size() == 2);
    CHECK(set.find("a")->tensor->shape == std::vector<int64_t>{2});
    CHECK(set.find("b")->shard->name().ends_with("s2.safetensors"));
    CHECK(set.find("c") == nullptr);
  }
  SECTION("a tensor missing from its shard") {
    write_binary(index, R"({"weight_map": {"a": "s2.safetensors", "b": "s2.safetensors"}})");
    CHECK_THROWS_AS(SafetensorsSet::open_folder(folder.path()), Error);
  }
  SECTION("a missing shard") {
    write_binary(index, R"({"weight_map": {"a": "s3.safetensors"}})");
    CHECK_THROWS_WITH(SafetensorsSet::open_folder(folder.path()), Catch::Contains("s3"));
  }
  SECTION("a tensor in two shards") {
    write_binary(folder.path() / "s2.safetensors",
                 safetensors_image({{"a", "F32", "[2]", f32_bytes(2), ""},
                                    {"b", "F32", "[3]", f32_bytes(3), ""}}));
    write_binary(index, R"({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}})");
    CHECK_THROWS_WITH(SafetensorsSet::open_folder(folder.path()), Catch::Contains("both"));
  }
  SECTION("no weights at all") {
    CHECK_THROWS_AS(SafetensorsSet::open_folder(folder.path()), Error);
  }
}
