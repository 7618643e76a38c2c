// SPDX-License-Identifier: Apache-2.0
// safetensors reader (one file, memory-mapped or in memory) and sharded sets (index.json).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/mapped_file.hpp"
#include "polyinfer/tensor.hpp"

namespace polyinfer::inline v0::detail {

/// Element types of the safetensors format (the spelling in the header is upper case).
enum class SafetensorsDType {
  kBool,
  kU8,
  kI8,
  kU16,
  kI16,
  kF16,
  kBF16,
  kU32,
  kI32,
  kF32,
  kU64,
  kI64,
  kF64,
};

/// Bytes per element (1 for BOOL).
[[nodiscard]] int64_t safetensors_element_bytes(SafetensorsDType type) noexcept;
/// Header spelling: "F32", "BF16", "BOOL", …
[[nodiscard]] std::string_view safetensors_dtype_name(SafetensorsDType type) noexcept;
/// Parses the header spelling; nullopt for names the format does not define here.
[[nodiscard]] std::optional<SafetensorsDType> safetensors_dtype_from_name(
    std::string_view name) noexcept;
/// The polyinfer DType of the same layout; nullopt for unsigned and boolean types.
[[nodiscard]] std::optional<DType> to_dtype(SafetensorsDType type) noexcept;

/// One tensor of a safetensors file: name, type, shape (row-major) and its bytes in the image.
struct SafetensorsTensor {
  std::string name;
  SafetensorsDType dtype = SafetensorsDType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  ///< data_offsets[0], relative to the start of the data section
  uint64_t end = 0;    ///< data_offsets[1]
  const std::byte* data = nullptr;

  [[nodiscard]] uint64_t bytes() const noexcept { return end - begin; }
  /// Number of elements (1 for a scalar).
  [[nodiscard]] int64_t elements() const noexcept;
};

/// A safetensors file: 8-byte little-endian header length, a JSON header, raw data.
/// Parsing checks the header length against the file, every entry's dtype, shape and
/// data_offsets (in bounds, begin <= end, size == elements × element size without overflow)
/// and that no two tensors overlap. Violations throw Error(kFormat) with where
/// "<file>@<offset>" (structure) or "<file>: <tensor>" (an entry). Immutable after parsing.
///
///   auto file = SafetensorsFile::open("model.safetensors");
///   const SafetensorsTensor* t = file.find("model.norm.weight");
class SafetensorsFile {
 public:
  /// Maps and parses a file; Error(kIo) when it cannot be read.
  [[nodiscard]] static SafetensorsFile open(const std::filesystem::path& path);
  /// Parses an image held in memory (fuzzing, tests); `name` is used in errors. The bytes
  /// must outlive the returned object.
  [[nodiscard]] static SafetensorsFile parse(const std::byte* data, uint64_t size,
                                             std::string name);

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  /// Tensors in data order (by data_offsets).
  [[nodiscard]] const std::vector<SafetensorsTensor>& tensors() const noexcept { return tensors_; }
  /// The `__metadata__` entries (string values; other JSON values as their JSON text).
  [[nodiscard]] const std::vector<std::pair<std::string, std::string>>& metadata() const noexcept {
    return metadata_;
  }
  /// Byte offset of the data section (8 + header length).
  [[nodiscard]] uint64_t data_offset() const noexcept { return data_offset_; }
  [[nodiscard]] const SafetensorsTensor* find(std::string_view tensor_name) const noexcept;

 private:
  SafetensorsFile() = default;
  void parse_image(const std::byte* data, uint64_t size);

  std::shared_ptr<const MappedFile> map_;  // null for parse()
  std::string name_;
  uint64_t data_offset_ = 0;
  std::vector<SafetensorsTensor> tensors_;
  std::vector<std::pair<std::string, std::string>> metadata_;
  std::map<std::string, size_t, std::less<>> index_;
};

/// Parses model.safetensors.index.json text: tensor name → shard file name (weight_map).
/// Shard names must be plain file names (no folders, no ".."). Error(kFormat) naming `where`.
[[nodiscard]] std::vector<std::pair<std::string, std::string>> parse_safetensors_index(
    std::string_view json_text, const std::string& where);

/// The weights of a Hugging Face folder: model.safetensors, or the shards listed by
/// model.safetensors.index.json. Every tensor name is unique across the set.
class SafetensorsSet {
 public:
  /// A tensor and the shard that holds it.
  struct Entry {
    const SafetensorsTensor* tensor = nullptr;
    const SafetensorsFile* shard = nullptr;
  };

  /// Opens the weights of `folder`; Error(kNotFound) when it has neither file.
  [[nodiscard]] static SafetensorsSet open_folder(const std::filesystem::path& folder);
  /// A set of one file.
  [[nodiscard]] static SafetensorsSet from_file(SafetensorsFile file);

  /// Every tensor, shard by shard, each shard in data order.
  [[nodiscard]] const std::vector<Entry>& entries() const noexcept { return entries_; }
  [[nodiscard]] const Entry* find(std::string_view tensor_name) const noexcept;
  [[nodiscard]] const std::vector<std::unique_ptr<SafetensorsFile>>& shards() const noexcept {
    return shards_;
  }

 private:
  void index_entries(const std::string& where);

  std::vector<std::unique_ptr<SafetensorsFile>> shards_;  // stable addresses for entries_
  std::vector<Entry> entries_;
  std::map<std::string, size_t, std::less<>> index_;
};

}  // namespace polyinfer::inline v0::detail
