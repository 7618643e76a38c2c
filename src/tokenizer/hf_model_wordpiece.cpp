// SPDX-License-Identifier: Apache-2.0
// tokenizer.json WordPiece (greedy longest match with "##" continuations) and WordLevel models.
#include "common/fail.hpp"
#include "tokenizer/hf_pipeline.hpp"
#include "tokenizer/wordpiece.hpp"

namespace polyinfer::inline v0::detail {

namespace {

size_t count_code_points(std::string_view text) noexcept {
  size_t count = 0;
  for (const char c : text) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return count;
}

class WordPieceModel final : public HfModel {
 public:
  WordPieceModel(HfVocab vocab, std::string unk_token, std::string unk_where, std::string prefix,
                 size_t max_chars)
      : vocab_(std::move(vocab)),
        unk_token_(std::move(unk_token)),
        unk_where_(std::move(unk_where)),
        prefix_(std::move(prefix)),
        max_chars_(max_chars),
        unk_id_(vocab_.find(unk_token_)),
        lookup_([this](std::string_view piece) { return vocab_.find(piece).value_or(-1); }) {}
  WordPieceModel(const WordPieceModel&) = delete;  // lookup_ points at this object
  WordPieceModel& operator=(const WordPieceModel&) = delete;

  void tokenize(std::string_view word, std::vector<int32_t>& ids,
                HfWordCache* cache) const override {
    if (word.empty()) return;
    if (cache != nullptr) {
      if (const auto memo = cache->find(word)) {
        ids.insert(ids.end(), memo->begin(), memo->end());
        return;
      }
    }
    const size_t first = ids.size();
    // tokenizers: a word longer than max_input_chars_per_word, or with a position where no
    // piece matches, is one unknown token.
    if (count_code_points(word) > max_chars_ || !wordpiece_split(word, prefix_, 0, lookup_, ids)) {
      ids.push_back(unk());
    }
    if (cache != nullptr) cache->insert(word, ids.data() + first, ids.size() - first);
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
  [[nodiscard]] std::string_view type() const noexcept override { return "WordPiece"; }

 private:
  int32_t unk() const {
    if (!unk_id_) {
      fail(ErrorCode::kTokenizer, unk_where_, "unk_token \"{}\" is not in the vocabulary",
           unk_token_);
    }
    return *unk_id_;
  }

  HfVocab vocab_;
  std::string unk_token_;
  std::string unk_where_;
  std::string prefix_;
  size_t max_chars_;
  std::optional<int32_t> unk_id_;
  WordPieceLookup lookup_;
};

class WordLevelModel final : public HfModel {
 public:
  WordLevelModel(HfVocab vocab, std::string unk_token, std::string unk_where)
      : vocab_(std::move(vocab)),
        unk_token_(std::move(unk_token)),
        unk_where_(std::move(unk_where)),
        unk_id_(vocab_.find(unk_token_)) {}

  void tokenize(std::string_view word, std::vector<int32_t>& ids, HfWordCache*) const override {
    if (word.empty()) return;
    if (const auto id = vocab_.find(word)) {
      ids.push_back(*id);
      return;
    }
    if (!unk_id_) {
      fail(ErrorCode::kTokenizer, unk_where_, "unk_token \"{}\" is not in the vocabulary",
           unk_token_);
    }
    ids.push_back(*unk_id_);
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
  [[nodiscard]] std::string_view type() const noexcept override { return "WordLevel"; }

 private:
  HfVocab vocab_;
  std::string unk_token_;
  std::string unk_where_;
  std::optional<int32_t> unk_id_;
};

}  // namespace

std::unique_ptr<const HfModel> make_hf_wordpiece_model(const Json& node, const std::string& path,
                                                       const HfJson& json) {
  HfVocab vocab =
      read_hf_vocab(json.required(node, "vocab", path), HfJson::child(path, "vocab"), json);
  const int64_t max_chars = json.integer(node, "max_input_chars_per_word", path, 100);
  if (max_chars < 0) json.invalid(HfJson::child(path, "max_input_chars_per_word"), "negative");
  return std::make_unique<WordPieceModel>(
      std::move(vocab), json.optional_string(node, "unk_token", path).value_or("[UNK]"),
      json.where(HfJson::child(path, "unk_token")),
      json.optional_string(node, "continuing_subword_prefix", path).value_or("##"),
      static_cast<size_t>(max_chars));
}

std::unique_ptr<const HfModel> make_hf_wordlevel_model(const Json& node, const std::string& path,
                                                       const HfJson& json) {
  HfVocab vocab =
      read_hf_vocab(json.required(node, "vocab", path), HfJson::child(path, "vocab"), json);
  return std::make_unique<WordLevelModel>(
      std::move(vocab), json.optional_string(node, "unk_token", path).value_or("<unk>"),
      json.where(HfJson::child(path, "unk_token")));
}

}  // namespace polyinfer::inline v0::detail
