#!/bin/sh
# HTTP client throughput, libfuture's fut_http_fetch (once per backend)
# against libevent's evhttp client, in the same run: keep-alive GETs to
# nginx (1 worker, return 200, pinned to core 0) with C requests in
# flight, the client pinned to core 1. Prints requests/s and client CPU
# per request, medians of the rounds, and each backend's ratio to evhttp.
#
#   bench/client.sh [-r ROUNDS] [-n REQUESTS] [-c IN_FLIGHT]
#
# Needs nginx and libevent-dev; builds bench/fetch against LIBDIR
# (default ../.libs), e.g. LIBDIR=$PWD/build/gcc/.libs bench/client.sh.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
rounds=3 n=200000 c=50
while getopts r:n:c: o; do
	case $o in
	r) rounds=$OPTARG ;;
	n) n=$OPTARG ;;
	c) c=$OPTARG ;;
	*) echo "usage: $0 [-r ROUNDS] [-n REQUESTS] [-c IN_FLIGHT]" >&2; exit 2 ;;
	esac
done
command -v nginx >/dev/null || { echo "client.sh: needs nginx" >&2; exit 1; }
make -C "$here" fetch >/dev/null
tmp=$(mktemp -d)
ngx=""
cleanup() { [ -n "$ngx" ] && kill "$ngx" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$tmp/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
error_log $tmp/error.log;
pid $tmp/nginx.pid;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $tmp/body;
	proxy_temp_path $tmp/proxy;
	fastcgi_temp_path $tmp/fastcgi;
	uwsgi_temp_path $tmp/uwsgi;
	scgi_temp_path $tmp/scgi;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$port;
		location / { default_type text/plain; return 200 "hello world\n"; }
	}
}
CONF
taskset -c 0 nginx -p "$tmp" -c "$tmp/nginx.conf" &
ngx=$!
i=0
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "nginx did not start" >&2; exit 1; }
	sleep 0.05
done
url=http://127.0.0.1:$port/
r=1
while [ "$r" -le "$rounds" ]; do
	for b in epoll io_uring threads; do
		FUTURE_BACKEND=$b timeout 120 taskset -c 1 "$here/fetch" "$url" "$n" "$c" libfuture
	done
	timeout 120 taskset -c 1 "$here/fetch" "$url" "$n" "$c" evhttp
	r=$((r + 1))
done >"$tmp/out"
grep '^I .* failed [1-9]' "$tmp/out" >&2 || true
awk '$1 == "R" { v[$3, $4] = v[$3, $4] " " $5; impls[$3] = 1 }
function median(s,   a, k, i, j, t) {
	k = split(s, a, " ")
	for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++)
		if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return a[int((k + 1) / 2)]
}
END {
	e = median(v["evhttp", "req_per_s"]); ec = median(v["evhttp", "cpu_ns_per_req"])
	printf "%-20s %10s %14s %12s %12s\n", "client", "req/s", "CPU us/req", "x evhttp", "CPU/evhttp"
	for (i in impls) {
		q = median(v[i, "req_per_s"]); cp = median(v[i, "cpu_ns_per_req"])
		printf "%-20s %10.0f %14.2f %12.2f %12.2f\n", i, q, cp / 1000, q / e, cp / ec
	}
}' "$tmp/out" | sort
