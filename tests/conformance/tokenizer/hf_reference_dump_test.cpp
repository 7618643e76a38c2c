// SPDX-License-Identifier: Apache-2.0
// Differential check of tokenizer.json pipelines and tokenizer.model files against a dump made
// with Python `tokenizers` / `sentencepiece` (hidden: run with $POLYINFER_HF_REFERENCE_DUMP set
// and the tag [hf-dump]).
//
// Dump format: {"configs": [{"name", "tokenizer_json", "cases": [{"text", "ids",
// "ids_with_special", "decoded", "decoded_with_special", "decoded_skip_special"}]}]}, where
// decoded* are Tokenizer.decode(ids, skip_special_tokens=False/False/True); or
// {"name", "sentencepiece_model": path, "cases": [{"text", "ids", "decoded"}]} with
// SentencePieceProcessor.encode / decode.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "polyinfer/error.hpp"
#include "polyinfer/tokenizer.hpp"
#include "support/fixtures.hpp"
#include "tokenizer/tokenizer_impl.hpp"

TEST_CASE("tokenizer.json pipelines match a Python tokenizers dump", "[.][hf-dump]") {
  const char* path = std::getenv("POLYINFER_HF_REFERENCE_DUMP");
  if (path == nullptr || *path == '\0') {
    WARN("POLYINFER_HF_REFERENCE_DUMP not set");
    return;
  }
  using nlohmann::json;
  const json dump = json::parse(polyinfer::test::read_file(path));
  size_t total = 0;
  size_t failed = 0;
  for (const json& config : dump["configs"]) {
    const auto name = config["name"].get<std::string>();
    const bool spm = config.contains("sentencepiece_model");
    const polyinfer::Tokenizer tokenizer =
        spm ? polyinfer::Tokenizer::load_sentencepiece(
                  config["sentencepiece_model"].get<std::string>())
            : polyinfer::Tokenizer(polyinfer::detail::make_hf_tokenizer(
                  config["tokenizer_json"].get<std::string>(), "", name + "/tokenizer.json"));
    size_t config_failed = 0;
    for (const json& c : config["cases"]) {
      const auto text = c["text"].get<std::string>();
      const auto ids = c["ids"].get<std::vector<int32_t>>();
      const auto with_special = spm ? ids : c["ids_with_special"].get<std::vector<int32_t>>();
      const bool ok = spm ? tokenizer.encode(text) == ids &&
                                tokenizer.decode(ids) == c["decoded"].get<std::string>()
                          : tokenizer.encode(text) == ids &&
                                tokenizer.encode(text, {.add_special = true}) == with_special &&
                                tokenizer.decode(ids) == c["decoded"].get<std::string>() &&
                                tokenizer.decode(with_special) ==
                                    c["decoded_with_special"].get<std::string>() &&
                                tokenizer.decode(with_special, {.skip_special = true}) ==
                                    c["decoded_skip_special"].get<std::string>();
      ++total;
      if (!ok) {
        ++failed;
        if (++config_failed <= 3) {
          UNSCOPED_INFO(name << ": " << json(text).dump() << " ids "
                             << json(tokenizer.encode(text)).dump() << " want " << json(ids).dump()
                             << " decoded " << json(tokenizer.decode(ids)).dump() << " want "
                             << c["decoded"].dump());
        }
      }
    }
  }
  INFO(total - failed << "/" << total << " cases match");
  CHECK(failed == 0);
}
