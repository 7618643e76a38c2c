// SPDX-License-Identifier: Apache-2.0
// Downstream consumer: opens a model folder through the installed public API and tokenizes.
#include <polyinfer/polyinfer.hpp>

#include <cstdlib>
#include <filesystem>
#include <iostream>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: polyinfer_consumer MODEL\n";
    return 2;
  }
  const std::filesystem::path model_path = argv[1];
  if (!std::filesystem::exists(model_path)) {
    // Without fixtures there is nothing to load; under CI that is a failure.
    std::cerr << "fixture missing: " << model_path << "\n";
    return std::getenv("CI") != nullptr ? 1 : 0;
  }
  try {
    const auto model = polyinfer::ModelFile::open(model_path);
    const auto& tokenizer = model.tokenizer();
    const auto ids = tokenizer.encode("Hello world", {.add_special = true});
    const std::string text = tokenizer.decode(ids, {.skip_special = true});
    std::cout << "polyinfer " << polyinfer::version() << ": " << model.config().architecture << ", "
              << model.tensors().size() << " tensors, \"" << text << "\" -> " << ids.size()
              << " ids\n";
    if (ids.empty() || text != "Hello world" || model.tensors().empty()) return 1;
  } catch (const polyinfer::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
