// SPDX-License-Identifier: Apache-2.0
// ModelFileImpl: the state behind polyinfer::ModelFile, for GGUF files and Hugging Face folders.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "format/gguf.hpp"
#include "format/safetensors.hpp"
#include "polyinfer/model.hpp"

namespace polyinfer::inline v0::detail {

/// Everything ModelFile answers from, filled once by open_gguf / open_hf. Immutable afterwards
/// except the tokenizer, which is built on first use (under a once_flag).
class ModelFileImpl {
 public:
  /// Opens a GGUF file (weights, or vocabulary only).
  [[nodiscard]] static std::shared_ptr<const ModelFileImpl> open_gguf(
      const std::filesystem::path& path);
  /// Opens a Hugging Face folder: config.json and model.safetensors (or sharded).
  [[nodiscard]] static std::shared_ptr<const ModelFileImpl> open_hf(
      const std::filesystem::path& folder);

  [[nodiscard]] const Tokenizer& tokenizer() const;

  ModelFormat format = ModelFormat::kGguf;
  std::filesystem::path path;
  ModelConfig config;
  std::vector<TensorInfo> tensors;
  std::vector<const std::byte*> tensor_data;  // parallel to `tensors`
  std::map<std::string, size_t, std::less<>> tensor_index;
  std::vector<std::pair<std::string, std::string>> metadata;
  bool has_tokenizer = false;
  std::string chat_template;

 private:
  void add_tensor(TensorInfo info, const std::byte* data, const std::string& where);
  void finish();

  std::optional<GgufFile> gguf_;
  std::optional<SafetensorsSet> weights_;
  mutable std::once_flag tokenizer_once_;
  mutable std::optional<Tokenizer> tokenizer_;
};

}  // namespace polyinfer::inline v0::detail
