#!/usr/bin/env bash
# Server CPU per operation (issue 6; docs/benchmarks.md, "Issue 6: server CPU per operation").
#
#     scripts/perf.sh                   -> perf.txt: wsca bench (sign, login) against a throwaway wscad
#                                          on SoftHSM + PostgreSQL with a CPU profile of each, then the
#                                          Go benchmarks' CPU against the unavoidable work
#     DURATION=30s OUT=new.txt scripts/perf.sh
#
# Steps: a throwaway SoftHSM token and PostgreSQL cluster (scripts/lib.sh), wscad built from this
# checkout with --pprof-listen on loopback, then for each of sign and login `wsca bench
# --concurrency 8` for DURATION while /debug/pprof/profile records wscad for the middle of the run
# (`go tool pprof -top`, 15 entries), then `go test -bench '(Sign|Login)/.*/cpu'` in r2ps/dispatch
# with WSCA_BENCH_CONCURRENCY=CONCURRENCY, so that BenchmarkSign/*/cpu-c<CONCURRENCY> measures the
# floor from as many goroutines as the load has workers. Last, a summary divides the HTTP load's
# wscad + db CPU per signature by the PostgreSQL floor measured both ways in this run (medians).
# wsca bench finds wscad and the cluster's postmaster through /proc and reports their CPU per op.
#
# Environment: DURATION (default 20s), CONCURRENCY (default 8), OUT (default perf.txt),
# GOBENCH=0 skips the Go benchmarks, BENCHTIME (default 3s) and COUNT (default 3) for them,
# PROFILE_DIR keeps wscad's binary and the two CPU profiles there (for go tool pprof).
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WSCA_ROOT"

duration="${DURATION:-20s}"
conc="${CONCURRENCY:-8}"
out="${OUT:-perf.txt}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
secs="${duration%s}"
[[ "$secs" =~ ^[0-9]+$ ]] && [ "$secs" -ge 10 ] || wsca_die "DURATION must be whole seconds, at least 10s (got $duration)"
prof_secs=$((secs - 4)) # the middle of the run: no setup, no tail

wsca_ensure_tools
wsca_setup_env
wsca_print_env

work="$WSCA_ENV_DIR/perf"
mkdir -p "$work"
go build -ldflags "-X main.version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)" -o "$work/" ./cmd/wscad ./cmd/wsca

psql="$(command -v psql || echo "$WSCA_PG_BIN/psql")"
"$psql" "$WSCA_TEST_POSTGRES_DSN" -X -q -c 'CREATE DATABASE wsca_perf' </dev/null
dsn="${WSCA_TEST_POSTGRES_DSN%/*}/wsca_perf?sslmode=disable"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/token"
chmod 600 "$work/token"
listen="127.0.0.1:$(wsca_pick_port)"
admin="127.0.0.1:$(wsca_pick_port)"
pprof="127.0.0.1:$(wsca_pick_port)"

# OPRF in software (WSCA_PERF_OPRF_HSM=1: on the device), as in the Go login benchmark whose floor
# (GenerateKE2 in software) the login load is divided by; the device OPRF's own cost is measured in
# docs/benchmarks.md, "Issue 11".
oprf_hsm=false
[ "${WSCA_PERF_OPRF_HSM:-0}" = "1" ] && oprf_hsm=true
wsca_log "wscad on $listen (admin $admin, pprof $pprof), store PostgreSQL, device SoftHSM, --oprf-hsm=$oprf_hsm"
"$work/wscad" --store "$dsn" --device "$WSCA_TEST_PKCS11_URI" --data-dir "$work/data" --listen "$listen" \
	--admin-listen "$admin" --admin-token-file "$work/token" --pprof-listen "$pprof" --log-level warn \
	--oprf-hsm="$oprf_hsm" \
	</dev/null >"$work/wscad.log" 2>&1 &
wscad_pid=$!
stop_wscad() {
	if kill -0 "$wscad_pid" 2>/dev/null; then
		kill -TERM "$wscad_pid" 2>/dev/null || true
		wait "$wscad_pid" 2>/dev/null || true
	fi
}
trap 'stop_wscad; wsca_cleanup' EXIT
for _ in $(seq 100); do
	curl -fsS "http://$listen/healthz" >/dev/null 2>&1 && break
	kill -0 "$wscad_pid" 2>/dev/null || { cat "$work/wscad.log" >&2; wsca_die "wscad exited"; }
	sleep 0.2
done
curl -fsS "http://$listen/healthz" >/dev/null || wsca_die "wscad did not answer /healthz"

cpu="$(LC_ALL=C lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n1 || true)"
{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
	echo "nproc: $(nproc)"
	echo "cpu-model: ${cpu:-unknown}"
	echo "go-version: $(go version)"
	echo "softhsm-version: $(softhsm2-util --version 2>/dev/null || echo unknown)"
	echo "postgres-version: $("$WSCA_PG_BIN/postgres" --version 2>/dev/null || echo unknown)"
	echo "load: wsca bench --concurrency $conc --duration $duration (wscad pid $wscad_pid)"
	echo
} >"$out"

# perf_summary SIGN_TXT GOBENCH_TXT CONC: the HTTP load's server + db CPU per signature against the
# medians of the PostgreSQL floor at concurrency CONC (BenchmarkSign/postgres/cpu-cCONC,
# floor-cCONC-cpu-ns/op, each step in a pass of its own; floor-cCONC-mixed-cpu-ns/op, the steps in a
# request's order) and sequential (BenchmarkSign/postgres/cpu, floor-cpu-ns/op).
perf_summary() {
	awk -v conc="$3" '
		function metric(name,   i) { for (i = 3; i < NF; i++) if ($(i + 1) == name) return $i; return "" }
		function median(a, n,   i, j, t) {
			for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		FNR == 1 { file++ }
		file == 1 && /^CPU:/ {
			for (i = 1; i < NF; i++) {
				if ($i == "server" && $(i + 1) == "CPU/op") { srv = $(i + 2); sub(/ms$/, "", srv) }
				if ($i == "db" && $(i + 1) == "CPU/op") { db = $(i + 2); sub(/ms$/, "", db) }
			}
		}
		file == 2 && $1 ~ ("^BenchmarkSign/postgres/cpu-c" conc "(-[0-9]+)?$") { v = metric("floor-c" conc "-cpu-ns/op"); if (v != "") c[++nc] = v }
		file == 2 && $1 ~ ("^BenchmarkSign/postgres/cpu-c" conc "(-[0-9]+)?$") { v = metric("floor-c" conc "-mixed-cpu-ns/op"); if (v != "") x[++nx] = v }
		file == 2 && $1 ~ "^BenchmarkSign/postgres/cpu(-[0-9]+)?$" { v = metric("floor-cpu-ns/op"); if (v != "") s[++ns] = v }
		END {
			print "## Summary: the HTTP signature load against the floor of this run (PostgreSQL)"
			print ""
			if (srv == "" || db == "" || srv == "n/a" || db == "n/a" || nc == 0 || ns == 0) {
				print "(incomplete: wsca bench server/db CPU or the Go floors are missing)"
				exit
			}
			fc = median(c, nc) / 1e6; fs = median(s, ns) / 1e6; fx = nx ? median(x, nx) / 1e6 : 0
			printf "wsca bench --op sign --concurrency %d: wscad %.3f ms + db %.3f ms = %.3f ms per signature\n", conc, srv, db, srv + db
			printf "floor at concurrency %d, steps apart (median of %d): %.3f ms  -> x-floor %.2f\n", conc, nc, fc, (srv + db) / fc
			if (nx) printf "floor at concurrency %d, steps mixed (median of %d): %.3f ms  -> x-floor %.2f\n", conc, nx, fx, (srv + db) / fx
			printf "floor sequential (median of %d): %.3f ms  -> x-floor %.2f\n", ns, fs, (srv + db) / fs
		}' "$1" "$2"
}

rc=0
for op in sign login; do
	wsca_log "wsca bench --op $op --concurrency $conc --duration $duration, profiling ${prof_secs}s"
	# The profile starts after the setup (enrolment, logins) and ends before the run does.
	(sleep 2 && curl -fsS -o "$work/$op.pprof" "http://$pprof/debug/pprof/profile?seconds=$prof_secs") &
	prof_pid=$!
	set +e
	"$work/wsca" bench --url "http://$listen" --admin-url "http://$admin" --admin-token-file "$work/token" \
		--op "$op" --concurrency "$conc" --duration "$duration" >"$work/$op.txt" 2>&1
	brc=$?
	wait "$prof_pid"
	prc=$?
	set -e
	{
		echo "## wsca bench --op $op"
		cat "$work/$op.txt"
		echo
		echo "## wscad CPU profile during --op $op (top 15, ${prof_secs}s)"
		if [ "$prc" -eq 0 ]; then
			go tool pprof -top -nodecount 15 "$work/wscad" "$work/$op.pprof" 2>/dev/null | sed -n '/flat%/,$p' || echo "(go tool pprof failed)"
			echo
			echo "### by cumulative time (top 15)"
			go tool pprof -top -cum -nodecount 15 "$work/wscad" "$work/$op.pprof" 2>/dev/null | sed -n '/flat%/,$p' || echo "(go tool pprof failed)"
		else
			echo "(no profile: curl exited $prc)"
		fi
		echo
	} >>"$out"
	[ "$brc" -eq 0 ] || rc=$brc
done
stop_wscad
if [ -n "${PROFILE_DIR:-}" ]; then
	mkdir -p "$PROFILE_DIR"
	cp "$work/wscad" "$work"/*.pprof "$PROFILE_DIR"/ 2>/dev/null || true
fi

if [ "${GOBENCH:-1}" != "0" ]; then
	wsca_log "go test -bench '(Sign|Login)/.*/cpu' -benchtime ${BENCHTIME:-3s} -count ${COUNT:-3} ./r2ps/dispatch/"
	{
		echo "## Go benchmarks: CPU per operation against the unavoidable work (x-floor)"
		echo
	} >>"$out"
	set +e
	WSCA_BENCH_CONCURRENCY="$conc" go test -run '^$' -bench '(Sign|Login)/.*/cpu' -benchtime "${BENCHTIME:-3s}" \
		-count "${COUNT:-3}" ./r2ps/dispatch/ 2>&1 | tee -a "$out" "$work/gobench.txt"
	grc=${PIPESTATUS[0]}
	set -e
	[ "$grc" -eq 0 ] || rc=$grc
	perf_summary "$work/sign.txt" "$work/gobench.txt" "$conc" >>"$out"
fi

if [ "$rc" -eq 0 ]; then
	echo "scripts/perf.sh: OK, results in $out"
else
	echo "scripts/perf.sh: FAIL (exit $rc), partial results in $out"
fi
exit "$rc"
