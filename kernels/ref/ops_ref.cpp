// SPDX-License-Identifier: Apache-2.0
// Scalar references of the transformer operations (norms, RoPE, activations, KV, attention).
#include "kernels/ref/ops_ref.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>
#include <vector>

#include "kernels/common/block_formats.hpp"
#include "kernels/ref/quant_ref.hpp"

namespace polyinfer::inline v0::detail::ref {

void rms_norm(const float* x, const float* weight, float eps, int64_t rows, int64_t cols,
              float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols;
    double sum_squares = 0.0;
    for (int64_t c = 0; c < cols; ++c) sum_squares += static_cast<double>(row[c]) * row[c];
    const double inv_rms = 1.0 / std::sqrt(sum_squares / static_cast<double>(cols) + eps);
    for (int64_t c = 0; c < cols; ++c) {
      y[r * cols + c] = static_cast<float>(row[c] * inv_rms * weight[c]);
    }
  }
}

void layer_norm(const float* x, const float* weight, const float* bias, float eps, int64_t rows,
                int64_t cols, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols;
    double sum = 0.0;
    for (int64_t c = 0; c < cols; ++c) sum += row[c];
    const double mean = sum / static_cast<double>(cols);
    double sum_squares = 0.0;
    for (int64_t c = 0; c < cols; ++c) sum_squares += (row[c] - mean) * (row[c] - mean);
    const double inv_std = 1.0 / std::sqrt(sum_squares / static_cast<double>(cols) + eps);
    for (int64_t c = 0; c < cols; ++c) {
      const double shifted = bias != nullptr ? bias[c] : 0.0;
      y[r * cols + c] = static_cast<float>((row[c] - mean) * inv_std * weight[c] + shifted);
    }
  }
}

RopeTable make_rope_table(int64_t head_dim, double theta, std::string_view scaling, double factor,
                          double low_freq_factor, double high_freq_factor,
                          int64_t original_max_positions) {
  const bool plain = scaling.empty() || scaling == "none" || scaling == "default";
  const bool linear = scaling == "linear";
  const bool llama3 = scaling == "llama3";
  if (head_dim <= 0 || head_dim % 2 != 0 || !(theta > 0.0) || !(plain || linear || llama3)) {
    return {};
  }
  if ((linear || llama3) && !(factor > 0.0)) return {};
  if (llama3 && (original_max_positions <= 0 || !(low_freq_factor > 0.0) ||
                 !(high_freq_factor > low_freq_factor))) {
    return {};
  }
  RopeTable table;
  table.head_dim = head_dim;
  table.inv_freq = std::make_unique<float[]>(static_cast<size_t>(head_dim / 2));
  // transformers' _compute_llama3_parameters, term for term (in double instead of float32):
  // wavelengths above old_context_len / low_freq_factor are divided by `factor`, below
  // old_context_len / high_freq_factor kept, in between interpolated by `smooth`.
  const double old_context = static_cast<double>(original_max_positions);
  const double low_freq_wavelen = old_context / low_freq_factor;
  const double high_freq_wavelen = old_context / high_freq_factor;
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    const double exponent = static_cast<double>(2 * i) / static_cast<double>(head_dim);
    double inv_freq = 1.0 / std::pow(theta, exponent);
    if (linear) inv_freq /= factor;
    if (llama3) {
      const double wavelen = 2.0 * std::numbers::pi / inv_freq;
      double scaled = wavelen > low_freq_wavelen ? inv_freq / factor : inv_freq;
      if (!(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen)) {
        const double smooth =
            (old_context / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
        scaled = (1.0 - smooth) * scaled / factor + smooth * scaled;
      }
      inv_freq = scaled;
    }
    table.inv_freq[static_cast<size_t>(i)] = static_cast<float>(inv_freq);
  }
  return table;
}

void rope(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t row_stride,
          const int32_t* positions, const RopeTable& table, RopeLayout layout) {
  const int64_t half = head_dim / 2;
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      float* head = x + t * row_stride + h * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const double angle = static_cast<double>(positions[t]) * table.inv_freq[i];
        const double cos_angle = std::cos(angle);
        const double sin_angle = std::sin(angle);
        const int64_t first = layout == RopeLayout::kInterleaved ? 2 * i : i;
        const int64_t second = layout == RopeLayout::kInterleaved ? 2 * i + 1 : i + half;
        const double a = head[first];
        const double b = head[second];
        head[first] = static_cast<float>(a * cos_angle - b * sin_angle);
        head[second] = static_cast<float>(a * sin_angle + b * cos_angle);
      }
    }
  }
}

void silu_mul(const float* gate, const float* up, float* out, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    const double g = gate[i];
    out[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * up[i]);
  }
}

void gelu(const float* x, float* out, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    const double v = x[i];
    out[i] = static_cast<float>(0.5 * v * std::erfc(-v / std::numbers::sqrt2));
  }
}

void softmax(float* x, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * cols;
    const float max_value = *std::max_element(row, row + cols);
    double sum = 0.0;
    for (int64_t c = 0; c < cols; ++c) sum += std::exp(static_cast<double>(row[c]) - max_value);
    for (int64_t c = 0; c < cols; ++c) {
      row[c] = static_cast<float>(std::exp(static_cast<double>(row[c]) - max_value) / sum);
    }
  }
}

uint64_t kv_row_bytes(KvType type, int64_t kv_heads, int64_t head_dim) noexcept {
  const auto values = static_cast<uint64_t>(kv_heads * head_dim);
  switch (type) {
    case KvType::kF32:
      return values * sizeof(float);
    case KvType::kF16:
      return values * sizeof(Half);
    case KvType::kQ8_0:
      return values / kBlock32 * sizeof(BlockQ8_0);
  }
  return 0;
}

void kv_store(KvType type, const float* src, int64_t rows, int64_t kv_heads, int64_t head_dim,
              std::byte* dst) {
  const int64_t values = rows * kv_heads * head_dim;
  switch (type) {
    case KvType::kF32:
      std::copy(src, src + values, reinterpret_cast<float*>(dst));
      break;
    case KvType::kF16:
      for (int64_t i = 0; i < values; ++i) {
        const Half h = f32_to_fp16(src[i]);
        std::memcpy(dst + i * sizeof(Half), &h, sizeof h);
      }
      break;
    case KvType::kQ8_0:
      quantize_row_q8_0(src, reinterpret_cast<BlockQ8_0*>(dst), values);
      break;
  }
}

void kv_load_row(const KvView& view, int64_t row, float* dst) {
  const uint64_t row_bytes = ref::kv_row_bytes(view.type, view.kv_heads, view.head_dim);
  const std::byte* src =
      view.blocks[row / view.block_rows] + static_cast<uint64_t>(row % view.block_rows) * row_bytes;
  const int64_t values = view.kv_heads * view.head_dim;
  switch (view.type) {
    case KvType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(values) * sizeof(float));
      break;
    case KvType::kF16:
      for (int64_t i = 0; i < values; ++i) {
        Half h;
        std::memcpy(&h, src + i * sizeof(Half), sizeof h);
        dst[i] = fp16_to_f32(h);
      }
      break;
    case KvType::kQ8_0:
      for (int64_t b = 0; b < values / kBlock32; ++b) {
        BlockQ8_0 block;
        std::memcpy(&block, src + b * sizeof(BlockQ8_0), sizeof block);
        const float d = fp16_to_f32(block.d);
        for (int j = 0; j < kBlock32; ++j) dst[b * kBlock32 + j] = d * block.qs[j];
      }
      break;
  }
}

void attention(const float* q, int64_t tokens, int64_t heads, const KvView& keys,
               const KvView& values, const int32_t* positions, bool causal, float scale, float* out,
               ThreadPool* /*pool*/) {
  const int64_t head_dim = keys.head_dim;
  const int64_t group = heads / keys.kv_heads;
  const double used_scale = scale != 0.0f ? scale : 1.0 / std::sqrt(static_cast<double>(head_dim));
  const int64_t row_values = keys.kv_heads * head_dim;
  // Dequantize the whole cache once: this is a reference, not a kernel.
  std::vector<float> k_rows(static_cast<size_t>(keys.positions * row_values));
  std::vector<float> v_rows(static_cast<size_t>(values.positions * row_values));
  for (int64_t r = 0; r < keys.positions; ++r) kv_load_row(keys, r, &k_rows[r * row_values]);
  for (int64_t r = 0; r < values.positions; ++r) kv_load_row(values, r, &v_rows[r * row_values]);
  std::vector<double> scores;
  std::vector<double> sums(static_cast<size_t>(head_dim));
  for (int64_t t = 0; t < tokens; ++t) {
    int64_t limit = std::min(keys.positions, values.positions);
    if (causal) limit = std::clamp<int64_t>(int64_t{positions[t]} + 1, 0, limit);
    for (int64_t h = 0; h < heads; ++h) {
      const float* q_head = q + (t * heads + h) * head_dim;
      const int64_t kv_head = h / group;
      float* out_head = out + (t * heads + h) * head_dim;
      scores.assign(static_cast<size_t>(limit), 0.0);
      double max_score = -std::numeric_limits<double>::infinity();
      for (int64_t r = 0; r < limit; ++r) {
        const float* k_head = &k_rows[r * row_values + kv_head * head_dim];
        double dot = 0.0;
        for (int64_t i = 0; i < head_dim; ++i) dot += static_cast<double>(q_head[i]) * k_head[i];
        scores[r] = dot * used_scale;
        max_score = std::max(max_score, scores[r]);
      }
      double total = 0.0;
      std::fill(sums.begin(), sums.end(), 0.0);
      for (int64_t r = 0; r < limit; ++r) {
        const double weight = std::exp(scores[r] - max_score);
        total += weight;
        const float* v_head = &v_rows[r * row_values + kv_head * head_dim];
        for (int64_t i = 0; i < head_dim; ++i) sums[i] += weight * v_head[i];
      }
      for (int64_t i = 0; i < head_dim; ++i) {
        out_head[i] = limit > 0 ? static_cast<float>(sums[i] / total) : 0.0f;
      }
    }
  }
}

}  // namespace polyinfer::inline v0::detail::ref

namespace polyinfer::inline v0::detail {

// Scalar everywhere (one pass per generated token): the reference is the implementation.
GreedyPick greedy_pick(const float* logits, int64_t vocab) noexcept {
  if (vocab < 1) return {};
  int32_t best = 0;
  float best_logit = logits[0];
  for (int64_t i = 1; i < vocab; ++i) {
    if (logits[i] > best_logit) {
      best_logit = logits[i];
      best = static_cast<int32_t>(i);
    }
  }
  double sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i] - best_logit));
  return {best, static_cast<float>(-std::log(sum))};
}

void greedy_picks(std::span<const float> logits, int64_t vocab, std::vector<GreedyPick>& picks) {
  picks.resize(vocab > 0 ? logits.size() / static_cast<size_t>(vocab) : 0);
  for (size_t r = 0; r < picks.size(); ++r) {
    picks[r] = greedy_pick(logits.data() + static_cast<int64_t>(r) * vocab, vocab);
  }
}

namespace {

/// Candidates in a strict total order (higher logit first, then lower id), so that every
/// standard library sorts them the same way.
struct ByLogit {
  template <typename C>
  bool operator()(const C& a, const C& b) const noexcept {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }
};

}  // namespace

SamplePick sample_pick(const float* logits, int64_t vocab, const SampleSpec& spec,
                       const int32_t* penalized, SampleScratch& scratch) {
  if (vocab < 1) return {};
  // The model's own distribution, for log-probabilities (confidence), before any shaping.
  const float raw_max = *std::max_element(logits, logits + vocab);
  double raw_sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i) raw_sum += std::exp(static_cast<double>(logits[i]) - raw_max);
  const double log_normalizer = raw_max + std::log(raw_sum);
  const auto result = [&](int32_t id) {
    return SamplePick{id, static_cast<float>(logits[id] - log_normalizer),
                      static_cast<float>(raw_max - log_normalizer), 0};
  };

  // Candidates: every id, its logit after the repetition penalty and the temperature.
  auto& candidates = scratch.candidates;
  candidates.resize(static_cast<size_t>(vocab));
  for (int64_t id = 0; id < vocab; ++id) {
    candidates[static_cast<size_t>(id)] = {static_cast<int32_t>(id), logits[id]};
  }
  if (spec.repetition_penalty != 1.0f) {
    for (int32_t i = 0; i < spec.penalized_count; ++i) {
      const int32_t id = penalized[spec.penalized_begin + i];
      if (id < 0 || id >= vocab) continue;
      float& logit = candidates[static_cast<size_t>(id)].logit;
      logit = logit > 0 ? logit / spec.repetition_penalty : logit * spec.repetition_penalty;
    }
  }

  if (spec.temperature == 0.0f) {
    return result(std::min_element(candidates.begin(), candidates.end(), ByLogit{})->id);
  }
  for (auto& c : candidates) c.logit /= spec.temperature;

  auto end = candidates.end();
  if (spec.top_k > 0 && spec.top_k < vocab) {
    end = candidates.begin() + spec.top_k;
    std::nth_element(candidates.begin(), end - 1, candidates.end(), ByLogit{});
  }
  const bool sorted = spec.top_p < 1.0f || spec.top_k > 0;
  if (sorted) std::sort(candidates.begin(), end, ByLogit{});
  const auto count = static_cast<size_t>(end - candidates.begin());

  // The first candidate in ByLogit order has the highest logit.
  const float max_logit =
      sorted ? candidates[0].logit : std::min_element(candidates.begin(), end, ByLogit{})->logit;
  auto& weights = scratch.weights;
  weights.resize(count);
  double total = 0.0;
  for (size_t i = 0; i < count; ++i) {
    weights[i] = std::exp(static_cast<double>(candidates[i].logit) - max_logit);
    total += weights[i];
  }
  size_t kept = count;
  if (spec.top_p < 1.0f) {  // smallest prefix (most likely first) reaching top_p
    double cumulative = 0.0;
    for (size_t i = 0; i < count; ++i) {
      cumulative += weights[i];
      if (cumulative >= spec.top_p * total) {
        kept = i + 1;
        break;
      }
    }
  }
  if (spec.min_p > 0.0f) {  // weights are relative to the most likely token (weight 1)
    for (size_t i = 0; i < kept; ++i) {
      if (weights[i] < spec.min_p) weights[i] = 0.0;
    }
  }
  total = 0.0;
  for (size_t i = 0; i < kept; ++i) total += weights[i];

  const double target = spec.uniform * total;
  double cumulative = 0.0;
  size_t chosen = 0;
  for (size_t i = 0; i < kept; ++i) {
    if (weights[i] == 0.0) continue;
    chosen = i;
    cumulative += weights[i];
    if (target < cumulative) break;
  }
  return result(candidates[chosen].id);
}

}  // namespace polyinfer::inline v0::detail
