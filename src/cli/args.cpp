// SPDX-License-Identifier: Apache-2.0
// Args: the polyinfer command's argument reader.
#include "args.hpp"

#include <algorithm>
#include <charconv>

namespace polyinfer::cli {

namespace {
bool contains(const std::vector<std::string>& list, std::string_view name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}
}  // namespace

Args::Args(std::vector<std::string> argv, std::vector<std::string> flags,
           std::vector<std::string> options) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg.size() > 2 && arg.starts_with("--")) {
      std::string name = arg.substr(2);
      std::optional<std::string> value;
      if (const auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name.resize(eq);
      }
      if (contains(flags, name)) {
        if (value) throw UsageError("--" + name + " takes no value");
        set_flags_.push_back(name);
        continue;
      }
      if (!contains(options, name)) throw UsageError("unknown option --" + name);
      if (!value) {
        if (i + 1 >= argv.size()) throw UsageError("--" + name + " needs a value");
        value = argv[++i];
      }
      values_.emplace_back(name, *value);
    } else if (arg.size() == 2 && arg[0] == '-' && arg[1] != '-' && !std::isdigit(arg[1])) {
      // Short options map to the long option with the same first letter when declared so.
      const std::string name(1, arg[1]);
      if (!contains(options, name)) throw UsageError("unknown option " + arg);
      if (i + 1 >= argv.size()) throw UsageError(arg + " needs a value");
      values_.emplace_back(name, argv[++i]);
    } else {
      positionals_.push_back(arg);
    }
  }
}

bool Args::flag(std::string_view name) const {
  return contains(set_flags_, name);
}

std::optional<std::string> Args::option(std::string_view name) const {
  std::optional<std::string> found;
  for (const auto& [key, value] : values_) {
    if (key == name) found = value;  // the last one wins, as in most tools
  }
  return found;
}

std::string Args::required(std::string_view name) const {
  auto value = option(name);
  if (!value) throw UsageError("missing --" + std::string(name));
  return *value;
}

const std::string& Args::model() const {
  if (positionals_.empty()) throw UsageError("missing MODEL");
  return positionals_.front();
}

long long parse_integer(std::string_view text, std::string_view what) {
  long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw UsageError(std::string(what) + ": not an integer: '" + std::string(text) + "'");
  }
  return value;
}

std::optional<long long> Args::integer(std::string_view name, long long min, long long max) const {
  const auto value = option(name);
  if (!value) return std::nullopt;
  const long long parsed = parse_integer(*value, "--" + std::string(name));
  if (parsed < min || parsed > max) {
    throw UsageError("--" + std::string(name) + " must be in [" + std::to_string(min) + ", " +
                     std::to_string(max) + "]");
  }
  return parsed;
}

}  // namespace polyinfer::cli
