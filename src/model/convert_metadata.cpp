// SPDX-License-Identifier: Apache-2.0
// Metadata pieces shared by convert and synth: general.* keys as convert_hf_to_gguf writes them.
#include "model/convert_metadata.hpp"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <system_error>

#include "model/convert_types.hpp"

namespace polyinfer::inline v0::detail {

std::string gguf_size_label(int64_t parameters) {
  const auto count = static_cast<double>(parameters);
  double scaled = count * 1e-3;
  char suffix = 'K';
  if (count > 1e12) {
    scaled = count * 1e-12;
    suffix = 'T';
  } else if (count > 1e9) {
    scaled = count * 1e-9;
    suffix = 'B';
  } else if (count > 1e6) {
    scaled = count * 1e-6;
    suffix = 'M';
  }
  // fix = max(2 - len(str(round(scaled)).lstrip('0')), 0); Python's round() ties to even.
  const auto rounded = static_cast<int64_t>(std::nearbyint(scaled));
  const std::string digits = rounded == 0 ? std::string() : std::to_string(rounded);
  const int fix = std::max(2 - static_cast<int>(digits.size()), 0);
  return fmt::format("{:.{}f}{}", scaled, fix, suffix);
}

namespace {

/// Python's str.islower(): at least one cased character and no upper-case one (ASCII view).
bool is_lower_word(std::string_view word) {
  bool cased = false;
  for (const char c : word) {
    if (std::isupper(static_cast<unsigned char>(c))) return false;
    cased = cased || std::islower(static_cast<unsigned char>(c));
  }
  return cased;
}

/// ^(v\d+(?:\.\d+)*|\d.*)$
bool is_version_or_number(std::string_view word) {
  if (word.empty()) return false;
  if (std::isdigit(static_cast<unsigned char>(word[0]))) return true;
  if (word[0] != 'v' || word.size() < 2) return false;
  bool digit_run = false;
  for (size_t i = 1; i < word.size(); ++i) {
    if (std::isdigit(static_cast<unsigned char>(word[i]))) {
      digit_run = true;
    } else if (word[i] == '.' && digit_run) {
      digit_run = false;
    } else {
      return false;
    }
  }
  return digit_run;
}

/// Python's str.title() on ASCII: a letter after a non-letter is upper case, others lower.
std::string title(std::string_view word) {
  std::string out;
  bool after_letter = false;
  for (const char c : word) {
    const auto u = static_cast<unsigned char>(c);
    const bool letter = std::isalpha(u) != 0;
    out += letter ? static_cast<char>(after_letter ? std::tolower(u) : std::toupper(u)) : c;
    after_letter = letter;
  }
  return out;
}

}  // namespace

std::string gguf_model_title(std::string_view model_id) {
  std::string spaced(model_id);
  for (char& c : spaced) {
    if (c == '-') c = ' ';
  }
  std::string out;
  size_t i = 0;
  while (i < spaced.size()) {
    while (i < spaced.size() && std::isspace(static_cast<unsigned char>(spaced[i]))) ++i;
    size_t end = i;
    while (end < spaced.size() && !std::isspace(static_cast<unsigned char>(spaced[end]))) ++end;
    if (end == i) break;
    const std::string_view word(spaced.data() + i, end - i);
    if (!out.empty()) out += ' ';
    out += is_lower_word(word) && !is_version_or_number(word) ? title(word) : std::string(word);
    i = end;
  }
  return out;
}

void add_general_metadata(GgufWriter& writer, std::string_view architecture, std::string_view name,
                          int64_t parameters) {
  writer.set("general.architecture", GgufValue::make_string(std::string(architecture)));
  writer.set("general.type", GgufValue::make_string("model"));
  writer.set("general.name", GgufValue::make_string(std::string(name)));
  writer.set("general.size_label", GgufValue::make_string(gguf_size_label(parameters)));
}

void add_file_type_in_place(GgufWriter& writer, WeightType type) {
  if (!is_requantized(type)) {
    writer.set("general.file_type", GgufValue::make_u32(gguf_file_type(type)));
  }
}

void finish_metadata(GgufWriter& writer, WeightType type) {
  writer.set("general.quantization_version", GgufValue::make_u32(2));
  if (is_requantized(type)) {
    writer.set("general.file_type", GgufValue::make_u32(gguf_file_type(type)));
  }
}

int64_t count_parameters(const std::vector<StreamTensor>& tensors) {
  int64_t total = 0;
  for (const StreamTensor& t : tensors) total += t.ne.at(0) * t.rows();
  return total;
}

WriteSummary summarize_written(const std::vector<StreamTensor>& tensors,
                               const std::filesystem::path& path, std::string tokenizer,
                               double seconds) {
  WriteSummary summary;
  std::error_code ec;
  summary.file_bytes = std::filesystem::file_size(path, ec);
  summary.tensors = static_cast<int64_t>(tensors.size());
  summary.parameters = count_parameters(tensors);
  for (const StreamTensor& t : tensors) {
    const std::string name(dtype_name(t.dtype));
    bool found = false;
    for (auto& [type, count] : summary.tensors_by_type) {
      if (type == name) {
        ++count;
        found = true;
      }
    }
    if (!found) summary.tensors_by_type.emplace_back(name, 1);
  }
  summary.tokenizer = std::move(tokenizer);
  summary.seconds = seconds;
  return summary;
}

std::vector<float> llama3_rope_factors(const RopeScaling& scaling, double rope_theta,
                                       int64_t head_dim) {
  const double old_context = scaling.original_max_positions > 0
                                 ? static_cast<double>(scaling.original_max_positions)
                                 : 8192.0;
  const double low_wavelen = old_context / scaling.low_freq_factor;
  const double high_wavelen = old_context / scaling.high_freq_factor;
  std::vector<float> factors;
  for (int64_t i = 0; i < head_dim; i += 2) {
    // float32 frequencies as torch computes them, the rest in double.
    const float freq = 1.0f / std::pow(static_cast<float>(rope_theta),
                                       static_cast<float>(i) / static_cast<float>(head_dim));
    const double wavelen = 2 * M_PI / freq;
    double factor = 1;
    if (wavelen > low_wavelen) {
      factor = scaling.factor;
    } else if (wavelen >= high_wavelen) {
      const double smooth = (old_context / wavelen - scaling.low_freq_factor) /
                            (scaling.high_freq_factor - scaling.low_freq_factor);
      factor = 1 / ((1 - smooth) / scaling.factor + smooth);
    }
    factors.push_back(static_cast<float>(factor));
  }
  return factors;
}

GgufValue gguf_string_array(const std::vector<std::string>& items) {
  std::vector<GgufValue> values;
  values.reserve(items.size());
  for (const std::string& item : items) values.push_back(GgufValue::make_string(item));
  return GgufValue::make_array(GgufType::kString, std::move(values));
}

}  // namespace polyinfer::inline v0::detail
