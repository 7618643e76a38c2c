// SPDX-License-Identifier: Apache-2.0
// polyinfer command-line tool: entry point and command dispatch.
#include <polyinfer/polyinfer.hpp>

#include <iostream>

int main() {
  std::cout << "polyinfer " << polyinfer::version() << "\n";
  return 0;
}
