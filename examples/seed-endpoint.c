/*
 * seed-endpoint: the seed experiment's endpoint. Each request fetches the
 * upstream URL and answers with its body.
 *
 *   seed-endpoint --mode async|sync|sync-coroutine --upstream URL --port N
 *
 *   async           fut_http_fetch: the loop serves others while waiting
 *   sync            a plain blocking socket client in a callback handler:
 *                   the whole loop waits for every upstream reply
 *   sync-coroutine  the same blocking client in a coroutine handler:
 *                   a coroutine does not make a blocking call non-blocking
 *
 * URL is http://HOST[:PORT][/PATH], HOST a name, an IPv4 address or a
 * bracketed IPv6 one (http://[::1]:8080/x). An upstream that fails gets
 * 502 "upstream failed: why". SIGINT or SIGTERM stops gracefully (5 s); a
 * blocked sync exchange gives up after those, and a second signal exits
 * at once.
 */
#include <future.h>
#include <future/http.h>

#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* A shutdown's grace period, as httpd's. */
#define GRACE_MS 5000

static const char *upstream;
/* The upstream URL in parts, for the sync client: the host (an IPv6
 * literal without its brackets), the port, the authority as the URL writes
 * it (the Host header) and the request target. */
static char up_host[256], up_port[8], up_authority[300], up_path[1024];

/* 502, and why the upstream gave no usable answer, on a line. */
static void bad_gateway(fut_http_req *req, const char *why)
{
	char msg[256];
	int n = snprintf(msg, sizeof(msg), "upstream failed: %.200s\n", why);
	fut_http_resp_header(req, "Content-Type", "text/plain");
	fut_http_respond(req, 502, msg, (size_t)n);
}

/* ---- async ---- */

static void fetched(fut *f, void *arg)
{
	fut_http_req *req = arg;
	const struct fut_http_response *r = fut_http_response_of(f);
	if (!r) {
		bad_gateway(req, fut_strerror(fut_error(f)));
		return;
	}
	fut_http_respond(req, r->status == 200 ? 200 : 502, r->body,
			 r->body_len);
}

static void handle_async(fut_http_req *req, void *arg)
{
	(void)arg;
	/* As many upstream connections as requests in flight. */
	struct fut_http_fetch_opts o = { .max_per_host = 1024 };
	fut_on_done(fut_http_fetch(fut_http_req_loop(req), upstream, &o),
		    fetched, req);
}

/* ---- sync: a plain blocking HTTP/1.0 client ---- */

/* The sync client's limits: the whole exchange (connect, send, receive)
 * in 60 s, as fut_http_fetch's default request timeout, and a response,
 * head and body, of up to 16 MiB. */
#define SYNC_TIMEOUT_MS 60000
#define SYNC_MAX ((size_t)16 << 20)

/* Readable once a shutdown's grace period is over: a blocked exchange
 * gives up, so that the loop gets to finish the shutdown. */
static int stop_pipe[2] = { -1, -1 };

/* Until fd is ready for events: 0, or -1 and why (late: it timed out). */
static int wait_fd(int fd, short events, long long deadline,
		   const char *late, const char **why)
{
	for (;;) {
		struct pollfd p[2] = { { fd, events, 0 },
				       { stop_pipe[0], POLLIN, 0 } };
		long long left = deadline - cli_now_ms();
		if (left <= 0) {
			*why = late;
			return -1;
		}
		int n = poll(p, 2, left > INT_MAX ? INT_MAX : (int)left);
		if (n < 0 && errno != EINTR) {
			*why = strerror(errno);
			return -1;
		}
		if (n > 0 && p[1].revents) {
			*why = "shutting down";
			return -1;
		}
		if (n > 0)
			return 0;
	}
}

/* Connect fd to a's address before the deadline: 0, or -1 and why. */
static int connect_by(int fd, const struct addrinfo *a, long long deadline,
		      const char **why)
{
	if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
		return 0;
	int err = errno;
	socklen_t el = sizeof(err);
	if (err == EINPROGRESS) {
		if (wait_fd(fd, POLLOUT, deadline, "connect timed out", why))
			return -1;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
	}
	if (!err)
		return 0;
	*why = strerror(err);
	return -1;
}

/* A socket connected to the upstream (every address, as curl), or -1 and
 * why. Non-blocking: each wait is a poll bounded by the deadline. */
static int connect_upstream(long long deadline, const char **why)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai, *a;
	int e = getaddrinfo(up_host, up_port, &hints, &ai);
	if (e) {
		*why = gai_strerror(e);
		return -1;
	}
	int fd = -1;
	*why = "no address";
	for (a = ai; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family,
			    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			*why = strerror(errno);
		} else if (connect_by(fd, a, deadline, why)) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	if (fd >= 0)
		*why = NULL;
	return fd;
}

static int send_all(int fd, const char *p, size_t n, long long deadline,
		    const char **why)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (errno != EAGAIN && errno != EWOULDBLOCK &&
			   errno != EINTR) {
			*why = strerror(errno);
			return -1;
		} else if (wait_fd(fd, POLLOUT, deadline, "send timed out",
				   why)) {
			return -1;
		}
	}
	return 0;
}

/* A response read whole, until the upstream closes (HTTP/1.0). */
struct reply {
	char *buf;
	size_t len, cap; /* cap grows to SYNC_MAX + 1: a byte more is too much */
	const char *why; /* why there is no usable reply, or NULL */
};

static int recv_all(int fd, struct reply *r, long long deadline)
{
	for (;;) {
		if (r->len == r->cap) {
			if (r->cap > SYNC_MAX) {
				r->why = "response over 16 MiB";
				return -1;
			}
			size_t cap = r->cap ? r->cap * 2 : 65536;
			cap = cap > SYNC_MAX ? SYNC_MAX + 1 : cap;
			char *b = realloc(r->buf, cap);
			if (!b) {
				r->why = "out of memory";
				return -1;
			}
			r->buf = b;
			r->cap = cap;
		}
		ssize_t n = recv(fd, r->buf + r->len, r->cap - r->len, 0);
		if (n > 0) {
			r->len += (size_t)n;
		} else if (n == 0) {
			return 0;
		} else if (errno != EAGAIN && errno != EWOULDBLOCK &&
			   errno != EINTR) {
			r->why = strerror(errno);
			return -1;
		} else if (wait_fd(fd, POLLIN, deadline, "response timed out",
				   &r->why)) {
			return -1;
		}
	}
}

/* The upstream's response in r, or r->why. It blocks the calling thread
 * (the loop's), as a plain client would, but no longer than
 * SYNC_TIMEOUT_MS (the name lookup aside: getaddrinfo has no timeout). */
static void blocking_get(struct reply *r)
{
	long long deadline = cli_now_ms() + SYNC_TIMEOUT_MS;
	int fd = connect_upstream(deadline, &r->why);
	if (fd < 0)
		return;
	char q[1400];
	int n = snprintf(q, sizeof(q), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n",
			 up_path, up_authority);
	if (send_all(fd, q, (size_t)n, deadline, &r->why) == 0)
		recv_all(fd, r, deadline);
	close(fd);
}

/* The answer async mode gives: the body of a 200, else 502. The request
 * is HTTP/1.0, so the body ends with the connection (or its length). */
static void handle_sync(fut_http_req *req, void *arg)
{
	(void)arg;
	struct reply r = { 0 };
	blocking_get(&r);
	struct fut_http_response_head h;
	struct fut_http_header hv[64];
	ssize_t n = (ssize_t)r.len;
	int hl = r.why ? -1 : fut_http_parse_response(r.buf, r.len, 0, &h, hv,
						      64, NULL);
	const char *why = r.why ? r.why :
			  !r.len ? "empty response" :
			  hl == FUT_HTTP_EINCOMPLETE ? "response cut short" :
			  hl <= 0 ? "malformed response" :
			  h.chunked ? "chunked response to HTTP/1.0" :
			  h.content_length > n - hl ? "body cut short" :
			  NULL;
	if (why) {
		bad_gateway(req, why);
	} else {
		size_t len = h.content_length >= 0 ?
				     (size_t)h.content_length :
				     (size_t)(n - hl);
		fut_http_respond(req, h.status == 200 ? 200 : 502, r.buf + hl,
				 len);
	}
	free(r.buf);
}

/* Split the upstream URL, http://HOST[:PORT][/PATH] with HOST a name, an
 * IPv4 address or a bracketed IPv6 one: 0, or -1. */
static int split_url(const char *url)
{
	if (strncasecmp(url, "http://", 7) != 0)
		return -1;
	const char *a = url + 7, *end = a + strcspn(a, "/?#"), *h = a, *he;
	size_t al = (size_t)(end - a);
	if (!al || al >= sizeof(up_authority))
		return -1;
	memcpy(up_authority, a, al);
	up_authority[al] = '\0';
	if (*a == '[') { /* [::1]: the brackets are no part of the address */
		h = a + 1;
		he = memchr(a, ']', al);
	} else {
		he = memchr(a, ':', al);
		he = he ? he : end;
	}
	const char *p = he && *a == '[' ? he + 1 : he;
	if (!he || he == h || (size_t)(he - h) >= sizeof(up_host) ||
	    (p < end && *p != ':'))
		return -1;
	memcpy(up_host, h, (size_t)(he - h));
	up_host[he - h] = '\0';
	long port = 80;
	char num[8] = "";
	if (p + 1 < end) { /* "host:" is the default port */
		if ((size_t)(end - p - 1) >= sizeof(num))
			return -1;
		memcpy(num, p + 1, (size_t)(end - p - 1));
		if (cli_num(num, 1, 65535, &port) < 0)
			return -1;
	}
	snprintf(up_port, sizeof(up_port), "%ld", port);
	/* The target: path and query; a fragment is not sent. */
	int tl = (int)strcspn(end, "#");
	int n = snprintf(up_path, sizeof(up_path), "%s%.*s",
			 *end == '/' ? "" : "/", tl, end);
	return n < (int)sizeof(up_path) ? 0 : -1;
}

/* ---- SIGINT, SIGTERM: a graceful stop, as httpd ---- */

static fut_loop *loop;
static fut_http_server *srv;

static void shut_done(fut *f, void *arg)
{
	(void)f;
	(void)arg;
	fut_loop_stop(loop);
}

static void shut(void *arg)
{
	(void)arg;
	fut_on_done(fut_http_server_shutdown(srv, GRACE_MS), shut_done, NULL);
}

/*
 * The first signal posts the shutdown. A sync exchange holds the loop (up
 * to SYNC_TIMEOUT_MS), and the shutdown with it: once the grace period is
 * over, blocked exchanges give up (502), and should the loop still not
 * have stopped a little later, the process exits anyway. A second signal
 * exits at once.
 */
static void *on_signal(void *arg)
{
	sigset_t *set = arg;
	siginfo_t first;
	while (sigwaitinfo(set, &first) < 0)
		; /* EINTR */
	fut_loop_post(loop, shut, NULL);
	int sig = cli_second_signal(set, &first, GRACE_MS);
	if (!sig && stop_pipe[1] >= 0) {
		ssize_t w = write(stop_pipe[1], "x", 1);
		(void)w; /* the pipe is empty: it takes the byte */
	}
	/* The server's own grace period starts only when the loop gets to
	 * shut(), which a blocked exchange delays to now: give it whole. */
	if (!sig)
		sig = cli_second_signal(set, &first, GRACE_MS + 2000);
	if (sig) {
		fputs("seed-endpoint: second signal: exiting now\n", stderr);
		_exit(130);
	}
	fputs("seed-endpoint: not stopped after the grace period: exiting\n",
	      stderr);
	_exit(1);
}

#define USAGE "usage: seed-endpoint --mode async|sync|sync-coroutine " \
	      "--upstream URL --port N\n"

/* The options into *mode, upstream and *port: 0, or a usage error (2). */
static int parse_args(int argc, char **argv, const char **mode, int *port)
{
	for (int i = 1; i < argc; i += 2) {
		const char *opt = argv[i], *val = argv[i + 1];
		long v;
		if (strcmp(opt, "--mode") && strcmp(opt, "--upstream") &&
		    strcmp(opt, "--port"))
			return cli_usage_error(USAGE, "seed-endpoint: unknown "
					       "option %s", opt);
		if (!val)
			return cli_usage_error(USAGE, "seed-endpoint: %s needs "
					       "a value", opt);
		if (strcmp(opt, "--mode") == 0)
			*mode = val;
		else if (strcmp(opt, "--upstream") == 0)
			upstream = val;
		else if (cli_num(val, 0, 65535, &v) < 0)
			return cli_usage_error(USAGE, "seed-endpoint: --port: "
					       "%s is not in 0..65535", val);
		else
			*port = (int)v;
	}
	const char *missing = !*mode ? "--mode" : !upstream ? "--upstream" :
			      *port < 0 ? "--port" : NULL;
	if (missing)
		return cli_usage_error(USAGE, "seed-endpoint: %s is required",
				       missing);
	if (strcmp(*mode, "async") && strcmp(*mode, "sync") &&
	    strcmp(*mode, "sync-coroutine"))
		return cli_usage_error(USAGE, "seed-endpoint: --mode: %s is not "
				       "async, sync or sync-coroutine", *mode);
	if (split_url(upstream))
		return cli_usage_error(USAGE, "seed-endpoint: --upstream: %s is "
				       "not http://HOST[:PORT][/PATH] (PORT in "
				       "1..65535)", upstream);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = NULL;
	int port = -1;
	if (cli_wants_help(argc, argv)) {
		fputs(USAGE, stdout);
		return 0;
	}
	if (parse_args(argc, argv, &mode, &port))
		return 2;
	struct fut_http_server_opts o = { .port = port };
	if (strcmp(mode, "async") == 0) {
		o.handler = handle_async;
	} else {
		o.handler = handle_sync;
		o.coroutine = strcmp(mode, "sync-coroutine") == 0;
		if (pipe(stop_pipe) < 0) {
			perror("seed-endpoint: pipe");
			return 1;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	/* Blocked before any thread starts, so that only on_signal takes
	 * them. */
	static sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	int err;
	loop = fut_loop_new(NULL, &err);
	if (!loop) {
		fprintf(stderr, "seed-endpoint: %s\n", fut_strerror(err));
		return 1;
	}
	err = fut_http_server_new(loop, &o, &srv);
	if (err) {
		fprintf(stderr, "seed-endpoint: cannot listen on port %d: %s\n",
			port, fut_strerror(err));
		fut_loop_free(loop);
		return 1;
	}
	pthread_t t;
	if (pthread_create(&t, NULL, on_signal, &set) != 0) {
		fprintf(stderr, "seed-endpoint: cannot start a thread\n");
		fut_http_server_free(srv);
		fut_loop_free(loop);
		return 1;
	}
	/* Its post happens before the loop stops; after, it only waits for
	 * a reason to exit early, and ends with the process. */
	pthread_detach(t);
	fprintf(stderr, "seed-endpoint: %s mode on port %d (%s), upstream %s\n",
		mode, fut_http_server_port(srv), fut_loop_backend(loop),
		upstream);
	fut_loop_run(loop);
	fut_http_server_free(srv);
	fut_loop_free(loop);
	return 0;
}
