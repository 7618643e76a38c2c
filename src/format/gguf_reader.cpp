// SPDX-License-Identifier: Apache-2.0
// GGUF reader: validates a whole GGUF v2/v3 image (metadata, tensor infos, data layout).
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "common/fail.hpp"
#include "format/gguf.hpp"

namespace polyinfer::inline v0::detail {

namespace {

constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS
// Nested arrays cost 12 bytes each; without a bound a small file could exhaust the stack.
constexpr int kMaxArrayDepth = 16;
// Every array element becomes a GgufValue (~112 bytes); this caps what a file can make us hold
// (real vocabularies have a few 10^5 elements per array).
constexpr uint64_t kMaxArrayElements = uint64_t{1} << 22;

// Smallest encoding of one value of each type: scalars their size, strings their length field,
// arrays their element type and count.
uint64_t min_encoded_bytes(GgufType type) {
  switch (type) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kBool:
      return 1;
    case GgufType::kU16:
    case GgufType::kI16:
      return 2;
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kF32:
      return 4;
    case GgufType::kU64:
    case GgufType::kI64:
    case GgufType::kF64:
    case GgufType::kString:
      return 8;
    case GgufType::kArray:
      return 12;
  }
  return 1;
}

bool known_type(uint32_t raw) {
  return raw <= static_cast<uint32_t>(GgufType::kF64);
}

bool is_unsigned(GgufType t) {
  return t == GgufType::kU8 || t == GgufType::kU16 || t == GgufType::kU32 || t == GgufType::kU64;
}
bool is_signed(GgufType t) {
  return t == GgufType::kI8 || t == GgufType::kI16 || t == GgufType::kI32 || t == GgufType::kI64;
}
bool is_float(GgufType t) {
  return t == GgufType::kF32 || t == GgufType::kF64;
}

// A key or tensor name as it appears in messages: at most 80 bytes, control bytes escaped
// (names come from the file and may be long or binary).
std::string shown(std::string_view name) {
  std::string out;
  for (const char c : name.substr(0, 80)) {
    const auto byte = static_cast<unsigned char>(c);
    out += byte < 0x20 || byte == 0x7F ? fmt::format("\\x{:02x}", byte) : std::string(1, c);
  }
  return name.size() > 80 ? out + "…" : out;
}

}  // namespace

std::string_view gguf_type_name(GgufType type) noexcept {
  switch (type) {
    case GgufType::kU8:
      return "u8";
    case GgufType::kI8:
      return "i8";
    case GgufType::kU16:
      return "u16";
    case GgufType::kI16:
      return "i16";
    case GgufType::kU32:
      return "u32";
    case GgufType::kI32:
      return "i32";
    case GgufType::kF32:
      return "f32";
    case GgufType::kBool:
      return "bool";
    case GgufType::kString:
      return "string";
    case GgufType::kArray:
      return "array";
    case GgufType::kU64:
      return "u64";
    case GgufType::kI64:
      return "i64";
    case GgufType::kF64:
      return "f64";
  }
  return "unknown";
}

// ---- GgufValue ---------------------------------------------------------------------------------

std::optional<double> GgufValue::as_number() const noexcept {
  if (is_unsigned(type)) return static_cast<double>(u);
  if (is_signed(type)) return static_cast<double>(i);
  if (is_float(type)) return f;
  return std::nullopt;
}

std::optional<int64_t> GgufValue::as_int() const noexcept {
  if (is_signed(type)) return i;
  if (is_unsigned(type)) {
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  return std::nullopt;
}

std::string GgufValue::to_display(size_t max_items) const {
  switch (type) {
    case GgufType::kBool:
      return b ? "true" : "false";
    case GgufType::kString:
      return std::string(text());
    case GgufType::kF32:
      return fmt::format("{}", static_cast<float>(f));
    case GgufType::kF64:
      return fmt::format("{}", f);
    case GgufType::kArray: {
      if (array.size() > max_items) {
        return fmt::format("[{} × {}]", array.size(), gguf_type_name(array_type));
      }
      std::string out = "[";
      for (size_t k = 0; k < array.size(); ++k) {
        if (k > 0) out += ", ";
        if (array[k].type == GgufType::kString) {
          out += fmt::format("\"{}\"", array[k].text());
        } else {
          out += array[k].to_display(max_items);
        }
      }
      return out + "]";
    }
    default:
      break;
  }
  if (is_unsigned(type)) return fmt::format("{}", u);
  return fmt::format("{}", i);
}

GgufValue GgufValue::make_string(std::string s) {
  GgufValue v;
  v.type = GgufType::kString;
  v.owned = std::move(s);
  v.str = v.owned;
  return v;
}
GgufValue GgufValue::make_u32(uint32_t value) {
  GgufValue v;
  v.type = GgufType::kU32;
  v.u = value;
  return v;
}
GgufValue GgufValue::make_i32(int32_t value) {
  GgufValue v;
  v.type = GgufType::kI32;
  v.i = value;
  return v;
}
GgufValue GgufValue::make_u64(uint64_t value) {
  GgufValue v;
  v.type = GgufType::kU64;
  v.u = value;
  return v;
}
GgufValue GgufValue::make_f32(float value) {
  GgufValue v;
  v.type = GgufType::kF32;
  v.f = value;
  return v;
}
GgufValue GgufValue::make_bool(bool value) {
  GgufValue v;
  v.type = GgufType::kBool;
  v.b = value;
  return v;
}
GgufValue GgufValue::make_array(GgufType element_type, std::vector<GgufValue> items) {
  GgufValue v;
  v.type = GgufType::kArray;
  v.array_type = element_type;
  v.array = std::move(items);
  return v;
}

// ---- GgufTensor --------------------------------------------------------------------------------

std::vector<int64_t> GgufTensor::shape() const {
  std::vector<int64_t> out;
  out.reserve(n_dims);
  for (uint32_t d = n_dims; d > 0; --d) out.push_back(ne[d - 1]);
  return out;
}

TensorView GgufTensor::view() const {
  return TensorView{dtype, shape(), data, bytes};
}

// ---- parser ------------------------------------------------------------------------------------

/// Reads one image front to back; every read is bounds-checked against the bytes left.
class GgufParser {
 public:
  GgufParser(const std::byte* data, uint64_t size, GgufFile& file)
      : data_(data), size_(size), file_(file) {}

  void run();

 private:
  [[nodiscard]] std::string where(uint64_t at) const {
    return fmt::format("{}@{}", file_.name_, at);
  }
  template <typename... Args>
  [[noreturn]] void error(uint64_t at, fmt::format_string<Args...> format, Args&&... args) const {
    fail(ErrorCode::kFormat, where(at), format, std::forward<Args>(args)...);
  }
  [[nodiscard]] uint64_t left() const { return size_ - pos_; }
  void need(uint64_t bytes, std::string_view what) const {
    if (bytes > left()) {
      error(pos_, "truncated: {} needs {} bytes, {} left in the file", what, bytes, left());
    }
  }
  template <typename T>
  T read(std::string_view what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  std::string_view read_string(std::string_view what) {
    const uint64_t at = pos_;
    const auto length = read<uint64_t>(what);
    if (length > left()) {
      error(at, "{}: string length {} exceeds the {} bytes left in the file", what, length, left());
    }
    std::string_view s(reinterpret_cast<const char*>(data_ + pos_), length);
    pos_ += length;
    return s;
  }
  GgufType read_type(std::string_view what) {
    const uint64_t at = pos_;
    const auto raw = read<uint32_t>(what);
    if (!known_type(raw)) error(at, "{}: unknown value type {}", what, raw);
    return static_cast<GgufType>(raw);
  }

  GgufValue read_value(GgufType type, int depth);
  void read_header();
  void read_metadata(uint64_t count);
  void read_tensor_infos(uint64_t count);
  void check_data_layout();

  const std::byte* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  GgufFile& file_;
  uint64_t array_elements_ = 0;
  std::vector<uint64_t> tensor_offsets_;  // where each tensor info starts, for errors
};

GgufValue GgufParser::read_value(GgufType type, int depth) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufType::kU8:
      v.u = read<uint8_t>("u8 value");
      break;
    case GgufType::kI8:
      v.i = read<int8_t>("i8 value");
      break;
    case GgufType::kU16:
      v.u = read<uint16_t>("u16 value");
      break;
    case GgufType::kI16:
      v.i = read<int16_t>("i16 value");
      break;
    case GgufType::kU32:
      v.u = read<uint32_t>("u32 value");
      break;
    case GgufType::kI32:
      v.i = read<int32_t>("i32 value");
      break;
    case GgufType::kU64:
      v.u = read<uint64_t>("u64 value");
      break;
    case GgufType::kI64:
      v.i = read<int64_t>("i64 value");
      break;
    case GgufType::kF32:
      v.f = read<float>("f32 value");
      break;
    case GgufType::kF64:
      v.f = read<double>("f64 value");
      break;
    case GgufType::kBool:
      v.b = read<uint8_t>("bool value") != 0;
      break;
    case GgufType::kString:
      v.str = read_string("string value");
      break;
    case GgufType::kArray: {
      const uint64_t at = pos_;
      if (depth >= kMaxArrayDepth) error(at, "arrays nested deeper than {}", kMaxArrayDepth);
      v.array_type = read_type("array element type");
      const uint64_t count_at = pos_;
      const auto count = read<uint64_t>("array length");
      const uint64_t each = min_encoded_bytes(v.array_type);
      if (count > left() / each) {
        error(count_at, "array of {} × {} needs at least {} bytes per element, {} bytes left",
              count, gguf_type_name(v.array_type), each, left());
      }
      array_elements_ += count;
      if (array_elements_ > kMaxArrayElements) {
        error(count_at, "more than {} array elements in the metadata", kMaxArrayElements);
      }
      v.array.reserve(count);
      for (uint64_t k = 0; k < count; ++k) v.array.push_back(read_value(v.array_type, depth + 1));
      break;
    }
  }
  return v;
}

void GgufParser::read_header() {
  if (size_ < 4 || std::memcmp(data_, "GGUF", 4) != 0) {
    if (size_ < 4) error(0, "truncated: {} bytes, not a GGUF file", size_);
    error(0, "bad magic (expected \"GGUF\"): not a GGUF file");
  }
  pos_ = 4;
  const uint64_t version_at = pos_;
  const auto version = read<uint32_t>("version");
  if (version != 2 && version != 3) {
    if ((version & 0xFFFFu) == 0 && (version >> 24) >= 1 && (version >> 24) <= 3) {
      error(version_at, "big-endian GGUF files are not supported");
    }
    error(version_at, "unsupported GGUF version {} (expected 2 or 3)", version);
  }
  file_.version_ = version;
}

void GgufParser::read_metadata(uint64_t count) {
  file_.kv_.reserve(count);
  file_.kv_offsets_.reserve(count);
  for (uint64_t k = 0; k < count; ++k) {
    const uint64_t at = pos_;
    const std::string_view key = read_string("metadata key");
    const GgufType type = read_type(fmt::format("type of key '{}'", shown(key)));
    GgufValue value = read_value(type, 0);
    if (!file_.kv_index_.emplace(key, file_.kv_.size()).second) {
      error(at, "duplicate metadata key '{}'", shown(key));
    }
    file_.kv_.push_back(GgufKeyValue{key, std::move(value)});
    file_.kv_offsets_.push_back(at);
  }
  if (const auto it = file_.kv_index_.find("general.alignment"); it != file_.kv_index_.end()) {
    const GgufValue& value = file_.kv_[it->second].value;
    const uint64_t at = file_.kv_offsets_[it->second];
    if (value.type != GgufType::kU32) {
      error(at, "general.alignment has type {}, expected u32", gguf_type_name(value.type));
    }
    if (value.u == 0 || (value.u & (value.u - 1)) != 0) {
      error(at, "general.alignment {} is not a power of two", value.u);
    }
    file_.alignment_ = value.u;
  }
}

void GgufParser::read_tensor_infos(uint64_t count) {
  file_.tensors_.reserve(count);
  tensor_offsets_.reserve(count);
  for (uint64_t k = 0; k < count; ++k) {
    const uint64_t at = pos_;
    GgufTensor t;
    t.name = read_string("tensor name");
    const uint64_t dims_at = pos_;
    t.n_dims = read<uint32_t>("tensor dimension count");
    if (t.n_dims > kMaxDims) {
      error(dims_at, "tensor '{}' has {} dimensions (at most {})", shown(t.name), t.n_dims,
            kMaxDims);
    }
    int64_t elements = 1;
    for (uint32_t d = 0; d < t.n_dims; ++d) {
      const uint64_t dim_at = pos_;
      const auto dim = read<uint64_t>("tensor dimension");
      if (dim == 0 || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        error(dim_at, "tensor '{}' has invalid dimension {} = {}", shown(t.name), d, dim);
      }
      t.ne[d] = static_cast<int64_t>(dim);
      if (elements > std::numeric_limits<int64_t>::max() / t.ne[d]) {
        error(dim_at, "tensor '{}': element count overflows", shown(t.name));
      }
      elements *= t.ne[d];
    }
    const uint64_t type_at = pos_;
    const auto type_id = read<uint32_t>("tensor type");
    const auto dtype = dtype_from_id(type_id);
    const auto info = dtype ? dtype_info(*dtype) : std::nullopt;
    if (!info) error(type_at, "tensor '{}' has unknown type id {}", shown(t.name), type_id);
    t.dtype = *dtype;
    if (t.ne[0] % info->block_elements != 0) {
      error(type_at, "tensor '{}': row of {} elements is not a multiple of the {} block size {}",
            shown(t.name), t.ne[0], info->name, info->block_elements);
    }
    const uint64_t blocks = static_cast<uint64_t>(elements / info->block_elements);
    if (blocks > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(info->block_bytes)) {
      error(type_at, "tensor '{}': byte size overflows", shown(t.name));
    }
    t.bytes = blocks * static_cast<uint64_t>(info->block_bytes);
    const uint64_t offset_at = pos_;
    t.offset = read<uint64_t>("tensor offset");
    if (t.offset % file_.alignment_ != 0) {
      error(offset_at, "tensor '{}': offset {} is not a multiple of the alignment {}",
            shown(t.name), t.offset, file_.alignment_);
    }
    if (!file_.tensor_index_.emplace(t.name, file_.tensors_.size()).second) {
      error(at, "duplicate tensor name '{}'", shown(t.name));
    }
    file_.tensors_.push_back(t);
    tensor_offsets_.push_back(at);
  }
}

void GgufParser::check_data_layout() {
  const uint64_t alignment = file_.alignment_;
  // pos_ <= size_, so the padded start can exceed size_ only by less than the alignment.
  const uint64_t padding = (alignment - pos_ % alignment) % alignment;
  if (!file_.tensors_.empty() && padding > left()) {
    error(pos_, "truncated: data section padding needs {} bytes, {} left", padding, left());
  }
  file_.data_offset_ = std::min(pos_ + padding, size_);
  const uint64_t data_bytes = size_ - file_.data_offset_;
  std::vector<size_t> order(file_.tensors_.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  for (size_t k = 0; k < order.size(); ++k) {
    GgufTensor& t = file_.tensors_[k];
    if (t.offset > data_bytes || t.bytes > data_bytes - t.offset) {
      error(tensor_offsets_[k],
            "tensor '{}': data [{}, +{}) lies past the end of the data section ({} bytes at {})",
            shown(t.name), t.offset, t.bytes, data_bytes, file_.data_offset_);
    }
    t.data = data_ + file_.data_offset_ + t.offset;
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return file_.tensors_[a].offset < file_.tensors_[b].offset;
  });
  for (size_t k = 1; k < order.size(); ++k) {
    const GgufTensor& prev = file_.tensors_[order[k - 1]];
    const GgufTensor& next = file_.tensors_[order[k]];
    if (prev.offset + prev.bytes > next.offset) {
      error(tensor_offsets_[order[k]], "tensor '{}' (offset {}) overlaps tensor '{}' ([{}, +{}))",
            shown(next.name), next.offset, shown(prev.name), prev.offset, prev.bytes);
    }
  }
}

void GgufParser::run() {
  read_header();
  const uint64_t tensors_at = pos_;
  const auto tensor_count = read<uint64_t>("tensor count");
  const uint64_t kv_at = pos_;
  const auto kv_count = read<uint64_t>("metadata count");
  // Each key/value takes at least 13 bytes (key length, type, one-byte value), each tensor
  // info at least 24 (name length, dimension count, type, offset).
  if (kv_count > left() / 13) {
    error(kv_at, "metadata count {} cannot fit in the {} bytes left", kv_count, left());
  }
  if (tensor_count > left() / 24) {
    error(tensors_at, "tensor count {} cannot fit in the {} bytes left", tensor_count, left());
  }
  read_metadata(kv_count);
  read_tensor_infos(tensor_count);
  check_data_layout();
}

// ---- GgufFile ----------------------------------------------------------------------------------

GgufFile GgufFile::parse(const std::byte* data, uint64_t size, std::string name) {
  GgufFile file;
  file.name_ = std::move(name);
  if (data == nullptr && size != 0) {
    fail(ErrorCode::kInvalidArgument, file.name_, "null data with size {}", size);
  }
  GgufParser(data, size, file).run();
  return file;
}

GgufFile GgufFile::open(const std::filesystem::path& path) {
  auto map = std::make_shared<MappedFile>(path);
  GgufFile file = parse(map->data(), map->size(), path.string());
  file.map_ = std::move(map);
  return file;
}

const GgufValue* GgufFile::find(std::string_view key) const noexcept {
  const auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].value;
}

const GgufTensor* GgufFile::find_tensor(std::string_view name) const noexcept {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufValue* GgufFile::find_typed(std::string_view key, size_t* index) const noexcept {
  const auto it = kv_index_.find(key);
  if (it == kv_index_.end()) return nullptr;
  *index = it->second;
  return &kv_[it->second].value;
}

void GgufFile::fail_type(size_t index, std::string_view expected) const {
  const GgufValue& v = kv_[index].value;
  const std::string actual = v.type == GgufType::kArray
                                 ? fmt::format("array of {}", gguf_type_name(v.array_type))
                                 : std::string(gguf_type_name(v.type));
  fail(ErrorCode::kFormat, fmt::format("{}@{}", name_, kv_offsets_[index]),
       "key '{}' has type {}, expected {}", shown(kv_[index].key), actual, expected);
}

std::optional<std::string_view> GgufFile::get_string(std::string_view key) const {
  size_t index = 0;
  const GgufValue* v = find_typed(key, &index);
  if (v == nullptr) return std::nullopt;
  if (v->type != GgufType::kString) fail_type(index, "string");
  return v->text();
}

std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
  size_t index = 0;
  const GgufValue* v = find_typed(key, &index);
  if (v == nullptr) return std::nullopt;
  const auto value = v->as_int();
  if (!value) fail_type(index, "an integer that fits in i64");
  return value;
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
  size_t index = 0;
  const GgufValue* v = find_typed(key, &index);
  if (v == nullptr) return std::nullopt;
  const auto value = v->as_number();
  if (!value) fail_type(index, "a number");
  return value;
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  size_t index = 0;
  const GgufValue* v = find_typed(key, &index);
  if (v == nullptr) return std::nullopt;
  if (v->type != GgufType::kBool) fail_type(index, "bool");
  return v->b;
}

std::optional<std::vector<std::string_view>> GgufFile::get_string_array(
    std::string_view key) const {
  size_t index = 0;
  const GgufValue* v = find_typed(key, &index);
  if (v == nullptr) return std::nullopt;
  if (v->type != GgufType::kArray || v->array_type != GgufType::kString) {
    fail_type(index, "array of string");
  }
  std::vector<std::string_view> out;
  out.reserve(v->array.size());
  for (const GgufValue& item : v->array) out.push_back(item.text());
  return out;
}

std::optional<std::vector<double>> GgufFile::get_number_array(std::string_view key) const {
  size_t index = 0;
  const GgufValue* v = find_typed(key, &index);
  if (v == nullptr) return std::nullopt;
  if (v->type != GgufType::kArray) fail_type(index, "array of numbers");
  std::vector<double> out;
  out.reserve(v->array.size());
  for (const GgufValue& item : v->array) {
    const auto number = item.as_number();
    if (!number) fail_type(index, "array of numbers");
    out.push_back(*number);
  }
  return out;
}

std::optional<std::vector<int64_t>> GgufFile::get_int_array(std::string_view key) const {
  size_t index = 0;
  const GgufValue* v = find_typed(key, &index);
  if (v == nullptr) return std::nullopt;
  if (v->type != GgufType::kArray) fail_type(index, "array of integers");
  std::vector<int64_t> out;
  out.reserve(v->array.size());
  for (const GgufValue& item : v->array) {
    const auto number = item.as_int();
    if (!number) fail_type(index, "array of integers");
    out.push_back(*number);
  }
  return out;
}

}  // namespace polyinfer::inline v0::detail
