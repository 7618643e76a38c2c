#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Sets up, builds (preset cpu) and runs the main demo on the default models.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset cpu -DPOLYINFER_BUILD_EXAMPLES=ON
cmake --build --preset cpu -j "$(nproc)" --target polyinfer_cli financial_pipeline cascade semantic_cache
exec scripts/run_demo.sh
