# shellcheck shell=bash
# Shared shell functions for scripts/test.sh, scripts/bench.sh and scripts/fuzz.sh.
#
# Source it from a bash script that runs with `set -euo pipefail`:
#
#     . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# What it provides:
#   wsca_ensure_tools   install softhsm2/opensc/postgresql/gcc/nodejs/npm/chromium when missing (root) or fail
#                       clearly, then the npm packages of interop/ and web/browser/ (wsca_ensure_interop)
#   wsca_setup_env      throwaway SoftHSM token + PostgreSQL cluster, exports WSCA_TEST_*,
#                       and installs an EXIT trap that tears both down again
#   wsca_print_env      print the exported variables (PIN redacted)
#   wsca_verify_env     check the token (pkcs11-tool) and the cluster (psql) really answer
#   wsca_lint           gofmt -l, go vet, staticcheck (when installed)
#   wsca_ensure_staticcheck  go install a pinned staticcheck; never fails the caller
#   wsca_wallet_build   build the wallet-side packages without cgo and for js/wasm
#   wsca_wasm_tests     go vet and go test the js/wasm-only code (manager/jsbridge) under Node

# Repository root (this file lives in <root>/scripts).
WSCA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Pinned staticcheck release: v0.8.2 == staticcheck 2026.2.2, which supports go1.26.
WSCA_STATICCHECK_VERSION="${WSCA_STATICCHECK_VERSION:-v0.8.2}"

WSCA_TOKEN_LABEL="wsca-test"

# State of the throwaway environment (filled in by wsca_setup_env).
WSCA_ENV_DIR=""
WSCA_PG_BIN=""
WSCA_PG_BASE=""
WSCA_PG_DATA=""
WSCA_PG_LOG=""
WSCA_CLEANED=0

wsca_log() { printf '==> %s\n' "$*" >&2; }
wsca_warn() { printf '!!! %s\n' "$*" >&2; }
wsca_die() {
	printf 'ERROR: %s\n' "$*" >&2
	exit 1
}

wsca_is_root() { [ "$(id -u)" -eq 0 ]; }

# Newest PostgreSQL server bin dir (/usr/lib/postgresql/<ver>/bin), or empty.
wsca_find_pg_bin() {
	local d
	d="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | while IFS= read -r d; do
		[ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && printf '%s\n' "$d"
	done | tail -n1)"
	printf '%s' "$d"
}

# SoftHSM PKCS#11 module path, or empty.
wsca_find_softhsm_module() {
	local c
	for c in /usr/lib/softhsm/libsofthsm2.so \
		"/usr/lib/$(uname -m)-linux-gnu/softhsm/libsofthsm2.so" \
		/usr/lib64/softhsm/libsofthsm2.so \
		/usr/lib64/pkcs11/libsofthsm2.so \
		/usr/local/lib/softhsm/libsofthsm2.so; do
		if [ -f "$c" ]; then
			printf '%s' "$c"
			return 0
		fi
	done
	return 0
}

wsca_require_go() {
	command -v go >/dev/null 2>&1 ||
		wsca_die "'go' not found in PATH. Install Go 1.26 or newer (https://go.dev/dl/) and make sure 'go' is on PATH."
}

# Install whatever the tests need and is missing. As root: apt-get (update once, then
# install). Not root: fail with a message naming the packages to install.
wsca_ensure_tools() {
	wsca_require_go
	local pkgs=() cc
	command -v softhsm2-util >/dev/null 2>&1 || pkgs+=(softhsm2)
	command -v pkcs11-tool >/dev/null 2>&1 || pkgs+=(opensc)
	[ -n "$(wsca_find_pg_bin)" ] || pkgs+=(postgresql)
	# cgo (miekg/pkcs11) and -race need a C compiler and libc headers.
	cc="$(go env CC 2>/dev/null || true)"
	cc="${cc%% *}"
	command -v "${cc:-gcc}" >/dev/null 2>&1 || pkgs+=(gcc libc6-dev)
	# interop: the independent Node wallet of interop/ (see interop/README.md).
	command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
	command -v npm >/dev/null 2>&1 || pkgs+=(npm)
	# web/browser: Debian's chromium, driven by playwright-core (never a downloaded browser).
	[ -x "${WSCA_CHROMIUM:-/usr/bin/chromium}" ] || pkgs+=(chromium)
	if [ ${#pkgs[@]} -eq 0 ]; then
		wsca_ensure_interop
		return 0
	fi
	if ! wsca_is_root; then
		wsca_die "missing tools; install them first, e.g.:
    sudo apt-get update && sudo apt-get install -y --no-install-recommends ${pkgs[*]}
(needed: softhsm2-util from softhsm2, pkcs11-tool from opensc, initdb/pg_ctl from postgresql, a C compiler for cgo and -race,
 node and npm for the interop tests, chromium for the browser tests)"
	fi
	command -v apt-get >/dev/null 2>&1 ||
		wsca_die "missing packages (${pkgs[*]}) and no apt-get to install them with; install them by hand"
	wsca_log "installing missing packages: ${pkgs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	local apt_opts=(-o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
	apt-get "${apt_opts[@]}" update </dev/null || wsca_die "apt-get update failed"
	apt-get "${apt_opts[@]}" install -y --no-install-recommends "${pkgs[@]}" </dev/null ||
		wsca_die "apt-get install ${pkgs[*]} failed"
	command -v softhsm2-util >/dev/null 2>&1 || wsca_die "softhsm2-util still missing after install"
	command -v pkcs11-tool >/dev/null 2>&1 || wsca_die "pkcs11-tool still missing after install"
	[ -n "$(wsca_find_pg_bin)" ] || wsca_die "PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb) still missing after install"
	[ -x "${WSCA_CHROMIUM:-/usr/bin/chromium}" ] || wsca_die "chromium still missing after install"
	wsca_ensure_interop
}

# interop: install the Node wallet's pinned packages (interop/package-lock.json) into
# interop/node_modules, where interop/interop_test.go looks for them.
wsca_ensure_interop() {
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		wsca_die "node and npm are required for the interop tests (Debian: apt-get install nodejs npm)"
	fi
	wsca_log "npm ci --prefix interop ($(node --version))"
	npm ci --prefix "$WSCA_ROOT/interop" --no-audit --no-fund --loglevel=error </dev/null >/dev/null ||
		wsca_die "npm ci --prefix interop failed"
	# web/browser: playwright-core (pinned in web/browser/package-lock.json) drives Debian's chromium.
	wsca_log "npm ci --prefix web/browser"
	npm ci --prefix "$WSCA_ROOT/web/browser" --no-audit --no-fund --loglevel=error </dev/null >/dev/null ||
		wsca_die "npm ci --prefix web/browser failed"
}

# Random hex string of $1 bytes.
wsca_random_hex() {
	od -An -N"${1:-8}" -tx1 /dev/urandom | tr -d ' \n'
}

# Percent-encode $1 for a PKCS#11 URI. $2 = extra characters allowed unencoded.
wsca_pct_encode() {
	local s="$1" allowed="${2:-}" out="" c i
	local LC_ALL=C
	for ((i = 0; i < ${#s}; i++)); do
		c="${s:i:1}"
		case "$c" in
		[A-Za-z0-9._~-]) out+="$c" ;;
		*)
			if [ -n "$allowed" ] && [[ "$allowed" == *"$c"* ]]; then
				out+="$c"
			else
				out+="$(printf '%%%02X' "'$c")"
			fi
			;;
		esac
	done
	printf '%s' "$out"
}

# Run a command as the PostgreSQL owner: 'postgres' when we are root (initdb and
# pg_ctl refuse root), else the current user.
wsca_as_pg() {
	if wsca_is_root; then
		if command -v runuser >/dev/null 2>&1; then
			(cd "$WSCA_ENV_DIR" && runuser -u postgres -- "$@")
		else
			local q
			q="$(printf '%q ' "$@")"
			(cd "$WSCA_ENV_DIR" && su postgres -s /bin/sh -c "$q")
		fi
	else
		"$@"
	fi
}

# Is something already listening on 127.0.0.1:$1?
wsca_port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wsca_pick_port() {
	local p i
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		if ! wsca_port_busy "$p"; then
			printf '%s' "$p"
			return 0
		fi
	done
	wsca_die "could not find a free TCP port on 127.0.0.1"
}

wsca_setup_softhsm() {
	local module so_pin pin
	module="$(wsca_find_softhsm_module)"
	[ -n "$module" ] || wsca_die "libsofthsm2.so not found (looked in /usr/lib/softhsm and /usr/lib/$(uname -m)-linux-gnu/softhsm); install softhsm2"
	mkdir -p "$WSCA_ENV_DIR/tokens"
	cat >"$WSCA_ENV_DIR/softhsm2.conf" <<EOF
directories.tokendir = $WSCA_ENV_DIR/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
slots.mechanisms = ALL
library.reset_on_fork = false
EOF
	export SOFTHSM2_CONF="$WSCA_ENV_DIR/softhsm2.conf"
	so_pin="$(wsca_random_hex 8)"
	pin="$(wsca_random_hex 8)"
	softhsm2-util --init-token --free --label "$WSCA_TOKEN_LABEL" --so-pin "$so_pin" --pin "$pin" </dev/null >"$WSCA_ENV_DIR/softhsm-init.log" 2>&1 || {
		cat "$WSCA_ENV_DIR/softhsm-init.log" >&2
		wsca_die "softhsm2-util --init-token failed"
	}
	export WSCA_TEST_PKCS11_MODULE="$module"
	export WSCA_TEST_PKCS11_TOKEN="$WSCA_TOKEN_LABEL"
	export WSCA_TEST_PKCS11_PIN="$pin"
	export WSCA_TEST_PKCS11_SO_PIN="$so_pin"
	# RFC 7512: path attributes (';'-separated) before '?', query attributes ('&'-separated) after.
	WSCA_TEST_PKCS11_URI="pkcs11:token=$(wsca_pct_encode "$WSCA_TOKEN_LABEL")?module-path=$(wsca_pct_encode "$module" /)&pin-value=$(wsca_pct_encode "$pin")"
	export WSCA_TEST_PKCS11_URI
}

wsca_setup_postgres() {
	WSCA_PG_BIN="$(wsca_find_pg_bin)"
	[ -n "$WSCA_PG_BIN" ] || wsca_die "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb); install postgresql"
	WSCA_PG_BASE="$WSCA_ENV_DIR/pg"
	WSCA_PG_DATA="$WSCA_PG_BASE/data"
	WSCA_PG_LOG="$WSCA_PG_BASE/pg.log"
	mkdir -p "$WSCA_PG_BASE"
	if wsca_is_root; then
		if ! id postgres >/dev/null 2>&1; then
			wsca_log "creating system user 'postgres' (initdb refuses to run as root)"
			useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin postgres ||
				wsca_die "could not create user 'postgres'"
		fi
		# The postgres user must reach $WSCA_PG_BASE: make the work dir traversable.
		chmod 0755 "$WSCA_ENV_DIR"
		chown postgres: "$WSCA_PG_BASE"
	fi
	chmod 0700 "$WSCA_PG_BASE"
	wsca_as_pg "$WSCA_PG_BIN/initdb" -D "$WSCA_PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C \
		</dev/null >"$WSCA_ENV_DIR/initdb.log" 2>&1 || {
		cat "$WSCA_ENV_DIR/initdb.log" >&2
		wsca_die "initdb failed"
	}
	# Throwaway cluster: speed over durability. (Root may write the postgres-owned file.)
	cat >>"$WSCA_PG_DATA/postgresql.conf" <<EOF

# --- wsca throwaway test cluster ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$WSCA_PG_BASE'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
	local port attempt
	for attempt in 1 2 3 4 5; do
		port="$(wsca_pick_port)"
		: >"$WSCA_PG_LOG" 2>/dev/null || true
		[ -e "$WSCA_PG_LOG" ] && wsca_is_root && chown postgres: "$WSCA_PG_LOG"
		if wsca_as_pg "$WSCA_PG_BIN/pg_ctl" -D "$WSCA_PG_DATA" -o "-p $port" -l "$WSCA_PG_LOG" -w -t 60 start \
			</dev/null >"$WSCA_ENV_DIR/pg_ctl.log" 2>&1; then
			break
		fi
		# Started half-way? Make sure nothing is left behind before retrying.
		wsca_stop_postgres
		if grep -qiE 'could not bind|address already in use' "$WSCA_PG_LOG" 2>/dev/null && [ "$attempt" -lt 5 ]; then
			wsca_warn "port $port taken, retrying with another port"
			continue
		fi
		cat "$WSCA_ENV_DIR/pg_ctl.log" >&2 || true
		wsca_warn "tail of $WSCA_PG_LOG:"
		tail -n 40 "$WSCA_PG_LOG" >&2 || true
		wsca_die "could not start the throwaway PostgreSQL cluster"
	done
	export WSCA_TEST_POSTGRES_DSN="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
}

# Is $1 a live (not zombie) process? An exited postmaster is reparented to init and
# may linger as a zombie for a moment.
wsca_pid_alive() {
	local state
	kill -0 "$1" 2>/dev/null || return 1
	state="$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null || true)"
	[ "$state" != "Z" ] && [ "$state" != "X" ]
}

wsca_stop_postgres() {
	[ -n "$WSCA_PG_DATA" ] && [ -f "$WSCA_PG_DATA/postmaster.pid" ] || return 0
	local pid
	pid="$(head -n1 "$WSCA_PG_DATA/postmaster.pid" 2>/dev/null || true)"
	wsca_as_pg "$WSCA_PG_BIN/pg_ctl" -D "$WSCA_PG_DATA" -m fast -w -t 30 stop </dev/null >/dev/null 2>&1 ||
		wsca_as_pg "$WSCA_PG_BIN/pg_ctl" -D "$WSCA_PG_DATA" -m immediate -w -t 15 stop </dev/null >/dev/null 2>&1 ||
		true
	if [ -n "$pid" ] && wsca_pid_alive "$pid"; then
		wsca_warn "PostgreSQL (pid $pid) did not stop; killing it"
		kill -KILL "$pid" 2>/dev/null || true
		sleep 1
	fi
}

# Teardown: stop PostgreSQL, remove the work dir. Idempotent; scripts may call it
# before printing their final line, the EXIT trap calls it again (as a no-op).
wsca_teardown() {
	[ "$WSCA_CLEANED" -eq 0 ] || return 0
	WSCA_CLEANED=1
	if [ -n "$WSCA_ENV_DIR" ] && [ -d "$WSCA_ENV_DIR" ]; then
		wsca_stop_postgres
		rm -rf -- "$WSCA_ENV_DIR"
		if [ -d "$WSCA_ENV_DIR" ]; then
			wsca_warn "could not remove $WSCA_ENV_DIR"
		else
			wsca_log "stopped the throwaway PostgreSQL cluster, removed $WSCA_ENV_DIR"
		fi
	fi
	return 0
}

# EXIT trap: teardown, keeping the script's exit status.
wsca_cleanup() {
	local rc=$?
	set +e
	wsca_teardown
	exit "$rc"
}

# Create the throwaway SoftHSM token and PostgreSQL cluster and export:
#   SOFTHSM2_CONF, WSCA_TEST_PKCS11_{URI,MODULE,TOKEN,PIN,SO_PIN},
#   WSCA_TEST_POSTGRES_DSN, WSCA_TEST_REQUIRE=pkcs11,postgres,node,chromium
# Both are torn down by an EXIT trap (also on INT/TERM and on failure).
wsca_setup_env() {
	WSCA_ENV_DIR="$(mktemp -d "${TMPDIR:-/tmp}/wsca-test.XXXXXXXXXX")"
	trap wsca_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	wsca_log "throwaway environment in $WSCA_ENV_DIR"
	wsca_setup_softhsm
	wsca_setup_postgres
	export WSCA_TEST_REQUIRE="pkcs11,postgres,node,chromium" # node: interop/; chromium: web/browser/
}

wsca_print_env() {
	local pin_red="<redacted>"
	printf '  %s=%s\n' \
		SOFTHSM2_CONF "$SOFTHSM2_CONF" \
		WSCA_TEST_PKCS11_URI "${WSCA_TEST_PKCS11_URI//$WSCA_TEST_PKCS11_PIN/$pin_red}" \
		WSCA_TEST_PKCS11_MODULE "$WSCA_TEST_PKCS11_MODULE" \
		WSCA_TEST_PKCS11_TOKEN "$WSCA_TEST_PKCS11_TOKEN" \
		WSCA_TEST_PKCS11_PIN "$pin_red" \
		WSCA_TEST_PKCS11_SO_PIN "$pin_red" \
		WSCA_TEST_POSTGRES_DSN "$WSCA_TEST_POSTGRES_DSN" \
		WSCA_TEST_REQUIRE "$WSCA_TEST_REQUIRE" >&2
}

# Prove the token and the cluster work, with the stock client tools.
wsca_verify_env() {
	local psql
	wsca_log "pkcs11-tool: login to token '$WSCA_TEST_PKCS11_TOKEN' and list objects"
	pkcs11-tool --module "$WSCA_TEST_PKCS11_MODULE" --token-label "$WSCA_TEST_PKCS11_TOKEN" \
		--login --pin "$WSCA_TEST_PKCS11_PIN" --list-objects </dev/null ||
		wsca_die "pkcs11-tool could not log in to the throwaway token"
	psql="$(command -v psql || true)"
	[ -n "$psql" ] || psql="$WSCA_PG_BIN/psql"
	wsca_log "psql: select version()"
	"$psql" "$WSCA_TEST_POSTGRES_DSN" -X -A -t -c 'select version()' </dev/null ||
		wsca_die "psql could not query the throwaway PostgreSQL cluster"
}

# Go files to gofmt: tracked plus untracked-but-not-ignored, minus testdata/ and vendor/.
wsca_go_files() {
	(
		cd "$WSCA_ROOT" || exit 1
		if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
			git ls-files --cached --others --exclude-standard -- '*.go'
		else
			find . -name '*.go' -not -path './.git/*' | sed 's|^\./||'
		fi
	) | grep -vE '(^|/)(testdata|vendor)/' | sort -u | while IFS= read -r f; do
		[ -f "$WSCA_ROOT/$f" ] && printf '%s\n' "$f"
	done
}

# An installed staticcheck (PATH, then GOBIN / GOPATH/bin), or empty.
wsca_find_staticcheck() {
	local gobin
	if command -v staticcheck >/dev/null 2>&1; then
		command -v staticcheck
		return 0
	fi
	gobin="$(go env GOBIN)"
	[ -n "$gobin" ] || gobin="$(go env GOPATH | cut -d: -f1)/bin"
	[ -x "$gobin/staticcheck" ] && printf '%s' "$gobin/staticcheck"
	return 0
}

# go install the pinned staticcheck unless that version is already installed.
# Prints the binary path on success; prints nothing (and returns 0) when it can't.
wsca_ensure_staticcheck() {
	local gobin sc want
	gobin="$(go env GOBIN)"
	[ -n "$gobin" ] || gobin="$(go env GOPATH | cut -d: -f1)/bin"
	sc="$gobin/staticcheck"
	want="(${WSCA_STATICCHECK_VERSION#v})"
	if [ -x "$sc" ] && "$sc" -version 2>/dev/null | grep -qF "$want"; then
		printf '%s' "$sc"
		return 0
	fi
	wsca_log "installing staticcheck $WSCA_STATICCHECK_VERSION (go install)"
	if (cd / && timeout 600 go install "honnef.co/go/tools/cmd/staticcheck@$WSCA_STATICCHECK_VERSION" </dev/null) >&2 && [ -x "$sc" ]; then
		printf '%s' "$sc"
	else
		wsca_warn "could not install staticcheck $WSCA_STATICCHECK_VERSION; skipping staticcheck"
	fi
	return 0
}

# Static checks. $1 = staticcheck binary ("" = use one on PATH if any, "-" = skip).
# Returns non-zero if any check failed; runs all of them regardless.
WSCA_LINT_FAILED=""
wsca_lint() {
	local sc="${1:-}" files unformatted
	WSCA_LINT_FAILED=""
	wsca_require_go
	(
		cd "$WSCA_ROOT"
		wsca_log "gofmt -l"
		files="$(wsca_go_files)"
		if [ -n "$files" ]; then
			unformatted="$(printf '%s\n' "$files" | tr '\n' '\0' | xargs -0 gofmt -l)" || exit 2
			if [ -n "$unformatted" ]; then
				printf '%s\n' "$unformatted" >&2
				wsca_warn "gofmt: the files above need 'gofmt -w'"
				exit 1
			fi
		fi
	) || WSCA_LINT_FAILED+=" gofmt"
	wsca_log "go vet ./..."
	(cd "$WSCA_ROOT" && go vet ./...) || WSCA_LINT_FAILED+=" vet"
	if [ "$sc" != "-" ]; then
		[ -n "$sc" ] || sc="$(wsca_find_staticcheck)"
		if [ -n "$sc" ]; then
			wsca_log "staticcheck ./... ($("$sc" -version 2>/dev/null))"
			(cd "$WSCA_ROOT" && "$sc" ./...) || WSCA_LINT_FAILED+=" staticcheck"
		else
			wsca_log "staticcheck not installed; skipped"
		fi
	fi
	WSCA_LINT_FAILED="${WSCA_LINT_FAILED# }"
	[ -z "$WSCA_LINT_FAILED" ]
}

# The wallet-side packages (internal/walletside/packages.txt), one a line.
wsca_wallet_packages() {
	grep -vE '^[[:space:]]*(#|$)' "$WSCA_ROOT/internal/walletside/packages.txt"
}

# Build the wallet-side packages with CGO_ENABLED=0, then for GOOS=js GOARCH=wasm
# (they must never need cgo or a server package). Returns non-zero if either build fails.
wsca_wallet_build() {
	local pkgs rc=0
	wsca_require_go
	pkgs="$(wsca_wallet_packages | tr '\n' ' ')"
	pkgs="${pkgs% }"
	[ -n "$pkgs" ] || wsca_die "internal/walletside/packages.txt lists no package"
	wsca_log "CGO_ENABLED=0 go build $pkgs"
	# shellcheck disable=SC2086 # one import path per word
	(cd "$WSCA_ROOT" && CGO_ENABLED=0 go build $pkgs) || rc=1
	wsca_log "GOOS=js GOARCH=wasm CGO_ENABLED=0 go build $pkgs"
	# shellcheck disable=SC2086
	(cd "$WSCA_ROOT" && GOOS=js GOARCH=wasm CGO_ENABLED=0 go build $pkgs) || rc=1
	if [ "$rc" -eq 0 ]; then
		echo "wallet-side packages built with CGO_ENABLED=0 and for js/wasm: ${pkgs//github.com\/wsca\/wsca\//}"
	else
		wsca_warn "wallet-side packages do not build without cgo or for js/wasm (see above)"
	fi
	return "$rc"
}

# The packages whose code only builds for js/wasm: vetted and tested for GOOS=js GOARCH=wasm.
WSCA_WASM_TEST_PKGS="./manager/jsbridge/"
WSCA_WASM_VET_PKGS="./manager/jsbridge/ ./web/wasm/"

# go vet (and staticcheck, when its path is given as $1 and not "-") the js/wasm code and run
# its tests under Node (go_js_wasm_exec from GOROOT). Returns non-zero if any fails or node
# is missing.
wsca_wasm_tests() {
	local exec_wasm sc="${1:--}"
	wsca_require_go
	exec_wasm="$(go env GOROOT)/lib/wasm/go_js_wasm_exec"
	if ! command -v node >/dev/null 2>&1; then
		wsca_warn "node is missing: the js/wasm tests cannot run"
		return 1
	fi
	wsca_log "GOOS=js GOARCH=wasm go vet $WSCA_WASM_VET_PKGS && go test -exec=go_js_wasm_exec $WSCA_WASM_TEST_PKGS"
	# shellcheck disable=SC2086 # package paths, one a word
	(cd "$WSCA_ROOT" && GOOS=js GOARCH=wasm CGO_ENABLED=0 go vet $WSCA_WASM_VET_PKGS) || return 1
	if [ "$sc" != "-" ]; then
		wsca_log "GOOS=js GOARCH=wasm staticcheck $WSCA_WASM_VET_PKGS"
		# shellcheck disable=SC2086
		(cd "$WSCA_ROOT" && GOOS=js GOARCH=wasm CGO_ENABLED=0 "$sc" $WSCA_WASM_VET_PKGS) || return 1
	fi
	# shellcheck disable=SC2086
	(cd "$WSCA_ROOT" && GOOS=js GOARCH=wasm CGO_ENABLED=0 go test -count=1 -exec="$exec_wasm" $WSCA_WASM_TEST_PKGS)
}

# True if any argument names a package (./x, ../x, ., .., or a module import path).
wsca_args_have_pkg() {
	local a
	for a in "$@"; do
		case "$a" in
		. | .. | ./* | ../* | github.com/wsca/wsca | github.com/wsca/wsca/*) return 0 ;;
		esac
	done
	return 1
}

# True if any argument sets the given go test flag (e.g. -timeout).
wsca_args_have_flag() {
	local flag="$1" a
	shift
	for a in "$@"; do
		case "$a" in
		"$flag" | "$flag"=* | "-$flag" | "-$flag"=*) return 0 ;;
		esac
	done
	return 1
}
