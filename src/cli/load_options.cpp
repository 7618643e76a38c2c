// SPDX-License-Identifier: Apache-2.0
// --tier, --device, --threads, --ctx → LoadOptions; floating-point options.
#include "load_options.hpp"

#include <charconv>
#include <cmath>

namespace polyinfer::cli {

namespace {

// cpu, cuda[:N] and hip[:N] go to the loaders (which say whether this build and machine have
// the GPU).
void check_device(std::string_view device) {
  if (device == "cpu") return;
  for (const std::string_view kind : {"cuda", "hip"}) {
    if (!device.starts_with(kind)) continue;
    const std::string_view rest = device.substr(kind.size());
    bool well_formed = rest.empty();
    if (rest.size() >= 2 && rest[0] == ':') {
      well_formed = rest.find_first_not_of("0123456789", 1) == std::string_view::npos;
    }
    if (well_formed) return;
    break;
  }
  throw UsageError("--device must be cpu, cuda[:N], a list cuda:0,cuda:1 or hip[:N], not '" +
                   std::string(device) + "'");
}

}  // namespace

LoadOptions load_options(const Args& args) {
  LoadOptions options;
  options.device = args.option("device").value_or("cpu");
  // "cuda:0,cuda:1": the model split over those GPUs (tensor parallelism).
  for (size_t at = 0; at <= options.device.size();) {
    const size_t comma = std::min(options.device.find(',', at), options.device.size());
    check_device(std::string_view(options.device).substr(at, comma - at));
    at = comma + 1;
  }
  if (const auto tier = args.option("tier")) {
    const auto parsed = tier_from_name(*tier);
    if (!parsed) {
      throw UsageError("--tier must be native, f32, f16, q8_0, q4_0 or q4_k, not '" + *tier + "'");
    }
    options.tier = *parsed;
  }
  options.threads = static_cast<int>(args.integer("threads", 0, 1024).value_or(0));
  options.context_length = args.integer("ctx", 1, int64_t{1} << 30).value_or(0);
  return options;
}

std::optional<double> real_option(const Args& args, std::string_view name, double min, double max) {
  const auto text = args.option(name);
  if (!text) return std::nullopt;
  double value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size() || !std::isfinite(value)) {
    throw UsageError("--" + std::string(name) + ": not a number: '" + *text + "'");
  }
  if (value < min || value > max) {
    throw UsageError("--" + std::string(name) + " must be in [" + std::to_string(min) + ", " +
                     std::to_string(max) + "]");
  }
  return value;
}

}  // namespace polyinfer::cli
