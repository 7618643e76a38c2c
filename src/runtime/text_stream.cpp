// SPDX-License-Identifier: Apache-2.0
// TextStream: decode, hold back partial characters and stop-string prefixes, cut at a stop.
#include "runtime/text_stream.hpp"

#include <algorithm>

namespace polyinfer::inline v0::detail {

namespace {

constexpr size_t kContextIds = 4;
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD: an incomplete character

/// Bytes at the end of `text` that may begin a multi-byte UTF-8 character not yet complete.
size_t incomplete_utf8_tail(std::string_view text) {
  for (size_t back = 1; back <= std::min<size_t>(3, text.size()); ++back) {
    const auto byte = static_cast<unsigned char>(text[text.size() - back]);
    if ((byte & 0xC0) == 0x80) continue;  // continuation byte: look further back
    const size_t length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1;
    return length > back ? back : 0;
  }
  return 0;
}

}  // namespace

TextStream::TextStream(const Tokenizer& tokenizer, std::span<const int32_t> prompt,
                       std::vector<std::string> stop_strings)
    : tokenizer_(tokenizer), stop_strings_(std::move(stop_strings)) {
  std::erase_if(stop_strings_, [](const std::string& s) { return s.empty(); });
  const size_t context = std::min(kContextIds, prompt.size());
  ids_.assign(prompt.end() - static_cast<std::ptrdiff_t>(context), prompt.end());
  // Context ids that are special (BOS) change nothing; ids out of range would make decode throw.
  std::erase_if(ids_, [&](int32_t id) { return id < 0 || id >= tokenizer.vocab_size(); });
  context_ids_ = ids_.size();
  context_text_ = tokenizer_.decode(ids_, {.skip_special = true});
}

std::string_view TextStream::push(int32_t id) {
  if (stopped_) return {};
  if (id < 0 || id >= tokenizer_.vocab_size()) return {};  // padded model vocabulary: no text
  ids_.push_back(id);
  const std::string all = tokenizer_.decode(ids_, {.skip_special = true});
  if (all.starts_with(context_text_)) {
    decoded_ = all.substr(context_text_.size());
  } else {  // the context decodes differently in front of this text: decode the output alone
    decoded_ = tokenizer_.decode(std::span(ids_).subspan(context_ids_), {.skip_special = true});
  }
  // Hold back an unfinished character: a trailing replacement character from byte fallback, or
  // a raw partial UTF-8 sequence.
  size_t end = decoded_.size();
  while (std::string_view(decoded_).substr(0, end).ends_with(kReplacement)) {
    end -= kReplacement.size();  // one per byte of the unfinished character
  }
  end -= incomplete_utf8_tail(std::string_view(decoded_).substr(0, end));

  // A stop string anywhere after the released text (it may straddle the boundary).
  size_t longest_stop = 0;
  for (const std::string& stop : stop_strings_) longest_stop = std::max(longest_stop, stop.size());
  const size_t search_from = text_.size() > longest_stop ? text_.size() - longest_stop : 0;
  size_t stop_at = std::string::npos;
  for (const std::string& stop : stop_strings_) {
    const size_t at = decoded_.find(stop, search_from);
    if (at != std::string::npos && at + stop.size() <= decoded_.size()) {
      stop_at = std::min(stop_at, at);
    }
  }
  if (stop_at != std::string::npos) {
    stopped_ = true;
    return release(std::max(stop_at, text_.size()));
  }
  // Hold back the longest tail that could still grow into a stop string.
  size_t hold = 0;
  for (const std::string& stop : stop_strings_) {
    for (size_t length = std::min(stop.size() - 1, end); length > hold; --length) {
      if (std::string_view(decoded_).substr(end - length, length) ==
          std::string_view(stop).substr(0, length)) {
        hold = length;
        break;
      }
    }
  }
  return release(end - hold);
}

std::string_view TextStream::finish() {
  if (stopped_) return {};
  return release(decoded_.size());
}

std::string_view TextStream::release(size_t end) {
  if (end <= text_.size()) return {};
  const size_t begin = text_.size();
  text_.append(decoded_, begin, end - begin);
  return std::string_view(text_).substr(begin);
}

}  // namespace polyinfer::inline v0::detail
