// SPDX-License-Identifier: Apache-2.0
// Synthetic models: random weights of real shapes, streamed into a GGUF that llama.cpp loads.
#include "model/synth.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cmath>

#include "common/fail.hpp"
#include "model/convert_metadata.hpp"
#include "model/convert_stream.hpp"
#include "model/convert_types.hpp"
#include "model/synth_random.hpp"
#include "model/synth_vocab.hpp"

namespace polyinfer {
inline namespace v0 {

namespace {

SynthShape llama_spm(std::string name, int64_t hidden, int64_t layers, int64_t ffn, int64_t heads,
                     int64_t kv_heads, int64_t context) {
  SynthShape shape;
  shape.name = std::move(name);
  shape.hidden_size = hidden;
  shape.num_layers = layers;
  shape.intermediate_size = ffn;
  shape.num_heads = heads;
  shape.num_kv_heads = kv_heads;
  shape.vocab_size = 32000;
  shape.context_length = context;
  return shape;
}

SynthShape llama3(std::string name, int64_t hidden, int64_t layers, int64_t ffn, int64_t heads,
                  int64_t kv_heads, int64_t context, bool tied, double scaling_factor) {
  SynthShape shape;
  shape.name = std::move(name);
  shape.hidden_size = hidden;
  shape.num_layers = layers;
  shape.intermediate_size = ffn;
  shape.num_heads = heads;
  shape.num_kv_heads = kv_heads;
  shape.vocab_size = 128256;
  shape.context_length = context;
  shape.rope_theta = 500000.0;
  shape.tie_embeddings = tied;
  if (scaling_factor > 0) {
    shape.rope_scaling.type = "llama3";
    shape.rope_scaling.factor = scaling_factor;
    shape.rope_scaling.low_freq_factor = 1.0;
    shape.rope_scaling.high_freq_factor = 4.0;
    shape.rope_scaling.original_max_positions = 8192;
  }
  shape.tokenizer = "gpt2";
  shape.pre_tokenizer = "llama-bpe";
  shape.bos_id = 128000;
  shape.eos_id = 128001;
  return shape;
}

SynthShape qwen25_05b() {
  SynthShape shape;
  shape.name = "qwen2.5-0.5b";
  shape.architecture = "qwen2";
  shape.hidden_size = 896;
  shape.num_layers = 24;
  shape.intermediate_size = 4864;
  shape.num_heads = 14;
  shape.num_kv_heads = 2;
  shape.vocab_size = 151936;
  shape.context_length = 32768;
  shape.rope_theta = 1000000.0;
  shape.norm_eps = 1e-6;
  shape.tie_embeddings = true;
  shape.attention_bias = true;
  shape.tokenizer = "gpt2";
  shape.pre_tokenizer = "qwen2";
  shape.bos_id = 151643;
  shape.eos_id = 151645;
  return shape;
}

// Hyper-parameters from each model's Hugging Face config.json.
const std::array<SynthShape, 6> kShapes{{
    llama_spm("tinyllama-1.1b", 2048, 22, 5632, 32, 4, 2048),
    llama_spm("llama-2-7b", 4096, 32, 11008, 32, 32, 4096),
    llama3("llama-3-8b", 4096, 32, 14336, 32, 8, 8192, false, 0),
    llama3("llama-3.1-8b", 4096, 32, 14336, 32, 8, 131072, false, 8.0),
    llama3("llama-3.2-1b", 2048, 16, 8192, 32, 8, 131072, true, 32.0),
    qwen25_05b(),
}};

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::span<const SynthShape> synth_shapes() noexcept {
  return kShapes;
}

std::optional<SynthShape> synth_shape(std::string_view name) {
  for (const SynthShape& shape : kShapes) {
    if (same_name(shape.name, name)) return shape;
  }
  return std::nullopt;
}

SynthShape synth_custom_shape(int64_t hidden, int64_t layers, int64_t ffn, int64_t heads,
                              int64_t kv_heads, int64_t vocab) {
  SynthShape shape = llama_spm("custom", hidden, layers, ffn, heads, kv_heads, 4096);
  shape.vocab_size = vocab;
  return shape;
}

namespace detail {

void validate_synth_shape(const SynthShape& shape) {
  const auto positive = [](std::string_view field, int64_t value) {
    if (value <= 0 || value > (int64_t{1} << 24)) {
      fail(ErrorCode::kInvalidArgument, fmt::format("synth: {}", field),
           "{} is not a size in [1, 2^24]", value);
    }
  };
  positive("hidden", shape.hidden_size);
  positive("layers", shape.num_layers);
  positive("ffn", shape.intermediate_size);
  positive("heads", shape.num_heads);
  positive("kv_heads", shape.num_kv_heads);
  positive("vocab", shape.vocab_size);
  positive("context", shape.context_length);
  if (shape.architecture != "llama" && shape.architecture != "qwen2") {
    fail(ErrorCode::kInvalidArgument, "synth: arch", "'{}' is not llama or qwen2",
         shape.architecture);
  }
  if (shape.hidden_size % shape.num_heads != 0 || (shape.hidden_size / shape.num_heads) % 2 != 0) {
    fail(ErrorCode::kInvalidArgument, "synth: heads",
         "hidden {} is not a multiple of {} heads of an even dimension", shape.hidden_size,
         shape.num_heads);
  }
  if (shape.num_heads % shape.num_kv_heads != 0) {
    fail(ErrorCode::kInvalidArgument, "synth: kv_heads",
         "{} heads are not a multiple of {} kv heads", shape.num_heads, shape.num_kv_heads);
  }
  if (!shape.rope_scaling.type.empty() && shape.rope_scaling.type != "llama3") {
    fail(ErrorCode::kInvalidArgument, "synth: rope_scaling", "'{}' is not supported (llama3)",
         shape.rope_scaling.type);
  }
}

std::vector<SynthTensor> synth_tensors(const SynthShape& shape) {
  const int64_t hidden = shape.hidden_size;
  const int64_t head_dim = hidden / shape.num_heads;
  const int64_t q_rows = shape.num_heads * head_dim;
  const int64_t kv_rows = shape.num_kv_heads * head_dim;
  std::vector<SynthTensor> tensors;
  tensors.push_back({"token_embd.weight", {hidden, shape.vocab_size}, SynthInit::kNormal});
  tensors.push_back({"output_norm.weight", {hidden}, SynthInit::kNorm});
  if (!shape.tie_embeddings) {
    tensors.push_back({"output.weight", {hidden, shape.vocab_size}, SynthInit::kNormal});
  }
  if (shape.rope_scaling.type == "llama3") {
    tensors.push_back({"rope_freqs.weight", {head_dim / 2}, SynthInit::kRopeFreqs});
  }
  for (int64_t l = 0; l < shape.num_layers; ++l) {
    const std::string blk = fmt::format("blk.{}.", l);
    tensors.push_back({blk + "attn_norm.weight", {hidden}, SynthInit::kNorm});
    tensors.push_back({blk + "attn_q.weight", {hidden, q_rows}, SynthInit::kNormal});
    tensors.push_back({blk + "attn_k.weight", {hidden, kv_rows}, SynthInit::kNormal});
    tensors.push_back({blk + "attn_v.weight", {hidden, kv_rows}, SynthInit::kNormal});
    if (shape.attention_bias) {
      tensors.push_back({blk + "attn_q.bias", {q_rows}, SynthInit::kNormal});
      tensors.push_back({blk + "attn_k.bias", {kv_rows}, SynthInit::kNormal});
      tensors.push_back({blk + "attn_v.bias", {kv_rows}, SynthInit::kNormal});
    }
    tensors.push_back({blk + "attn_output.weight", {q_rows, hidden}, SynthInit::kNormal});
    tensors.push_back({blk + "ffn_norm.weight", {hidden}, SynthInit::kNorm});
    tensors.push_back(
        {blk + "ffn_gate.weight", {hidden, shape.intermediate_size}, SynthInit::kNormal});
    tensors.push_back(
        {blk + "ffn_up.weight", {hidden, shape.intermediate_size}, SynthInit::kNormal});
    tensors.push_back(
        {blk + "ffn_down.weight", {shape.intermediate_size, hidden}, SynthInit::kNormal});
  }
  std::sort(tensors.begin(), tensors.end(), [](const SynthTensor& a, const SynthTensor& b) {
    return loader_order_less(a.name, b.name);
  });
  return tensors;
}

std::vector<float> llama3_rope_factors(const SynthShape& shape) {
  return llama3_rope_factors(shape.rope_scaling, shape.rope_theta,
                             shape.hidden_size / shape.num_heads);
}

void add_synth_metadata(GgufWriter& writer, const SynthShape& shape, WeightType type) {
  const std::string& arch = shape.architecture;
  const auto key = [&](std::string_view suffix) { return arch + "." + std::string(suffix); };
  int64_t parameters = 0;
  for (const SynthTensor& t : synth_tensors(shape)) {
    int64_t elements = 1;
    for (const int64_t d : t.ne) elements *= d;
    parameters += elements;
  }
  add_general_metadata(writer, arch, shape.name + " (random weights)", parameters);
  writer.set(key("block_count"), GgufValue::make_u32(static_cast<uint32_t>(shape.num_layers)));
  writer.set(key("context_length"),
             GgufValue::make_u32(static_cast<uint32_t>(shape.context_length)));
  writer.set(key("embedding_length"),
             GgufValue::make_u32(static_cast<uint32_t>(shape.hidden_size)));
  writer.set(key("feed_forward_length"),
             GgufValue::make_u32(static_cast<uint32_t>(shape.intermediate_size)));
  writer.set(key("attention.head_count"),
             GgufValue::make_u32(static_cast<uint32_t>(shape.num_heads)));
  writer.set(key("attention.head_count_kv"),
             GgufValue::make_u32(static_cast<uint32_t>(shape.num_kv_heads)));
  writer.set(key("rope.freq_base"), GgufValue::make_f32(static_cast<float>(shape.rope_theta)));
  writer.set(key("attention.layer_norm_rms_epsilon"),
             GgufValue::make_f32(static_cast<float>(shape.norm_eps)));
  add_file_type_in_place(writer, type);
  if (arch == "llama") {  // LlamaModel.set_gguf_parameters; Qwen2Model writes neither
    writer.set(key("vocab_size"), GgufValue::make_u32(static_cast<uint32_t>(shape.vocab_size)));
    writer.set(key("rope.dimension_count"),
               GgufValue::make_u32(static_cast<uint32_t>(shape.hidden_size / shape.num_heads)));
  }
  add_vocab_metadata(writer, make_synth_vocab(shape));
  finish_metadata(writer, type);
}

}  // namespace detail

WriteSummary synthesize_model(const SynthShape& shape, const std::filesystem::path& out,
                              const SynthOptions& options) {
  using namespace detail;
  const auto start = std::chrono::steady_clock::now();
  validate_synth_shape(shape);
  GgufWriter writer;
  add_synth_metadata(writer, shape, options.type);

  const std::vector<float> rope_factors =
      shape.rope_scaling.type == "llama3" ? llama3_rope_factors(shape) : std::vector<float>{};
  const uint64_t seed = options.seed;
  std::vector<StreamTensor> tensors;
  for (const SynthTensor& t : synth_tensors(shape)) {
    StreamTensor stream;
    stream.name = t.name;
    stream.ne = t.ne;
    const TensorSlot slot{t.name, static_cast<int>(t.ne.size()), t.ne[0], shape.num_layers,
                          shape.tie_embeddings};
    stream.dtype = gguf_tensor_type(options.type, slot);
    const int64_t row = t.ne[0];
    const uint64_t stream_id = name_hash(t.name);
    const SynthInit init = t.init;
    stream.fill = [row, stream_id, seed, init, &rope_factors](int64_t first, int64_t rows,
                                                              float* values) {
      if (init == SynthInit::kRopeFreqs) {
        std::copy(rope_factors.begin(), rope_factors.end(), values);
        return;
      }
      const float mean = init == SynthInit::kNorm ? 1.0f : 0.0f;
      for (int64_t r = 0; r < rows; ++r) {
        // One stream per row: the values do not depend on how rows are split among threads.
        Xoshiro256 rng(seed, stream_id, static_cast<uint64_t>(first + r));
        fill_normal(rng, mean, 0.02f, values + r * row, row);
      }
    };
    tensors.push_back(std::move(stream));
  }
  write_streamed(writer, tensors, out, options.threads);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summarize_written(tensors, out, "ggml", seconds);
}

}  // namespace v0
}  // namespace polyinfer
