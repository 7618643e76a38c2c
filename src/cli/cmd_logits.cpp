// SPDX-License-Identifier: Apache-2.0
// polyinfer logits: the logits of every position of a list of ids, as a safetensors file.
#include <polyinfer/polyinfer.hpp>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "args.hpp"
#include "commands.hpp"
#include "load_options.hpp"

namespace polyinfer::cli {

namespace {

/// Token ids separated by spaces or commas.
std::vector<int32_t> parse_ids(const std::string& text) {
  std::string spaced = text;
  for (char& c : spaced) {
    if (c == ',') c = ' ';
  }
  std::istringstream words(spaced);
  std::vector<int32_t> ids;
  for (std::string word; words >> word;) {
    const long long id = parse_integer(word, "--ids");
    if (id < INT32_MIN || id > INT32_MAX) throw UsageError("--ids: id out of range: " + word);
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

/// A safetensors file with one f32 tensor [rows, cols] named `name` (8-byte LE header length,
/// JSON header padded with spaces to a multiple of 8, raw little-endian data).
void write_safetensors(const std::string& path, const std::string& name,
                       const std::vector<float>& values, int64_t rows, int64_t cols,
                       const nlohmann::ordered_json& metadata) {
  const uint64_t bytes = values.size() * sizeof(float);
  nlohmann::ordered_json header;
  header["__metadata__"] = metadata;
  header[name] = {{"dtype", "F32"}, {"shape", {rows, cols}}, {"data_offsets", {0, bytes}}};
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(ErrorCode::kIo, path, "cannot open for writing");
  const uint64_t length = text.size();
  unsigned char prefix[8];
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<unsigned char>(length >> (8 * i));
  out.write(reinterpret_cast<const char*>(prefix), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(bytes));
  out.close();
  if (!out) throw Error(ErrorCode::kIo, path, "write failed");
}

}  // namespace

int run_logits(const std::vector<std::string>& argv) {
  std::vector<std::string> options{"ids", "out"};
  options.insert(options.end(), kLoadOptionNames.begin(), kLoadOptionNames.end());
  const Args args(argv, {}, options);
  if (args.positionals().size() != 1) throw UsageError("expected exactly one MODEL");
  const std::vector<int32_t> ids = parse_ids(args.required("ids"));
  if (ids.empty()) throw UsageError("--ids holds no token ids");
  const std::string out = args.required("out");
  const LoadOptions load = load_options(args);

  LanguageModel model = LanguageModel::load(args.model(), load);
  const std::vector<float> logits = model.logits(ids);
  const auto rows = static_cast<int64_t>(ids.size());
  const int64_t cols = static_cast<int64_t>(logits.size()) / rows;
  nlohmann::ordered_json metadata{{"model", args.model()},
                                  {"tier", std::string(tier_name(model.tier()))},
                                  {"producer", "polyinfer " + std::string(version())}};
  write_safetensors(out, "logits", logits, rows, cols, metadata);
  return 0;
}

}  // namespace polyinfer::cli
