// SPDX-License-Identifier: Apache-2.0
// The stages of a Hugging Face tokenizer.json pipeline and the JSON reading they share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace polyinfer::inline v0::detail {

class Regex;
using Json = nlohmann::json;

/// Reads typed members of tokenizer.json / tokenizer_config.json, naming the file and the JSON
/// path in every error: "tokenizer.json: model.merges[3]".
class HfJson {
 public:
  /// Deeper nesting of Sequence components than this is refused (hostile input).
  static constexpr int kMaxDepth = 32;

  explicit HfJson(std::string file) : file_(std::move(file)) {}

  [[nodiscard]] const std::string& file() const noexcept { return file_; }
  [[nodiscard]] std::string where(const std::string& path) const;
  [[nodiscard]] static std::string child(const std::string& path, std::string_view key);
  [[nodiscard]] static std::string index(const std::string& path, size_t i);

  /// Error(kFormat): `path` holds the wrong JSON type.
  [[noreturn]] void wrong_type(const std::string& path, std::string_view expected) const;
  /// Error(kUnsupported): a component type polyinfer does not know.
  [[noreturn]] void unsupported(const std::string& path, std::string_view what) const;
  /// Error(kFormat) with a free message.
  [[noreturn]] void invalid(const std::string& path, const std::string& message) const;

  /// The member `key` of `object`, or nullptr when absent or null.
  [[nodiscard]] static const Json* member(const Json& object, std::string_view key);
  /// The member `key`, which must be present and not null.
  [[nodiscard]] const Json& required(const Json& object, std::string_view key,
                                     const std::string& path) const;
  [[nodiscard]] bool boolean(const Json& object, std::string_view key, const std::string& path,
                             bool fallback) const;
  [[nodiscard]] int64_t integer(const Json& object, std::string_view key, const std::string& path,
                                int64_t fallback) const;
  [[nodiscard]] std::string string(const Json& object, std::string_view key,
                                   const std::string& path) const;
  [[nodiscard]] std::optional<std::string> optional_string(const Json& object, std::string_view key,
                                                           const std::string& path) const;
  /// The value itself as a string / array / object, or Error(kFormat).
  const std::string& as_string(const Json& value, const std::string& path) const;
  const Json& as_array(const Json& value, const std::string& path) const;
  const Json& as_object(const Json& value, const std::string& path) const;
  /// The "type" member of a component object.
  [[nodiscard]] std::string type(const Json& component, const std::string& path) const;

 private:
  std::string file_;
};

/// Text split into pieces by the pre-tokenizers: one arena string and spans into it, so that
/// splitting allocates nothing per piece.
class HfPieces {
 public:
  struct Piece {
    size_t begin;
    size_t end;
    bool at_origin;  ///< starts at offset 0 of the original input (Metaspace "first")
  };

  void clear() noexcept {
    arena_.clear();
    pieces_.clear();
  }
  [[nodiscard]] const std::vector<Piece>& pieces() const noexcept { return pieces_; }
  [[nodiscard]] std::string_view text(const Piece& piece) const noexcept {
    return std::string_view(arena_).substr(piece.begin, piece.end - piece.begin);
  }
  /// Appends one piece (empty pieces are dropped, as tokenizers does).
  void add(std::string_view text, bool at_origin) {
    if (text.empty()) return;
    const size_t begin = arena_.size();
    arena_.append(text);
    pieces_.push_back({begin, arena_.size(), at_origin});
  }
  /// Builds a piece in parts: open(), then append() any number of times, then close().
  void open() noexcept { open_ = arena_.size(); }
  std::string& buffer() noexcept { return arena_; }
  void close(bool at_origin) {
    if (arena_.size() > open_) pieces_.push_back({open_, arena_.size(), at_origin});
  }

 private:
  std::string arena_;
  std::vector<Piece> pieces_;
  size_t open_ = 0;
};

/// A normalizer: rewrites the text between added tokens.
class HfNormalizer {
 public:
  virtual ~HfNormalizer() = default;
  /// Rewrites `text`; clears `at_origin` when characters at the start were removed, so that
  /// the first character no longer comes from offset 0 of the input.
  virtual void normalize(std::string& text, bool& at_origin) const = 0;
};

/// A pre-tokenizer: splits one piece into pieces (appended to `out`).
class HfPreTokenizer {
 public:
  virtual ~HfPreTokenizer() = default;
  virtual void split(std::string_view piece, bool at_origin, HfPieces& out) const = 0;
};

/// Hash for string-keyed maps that are searched with string_views.
struct HfStringHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const noexcept {
    return std::hash<std::string_view>{}(text);
  }
};
using HfStringMap = std::unordered_map<std::string, int32_t, HfStringHash, std::equal_to<>>;

/// A model vocabulary: token → id and id → token (ids may have gaps).
struct HfVocab {
  HfStringMap ids;
  std::vector<std::string> tokens;  ///< by id; "" where no token has that id
  std::vector<bool> present;        ///< by id

  [[nodiscard]] std::optional<int32_t> find(std::string_view token) const {
    const auto it = ids.find(token);
    if (it == ids.end()) return std::nullopt;
    return it->second;
  }
  [[nodiscard]] const std::string* token(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= tokens.size() || !present[static_cast<size_t>(id)]) {
      return nullptr;
    }
    return &tokens[static_cast<size_t>(id)];
  }
  /// Records one entry of a vocabulary of `entries` tokens; Error(kFormat) at `path` for
  /// negative ids or ids absurdly far beyond the number of entries.
  void add(std::string token, int64_t id, size_t entries, const std::string& path,
           const HfJson& json);
};

/// Reads a {"token": id, …} vocabulary object.
[[nodiscard]] HfVocab read_hf_vocab(const Json& node, const std::string& path, const HfJson& json);

/// Memo of word → ids for one encode call (models are deterministic per word), so that long
/// texts tokenize each distinct word once. Owned by the call: no shared mutable state.
class HfWordCache {
 public:
  /// Words longer than this are not memoised.
  static constexpr size_t kMaxWordBytes = 48;
  /// The memoised ids of `word`, or nullopt.
  [[nodiscard]] std::optional<std::span<const int32_t>> find(std::string_view word) const {
    const auto it = map_.find(word);
    if (it == map_.end()) return std::nullopt;
    return std::span<const int32_t>(ids_).subspan(it->second.first, it->second.second);
  }
  void insert(std::string_view word, const int32_t* first, size_t count) {
    if (word.size() > kMaxWordBytes || map_.size() >= kMaxWords) return;
    map_.emplace(std::string(word),
                 std::make_pair(static_cast<uint32_t>(ids_.size()), static_cast<uint32_t>(count)));
    ids_.insert(ids_.end(), first, first + count);
  }

 private:
  static constexpr size_t kMaxWords = size_t{1} << 16;
  std::unordered_map<std::string, std::pair<uint32_t, uint32_t>, HfStringHash, std::equal_to<>>
      map_;
  std::vector<int32_t> ids_;
};

/// A model: one pre-tokenized piece to ids.
class HfModel {
 public:
  virtual ~HfModel() = default;
  /// Appends the ids of `piece`; `cache` (may be null) memoises words across the call.
  virtual void tokenize(std::string_view piece, std::vector<int32_t>& ids,
                        HfWordCache* cache) const = 0;
  [[nodiscard]] virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  /// nullptr when the model has no token with this id.
  [[nodiscard]] virtual const std::string* id_to_token(int32_t id) const = 0;
  /// One more than the largest id.
  [[nodiscard]] virtual int32_t id_limit() const noexcept = 0;
  /// "BPE", "WordPiece", "WordLevel", "Unigram".
  [[nodiscard]] virtual std::string_view type() const noexcept = 0;
  /// Whether byte_fallback is on (BPE, Unigram).
  [[nodiscard]] virtual bool byte_fallback() const noexcept { return false; }
};

/// A post-processor: adds the special tokens of a single sequence.
class HfPostProcessor {
 public:
  virtual ~HfPostProcessor() = default;
  virtual void add_special(std::vector<int32_t>& ids) const = 0;
};

/// A decoder: tokenizers' decode_chain (tokens in, tokens out; the caller joins them).
class HfDecoder {
 public:
  virtual ~HfDecoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

using HfNormalizers = std::vector<std::unique_ptr<const HfNormalizer>>;
using HfPreTokenizers = std::vector<std::unique_ptr<const HfPreTokenizer>>;
using HfPostProcessors = std::vector<std::unique_ptr<const HfPostProcessor>>;
using HfDecoders = std::vector<std::unique_ptr<const HfDecoder>>;

/// One added token of tokenizer.json's "added_tokens" (or of tokenizer_config.json).
struct HfAddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false;  ///< only match where not inside a word (\w on either side)
  bool lstrip = false;       ///< also take the whitespace on its left
  bool rstrip = false;       ///< also take the whitespace on its right
  bool normalized = true;    ///< match in the normalized text instead of the raw text
  bool special = false;      ///< a control token: skippable in decode, optional in encode
};

/// tokenizers' AddedVocabulary: finds added tokens in text, leftmost-longest, honouring
/// single_word / lstrip / rstrip.
class HfAddedVocabulary {
 public:
  /// A matched token (id >= 0) or the text between matches (id == -1), as byte offsets.
  struct Segment {
    size_t begin;
    size_t end;
    int32_t id;
  };

  HfAddedVocabulary();
  ~HfAddedVocabulary();
  HfAddedVocabulary(HfAddedVocabulary&&) noexcept;
  HfAddedVocabulary& operator=(HfAddedVocabulary&&) noexcept;

  /// Adds a token, or replaces the one with the same content. Empty contents are ignored.
  void add(HfAddedToken token);
  /// Builds the matchers; `normalize` maps the content of normalized tokens to the form they
  /// are matched in.
  void build(const std::function<std::string(std::string_view)>& normalize);

  /// Splits `text` into segments covering it: matches of the raw (normalized == false) tokens
  /// when `normalized_pass` is false, of the normalized ones when true. Special tokens are
  /// only matched when `parse_special`.
  void split(std::string_view text, bool normalized_pass, bool parse_special,
             std::vector<Segment>& out) const;

  [[nodiscard]] bool has_normalized() const noexcept;
  [[nodiscard]] const std::vector<HfAddedToken>& tokens() const noexcept { return tokens_; }
  [[nodiscard]] const HfAddedToken* find_content(std::string_view content) const;

 private:
  struct Matcher;
  std::vector<HfAddedToken> tokens_;
  HfStringMap index_;  // content → index into tokens_
  std::unique_ptr<Matcher> raw_;
  std::unique_ptr<Matcher> normalized_;
};

/// What the loader learned about the pipeline while building it (for TokenizerInfo::kind).
struct HfTraits {
  bool byte_level = false;  ///< a ByteLevel pre-tokenizer or decoder
  bool metaspace = false;   ///< a Metaspace pre-tokenizer or decoder
};

/// Builders: each appends the component at `node` (Sequences flattened) to `out`. Unknown
/// types throw Error(kUnsupported), malformed ones Error(kFormat), both naming file and path.
void add_hf_normalizer(const Json& node, const std::string& path, const HfJson& json, int depth,
                       HfNormalizers& out);
void add_hf_pre_tokenizer(const Json& node, const std::string& path, const HfJson& json, int depth,
                          HfTraits& traits, HfPreTokenizers& out);
void add_hf_decoder(const Json& node, const std::string& path, const HfJson& json, int depth,
                    HfTraits& traits, HfDecoders& out);
/// (Post-processors carry their ids: TemplateProcessing's special_tokens, Bert/Roberta's
/// [name, id] pairs.)
void add_hf_post_processor(const Json& node, const std::string& path, const HfJson& json, int depth,
                           HfPostProcessors& out);
[[nodiscard]] std::unique_ptr<const HfModel> make_hf_model(const Json& node,
                                                           const std::string& path,
                                                           const HfJson& json);
/// The model builders make_hf_model dispatches to, one per "type".
[[nodiscard]] std::unique_ptr<const HfModel> make_hf_bpe_model(const Json& node,
                                                               const std::string& path,
                                                               const HfJson& json);
[[nodiscard]] std::unique_ptr<const HfModel> make_hf_wordpiece_model(const Json& node,
                                                                     const std::string& path,
                                                                     const HfJson& json);
[[nodiscard]] std::unique_ptr<const HfModel> make_hf_unigram_model(const Json& node,
                                                                   const std::string& path,
                                                                   const HfJson& json);
[[nodiscard]] std::unique_ptr<const HfModel> make_hf_wordlevel_model(const Json& node,
                                                                     const std::string& path,
                                                                     const HfJson& json);

/// Reads a {"String": s} / {"Regex": r} pattern into `literal` or `regex`.
void read_hf_pattern(const Json& node, const std::string& path, const HfJson& json,
                     std::string& literal, std::unique_ptr<Regex>& regex);

/// Everything make_hf_tokenizer reads from tokenizer.json and tokenizer_config.json.
struct HfPipeline {
  HfAddedVocabulary added;
  HfNormalizers normalizers;
  HfPreTokenizers pre_tokenizers;
  std::unique_ptr<const HfModel> model;
  HfPostProcessors post_processors;
  HfDecoders decoders;  ///< empty: tokens joined with " "
  /// transformers' clean_up_tokenization_spaces (applied in decode unless the model is BPE).
  bool clean_up_spaces = false;
  /// clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output.
  bool clean_up_bpe = false;
  /// transformers' split_special_tokens: special tokens in the text are never matched.
  bool split_special = false;
};

class TokenizerImpl;
struct TokenizerInfo;
/// The tokenizer running `pipeline`, with `info` as loaded.
[[nodiscard]] std::shared_ptr<const TokenizerImpl> make_hf_pipeline_tokenizer(HfPipeline pipeline,
                                                                              TokenizerInfo info);

// ---- Text helpers with the semantics of Rust's std and `regex` crate (tokenizers' behaviour).

/// Rust's String::from_utf8_lossy: each maximal ill-formed subsequence becomes one U+FFFD.
[[nodiscard]] std::string utf8_lossy(std::string_view bytes);
/// Whether `bytes` is well-formed UTF-8 (no overlongs, surrogates or truncation).
[[nodiscard]] bool utf8_is_valid(std::string_view bytes) noexcept;
/// Rust's char::is_whitespace / regex \s (the Unicode White_Space property).
[[nodiscard]] bool rust_is_whitespace(char32_t cp) noexcept;
/// Rust regex \w: Alphabetic, marks, decimal numbers, connector punctuation, join controls.
[[nodiscard]] bool rust_is_word(char32_t cp) noexcept;
/// Rust's char::is_numeric: general categories Nd, Nl, No.
[[nodiscard]] bool rust_is_numeric(char32_t cp) noexcept;
/// BERT's punctuation: ASCII punctuation or any Unicode P* category.
[[nodiscard]] bool bert_is_punctuation(char32_t cp) noexcept;
/// Unicode general category C* (Cc, Cf, Cs, Co, Cn): Rust's char::is_other.
[[nodiscard]] bool is_other_category(char32_t cp) noexcept;
/// Replaces every occurrence of `from` (non-overlapping, left to right) with `to`.
void replace_all(std::string& text, std::string_view from, std::string_view to);
/// Applies replace_all for each rule in order; every rule's pattern must start with ' ' + a
/// non-space byte and its replacement with that byte or with ' ' + that byte (transformers'
/// and tokenizers' cleanup rules). Rules that cannot match are skipped after one scan.
void replace_space_rules(std::string& text,
                         std::span<const std::pair<std::string_view, std::string_view>> rules);
/// The code point at `text[pos]` (valid UTF-8 assumed; U+FFFD otherwise), advancing `pos`.
[[nodiscard]] char32_t next_code_point(std::string_view text, size_t& pos) noexcept;
/// The last code point of non-empty `text`.
[[nodiscard]] char32_t last_code_point(std::string_view text) noexcept;

}  // namespace polyinfer::inline v0::detail
