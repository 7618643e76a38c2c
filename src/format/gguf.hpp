// SPDX-License-Identifier: Apache-2.0
// GGUF (version 2 and 3) reader over a memory map, and a writer.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/mapped_file.hpp"
#include "polyinfer/tensor.hpp"

namespace polyinfer::inline v0::detail {

/// GGUF metadata value types (gguf_type).
enum class GgufType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

/// "u8", "string", "array", …
[[nodiscard]] std::string_view gguf_type_name(GgufType type) noexcept;

/// One metadata value. Scalars are widened (unsigned → `u`, signed → `i`, floats → `f`);
/// strings point into the mapped file (owned strings, for values built to write, in `owned`).
/// Arrays hold their elements in `array`; nested arrays are allowed.
struct GgufValue {
  GgufType type = GgufType::kU8;
  GgufType array_type = GgufType::kU8;  ///< element type when type == kArray
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string_view str;
  std::string owned;  ///< backing store for `str` in values built by hand (writer side)
  std::vector<GgufValue> array;

  /// Numeric value as a double (any integer or float type); nullopt otherwise.
  [[nodiscard]] std::optional<double> as_number() const noexcept;
  /// Value as a signed integer when it is an integer type that fits; nullopt otherwise.
  [[nodiscard]] std::optional<int64_t> as_int() const noexcept;
  /// Printable form, long arrays summarised ("[32000 × string]").
  [[nodiscard]] std::string to_display(size_t max_items = 8) const;
  /// The string value: `owned` when set (values built by hand, safe after copies), else `str`.
  [[nodiscard]] std::string_view text() const noexcept {
    return owned.empty() ? str : std::string_view(owned);
  }

  static GgufValue make_string(std::string s);
  static GgufValue make_u32(uint32_t v);
  static GgufValue make_i32(int32_t v);
  static GgufValue make_u64(uint64_t v);
  static GgufValue make_f32(float v);
  static GgufValue make_bool(bool v);
  static GgufValue make_array(GgufType element_type, std::vector<GgufValue> items);
};

struct GgufKeyValue {
  std::string_view key;
  GgufValue value;
};

/// One tensor's description and its bytes inside the map. `ne` is in ggml order (ne[0] is the
/// innermost, contiguous dimension); `shape()` gives row-major outermost-first.
struct GgufTensor {
  std::string_view name;
  DType dtype = DType::kF32;
  uint32_t n_dims = 0;
  std::array<int64_t, 4> ne{1, 1, 1, 1};
  uint64_t offset = 0;  ///< relative to the start of the data section
  const std::byte* data = nullptr;
  uint64_t bytes = 0;

  [[nodiscard]] std::vector<int64_t> shape() const;
  [[nodiscard]] TensorView view() const;
};

/// A GGUF file opened by mmap. Parsing validates everything it touches: magic, version,
/// counts against the file size, string lengths, value types, tensor dims, types, offsets
/// (aligned, in bounds, not overlapping). Any violation throws Error(kFormat) naming the file
/// and the byte offset ("model.gguf@1234: …"). Counts and lengths are checked against the bytes
/// left before anything is allocated; arrays nest at most 16 deep and hold at most 2^22
/// elements in all, so a hostile file cannot make the parser recurse or allocate without bound.
/// Immutable after open; copies share the map.
class GgufFile {
 public:
  [[nodiscard]] static GgufFile open(const std::filesystem::path& path);
  /// Parses a GGUF image held in memory (fuzzing, tests); `name` is used in errors. The bytes
  /// must outlive the returned object.
  [[nodiscard]] static GgufFile parse(const std::byte* data, uint64_t size, std::string name);

  [[nodiscard]] uint32_t version() const noexcept { return version_; }
  [[nodiscard]] uint64_t alignment() const noexcept { return alignment_; }
  [[nodiscard]] uint64_t data_offset() const noexcept { return data_offset_; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] const std::vector<GgufKeyValue>& metadata() const noexcept { return kv_; }
  [[nodiscard]] const std::vector<GgufTensor>& tensors() const noexcept { return tensors_; }

  [[nodiscard]] const GgufValue* find(std::string_view key) const noexcept;
  [[nodiscard]] const GgufTensor* find_tensor(std::string_view name) const noexcept;

  // Typed look-ups: nullopt when absent; Error(kFormat) naming the key when present with an
  // incompatible type.
  [[nodiscard]] std::optional<std::string_view> get_string(std::string_view key) const;
  [[nodiscard]] std::optional<int64_t> get_int(std::string_view key) const;
  [[nodiscard]] std::optional<double> get_float(std::string_view key) const;
  [[nodiscard]] std::optional<bool> get_bool(std::string_view key) const;
  /// Array of strings / numbers; nullopt when absent.
  [[nodiscard]] std::optional<std::vector<std::string_view>> get_string_array(
      std::string_view key) const;
  [[nodiscard]] std::optional<std::vector<double>> get_number_array(std::string_view key) const;
  [[nodiscard]] std::optional<std::vector<int64_t>> get_int_array(std::string_view key) const;

 private:
  GgufFile() = default;
  friend class GgufParser;
  [[nodiscard]] const GgufValue* find_typed(std::string_view key, size_t* index) const noexcept;
  [[noreturn]] void fail_type(size_t index, std::string_view expected) const;
  std::shared_ptr<MappedFile> map_;  // null for parse()
  std::string name_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufKeyValue> kv_;
  std::vector<uint64_t> kv_offsets_;  // byte offset of each key, for errors in typed getters
  std::vector<GgufTensor> tensors_;
  std::unordered_map<std::string_view, size_t> kv_index_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

/// Builds a GGUF v3 file: metadata in insertion order, tensors aligned to `general.alignment`
/// (32 unless set).
class GgufWriter {
 public:
  /// Sets a metadata value, replacing an earlier one of the same key (its position is kept).
  /// Unsigned types are written from `u`, signed from `i`, floats from `f`, strings from text().
  void set(std::string key, GgufValue value);
  /// Adds a tensor; `ne` in ggml order; `data` must hold dtype_bytes(dtype, elements) bytes.
  /// Throws Error(kInvalidArgument) for bad shapes, sizes or a duplicate name.
  void add_tensor(std::string name, DType dtype, std::vector<int64_t> ne,
                  std::vector<std::byte> data);
  /// Writes the file; throws Error(kIo) naming the file.
  void write(const std::filesystem::path& path) const;
  /// The file image in memory; throws Error(kInvalidArgument) for a malformed value (array
  /// elements of another type than declared, general.alignment not a u32 power of two).
  [[nodiscard]] std::vector<std::byte> serialize() const;

  // Streaming: tensors whose bytes are produced while the file is written, so that a file
  // larger than memory can be made (write() and serialize() refuse declared tensors).

  /// Receives the bytes of one tensor, in order, in pieces of any size.
  using TensorSink = std::function<void(std::span<const std::byte>)>;
  /// Writes the bytes of the declared tensor `index` (position among all tensors) into `sink`.
  using TensorProducer = std::function<void(size_t index, const TensorSink& sink)>;

  /// Declares a tensor whose bytes come later from write_streaming's producer; nothing is held.
  /// Same checks as add_tensor (except the data size).
  void declare_tensor(std::string name, DType dtype, std::vector<int64_t> ne);
  /// Writes the header, then each tensor's bytes in order: from memory for add_tensor, from
  /// `produce` for declare_tensor. Error(kInvalidArgument) when a producer delivers another
  /// number of bytes than the tensor takes, Error(kIo) naming the file; a partly written file
  /// is removed before the error (or the producer's exception) propagates.
  ///
  ///   writer.declare_tensor("w", DType::kQ8_0, {4096, 4096});
  ///   writer.write_streaming("big.gguf", [&](size_t, const auto& sink) { sink(bytes); });
  void write_streaming(const std::filesystem::path& path, const TensorProducer& produce) const;
  /// Number of tensors added or declared.
  [[nodiscard]] size_t tensor_count() const noexcept { return tensors_.size(); }

 private:
  struct Tensor {
    std::string name;
    DType dtype;
    std::vector<int64_t> ne;
    std::vector<std::byte> data;
    uint64_t bytes = 0;     ///< size of the tensor's data (data.size() unless streamed)
    bool streamed = false;  ///< declared: bytes come from write_streaming's producer
  };
  void check_new_tensor(const std::string& name, DType dtype, const std::vector<int64_t>& ne,
                        uint64_t* bytes) const;
  [[nodiscard]] uint64_t alignment() const;
  void serialize_header(std::vector<std::byte>& out, uint64_t alignment) const;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace polyinfer::inline v0::detail
