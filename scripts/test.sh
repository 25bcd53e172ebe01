#!/usr/bin/env bash
# The test command (README: `make test` or `./scripts/test.sh`; .ci/run calls this).
#
# 1. installs softhsm2 / opensc / postgresql / gcc when missing (as root, via apt-get),
# 2. starts a throwaway SoftHSM token and PostgreSQL cluster (torn down on exit),
# 3. runs gofmt -l, go vet, staticcheck (pinned, installed if possible),
# 4. builds the wallet-side packages (internal/walletside/packages.txt) with CGO_ENABLED=0
#    and for GOOS=js GOARCH=wasm, vets and tests the js/wasm-only code under Node
#    (always, also with WSCA_SKIP_LINT=1), and
# 5. runs go test -race -count=1 -timeout 12m ./...
#
# Arguments replace what follows `go test -race -count=1`:
#     scripts/test.sh                              -> go test -race -count=1 -timeout 12m ./...
#     scripts/test.sh -run Foo ./device/...        -> go test -race -count=1 -run Foo ./device/... -timeout 12m
#     scripts/test.sh -v -run TestX                -> ... -v -run TestX -timeout 12m ./...
# (./... is added when no package argument (./x, ., github.com/wsca/wsca/...) is given, and
#  -timeout 12m when no -timeout is given. Package paths are relative to the repo root.)
#
# Environment:
#     WSCA_TEST_SETUP_ONLY=1   set up, print the variables (PINs redacted), check the token with
#                              pkcs11-tool and the cluster with psql, clean up; run no Go at all
#     WSCA_SKIP_LINT=1         skip gofmt / go vet / staticcheck
#     WSCA_SKIP_STATICCHECK=1  skip only staticcheck (and its install)
#
# Exported to the Go tests:
#     SOFTHSM2_CONF, WSCA_TEST_PKCS11_URI, WSCA_TEST_PKCS11_MODULE, WSCA_TEST_PKCS11_TOKEN,
#     WSCA_TEST_PKCS11_PIN, WSCA_TEST_PKCS11_SO_PIN, WSCA_TEST_POSTGRES_DSN,
#     WSCA_TEST_REQUIRE=pkcs11,postgres,node
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WSCA_ROOT"

start=$SECONDS
wsca_ensure_tools
if [ "${WSCA_TEST_SETUP_ONLY:-0}" = "1" ]; then
	wsca_setup_env
	wsca_log "exported:"
	wsca_print_env
	wsca_verify_env
	wsca_teardown
	echo "scripts/test.sh: setup OK (WSCA_TEST_SETUP_ONLY=1: token and cluster verified, no Go checks run)"
	exit 0
fi

wsca_log "$(go version)"

# Static checks first (no services needed). Failures are reported, tests still run.
lint_failed=""
checks="go test -race"
sc="-"
if [ "${WSCA_SKIP_LINT:-0}" != "1" ]; then
	if [ "${WSCA_SKIP_STATICCHECK:-0}" != "1" ]; then
		sc="$(wsca_ensure_staticcheck)"
		[ -n "$sc" ] || sc="-"
	fi
	wsca_lint "$sc" || lint_failed="$WSCA_LINT_FAILED"
	if [ "$sc" = "-" ]; then checks="gofmt, vet, $checks (no staticcheck)"; else checks="gofmt, vet, staticcheck, $checks"; fi
fi

# The wallet side builds without cgo and for js/wasm. A failure is reported, tests still run.
wallet_failed=""
wsca_wallet_build || wallet_failed="wallet-side build (CGO_ENABLED=0, js/wasm)"
checks="$checks, wallet-side build (CGO_ENABLED=0, js/wasm)"
wsca_wasm_tests "$sc" || wallet_failed="${wallet_failed:+$wallet_failed; }js/wasm tests under Node"
checks="$checks, js/wasm tests under Node"

wsca_setup_env
wsca_print_env

if [ $# -gt 0 ]; then
	args=("$@")
else
	args=()
fi
wsca_args_have_flag -timeout "${args[@]+"${args[@]}"}" || args+=(-timeout 12m)
wsca_args_have_pkg "${args[@]+"${args[@]}"}" || args+=(./...)

wsca_log "go test -race -count=1 ${args[*]}"
set +e
go test -race -count=1 "${args[@]}"
test_rc=$?
set -e
wsca_teardown

elapsed=$((SECONDS - start))
if [ "$test_rc" -eq 0 ] && [ -z "$lint_failed" ] && [ -z "$wallet_failed" ]; then
	echo "scripts/test.sh: PASS ($checks) in ${elapsed}s"
	exit 0
fi
why=""
[ -n "$lint_failed" ] && why="static checks failed: $lint_failed"
[ -n "$wallet_failed" ] && why="${why:+$why; }$wallet_failed failed"
if [ "$test_rc" -ne 0 ]; then
	why="${why:+$why; }go test exited $test_rc"
fi
echo "scripts/test.sh: FAIL ($why) in ${elapsed}s"
[ "$test_rc" -ne 0 ] && exit "$test_rc"
exit 1
