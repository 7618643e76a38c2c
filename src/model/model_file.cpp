// SPDX-License-Identifier: Apache-2.0
// polyinfer::ModelFile: opens a GGUF file or a Hugging Face folder and answers from either.
#include "polyinfer/model.hpp"

#include <array>
#include <cstring>
#include <fstream>
#include <system_error>
#include <unordered_map>

#include "common/fail.hpp"
#include "format/gguf.hpp"
#include "model/model_file_impl.hpp"
#include "tokenizer/tokenizer_impl.hpp"

namespace polyinfer {
inline namespace v0 {

namespace fs = std::filesystem;
using detail::fail;

namespace detail {

void ModelFileImpl::add_tensor(TensorInfo info, const std::byte* data, const std::string& where) {
  const auto [it, inserted] = tensor_index.emplace(info.name, tensors.size());
  if (!inserted) fail(ErrorCode::kFormat, where, "tensor {} appears twice", info.name);
  tensors.push_back(std::move(info));
  tensor_data.push_back(data);
}

void ModelFileImpl::finish() {
  // The weights' element type: the most common among matrices (norms and biases stay f32).
  std::unordered_map<DType, size_t> counts;
  for (const TensorInfo& info : tensors) {
    if (info.shape.size() == 2) ++counts[info.dtype];
  }
  size_t best = 0;
  for (const TensorInfo& info : tensors) {  // file order breaks ties
    if (info.shape.size() != 2) continue;
    if (const size_t count = counts[info.dtype]; count > best) {
      best = count;
      config.stored_dtype = info.dtype;
    }
  }
}

const Tokenizer& ModelFileImpl::tokenizer() const {
  if (!has_tokenizer) {
    fail(ErrorCode::kTokenizer, path.string(), "{}",
         format == ModelFormat::kGguf
             ? "the GGUF file has no tokenizer (no tokenizer.ggml.model key)"
             : "the folder has no tokenizer (no tokenizer.json or tokenizer.model)");
  }
  std::call_once(tokenizer_once_, [this] {
    if (gguf_) {
      tokenizer_.emplace(make_gguf_tokenizer(*gguf_));
    } else {
      tokenizer_.emplace(Tokenizer::load(path));
    }
  });
  return *tokenizer_;
}

}  // namespace detail

namespace {

/// Whether the file starts with the GGUF magic.
bool has_gguf_magic(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::array<char, 4> magic{};
  return in.read(magic.data(), magic.size()) && std::memcmp(magic.data(), "GGUF", 4) == 0;
}

}  // namespace

ModelFile ModelFile::open(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return ModelFile(detail::ModelFileImpl::open_hf(path));
  if (!fs::exists(path, ec)) fail(ErrorCode::kIo, path.string(), "no such file or folder");
  if (has_gguf_magic(path)) return ModelFile(detail::ModelFileImpl::open_gguf(path));
  if (path.filename() == "config.json" || path.extension() == ".safetensors") {
    return ModelFile(detail::ModelFileImpl::open_hf(path.parent_path()));
  }
  fail(ErrorCode::kFormat, path.string(),
       "neither a GGUF file (no GGUF magic) nor a Hugging Face folder");
}

ModelFile::ModelFile(std::shared_ptr<const detail::ModelFileImpl> impl) : impl_(std::move(impl)) {
  if (!impl_) fail(ErrorCode::kInternal, "ModelFile", "constructed without an implementation");
}

ModelFormat ModelFile::format() const noexcept {
  return impl_->format;
}
const fs::path& ModelFile::path() const noexcept {
  return impl_->path;
}
const ModelConfig& ModelFile::config() const noexcept {
  return impl_->config;
}
std::span<const TensorInfo> ModelFile::tensors() const noexcept {
  return impl_->tensors;
}

bool ModelFile::has_tensor(std::string_view name) const noexcept {
  return impl_->tensor_index.find(name) != impl_->tensor_index.end();
}

TensorView ModelFile::tensor(std::string_view name) const {
  const auto it = impl_->tensor_index.find(name);
  if (it == impl_->tensor_index.end()) {
    fail(ErrorCode::kNotFound, impl_->path.string() + ": " + std::string(name), "no such tensor");
  }
  const TensorInfo& info = impl_->tensors[it->second];
  return TensorView{info.dtype, info.shape, impl_->tensor_data[it->second], info.bytes};
}

std::span<const std::pair<std::string, std::string>> ModelFile::metadata() const noexcept {
  return impl_->metadata;
}

bool ModelFile::has_tokenizer() const noexcept {
  return impl_->has_tokenizer;
}
const Tokenizer& ModelFile::tokenizer() const {
  return impl_->tokenizer();
}
const std::string& ModelFile::chat_template() const noexcept {
  return impl_->chat_template;
}

}  // namespace v0
}  // namespace polyinfer
