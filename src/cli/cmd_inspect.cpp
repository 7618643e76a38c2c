// SPDX-License-Identifier: Apache-2.0
// polyinfer inspect: architecture, hyper-parameters, tensors, tokenizer and chat template.
#include <polyinfer/polyinfer.hpp>

#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "args.hpp"
#include "commands.hpp"

namespace polyinfer::cli {

namespace {

using nlohmann::ordered_json;

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

const char* flavor_name(TokenizerFlavor flavor) {
  switch (flavor) {
    case TokenizerFlavor::kHuggingFace:
      return "huggingface";
    case TokenizerFlavor::kLlamaCpp:
      return "llama.cpp";
    case TokenizerFlavor::kSentencePiece:
      return "sentencepiece";
  }
  return "unknown";
}

ordered_json config_json(const ModelConfig& c) {
  ordered_json j;
  j["architecture"] = c.architecture;
  j["source_architecture"] = c.source_architecture;
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_layers"] = c.num_layers;
  j["num_heads"] = c.num_heads;
  j["num_kv_heads"] = c.num_kv_heads;
  j["head_dim"] = c.head_dim;
  j["max_positions"] = c.max_positions;
  j["rope_theta"] = c.rope_theta;
  j["rope_interleaved"] = c.rope_interleaved;
  if (!c.rope_scaling.type.empty()) {
    j["rope_scaling"] = {{"type", c.rope_scaling.type},
                         {"factor", c.rope_scaling.factor},
                         {"low_freq_factor", c.rope_scaling.low_freq_factor},
                         {"high_freq_factor", c.rope_scaling.high_freq_factor},
                         {"original_max_positions", c.rope_scaling.original_max_positions}};
  }
  j["norm_eps"] = c.norm_eps;
  j["tie_embeddings"] = c.tie_embeddings;
  j["attention_bias"] = c.attention_bias;
  j["hidden_act"] = c.hidden_act;
  if (c.type_vocab_size > 0) j["type_vocab_size"] = c.type_vocab_size;
  if (!c.labels.empty()) j["labels"] = c.labels;
  j["stored_dtype"] = std::string(dtype_name(c.stored_dtype));
  return j;
}

ordered_json inspect_json(const ModelFile& model) {
  ordered_json j;
  j["path"] = model.path().string();
  j["format"] = model.format() == ModelFormat::kGguf ? "gguf" : "huggingface";
  j["config"] = config_json(model.config());
  uint64_t total_bytes = 0;
  int64_t total_params = 0;
  ordered_json tensors = ordered_json::array();
  for (const TensorInfo& t : model.tensors()) {
    int64_t elements = 1;
    for (const int64_t d : t.shape) elements *= d;
    total_params += elements;
    total_bytes += t.bytes;
    tensors.push_back({{"name", t.name},
                       {"dtype", std::string(dtype_name(t.dtype))},
                       {"shape", t.shape},
                       {"bytes", t.bytes}});
  }
  j["parameters"] = total_params;
  j["weight_bytes"] = total_bytes;
  j["tensors"] = std::move(tensors);
  if (model.has_tokenizer()) {
    const Tokenizer& tok = model.tokenizer();
    j["tokenizer"] = {{"kind", std::string(tok.kind())},
                      {"pre_tokenizer", std::string(tok.pre_tokenizer())},
                      {"flavor", flavor_name(tok.flavor())},
                      {"vocab_size", tok.vocab_size()},
                      {"bos_id", tok.bos_id()},
                      {"eos_id", tok.eos_id()},
                      {"pad_id", tok.pad_id()},
                      {"unk_id", tok.unk_id()}};
  } else {
    j["tokenizer"] = nullptr;
  }
  j["chat_template"] = model.chat_template();
  ordered_json metadata = ordered_json::object();
  for (const auto& [key, value] : model.metadata()) metadata[key] = value;
  j["metadata"] = std::move(metadata);
  return j;
}

void print_text(const ordered_json& j) {
  const auto& c = j["config"];
  std::cout << "file:          " << j["path"].get<std::string>() << "\n"
            << "format:        " << j["format"].get<std::string>() << "\n"
            << "architecture:  " << c["architecture"].get<std::string>() << " ("
            << c["source_architecture"].get<std::string>() << ")\n";
  std::cout << "config:        vocab " << c["vocab_size"] << ", hidden " << c["hidden_size"]
            << ", ffn " << c["intermediate_size"] << ", layers " << c["num_layers"] << ", heads "
            << c["num_heads"] << ", kv heads " << c["num_kv_heads"] << ", head dim "
            << c["head_dim"] << ", context " << c["max_positions"] << "\n";
  std::cout << "               rope theta " << c["rope_theta"]
            << (c["rope_interleaved"].get<bool>() ? " (interleaved pairs)" : " (rotate-half)")
            << ", norm eps " << c["norm_eps"] << ", tied embeddings "
            << (c["tie_embeddings"].get<bool>() ? "yes" : "no") << ", act "
            << c["hidden_act"].get<std::string>() << "\n";
  if (c.contains("labels")) std::cout << "labels:        " << c["labels"].dump() << "\n";
  std::map<std::string, int> types;
  for (const auto& t : j["tensors"]) ++types[t["dtype"].get<std::string>()];
  std::cout << "weights:       " << j["tensors"].size() << " tensors, " << j["parameters"]
            << " parameters, " << j["weight_bytes"] << " bytes;";
  for (const auto& [type, count] : types) std::cout << " " << type << " x" << count;
  std::cout << "\n";
  if (j["tokenizer"].is_null()) {
    std::cout << "tokenizer:     none\n";
  } else {
    const auto& t = j["tokenizer"];
    std::cout << "tokenizer:     " << t["kind"].get<std::string>();
    if (!t["pre_tokenizer"].get<std::string>().empty()) {
      std::cout << " (pre " << t["pre_tokenizer"].get<std::string>() << ")";
    }
    std::cout << ", " << t["flavor"].get<std::string>() << " behaviour, " << t["vocab_size"]
              << " tokens, bos " << t["bos_id"] << ", eos " << t["eos_id"] << "\n";
  }
  const auto chat = j["chat_template"].get<std::string>();
  std::cout << "chat template: " << (chat.empty() ? "none" : std::to_string(chat.size()) + " chars")
            << "\n\ntensors:\n";
  for (const auto& t : j["tensors"]) {
    std::printf("  %-40s %-6s %-18s %llu\n", t["name"].get<std::string>().c_str(),
                t["dtype"].get<std::string>().c_str(),
                shape_text(t["shape"].get<std::vector<int64_t>>()).c_str(),
                static_cast<unsigned long long>(t["bytes"].get<uint64_t>()));
  }
  std::fflush(stdout);
  std::cout << "\nmetadata:\n";
  for (const auto& [key, value] : j["metadata"].items()) {
    std::cout << "  " << key << " = " << value.get<std::string>() << "\n";
  }
}

}  // namespace

int run_inspect(const std::vector<std::string>& argv) {
  const Args args(argv, {"json"}, {});
  if (args.positionals().size() != 1) throw UsageError("expected exactly one MODEL");
  const ModelFile model = ModelFile::open(args.model());
  const ordered_json j = inspect_json(model);
  if (args.flag("json")) {
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    print_text(j);
  }
  return 0;
}

}  // namespace polyinfer::cli
