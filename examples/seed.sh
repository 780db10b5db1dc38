#!/bin/sh
# The seed experiment: one endpoint that fetches a slow upstream for every
# request, written three ways (async, sync, sync-coroutine), with libfuture
# and with Tornado, loaded with ab. Prints median, p90, p99 (ms) and
# requests/s for each.
#
#   examples/seed.sh [BUILD_DIR]     (default: the current directory)
#
# The upstream is examples/httpd, GET /sleep?ms=50 (answers after 50 ms
# without blocking). Needs ab (apache2-utils); the Tornado rows need
# python3-tornado and are skipped with a note when it is missing.
# A row whose run had failures (ab's failed requests and non-2xx answers,
# such as the endpoint's 502s) says how many after the numbers; Ctrl-C
# stops the whole experiment.
set -u
build=${1:-.}
src=$(cd "$(dirname "$0")/.." && pwd)
httpd=$build/examples/httpd
seed=$build/examples/seed-endpoint
for p in "$httpd" "$seed"; do
	[ -x "$p" ] || { echo "seed: $p not built (make first)" >&2; exit 1; }
done
command -v ab >/dev/null || { echo "seed: ab missing (apt-get install apache2-utils)" >&2; exit 1; }
py=/usr/bin/python3
[ -x $py ] || py=python3
tornado=1
$py -c 'import tornado' 2>/dev/null || tornado=0

tmp=$(mktemp -d)
pids=""
ab= # the ab run in progress
cleanup() {
	trap - EXIT INT TERM
	for p in $ab $pids; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
# EXIT runs cleanup; a signal must end the script too, not just clean up
# and go on with the next run.
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
	$py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT PID ERRFILE: until something answers on the port
# (bounded); if the server PID ends or never answers, say so with its
# stderr (ERRFILE), which tells why.
wait_port() {
	i=0
	while [ $i -lt 100 ]; do
		$py -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" \
			2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || break
		sleep 0.05
		i=$((i + 1))
	done
	echo "seed: nothing listens on port $1; the server's stderr:" >&2
	sed 's/^/  | /' "$3" >&2
	return 1
}

# stats FILE: median p90 p99 of ab's gnuplot "ttime" column (ms)
stats() {
	tail -n +2 "$1" | awk -F'\t' '{print $5}' | sort -n | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "- - -"; exit }
			m = v[int((NR + 1) / 2)]
			p90 = v[int(NR * 0.90 + 0.999)]
			p99 = v[int(NR * 0.99 + 0.999)]
			print m, p90, p99
		}'
}

port_up=$(free_port)
"$httpd" --port "$port_up" --host 127.0.0.1 2>"$tmp/upstream.err" &
pids="$pids $!"
wait_port "$port_up" $! "$tmp/upstream.err" || exit 1
upstream="http://127.0.0.1:$port_up/sleep?ms=50"

# failures AB_OUTPUT AB_EXIT: " (N failed: ...)" for a row, or nothing.
# ab's "Failed requests" are only those it could not complete; answers
# such as 502 count under "Non-2xx responses", and are failures here too.
failures() {
	awk -v rc="$2" '
		/^Failed requests:/ { failed = $3 }
		/^Non-2xx responses:/ { non2xx = $3 }
		END {
			n = failed + non2xx
			s = n ? n " failed" : ""
			if (non2xx)
				s = s ": " non2xx " non-2xx"
			if (rc)
				s = s (s ? "; " : "") \
				    (rc == 124 ? "ab timed out" : "ab exit " rc)
			if (s)
				printf " (%s)", s
		}' "$1"
}

printf '%-10s %-15s %-10s %8s %8s %8s %10s\n' impl mode load median p90 p99 req/s
run() { # impl mode command...
	impl=$1 mode=$2
	shift 2
	port=$(free_port)
	err=$tmp/$impl-$mode.err
	"$@" --mode "$mode" --upstream "$upstream" --port "$port" \
		>/dev/null 2>"$err" &
	pid=$!
	pids="$pids $pid"
	wait_port "$port" "$pid" "$err" || return
	for load in "100 20" "500 50"; do
		set -- $load
		out=$tmp/ab.out
		rm -f "$tmp/ab.tsv"
		# --foreground: timeout and ab stay in the terminal's process
		# group, so that Ctrl-C reaches them. In the background, as
		# the shell runs a trap only once its foreground command has
		# ended: wait returns at a signal, and cleanup stops ab.
		timeout --foreground 300 ab -q -n "$1" -c "$2" \
			-g "$tmp/ab.tsv" "http://127.0.0.1:$port/" >"$out" 2>&1 &
		ab=$!
		wait "$ab"
		rc=$?
		ab=
		touch "$tmp/ab.tsv"
		set -- $(stats "$tmp/ab.tsv") "$1" "$2"
		printf '%-10s %-15s %-10s %8s %8s %8s %10s%s\n' "$impl" \
			"$mode" "-n$4 -c$5" "$1" "$2" "$3" \
			"$(awk '/Requests per second/ {print $4}' "$out" |
				grep . || echo -)" "$(failures "$out" $rc)"
	done
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

for mode in async sync sync-coroutine; do
	run libfuture "$mode" "$seed"
done
if [ $tornado = 1 ]; then
	for mode in async sync sync-coroutine; do
		run tornado "$mode" $py "$src/examples/tornado/seed_endpoint.py"
	done
else
	echo "(Tornado rows skipped: python3-tornado is not installed)"
fi
echo "backend: ${FUTURE_BACKEND:-auto}; upstream $upstream"
