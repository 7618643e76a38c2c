// SPDX-License-Identifier: Apache-2.0
// ModelFileImpl for GGUF files: tensors, metadata, config, tokenizer presence, chat template.
#include "common/fail.hpp"
#include "format/hf_config.hpp"
#include "model/model_file_impl.hpp"
#include "tokenizer/gguf_hf_tokenizer.hpp"

namespace polyinfer::inline v0::detail {

std::shared_ptr<const ModelFileImpl> ModelFileImpl::open_gguf(const std::filesystem::path& path) {
  auto impl = std::make_shared<ModelFileImpl>();
  impl->format = ModelFormat::kGguf;
  impl->path = path;
  const GgufFile& file = impl->gguf_.emplace(GgufFile::open(path));

  impl->config = gguf_model_config(file);
  for (const GgufTensor& tensor : file.tensors()) {
    TensorInfo info{std::string(tensor.name), tensor.dtype, tensor.shape(), tensor.bytes};
    impl->add_tensor(std::move(info), tensor.data, file.name());
  }
  for (const GgufKeyValue& kv : file.metadata()) {
    impl->metadata.emplace_back(std::string(kv.key), kv.value.to_display());
  }
  impl->has_tokenizer = file.find("tokenizer.ggml.model") != nullptr;
  if (uses_gguf_hf_tokenizer(file)) {
    // tokenizer.huggingface.json without a llama.cpp vocabulary: the embedded tokenizer.json
    // is the tokenizer (transformers behaviour). Built here, because the lazy builder in
    // model_file.cpp knows only llama.cpp vocabularies; errors name the key.
    impl->has_tokenizer = true;
    std::call_once(impl->tokenizer_once_, [&impl, &file] {
      impl->tokenizer_.emplace(Tokenizer(make_gguf_hf_tokenizer(file)));
    });
  }
  if (const auto chat_template = file.get_string("tokenizer.chat_template")) {
    impl->chat_template = std::string(*chat_template);
  }
  impl->finish();
  return impl;
}

}  // namespace polyinfer::inline v0::detail
