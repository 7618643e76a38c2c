// SPDX-License-Identifier: Apache-2.0
// GGUF v3 writer: metadata in insertion order, tensor data padded to general.alignment.
#include <algorithm>
#include <array>
#include <fstream>
#include <system_error>
#include <unordered_set>
#include <utility>

#include "common/fail.hpp"
#include "format/gguf.hpp"

namespace polyinfer::inline v0::detail {

namespace {

constexpr uint64_t kDefaultAlignment = 32;

class ByteSink {
 public:
  explicit ByteSink(std::vector<std::byte>& out) : out_(out) {}
  template <typename T>
  void put(T value) {
    const auto* p = reinterpret_cast<const std::byte*>(&value);
    out_.insert(out_.end(), p, p + sizeof(T));
  }
  void put_string(std::string_view s) {
    put<uint64_t>(s.size());
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    out_.insert(out_.end(), p, p + s.size());
  }
  void pad_to(uint64_t alignment) {
    while (out_.size() % alignment != 0) out_.push_back(std::byte{0});
  }

 private:
  std::vector<std::byte>& out_;
};

// Unsigned values come from `u`, signed from `i`; a value built with the other field set (and
// the one it should use left 0) is taken from there, so make_* helpers and hand-built values
// both work.
uint64_t unsigned_of(const GgufValue& v) {
  return v.u != 0 ? v.u : static_cast<uint64_t>(v.i);
}
int64_t signed_of(const GgufValue& v) {
  return v.i != 0 ? v.i : static_cast<int64_t>(v.u);
}

void put_value(ByteSink& sink, const GgufValue& v, std::string_view key) {
  switch (v.type) {
    case GgufType::kU8:
      sink.put(static_cast<uint8_t>(unsigned_of(v)));
      break;
    case GgufType::kI8:
      sink.put(static_cast<int8_t>(signed_of(v)));
      break;
    case GgufType::kU16:
      sink.put(static_cast<uint16_t>(unsigned_of(v)));
      break;
    case GgufType::kI16:
      sink.put(static_cast<int16_t>(signed_of(v)));
      break;
    case GgufType::kU32:
      sink.put(static_cast<uint32_t>(unsigned_of(v)));
      break;
    case GgufType::kI32:
      sink.put(static_cast<int32_t>(signed_of(v)));
      break;
    case GgufType::kU64:
      sink.put(unsigned_of(v));
      break;
    case GgufType::kI64:
      sink.put(signed_of(v));
      break;
    case GgufType::kF32:
      sink.put(static_cast<float>(v.f));
      break;
    case GgufType::kF64:
      sink.put(v.f);
      break;
    case GgufType::kBool:
      sink.put(static_cast<uint8_t>(v.b ? 1 : 0));
      break;
    case GgufType::kString:
      sink.put_string(v.text());
      break;
    case GgufType::kArray:
      sink.put(static_cast<uint32_t>(v.array_type));
      sink.put<uint64_t>(v.array.size());
      for (const GgufValue& item : v.array) {
        if (item.type != v.array_type) {
          fail(ErrorCode::kInvalidArgument, std::string(key),
               "array of {} holds an element of type {}", gguf_type_name(v.array_type),
               gguf_type_name(item.type));
        }
        put_value(sink, item, key);
      }
      break;
    default:
      fail(ErrorCode::kInvalidArgument, std::string(key), "unknown value type {}",
           static_cast<uint32_t>(v.type));
  }
}

}  // namespace

void GgufWriter::set(std::string key, GgufValue value) {
  for (auto& [existing, existing_value] : kv_) {
    if (existing == key) {
      existing_value = std::move(value);
      return;
    }
  }
  kv_.emplace_back(std::move(key), std::move(value));
}

void GgufWriter::check_new_tensor(const std::string& name, DType dtype,
                                  const std::vector<int64_t>& ne, uint64_t* bytes) const {
  const auto info = dtype_info(dtype);
  if (!info) {
    fail(ErrorCode::kUnsupported, name, "unknown type id {}", static_cast<uint32_t>(dtype));
  }
  if (ne.empty() || ne.size() > 4) {
    fail(ErrorCode::kInvalidArgument, name, "{} dimensions (1 to 4 supported)", ne.size());
  }
  int64_t elements = 1;
  for (const int64_t d : ne) {
    if (d <= 0) fail(ErrorCode::kInvalidArgument, name, "dimension {} is not positive", d);
    elements *= d;
  }
  if (ne[0] % info->block_elements != 0) {
    fail(ErrorCode::kInvalidArgument, name, "row of {} is not a multiple of the {} block size {}",
         ne[0], info->name, info->block_elements);
  }
  for (const Tensor& t : tensors_) {
    if (t.name == name) fail(ErrorCode::kInvalidArgument, name, "duplicate tensor name");
  }
  *bytes = dtype_bytes(dtype, elements);
}

void GgufWriter::add_tensor(std::string name, DType dtype, std::vector<int64_t> ne,
                            std::vector<std::byte> data) {
  uint64_t expected = 0;
  check_new_tensor(name, dtype, ne, &expected);
  if (data.size() != expected) {
    fail(ErrorCode::kInvalidArgument, name, "{} bytes of data, {} needs {}", data.size(),
         dtype_name(dtype), expected);
  }
  tensors_.push_back(Tensor{std::move(name), dtype, std::move(ne), std::move(data), expected});
}

void GgufWriter::declare_tensor(std::string name, DType dtype, std::vector<int64_t> ne) {
  uint64_t bytes = 0;
  check_new_tensor(name, dtype, ne, &bytes);
  tensors_.push_back(Tensor{std::move(name), dtype, std::move(ne), {}, bytes, true});
}

uint64_t GgufWriter::alignment() const {
  uint64_t alignment = kDefaultAlignment;
  for (const auto& [key, value] : kv_) {
    if (key != "general.alignment") continue;
    if (value.type != GgufType::kU32 || value.u == 0 || (value.u & (value.u - 1)) != 0) {
      fail(ErrorCode::kInvalidArgument, key, "must be a u32 power of two");
    }
    alignment = value.u;
  }
  return alignment;
}

void GgufWriter::serialize_header(std::vector<std::byte>& out, uint64_t alignment) const {
  ByteSink sink(out);
  for (const char c : {'G', 'G', 'U', 'F'}) out.push_back(static_cast<std::byte>(c));
  sink.put<uint32_t>(3);
  sink.put<uint64_t>(tensors_.size());
  sink.put<uint64_t>(kv_.size());
  for (const auto& [key, value] : kv_) {
    sink.put_string(key);
    sink.put(static_cast<uint32_t>(value.type));
    put_value(sink, value, key);
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    sink.put_string(t.name);
    sink.put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
    for (const int64_t d : t.ne) sink.put<uint64_t>(static_cast<uint64_t>(d));
    sink.put(static_cast<uint32_t>(t.dtype));
    sink.put<uint64_t>(offset);
    offset += (t.bytes + alignment - 1) / alignment * alignment;
  }
  sink.pad_to(alignment);
}

std::vector<std::byte> GgufWriter::serialize() const {
  for (const Tensor& t : tensors_) {
    if (t.streamed) {
      fail(ErrorCode::kInvalidArgument, t.name,
           "declared without data: write it with write_streaming");
    }
  }
  const uint64_t align = alignment();
  std::vector<std::byte> out;
  serialize_header(out, align);
  ByteSink sink(out);
  for (const Tensor& t : tensors_) {
    out.insert(out.end(), t.data.begin(), t.data.end());
    sink.pad_to(align);
  }
  return out;
}

void GgufWriter::write(const std::filesystem::path& path) const {
  const std::vector<std::byte> image = serialize();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail(ErrorCode::kIo, path.string(), "cannot open for writing");
  out.write(reinterpret_cast<const char*>(image.data()),
            static_cast<std::streamsize>(image.size()));
  out.close();
  if (!out) fail(ErrorCode::kIo, path.string(), "write failed");
}

namespace {

/// An output file that removes itself unless committed (a failed write leaves no partial file).
class PendingFile {
 public:
  explicit PendingFile(const std::filesystem::path& path) : path_(path) {
    // A large buffer: tensor pieces arrive in many small writes.
    out_.rdbuf()->pubsetbuf(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
    out_.open(path, std::ios::binary | std::ios::trunc);
    if (!out_) fail(ErrorCode::kIo, path.string(), "cannot open for writing");
  }
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;
  ~PendingFile() {
    if (committed_) return;
    out_.close();
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  void write(const std::byte* data, uint64_t size) {
    out_.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out_) fail(ErrorCode::kIo, path_.string(), "write failed");
    written_ += size;
  }
  void pad_to(uint64_t alignment) {
    static constexpr std::array<std::byte, 64> kZeros{};
    while (written_ % alignment != 0) {
      write(kZeros.data(), std::min<uint64_t>(kZeros.size(), alignment - written_ % alignment));
    }
  }
  [[nodiscard]] uint64_t written() const noexcept { return written_; }
  void commit() {
    out_.close();
    if (!out_) fail(ErrorCode::kIo, path_.string(), "write failed");
    committed_ = true;
  }

 private:
  std::filesystem::path path_;
  std::vector<char> buffer_ = std::vector<char>(size_t{1} << 20);
  std::ofstream out_;
  uint64_t written_ = 0;
  bool committed_ = false;
};

}  // namespace

void GgufWriter::write_streaming(const std::filesystem::path& path,
                                 const TensorProducer& produce) const {
  const uint64_t align = alignment();
  std::vector<std::byte> header;
  serialize_header(header, align);
  PendingFile file(path);
  file.write(header.data(), header.size());
  for (size_t index = 0; index < tensors_.size(); ++index) {
    const Tensor& t = tensors_[index];
    const uint64_t start = file.written();
    if (!t.streamed) {
      file.write(t.data.data(), t.data.size());
    } else {
      const TensorSink sink = [&](std::span<const std::byte> bytes) {
        if (file.written() - start + bytes.size() > t.bytes) {
          fail(ErrorCode::kInvalidArgument, t.name, "producer wrote more than the {} bytes of {}",
               t.bytes, dtype_name(t.dtype));
        }
        file.write(bytes.data(), bytes.size());
      };
      produce(index, sink);
    }
    if (file.written() - start != t.bytes) {
      fail(ErrorCode::kInvalidArgument, t.name, "producer wrote {} of the {} bytes",
           file.written() - start, t.bytes);
    }
    file.pad_to(align);
  }
  file.commit();
}

}  // namespace polyinfer::inline v0::detail
