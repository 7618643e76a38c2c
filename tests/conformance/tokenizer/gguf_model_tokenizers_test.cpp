// SPDX-License-Identifier: Apache-2.0
// GGUF tokenizers of the fixture models against tokenizers.json, with llama.cpp's own results
// (tokenizers.llamacpp.json) where llama.cpp and Hugging Face differ.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "polyinfer/tokenizer.hpp"
#include "support/fixtures.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string show(const std::vector<int32_t>& ids) {
  std::string out;
  for (const int32_t id : ids) out += ' ' + std::to_string(id);
  return out;
}

std::vector<fs::path> gguf_files(const fs::path& folder) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(folder / "gguf")) {
    if (entry.path().extension() == ".gguf") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

struct Counts {
  size_t ids = 0;
  size_t ids_with_special = 0;
  size_t decoded = 0;
  size_t decoded_with_special = 0;
  size_t decoded_skip_special = 0;
  size_t decode_checked = 0;
};

// The decoded string llama.cpp's detokenizer is expected to give for a tokenizers.json field,
// which is HF's except for documented differences.
using ExpectedDecode = std::string (*)(const polyinfer::Tokenizer& tokenizer,
                                       const std::vector<int32_t>& ids, std::string_view field,
                                       std::string hf_decoded);

// `round_trip` lists, for cases where llama.cpp's ids differ from HF's, what decoding them gives
// when that is not the text itself.
void run_model(const std::string& model, ExpectedDecode expected_decode,
               const std::map<size_t, std::string>& round_trip) {
  POLYINFER_SHARED_OR_RETURN(folder, "fixtures/models/" + model);
  const json cases = json::parse(polyinfer::test::read_file(folder / "tokenizers.json"))["cases"];
  const json llamacpp =
      json::parse(polyinfer::test::read_file(folder / "tokenizers.llamacpp.json"));
  std::map<size_t, std::vector<int32_t>> overrides;
  for (const json& mismatch : llamacpp["mismatches"]) {
    overrides[mismatch["index"].get<size_t>()] =
        mismatch["llamacpp_ids"].get<std::vector<int32_t>>();
  }
  REQUIRE(cases.size() == 177);

  for (const fs::path& gguf : gguf_files(folder)) {
    const auto tokenizer = polyinfer::Tokenizer::load(gguf);
    Counts counts;
    for (size_t i = 0; i < cases.size(); ++i) {
      const json& test_case = cases[i];
      const auto text = test_case["text"].get<std::string>();
      const auto hf_ids = test_case["ids"].get<std::vector<int32_t>>();
      const auto hf_with_special = test_case["ids_with_special"].get<std::vector<int32_t>>();
      // What add_special adds around the ids (llama: <s> in front, qwen2: nothing).
      REQUIRE(hf_with_special.size() >= hf_ids.size());
      const std::vector<int32_t> prefix(
          hf_with_special.begin(), hf_with_special.end() - static_cast<ptrdiff_t>(hf_ids.size()));
      const auto found = overrides.find(i);
      const std::vector<int32_t> expected = found != overrides.end() ? found->second : hf_ids;
      std::vector<int32_t> expected_with_special = prefix;
      expected_with_special.insert(expected_with_special.end(), expected.begin(), expected.end());

      INFO(gguf.filename().string() << " case " << i << " text '" << text << "'");
      const auto ids = tokenizer.encode(text, {.add_special = false, .parse_special = true});
      {
        INFO("ids\n  got     " << show(ids) << "\n  expected" << show(expected));
        CHECK(ids == expected);
      }
      counts.ids += ids == expected;
      const auto with_special =
          tokenizer.encode(text, {.add_special = true, .parse_special = true});
      {
        INFO("ids_with_special\n  got     " << show(with_special) << "\n  expected"
                                            << show(expected_with_special));
        CHECK(with_special == expected_with_special);
      }
      counts.ids_with_special += with_special == expected_with_special;

      // Decoding: HF's strings, except where the llama.cpp detokenizer is known to differ.
      const std::pair<std::string_view, std::string> decodes[] = {
          {"decoded", tokenizer.decode(expected)},
          {"decoded_with_special", tokenizer.decode(expected_with_special)},
          {"decoded_skip_special", tokenizer.decode(expected_with_special, {.skip_special = true})},
      };
      size_t* passed[] = {&counts.decoded, &counts.decoded_with_special,
                          &counts.decoded_skip_special};
      for (size_t d = 0; d < 3; ++d) {
        const auto& [field, got] = decodes[d];
        // Where llama.cpp's ids differ from HF's, HF's decoded strings do not apply: decoding
        // llama.cpp's ids must give back the text.
        const auto exception = round_trip.find(i);
        const auto want = found != overrides.end()
                              ? (exception != round_trip.end() ? exception->second : text)
                              : expected_decode(tokenizer, expected, field,
                                                test_case[std::string(field)].get<std::string>());
        if (found != overrides.end() && d != 0) continue;
        ++counts.decode_checked;
        INFO(field << "\n  got      '" << got << "'\n  expected '" << want << "'");
        CHECK(got == want);
        *passed[d] += got == want;
      }
    }
    WARN(gguf.filename().string() << ": ids " << counts.ids << "/177, ids_with_special "
                                  << counts.ids_with_special << "/177, decode checks passed "
                                  << counts.decoded + counts.decoded_with_special +
                                         counts.decoded_skip_special
                                  << "/" << counts.decode_checked << " (decoded " << counts.decoded
                                  << ", decoded_with_special " << counts.decoded_with_special
                                  << ", decoded_skip_special " << counts.decoded_skip_special
                                  << ")");
  }
}

std::string same_as_hf(const polyinfer::Tokenizer&, const std::vector<int32_t>&, std::string_view,
                       std::string hf_decoded) {
  return hf_decoded;
}

// llama.cpp's detokenize(remove_special = true) drops a leading BOS and then keeps the space of
// the first piece ("▁Hello" → " Hello"): `remove_space = false` when it removes BOS. HF strips
// that space (Metaspace decoder). With BOS kept, or without BOS, both strip it.
std::string llama_spm_decode(const polyinfer::Tokenizer& tokenizer, const std::vector<int32_t>& ids,
                             std::string_view field, std::string hf_decoded) {
  if (field == "decoded_skip_special" && !ids.empty() &&
      tokenizer.token(ids.front()).rfind("\xe2\x96\x81", 0) == 0) {
    return " " + hf_decoded;
  }
  return hf_decoded;
}

}  // namespace

TEST_CASE("gguf tokenizer of tiny-llama matches llama.cpp", "[tokenizer][gguf][conformance]") {
  // llama.cpp puts a "▁" after a special token (SPM add_space_prefix), which decodes as a space.
  run_model("tiny-llama", llama_spm_decode, {{154, "<s> Hello</s>"}});
}

TEST_CASE("gguf tokenizer of tiny-qwen2 matches llama.cpp", "[tokenizer][gguf][conformance]") {
  run_model("tiny-qwen2", same_as_hf, {});
}

TEST_CASE("gguf tokenizers of the fixture models report llama.cpp's settings",
          "[tokenizer][gguf][conformance]") {
  POLYINFER_SHARED_OR_RETURN(models, "fixtures/models");
  const auto llama = polyinfer::Tokenizer::load(models / "tiny-llama/gguf/tiny-llama-q8_0.gguf");
  CHECK(llama.kind() == "spm-bpe");
  CHECK(llama.pre_tokenizer() == "default");
  CHECK(llama.flavor() == polyinfer::TokenizerFlavor::kLlamaCpp);
  CHECK(llama.vocab_size() == 512);
  CHECK(llama.bos_id() == 1);
  CHECK(llama.eos_id() == 2);
  CHECK(llama.unk_id() == 0);
  CHECK(llama.pad_id() == -1);
  CHECK(llama.is_special(1));
  CHECK_FALSE(llama.is_special(3));  // <0x00> is a byte token
  CHECK(llama.token(3) == "<0x00>");
  CHECK(llama.chat_template().empty());

  const auto qwen = polyinfer::Tokenizer::load(models / "tiny-qwen2/gguf/tiny-qwen2-f16.gguf");
  CHECK(qwen.kind() == "byte-bpe");
  CHECK(qwen.pre_tokenizer() == "qwen2");
  CHECK(qwen.bos_id() == 509);
  CHECK(qwen.eos_id() == 511);
  CHECK(qwen.pad_id() == 509);
  CHECK(qwen.unk_id() == -1);
  CHECK(qwen.is_special(510));
  CHECK(qwen.token(511) == "<|im_end|>");
  CHECK(qwen.chat_template().rfind("{%- for message in messages %}", 0) == 0);
}

TEST_CASE("gguf tokenizers are safe to share between threads", "[tokenizer][gguf][conformance]") {
  POLYINFER_SHARED_OR_RETURN(folder, "fixtures/models/tiny-llama");
  const json cases = json::parse(polyinfer::test::read_file(folder / "tokenizers.json"))["cases"];
  const auto tokenizer = polyinfer::Tokenizer::load(folder / "gguf/tiny-llama-q4_0.gguf");
  std::vector<std::string> texts;
  std::vector<std::vector<int32_t>> expected;
  for (const json& test_case : cases) {
    texts.push_back(test_case["text"].get<std::string>());
    expected.push_back(tokenizer.encode(texts.back()));
  }
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int round = 0; round < 10; ++round) {
        for (size_t i = 0; i < texts.size(); ++i) {
          if (tokenizer.encode(texts[i]) != expected[i]) ++mismatches;
          if (tokenizer.decode(expected[i]).size() > texts[i].size() + 64) ++mismatches;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(mismatches == 0);
}
