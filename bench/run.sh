#!/bin/sh
# Build and run every libfuture benchmark, then print one table of medians
# and ratios. All peers run in the same invocation, interleaved: each
# repetition runs every program once, so a noisy period hits all of them.
#
#   bench/run.sh                 issue sizes, 5 repetitions
#   bench/run.sh -r 7            7 repetitions
#   bench/run.sh -q              quick smoke run (small sizes, 3 reps)
#   bench/run.sh -o timers       only one program (future_cb, promise,
#                                timers, xthread, echo, fileread,
#                                blocking); may be repeated
#
# Sizes can be overridden: FUTURE_CB_N (ops, default 10M), PROMISE_N (2M),
# TIMERS_N (1M), XTHREAD_N (posts, 10M; ping-pong round trips = N/10),
# ECHO_N (round trips, 400k), FILEREAD_N (warm reads, 400k; cold = N/4,
# at most 65,536), BLOCKING_N (tasks, 4M).
# FUTURE_BACKEND picks libfuture's backend as usual; the table prints the
# backend each program actually ran on. echo and fileread ignore it: they
# run once per backend (epoll, io_uring, threads) in every repetition.
# echo also runs a libuv echo server once per repetition (echo -o libuv).
# ECHO_CLIENT=epoll gives echo its older epoll client (see bench/echo.c).
# Raw lines go to bench/out/. LIBDIR=<build>/.libs benchmarks a build made
# in a separate directory (default: the in-tree ../.libs).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

reps=5
quick=0
only=""
while getopts r:qo:h c; do
	case $c in
	r) reps=$OPTARG ;;
	q) quick=1 ;;
	o) only="$only $OPTARG" ;;
	*) sed -n '2,23p' "$here/run.sh" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
done

if [ "$quick" = 1 ]; then
	: "${FUTURE_CB_N:=1000000}" "${PROMISE_N:=200000}"
	: "${TIMERS_N:=100000}" "${XTHREAD_N:=1000000}"
	: "${ECHO_N:=40000}" "${FILEREAD_N:=40000}" "${BLOCKING_N:=400000}"
	[ "$reps" = 5 ] && reps=3
fi
: "${FUTURE_CB_N:=10000000}" "${PROMISE_N:=2000000}"
: "${TIMERS_N:=1000000}" "${XTHREAD_N:=10000000}"
: "${ECHO_N:=400000}" "${FILEREAD_N:=400000}" "${BLOCKING_N:=4000000}"
backends="epoll io_uring threads"

want() {
	[ -z "$only" ] && return 0
	for w in $only; do [ "$w" = "$1" ] && return 0; done
	return 1
}

make -s all >&2

# The library is rebuilt by others while this runs: note which one we used.
lib=$(readlink -f "${LIBDIR:-../.libs}/libfuture.so")
libsum() { sha256sum "$lib" | cut -c1-12; }
sum0=$(libsum)

mkdir -p out
raw=out/results.txt
: >"$raw"

i=1
while [ "$i" -le "$reps" ]; do
	echo "run.sh: repetition $i of $reps" >&2
	want future_cb && ./future_cb -r 1 -n "$FUTURE_CB_N" >>"$raw"
	want promise && ./promise -r 1 -n "$PROMISE_N" >>"$raw"
	want timers && ./timers -r 1 -n "$TIMERS_N" >>"$raw"
	want xthread && ./xthread -r 1 -n "$XTHREAD_N" >>"$raw"
	for b in $backends; do
		want echo && FUTURE_BACKEND=$b ./echo -r 1 -n "$ECHO_N" >>"$raw"
		want fileread &&
			FUTURE_BACKEND=$b ./fileread -r 1 -n "$FILEREAD_N" >>"$raw"
	done
	want echo && ./echo -r 1 -n "$ECHO_N" -o libuv >>"$raw"
	want blocking && ./blocking -r 1 -n "$BLOCKING_N" >>"$raw"
	i=$((i + 1))
done

# fileread's 256 MiB file (it is created again when missing).
rm -f "${FILEREAD_PATH:-/var/tmp/libfuture-bench-fileread.dat}"

sum1=$(libsum)
if [ "$sum0" != "$sum1" ]; then
	echo "run.sh: WARNING: $lib changed during the run ($sum0 -> $sum1);" \
		"results mix two builds" >&2
fi

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
echo "libfuture benchmarks  $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) cpus, ${cpu:-unknown cpu}, Linux $(uname -r)"
rev=$(git -C .. rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git -C .. diff --quiet HEAD -- src include backends 2>/dev/null; then
	rev="$rev+uncommitted changes"
fi
echo "libfuture: $rev, $(basename "$lib") sha256 $sum0"
echo "compilers: $(${CC:-cc} --version | head -n 1); $(${CXX:-g++} --version | head -n 1)"
# One line per benchmark and key: the backend, versions, sizes, and what
# the coalescing libuv flood actually delivered (first and last rep).
awk '$1 == "I" { k = $2 " " $3; v = $4; for (j = 5; j <= NF; j++) v = v " " $j;
	if (!(k in first)) { first[k] = v; order[++n] = k } last[k] = v }
	END { for (j = 1; j <= n; j++) { k = order[j];
		s = first[k]; if (last[k] != s) s = s " ... " last[k];
		print "  " k ": " s } }' "$raw"
echo "repetitions: $reps (median; min..max in brackets);" \
	"impl/libfuture > 1 means libfuture is faster"
echo

# Median, min and max of each (bench, metric, impl); then the ratio of each
# implementation to libfuture on the same metric: >1 means libfuture is
# faster by that factor.
grep '^R ' "$raw" | awk '{ print $2, $4, $3, $5 }' |
	sort -k1,1 -k2,2 -k3,3 -k4,4g |
	awk '
	function flush() {
		if (cnt == 0) return
		if (cnt % 2) med = v[(cnt + 1) / 2]
		else med = (v[cnt / 2] + v[cnt / 2 + 1]) / 2
		nk++; kb[nk] = pb; km[nk] = pm; ki[nk] = pi
		kmed[nk] = med; kmin[nk] = v[1]; kmax[nk] = v[cnt]
		if (pi == "libfuture") lf[pb " " pm] = med
		cnt = 0
	}
	{
		if ($1 != pb || $2 != pm || $3 != pi) { flush(); pb = $1; pm = $2; pi = $3 }
		v[++cnt] = $4
	}
	END {
		flush()
		printf "%-10s %-10s %-13s %12s  %-23s %s\n", "benchmark", "metric",
		       "impl", "median ns", "[min..max]", "impl/libfuture"
		for (j = 1; j <= nk; j++) {
			r = "-"
			if ((kb[j] " " km[j]) in lf && lf[kb[j] " " km[j]] > 0)
				r = sprintf("%.2f", kmed[j] / lf[kb[j] " " km[j]])
			printf "%-10s %-10s %-13s %12.1f  [%.1f..%.1f]%*s %s\n",
			       kb[j], km[j], ki[j], kmed[j], kmin[j], kmax[j],
			       22 - length(sprintf("[%.1f..%.1f]", kmin[j], kmax[j])), "", r
			print kb[j], km[j], ki[j], kmed[j] > "out/medians.txt"
		}
	}'

# Targets from the issue, judged on the medians above.
echo
echo "targets:"
awk '
	{ m[$1 " " $2 " " $3] = $4 }
	function have(k) { return (k in m) && m[k] > 0 }
	function check(name, ok, detail) {
		printf "  %-44s %-6s %s\n", name, ok ? "MET" : "MISSED", detail
	}
	END {
		if (have("future_cb op libfuture") && have("future_cb op raw")) {
			r = m["future_cb op libfuture"] / m["future_cb op raw"]
			check("future_cb: within 2x of raw malloc+free+call", r <= 2,
			      sprintf("libfuture/raw = %.2fx", r))
		}
		if (have("future_cb op libfuture") && have("future_cb op promise")) {
			r = m["future_cb op promise"] / m["future_cb op libfuture"]
			check("future_cb: >= 8x faster than std::promise", r >= 8,
			      sprintf("promise/libfuture = %.1fx", r))
		}
		split("arm fire arm_cold fire_cold", tm, " ")
		for (j = 1; j <= 4; j++) {
			a = "timers " tm[j] " libfuture"; b = "timers " tm[j] " libuv"
			if (have(a) && have(b)) {
				r = m[b] / m[a]
				check("timers " tm[j] ": >= 2x faster than libuv", r >= 2,
				      sprintf("libuv/libfuture = %.2fx", r))
			}
		}
		if (have("xthread rtt libfuture") && have("xthread rtt eventfd")) {
			r = m["xthread rtt libfuture"] / m["xthread rtt eventfd"]
			check("xthread ping-pong: within 1.2x of eventfd", r <= 1.2,
			      sprintf("libfuture/eventfd = %.2fx", r))
		}
		if (have("xthread post libfuture") && have("xthread post libuv")) {
			r = m["xthread post libuv"] / m["xthread post libfuture"]
			check("xthread flood: as fast as uv_async_send", r >= 1,
			      sprintf("libuv/libfuture = %.2fx (none lost: checked)", r))
		}
		# Backends (issue 3): throughput ratios = inverse ratio of ns.
		if (have("echo rt epoll") && have("echo rt io_uring")) {
			r = m["echo rt epoll"] / m["echo rt io_uring"]
			check("echo: io_uring >= 1.1x epoll throughput", r >= 1.1,
			      sprintf("io_uring/epoll = %.2fx (%.0f vs %.0f msgs/s)", r,
				      1e9 / m["echo rt io_uring"], 1e9 / m["echo rt epoll"]))
		}
		# Not an issue target: the project aim, "faster than libuv".
		split("epoll io_uring", eb, " ")
		for (j = 1; j <= 2; j++)
			if (have("echo rt " eb[j]) && have("echo rt libuv")) {
				r = m["echo rt libuv"] / m["echo rt " eb[j]]
				check("echo: " eb[j] " not slower than libuv (aim)", r >= 0.98,
				      sprintf("%s/libuv = %.2fx throughput, %.2fx less server CPU",
					      eb[j], r, m["echo srv_cpu libuv"] / m["echo srv_cpu " eb[j]]))
			}
		if (have("echo rt epoll") && have("echo rt threads")) {
			r = m["echo rt epoll"] / m["echo rt threads"]
			check("echo: threads >= 0.3x epoll throughput", r >= 0.3,
			      sprintf("threads/epoll = %.2fx (%.0f vs %.0f msgs/s)", r,
				      1e9 / m["echo rt threads"], 1e9 / m["echo rt epoll"]))
		}
		split("warm cold", fm, " ")
		for (j = 1; j <= 2; j++) {
			a = "fileread " fm[j] " io_uring"; b = "fileread " fm[j] " threads"
			if (have(a) && have(b)) {
				r = m[b] / m[a]
				check("fileread " fm[j] ": io_uring >= 1.5x threads", r >= 1.5,
				      sprintf("io_uring/threads = %.2fx (%.0f vs %.0f ns/read;" \
					      " epoll %.0f)", r, m[a], m[b],
					      m["fileread " fm[j] " epoll"]))
			}
		}
		if (have("blocking task libfuture") && have("blocking task libuv")) {
			r = m["blocking task libuv"] / m["blocking task libfuture"]
			check("blocking: fut_run_blocking >= 1.5x uv_queue_work", r >= 1.5,
			      sprintf("libfuture/libuv = %.2fx (%.2f vs %.2f M tasks/s)", r,
				      1e3 / m["blocking task libfuture"],
				      1e3 / m["blocking task libuv"]))
		}
	}' out/medians.txt
