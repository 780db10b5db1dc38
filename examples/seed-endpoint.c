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
 */
#include <future.h>
#include <future/http.h>

#include "cli.h"

#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *upstream;
static char up_host[256], up_port[8], up_path[1024];

/* ---- async ---- */

static void fetched(fut *f, void *arg)
{
	fut_http_req *req = arg;
	const struct fut_http_response *r = fut_http_response_of(f);
	if (!r) {
		const char *msg = fut_strerror(fut_error(f));
		fut_http_respond(req, 502, msg, strlen(msg));
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

static ssize_t blocking_get(char *buf, size_t cap)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai, *a;
	if (getaddrinfo(up_host, up_port, &hints, &ai))
		return -1;
	int fd = -1;
	for (a = ai; a && fd < 0; a = a->ai_next) { /* every address, as curl */
		fd = socket(a->ai_family, SOCK_STREAM, 0);
		if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return -1;
	char q[1400];
	int n = snprintf(q, sizeof(q), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n",
			 up_path, up_host);
	if (write(fd, q, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	size_t len = 0;
	ssize_t r;
	while (len < cap && (r = read(fd, buf + len, cap - len)) > 0)
		len += (size_t)r;
	close(fd);
	return (ssize_t)len;
}

/* The answer async mode gives: the body of a 200, else 502. The request
 * is HTTP/1.0, so the body ends with the connection (or its length). */
static void handle_sync(fut_http_req *req, void *arg)
{
	(void)arg;
	char buf[65536];
	ssize_t n = blocking_get(buf, sizeof(buf));
	struct fut_http_response_head h;
	struct fut_http_header hv[64];
	int hl = n > 0 ? fut_http_parse_response(buf, (size_t)n, 0, &h, hv, 64,
						 NULL) : -1;
	const char *why = n < 0 ? "upstream failed\n" :
			  (size_t)n == sizeof(buf) ? "upstream body too large\n" :
			  hl <= 0 || h.chunked ? "malformed upstream response\n" :
			  h.content_length > n - hl ? "upstream body cut short\n" :
			  NULL;
	if (why) {
		fut_http_respond(req, 502, why, strlen(why));
		return;
	}
	size_t len = h.content_length >= 0 ? (size_t)h.content_length :
					     (size_t)(n - hl);
	fut_http_respond(req, h.status == 200 ? 200 : 502, buf + hl, len);
}

static int split_url(const char *url)
{
	const char *h = url + 7;
	if (strncmp(url, "http://", 7) != 0)
		return -1;
	size_t hl = strcspn(h, ":/");
	if (!hl || hl >= sizeof(up_host))
		return -1;
	memcpy(up_host, h, hl);
	const char *p = h + hl;
	snprintf(up_port, sizeof(up_port), "80");
	if (*p == ':') {
		size_t pl = strcspn(p + 1, "/");
		if (!pl || pl >= sizeof(up_port))
			return -1;
		memcpy(up_port, p + 1, pl);
		up_port[pl] = '\0';
		p += 1 + pl;
	}
	snprintf(up_path, sizeof(up_path), "%s", *p ? p : "/");
	return 0;
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
	fut_on_done(fut_http_server_shutdown(srv, 5000), shut_done, NULL);
}

static void *on_signal(void *arg)
{
	int sig;
	sigwait(arg, &sig);
	fut_loop_post(loop, shut, NULL);
	return NULL;
}

#define USAGE "usage: seed-endpoint --mode async|sync|sync-coroutine " \
	      "--upstream URL --port N\n"

static int usage(void)
{
	fputs(USAGE, stderr);
	return 2;
}

int main(int argc, char **argv)
{
	const char *mode = NULL;
	int port = -1;
	long v;
	if (cli_wants_help(argc, argv)) {
		fputs(USAGE, stdout);
		return 0;
	}
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--mode") == 0)
			mode = argv[i + 1];
		else if (strcmp(argv[i], "--upstream") == 0)
			upstream = argv[i + 1];
		else if (strcmp(argv[i], "--port") == 0 &&
			 cli_num(argv[i + 1], 0, 65535, &v) == 0)
			port = (int)v;
		else
			return usage();
	}
	if (argc % 2 != 1 || !mode || !upstream || port < 0 || port > 65535)
		return usage();
	if (split_url(upstream)) {
		fprintf(stderr, "seed-endpoint: unusable upstream URL %s\n",
			upstream);
		return 2;
	}
	struct fut_http_server_opts o = { .port = port };
	if (strcmp(mode, "async") == 0) {
		o.handler = handle_async;
	} else if (strcmp(mode, "sync") == 0) {
		o.handler = handle_sync;
	} else if (strcmp(mode, "sync-coroutine") == 0) {
		o.handler = handle_sync;
		o.coroutine = 1;
	} else {
		return usage();
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
	/* It ends after its post, which happens before the loop stops. */
	pthread_detach(t);
	fprintf(stderr, "seed-endpoint: %s mode on port %d (%s), upstream %s\n",
		mode, fut_http_server_port(srv), fut_loop_backend(loop),
		upstream);
	fut_loop_run(loop);
	fut_http_server_free(srv);
	fut_loop_free(loop);
	return 0;
}
