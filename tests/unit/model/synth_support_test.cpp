// SPDX-License-Identifier: Apache-2.0
// Pieces behind synth and convert: size labels, titles, loader order, streaming GGUF writes.
#include <catch2/catch.hpp>

#include <unistd.h>
#include <atomic>
#include <filesystem>

#include "format/gguf.hpp"
#include "model/convert_metadata.hpp"
#include "model/convert_types.hpp"
#include "polyinfer/error.hpp"

namespace polyinfer::detail {

TEST_CASE("synth support: gguf-py size labels and titles", "[model][synth]") {
  CHECK(gguf_size_label(1377536) == "1.4M");  // tiny-llama (fixture manifest)
  CHECK(gguf_size_label(1247232) == "1.2M");  // tiny-qwen2
  CHECK(gguf_size_label(460160) == "460K");
  CHECK(gguf_size_label(1100048384) == "1.1B");
  CHECK(gguf_size_label(8030261248) == "8.0B");
  CHECK(gguf_size_label(494032768) == "494M");
  CHECK(gguf_model_title("tiny-llama") == "Tiny Llama");
  CHECK(gguf_model_title("tiny-qwen2") == "Tiny Qwen2");
  CHECK(gguf_model_title("TinyLlama-1.1B-chat-v1.0") == "TinyLlama 1.1B Chat v1.0");
  CHECK(gguf_model_title("small") == "Small");
}

TEST_CASE("synth support: llama.cpp's loader order", "[model][synth]") {
  CHECK(loader_order_less("output.weight", "blk.0.attn_q.weight"));
  CHECK(loader_order_less("blk.2.ffn_up.weight", "blk.10.attn_k.weight"));
  CHECK(loader_order_less("blk.0.attn_k.weight", "blk.0.attn_norm.weight"));
  CHECK(tensor_layer("blk.17.ffn_down.weight") == 17);
  CHECK(tensor_layer("token_embd.weight") == -1);
  CHECK(tensor_layer("blk.x.y") == -1);
}

TEST_CASE("synth support: GgufWriter streams declared tensors", "[model][synth][gguf]") {
  static std::atomic<int> counter{0};
  const auto path =
      std::filesystem::temp_directory_path() /
      ("stream-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".gguf");
  GgufWriter writer;
  writer.set("general.architecture", GgufValue::make_string("test"));
  writer.add_tensor("a", DType::kF32, {3}, std::vector<std::byte>(12, std::byte{1}));
  writer.declare_tensor("b", DType::kQ8_0, {64, 2});
  CHECK_THROWS_AS(writer.serialize(), Error);  // declared tensors need write_streaming
  writer.write_streaming(path, [](size_t index, const GgufWriter::TensorSink& sink) {
    CHECK(index == 1);
    const std::vector<std::byte> half(68, std::byte{2});
    sink(half);
    sink(half);
  });
  {
    const GgufFile file = GgufFile::open(path);
    REQUIRE(file.tensors().size() == 2);
    CHECK(file.tensors()[1].bytes == 136);
    CHECK(file.tensors()[1].data[135] == std::byte{2});
    CHECK(file.tensors()[0].data[0] == std::byte{1});
  }
  // A producer that delivers too few bytes: error, and no file left behind.
  std::filesystem::remove(path);
  CHECK_THROWS_AS(writer.write_streaming(path,
                                         [](size_t, const GgufWriter::TensorSink& sink) {
                                           sink(std::vector<std::byte>(10));
                                         }),
                  Error);
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK_THROWS_AS(writer.write_streaming(path,
                                         [](size_t, const GgufWriter::TensorSink& sink) {
                                           sink(std::vector<std::byte>(200));
                                         }),
                  Error);
  CHECK_FALSE(std::filesystem::exists(path));
}

}  // namespace polyinfer::detail
