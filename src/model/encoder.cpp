// SPDX-License-Identifier: Apache-2.0
// Encoder: a BertModel with its thread pool and tokenizer; texts in, embeddings and labels out.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>

#include "common/fail.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "model/bert.hpp"

namespace polyinfer {
inline namespace v0 {

namespace detail {

namespace {

constexpr int64_t kChunkTokens = 8192;  // tokens per forward pass of a batch

constexpr std::array<std::pair<Pooling, std::string_view>, 3> kPoolingNames{{
    {Pooling::kMean, "mean"},
    {Pooling::kCls, "cls"},
    {Pooling::kPooler, "pooler"},
}};

/// Softmax in double, and the first index of the largest logit.
void finish_head(Encoding& encoding) {
  if (encoding.logits.empty()) return;
  const auto top = std::max_element(encoding.logits.begin(), encoding.logits.end());
  encoding.label = static_cast<int32_t>(top - encoding.logits.begin());
  double total = 0.0;
  for (const float logit : encoding.logits) total += std::exp(double{logit} - double{*top});
  encoding.probs.reserve(encoding.logits.size());
  for (const float logit : encoding.logits) {
    encoding.probs.push_back(static_cast<float>(std::exp(double{logit} - double{*top}) / total));
  }
}

}  // namespace

class EncoderImpl {
 public:
  std::unique_ptr<BertModel> model;
  std::unique_ptr<ThreadPool> pool;

  /// [CLS] text [SEP]; errors name `where` (the text's place in a batch).
  std::vector<int32_t> tokenize(std::string_view text, const std::string& where) const {
    if (text.empty()) fail(ErrorCode::kInvalidArgument, where, "empty text");
    const Tokenizer& tokenizer = model->file().tokenizer();
    std::vector<int32_t> ids = tokenizer.encode(text, {.add_special = true});
    const bool only_special = std::all_of(ids.begin(), ids.end(), [&](int32_t id) {
      return tokenizer.is_special(id) && id != tokenizer.unk_id();
    });
    if (only_special) {
      fail(ErrorCode::kInvalidArgument, where,
           "the text has no tokens (only white space or "
           "control characters)");
    }
    const int64_t limit = model->shape().positions;
    if (static_cast<int64_t>(ids.size()) > limit) {
      fail(ErrorCode::kInvalidArgument, where,
           "the text is {} tokens long ([CLS] and [SEP] included); the model takes at most {}",
           ids.size(), limit);
    }
    return ids;
  }

  /// Runs sequences in chunks of about kChunkTokens tokens; one Encoding per sequence.
  std::vector<Encoding> run(std::vector<std::vector<int32_t>> ids,
                            std::span<const int32_t> token_types = {}) const {
    std::vector<BertSequence> batch;
    batch.reserve(ids.size());
    for (const std::vector<int32_t>& sequence : ids) batch.push_back({sequence, token_types});
    model->check(batch);  // every sequence, before any work
    const int64_t hidden = model->shape().hidden;
    const int64_t labels = model->shape().labels;
    std::vector<Encoding> result;
    result.reserve(ids.size());
    for (size_t begin = 0; begin < batch.size();) {
      size_t end = begin;
      int64_t tokens = 0;
      while (
          end < batch.size() &&
          (end == begin || tokens + static_cast<int64_t>(batch[end].ids.size()) <= kChunkTokens)) {
        tokens += static_cast<int64_t>(batch[end].ids.size());
        ++end;
      }
      const BertOutputs out =
          model->forward(std::span(batch).subspan(begin, end - begin), pool.get());
      for (size_t b = 0; b < end - begin; ++b) {
        Encoding encoding;
        encoding.ids = std::move(ids[begin + b]);
        encoding.hidden_size = hidden;
        const auto row = [&](const std::vector<float>& values, int64_t width) {
          if (values.empty()) return std::vector<float>();
          const auto from = values.begin() + static_cast<int64_t>(b) * width;
          return std::vector<float>(from, from + width);
        };
        const auto first = out.first[b] * hidden;
        const auto last = out.first[b + 1] * hidden;
        encoding.hidden.assign(out.hidden.begin() + first, out.hidden.begin() + last);
        encoding.cls = row(out.cls, hidden);
        encoding.mean = row(out.mean, hidden);
        encoding.pooled = row(out.pooled, hidden);
        encoding.logits = row(out.logits, labels);
        finish_head(encoding);
        result.push_back(std::move(encoding));
      }
      begin = end;
    }
    return result;
  }
};

}  // namespace detail

std::string_view pooling_name(Pooling pooling) noexcept {
  for (const auto& [value, name] : detail::kPoolingNames) {
    if (value == pooling) return name;
  }
  return "unknown";
}

std::optional<Pooling> pooling_from_name(std::string_view name) noexcept {
  for (const auto& [value, text] : detail::kPoolingNames) {
    if (text.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size(); ++i) {
      same = same && std::tolower(static_cast<unsigned char>(name[i])) == text[i];
    }
    if (same) return value;
  }
  return std::nullopt;
}

Encoder Encoder::load(const std::filesystem::path& path, const LoadOptions& options) {
  if (options.threads < 0) {
    detail::fail(ErrorCode::kInvalidArgument, path.string(), "threads {} is negative",
                 options.threads);
  }
  if (options.device != "cpu" && !options.device.empty()) {
    detail::fail(ErrorCode::kUnsupported, path.string() + ": device",
                 "encoders run on the cpu, not '{}'", options.device);
  }
  const ModelFile file = ModelFile::open(path);
  auto impl = std::make_unique<detail::EncoderImpl>();
  impl->model = detail::BertModel::load(file, options.tier);
  impl->pool = std::make_unique<detail::ThreadPool>(options.threads);
  return Encoder(std::move(impl));
}

Encoder::Encoder(std::unique_ptr<detail::EncoderImpl> impl) : impl_(std::move(impl)) {}
Encoder::Encoder(Encoder&&) noexcept = default;
Encoder& Encoder::operator=(Encoder&&) noexcept = default;
Encoder::~Encoder() = default;

const ModelConfig& Encoder::config() const noexcept {
  return impl_->model->config();
}
Tier Encoder::tier() const noexcept {
  return impl_->model->tier();
}
int64_t Encoder::max_tokens() const noexcept {
  return impl_->model->shape().positions;
}
bool Encoder::has_pooler() const noexcept {
  return impl_->model->has_pooler();
}
bool Encoder::has_classifier() const noexcept {
  return impl_->model->has_classifier();
}
std::span<const std::string> Encoder::labels() const noexcept {
  return impl_->model->labels();
}
bool Encoder::has_tokenizer() const noexcept {
  return impl_->model->file().has_tokenizer();
}
const Tokenizer& Encoder::tokenizer() const {
  return impl_->model->file().tokenizer();
}
uint64_t Encoder::weight_bytes() const noexcept {
  return impl_->model->weight_bytes();
}
uint64_t Encoder::owned_weight_bytes() const noexcept {
  return impl_->model->owned_bytes();
}

Encoding Encoder::encode(std::string_view text) const {
  std::vector<std::vector<int32_t>> ids;
  ids.push_back(impl_->tokenize(text, "text"));
  return std::move(impl_->run(std::move(ids)).front());
}

std::vector<Encoding> Encoder::encode_batch(std::span<const std::string> texts) const {
  std::vector<std::vector<int32_t>> ids;
  ids.reserve(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    ids.push_back(impl_->tokenize(texts[i], fmt::format("text {}", i)));
  }
  return impl_->run(std::move(ids));
}

Encoding Encoder::encode_ids(std::span<const int32_t> ids,
                             std::span<const int32_t> token_types) const {
  std::vector<std::vector<int32_t>> batch;
  batch.emplace_back(ids.begin(), ids.end());
  return std::move(impl_->run(std::move(batch), token_types).front());
}

std::vector<Encoding> Encoder::encode_ids_batch(std::span<const std::vector<int32_t>> ids) const {
  return impl_->run(std::vector<std::vector<int32_t>>(ids.begin(), ids.end()));
}

std::vector<float> Encoder::embed(std::string_view text, Pooling pooling) const {
  if (pooling == Pooling::kPooler && !has_pooler()) {
    detail::fail(ErrorCode::kInvalidArgument, impl_->model->file().path().string(),
                 "the model has no pooler (bert.pooler.dense / cls); use mean or cls pooling");
  }
  Encoding encoding = encode(text);
  switch (pooling) {
    case Pooling::kCls:
      return std::move(encoding.cls);
    case Pooling::kPooler:
      return std::move(encoding.pooled);
    case Pooling::kMean:
      break;
  }
  return std::move(encoding.mean);
}

Classification Encoder::classify(std::string_view text) const {
  if (!has_classifier()) {
    detail::fail(ErrorCode::kInvalidArgument, impl_->model->file().path().string(),
                 "the model has no classifier head ({}; BertForSequenceClassification has "
                 "classifier.weight)",
                 config().source_architecture);
  }
  Encoding encoding = encode(text);
  Classification result;
  result.label = encoding.label;
  result.label_name = impl_->model->labels()[static_cast<size_t>(encoding.label)];
  result.scores = std::move(encoding.probs);
  result.logits = std::move(encoding.logits);
  return result;
}

}  // namespace v0
}  // namespace polyinfer
