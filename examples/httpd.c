/*
 * httpd: the libfuture-http example server.
 *
 *   httpd --port N [--host H] [--threads T]
 *
 *   GET  /           200 "hello world\n"
 *   POST /echo       200 with the request body (up to 64 MiB, else 413)
 *   GET  /sleep?ms=N 200 "slept\n" after N ms, blocking nothing
 *
 * With --threads T, T loops each run a server on the same port
 * (SO_REUSEPORT) and the kernel spreads connections over them. SIGINT or
 * SIGTERM shuts down gracefully (in-flight requests get 5 s). Without
 * --host it listens on every IPv6 and IPv4 address; it raises its soft
 * limit of open files to the hard one (a descriptor per connection).
 */
#include <future.h>
#include <future/http.h>

#include "cli.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

struct worker {
	pthread_t tid;
	fut_loop *loop;
	fut_http_server *srv;
	int err;
};

static const char *host;
static int port = -1;

static int eq(const char *s, size_t len, const char *lit)
{
	return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

/* RFC 9110 15.5.6: a known resource asked with a method it does not
 * support gets 405 and the list of methods it does (Allow). */
static void not_allowed(fut_http_req *req, const char *allow)
{
	fut_http_resp_header(req, "Allow", allow);
	fut_http_resp_header(req, "Content-Type", "text/plain");
	fut_http_respond(req, 405, "method not allowed\n", 19);
}

/* RFC 9110 9.1: the server hands every method to its handler; one this
 * origin recognises for no resource gets 501. */
static int known_method(const struct fut_http_request_head *h)
{
	static const char *const known[] = { "GET", "HEAD", "POST", "PUT",
					     "DELETE", "OPTIONS", "TRACE",
					     "PATCH" };
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (eq(h->method, h->method_len, known[i]))
			return 1;
	return 0;
}

static void slept(fut *f, void *arg)
{
	fut_http_req *req = arg;
	fut_http_resp_header(req, "Content-Type", "text/plain");
	if (fut_error(f))
		fut_http_respond(req, 503, "shutting down\n", 14);
	else
		fut_http_respond(req, 200, "slept\n", 6);
}

static void handle(fut_http_req *req, void *arg)
{
	(void)arg;
	const struct fut_http_request_head *h = fut_http_req_head(req);
	/* HEAD is GET without the body; the server drops the body itself. */
	int get = eq(h->method, h->method_len, "GET") ||
		  eq(h->method, h->method_len, "HEAD");
	if (!known_method(h)) {
		/* Closed as the server's own error responses are: a client
		 * speaking some other protocol is better stopped. */
		fut_http_resp_header(req, "Connection", "close");
		fut_http_resp_header(req, "Content-Type", "text/plain");
		fut_http_respond(req, 501, "not implemented\n", 16);
	} else if (eq(h->path, h->path_len, "/")) {
		if (!get)
			return not_allowed(req, "GET, HEAD");
		fut_http_resp_header(req, "Content-Type", "text/plain");
		fut_http_respond(req, 200, "hello world\n", 12);
	} else if (eq(h->path, h->path_len, "/echo")) {
		if (!eq(h->method, h->method_len, "POST"))
			return not_allowed(req, "POST");
		size_t len;
		const void *body = fut_http_req_body(req, &len);
		fut_http_resp_header(req, "Content-Type",
				     "application/octet-stream");
		fut_http_respond(req, 200, body, len);
	} else if (eq(h->path, h->path_len, "/sleep")) {
		if (!get)
			return not_allowed(req, "GET, HEAD");
		const char *v;
		size_t vl;
		char num[24] = "";
		if (fut_http_query_param(h->query, h->query_len, "ms", &v, &vl) &&
		    vl && vl < sizeof(num))
			memcpy(num, v, vl);
		char *end;
		long ms = strtol(num, &end, 10);
		if (!*num || *end || ms < 0 || ms > 3600000) {
			fut_http_respond(req, 400, "bad ms\n", 7);
			return;
		}
		fut_on_done(fut_sleep(fut_http_req_loop(req), (uint64_t)ms),
			    slept, req);
	} else {
		fut_http_respond(req, 404, "not found\n", 10);
	}
}

static void *run(void *arg)
{
	struct worker *w = arg;
	fut_loop_run(w->loop);
	return NULL;
}

static void shut_done(fut *f, void *arg)
{
	(void)f;
	fut_loop_stop(arg);
}

static void shut(void *arg)
{
	struct worker *w = arg;
	fut_on_done(fut_http_server_shutdown(w->srv, 5000), shut_done, w->loop);
}

#define USAGE "usage: httpd --port N [--host H] [--threads T]\n"

/* The first n workers (a start-up failure: none runs yet). */
static void free_workers(struct worker *w, int n)
{
	for (int i = 0; i < n; i++) {
		fut_http_server_free(w[i].srv);
		fut_loop_free(w[i].loop);
	}
	free(w);
}

static int usage(void)
{
	fputs(USAGE, stderr);
	return 2;
}

int main(int argc, char **argv)
{
	int threads = 1;
	if (cli_wants_help(argc, argv)) {
		fputs(USAGE, stdout);
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			return usage();
		const char *opt = argv[i], *val = argv[++i];
		long v;
		if (strcmp(opt, "--port") == 0) {
			if (cli_num(val, 0, 65535, &v) < 0)
				return usage();
			port = (int)v;
		} else if (strcmp(opt, "--host") == 0) {
			host = val;
		} else if (strcmp(opt, "--threads") == 0) {
			if (cli_num(val, 1, 1024, &v) < 0)
				return usage();
			threads = (int)v;
		} else {
			return usage();
		}
	}
	if (port < 0)
		return usage();

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* One descriptor per connection: the usual soft limit of 1024 would
	 * pause accepting at ~1000 clients (wrk -c2000), so take the hard
	 * limit, as Go's runtime and many servers do at start. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}

	static char bare[256]; /* --host [::1], as a URL writes it */
	size_t hl = host ? strlen(host) : 0;
	if (hl > 2 && host[0] == '[' && host[hl - 1] == ']' &&
	    hl - 2 < sizeof(bare)) {
		memcpy(bare, host + 1, hl - 2);
		host = bare;
	}
	bool v6 = host && strchr(host, ':'); /* printed as [::1]:8080 */
	struct worker *w = calloc((size_t)threads, sizeof(*w));
	if (!w)
		return 1;
	for (int i = 0; i < threads; i++) {
		int err;
		w[i].loop = fut_loop_new(NULL, &err);
		if (!w[i].loop) {
			fprintf(stderr, "httpd: fut_loop_new: %s\n",
				fut_strerror(err));
			free_workers(w, i);
			return 1;
		}
		struct fut_http_server_opts o = {
			.host = host, .port = port, .handler = handle,
			.reuseport = threads > 1,
			/* /echo takes bodies up to 64 MiB (library default:
			 * 1 MiB; larger ones get 413). */
			.limits = { .max_body = 64u << 20 },
		};
		err = fut_http_server_new(w[i].loop, &o, &w[i].srv);
		if (err) {
			fprintf(stderr, "httpd: cannot listen on %s%s%s:%d: %s\n",
				v6 ? "[" : "", host ? host : "*", v6 ? "]" : "",
				port, fut_strerror(err));
			free_workers(w, i + 1);
			return 1;
		}
		if (port == 0) /* the others share the first one's port */
			port = fut_http_server_port(w[i].srv);
	}
	fprintf(stderr, "httpd: listening on %s%s%s:%d (%d thread%s, %s)\n",
		v6 ? "[" : "", host ? host : "*", v6 ? "]" : "", port,
		threads, threads > 1 ? "s" : "",
		fut_loop_backend(w[0].loop));
	for (int i = 0; i < threads; i++)
		pthread_create(&w[i].tid, NULL, run, &w[i]);
	int sig;
	sigwait(&set, &sig);
	for (int i = 0; i < threads; i++)
		fut_loop_post(w[i].loop, shut, &w[i]);
	for (int i = 0; i < threads; i++) {
		pthread_join(w[i].tid, NULL);
		fut_http_server_free(w[i].srv);
		fut_loop_free(w[i].loop);
	}
	free(w);
	return 0;
}
