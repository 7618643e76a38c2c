// SPDX-License-Identifier: Apache-2.0
// tokenizer.json decoders: ByteLevel, Metaspace, WordPiece, ByteFallback, Fuse, Strip, Replace,
// BPEDecoder, CTC and Sequence (tokenizers' decode_chain semantics).
#include <memory>

#include "tokenizer/hf_pipeline.hpp"
#include "tokenizer/regex.hpp"
#include "tokenizer/unicode.hpp"

namespace polyinfer::inline v0::detail {

namespace {

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

/// tokenizers' WordPiece cleanup of spaces before punctuation and contractions.
void wordpiece_cleanup(std::string& text) {
  static constexpr std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."},   {" ?", "?"},     {" !", "!"},    {" ,", ","},
      {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},  {" do not", " don't"},
      {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  replace_space_rules(text, kRules);
}

class ByteLevelDecoder final : public HfDecoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& token : tokens) {
      const size_t mark = bytes.size();
      size_t pos = 0;
      bool mapped = true;
      while (pos < token.size()) {
        const auto byte = unicode_to_byte(next_code_point(token, pos));
        if (!byte) {
          mapped = false;
          break;
        }
        bytes += static_cast<char>(*byte);
      }
      if (!mapped) {
        bytes.resize(mark);
        bytes += token;
      }
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

class MetaspaceDecoder final : public HfDecoder {
 public:
  MetaspaceDecoder(std::string replacement, bool prepend)
      : replacement_(std::move(replacement)), prepend_(prepend) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      replace_all(tokens[i], replacement_, i == 0 && prepend_ ? "" : " ");
    }
  }

 private:
  std::string replacement_;
  bool prepend_;
};

class WordPieceDecoder final : public HfDecoder {
 public:
  WordPieceDecoder(std::string prefix, bool cleanup)
      : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& token = tokens[i];
      if (i != 0) {
        if (token.starts_with(prefix_)) {
          // tokenizers uses replacen(prefix, "", 1): the first occurrence, here the start.
          token.erase(0, prefix_.size());
        } else {
          token.insert(0, 1, ' ');
        }
      }
      if (cleanup_) wordpiece_cleanup(token);
    }
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

/// <0xXX> tokens → bytes; a run that is not valid UTF-8 gives one U+FFFD per byte.
class ByteFallbackDecoder final : public HfDecoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string bytes;
    size_t run = 0;
    auto flush = [&] {
      if (run == 0) return;
      if (utf8_valid(bytes)) {
        out.push_back(bytes);
      } else {
        for (size_t i = 0; i < run; ++i) out.emplace_back(kReplacementChar);
      }
      bytes.clear();
      run = 0;
    };
    for (std::string& token : tokens) {
      if (const auto byte = parse_byte(token)) {
        bytes += static_cast<char>(*byte);
        ++run;
      } else {
        flush();
        out.push_back(std::move(token));
      }
    }
    flush();
    tokens = std::move(out);
  }

 private:
  static std::optional<uint8_t> parse_byte(std::string_view token) {
    if (token.size() != 6 || !token.starts_with("<0x") || token.back() != '>') return std::nullopt;
    int value = 0;
    for (const char c : token.substr(3, 2)) {
      int digit = 0;
      if (c >= '0' && c <= '9') {
        digit = c - '0';
      } else if (c >= 'A' && c <= 'F') {
        digit = c - 'A' + 10;
      } else if (c >= 'a' && c <= 'f') {
        digit = c - 'a' + 10;
      } else {
        return std::nullopt;
      }
      value = value * 16 + digit;
    }
    return static_cast<uint8_t>(value);
  }
};

class FuseDecoder final : public HfDecoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string joined;
    for (const std::string& token : tokens) joined += token;
    tokens.assign(1, std::move(joined));
  }
};

/// Removes up to `start` leading and `stop` trailing copies of one character per token.
class StripDecoder final : public HfDecoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      std::string_view view = token;
      for (size_t i = 0; i < start_ && view.starts_with(content_); ++i) {
        view.remove_prefix(content_.size());
      }
      for (size_t i = 0; i < stop_ && view.ends_with(content_); ++i) {
        view.remove_suffix(content_.size());
      }
      token = std::string(view);
    }
  }

 private:
  std::string content_;
  size_t start_;
  size_t stop_;
};

class ReplaceDecoder final : public HfDecoder {
 public:
  ReplaceDecoder(std::string literal, std::unique_ptr<Regex> regex, std::string content)
      : literal_(std::move(literal)), regex_(std::move(regex)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      if (!regex_) {
        replace_all(token, literal_, content_);
        continue;
      }
      const auto matches = regex_->find_all(token);
      if (matches.empty()) continue;
      std::string out;
      size_t last = 0;
      for (const auto& [begin, end] : matches) {
        out.append(token, last, begin - last);
        out += content_;
        last = end;
      }
      out.append(token, last, std::string::npos);
      token = std::move(out);
    }
  }

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
  std::string content_;
};

class BpeSuffixDecoder final : public HfDecoder {
 public:
  explicit BpeSuffixDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      replace_all(tokens[i], suffix_, i + 1 == tokens.size() ? "" : " ");
    }
  }

 private:
  std::string suffix_;
};

class CtcDecoder final : public HfDecoder {
 public:
  CtcDecoder(std::string pad, std::string delimiter, bool cleanup)
      : pad_(std::move(pad)), delimiter_(std::move(delimiter)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0 && tokens[i] == tokens[i - 1]) continue;  // dedup consecutive repeats
      std::string token = tokens[i];
      replace_all(token, pad_, "");
      if (cleanup_) {
        wordpiece_cleanup(token);
        replace_all(token, delimiter_, " ");
      }
      if (!token.empty()) out.push_back(std::move(token));
    }
    tokens = std::move(out);
  }

 private:
  std::string pad_;
  std::string delimiter_;
  bool cleanup_;
};

size_t read_count(const Json& node, std::string_view key, const std::string& path,
                  const HfJson& json) {
  const int64_t value = json.integer(node, key, path, 0);
  if (value < 0) json.invalid(HfJson::child(path, key), "negative");
  return static_cast<size_t>(value);
}

}  // namespace

void add_hf_decoder(const Json& node, const std::string& path, const HfJson& json, int depth,
                    HfTraits& traits, HfDecoders& out) {
  if (node.is_null()) return;
  if (depth > HfJson::kMaxDepth) json.invalid(path, "Sequence nesting too deep");
  const std::string type = json.type(node, path);
  if (type == "Sequence") {
    const std::string list_path = HfJson::child(path, "decoders");
    const Json& list = json.as_array(json.required(node, "decoders", path), list_path);
    for (size_t i = 0; i < list.size(); ++i) {
      add_hf_decoder(list[i], HfJson::index(list_path, i), json, depth + 1, traits, out);
    }
  } else if (type == "ByteLevel") {
    traits.byte_level = true;
    out.push_back(std::make_unique<ByteLevelDecoder>());
  } else if (type == "Metaspace") {
    traits.metaspace = true;
    std::string replacement =
        json.optional_string(node, "replacement", path)
            .value_or(json.optional_string(node, "str_rep", path).value_or("\xE2\x96\x81"));
    bool prepend = json.boolean(node, "add_prefix_space", path, true);
    if (const auto scheme = json.optional_string(node, "prepend_scheme", path)) {
      prepend = *scheme != "never";
    }
    out.push_back(std::make_unique<MetaspaceDecoder>(std::move(replacement), prepend));
  } else if (type == "WordPiece") {
    out.push_back(std::make_unique<WordPieceDecoder>(
        json.optional_string(node, "prefix", path).value_or("##"),
        json.boolean(node, "cleanup", path, true)));
  } else if (type == "ByteFallback") {
    out.push_back(std::make_unique<ByteFallbackDecoder>());
  } else if (type == "Fuse") {
    out.push_back(std::make_unique<FuseDecoder>());
  } else if (type == "Strip") {
    out.push_back(std::make_unique<StripDecoder>(json.string(node, "content", path),
                                                 read_count(node, "start", path, json),
                                                 read_count(node, "stop", path, json)));
  } else if (type == "Replace") {
    std::string literal;
    std::unique_ptr<Regex> regex;
    read_hf_pattern(json.required(node, "pattern", path), HfJson::child(path, "pattern"), json,
                    literal, regex);
    out.push_back(std::make_unique<ReplaceDecoder>(std::move(literal), std::move(regex),
                                                   json.string(node, "content", path)));
  } else if (type == "BPEDecoder") {
    out.push_back(std::make_unique<BpeSuffixDecoder>(
        json.optional_string(node, "suffix", path).value_or("</w>")));
  } else if (type == "CTC") {
    out.push_back(std::make_unique<CtcDecoder>(
        json.optional_string(node, "pad_token", path).value_or("<pad>"),
        json.optional_string(node, "word_delimiter_token", path).value_or("|"),
        json.boolean(node, "cleanup", path, true)));
  } else {
    json.unsupported(HfJson::child(path, "type"), "decoder type \"" + type + "\"");
  }
}

}  // namespace polyinfer::inline v0::detail
