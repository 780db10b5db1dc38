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
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

free_port() {
	$py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait until something answers on the port (bounded)
wait_port() {
	i=0
	while [ $i -lt 100 ]; do
		$py -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" \
			2>/dev/null && return 0
		sleep 0.05
		i=$((i + 1))
	done
	echo "seed: nothing listens on port $1" >&2
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
"$httpd" --port "$port_up" --host 127.0.0.1 2>/dev/null &
pids="$pids $!"
wait_port "$port_up" || exit 1
upstream="http://127.0.0.1:$port_up/sleep?ms=50"

printf '%-10s %-15s %-10s %8s %8s %8s %10s\n' impl mode load median p90 p99 req/s
run() { # impl mode command...
	impl=$1 mode=$2
	shift 2
	port=$(free_port)
	"$@" --mode "$mode" --upstream "$upstream" --port "$port" \
		>/dev/null 2>&1 &
	pid=$!
	pids="$pids $pid"
	wait_port "$port" || return
	for load in "100 20" "500 50"; do
		set -- $load
		out=$tmp/ab.out
		timeout 300 ab -q -n "$1" -c "$2" -g "$tmp/ab.tsv" \
			"http://127.0.0.1:$port/" >"$out" 2>&1
		rps=$(awk '/Requests per second/ {print $4}' "$out")
		failed=$(awk '/Failed requests/ {print $3}' "$out")
		set -- $(stats "$tmp/ab.tsv") "$1" "$2"
		printf '%-10s %-15s %-10s %8s %8s %8s %10s%s\n' "$impl" \
			"$mode" "-n$4 -c$5" "$1" "$2" "$3" "${rps:--}" \
			"$([ "${failed:-0}" = 0 ] || echo " ($failed failed)")"
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
