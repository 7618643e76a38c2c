// SPDX-License-Identifier: Apache-2.0
// MappedFile: mmap of model files so that weights are used in place.
#include "common/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <utility>

#include "common/fail.hpp"

namespace polyinfer::inline v0::detail {
namespace {

// The live mappings (start → size), so that release_mapped_pages never drops owned memory.
struct Mappings {
  std::mutex mutex;
  std::map<uintptr_t, uint64_t> ranges;
};

// Never destroyed: a MappedFile held by a static object may unmap during exit.
Mappings& mappings() {
  static auto* instance = new Mappings;
  return *instance;
}

}  // namespace

MappedFile::MappedFile(const std::filesystem::path& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(ErrorCode::kIo, path.string(), "cannot open: {}", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail(ErrorCode::kIo, path.string(), "cannot stat: {}", std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(ErrorCode::kIo, path.string(), "not a regular file");
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ > 0) {
    void* map = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      fail(ErrorCode::kIo, path.string(), "cannot mmap {} bytes: {}", size_, std::strerror(err));
    }
    data_ = static_cast<const std::byte*>(map);
    std::lock_guard<std::mutex> lock(mappings().mutex);
    mappings().ranges[reinterpret_cast<uintptr_t>(map)] = size_;
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  release();
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void MappedFile::release() noexcept {
  if (data_ != nullptr) {
    {
      std::lock_guard<std::mutex> lock(mappings().mutex);
      mappings().ranges.erase(reinterpret_cast<uintptr_t>(data_));
    }
    ::munmap(const_cast<std::byte*>(data_), size_);
  }
  data_ = nullptr;
  size_ = 0;
}

uint64_t release_mapped_pages(const std::byte* data, uint64_t size) noexcept {
  static const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(data);
  const uintptr_t first = (begin + page - 1) / page * page;  // whole pages only: neighbours
  const uintptr_t last = (begin + size) / page * page;       // may share the edge pages
  if (data == nullptr || last <= first) return 0;
  std::lock_guard<std::mutex> lock(mappings().mutex);  // the mapping stays live meanwhile
  const auto& ranges = mappings().ranges;
  auto found = ranges.upper_bound(begin);
  if (found == ranges.begin()) return 0;
  --found;
  if (begin + size > found->first + found->second) return 0;  // not inside one mapping
  if (::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED) != 0) return 0;
  return last - first;
}

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorCode::kIo, path.string(), "cannot open: {}", std::strerror(errno));
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) fail(ErrorCode::kIo, path.string(), "read failed");
  return std::move(out).str();
}

}  // namespace polyinfer::inline v0::detail
