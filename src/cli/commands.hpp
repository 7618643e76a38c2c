// SPDX-License-Identifier: Apache-2.0
// The polyinfer subcommands: each takes the arguments after its name and returns the exit status.
#pragma once

#include <string>
#include <vector>

namespace polyinfer::cli {

int run_inspect(const std::vector<std::string>& argv);
int run_tokenize(const std::vector<std::string>& argv);
int run_detokenize(const std::vector<std::string>& argv);
int run_logits(const std::vector<std::string>& argv);
int run_generate(const std::vector<std::string>& argv);
int run_embed(const std::vector<std::string>& argv);
int run_classify(const std::vector<std::string>& argv);
int run_bench(const std::vector<std::string>& argv);
int run_synth(const std::vector<std::string>& argv);
int run_convert(const std::vector<std::string>& argv);
int run_workload(const std::vector<std::string>& argv);

}  // namespace polyinfer::cli
