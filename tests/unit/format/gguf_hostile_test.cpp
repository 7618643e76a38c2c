// SPDX-License-Identifier: Apache-2.0
// Hostile GGUF images: every malformation must throw polyinfer::Error naming the file, never crash.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <random>

#include "format/gguf.hpp"
#include "polyinfer/error.hpp"

namespace polyinfer::detail {
namespace {

constexpr const char* kName = "hostile.gguf";

/// Writes GGUF bytes field by field, so tests can put any value anywhere.
class Raw {
 public:
  Raw& bytes(std::string_view s) {
    for (const char c : s) out_.push_back(static_cast<std::byte>(c));
    return *this;
  }
  template <typename T>
  Raw& put(T value) {
    const auto* p = reinterpret_cast<const std::byte*>(&value);
    out_.insert(out_.end(), p, p + sizeof(T));
    return *this;
  }
  Raw& u32(uint32_t v) { return put(v); }
  Raw& u64(uint64_t v) { return put(v); }
  Raw& str(std::string_view s) { return u64(s.size()).bytes(s); }
  Raw& header(uint64_t tensors, uint64_t kvs, uint32_t version = 3) {
    return bytes("GGUF").u32(version).u64(tensors).u64(kvs);
  }
  Raw& kv_u32(std::string_view key, uint32_t v) { return str(key).u32(4).u32(v); }
  Raw& tensor(std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (const uint64_t d : ne) u64(d);
    return u32(type).u64(offset);
  }
  Raw& pad(size_t alignment = 32) {
    while (out_.size() % alignment != 0) out_.push_back(std::byte{0});
    return *this;
  }
  Raw& zeros(size_t count) {
    out_.insert(out_.end(), count, std::byte{0});
    return *this;
  }
  [[nodiscard]] const std::vector<std::byte>& image() const { return out_; }

 private:
  std::vector<std::byte> out_;
};

/// Parses and expects Error(kFormat) whose text names the file and contains `fragment`.
void expect_format_error(const std::vector<std::byte>& image, std::string_view fragment = "") {
  try {
    (void)GgufFile::parse(image.data(), image.size(), kName);
    FAIL("parse succeeded; expected an error containing '" << fragment << "'");
  } catch (const Error& e) {
    INFO(e.what());
    CHECK(e.code() == ErrorCode::kFormat);
    CHECK_THAT(e.what(), Catch::StartsWith(std::string(kName) + "@"));
    CHECK_THAT(e.what(), Catch::Contains(std::string(fragment)));
  }
}

/// A small valid file whose last tensor ends the file exactly (no trailing padding), so that
/// every strict prefix is invalid.
std::vector<std::byte> small_valid_file() {
  GgufWriter writer;
  writer.set("general.architecture", GgufValue::make_string("llama"));
  writer.set("count", GgufValue::make_u32(7));
  writer.set("list", GgufValue::make_array(GgufType::kString, {GgufValue::make_string("ab"),
                                                               GgufValue::make_string("c")}));
  writer.set("nested", GgufValue::make_array(
                           GgufType::kArray,
                           {GgufValue::make_array(GgufType::kI32, {GgufValue::make_i32(-1)})}));
  writer.add_tensor("a", DType::kQ8_0, {32, 1}, std::vector<std::byte>(34, std::byte{1}));
  writer.add_tensor("b", DType::kF32, {8, 4}, std::vector<std::byte>(128, std::byte{2}));
  return writer.serialize();
}

}  // namespace

TEST_CASE("gguf hostile: truncation at every byte", "[format][gguf][hostile]") {
  const auto image = small_valid_file();
  REQUIRE(image.size() % 32 == 0);
  const GgufFile whole = GgufFile::parse(image.data(), image.size(), kName);
  REQUIRE(whole.tensors().size() == 2);
  for (size_t size = 0; size < image.size(); ++size) {
    INFO("prefix of " << size << " bytes");
    const std::vector<std::byte> prefix(image.begin(), image.begin() + static_cast<long>(size));
    expect_format_error(prefix);
  }
}

TEST_CASE("gguf hostile: header", "[format][gguf][hostile]") {
  expect_format_error(Raw().bytes("GGML").u32(3).u64(0).u64(0).image(), "magic");
  expect_format_error(Raw().bytes("GGU").image(), "truncated");
  expect_format_error(Raw().header(0, 0, 1).image(), "version 1");
  expect_format_error(Raw().header(0, 0, 4).image(), "version 4");
  expect_format_error(Raw().header(0, 0, 0x03000000).image(), "big-endian");
  expect_format_error(Raw().header(0, UINT64_MAX).image(), "metadata count");
  expect_format_error(Raw().header(UINT64_MAX, 0).image(), "tensor count");
  expect_format_error(Raw().header(1000, 0).zeros(100).image(), "tensor count");
  // Version 2 is accepted.
  const auto v2 = Raw().header(0, 1, 2).kv_u32("k", 1).image();
  CHECK(GgufFile::parse(v2.data(), v2.size(), kName).version() == 2);
}

TEST_CASE("gguf hostile: metadata", "[format][gguf][hostile]") {
  // Key length far past the end.
  expect_format_error(Raw().header(0, 1).u64(UINT64_MAX).zeros(16).image(), "string length");
  expect_format_error(Raw().header(0, 1).u64(1000).bytes("abc").u32(4).u32(0).image(),
                      "string length");
  // Unknown value type.
  expect_format_error(Raw().header(0, 1).str("k").u32(13).u32(0).image(), "unknown value type");
  // String value length past the end.
  expect_format_error(Raw().header(0, 1).str("k").u32(8).u64(1ULL << 62).image(), "string length");
  // Array counts that cannot fit, for fixed-size, string and array elements.
  expect_format_error(Raw().header(0, 1).str("k").u32(9).u32(0).u64(1ULL << 40).image(), "array");
  expect_format_error(Raw().header(0, 1).str("k").u32(9).u32(8).u64(UINT64_MAX).image(), "array");
  expect_format_error(Raw().header(0, 1).str("k").u32(9).u32(9).u64(1ULL << 33).zeros(64).image(),
                      "array");
  expect_format_error(
      Raw().header(0, 1).str("k").u32(9).u32(8).u64(2).str("hello").zeros(3).image(), "truncated");
  // Unknown array element type.
  expect_format_error(Raw().header(0, 1).str("k").u32(9).u32(77).u64(1).image(),
                      "unknown value type");
  // Arrays nested without end.
  Raw deep;
  deep.header(0, 1).str("k").u32(9);
  for (int d = 0; d < 2000; ++d) deep.u32(9).u64(1);
  deep.u32(0).u64(0);
  expect_format_error(deep.image(), "nested");
  // Duplicate keys.
  expect_format_error(Raw().header(0, 2).kv_u32("k", 1).kv_u32("k", 2).image(), "duplicate");
  // general.alignment: wrong type, zero, not a power of two.
  expect_format_error(Raw().header(0, 1).str("general.alignment").u32(10).u64(32).image(),
                      "general.alignment");
  expect_format_error(Raw().header(0, 1).kv_u32("general.alignment", 0).image(), "power of two");
  expect_format_error(Raw().header(0, 1).kv_u32("general.alignment", 48).image(), "power of two");
}

TEST_CASE("gguf hostile: tensor infos", "[format][gguf][hostile]") {
  const auto one_tensor = [](std::vector<uint64_t> ne, uint32_t type, uint64_t offset,
                             size_t data_bytes) {
    Raw raw;
    raw.header(1, 0).tensor("t", std::move(ne), type, offset).pad().zeros(data_bytes);
    return raw.image();
  };
  // A valid one first, so the failures below are about the field under test.
  const auto ok = one_tensor({4, 2}, 0, 0, 32);
  CHECK(GgufFile::parse(ok.data(), ok.size(), kName).tensors()[0].bytes == 32);

  expect_format_error(one_tensor({1, 1, 1, 1, 1}, 0, 0, 32), "dimensions");
  expect_format_error(Raw().header(1, 0).str("t").u32(UINT32_MAX).zeros(64).image(), "dimensions");
  expect_format_error(one_tensor({4, 0}, 0, 0, 32), "invalid dimension");
  expect_format_error(one_tensor({1ULL << 63, 1}, 0, 0, 32), "invalid dimension");
  expect_format_error(one_tensor({1ULL << 40, 1ULL << 40}, 0, 0, 32), "overflows");
  expect_format_error(one_tensor({1ULL << 62, 1}, 0, 0, 32), "byte size overflows");
  expect_format_error(one_tensor({1ULL << 61, 1}, 0, 0, 32), "past the end");
  expect_format_error(one_tensor({4, 2}, 4, 0, 32), "unknown type id 4");
  expect_format_error(one_tensor({4, 2}, 99, 0, 32), "unknown type id 99");
  expect_format_error(one_tensor({4, 2}, UINT32_MAX, 0, 32), "unknown type id");
  expect_format_error(one_tensor({16, 2}, 2, 0, 32), "block size");  // q4_0 needs 32
  expect_format_error(one_tensor({4, 2}, 0, 8, 64), "alignment");
  expect_format_error(one_tensor({4, 2}, 0, 32, 32), "past the end");
  expect_format_error(one_tensor({4, 2}, 0, 0, 31), "past the end");
  expect_format_error(one_tensor({4, 2}, 0, UINT64_MAX - 31, 32), "past the end");
  expect_format_error(one_tensor({4, 2}, 0, 1ULL << 63, 32), "past the end");
  expect_format_error(Raw().header(1, 0).str("t").u32(1).u64(4).u32(0).image(), "truncated");

  // Two tensors: overlapping, duplicate names, disjoint (fine).
  const auto two = [](std::string_view a, uint64_t offset_a, std::string_view b,
                      uint64_t offset_b) {
    Raw raw;
    raw.header(2, 0).tensor(a, {16}, 0, offset_a).tensor(b, {16}, 0, offset_b).pad().zeros(256);
    return raw.image();
  };
  expect_format_error(two("a", 0, "b", 32), "overlaps");
  expect_format_error(two("a", 64, "b", 32), "overlaps");
  expect_format_error(two("a", 0, "b", 0), "overlaps");
  expect_format_error(two("a", 0, "a", 64), "duplicate tensor name");
  const auto fine = two("a", 64, "b", 0);
  const GgufFile file = GgufFile::parse(fine.data(), fine.size(), kName);
  CHECK(file.find_tensor("a")->data == fine.data() + file.data_offset() + 64);
}

TEST_CASE("gguf hostile: names in messages are escaped and shortened", "[format][gguf][hostile]") {
  const std::string name = std::string(1, '\x01') + "bad" + std::string(1000, 'n');
  const auto image = Raw().header(1, 0).tensor(name, {4}, 99, 0).pad().zeros(32).image();
  try {
    (void)GgufFile::parse(image.data(), image.size(), kName);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("'\\x01bad") && Catch::Contains("unknown type id 99"));
    CHECK(std::string(e.what()).size() < 200);
  }
}

TEST_CASE("gguf hostile: random mutations never crash", "[format][gguf][hostile]") {
  const auto image = small_valid_file();
  std::mt19937 rng(12345);
  int parsed = 0;
  int rejected = 0;
  for (int iteration = 0; iteration < 20000; ++iteration) {
    auto mutated = image;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % mutated.size();
      switch (rng() % 3) {
        case 0:
          mutated[at] = static_cast<std::byte>(rng() & 0xFF);
          break;
        case 1:
          mutated[at] ^= static_cast<std::byte>(1u << (rng() % 8));
          break;
        default:
          mutated[at] = std::byte{0xFF};
          break;
      }
    }
    if (rng() % 8 == 0) mutated.resize(rng() % mutated.size());
    try {
      const GgufFile file = GgufFile::parse(mutated.data(), mutated.size(), kName);
      for (const auto& kv : file.metadata()) (void)kv.value.to_display();
      for (const auto& t : file.tensors()) {
        REQUIRE(t.data >= mutated.data());
        REQUIRE(t.data + t.bytes <= mutated.data() + mutated.size());
      }
      ++parsed;
    } catch (const Error& e) {
      REQUIRE_THAT(e.what(), Catch::StartsWith(std::string(kName) + "@"));
      ++rejected;
    }
  }
  CHECK(parsed > 0);
  CHECK(rejected > 0);
}

TEST_CASE("gguf open: missing file and directories are I/O errors", "[format][gguf]") {
  try {
    (void)GgufFile::open("/nonexistent/model.gguf");
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kIo);
    CHECK_THAT(e.what(), Catch::Contains("/nonexistent/model.gguf"));
  }
  CHECK_THROWS_AS(GgufFile::open(std::filesystem::temp_directory_path()), Error);
}

}  // namespace polyinfer::detail
