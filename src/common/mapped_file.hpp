// SPDX-License-Identifier: Apache-2.0
// MappedFile: a read-only memory map of a whole file (RAII).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

namespace polyinfer::inline v0::detail {

/// Read-only mmap of a file. Empty files map to an empty span. Move-only.
class MappedFile {
 public:
  /// Maps `path`; throws Error(kIo) naming the file when it cannot be opened or mapped.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  [[nodiscard]] const std::byte* data() const noexcept { return data_; }
  [[nodiscard]] uint64_t size() const noexcept { return size_; }
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

 private:
  void release() noexcept;
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  uint64_t size_ = 0;
};

/// Drops this process's pages wholly inside [data, data + size) when the range lies in a live
/// MappedFile (read-only, file-backed: a later read faults them back in from the file), so that
/// weights used from a repacked copy stop counting as resident. Returns the bytes dropped; 0
/// for memory that is not such a mapping (owned buffers are never touched).
uint64_t release_mapped_pages(const std::byte* data, uint64_t size) noexcept;

/// Reads a whole (small) file into a string; throws Error(kIo) naming the file.
[[nodiscard]] std::string read_text_file(const std::filesystem::path& path);

}  // namespace polyinfer::inline v0::detail
