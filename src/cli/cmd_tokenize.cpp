// SPDX-License-Identifier: Apache-2.0
// polyinfer tokenize / detokenize.
#include <polyinfer/polyinfer.hpp>

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "args.hpp"
#include "commands.hpp"

namespace polyinfer::cli {

namespace {

std::string read_input_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kIo, path, "cannot open");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

int run_tokenize(const std::vector<std::string>& argv) {
  const Args args(argv, {"special", "no-parse-special"}, {"text", "file"});
  if (args.positionals().size() != 1) throw UsageError("expected exactly one MODEL");
  const auto text = args.option("text");
  const auto file = args.option("file");
  if (text.has_value() == file.has_value()) throw UsageError("give exactly one of --text, --file");
  const std::string input = text ? *text : read_input_file(*file);
  const Tokenizer tokenizer = Tokenizer::load(args.model());
  const auto ids = tokenizer.encode(input, {.add_special = args.flag("special"),
                                            .parse_special = !args.flag("no-parse-special")});
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) line += ' ';
    line += std::to_string(ids[i]);
  }
  std::cout << line << "\n";
  return 0;
}

int run_detokenize(const std::vector<std::string>& argv) {
  const Args args(argv, {"skip-special"}, {});
  if (args.positionals().size() < 2) throw UsageError("expected MODEL IDS...");
  std::vector<int32_t> ids;
  for (size_t i = 1; i < args.positionals().size(); ++i) {
    std::istringstream words(args.positionals()[i]);  // "1 2 3" as one argument works too
    for (std::string word; words >> word;) {
      const long long id = parse_integer(word, "token id");
      if (id < INT32_MIN || id > INT32_MAX) throw UsageError("token id out of range: " + word);
      ids.push_back(static_cast<int32_t>(id));
    }
  }
  const Tokenizer tokenizer = Tokenizer::load(args.model());
  std::cout << tokenizer.decode(ids, {.skip_special = args.flag("skip-special")}) << "\n";
  return 0;
}

}  // namespace polyinfer::cli
