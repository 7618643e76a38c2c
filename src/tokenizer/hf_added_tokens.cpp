// SPDX-License-Identifier: Apache-2.0
// HfAddedVocabulary: a byte trie over added-token contents, matched leftmost-longest.
#include <algorithm>
#include <array>

#include "tokenizer/hf_pipeline.hpp"

namespace polyinfer::inline v0::detail {

/// A byte trie; each node lists its children sorted by byte. The root has a full table so
/// that positions where no token can start are skipped with one load.
struct HfAddedVocabulary::Matcher {
  struct Node {
    std::vector<std::pair<unsigned char, uint32_t>> children;
    int32_t token = -1;  // index into tokens_
  };
  std::vector<Node> nodes{Node{}};
  std::array<uint32_t, 256> root{};  // 0: no child

  bool empty() const noexcept { return nodes.size() == 1; }

  void insert(std::string_view key, int32_t token) {
    uint32_t node = 0;
    for (const char c : key) {
      const auto byte = static_cast<unsigned char>(c);
      auto& children = nodes[node].children;
      const auto it =
          std::lower_bound(children.begin(), children.end(), byte,
                           [](const auto& child, unsigned char b) { return child.first < b; });
      if (it != children.end() && it->first == byte) {
        node = it->second;
        continue;
      }
      const auto next = static_cast<uint32_t>(nodes.size());
      children.insert(it, {byte, next});
      if (node == 0) root[byte] = next;
      nodes.emplace_back();
      node = next;
    }
    if (nodes[node].token < 0) nodes[node].token = token;  // first added wins on duplicates
  }

  /// Longest key starting at `pos`: its length and token index, or {0, -1}.
  std::pair<size_t, int32_t> longest(std::string_view text, size_t pos) const {
    uint32_t node = root[static_cast<unsigned char>(text[pos])];
    size_t length = 0;
    int32_t token = -1;
    size_t i = pos + 1;
    while (node != 0) {
      if (nodes[node].token >= 0) {
        length = i - pos;
        token = nodes[node].token;
      }
      if (i >= text.size()) break;
      const auto byte = static_cast<unsigned char>(text[i]);
      const auto& children = nodes[node].children;
      const auto it =
          std::lower_bound(children.begin(), children.end(), byte,
                           [](const auto& child, unsigned char b) { return child.first < b; });
      if (it == children.end() || it->first != byte) break;
      node = it->second;
      ++i;
    }
    return {length, token};
  }
};

HfAddedVocabulary::HfAddedVocabulary()
    : raw_(std::make_unique<Matcher>()), normalized_(std::make_unique<Matcher>()) {}
HfAddedVocabulary::~HfAddedVocabulary() = default;
HfAddedVocabulary::HfAddedVocabulary(HfAddedVocabulary&&) noexcept = default;
HfAddedVocabulary& HfAddedVocabulary::operator=(HfAddedVocabulary&&) noexcept = default;

void HfAddedVocabulary::add(HfAddedToken token) {
  if (token.content.empty()) return;
  const auto [it, inserted] = index_.emplace(token.content, static_cast<int32_t>(tokens_.size()));
  if (!inserted) {
    tokens_[static_cast<size_t>(it->second)] = std::move(token);
    return;
  }
  tokens_.push_back(std::move(token));
}

void HfAddedVocabulary::build(const std::function<std::string(std::string_view)>& normalize) {
  raw_ = std::make_unique<Matcher>();
  normalized_ = std::make_unique<Matcher>();
  // tokenizers puts special tokens before the others in its matchers.
  for (const bool special : {true, false}) {
    for (size_t i = 0; i < tokens_.size(); ++i) {
      const HfAddedToken& token = tokens_[i];
      if (token.special != special) continue;
      if (token.normalized) {
        const std::string key = normalize(token.content);
        if (!key.empty()) normalized_->insert(key, static_cast<int32_t>(i));
      } else {
        raw_->insert(token.content, static_cast<int32_t>(i));
      }
    }
  }
}

bool HfAddedVocabulary::has_normalized() const noexcept {
  return !normalized_->empty();
}

const HfAddedToken* HfAddedVocabulary::find_content(std::string_view content) const {
  const auto it = index_.find(content);
  return it == index_.end() ? nullptr : &tokens_[static_cast<size_t>(it->second)];
}

void HfAddedVocabulary::split(std::string_view text, bool normalized_pass, bool parse_special,
                              std::vector<Segment>& out) const {
  out.clear();
  const Matcher& matcher = normalized_pass ? *normalized_ : *raw_;
  size_t covered = 0;  // end of the last emitted segment
  size_t pos = 0;
  while (pos < text.size() && !matcher.empty()) {
    if (matcher.root[static_cast<unsigned char>(text[pos])] == 0) {
      ++pos;
      continue;
    }
    const auto [length, index] = matcher.longest(text, pos);
    if (index < 0) {
      ++pos;
      continue;
    }
    const HfAddedToken& token = tokens_[static_cast<size_t>(index)];
    size_t start = pos;
    size_t stop = pos + length;
    pos = stop;  // a rejected match still consumes its bytes, as Aho-Corasick iteration does
    if (token.special && !parse_special) continue;
    if (token.single_word) {
      const bool word_before = start > 0 && rust_is_word(last_code_point(text.substr(0, start)));
      size_t after = stop;
      const bool word_after = stop < text.size() && rust_is_word(next_code_point(text, after));
      if (word_before || word_after) continue;
    }
    if (token.lstrip) {
      size_t left = start;
      while (left > covered) {
        size_t back = left - 1;
        while (back > covered && (static_cast<unsigned char>(text[back]) & 0xC0) == 0x80) --back;
        size_t probe = back;
        if (!rust_is_whitespace(next_code_point(text, probe))) break;
        left = back;
      }
      start = left;
    }
    if (token.rstrip) {
      while (stop < text.size()) {
        size_t probe = stop;
        if (!rust_is_whitespace(next_code_point(text, probe))) break;
        stop = probe;
      }
      pos = stop;
    }
    if (covered < start) out.push_back({covered, start, -1});
    out.push_back({start, stop, token.id});
    covered = stop;
  }
  if (covered < text.size() || out.empty()) out.push_back({covered, text.size(), -1});
}

}  // namespace polyinfer::inline v0::detail
