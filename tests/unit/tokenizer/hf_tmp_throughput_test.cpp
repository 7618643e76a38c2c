// SPDX-License-Identifier: Apache-2.0
// TEMPORARY throughput probe (to be deleted).
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <nlohmann/json.hpp>

#include "polyinfer/tokenizer.hpp"
#include "support/fixtures.hpp"

TEST_CASE("tmp throughput", "[.][tmp-throughput]") {
  const auto shared = polyinfer::test::shared_dir();
  std::string prose = polyinfer::test::read_file(std::filesystem::path(POLYINFER_DEFAULT_SHARED_DIR) / "../main/LICENSE");
  std::string mixed;
  for (const auto& item : nlohmann::json::parse(polyinfer::test::read_file(shared / "fixtures/models/tiny-qwen2/tokenizers.json"))["cases"]) {
    mixed += item["text"].get<std::string>() + "\n";
  }
  std::string text;
  while (text.size() < (4u << 20)) text += prose + mixed;
  text.resize(4u << 20);
  while (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xC0) == 0x80) text.pop_back();
  if (!text.empty() && static_cast<unsigned char>(text.back()) >= 0xC0) text.pop_back();
  std::vector<std::string> rels = {"fixtures/models/tiny-llama", "fixtures/models/tiny-qwen2", "fixtures/models/tiny-bert", "fixtures/models/tiny-llama/tokenizer.model"};
  if (const char* only = std::getenv("TMP_ONLY")) rels = {only};
  for (const std::string& rel : rels) {
    const auto tok = polyinfer::Tokenizer::load(shared / rel);
    auto t0 = std::chrono::steady_clock::now();
    const auto ids = tok.encode(text, {.add_special = false, .parse_special = false});
    auto t1 = std::chrono::steady_clock::now();
    const auto back = tok.decode(ids);
    auto t2 = std::chrono::steady_clock::now();
    const double enc = std::chrono::duration<double>(t1 - t0).count();
    const double dec = std::chrono::duration<double>(t2 - t1).count();
    if (std::getenv("TMP_DUMP")) {
      FILE* f = std::fopen((std::string("/tmp/hfdiff/ids_") + std::to_string(text.size()) + "_" + std::to_string(std::hash<std::string>{}(rel)) + ".txt").c_str(), "w");
      for (auto id : ids) std::fprintf(f, "%d\n", id);
      std::fclose(f);
      FILE* g = std::fopen("/tmp/hfdiff/text.bin", "wb"); std::fwrite(text.data(), 1, text.size(), g); std::fclose(g);
      std::printf("%s -> %zu\n", rel.c_str(), std::hash<std::string>{}(rel));
    }
    std::printf("%-45s encode %7.2f MB/s  decode %7.2f MB/s  tokens %zu\n", rel.c_str(), text.size() / enc / 1e6, text.size() / dec / 1e6, ids.size());
  }
}
