// SPDX-License-Identifier: Apache-2.0
// ModelFileImpl for Hugging Face folders: config.json, safetensors weights under GGUF names.
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <system_error>

#include "common/fail.hpp"
#include "common/mapped_file.hpp"
#include "format/hf_config.hpp"
#include "format/json_text.hpp"
#include "model/hf_tensor_names.hpp"
#include "model/model_file_impl.hpp"

namespace polyinfer::inline v0::detail {

namespace fs = std::filesystem;

namespace {

bool is_file(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

/// chat_template.jinja (newer transformers), else tokenizer_config.json's "chat_template": a
/// string, or a list of {name, template} from which "default" is taken.
std::string read_chat_template(const fs::path& folder) {
  if (const fs::path jinja = folder / "chat_template.jinja"; is_file(jinja)) {
    return read_text_file(jinja);
  }
  const fs::path config_path = folder / "tokenizer_config.json";
  if (!is_file(config_path)) return {};
  const std::string where = config_path.string();
  const auto config = parse_json(read_text_file(config_path), where);
  if (!config.is_object()) return {};
  const auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (!it->is_array()) {
    fail(ErrorCode::kFormat, where + ": chat_template", "is a {}, not a string or a list",
         json_type_name(*it));
  }
  for (const auto& entry : *it) {
    if (!entry.is_object()) continue;
    const auto name = entry.find("name");
    const auto text = entry.find("template");
    if (name != entry.end() && text != entry.end() && name->is_string() && text->is_string() &&
        name->get_ref<const std::string&>() == "default") {
      return text->get<std::string>();
    }
  }
  return {};
}

}  // namespace

std::shared_ptr<const ModelFileImpl> ModelFileImpl::open_hf(const fs::path& folder) {
  auto impl = std::make_shared<ModelFileImpl>();
  impl->format = ModelFormat::kHuggingFace;
  impl->path = folder;

  const fs::path config_path = folder / "config.json";
  if (!is_file(config_path)) {
    fail(ErrorCode::kNotFound, folder.string(), "no config.json in the folder");
  }
  const std::string config_text = read_text_file(config_path);
  impl->config = parse_hf_config(config_text, config_path.string());
  impl->metadata = flatten_hf_config(config_text, config_path.string());
  ModelConfig& config = impl->config;

  const SafetensorsSet& weights = impl->weights_.emplace(SafetensorsSet::open_folder(folder));
  for (const SafetensorsSet::Entry& entry : weights.entries()) {
    const SafetensorsTensor& tensor = *entry.tensor;
    const std::string where = entry.shard->name() + ": " + tensor.name;
    const auto name = gguf_tensor_name(config.architecture, tensor.name);
    if (!name) continue;  // a buffer, not a weight
    // Tied embeddings: the model reads token_embd; a stored copy of lm_head is dropped.
    if (*name == "output.weight" && config.tie_embeddings) continue;
    const auto dtype = to_dtype(tensor.dtype);
    if (!dtype) {
      fail(ErrorCode::kUnsupported, where, "dtype {} is not supported for weights",
           safetensors_dtype_name(tensor.dtype));
    }
    impl->add_tensor(TensorInfo{*name, *dtype, tensor.shape, tensor.bytes()}, tensor.data, where);
  }

  const auto embedding = impl->tensor_index.find("token_embd.weight");
  if (embedding == impl->tensor_index.end()) {
    fail(ErrorCode::kFormat, folder.string(), "no token embedding tensor ({})",
         config.architecture == "bert" ? "bert.embeddings.word_embeddings.weight"
                                       : "model.embed_tokens.weight");
  }
  const TensorInfo& embedding_info = impl->tensors[embedding->second];
  if (embedding_info.shape != std::vector<int64_t>{config.vocab_size, config.hidden_size}) {
    fail(ErrorCode::kFormat, folder.string() + ": token_embd.weight",
         "shape [{}] does not match config.json vocab_size {} × hidden_size {}",
         fmt::join(embedding_info.shape, ", "), config.vocab_size, config.hidden_size);
  }
  if (config.architecture != "bert" && !impl->tensor_index.contains("output.weight")) {
    config.tie_embeddings = true;  // no lm_head: the output projection is the embedding
  }

  impl->has_tokenizer = is_file(folder / "tokenizer.json") || is_file(folder / "tokenizer.model");
  impl->chat_template = read_chat_template(folder);
  impl->finish();
  return impl;
}

}  // namespace polyinfer::inline v0::detail
