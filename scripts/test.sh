#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Sets up, builds (preset cpu) and runs every test through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset cpu
cmake --build --preset cpu -j "$(nproc)"
ctest --preset cpu -j "$(nproc)" "$@"
