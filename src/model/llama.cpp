// SPDX-License-Identifier: Apache-2.0
// LlamaModel::forward: embeddings, decoder layers over the paged KV cache, output logits.
#include "model/llama.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "common/fail.hpp"
#include "kernels/ref/quant_ref.hpp"

namespace polyinfer::inline v0::detail {

namespace {

void grow(std::vector<float>& buffer, int64_t size) {
  if (static_cast<int64_t>(buffer.size()) < size) buffer.resize(static_cast<size_t>(size));
}

void add_rows(float* y, const float* x, int64_t count) {
  for (int64_t i = 0; i < count; ++i) y[i] += x[i];
}

}  // namespace

void LlamaModel::check(std::span<const BatchEntry> batch, const KvCache& cache,
                       int64_t context_length) const {
  if (batch.empty()) fail(ErrorCode::kInvalidArgument, "forward", "empty batch");
  for (size_t e = 0; e < batch.size(); ++e) {
    const BatchEntry& entry = batch[e];
    if (entry.tokens.empty()) {
      fail(ErrorCode::kInvalidArgument, "forward", "sequence {} has no tokens", entry.sequence);
    }
    for (size_t other = 0; other < e; ++other) {
      if (batch[other].sequence == entry.sequence) {
        fail(ErrorCode::kInvalidArgument, "forward", "sequence {} appears twice in one batch",
             entry.sequence);
      }
    }
    for (size_t i = 0; i < entry.tokens.size(); ++i) {
      const int32_t id = entry.tokens[i];
      if (id < 0 || id >= shape_.vocab) {
        fail(ErrorCode::kInvalidArgument, fmt::format("token {}", i),
             "id {} is out of range (vocabulary of {})", id, shape_.vocab);
      }
    }
    const int64_t end = cache.length(entry.sequence) + static_cast<int64_t>(entry.tokens.size());
    if (end > context_length) {
      fail(ErrorCode::kInvalidArgument, "forward",
           "{} positions exceed the context length of {} tokens", end, context_length);
    }
  }
}

void LlamaModel::embed(std::span<const int32_t> ids, float* out) const {
  for (size_t t = 0; t < ids.size(); ++t) {
    const std::byte* row = embedding_data_ + static_cast<uint64_t>(ids[t]) * embedding_row_bytes_;
    ref::dequantize(embedding_dtype_, row, out + static_cast<int64_t>(t) * shape_.hidden,
                    shape_.hidden);
  }
}

void LlamaModel::linear(const Linear& linear, const float* x, int64_t tokens, float* y,
                        ThreadPool* pool) const {
  const int64_t rows = linear.weight.rows();
  matmul(linear.weight, x, tokens, linear.weight.cols(), y, rows, pool);
  if (linear.bias.empty()) return;
  for (int64_t t = 0; t < tokens; ++t) add_rows(y + t * rows, linear.bias.data(), rows);
}

bool LlamaModel::forward(std::span<const BatchEntry> batch, KvCache& cache, int64_t context_length,
                         LlamaWorkspace& ws, ThreadPool* pool, std::vector<float>& logits,
                         const ActivationObserver* observer) const {
  check(batch, cache, context_length);
  for (const BatchEntry& entry : batch) {
    if (!cache.reserve(entry.sequence, static_cast<int64_t>(entry.tokens.size()))) return false;
  }

  const LlamaShape& s = shape_;
  int64_t tokens = 0;
  for (const BatchEntry& entry : batch) tokens += static_cast<int64_t>(entry.tokens.size());
  const int64_t q_width = s.heads * s.head_dim;
  const int64_t kv_width = s.kv_heads * s.head_dim;
  grow(ws.x, tokens * s.hidden);
  grow(ws.normed, tokens * s.hidden);
  grow(ws.q, tokens * q_width);
  grow(ws.k, tokens * kv_width);
  grow(ws.v, tokens * kv_width);
  grow(ws.attn, tokens * q_width);
  grow(ws.projected, tokens * s.hidden);
  grow(ws.gate, tokens * s.ffn);
  grow(ws.up, tokens * s.ffn);
  grow(ws.act, tokens * s.ffn);
  if (static_cast<int64_t>(ws.positions.size()) < tokens) {
    ws.positions.resize(static_cast<size_t>(tokens));
  }

  // Positions, and the embeddings of every token of the batch.
  {
    int64_t t = 0;
    for (const BatchEntry& entry : batch) {
      const int64_t start = cache.length(entry.sequence);
      embed(entry.tokens, ws.x.data() + t * s.hidden);
      for (size_t i = 0; i < entry.tokens.size(); ++i) {
        ws.positions[static_cast<size_t>(t)] =
            static_cast<int32_t>(start + static_cast<int64_t>(i));
        ++t;
      }
    }
  }
  if (observer) (*observer)("embeddings", ws.x.data(), tokens, s.hidden);

  const KvType kv_type = cache.shape().type;
  const int64_t block_rows = cache.shape().block_rows;
  for (int64_t l = 0; l < s.layers; ++l) {
    const LlamaLayer& layer = layers_[static_cast<size_t>(l)];
    // Attention: projections over the whole batch, RoPE, then the cache and attention per
    // sequence.
    rms_norm(ws.x.data(), layer.attn_norm.data(), s.norm_eps, tokens, s.hidden, ws.normed.data());
    linear(layer.q, ws.normed.data(), tokens, ws.q.data(), pool);
    linear(layer.k, ws.normed.data(), tokens, ws.k.data(), pool);
    linear(layer.v, ws.normed.data(), tokens, ws.v.data(), pool);
    rope(ws.q.data(), tokens, s.heads, s.head_dim, q_width, ws.positions.data(), rope_,
         s.rope_layout);
    rope(ws.k.data(), tokens, s.kv_heads, s.head_dim, kv_width, ws.positions.data(), rope_,
         s.rope_layout);
    int64_t first = 0;  // the entry's first token in the batch
    for (const BatchEntry& entry : batch) {
      const auto count = static_cast<int64_t>(entry.tokens.size());
      const int64_t start = cache.length(entry.sequence);
      // Store K and V, one run of rows per block (rows of a layer are contiguous in a block).
      for (int64_t done = 0; done < count;) {
        const int64_t position = start + done;
        const int64_t run = std::min(count - done, block_rows - position % block_rows);
        const int64_t source = (first + done) * kv_width;
        kv_store(kv_type, ws.k.data() + source, run, s.kv_heads, s.head_dim,
                 cache.row(entry.sequence, l, KvCache::Kind::kKeys, position));
        kv_store(kv_type, ws.v.data() + source, run, s.kv_heads, s.head_dim,
                 cache.row(entry.sequence, l, KvCache::Kind::kValues, position));
        done += run;
      }
      const KvView keys = cache.view(entry.sequence, l, KvCache::Kind::kKeys, start + count);
      const KvView values = cache.view(entry.sequence, l, KvCache::Kind::kValues, start + count);
      attention(ws.q.data() + first * q_width, count, s.heads, keys, values,
                ws.positions.data() + first, /*causal=*/true, /*scale=*/0.0f,
                ws.attn.data() + first * q_width, pool);
      first += count;
    }
    linear(layer.o, ws.attn.data(), tokens, ws.projected.data(), pool);
    add_rows(ws.x.data(), ws.projected.data(), tokens * s.hidden);

    // Feed-forward: down(silu(gate(x)) · up(x)).
    rms_norm(ws.x.data(), layer.ffn_norm.data(), s.norm_eps, tokens, s.hidden, ws.normed.data());
    linear(layer.gate, ws.normed.data(), tokens, ws.gate.data(), pool);
    linear(layer.up, ws.normed.data(), tokens, ws.up.data(), pool);
    silu_mul(ws.gate.data(), ws.up.data(), ws.act.data(), tokens * s.ffn);
    linear(layer.down, ws.act.data(), tokens, ws.projected.data(), pool);
    add_rows(ws.x.data(), ws.projected.data(), tokens * s.hidden);
    if (observer) (*observer)(fmt::format("layer{}.out", l), ws.x.data(), tokens, s.hidden);
  }
  for (const BatchEntry& entry : batch) cache.commit(entry.sequence, entry.tokens);

  // Output: the final norm and the vocabulary projection of the rows asked for.
  const int64_t rows = logits_rows(batch);
  if (observer) {
    rms_norm(ws.x.data(), output_norm_.data(), s.norm_eps, tokens, s.hidden, ws.normed.data());
    (*observer)("final_norm", ws.normed.data(), tokens, s.hidden);
  }
  logits.resize(static_cast<size_t>(rows * s.vocab));
  if (rows == 0) return true;
  grow(ws.last, rows * s.hidden);
  {
    int64_t row = 0;
    int64_t first = 0;
    for (const BatchEntry& entry : batch) {
      const auto count = static_cast<int64_t>(entry.tokens.size());
      const int64_t from = entry.logits == LogitsRows::kAll ? first : first + count - 1;
      const int64_t take = entry.logits == LogitsRows::kAll    ? count
                           : entry.logits == LogitsRows::kLast ? 1
                                                               : 0;
      std::copy_n(ws.x.data() + from * s.hidden, take * s.hidden, ws.last.data() + row * s.hidden);
      row += take;
      first += count;
    }
  }
  rms_norm(ws.last.data(), output_norm_.data(), s.norm_eps, rows, s.hidden, ws.normed.data());
  matmul(*output_, ws.normed.data(), rows, s.hidden, logits.data(), s.vocab, pool);
  return true;
}

}  // namespace polyinfer::inline v0::detail
