#!/usr/bin/env bash
# Installs what building Civitas needs on a Debian machine, if missing:
# cmake, clang and libclang (llama.cpp is compiled from source by cargo),
# node and npm (the workspace's front-end packages).
set -euo pipefail

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v clang >/dev/null 2>&1 || missing+=(clang)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
# npm fetches the workspace's front-end packages (scripts/web-assets.sh).
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 && ! ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; then
    missing+=(libclang-dev)
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing build prerequisites: ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=""; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
    echo "warning: python3 with pip is needed to fetch models (civitas models pull)" >&2
fi
