#!/bin/sh
# HTTP "hello world" keep-alive benchmark: libfuture's examples/httpd (one
# thread, once per backend) against nginx (1 worker, return 200), libevent's
# evhttp, Tornado and raw (bench/raw_epoll.c: epoll + recv + send, parses
# nothing: the floor), in one run. Servers pinned to CPU 0, wrk -t1 to CPU 1.
# One wrk thread saturates near the client's limit, so the comparison that
# matters is server CPU time per request (utime+stime of the server, all
# threads, over the run / requests), plus requests/s and p99.
# Connections: 50 and 500 keep-alive, and "50c": 50 with
# "Connection: close" on every request, so each request is a new
# connection (accept, read, write, close; raw is left out: it parses
# nothing and would keep the connection).
#
# Every server is started once; then each of REPS rounds runs wrk against
# every server in turn, so a peer and libfuture are measured close together.
# Ratios are taken within a round, and the table shows the median of each
# value and of each ratio over the rounds (these machines are shared:
# absolute numbers drift by 30% within minutes, ratios much less).
#
#   bench/http.sh [-d SECONDS] [-r REPS] [-o NAME]...
#       NAME: nginx raw evhttp tornado epoll io_uring threads
# Needs wrk, nginx, python3-tornado, libevent-dev (make -C bench
# evhttp_hello raw_epoll) and a built tree (make; HTTPD=<build>/examples/httpd
# for a separate build directory). Raw wrk output of the
# last round: bench/out/http-*.txt.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
dur=5
reps=1
only=""
while getopts d:o:r:h c; do
	case $c in
	d) dur=$OPTARG ;;
	o) only="$only $OPTARG" ;;
	r) reps=$OPTARG ;;
	*) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
done
py=/usr/bin/python3
[ -x $py ] || py=python3
mkdir -p "$here/out"
tmp=$(mktemp -d)
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM
tck=$(getconf CLK_TCK)
[ -x "$here/evhttp_hello" ] || make -C "$here" evhttp_hello >/dev/null
[ -x "$here/raw_epoll" ] || make -C "$here" raw_epoll >/dev/null

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
pin() { for t in $(ls "/proc/$1/task"); do taskset -pc 0 "$t" >/dev/null 2>&1; done; }

results=$tmp/results
: >"$results"
servers=""
start() { # name, command... (listening on $port)
	name=$1; shift
	"$@" >"$tmp/$name.log" 2>&1 &
	p=$!
	if ! wait_port "$port"; then
		echo "$name: did not start"; cat "$tmp/$name.log"; kill $p; return
	fi
	pin $p
	timeout 30 taskset -c 1 wrk -t1 -c50 -d1s "http://127.0.0.1:$port/" >/dev/null 2>&1
	pids="$pids $p"
	servers="$servers $name:$p:$port"
}

measure() { # round, name, pid, port
	for conns in 50 500 50c; do
		hdr=
		case $conns in
		*c) [ "$2" = raw ] && continue
		    hdr="Connection: close" ;;
		esac
		pin "$3" # threads started since (pool workers) go to CPU 0 too
		t0=$(cpu_ticks "$3")
		out="$here/out/http-$2-c$conns.txt"
		timeout $((dur + 30)) taskset -c 1 wrk -t1 -c${conns%c} -d${dur}s --latency \
			${hdr:+-H "$hdr"} "http://127.0.0.1:$4/" >"$out" 2>&1
		t1=$(cpu_ticks "$3")
		rps=$(awk '/^Requests\/sec/ {print $2}' "$out")
		reqs=$(awk '/requests in/ {print $1}' "$out")
		p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
		errs=$(awk '/Non-2xx|Socket errors/' "$out" | tr '\n' ' ')
		us=$(awk -v d=$((t1 - t0)) -v t=$tck -v n="$reqs" 'BEGIN { if (n > 0) printf "%.2f", d / t * 1e6 / n; else print "-" }')
		echo "$1 $2 $conns ${rps:--} $us ${p99:--} $errs" >>"$results"
	done
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
	start nginx nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf"
fi
if want raw; then
	port=$(free_port)
	start raw "$here/raw_epoll" "$port"
fi
if want evhttp; then
	port=$(free_port)
	start evhttp "$here/evhttp_hello" "$port"
fi
if want tornado && $py -c 'import tornado' 2>/dev/null; then
	port=$(free_port)
	start tornado $py "$top/examples/tornado/hello.py" "$port"
fi
for b in epoll io_uring threads; do
	want $b || continue
	port=$(free_port)
	FUTURE_BACKEND=$b start "libfuture-$b" "${HTTPD:-$top/examples/httpd}" --port "$port" --host 127.0.0.1
done

round=1
while [ $round -le "$reps" ]; do
	for s in $servers; do
		IFS=: read -r name p port <<SRV
$s
SRV
		measure $round "$name" "$p" "$port"
	done
	round=$((round + 1))
done
if [ "$reps" -gt 1 ]; then
	echo "round server conns req/s cpu-us/req p99-ms"
	cat "$results"
	echo
fi

printf '%-18s %5s %8s %10s %8s %9s %8s %8s %9s %9s\n' server conns req/s \
	cpu-us/req p99-ms cpu/nginx cpu/raw x-evhttp x-tornado cpu-x-trn
awk '
	function med(s,   a, n, i, j, t) {
		n = split(s, a, " ")
		for (i = 2; i <= n; i++) {
			t = a[i] + 0
			for (j = i - 1; j >= 1 && a[j] + 0 > t; j--)
				a[j + 1] = a[j]
			a[j + 1] = t
		}
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	function fmt(s, f) { return s == "" ? "-" : sprintf(f, med(s)) }
	{
		k = $2 " " $3
		if (!(k in seen)) { seen[k] = 1; keys[++nk] = k; nm[nk] = $2; cn[nk] = $3 }
		if ($1 > rounds) rounds = $1
		R[$1, $2, $3] = $4; U[$1, $2, $3] = $5; P[$1, $2, $3] = $6
		for (i = 7; i <= NF; i++) E[k] = E[k] " " $i
	}
	END {
		for (i = 1; i <= nk; i++) {
			n = nm[i]; c = cn[i]
			r = u = p = an = ar = ae = at = ct = ""
			for (q = 1; q <= rounds; q++) {
				if ((q, n, c) in R && R[q, n, c] != "-") r = r " " R[q, n, c]
				if ((q, n, c) in U && U[q, n, c] != "-") u = u " " U[q, n, c]
				if ((q, n, c) in P && P[q, n, c] != "-") p = p " " P[q, n, c]
				if (U[q, n, c] > 0 && U[q, "nginx", c] > 0)
					an = an " " U[q, n, c] / U[q, "nginx", c]
				if (U[q, n, c] > 0 && U[q, "raw", c] > 0)
					ar = ar " " U[q, n, c] / U[q, "raw", c]
				if (R[q, n, c] > 0 && R[q, "evhttp", c] > 0)
					ae = ae " " R[q, n, c] / R[q, "evhttp", c]
				if (R[q, n, c] > 0 && R[q, "tornado", c] > 0)
					at = at " " R[q, n, c] / R[q, "tornado", c]
				if (U[q, n, c] > 0 && U[q, "tornado", c] > 0)
					ct = ct " " U[q, "tornado", c] / U[q, n, c]
			}
			printf "%-18s %5s %8s %10s %8s %9s %8s %8s %9s %9s%s\n", n, c,
				fmt(r, "%.0f"), fmt(u, "%.2f"), fmt(p, "%.3f"),
				fmt(an, "%.2fx"), fmt(ar, "%.2fx"), fmt(ae, "%.2fx"),
				fmt(at, "%.1fx"), fmt(ct, "%.1fx"), E[keys[i]]
		}
	}' "$results"
