/*
 * HTTP client throughput: keep-alive GETs with C requests in flight, each
 * starting the next when it ends, against one server URL. libfuture's
 * fut_http_fetch against libevent's evhttp client (a connection per
 * in-flight request, as its API has no pool), in the same run.
 * Prints requests/s and the client's CPU time per request (R lines, see
 * bench.h).
 *
 *   fetch URL [N requests] [C in flight] [which: libfuture|evhttp|both]
 *         [CAP: libfuture's max_per_host, default C]
 *
 * With CAP below C the rest wait in the client's queue: `fetch URL 40000
 * 40000 libfuture 32` puts 40,000 requests behind 32 connections (the
 * queue's own cost; Tornado's max_clients queue does the same).
 *
 * The URL must be http://IPv4:port/path (evhttp is given the address).
 * Run by bench/client.sh, which starts nginx pinned to the other core.
 */
#include "bench.h"

#include <event2/event.h>
#include <event2/http.h>
#include <future.h>
#include <future/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static long left, done_n, failed, total;

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double wall_s(void)
{
	return (double)bench_now_ns() / 1e9;
}

/* bench.h's format: "R fetch <impl> <metric> <value>". */
static void report(const char *impl, long n, double wall, double cpu)
{
	printf("R fetch %s req_per_s %.0f\n", impl, n / wall);
	printf("R fetch %s cpu_ns_per_req %.0f\n", impl, cpu * 1e9 / n);
	printf("I fetch %s failed %ld\n", impl, failed);
}

/* ---- libfuture ---- */

static fut_loop *loop;
static const char *url;
static struct fut_http_fetch_opts fopts;
static int cap;

static void fut_next(void);

static void fut_got(fut *f, void *arg)
{
	(void)arg;
	const struct fut_http_response *r = fut_http_response_of(f);
	if (!r || r->status != 200)
		failed++;
	done_n++;
	if (left > 0)
		fut_next();
}

static void fut_next(void)
{
	left--;
	fut_on_done(fut_http_fetch(loop, url, &fopts), fut_got, NULL);
}

static void run_libfuture(long n, int c)
{
	loop = fut_loop_new(NULL, NULL);
	fopts.max_per_host = (unsigned)(cap ? cap : c);
	fopts.queue_timeout_ms = 600000; /* the queue's speed, not its limit */
	left = n;
	done_n = failed = 0;
	double t0 = wall_s(), c0 = cpu_s();
	for (int i = 0; i < c && left > 0; i++)
		fut_next();
	fut_loop_run(loop);
	double wall = wall_s() - t0, cpu = cpu_s() - c0;
	char name[32];
	snprintf(name, sizeof(name), "libfuture-%s", fut_loop_backend(loop));
	report(name, done_n, wall, cpu);
	fut_loop_free(loop);
}

/* ---- libevent ---- */

static struct event_base *base;
static const char *host, *path;
static int port;

static void ev_next(struct evhttp_connection *cn);

static void ev_got(struct evhttp_request *req, void *arg)
{
	struct evhttp_connection *cn = arg;
	if (!req || evhttp_request_get_response_code(req) != 200)
		failed++;
	done_n++;
	if (left > 0)
		ev_next(cn);
	else if (done_n == total)
		event_base_loopbreak(base); /* idle connections keep it */
}

static void ev_next(struct evhttp_connection *cn)
{
	left--;
	struct evhttp_request *req = evhttp_request_new(ev_got, cn);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host",
			  host);
	evhttp_make_request(cn, req, EVHTTP_REQ_GET, path);
}

static void run_evhttp(long n, int c)
{
	base = event_base_new();
	struct evhttp_connection **cn = calloc((size_t)c, sizeof(*cn));
	left = n;
	done_n = failed = 0;
	double t0 = wall_s(), c0 = cpu_s();
	for (int i = 0; i < c && left > 0; i++) {
		cn[i] = evhttp_connection_base_new(base, NULL, host,
						   (unsigned short)port);
		ev_next(cn[i]);
	}
	total = n;
	event_base_dispatch(base);
	double wall = wall_s() - t0, cpu = cpu_s() - c0;
	report("evhttp", done_n, wall, cpu);
	for (int i = 0; i < c; i++)
		if (cn[i])
			evhttp_connection_free(cn[i]);
	free(cn);
	event_base_free(base);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: fetch URL [N] [C] "
			"[libfuture|evhttp|both] [CAP]\n");
		return 2;
	}
	url = argv[1];
	long n = argc > 2 ? atol(argv[2]) : 100000;
	int c = argc > 3 ? atoi(argv[3]) : 50;
	const char *which = argc > 4 ? argv[4] : "both";
	cap = argc > 5 ? atoi(argv[5]) : 0;
	static char h[64], p[256];
	if (sscanf(url, "http://%63[0-9.]:%d%255s", h, &port, p) != 3) {
		fprintf(stderr, "fetch: URL must be http://IPv4:port/path\n");
		return 2;
	}
	host = h;
	path = p;
	if (strcmp(which, "evhttp") != 0)
		run_libfuture(n, c);
	if (strcmp(which, "libfuture") != 0)
		run_evhttp(n, c);
	return 0;
}
