// SPDX-License-Identifier: Apache-2.0
// polyinfer command-line tool: dispatch, and the exit-status contract (0 ok, 2 usage, 1 error).
#include <polyinfer/polyinfer.hpp>

#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "args.hpp"
#include "commands.hpp"

namespace {

constexpr std::string_view kUsage = R"(usage: polyinfer COMMAND [ARGS]

MODEL is a .gguf file, a vocabulary-only .gguf, or a Hugging Face folder.

  inspect    MODEL [--json]                          architecture, tensors, tokenizer, template
  tokenize   MODEL (--text T | --file F) [--special]  token ids, space separated, one line
  detokenize MODEL IDS...                            text of the ids
  logits     MODEL --ids "1 2 3" --out F.safetensors [--tier TIER] [--device D]
                                                     f32 tensor "logits" [tokens, vocab]
  generate   MODEL --prompt P [--max-tokens N] [--greedy | --temperature T --top-p P --seed S]
             [--top-k K] [--min-p P] [--repeat-penalty R] [--stop S] [--ignore-eos] [--json]
             [--tier TIER] [--device D]              text, streamed as it is generated
  embed      MODEL --text T [--pooling mean|cls|pooler] [--json] [--tier TIER]
                                                     BERT: pooled embedding, floats on one line
  classify   MODEL --text T [--json] [--tier TIER]   BERT classifier: label, then each
                                                     label's probability

  workload   --config ENGINE.json --trace TRACE.jsonl [--json] [--realtime | --fast] [--limit N]
                                                     replay a request trace through the Engine:
                                                     accuracy, cost, latency, cache hits

  bench      MODEL [-p 512] [-n 128] [-t THREADS] [-r 3] [--json] [--tier TIER] [--device D]
                                                     prompt and generation tokens/s, peak RSS
  synth      (--shape NAME | --dims H,L,FFN,HEADS,KV,VOCAB) [--arch llama|qwen2] --type TYPE
             --out F.gguf [--seed S] [--threads N] [--json] [--list]
                                                     random weights of a real model shape
  convert    MODEL --type TYPE --out F.gguf [--tokenizer auto|hf|ggml] [--name NAME]
             [--threads N] [--json]
                                                     Hugging Face folder → GGUF (llama.cpp layout)

  TIER: native, f32, f16, q8_0, q4_0, q4_k.
  TYPE: f32, f16, bf16, q8_0, q4_0, q4_k, q4_k_m (llama.cpp's Q4_K_M mix).  D: cpu, cuda[:N] (CUDA or HIP builds), hip[:N] (HIP builds).
  Models also take --threads N (0: all cores); decoders --ctx N (context length).

  --version, --help
)";

struct Command {
  std::string_view name;
  int (*run)(const std::vector<std::string>&);
};

constexpr Command kCommands[] = {
    {"inspect", polyinfer::cli::run_inspect},       {"tokenize", polyinfer::cli::run_tokenize},
    {"detokenize", polyinfer::cli::run_detokenize}, {"logits", polyinfer::cli::run_logits},
    {"generate", polyinfer::cli::run_generate},     {"embed", polyinfer::cli::run_embed},
    {"classify", polyinfer::cli::run_classify},     {"bench", polyinfer::cli::run_bench},
    {"synth", polyinfer::cli::run_synth},           {"convert", polyinfer::cli::run_convert},
    {"workload", polyinfer::cli::run_workload},
};

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    std::cout << "polyinfer " << polyinfer::version() << "\n";
    return 0;
  }
  for (const Command& command : kCommands) {
    if (command.name != args[0]) continue;
    try {
      return command.run({args.begin() + 1, args.end()});
    } catch (const polyinfer::cli::UsageError& e) {
      std::cerr << "polyinfer " << command.name << ": " << e.what() << "\n"
                << "run 'polyinfer --help' for usage\n";
      return 2;
    } catch (const polyinfer::Error& e) {
      std::cerr << "polyinfer " << command.name << ": error: " << e.what() << "\n";
      return 1;
    } catch (const std::exception& e) {
      std::cerr << "polyinfer " << command.name << ": error: " << e.what() << "\n";
      return 1;
    }
  }
  std::cerr << "polyinfer: unknown command '" << args[0] << "'\nrun 'polyinfer --help' for usage\n";
  return 2;
}
