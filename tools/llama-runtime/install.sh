#!/usr/bin/env bash
# Install llama.cpp's prebuilt CPU build (node-llama-cpp, from the npm registry) into DEST, for the
# tests that run memtune's GGUF exports in llama.cpp itself. Nothing is compiled. Without npm it
# says so and exits 0: those tests then skip (CI sets MEMTUNE_REQUIRE_LLAMA_CPP=1 to fail instead).
set -euo pipefail
DEST=${1:?usage: install.sh DEST}
HERE=$(cd "$(dirname "$0")" && pwd)
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "llama-runtime: node/npm not found; the llama.cpp runtime tests will skip"
  exit 0
fi
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "llama-runtime: prebuilt runtime pinned for Linux x86_64 only; the llama.cpp runtime tests will skip"
  exit 0
fi
mkdir -p "$DEST"
cp "$HERE/package.json" "$HERE/package-lock.json" "$HERE/generate.mjs" "$DEST/"
# (npm install, not ci: npm ci rejects a lock whose optional per-platform builds were not all resolved)
# --omit=optional: only the CPU build (the CUDA/Vulkan builds are hundreds of MB); no install scripts
# (they would try to download or build llama.cpp)
(cd "$DEST" && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error)
touch "$DEST/.installed"
echo "llama-runtime: installed in $DEST"
