#!/usr/bin/env bash
# Benchmarks against the same throwaway SoftHSM token and PostgreSQL cluster as the tests.
#
#     scripts/bench.sh                      -> all benchmarks in ./..., 5 runs each, into bench.txt
#     BENCH=Sign COUNT=10 scripts/bench.sh ./device/...
#     OUT=new.txt scripts/bench.sh && benchstat bench.txt new.txt
#
# Environment: BENCH (-bench regexp, default .), COUNT (default 5), OUT (default bench.txt),
# BENCH_TIMEOUT (go test -timeout, default 60m). Arguments are extra go test flags and/or
# packages (./... is added when no package is given).
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WSCA_ROOT"

out="${OUT:-bench.txt}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

wsca_ensure_tools
wsca_setup_env
wsca_print_env

if [ $# -gt 0 ]; then args=("$@"); else args=(); fi
wsca_args_have_flag -timeout "${args[@]+"${args[@]}"}" || args+=(-timeout "${BENCH_TIMEOUT:-60m}")
wsca_args_have_pkg "${args[@]+"${args[@]}"}" || args+=(./...)

cpu="$(LC_ALL=C lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n1 || true)"
[ -n "$cpu" ] || cpu="$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n1 || true)"
pgver="$("$WSCA_PG_BIN/postgres" --version 2>/dev/null || true)"
{
	# key: value lines are kept by benchstat as configuration.
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	echo "nproc: $(nproc)"
	echo "cpu-model: ${cpu:-unknown}"
	echo "go-version: $(go version)"
	echo "softhsm-version: $(softhsm2-util --version 2>/dev/null || echo unknown)"
	echo "postgres-version: ${pgver:-unknown}"
	echo "bench-command: go test -run '^\$' -bench '${BENCH:-.}' -benchmem -count ${COUNT:-5} ${args[*]}"
	echo
} >"$out"

wsca_log "benchmarks -> $out"
set +e
go test -run '^$' -bench "${BENCH:-.}" -benchmem -count "${COUNT:-5}" "${args[@]}" 2>&1 | tee -a "$out"
rc=${PIPESTATUS[0]}
set -e
wsca_teardown

if [ "$rc" -eq 0 ] && command -v benchstat >/dev/null 2>&1; then
	echo
	benchstat "$out" || true
elif [ "$rc" -eq 0 ]; then
	wsca_log "benchstat not installed (go install golang.org/x/perf/cmd/benchstat@latest); raw results in $out"
fi
if [ "$rc" -eq 0 ]; then
	echo "scripts/bench.sh: OK, results in $out"
else
	echo "scripts/bench.sh: FAIL (go test exited $rc), partial results in $out"
fi
exit "$rc"
