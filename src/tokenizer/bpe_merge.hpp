// SPDX-License-Identifier: Apache-2.0
// bpe_merge: the greedy pair-merging loop shared by every BPE flavour (ranked merges, SPM scores).
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace polyinfer::inline v0::detail {

/// Priority of merging two adjacent symbols into their concatenation: lower merges first;
/// nullopt when the pair may not merge. Ranked BPE returns the merge rank; SentencePiece BPE
/// returns minus the score of the merged piece.
using MergePriority =
    std::function<std::optional<double>(std::string_view left, std::string_view right)>;

/// Starting from `symbols` (contiguous byte ranges [begin, end) covering `text` in order),
/// repeatedly merges the adjacent pair of lowest priority (leftmost on ties) until no pair can
/// merge. Returns the final symbols as views into `text`.
[[nodiscard]] std::vector<std::string_view> bpe_merge(
    std::string_view text, const std::vector<std::pair<size_t, size_t>>& symbols,
    const MergePriority& priority);

/// bpe_merge with one starting symbol per UTF-8 code point.
[[nodiscard]] std::vector<std::string_view> bpe_merge_chars(std::string_view text,
                                                            const MergePriority& priority);

}  // namespace polyinfer::inline v0::detail
