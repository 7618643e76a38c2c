// SPDX-License-Identifier: Apache-2.0
// GGUF writer → reader round trips: every metadata value type, nested arrays, every dtype.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <random>

#include "format/gguf.hpp"
#include "polyinfer/error.hpp"

namespace polyinfer::detail {
namespace {

GgufValue scalar(GgufType type, uint64_t u, int64_t i, double f = 0) {
  GgufValue v;
  v.type = type;
  v.u = u;
  v.i = i;
  v.f = f;
  return v;
}

std::vector<std::byte> random_bytes(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> out(count);
  for (auto& b : out) b = static_cast<std::byte>(rng() & 0xFF);
  return out;
}

GgufFile parse_image(const std::vector<std::byte>& image, const std::string& name = "mem.gguf") {
  return GgufFile::parse(image.data(), image.size(), name);
}

}  // namespace

TEST_CASE("gguf round trip: every scalar type", "[format][gguf]") {
  GgufWriter writer;
  writer.set("u8", scalar(GgufType::kU8, 250, 0));
  writer.set("i8", scalar(GgufType::kI8, 0, -120));
  writer.set("u16", scalar(GgufType::kU16, 65000, 0));
  writer.set("i16", scalar(GgufType::kI16, 0, -32000));
  writer.set("u32", GgufValue::make_u32(4000000000u));
  writer.set("i32", GgufValue::make_i32(-2000000000));
  writer.set("u64", GgufValue::make_u64(UINT64_MAX));
  writer.set("i64", scalar(GgufType::kI64, 0, INT64_MIN));
  writer.set("f32", GgufValue::make_f32(1e-5f));
  writer.set("f64", scalar(GgufType::kF64, 0, 0, 3.141592653589793));
  writer.set("bool_true", GgufValue::make_bool(true));
  writer.set("bool_false", GgufValue::make_bool(false));
  writer.set("string", GgufValue::make_string("héllo wörld ✓"));
  writer.set("empty_string", GgufValue::make_string(""));
  const auto image = writer.serialize();
  const GgufFile file = parse_image(image);

  CHECK(file.version() == 3);
  CHECK(file.alignment() == 32);
  REQUIRE(file.metadata().size() == 14);
  CHECK(file.metadata()[0].key == "u8");  // insertion order kept
  CHECK(file.find("u8")->type == GgufType::kU8);
  CHECK(file.get_int("u8") == 250);
  CHECK(file.get_int("i8") == -120);
  CHECK(file.get_int("u16") == 65000);
  CHECK(file.get_int("i16") == -32000);
  CHECK(file.get_int("u32") == 4000000000LL);
  CHECK(file.get_int("i32") == -2000000000LL);
  CHECK(file.find("u64")->u == UINT64_MAX);
  CHECK(file.get_int("i64") == INT64_MIN);
  CHECK(static_cast<float>(*file.get_float("f32")) == 1e-5f);
  CHECK(file.get_float("f64") == 3.141592653589793);
  CHECK(file.get_float("u32") == 4000000000.0);
  CHECK(file.get_bool("bool_true") == true);
  CHECK(file.get_bool("bool_false") == false);
  CHECK(file.get_string("string") == "héllo wörld ✓");
  CHECK(file.get_string("empty_string") == "");
  CHECK(file.find("missing") == nullptr);
  CHECK_FALSE(file.get_int("missing").has_value());
  CHECK(file.tensors().empty());

  // Typed getters reject the wrong type, naming the file and the key.
  try {
    (void)file.get_string("u8");
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kFormat);
    CHECK_THAT(e.what(), Catch::Contains("mem.gguf@") && Catch::Contains("'u8'"));
  }
  CHECK_THROWS_AS(file.get_int("u64"), Error);  // does not fit in i64
  CHECK_THROWS_AS(file.get_bool("i8"), Error);
  CHECK_THROWS_AS(file.get_float("string"), Error);
  CHECK_THROWS_AS(file.get_string_array("string"), Error);
}

TEST_CASE("gguf round trip: arrays, nested arrays, display", "[format][gguf]") {
  GgufWriter writer;
  std::vector<GgufValue> strings;
  for (const char* s : {"a", "bc", "", "def"}) strings.push_back(GgufValue::make_string(s));
  writer.set("strings", GgufValue::make_array(GgufType::kString, strings));
  std::vector<GgufValue> ints;
  for (int k = -3; k < 3; ++k) ints.push_back(GgufValue::make_i32(k));
  writer.set("ints", GgufValue::make_array(GgufType::kI32, ints));
  std::vector<GgufValue> floats;
  for (int k = 0; k < 20; ++k) floats.push_back(GgufValue::make_f32(0.5f * static_cast<float>(k)));
  writer.set("floats", GgufValue::make_array(GgufType::kF32, floats));
  writer.set("empty", GgufValue::make_array(GgufType::kU8, {}));
  std::vector<GgufValue> bytes;
  for (int k = 0; k < 5; ++k) bytes.push_back(scalar(GgufType::kU8, static_cast<uint64_t>(k), 0));
  std::vector<GgufValue> inner = {GgufValue::make_array(GgufType::kU8, bytes),
                                  GgufValue::make_array(GgufType::kU8, {})};
  std::vector<GgufValue> outer = {GgufValue::make_array(GgufType::kArray, inner),
                                  GgufValue::make_array(GgufType::kArray, {})};
  writer.set("nested", GgufValue::make_array(GgufType::kArray, outer));
  std::vector<GgufValue> nested_strings = {GgufValue::make_array(GgufType::kString, strings)};
  writer.set("nested_strings", GgufValue::make_array(GgufType::kArray, nested_strings));
  writer.set("general.alignment", GgufValue::make_u32(64));
  const auto image = writer.serialize();
  const GgufFile file = parse_image(image);

  CHECK(file.alignment() == 64);
  const auto s = file.get_string_array("strings");
  REQUIRE(s.has_value());
  CHECK(*s == std::vector<std::string_view>{"a", "bc", "", "def"});
  CHECK(file.get_int_array("ints") == std::vector<int64_t>{-3, -2, -1, 0, 1, 2});
  const auto f = file.get_number_array("floats");
  REQUIRE(f.has_value());
  REQUIRE(f->size() == 20);
  CHECK((*f)[19] == 9.5);
  CHECK(file.get_int_array("empty")->empty());
  const GgufValue* nested = file.find("nested");
  REQUIRE(nested != nullptr);
  CHECK(nested->array_type == GgufType::kArray);
  REQUIRE(nested->array.size() == 2);
  REQUIRE(nested->array[0].array.size() == 2);
  CHECK(nested->array[0].array[0].array.size() == 5);
  CHECK(nested->array[0].array[0].array[4].u == 4);
  CHECK(nested->array[1].array.empty());
  CHECK(file.find("nested_strings")->array[0].array[3].text() == "def");
  CHECK(file.find("ints")->to_display() == "[-3, -2, -1, 0, 1, 2]");
  CHECK(file.find("floats")->to_display() == "[20 × f32]");
  CHECK(file.find("strings")->to_display() == R"(["a", "bc", "", "def"])");
  CHECK_THROWS_AS(file.get_int_array("strings"), Error);
  CHECK_THROWS_AS(file.get_string_array("ints"), Error);

  // A second serialization of the parsed values gives the same bytes.
  GgufWriter again;
  for (const auto& kv : file.metadata()) again.set(std::string(kv.key), kv.value);
  CHECK(again.serialize() == image);
}

TEST_CASE("gguf round trip: every dtype, offsets aligned", "[format][gguf]") {
  GgufWriter writer;
  writer.set("general.architecture", GgufValue::make_string("test"));
  std::vector<std::pair<std::string, std::vector<std::byte>>> expected;
  uint32_t seed = 1;
  for (uint32_t id = 0; id < 64; ++id) {
    const auto type = dtype_from_id(id);
    if (!type) continue;
    const auto info = *dtype_info(*type);
    const std::vector<int64_t> ne = {info.block_elements * 2, 3};
    const auto data = random_bytes(dtype_bytes(*type, ne[0] * ne[1]), seed++);
    const std::string name = "t." + std::string(info.name);
    writer.add_tensor(name, *type, ne, data);
    expected.emplace_back(name, data);
  }
  // A 1-D and a 4-D tensor.
  writer.add_tensor("one_d", DType::kF32, {5}, random_bytes(20, 99));
  writer.add_tensor("four_d", DType::kF16, {2, 3, 4, 5}, random_bytes(240, 98));
  REQUIRE(expected.size() == 20);

  const auto path = std::filesystem::temp_directory_path() / "polyinfer_gguf_roundtrip.gguf";
  writer.write(path);
  const GgufFile file = GgufFile::open(path);
  std::filesystem::remove(path);
  CHECK(file.name() == path.string());
  REQUIRE(file.tensors().size() == expected.size() + 2);
  CHECK(file.data_offset() % 32 == 0);
  for (const auto& [name, data] : expected) {
    const GgufTensor* t = file.find_tensor(name);
    REQUIRE(t != nullptr);
    INFO(name);
    CHECK(t->n_dims == 2);
    CHECK(t->offset % 32 == 0);
    CHECK(t->bytes == data.size());
    CHECK(std::memcmp(t->data, data.data(), data.size()) == 0);
    const TensorView view = t->view();
    CHECK(view.dtype == t->dtype);
    CHECK(view.shape == std::vector<int64_t>{3, t->ne[0]});
    CHECK(view.elements() == 3 * t->ne[0]);
    CHECK(view.bytes == data.size());
  }
  const GgufTensor* four = file.find_tensor("four_d");
  REQUIRE(four != nullptr);
  CHECK(four->shape() == std::vector<int64_t>{5, 4, 3, 2});
  CHECK(file.find_tensor("one_d")->shape() == std::vector<int64_t>{5});
  CHECK(file.find_tensor("nope") == nullptr);
}

TEST_CASE("gguf writer rejects bad tensors and values", "[format][gguf]") {
  GgufWriter writer;
  CHECK_THROWS_AS(writer.add_tensor("x", DType::kQ4_0, {16}, std::vector<std::byte>(9)), Error);
  CHECK_THROWS_AS(writer.add_tensor("x", DType::kF32, {4}, std::vector<std::byte>(15)), Error);
  CHECK_THROWS_AS(writer.add_tensor("x", DType::kF32, {0}, {}), Error);
  CHECK_THROWS_AS(writer.add_tensor("x", DType::kF32, {1, 1, 1, 1, 1}, std::vector<std::byte>(4)),
                  Error);
  CHECK_THROWS_AS(writer.add_tensor("x", static_cast<DType>(4), {1}, std::vector<std::byte>(4)),
                  Error);
  writer.add_tensor("x", DType::kF32, {1}, std::vector<std::byte>(4));
  CHECK_THROWS_AS(writer.add_tensor("x", DType::kF32, {1}, std::vector<std::byte>(4)), Error);
  writer.set("mixed", GgufValue::make_array(GgufType::kU32, {GgufValue::make_string("no")}));
  CHECK_THROWS_AS(writer.serialize(), Error);
  writer.set("mixed", GgufValue::make_u32(1));  // replaces the bad value
  writer.set("general.alignment", GgufValue::make_u32(24));
  CHECK_THROWS_AS(writer.serialize(), Error);
  writer.set("general.alignment", GgufValue::make_u32(16));
  const auto image = writer.serialize();
  const GgufFile file = GgufFile::parse(image.data(), image.size(), "w.gguf");
  CHECK(file.alignment() == 16);
  CHECK(file.metadata().size() == 2);
  CHECK_THROWS_AS(writer.write("/nonexistent-dir/x.gguf"), Error);
}

TEST_CASE("GgufValue helpers", "[format][gguf]") {
  const GgufValue s = GgufValue::make_string("abc");
  const GgufValue copy = s;  // text() stays valid after a copy
  CHECK(copy.text() == "abc");
  CHECK_FALSE(s.as_number().has_value());
  CHECK(GgufValue::make_i32(-4).as_int() == -4);
  CHECK(GgufValue::make_u64(UINT64_MAX).as_int() == std::nullopt);
  CHECK(GgufValue::make_u64(UINT64_MAX).as_number() == static_cast<double>(UINT64_MAX));
  CHECK(GgufValue::make_f32(0.5f).as_int() == std::nullopt);
  CHECK(GgufValue::make_f32(0.5f).as_number() == 0.5);
  CHECK(GgufValue::make_bool(true).to_display() == "true");
  CHECK(GgufValue::make_f32(1e-5f).to_display() == "1e-05");
  CHECK(gguf_type_name(GgufType::kString) == "string");
  CHECK(gguf_type_name(static_cast<GgufType>(99)) == "unknown");
}

}  // namespace polyinfer::detail
