// SPDX-License-Identifier: Apache-2.0
// tokenizer.json pre-tokenizers: ByteLevel, Split, Metaspace, Whitespace, WhitespaceSplit,
// BertPreTokenizer, Punctuation, Digits, CharDelimiterSplit and Sequence.
#include <memory>

#include "tokenizer/hf_pipeline.hpp"
#include "tokenizer/regex.hpp"
#include "tokenizer/unicode.hpp"

namespace polyinfer::inline v0::detail {

namespace {

/// GPT-2's pre-tokenizer regex (tokenizers' ByteLevel with use_regex).
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

/// Turns a stream of (range, is_delimiter) events covering a piece into output pieces, as
/// tokenizers' NormalizedString::split does for each SplitDelimiterBehavior.
class BehaviorSink {
 public:
  BehaviorSink(Behavior behavior, std::string_view piece, bool at_origin, HfPieces& out)
      : behavior_(behavior), piece_(piece), at_origin_(at_origin), out_(out) {}

  void event(size_t begin, size_t end, bool is_match) {
    switch (behavior_) {
      case Behavior::kIsolated:
        emit(begin, end);
        break;
      case Behavior::kRemoved:
        if (!is_match) emit(begin, end);
        break;
      case Behavior::kContiguous:
        if (has_pending_ && pending_match_ == is_match) {
          pending_end_ = end;
        } else {
          flush();
          hold(begin, end, is_match);
        }
        break;
      case Behavior::kMergedWithPrevious:
        if (is_match && !previous_match_ && has_pending_) {
          pending_end_ = end;
        } else {
          flush();
          hold(begin, end, is_match);
        }
        previous_match_ = is_match;
        break;
      case Behavior::kMergedWithNext:
        if (is_match) {
          flush();
          hold(begin, end, true);
        } else if (has_pending_) {
          pending_end_ = end;
          flush();
        } else {
          emit(begin, end);
        }
        break;
    }
  }

  void finish() { flush(); }

 private:
  void emit(size_t begin, size_t end) {
    out_.add(piece_.substr(begin, end - begin), at_origin_ && begin == 0);
  }
  void hold(size_t begin, size_t end, bool is_match) {
    has_pending_ = true;
    pending_begin_ = begin;
    pending_end_ = end;
    pending_match_ = is_match;
  }
  void flush() {
    if (has_pending_) emit(pending_begin_, pending_end_);
    has_pending_ = false;
  }

  Behavior behavior_;
  std::string_view piece_;
  bool at_origin_;
  HfPieces& out_;
  bool has_pending_ = false;
  size_t pending_begin_ = 0;
  size_t pending_end_ = 0;
  bool pending_match_ = false;
  bool previous_match_ = false;
};

/// Feeds `sink` one event per code point that satisfies `is_delimiter` (each its own match)
/// and one for each run between them: tokenizers' split on a char predicate.
template <typename Predicate>
void split_on_chars(std::string_view piece, Predicate is_delimiter, BehaviorSink& sink) {
  size_t pos = 0;
  size_t gap = 0;
  while (pos < piece.size()) {
    const size_t start = pos;
    const char32_t cp = next_code_point(piece, pos);
    if (is_delimiter(cp)) {
      if (gap < start) sink.event(gap, start, false);
      sink.event(start, pos, true);
      gap = pos;
    }
  }
  if (gap < piece.size()) sink.event(gap, piece.size(), false);
  sink.finish();
}

Behavior read_behavior(const Json& node, const std::string& path, const HfJson& json,
                       Behavior fallback) {
  const auto name = json.optional_string(node, "behavior", path);
  if (!name) return fallback;
  if (*name == "Removed") return Behavior::kRemoved;
  if (*name == "Isolated") return Behavior::kIsolated;
  if (*name == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (*name == "MergedWithNext") return Behavior::kMergedWithNext;
  if (*name == "Contiguous") return Behavior::kContiguous;
  json.unsupported(HfJson::child(path, "behavior"), "split behavior \"" + *name + "\"");
}

void append_byte_level(std::string_view bytes, std::string& out) {
  const auto& table = byte_to_unicode();
  for (const char c : bytes) out += table[static_cast<unsigned char>(c)];
}

class ByteLevelPreTokenizer final : public HfPreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space) {
    if (use_regex) regex_ = std::make_unique<Regex>(kGpt2Pattern);
  }

  void split(std::string_view piece, bool at_origin, HfPieces& out) const override {
    std::string prefixed;
    if (add_prefix_space_ && piece.front() != ' ') {
      prefixed.reserve(piece.size() + 1);
      prefixed += ' ';
      prefixed.append(piece);
      piece = prefixed;
    }
    if (!regex_) {
      add_mapped(piece, at_origin, out);
      return;
    }
    size_t last = 0;
    for (const auto& [begin, end] : regex_->find_all(piece)) {
      if (begin > last) add_mapped(piece.substr(last, begin - last), at_origin && last == 0, out);
      add_mapped(piece.substr(begin, end - begin), at_origin && begin == 0, out);
      last = end;
    }
    if (last < piece.size()) add_mapped(piece.substr(last), at_origin && last == 0, out);
  }

 private:
  static void add_mapped(std::string_view bytes, bool at_origin, HfPieces& out) {
    out.open();
    append_byte_level(bytes, out.buffer());
    out.close(at_origin);
  }

  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

class SplitPreTokenizer final : public HfPreTokenizer {
 public:
  SplitPreTokenizer(std::string literal, std::unique_ptr<Regex> regex, Behavior behavior,
                    bool invert)
      : literal_(std::move(literal)),
        regex_(std::move(regex)),
        behavior_(behavior),
        invert_(invert) {}

  void split(std::string_view piece, bool at_origin, HfPieces& out) const override {
    BehaviorSink sink(behavior_, piece, at_origin, out);
    size_t last = 0;
    auto match = [&](size_t begin, size_t end) {
      if (begin > last) sink.event(last, begin, invert_);
      sink.event(begin, end, !invert_);
      last = end;
    };
    if (regex_) {
      for (const auto& [begin, end] : regex_->find_all(piece)) match(begin, end);
    } else if (!literal_.empty()) {
      for (size_t at = piece.find(literal_); at != std::string_view::npos;
           at = piece.find(literal_, at + literal_.size())) {
        match(at, at + literal_.size());
      }
    }
    if (last < piece.size()) sink.event(last, piece.size(), invert_);
    sink.finish();
  }

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
  Behavior behavior_;
  bool invert_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePreTokenizer final : public HfPreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}

  void split(std::string_view piece, bool at_origin, HfPieces& out) const override {
    std::string text;
    text.reserve(piece.size() + 8);
    const bool starts_with_space = piece.front() == ' ';
    const bool starts_with_replacement = piece.substr(0, replacement_.size()) == replacement_;
    const bool prepend =
        !starts_with_space && !starts_with_replacement &&
        (scheme_ == PrependScheme::kAlways || (scheme_ == PrependScheme::kFirst && at_origin));
    if (prepend) text += replacement_;
    for (const char c : piece) {
      if (c == ' ') {
        text += replacement_;
      } else {
        text += c;
      }
    }
    if (!split_) {
      out.add(text, at_origin);
      return;
    }
    BehaviorSink sink(Behavior::kMergedWithNext, text, at_origin, out);
    size_t last = 0;
    for (size_t at = text.find(replacement_); at != std::string::npos;
         at = text.find(replacement_, at + replacement_.size())) {
      if (at > last) sink.event(last, at, false);
      sink.event(at, at + replacement_.size(), true);
      last = at + replacement_.size();
    }
    if (last < text.size()) sink.event(last, text.size(), false);
    sink.finish();
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

/// Whitespace: the regex \w+|[^\w\s]+ (Rust semantics), everything else dropped.
class WhitespacePreTokenizer final : public HfPreTokenizer {
 public:
  void split(std::string_view piece, bool at_origin, HfPieces& out) const override {
    enum class Kind { kSpace, kWord, kOther };
    size_t pos = 0;
    size_t run_begin = 0;
    Kind run = Kind::kSpace;
    while (pos < piece.size()) {
      const size_t start = pos;
      const char32_t cp = next_code_point(piece, pos);
      const Kind kind = rust_is_word(cp)         ? Kind::kWord
                        : rust_is_whitespace(cp) ? Kind::kSpace
                                                 : Kind::kOther;
      if (kind != run) {
        if (run != Kind::kSpace) {
          out.add(piece.substr(run_begin, start - run_begin), at_origin && run_begin == 0);
        }
        run = kind;
        run_begin = start;
      }
    }
    if (run != Kind::kSpace) out.add(piece.substr(run_begin), at_origin && run_begin == 0);
  }
};

/// Splits on one class of characters with a behavior (WhitespaceSplit, Punctuation, Digits,
/// CharDelimiterSplit).
template <typename Predicate>
class CharSplitPreTokenizer final : public HfPreTokenizer {
 public:
  CharSplitPreTokenizer(Predicate predicate, Behavior behavior)
      : predicate_(predicate), behavior_(behavior) {}
  void split(std::string_view piece, bool at_origin, HfPieces& out) const override {
    BehaviorSink sink(behavior_, piece, at_origin, out);
    split_on_chars(piece, predicate_, sink);
  }

 private:
  Predicate predicate_;
  Behavior behavior_;
};

template <typename Predicate>
std::unique_ptr<const HfPreTokenizer> make_char_split(Predicate predicate, Behavior behavior) {
  return std::make_unique<CharSplitPreTokenizer<Predicate>>(predicate, behavior);
}

/// BertPreTokenizer: whitespace removed, then every punctuation character isolated.
class BertPreTokenizer final : public HfPreTokenizer {
 public:
  void split(std::string_view piece, bool at_origin, HfPieces& out) const override {
    size_t pos = 0;
    size_t word = 0;
    auto flush = [&](size_t end) {
      if (end > word) out.add(piece.substr(word, end - word), at_origin && word == 0);
    };
    while (pos < piece.size()) {
      const size_t start = pos;
      const char32_t cp = next_code_point(piece, pos);
      if (rust_is_whitespace(cp)) {
        flush(start);
        word = pos;
      } else if (bert_is_punctuation(cp)) {
        flush(start);
        out.add(piece.substr(start, pos - start), at_origin && start == 0);
        word = pos;
      }
    }
    flush(piece.size());
  }
};

PrependScheme read_prepend_scheme(const Json& node, const std::string& path, const HfJson& json) {
  if (const auto scheme = json.optional_string(node, "prepend_scheme", path)) {
    if (*scheme == "always") return PrependScheme::kAlways;
    if (*scheme == "first") return PrependScheme::kFirst;
    if (*scheme == "never") return PrependScheme::kNever;
    json.unsupported(HfJson::child(path, "prepend_scheme"), "prepend_scheme \"" + *scheme + "\"");
  }
  // Files from before prepend_scheme: add_prefix_space.
  return json.boolean(node, "add_prefix_space", path, true) ? PrependScheme::kAlways
                                                            : PrependScheme::kNever;
}

std::string read_replacement(const Json& node, const std::string& path, const HfJson& json) {
  auto replacement = json.optional_string(node, "replacement", path);
  if (!replacement) replacement = json.optional_string(node, "str_rep", path);
  const std::string value = replacement.value_or("\xE2\x96\x81");
  size_t pos = 0;
  if (value.empty() || !utf8_next(value, pos) || pos != value.size()) {
    json.invalid(HfJson::child(path, "replacement"), "must be exactly one character");
  }
  return value;
}

}  // namespace

void add_hf_pre_tokenizer(const Json& node, const std::string& path, const HfJson& json, int depth,
                          HfTraits& traits, HfPreTokenizers& out) {
  if (node.is_null()) return;
  if (depth > HfJson::kMaxDepth) json.invalid(path, "Sequence nesting too deep");
  const std::string type = json.type(node, path);
  if (type == "Sequence") {
    const std::string list_path = HfJson::child(path, "pretokenizers");
    const Json& list = json.as_array(json.required(node, "pretokenizers", path), list_path);
    for (size_t i = 0; i < list.size(); ++i) {
      add_hf_pre_tokenizer(list[i], HfJson::index(list_path, i), json, depth + 1, traits, out);
    }
  } else if (type == "ByteLevel") {
    traits.byte_level = true;
    out.push_back(
        std::make_unique<ByteLevelPreTokenizer>(json.boolean(node, "add_prefix_space", path, true),
                                                json.boolean(node, "use_regex", path, true)));
  } else if (type == "Split") {
    std::string literal;
    std::unique_ptr<Regex> regex;
    read_hf_pattern(json.required(node, "pattern", path), HfJson::child(path, "pattern"), json,
                    literal, regex);
    out.push_back(std::make_unique<SplitPreTokenizer>(
        std::move(literal), std::move(regex), read_behavior(node, path, json, Behavior::kIsolated),
        json.boolean(node, "invert", path, false)));
  } else if (type == "Metaspace") {
    traits.metaspace = true;
    out.push_back(std::make_unique<MetaspacePreTokenizer>(read_replacement(node, path, json),
                                                          read_prepend_scheme(node, path, json),
                                                          json.boolean(node, "split", path, true)));
  } else if (type == "Whitespace") {
    out.push_back(std::make_unique<WhitespacePreTokenizer>());
  } else if (type == "WhitespaceSplit") {
    out.push_back(make_char_split(rust_is_whitespace, Behavior::kRemoved));
  } else if (type == "BertPreTokenizer") {
    out.push_back(std::make_unique<BertPreTokenizer>());
  } else if (type == "Punctuation") {
    out.push_back(
        make_char_split(bert_is_punctuation, read_behavior(node, path, json, Behavior::kIsolated)));
  } else if (type == "Digits") {
    out.push_back(
        make_char_split(rust_is_numeric, json.boolean(node, "individual_digits", path, false)
                                             ? Behavior::kIsolated
                                             : Behavior::kContiguous));
  } else if (type == "CharDelimiterSplit") {
    const std::string delimiter = json.string(node, "delimiter", path);
    size_t pos = 0;
    const auto cp = delimiter.empty() ? std::nullopt : utf8_next(delimiter, pos);
    if (!cp || pos != delimiter.size()) {
      json.invalid(HfJson::child(path, "delimiter"), "must be exactly one character");
    }
    const char32_t wanted = *cp;
    out.push_back(
        make_char_split([wanted](char32_t c) { return c == wanted; }, Behavior::kRemoved));
  } else {
    json.unsupported(HfJson::child(path, "type"), "pre_tokenizer type \"" + type + "\"");
  }
}

}  // namespace polyinfer::inline v0::detail
