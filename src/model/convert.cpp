// SPDX-License-Identifier: Apache-2.0
// Hugging Face folder → GGUF, laid out as llama.cpp's convert_hf_to_gguf.py (+ llama-quantize).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <system_error>

#include "common/fail.hpp"
#include "common/mapped_file.hpp"
#include "format/hf_config.hpp"
#include "format/json_text.hpp"
#include "format/safetensors.hpp"
#include "kernels/ref/quant_ref.hpp"
#include "model/convert_metadata.hpp"
#include "model/convert_stream.hpp"
#include "model/convert_tokenizer.hpp"
#include "model/convert_types.hpp"
#include "model/hf_tensor_names.hpp"
#include "polyinfer/model_writer.hpp"

namespace polyinfer {
inline namespace v0 {

namespace fs = std::filesystem;
using detail::fail;
using Json = nlohmann::ordered_json;

namespace {

/// One tensor of the folder as it will be written.
struct Source {
  std::string shard;  // file name of the shard (converter order: shards by name)
  std::string hf_name;
  std::string name;  // GGUF name
  const detail::SafetensorsTensor* tensor = nullptr;
  std::vector<int64_t> ne;    // ggml order, size-1 dimensions squeezed out
  int64_t permute_heads = 0;  // > 0: Llama Q/K rows permuted for `permute_heads` heads
};

const Json* member(const Json& object, std::string_view key) {
  const auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

/// The first of `keys` that config.json holds as a number.
const Json* find_number(const Json& config, std::initializer_list<std::string_view> keys) {
  for (const std::string_view key : keys) {
    if (const Json* value = member(config, key); value != nullptr && value->is_number()) {
      return value;
    }
  }
  return nullptr;
}

/// convert_hf_to_gguf's LlamaModel.permute: rows reshaped (heads, 2, head_dim / 2) and the last
/// two axes swapped, so RoPE's rotate-half pairs become adjacent. Source row of output row `r`.
int64_t permuted_source_row(int64_t r, int64_t rows, int64_t heads) {
  const int64_t head_dim = rows / heads;
  const int64_t half = head_dim / 2;
  const int64_t head = r / head_dim;
  const int64_t within = r % head_dim;
  return head * head_dim + (within % 2) * half + within / 2;
}

std::vector<Source> collect_sources(const detail::SafetensorsSet& weights,
                                    const ModelConfig& config) {
  std::vector<Source> sources;
  for (const auto& entry : weights.entries()) {
    const detail::SafetensorsTensor& tensor = *entry.tensor;
    const std::string where = entry.shard->name() + ": " + tensor.name;
    if (config.architecture == "bert" && (tensor.name.starts_with("cls.predictions") ||
                                          tensor.name.starts_with("cls.seq_relationship"))) {
      continue;  // pre-training heads, dropped by the converter
    }
    const auto name = detail::gguf_tensor_name(config.architecture, tensor.name);
    if (!name) continue;  // a buffer (rotary inv_freq, position_ids)
    if (*name == tensor.name) {
      fail(ErrorCode::kUnsupported, where,
           "no GGUF name for this tensor in a {} model (convert_hf_to_gguf stops here too)",
           config.architecture);
    }
    if (*name == "output.weight" && config.tie_embeddings) continue;
    if (!detail::to_dtype(tensor.dtype) || (tensor.dtype != detail::SafetensorsDType::kF32 &&
                                            tensor.dtype != detail::SafetensorsDType::kF16 &&
                                            tensor.dtype != detail::SafetensorsDType::kBF16)) {
      fail(ErrorCode::kUnsupported, where, "dtype {} (f32, f16 and bf16 convert)",
           detail::safetensors_dtype_name(tensor.dtype));
    }
    Source source;
    source.shard = fs::path(entry.shard->name()).filename().string();
    source.hf_name = tensor.name;
    source.name = *name;
    source.tensor = &tensor;
    for (auto it = tensor.shape.rbegin(); it != tensor.shape.rend(); ++it) {
      if (*it != 1) source.ne.push_back(*it);  // the converter squeezes
    }
    if (source.ne.empty()) source.ne.push_back(1);
    if (source.ne.size() > 4) fail(ErrorCode::kUnsupported, where, "more than 4 dimensions");
    if (config.architecture == "llama") {
      const bool q = source.name.find(".attn_q.") != std::string::npos;
      const bool k = source.name.find(".attn_k.") != std::string::npos;
      if (q || k) {
        source.permute_heads = q ? config.num_heads : config.num_kv_heads;
        const int64_t rows = source.ne.size() == 1 ? source.ne[0] : source.ne[1];
        if (source.permute_heads <= 0 || rows % (2 * source.permute_heads) != 0) {
          fail(ErrorCode::kFormat, where, "{} rows do not split into {} heads of an even size",
               rows, source.permute_heads);
        }
      }
    }
    sources.push_back(std::move(source));
  }
  // safe_open(...).keys() lists names sorted; shards are read in file-name order.
  std::sort(sources.begin(), sources.end(), [](const Source& a, const Source& b) {
    return a.shard != b.shard ? a.shard < b.shard : a.hf_name < b.hf_name;
  });
  return sources;
}

/// A fill function reading f32 rows of a safetensors tensor (any float type), Q/K rows
/// permuted for Llama.
std::function<void(int64_t, int64_t, float*)> source_rows(const Source& source) {
  const detail::SafetensorsTensor* tensor = source.tensor;
  const DType dtype = *detail::to_dtype(tensor->dtype);
  const int64_t row = source.ne[0];
  const int64_t rows = tensor->elements() / row;
  const int64_t element_bytes = detail::safetensors_element_bytes(tensor->dtype);
  const int64_t heads = source.permute_heads;
  const bool vector = source.ne.size() == 1;
  return [tensor, dtype, row, rows, element_bytes, heads, vector](int64_t first, int64_t count,
                                                                  float* out) {
    if (heads > 0 && vector) {  // a Q/K bias: its elements are the rows to permute
      for (int64_t i = 0; i < row; ++i) {
        const int64_t from = permuted_source_row(i, row, heads);
        detail::ref::dequantize(dtype, tensor->data + from * element_bytes, out + i, 1);
      }
      return;
    }
    for (int64_t r = 0; r < count; ++r) {
      const int64_t from = heads > 0 ? permuted_source_row(first + r, rows, heads) : first + r;
      detail::ref::dequantize(dtype, tensor->data + from * row * element_bytes, out + r * row, row);
    }
  };
}

void set_u32(detail::GgufWriter& writer, const std::string& key, const Json* value) {
  if (value != nullptr && value->is_number_integer() && value->get<int64_t>() >= 0) {
    writer.set(key, detail::GgufValue::make_u32(value->get<uint32_t>()));
  }
}

void set_f32(detail::GgufWriter& writer, const std::string& key, const Json* value) {
  if (value != nullptr && value->is_number()) {
    writer.set(key, detail::GgufValue::make_f32(value->get<float>()));
  }
}

/// convert_hf_to_gguf's Model.set_gguf_parameters and the architecture's additions.
void add_model_metadata(detail::GgufWriter& writer, const Json& hparams, const ModelConfig& config,
                        const fs::path& folder, WeightType type) {
  const std::string& arch = config.architecture;
  const auto key = [&](std::string_view suffix) { return arch + "." + std::string(suffix); };
  set_u32(writer, key("block_count"), find_number(hparams, {"num_hidden_layers", "n_layer"}));
  set_u32(writer, key("context_length"),
          find_number(hparams, {"max_position_embeddings", "n_ctx"}));
  set_u32(writer, key("embedding_length"), find_number(hparams, {"hidden_size", "n_embd"}));
  set_u32(writer, key("feed_forward_length"),
          find_number(hparams, {"intermediate_size", "n_inner"}));
  set_u32(writer, key("attention.head_count"),
          find_number(hparams, {"num_attention_heads", "n_head"}));
  set_u32(writer, key("attention.head_count_kv"), find_number(hparams, {"num_key_value_heads"}));
  // The Feb-2025 converter reads a top-level rope_theta; transformers 5 keeps it in
  // rope_parameters, which parse_hf_config reads.
  if (member(hparams, "rope_theta") != nullptr || member(hparams, "rope_parameters") != nullptr) {
    writer.set(key("rope.freq_base"),
               detail::GgufValue::make_f32(static_cast<float>(config.rope_theta)));
  }
  set_f32(writer, key("attention.layer_norm_rms_epsilon"), find_number(hparams, {"rms_norm_eps"}));
  set_f32(writer, key("attention.layer_norm_epsilon"),
          find_number(hparams, {"layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"}));
  if (const Json* head_dim = find_number(hparams, {"head_dim"})) {
    set_u32(writer, key("attention.key_length"), head_dim);
    set_u32(writer, key("attention.value_length"), head_dim);
  }
  detail::add_file_type_in_place(writer, type);
  if (arch == "llama") {
    set_u32(writer, key("vocab_size"), find_number(hparams, {"vocab_size"}));
    writer.set(key("rope.dimension_count"),
               detail::GgufValue::make_u32(static_cast<uint32_t>(config.head_dim)));
    if (config.rope_scaling.type == "linear") {
      writer.set(key("rope.scaling.type"), detail::GgufValue::make_string("linear"));
      writer.set(key("rope.scaling.factor"),
                 detail::GgufValue::make_f32(static_cast<float>(config.rope_scaling.factor)));
    }
    const fs::path tokenizer_config = folder / "tokenizer_config.json";
    std::error_code ec;
    if (fs::is_regular_file(tokenizer_config, ec)) {
      const Json tc =
          detail::parse_json(detail::read_text_file(tokenizer_config), tokenizer_config.string());
      // A null add_prefix_space is left out (the converter would write it as false).
      if (const Json* prefix = tc.is_object() ? member(tc, "add_prefix_space") : nullptr;
          prefix != nullptr && prefix->is_boolean()) {
        writer.set("tokenizer.ggml.add_space_prefix",
                   detail::GgufValue::make_bool(prefix->get<bool>()));
      }
    }
  }
  if (arch == "bert") {
    writer.set(key("attention.causal"), detail::GgufValue::make_bool(false));
    if (!config.labels.empty()) {  // newer converters: the classifier's labels
      writer.set(key("classifier.output_labels"), detail::gguf_string_array(config.labels));
    }
  }
}

}  // namespace

WriteSummary convert_model(const fs::path& folder, const fs::path& out,
                           const ConvertOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const fs::path config_path = folder / "config.json";
  std::error_code ec;
  if (!fs::is_regular_file(config_path, ec)) {
    fail(ErrorCode::kNotFound, folder.string(), "no config.json: not a Hugging Face folder");
  }
  const std::string config_text = detail::read_text_file(config_path);
  const ModelConfig config = detail::parse_hf_config(config_text, config_path.string());
  const Json hparams = detail::parse_json(config_text, config_path.string());
  const auto weights = detail::SafetensorsSet::open_folder(folder);
  const std::vector<Source> sources = collect_sources(weights, config);

  const bool has_output = std::any_of(sources.begin(), sources.end(),
                                      [](const Source& s) { return s.name == "output.weight"; });
  const bool tied = config.architecture != "bert" && !has_output;
  std::vector<detail::StreamTensor> tensors;
  const std::vector<float> rope_factors =
      config.architecture == "llama" && config.rope_scaling.type == "llama3"
          ? detail::llama3_rope_factors(config.rope_scaling, config.rope_theta, config.head_dim)
          : std::vector<float>{};
  if (!rope_factors.empty()) {  // LlamaModel.prepare_tensors adds it before the weights
    detail::StreamTensor rope;
    rope.name = "rope_freqs.weight";
    rope.dtype = DType::kF32;
    rope.ne = {static_cast<int64_t>(rope_factors.size())};
    rope.fill = [&rope_factors](int64_t, int64_t, float* out_values) {
      std::copy(rope_factors.begin(), rope_factors.end(), out_values);
    };
    tensors.push_back(std::move(rope));
  }
  for (const Source& source : sources) {
    detail::StreamTensor tensor;
    tensor.name = source.name;
    tensor.ne = source.ne;
    const detail::TensorSlot slot{source.name, static_cast<int>(source.ne.size()), source.ne[0],
                                  config.num_layers, tied};
    tensor.dtype = detail::gguf_tensor_type(options.type, slot);
    tensor.gguf_py_q8_0 = options.type == WeightType::kQ8_0;
    tensor.fill = source_rows(source);
    tensors.push_back(std::move(tensor));
  }
  if (detail::is_requantized(options.type)) {  // llama-quantize writes the loader's order
    std::stable_sort(tensors.begin(), tensors.end(), [](const auto& a, const auto& b) {
      return detail::loader_order_less(a.name, b.name);
    });
  }

  detail::GgufWriter writer;
  fs::path folder_path = fs::absolute(folder).lexically_normal();
  if (folder_path.filename().empty()) folder_path = folder_path.parent_path();  // "dir/"
  const std::string name = !options.name.empty()
                               ? options.name
                               : detail::gguf_model_title(folder_path.filename().string());
  detail::add_general_metadata(writer, config.architecture, name,
                               detail::count_parameters(tensors));
  add_model_metadata(writer, hparams, config, folder, options.type);
  std::string tokenizer = detail::add_converted_tokenizer(writer, folder, hparams,
                                                          config.architecture, options.tokenizer);
  detail::finish_metadata(writer, options.type);
  detail::write_streamed(writer, tensors, out, options.threads);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return detail::summarize_written(tensors, out, std::move(tokenizer), seconds);
}

}  // namespace v0
}  // namespace polyinfer
