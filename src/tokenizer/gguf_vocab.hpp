// SPDX-License-Identifier: Apache-2.0
// GgufVocab: a llama.cpp vocabulary read from a GGUF's tokenizer.ggml.* metadata.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/pre_tokenizers.hpp"

namespace polyinfer::inline v0::detail {

class GgufFile;

/// tokenizer.ggml.model: "llama" (SentencePiece BPE), "gpt2" (byte-level BPE), "bert" (WPM).
enum class LlamaVocabType { kSpm, kBpe, kWpm };

/// llama.cpp's llama_token_attr bits.
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
  kAttrNormalized = 1u << 6,
  kAttrLstrip = 1u << 7,
  kAttrRstrip = 1u << 8,
  kAttrSingleWord = 1u << 9,
};

/// Hash for maps keyed by std::string and searched with std::string_view (no temporaries).
struct TransparentStringHash {
  using is_transparent = void;
  [[nodiscard]] size_t operator()(std::string_view text) const noexcept {
    return std::hash<std::string_view>{}(text);
  }
};
using TokenIdMap = std::unordered_map<std::string, int32_t, TransparentStringHash, std::equal_to<>>;

/// Everything llama_vocab::impl::load takes from the metadata, validated. -1 means "none".
struct GgufVocab {
  std::string where;  ///< the file's name, for errors
  LlamaVocabType type = LlamaVocabType::kSpm;
  std::string model;               ///< tokenizer.ggml.model
  std::string pre;                 ///< tokenizer.ggml.pre ("" when absent)
  LlamaPreTokenizerSpec pre_spec;  ///< BPE only

  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<uint32_t> attrs;  ///< TokenAttr bits per id
  TokenIdMap token_to_id;
  /// BPE merge ranks keyed by (left id << 32) | right id.
  std::unordered_map<uint64_t, int32_t> merge_ranks;

  int32_t bos_id = -1;
  int32_t eos_id = -1;
  int32_t eot_id = -1;
  int32_t eom_id = -1;
  int32_t unk_id = -1;
  int32_t sep_id = -1;
  int32_t pad_id = -1;
  int32_t mask_id = -1;

  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;
  bool remove_extra_whitespaces = false;
  bool clean_spaces = false;
  bool ignore_merges = false;
  size_t max_token_len = 0;  ///< longest entry in bytes
  /// inner_byte_pairs[a * 256 + b] != 0 when bytes a, b occur next to each other inside some
  /// entry: text may be cut between two bytes that do not, since no merge can span the cut.
  std::vector<uint8_t> inner_byte_pairs;

  /// Control, user-defined and unknown ids, longest text first (llama.cpp's
  /// cache_special_tokens), matched in this order when splitting off special tokens.
  std::vector<int32_t> special_tokens;
  std::string chat_template;  ///< tokenizer.chat_template

  [[nodiscard]] int32_t size() const noexcept { return static_cast<int32_t>(tokens.size()); }
  /// Id of an entry's exact text; -1 when absent.
  [[nodiscard]] int32_t find(std::string_view text) const {
    const auto it = token_to_id.find(text);
    return it == token_to_id.end() ? -1 : it->second;
  }
  /// Rank of merging `left` and `right`; -1 when they do not merge.
  [[nodiscard]] int32_t merge_rank(std::string_view left, std::string_view right) const;
  /// SPM byte token for `byte` ("<0x41>", else the byte itself as an entry); -1 when absent.
  [[nodiscard]] int32_t byte_token(uint8_t byte) const;
  /// Whether no entry holds `left` followed by `right` (see inner_byte_pairs).
  [[nodiscard]] bool can_cut_between(char left, char right) const noexcept {
    return inner_byte_pairs[static_cast<unsigned char>(left) * 256u +
                            static_cast<unsigned char>(right)] == 0;
  }
  [[nodiscard]] bool has_attr(int32_t id, uint32_t attr) const {
    return (attrs[static_cast<size_t>(id)] & attr) != 0;
  }
};

/// Reads and checks the vocabulary. Throws Error(kUnsupported) for a tokenizer.ggml.model or
/// (byte-level BPE) tokenizer.ggml.pre that llama.cpp does not know, and Error(kTokenizer)
/// naming the key for missing or inconsistent data (array lengths, ids out of range, merges of
/// unknown tokens, duplicate entries).
[[nodiscard]] GgufVocab read_gguf_vocab(const GgufFile& file);

}  // namespace polyinfer::inline v0::detail
