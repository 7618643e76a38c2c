// SPDX-License-Identifier: Apache-2.0
// tokenizer.json BPE model: ranked merges, byte fallback, unk fusing, subword prefix/suffix.
#include <algorithm>
#include <array>
#include <utility>

#include "common/fail.hpp"
#include "tokenizer/bpe_chunks.hpp"
#include "tokenizer/bpe_merge.hpp"
#include "tokenizer/hf_pipeline.hpp"

namespace polyinfer::inline v0::detail {

namespace {

/// A merge rule looked up by its two token strings without building a key string.
struct PairView {
  std::string_view left;
  std::string_view right;
};

struct PairHash {
  using is_transparent = void;
  static size_t combine(std::string_view left, std::string_view right) noexcept {
    const size_t h = std::hash<std::string_view>{}(left);
    return h ^ (std::hash<std::string_view>{}(right) + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2));
  }
  size_t operator()(const std::pair<std::string, std::string>& key) const noexcept {
    return combine(key.first, key.second);
  }
  size_t operator()(const PairView& key) const noexcept { return combine(key.left, key.right); }
};

struct PairEqual {
  using is_transparent = void;
  bool operator()(const std::pair<std::string, std::string>& a,
                  const std::pair<std::string, std::string>& b) const noexcept {
    return a == b;
  }
  bool operator()(const PairView& a, const std::pair<std::string, std::string>& b) const noexcept {
    return a.left == b.first && a.right == b.second;
  }
  bool operator()(const std::pair<std::string, std::string>& a, const PairView& b) const noexcept {
    return b.left == a.first && b.right == a.second;
  }
};

using MergeRanks =
    std::unordered_map<std::pair<std::string, std::string>, int32_t, PairHash, PairEqual>;

class BpeModel final : public HfModel {
 public:
  BpeModel(HfVocab vocab, MergeRanks merges, std::optional<std::string> unk_token,
           std::string unk_where, std::string prefix, std::string suffix, bool fuse_unk,
           bool byte_fallback, bool ignore_merges)
      : vocab_(std::move(vocab)),
        merges_(std::move(merges)),
        unk_token_(std::move(unk_token)),
        unk_where_(std::move(unk_where)),
        prefix_(std::move(prefix)),
        suffix_(std::move(suffix)),
        fuse_unk_(fuse_unk),
        byte_fallback_(byte_fallback),
        ignore_merges_(ignore_merges) {
    byte_ids_.fill(-1);
    for (int b = 0; b < 256; ++b) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      const std::string name = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
      if (const auto id = vocab_.find(name)) byte_ids_[static_cast<size_t>(b)] = *id;
    }
    if (unk_token_) unk_id_ = vocab_.find(*unk_token_);
    decorated_ = !prefix_.empty() || !suffix_.empty();
    if (!decorated_) {
      for (size_t id = 0; id < vocab_.tokens.size(); ++id) {
        if (vocab_.present[id]) chunker_.add_token(vocab_.tokens[id]);
      }
      chunker_.finish();
    }
  }

  void tokenize(std::string_view piece, std::vector<int32_t>& ids,
                HfWordCache* cache) const override {
    if (piece.empty()) return;
    if (ignore_merges_) {
      if (const auto id = vocab_.find(piece)) {
        ids.push_back(*id);
        return;
      }
    }
    int32_t pending_unk = -1;
    if (decorated_ || piece.size() < kChunkBytes) {
      merge_word(piece, ids, pending_unk, cache);
    } else {
      // A long word (Metaspace without split, no pre-tokenizer): merge it chunk by chunk.
      chunker_.split(piece,
                     [&](std::string_view chunk) { merge_word(chunk, ids, pending_unk, cache); });
    }
    if (pending_unk >= 0) ids.push_back(pending_unk);
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
  [[nodiscard]] std::string_view type() const noexcept override { return "BPE"; }
  [[nodiscard]] bool byte_fallback() const noexcept override { return byte_fallback_; }

 private:
  /// Words at least this long are cut by the chunker before merging.
  static constexpr size_t kChunkBytes = 64;

  /// What the merge priority callback needs (one pointer keeps std::function allocation-free).
  struct MergeContext {
    const BpeModel* model;
    std::string_view word;
    std::string left;
    std::string right;
  };

  /// A symbol's token string: tokenizers' Word puts the continuing-subword prefix on all but
  /// the first symbol and the end-of-word suffix on the last.
  std::string_view decorate(std::string_view word, std::string_view symbol,
                            std::string& buffer) const {
    const auto begin = static_cast<size_t>(symbol.data() - word.data());
    const bool first = begin == 0;
    const bool last = begin + symbol.size() == word.size();
    if ((first || prefix_.empty()) && (!last || suffix_.empty())) return symbol;
    buffer.clear();
    if (!first) buffer += prefix_;
    buffer.append(symbol);
    if (last) buffer += suffix_;
    return buffer;
  }

  /// Merges one word (or chunk of a word) and appends its ids. `pending_unk` carries an
  /// unknown-token run across chunks (fuse_unk), exactly as within one word.
  void merge_word(std::string_view word, std::vector<int32_t>& ids, int32_t& pending_unk,
                  HfWordCache* cache) const {
    if (cache != nullptr && !decorated_) {
      if (const auto memo = cache->find(word)) {
        if (pending_unk >= 0) ids.push_back(pending_unk);
        pending_unk = -1;
        ids.insert(ids.end(), memo->begin(), memo->end());
        return;
      }
    }
    std::vector<std::pair<size_t, size_t>> starts;
    starts.reserve(word.size());
    for (size_t pos = 0; pos < word.size();) {
      const auto lead = static_cast<unsigned char>(word[pos]);
      const size_t length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
      const size_t end = std::min(word.size(), pos + length);
      starts.emplace_back(pos, end);
      pos = end;
    }
    MergeContext context{this, word, {}, {}};
    std::vector<std::string_view> symbols;
    if (starts.size() == 1) {
      symbols.push_back(word);
    } else {
      const MergePriority priority =
          [ctx = &context](std::string_view left, std::string_view right) -> std::optional<double> {
        const BpeModel& self = *ctx->model;
        if (self.decorated_) {
          left = self.decorate(ctx->word, left, ctx->left);
          right = self.decorate(ctx->word, right, ctx->right);
        }
        const auto it = self.merges_.find(PairView{left, right});
        if (it == self.merges_.end()) return std::nullopt;
        return static_cast<double>(it->second);
      };
      symbols = bpe_merge(word, starts, priority);
    }

    const size_t first = ids.size();
    bool all_known = true;
    for (const std::string_view symbol : symbols) {
      const std::string_view token = decorated_ ? decorate(word, symbol, context.left) : symbol;
      if (const auto id = vocab_.find(token)) {
        if (pending_unk >= 0) {
          ids.push_back(pending_unk);
          all_known = false;
        }
        pending_unk = -1;
        ids.push_back(*id);
        continue;
      }
      all_known = false;
      // Byte tokens go out before a pending unknown, as tokenizers' merge_word does.
      if (byte_fallback_ && add_bytes(token, ids)) continue;
      if (!unk_token_) continue;
      if (!unk_id_) {
        fail(ErrorCode::kTokenizer, unk_where_, "unk_token \"{}\" is not in the vocabulary",
             *unk_token_);
      }
      if (pending_unk >= 0 && !fuse_unk_) ids.push_back(pending_unk);
      pending_unk = *unk_id_;
    }
    if (cache != nullptr && all_known && !decorated_) {
      cache->insert(word, ids.data() + first, ids.size() - first);
    }
  }

  /// Appends the <0xXX> tokens of every byte of `token`; false (nothing added) when one is
  /// missing from the vocabulary.
  bool add_bytes(std::string_view token, std::vector<int32_t>& ids) const {
    for (const char c : token) {
      if (byte_ids_[static_cast<unsigned char>(c)] < 0) return false;
    }
    for (const char c : token) ids.push_back(byte_ids_[static_cast<unsigned char>(c)]);
    return true;
  }

  HfVocab vocab_;
  MergeRanks merges_;
  std::optional<std::string> unk_token_;
  std::string unk_where_;
  std::optional<int32_t> unk_id_;
  std::string prefix_;
  std::string suffix_;
  bool fuse_unk_;
  bool byte_fallback_;
  bool ignore_merges_;
  bool decorated_ = false;
  std::array<int32_t, 256> byte_ids_{};
  BpeChunker chunker_;
};

/// One merge rule: "a b" (split on the single space) or ["a", "b"].
std::pair<std::string, std::string> read_merge(const Json& entry, const std::string& path,
                                               const HfJson& json) {
  if (entry.is_string()) {
    const std::string& line = entry.get_ref<const std::string&>();
    const size_t space = line.find(' ');
    if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
      json.invalid(path, "merge \"" + line + "\" is not two tokens separated by one space");
    }
    return {line.substr(0, space), line.substr(space + 1)};
  }
  if (entry.is_array() && entry.size() == 2) {
    return {json.as_string(entry[0], HfJson::index(path, 0)),
            json.as_string(entry[1], HfJson::index(path, 1))};
  }
  json.wrong_type(path, "a merge (\"a b\" or [\"a\", \"b\"])");
}

}  // namespace

std::unique_ptr<const HfModel> make_hf_bpe_model(const Json& node, const std::string& path,
                                                 const HfJson& json) {
  HfVocab vocab =
      read_hf_vocab(json.required(node, "vocab", path), HfJson::child(path, "vocab"), json);
  const std::string prefix =
      json.optional_string(node, "continuing_subword_prefix", path).value_or("");
  const std::string suffix = json.optional_string(node, "end_of_word_suffix", path).value_or("");

  MergeRanks merges;
  if (const Json* list = HfJson::member(node, "merges")) {
    const std::string merges_path = HfJson::child(path, "merges");
    json.as_array(*list, merges_path);
    merges.reserve(list->size());
    int32_t rank = 0;
    for (size_t i = 0; i < list->size(); ++i) {
      const std::string entry_path = HfJson::index(merges_path, i);
      const Json& entry = (*list)[i];
      if (entry.is_string() && entry.get_ref<const std::string&>().starts_with("#version")) {
        continue;
      }
      auto [left, right] = read_merge(entry, entry_path, json);
      if (!vocab.find(left) || !vocab.find(right)) {
        json.invalid(entry_path, "merge token not in the vocabulary");
      }
      if (right.size() < prefix.size()) {
        json.invalid(entry_path, "merge token shorter than continuing_subword_prefix");
      }
      if (!vocab.find(left + right.substr(prefix.size()))) {
        json.invalid(entry_path, "merged token not in the vocabulary");
      }
      merges.insert_or_assign({std::move(left), std::move(right)}, rank++);
    }
  }
  return std::make_unique<BpeModel>(
      std::move(vocab), std::move(merges), json.optional_string(node, "unk_token", path),
      json.where(HfJson::child(path, "unk_token")), prefix, suffix,
      json.boolean(node, "fuse_unk", path, false), json.boolean(node, "byte_fallback", path, false),
      json.boolean(node, "ignore_merges", path, false));
}

}  // namespace polyinfer::inline v0::detail
