// SPDX-License-Identifier: Apache-2.0
// LlamaModel::load: hyper-parameters, weights in place or derived at the tier, RoPE table.
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/fail.hpp"
#include "common/mapped_file.hpp"
#include "model/llama.hpp"
#include "model/tier.hpp"

namespace polyinfer::inline v0::detail {

/// Fills a LlamaModel's weights from its file: shape checks, tier recipes, owned copies.
class LlamaLoader {
 public:
  LlamaLoader(LlamaModel& model, Tier tier, bool repack)
      : model_(model), file_(model.file_), tier_(tier), repack_(repack) {}

  void load() {
    const ModelConfig& config = file_.config();
    LlamaShape& shape = model_.shape_;
    const int64_t hidden = shape.hidden;
    const int64_t q_rows = shape.heads * shape.head_dim;
    const int64_t kv_rows = shape.kv_heads * shape.head_dim;
    const bool tied = !file_.has_tensor("output.weight");

    // Token embedding: looked up; when tied it is also the output projection.
    const MatrixRole embedding_role = tied ? MatrixRole::kOutput : MatrixRole::kTokenEmbedding;
    const Prepared embedding =
        prepare("token_embd.weight", embedding_role, -1, shape.vocab, hidden);
    model_.embedding_dtype_ = embedding.dtype;
    model_.embedding_data_ = embedding.data;
    model_.embedding_row_bytes_ = dtype_bytes(embedding.dtype, hidden);
    if (tied) {
      model_.output_ = matrix(embedding, shape.vocab, hidden);
    } else {
      const Prepared output =
          prepare("output.weight", MatrixRole::kOutput, -1, shape.vocab, hidden);
      model_.output_ = matrix(output, shape.vocab, hidden);
    }
    model_.output_norm_ = vector("output_norm.weight", hidden);

    model_.layers_.reserve(static_cast<size_t>(shape.layers));
    for (int64_t l = 0; l < shape.layers; ++l) {
      const std::string blk = fmt::format("blk.{}.", l);
      model_.layers_.push_back(LlamaLayer{
          .attn_norm = vector(blk + "attn_norm.weight", hidden),
          .q = linear(blk + "attn_q", MatrixRole::kOther, l, q_rows, hidden),
          .k = linear(blk + "attn_k", MatrixRole::kOther, l, kv_rows, hidden),
          .v = linear(blk + "attn_v", MatrixRole::kAttnV, l, kv_rows, hidden),
          .o = linear(blk + "attn_output", MatrixRole::kOther, l, hidden, q_rows),
          .ffn_norm = vector(blk + "ffn_norm.weight", hidden),
          .gate = linear(blk + "ffn_gate", MatrixRole::kOther, l, shape.ffn, hidden),
          .up = linear(blk + "ffn_up", MatrixRole::kOther, l, shape.ffn, hidden),
          .down = linear(blk + "ffn_down", MatrixRole::kFfnDown, l, hidden, shape.ffn),
      });
    }

    const RopeScaling& scaling = config.rope_scaling;
    model_.rope_ = make_rope_table(shape.head_dim, config.rope_theta, scaling.type, scaling.factor,
                                   scaling.low_freq_factor, scaling.high_freq_factor,
                                   scaling.original_max_positions);
    if (!model_.rope_.inv_freq) {
      fail(ErrorCode::kUnsupported, file_.path().string(),
           "RoPE settings not supported: head_dim {}, theta {}, scaling \"{}\" (factor {})",
           shape.head_dim, config.rope_theta, scaling.type, scaling.factor);
    }
    // Llama 3.1 GGUFs carry the scaling as per-frequency divisors (llama.cpp's rope_freqs).
    if (file_.has_tensor("rope_freqs.weight")) {
      const std::vector<float> factors = vector("rope_freqs.weight", shape.head_dim / 2);
      for (int64_t i = 0; i < shape.head_dim / 2; ++i) {
        model_.rope_.inv_freq[static_cast<size_t>(i)] /= factors[static_cast<size_t>(i)];
      }
    }
  }

 private:
  struct Prepared {
    DType dtype;
    const std::byte* data;
    bool in_place;  // data lies in the file mapping
  };

  [[nodiscard]] TensorView tensor(const std::string& name, const std::vector<int64_t>& shape) {
    if (!file_.has_tensor(name)) {
      fail(ErrorCode::kFormat, file_.path().string() + ": " + name,
           "missing tensor (the {} architecture needs it)", file_.config().architecture);
    }
    TensorView view = file_.tensor(name);
    if (view.shape != shape) {
      fail(ErrorCode::kFormat, file_.path().string() + ": " + name,
           "shape [{}] where [{}] was expected from the hyper-parameters",
           fmt::join(view.shape, ", "), fmt::join(shape, ", "));
    }
    return view;
  }

  Prepared prepare(const std::string& name, MatrixRole role, int64_t layer, int64_t rows,
                   int64_t cols) {
    const TensorView view = tensor(name, {rows, cols});
    const MatrixSlot slot{file_.path().string() + ": " + name, role, layer, model_.shape_.layers,
                          cols};
    const DType target = tier_matrix_dtype(tier_, view.dtype, slot);
    model_.full_precision_ =
        model_.full_precision_ && (target == DType::kF32 || target == DType::kBF16);
    if (role != MatrixRole::kTokenEmbedding)
      model_.weight_bytes_ += dtype_bytes(target, rows * cols);
    if (target == view.dtype) return {target, view.data, true};  // in place, from the mapping
    std::vector<std::byte> bytes = derive_matrix(view, target, cols);
    model_.owned_bytes_ += bytes.size();
    model_.owned_.push_back(std::move(bytes));
    return {target, model_.owned_.back().data(), false};
  }

  // Once repacked, a mapped matrix's stored pages leave memory (read back from the file if ever
  // needed), so that about 1× the file stays resident, during the load too.
  static void drop_stored(const Prepared& prepared, const PackedMatrix& packed) {
    if (prepared.in_place && !packed.reads_stored()) {
      release_mapped_pages(prepared.data, packed.bytes());
    }
  }

  std::unique_ptr<PackedMatrix> matrix(const Prepared& prepared, int64_t rows, int64_t cols) {
    auto packed =
        std::make_unique<PackedMatrix>(prepared.dtype, rows, cols, prepared.data, repack_);
    model_.repacked_bytes_ += packed->packed_bytes();  // kernel layouts, if any
    drop_stored(prepared, *packed);
    return packed;
  }

  Linear linear(const std::string& base, MatrixRole role, int64_t layer, int64_t rows,
                int64_t cols) {
    const Prepared weight = prepare(base + ".weight", role, layer, rows, cols);
    Linear result{PackedMatrix(weight.dtype, rows, cols, weight.data, repack_), {}};
    model_.repacked_bytes_ += result.weight.packed_bytes();
    drop_stored(weight, result.weight);
    if (file_.has_tensor(base + ".bias")) result.bias = vector(base + ".bias", rows);
    return result;
  }

  std::vector<float> vector(const std::string& name, int64_t size) {
    return to_f32(tensor(name, {size}));
  }

  LlamaModel& model_;
  const ModelFile& file_;
  Tier tier_;
  bool repack_;
};

LlamaModel::LlamaModel(ModelFile file) : file_(std::move(file)) {}

std::unique_ptr<LlamaModel> LlamaModel::load(const ModelFile& file, Tier tier, bool cpu_layouts) {
  const ModelConfig& config = file.config();
  const std::string where = file.path().string();
  if (config.architecture != "llama" && config.architecture != "qwen2") {
    fail(ErrorCode::kUnsupported, where,
         "architecture \"{}\" ({}) is not a supported decoder (llama, mistral, qwen2)",
         config.architecture, config.source_architecture);
  }
  if (config.hidden_act != "silu" && !config.hidden_act.empty()) {
    fail(ErrorCode::kUnsupported, where, "activation \"{}\" is not supported (silu)",
         config.hidden_act);
  }
  const auto need = [&](const char* key, int64_t value) {
    if (value <= 0) fail(ErrorCode::kFormat, where + ": " + key, "missing or not positive");
  };
  need("vocab_size", config.vocab_size);
  need("hidden_size", config.hidden_size);
  need("intermediate_size", config.intermediate_size);
  need("num_layers", config.num_layers);
  need("num_heads", config.num_heads);
  need("num_kv_heads", config.num_kv_heads);
  need("head_dim", config.head_dim);
  if (config.num_heads % config.num_kv_heads != 0) {
    fail(ErrorCode::kFormat, where, "{} heads are not a multiple of {} kv heads", config.num_heads,
         config.num_kv_heads);
  }

  auto model = std::make_unique<LlamaModel>(file);
  model->tier_ = tier;
  model->shape_ = LlamaShape{
      .vocab = config.vocab_size,
      .hidden = config.hidden_size,
      .ffn = config.intermediate_size,
      .layers = config.num_layers,
      .heads = config.num_heads,
      .kv_heads = config.num_kv_heads,
      .head_dim = config.head_dim,
      .norm_eps = static_cast<float>(config.norm_eps),
      .rope_layout = config.rope_interleaved ? RopeLayout::kInterleaved : RopeLayout::kHalf,
  };
  LlamaLoader(*model, tier, cpu_layouts).load();
  return model;
}

KvCacheShape LlamaModel::kv_shape(KvType type, int64_t block_rows) const noexcept {
  return KvCacheShape{shape_.layers, shape_.kv_heads, shape_.head_dim, type, block_rows};
}

}  // namespace polyinfer::inline v0::detail
