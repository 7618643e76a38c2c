// SPDX-License-Identifier: Apache-2.0
// safetensors reader: header parsing and validation, single files and sharded sets.
#include "format/safetensors.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <set>
#include <system_error>

#include "common/fail.hpp"
#include "format/json_text.hpp"

namespace polyinfer::inline v0::detail {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

/// The reference implementation refuses headers above 100 MB; so do we.
constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;

struct DTypeRow {
  SafetensorsDType type;
  std::string_view name;
  int64_t bytes;
  std::optional<DType> dtype;
};

constexpr std::array<DTypeRow, 13> kDTypes{{
    {SafetensorsDType::kBool, "BOOL", 1, std::nullopt},
    {SafetensorsDType::kU8, "U8", 1, std::nullopt},
    {SafetensorsDType::kI8, "I8", 1, DType::kI8},
    {SafetensorsDType::kU16, "U16", 2, std::nullopt},
    {SafetensorsDType::kI16, "I16", 2, DType::kI16},
    {SafetensorsDType::kF16, "F16", 2, DType::kF16},
    {SafetensorsDType::kBF16, "BF16", 2, DType::kBF16},
    {SafetensorsDType::kU32, "U32", 4, std::nullopt},
    {SafetensorsDType::kI32, "I32", 4, DType::kI32},
    {SafetensorsDType::kF32, "F32", 4, DType::kF32},
    {SafetensorsDType::kU64, "U64", 8, std::nullopt},
    {SafetensorsDType::kI64, "I64", 8, DType::kI64},
    {SafetensorsDType::kF64, "F64", 8, DType::kF64},
}};

const DTypeRow& row_of(SafetensorsDType type) noexcept {
  return kDTypes[static_cast<size_t>(type)];
}

/// A non-negative JSON integer that fits int64, else nullopt.
std::optional<uint64_t> as_size(const Json& value) {
  if (!value.is_number_unsigned()) return std::nullopt;
  const auto v = value.get<uint64_t>();
  if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return v;
}

SafetensorsTensor parse_entry(const std::string& key, const Json& entry, const std::string& file) {
  const std::string where = file + ": " + key;
  if (!entry.is_object())
    fail(ErrorCode::kFormat, where, "entry is a {}, not an object", json_type_name(entry));
  SafetensorsTensor tensor;
  tensor.name = key;

  const auto dtype_it = entry.find("dtype");
  if (dtype_it == entry.end() || !dtype_it->is_string()) {
    fail(ErrorCode::kFormat, where, "missing or non-string \"dtype\"");
  }
  const auto dtype = safetensors_dtype_from_name(dtype_it->get_ref<const std::string&>());
  if (!dtype) {
    fail(ErrorCode::kUnsupported, where, "unknown dtype \"{}\"",
         dtype_it->get_ref<const std::string&>());
  }
  tensor.dtype = *dtype;

  const auto shape_it = entry.find("shape");
  if (shape_it == entry.end() || !shape_it->is_array()) {
    fail(ErrorCode::kFormat, where, "missing or non-array \"shape\"");
  }
  // Overflow-safe element count: stop as soon as the byte size passes any possible file.
  uint64_t bytes = static_cast<uint64_t>(row_of(tensor.dtype).bytes);
  for (const Json& dim : *shape_it) {
    const auto size = as_size(dim);
    if (!size) fail(ErrorCode::kFormat, where, "shape holds {}, not a size", dim.dump());
    tensor.shape.push_back(static_cast<int64_t>(*size));
    if (__builtin_mul_overflow(bytes, *size, &bytes)) {
      fail(ErrorCode::kFormat, where, "shape {} overflows", shape_it->dump());
    }
  }

  const auto offsets_it = entry.find("data_offsets");
  if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2) {
    fail(ErrorCode::kFormat, where, "missing \"data_offsets\" [begin, end]");
  }
  const auto begin = as_size((*offsets_it)[0]);
  const auto end = as_size((*offsets_it)[1]);
  if (!begin || !end) {
    fail(ErrorCode::kFormat, where, "data_offsets {} are not sizes", offsets_it->dump());
  }
  if (*begin > *end) {
    fail(ErrorCode::kFormat, where, "data_offsets begin {} > end {}", *begin, *end);
  }
  tensor.begin = *begin;
  tensor.end = *end;
  if (tensor.end - tensor.begin != bytes) {
    fail(ErrorCode::kFormat, where, "{} bytes stored, shape {} of {} needs {}",
         tensor.end - tensor.begin, shape_it->dump(), row_of(tensor.dtype).name, bytes);
  }
  return tensor;
}

}  // namespace

int64_t safetensors_element_bytes(SafetensorsDType type) noexcept {
  return row_of(type).bytes;
}

std::string_view safetensors_dtype_name(SafetensorsDType type) noexcept {
  return row_of(type).name;
}

std::optional<SafetensorsDType> safetensors_dtype_from_name(std::string_view name) noexcept {
  for (const DTypeRow& row : kDTypes) {
    if (row.name == name) return row.type;
  }
  return std::nullopt;
}

std::optional<DType> to_dtype(SafetensorsDType type) noexcept {
  return row_of(type).dtype;
}

int64_t SafetensorsTensor::elements() const noexcept {
  int64_t count = 1;
  for (const int64_t dim : shape) count *= dim;
  return count;
}

SafetensorsFile SafetensorsFile::open(const fs::path& path) {
  SafetensorsFile file;
  auto map = std::make_shared<const MappedFile>(path);
  file.name_ = path.string();
  file.parse_image(map->data(), map->size());
  file.map_ = std::move(map);
  return file;
}

SafetensorsFile SafetensorsFile::parse(const std::byte* data, uint64_t size, std::string name) {
  SafetensorsFile file;
  file.name_ = std::move(name);
  file.parse_image(data, size);
  return file;
}

void SafetensorsFile::parse_image(const std::byte* data, uint64_t size) {
  if (size < 8) {
    fail(ErrorCode::kFormat, name_ + "@0", "file of {} bytes is too short for a header length",
         size);
  }
  uint8_t length_bytes[8];
  std::memcpy(length_bytes, data, 8);
  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | length_bytes[i];
  if (header_bytes > size - 8) {
    fail(ErrorCode::kFormat, name_ + "@0", "header length {} runs past the end ({} bytes)",
         header_bytes, size);
  }
  if (header_bytes > kMaxHeaderBytes) {
    fail(ErrorCode::kFormat, name_ + "@0", "header length {} exceeds {}", header_bytes,
         kMaxHeaderBytes);
  }
  data_offset_ = 8 + header_bytes;
  const uint64_t data_bytes = size - data_offset_;

  const std::string_view text(reinterpret_cast<const char*>(data) + 8, header_bytes);
  const Json header = parse_json(text, name_, 8);
  if (!header.is_object()) {
    fail(ErrorCode::kFormat, name_ + "@8", "header is a {}, not an object", json_type_name(header));
  }

  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) {
        fail(ErrorCode::kFormat, name_ + ": __metadata__", "is a {}, not an object",
             json_type_name(value));
      }
      for (const auto& [meta_key, meta_value] : value.items()) {
        metadata_.emplace_back(
            meta_key, meta_value.is_string() ? meta_value.get<std::string>() : meta_value.dump());
      }
      continue;
    }
    SafetensorsTensor tensor = parse_entry(key, value, name_);
    if (tensor.end > data_bytes) {
      fail(ErrorCode::kFormat, name_ + ": " + key,
           "data_offsets end {} past the data section ({} bytes at offset {})", tensor.end,
           data_bytes, data_offset_);
    }
    tensor.data = data + data_offset_ + tensor.begin;
    tensors_.push_back(std::move(tensor));
  }

  std::stable_sort(tensors_.begin(), tensors_.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // Sorted by begin: a tensor overlaps another exactly when it starts before the furthest end
  // seen so far (empty tensors take no bytes and overlap nothing).
  uint64_t furthest_end = 0;
  const SafetensorsTensor* furthest = nullptr;
  for (const SafetensorsTensor& tensor : tensors_) {
    if (tensor.bytes() == 0) continue;
    if (furthest != nullptr && tensor.begin < furthest_end) {
      fail(ErrorCode::kFormat, name_ + ": " + tensor.name,
           "bytes [{}, {}) overlap tensor {} [{}, {})", tensor.begin, tensor.end, furthest->name,
           furthest->begin, furthest->end);
    }
    furthest_end = tensor.end;
    furthest = &tensor;
  }
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view tensor_name) const noexcept {
  const auto it = index_.find(tensor_name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

std::vector<std::pair<std::string, std::string>> parse_safetensors_index(std::string_view json_text,
                                                                         const std::string& where) {
  const Json index = parse_json(json_text, where);
  if (!index.is_object()) {
    fail(ErrorCode::kFormat, where, "is a {}, not an object", json_type_name(index));
  }
  const auto map_it = index.find("weight_map");
  if (map_it == index.end() || !map_it->is_object()) {
    fail(ErrorCode::kFormat, where + ": weight_map", "missing or not an object");
  }
  std::vector<std::pair<std::string, std::string>> result;
  for (const auto& [tensor, shard] : map_it->items()) {
    if (!shard.is_string()) {
      fail(ErrorCode::kFormat, where + ": weight_map." + tensor, "shard is a {}, not a string",
           json_type_name(shard));
    }
    const auto& file = shard.get_ref<const std::string&>();
    if (file.empty() || file == "." || file == ".." || file.find('/') != std::string::npos ||
        file.find('\\') != std::string::npos) {
      fail(ErrorCode::kFormat, where + ": weight_map." + tensor,
           "shard \"{}\" is not a plain file name", file);
    }
    result.emplace_back(tensor, file);
  }
  return result;
}

SafetensorsSet SafetensorsSet::from_file(SafetensorsFile file) {
  SafetensorsSet set;
  set.shards_.push_back(std::make_unique<SafetensorsFile>(std::move(file)));
  set.index_entries(set.shards_.front()->name());
  return set;
}

SafetensorsSet SafetensorsSet::open_folder(const fs::path& folder) {
  std::error_code ec;
  const fs::path index_path = folder / "model.safetensors.index.json";
  if (!fs::is_regular_file(index_path, ec)) {
    const fs::path single = folder / "model.safetensors";
    if (!fs::is_regular_file(single, ec)) {
      fail(ErrorCode::kNotFound, folder.string(),
           "no model.safetensors or model.safetensors.index.json (only safetensors weights are "
           "supported)");
    }
    return from_file(SafetensorsFile::open(single));
  }

  const std::string where = index_path.string();
  const auto weight_map = parse_safetensors_index(read_text_file(index_path), where);
  std::set<std::string> shard_names;
  for (const auto& entry : weight_map) shard_names.insert(entry.second);
  if (shard_names.empty()) fail(ErrorCode::kFormat, where + ": weight_map", "lists no tensors");

  SafetensorsSet set;
  std::map<std::string, const SafetensorsFile*, std::less<>> by_name;
  for (const std::string& shard : shard_names) {
    const fs::path shard_path = folder / shard;
    if (!fs::is_regular_file(shard_path, ec)) {
      fail(ErrorCode::kNotFound, where, "shard {} is missing", shard_path.string());
    }
    set.shards_.push_back(std::make_unique<SafetensorsFile>(SafetensorsFile::open(shard_path)));
    by_name.emplace(shard, set.shards_.back().get());
  }
  for (const auto& [tensor, shard] : weight_map) {
    if (by_name.at(shard)->find(tensor) == nullptr) {
      fail(ErrorCode::kFormat, where + ": " + tensor, "not found in shard {}", shard);
    }
  }
  set.index_entries(where);
  return set;
}

void SafetensorsSet::index_entries(const std::string& where) {
  for (const auto& shard : shards_) {
    for (const SafetensorsTensor& tensor : shard->tensors()) {
      const auto [it, inserted] = index_.emplace(tensor.name, entries_.size());
      if (!inserted) {
        fail(ErrorCode::kFormat, where + ": " + tensor.name, "stored in both {} and {}",
             entries_[it->second].shard->name(), shard->name());
      }
      entries_.push_back({&tensor, shard.get()});
    }
  }
}

const SafetensorsSet::Entry* SafetensorsSet::find(std::string_view tensor_name) const noexcept {
  const auto it = index_.find(tensor_name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

}  // namespace polyinfer::inline v0::detail
