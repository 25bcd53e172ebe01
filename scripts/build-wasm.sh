#!/usr/bin/env bash
# Builds the key manager for JavaScript hosts (docs/manager.md, "In the browser"):
#   web/dist/manager.wasm   GOOS=js GOARCH=wasm, -trimpath -ldflags='-s -w'
#   web/dist/wasm_exec.js   Go's loader, copied from $(go env GOROOT)/lib/wasm
# and prints the raw and gzip -9 sizes. Extra arguments go to go build
# (e.g. -tags, -ldflags). WSCA_WASM_OUT overrides the output directory.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${WSCA_WASM_OUT:-$root/web/dist}"
mkdir -p "$out"
cd "$root"
GOOS=js GOARCH=wasm CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' "$@" -o "$out/manager.wasm.tmp" ./web/wasm
mv "$out/manager.wasm.tmp" "$out/manager.wasm"
cp "$(go env GOROOT)/lib/wasm/wasm_exec.js" "$out/wasm_exec.js"
raw=$(wc -c <"$out/manager.wasm")
gz=$(gzip -9 -c "$out/manager.wasm" | wc -c)
echo "build-wasm: $out/manager.wasm raw $raw bytes, gzip -9 $gz bytes"
