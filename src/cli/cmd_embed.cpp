// SPDX-License-Identifier: Apache-2.0
// polyinfer embed: one embedding vector of a text from a BERT encoder (mean, CLS or pooler).
#include <polyinfer/polyinfer.hpp>

#include <charconv>
#include <iostream>
#include <nlohmann/json.hpp>

#include "args.hpp"
#include "commands.hpp"
#include "load_options.hpp"

namespace polyinfer::cli {

int run_embed(const std::vector<std::string>& argv) {
  const Args args(argv, {"json"}, {"text", "pooling", "tier", "device", "threads"});
  if (args.positionals().size() != 1) throw UsageError("expected exactly one MODEL");
  const std::string text = args.required("text");
  const std::string pooling_text = args.option("pooling").value_or("mean");
  const auto pooling = pooling_from_name(pooling_text);
  if (!pooling) {
    throw UsageError("--pooling must be mean, cls or pooler, not '" + pooling_text + "'");
  }
  const LoadOptions load = load_options(args);

  const Encoder encoder = Encoder::load(args.model(), load);
  if (*pooling == Pooling::kPooler && !encoder.has_pooler()) {
    throw Error(ErrorCode::kInvalidArgument, args.model(),
                "the model has no pooler; use --pooling mean or cls");
  }
  const Encoding encoding = encoder.encode(text);
  const std::vector<float>& vector = *pooling == Pooling::kCls      ? encoding.cls
                                     : *pooling == Pooling::kPooler ? encoding.pooled
                                                                    : encoding.mean;
  if (args.flag("json")) {
    const nlohmann::ordered_json out{{"model", args.model()},
                                     {"tier", std::string(tier_name(encoder.tier()))},
                                     {"pooling", std::string(pooling_name(*pooling))},
                                     {"tokens", encoding.ids.size()},
                                     {"dim", vector.size()},
                                     {"embedding", vector}};
    std::cout << out.dump() << "\n";
  } else {
    // Shortest round-trip spelling of each value, space separated, one line.
    std::string line;
    char buffer[32];
    for (size_t i = 0; i < vector.size(); ++i) {
      if (i > 0) line += ' ';
      const auto result = std::to_chars(buffer, buffer + sizeof buffer, vector[i]);
      line.append(buffer, result.ptr);
    }
    std::cout << line << "\n";
  }
  return 0;
}

}  // namespace polyinfer::cli
