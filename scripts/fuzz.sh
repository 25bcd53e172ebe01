#!/usr/bin/env bash
# Long fuzzing, separate from the tests: runs every `func Fuzz...` found in *_test.go
# files, one after another, each for FUZZTIME (default 60s), with the same throwaway
# SoftHSM token and PostgreSQL cluster as the tests.
#
#     scripts/fuzz.sh                       -> every fuzz target, 60s each
#     FUZZTIME=10m FUZZ=URI scripts/fuzz.sh -> only targets whose name matches the regexp URI
#     scripts/fuzz.sh -parallel 1           -> arguments are extra go test flags for every run
#
# New failing inputs are written by go test to <pkg>/testdata/fuzz/<FuzzName>/ (commit them:
# they become regression cases run by the normal tests).
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WSCA_ROOT"

fuzztime="${FUZZTIME:-60s}"
filter="${FUZZ:-.}"

# "dir name" pairs, one per line.
targets="$(
	grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . 2>/dev/null |
		grep -vE '(^|/)(vendor|testdata|\.git)/' |
		sed -E 's|^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($|\1 \2|' |
		sort -u || true
)"
selected=""
while read -r dir name; do
	[ -n "$name" ] && [[ "$name" =~ $filter ]] && selected+="$dir $name"$'\n'
done <<<"$targets"
if [ -z "$selected" ]; then
	echo "scripts/fuzz.sh: no fuzz targets (func Fuzz... matching '$filter') found"
	exit 0
fi

wsca_ensure_tools
wsca_setup_env
wsca_print_env

passed=0
failed=0
failed_names=()
while read -r dir name; do
	[ -n "$name" ] || continue
	wsca_log "fuzz $dir $name for $fuzztime"
	if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$@" "$dir" </dev/null; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failed_names+=("$dir.$name")
	fi
done <<<"$selected"
wsca_teardown

if [ "$failed" -gt 0 ]; then
	printf '!!! failed: %s\n' "${failed_names[@]}" >&2
fi
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
