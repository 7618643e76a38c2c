// SPDX-License-Identifier: Apache-2.0
// BertModel::forward: embeddings, post-norm encoder layers, CLS / mean / pooler / classifier.
#include "model/bert.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "common/fail.hpp"
#include "kernels/ref/quant_ref.hpp"

namespace polyinfer::inline v0::detail {

namespace {

void add_rows(float* y, const float* x, int64_t count) {
  for (int64_t i = 0; i < count; ++i) y[i] += x[i];
}

const float* or_null(const std::vector<float>& values) {
  return values.empty() ? nullptr : values.data();
}

/// A KvView over `rows` contiguous f32 rows of `heads` × `head_dim` (one block).
struct ContiguousKv {
  const std::byte* block;
  KvView view;

  ContiguousKv(const float* data, int64_t rows, int64_t heads, int64_t head_dim)
      : block(reinterpret_cast<const std::byte*>(data)) {
    view = KvView{KvType::kF32, heads, head_dim, rows, &block, rows};
  }
  ContiguousKv(const ContiguousKv&) = delete;
  ContiguousKv& operator=(const ContiguousKv&) = delete;
};

}  // namespace

void BertModel::check(std::span<const BertSequence> batch) const {
  for (size_t s = 0; s < batch.size(); ++s) {
    const BertSequence& sequence = batch[s];
    const std::string where = fmt::format("sequence {}", s);
    if (sequence.ids.empty()) fail(ErrorCode::kInvalidArgument, where, "no tokens");
    if (static_cast<int64_t>(sequence.ids.size()) > shape_.positions) {
      fail(ErrorCode::kInvalidArgument, where,
           "{} tokens exceed the model's {} positions (max_position_embeddings)",
           sequence.ids.size(), shape_.positions);
    }
    for (size_t i = 0; i < sequence.ids.size(); ++i) {
      if (sequence.ids[i] < 0 || sequence.ids[i] >= shape_.vocab) {
        fail(ErrorCode::kInvalidArgument, fmt::format("{}: token {}", where, i),
             "id {} is out of range (vocabulary of {})", sequence.ids[i], shape_.vocab);
      }
    }
    if (sequence.token_types.empty()) continue;
    if (sequence.token_types.size() != sequence.ids.size()) {
      fail(ErrorCode::kInvalidArgument, where, "{} token types for {} tokens",
           sequence.token_types.size(), sequence.ids.size());
    }
    for (size_t i = 0; i < sequence.token_types.size(); ++i) {
      if (sequence.token_types[i] < 0 || sequence.token_types[i] >= shape_.token_types) {
        fail(ErrorCode::kInvalidArgument, fmt::format("{}: token {}", where, i),
             "token type {} is out of range ({} types)", sequence.token_types[i],
             shape_.token_types);
      }
    }
  }
}

void BertModel::embed(std::span<const BertSequence> batch, float* out) const {
  const int64_t hidden = shape_.hidden;
  for (const BertSequence& sequence : batch) {
    for (size_t i = 0; i < sequence.ids.size(); ++i) {
      const std::byte* word =
          embedding_data_ + static_cast<uint64_t>(sequence.ids[i]) * embedding_row_bytes_;
      ref::dequantize(embedding_dtype_, word, out, hidden);
      const int32_t type = sequence.token_types.empty() ? 0 : sequence.token_types[i];
      add_rows(out, position_embedding_.data() + static_cast<int64_t>(i) * hidden, hidden);
      add_rows(out, token_type_embedding_.data() + int64_t{type} * hidden, hidden);
      out += hidden;
    }
  }
}

void BertModel::linear(const BertLinear& linear, const float* x, int64_t tokens, float* y,
                       ThreadPool* pool) {
  const int64_t rows = linear.weight.rows();
  matmul(linear.weight, x, tokens, linear.weight.cols(), y, rows, pool);
  if (linear.bias.empty()) return;
  for (int64_t t = 0; t < tokens; ++t) add_rows(y + t * rows, linear.bias.data(), rows);
}

BertOutputs BertModel::forward(std::span<const BertSequence> batch, ThreadPool* pool,
                               const EncoderObserver* observer) const {
  check(batch);
  const BertShape& s = shape_;
  const auto sequences = static_cast<int64_t>(batch.size());
  BertOutputs out;
  out.first.reserve(batch.size() + 1);
  int64_t tokens = 0;
  for (const BertSequence& sequence : batch) {
    out.first.push_back(tokens);
    tokens += static_cast<int64_t>(sequence.ids.size());
  }
  out.first.push_back(tokens);
  if (tokens == 0) return out;

  const auto size = [](int64_t count) { return static_cast<size_t>(count); };
  std::vector<float> x(size(tokens * s.hidden));
  std::vector<float> sum(size(tokens * s.hidden));
  std::vector<float> q(size(tokens * s.hidden));
  std::vector<float> k(size(tokens * s.hidden));
  std::vector<float> v(size(tokens * s.hidden));
  std::vector<float> attn(size(tokens * s.hidden));
  std::vector<float> up(size(tokens * s.ffn));
  std::vector<float> act(size(tokens * s.ffn));

  // Embeddings: word + position + token type, then LayerNorm.
  embed(batch, sum.data());
  layer_norm(sum.data(), embedding_norm_.weight.data(), or_null(embedding_norm_.bias), s.norm_eps,
             tokens, s.hidden, x.data());
  if (observer) (*observer)("embeddings", x.data(), tokens, s.hidden);

  for (int64_t l = 0; l < s.layers; ++l) {
    const BertLayer& layer = layers_[static_cast<size_t>(l)];
    // Self-attention: projections over the whole batch; each sequence attends to itself.
    linear(layer.q, x.data(), tokens, q.data(), pool);
    linear(layer.k, x.data(), tokens, k.data(), pool);
    linear(layer.v, x.data(), tokens, v.data(), pool);
    for (int64_t b = 0; b < sequences; ++b) {
      const int64_t first = out.first[size(b)];
      const int64_t count = out.first[size(b + 1)] - first;
      const ContiguousKv keys(k.data() + first * s.hidden, count, s.heads, s.head_dim);
      const ContiguousKv values(v.data() + first * s.hidden, count, s.heads, s.head_dim);
      attention(q.data() + first * s.hidden, count, s.heads, keys.view, values.view,
                /*positions=*/nullptr, /*causal=*/false, /*scale=*/0.0f,
                attn.data() + first * s.hidden, pool);
    }
    linear(layer.o, attn.data(), tokens, sum.data(), pool);
    add_rows(sum.data(), x.data(), tokens * s.hidden);
    layer_norm(sum.data(), layer.attn_norm.weight.data(), or_null(layer.attn_norm.bias), s.norm_eps,
               tokens, s.hidden, x.data());

    // Feed-forward: down(gelu(up(x))), then add & LayerNorm.
    linear(layer.up, x.data(), tokens, up.data(), pool);
    gelu(up.data(), act.data(), tokens * s.ffn);
    linear(layer.down, act.data(), tokens, sum.data(), pool);
    add_rows(sum.data(), x.data(), tokens * s.hidden);
    layer_norm(sum.data(), layer.output_norm.weight.data(), or_null(layer.output_norm.bias),
               s.norm_eps, tokens, s.hidden, x.data());
    if (observer) (*observer)(fmt::format("layer{}.out", l), x.data(), tokens, s.hidden);
  }

  // Per sequence: the [CLS] row and the mean over tokens (accumulated in double).
  out.cls.resize(size(sequences * s.hidden));
  out.mean.resize(size(sequences * s.hidden));
  std::vector<double> total(size(s.hidden));
  for (int64_t b = 0; b < sequences; ++b) {
    const int64_t first = out.first[size(b)];
    const int64_t count = out.first[size(b + 1)] - first;
    std::copy_n(x.data() + first * s.hidden, s.hidden, out.cls.data() + b * s.hidden);
    std::fill(total.begin(), total.end(), 0.0);
    for (int64_t t = first; t < first + count; ++t) {
      for (int64_t c = 0; c < s.hidden; ++c) total[size(c)] += x[size(t * s.hidden + c)];
    }
    for (int64_t c = 0; c < s.hidden; ++c) {
      out.mean[size(b * s.hidden + c)] =
          static_cast<float>(total[size(c)] / static_cast<double>(count));
    }
  }
  if (pooler_) {
    out.pooled.resize(size(sequences * s.hidden));
    linear(*pooler_, out.cls.data(), sequences, out.pooled.data(), pool);
    for (float& value : out.pooled) value = std::tanh(value);
  }
  if (classifier_) {
    out.logits.resize(size(sequences * s.labels));
    linear(*classifier_, out.pooled.data(), sequences, out.logits.data(), pool);
  }
  out.hidden = std::move(x);
  return out;
}

}  // namespace polyinfer::inline v0::detail
