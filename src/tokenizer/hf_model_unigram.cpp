// SPDX-License-Identifier: Apache-2.0
// tokenizer.json Unigram model: tokenizers' optimized Viterbi (f64 scores, unknown characters
// fused into one <unk>, optional byte fallback).
#include <array>
#include <cmath>
#include <limits>

#include "common/fail.hpp"
#include "tokenizer/hf_pipeline.hpp"
#include "tokenizer/piece_trie.hpp"

namespace polyinfer::inline v0::detail {

namespace {

constexpr double kUnkPenalty = 10.0;

class UnigramModel final : public HfModel {
 public:
  UnigramModel(HfVocab vocab, std::vector<double> scores, std::optional<int32_t> unk_id,
               bool byte_fallback, std::string unk_where)
      : vocab_(std::move(vocab)),
        scores_(std::move(scores)),
        unk_id_(unk_id),
        byte_fallback_(byte_fallback),
        unk_where_(std::move(unk_where)) {
    min_score_ = std::numeric_limits<double>::infinity();
    for (size_t id = 0; id < scores_.size(); ++id) {
      trie_.insert(vocab_.tokens[id], vocab_.find(vocab_.tokens[id]).value_or(-1));
      min_score_ = std::min(min_score_, scores_[id]);
    }
    byte_ids_.fill(-1);
    for (int b = 0; b < 256; ++b) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      const std::string name = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
      if (const auto id = vocab_.find(name)) byte_ids_[static_cast<size_t>(b)] = *id;
    }
  }

  void tokenize(std::string_view piece, std::vector<int32_t>& ids,
                HfWordCache* cache) const override {
    if (piece.empty()) return;
    if (cache != nullptr) {
      if (const auto memo = cache->find(piece)) {
        ids.insert(ids.end(), memo->begin(), memo->end());
        return;
      }
    }
    const size_t first = ids.size();
    for (const std::string_view token : viterbi(piece)) {
      if (const auto id = vocab_.find(token)) {
        ids.push_back(*id);
        continue;
      }
      if (byte_fallback_ && add_bytes(token, ids)) continue;
      if (!unk_id_) fail(ErrorCode::kTokenizer, unk_where_, "no unk_id for an unknown character");
      ids.push_back(*unk_id_);
    }
    if (cache != nullptr) cache->insert(piece, ids.data() + first, ids.size() - first);
  }

  [[nodiscard]] std::optional<int32_t> token_to_id(std::string_view token) const override {
    return vocab_.find(token);
  }
  [[nodiscard]] const std::string* id_to_token(int32_t id) const override {
    return vocab_.token(id);
  }
  [[nodiscard]] int32_t id_limit() const noexcept override {
    return static_cast<int32_t>(vocab_.tokens.size());
  }
  [[nodiscard]] std::string_view type() const noexcept override { return "Unigram"; }
  [[nodiscard]] bool byte_fallback() const noexcept override { return byte_fallback_; }

 private:
  /// Unigram::encode_optimized: the best segmentation, runs of unknown characters fused.
  std::vector<std::string_view> viterbi(std::string_view text) const {
    struct Best {
      int32_t id = -1;
      double score = 0.0;
      int64_t starts_at = -1;
    };
    const size_t size = text.size();
    const double unk_score = min_score_ - kUnkPenalty;
    std::vector<Best> best(size + 1);
    for (size_t start = 0; start < size;) {
      const double score_here = best[start].score;
      const auto lead = static_cast<unsigned char>(text[start]);
      const size_t char_length = std::min(size - start, size_t{lead < 0x80    ? 1U
                                                               : lead >= 0xF0 ? 4U
                                                               : lead >= 0xE0 ? 3U
                                                                              : 2U});
      bool has_single = false;
      trie_.prefixes(text.substr(start), [&](size_t length, int32_t id) {
        if (id < 0) return;
        Best& target = best[start + length];
        const double candidate = scores_[static_cast<size_t>(id)] + score_here;
        if (target.starts_at == -1 || candidate > target.score) {
          target = {id, candidate, static_cast<int64_t>(start)};
        }
        if (length == char_length) has_single = true;
      });
      if (!has_single) {
        Best& target = best[start + char_length];
        const double candidate = unk_score + score_here;
        if (target.starts_at == -1 || candidate > target.score) {
          target = {unk_id_.value_or(-1), candidate, static_cast<int64_t>(start)};
          if (!unk_id_)
            fail(ErrorCode::kTokenizer, unk_where_, "no unk_id for an unknown character");
        }
      }
      start += char_length;
    }
    std::vector<std::string_view> out;
    size_t fused_begin = 0;
    size_t fused_end = 0;  // a run of unknown pieces being fused, when fused_end > 0
    for (size_t end = size; end > 0;) {
      const Best& node = best[end];
      const auto begin = static_cast<size_t>(node.starts_at);
      if (unk_id_ && node.id == *unk_id_) {
        if (fused_end == 0) fused_end = end;
        fused_begin = begin;
      } else {
        if (fused_end > 0) out.push_back(text.substr(fused_begin, fused_end - fused_begin));
        fused_end = 0;
        out.push_back(text.substr(begin, end - begin));
      }
      end = begin;
    }
    if (fused_end > 0) out.push_back(text.substr(fused_begin, fused_end - fused_begin));
    std::reverse(out.begin(), out.end());
    return out;
  }

  bool add_bytes(std::string_view token, std::vector<int32_t>& ids) const {
    for (const char c : token) {
      if (byte_ids_[static_cast<unsigned char>(c)] < 0) return false;
    }
    for (const char c : token) ids.push_back(byte_ids_[static_cast<unsigned char>(c)]);
    return true;
  }

  HfVocab vocab_;
  std::vector<double> scores_;  // by id
  std::optional<int32_t> unk_id_;
  bool byte_fallback_;
  std::string unk_where_;
  double min_score_ = 0.0;
  PieceTrie trie_;
  std::array<int32_t, 256> byte_ids_{};
};

}  // namespace

std::unique_ptr<const HfModel> make_hf_unigram_model(const Json& node, const std::string& path,
                                                     const HfJson& json) {
  const std::string vocab_path = HfJson::child(path, "vocab");
  const Json& list = json.as_array(json.required(node, "vocab", path), vocab_path);
  HfVocab vocab;
  std::vector<double> scores;
  scores.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string entry_path = HfJson::index(vocab_path, i);
    const Json& entry = json.as_array(list[i], entry_path);
    if (entry.size() != 2 || !entry[1].is_number()) {
      json.wrong_type(entry_path, "a [piece, score] pair");
    }
    const double score = entry[1].get<double>();
    if (!std::isfinite(score)) json.invalid(entry_path, "score is not finite");
    vocab.add(json.as_string(entry[0], HfJson::index(entry_path, 0)), static_cast<int64_t>(i),
              list.size(), entry_path, json);
    scores.push_back(score);
  }
  std::optional<int32_t> unk_id;
  if (HfJson::member(node, "unk_id") != nullptr) {
    const int64_t id = json.integer(node, "unk_id", path, -1);
    if (id < 0 || id >= static_cast<int64_t>(list.size())) {
      json.invalid(HfJson::child(path, "unk_id"), "unk_id outside the vocabulary");
    }
    unk_id = static_cast<int32_t>(id);
  }
  return std::make_unique<UnigramModel>(std::move(vocab), std::move(scores), unk_id,
                                        json.boolean(node, "byte_fallback", path, false),
                                        json.where(HfJson::child(path, "unk_id")));
}

}  // namespace polyinfer::inline v0::detail
