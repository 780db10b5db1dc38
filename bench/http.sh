#!/bin/sh
# HTTP "hello world" keep-alive benchmark: libfuture's examples/httpd (one
# thread, once per backend) against nginx (1 worker, return 200), libevent's
# evhttp and Tornado, in one run. Server pinned to CPU 0, wrk -t1 to CPU 1.
# One wrk thread saturates near the client's limit, so the comparison that
# matters is server CPU time per request (utime+stime of the server, all
# threads, over the run / requests), plus requests/s and p99.
#
#   bench/http.sh [-d SECONDS] [-o NAME]...   NAME: nginx evhttp tornado
#                                             epoll io_uring threads
# Needs wrk, nginx, python3-tornado, libevent-dev (make -C bench evhttp_hello)
# and a built tree (make). Raw wrk output goes to bench/out/http-*.txt.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
dur=5
only=""
while getopts d:o:h c; do
	case $c in
	d) dur=$OPTARG ;;
	o) only="$only $OPTARG" ;;
	*) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
done
py=/usr/bin/python3
[ -x $py ] || py=python3
mkdir -p "$here/out"
tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM
tck=$(getconf CLK_TCK)
[ -x "$here/evhttp_hello" ] || make -C "$here" evhttp_hello >/dev/null

want() { [ -z "$only" ] && return 0; for o in $only; do [ "$o" = "$1" ] && return 0; done; return 1; }
free_port() { $py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
	i=0
	while [ $i -lt 100 ]; do
		$py -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null && return 0
		sleep 0.05; i=$((i + 1))
	done
	return 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
to_ms() { # wrk latency like 1.23ms, 456.00us, 1.01s
	echo "$1" | awk '/us$/ {sub(/us/,""); print $1/1000; next}
		/ms$/ {sub(/ms/,""); print $1+0; next}
		/s$/ {sub(/s/,""); print $1*1000; next} {print $1}'
}

results=$tmp/results
: >"$results"
bench() { # name, command... (listening on $port)
	name=$1; shift
	"$@" >"$tmp/$name.log" 2>&1 &
	pid=$!
	if ! wait_port "$port"; then
		echo "$name: did not start"; cat "$tmp/$name.log"; kill $pid; pid=""; return
	fi
	taskset -pc 0 $pid >/dev/null 2>&1
	for t in $(ls /proc/$pid/task); do taskset -pc 0 "$t" >/dev/null 2>&1; done
	timeout 30 taskset -c 1 wrk -t1 -c50 -d1s "http://127.0.0.1:$port/" >/dev/null 2>&1
	for conns in 50 500; do
		t0=$(cpu_ticks $pid)
		out="$here/out/http-$name-c$conns.txt"
		timeout $((dur + 30)) taskset -c 1 wrk -t1 -c$conns -d${dur}s --latency \
			"http://127.0.0.1:$port/" >"$out" 2>&1
		t1=$(cpu_ticks $pid)
		rps=$(awk '/^Requests\/sec/ {print $2}' "$out")
		reqs=$(awk '/requests in/ {print $1}' "$out")
		p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
		errs=$(awk '/Non-2xx|Socket errors/' "$out" | tr '\n' ' ')
		us=$(awk -v d=$((t1 - t0)) -v t=$tck -v n="$reqs" 'BEGIN { if (n > 0) printf "%.2f", d / t * 1e6 / n; else print "-" }')
		echo "$name $conns ${rps:--} $us ${p99:--} $errs" >>"$results"
	done
	kill $pid; wait $pid 2>/dev/null; pid=""
}

if want nginx && command -v nginx >/dev/null; then
	port=$(free_port)
	mkdir -p "$tmp/nginx"
	cat >"$tmp/nginx/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
error_log $tmp/nginx/error.log;
pid $tmp/nginx/nginx.pid;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $tmp/nginx/body;
	proxy_temp_path $tmp/nginx/proxy;
	fastcgi_temp_path $tmp/nginx/fastcgi;
	uwsgi_temp_path $tmp/nginx/uwsgi;
	scgi_temp_path $tmp/nginx/scgi;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$port;
		location / { default_type text/plain; return 200 "hello world\n"; }
	}
}
CONF
	bench nginx nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf"
fi
if want evhttp; then
	port=$(free_port)
	bench evhttp "$here/evhttp_hello" "$port"
fi
if want tornado && $py -c 'import tornado' 2>/dev/null; then
	port=$(free_port)
	bench tornado $py "$top/examples/tornado/hello.py" "$port"
fi
for b in epoll io_uring threads; do
	want $b || continue
	port=$(free_port)
	FUTURE_BACKEND=$b bench "libfuture-$b" "$top/examples/httpd" --port "$port" --host 127.0.0.1
done

printf '%-18s %5s %10s %12s %9s %10s %10s %10s\n' server conns req/s cpu-us/req p99-ms cpu/nginx x-evhttp x-tornado
awk '
	{ n[NR] = $1; c[NR] = $2; r[NR] = $3; u[NR] = $4; p[NR] = $5
	  e[NR] = ""; for (i = 6; i <= NF; i++) e[NR] = e[NR] " " $i
	  if ($1 == "nginx") ng[$2] = $4
	  if ($1 == "evhttp") ev[$2] = $3
	  if ($1 == "tornado") tw[$2] = $3 }
	END {
		for (i = 1; i <= NR; i++) {
			a = (ng[c[i]] > 0 && u[i] > 0) ? sprintf("%.2fx", u[i] / ng[c[i]]) : "-"
			b = (ev[c[i]] > 0) ? sprintf("%.2fx", r[i] / ev[c[i]]) : "-"
			t = (tw[c[i]] > 0) ? sprintf("%.1fx", r[i] / tw[c[i]]) : "-"
			printf "%-18s %5s %10s %12s %9s %10s %10s %10s%s\n", n[i], c[i], r[i], u[i], p[i], a, b, t, e[i]
		}
	}' "$results"
