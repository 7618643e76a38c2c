// SPDX-License-Identifier: Apache-2.0
// synthesize_model: tensors, types and shapes per layout, tokenizer, determinism, statistics.
#include <catch2/catch.hpp>

#include <unistd.h>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>

#include "format/gguf.hpp"
#include "model/convert_types.hpp"
#include "model/synth.hpp"
#include "polyinfer/error.hpp"
#include "polyinfer/model.hpp"
#include "polyinfer/model_writer.hpp"
#include "support/fixtures.hpp"

namespace polyinfer::detail {
namespace {

namespace fs = std::filesystem;

/// A file in the temporary folder, removed at the end of the scope.
class TempFile {
 public:
  explicit TempFile(const std::string& stem) {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            (stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".gguf");
  }
  ~TempFile() {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string read_bytes(const fs::path& path) {
  return test::read_file(path);
}

SynthShape small_llama() {
  return synth_custom_shape(256, 2, 512, 4, 2, 512);
}

/// The type every tensor of a small llama (hidden 256, 2 layers) gets in a layout.
DType expected_type(WeightType type, const std::string& name, int dims) {
  if (dims == 1) return DType::kF32;
  switch (type) {
    case WeightType::kF32:
      return DType::kF32;
    case WeightType::kF16:
      return DType::kF16;
    case WeightType::kBF16:
      return DType::kBF16;
    case WeightType::kQ8_0:
      return DType::kQ8_0;
    case WeightType::kQ4_0:
      return name == "output.weight" ? DType::kQ6_K : DType::kQ4_0;
    case WeightType::kQ4_K:
      return DType::kQ4_K;
    case WeightType::kQ4_K_M: {
      // 2 layers: use_more_bits is true for layer 1 only.
      const bool more = name == "blk.1.attn_v.weight" || name == "blk.1.ffn_down.weight";
      return name == "output.weight" || more ? DType::kQ6_K : DType::kQ4_K;
    }
  }
  return DType::kF32;
}

}  // namespace

TEST_CASE("synth: a small llama in every layout opens with ModelFile", "[model][synth]") {
  const SynthShape shape = small_llama();
  for (const WeightType type :
       {WeightType::kF32, WeightType::kF16, WeightType::kBF16, WeightType::kQ8_0, WeightType::kQ4_0,
        WeightType::kQ4_K, WeightType::kQ4_K_M}) {
    INFO(weight_type_name(type));
    const TempFile file("synth-small");
    const WriteSummary summary = synthesize_model(shape, file.path(), {.type = type, .seed = 7});
    CHECK(summary.file_bytes == fs::file_size(file.path()));
    CHECK(summary.tensors == 3 + 2 * 9);
    CHECK(summary.tokenizer == "ggml");

    const ModelFile model = ModelFile::open(file.path());
    const ModelConfig& config = model.config();
    CHECK(config.architecture == "llama");
    CHECK(config.hidden_size == 256);
    CHECK(config.num_layers == 2);
    CHECK(config.intermediate_size == 512);
    CHECK(config.num_heads == 4);
    CHECK(config.num_kv_heads == 2);
    CHECK(config.head_dim == 64);
    CHECK(config.vocab_size == 512);
    CHECK_FALSE(config.tie_embeddings);
    CHECK(config.rope_interleaved);

    const std::map<std::string, std::vector<int64_t>> shapes{
        {"token_embd.weight", {512, 256}},   {"output.weight", {512, 256}},
        {"output_norm.weight", {256}},       {"blk.0.attn_norm.weight", {256}},
        {"blk.0.attn_q.weight", {256, 256}}, {"blk.0.attn_k.weight", {128, 256}},
        {"blk.0.attn_v.weight", {128, 256}}, {"blk.0.attn_output.weight", {256, 256}},
        {"blk.0.ffn_norm.weight", {256}},    {"blk.0.ffn_gate.weight", {512, 256}},
        {"blk.0.ffn_up.weight", {512, 256}}, {"blk.0.ffn_down.weight", {256, 512}},
        {"blk.1.attn_v.weight", {128, 256}}, {"blk.1.ffn_down.weight", {256, 512}},
    };
    REQUIRE(model.tensors().size() == 21);
    for (const TensorInfo& info : model.tensors()) {
      INFO(info.name);
      CHECK(info.dtype == expected_type(type, info.name, static_cast<int>(info.shape.size())));
      if (const auto it = shapes.find(info.name); it != shapes.end()) {
        CHECK(info.shape == it->second);
      }
    }
    for (const auto& [name, dims] : shapes) CHECK(model.has_tensor(name));

    REQUIRE(model.has_tokenizer());
    const Tokenizer& tokenizer = model.tokenizer();
    CHECK(tokenizer.vocab_size() == 512);
    CHECK(tokenizer.bos_id() == 1);
    CHECK(tokenizer.eos_id() == 2);
    const std::string text = "hello world, 123 Zebra!";
    CHECK(tokenizer.encode(text, {.add_special = true}).front() == 1);
    const auto ids = tokenizer.encode(text);
    CHECK(ids.size() < text.size());  // pieces longer than one byte apply
    CHECK(tokenizer.decode(ids) == text);
  }
}

TEST_CASE("synth: same seed, same bytes, whatever the threads", "[model][synth]") {
  const SynthShape shape = small_llama();
  const TempFile one("synth-det1");
  const TempFile two("synth-det2");
  const TempFile other("synth-det3");
  (void)synthesize_model(shape, one.path(), {.type = WeightType::kQ4_K_M, .seed = 3, .threads = 1});
  (void)synthesize_model(shape, two.path(), {.type = WeightType::kQ4_K_M, .seed = 3, .threads = 2});
  (void)synthesize_model(shape, other.path(),
                         {.type = WeightType::kQ4_K_M, .seed = 4, .threads = 2});
  const std::string a = read_bytes(one.path());
  CHECK(a == read_bytes(two.path()));
  CHECK(a.size() == read_bytes(other.path()).size());
  CHECK(a != read_bytes(other.path()));
}

TEST_CASE("synth: weights ~ N(0, 0.02), norms ~ 1", "[model][synth]") {
  const TempFile file("synth-stats");
  (void)synthesize_model(synth_custom_shape(512, 1, 1024, 8, 8, 1024), file.path(),
                         {.type = WeightType::kF32, .seed = 11});
  const ModelFile model = ModelFile::open(file.path());
  const auto stats = [&](const char* name) {
    const TensorView view = model.tensor(name);
    const auto* values = reinterpret_cast<const float*>(view.data);
    double sum = 0;
    double squares = 0;
    const int64_t n = view.elements();
    for (int64_t i = 0; i < n; ++i) sum += values[i];
    const double mean = sum / static_cast<double>(n);
    for (int64_t i = 0; i < n; ++i) squares += (values[i] - mean) * (values[i] - mean);
    return std::pair{mean, std::sqrt(squares / static_cast<double>(n))};
  };
  const auto [mean, std] = stats("blk.0.ffn_up.weight");  // 512 K values
  CHECK(std::fabs(mean) < 2e-4);
  CHECK(std == Approx(0.02).epsilon(0.01));
  const auto [norm_mean, norm_std] = stats("blk.0.attn_norm.weight");
  CHECK(norm_mean == Approx(1.0).epsilon(0.005));
  CHECK(norm_std == Approx(0.02).epsilon(0.2));
  // Rows are independent streams: no two rows of a matrix start alike.
  const TensorView q = model.tensor("blk.0.attn_q.weight");
  const auto* values = reinterpret_cast<const float*>(q.data);
  CHECK(values[0] != values[512]);
}

TEST_CASE("synth: qwen2-style custom shape with byte-level BPE", "[model][synth]") {
  SynthShape shape = synth_custom_shape(128, 2, 256, 4, 2, 1000);
  shape.architecture = "qwen2";
  shape.tie_embeddings = true;
  shape.attention_bias = true;
  shape.tokenizer = "gpt2";
  shape.pre_tokenizer = "qwen2";
  shape.bos_id = 997;
  shape.eos_id = 999;
  const TempFile file("synth-qwen");
  (void)synthesize_model(shape, file.path(), {.type = WeightType::kQ4_0, .seed = 1});
  const ModelFile model = ModelFile::open(file.path());
  CHECK(model.config().architecture == "qwen2");
  CHECK(model.config().tie_embeddings);
  CHECK_FALSE(model.has_tensor("output.weight"));
  CHECK(model.has_tensor("blk.1.attn_q.bias"));
  // Tied: the embedding is the output projection, q6_k would need rows of 256: q8_0.
  CHECK(model.tensor("token_embd.weight").dtype == DType::kQ8_0);
  CHECK(model.tensor("blk.0.attn_q.weight").dtype == DType::kQ4_0);
  const Tokenizer& tokenizer = model.tokenizer();
  CHECK(tokenizer.vocab_size() == 1000);
  CHECK(tokenizer.kind() == "byte-bpe");
  CHECK(tokenizer.pre_tokenizer() == "qwen2");
  const auto ids = tokenizer.encode("hello world abc");
  CHECK(tokenizer.decode(ids) == "hello world abc");
  CHECK(ids.size() < 15);  // merges apply
  CHECK(tokenizer.encode("<|im_start|>").size() == 1);
  CHECK_FALSE(model.chat_template().empty());
}

TEST_CASE("synth: built-in shapes", "[model][synth]") {
  const auto tiny = synth_shape("TinyLlama-1.1B");
  REQUIRE(tiny.has_value());
  CHECK(tiny->hidden_size == 2048);
  CHECK(tiny->num_layers == 22);
  CHECK(tiny->intermediate_size == 5632);
  CHECK(tiny->num_heads == 32);
  CHECK(tiny->num_kv_heads == 4);
  CHECK(tiny->vocab_size == 32000);
  const auto tensors = synth_tensors(*tiny);
  CHECK(tensors.size() == 3 + 22 * 9);
  int64_t parameters = 0;
  for (const SynthTensor& t : tensors) {
    int64_t n = 1;
    for (const int64_t d : t.ne) n *= d;
    parameters += n;
  }
  CHECK(parameters == 1100048384);  // TinyLlama-1.1B's parameter count
  CHECK(synth_shape("llama-3-8b")->vocab_size == 128256);
  CHECK(synth_shape("qwen2.5-0.5b")->architecture == "qwen2");
  const auto llama32 = synth_shape("llama-3.2-1b");
  REQUIRE(llama32.has_value());
  const auto factors = llama3_rope_factors(*llama32);
  REQUIRE(factors.size() == 32);
  CHECK(factors.front() == 1.0f);  // high frequencies unscaled
  CHECK(factors.back() == 32.0f);  // low frequencies divided by the factor
  for (const SynthTensor& t : synth_tensors(*llama32)) {
    CHECK(t.name != "output.weight");  // tied
  }
  CHECK_FALSE(synth_shape("gpt-5").has_value());
  CHECK_THROWS_AS(validate_synth_shape(synth_custom_shape(100, 1, 64, 3, 1, 512)), Error);
  CHECK_THROWS_AS(validate_synth_shape(synth_custom_shape(128, 1, 64, 4, 3, 512)), Error);
}

TEST_CASE("synth: the q4_k_m mix follows llama.cpp's use_more_bits", "[model][synth]") {
  // 22 layers (TinyLlama): q6_k for layers 0, 1, 4, 7, 10, 13, 16, 19, 20, 21.
  std::vector<int64_t> more;
  for (int64_t l = 0; l < 22; ++l) {
    if (use_more_bits(l, 22)) more.push_back(l);
  }
  CHECK(more == std::vector<int64_t>{0, 1, 4, 7, 10, 13, 16, 19, 20, 21});
  const TensorSlot v{"blk.4.attn_v.weight", 2, 2048, 22, false};
  CHECK(gguf_tensor_type(WeightType::kQ4_K_M, v) == DType::kQ6_K);
  const TensorSlot v5{"blk.5.attn_v.weight", 2, 2048, 22, false};
  CHECK(gguf_tensor_type(WeightType::kQ4_K_M, v5) == DType::kQ4_K);
  CHECK(gguf_tensor_type(WeightType::kQ4_K, v) == DType::kQ4_K);
  // Fallbacks for rows that are not whole blocks (Qwen2.5-0.5B's 896).
  const TensorSlot q{"blk.5.attn_q.weight", 2, 896, 24, true};
  CHECK(gguf_tensor_type(WeightType::kQ4_K_M, q) == DType::kQ5_0);
  const TensorSlot tied{"token_embd.weight", 2, 896, 24, true};
  CHECK(gguf_tensor_type(WeightType::kQ4_K_M, tied) == DType::kQ8_0);
  CHECK(gguf_tensor_type(WeightType::kQ4_0, tied) == DType::kQ8_0);
  const TensorSlot odd{"blk.0.ffn_up.weight", 2, 100, 2, false};
  CHECK(gguf_tensor_type(WeightType::kQ8_0, odd) == DType::kF16);
  CHECK(gguf_tensor_type(WeightType::kQ4_0, odd) == DType::kF16);
  const TensorSlot norm{"blk.0.ffn_norm.weight", 1, 2048, 22, false};
  CHECK(gguf_tensor_type(WeightType::kQ4_K_M, norm) == DType::kF32);
  CHECK(weight_type_from_name("Q4_K_M") == WeightType::kQ4_K_M);
  CHECK_FALSE(weight_type_from_name("q5_k").has_value());
}

// Not in the default run: ~1.1 B weights (a minute or more on two cores).
TEST_CASE("synth: tinyllama-1.1b q4_0 timing", "[.][synth-slow]") {
  const TempFile file("synth-tinyllama");
  const auto start = std::chrono::steady_clock::now();
  const WriteSummary summary =
      synthesize_model(*synth_shape("tinyllama-1.1b"), file.path(), {.type = WeightType::kQ4_0});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "tinyllama-1.1b q4_0: " << summary.file_bytes << " bytes, " << seconds << " s\n";
  const ModelFile model = ModelFile::open(file.path());
  CHECK(model.tensors().size() == 201);
  CHECK(model.tensor("output.weight").dtype == DType::kQ6_K);
  CHECK(model.tokenizer().vocab_size() == 32000);
}

}  // namespace polyinfer::detail
