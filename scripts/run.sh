#!/usr/bin/env bash
# The run command (README: `make run` or `./scripts/run.sh [wscad flags...]`).
# Builds cmd/wscad into bin/ and execs it with the given arguments. The current
# directory is kept, so relative paths in the arguments mean what you expect.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command -v go >/dev/null 2>&1 ||
	{ echo "ERROR: 'go' not found in PATH. Install Go 1.26 or newer." >&2; exit 1; }
mkdir -p "$ROOT/bin"
version="$(git -C "$ROOT" describe --tags --always --dirty 2>/dev/null || echo dev)"
go -C "$ROOT" build -ldflags "-X main.version=$version" -o "$ROOT/bin/wscad" ./cmd/wscad
exec "$ROOT/bin/wscad" "$@"
