// SPDX-License-Identifier: Apache-2.0
// The sentencepiece library's behaviour on a tokenizer.model: its normalizer, BPE merging by
// piece score (bpe_model.cc), unigram Viterbi (unigram_model.cc), byte fallback and decoding.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <optional>
#include <unordered_map>

#include "common/fail.hpp"
#include "tokenizer/bpe_chunks.hpp"
#include "tokenizer/bpe_merge.hpp"
#include "tokenizer/hf_pipeline.hpp"
#include "tokenizer/piece_trie.hpp"
#include "tokenizer/sentencepiece_model.hpp"
#include "tokenizer/tokenizer_impl.hpp"

namespace polyinfer::inline v0::detail {

namespace {

using PieceType = SentencePieceModel::PieceType;
using ModelType = SentencePieceModel::ModelType;

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";
constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";
constexpr float kUnkPenalty = 10.0F;
constexpr int kMaxResegmentDepth = 100;
/// Normalized inputs at least this long are merged chunk by chunk.
constexpr size_t kChunkBytes = 64;

/// string_util::OneCharLen: the sequence length announced by a lead byte.
size_t one_char_length(char lead) noexcept {
  return static_cast<size_t>("\1\1\1\1\1\1\1\1\1\1\1\1\2\2\3\4"[(lead & 0xFF) >> 4]);
}

bool is_trail(char c) noexcept {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

/// string_util::IsValidDecodeUTF8: length of the valid character at the front of `text`,
/// 0 when invalid. U+FFFD itself counts as valid, as in sentencepiece.
size_t valid_utf8_length(std::string_view text) noexcept {
  const auto b = [&](size_t i) {
    return static_cast<char32_t>(static_cast<unsigned char>(text[i]));
  };
  const size_t size = text.size();
  if (b(0) < 0x80) return 1;
  auto valid = [](char32_t cp) { return cp < 0xD800 || (cp >= 0xE000 && cp <= 0x10FFFF); };
  if (size >= 2 && (b(0) & 0xE0) == 0xC0 && is_trail(text[1])) {
    const char32_t cp = ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    if (cp >= 0x80 && valid(cp)) return 2;
  } else if (size >= 3 && (b(0) & 0xF0) == 0xE0 && is_trail(text[1]) && is_trail(text[2])) {
    const char32_t cp = ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    if (cp >= 0x800 && valid(cp)) return 3;
  } else if (size >= 4 && (b(0) & 0xF8) == 0xF0 && is_trail(text[1]) && is_trail(text[2]) &&
             is_trail(text[3])) {
    const char32_t cp =
        ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
    if (cp >= 0x10000 && valid(cp)) return 4;
  }
  return 0;
}

using ReverseMerges =
    std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>>;

class SentencePieceTokenizer final : public TokenizerImpl {
 public:
  SentencePieceTokenizer(SentencePieceModel model, const std::string& where, bool add_bos,
                         bool add_eos)
      : model_(std::move(model)), add_bos_(add_bos), add_eos_(add_eos) {
    if (!model_.precompiled_charsmap.empty()) {
      charsmap_.emplace(model_.precompiled_charsmap, where);
    }
    byte_ids_.fill(-1);
    float min_score = std::numeric_limits<float>::max();
    for (size_t i = 0; i < model_.pieces.size(); ++i) {
      const auto& piece = model_.pieces[i];
      const auto id = static_cast<int32_t>(i);
      if (!ids_.emplace(piece.text, id).second) {
        fail(ErrorCode::kFormat, where, "piece {} \"{}\" is already defined", i, piece.text);
      }
      if (model_.model_type == ModelType::kUnigram &&
          (std::isnan(piece.score) || std::isinf(piece.score))) {
        fail(ErrorCode::kFormat, where, "piece {} has a NaN or infinite score", i);
      }
      switch (piece.type) {
        case PieceType::kUnknown:
          if (unk_id_ >= 0) fail(ErrorCode::kFormat, where, "unk is defined twice");
          unk_id_ = id;
          break;
        case PieceType::kUserDefined:
          user_defined_.insert(piece.text, id);
          break;
        case PieceType::kByte:
          if (!model_.byte_fallback) {
            fail(ErrorCode::kFormat, where, "byte piece {} without byte_fallback", piece.text);
          }
          if (const int byte = byte_value(piece.text); byte >= 0) {
            byte_ids_[static_cast<size_t>(byte)] = id;
          } else {
            fail(ErrorCode::kFormat, where, "byte piece \"{}\" is invalid", piece.text);
          }
          break;
        case PieceType::kNormal:
          min_score = std::min(min_score, piece.score);
          break;
        default:
          break;
      }
      has_unused_ = has_unused_ || piece.type == PieceType::kUnused;
      if (model_.model_type == ModelType::kBpe) {
        chunker_.add_token(piece.text);
      } else if (piece.type == PieceType::kNormal || piece.type == PieceType::kUserDefined ||
                 piece.type == PieceType::kUnused) {
        unigram_pieces_.insert(piece.text, id);
      }
    }
    if (unk_id_ < 0) fail(ErrorCode::kFormat, where, "no unk piece (type UNKNOWN)");
    if (model_.byte_fallback &&
        std::find(byte_ids_.begin(), byte_ids_.end(), -1) != byte_ids_.end()) {
      fail(ErrorCode::kFormat, where, "byte_fallback without all 256 byte pieces");
    }
    if (model_.model_type != ModelType::kBpe && model_.model_type != ModelType::kUnigram) {
      fail(ErrorCode::kUnsupported, where + ": trainer_spec.model_type",
           "sentencepiece model type {} (WORD/CHAR) is not supported",
           static_cast<int>(model_.model_type));
    }
    chunker_.finish();
    min_score_ = min_score;
    info_.flavor = TokenizerFlavor::kSentencePiece;
    info_.kind = model_.model_type == ModelType::kBpe ? "spm-bpe" : "spm-unigram";
    info_.unk_id = unk_id_;
    info_.bos_id = find(model_.bos_piece).value_or(-1);
    info_.eos_id = find(model_.eos_piece).value_or(-1);
    info_.pad_id = find(model_.pad_piece).value_or(-1);
  }

  TokenizerInfo& mutable_info() { return info_; }

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options) const override {
    const std::string normalized = normalize(text);
    std::vector<std::pair<std::string_view, int32_t>> pieces;
    if (model_.model_type == ModelType::kBpe) {
      encode_bpe(normalized, pieces);
    } else {
      encode_unigram(normalized, pieces);
    }
    std::vector<int32_t> ids;
    ids.reserve(pieces.size() + 2);
    if (options.add_special && add_bos_ && info_.bos_id >= 0) ids.push_back(info_.bos_id);
    // SentencePieceProcessor::PopulateSentencePieceText: unknown pieces become bytes with
    // byte_fallback; otherwise runs of unknowns collapse into one <unk>.
    bool previous_unknown = false;
    for (const auto& [piece, id] : pieces) {
      const bool unknown = id == unk_id_;
      if (unknown && model_.byte_fallback) {
        for (const char c : piece) ids.push_back(byte_ids_[static_cast<unsigned char>(c)]);
      } else if (!(unknown && previous_unknown)) {
        ids.push_back(id);
      }
      previous_unknown = unknown;
    }
    if (options.add_special && add_eos_ && info_.eos_id >= 0) ids.push_back(info_.eos_id);
    return ids;
  }

  std::string decode(std::span<const int32_t> ids, const DecodeOptions&) const override {
    std::string text;
    std::string bytes;
    bool expect_bos_space = true;
    bool bos_space_seen = false;
    for (const int32_t id : ids) {
      const auto& piece = model_.pieces[static_cast<size_t>(id)];
      if (piece.type == PieceType::kByte) {
        bytes += static_cast<char>(byte_value(piece.text));
        continue;
      }
      flush_bytes(bytes, text);
      if (bos_space_seen || !text.empty()) expect_bos_space = false;
      bos_space_seen = decode_piece(piece, expect_bos_space, text);
    }
    flush_bytes(bytes, text);
    return text;
  }

  std::string token(int32_t id) const override {
    return model_.pieces[static_cast<size_t>(id)].text;
  }
  int32_t vocab_size() const noexcept override {
    return static_cast<int32_t>(model_.pieces.size());
  }
  bool is_special(int32_t id) const override {
    const PieceType type = model_.pieces[static_cast<size_t>(id)].type;
    return type == PieceType::kControl || type == PieceType::kUnknown;
  }

 private:
  [[nodiscard]] std::optional<int32_t> find(std::string_view piece) const {
    const auto it = ids_.find(piece);
    if (it == ids_.end()) return std::nullopt;
    return it->second;
  }

  /// "<0x41>" → 0x41; -1 for anything else.
  static int byte_value(std::string_view piece) {
    if (piece.size() != 6 || !piece.starts_with("<0x") || piece.back() != '>') return -1;
    int value = 0;
    for (const char c : piece.substr(3, 2)) {
      if (c >= '0' && c <= '9') {
        value = value * 16 + (c - '0');
      } else if (c >= 'A' && c <= 'F') {
        value = value * 16 + (c - 'A' + 10);
      } else {
        return -1;
      }
    }
    return value;
  }

  /// Normalizer::NormalizePrefix: user-defined symbols pass unchanged, then the charsmap,
  /// then one UTF-8 character (U+FFFD for one invalid byte).
  std::pair<std::string_view, size_t> normalize_prefix(std::string_view input) const {
    if (!user_defined_.empty()) {
      if (const size_t length = user_defined_.longest(input); length > 0) {
        return {input.substr(0, length), length};
      }
    }
    if (charsmap_) {
      if (const auto rule = charsmap_->match(input)) return *rule;
    }
    const size_t length = valid_utf8_length(input);
    if (length == 0) return {kReplacementChar, 1};
    return {input.substr(0, length), length};
  }

  /// Normalizer::Normalize without the offset bookkeeping.
  std::string normalize(std::string_view input) const {
    std::string out;
    if (input.empty()) return out;
    const bool fold = model_.remove_extra_whitespaces;
    if (fold) {
      while (!input.empty()) {
        const auto [piece, consumed] = normalize_prefix(input);
        if (piece != " ") break;
        input.remove_prefix(consumed);
      }
    }
    if (input.empty()) return out;
    const std::string_view space = model_.escape_whitespaces ? kSpaceSymbol : " ";
    out.reserve(input.size() * 3 / 2 + 4);
    const bool suffix = model_.treat_whitespace_as_suffix;
    if (!suffix && model_.add_dummy_prefix) out += space;
    bool previous_space = fold;
    // Without user-defined symbols or a charsmap, printable ASCII maps to itself.
    const bool plain = user_defined_.empty() && !charsmap_;
    while (!input.empty()) {
      if (plain) {
        size_t run = 0;
        while (run < input.size() && input[run] > ' ' && input[run] < 0x7F) ++run;
        if (run > 0) {
          out.append(input.substr(0, run));
          input.remove_prefix(run);
          previous_space = false;
          continue;
        }
      }
      auto [piece, consumed] = normalize_prefix(input);
      while (previous_space && piece.starts_with(' ')) piece.remove_prefix(1);
      if (!piece.empty()) {
        for (const char c : piece) {
          if (c == ' ') {
            out += space;
          } else {
            out += c;
          }
        }
        previous_space = piece.ends_with(' ');
      }
      input.remove_prefix(consumed);
      if (!fold) previous_space = false;
    }
    if (fold) {
      while (std::string_view(out).ends_with(space)) out.resize(out.size() - space.size());
    }
    if (suffix && model_.add_dummy_prefix) out += space;
    return out;
  }

  /// Whether a piece may take part in a BPE merge (PieceToIdNoReserved + IsReservedId).
  [[nodiscard]] int32_t mergeable_id(std::string_view piece) const {
    const auto id = find(piece);
    if (!id || *id == unk_id_) return -1;
    const PieceType type = model_.pieces[static_cast<size_t>(*id)].type;
    if (type != PieceType::kNormal && type != PieceType::kUserDefined &&
        type != PieceType::kUnused) {
      return -1;
    }
    return *id;
  }

  /// bpe::Model::SampleEncode without dropout. Long inputs are merged chunk by chunk (see
  /// BpeChunker) unless UNUSED pieces make the resegmentation depend on the whole text.
  void encode_bpe(std::string_view text,
                  std::vector<std::pair<std::string_view, int32_t>>& out) const {
    if (text.empty()) return;
    if (has_unused_ || text.size() < kChunkBytes) {
      merge_chunk(text, out);
      return;
    }
    HfWordCache memo;
    std::vector<int32_t> ids;
    chunker_.split(text, [&](std::string_view chunk) {
      if (const auto hit = memo.find(chunk)) {
        for (const int32_t id : *hit) out.emplace_back(std::string_view(), id);
        return;
      }
      const size_t first = out.size();
      merge_chunk(chunk, out);
      ids.clear();
      for (size_t i = first; i < out.size(); ++i) {
        if (out[i].second == unk_id_) return;  // unknown pieces need their text later
        ids.push_back(out[i].second);
      }
      memo.insert(chunk, ids.data(), ids.size());
    });
  }

  void merge_chunk(std::string_view text,
                   std::vector<std::pair<std::string_view, int32_t>>& out) const {
    std::vector<std::pair<size_t, size_t>> symbols;
    std::vector<bool> frozen(text.size() + 1, false);
    for (size_t pos = 0; pos < text.size();) {
      size_t length = user_defined_.empty() ? 0 : user_defined_.longest(text.substr(pos));
      if (length > 0) {
        frozen[pos] = true;
      } else {
        length = std::min(one_char_length(text[pos]), text.size() - pos);
      }
      symbols.emplace_back(pos, pos + length);
      pos += length;
    }
    if (symbols.size() == 1) {
      resegment(text, {}, out, 0);
      return;
    }
    // Pairs that merge into UNUSED pieces, for resegmentation (last one recorded wins).
    ReverseMerges reverse;
    struct Context {
      const SentencePieceTokenizer* self;
      std::string_view text;
      const std::vector<bool>* frozen;
      ReverseMerges* reverse;
    } context{this, text, &frozen, &reverse};
    const MergePriority priority =
        [ctx = &context](std::string_view left, std::string_view right) -> std::optional<double> {
      const auto& frozen_at = *ctx->frozen;
      if (frozen_at[static_cast<size_t>(left.data() - ctx->text.data())] ||
          frozen_at[static_cast<size_t>(right.data() - ctx->text.data())]) {
        return std::nullopt;
      }
      const std::string_view merged(left.data(), left.size() + right.size());
      const int32_t id = ctx->self->mergeable_id(merged);
      if (id < 0) return std::nullopt;
      const auto& piece = ctx->self->model_.pieces[static_cast<size_t>(id)];
      if (piece.type == PieceType::kUnused) (*ctx->reverse)[merged] = {left, right};
      return -static_cast<double>(piece.score);
    };
    for (const std::string_view symbol : bpe_merge(text, symbols, priority)) {
      resegment(symbol, reverse, out, 0);
    }
  }

  void resegment(std::string_view piece, const ReverseMerges& reverse,
                 std::vector<std::pair<std::string_view, int32_t>>& out, int depth) const {
    const auto found = find(piece);
    const int32_t id = found.value_or(unk_id_);
    if (depth > kMaxResegmentDepth || !found ||
        model_.pieces[static_cast<size_t>(id)].type != PieceType::kUnused) {
      out.emplace_back(piece, id);
      return;
    }
    const auto it = reverse.find(piece);
    if (it == reverse.end()) {
      out.emplace_back(piece, id);
      return;
    }
    resegment(it->second.first, reverse, out, depth + 1);
    resegment(it->second.second, reverse, out, depth + 1);
  }

  /// unigram::Model::EncodeOptimized: Viterbi over byte positions, float scores.
  void encode_unigram(std::string_view text,
                      std::vector<std::pair<std::string_view, int32_t>>& out) const {
    if (text.empty()) return;
    struct Best {
      int32_t id = -1;
      float score = 0.0F;
      int64_t starts_at = -1;
    };
    const size_t size = text.size();
    const float unk_score = min_score_ - kUnkPenalty;
    std::vector<Best> best(size + 1);
    constexpr float kResetThreshold = 100000.0F;
    size_t frontier = 0;
    for (size_t start = 0; start < size;) {
      float score_here = best[start].score;
      if (score_here < -kResetThreshold || score_here > kResetThreshold) {
        for (size_t i = start; i <= frontier; ++i) {
          if (i == start || best[i].starts_at != -1) best[i].score -= score_here;
        }
        score_here = 0.0F;
      }
      const size_t char_length = std::min(one_char_length(text[start]), size - start);
      bool has_single = false;
      unigram_pieces_.prefixes(text.substr(start), [&](size_t length, int32_t id) {
        const auto& piece = model_.pieces[static_cast<size_t>(id)];
        if (piece.type == PieceType::kUnused) return;
        const size_t end = start + length;
        frontier = std::max(frontier, end);
        const float score =
            piece.type == PieceType::kUserDefined
                ? static_cast<float>(0.1 * static_cast<double>(static_cast<int>(length) - 1))
                : piece.score;
        const float candidate = score + score_here;
        if (best[end].starts_at == -1 || candidate > best[end].score) {
          best[end] = {id, candidate, static_cast<int64_t>(start)};
        }
        if (length == char_length) has_single = true;
      });
      if (!has_single) {
        const size_t end = start + char_length;
        frontier = std::max(frontier, end);
        const float candidate = unk_score + score_here;
        if (best[end].starts_at == -1 || candidate > best[end].score) {
          best[end] = {unk_id_, candidate, static_cast<int64_t>(start)};
        }
      }
      start += char_length;
    }
    const size_t first = out.size();
    for (size_t end = size; end > 0;) {
      const Best& node = best[end];
      const auto begin = static_cast<size_t>(node.starts_at);
      out.emplace_back(text.substr(begin, end - begin), node.id);
      end = begin;
    }
    std::reverse(out.begin() + static_cast<ptrdiff_t>(first), out.end());
  }

  /// Appends the surface of one non-byte piece; returns whether it consumed the dummy-prefix
  /// space (SentencePieceProcessor::Decode's DecodeSentencePiece).
  bool decode_piece(const SentencePieceModel::Piece& piece, bool expect_bos_space,
                    std::string& text) const {
    if (piece.type == PieceType::kControl) return false;
    if (piece.type == PieceType::kUnknown) {
      text += model_.unk_surface;
      return false;
    }
    std::string_view surface = piece.text;
    bool consumed = false;
    if (expect_bos_space && (model_.add_dummy_prefix || model_.remove_extra_whitespaces)) {
      if (surface.starts_with(kSpaceSymbol)) {
        surface.remove_prefix(kSpaceSymbol.size());
        consumed = true;
      }
      if (model_.remove_extra_whitespaces) consumed = false;
    }
    for (size_t at = surface.find(kSpaceSymbol); at != std::string_view::npos;
         at = surface.find(kSpaceSymbol)) {
      text.append(surface.substr(0, at));
      text += ' ';
      surface.remove_prefix(at + kSpaceSymbol.size());
    }
    text.append(surface);
    return consumed;
  }

  /// A run of byte pieces: each valid UTF-8 character as is, each invalid byte as U+FFFD.
  static void flush_bytes(std::string& bytes, std::string& text) {
    std::string_view rest = bytes;
    while (!rest.empty()) {
      const size_t length = valid_utf8_length(rest);
      if (length == 0) {
        text += kReplacementChar;
        rest.remove_prefix(1);
      } else {
        text.append(rest.substr(0, length));
        rest.remove_prefix(length);
      }
    }
    bytes.clear();
  }

  SentencePieceModel model_;
  std::optional<SentencePieceCharsMap> charsmap_;
  HfStringMap ids_;
  PieceTrie user_defined_;
  PieceTrie unigram_pieces_;
  std::array<int32_t, 256> byte_ids_{};
  BpeChunker chunker_;
  bool has_unused_ = false;
  int32_t unk_id_ = -1;
  float min_score_ = 0.0F;
  bool add_bos_;
  bool add_eos_;
};

/// add_bos_token / add_eos_token and chat_template from tokenizer_config.json (defaults: BOS
/// on, EOS off, as Llama's sentencepiece tokenizers do).
struct ConfigFlags {
  bool add_bos = true;
  bool add_eos = false;
  std::string chat_template;
};

ConfigFlags read_config(std::string_view config_json, const std::string& where) {
  ConfigFlags flags;
  if (config_json.empty()) return flags;
  const size_t slash = where.find_last_of("/\\");
  const HfJson json((slash == std::string::npos ? std::string() : where.substr(0, slash + 1)) +
                    "tokenizer_config.json");
  Json config;
  try {
    config = Json::parse(config_json.begin(), config_json.end());
  } catch (const Json::exception& e) {
    fail(ErrorCode::kFormat, json.file(), "malformed JSON: {}", e.what());
  }
  json.as_object(config, "");
  flags.add_bos = json.boolean(config, "add_bos_token", "", true);
  flags.add_eos = json.boolean(config, "add_eos_token", "", false);
  if (const Json* chat = HfJson::member(config, "chat_template")) {
    if (chat->is_string()) {
      flags.chat_template = chat->get<std::string>();
    } else if (chat->is_array()) {
      for (const Json& entry : *chat) {
        const Json* name = HfJson::member(entry, "name");
        const Json* body = HfJson::member(entry, "template");
        if (name != nullptr && name->is_string() && *name == "default" && body != nullptr &&
            body->is_string()) {
          flags.chat_template = body->get<std::string>();
        }
      }
    }
  }
  return flags;
}

}  // namespace

std::shared_ptr<const TokenizerImpl> make_sentencepiece_tokenizer(
    std::string_view model_proto, std::string_view tokenizer_config_json,
    const std::string& where) {
  SentencePieceModel model = parse_sentencepiece_model(model_proto, where);
  ConfigFlags flags = read_config(tokenizer_config_json, where);
  auto tokenizer = std::make_shared<SentencePieceTokenizer>(std::move(model), where, flags.add_bos,
                                                            flags.add_eos);
  tokenizer->mutable_info().chat_template = std::move(flags.chat_template);
  return tokenizer;
}

}  // namespace polyinfer::inline v0::detail
