// SPDX-License-Identifier: Apache-2.0
// SpecialTokenSplitter: llama.cpp's special-token partition, with a trie pre-pass for speed.
#include "tokenizer/special_tokens.hpp"

#include <algorithm>

#include "tokenizer/gguf_vocab.hpp"

namespace polyinfer::inline v0::detail {

namespace {

// isspace() of the C locale, which llama.cpp uses for LSTRIP/RSTRIP.
bool is_c_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

struct Range {
  int32_t token;  // < 0: plain text [begin, end)
  size_t begin;
  size_t end;
};

}  // namespace

SpecialTokenSplitter::SpecialTokenSplitter(const GgufVocab& vocab) {
  root_children_.fill(-1);
  trie_.emplace_back();
  for (const int32_t id : vocab.special_tokens) {
    const std::string& text = vocab.tokens[static_cast<size_t>(id)];
    if (text.empty()) continue;
    const auto index = static_cast<int32_t>(entries_.size());
    entries_.push_back({id, text, vocab.has_attr(id, kAttrControl | kAttrUnknown),
                        vocab.has_attr(id, kAttrLstrip), vocab.has_attr(id, kAttrRstrip)});
    // Insert into the trie.
    const auto first = static_cast<unsigned char>(text[0]);
    if (root_children_[first] < 0) {
      root_children_[first] = static_cast<int32_t>(trie_.size());
      trie_.emplace_back();
    }
    int32_t node = root_children_[first];
    for (size_t i = 1; i < text.size(); ++i) {
      const auto byte = static_cast<unsigned char>(text[i]);
      auto& children = trie_[static_cast<size_t>(node)].children;
      auto it =
          std::lower_bound(children.begin(), children.end(), byte,
                           [](const auto& child, unsigned char b) { return child.first < b; });
      if (it != children.end() && it->first == byte) {
        node = it->second;
        continue;
      }
      const auto next = static_cast<int32_t>(trie_.size());
      children.insert(it, {byte, next});
      trie_.emplace_back();
      node = next;
    }
    trie_[static_cast<size_t>(node)].entry = index;
  }
}

void SpecialTokenSplitter::find_occurring(std::string_view text, std::vector<char>& found) const {
  for (size_t pos = 0; pos < text.size(); ++pos) {
    int32_t node = root_children_[static_cast<unsigned char>(text[pos])];
    size_t cursor = pos + 1;
    while (node >= 0) {
      const TrieNode& current = trie_[static_cast<size_t>(node)];
      if (current.entry >= 0) found[static_cast<size_t>(current.entry)] = 1;
      if (cursor >= text.size()) break;
      const auto byte = static_cast<unsigned char>(text[cursor++]);
      const auto it =
          std::lower_bound(current.children.begin(), current.children.end(), byte,
                           [](const auto& child, unsigned char b) { return child.first < b; });
      node = (it != current.children.end() && it->first == byte) ? it->second : -1;
    }
  }
}

void SpecialTokenSplitter::split(std::string_view text, bool parse_special,
                                 std::vector<TextFragment>& out) const {
  if (text.empty()) return;
  std::vector<Range> ranges{{-1, 0, text.size()}};
  if (!entries_.empty()) {
    std::vector<char> found(entries_.size(), 0);
    find_occurring(text, found);
    std::vector<Range> next;
    for (size_t e = 0; e < entries_.size(); ++e) {
      const Entry& entry = entries_[e];
      if (!found[e] || (!parse_special && entry.needs_parse_special)) continue;
      next.clear();
      for (const Range& range : ranges) {
        if (range.token >= 0) {
          next.push_back(range);
          continue;
        }
        size_t begin = range.begin;
        const size_t end = range.end;
        while (begin < end) {
          const size_t match = text.substr(begin, end - begin).find(entry.text);
          if (match == std::string_view::npos) {
            next.push_back({-1, begin, end});
            break;
          }
          size_t left_end = begin + match;
          if (entry.lstrip) {
            while (left_end > begin && is_c_space(text[left_end - 1])) --left_end;
          }
          if (left_end > begin) next.push_back({-1, begin, left_end});
          next.push_back({entry.id, 0, 0});
          begin += match + entry.text.size();
          if (entry.rstrip) {
            while (begin < end && is_c_space(text[begin])) ++begin;
          }
        }
      }
      ranges.swap(next);
    }
  }
  for (const Range& range : ranges) {
    if (range.token >= 0) {
      out.push_back({range.token, {}});
    } else {
      out.push_back({-1, text.substr(range.begin, range.end - range.begin)});
    }
  }
}

}  // namespace polyinfer::inline v0::detail
