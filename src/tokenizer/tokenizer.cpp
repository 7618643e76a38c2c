// SPDX-License-Identifier: Apache-2.0
// polyinfer::Tokenizer: picks the implementation for a file or folder and checks arguments.
#include "polyinfer/tokenizer.hpp"

#include <system_error>

#include "common/fail.hpp"
#include "common/mapped_file.hpp"
#include "format/gguf.hpp"
#include "tokenizer/gguf_hf_tokenizer.hpp"
#include "tokenizer/tokenizer_impl.hpp"

namespace polyinfer {
inline namespace v0 {

namespace fs = std::filesystem;
using detail::fail;

namespace {

std::string read_optional(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec) ? detail::read_text_file(path) : std::string();
}

}  // namespace

Tokenizer::Tokenizer(std::shared_ptr<const detail::TokenizerImpl> impl) : impl_(std::move(impl)) {
  if (!impl_) fail(ErrorCode::kInternal, "Tokenizer", "constructed without an implementation");
}

Tokenizer Tokenizer::load(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const fs::path json = path / "tokenizer.json";
    const std::string config = read_optional(path / "tokenizer_config.json");
    if (fs::is_regular_file(json, ec)) {
      return Tokenizer(
          detail::make_hf_tokenizer(detail::read_text_file(json), config, json.string()));
    }
    const fs::path spm = path / "tokenizer.model";
    if (fs::is_regular_file(spm, ec)) {
      return Tokenizer(
          detail::make_sentencepiece_tokenizer(detail::read_text_file(spm), config, spm.string()));
    }
    fail(ErrorCode::kNotFound, path.string(), "no tokenizer.json or tokenizer.model in folder");
  }
  if (!fs::exists(path, ec)) fail(ErrorCode::kIo, path.string(), "no such file or folder");
  if (path.extension() == ".model") return load_sentencepiece(path);
  if (path.extension() == ".json") {
    return Tokenizer(detail::make_hf_tokenizer(
        detail::read_text_file(path), read_optional(path.parent_path() / "tokenizer_config.json"),
        path.string()));
  }
  const auto gguf = detail::GgufFile::open(path);
  // A GGUF with tokenizer.huggingface.json and no llama.cpp vocabulary tokenizes as the
  // embedded tokenizer.json does (transformers behaviour).
  if (detail::uses_gguf_hf_tokenizer(gguf)) {
    return Tokenizer(detail::make_gguf_hf_tokenizer(gguf));
  }
  return Tokenizer(detail::make_gguf_tokenizer(gguf));
}

Tokenizer Tokenizer::load_sentencepiece(const fs::path& model_file) {
  return Tokenizer(detail::make_sentencepiece_tokenizer(
      detail::read_text_file(model_file),
      read_optional(model_file.parent_path() / "tokenizer_config.json"), model_file.string()));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, EncodeOptions options) const {
  return impl_->encode(text, options);
}

std::string Tokenizer::decode(std::span<const int32_t> ids, DecodeOptions options) const {
  const int32_t size = impl_->vocab_size();
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= size) {
      fail(ErrorCode::kInvalidArgument, "decode: ids[" + std::to_string(i) + "]",
           "token id {} out of range [0, {})", ids[i], size);
    }
  }
  return impl_->decode(ids, options);
}

std::string Tokenizer::token(int32_t id) const {
  if (id < 0 || id >= impl_->vocab_size()) {
    fail(ErrorCode::kInvalidArgument, "token", "token id {} out of range [0, {})", id,
         impl_->vocab_size());
  }
  return impl_->token(id);
}

int32_t Tokenizer::vocab_size() const noexcept {
  return impl_->vocab_size();
}
int32_t Tokenizer::bos_id() const noexcept {
  return impl_->info().bos_id;
}
int32_t Tokenizer::eos_id() const noexcept {
  return impl_->info().eos_id;
}
int32_t Tokenizer::pad_id() const noexcept {
  return impl_->info().pad_id;
}
int32_t Tokenizer::unk_id() const noexcept {
  return impl_->info().unk_id;
}
bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < impl_->vocab_size() && impl_->is_special(id);
}
std::string_view Tokenizer::kind() const noexcept {
  return impl_->info().kind;
}
std::string_view Tokenizer::pre_tokenizer() const noexcept {
  return impl_->info().pre_tokenizer;
}
TokenizerFlavor Tokenizer::flavor() const noexcept {
  return impl_->info().flavor;
}
const std::string& Tokenizer::chat_template() const noexcept {
  return impl_->info().chat_template;
}

}  // namespace v0
}  // namespace polyinfer
