// SPDX-License-Identifier: Apache-2.0
// bpe_merge: a linked list of symbols and a priority queue of candidate pairs, O(n log n).
#include "tokenizer/bpe_merge.hpp"

#include <queue>

#include "tokenizer/unicode.hpp"

namespace polyinfer::inline v0::detail {

namespace {

struct Symbol {
  size_t begin;
  size_t end;  // 0-length symbols are dead (merged into their left neighbour)
  int prev;
  int next;
};

struct Candidate {
  double priority;
  int left;
  int right;
  size_t size;  // combined length when queued: a stale candidate no longer matches
  bool operator>(const Candidate& other) const {
    if (priority != other.priority) return priority > other.priority;
    return left > other.left;
  }
};

}  // namespace

std::vector<std::string_view> bpe_merge(std::string_view text,
                                        const std::vector<std::pair<size_t, size_t>>& symbols,
                                        const MergePriority& priority) {
  std::vector<Symbol> list;
  list.reserve(symbols.size());
  for (size_t i = 0; i < symbols.size(); ++i) {
    list.push_back({symbols[i].first, symbols[i].second, static_cast<int>(i) - 1,
                    i + 1 < symbols.size() ? static_cast<int>(i + 1) : -1});
  }
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const Symbol& a = list[static_cast<size_t>(left)];
    const Symbol& b = list[static_cast<size_t>(right)];
    const auto p =
        priority(text.substr(a.begin, a.end - a.begin), text.substr(b.begin, b.end - b.begin));
    if (p) queue.push({*p, left, right, (a.end - a.begin) + (b.end - b.begin)});
  };
  for (size_t i = 1; i < list.size(); ++i) try_add(static_cast<int>(i) - 1, static_cast<int>(i));

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& a = list[static_cast<size_t>(top.left)];
    Symbol& b = list[static_cast<size_t>(top.right)];
    if (a.end == a.begin || b.end == b.begin || a.next != top.right ||
        (a.end - a.begin) + (b.end - b.begin) != top.size) {
      continue;  // stale: one side was merged since this pair was queued
    }
    a.end = b.end;
    b.end = b.begin;
    a.next = b.next;
    if (b.next >= 0) list[static_cast<size_t>(b.next)].prev = top.left;
    try_add(a.prev, top.left);
    try_add(top.left, a.next);
  }

  std::vector<std::string_view> out;
  for (int i = list.empty() ? -1 : 0; i >= 0; i = list[static_cast<size_t>(i)].next) {
    const Symbol& s = list[static_cast<size_t>(i)];
    out.push_back(text.substr(s.begin, s.end - s.begin));
  }
  return out;
}

std::vector<std::string_view> bpe_merge_chars(std::string_view text,
                                              const MergePriority& priority) {
  std::vector<std::pair<size_t, size_t>> symbols;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    (void)utf8_next(text, pos);
    symbols.emplace_back(start, pos);
  }
  return bpe_merge(text, symbols, priority);
}

}  // namespace polyinfer::inline v0::detail
