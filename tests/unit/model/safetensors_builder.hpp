// SPDX-License-Identifier: Apache-2.0
// Test helper: builds safetensors images (valid or deliberately broken) in memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <unistd.h>

namespace polyinfer::test {

/// One header entry; `offsets_json` overrides data_offsets (for broken images).
struct SafetensorsEntry {
  std::string name;
  std::string dtype;
  std::string shape_json;  // "[2, 3]"
  std::string data;        // raw bytes appended to the data section
  std::string offsets_json;
};

/// Header JSON of `entries` with data_offsets following each other (unless overridden).
inline std::string safetensors_header(const std::vector<SafetensorsEntry>& entries,
                                      std::string_view metadata_json = "") {
  std::string header = "{";
  if (!metadata_json.empty()) header += fmt::format("\"__metadata__\":{}", metadata_json);
  uint64_t offset = 0;
  for (const auto& entry : entries) {
    if (header.size() > 1) header += ",";
    const std::string offsets = entry.offsets_json.empty()
                                    ? fmt::format("[{},{}]", offset, offset + entry.data.size())
                                    : entry.offsets_json;
    header += fmt::format(R"("{}":{{"dtype":"{}","shape":{},"data_offsets":{}}})", entry.name,
                          entry.dtype, entry.shape_json, offsets);
    offset += entry.data.size();
  }
  return header + "}";
}

/// A whole image: little-endian length, `header` padded with spaces to 8 bytes, `data`.
inline std::string safetensors_image(std::string header, std::string_view data) {
  while (header.size() % 8 != 0) header += ' ';
  std::string image(8, '\0');
  uint64_t length = header.size();
  for (int i = 0; i < 8; ++i) image[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  return image + header + std::string(data);
}

inline std::string safetensors_image(const std::vector<SafetensorsEntry>& entries,
                                     std::string_view metadata_json = "") {
  std::string data;
  for (const auto& entry : entries) data += entry.data;
  return safetensors_image(safetensors_header(entries, metadata_json), data);
}

inline void write_binary(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// `count` little-endian f32 values 0, 1, 2, … as bytes.
inline std::string f32_bytes(size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) {
    const float value = static_cast<float>(i);
    out.append(reinterpret_cast<const char*>(&value), sizeof value);
  }
  return out;
}

/// A fresh empty folder under the system temp folder (removed by the destructor).
class TempFolder {
 public:
  explicit TempFolder(std::string_view stem) {
    static int counter = 0;
    path_ =
        std::filesystem::temp_directory_path() /
        (std::string(stem) + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempFolder() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace polyinfer::test
