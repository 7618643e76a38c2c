// SPDX-License-Identifier: Apache-2.0
// BertModel::load: hyper-parameters, weights in place or derived at the tier, optional head.
#include <fmt/ranges.h>

#include <array>
#include <cstring>

#include "common/fail.hpp"
#include "common/mapped_file.hpp"
#include "model/bert.hpp"
#include "model/tier.hpp"

namespace polyinfer::inline v0::detail {

namespace {

bool is_quantized_tier(Tier tier) {
  return tier == Tier::kQ8_0 || tier == Tier::kQ4_0 || tier == Tier::kQ4_K;
}

/// The type a matrix takes: tier_matrix_dtype, except that q4_k falls back to q4_0 for rows
/// that do not fill 256-value super-blocks (where the recipe wanted q4_k; its q6_k choices
/// already fall back to q8_0).
DType encoder_matrix_dtype(Tier tier, DType stored, const MatrixSlot& slot) {
  if (tier == Tier::kQ4_K && slot.cols % 256 != 0) {
    MatrixSlot full = slot;
    full.cols = 256;  // what the recipe picks where super-blocks fit
    if (tier_matrix_dtype(tier, stored, full) == DType::kQ4_K) {
      MatrixSlot other = slot;
      other.role = MatrixRole::kOther;
      return tier_matrix_dtype(Tier::kQ4_0, stored, other);
    }
  }
  return tier_matrix_dtype(tier, stored, slot);
}

/// GGUF stems of BERT tensors and their Hugging Face spelling (hf_tensor_names.cpp, reversed).
constexpr std::array<std::pair<std::string_view, std::string_view>, 14> kHfStems{{
    {"token_embd", "embeddings.word_embeddings"},
    {"position_embd", "embeddings.position_embeddings"},
    {"token_types", "embeddings.token_type_embeddings"},
    {"token_embd_norm", "embeddings.LayerNorm"},
    {"cls.output", "classifier"},
    {"cls", "pooler.dense"},
    {"attn_q", "attention.self.query"},
    {"attn_k", "attention.self.key"},
    {"attn_v", "attention.self.value"},
    {"attn_output", "attention.output.dense"},
    {"attn_output_norm", "attention.output.LayerNorm"},
    {"ffn_up", "intermediate.dense"},
    {"ffn_down", "output.dense"},
    {"layer_output_norm", "output.LayerNorm"},
}};

/// The Hugging Face name of a BERT tensor, for errors about folders: "blk.1.ffn_down.weight"
/// → "bert.encoder.layer.1.output.dense.weight" (no "bert." prefix for BertModel).
std::string hf_name(const ModelConfig& config, std::string_view name) {
  const std::string_view prefix = config.source_architecture == "BertModel" ? "" : "bert.";
  const size_t dot = name.rfind('.');
  std::string_view stem = name.substr(0, dot);
  const std::string_view suffix = name.substr(dot);
  std::string layer;
  if (stem.starts_with("blk.")) {
    const size_t end = stem.find('.', 4);
    layer = fmt::format("encoder.layer.{}.", stem.substr(4, end - 4));
    stem = stem.substr(end + 1);
  }
  for (const auto& [gguf, hf] : kHfStems) {
    if (gguf != stem) continue;
    if (hf == "classifier") return fmt::format("{}{}", hf, suffix);
    return fmt::format("{}{}{}{}", prefix, layer, hf, suffix);
  }
  return std::string(name);
}

}  // namespace

/// Fills a BertModel's weights from its file: shape checks, tier recipes, owned copies.
class BertLoader {
 public:
  BertLoader(BertModel& model, Tier tier) : model_(model), file_(model.file_), tier_(tier) {}

  void load() {
    BertShape& shape = model_.shape_;
    const int64_t hidden = shape.hidden;

    // Embeddings: the word embedding is looked up in its tier type; the others in f32.
    const MatrixRole word_role =
        tier_ == Tier::kNative ? MatrixRole::kTokenEmbedding : MatrixRole::kOutput;
    const Prepared word = prepare("token_embd.weight", word_role, -1, shape.vocab, hidden, tier_);
    model_.embedding_dtype_ = word.dtype;
    model_.embedding_data_ = word.data;
    model_.embedding_row_bytes_ = dtype_bytes(word.dtype, hidden);
    shape.positions = rows_of("position_embd.weight", hidden);
    model_.position_embedding_ = vector("position_embd.weight", {shape.positions, hidden});
    shape.token_types = rows_of("token_types.weight", hidden);
    model_.token_type_embedding_ = vector("token_types.weight", {shape.token_types, hidden});
    model_.embedding_norm_ = norm("token_embd_norm", hidden);

    model_.layers_.reserve(static_cast<size_t>(shape.layers));
    for (int64_t l = 0; l < shape.layers; ++l) {
      const std::string blk = fmt::format("blk.{}.", l);
      model_.layers_.push_back(BertLayer{
          .q = linear(blk + "attn_q", MatrixRole::kOther, l, hidden, hidden, tier_),
          .k = linear(blk + "attn_k", MatrixRole::kOther, l, hidden, hidden, tier_),
          .v = linear(blk + "attn_v", MatrixRole::kAttnV, l, hidden, hidden, tier_),
          .o = linear(blk + "attn_output", MatrixRole::kOther, l, hidden, hidden, tier_),
          .attn_norm = norm(blk + "attn_output_norm", hidden),
          .up = linear(blk + "ffn_up", MatrixRole::kOther, l, shape.ffn, hidden, tier_),
          .down = linear(blk + "ffn_down", MatrixRole::kFfnDown, l, hidden, shape.ffn, tier_),
          .output_norm = norm(blk + "layer_output_norm", hidden),
      });
    }

    // The head: pooler (BertModel has one; some GGUF conversions drop it) and classifier.
    const Tier head_tier = is_quantized_tier(tier_) ? Tier::kNative : tier_;
    if (file_.has_tensor("cls.weight")) {
      model_.pooler_ = std::make_unique<BertLinear>(
          linear("cls", MatrixRole::kOther, -1, hidden, hidden, head_tier));
    }
    if (file_.has_tensor("cls.output.weight")) {
      if (!model_.pooler_) {
        fail(ErrorCode::kFormat, where("cls.weight"),
             "missing tensor: the classifier reads the pooler's output");
      }
      shape.labels = rows_of("cls.output.weight", hidden);
      model_.classifier_ = std::make_unique<BertLinear>(
          linear("cls.output", MatrixRole::kOther, -1, shape.labels, hidden, head_tier));
      model_.labels_ = file_.config().labels;
      if (model_.labels_.empty()) {
        for (int64_t i = 0; i < shape.labels; ++i)
          model_.labels_.push_back(fmt::format("LABEL_{}", i));
      }
      if (static_cast<int64_t>(model_.labels_.size()) != shape.labels) {
        fail(ErrorCode::kFormat, where("cls.output.weight"),
             "{} classifier outputs but the config names {} labels (id2label)", shape.labels,
             model_.labels_.size());
      }
    }
  }

 private:
  struct Prepared {
    DType dtype;
    const std::byte* data;
    bool in_place;  // data lies in the file mapping
  };

  /// "PATH: blk.0.attn_q.weight", with the Hugging Face name added for folders.
  [[nodiscard]] std::string where(const std::string& name) const {
    if (file_.format() == ModelFormat::kHuggingFace) {
      return fmt::format("{}: {} ({})", file_.path().string(), name, hf_name(file_.config(), name));
    }
    return file_.path().string() + ": " + name;
  }

  [[nodiscard]] TensorView tensor(const std::string& name) const {
    if (!file_.has_tensor(name)) {
      fail(ErrorCode::kFormat, where(name), "missing tensor (the bert architecture needs it)");
    }
    return file_.tensor(name);
  }

  [[nodiscard]] TensorView tensor(const std::string& name,
                                  const std::vector<int64_t>& shape) const {
    TensorView view = tensor(name);
    if (view.shape != shape) {
      fail(ErrorCode::kFormat, where(name),
           "shape [{}] where [{}] was expected from the hyper-parameters",
           fmt::join(view.shape, ", "), fmt::join(shape, ", "));
    }
    return view;
  }

  /// Rows of a [rows, cols] matrix whose row count is the file's to choose.
  [[nodiscard]] int64_t rows_of(const std::string& name, int64_t cols) const {
    const TensorView view = tensor(name);
    if (view.shape.size() != 2 || view.shape[1] != cols || view.shape[0] <= 0) {
      fail(ErrorCode::kFormat, where(name), "shape [{}] where [N, {}] was expected",
           fmt::join(view.shape, ", "), cols);
    }
    return view.shape[0];
  }

  Prepared prepare(const std::string& name, MatrixRole role, int64_t layer, int64_t rows,
                   int64_t cols, Tier tier) {
    const TensorView view = tensor(name, {rows, cols});
    const MatrixSlot slot{where(name), role, layer, model_.shape_.layers, cols};
    const DType target = encoder_matrix_dtype(tier, view.dtype, slot);
    model_.matrix_types_.emplace_back(name, target);
    // The word embedding is looked up (a row per token), not streamed by the kernels.
    if (!name.starts_with("token_embd")) model_.weight_bytes_ += dtype_bytes(target, rows * cols);
    if (target == view.dtype) return {target, view.data, true};  // in place, from the mapping
    std::vector<std::byte> bytes = derive_matrix(view, target, cols);
    model_.owned_bytes_ += bytes.size();
    model_.owned_.push_back(std::move(bytes));
    return {target, model_.owned_.back().data(), false};
  }

  BertLinear linear(const std::string& base, MatrixRole role, int64_t layer, int64_t rows,
                    int64_t cols, Tier tier) {
    const Prepared weight = prepare(base + ".weight", role, layer, rows, cols, tier);
    BertLinear result{PackedMatrix(weight.dtype, rows, cols, weight.data), {}};
    // Once repacked, the stored pages leave memory (read back from the file if ever needed).
    if (weight.in_place && !result.weight.reads_stored()) {
      release_mapped_pages(weight.data, result.weight.bytes());
    }
    if (file_.has_tensor(base + ".bias")) result.bias = vector(base + ".bias", {rows});
    return result;
  }

  BertNorm norm(const std::string& base, int64_t size) {
    BertNorm result;
    result.weight = vector(base + ".weight", {size});
    if (file_.has_tensor(base + ".bias")) result.bias = vector(base + ".bias", {size});
    return result;
  }

  std::vector<float> vector(const std::string& name, const std::vector<int64_t>& shape) {
    return to_f32(tensor(name, shape));
  }

  BertModel& model_;
  const ModelFile& file_;
  Tier tier_;
};

BertModel::BertModel(ModelFile file) : file_(std::move(file)) {}

std::unique_ptr<BertModel> BertModel::load(const ModelFile& file, Tier tier) {
  const ModelConfig& config = file.config();
  const std::string where = file.path().string();
  if (config.architecture != "bert") {
    fail(ErrorCode::kUnsupported, where,
         "architecture \"{}\" ({}) is not an encoder: Encoder runs bert (BertModel, "
         "BertForSequenceClassification); decoders load as LanguageModel",
         config.architecture, config.source_architecture);
  }
  if (!config.hidden_act.empty() && config.hidden_act != "gelu") {
    fail(ErrorCode::kUnsupported, where + ": hidden_act",
         "activation \"{}\" is not supported (gelu, the exact erf form)", config.hidden_act);
  }
  const auto need = [&](const char* key, int64_t value) {
    if (value <= 0) fail(ErrorCode::kFormat, where + ": " + key, "missing or not positive");
  };
  need("vocab_size", config.vocab_size);
  need("hidden_size", config.hidden_size);
  need("intermediate_size", config.intermediate_size);
  need("num_layers", config.num_layers);
  need("num_heads", config.num_heads);
  if (config.hidden_size % config.num_heads != 0) {
    fail(ErrorCode::kFormat, where, "hidden_size {} is not a multiple of {} heads",
         config.hidden_size, config.num_heads);
  }
  if (config.head_dim != 0 && config.head_dim * config.num_heads != config.hidden_size) {
    fail(ErrorCode::kUnsupported, where, "head_dim {} × {} heads differs from hidden_size {}",
         config.head_dim, config.num_heads, config.hidden_size);
  }

  auto model = std::make_unique<BertModel>(file);
  model->tier_ = tier;
  model->shape_ = BertShape{
      .vocab = config.vocab_size,
      .hidden = config.hidden_size,
      .ffn = config.intermediate_size,
      .layers = config.num_layers,
      .heads = config.num_heads,
      .head_dim = config.hidden_size / config.num_heads,
      .norm_eps = static_cast<float>(config.norm_eps),
  };
  BertLoader(*model, tier).load();
  return model;
}

}  // namespace polyinfer::inline v0::detail
