/*
 * libfuture-http server and client, in one process, on the backend
 * FUTURE_BACKEND names. Raw-socket clients run as blocking jobs on the
 * loop's pool (fut_run_blocking) so that the server keeps running on the
 * loop meanwhile; their byte-exact exchanges check what curl-like clients
 * would never send.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* unshare(2) */
#endif
#include <future.h>
#include <future/http.h>

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests.h"

/* ---- the handler every test serves ---- */

static int stream_pending; /* write futures that had to wait */

static int route(const fut_http_req *req, const char *m, const char *p)
{
	const struct fut_http_request_head *h = fut_http_req_head(req);
	return h->method_len == strlen(m) && !memcmp(h->method, m, strlen(m)) &&
	       h->path_len == strlen(p) && !memcmp(h->path, p, strlen(p));
}

static void slept(fut *f, void *arg)
{
	fut_http_respond(arg, fut_error(f) ? 503 : 200, "slept\n", 6);
}

static int64_t streamer(void *arg)
{
	fut_http_req *req = arg;
	static char chunk[65536];
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (char)('a' + i % 26);
	ck_assert_int_eq(fut_http_stream_begin(req, 200), 0);
	for (int i = 0; i < 64; i++) {
		fut *w = fut_http_stream_write(req, chunk, sizeof(chunk));
		ck_assert_ptr_nonnull(w);
		if (fut_state(w) == FUT_PENDING)
			stream_pending++;
		int64_t v;
		if (fut_await(w, &v) < 0)
			break;
	}
	fut_http_stream_end(req);
	return 0;
}

static void handler(fut_http_req *req, void *arg)
{
	(void)arg;
	const struct fut_http_request_head *h = fut_http_req_head(req);
	if (route(req, "GET", "/") || route(req, "HEAD", "/")) {
		ck_assert_int_eq(fut_http_resp_header(req, "Content-Type",
						      "text/plain"), 0);
		ck_assert_int_eq(fut_http_respond(req, 200, "hello world\n", 12),
				 0);
		/* A finished request is not usable any more. */
	} else if (route(req, "POST", "/echo")) {
		size_t n;
		const void *b = fut_http_req_body(req, &n);
		fut_http_respond(req, 200, b, n);
	} else if (h->path_len == 8 && !memcmp(h->path, "/b/c/d;p", 8)) {
		/* RFC 3986 5.4's base path: 302 to ?to=REF, taken as it is
		 * but for '^', sent as '#' (a '#' in the URL is not sent) */
		const char *to = memmem(h->query, h->query_len, "to=", 3);
		char loc[128];
		snprintf(loc, sizeof(loc), "%.*s",
			 to ? (int)(h->query + h->query_len - to - 3) : 0,
			 to ? to + 3 : "");
		for (char *c = loc; (c = strchr(c, '^'));)
			*c = '#';
		fut_http_resp_header(req, "Location", loc);
		fut_http_respond(req, 302, NULL, 0);
	} else if (h->path_len == 9 && !memcmp(h->path, "/redirect", 9)) {
		/* ?code=NNN&to=LOCATION, "to" last and taken as it is */
		const char *q = h->query ? h->query : "";
		size_t ql = h->query ? h->query_len : 0;
		const char *to = memmem(q, ql, "to=", 3);
		char loc[512];
		snprintf(loc, sizeof(loc), "%.*s",
			 to ? (int)(q + ql - to - 3) : 0, to ? to + 3 : "");
		if (to)
			fut_http_resp_header(req, "Location", loc);
		fut_http_respond(req, atoi(q + 5), "moved\n", 6);
	} else if (route(req, "GET", "/spaced")) {
		/* a Location as some servers send it: a space, raw UTF-8 */
		fut_http_resp_header(req, "Location", "/hop/0 \xc3\xa9");
		fut_http_respond(req, 302, NULL, 0);
	} else if (h->path_len >= 5 && !memcmp(h->path, "/hop/", 5)) {
		/* /hop/N sends to N-1, relative to itself; /hop/0 is the end */
		int n = atoi(h->path + 5);
		char loc[16];
		snprintf(loc, sizeof(loc), "%d", n - 1);
		if (n > 0) {
			fut_http_resp_header(req, "Location", loc);
			fut_http_respond(req, 302, NULL, 0);
		} else {
			fut_http_respond(req, 200, "done", 4);
		}
	} else if (route(req, "POST", "/len")) {
		char out[32];
		size_t n;
		fut_http_req_body(req, &n);
		fut_http_respond(req, 200, out, (size_t)snprintf(out,
				 sizeof(out), "%zu", n));
	} else if (route(req, "GET", "/sleep")) {
		const char *v;
		size_t vl;
		int ms = fut_http_query_param(h->query, h->query_len, "ms", &v,
					      &vl) ? atoi(v) : 0;
		fut_on_done(fut_sleep(fut_http_req_loop(req), (uint64_t)ms),
			    slept, req);
	} else if (route(req, "GET", "/host")) {
		size_t n = 0;
		const char *v = fut_http_req_header(req, "Host", &n);
		fut_http_respond(req, 200, v ? v : "", v ? n : 0);
	} else if (route(req, "GET", "/s204") || route(req, "GET", "/s205")) {
		/* Content given where the status allows none: dropped. */
		ck_assert_int_eq(fut_http_stream_begin(req,
				h->path[4] == '4' ? 204 : 205), 0);
		fut *w = fut_http_stream_write(req, "abc", 3);
		ck_assert_int_eq(fut_error(w), 0);
		fut_unref(w);
		ck_assert_int_eq(fut_http_stream_end(req), 0);
	} else if (h->path_len == 5 && !memcmp(h->path, "/dump", 5)) {
		/* The request as the server saw it: the method, then each
		 * field as "name: value\n". */
		char out[4096];
		size_t n = (size_t)snprintf(out, sizeof(out), "%.*s\n",
					    (int)h->method_len, h->method);
		for (size_t i = 0; i < h->num_headers && n < sizeof(out); i++)
			n += (size_t)snprintf(out + n, sizeof(out) - n,
					      "%.*s: %.*s\n",
					      (int)h->headers[i].name_len,
					      h->headers[i].name,
					      (int)h->headers[i].value_len,
					      h->headers[i].value);
		fut_http_respond(req, 200, out, n < sizeof(out) ? n : 0);
	} else if (route(req, "GET", "/big")) {
		static char big[16 << 20];
		memset(big, 'b', sizeof(big));
		fut_http_respond(req, 200, big, sizeof(big));
	} else if (route(req, "GET", "/r205")) {
		ck_assert_int_eq(fut_http_respond(req, 205, "abc", 3), 0);
	} else if (route(req, "GET", "/stream")) {
		fut_unref(fut_spawn(fut_http_req_loop(req), streamer, req));
	} else if (route(req, "GET", "/inject")) {
		ck_assert_int_eq(fut_http_resp_header(req, "X-A", "1\r\nX-B: 2"),
				 -EINVAL);
		ck_assert_int_eq(fut_http_resp_header(req, "Content-Length",
						      "5"), -EINVAL);
		ck_assert_int_eq(fut_http_resp_header(req, "Bad Name", "x"),
				 -EINVAL);
		ck_assert_int_eq(fut_http_respond(req, 99, NULL, 0), -EINVAL);
		ck_assert_int_eq(fut_http_respond(req, 204, NULL, 0), 0);
		ck_assert_int_eq(fut_http_respond(req, 200, NULL, 0), -EINVAL);
	} else {
		fut_http_respond(req, 404, "not found\n", 10);
	}
}

static fut_http_server *serve(fut_loop *loop, struct fut_http_server_opts *o)
{
	fut_http_server *srv = NULL;
	o->host = o->host ? o->host : "127.0.0.1";
	o->handler = handler;
	int err = fut_http_server_new(loop, o, &srv);
	ck_assert_msg(err == 0, "server: %s", fut_strerror(err));
	ck_assert_int_gt(fut_http_server_port(srv), 0);
	return srv;
}

static char *url(fut_http_server *srv, const char *path)
{
	static char buf[512];
	snprintf(buf, sizeof(buf), "http://127.0.0.1:%d%s",
		 fut_http_server_port(srv), path);
	return buf;
}

/* ---- raw exchanges on the pool ---- */

struct raw {
	int port;
	const char *send;
	size_t send_len;
	const char *send2;   /* after the first reply bytes arrive */
	char got[65536];
	size_t got_len;
	int eof;             /* the server closed (read returned 0) */
	int ms;              /* how long until EOF */
	int shut_wr;         /* half-close after sending */
	int leave;           /* close after sending, read nothing */
	int slow;            /* read once per 2 ms, SO_RCVBUF 32 KiB */
	size_t total;        /* slow: every byte read */
};

static int64_t noop_job(void *arg)
{
	(void)arg;
	return 0;
}

static int raw_connect_buf(int port, int rcvbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int raw_connect(int port)
{
	return raw_connect_buf(port, 0);
}

/* Read to EOF (sending send2 after the first bytes), then close; x->ms
 * counts from t0. */
static void raw_finish(int fd, struct raw *x, const struct timeval *t0)
{
	struct timeval t1;
	for (;;) {
		ssize_t n = recv(fd, x->got + x->got_len,
				 sizeof(x->got) - 1 - x->got_len, 0);
		if (n <= 0) {
			x->eof = n == 0;
			break;
		}
		x->got_len += (size_t)n;
		if (x->send2) {
			send(fd, x->send2, strlen(x->send2), MSG_NOSIGNAL);
			x->send2 = NULL;
		}
	}
	x->got[x->got_len] = '\0';
	gettimeofday(&t1, NULL);
	x->ms = (int)((t1.tv_sec - t0->tv_sec) * 1000 +
		      (t1.tv_usec - t0->tv_usec) / 1000);
	close(fd);
}

static int64_t raw_job(void *arg)
{
	struct raw *x = arg;
	struct timeval t0;
	gettimeofday(&t0, NULL);
	int fd = raw_connect_buf(x->port, x->slow ? 32768 : 0);
	if (fd < 0)
		return -errno;
	if (x->send_len && send(fd, x->send, x->send_len, MSG_NOSIGNAL) < 0) {
		/* The server may already have answered and closed. */
	}
	if (x->shut_wr)
		shutdown(fd, SHUT_WR);
	if (x->leave) {
		close(fd);
		return 0;
	}
	while (x->slow) {
		static char sink[65536];
		ssize_t n = recv(fd, sink, sizeof(sink), 0);
		if (n <= 0) {
			x->eof = n == 0;
			close(fd);
			return 0;
		}
		if (!x->total)
			memcpy(x->got, sink, (size_t)n < 64 ? (size_t)n : 64);
		x->total += (size_t)n;
		usleep(2000);
	}
	raw_finish(fd, x, &t0);
	return 0;
}

static void raw(fut_loop *loop, fut_http_server *srv, struct raw *x,
		const char *bytes, size_t len)
{
	memset(x, 0, sizeof(*x));
	x->port = fut_http_server_port(srv);
	x->send = bytes;
	x->send_len = len;
	fut *f = fut_run_blocking(loop, raw_job, x);
	wait_for(loop, f);
	ck_assert_int_eq(fut_error(f), 0);
	fut_unref(f);
}

/* raw(), and `then` sent once the first reply bytes arrive (a body after
 * a 100 Continue). */
static void raw_then(fut_loop *loop, fut_http_server *srv, struct raw *x,
		     const char *bytes, const char *then)
{
	memset(x, 0, sizeof(*x));
	x->port = fut_http_server_port(srv);
	x->send = bytes;
	x->send_len = strlen(bytes);
	x->send2 = then;
	fut *f = fut_run_blocking(loop, raw_job, x);
	wait_for(loop, f);
	ck_assert_int_eq(fut_error(f), 0);
	fut_unref(f);
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* ---- tests ---- */

/* Whether ::1 can be bound here (a container may have IPv6 off). */
static int have_ipv6_loopback(void)
{
	int ok = 0, s6 = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 lo6 = { .sin6_family = AF_INET6,
				    .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	if (s6 >= 0) {
		ok = bind(s6, (struct sockaddr *)&lo6, sizeof(lo6)) == 0;
		close(s6);
	}
	return ok;
}

START_TEST(fetch_get_post_head)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { 0 };
	fut_http_server *srv = serve(loop, &o);

	fut *f = fut_http_fetch(loop, url(srv, "/"), NULL);
	wait_for(loop, f);
	const struct fut_http_response *r = fut_http_response_of(f);
	ck_assert_msg(r, "fetch: %s", fut_strerror(fut_error(f)));
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "hello world\n");
	size_t l;
	const char *ct = fut_http_response_header(r, "content-type", &l);
	ck_assert(ct && l == 10 && !memcmp(ct, "text/plain", 10));
	ck_assert_ptr_nonnull(fut_http_response_header(r, "Date", &l));
	fut_unref(f);
	/* Host comes from the URL, or replaced by the caller's. */
	static const char *const vhost[] = { "Host: example.test", NULL };
	for (int k = 0; k < 2; k++) {
		struct fut_http_fetch_opts ho = { .headers = k ? vhost : NULL };
		fut *hf = fut_http_fetch(loop, url(srv, "/host"), &ho);
		wait_for(loop, hf);
		const struct fut_http_response *hr = fut_http_response_of(hf);
		ck_assert_msg(hr, "host %d: %s", k, fut_strerror(fut_error(hf)));
		if (k)
			ck_assert_str_eq(hr->body, "example.test");
		else
			ck_assert(!strncmp(hr->body, "127.0.0.1:", 10));
		fut_unref(hf);
	}

	/* A 300 KB body both ways, then HEAD: no body, the same length. */
	size_t n = 300 * 1024;
	char *big = malloc(n);
	for (size_t i = 0; i < n; i++)
		big[i] = (char)(i * 7);
	struct fut_http_fetch_opts fo = { .method = "POST", .body = big,
					  .body_len = n };
	f = fut_http_fetch(loop, url(srv, "/echo"), &fo);
	wait_for(loop, f);
	r = fut_http_response_of(f);
	ck_assert_msg(r, "fetch: %s", fut_strerror(fut_error(f)));
	ck_assert_int_eq(r->body_len, n);
	ck_assert(memcmp(r->body, big, n) == 0);
	fut_unref(f);
	free(big);

	struct fut_http_fetch_opts ho = { .method = "HEAD" };
	f = fut_http_fetch(loop, url(srv, "/"), &ho);
	wait_for(loop, f);
	r = fut_http_response_of(f);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->body_len, 0);
	const char *cl = fut_http_response_header(r, "Content-Length", &l);
	ck_assert(cl && l == 2 && !memcmp(cl, "12", 2));
	fut_unref(f);

	f = fut_http_fetch(loop, url(srv, "/inject"), NULL);
	wait_for(loop, f);
	ck_assert_int_eq(fut_http_response_of(f)->status, 204);
	fut_unref(f);

	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

START_TEST(keepalive_pipelining_in_order)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { 0 };
	fut_http_server *srv = serve(loop, &o);
	static const char req[] =
		"GET /sleep?ms=80 HTTP/1.1\r\nHost: x\r\n\r\n"
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz"
		"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
		"Connection: close\r\n\r\n2;ext=1\r\nab\r\n1\r\nc\r\n0\r\nT: v\r\n\r\n";
	struct raw x;
	raw(loop, srv, &x, req, sizeof(req) - 1);
	ck_assert(x.eof);
	ck_assert_int_eq(count(x.got, "HTTP/1.1 200 OK\r\n"), 4);
	char *a = strstr(x.got, "slept\n"), *b = strstr(x.got, "hello world\n");
	char *c = strstr(x.got, "\r\n\r\nxyz"), *d = strstr(x.got, "\r\n\r\nabc");
	ck_assert(a && b && c && d && a < b && b < c && c < d);
	ck_assert(strstr(d - 40, "Connection: close"));
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* A client that says its request is the last gets the response and a
 * FIN; bytes it sends after such a request anyway are drained (linger),
 * so they cannot turn the close into a reset that loses the response. */
START_TEST(client_close_ends_cleanly)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { 0 };
	fut_http_server *srv = serve(loop, &o);
	static const char *const reqs[] = {
		"GET / HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"POST /echo HTTP/1.0\r\nContent-Length: 12\r\n\r\nhello world\n",
		("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
		 "GET /never HTTP/1.1\r\nHost: x\r\n\r\n"),
	};
	for (int round = 0; round < 20; round++)
		for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
			struct raw x;
			raw(loop, srv, &x, reqs[i], strlen(reqs[i]));
			ck_assert_msg(x.eof, "request %zu: no clean EOF", i);
			ck_assert_int_eq(count(x.got, " 200 OK\r\n"), 1);
			ck_assert_int_eq(count(x.got, "hello world\n"), 1);
			ck_assert(strstr(x.got, "Connection: close\r\n"));
		}
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* A client that said "close" and still sends a byte (an extra CRLF after
 * the body, as old clients do: RFC 9112 2.2) while a large response is
 * still queued: closing at once would answer that byte with a reset that
 * discards the response's unsent rest. */
#define BIG (4u << 20)

static int64_t stray_crlf_job(void *arg)
{
	struct raw *x = arg;
	int fd = raw_connect(x->port);
	if (fd < 0)
		return -errno;
	char head[128];
	int hl = snprintf(head, sizeof(head),
			  "POST /echo HTTP/1.0\r\nContent-Length: %u\r\n\r\n",
			  BIG);
	char *body = malloc(BIG);
	memset(body, 'e', BIG);
	send(fd, head, (size_t)hl, MSG_NOSIGNAL);
	for (size_t off = 0; off < BIG;) {
		ssize_t n = send(fd, body + off, BIG - off, MSG_NOSIGNAL);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	free(body);
	send(fd, "\r\n", 2, MSG_NOSIGNAL);
	usleep(200 * 1000); /* the server answers, and closes meanwhile */
	size_t total = 0;
	char buf[65536];
	ssize_t n;
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		total += (size_t)n;
	x->eof = n == 0;
	x->got_len = total;
	close(fd);
	return 0;
}

START_TEST(late_bytes_do_not_reset_the_response)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { .limits = { .max_body = BIG } };
	fut_http_server *srv = serve(loop, &o);
	static struct raw x;
	memset(&x, 0, sizeof(x));
	x.port = fut_http_server_port(srv);
	fut *f = fut_run_blocking(loop, stray_crlf_job, &x);
	wait_for(loop, f);
	ck_assert_int_eq(fut_error(f), 0);
	fut_unref(f);
	ck_assert_msg(x.eof, "reset after %zu bytes", x.got_len);
	ck_assert_uint_gt(x.got_len, BIG); /* head + the whole body */
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

static const struct {
	const char *req;
	int status;
} hostile[] = {
	{ "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
	  "Content-Length: 4\r\n\r\nabcd", 400 },
	{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\nabcd", 400 },
	{ "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	  501 },
	{ "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "zz\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "fffffffffffffffffff\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\nHost: x\n\n", 400 },
	{ "GET / HTTP/1.1\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: a/b@c\r\n\r\n", 400 },
	{ "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505 },
	/* No tunnels: CONNECT is refused (with a target other than
	 * authority-form it is malformed: 400). */
	{ "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", 501 },
	{ "CONNECT / HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
	{ "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", 413 },
	{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ,5\r\n\r\nhello", 400 },
	{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5,\r\n\r\nhello", 400 },
	/* Methods are case-sensitive: "*" for a method that is not
	 * OPTIONS. */
	{ "options * HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
	/* A TLS ClientHello has no line feed: 400 at once, not 408 after
	 * the header timeout (10 s). */
	{ "\x16\x03\x01\x02\x01\x01\x01\x01\xfc\x03\x03", 400 },
};

/* Any method token reaches the handler (WebDAV, PURGE, a lower-case one:
 * methods are case-sensitive, so "connect" is not CONNECT); the server
 * refuses only what it cannot do. */
START_TEST(any_method_reaches_the_handler)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { 0 };
	fut_http_server *srv = serve(loop, &o);
	static const char *const methods[] = { "PROPFIND", "PURGE", "connect",
					       "M-SEARCH", "X_1.!~" };
	struct raw x;
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		char req[128];
		int n = snprintf(req, sizeof(req),
				 "%s /dump HTTP/1.1\r\nHost: x\r\n"
				 "Connection: close\r\n\r\n", methods[i]);
		raw(loop, srv, &x, req, (size_t)n);
		ck_assert_msg(!strncmp(x.got, "HTTP/1.1 200 ", 13), "%s: %.30s",
			      methods[i], x.got);
		const char *body = strstr(x.got, "\r\n\r\n");
		ck_assert_ptr_nonnull(body);
		ck_assert_msg(!strncmp(body + 4, methods[i], strlen(methods[i])) &&
			      body[4 + strlen(methods[i])] == '\n',
			      "%s: %s", methods[i], body + 4);
	}
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

START_TEST(hostile_input_4xx_and_close)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { 0 };
	fut_http_server *srv = serve(loop, &o);
	struct raw x;
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		raw(loop, srv, &x, hostile[i].req, strlen(hostile[i].req));
		char want[32];
		snprintf(want, sizeof(want), "HTTP/1.1 %d ", hostile[i].status);
		ck_assert_msg(strncmp(x.got, want, strlen(want)) == 0,
			      "case %zu: want %d, got \"%.40s\"", i,
			      hostile[i].status, x.got);
		ck_assert_msg(x.eof, "case %zu: connection left open", i);
		ck_assert(strstr(x.got, "Connection: close\r\n"));
	}
	/* Over the limits: a long target, a huge header section. */
	char *big = malloc(100000);
	int n = snprintf(big, 100000, "GET /");
	memset(big + n, 'a', 10000);
	n += 10000;
	n += snprintf(big + n, 100000 - (size_t)n, " HTTP/1.1\r\nHost: x\r\n\r\n");
	raw(loop, srv, &x, big, (size_t)n);
	ck_assert_msg(!strncmp(x.got, "HTTP/1.1 414 ", 13), "%.30s", x.got);
	/* ... as with a method of 8 letters ... */
	n = snprintf(big, 100000, "PROPFIND /");
	memset(big + n, 'a', 10000);
	n += 10000;
	n += snprintf(big + n, 100000 - (size_t)n, " HTTP/1.1\r\nHost: x\r\n\r\n");
	raw(loop, srv, &x, big, (size_t)n);
	ck_assert_msg(!strncmp(x.got, "HTTP/1.1 414 ", 13), "%.30s", x.got);
	/* ... but a method longer than any registered one is unknown: 501
	 * (RFC 9112 3), however long the line. */
	memset(big, 'A', 10000);
	n = 10000 + snprintf(big + 10000, 100, " / HTTP/1.1\r\nHost: x\r\n\r\n");
	raw(loop, srv, &x, big, (size_t)n);
	ck_assert_msg(!strncmp(x.got, "HTTP/1.1 501 ", 13), "%.30s", x.got);
	n = snprintf(big, 100000, "GET / HTTP/1.1\r\nHost: x\r\n");
	for (int i = 0; i < 700; i++)
		n += snprintf(big + n, 100000 - (size_t)n,
			      "X-%d: %090d\r\n", i, i);
	raw(loop, srv, &x, big, (size_t)n);
	ck_assert_msg(!strncmp(x.got, "HTTP/1.1 431 ", 13), "%.30s", x.got);
	/* A trailer section over its 64 KiB is too large a head too. */
	n = snprintf(big, 100000, "POST / HTTP/1.1\r\nHost: x\r\n"
		     "Transfer-Encoding: chunked\r\n\r\n0\r\nX: ");
	memset(big + n, 'a', 70000);
	n += 70000;
	n += snprintf(big + n, 100000 - (size_t)n, "\r\n\r\n");
	raw(loop, srv, &x, big, (size_t)n);
	ck_assert_msg(!strncmp(x.got, "HTTP/1.1 431 ", 13), "%.30s", x.got);
	free(big);
	/* NUL in a header. */
	static const char nul[] = "GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n";
	raw(loop, srv, &x, nul, sizeof(nul) - 1);
	ck_assert(!strncmp(x.got, "HTTP/1.1 400 ", 13));
	/* ... and the server still serves. */
	fut *f = fut_http_fetch(loop, url(srv, "/"), NULL);
	wait_for(loop, f);
	ck_assert_int_eq(fut_http_response_of(f)->status, 200);
	fut_unref(f);
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

START_TEST(expect_continue)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { 0 };
	fut_http_server *srv = serve(loop, &o);
	struct raw x;
	raw_then(loop, srv, &x,
		 "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
		 "Expect: 100-continue\r\nConnection: close\r\n\r\n",
		 "hello");
	ck_assert_msg(!strncmp(x.got, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 ",
			       37), "%s", x.got);
	ck_assert(strstr(x.got, "\r\n\r\nhello"));
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* The expect hook: uploads without credentials are refused before their
 * body comes; fields the hook set and did not answer with are dropped. */
static int expect_calls;

static void expect_hook(fut_http_req *req, void *arg)
{
	(void)arg;
	expect_calls++;
	size_t n;
	ck_assert_ptr_null(fut_http_req_body(req, &n));
	ck_assert_int_eq(fut_http_resp_header(req, "X-Dropped", "1"), 0);
	if (fut_http_req_header(req, "Authorization", &n))
		return;
	ck_assert_int_eq(fut_http_resp_header(req, "WWW-Authenticate",
					      "Basic realm=\"t\""), 0);
	ck_assert_int_eq(fut_http_respond(req, 401, "who?\n", 5), 0);
}

/* Fetch url with opts; the result's status, body and url for checks. */
static const struct fut_http_response *fetch_ok(fut_loop *loop, fut **f,
		const char *u, const struct fut_http_fetch_opts *o)
{
	*f = fut_http_fetch(loop, u, o);
	wait_for(loop, *f);
	ck_assert_msg(fut_error(*f) == 0, "%s: %s", u,
		      fut_strerror(fut_error(*f)));
	const struct fut_http_response *r = fut_http_response_of(*f);
	ck_assert_ptr_nonnull(r);
	return r;
}

static int ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);
	return n >= t && !strcmp(s + n - t, tail);
}

/* max_redirects: 3xx followed (RFC 9110 15.4), with the method each
 * status asks for, relative Locations resolved (RFC 3986 5.2), the
 * caller's credentials kept from another origin; the last URL is told. */
START_TEST(fetch_follows_redirects)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts so = { 0 }, so2 = { 0 };
	fut_http_server *srv = serve(loop, &so), *srv2 = serve(loop, &so2);
	char u[256];
	fut *f;
	const struct fut_http_response *r;
	/* Not asked: the 3xx is the result. */
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/redirect?code=302&to=/",
		 fut_http_server_port(srv));
	r = fetch_ok(loop, &f, u, NULL);
	ck_assert_int_eq(r->status, 302);
	ck_assert_str_eq(r->url, u);
	fut_unref(f);
	struct fut_http_fetch_opts o = { .max_redirects = 5 };
	r = fetch_ok(loop, &f, u, &o);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "hello world\n");
	ck_assert_str_eq(r->url, url(srv, "/"));
	fut_unref(f);
	/* A chain of relative Locations, and its limit. */
	r = fetch_ok(loop, &f, url(srv, "/hop/3"), &o);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "done");
	ck_assert_str_eq(r->url, url(srv, "/hop/0"));
	ck_assert_uint_eq(r->redirects, 3);
	fut_unref(f);
	/* Followed as browsers do: spaces and bytes outside ASCII encoded,
	 * "http:path" as a relative reference. */
	r = fetch_ok(loop, &f, url(srv, "/spaced"), &o);
	ck_assert_str_eq(r->body, "done");
	ck_assert_str_eq(r->url, url(srv, "/hop/0%20%C3%A9"));
	fut_unref(f);
	r = fetch_ok(loop, &f, url(srv, "/redirect?code=302&to=http:hop/0"), &o);
	ck_assert_str_eq(r->body, "done");
	fut_unref(f);
	struct fut_http_fetch_opts o2 = { .max_redirects = 2 };
	r = fetch_ok(loop, &f, url(srv, "/hop/3"), &o2);
	ck_assert_int_eq(r->status, 302);
	ck_assert(ends_with(r->url, "/hop/1"));
	ck_assert_uint_eq(r->redirects, 2);
	fut_unref(f);
	r = fetch_ok(loop, &f, url(srv,
		"/redirect?code=301&to=./a/../../hop/./0?q#frag"), &o);
	ck_assert_str_eq(r->body, "done");
	/* "#frag" was the URL's (never sent): the Location inherits it */
	ck_assert_str_eq(r->url, url(srv, "/hop/0?q#frag"));
	fut_unref(f);
	/* 307 keeps the method and the body; 303, and 301/302 after a
	 * POST, fetch with GET and no body; 301 keeps a PUT. */
	struct fut_http_fetch_opts po = { .max_redirects = 1, .body = "abc",
					  .body_len = 3 };
	r = fetch_ok(loop, &f, url(srv, "/redirect?code=307&to=/echo"), &po);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "abc");
	fut_unref(f);
	static const char *const codes[] = { "301", "302", "303" };
	for (int i = 0; i < 3; i++) {
		snprintf(u, sizeof(u), "/redirect?code=%s&to=/dump", codes[i]);
		r = fetch_ok(loop, &f, url(srv, u), &po);
		ck_assert_msg(!strncmp(r->body, "GET\n", 4), "%s: %s",
			      codes[i], r->body);
		ck_assert(!strcasestr(r->body, "content-length"));
		fut_unref(f);
	}
	struct fut_http_fetch_opts pu = po;
	pu.method = "PUT";
	r = fetch_ok(loop, &f, url(srv, "/redirect?code=301&to=/dump"), &pu);
	ck_assert_msg(!strncmp(r->body, "PUT\n", 4), "%s", r->body);
	ck_assert(strcasestr(r->body, "content-length: 3"));
	fut_unref(f);
	/* Fields about the dropped body go with it. */
	static const char *const ct[] = { "Content-Type: text/plain",
					  "Content-Language: en", "X-Keep: 1",
					  NULL };
	struct fut_http_fetch_opts cto = po;
	cto.headers = ct;
	r = fetch_ok(loop, &f, url(srv, "/redirect?code=303&to=/dump"), &cto);
	ck_assert_msg(!strncmp(r->body, "GET\n", 4), "%s", r->body);
	ck_assert(!strcasestr(r->body, "content-"));
	ck_assert(strstr(r->body, "X-Keep: 1\n"));
	fut_unref(f);
	r = fetch_ok(loop, &f, url(srv, "/redirect?code=307&to=/dump"), &cto);
	ck_assert(strstr(r->body, "Content-Type: text/plain\n"));
	fut_unref(f);
	/* An authority with no path. */
	char bare[128];
	snprintf(bare, sizeof(bare), "/redirect?code=302&to=//127.0.0.1:%d",
		 fut_http_server_port(srv));
	r = fetch_ok(loop, &f, url(srv, bare), &o);
	ck_assert_str_eq(r->body, "hello world\n");
	fut_unref(f);
	/* Credentials go to the same origin only. */
	static const char *const hdrs[] = { "Authorization: Basic eDp5",
					    "X-Keep: 1", NULL };
	struct fut_http_fetch_opts ho = { .max_redirects = 1,
					  .headers = hdrs };
	r = fetch_ok(loop, &f, url(srv, "/redirect?code=302&to=/dump"), &ho);
	ck_assert(strstr(r->body, "Authorization: Basic eDp5\n"));
	fut_unref(f);
	char other[128];
	snprintf(other, sizeof(other),
		 "/redirect?code=302&to=http://127.0.0.1:%d/dump",
		 fut_http_server_port(srv2));
	r = fetch_ok(loop, &f, url(srv, other), &ho);
	ck_assert_str_eq(r->url, url(srv2, "/dump"));
	ck_assert(strstr(r->body, "X-Keep: 1\n"));
	ck_assert(!strstr(r->body, "Authorization"));
	fut_unref(f);
	/* Nowhere this client can go: the 3xx is the result. */
	r = fetch_ok(loop, &f, url(srv, "/redirect?code=301&to=https://x/"),
		     &o);
	ck_assert_int_eq(r->status, 301);
	fut_unref(f);
	r = fetch_ok(loop, &f, url(srv, "/redirect?code=302"), &o);
	ck_assert_int_eq(r->status, 302);
	fut_unref(f);
	r = fetch_ok(loop, &f, url(srv, "/redirect?code=300&to=/"), &o);
	ck_assert_int_eq(r->status, 300);
	fut_unref(f);
	/* At most 100 hops: each is held until the result ends. */
	struct fut_http_fetch_opts many = { .max_redirects = 101 };
	f = fut_http_fetch(loop, url(srv, "/"), &many);
	ck_assert_int_eq(fut_error(f), -EINVAL);
	fut_unref(f);
	/* A cancel during a later hop ends it. */
	f = fut_http_fetch(loop, url(srv, "/redirect?code=302&to=/sleep?ms=5000"),
			   &o);
	run_for(loop, 100);
	ck_assert_int_eq(fut_state(f), FUT_PENDING);
	fut_cancel(f);
	wait_for(loop, f);
	ck_assert_int_eq(fut_error(f), -ECANCELED);
	fut_unref(f);
	fut_http_server_free(srv2);
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* RFC 3986 5.4's examples (those without a fragment, which a URL cannot
 * carry to the server), against its base path /b/c/d;p: the redirect's
 * resolved URL is the one fetched, which the response tells. */
START_TEST(redirect_locations_resolve_as_rfc3986)
{
	static const char *const cases[][2] = {
		{ "g", "/b/c/g" }, { "./g", "/b/c/g" }, { "g/", "/b/c/g/" },
		{ "/g", "/g" }, { "?y", "/b/c/d;p?y" }, { "g?y", "/b/c/g?y" },
		{ ";x", "/b/c/;x" }, { "g;x", "/b/c/g;x" }, { ".", "/b/c/" },
		{ "./", "/b/c/" }, { "..", "/b/" }, { "../", "/b/" },
		{ "../g", "/b/g" }, { "../..", "/" }, { "../../", "/" },
		{ "../../g", "/g" }, { "../../../g", "/g" },
		{ "../../../../g", "/g" }, { "/./g", "/g" }, { "/../g", "/g" },
		{ "g.", "/b/c/g." }, { ".g", "/b/c/.g" }, { "g..", "/b/c/g.." },
		{ "..g", "/b/c/..g" }, { "./../g", "/b/g" },
		{ "./g/.", "/b/c/g/" }, { "g/./h", "/b/c/g/h" },
		{ "g/../h", "/b/c/h" }, { "g;x=1/./y", "/b/c/g;x=1/y" },
		{ "g;x=1/../y", "/b/c/y" }, { "g?y/./x", "/b/c/g?y/./x" },
		{ "g?y/../x", "/b/c/g?y/../x" },
		{ "http:g", "/b/c/g" }, /* RFC 5.2.2, non-strict */
		{ "g^s", "/b/c/g#s" }, { "g?y^s", "/b/c/g?y#s" },
		{ "^s", "/b/c/d;p?to=^s#s" },
		/* RFC 9110 10.2.2: no fragment in the Location, the URL's */
		{ "g#u", "/b/c/g#u" }, { "g^s#u", "/b/c/g#s" },
		{ "../g#u", "/b/g#u" },
	};
	fut_loop *loop = new_loop();
	struct fut_http_server_opts so = { 0 };
	fut_http_server *srv = serve(loop, &so);
	struct fut_http_fetch_opts o = { .max_redirects = 1 };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char u[160], want[160];
		snprintf(u, sizeof(u), "/b/c/d;p?to=%s", cases[i][0]);
		snprintf(want, sizeof(want), "http://127.0.0.1:%d%s",
			 fut_http_server_port(srv), cases[i][1]);
		fut *f;
		const struct fut_http_response *r = fetch_ok(loop, &f,
							     url(srv, u), &o);
		ck_assert_msg(!strcmp(r->url, want), "%s: %s, want %s",
			      cases[i][0], r->url, want);
		ck_assert_uint_eq(r->redirects, 1);
		fut_unref(f);
	}
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

START_TEST(expect_hook_refuses_before_the_body)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { .expect = expect_hook };
	fut_http_server *srv = serve(loop, &o);
	struct raw x;
	/* Refused: no 100, the answer says it closes, and it does. */
	raw_then(loop, srv, &x,
		 "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
		 "Expect: 100-continue\r\n\r\n",
		 "hello");
	ck_assert_msg(!strncmp(x.got, "HTTP/1.1 401 ", 13), "%s", x.got);
	ck_assert(strstr(x.got, "\r\nWWW-Authenticate: Basic realm=\"t\"\r\n"));
	ck_assert(strstr(x.got, "\r\nConnection: close\r\n"));
	ck_assert(strstr(x.got, "\r\n\r\nwho?\n"));
	ck_assert(!strstr(x.got, "100 Continue") && !strstr(x.got, "hello"));
	ck_assert(x.eof);
	ck_assert_int_eq(expect_calls, 1);
	/* Let through: 100, then the handler, without the hook's field;
	 * the connection stays open for a second request. */
	raw_then(loop, srv, &x,
		 "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
		 "Authorization: Basic eDp5\r\nExpect: 100-continue\r\n\r\n",
		 "helloGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	ck_assert_msg(!strncmp(x.got, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 ",
			       37), "%s", x.got);
	ck_assert(strstr(x.got, "\r\n\r\nhelloHTTP/1.1 200 "));
	ck_assert(!strstr(x.got, "X-Dropped"));
	ck_assert_int_eq(expect_calls, 2);
	/* No Expect: the hook is not asked. */
	static const char plain[] = "POST /echo HTTP/1.1\r\nHost: x\r\n"
		"Content-Length: 2\r\nConnection: close\r\n\r\nhi";
	raw(loop, srv, &x, plain, sizeof(plain) - 1);
	ck_assert_msg(!strncmp(x.got, "HTTP/1.1 200 ", 13), "%s", x.got);
	ck_assert_int_eq(expect_calls, 2);
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* A hook that frees the server and answers nothing: the connection
 * closes, and nothing of it is touched after (it was: the body that came
 * with the head went to the freed server's handler). */
static fut_http_server *hook_srv;

static int hook_answers;

static void expect_frees(fut_http_req *req, void *arg)
{
	(void)arg;
	fut_http_server_free(hook_srv);
	if (hook_answers)
		ck_assert_int_eq(fut_http_respond(req, 401, NULL, 0), -EPIPE);
}

START_TEST(expect_hook_may_free_the_server)
{
	static const char *const reqs[] = {
		"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
		"Expect: 100-continue\r\n\r\nhello",
		"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
		"Expect: 100-continue\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
		"Expect: 100-continue\r\n\r\n",
	};
	fut_loop *loop = new_loop();
	for (size_t i = 0; i < 2 * sizeof(reqs) / sizeof(reqs[0]); i++) {
		hook_answers = i >= sizeof(reqs) / sizeof(reqs[0]);
		struct fut_http_server_opts o = { .expect = expect_frees };
		hook_srv = serve(loop, &o);
		struct raw x;
		const char *q = reqs[i % (sizeof(reqs) / sizeof(reqs[0]))];
		raw(loop, hook_srv, &x, q, strlen(q));
		ck_assert_msg(x.eof && x.got_len == 0, "%zu: %s", i, x.got);
	}
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* A handler that frees its server while a send of its stream is still
 * in flight: the close waited for that send, and meanwhile the next
 * write resolved (0), the end said 0 and the socket stayed open. */
static fut_http_server *stream_free_srv;
static int stream_free_w2, stream_free_end;

static void stream_then_free(fut_http_req *req, void *arg)
{
	(void)arg;
	ck_assert_int_eq(fut_http_stream_begin(req, 200), 0);
	fut_unref(fut_http_stream_write(req, "abc", 3));
	fut_http_server_free(stream_free_srv);
	fut *w = fut_http_stream_write(req, "def", 3);
	stream_free_w2 = fut_state(w) == FUT_REJECTED ? fut_error(w) : 1;
	fut_unref(w);
	stream_free_end = fut_http_stream_end(req);
}

START_TEST(free_while_streaming)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { .host = "127.0.0.1",
					  .handler = stream_then_free };
	ck_assert_int_eq(fut_http_server_new(loop, &o, &stream_free_srv), 0);
	struct raw x;
	static const char q[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	raw(loop, stream_free_srv, &x, q, sizeof(q) - 1);
	ck_assert_int_eq(stream_free_w2, -EPIPE);
	ck_assert_int_eq(stream_free_end, -EPIPE);
	ck_assert(x.eof); /* closed, with no last chunk */
	ck_assert_ptr_null(strstr(x.got, "0\r\n\r\n"));
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/*
 * A coroutine server freed, then its loop, in the pass where a request
 * was handed to a coroutine that had not started yet: the loop's free
 * cancelled the coroutine before its first tick, and nothing freed the
 * connection (ASan's leak check sees it). B's request is read first, in
 * the same pass as A's Expect, whose hook frees the server and stops the
 * loop.
 */
static fut_loop *stop_loop;

static void expect_frees_and_stops(fut_http_req *req, void *arg)
{
	(void)req;
	(void)arg;
	fut_http_server_free(hook_srv);
	fut_loop_stop(stop_loop);
}

START_TEST(coroutine_not_started_when_loop_freed)
{
	for (int round = 0; round < 3; round++) {
		fut_loop *loop = stop_loop = new_loop();
		struct fut_http_server_opts o = {
			.expect = expect_frees_and_stops, .coroutine = 1 };
		hook_srv = serve(loop, &o);
		int port = fut_http_server_port(hook_srv);
		int a = raw_connect(port), b = raw_connect(port);
		ck_assert(a >= 0 && b >= 0);
		run_for(loop, 20); /* both accepted, waiting for requests */
		static const char qb[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
		static const char qa[] = "PUT /x HTTP/1.1\r\nHost: x\r\n"
					 "Content-Length: 5\r\n"
					 "Expect: 100-continue\r\n\r\n";
		ck_assert_int_eq(send(b, qb, sizeof(qb) - 1, 0),
				 (ssize_t)sizeof(qb) - 1);
		usleep(5 * 1000);
		ck_assert_int_eq(send(a, qa, sizeof(qa) - 1, 0),
				 (ssize_t)sizeof(qa) - 1);
		usleep(20 * 1000);
		ck_assert_int_eq(fut_loop_run(loop), FUT_ESTOPPED);
		ck_assert_int_eq(fut_loop_free(loop), 0);
		close(a);
		close(b);
	}
}
END_TEST

/* A chunk size padded with zeros held a connection open with no body
 * at all for as long as the zeros kept coming (then until the body
 * timeout, 408, with a core busy); a size line is now at most 4096
 * bytes, so it is a 400 at once. */
static int64_t zeros_job(void *arg)
{
	struct raw *x = arg;
	struct timeval t0;
	gettimeofday(&t0, NULL);
	int fd = raw_connect(x->port);
	if (fd < 0)
		return -errno;
	static const char head[] = "POST /echo HTTP/1.1\r\nHost: x\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n";
	send(fd, head, sizeof(head) - 1, MSG_NOSIGNAL);
	static char zeros[256 * 1024];
	memset(zeros, '0', sizeof(zeros));
	for (int i = 0; i < 10; i++) {
		if (send(fd, zeros, sizeof(zeros), MSG_NOSIGNAL) < 0)
			break;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 150) > 0)
			break; /* answered */
	}
	raw_finish(fd, x, &t0);
	return 0;
}

START_TEST(chunk_padding_is_no_progress)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { .body_timeout_ms = 300 };
	fut_http_server *srv = serve(loop, &o);
	struct raw x;
	memset(&x, 0, sizeof(x));
	x.port = fut_http_server_port(srv);
	fut *f = fut_run_blocking(loop, zeros_job, &x);
	wait_for(loop, f);
	fut_unref(f);
	ck_assert_msg(!strncmp(x.got, "HTTP/1.1 400 ", 13), "%.40s", x.got);
	ck_assert_int_lt(x.ms, 250); /* before the body timeout */
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

START_TEST(server_timeouts)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { .header_timeout_ms = 200,
					  .idle_timeout_ms = 300,
					  .body_timeout_ms = 200 };
	fut_http_server *srv = serve(loop, &o);
	struct raw x;
	/* A head that never ends: 408, closed. */
	raw(loop, srv, &x, "GET / HTTP/1.1\r\nHo", 18);
	ck_assert_msg(!strncmp(x.got, "HTTP/1.1 408 ", 13), "%s", x.got);
	ck_assert(x.eof && x.ms < 3000);
	/* A body that never comes: 408. */
	static const char partial[] =
		"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab";
	raw(loop, srv, &x, partial, sizeof(partial) - 1);
	ck_assert_msg(!strncmp(x.got, "HTTP/1.1 408 ", 13), "%s", x.got);
	/* Silent connection and idle keep-alive: closed without a word. */
	raw(loop, srv, &x, NULL, 0);
	ck_assert(x.eof && x.got_len == 0 && x.ms < 3000);
	static const char one[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	raw(loop, srv, &x, one, sizeof(one) - 1);
	ck_assert(x.eof && count(x.got, "200 OK") == 1 && x.ms >= 250);
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* A raw client that sends in timed steps: connect, then for each part
 * sleep its delay and send it, then read to EOF. x.ms counts from the
 * connect. */
struct timed {
	struct raw x;
	int delay_ms[2];
	const char *part[2];
};

static int64_t timed_job(void *arg)
{
	struct timed *t = arg;
	struct raw *x = &t->x;
	struct timeval t0;
	gettimeofday(&t0, NULL);
	int fd = raw_connect(x->port);
	if (fd < 0)
		return -errno;
	for (int i = 0; i < 2 && t->part[i]; i++) {
		usleep((useconds_t)t->delay_ms[i] * 1000);
		send(fd, t->part[i], strlen(t->part[i]), MSG_NOSIGNAL);
	}
	raw_finish(fd, x, &t0);
	return 0;
}

static void timed(fut_loop *loop, fut_http_server *srv, struct timed *t)
{
	t->x.port = fut_http_server_port(srv);
	fut *f = fut_run_blocking(loop, timed_job, t);
	wait_for(loop, f);
	ck_assert_int_eq(fut_error(f), 0);
	fut_unref(f);
}

/* header_timeout_ms runs from the accept for a new connection: bytes that
 * arrive later do not restart it. On a keep-alive connection it runs from
 * the first byte of the next head. (Deferred accept off: with it the
 * accept is the first byte's arrival, see deferred_accept.) */
START_TEST(header_timeout_from_accept)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { .header_timeout_ms = 400,
					  .idle_timeout_ms = 5000,
					  .defer_accept_s = -1 };
	fut_http_server *srv = serve(loop, &o);
	struct timed t = { .delay_ms = { 300 },
			   .part = { "GET / HTTP/1.1\r\nHo" } };
	timed(loop, srv, &t);
	ck_assert_msg(!strncmp(t.x.got, "HTTP/1.1 408 ", 13), "%s", t.x.got);
	/* 400 ms plus a sweep tick (100 ms); restarted it would be 700. */
	ck_assert_msg(t.x.eof && t.x.ms >= 350 && t.x.ms < 620,
		      "408 after %d ms", t.x.ms);
	struct timed k = { .delay_ms = { 0, 300 },
			   .part = { "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
				     "GET / HTTP/1.1\r\nHo" } };
	timed(loop, srv, &k);
	ck_assert_msg(count(k.x.got, "200 OK") == 1 &&
		      strstr(k.x.got, "HTTP/1.1 408 "), "%s", k.x.got);
	ck_assert_msg(k.x.eof && k.x.ms >= 650, "408 after %d ms", k.x.ms);
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* By default the kernel hands a connection over when its first bytes
 * arrive (TCP_DEFER_ACCEPT): a client that connects and sends its request
 * later than the header timeout is still served, since the server never
 * saw it idle. Without deferral the same client finds a closed
 * connection. A silent client is handed over after about a second and
 * then timed out as before. */
START_TEST(deferred_accept)
{
	fut_loop *loop = new_loop();
	for (int defer = 0; defer < 2; defer++) {
		struct fut_http_server_opts o = {
			.header_timeout_ms = 200, .idle_timeout_ms = 200,
			.defer_accept_s = defer ? 0 : -1 };
		fut_http_server *srv = serve(loop, &o);
		struct timed t = { .delay_ms = { 600 },
				   .part = { "GET / HTTP/1.1\r\nHost: x\r\n"
					     "Connection: close\r\n\r\n" } };
		timed(loop, srv, &t);
		if (defer)
			ck_assert_msg(t.x.eof && count(t.x.got, "200 OK") == 1,
				      "%s", t.x.got);
		else /* closed before the request: EOF, or a reset */
			ck_assert_int_eq(t.x.got_len, 0);
		fut_http_server_free(srv);
	}
	struct fut_http_server_opts bad = { .handler = handler,
					    .defer_accept_s = -2 };
	fut_http_server *srv;
	ck_assert_int_eq(fut_http_server_new(loop, &bad, &srv), -EINVAL);
	bad.defer_accept_s = 0;
	bad.reserved32 = 1;
	ck_assert_int_eq(fut_http_server_new(loop, &bad, &srv), -EINVAL);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* An error the server generates for a HEAD request has a Content-Length
 * and no body (RFC 9110 9.3.2), whether the method was parsed or not. */
START_TEST(head_error_has_no_body)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { .limits = { .max_request_line = 64 } };
	fut_http_server *srv = serve(loop, &o);
	static const struct {
		const char *req;
		const char *head; /* the status line's start */
		int body;
	} t[] = {
		{ "HEAD / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ", 0 },
		{ "HEAD / HTTP/1.1\r\nHost: a b\r\n\r\n", "HTTP/1.1 400 ", 0 },
		{ "\r\nHEAD /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaa HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 414 ", 0 },
		{ "HEAD / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "zz\r\n", "HTTP/1.1 400 ", 0 },
		{ "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ", 1 },
		{ "HEADX / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ", 1 },
	};
	struct raw x;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		raw(loop, srv, &x, t[i].req, strlen(t[i].req));
		ck_assert_msg(!strncmp(x.got, t[i].head, strlen(t[i].head)),
			      "case %zu: %s", i, x.got);
		ck_assert_msg(x.eof, "case %zu: connection left open", i);
		const char *cl = strstr(x.got, "\r\nContent-Length: ");
		const char *end = strstr(x.got, "\r\n\r\n");
		ck_assert_msg(cl && end && cl < end, "case %zu: %s", i, x.got);
		size_t want = (size_t)atoi(cl + 18);
		size_t body = x.got_len - (size_t)(end + 4 - x.got);
		ck_assert_msg(want > 0 && body == (t[i].body ? want : 0),
			      "case %zu: Content-Length %zu, %zu body bytes",
			      i, want, body);
	}
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

START_TEST(streamed_response_backpressure)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { .stream_high_water = 16384 };
	fut_http_server *srv = serve(loop, &o);
	stream_pending = 0;
	fut *f = fut_http_fetch(loop, url(srv, "/stream"), NULL);
	wait_for(loop, f);
	const struct fut_http_response *r = fut_http_response_of(f);
	ck_assert_msg(r, "%s", fut_strerror(fut_error(f)));
	ck_assert_int_eq(r->body_len, 64 * 65536);
	for (size_t i = 0; i < r->body_len; i += 4099)
		ck_assert_int_eq(r->body[i], 'a' + (i % 65536) % 26);
	size_t l;
	ck_assert_ptr_nonnull(fut_http_response_header(r, "Transfer-Encoding",
						       &l));
	ck_assert_int_gt(stream_pending, 0);
	fut_unref(f);
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

START_TEST(graceful_shutdown)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { 0 };
	fut_http_server *srv = serve(loop, &o);
	int port = fut_http_server_port(srv);
	fut *slow = fut_http_fetch(loop, url(srv, "/sleep?ms=200"), NULL);
	fut *idle = fut_http_fetch(loop, url(srv, "/"), NULL);
	wait_for(loop, idle);
	run_for(loop, 50);
	fut *sd = fut_http_server_shutdown(srv, 5000);
	wait_for(loop, slow);
	ck_assert_int_eq(fut_http_response_of(slow)->status, 200);
	wait_for(loop, sd);
	ck_assert_int_eq(fut_error(sd), 0);
	/* Nothing listens any more. */
	char u[64];
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/", port);
	fut *late = fut_http_fetch(loop, u, NULL);
	wait_for(loop, late);
	ck_assert_int_eq(fut_error(late), -ECONNREFUSED);
	fut_unref(late);
	fut_unref(slow);
	fut_unref(idle);
	fut_unref(sd);
	fut_http_server_free(srv);

	/* A request longer than the deadline is cut. */
	srv = serve(loop, &o);
	slow = fut_http_fetch(loop, url(srv, "/sleep?ms=5000"), NULL);
	run_for(loop, 50);
	uint64_t t0 = fut_loop_now(loop);
	sd = fut_http_server_shutdown(srv, 100);
	wait_for(loop, sd);
	ck_assert_int_lt(fut_loop_now(loop) - t0, 1000);
	wait_for(loop, slow);
	ck_assert_int_lt(fut_error(slow), 0);
	fut_unref(slow);
	fut_unref(sd);
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* ---- coroutine handlers (opts.coroutine) ---- */

static int coro_upstream_port;

/* /flood: writes until a write fails, into a peer that reads nothing. */
static int flood_err, flood_started, flood_done;

static void flooder(fut_http_req *req)
{
	static char chunk[16384];
	ck_assert_int_eq(fut_http_stream_begin(req, 200), 0);
	flood_started = 1;
	int e;
	while ((e = fut_await(fut_http_stream_write(req, chunk, sizeof(chunk)),
			      NULL)) == 0)
		;
	flood_err = e;
	ck_assert_int_eq(fut_http_stream_end(req), e);
	flood_done = 1;
}

/* A client that sends GET /flood and reads nothing, its window small. */
static int flood_client(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), small = 4096;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	static const char get[] = "GET /flood HTTP/1.1\r\nHost: x\r\n\r\n";
	ck_assert_int_eq(send(fd, get, sizeof(get) - 1, 0), sizeof(get) - 1);
	return fd;
}

static void wait_flood_start(fut_loop *loop)
{
	for (int i = 0; i < 200 && !flood_started; i++)
		run_for(loop, 1);
	ck_assert(flood_started);
}

static void wait_flood(fut_loop *loop)
{
	for (int i = 0; i < 200 && !flood_done; i++)
		run_for(loop, 10);
	ck_assert_msg(flood_done, "the writer still waits");
}

static void coro_handler(fut_http_req *req, void *arg)
{
	(void)arg;
	fut_loop *loop = fut_http_req_loop(req);
	const struct fut_http_request_head *h = fut_http_req_head(req);
	if (route(req, "GET", "/sleep")) {
		const char *v;
		size_t vl;
		int ms = fut_http_query_param(h->query, h->query_len, "ms", &v,
					      &vl) ? atoi(v) : 0;
		int e = fut_await(fut_sleep(loop, (uint64_t)ms), NULL);
		/* The server may be gone by now (coroutine_outlives_server):
		 * the request still is valid until it is answered. */
		fut_http_respond(req, e ? 503 : 200, "slept\n", 6);
	} else if (route(req, "GET", "/proxy")) {
		char u[64];
		snprintf(u, sizeof(u), "http://127.0.0.1:%d/",
			 coro_upstream_port);
		fut *f = fut_http_fetch(loop, u, NULL);
		fut_ref(f); /* kept past the await to read the response */
		int e = fut_await(f, NULL);
		const struct fut_http_response *r = e ? NULL :
						     fut_http_response_of(f);
		if (r)
			fut_http_respond(req, 200, r->body, r->body_len);
		else
			fut_http_respond(req, 502, NULL, 0);
		fut_unref(f);
	} else if (route(req, "POST", "/echo")) {
		size_t n;
		const void *b = fut_http_req_body(req, &n);
		ck_assert_int_eq(fut_yield(), 0);
		fut_http_respond(req, 200, b, n);
	} else if (route(req, "GET", "/stream")) {
		streamer(req);
	} else if (route(req, "GET", "/flood")) {
		flooder(req);
	} else {
		fut_http_respond(req, 404, NULL, 0);
	}
}

static fut_http_server *serve_coro_opts(fut_loop *loop,
					struct fut_http_server_opts *o)
{
	o->host = "127.0.0.1";
	o->handler = coro_handler;
	o->coroutine = 1;
	fut_http_server *srv = NULL;
	int err = fut_http_server_new(loop, o, &srv);
	ck_assert_msg(err == 0, "server: %s", fut_strerror(err));
	return srv;
}

static fut_http_server *serve_coro(fut_loop *loop)
{
	struct fut_http_server_opts o = { 0 };
	return serve_coro_opts(loop, &o);
}

/* Each request's handler runs in its own coroutine: one waiting (a sleep,
 * a fetch, a slow reader of a stream) holds up no other. */
START_TEST(coroutine_handlers)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts uo = { 0 };
	fut_http_server *up = serve(loop, &uo);
	coro_upstream_port = fut_http_server_port(up);
	fut_http_server *srv = serve_coro(loop);
	enum { N = 20 };
	fut *f[N];
	uint64_t t0 = fut_loop_now(loop);
	for (int i = 0; i < N; i++)
		f[i] = fut_http_fetch(loop, url(srv, "/sleep?ms=200"), NULL);
	for (int i = 0; i < N; i++) {
		wait_for(loop, f[i]);
		ck_assert_msg(fut_error(f[i]) == 0, "%s",
			      fut_strerror(fut_error(f[i])));
		ck_assert_int_eq(fut_http_response_of(f[i])->status, 200);
		fut_unref(f[i]);
	}
	/* Twenty 200 ms waits side by side, not one after another. */
	ck_assert_uint_lt(fut_loop_now(loop) - t0, 2000);
	fut *p = fut_http_fetch(loop, url(srv, "/proxy"), NULL);
	wait_for(loop, p);
	ck_assert_int_eq(fut_http_response_of(p)->status, 200);
	ck_assert_str_eq(fut_http_response_of(p)->body, "hello world\n");
	fut_unref(p);
	struct fut_http_fetch_opts eo = { .body = "ping", .body_len = 4 };
	fut *e = fut_http_fetch(loop, url(srv, "/echo"), &eo);
	wait_for(loop, e);
	ck_assert_int_eq(fut_http_response_of(e)->status, 200);
	ck_assert_str_eq(fut_http_response_of(e)->body, "ping");
	fut_unref(e);
	fut *st = fut_http_fetch(loop, url(srv, "/stream"), NULL);
	wait_for(loop, st);
	ck_assert_int_eq(fut_http_response_of(st)->status, 200);
	ck_assert_uint_eq(fut_http_response_of(st)->body_len, 64 * 65536);
	fut_unref(st);
	fut *sd = fut_http_server_shutdown(srv, 5000);
	wait_for(loop, sd);
	ck_assert_int_eq(fut_error(sd), 0);
	fut_unref(sd);
	fut_http_server_free(srv);
	fut_http_server_free(up);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* Shutdown waits for a coroutine in the middle of its wait; a server freed
 * under one leaves it a request it can still answer (into a closed
 * connection), and the loop then frees cleanly. */
START_TEST(coroutine_outlives_server)
{
	fut_loop *loop = new_loop();
	fut_http_server *srv = serve_coro(loop);
	fut *slow = fut_http_fetch(loop, url(srv, "/sleep?ms=200"), NULL);
	run_for(loop, 50);
	fut *sd = fut_http_server_shutdown(srv, 5000);
	wait_for(loop, slow);
	ck_assert_int_eq(fut_http_response_of(slow)->status, 200);
	wait_for(loop, sd);
	ck_assert_int_eq(fut_error(sd), 0);
	fut_unref(sd);
	fut_unref(slow);
	fut_http_server_free(srv);

	srv = serve_coro(loop);
	slow = fut_http_fetch(loop, url(srv, "/sleep?ms=200"), NULL);
	run_for(loop, 50);
	fut_http_server_free(srv);
	wait_for(loop, slow);
	ck_assert_int_lt(fut_error(slow), 0);
	fut_unref(slow);
	run_for(loop, 250); /* the coroutine wakes and answers */
	/* And freed with the coroutine still asleep. */
	srv = serve_coro(loop);
	slow = fut_http_fetch(loop, url(srv, "/sleep?ms=10000"), NULL);
	run_for(loop, 50);
	fut_http_server_free(srv);
	wait_for(loop, slow);
	ck_assert_int_lt(fut_error(slow), 0);
	fut_unref(slow);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/*
 * A handler waiting for room to write is let go whenever the connection
 * ends: a write timeout fails its write with -ETIMEDOUT, a free or a
 * shutdown's deadline with -EPIPE (both were -ECANCELED, which reads as
 * the handler's own coroutine being cancelled). A send that completed in
 * the tick of the free left the writer waiting for good (a user audit;
 * on epoll every run with the free 3 ms in). The delays sweep that race.
 */
START_TEST(stalled_writer_is_let_go)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { .write_timeout_ms = 100 };
	fut_http_server *srv = serve_coro_opts(loop, &o);
	flood_started = flood_done = 0;
	int fd = flood_client(fut_http_server_port(srv));
	wait_flood(loop);
	ck_assert_int_eq(flood_err, -ETIMEDOUT);
	close(fd);
	fut_http_server_free(srv);
	for (int ms = 0; ms < 10; ms++) {
		struct fut_http_server_opts d = { 0 };
		srv = serve_coro_opts(loop, &d);
		flood_started = flood_done = 0;
		fd = flood_client(fut_http_server_port(srv));
		wait_flood_start(loop);
		run_for(loop, (uint64_t)ms);
		if (ms % 2) {
			fut_unref(fut_http_server_shutdown(srv, 5));
		} else {
			fut_http_server_free(srv);
			srv = NULL;
		}
		wait_flood(loop);
		ck_assert_msg(flood_err == -EPIPE, "%d ms: %s", ms,
			      fut_strerror(flood_err));
		close(fd);
		fut_http_server_free(srv);
	}
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* write_timeout_ms is for a peer that takes nothing: a 16 MiB body read
 * steadily through a small window (~16 MB/s) takes ~1 s, past a 300 ms
 * write timeout, and still arrives whole (it was one send with one
 * deadline, cut short). */
START_TEST(slow_reader_gets_the_whole_body)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { .write_timeout_ms = 300 };
	fut_http_server *srv = serve(loop, &o);
	static struct raw x;
	memset(&x, 0, sizeof(x));
	x.port = fut_http_server_port(srv);
	x.send = "GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	x.send_len = strlen(x.send);
	x.slow = 1;
	fut *f = fut_run_blocking(loop, raw_job, &x);
	wait_for(loop, f);
	fut_unref(f);
	ck_assert_msg(!strncmp(x.got, "HTTP/1.1 200 ", 13), "%.20s", x.got);
	ck_assert_uint_gt(x.total, (size_t)16 << 20);
	ck_assert_uint_lt(x.total, ((size_t)16 << 20) + 512);
	ck_assert(x.eof);
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/*
 * A client that leaves while a long handler runs gives its connection
 * back: with one connection allowed, a client that sent GET /sleep of 20 s
 * and closed held the server for the 20 s (load audit: ten thousand such
 * requests kept it at its cap). One that only half-closed still gets its
 * answer.
 */
START_TEST(client_that_left_frees_its_connection)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { .max_connections = 1,
					  .write_timeout_ms = 1000 };
	fut_http_server *srv = serve(loop, &o);
	static struct raw half, gone, next;
	memset(&half, 0, sizeof(half));
	memset(&gone, 0, sizeof(gone));
	memset(&next, 0, sizeof(next));
	half.port = gone.port = next.port = fut_http_server_port(srv);
	/* Two pipelined requests, then the half-close: both answered (the
	 * second, read with the first, was dropped for the socket's EOF). */
	half.send = "GET /sleep?ms=1400 HTTP/1.1\r\nHost: x\r\n\r\n"
		    "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	half.send_len = strlen(half.send);
	half.shut_wr = 1;
	fut *f = fut_run_blocking(loop, raw_job, &half);
	wait_for(loop, f);
	fut_unref(f);
	ck_assert_msg(!strncmp(half.got, "HTTP/1.1 200 ", 13), "%.20s",
		      half.got);
	ck_assert(strstr(half.got, "slept\n"));
	const char *second = strstr(half.got + 13, "HTTP/1.1 200 ");
	ck_assert_msg(second && strstr(second, "hello world\n"), "%s",
		      half.got);
	gone.send = "GET /sleep?ms=20000 HTTP/1.1\r\nHost: x\r\n\r\n";
	gone.send_len = strlen(gone.send);
	gone.leave = 1;
	f = fut_run_blocking(loop, raw_job, &gone);
	wait_for(loop, f);
	fut_unref(f);
	next.send = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	next.send_len = strlen(next.send);
	f = fut_run_blocking(loop, raw_job, &next);
	wait_for(loop, f);
	fut_unref(f);
	/* The watch starts 1 s in, the half-close grace is 1 s more. */
	ck_assert_msg(!strncmp(next.got, "HTTP/1.1 200 ", 13), "%.20s",
		      next.got);
	ck_assert_int_lt(next.ms, 4000);
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* Stops a loop whose fut_loop_run(3) would otherwise go on for good. */
struct guard {
	fut_loop *loop;
	sem_t done;
	pthread_t t;
};

static void *guard_thread(void *arg)
{
	struct guard *g = arg;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 4;
	while (sem_timedwait(&g->done, &ts) < 0 && errno == EINTR)
		;
	if (errno == ETIMEDOUT)
		fut_loop_stop(g->loop);
	return NULL;
}

/* fut_loop_run(loop) ends by itself, well before the guard's 4 s. */
static void run_ends_soon(fut_loop *loop)
{
	struct guard g = { .loop = loop };
	sem_init(&g.done, 0, 0);
	ck_assert_int_eq(pthread_create(&g.t, NULL, guard_thread, &g), 0);
	uint64_t t0 = fut_loop_now(loop);
	ck_assert_int_eq(fut_loop_run(loop), 0);
	uint64_t took = fut_loop_now(loop) - t0;
	sem_post(&g.done);
	pthread_join(g.t, NULL);
	sem_destroy(&g.done);
	ck_assert_msg(took < 2000, "fut_loop_run took %llu ms",
		      (unsigned long long)took);
}

/*
 * Shutdown lets go of everything: the port is free and new connections
 * refused as soon as it returns (io_uring and threads close the listener
 * later, and a rebind failed with EADDRINUSE meanwhile), and once the last
 * connection is gone nothing of the server keeps fut_loop_run going (its
 * sweep timer did, for good, and the deadline's sleep for its length).
 */
START_TEST(shutdown_lets_go)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { 0 };
	fut_http_server *srv = serve(loop, &o);
	int port = fut_http_server_port(srv);
	fut *sd = fut_http_server_shutdown(srv, 5000);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), -1);
	ck_assert_int_eq(errno, ECONNREFUSED);
	close(fd);
	struct fut_http_server_opts o2 = { .port = port };
	fut_http_server *again = serve(loop, &o2);
	ck_assert_int_eq(fut_http_server_port(again), port);
	wait_for(loop, sd);
	fut_unref(sd);
	fut_http_server_free(srv);
	fut_http_server_free(again);

	srv = serve(loop, &o);
	const char *hdrs[] = { "Connection: close", NULL };
	struct fut_http_fetch_opts fo = { .headers = hdrs };
	fut *slow = fut_http_fetch(loop, url(srv, "/sleep?ms=100"), &fo);
	run_for(loop, 30);
	sd = fut_http_server_shutdown(srv, 5000);
	run_ends_soon(loop);
	ck_assert_int_eq(fut_error(sd), 0);
	ck_assert_int_eq(fut_http_response_of(slow)->status, 200);
	fut_unref(slow);
	fut_unref(sd);
	fut_http_server_free(srv);

	/* Freed while a shutdown waits for a request: the shutdown ends
	 * -ECANCELED (its timers were freed twice). */
	srv = serve(loop, &o);
	slow = fut_http_fetch(loop, url(srv, "/sleep?ms=300"), &fo);
	run_for(loop, 30);
	sd = fut_http_server_shutdown(srv, 5000);
	run_for(loop, 10);
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_error(sd), -ECANCELED);
	wait_for(loop, slow);
	ck_assert_int_lt(fut_error(slow), 0);
	fut_unref(slow);
	fut_unref(sd);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/*
 * fut_cancel of a fetch ends its exchange: the connection closes and its
 * max_per_host slot goes to the next request at once (the exchange ran on
 * until the response came, and a request behind it timed out in the
 * queue). A queued request that is cancelled leaves the queue.
 */
START_TEST(fetch_cancel_ends_the_exchange)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts so = { 0 };
	fut_http_server *srv = serve(loop, &so);
	struct fut_http_fetch_opts o = { .max_per_host = 1,
					 .queue_timeout_ms = 1000 };
	fut *slow = fut_http_fetch(loop, url(srv, "/sleep?ms=5000"), &o);
	fut *queued = fut_http_fetch(loop, url(srv, "/sleep?ms=5000"), &o);
	run_for(loop, 50);
	ck_assert_int_eq(fut_state(slow), FUT_PENDING);
	ck_assert_int_eq(fut_cancel(queued), 0);
	ck_assert_int_eq(fut_cancel(slow), 0);
	uint64_t t0 = fut_loop_now(loop);
	fut *next = fut_http_fetch(loop, url(srv, "/"), &o);
	wait_for(loop, next);
	ck_assert_msg(fut_error(next) == 0, "%s", fut_strerror(fut_error(next)));
	ck_assert_int_eq(fut_http_response_of(next)->status, 200);
	ck_assert_uint_lt(fut_loop_now(loop) - t0, 900);
	wait_for(loop, slow);
	wait_for(loop, queued);
	ck_assert_int_eq(fut_error(slow), -ECANCELED);
	ck_assert_int_eq(fut_error(queued), -ECANCELED);
	fut_unref(slow);
	fut_unref(queued);
	fut_unref(next);
	/* Cancelled while connecting, and with the loop freed under a
	 * fetch in flight: nothing leaks. */
	fut *c = fut_http_fetch(loop, url(srv, "/"), NULL);
	fut_cancel(c);
	fut_unref(c);
	fut_unref(fut_http_fetch(loop, url(srv, "/sleep?ms=5000"), NULL));
	run_for(loop, 20);
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* A server on a loop of its own thread. */
struct thread_server {
	pthread_t t;
	fut_loop *loop;
	fut_http_server *srv;
	sem_t ready, stopped;
	int port;
};

static void *thread_server_main(void *arg)
{
	struct thread_server *ts = arg;
	int err;
	ts->loop = fut_loop_new(NULL, &err);
	struct fut_http_server_opts o = { .host = "127.0.0.1",
					  .handler = handler };
	if (ts->loop && fut_http_server_new(ts->loop, &o, &ts->srv) == 0)
		ts->port = fut_http_server_port(ts->srv);
	sem_post(&ts->ready);
	if (ts->port > 0) {
		fut_loop_run(ts->loop); /* until fut_loop_stop */
		/* Its call must be over before the free (fut_loop_free(3)). */
		sem_wait(&ts->stopped);
	}
	fut_http_server_free(ts->srv);
	fut_loop_free(ts->loop);
	return NULL;
}

/*
 * An idle pooled connection does not keep fut_loop_run going (as Node's
 * agent unrefs a free socket): the run used to last idle_timeout_ms (4 s)
 * after the last response. The connection is still reused after.
 */
START_TEST(idle_pool_does_not_keep_run)
{
	struct thread_server ts = { 0 };
	sem_init(&ts.ready, 0, 0);
	sem_init(&ts.stopped, 0, 0);
	ck_assert_int_eq(pthread_create(&ts.t, NULL, thread_server_main, &ts), 0);
	sem_wait(&ts.ready);
	ck_assert_int_gt(ts.port, 0);
	fut_loop *loop = new_loop();
	char u[64];
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/", ts.port);
	fut *f = fut_http_fetch(loop, u, NULL);
	run_ends_soon(loop);
	ck_assert_int_eq(fut_http_response_of(f)->status, 200);
	fut_unref(f);
	f = fut_http_fetch(loop, u, NULL);
	wait_for(loop, f);
	ck_assert_int_eq(fut_http_response_of(f)->status, 200);
	fut_unref(f);
	ck_assert_int_eq(fut_loop_free(loop), 0);
	fut_loop_stop(ts.loop);
	sem_post(&ts.stopped);
	pthread_join(ts.t, NULL);
	sem_destroy(&ts.ready);
	sem_destroy(&ts.stopped);
}
END_TEST

START_TEST(client_timeouts_are_separate)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { 0 };
	fut_http_server *srv = serve(loop, &o);
	struct fut_http_fetch_opts ro = { .request_timeout_ms = 100 };
	fut *f = fut_http_fetch(loop, url(srv, "/sleep?ms=3000"), &ro);
	wait_for(loop, f);
	ck_assert_int_eq(fut_error(f), FUT_HTTP_ETIMEOUT_REQUEST);
	fut_unref(f);

	/* One connection per host: the second request waits in the queue
	 * and gives up there; the first is unaffected. */
	struct fut_http_fetch_opts q1 = { .max_per_host = 1,
					  .request_timeout_ms = 5000 };
	struct fut_http_fetch_opts q2 = { .max_per_host = 1,
					  .queue_timeout_ms = 50 };
	char u[64];
	snprintf(u, sizeof(u), "http://localhost:%d/sleep?ms=300",
		 fut_http_server_port(srv));
	fut *a = fut_http_fetch(loop, u, &q1);
	fut *b = fut_http_fetch(loop, u, &q2);
	wait_for(loop, b);
	ck_assert_int_eq(fut_error(b), FUT_HTTP_ETIMEOUT_QUEUE);
	wait_for(loop, a);
	ck_assert_msg(fut_http_response_of(a), "%s", fut_strerror(fut_error(a)));
	fut_unref(a);
	fut_unref(b);

	/* Queued requests run in order once the connection is free: the
	 * queue wait does not count against the request timeout. */
	struct fut_http_fetch_opts q3 = { .max_per_host = 1,
					  .request_timeout_ms = 250 };
	fut *c[3];
	for (int i = 0; i < 3; i++)
		c[i] = fut_http_fetch(loop, u + 0, &q3);
	(void)c;
	for (int i = 0; i < 3; i++) {
		wait_for(loop, c[i]);
		ck_assert_int_eq(fut_error(c[i]), FUT_HTTP_ETIMEOUT_REQUEST);
		fut_unref(c[i]);
	}
	snprintf(u, sizeof(u), "http://localhost:%d/sleep?ms=100",
		 fut_http_server_port(srv));
	for (int i = 0; i < 3; i++)
		c[i] = fut_http_fetch(loop, u, &q3);
	for (int i = 0; i < 3; i++) {
		wait_for(loop, c[i]);
		ck_assert_msg(fut_http_response_of(c[i]), "%d: %s", i,
			      fut_strerror(fut_error(c[i])));
		fut_unref(c[i]);
	}
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* A TCP socket bound to a free loopback port, not listening yet; its URL
 * in u (64 bytes). */
static int bound_socket(char *u)
{
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	ck_assert_int_eq(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t al = sizeof(a);
	getsockname(ls, (struct sockaddr *)&a, &al);
	snprintf(u, 64, "http://127.0.0.1:%d/", ntohs(a.sin_port));
	return ls;
}

struct bad_server {
	int fd;
	const char *reply;
	int trickle; /* send the reply a byte at a time */
	int hold_ms; /* wait this long before closing */
};

static int64_t bad_server_job(void *arg)
{
	struct bad_server *b = arg;
	int c = accept(b->fd, NULL, NULL);
	if (c < 0)
		return -errno;
	char buf[4096];
	ssize_t n = recv(c, buf, sizeof(buf), 0);
	(void)n;
	if (b->trickle) {
		int one = 1;
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		for (const char *p = b->reply; *p; p++) {
			send(c, p, 1, MSG_NOSIGNAL);
			usleep(100);
		}
	} else {
		send(c, b->reply, strlen(b->reply), MSG_NOSIGNAL);
	}
	if (b->hold_ms)
		usleep((useconds_t)b->hold_ms * 1000);
	close(c);
	return 0;
}

START_TEST(client_errors)
{
	fut_loop *loop = new_loop();
	static const char *const bad[] = {
		"http:/x", "1http://x/", "http://", "http:///x",
		"http://x:0/", "http://x:65536/", "http://x:12ab/",
		"http://user@x/", "http://[::1/", "http://a b/",
		"http://x:+80/", "http://x:-1/", "http://[127.0.0.1]/",
		"http://[x]/", "http://x:80:80/", "http://[1:2]:1/",
		"http://[abc:def]/", "http://[1.2.3.4:5]/", "http://[:::]/",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fut *f = fut_http_fetch(loop, bad[i], NULL);
		wait_for(loop, f);
		ck_assert_msg(fut_error(f) == FUT_HTTP_EBADURL, "%s: %s", bad[i],
			      fut_strerror(fut_error(f)));
		fut_unref(f);
	}
	static const char *const other[] = { "https://127.0.0.1/", "FTP://x/",
					     "git+ssh://x/" };
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		fut *f = fut_http_fetch(loop, other[i], NULL);
		wait_for(loop, f);
		ck_assert_msg(fut_error(f) == FUT_HTTP_ESCHEME, "%s: %s",
			      other[i], fut_strerror(fut_error(f)));
		fut_unref(f);
	}
	fut *f = fut_http_fetch(loop, NULL, NULL);
	ck_assert_int_eq(fut_error(f), -EINVAL);
	fut_unref(f);
	/* "host:" is the default port (RFC 3986 6.2.3), not a bad URL. */
	f = fut_http_fetch(loop, "http://127.0.0.1:/", NULL);
	wait_for(loop, f);
	ck_assert_int_ne(fut_error(f), FUT_HTTP_EBADURL);
	fut_unref(f);
	static const char *const methods[] = { "G(E)T", "GET/x", "A:B", "",
					       "CONNECT" };
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		struct fut_http_fetch_opts mo = { .method = methods[i] };
		f = fut_http_fetch(loop, "http://127.0.0.1:1/", &mo);
		wait_for(loop, f);
		ck_assert_msg(fut_error(f) == -EINVAL, "method '%s': %s",
			      methods[i], fut_strerror(fut_error(f)));
		fut_unref(f);
	}
	/* The framing is the library's; one Host at most. */
	static const char *const framing[][3] = {
		{ "Content-Length: 0", NULL }, { "transfer-encoding: chunked", NULL },
		{ "Host: a", "host: b", NULL },
	};
	for (size_t i = 0; i < sizeof(framing) / sizeof(framing[0]); i++) {
		struct fut_http_fetch_opts fo = { .headers = framing[i] };
		f = fut_http_fetch(loop, "http://127.0.0.1:1/", &fo);
		wait_for(loop, f);
		ck_assert_msg(fut_error(f) == -EINVAL, "headers %zu: %s", i,
			      fut_strerror(fut_error(f)));
		fut_unref(f);
	}
	/* A future holding some other pointer is no response. */
	f = fut_new(loop);
	static char not_a_response[8];
	fut_resolve_ptr(f, not_a_response, NULL);
	ck_assert_ptr_null(fut_http_response_of(f));
	fut_unref(f);
	const char *hdr[] = { "X-Bad\r\nInjected: 1", NULL };
	struct fut_http_fetch_opts ho = { .headers = hdr };
	f = fut_http_fetch(loop, "http://127.0.0.1:1/", &ho);
	wait_for(loop, f);
	ck_assert_int_eq(fut_error(f), -EINVAL);
	fut_unref(f);

	/* Refused, and a server that answers garbage. */
	char u[64];
	int ls = bound_socket(u);
	f = fut_http_fetch(loop, u, NULL);
	wait_for(loop, f);
	ck_assert_int_eq(fut_error(f), -ECONNREFUSED);
	fut_unref(f);
	ck_assert_int_eq(listen(ls, 4), 0);
	static const char *const replies[] = {
		"HTTP/1.1 2x0 OK\r\n\r\n",
		("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
		 "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"garbage\r\n\r\n",
		/* HTTP/0.9: no status line, the body until close */
		"<html>hi</html>",
		/* unasked-for 101: what follows is not HTTP to parse */
		("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n"
		 "Connection: Upgrade\r\n\r\nHTTP/1.1 200 OK\r\n"
		 "Content-Length: 11\r\n\r\nuntil close"),
		/* HTTP/1.0 framing with Transfer-Encoding is faulty */
		("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "b\r\nuntil close\r\n0\r\n\r\n"),
		/* closed without a byte, inside the head, inside a chunk */
		"",
		"HTTP/1.1 200 OK\r\nContent-Le",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
	};
	for (size_t k = 0; k < 2 * sizeof(replies) / sizeof(replies[0]); k++) {
		size_t i = k / 2;
		struct bad_server b = { ls, replies[i], (int)(k % 2), 0 };
		fut *job = fut_run_blocking(loop, bad_server_job, &b);
		f = fut_http_fetch(loop, u, NULL);
		wait_for(loop, f);
		/* Content-Length 10 with 5 bytes then a close, and the last
		 * three: cut short by the close, not malformed. */
		int want = i == 2 || i >= 7 ? FUT_HTTP_ECLOSED :
					     FUT_HTTP_EBADRESP;
		ck_assert_msg(fut_error(f) == want, "reply %zu: %s",
			      i, fut_strerror(fut_error(f)));
		wait_for(loop, job);
		fut_unref(job);
		fut_unref(f);
	}
	/* The response head's limits are the caller's to set. */
	static const struct { unsigned bytes, count; int want; } lims[] = {
		{ 0, 2, FUT_HTTP_EHDRTOOBIG }, { 32, 0, FUT_HTTP_EHDRTOOBIG },
		{ 0, 3, 0 }, { 200, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(lims) / sizeof(lims[0]); i++) {
		struct bad_server b = { ls, "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n"
					    "Content-Length: 2\r\n\r\nok", 0, 0 };
		fut *job = fut_run_blocking(loop, bad_server_job, &b);
		struct fut_http_fetch_opts lo = { .max_header_bytes = lims[i].bytes,
						  .max_headers = lims[i].count };
		f = fut_http_fetch(loop, u, &lo);
		wait_for(loop, f);
		ck_assert_msg(fut_error(f) == lims[i].want, "limits %zu: %s", i,
			      fut_strerror(fut_error(f)));
		wait_for(loop, job);
		fut_unref(job);
		fut_unref(f);
	}
	struct fut_http_fetch_opts huge = { .max_headers = 10001 };
	f = fut_http_fetch(loop, u, &huge);
	wait_for(loop, f);
	ck_assert_int_eq(fut_error(f), -EINVAL);
	fut_unref(f);
	/* Close-delimited and chunked bodies are read right. */
	static const char *const good[] = {
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		"5\r\nuntil\r\n6\r\n close\r\n0\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"
		"Content-Length: 11\r\nConnection: close\r\n\r\nuntil close",
		/* obs-fold: a user agent unfolds it (RFC 9112 5.2) */
		"HTTP/1.1 200 OK\r\nX-Folded: a\r\n  b\r\n\tc\r\n"
		"Content-Length: 11\r\n\r\nuntil close",
		/* a coding other than chunked last: until close, as sent */
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: x-raw\r\n\r\nuntil close",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: x-raw, chunked\r\n\r\n"
		"5\r\nuntil\r\n6\r\n close\r\n0\r\n\r\n",
		/* trailer fields, one of them folded (as curl takes it) */
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		"5\r\nuntil\r\n6\r\n close\r\n0\r\nX-T: a\r\n b\r\n"
		"X-U: c\r\n\r\n",
	};
	/* ... whole, and a byte at a time (the head parse resumes where
	 * the last recv left it, also after a 1xx head). */
	for (size_t k = 0; k < 2 * sizeof(good) / sizeof(good[0]); k++) {
		size_t i = k / 2;
		struct bad_server b = { ls, good[i], (int)(k % 2), 0 };
		fut *job = fut_run_blocking(loop, bad_server_job, &b);
		f = fut_http_fetch(loop, u, NULL);
		wait_for(loop, f);
		const struct fut_http_response *r = fut_http_response_of(f);
		ck_assert_msg(r, "reply %zu: %s", i, fut_strerror(fut_error(f)));
		ck_assert_str_eq(r->body, "until close");
		if (i == 3) {
			ck_assert_uint_eq(r->num_headers, 2);
			/* each CRLF became two spaces */
			ck_assert_int_eq(r->headers[0].value_len, 10);
			ck_assert(!memcmp(r->headers[0].value, "a    b  \tc", 10));
		}
		wait_for(loop, job);
		fut_unref(job);
		fut_unref(f);
	}
	close(ls);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* Answers the first request, reads a second on the same connection and
 * closes without answering, then answers whatever comes on a new
 * connection within a second. Returns the requests it saw. */
static int64_t close_second_job(void *arg)
{
	int ls = *(int *)arg, seen = 0;
	const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	char buf[4096];
	int c = accept(ls, NULL, NULL);
	if (c < 0)
		return -errno;
	if (recv(c, buf, sizeof(buf), 0) > 0)
		seen++;
	send(c, ok, strlen(ok), MSG_NOSIGNAL);
	if (recv(c, buf, sizeof(buf), 0) > 0)
		seen++;
	close(c);
	struct timeval tv = { .tv_sec = 1 };
	setsockopt(ls, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	c = accept(ls, NULL, NULL);
	if (c >= 0) {
		if (recv(c, buf, sizeof(buf), 0) > 0)
			seen++;
		send(c, ok, strlen(ok), MSG_NOSIGNAL);
		close(c);
	}
	return seen;
}

/* Serves requests with keep-alive responses until nothing happens for a
 * second; returns connections accepted * 100 + requests answered. */
static int64_t count_conns_job(void *arg)
{
	int ls = *(int *)arg, conns = 0, reqs = 0, fds[8];
	const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	struct pollfd p[9];
	for (;;) {
		p[0] = (struct pollfd){ .fd = ls, .events = POLLIN };
		for (int i = 0; i < conns; i++)
			p[i + 1] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		if (poll(p, (nfds_t)conns + 1, 1000) <= 0)
			break;
		/* The test is done with it: shutdown(2) of the listener (not
		 * a second of silence, 4 s of every run). */
		if (p[0].revents & (POLLHUP | POLLERR | POLLNVAL))
			break;
		int polled = conns;
		if ((p[0].revents & POLLIN) && conns < 8)
			fds[conns++] = accept(ls, NULL, NULL);
		for (int i = 0; i < polled; i++) {
			char buf[4096];
			if (fds[i] < 0 || !(p[i + 1].revents & POLLIN))
				continue;
			if (recv(fds[i], buf, sizeof(buf), 0) <= 0) {
				close(fds[i]); /* poll skips a negative fd */
				fds[i] = -1;
				continue;
			}
			reqs++;
			send(fds[i], ok, strlen(ok), MSG_NOSIGNAL);
		}
	}
	for (int i = 0; i < conns; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return conns * 100 + reqs;
}

/* The request the client writes: Host from the parsed URL, Content-Length
 * for PATCH, field names as tokens, a caller's Connection: close honoured
 * (RFC 9112 9.6), "no limit" max_body, and each request's own pool cap. */
START_TEST(fetch_request_shape)
{
	fut_loop *loop = new_loop();
	fut_http_server *srv = NULL;
	struct fut_http_server_opts so = { .handler = handler };
	ck_assert_int_eq(fut_http_server_new(loop, &so, &srv), 0);
	int port = fut_http_server_port(srv);
	char u[128], want[128];
	static const char *const forms[] = { "http://127.0.0.1:%d/dump",
					      "http://127.0.0.1:000%d/dump",
					      "http://[::1]:%d/dump" };
	static const char *const hosts[] = { "Host: 127.0.0.1:%d\n",
					     "Host: 127.0.0.1:%d\n",
					     "Host: [::1]:%d\n" };
	for (int i = 0; i < (have_ipv6_loopback() ? 3 : 2); i++) {
		snprintf(u, sizeof(u), forms[i], port);
		snprintf(want, sizeof(want), hosts[i], port);
		fut *f = fut_http_fetch(loop, u, NULL);
		wait_for(loop, f);
		const struct fut_http_response *r = fut_http_response_of(f);
		ck_assert_msg(r, "%s: %s", u, fut_strerror(fut_error(f)));
		ck_assert_msg(strstr(r->body, want), "%s: %s", u, r->body);
		/* A user agent says what it is (RFC 9110 10.1.5). */
		ck_assert_msg(strstr(r->body, "User-Agent: libfuture/"), "%s",
			      r->body);
		fut_unref(f);
	}
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/dump", port);
	/* ... unless the caller says it: then that one only. */
	static const char *const ua[] = { "user-agent: mine/1", NULL };
	struct fut_http_fetch_opts uo = { .headers = ua };
	fut *uf = fut_http_fetch(loop, u, &uo);
	wait_for(loop, uf);
	ck_assert_ptr_nonnull(fut_http_response_of(uf));
	ck_assert_msg(strstr(fut_http_response_of(uf)->body,
			     "user-agent: mine/1\n") &&
		      !strstr(fut_http_response_of(uf)->body, "libfuture/"),
		      "%s", fut_http_response_of(uf)->body);
	fut_unref(uf);
	struct fut_http_fetch_opts po = { .method = "PATCH" };
	fut *f = fut_http_fetch(loop, u, &po);
	wait_for(loop, f);
	ck_assert_ptr_nonnull(fut_http_response_of(f));
	ck_assert_msg(strstr(fut_http_response_of(f)->body,
			     "PATCH\n") &&
		      strstr(fut_http_response_of(f)->body,
			     "Content-Length: 0\n"), "%s",
		      fut_http_response_of(f)->body);
	fut_unref(f);
	static const char *const badname[] = { "X(A: v", NULL };
	struct fut_http_fetch_opts bo = { .headers = badname };
	f = fut_http_fetch(loop, u, &bo);
	wait_for(loop, f);
	ck_assert_int_eq(fut_error(f), -EINVAL);
	fut_unref(f);
	/* The caller's Host goes first (RFC 9110 7.2 SHOULD; it went after
	 * User-Agent), and must be an authority (a server MUST answer any
	 * other with 400; it was sent as given). */
	static const char *const vh[] = { "X-A: 1", "Host:  v.test:81 ",
					  NULL };
	struct fut_http_fetch_opts vo = { .headers = vh };
	f = fut_http_fetch(loop, u, &vo);
	wait_for(loop, f);
	ck_assert_ptr_nonnull(fut_http_response_of(f));
	const char *b = fut_http_response_of(f)->body;
	const char *hp = strstr(b, "Host: v.test:81\n");
	ck_assert_msg(hp && hp < strstr(b, "User-Agent:") &&
		      hp < strstr(b, "X-A: 1"), "%s", b);
	fut_unref(f);
	static const char *const badhost[] = { "Host:", "Host: a b",
					       "Host: u@x", "Host: x:8a" };
	for (int i = 0; i < 4; i++) {
		const char *one[] = { badhost[i], NULL };
		struct fut_http_fetch_opts ho = { .headers = one };
		f = fut_http_fetch(loop, u, &ho);
		wait_for(loop, f);
		ck_assert_msg(fut_error(f) == -EINVAL, "%s", badhost[i]);
		fut_unref(f);
	}
	/* max_body UINT64_MAX on a 4 MiB chunked body */
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/stream", port);
	struct fut_http_fetch_opts mo = { .max_body = UINT64_MAX };
	f = fut_http_fetch(loop, u, &mo);
	wait_for(loop, f);
	ck_assert_msg(fut_http_response_of(f), "%s",
		      fut_strerror(fut_error(f)));
	ck_assert_uint_eq(fut_http_response_of(f)->body_len, 64u * 65536);
	fut_unref(f);
	/* Four requests capped at one connection share it, one at a time,
	 * although an earlier request allowed the pool eight. */
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/sleep?ms=150", port);
	struct fut_http_fetch_opts c8 = { .max_per_host = 8 },
				   c1 = { .max_per_host = 1 };
	f = fut_http_fetch(loop, u, &c8);
	wait_for(loop, f);
	fut_unref(f);
	struct timeval t0, t1;
	gettimeofday(&t0, NULL);
	fut *fs[4];
	for (int i = 0; i < 4; i++)
		fs[i] = fut_http_fetch(loop, u, &c1);
	for (int i = 0; i < 4; i++) {
		wait_for(loop, fs[i]);
		ck_assert_ptr_nonnull(fut_http_response_of(fs[i]));
		fut_unref(fs[i]);
	}
	gettimeofday(&t1, NULL);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 +
		  (t1.tv_usec - t0.tv_usec) / 1000;
	ck_assert_msg(ms >= 550, "4 x 150 ms on one connection took %ld ms", ms);
	fut_http_server_free(srv);
	/* Connection: close from the caller: the next request opens a new
	 * connection; without it, the connection is reused. */
	for (int close_it = 0; close_it < 2; close_it++) {
		int ls = bound_socket(u);
		ck_assert_int_eq(listen(ls, 4), 0);
		fut *job = fut_run_blocking(loop, count_conns_job, &ls);
		static const char *const cl[] = { "Connection: close", NULL };
		struct fut_http_fetch_opts co = { .headers = close_it ? cl : NULL };
		for (int i = 0; i < 2; i++) {
			f = fut_http_fetch(loop, u, &co);
			wait_for(loop, f);
			ck_assert_msg(fut_http_response_of(f), "%s",
				      fut_strerror(fut_error(f)));
			fut_unref(f);
		}
		shutdown(ls, SHUT_RDWR);
		wait_for(loop, job);
		ck_assert_int_eq(fut_value(job), close_it ? 202 : 102);
		fut_unref(job);
		close(ls);
	}
	/* idle_timeout_ms: a pooled connection idle longer is closed, and
	 * the next request opens another. */
	for (int short_idle = 0; short_idle < 2; short_idle++) {
		int ls = bound_socket(u);
		ck_assert_int_eq(listen(ls, 4), 0);
		fut *job = fut_run_blocking(loop, count_conns_job, &ls);
		struct fut_http_fetch_opts io = {
			.idle_timeout_ms = short_idle ? 50 : 0 };
		for (int i = 0; i < 2; i++) {
			f = fut_http_fetch(loop, u, &io);
			wait_for(loop, f);
			ck_assert_msg(fut_http_response_of(f), "%s",
				      fut_strerror(fut_error(f)));
			fut_unref(f);
			fut *nap = fut_sleep(loop, 300);
			wait_for(loop, nap);
			fut_unref(nap);
		}
		shutdown(ls, SHUT_RDWR);
		wait_for(loop, job);
		ck_assert_int_eq(fut_value(job), short_idle ? 202 : 102);
		fut_unref(job);
		close(ls);
	}
	struct fut_http_fetch_opts ro = { .reserved = { 0, 1 } };
	f = fut_http_fetch(loop, u, &ro);
	ck_assert_int_eq(fut_error(f), -EINVAL);
	fut_unref(f);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* A queued request whose own max_per_host is reached holds up nobody
 * behind it with a larger cap. */
START_TEST(fetch_queue_skips_capped_requests)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts so = { 0 };
	fut_http_server *srv = serve(loop, &so);
	char slow[64], fast[64];
	snprintf(slow, sizeof(slow), "http://127.0.0.1:%d/sleep?ms=800",
		 fut_http_server_port(srv));
	snprintf(fast, sizeof(fast), "http://127.0.0.1:%d/",
		 fut_http_server_port(srv));
	struct fut_http_fetch_opts one = { .max_per_host = 1 },
				   many = { .max_per_host = 32,
					    .queue_timeout_ms = 400 };
	fut *s1 = fut_http_fetch(loop, slow, &one);
	fut *a = fut_http_fetch(loop, fast, &one);  /* waits for s1's */
	fut *b = fut_http_fetch(loop, fast, &many); /* may open another */
	wait_for(loop, b);
	ck_assert_msg(fut_http_response_of(b), "%s",
		      fut_strerror(fut_error(b)));
	ck_assert_int_eq(fut_state(a), FUT_PENDING);
	ck_assert_int_eq(fut_state(s1), FUT_PENDING);
	wait_for(loop, a); /* on b's connection, now idle */
	wait_for(loop, s1);
	ck_assert_ptr_nonnull(fut_http_response_of(a));
	ck_assert_ptr_nonnull(fut_http_response_of(s1));
	fut_unref(s1);
	fut_unref(a);
	fut_unref(b);
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* Reads a little of the request, answers 413 and closes with the rest
 * unread (so the client's send meets a reset). */
static int64_t early_413_job(void *arg)
{
	int ls = *(int *)arg;
	int c = accept(ls, NULL, NULL);
	if (c < 0)
		return -errno;
	char buf[4096];
	ssize_t n = recv(c, buf, sizeof(buf), 0);
	static const char r413[] = "HTTP/1.1 413 Content Too Large\r\n"
				   "Content-Length: 4\r\nConnection: close"
				   "\r\n\r\nbig\n";
	send(c, r413, sizeof(r413) - 1, MSG_NOSIGNAL);
	usleep(20000);
	close(c);
	return n;
}

/* A server that answers before it has read the body and closes: the
 * client still delivers its response (RFC 9112 9.5), not the reset. */
START_TEST(fetch_early_response_during_upload)
{
	fut_loop *loop = new_loop();
	char u[64];
	size_t len = 16u << 20;
	char *body = calloc(1, len);
	ck_assert_ptr_nonnull(body);
	for (int i = 0; i < 2; i++) { /* twice: the reset races the send */
		int ls = bound_socket(u);
		ck_assert_int_eq(listen(ls, 4), 0);
		fut *job = fut_run_blocking(loop, early_413_job, &ls);
		struct fut_http_fetch_opts o = { .body = body, .body_len = len };
		fut *f = fut_http_fetch(loop, u, &o);
		wait_for(loop, f);
		const struct fut_http_response *r = fut_http_response_of(f);
		ck_assert_msg(r, "%s", fut_strerror(fut_error(f)));
		ck_assert_int_eq(r->status, 413);
		ck_assert_str_eq(r->body, "big\n");
		fut_unref(f);
		wait_for(loop, job);
		ck_assert_int_gt(fut_value(job), 0);
		fut_unref(job);
		close(ls);
	}
	free(body);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* Answers 303 to /x before reading the upload and keeps the connection
 * open, then serves /x on the next connection. */
static int64_t early_303_job(void *arg)
{
	int ls = *(int *)arg;
	int c = accept(ls, NULL, NULL);
	if (c < 0)
		return -errno;
	char buf[4096];
	recv(c, buf, sizeof(buf), 0);
	static const char r303[] = "HTTP/1.1 303 See Other\r\nLocation: /x\r\n"
				   "Content-Length: 0\r\n\r\n";
	send(c, r303, sizeof(r303) - 1, MSG_NOSIGNAL);
	int c2 = accept(ls, NULL, NULL);
	ssize_t n = c2 >= 0 ? recv(c2, buf, sizeof(buf) - 1, 0) : -1;
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
				 "Connection: close\r\n\r\nok";
	if (n > 0)
		send(c2, ok, sizeof(ok) - 1, MSG_NOSIGNAL);
	usleep(20000);
	close(c);
	if (c2 >= 0)
		close(c2);
	return n > 0 && !strncmp(buf, "GET /x ", 7);
}

/* A redirect to follow that comes while the upload is still going out
 * stops it (the body is not wanted there): the next hop went only when
 * the request timed out, the upload still being sent to a server that had
 * answered. */
START_TEST(fetch_redirect_during_upload)
{
	fut_loop *loop = new_loop();
	char u[64];
	size_t len = 16u << 20;
	char *body = calloc(1, len);
	ck_assert_ptr_nonnull(body);
	int ls = bound_socket(u);
	ck_assert_int_eq(listen(ls, 4), 0);
	fut *job = fut_run_blocking(loop, early_303_job, &ls);
	struct fut_http_fetch_opts o = { .body = body, .body_len = len,
					 .max_redirects = 1,
					 .request_timeout_ms = 5000 };
	uint64_t t0 = fut_loop_now(loop);
	fut *f = fut_http_fetch(loop, u, &o);
	wait_for(loop, f);
	const struct fut_http_response *r = fut_http_response_of(f);
	ck_assert_msg(r, "%s", fut_strerror(fut_error(f)));
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "ok");
	ck_assert_uint_lt(fut_loop_now(loop) - t0, 3000);
	fut_unref(f);
	wait_for(loop, job);
	ck_assert_int_eq(fut_value(job), 1);
	fut_unref(job);
	close(ls);
	free(body);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* A reused connection that dies under a request is retried on a new one
 * for GET, never for POST: the server may have acted on it (RFC 9112
 * 9.3.1). */
START_TEST(fetch_retries_only_idempotent)
{
	fut_loop *loop = new_loop();
	static const char *const methods[] = { "GET", "POST" };
	for (int m = 0; m < 2; m++) {
		char u[64];
		int ls = bound_socket(u);
		ck_assert_int_eq(listen(ls, 4), 0);
		fut *job = fut_run_blocking(loop, close_second_job, &ls);
		struct fut_http_fetch_opts o = { .method = methods[m] };
		fut *f = fut_http_fetch(loop, u, &o);
		wait_for(loop, f);
		ck_assert_msg(fut_http_response_of(f), "%s: %s", methods[m],
			      fut_strerror(fut_error(f)));
		fut_unref(f);
		f = fut_http_fetch(loop, u, &o);
		wait_for(loop, f);
		if (m == 0)
			ck_assert_msg(fut_http_response_of(f), "GET retry: %s",
				      fut_strerror(fut_error(f)));
		else
			ck_assert_msg(fut_error(f) < 0, "POST was retried");
		fut_unref(f);
		wait_for(loop, job);
		ck_assert_int_eq(fut_value(job), m == 0 ? 3 : 2);
		fut_unref(job);
		close(ls);
	}
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

START_TEST(server_bad_arguments)
{
	fut_loop *loop = new_loop();
	fut_http_server *srv = (fut_http_server *)1;
	struct fut_http_server_opts o = { .host = "127.0.0.1" };
	ck_assert_int_eq(fut_http_server_new(loop, &o, &srv), -EINVAL);
	ck_assert_ptr_null(srv);
	o.handler = handler;
	ck_assert_int_eq(fut_http_server_new(NULL, &o, &srv), -EINVAL);
	ck_assert_int_eq(fut_http_server_new(loop, NULL, &srv), -EINVAL);
	o.port = 70000;
	ck_assert_int_eq(fut_http_server_new(loop, &o, &srv), -EINVAL);
	o.port = 0;
	o.reserved[0] = 1;
	ck_assert_int_eq(fut_http_server_new(loop, &o, &srv), -EINVAL);
	o.reserved[0] = 0;
	o.host = "not-an-address.invalid";
	ck_assert_int_lt(fut_http_server_new(loop, &o, &srv), 0);
	ck_assert_int_eq(fut_http_server_port(NULL), -EINVAL);
	ck_assert_ptr_null(fut_http_req_head(NULL));
	ck_assert_int_eq(fut_http_respond(NULL, 200, NULL, 0), -EINVAL);
	ck_assert_ptr_null(fut_http_stream_write(NULL, "x", 1));
	fut_http_server_free(NULL);
	/* IPv6 loopback, where the machine has it. */
	o.host = "::1";
	if (fut_http_server_new(loop, &o, &srv) == 0) {
		char u[64];
		snprintf(u, sizeof(u), "http://[::1]:%d/",
			 fut_http_server_port(srv));
		fut *f = fut_http_fetch(loop, u, NULL);
		wait_for(loop, f);
		ck_assert_msg(fut_http_response_of(f), "%s",
			      fut_strerror(fut_error(f)));
		fut_unref(f);
		fut_http_server_free(srv);
	}
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* No host: every address, so clients that resolve "localhost" to ::1
 * (ab, without fallback) and to 127.0.0.1 both find the server. */
START_TEST(default_host_is_dual_stack)
{
	fut_loop *loop = new_loop();
	fut_http_server *srv;
	struct fut_http_server_opts o = { .handler = handler };
	ck_assert_int_eq(fut_http_server_new(loop, &o, &srv), 0);
	int port = fut_http_server_port(srv);
	const char *urls[] = { "http://127.0.0.1:%d/", "http://[::1]:%d/" };
	for (int i = 0; i < (have_ipv6_loopback() ? 2 : 1); i++) {
		char u[64];
		snprintf(u, sizeof(u), urls[i], port);
		fut *f = fut_http_fetch(loop, u, NULL);
		wait_for(loop, f);
		const struct fut_http_response *r = fut_http_response_of(f);
		ck_assert_msg(r, "%s: %s", u, fut_strerror(fut_error(f)));
		ck_assert_int_eq(r->status, 200);
		fut_unref(f);
	}
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* 204/205 content is dropped whether responded or streamed (chunks after
 * a 204 head would be read as the next response), and an absolute-form
 * target's authority is the host (RFC 9112 3.2.2). */
START_TEST(no_content_statuses_and_absolute_host)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { 0 };
	fut_http_server *srv = serve(loop, &o);
	struct raw x;
	static const char q[] =
		"GET /s204 HTTP/1.1\r\nHost: x\r\n\r\n"
		"GET /s205 HTTP/1.1\r\nHost: x\r\n\r\n"
		"GET /r205 HTTP/1.1\r\nHost: x\r\n\r\n"
		"GET foo:///host HTTP/1.1\r\nHost: real.example\r\n\r\n"
		"GET http://example.org:81/host HTTP/1.1\r\nHost: x\r\n"
		"Connection: close\r\n\r\n";
	raw(loop, srv, &x, q, sizeof(q) - 1);
	ck_assert_msg(x.eof, "%s", x.got);
	ck_assert_int_eq(count(x.got, "HTTP/1.1 "), 5);
	/* Another scheme's empty host: the Host field stands. */
	ck_assert_msg(strstr(x.got, "\r\n\r\nreal.example"), "%s", x.got);
	ck_assert_int_eq(count(x.got, "HTTP/1.1 204 No Content\r\n"), 1);
	ck_assert_int_eq(count(x.got, "HTTP/1.1 205 Reset Content\r\n"), 2);
	ck_assert_int_eq(count(x.got, "Content-Length: 0\r\n"), 2);
	ck_assert_msg(!strstr(x.got, "abc") && !strstr(x.got, "chunked") &&
		      !strstr(x.got, "\r\n\r\n0\r\n"), "%s", x.got);
	const char *last = strstr(x.got, "HTTP/1.1 200 OK");
	ck_assert_msg(last && strstr(last, "\r\n\r\nexample.org:81") &&
		      x.got + x.got_len - strlen("example.org:81") ==
		      strstr(last, "example.org:81"), "%s", x.got);
	/* HTTP/1.0 keeps the connection: nothing may follow the 204 head. */
	static const char q10[] =
		"GET /s204 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
		"GET / HTTP/1.0\r\n\r\n";
	raw(loop, srv, &x, q10, sizeof(q10) - 1);
	ck_assert_msg(x.eof && count(x.got, "HTTP/1.1 ") == 2 &&
		      !strstr(x.got, "abc") &&
		      strstr(x.got, "\r\n\r\nHTTP/1.1 200 OK"), "%s", x.got);
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* Out of descriptors: accept pauses instead of spinning or giving up, and
 * the waiting client is served once descriptors are free again. */
START_TEST(accept_survives_emfile)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { 0 };
	fut_http_server *srv = serve(loop, &o);
	struct raw x;
	memset(&x, 0, sizeof(x));
	x.port = fut_http_server_port(srv);
	x.send = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	x.send_len = strlen(x.send);
	/* Start the pool thread first: it must not need an fd later. */
	fut *warm = fut_run_blocking(loop, noop_job, NULL);
	wait_for(loop, warm);
	fut_unref(warm);
	struct fds_taken fds;
	fds_exhaust(&fds);
	ck_assert_int_gt(fds.n, 2);
	close(fds.pad[--fds.n]); /* room for the client's socket only */
	fut *f = fut_run_blocking(loop, raw_job, &x);
	/* accept meets EMFILE, pauses, retries (io_uring may get its fd
	 * all the same: only the outcome is checked). */
	run_for(loop, 300);
	fds_restore(&fds);
	wait_for(loop, f);
	fut_unref(f);
	ck_assert_msg(!strncmp(x.got, "HTTP/1.1 200 OK", 15), "%s", x.got);
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* Out of descriptors a fetch fails with -EMFILE, nothing else: a socket()
 * that failed at once freed the pool under the loop handing out its
 * queue (ASan: use after free), and glibc's lookup says "no such name"
 * (EAI_NONAME) when it could not open /etc/hosts. Afterwards the pool
 * serves again. */
START_TEST(fetch_out_of_fds_fails_cleanly)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts so = { 0 };
	fut_http_server *srv = serve(loop, &so);
	char byname[512];
	snprintf(byname, sizeof(byname), "http://localhost:%d/",
		 fut_http_server_port(srv));
	fut *warm = fut_run_blocking(loop, noop_job, NULL);
	wait_for(loop, warm);
	fut_unref(warm);
	struct fds_taken fds;
	fds_exhaust(&fds);
	fut *f[3];
	f[0] = fut_http_fetch(loop, url(srv, "/"), NULL);
	f[1] = fut_http_fetch(loop, url(srv, "/"), NULL);
	f[2] = fut_http_fetch(loop, byname, NULL);
	for (int i = 0; i < 3; i++)
		wait_for(loop, f[i]);
	fds_restore(&fds);
	for (int i = 0; i < 3; i++) {
		ck_assert_msg(fut_error(f[i]) == -EMFILE, "fetch %d: %s", i,
			      fut_strerror(fut_error(f[i])));
		fut_unref(f[i]);
	}
	const struct fut_http_response *r = fetch_ok(loop, &f[0],
						      url(srv, "/"), NULL);
	ck_assert_int_eq(r->status, 200);
	fut_unref(f[0]);
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* With max_connections = 1 a second client waits in the backlog until the
 * first connection is gone, then is served. */
START_TEST(connection_cap_defers_accept)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { .max_connections = 1,
					  .idle_timeout_ms = 50 };
	fut_http_server *srv = serve(loop, &o);
	static struct raw a, b;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.port = b.port = fut_http_server_port(srv);
	a.send = "GET /sleep?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n";
	a.send_len = strlen(a.send);
	b.send = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	b.send_len = strlen(b.send);
	fut *fa = fut_run_blocking(loop, raw_job, &a);
	run_for(loop, 50); /* a holds the only connection */
	fut *fb = fut_run_blocking(loop, raw_job, &b);
	wait_for(loop, fb);
	wait_for(loop, fa);
	ck_assert_msg(!strncmp(a.got, "HTTP/1.1 200 OK", 15), "%s", a.got);
	ck_assert_msg(!strncmp(b.got, "HTTP/1.1 200 OK", 15), "%s", b.got);
	/* b got in only after a's 300 ms request and its idle close. */
	ck_assert_int_ge(b.ms, 250);
	fut_unref(fa);
	fut_unref(fb);
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/*
 * Name resolution, with a resolver the test controls: a child process in
 * its own mount namespace sees files of ours over /etc (hosts,
 * nsswitch.conf, resolv.conf). Runs child() there and returns its exit
 * status; 77 means no mount namespace could be had (not root, a sandbox),
 * and the test is then skipped with a message. A child must not use
 * ck_assert (with CK_FORK=no it would unwind into the runner): it returns
 * a code, and alarm() bounds a hang.
 */
struct etc_file {
	const char *name, *text;
};

static int in_resolver_ns(const char *test, const struct etc_file *files,
			  int nfiles, int (*child)(void))
{
	char dir[] = "/tmp/fut-resolv-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char path[256];
	for (int i = 0; i < nfiles; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
		FILE *f = fopen(path, "w");
		ck_assert_ptr_nonnull(f);
		fputs(files[i].text, f);
		ck_assert_int_eq(fclose(f), 0);
	}
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* The type is ignored for these; "none" rather than NULL
		 * keeps valgrind's syscall checks quiet. */
		if (unshare(CLONE_NEWNS) != 0 ||
		    mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0)
			_exit(77);
		for (int i = 0; i < nfiles; i++) {
			char etc[64];
			snprintf(path, sizeof(path), "%s/%s", dir,
				 files[i].name);
			snprintf(etc, sizeof(etc), "/etc/%s", files[i].name);
			if (mount(path, etc, "none", MS_BIND, NULL) != 0)
				_exit(77);
		}
		alarm(20);
		_exit(child());
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	for (int i = 0; i < nfiles; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
		unlink(path);
	}
	rmdir(dir);
	ck_assert(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77)
		fprintf(stderr, "%s: no mount namespace here, not checked\n",
			test);
	return WEXITSTATUS(st) == 77 ? 0 : WEXITSTATUS(st);
}

/* twoaddr.test has two addresses; the server listens on the one
 * getaddrinfo lists last, so the first refuses and the client must go on
 * to the next. */
static int every_address_child(void)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai, *last;
	if (getaddrinfo("twoaddr.test", "80", &hints, &ai) != 0)
		return 10;
	int n = 0;
	for (last = ai; ++n && last->ai_next; last = last->ai_next)
		;
	if (n != 2)
		return 11;
	char host[64];
	if (getnameinfo(last->ai_addr, last->ai_addrlen, host, sizeof(host),
			NULL, 0, NI_NUMERICHOST) != 0)
		return 12;
	freeaddrinfo(ai);

	fut_loop *loop = fut_loop_new(NULL, NULL);
	fut_http_server *srv = NULL;
	struct fut_http_server_opts o = { .host = host, .handler = handler };
	if (!loop || fut_http_server_new(loop, &o, &srv) != 0)
		return 13;
	char u[128];
	snprintf(u, sizeof(u), "http://twoaddr.test:%d/",
		 fut_http_server_port(srv));
	fut *f = fut_http_fetch(loop, u, NULL);
	fut_loop_run_until(loop, f);
	const struct fut_http_response *r = fut_http_response_of(f);
	int rc = !r ? 20 : r->status != 200 ? 21 : 0;
	fut_unref(f);

	f = fut_http_fetch(loop, "http://no-such-name.test/", NULL);
	fut_loop_run_until(loop, f);
	if (!rc && fut_error(f) != FUT_HTTP_ERESOLVE)
		rc = 30;
	if (!rc && strcmp(fut_errname(FUT_HTTP_ERESOLVE),
			  "FUT_HTTP_ERESOLVE") != 0)
		rc = 31;
	fut_unref(f);
	fut_http_server_free(srv);
	fut_loop_free(loop);
	return rc;
}

START_TEST(fetch_tries_every_address)
{
	static const struct etc_file files[] = {
		{ "hosts", "127.0.0.1 twoaddr.test\n127.0.0.2 twoaddr.test\n" },
		{ "nsswitch.conf", "hosts: files\n" },
	};
	/* 10..13: the namespace's resolver or the server; 20/21: the second
	 * address was not tried; 30/31: an unknown name did not give
	 * ERESOLVE. */
	ck_assert_int_eq(in_resolver_ns("fetch_tries_every_address", files, 2,
					every_address_child), 0);
}
END_TEST

/* A server on a name listens on each of its addresses, on one port
 * (port 0 chose it); ::1 is listed too and skipped where IPv6 is off. */
static int listen_every_address_child(void)
{
	fut_loop *loop = fut_loop_new(NULL, NULL);
	fut_http_server *srv = NULL;
	struct fut_http_server_opts o = { .host = "three.test",
					  .handler = handler };
	if (!loop || fut_http_server_new(loop, &o, &srv) != 0)
		return 10;
	int port = fut_http_server_port(srv), rc = 0;
	static const char *const hosts[] = { "127.0.0.1", "127.0.0.2", "[::1]" };
	for (int i = 0; i < (have_ipv6_loopback() ? 3 : 2) && !rc; i++) {
		char u[64];
		snprintf(u, sizeof(u), "http://%s:%d/", hosts[i], port);
		fut *f = fut_http_fetch(loop, u, NULL);
		fut_loop_run_until(loop, f);
		const struct fut_http_response *r = fut_http_response_of(f);
		rc = !r ? 20 + i : r->status != 200 ? 30 + i : 0;
		fut_unref(f);
	}
	/* Freed: every one of its ports is free again. */
	fut_http_server_free(srv);
	struct fut_http_server_opts again = { .host = "127.0.0.2", .port = port,
					      .handler = handler };
	if (!rc && fut_http_server_new(loop, &again, &srv) != 0)
		rc = 40;
	else if (!rc)
		fut_http_server_free(srv);
	fut_loop_free(loop);
	return rc;
}

START_TEST(server_listens_on_every_address)
{
	static const struct etc_file files[] = {
		/* 127.0.0.1 twice: one listener (a second bind of it with
		 * port 0 took another port, and then failed). */
		{ "hosts", "127.0.0.1 three.test\n127.0.0.2 three.test\n"
			   "::1 three.test\n127.0.0.1 three.test\n" },
		{ "nsswitch.conf", "hosts: files\n" },
	};
	/* 10: the server did not start; 2x: address x refused; 40: the
	 * port stayed taken after the free. */
	ck_assert_int_eq(in_resolver_ns("server_listens_on_every_address",
					files, 2, listen_every_address_child),
			 0);
}
END_TEST

/* The connection cap holds across a name's listeners: with one
 * connection allowed and held on 127.0.0.1, a client of 127.0.0.2 waits in
 * that listener's backlog (its armed accept was withdrawn at the cap) and
 * is taken once the first connection is gone. */
static int cap_every_listener_child(void)
{
	fut_loop *loop = fut_loop_new(NULL, NULL);
	fut_http_server *srv = NULL;
	struct fut_http_server_opts o = { .host = "two.test",
					  .handler = handler,
					  .max_connections = 1,
					  .idle_timeout_ms = 50 };
	if (!loop || fut_http_server_new(loop, &o, &srv) != 0)
		return 10;
	int port = fut_http_server_port(srv), rc = 0;
	char u[64];
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/sleep?ms=300", port);
	fut *fa = fut_http_fetch(loop, u, NULL);
	fut *pause = fut_sleep(loop, 50);
	fut_loop_run_until(loop, pause);
	fut_unref(pause);
	uint64_t t0 = fut_loop_now(loop);
	snprintf(u, sizeof(u), "http://127.0.0.2:%d/", port);
	fut *fb = fut_http_fetch(loop, u, NULL);
	fut_loop_run_until(loop, fb);
	uint64_t ms = fut_loop_now(loop) - t0;
	const struct fut_http_response *r = fut_http_response_of(fb);
	rc = !r ? 20 : r->status != 200 ? 21 : ms < 200 ? 22 : 0;
	fut_loop_run_until(loop, fa);
	r = fut_http_response_of(fa);
	if (!rc)
		rc = !r ? 30 : r->status != 200 ? 31 : 0;
	fut_unref(fa);
	fut_unref(fb);
	fut_http_server_free(srv);
	fut_loop_free(loop);
	return rc;
}

START_TEST(connection_cap_spans_listeners)
{
	static const struct etc_file files[] = {
		{ "hosts", "127.0.0.1 two.test\n127.0.0.2 two.test\n" },
		{ "nsswitch.conf", "hosts: files\n" },
	};
	/* 10: the server did not start; 2x: the second client failed (22:
	 * it was taken over the cap, before the first connection ended);
	 * 3x: the first one failed. */
	ck_assert_int_eq(in_resolver_ns("connection_cap_spans_listeners",
					files, 2, cap_every_listener_child),
			 0);
}
END_TEST

/*
 * A name lookup that hangs (a DNS server that never answers: a UDP socket
 * of ours that reads nothing) outlives the request whose connect timeout
 * ended it; its connection slot must not: with max_per_host 1, the next
 * request gets the slot at once (and its own connect timeout), instead
 * of a queue timeout while the first lookup runs on.
 */
static int hung_lookup_child(void)
{
	int dns = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(53),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (dns < 0 || bind(dns, (struct sockaddr *)&a, sizeof(a)) != 0)
		return 77; /* port 53 taken: a resolver runs here */
	fut_loop *loop = fut_loop_new(NULL, NULL);
	if (!loop)
		return 10;
	struct fut_http_fetch_opts o = { .connect_timeout_ms = 200,
					  .queue_timeout_ms = 600,
					  .max_per_host = 1 };
	fut *f1 = fut_http_fetch(loop, "http://slow.test:8/", &o);
	fut *f2 = fut_http_fetch(loop, "http://slow.test:8/", &o);
	fut_loop_run_until(loop, f1);
	fut_loop_run_until(loop, f2);
	int rc = fut_error(f1) != FUT_HTTP_ETIMEOUT_CONNECT ? 20 :
		 fut_error(f2) != FUT_HTTP_ETIMEOUT_CONNECT ? 21 : 0;
	fut_unref(f1);
	fut_unref(f2);
	fut_loop_free(loop); /* waits for the lookups */
	close(dns);
	return rc;
}

START_TEST(hung_lookup_frees_its_slot)
{
	static const struct etc_file files[] = {
		{ "hosts", "127.0.0.1 localhost\n" },
		{ "nsswitch.conf", "hosts: dns\n" },
		{ "resolv.conf",
		  "nameserver 127.0.0.1\noptions timeout:2 attempts:1\n" },
	};
	/* 20: the first request did not time out connecting; 21: the
	 * second waited in the queue for the first one's lookup. */
	ck_assert_int_eq(in_resolver_ns("hung_lookup_frees_its_slot", files, 3,
					hung_lookup_child), 0);
}
END_TEST

/* Bytes the process has allocated (glibc; an ASan build has its own
 * allocator and reports no change, so there this test checks nothing). */
struct upload {
	int port, fd;
	size_t body, got;
};

/* Upload a body to /echo and read the whole response, keeping the
 * connection open. */
static int64_t upload_job(void *arg)
{
	struct upload *u = arg;
	static char buf[1 << 16];
	u->fd = raw_connect(u->port);
	if (u->fd < 0)
		return -errno;
	int n = snprintf(buf, sizeof(buf), "POST /echo HTTP/1.1\r\nHost: x\r\n"
			 "Content-Length: %zu\r\n\r\n", u->body);
	send(u->fd, buf, (size_t)n, MSG_NOSIGNAL);
	memset(buf, 'b', sizeof(buf));
	for (size_t left = u->body; left;) {
		size_t k = left < sizeof(buf) ? left : sizeof(buf);
		ssize_t w = send(u->fd, buf, k, MSG_NOSIGNAL);
		if (w <= 0)
			return -errno;
		left -= (size_t)w;
	}
	/* Head (small, ends in the first recv's bytes) then body. */
	size_t want = SIZE_MAX, have = 0;
	while (have < want) {
		ssize_t r = recv(u->fd, buf, sizeof(buf), 0);
		if (r <= 0)
			return -EPROTO;
		if (want == SIZE_MAX) {
			buf[r < (ssize_t)sizeof(buf) ? r : r - 1] = '\0';
			char *e = strstr(buf, "\r\n\r\n");
			if (!e || strncmp(buf, "HTTP/1.1 200", 12))
				return -EPROTO;
			want = (size_t)(e + 4 - buf) + u->body;
		}
		have += (size_t)r;
	}
	u->got = have;
	return 0;
}

/*
 * Memory follows the bytes that arrive, not what a client declares or
 * once sent: connections that declare max_body and send nothing, and an
 * idle keep-alive connection after a 1 MB echo, hold small buffers.
 */
START_TEST(buffers_follow_bytes_not_declarations)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { 0 }; /* max_body 1 MiB */
	fut_http_server *srv = serve(loop, &o);
	int port = fut_http_server_port(srv);
	run_for(loop, 10);
	size_t base = heap_in_use();
	enum { N = 8 };
	int fds[N];
	const char *head = "POST /echo HTTP/1.1\r\nHost: x\r\n"
			   "Content-Length: 1048576\r\n\r\n";
	for (int i = 0; i < N; i++) {
		fds[i] = raw_connect(port);
		ck_assert_int_ge(fds[i], 0);
		ck_assert_int_eq(send(fds[i], head, strlen(head), 0),
				 (ssize_t)strlen(head));
	}
	run_for(loop, 200);
	size_t grew = heap_in_use() - base;
	ck_assert_msg(grew < N * 128 * 1024, "%d silent uploads hold %zu bytes",
		      N, grew);

	struct upload u = { .port = port, .body = 1000000 };
	fut *f = fut_run_blocking(loop, upload_job, &u);
	wait_for(loop, f);
	ck_assert_int_eq(fut_error(f), 0);
	fut_unref(f);
	run_for(loop, 50);
	grew = heap_in_use() - base;
	ck_assert_msg(grew < N * 128 * 1024 + 256 * 1024,
		      "after a 1 MB echo, idle connections hold %zu bytes", grew);
	/* The idle connection still serves. */
	const char *get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	ck_assert_int_eq(send(u.fd, get, strlen(get), 0), (ssize_t)strlen(get));
	run_for(loop, 50);
	char buf[256];
	ssize_t r = recv(u.fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	ck_assert_int_gt(r, 0);
	buf[r] = '\0';
	ck_assert_msg(!strncmp(buf, "HTTP/1.1 200 OK", 15), "%s", buf);
	close(u.fd);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* The client likewise: a declared 50 MB body that never comes, and a
 * pooled connection after a 1 MB response, hold small buffers. */
START_TEST(client_buffers_follow_bytes)
{
	fut_loop *loop = new_loop();
	char u[64];
	static char reply[100000]; /* the head and 64 KiB of the body */
	int n = snprintf(reply, sizeof(reply), "HTTP/1.1 200 OK\r\n"
			 "Content-Length: 50000000\r\n\r\n");
	memset(reply + n, 'r', 65536);
	struct bad_server b = { .fd = bound_socket(u), .reply = reply,
				.hold_ms = 400 };
	ck_assert_int_eq(listen(b.fd, 8), 0);
	fut *sf = fut_run_blocking(loop, bad_server_job, &b);
	run_for(loop, 10);
	size_t base = heap_in_use();
	fut *f = fut_http_fetch(loop, u, NULL);
	run_for(loop, 200);
	size_t grew = heap_in_use() - base;
	ck_assert_msg(grew < 1024 * 1024, "a declared body holds %zu bytes",
		      grew);
	wait_for(loop, f);
	ck_assert_int_eq(fut_error(f), FUT_HTTP_ECLOSED); /* cut short */
	fut_unref(f);
	wait_for(loop, sf);
	fut_unref(sf);
	close(b.fd);

	struct fut_http_server_opts o = { 0 };
	fut_http_server *srv = serve(loop, &o);
	static char body[1000000];
	memset(body, 'c', sizeof(body));
	struct fut_http_fetch_opts fo = { .method = "POST", .body = body,
					  .body_len = sizeof(body) };
	base = heap_in_use();
	f = fut_http_fetch(loop, url(srv, "/echo"), &fo);
	wait_for(loop, f);
	ck_assert_int_eq(fut_error(f), 0);
	ck_assert_uint_eq(fut_http_response_of(f)->body_len, sizeof(body));
	fut_unref(f);
	run_for(loop, 50);
	grew = heap_in_use() - base;
	ck_assert_msg(grew < 256 * 1024, "after a 1 MB fetch, %zu bytes held",
		      grew);
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* After an error response, bytes sent 300 ms later: discarded while the
 * connection still lingers, answered with a reset once it has closed. */
static int64_t late_byte_job(void *arg)
{
	int port = *(int *)arg;
	int fd = raw_connect(port);
	if (fd < 0)
		return -errno;
	const char *bad = "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: a\r\n\r\n";
	send(fd, bad, strlen(bad), MSG_NOSIGNAL);
	char buf[4096];
	ssize_t n;
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		;
	int64_t rc = n == 0 ? 1 : -errno; /* 1: reached EOF, no reset */
	if (rc == 1) {
		usleep(300 * 1000);
		send(fd, "x", 1, MSG_NOSIGNAL);
		usleep(100 * 1000);
		int err = 0;
		socklen_t el = sizeof(err);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) /* recv would say 0: the FIN came first */
			rc = -err;
	}
	close(fd);
	return rc;
}

/* An upload far over max_body, sent as fast as loopback takes it, as
 * Node does: every byte is taken (discarded) and the 413 read, not a
 * reset after the first 256 KiB, which failed Node's send before it read
 * the 413 (an interop audit; nginx lingers 5 s). */
static int64_t big_upload_job(void *arg)
{
	int port = *(int *)arg;
	int fd = raw_connect(port);
	if (fd < 0)
		return -errno;
	enum { BODY = 16 << 20 };
	static char buf[1 << 16];
	int n = snprintf(buf, sizeof(buf), "POST /echo HTTP/1.1\r\nHost: x\r\n"
			 "Content-Length: %d\r\n\r\n", BODY);
	send(fd, buf, (size_t)n, MSG_NOSIGNAL);
	memset(buf, 'u', sizeof(buf));
	for (size_t left = BODY; left;) {
		ssize_t w = send(fd, buf, left < sizeof(buf) ? left : sizeof(buf),
				 MSG_NOSIGNAL);
		if (w <= 0) { /* a reset: Node reports the send's EPIPE */
			int64_t e = -errno;
			close(fd);
			return e;
		}
		left -= (size_t)w;
	}
	ssize_t r = recv(fd, buf, sizeof(buf) - 1, 0);
	int64_t rc = r < 0 ? -errno : 0;
	if (r > 0) {
		buf[r] = '\0';
		rc = strncmp(buf, "HTTP/1.1 413 ", 13) == 0 ? 1 : 0;
	}
	close(fd);
	return rc;
}

START_TEST(large_refused_upload_reads_its_413)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { 0 }; /* max_body 1 MiB */
	fut_http_server *srv = serve(loop, &o);
	int port = fut_http_server_port(srv);
	fut *f = fut_run_blocking(loop, big_upload_job, &port);
	wait_for(loop, f);
	ck_assert_msg(fut_error(f) == 0 && fut_value(f) == 1, "%s",
		      fut_error(f) ? fut_strerror(fut_error(f)) :
				     "no 413");
	fut_unref(f);
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

START_TEST(linger_is_configurable)
{
	fut_loop *loop = new_loop();
	for (int shortened = 0; shortened < 2; shortened++) {
		struct fut_http_server_opts o = { .linger_ms =
							  shortened ? 50 : 0 };
		fut_http_server *srv = serve(loop, &o);
		int port = fut_http_server_port(srv);
		fut *f = fut_run_blocking(loop, late_byte_job, &port);
		wait_for(loop, f);
		if (shortened) /* a reset: in CLOSE_WAIT Linux says EPIPE */
			ck_assert_msg(fut_error(f) == -EPIPE ||
				      fut_error(f) == -ECONNRESET, "%s",
				      fut_strerror(fut_error(f)));
		else
			ck_assert_int_eq(fut_value(f), 1);
		fut_unref(f);
		fut_http_server_free(srv);
	}
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* ---- a scripted server: steps on connections it accepts in turn ---- */

struct step {
	char op;          /* a accept, r recv, s send, w wait ms, c close */
	const char *data; /* s */
	int ms;           /* w */
};

struct script {
	int fd;           /* listening */
	const struct step *steps;
	int accepted;
};

static int64_t script_job(void *arg)
{
	struct script *x = arg;
	int c = -1;
	char buf[4096];
	for (const struct step *st = x->steps; st->op; st++) {
		switch (st->op) {
		case 'a':
			c = accept(x->fd, NULL, NULL);
			if (c < 0)
				return -errno;
			x->accepted++;
			break;
		case 'r':
			if (recv(c, buf, sizeof(buf), 0) <= 0)
				return -EPROTO;
			break;
		case 's':
			send(c, st->data, strlen(st->data), MSG_NOSIGNAL);
			break;
		case 'w':
			usleep((useconds_t)st->ms * 1000);
			break;
		case 'c':
			close(c);
			c = -1;
			break;
		}
	}
	if (c >= 0)
		close(c);
	return 0;
}

#define OK2 "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

/* Listen on a fresh port (its URL in u) and play steps on a pool
 * thread. */
static fut *script_start(fut_loop *loop, struct script *x,
			 const struct step *steps, char *u)
{
	memset(x, 0, sizeof(*x));
	x->fd = bound_socket(u);
	x->steps = steps;
	ck_assert_int_eq(listen(x->fd, 8), 0);
	return fut_run_blocking(loop, script_job, x);
}

static fut *fetch_ms(fut_loop *loop, const char *u,
		     const struct fut_http_fetch_opts *o, int *ms)
{
	uint64_t t0 = fut_loop_now(loop);
	fut *f = fut_http_fetch(loop, u, o);
	wait_for(loop, f);
	*ms = (int)(fut_loop_now(loop) - t0);
	return f;
}

/* ---- a server that answers an upload before reading it ---- */

struct early {
	int fd;           /* listening */
	size_t body;      /* the request body's length */
	size_t reply;     /* Content-Length of a 200 sent before the body is
			     read; 0: a 413, then a pause, then close */
	int stall;        /* the 200 ("ok"), then read nothing for 700 ms */
	size_t got;       /* body bytes read */
};

static int64_t early_job(void *arg)
{
	struct early *x = arg;
	int c = accept(x->fd, NULL, NULL);
	if (c < 0)
		return -errno;
	static char buf[65536];
	size_t n = 0;
	char *end = NULL;
	while (!end && n < sizeof(buf) - 1) {
		ssize_t k = recv(c, buf + n, sizeof(buf) - 1 - n, 0);
		if (k <= 0)
			break;
		n += (size_t)k;
		buf[n] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	x->got = end ? n - (size_t)(end + 4 - buf) : 0;
	if (x->stall || !x->reply) {
		/* A short answer, then 700 ms without reading. */
		const char *a = x->stall ?
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" :
			"HTTP/1.1 413 Payload Too Large\r\n"
			"Content-Length: 0\r\n\r\n";
		send(c, a, strlen(a), MSG_NOSIGNAL);
		usleep(700 * 1000);
		close(c);
		return 0;
	}
	int hl = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n"
			  "Content-Length: %zu\r\n\r\n", x->reply);
	send(c, buf, (size_t)hl, MSG_NOSIGNAL);
	memset(buf, 'r', sizeof(buf));
	for (size_t left = x->reply; left;) {
		ssize_t k = send(c, buf, left < sizeof(buf) ? left : sizeof(buf),
				 MSG_NOSIGNAL);
		if (k <= 0)
			break;
		left -= (size_t)k;
	}
	while (x->got < x->body) {
		ssize_t k = recv(c, buf, sizeof(buf), 0);
		if (k <= 0)
			break;
		x->got += (size_t)k;
	}
	close(c);
	return 0;
}

/*
 * The client reads while it sends: a server that answers an upload before
 * it reads it (an early 413, or a large response first) fills the
 * client's receive buffer while the client fills its own; the client used
 * to read only once its send was done, and both waited until the request
 * timed out (a client audit; curl completes the same exchange).
 */
START_TEST(fetch_reads_while_it_sends)
{
	fut_loop *loop = new_loop();
	enum { BODY = 8 << 20, REPLY = 4 << 20 };
	char *body = malloc(BODY);
	memset(body, 'b', BODY);
	char u[64];
	struct early x = { .body = BODY, .reply = REPLY };
	x.fd = bound_socket(u);
	ck_assert_int_eq(listen(x.fd, 8), 0);
	fut *job = fut_run_blocking(loop, early_job, &x);
	struct fut_http_fetch_opts o = { .body = body, .body_len = BODY,
					 .request_timeout_ms = 5000 };
	int ms;
	fut *f = fetch_ms(loop, u, &o, &ms);
	ck_assert_msg(fut_error(f) == 0, "%s after %d ms",
		      fut_strerror(fut_error(f)), ms);
	ck_assert_int_eq(fut_http_response_of(f)->status, 200);
	ck_assert_uint_eq(fut_http_response_of(f)->body_len, REPLY);
	fut_unref(f);
	wait_for(loop, job);
	fut_unref(job);
	ck_assert_uint_eq(x.got, BODY); /* and the body went out whole */
	close(x.fd);

	/* A 413 on a connection the server keeps open without reading. */
	x = (struct early){ .body = BODY };
	x.fd = bound_socket(u);
	ck_assert_int_eq(listen(x.fd, 8), 0);
	job = fut_run_blocking(loop, early_job, &x);
	f = fetch_ms(loop, u, &o, &ms);
	ck_assert_msg(fut_error(f) == 0, "%s", fut_strerror(fut_error(f)));
	ck_assert_int_eq(fut_http_response_of(f)->status, 413);
	ck_assert_int_lt(ms, 500); /* not when the server closes, at 700 ms */
	fut_unref(f);
	wait_for(loop, job);
	fut_unref(job);
	close(x.fd);

	/* A whole 200 while the server reads no more: the request timeout
	 * ends the send, and the response is the result, not a timeout. */
	x = (struct early){ .body = BODY, .stall = 1 };
	x.fd = bound_socket(u);
	ck_assert_int_eq(listen(x.fd, 8), 0);
	job = fut_run_blocking(loop, early_job, &x);
	struct fut_http_fetch_opts so = { .method = "PUT", .body = body,
					  .body_len = BODY,
					  .request_timeout_ms = 300 };
	f = fetch_ms(loop, u, &so, &ms);
	ck_assert_msg(fut_error(f) == 0, "%s after %d ms",
		      fut_strerror(fut_error(f)), ms);
	ck_assert_str_eq(fut_http_response_of(f)->body, "ok");
	fut_unref(f);
	wait_for(loop, job);
	fut_unref(job);
	close(x.fd);
	free(body);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/*
 * A pooled connection is checked when it is handed out, not only by its
 * watcher (which runs only while the loop does): one the server has
 * closed, or one past idle_timeout_ms, is replaced by a new connection,
 * so that a POST after a pause is not sent into a closed socket.
 */
START_TEST(fetch_checks_pooled_connections)
{
	fut_loop *loop = new_loop();
	char u[64];
	int ms;
	/* The server answers and closes without saying so. */
	static const struct step closes[] = {
		{ 'a', 0, 0 }, { 'r', 0, 0 }, { 's', OK2, 0 }, { 'c', 0, 0 },
		{ 'a', 0, 0 }, { 'r', 0, 0 }, { 's', OK2, 0 }, { 0, 0, 0 } };
	struct script x;
	fut *job = script_start(loop, &x, closes, u);
	struct fut_http_fetch_opts post = { .method = "POST", .body = "b",
					    .body_len = 1 };
	fut *f = fetch_ms(loop, u, &post, &ms);
	ck_assert_int_eq(fut_error(f), 0);
	fut_unref(f);
	usleep(200 * 1000); /* the loop rests; the FIN waits in the socket */
	f = fetch_ms(loop, u, &post, &ms);
	ck_assert_msg(fut_error(f) == 0, "%s", fut_strerror(fut_error(f)));
	ck_assert_int_eq(fut_http_response_of(f)->status, 200);
	fut_unref(f);
	wait_for(loop, job);
	ck_assert_int_eq(fut_error(job), 0);
	fut_unref(job);
	close(x.fd);

	/* Past its idle time: a new connection, not the old one the server
	 * no longer reads (a reuse would wait for its close and retry). */
	static const struct step holds[] = {
		{ 'a', 0, 0 }, { 'r', 0, 0 }, { 's', OK2, 0 }, { 'w', 0, 1200 },
		{ 'c', 0, 0 }, { 0, 0, 0 } };
	static const struct step second[] = {
		{ 'a', 0, 0 }, { 'r', 0, 0 }, { 's', OK2, 0 }, { 0, 0, 0 } };
	struct script y;
	job = script_start(loop, &y, holds, u);
	struct fut_http_fetch_opts idle = { .idle_timeout_ms = 100 };
	f = fetch_ms(loop, u, &idle, &ms);
	ck_assert_int_eq(fut_error(f), 0);
	fut_unref(f);
	usleep(300 * 1000);
	struct script z = { .fd = y.fd, .steps = second };
	fut *job2 = fut_run_blocking(loop, script_job, &z);
	f = fetch_ms(loop, u, &idle, &ms);
	ck_assert_msg(fut_error(f) == 0, "%s", fut_strerror(fut_error(f)));
	ck_assert_msg(ms < 800, "the expired connection was used (%d ms)", ms);
	fut_unref(f);
	wait_for(loop, job2);
	fut_unref(job2);
	wait_for(loop, job);
	fut_unref(job);
	close(y.fd);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* The request timeout runs from the first send: a retry on a new
 * connection does not start it again. */
START_TEST(fetch_retry_keeps_request_timeout)
{
	fut_loop *loop = new_loop();
	char u[64];
	int ms;
	static const struct step first[] = {
		{ 'a', 0, 0 }, { 'r', 0, 0 }, { 's', OK2, 0 },
		{ 'r', 0, 0 }, { 'w', 0, 600 }, { 'c', 0, 0 },
		{ 'a', 0, 0 }, { 'r', 0, 0 }, { 'w', 0, 700 }, { 's', OK2, 0 },
		{ 0, 0, 0 } };
	struct script x;
	fut *job = script_start(loop, &x, first, u);
	struct fut_http_fetch_opts o = { .request_timeout_ms = 1000 };
	fut *f = fetch_ms(loop, u, &o, &ms);
	ck_assert_int_eq(fut_error(f), 0);
	fut_unref(f);
	f = fetch_ms(loop, u, &o, &ms); /* closed at 600 ms, retried */
	ck_assert_msg(fut_error(f) == FUT_HTTP_ETIMEOUT_REQUEST, "%s after %d ms",
		      fut_strerror(fut_error(f)), ms);
	ck_assert_int_lt(ms, 1200);
	fut_unref(f);
	wait_for(loop, job);
	fut_unref(job);
	close(x.fd);

	/* Nor does time the program spent outside the loop before the
	 * fetch count against it: the retry's deadline came from the
	 * loop's last tick, 500 ms old, and it timed out after 100 ms. */
	static const struct step second[] = {
		{ 'a', 0, 0 }, { 'r', 0, 0 }, { 's', OK2, 0 },
		{ 'r', 0, 0 }, { 'c', 0, 0 },
		{ 'a', 0, 0 }, { 'r', 0, 0 }, { 'w', 0, 300 }, { 's', OK2, 0 },
		{ 0, 0, 0 } };
	job = script_start(loop, &x, second, u);
	o.request_timeout_ms = 600;
	f = fetch_ms(loop, u, &o, &ms);
	ck_assert_int_eq(fut_error(f), 0);
	fut_unref(f);
	usleep(500 * 1000);
	f = fut_http_fetch(loop, u, &o);
	wait_for(loop, f);
	ck_assert_msg(fut_error(f) == 0, "%s", fut_strerror(fut_error(f)));
	ck_assert_int_eq(fut_http_response_of(f)->status, 200);
	fut_unref(f);
	wait_for(loop, job);
	fut_unref(job);
	ck_assert_int_eq(x.accepted, 2);
	close(x.fd);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* A 1xx is an answer: a connection closed after it is a response cut
 * short (ECLOSED), not a stale connection to retry silently. And max_headers
 * above the default of 100 is honoured. */
START_TEST(fetch_interim_and_many_headers)
{
	fut_loop *loop = new_loop();
	char u[64];
	int ms;
	static const struct step interim[] = {
		{ 'a', 0, 0 }, { 'r', 0, 0 }, { 's', OK2, 0 }, { 'r', 0, 0 },
		{ 's', "HTTP/1.1 100 Continue\r\n\r\n", 0 }, { 'c', 0, 0 },
		{ 0, 0, 0 } };
	struct script x;
	fut *job = script_start(loop, &x, interim, u);
	struct fut_http_fetch_opts o = { .request_timeout_ms = 3000 };
	fut *f = fetch_ms(loop, u, &o, &ms);
	ck_assert_int_eq(fut_error(f), 0);
	fut_unref(f);
	f = fetch_ms(loop, u, &o, &ms);
	ck_assert_msg(fut_error(f) == FUT_HTTP_ECLOSED, "%s",
		      fut_strerror(fut_error(f)));
	fut_unref(f);
	wait_for(loop, job);
	fut_unref(job);
	ck_assert_int_eq(x.accepted, 1);

	static char many[8192];
	int n = snprintf(many, sizeof(many), "HTTP/1.1 200 OK\r\n");
	for (int i = 0; i < 150; i++)
		n += snprintf(many + n, sizeof(many) - (size_t)n, "X-%d: v\r\n",
			      i);
	snprintf(many + n, sizeof(many) - (size_t)n,
		 "Content-Length: 2\r\nConnection: close\r\n\r\nok");
	for (int k = 0; k < 2; k++) {
		struct bad_server b = { x.fd, many, 0, 0 };
		job = fut_run_blocking(loop, bad_server_job, &b);
		struct fut_http_fetch_opts h = { .max_headers = k ? 200 : 0 };
		f = fetch_ms(loop, u, &h, &ms);
		if (k) {
			ck_assert_msg(fut_error(f) == 0, "%s",
				      fut_strerror(fut_error(f)));
			ck_assert_uint_eq(fut_http_response_of(f)->num_headers,
					  152);
		} else {
			ck_assert_int_eq(fut_error(f), FUT_HTTP_EHDRTOOBIG);
		}
		fut_unref(f);
		wait_for(loop, job);
		fut_unref(job);
	}

	/* Any number of 1xx heads may come before the answer (RFC 9110
	 * 15.2). 200,000 in one buffer, which a 3 MiB 103 head grew:
	 * each was a recursion (a stack overflow) and a move of the
	 * buffer. */
	enum { HUGE_HINT = 3 << 20, TINY = 200000 };
	static const char tiny[] = "HTTP/1.1 100 Continue\r\n\r\n";
	static const char fin[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
				  "Connection: close\r\n\r\nok";
	size_t tl = sizeof(tiny) - 1;
	size_t total = HUGE_HINT + 64 + TINY * tl + sizeof(fin);
	char *flood = malloc(total), *q = flood;
	ck_assert_ptr_nonnull(flood);
	q += sprintf(q, "HTTP/1.1 103 Early Hints\r\nX: ");
	memset(q, 'a', HUGE_HINT);
	q += HUGE_HINT;
	q += sprintf(q, "\r\n\r\n");
	for (int i = 0; i < TINY; i++, q += tl)
		memcpy(q, tiny, tl);
	memcpy(q, fin, sizeof(fin));
	struct bad_server b = { x.fd, flood, 0, 0 };
	job = fut_run_blocking(loop, bad_server_job, &b);
	struct fut_http_fetch_opts big = { .max_header_bytes = 4 << 20,
					   .request_timeout_ms = 20000 };
	f = fetch_ms(loop, u, &big, &ms);
	ck_assert_msg(fut_error(f) == 0, "%s", fut_strerror(fut_error(f)));
	ck_assert_int_eq(fut_http_response_of(f)->status, 200);
	ck_assert_uint_eq(fut_http_response_of(f)->body_len, 2);
	fut_unref(f);
	wait_for(loop, job);
	fut_unref(job);
	free(flood);
	close(x.fd);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/*
 * Clients that trickle a byte every 0.3 ms into a head or a body: the
 * sweep's cancel often comes after a recv has completed in the same tick,
 * and each must still get its 408 (not escape the timeout for good).
 */
struct trickle {
	int port;
	int n408, nother; /* connections answered 408, or anything else */
};

static int64_t trickle_job(void *arg)
{
	struct trickle *t = arg;
	enum { N = 32 };
	int fd[N], open_n = 0;
	for (int i = 0; i < N; i++) {
		fd[i] = raw_connect(t->port);
		if (fd[i] < 0)
			return -errno;
		const char *start = i % 2 ? "GET / HTTP/1.1\r\nX: " :
				    "POST /echo HTTP/1.1\r\nHost: x\r\n"
				    "Content-Length: 500000\r\n\r\n";
		send(fd[i], start, strlen(start), MSG_NOSIGNAL);
		open_n++;
	}
	/* 3 s: fifteen times the timeouts. */
	for (int t5 = 0; t5 < 10000 && open_n; t5++) {
		for (int i = 0; i < N; i++) {
			if (fd[i] < 0)
				continue;
			char buf[512];
			ssize_t r = recv(fd[i], buf, sizeof(buf) - 1,
					 MSG_DONTWAIT);
			if (r > 0 || r == 0 ||
			    (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
				if (r > 0) {
					buf[r] = '\0';
					if (!strncmp(buf, "HTTP/1.1 408 ", 13))
						t->n408++;
					else
						t->nother++;
				} else {
					t->nother++;
				}
				close(fd[i]);
				fd[i] = -1;
				open_n--;
				continue;
			}
			send(fd[i], "a", 1, MSG_NOSIGNAL);
		}
		usleep(300);
	}
	for (int i = 0; i < N; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	return open_n; /* connections that outlived every timeout */
}

/* An upload in slices of `slice` bytes, each sent `delay_ms` after the
 * previous one, then the response read to EOF. */
struct paced {
	struct raw x;
	int slices, delay_ms;
	size_t slice;
};

static int64_t paced_job(void *arg)
{
	struct paced *u = arg;
	struct timeval t0;
	gettimeofday(&t0, NULL);
	int fd = raw_connect(u->x.port);
	if (fd < 0)
		return -errno;
	char head[160];
	int hn = snprintf(head, sizeof(head), "POST /len HTTP/1.1\r\nHost: x\r\n"
			  "Connection: close\r\nContent-Length: %zu\r\n\r\n",
			  u->slice * (size_t)u->slices);
	send(fd, head, (size_t)hn, MSG_NOSIGNAL);
	char *b = malloc(u->slice);
	memset(b, 'u', u->slice);
	for (int i = 0; i < u->slices; i++) {
		usleep((useconds_t)u->delay_ms * 1000);
		for (size_t off = 0; off < u->slice;) {
			ssize_t n = send(fd, b + off, u->slice - off,
					 MSG_NOSIGNAL);
			if (n <= 0)
				break;
			off += (size_t)n;
		}
	}
	free(b);
	raw_finish(fd, &u->x, &t0);
	return 0;
}

/* body_timeout_ms is for each 256 KiB of a body: an upload that keeps
 * coming is not cut however long it takes in all (it was: a 64 MiB
 * upload at 2 MB/s got 408 at 30 s), one that stalls still is. */
START_TEST(slow_upload_gets_time_per_slice)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { .body_timeout_ms = 300 };
	fut_http_server *srv = serve(loop, &o);
	struct paced u = { .x.port = fut_http_server_port(srv), .slices = 3,
			    .delay_ms = 200, .slice = 256 * 1024 };
	fut *f = fut_run_blocking(loop, paced_job, &u);
	wait_for(loop, f);
	fut_unref(f);
	ck_assert_msg(!strncmp(u.x.got, "HTTP/1.1 200 ", 13), "%.40s", u.x.got);
	ck_assert_msg(strstr(u.x.got, "\r\n\r\n786432"), "%s", u.x.got);
	ck_assert_int_ge(u.x.ms, 600);
	/* A slice that takes longer than the timeout: 408. */
	u = (struct paced){ .x.port = fut_http_server_port(srv), .slices = 2,
			     .delay_ms = 500, .slice = 1024 };
	f = fut_run_blocking(loop, paced_job, &u);
	wait_for(loop, f);
	fut_unref(f);
	ck_assert_msg(!strncmp(u.x.got, "HTTP/1.1 408 ", 13), "%.40s", u.x.got);
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

START_TEST(trickling_clients_time_out)
{
	fut_loop *loop = new_loop();
	struct fut_http_server_opts o = { .header_timeout_ms = 200,
					  .body_timeout_ms = 200 };
	fut_http_server *srv = serve(loop, &o);
	struct trickle t = { .port = fut_http_server_port(srv) };
	fut *f = fut_run_blocking(loop, trickle_job, &t);
	wait_for(loop, f);
	ck_assert_msg(fut_value(f) == 0 && t.nother == 0,
		      "%d connections outlived their timeout, %d closed "
		      "otherwise, %d got 408", (int)fut_value(f), t.nother,
		      t.n408);
	fut_unref(f);
	fut_http_server_free(srv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

Suite *http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("server-client");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, fetch_get_post_head);
	tcase_add_test(tc, fetch_follows_redirects);
	tcase_add_test(tc, redirect_locations_resolve_as_rfc3986);
	tcase_add_test(tc, default_host_is_dual_stack);
	tcase_add_test(tc, fetch_request_shape);
	tcase_add_test(tc, fetch_queue_skips_capped_requests);
	tcase_add_test(tc, fetch_early_response_during_upload);
	tcase_add_test(tc, fetch_redirect_during_upload);
	tcase_add_test(tc, no_content_statuses_and_absolute_host);
	tcase_add_test(tc, keepalive_pipelining_in_order);
	tcase_add_test(tc, client_close_ends_cleanly);
	tcase_add_test(tc, late_bytes_do_not_reset_the_response);
	tcase_add_test(tc, hostile_input_4xx_and_close);
	tcase_add_test(tc, any_method_reaches_the_handler);
	tcase_add_test(tc, expect_continue);
	tcase_add_test(tc, expect_hook_refuses_before_the_body);
	tcase_add_test(tc, expect_hook_may_free_the_server);
	tcase_add_test(tc, free_while_streaming);
	tcase_add_test(tc, coroutine_not_started_when_loop_freed);
	tcase_add_test(tc, chunk_padding_is_no_progress);
	tcase_add_test(tc, server_timeouts);
	tcase_add_test(tc, trickling_clients_time_out);
	tcase_add_test(tc, slow_upload_gets_time_per_slice);
	tcase_add_test(tc, header_timeout_from_accept);
	tcase_add_test(tc, deferred_accept);
	tcase_add_test(tc, head_error_has_no_body);
	tcase_add_test(tc, streamed_response_backpressure);
	tcase_add_test(tc, graceful_shutdown);
	tcase_add_test(tc, shutdown_lets_go);
	tcase_add_test(tc, fetch_cancel_ends_the_exchange);
	tcase_add_test(tc, idle_pool_does_not_keep_run);
	tcase_add_test(tc, coroutine_handlers);
	tcase_add_test(tc, coroutine_outlives_server);
	tcase_add_test(tc, stalled_writer_is_let_go);
	tcase_add_test(tc, slow_reader_gets_the_whole_body);
	tcase_add_test(tc, client_that_left_frees_its_connection);
	tcase_add_test(tc, fetch_reads_while_it_sends);
	tcase_add_test(tc, server_listens_on_every_address);
	tcase_add_test(tc, connection_cap_spans_listeners);
	tcase_add_test(tc, client_timeouts_are_separate);
	tcase_add_test(tc, client_errors);
	tcase_add_test(tc, fetch_retries_only_idempotent);
	tcase_add_test(tc, fetch_tries_every_address);
	tcase_add_test(tc, hung_lookup_frees_its_slot);
	tcase_add_test(tc, server_bad_arguments);
	tcase_add_test(tc, connection_cap_defers_accept);
	tcase_add_test(tc, buffers_follow_bytes_not_declarations);
	tcase_add_test(tc, client_buffers_follow_bytes);
	tcase_add_test(tc, linger_is_configurable);
	tcase_add_test(tc, large_refused_upload_reads_its_413);
	tcase_add_test(tc, fetch_checks_pooled_connections);
	tcase_add_test(tc, fetch_retry_keeps_request_timeout);
	tcase_add_test(tc, fetch_interim_and_many_headers);
	suite_add_tcase(s, tc);
	/* valgrind keeps fds of its own at the top of RLIMIT_NOFILE, which
	 * this test lowers: the valgrind run (.ci/test-all) leaves it out. */
	tc = tcase_create("rlimit");
	tcase_set_timeout(tc, 60);
	tcase_set_tags(tc, "no-valgrind");
	tcase_add_test(tc, accept_survives_emfile);
	tcase_add_test(tc, fetch_out_of_fds_fails_cleanly);
	suite_add_tcase(s, tc);
	return s;
}
