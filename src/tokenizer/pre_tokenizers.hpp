// SPDX-License-Identifier: Apache-2.0
// llama.cpp's BPE pre-tokenizers: the regex list and flags per tokenizer.ggml.pre value.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/regex.hpp"

namespace polyinfer::inline v0::detail {

/// What llama.cpp (llama-vocab.cpp, Feb 2025) does for one `tokenizer.ggml.pre` value of a
/// byte-level BPE vocabulary.
struct LlamaPreTokenizerSpec {
  std::string_view type;  ///< llama.cpp's LLAMA_VOCAB_PRE_TYPE_* name, lowercase ("qwen2")
  /// Applied in order: each regex splits every piece the previous ones produced (matches and
  /// the gaps between them are both kept). Written exactly as llama.cpp writes them.
  std::vector<std::string_view> regexes;
  bool ignore_merges = false;  ///< a piece that is a whole vocabulary entry skips the merges
  bool add_bos = false;        ///< default of add_bos (tokenizer.ggml.add_bos_token overrides)
  bool clean_spaces = true;    ///< decode removes " ?", " 's" … (clean_up_tokenization_spaces)
  bool no_bos = false;         ///< the BOS id defaults to "none" (chatglm-bpe)
};

/// The spec for a `tokenizer.ggml.pre` value ("" → llama.cpp's "default"); nullopt when
/// llama.cpp does not know the name.
[[nodiscard]] std::optional<LlamaPreTokenizerSpec> llama_pre_tokenizer_spec(std::string_view pre);

/// Rewrites one of llama.cpp's patterns for PCRE2 so that it matches as llama.cpp's
/// unicode_regex_split does: `\s`/`\S` use Python's White_Space set (PCRE2's UCP `\s` leaves
/// out U+0085, which llama.cpp counts as whitespace) and `$` means the end of the piece only.
[[nodiscard]] std::string adapt_llama_regex(std::string_view pattern);

/// llama.cpp's unicode_regex_split (before the byte-level mapping): a sequence of regexes, each
/// applied to every piece of the previous split. Immutable; split() is thread-safe.
class RegexPreTokenizer {
 public:
  /// `patterns` in llama.cpp's spelling (adapt_llama_regex is applied here).
  explicit RegexPreTokenizer(std::span<const std::string_view> patterns);

  /// Appends the pieces of `text` to `out`. Bytes that are not valid UTF-8 become pieces of
  /// their own (llama.cpp rejects such text; the byte-level BPE still encodes them).
  void split(std::string_view text, std::vector<std::string_view>& out) const;

 private:
  void split_valid(std::string_view text, std::vector<std::string_view>& out) const;
  std::vector<Regex> regexes_;
};

}  // namespace polyinfer::inline v0::detail
