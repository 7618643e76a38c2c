#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs every build and test dependency of polyinfer from Debian packages (idempotent).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libfmt-dev nlohmann-json3-dev libpcre2-dev libutf8proc-dev
  libeigen3-dev libdnnl-dev catch2 libbenchmark-dev
  # oneDNN's CMake package looks for OpenCL (a Recommends of libdnnl-dev): without it the
  # configure step fails outright.
  ocl-icd-opencl-dev
)
# Debian's hipcc (HIP 5.2, clang 15) compiles the GPU kernels for AMD GPUs (preset `hip`);
# POLYINFER_WITH_HIP=1 (scripts/test.sh's default) adds it.
if [[ "${POLYINFER_WITH_HIP:-0}" == "1" ]]; then packages+=(hipcc); fi
# clang + compiler-rt give the libFuzzer targets; optional for a plain build.
if [[ "${POLYINFER_WITH_FUZZ:-0}" == "1" ]]; then packages+=(clang libclang-rt-dev); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  echo "setup: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi
