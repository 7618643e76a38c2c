// SPDX-License-Identifier: Apache-2.0
// llama.cpp's pre-tokenizer table (llm_tokenizer_bpe, Feb 2025) and its regex split on PCRE2.
#include "tokenizer/pre_tokenizers.hpp"

#include <array>

#include "tokenizer/unicode.hpp"

namespace polyinfer::inline v0::detail {

namespace {

// The patterns as llama-vocab.cpp spells them; non-ASCII literals are written as \x{...} so
// that no editor or tool can normalise them (U+2126 OHM SIGN is not U+03A9, etc.).
constexpr std::string_view kPatternGpt2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
constexpr std::string_view kPatternLlama3 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kPatternQwen2 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kPatternDeepseekLetters =  // the letters of deepseek-llm's regex
    "\\s?["
    "A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}"
    "\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}"
    "\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}"
    "\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}"
    "\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}"
    "\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}"
    "\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}"
    "\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}"
    "\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}"
    "\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}"
    "\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}"
    "\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}"
    "\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}"
    "\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}"
    "\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}"
    "\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}"
    "\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}"
    "\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+";
constexpr std::string_view kPatternDeepseekPunct =
    "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+";
constexpr std::string_view kPatternDeepseekCjk =
    "[\\x{4E00}-\\x{9FA5}\\x{0800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+";
constexpr std::string_view kPatternDeepseek3Words =
    "[!\"#$%&'()*+,\\-./"
    ":;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
    "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kPatternBloom =
    " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{0964}\\x{06D4}\\x{060C})]+";
constexpr std::string_view kPatternTekken =
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?"
    "((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";

// \s of Python's `regex` module (Unicode White_Space), which llama.cpp's tables use.
constexpr std::string_view kWhiteSpace =
    "\\t-\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}"
    "\\x{3000}";

enum class Regexes {
  kDefault,
  kLlama3,
  kDeepseekLlm,
  kDeepseek3,
  kDeepseekCoder,
  kFalcon,
  kStarcoder,
  kGpt2,
  kQwen2,
  kBloom,
  kViking,
  kTekken,
  kChameleon,
};

std::vector<std::string_view> regexes_for(Regexes set) {
  switch (set) {
    case Regexes::kLlama3:
      return {kPatternLlama3};
    case Regexes::kDeepseekLlm:
      return {"[\r\n]", kPatternDeepseekLetters, kPatternDeepseekPunct,
              "\\s+$",  kPatternDeepseekCjk,     "\\p{N}+"};
    case Regexes::kDeepseek3:
      return {"\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
              kPatternDeepseek3Words};
    case Regexes::kDeepseekCoder:
      return {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", kPatternDeepseekCjk, "\\p{N}"};
    case Regexes::kFalcon:
      return {"[\\p{P}\\$\\+<=>\\^~\\|`]+", kPatternGpt2, "[0-9][0-9][0-9]"};
    case Regexes::kStarcoder:
      return {"\\p{N}", kPatternGpt2};
    case Regexes::kGpt2:
      return {kPatternGpt2};
    case Regexes::kQwen2:
      return {kPatternQwen2};
    case Regexes::kBloom:
      return {kPatternBloom};
    case Regexes::kViking:
      return {kPatternBloom, "\\p{N}"};
    case Regexes::kTekken:
      return {kPatternTekken};
    case Regexes::kChameleon:
      return {"<sentinel:[0-9]+>",      "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
              "([\\t\\n]|    |  )",     "\\p{N}",
              "[\\p{P}!-/:-@\\[-`{-~]", kPatternGpt2};
    case Regexes::kDefault:
      break;
  }
  return {"[\\p{P}\\$\\+<=>\\^~\\|]+", kPatternGpt2, "\\p{N}+", "[0-9][0-9][0-9]"};
}

struct PreEntry {
  std::string_view name;  // tokenizer.ggml.pre
  std::string_view type;  // llama.cpp's pre type
  Regexes regexes;
  bool ignore_merges;
  bool add_bos;
  bool clean_spaces;
  bool no_bos;
};

// llama_vocab::impl::load, "for now, only BPE models have pre-tokenizers".
constexpr std::array kPreEntries = {
    PreEntry{"default", "default", Regexes::kDefault, false, false, true, false},
    PreEntry{"llama3", "llama3", Regexes::kLlama3, true, true, true, false},
    PreEntry{"llama-v3", "llama3", Regexes::kLlama3, true, true, true, false},
    PreEntry{"llama-bpe", "llama3", Regexes::kLlama3, true, true, true, false},
    PreEntry{"falcon3", "llama3", Regexes::kLlama3, true, true, true, false},
    PreEntry{"deepseek-llm", "deepseek-llm", Regexes::kDeepseekLlm, false, false, false, false},
    PreEntry{"deepseek-coder", "deepseek-coder", Regexes::kDeepseekCoder, false, false, false,
             false},
    PreEntry{"deepseek-v3", "deepseek3-llm", Regexes::kDeepseek3, false, false, false, false},
    PreEntry{"falcon", "falcon", Regexes::kFalcon, false, false, true, false},
    PreEntry{"mpt", "mpt", Regexes::kGpt2, false, false, true, false},
    PreEntry{"starcoder", "starcoder", Regexes::kStarcoder, false, false, true, false},
    PreEntry{"gpt-2", "gpt2", Regexes::kGpt2, false, false, true, false},
    PreEntry{"phi-2", "gpt2", Regexes::kGpt2, false, false, true, false},
    PreEntry{"jina-es", "gpt2", Regexes::kGpt2, false, false, true, false},
    PreEntry{"jina-de", "gpt2", Regexes::kGpt2, false, false, true, false},
    PreEntry{"gigachat", "gpt2", Regexes::kGpt2, false, false, true, false},
    PreEntry{"jina-v1-en", "gpt2", Regexes::kGpt2, false, false, true, false},
    PreEntry{"jina-v2-es", "gpt2", Regexes::kGpt2, false, false, true, false},
    PreEntry{"jina-v2-de", "gpt2", Regexes::kGpt2, false, false, true, false},
    PreEntry{"jina-v2-code", "gpt2", Regexes::kGpt2, false, false, true, false},
    PreEntry{"roberta-bpe", "gpt2", Regexes::kGpt2, false, false, true, false},
    // Not a llama.cpp name: GPT-NeoX's tokenizer.json uses GPT-2's byte-level split.
    PreEntry{"gpt-neox", "gpt2", Regexes::kGpt2, false, false, true, false},
    PreEntry{"refact", "refact", Regexes::kStarcoder, false, false, true, false},
    PreEntry{"command-r", "command-r", Regexes::kStarcoder, false, false, false, false},
    PreEntry{"qwen2", "qwen2", Regexes::kQwen2, false, false, false, false},
    PreEntry{"stablelm2", "stablelm2", Regexes::kQwen2, false, false, true, false},
    PreEntry{"olmo", "olmo", Regexes::kGpt2, false, false, true, false},
    PreEntry{"dbrx", "dbrx", Regexes::kLlama3, false, false, true, false},
    PreEntry{"smaug-bpe", "smaug", Regexes::kLlama3, false, false, true, false},
    PreEntry{"poro-chat", "poro", Regexes::kBloom, false, false, false, false},
    PreEntry{"chatglm-bpe", "chatglm4", Regexes::kLlama3, false, false, true, true},
    PreEntry{"viking", "viking", Regexes::kViking, false, false, false, false},
    PreEntry{"jais", "jais", Regexes::kGpt2, false, false, true, false},
    PreEntry{"tekken", "tekken", Regexes::kTekken, true, true, false, false},
    PreEntry{"smollm", "smollm", Regexes::kStarcoder, false, false, false, false},
    PreEntry{"codeshell", "codeshell", Regexes::kStarcoder, false, false, true, false},
    PreEntry{"bloom", "bloom", Regexes::kBloom, false, false, true, false},
    PreEntry{"gpt3-finnish", "gpt3-finnish", Regexes::kBloom, false, false, true, false},
    PreEntry{"exaone", "exaone", Regexes::kStarcoder, false, false, true, false},
    PreEntry{"chameleon", "chameleon", Regexes::kChameleon, false, true, false, false},
    PreEntry{"minerva-7b", "minerva", Regexes::kStarcoder, false, false, true, false},
    PreEntry{"megrez", "qwen2", Regexes::kQwen2, false, false, true, false},
};

}  // namespace

std::optional<LlamaPreTokenizerSpec> llama_pre_tokenizer_spec(std::string_view pre) {
  if (pre.empty()) pre = "default";
  for (const PreEntry& entry : kPreEntries) {
    if (entry.name != pre) continue;
    LlamaPreTokenizerSpec spec;
    spec.type = entry.type;
    spec.regexes = regexes_for(entry.regexes);
    spec.ignore_merges = entry.ignore_merges;
    spec.add_bos = entry.add_bos;
    spec.clean_spaces = entry.clean_spaces;
    spec.no_bos = entry.no_bos;
    return spec;
  }
  return std::nullopt;
}

std::string adapt_llama_regex(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() * 2);
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[++i];
      if (next == 's') {
        if (in_class) {
          out += kWhiteSpace;
        } else {
          out += '[';
          out += kWhiteSpace;
          out += ']';
        }
      } else if (next == 'S' && !in_class) {
        out += "[^";
        out += kWhiteSpace;
        out += ']';
      } else {
        out += c;
        out += next;
      }
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
    } else if (c == '[') {
      in_class = true;
    } else if (c == '$') {
      // std::regex's $ (without multiline) is the end of the piece; PCRE2's also matches before
      // a final newline.
      out += "\\z";
      continue;
    }
    out += c;
  }
  return out;
}

RegexPreTokenizer::RegexPreTokenizer(std::span<const std::string_view> patterns) {
  regexes_.reserve(patterns.size());
  for (const std::string_view pattern : patterns) regexes_.emplace_back(adapt_llama_regex(pattern));
}

void RegexPreTokenizer::split(std::string_view text, std::vector<std::string_view>& out) const {
  if (utf8_valid(text)) {
    split_valid(text, out);
    return;
  }
  size_t run_begin = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    if (utf8_next(text, pos)) continue;
    if (start > run_begin) split_valid(text.substr(run_begin, start - run_begin), out);
    out.push_back(text.substr(start, pos - start));
    run_begin = pos;
  }
  if (run_begin < text.size()) split_valid(text.substr(run_begin), out);
}

void RegexPreTokenizer::split_valid(std::string_view text,
                                    std::vector<std::string_view>& out) const {
  if (text.empty()) return;
  if (regexes_.empty()) {
    out.push_back(text);
    return;
  }
  std::vector<std::string_view> pieces{text};
  std::vector<std::string_view> next;
  for (size_t r = 0; r < regexes_.size(); ++r) {
    const bool last = r + 1 == regexes_.size();
    std::vector<std::string_view>& target = last ? out : next;
    for (const std::string_view piece : pieces) {
      size_t gap = 0;
      for (const auto& [begin, end] : regexes_[r].find_all(piece)) {
        if (begin > gap) target.push_back(piece.substr(gap, begin - gap));
        target.push_back(piece.substr(begin, end - begin));
        gap = end;
      }
      if (gap < piece.size()) target.push_back(piece.substr(gap));
    }
    if (!last) {
      pieces.swap(next);
      next.clear();
    }
  }
}

}  // namespace polyinfer::inline v0::detail
