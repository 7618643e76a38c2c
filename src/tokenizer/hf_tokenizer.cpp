// SPDX-License-Identifier: Apache-2.0
// HfTokenizer: runs a tokenizer.json pipeline (added tokens, normalizers, pre-tokenizers,
// model, post-processors; decoders) the way tokenizers + transformers do.
#include <algorithm>
#include <utility>

#include "tokenizer/hf_pipeline.hpp"
#include "tokenizer/tokenizer_impl.hpp"

namespace polyinfer::inline v0::detail {

namespace {

/// transformers' clean_up_tokenization (PreTrainedTokenizerBase): sequential replacements.
void clean_up_tokenization(std::string& text) {
  static constexpr std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  replace_space_rules(text, kRules);
}

class HfTokenizer final : public TokenizerImpl {
 public:
  HfTokenizer(HfPipeline pipeline, TokenizerInfo info) : pipeline_(std::move(pipeline)) {
    info_ = std::move(info);
    const HfModel& model = *pipeline_.model;
    int32_t limit = model.id_limit();
    for (const HfAddedToken& token : pipeline_.added.tokens())
      limit = std::max(limit, token.id + 1);
    tokens_.resize(static_cast<size_t>(limit));
    flags_.assign(static_cast<size_t>(limit), 0);
    for (int32_t id = 0; id < model.id_limit(); ++id) {
      if (const std::string* token = model.id_to_token(id)) {
        tokens_[static_cast<size_t>(id)] = *token;
        flags_[static_cast<size_t>(id)] = kPresent;
      }
    }
    // Added tokens win over the model's entry for the same id (AddedVocabulary::id_to_token);
    // tokenizers reports normalized ones in their normalized form.
    for (const HfAddedToken& token : pipeline_.added.tokens()) {
      std::string content = token.content;
      if (token.normalized) {
        bool at_origin = true;
        for (const auto& normalizer : pipeline_.normalizers) {
          normalizer->normalize(content, at_origin);
        }
      }
      tokens_[static_cast<size_t>(token.id)] = std::move(content);
      flags_[static_cast<size_t>(token.id)] = kPresent;
    }
    // tokenizers skips tokens whose *content* is a special token's.
    for (size_t id = 0; id < tokens_.size(); ++id) {
      if ((flags_[id] & kPresent) == 0) continue;
      const HfAddedToken* added = pipeline_.added.find_content(tokens_[id]);
      if (added != nullptr && added->special) flags_[id] |= kSpecial;
    }
  }

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options) const override {
    std::string repaired;
    if (!utf8_is_valid(text)) {
      repaired = utf8_lossy(text);
      text = repaired;
    }
    const bool parse_special = options.parse_special && !pipeline_.split_special;
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 4);
    Scratch scratch;
    scratch.memoise = text.size() >= kMemoiseBytes;
    pipeline_.added.split(text, false, parse_special, scratch.raw_segments);
    for (const auto& segment : scratch.raw_segments) {
      if (segment.id >= 0) {
        ids.push_back(segment.id);
        continue;
      }
      if (segment.begin == segment.end) continue;
      std::string& normalized = scratch.normalized;
      normalized.assign(text.substr(segment.begin, segment.end - segment.begin));
      bool at_origin = segment.begin == 0;
      for (const auto& normalizer : pipeline_.normalizers)
        normalizer->normalize(normalized, at_origin);
      if (normalized.empty()) continue;
      if (!pipeline_.added.has_normalized()) {
        tokenize_piece(normalized, at_origin, scratch, ids);
        continue;
      }
      pipeline_.added.split(normalized, true, parse_special, scratch.normalized_segments);
      for (const auto& sub : scratch.normalized_segments) {
        if (sub.id >= 0) {
          ids.push_back(sub.id);
        } else if (sub.begin < sub.end) {
          tokenize_piece(std::string_view(normalized).substr(sub.begin, sub.end - sub.begin),
                         at_origin && sub.begin == 0, scratch, ids);
        }
      }
    }
    if (options.add_special) {
      for (const auto& processor : pipeline_.post_processors) processor->add_special(ids);
    }
    return ids;
  }

  std::string decode(std::span<const int32_t> ids, const DecodeOptions& options) const override {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (const int32_t id : ids) {
      const uint8_t flags = flags_[static_cast<size_t>(id)];
      if ((flags & kPresent) == 0) continue;
      if (options.skip_special && (flags & kSpecial) != 0) continue;
      tokens.push_back(tokens_[static_cast<size_t>(id)]);
    }
    std::string text;
    if (pipeline_.decoders.empty()) {
      for (size_t i = 0; i < tokens.size(); ++i) {
        if (i > 0) text += ' ';
        text += tokens[i];
      }
    } else {
      for (const auto& decoder : pipeline_.decoders) decoder->decode_chain(tokens);
      for (const std::string& token : tokens) text += token;
    }
    // transformers skips the cleanup for BPE models: it would eat spaces before punctuation.
    if (pipeline_.clean_up_spaces && (pipeline_.model->type() != "BPE" || pipeline_.clean_up_bpe)) {
      clean_up_tokenization(text);
    }
    return text;
  }

  std::string token(int32_t id) const override { return tokens_[static_cast<size_t>(id)]; }
  int32_t vocab_size() const noexcept override { return static_cast<int32_t>(tokens_.size()); }
  bool is_special(int32_t id) const override {
    return (flags_[static_cast<size_t>(id)] & kSpecial) != 0;
  }

 private:
  static constexpr uint8_t kPresent = 1;
  static constexpr uint8_t kSpecial = 2;

  /// Buffers of one encode call, reused across its segments.
  struct Scratch {
    std::vector<HfAddedVocabulary::Segment> raw_segments;
    std::vector<HfAddedVocabulary::Segment> normalized_segments;
    std::string normalized;
    HfPieces pieces;
    HfPieces next;
    HfWordCache cache;
    bool memoise = false;  // only long inputs repeat enough words to gain from the memo
  };

  /// Inputs at least this long memoise word → ids during the call.
  static constexpr size_t kMemoiseBytes = 4096;

  void tokenize_piece(std::string_view text, bool at_origin, Scratch& scratch,
                      std::vector<int32_t>& ids) const {
    scratch.pieces.clear();
    scratch.pieces.add(text, at_origin);
    for (const auto& pre_tokenizer : pipeline_.pre_tokenizers) {
      scratch.next.clear();
      for (const auto& piece : scratch.pieces.pieces()) {
        pre_tokenizer->split(scratch.pieces.text(piece), piece.at_origin, scratch.next);
      }
      std::swap(scratch.pieces, scratch.next);
    }
    for (const auto& piece : scratch.pieces.pieces()) {
      pipeline_.model->tokenize(scratch.pieces.text(piece), ids,
                                scratch.memoise ? &scratch.cache : nullptr);
    }
  }

  HfPipeline pipeline_;
  std::vector<std::string> tokens_;  // by id
  std::vector<uint8_t> flags_;       // by id: kPresent | kSpecial
};

}  // namespace

std::shared_ptr<const TokenizerImpl> make_hf_pipeline_tokenizer(HfPipeline pipeline,
                                                                TokenizerInfo info) {
  return std::make_shared<HfTokenizer>(std::move(pipeline), std::move(info));
}

}  // namespace polyinfer::inline v0::detail
