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
 * (SO_REUSEPORT) and the kernel spreads connections over them; a port
 * another process holds is refused, as with one thread. SIGINT or
 * SIGTERM shuts down gracefully (in-flight requests get 5 s, a /sleep
 * still waiting near the end gets 503); a second one exits at once. Without
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
#include <unistd.h>

/* A shutdown's grace period, and how long before its end the /sleep
 * requests still waiting are answered 503: time enough to write that
 * answer before the server closes what is left. */
#define GRACE_MS 5000
#define CUTOFF_MS 250

struct worker;

/* A /sleep in progress, listed so that a shutdown can answer it. */
struct sleeper {
	fut *f; /* borrowed: the loop holds it until slept() ran */
	fut_http_req *req;
	struct worker *w;
	struct sleeper *prev, *next;
};

struct worker {
	pthread_t tid;
	fut_loop *loop;
	fut_http_server *srv;
	struct sleeper *sleeping;
	fut *cutoff; /* borrowed: the shutdown's timer for the sleepers */
	bool cut;    /* past the cutoff: a new /sleep is answered 503 now */
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

/* Cancelled (by cut_sleepers, or the loop's end): 503. */
static void slept(fut *f, void *arg)
{
	struct sleeper *s = arg;
	fut_http_req *req = s->req;
	if (s->prev)
		s->prev->next = s->next;
	else
		s->w->sleeping = s->next;
	if (s->next)
		s->next->prev = s->prev;
	free(s);
	fut_http_resp_header(req, "Content-Type", "text/plain");
	if (fut_error(f))
		fut_http_respond(req, 503, "shutting down\n", 14);
	else
		fut_http_respond(req, 200, "slept\n", 6);
}

static void start_sleep(fut_http_req *req, struct worker *w, long ms)
{
	if (w->cut) { /* a request completed after the cutoff */
		fut_http_resp_header(req, "Content-Type", "text/plain");
		fut_http_respond(req, 503, "shutting down\n", 14);
		return;
	}
	struct sleeper *s = malloc(sizeof(*s));
	fut *f = s ? fut_sleep(w->loop, (uint64_t)ms) : NULL;
	if (!f) {
		free(s);
		fut_http_respond(req, 503, "out of memory\n", 14);
		return;
	}
	/* Listed first: slept() unlinks it, whenever it runs. */
	*s = (struct sleeper){ .f = f, .req = req, .w = w,
			       .next = w->sleeping };
	if (w->sleeping)
		w->sleeping->prev = s;
	w->sleeping = s;
	fut_on_done(f, slept, s);
}

static void handle(fut_http_req *req, void *arg)
{
	struct worker *w = arg;
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
	} else if (eq(h->path, h->path_len, "*")) {
		/* OPTIONS * (the parser allows "*" for nothing else): the
		 * server as a whole (RFC 9110 9.3.7). */
		fut_http_resp_header(req, "Allow", "GET, HEAD, POST, OPTIONS");
		fut_http_respond(req, 204, NULL, 0);
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
		long ms;
		if (cli_num(num, 0, 3600000, &ms) < 0) {
			fut_http_respond(req, 400, "bad ms\n", 7);
			return;
		}
		start_sleep(req, w, ms);
	} else {
		fut_http_respond(req, 404, "not found\n", 10);
	}
}

/* Expect: 100-continue: a request handle() would refuse is refused before
 * the client sends its body (an upload to an unknown method or path went
 * up whole just to get its 501 or 404); /echo's and /sleep's bodies are
 * let come (a sleep answers later, which the hook cannot). */
static void expect(fut_http_req *req, void *arg)
{
	const struct fut_http_request_head *h = fut_http_req_head(req);
	int get = eq(h->method, h->method_len, "GET") ||
		  eq(h->method, h->method_len, "HEAD");
	if ((eq(h->path, h->path_len, "/echo") &&
	     eq(h->method, h->method_len, "POST")) ||
	    (eq(h->path, h->path_len, "/sleep") && get))
		return;
	handle(req, arg);
}

static void *run(void *arg)
{
	struct worker *w = arg;
	fut_loop_run(w->loop);
	return NULL;
}

/* Shortly before the grace period ends: the sleepers still waiting get
 * 503 now, rather than no answer at all when their connections close. */
static void cut_sleepers(fut *f, void *arg)
{
	struct worker *w = arg;
	w->cutoff = NULL;
	if (fut_error(f))
		return; /* cancelled: the shutdown ended first */
	w->cut = true;
	for (struct sleeper *s = w->sleeping, *n; s; s = n) {
		n = s->next; /* slept() frees s */
		fut_cancel(s->f);
	}
}

static void shut_done(fut *f, void *arg)
{
	(void)f;
	struct worker *w = arg;
	if (w->cutoff)
		fut_cancel(w->cutoff);
	fut_loop_stop(w->loop);
}

static void shut(void *arg)
{
	struct worker *w = arg;
	w->cutoff = fut_sleep(w->loop, GRACE_MS - CUTOFF_MS);
	if (w->cutoff)
		fut_on_done(w->cutoff, cut_sleepers, w);
	fut_on_done(fut_http_server_shutdown(w->srv, GRACE_MS), shut_done, w);
}

/* SIGINT and SIGTERM, blocked in every thread, and the first one taken. */
static sigset_t sigs;
static siginfo_t first_sig;

/* A second SIGINT or SIGTERM during the grace period: the user wants out
 * now, whatever is still in flight. */
static void *force_stop(void *arg)
{
	(void)arg;
	cli_second_signal(&sigs, &first_sig, -1);
	fputs("httpd: second signal: exiting now\n", stderr);
	_exit(130);
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

/* The value of option opt in [lo, hi], or a usage error (2). */
static int num_arg(const char *opt, const char *val, long lo, long hi,
		   int *out)
{
	long v;
	if (cli_num(val, lo, hi, &v) < 0)
		return cli_usage_error(USAGE, "httpd: %s: %s is not in %ld..%ld",
				       opt, val, lo, hi);
	*out = (int)v;
	return 0;
}

static bool v6; /* the host is an IPv6 address: printed as [::1]:8080 */

static int cannot_listen(int err)
{
	fprintf(stderr, "httpd: cannot listen on %s%s%s:%d: %s\n",
		v6 ? "[" : "", host ? host : "*", v6 ? "]" : "", port,
		fut_strerror(err));
	return 1;
}

/*
 * Whether a server without SO_REUSEPORT could take the port: the kernel
 * lets the same user's processes share a SO_REUSEPORT port, so a second
 * httpd --threads 2 would silently join the first one's group where one
 * thread fails with "Address already in use". 0, or the error.
 */
static int port_free(fut_loop *loop)
{
	struct fut_http_server_opts o = {
		.host = host, .port = port, .handler = handle,
		.expect = expect,
	};
	fut_http_server *probe;
	int err = fut_http_server_new(loop, &o, &probe);
	if (!err)
		fut_http_server_free(probe);
	return err;
}

int main(int argc, char **argv)
{
	int threads = 1;
	if (cli_wants_help(argc, argv)) {
		fputs(USAGE, stdout);
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i], *val = argv[i + 1];
		int known = !strcmp(opt, "--port") || !strcmp(opt, "--host") ||
			    !strcmp(opt, "--threads");
		if (!known)
			return cli_usage_error(USAGE, "httpd: unknown option %s",
					       opt);
		if (!val)
			return cli_usage_error(USAGE, "httpd: %s needs a value",
					       opt);
		i++;
		if (strcmp(opt, "--port") == 0) {
			if (num_arg(opt, val, 0, 65535, &port))
				return 2;
		} else if (strcmp(opt, "--host") == 0) {
			host = val;
		} else if (num_arg(opt, val, 1, 1024, &threads)) {
			return 2;
		}
	}
	if (port < 0)
		return cli_usage_error(USAGE, "httpd: --port is required");

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
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
	v6 = host && strchr(host, ':');
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
		/* Port 0 needs no probe: the first server takes a free port,
		 * the others share it. */
		if (i == 0 && threads > 1 && port != 0 &&
		    (err = port_free(w[0].loop))) {
			free_workers(w, 1);
			return cannot_listen(err);
		}
		struct fut_http_server_opts o = {
			.host = host, .port = port, .handler = handle,
			.expect = expect,
			.arg = &w[i], .reuseport = threads > 1,
			/* /echo takes bodies up to 64 MiB (library default:
			 * 1 MiB; larger ones get 413). */
			.limits = { .max_body = 64u << 20 },
		};
		err = fut_http_server_new(w[i].loop, &o, &w[i].srv);
		if (err) {
			free_workers(w, i + 1);
			return cannot_listen(err);
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
	while (sigwaitinfo(&sigs, &first_sig) < 0)
		; /* EINTR */
	pthread_t forcer;
	if (pthread_create(&forcer, NULL, force_stop, NULL) == 0)
		pthread_detach(forcer);
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
