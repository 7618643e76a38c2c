// SPDX-License-Identifier: Apache-2.0
// wordpiece_split: greedy longest-match-first WordPiece of one word (shared by HF and llama.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

namespace polyinfer::inline v0::detail {

/// Looks up a vocabulary entry's id; -1 when absent.
using WordPieceLookup = std::function<int32_t(std::string_view)>;

/// Splits `word` into the longest vocabulary entries from the left: the first piece is looked up
/// as is, every later one with `continuation_prefix` in front ("##" for Hugging Face, "" for
/// llama.cpp, whose word pieces carry a "▁" on the first piece instead). Pieces are at most
/// `max_piece_bytes` long (prefix excluded; 0 = no limit). Appends the ids to `out` and returns
/// true, or appends nothing and returns false when some position has no match (the caller then
/// emits its unknown token).
///
///   wordpiece_split("unaffable", "##", 0, lookup, ids);  // "un", "##aff", "##able"
[[nodiscard]] bool wordpiece_split(std::string_view word, std::string_view continuation_prefix,
                                   size_t max_piece_bytes, const WordPieceLookup& lookup,
                                   std::vector<int32_t>& out);

}  // namespace polyinfer::inline v0::detail
