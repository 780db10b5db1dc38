#!/bin/bash
# Two builds of examples/httpd side by side: server CPU time per request
# of each, interleaved round by round (these machines drift by 30% within
# minutes; a ratio taken seconds apart does not). Servers pinned to CPU 0,
# wrk -t1 to CPU 1, FUTURE_BACKEND as set (default epoll); WRK_HEADER is
# sent with every request ("Connection: close": a connection per request).
#   bench/httpd-ab.sh OLD_BUILD NEW_BUILD [ROUNDS] [CONNS] [SECONDS]
# A build is a build directory: BUILD/.libs and BUILD/examples/.libs/httpd.
set -u
[ $# -ge 2 ] || { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
old=$1 new=$2 rounds=${3:-4} conns=${4:-50} secs=${5:-4}
export FUTURE_BACKEND=${FUTURE_BACKEND:-epoll}
tck=$(getconf CLK_TCK)
pids=""
trap 'kill $pids 2>/dev/null' EXIT
start() { # build port
	LD_LIBRARY_PATH=$1/.libs taskset -c 0 "$1/examples/.libs/httpd" \
		--port "$2" >/dev/null 2>&1 &
	pids="$pids $!"
	sleep 0.5
	for t in /proc/$!/task/*; do taskset -pc 0 "${t##*/}" >/dev/null; done
	taskset -c 1 wrk -t1 -c"$conns" -d1s "http://127.0.0.1:$2/" >/dev/null
}
cpu_per_req() { # pid port
	a=$(awk '{print $14 + $15}' "/proc/$1/stat")
	n=$(taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" \
		${WRK_HEADER:+-H "$WRK_HEADER"} "http://127.0.0.1:$2/" |
	    awk '/requests in/ {print $1}')
	b=$(awk '{print $14 + $15}' "/proc/$1/stat")
	echo "($b - $a) * 1000000 / $tck / $n" | bc -l
}
start "$old" 18390; po=$!
start "$new" 18391; pn=$!
echo "round conns old-us/req new-us/req new/old"
for i in $(seq "$rounds"); do
	o=$(cpu_per_req $po 18390)
	n=$(cpu_per_req $pn 18391)
	printf '%d %d %.2f %.2f %.3f\n' "$i" "$conns" "$o" "$n" \
		"$(echo "$n / $o" | bc -l)"
done
