/*
 * The HTTP/1.1 parser (http/parser.c), table by table: valid and invalid
 * request heads with the exact error code, every split point (a head fed
 * byte by byte and in two pieces must give the one-shot result, never a
 * later error), every prefix parsed against a PROT_NONE guard page, response
 * heads, the in-place chunked decoder, status codes, reasons and query
 * parameters.
 */
#include <future.h>
#include <future/http.h>

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests.h"

/* A string literal and its length (literals may hold NUL bytes). */
#define M(s) s, sizeof(s) - 1
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define MAXH 128

static const struct fut_http_limits lim_line32 = { .max_request_line = 32 };
static const struct fut_http_limits lim_hdr64 = { .max_header_bytes = 64 };
static const struct fut_http_limits lim_3hdrs = { .max_headers = 3 };
static const struct fut_http_limits lim_body100 = { .max_body = 100 };

static int view_eq(const char *p, size_t n, const char *s)
{
	return p && n == strlen(s) && memcmp(p, s, n) == 0;
}

static char *dup_bytes(const char *p, size_t n)
{
	char *b = malloc(n ? n : 1);
	ck_assert_ptr_nonnull(b);
	memcpy(b, p, n);
	return b;
}

static const char *errname(int r)
{
	return r >= 0 ? "head length" : fut_errname(r);
}

/* ---- the guard page: buf + len is the first byte of a PROT_NONE page ---- */

static char *guard_base;
static size_t guard_room;

static char *guard_place(const char *p, size_t n)
{
	if (!guard_base) {
		size_t ps = (size_t)sysconf(_SC_PAGESIZE);
		guard_room = 64 * ps;
		guard_base = mmap(NULL, guard_room + ps, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		ck_assert_ptr_ne(guard_base, MAP_FAILED);
		ck_assert_int_eq(mprotect(guard_base + guard_room, ps,
					  PROT_NONE), 0);
	}
	ck_assert_uint_le(n, guard_room);
	char *b = guard_base + guard_room - n;
	memcpy(b, p, n);
	return b;
}

/* ---- valid requests ---- */

struct vreq {
	const char *name;
	const char *msg;
	size_t len;
	size_t body; /* bytes after the head */
	const struct fut_http_limits *lim;
	const char *method, *target, *path, *query; /* target NULL: unchecked,
						       query NULL: absent */
	int minor;
	int64_t cl;
	int chunked, keep_alive, expect;
	size_t nh;
	const char *hv[12]; /* name, value pairs: headers[0..], NULL-ended */
};

static const struct vreq vreqs[] = {
	{ "get origin-form with query",
	  M("GET /search?q=abc&x=1 HTTP/1.1\r\nHost: example.com\r\n"
	    "User-Agent: t/1\r\n\r\n"), 0, NULL,
	  "GET", "/search?q=abc&x=1", "/search", "q=abc&x=1", 1, -1, 0, 1, 0, 2,
	  { "Host", "example.com", "User-Agent", "t/1" } },
	{ "empty query",
	  M("GET /p? HTTP/1.1\r\nHost: a\r\n\r\n"), 0, NULL,
	  "GET", "/p?", "/p", "", 1, -1, 0, 1, 0, 1, { "Host", "a" } },
	{ "post content-length",
	  M("POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
	    "Content-Type: text/plain\r\n\r\nhello"), 5, NULL,
	  "POST", NULL, "/submit", NULL, 1, 5, 0, 1, 0, 3,
	  { "Host", "a", "Content-Length", "5", "Content-Type", "text/plain" } },
	{ "chunked post",
	  M("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5\r\nhello\r\n0\r\n\r\n"), 15, NULL,
	  "POST", NULL, "/up", NULL, 1, -1, 1, 1, 0, 2,
	  { "Host", "a", "Transfer-Encoding", "chunked" } },
	{ "chunked, case-insensitive",
	  M("POST /up HTTP/1.1\r\nhost: a\r\ntransfer-encoding: Chunked\r\n\r\n"),
	  0, NULL, "POST", NULL, "/up", NULL, 1, -1, 1, 1, 0, 2,
	  { "host", "a", "transfer-encoding", "Chunked" } },
	{ "http/1.0 without host",
	  M("GET /old HTTP/1.0\r\n\r\n"), 0, NULL,
	  "GET", "/old", "/old", NULL, 0, -1, 0, 0, 0, 0, { NULL } },
	{ "http/1.0 keep-alive",
	  M("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), 0, NULL,
	  "GET", "/", "/", NULL, 0, -1, 0, 1, 0, 1,
	  { "Connection", "keep-alive" } },
	{ "http/1.0 keep-alive and close",
	  M("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"), 0, NULL,
	  "GET", "/", "/", NULL, 0, -1, 0, 0, 0, 1, { NULL } },
	{ "http/1.0 with host",
	  M("GET / HTTP/1.0\r\nHost: a\r\n\r\n"), 0, NULL,
	  "GET", "/", "/", NULL, 0, -1, 0, 0, 0, 1, { "Host", "a" } },
	{ "http/1.1 connection close",
	  M("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), 0, NULL,
	  "GET", "/", "/", NULL, 1, -1, 0, 0, 0, 2, { NULL } },
	{ "http/1.1 connection Keep-Alive",
	  M("GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n"), 0,
	  NULL, "GET", "/", "/", NULL, 1, -1, 0, 1, 0, 2, { NULL } },
	{ "http/1.1 connection CLOSE in a list",
	  M("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade,CLOSE\r\n\r\n"), 0,
	  NULL, "GET", "/", "/", NULL, 1, -1, 0, 0, 0, 2, { NULL } },
	{ "expect 100-continue",
	  M("PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
	    "Content-Length: 3\r\n\r\nabc"), 3, NULL,
	  "PUT", "/f", "/f", NULL, 1, 3, 0, 1, 1, 3,
	  { "Host", "a", "Expect", "100-continue" } },
	{ "expect 100-continue in a list",
	  M("PUT /f HTTP/1.1\r\nHost: a\r\nExpect: foo, 100-Continue,\r\n"
	    "Content-Length: 0\r\n\r\n"), 0, NULL,
	  "PUT", "/f", "/f", NULL, 1, 0, 0, 1, 1, 3, { NULL } },
	{ "expect 100-continue before another expect field",
	  M("PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
	    "Expect: foo\r\nContent-Length: 0\r\n\r\n"), 0, NULL,
	  "PUT", "/f", "/f", NULL, 1, 0, 0, 1, 1, 4, { NULL } },
	{ "expect in http/1.0 ignored",
	  M("PUT /f HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n"),
	  0, NULL, "PUT", "/f", "/f", NULL, 0, 0, 0, 0, 0, 2, { NULL } },
	{ "leading crlf",
	  M("\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n"), 0, NULL,
	  "GET", "/x", "/x", NULL, 1, -1, 0, 1, 0, 1, { "Host", "a" } },
	{ "four leading crlf",
	  M("\r\n\r\n\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n"), 0, NULL,
	  "GET", "/x", "/x", NULL, 1, -1, 0, 1, 0, 1, { "Host", "a" } },
	{ "ows trimming",
	  M("GET / HTTP/1.1\r\nHost:a\r\nX-A: \t  v a l \t \r\nX-B:\r\n"
	    "X-C:   \r\nX-D:\t\"q\"\r\n\r\n"), 0, NULL,
	  "GET", "/", "/", NULL, 1, -1, 0, 1, 0, 5,
	  { "Host", "a", "X-A", "v a l", "X-B", "", "X-C", "", "X-D", "\"q\"" } },
	{ "obs-text in a value",
	  M("GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9 \x80\xff\r\n\r\n"), 0,
	  NULL, "GET", "/", "/", NULL, 1, -1, 0, 1, 0, 2,
	  { "Host", "a", "X", "caf\xc3\xa9 \x80\xff" } },
	{ "absolute-form",
	  M("GET http://example.com:8080/p/q?x=1 HTTP/1.1\r\n"
	    "Host: example.com:8080\r\n\r\n"), 0, NULL,
	  "GET", "http://example.com:8080/p/q?x=1", "/p/q", "x=1", 1, -1, 0, 1,
	  0, 1, { "Host", "example.com:8080" } },
	{ "absolute-form without a path",
	  M("GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n"), 0,
	  NULL, "GET", "http://example.com", "/", NULL, 1, -1, 0, 1, 0, 1,
	  { NULL } },
	{ "absolute-form with a query but no path",
	  M("GET http://example.com?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"), 0,
	  NULL, "GET", "http://example.com?x=1", "/", "x=1", 1, -1, 0, 1, 0, 1,
	  { NULL } },
	{ "absolute-form, scheme with digits, plus, minus, dot",
	  M("GET A1+b-c.d://h/p HTTP/1.1\r\nHost: h\r\n\r\n"), 0, NULL,
	  "GET", "A1+b-c.d://h/p", "/p", NULL, 1, -1, 0, 1, 0, 1, { NULL } },
	{ "options *",
	  M("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), 0, NULL,
	  "OPTIONS", "*", "*", NULL, 1, -1, 0, 1, 0, 1, { NULL } },
	{ "connect authority-form",
	  M("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
	  0, NULL, "CONNECT", "example.com:443", "", NULL, 1, -1, 0, 1, 0, 1,
	  { NULL } },
	{ "connect to an ip literal",
	  M("CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n"), 0, NULL,
	  "CONNECT", "[::1]:443", "", NULL, 1, -1, 0, 1, 0, 1, { NULL } },
	{ "identical duplicate content-length fields",
	  M("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
	    "Content-Length: 3\r\n\r\nabc"), 3, NULL,
	  "POST", "/", "/", NULL, 1, 3, 0, 1, 0, 3, { NULL } },
	{ "identical content-length list",
	  M("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc"), 3,
	  NULL, "POST", "/", "/", NULL, 1, 3, 0, 1, 0, 2,
	  { "Host", "a", "Content-Length", "3, 3" } },
	{ "content-length 0",
	  M("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), 0, NULL,
	  "POST", "/", "/", NULL, 1, 0, 0, 1, 0, 2, { NULL } },
	{ "content-length at max_body",
	  M("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n"), 0,
	  &lim_body100, "POST", "/", "/", NULL, 1, 100, 0, 1, 0, 2, { NULL } },
	{ "pipelined: the head of the first request only",
	  M("GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n"),
	  28, NULL, "GET", "/a", "/a", NULL, 1, -1, 0, 1, 0, 1,
	  { "Host", "a" } },
	{ "request line exactly max_request_line",
	  M("GET /aaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n"), 0, &lim_line32,
	  "GET", "/aaaaaaaaaaaaaaaaaa", "/aaaaaaaaaaaaaaaaaa", NULL, 1, -1, 0, 1,
	  0, 1, { NULL } },
	{ "exactly max_headers",
	  M("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n"), 0, &lim_3hdrs,
	  "GET", "/", "/", NULL, 1, -1, 0, 1, 0, 3,
	  { "Host", "a", "A", "1", "B", "2" } },
	{ "lower-case method token, minor 1.9",
	  M("m-1.x! /%20 HTTP/1.9\r\nHost: a\r\n\r\n"), 0, NULL,
	  "m-1.x!", "/%20", "/%20", NULL, 1, -1, 0, 1, 0, 1, { NULL } },
};

static void check_vreq(const struct vreq *c, int r,
		       const struct fut_http_request_head *req,
		       const char *how)
{
	const char *n = c->name;
	int want = (int)(c->len - c->body);
	ck_assert_msg(r == want, "%s (%s): got %d (%s), want %d", n, how, r,
		      errname(r), want);
	ck_assert_msg(view_eq(req->method, req->method_len, c->method),
		      "%s: method '%.*s'", n, (int)req->method_len, req->method);
	if (c->target)
		ck_assert_msg(view_eq(req->target, req->target_len, c->target),
			      "%s: target '%.*s'", n, (int)req->target_len,
			      req->target);
	ck_assert_msg(req->path && req->path_len == strlen(c->path) &&
		      memcmp(req->path, c->path, req->path_len) == 0,
		      "%s: path '%.*s', want '%s'", n, (int)req->path_len,
		      req->path ? req->path : "", c->path);
	if (c->query)
		ck_assert_msg(view_eq(req->query, req->query_len, c->query),
			      "%s: query %s'%.*s', want '%s'", n,
			      req->query ? "" : "NULL ", (int)req->query_len,
			      req->query ? req->query : "", c->query);
	else
		ck_assert_msg(req->query == NULL && req->query_len == 0,
			      "%s: query '%.*s', want none", n,
			      (int)req->query_len, req->query);
	ck_assert_msg(req->minor_version == c->minor, "%s: minor %d", n,
		      req->minor_version);
	ck_assert_msg(req->content_length == c->cl, "%s: content_length %lld",
		      n, (long long)req->content_length);
	ck_assert_msg(req->chunked == c->chunked, "%s: chunked %d", n,
		      req->chunked);
	ck_assert_msg(req->keep_alive == c->keep_alive, "%s: keep_alive %d", n,
		      req->keep_alive);
	ck_assert_msg(req->expect_continue == c->expect, "%s: expect %d", n,
		      req->expect_continue);
	ck_assert_msg(req->num_headers == c->nh, "%s: %zu headers", n,
		      req->num_headers);
	for (size_t i = 0; c->hv[2 * i]; i++) {
		const struct fut_http_header *h = &req->headers[i];
		ck_assert_msg(view_eq(h->name, h->name_len, c->hv[2 * i]) &&
			      view_eq(h->value, h->value_len, c->hv[2 * i + 1]),
			      "%s: header %zu '%.*s: %.*s'", n, i,
			      (int)h->name_len, h->name, (int)h->value_len,
			      h->value);
	}
}

START_TEST(valid_request)
{
	const struct vreq *c = &vreqs[_i];
	struct fut_http_request_head req;
	struct fut_http_header h[MAXH];
	char *buf = dup_bytes(c->msg, c->len);
	int r = fut_http_parse_request(buf, c->len, 0, &req, h, MAXH, c->lim);
	check_vreq(c, r, &req, "one-shot");
	free(buf);
}
END_TEST

/* Every prefix, growing one byte at a time with last_len the previous
 * prefix, then the whole; and every two-piece split. */
START_TEST(valid_request_splits)
{
	const struct vreq *c = &vreqs[_i];
	struct fut_http_request_head req;
	struct fut_http_header h[MAXH];
	size_t head = c->len - c->body;
	char *buf = dup_bytes(c->msg, c->len);
	size_t last = 0;
	for (size_t k = 0; k < head; k++) {
		int r = fut_http_parse_request(buf, k, last, &req, h, MAXH,
					       c->lim);
		ck_assert_msg(r == FUT_HTTP_EINCOMPLETE,
			      "%s: prefix %zu of %zu: got %d (%s)", c->name, k,
			      head, r, errname(r));
		r = fut_http_parse_request(buf, k, 0, &req, h, MAXH, c->lim);
		ck_assert_msg(r == FUT_HTTP_EINCOMPLETE,
			      "%s: prefix %zu of %zu (last_len 0): got %d (%s)",
			      c->name, k, head, r, errname(r));
		last = k;
	}
	int r = fut_http_parse_request(buf, c->len, last, &req, h, MAXH,
				       c->lim);
	check_vreq(c, r, &req, "after every prefix");
	for (size_t k = 0; k <= c->len; k++) {
		int r1 = fut_http_parse_request(buf, k, 0, &req, h, MAXH,
						c->lim);
		if (k < head)
			ck_assert_int_eq(r1, FUT_HTTP_EINCOMPLETE);
		r = fut_http_parse_request(buf, c->len, k < head ? k : 0, &req,
					   h, MAXH, c->lim);
		check_vreq(c, r, &req, "two pieces");
	}
	free(buf);
}
END_TEST

START_TEST(valid_request_guard_page)
{
	const struct vreq *c = &vreqs[_i];
	struct fut_http_request_head req;
	struct fut_http_header h[MAXH];
	size_t head = c->len - c->body;
	for (size_t k = 0; k <= c->len; k++) {
		char *b = guard_place(c->msg, k);
		/* last_len: what a previous call saw, before the head was
		 * complete */
		int r = fut_http_parse_request(b, k, k && k <= head ? k - 1 : 0,
					       &req, h, MAXH, c->lim);
		if (k < head)
			ck_assert_msg(r == FUT_HTTP_EINCOMPLETE,
				      "%s: guarded prefix %zu: %d", c->name, k, r);
		else
			check_vreq(c, r, &req, "guard page");
	}
}
END_TEST

/* ---- invalid requests ---- */

struct ireq {
	const char *name;
	const char *msg;
	size_t len;
	const struct fut_http_limits *lim;
	int code;
};

static const struct ireq ireqs[] = {
	{ "content-length and transfer-encoding",
	  M("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "transfer-encoding and content-length",
	  M("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	    "Content-Length: 5\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "differing content-length fields",
	  M("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
	    "Content-Length: 6\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "differing content-length list",
	  M("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "content-length with an empty element first",
	  M("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ,5\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "content-length with a trailing comma",
	  M("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "content-length with an empty element inside",
	  M("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,,5\r\n\r\n"),
	  NULL, FUT_HTTP_EBADREQ },
	{ "content-length of a comma",
	  M("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ,\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "a tls handshake, no line feed yet",
	  M("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "a control byte in the method, no line feed yet",
	  M("GE\x01"), NULL, FUT_HTTP_EBADREQ },
	/* Found by the fuzzer: a prefix gave 400 (the '/'), the whole line
	 * 414; the early look stays within the limit's bytes. */
	{ "junk early in a line over the limit",
	  M("HTTP/1.1}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}} 2\r\n\r\n"),
	  &lim_line32, FUT_HTTP_EBADREQ },
	{ "junk past the limit in a long line",
	  M("GETTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTT/ / HTTP/1.1\r\n\r\n"),
	  &lim_line32, FUT_HTTP_EURITOOLONG },
	{ "a path with a '%' and no hex digits",
	  M("GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "a path ending in '%' and one hex digit",
	  M("GET /a%4 HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "an absolute-form path ending in '%'",
	  M("GET http://h/a% HTTP/1.1\r\nHost: a\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "absolute-form http with an empty host",
	  M("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "absolute-form HTTPS with an empty host and a port",
	  M("GET HTTPS://:80/ HTTP/1.1\r\nHost: a\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "te not ending in chunked",
	  M("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n"
	    "\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "te gzip alone",
	  M("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"),
	  NULL, FUT_HTTP_EBADREQ },
	{ "te gzip, chunked",
	  M("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n"
	    "\r\n"), NULL, FUT_HTTP_ENOTIMPL },
	{ "te chunked twice in a list",
	  M("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n"
	    "\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "te chunked in two fields",
	  M("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "te in http/1.0",
	  M("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "obs-fold",
	  M("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "obs-fold with a tab",
	  M("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "bare cr in a value",
	  M("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "bare cr ending a value",
	  M("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "bare lf ending the request line",
	  M("GET / HTTP/1.1\nHost: a\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "bare lf line endings throughout",
	  M("GET / HTTP/1.1\nHost: a\n\n"), NULL, FUT_HTTP_EBADREQ },
	{ "bare lf ending a field",
	  M("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "bare lf fields and blank line",
	  M("GET / HTTP/1.1\r\nHost: a\nX: b\n\n"), NULL, FUT_HTTP_EBADREQ },
	{ "nul in a value",
	  M("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "nul in a name",
	  M("GET / HTTP/1.1\r\nHost: a\r\nX\0: b\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "nul in the target",
	  M("GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "del in a value",
	  M("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "space before the colon",
	  M("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "tab before the colon",
	  M("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "empty header name",
	  M("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "no colon",
	  M("GET / HTTP/1.1\r\nHost: a\r\nXYZ\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "bad token in the method",
	  M("G(T / HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "empty method",
	  M(" / HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "two spaces after the method",
	  M("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "no version",
	  M("GET /\r\nHost: a\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "bad token in a header name",
	  M("GET / HTTP/1.1\r\nHost: a\r\nX@Y: 1\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "header name with a slash",
	  M("GET / HTTP/1.1\r\nHost: a\r\nX/Y: 1\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "missing host in http/1.1",
	  M("GET / HTTP/1.1\r\nX: a\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "no headers in http/1.1",
	  M("GET / HTTP/1.1\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "two host headers",
	  M("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "two host headers in http/1.0",
	  M("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "http/2.0",
	  M("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), NULL, FUT_HTTP_EVERSION },
	{ "http/0.9",
	  M("GET / HTTP/0.9\r\nHost: a\r\n\r\n"), NULL, FUT_HTTP_EVERSION },
	{ "http/1.1x",
	  M("GET / HTTP/1.1x\r\nHost: a\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "http/1",
	  M("GET / HTTP/1\r\nHost: a\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "lower-case http",
	  M("GET / http/1.1\r\nHost: a\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "content-length overflow",
	  M("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n"
	    "\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "content-length over int64",
	  M("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n"
	    "\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "negative content-length",
	  M("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "content-length +5",
	  M("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "content-length 5a",
	  M("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5a\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "content-length 0x5",
	  M("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "empty content-length",
	  M("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "request line over max_request_line",
	  M("GET /aaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n"), &lim_line32,
	  FUT_HTTP_EURITOOLONG },
	{ "request line long for junk after its version",
	  M("GET / HTTP/1.1aaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nHost: a\r\n\r\n"),
	  &lim_line32, FUT_HTTP_EBADREQ },
	{ "request line long for spaces after its target",
	  M("GET /                                HTTP/1.1\r\nHost: a\r\n\r\n"),
	  &lim_line32, FUT_HTTP_EBADREQ },
	{ "request line long for one byte after its version",
	  M("GET /aaaaaaaaaaaaaaaaaa HTTP/1.1X\r\nHost: a\r\n\r\n"),
	  &lim_line32, FUT_HTTP_EBADREQ },
	{ "request line long for a target one byte too long",
	  M("GET /aaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n"),
	  &lim_line32, FUT_HTTP_EURITOOLONG },
	{ "request line long for a target that ends near the limit",
	  M("GET /aaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n"),
	  &lim_line32, FUT_HTTP_EURITOOLONG },
	{ "request line over max_request_line ending in a bare lf",
	  M("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\nHost: a\r\n\r\n"),
	  &lim_line32, FUT_HTTP_EURITOOLONG },
	{ "header section over max_header_bytes",
	  M("GET / HTTP/1.1\r\nHost: a\r\nX-Long: 0123456789012345678901234567\r\n"
	    "\r\n"), &lim_hdr64, FUT_HTTP_EHDRTOOBIG },
	{ "header count over max_headers",
	  M("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"),
	  &lim_3hdrs, FUT_HTTP_EHDRTOOBIG },
	{ "content-length over max_body",
	  M("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n"),
	  &lim_body100, FUT_HTTP_EBODYTOOBIG },
	{ "fragment in the target",
	  M("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "target not starting with /",
	  M("GET index.html HTTP/1.1\r\nHost: a\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "authority-form outside connect",
	  M("GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "asterisk outside options",
	  M("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "absolute-form with an empty scheme",
	  M("GET ://x/ HTTP/1.1\r\nHost: x\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "absolute-form scheme with a slash",
	  M("GET foo/bar://x/ HTTP/1.1\r\nHost: x\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "absolute-form scheme starting with a digit",
	  M("GET 1http://x/ HTTP/1.1\r\nHost: x\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "absolute-form with userinfo",
	  M("GET http://u:p@x/ HTTP/1.1\r\nHost: x\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "absolute-form with a port that is not digits",
	  M("GET http://x:abc/ HTTP/1.1\r\nHost: x\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "absolute-form with an unclosed ip literal",
	  M("GET http://[::1/ HTTP/1.1\r\nHost: x\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "absolute-form with an empty userinfo",
	  M("GET http://@x HTTP/1.1\r\nHost: x\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "connect with origin-form",
	  M("CONNECT /x HTTP/1.1\r\nHost: x\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "connect without a port",
	  M("CONNECT foo HTTP/1.1\r\nHost: foo\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "connect with an empty port",
	  M("CONNECT foo: HTTP/1.1\r\nHost: foo\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "connect without a host",
	  M("CONNECT :443 HTTP/1.1\r\nHost: foo\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "connect with absolute-form",
	  M("CONNECT http://x:443/ HTTP/1.1\r\nHost: x\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "connect with userinfo",
	  M("CONNECT u@x:443 HTTP/1.1\r\nHost: x\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "connect with asterisk",
	  M("CONNECT * HTTP/1.1\r\nHost: x\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "control byte in the target",
	  M("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "non-ascii byte in the target",
	  M("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "five leading crlf",
	  M("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), NULL,
	  FUT_HTTP_EBADREQ },
	{ "leading bare lf",
	  M("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "te with parameters",
	  M("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n"
	    "\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "te quoted",
	  M("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n"
	    "\r\n"), NULL, FUT_HTTP_EBADREQ },
	{ "te junk before chunked",
	  M("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chun ked, chunked"
	    "\r\n\r\n"), NULL, FUT_HTTP_EBADREQ },
};

START_TEST(invalid_request)
{
	const struct ireq *c = &ireqs[_i];
	struct fut_http_request_head req;
	struct fut_http_header h[MAXH];
	char *buf = dup_bytes(c->msg, c->len);
	int r = fut_http_parse_request(buf, c->len, 0, &req, h, MAXH, c->lim);
	ck_assert_msg(r == c->code, "%s: got %d (%s), want %d (%s)", c->name,
		      r, errname(r), c->code, errname(c->code));
	/* Trailing bytes (a body, the next request) change nothing. */
	char *more = malloc(c->len + 64);
	memcpy(more, c->msg, c->len);
	memset(more + c->len, 'x', 64);
	r = fut_http_parse_request(more, c->len + 64, 0, &req, h, MAXH, c->lim);
	ck_assert_msg(r == c->code, "%s + body: got %d (%s)", c->name, r,
		      errname(r));
	free(more);
	free(buf);
}
END_TEST

/* Byte by byte: EINCOMPLETE, then the one-shot error, reported no later
 * than with the whole message. */
START_TEST(invalid_request_splits)
{
	const struct ireq *c = &ireqs[_i];
	struct fut_http_request_head req;
	struct fut_http_header h[MAXH];
	char *buf = dup_bytes(c->msg, c->len);
	int r = FUT_HTTP_EINCOMPLETE;
	size_t k;
	for (k = 0; k <= c->len; k++) {
		r = fut_http_parse_request(buf, k, k ? k - 1 : 0, &req, h, MAXH,
					   c->lim);
		if (r != FUT_HTTP_EINCOMPLETE)
			break;
	}
	ck_assert_msg(r == c->code, "%s: byte by byte: got %d (%s) at %zu of "
		      "%zu, want %d (%s)", c->name, r, errname(r), k, c->len,
		      c->code, errname(c->code));
	/* and in two pieces */
	for (k = 0; k < c->len; k++) {
		r = fut_http_parse_request(buf, k, 0, &req, h, MAXH, c->lim);
		if (r != FUT_HTTP_EINCOMPLETE) {
			ck_assert_msg(r == c->code, "%s: prefix %zu: got %d (%s)",
				      c->name, k, r, errname(r));
			continue;
		}
		r = fut_http_parse_request(buf, c->len, k, &req, h, MAXH,
					   c->lim);
		ck_assert_msg(r == c->code, "%s: split at %zu: got %d (%s)",
			      c->name, k, r, errname(r));
	}
	free(buf);
}
END_TEST

START_TEST(invalid_request_guard_page)
{
	const struct ireq *c = &ireqs[_i];
	struct fut_http_request_head req;
	struct fut_http_header h[MAXH];
	for (size_t k = 0; k <= c->len; k++) {
		char *b = guard_place(c->msg, k);
		int r = fut_http_parse_request(b, k, 0, &req, h, MAXH, c->lim);
		ck_assert_msg(r == FUT_HTTP_EINCOMPLETE || r == c->code,
			      "%s: guarded prefix %zu: %d (%s)", c->name, k, r,
			      errname(r));
	}
}
END_TEST

/* Host = uri-host [ ":" port ] (RFC 9112 3.2, RFC 3986 3.2.2): anything
 * else is a 400. */
static const struct {
	const char *v;
	int ok;
} hosts[] = {
	{ "", 1 },
	{ "example.com", 1 },
	{ "example.com:8080", 1 },
	{ "example.com:", 1 },   /* port = *DIGIT */
	{ "[::1]", 1 },
	{ "[::1]:8080", 1 },
	{ "[::ffff:127.0.0.1]", 1 },
	{ "[v1.a:b!]", 1 },      /* IPvFuture */
	{ "127.0.0.1:80", 1 },
	{ "a%20b", 1 },
	{ "a-b_c~d!$&'()*+,;=", 1 },
	{ "a:b:c", 0 },
	{ "x:abc", 0 },
	{ "[::1", 0 },
	{ "x:80:80", 0 },
	{ "%", 0 },
	{ "%zz", 0 },
	{ "a%2", 0 },
	{ "[127.0.0.1", 0 },
	{ "[]", 0 },
	{ "[::1]x", 0 },
	{ "[::g]", 0 },
	{ "[v1]", 0 },
	{ "x]", 0 },
	{ "u@x", 0 },
	{ "a/b", 0 },
};

START_TEST(host_values)
{
	struct fut_http_request_head req;
	struct fut_http_header h[MAXH];
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n",
			 hosts[_i].v);
	int r = fut_http_parse_request(buf, (size_t)n, 0, &req, h, MAXH, NULL);
	if (hosts[_i].ok)
		ck_assert_msg(r == n, "Host '%s': got %d (%s), want %d",
			      hosts[_i].v, r, errname(r), n);
	else
		ck_assert_msg(r == FUT_HTTP_EBADREQ,
			      "Host '%s': got %d (%s), want EBADREQ",
			      hosts[_i].v, r, errname(r));
}
END_TEST

/* ---- limits at their defaults, built at run time ---- */

START_TEST(default_request_line_limit)
{
	struct fut_http_request_head req;
	struct fut_http_header h[4];
	size_t n = 8192 + 64;
	char *buf = malloc(n);
	for (int over = 0; over <= 1; over++) {
		/* "GET /aaa... HTTP/1.1": 8192 bytes, or 8193 */
		size_t tl = 8192 - 13 + (size_t)over;
		size_t len = 0;
		memcpy(buf, "GET /", 5);
		memset(buf + 5, 'a', tl - 1);
		len = 4 + tl;
		memcpy(buf + len, " HTTP/1.1\r\nHost: a\r\n\r\n", 22);
		len += 22;
		int r = fut_http_parse_request(buf, len, 0, &req, h, 4, NULL);
		if (over) {
			ck_assert_int_eq(r, FUT_HTTP_EURITOOLONG);
			/* also before the line is complete */
			r = fut_http_parse_request(buf, 8193, 0, &req, h, 4,
						   NULL);
			ck_assert_int_eq(r, FUT_HTTP_EURITOOLONG);
		} else {
			ck_assert_int_eq(r, (int)len);
			ck_assert_uint_eq(req.target_len, tl);
			r = fut_http_parse_request(buf, 8192, 0, &req, h, 4,
						   NULL);
			ck_assert_int_eq(r, FUT_HTTP_EINCOMPLETE);
		}
	}
	free(buf);
}
END_TEST

static size_t build_headers(char *buf, size_t count, size_t vlen)
{
	size_t len = (size_t)sprintf(buf, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (size_t i = 1; i < count; i++) {
		len += (size_t)sprintf(buf + len, "X-%zu: ", i);
		memset(buf + len, 'v', vlen);
		len += vlen;
		memcpy(buf + len, "\r\n", 2);
		len += 2;
	}
	memcpy(buf + len, "\r\n", 2);
	return len + 2;
}

START_TEST(many_headers)
{
	struct fut_http_request_head req;
	static struct fut_http_header h[200];
	static char buf[200 * 32];
	size_t len = build_headers(buf, 100, 4);
	int r = fut_http_parse_request(buf, len, 0, &req, h, 200, NULL);
	ck_assert_int_eq(r, (int)len);
	ck_assert_uint_eq(req.num_headers, 100);
	ck_assert(view_eq(h[99].name, h[99].name_len, "X-99"));
	ck_assert(view_eq(h[99].value, h[99].value_len, "vvvv"));
	len = build_headers(buf, 101, 4);
	r = fut_http_parse_request(buf, len, 0, &req, h, 200, NULL);
	ck_assert_int_eq(r, FUT_HTTP_EHDRTOOBIG);
	/* the caller's array is the limit too */
	len = build_headers(buf, 11, 4);
	r = fut_http_parse_request(buf, len, 0, &req, h, 10, NULL);
	ck_assert_int_eq(r, FUT_HTTP_EHDRTOOBIG);
	r = fut_http_parse_request(buf, len, 0, &req, h, 11, NULL);
	ck_assert_int_eq(r, (int)len);
	/* byte by byte with last_len */
	for (size_t k = 0; k < len; k++)
		ck_assert_int_eq(fut_http_parse_request(buf, k, k ? k - 1 : 0,
				 &req, h, 11, NULL), FUT_HTTP_EINCOMPLETE);
	ck_assert_int_eq(fut_http_parse_request(buf, len, len - 1, &req, h, 11,
						NULL), (int)len);
}
END_TEST

START_TEST(default_header_bytes_limit)
{
	struct fut_http_request_head req;
	static struct fut_http_header h[100];
	static char buf[70000];
	/* 64 fields of 1000-byte values: over 65536 */
	size_t len = build_headers(buf, 66, 1000);
	ck_assert_uint_gt(len, 65536);
	int r = fut_http_parse_request(buf, len, 0, &req, h, 100, NULL);
	ck_assert_int_eq(r, FUT_HTTP_EHDRTOOBIG);
	/* no blank line yet, already over */
	r = fut_http_parse_request(buf, 65537, 0, &req, h, 100, NULL);
	ck_assert_int_eq(r, FUT_HTTP_EHDRTOOBIG);
	r = fut_http_parse_request(buf, 65536, 0, &req, h, 100, NULL);
	ck_assert_int_eq(r, FUT_HTTP_EINCOMPLETE);
	len = build_headers(buf, 60, 1000);
	ck_assert_uint_le(len, 65536);
	r = fut_http_parse_request(buf, len, 0, &req, h, 100, NULL);
	ck_assert_int_eq(r, (int)len);
}
END_TEST

START_TEST(bad_arguments)
{
	struct fut_http_request_head req;
	struct fut_http_response_head resp;
	struct fut_http_header h[4];
	const char *m = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	size_t n = strlen(m);
	struct fut_http_limits lim = { .reserved = { 0, 1 } };
	ck_assert_int_eq(fut_http_parse_request(m, n, 0, NULL, h, 4, NULL),
			 -EINVAL);
	ck_assert_int_eq(fut_http_parse_request(NULL, n, 0, &req, h, 4, NULL),
			 -EINVAL);
	ck_assert_int_eq(fut_http_parse_request(m, n, n + 1, &req, h, 4, NULL),
			 -EINVAL);
	ck_assert_int_eq(fut_http_parse_request(m, n, 0, &req, NULL, 4, NULL),
			 -EINVAL);
	ck_assert_int_eq(fut_http_parse_request(m, n, 0, &req, h, 4, &lim),
			 -EINVAL);
	ck_assert_int_eq(fut_http_parse_request(NULL, 0, 0, &req, h, 4, NULL),
			 FUT_HTTP_EINCOMPLETE);
	ck_assert_int_eq(fut_http_parse_response(m, n, 0, NULL, h, 4, NULL),
			 -EINVAL);
	ck_assert_int_eq(fut_http_parse_response(m, n, 0, &resp, h, 4, &lim),
			 -EINVAL);
	struct fut_http_chunked st = { 0 };
	size_t len = 1, rest;
	ck_assert_int_eq(fut_http_chunked_decode(&st, NULL, &len, &rest, 0),
			 -EINVAL);
	ck_assert_int_eq(fut_http_chunked_decode(NULL, (char[]){ '0' }, &len,
						 &rest, 0), -EINVAL);
}
END_TEST

/* The trailer section's 64 KiB count their line endings: 16383 lines of
 * "a:" CRLF (65532 bytes) pass, 16385 (65540) are too many; counting the
 * field bytes only let 128 KiB of short lines through. */
START_TEST(trailer_limit_counts_line_endings)
{
	static char buf[3 + 4 * 16385 + 2];
	for (int lines = 16383; lines <= 16385; lines += 2) {
		size_t n = 0;
		memcpy(buf, "0\r\n", 3);
		n = 3;
		for (int i = 0; i < lines; i++, n += 4)
			memcpy(buf + n, "a:\r\n", 4);
		memcpy(buf + n, "\r\n", 2);
		n += 2;
		struct fut_http_chunked st = { 0 };
		size_t len = n, rest;
		int r = fut_http_chunked_decode(&st, buf, &len, &rest, 0);
		ck_assert_int_eq(r, lines == 16383 ? 1 : FUT_HTTP_EHDRTOOBIG);
	}
}
END_TEST

/* ---- responses ---- */

struct vresp {
	const char *name;
	const char *msg;
	size_t len;
	size_t body;
	int status, minor;
	const char *reason;
	int64_t cl;
	int chunked, keep_alive;
	size_t nh;
};

static const struct vresp vresps[] = {
	{ "200 with content-length",
	  M("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello"), 5,
	  200, 1, "OK", 5, 0, 1, 2 },
	{ "empty reason",
	  M("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n"), 0,
	  404, 1, "", 0, 0, 1, 1 },
	{ "no reason",
	  M("HTTP/1.1 204\r\n\r\n"), 0, 204, 1, "", -1, 0, 1, 0 },
	{ "reason with spaces and a tab",
	  M("HTTP/1.1 500 Internal  Server\tError\r\n\r\n"), 0,
	  500, 1, "Internal  Server\tError", -1, 0, 1, 0 },
	{ "chunked",
	  M("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "3\r\nabc\r\n0\r\n\r\n"), 13, 200, 1, "OK", -1, 1, 1, 1 },
	{ "connection close",
	  M("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"), 0,
	  200, 1, "OK", -1, 0, 0, 1 },
	{ "http/1.0",
	  M("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi"), 2,
	  200, 0, "OK", 2, 0, 0, 1 },
	{ "http/1.0 keep-alive",
	  M("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n"), 0,
	  200, 0, "OK", -1, 0, 1, 1 },
	{ "bare lf line endings",
	  M("HTTP/1.1 301 Moved Permanently\nLocation: /x\nContent-Length: 0\n\n"),
	  0, 301, 1, "Moved Permanently", 0, 0, 1, 2 },
	{ "100 continue",
	  M("HTTP/1.1 100 Continue\r\n\r\n"), 0, 100, 1, "Continue", -1, 0, 1, 0 },
	/* RFC 9112 6.3: chunked last is de-chunked (the codings before it
	 * stay applied); otherwise the body runs until the close. */
	{ "te gzip: until close",
	  M("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), 0,
	  200, 1, "OK", -1, 0, 1, 1 },
	{ "te gzip, chunked: de-chunked",
	  M("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 0,
	  200, 1, "OK", -1, 1, 1, 1 },
	{ "te chunked, gzip: until close",
	  M("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), 0,
	  200, 1, "OK", -1, 0, 1, 1 },
	{ "999 and obs-text reason",
	  M("HTTP/1.1 999 \xc3\xa9t\xc3\xa9\r\n\r\n"), 0,
	  999, 1, "\xc3\xa9t\xc3\xa9", -1, 0, 1, 0 },
};

static void check_vresp(const struct vresp *c, int r,
			const struct fut_http_response_head *resp,
			const char *how)
{
	int want = (int)(c->len - c->body);
	ck_assert_msg(r == want, "%s (%s): got %d (%s), want %d", c->name, how,
		      r, errname(r), want);
	ck_assert_int_eq(resp->status, c->status);
	ck_assert_int_eq(resp->minor_version, c->minor);
	ck_assert_msg(resp->reason && view_eq(resp->reason, resp->reason_len,
					      c->reason),
		      "%s: reason '%.*s'", c->name, (int)resp->reason_len,
		      resp->reason);
	ck_assert_int_eq(resp->content_length, c->cl);
	ck_assert_int_eq(resp->chunked, c->chunked);
	ck_assert_int_eq(resp->keep_alive, c->keep_alive);
	ck_assert_uint_eq(resp->num_headers, c->nh);
}

START_TEST(valid_response)
{
	const struct vresp *c = &vresps[_i];
	struct fut_http_response_head resp;
	struct fut_http_header h[MAXH];
	size_t head = c->len - c->body;
	char *buf = dup_bytes(c->msg, c->len);
	int r = fut_http_parse_response(buf, c->len, 0, &resp, h, MAXH, NULL);
	check_vresp(c, r, &resp, "one-shot");
	size_t last = 0;
	for (size_t k = 0; k < head; k++) {
		r = fut_http_parse_response(buf, k, last, &resp, h, MAXH, NULL);
		ck_assert_msg(r == FUT_HTTP_EINCOMPLETE, "%s: prefix %zu: %d",
			      c->name, k, r);
		last = k;
	}
	r = fut_http_parse_response(buf, c->len, last, &resp, h, MAXH, NULL);
	check_vresp(c, r, &resp, "after every prefix");
	for (size_t k = 0; k < head; k++) {
		r = fut_http_parse_response(buf, c->len, k, &resp, h, MAXH,
					    NULL);
		check_vresp(c, r, &resp, "two pieces");
	}
	for (size_t k = 0; k <= c->len; k++) {
		char *b = guard_place(c->msg, k);
		r = fut_http_parse_response(b, k, 0, &resp, h, MAXH, NULL);
		if (k < head)
			ck_assert_int_eq(r, FUT_HTTP_EINCOMPLETE);
		else
			check_vresp(c, r, &resp, "guard page");
	}
	free(buf);
}
END_TEST

static const struct ireq iresps[] = {
	{ "two status digits", M("HTTP/1.1 20 OK\r\n\r\n"), NULL,
	  FUT_HTTP_EBADRESP },
	{ "four status digits", M("HTTP/1.1 2000 OK\r\n\r\n"), NULL,
	  FUT_HTTP_EBADRESP },
	{ "letters for a status", M("HTTP/1.1 abc OK\r\n\r\n"), NULL,
	  FUT_HTTP_EBADRESP },
	{ "status 099", M("HTTP/1.1 099 OK\r\n\r\n"), NULL, FUT_HTTP_EBADRESP },
	{ "two spaces before the status", M("HTTP/1.1  200 OK\r\n\r\n"), NULL,
	  FUT_HTTP_EBADRESP },
	{ "no status", M("HTTP/1.1\r\n\r\n"), NULL, FUT_HTTP_EBADRESP },
	{ "not http", M("ICY 200 OK\r\n\r\n"), NULL, FUT_HTTP_EBADRESP },
	{ "an http/0.9 body, no line end yet", M("<html>hi</html>"), NULL,
	  FUT_HTTP_EBADRESP },
	{ "a tls alert", M("\x15\x03\x01\x00\x02\x02\x46"), NULL,
	  FUT_HTTP_EBADRESP },
	{ "lowercase http, no line end yet", M("http/1.1 200"), NULL,
	  FUT_HTTP_EBADRESP },
	{ "http/2.0", M("HTTP/2.0 200 OK\r\n\r\n"), NULL, FUT_HTTP_EBADRESP },
	{ "control byte in the reason", M("HTTP/1.1 200 O\x01K\r\n\r\n"), NULL,
	  FUT_HTTP_EBADRESP },
	{ "content-length and transfer-encoding",
	  M("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n"), NULL, FUT_HTTP_EBADRESP },
	{ "differing content-lengths",
	  M("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
	  NULL, FUT_HTTP_EBADRESP },
	{ "bad content-length", M("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
	  NULL, FUT_HTTP_EBADRESP },
	{ "http/1.0 with transfer-encoding (RFC 9112 6.1)",
	  M("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), NULL,
	  FUT_HTTP_EBADRESP },
	{ "chunked twice",
	  M("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
	  NULL, FUT_HTTP_EBADRESP },
	{ "chunked in two fields",
	  M("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n"), NULL, FUT_HTTP_EBADRESP },
	{ "transfer coding with parameters",
	  M("HTTP/1.1 200 OK\r\nTransfer-Encoding: foo;q=1\r\n\r\n"), NULL,
	  FUT_HTTP_EBADRESP },
	{ "obs-fold", M("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"), NULL,
	  FUT_HTTP_EBADRESP },
	{ "space before the colon", M("HTTP/1.1 200 OK\r\nX : a\r\n\r\n"), NULL,
	  FUT_HTTP_EBADRESP },
	{ "leading crlf", M("\r\nHTTP/1.1 200 OK\r\n\r\n"), NULL,
	  FUT_HTTP_EBADRESP },
	{ "header count over max_headers",
	  M("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"), &lim_3hdrs,
	  FUT_HTTP_EHDRTOOBIG },
	{ "head over max_header_bytes",
	  M("HTTP/1.1 200 OK\r\nX-Long: 01234567890123456789012345678901234567\r\n"
	    "\r\n"), &lim_hdr64, FUT_HTTP_EHDRTOOBIG },
};

START_TEST(invalid_response)
{
	const struct ireq *c = &iresps[_i];
	struct fut_http_response_head resp;
	struct fut_http_header h[MAXH];
	char *buf = dup_bytes(c->msg, c->len);
	int r = fut_http_parse_response(buf, c->len, 0, &resp, h, MAXH, c->lim);
	ck_assert_msg(r == c->code, "%s: got %d (%s), want %d", c->name, r,
		      errname(r), c->code);
	size_t k;
	for (k = 0; k <= c->len; k++) {
		r = fut_http_parse_response(buf, k, k ? k - 1 : 0, &resp, h,
					    MAXH, c->lim);
		if (r != FUT_HTTP_EINCOMPLETE)
			break;
	}
	ck_assert_msg(r == c->code, "%s: byte by byte: got %d (%s) at %zu",
		      c->name, r, errname(r), k);
	for (k = 0; k <= c->len; k++) {
		char *b = guard_place(c->msg, k);
		r = fut_http_parse_response(b, k, 0, &resp, h, MAXH, c->lim);
		ck_assert(r == FUT_HTTP_EINCOMPLETE || r == c->code);
	}
	free(buf);
}
END_TEST

/* ---- chunked bodies ---- */

struct chunk_case {
	const char *name;
	const char *in;
	size_t len;
	const char *out; /* decoded, for valid bodies */
	size_t out_len;
	const char *rest; /* bytes after the body */
	size_t rest_len;
	uint64_t max_body;
	int ret; /* 1, or the error */
};

#define NOREST "", 0

static const struct chunk_case chunks[] = {
	{ "one chunk", M("5\r\nhello\r\n0\r\n\r\n"), M("hello"), NOREST, 0, 1 },
	{ "empty body", M("0\r\n\r\n"), M(""), NOREST, 0, 1 },
	{ "extensions",
	  M("5;ext=1\r\nhello\r\n6 ; a=\"b c\";d\r\n world\r\n0;last\r\n\r\n"),
	  M("hello world"), NOREST, 0, 1 },
	{ "extension, a quoted value ends the line",
	  M("5;a=\"q r\"\r\nhello\r\n0\r\n\r\n"), M("hello"), NOREST, 0, 1 },
	{ "extension grammar: BWS, quoted-pair, token values",
	  M("5 ;\ta = \"x\\\"y;z\" ; b ;c=d\r\nhello\r\n0\r\n\r\n"),
	  M("hello"), NOREST, 0, 1 },
	{ "hex sizes",
	  M("a\r\n0123456789\r\nA\r\nabcdefghij\r\n1F\r\n"
	    "0123456789012345678901234567890\r\n0\r\n\r\n"),
	  M("0123456789abcdefghij0123456789012345678901234567890"), NOREST, 0,
	  1 },
	{ "leading zeros",
	  M("0005\r\nhello\r\n0000000000000003\r\nabc\r\n000\r\n\r\n"),
	  M("helloabc"), NOREST, 0, 1 },
	{ "trailers",
	  M("3\r\nabc\r\n0\r\nX-Sum: 1\r\nY: 2 3\r\n\r\n"), M("abc"), NOREST, 0,
	  1 },
	{ "data holding crlf and digits",
	  M("6\r\n\r\n0\r\n\r\r\n0\r\n\r\n"), M("\r\n0\r\n\r"), NOREST, 0, 1 },
	{ "rest after the body",
	  M("3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n"), M("abc"),
	  M("GET / HTTP/1.1\r\n"), 0, 1 },
	{ "rest after trailers",
	  M("1\r\nz\r\n0\r\nT: v\r\n\r\nNEXT"), M("z"), M("NEXT"), 0, 1 },
	{ "exactly max_body",
	  M("6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"), M("hello world"), NOREST,
	  11, 1 },
	{ "bad hex", M("g\r\nx\r\n0\r\n\r\n"), M(""), NOREST, 0,
	  FUT_HTTP_EBADREQ },
	{ "extension without a name", M("5;\r\nhello\r\n0\r\n\r\n"), M(""),
	  NOREST, 0, FUT_HTTP_EBADREQ },
	{ "extension, only a value", M("5;=1\r\nhello\r\n0\r\n\r\n"), M(""),
	  NOREST, 0, FUT_HTTP_EBADREQ },
	{ "extension, two words", M("5;a b\r\nhello\r\n0\r\n\r\n"), M(""),
	  NOREST, 0, FUT_HTTP_EBADREQ },
	{ "extension, unterminated quote",
	  M("5;a=\"b\r\nhello\r\n0\r\n\r\n"), M(""), NOREST, 0,
	  FUT_HTTP_EBADREQ },
	{ "extension, empty value", M("5;a=\r\nhello\r\n0\r\n\r\n"), M(""),
	  NOREST, 0, FUT_HTTP_EBADREQ },
	{ "extension, whitespace before CR", M("5;a \r\nhello\r\n0\r\n\r\n"),
	  M(""), NOREST, 0, FUT_HTTP_EBADREQ },
	{ "extension value, whitespace before CR",
	  M("5;a=b \r\nhello\r\n0\r\n\r\n"), M(""), NOREST, 0,
	  FUT_HTTP_EBADREQ },
	{ "extension, token after a quoted value",
	  M("5;a=\"b\"c\r\nhello\r\n0\r\n\r\n"), M(""), NOREST, 0,
	  FUT_HTTP_EBADREQ },
	{ "0x10", M("0x10\r\n0123456789abcdef\r\n0\r\n\r\n"), M(""), NOREST, 0,
	  FUT_HTTP_EBADREQ },
	{ "leading space", M(" 5\r\nhello\r\n0\r\n\r\n"), M(""), NOREST, 0,
	  FUT_HTTP_EBADREQ },
	{ "empty size line", M("\r\nhello\r\n0\r\n\r\n"), M(""), NOREST, 0,
	  FUT_HTTP_EBADREQ },
	{ "negative size", M("-5\r\nhello\r\n0\r\n\r\n"), M(""), NOREST, 0,
	  FUT_HTTP_EBADREQ },
	{ "size overflow, 17 digits",
	  M("10000000000000005\r\nhello\r\n0\r\n\r\n"), M(""), NOREST, 0,
	  FUT_HTTP_EBADREQ },
	{ "size overflow, 20 digits",
	  M("ffffffffffffffffffff\r\n"), M(""), NOREST, 0, FUT_HTTP_EBADREQ },
	{ "missing crlf after data", M("5\r\nhelloX\r\n0\r\n\r\n"), M("hello"),
	  NOREST, 0, FUT_HTTP_EBADREQ },
	{ "data longer than the size", M("3\r\nhello\r\n0\r\n\r\n"), M("hel"),
	  NOREST, 0, FUT_HTTP_EBADREQ },
	{ "bare lf after the size", M("5\nhello\r\n0\r\n\r\n"), M(""), NOREST,
	  0, FUT_HTTP_EBADREQ },
	{ "bare lf after data", M("5\r\nhello\n0\r\n\r\n"), M("hello"), NOREST,
	  0, FUT_HTTP_EBADREQ },
	{ "bare lf ending the body", M("5\r\nhello\r\n0\r\n\n"), M("hello"),
	  NOREST, 0, FUT_HTTP_EBADREQ },
	{ "bare lf after a trailer", M("0\r\nA: b\n\r\n"), M(""), NOREST, 0,
	  FUT_HTTP_EBADREQ },
	{ "obs-fold in trailers", M("0\r\nA: b\r\n c\r\n\r\n"), M(""), NOREST,
	  0, FUT_HTTP_EBADREQ },
	{ "trailers with empty values and ows",
	  M("0\r\nX:\r\nY: \t\r\nZ:\tv w \r\n\r\n"), M(""), NOREST, 0, 1 },
	{ "trailer line without a colon", M("0\r\nno colon here\r\n\r\n"), M(""),
	  NOREST, 0, FUT_HTTP_EBADREQ },
	{ "trailer name without a colon", M("0\r\nX\r\n\r\n"), M(""), NOREST, 0,
	  FUT_HTTP_EBADREQ },
	{ "space before a trailer colon", M("0\r\nX : 1\r\n\r\n"), M(""),
	  NOREST, 0, FUT_HTTP_EBADREQ },
	{ "tab before a trailer colon", M("0\r\nX\t: 1\r\n\r\n"), M(""),
	  NOREST, 0, FUT_HTTP_EBADREQ },
	{ "empty trailer name", M("0\r\n: 1\r\n\r\n"), M(""), NOREST, 0,
	  FUT_HTTP_EBADREQ },
	{ "bad byte in a trailer name", M("0\r\nX@Y: 1\r\n\r\n"), M(""), NOREST,
	  0, FUT_HTTP_EBADREQ },
	{ "control byte in a trailer value", M("0\r\nX: a\x01\r\n\r\n"), M(""),
	  NOREST, 0, FUT_HTTP_EBADREQ },
	{ "control byte in an extension", M("5;a\x01\r\nhello\r\n0\r\n\r\n"),
	  M(""), NOREST, 0, FUT_HTTP_EBADREQ },
	{ "over max_body",
	  M("6\r\nhello \r\n6\r\nworld!\r\n0\r\n\r\n"), M("hello "), NOREST, 11,
	  FUT_HTTP_EBODYTOOBIG },
	{ "one chunk over the default max_body",
	  M("100001\r\nxx"), M(""), NOREST, 0, FUT_HTTP_EBODYTOOBIG },
	{ "16 hex digits: over max_body",
	  M("ffffffffffffffff\r\nxx"), M(""), NOREST, 0, FUT_HTTP_EBODYTOOBIG },
};

struct fed {
	int ret;
	char out[256];
	size_t out_len;
	char rest[256];
	size_t rest_len;
};

/* Feed in pieces: of step bytes when step > 0, else [0, split) and
 * [split, n). Copies each call's output away (the decoder works in
 * place). */
static void feed(const struct chunk_case *c, size_t step, size_t split,
		 struct fed *f)
{
	struct fut_http_chunked st;
	memset(&st, 0, sizeof(st));
	memset(f, 0, sizeof(*f));
	size_t pos = 0;
	int first = 1;
	while (pos < c->len || first) {
		size_t e = step ? pos + step : (first ? split : c->len);
		if (e > c->len)
			e = c->len;
		first = 0;
		size_t k = e - pos;
		char *tmp = dup_bytes(c->in + pos, k);
		size_t len = k, rest = 12345;
		int r = fut_http_chunked_decode(&st, tmp, &len, &rest,
						c->max_body);
		ck_assert_uint_le(len, k);
		ck_assert_uint_le(f->out_len + len, sizeof(f->out));
		memcpy(f->out + f->out_len, tmp, len);
		f->out_len += len;
		if (r < 0) {
			f->ret = r;
			/* and it sticks */
			size_t one = 1, rest2;
			ck_assert_int_eq(fut_http_chunked_decode(&st,
					 (char[]){ '0' }, &one, &rest2,
					 c->max_body), r);
			free(tmp);
			return;
		}
		if (r == 1) {
			ck_assert_uint_le(len + rest, k);
			memcpy(f->rest, tmp + len, rest);
			memcpy(f->rest + rest, c->in + e, c->len - e);
			f->rest_len = rest + c->len - e;
			f->ret = 1;
			free(tmp);
			return;
		}
		ck_assert_int_eq(r, 0);
		ck_assert_uint_eq(rest, 0);
		free(tmp);
		pos = e;
	}
	f->ret = 0;
}

static void check_fed(const struct chunk_case *c, const struct fed *f,
		      const char *how, size_t at)
{
	ck_assert_msg(f->ret == c->ret, "%s (%s %zu): got %d (%s), want %d",
		      c->name, how, at, f->ret, errname(f->ret), c->ret);
	ck_assert_msg(f->out_len == c->out_len &&
		      memcmp(f->out, c->out, c->out_len) == 0,
		      "%s (%s %zu): decoded '%.*s'", c->name, how, at,
		      (int)f->out_len, f->out);
	ck_assert_msg(f->rest_len == c->rest_len &&
		      memcmp(f->rest, c->rest, c->rest_len) == 0,
		      "%s (%s %zu): rest '%.*s'", c->name, how, at,
		      (int)f->rest_len, f->rest);
}

/* A chunk-size line holds at most 4096 bytes before its CRLF, leading
 * zeros and whitespace included: endless zeros were taken for the whole
 * body timeout, a core busy all along. Fed whole and byte by byte. */
static int size_line(const char *pre, size_t fill, char fc, const char *post,
		     int bytewise, char *out, size_t *outl)
{
	size_t pl = strlen(pre), sl = strlen(post), n = pl + fill + sl;
	char *m = malloc(n);
	ck_assert_ptr_nonnull(m);
	memcpy(m, pre, pl);
	memset(m + pl, fc, fill);
	memcpy(m + pl + fill, post, sl);
	struct fut_http_chunked st;
	memset(&st, 0, sizeof(st));
	int r = 0;
	*outl = 0;
	for (size_t pos = 0; pos < n && r == 0;) {
		size_t k = bytewise ? 1 : n - pos, rest;
		r = fut_http_chunked_decode(&st, m + pos, &k, &rest, 0);
		memcpy(out + *outl, m + pos, k);
		*outl += k;
		pos += bytewise ? 1 : n;
	}
	free(m);
	return r;
}

START_TEST(chunk_size_line_limit)
{
	static const struct {
		const char *pre;
		size_t fill;
		char fc;
		const char *post;
		int ret;
	} cases[] = {
		{ "", 4095, '0', "5\r\nhello\r\n0\r\n\r\n", 1 },
		{ "", 4096, '0', "5\r\nhello\r\n0\r\n\r\n",
		  FUT_HTTP_EBADREQ },
		{ "5", 4093, ' ', ";a\r\nhello\r\n0\r\n\r\n", 1 },
		{ "5", 4094, ' ', ";a\r\nhello\r\n0\r\n\r\n",
		  FUT_HTTP_EBADREQ },
		{ "5;", 4094, 'a', "\r\nhello\r\n0\r\n\r\n", 1 },
		{ "5;", 4095, 'a', "\r\nhello\r\n0\r\n\r\n",
		  FUT_HTTP_EBADREQ },
		/* the count starts again on each size line */
		{ "5\r\nhello\r\n", 4095, '0', "0\r\n\r\n", 1 },
	};
	for (size_t i = 0; i < NELEM(cases); i++)
		for (int bw = 0; bw < 2; bw++) {
			char out[16];
			size_t ol;
			int r = size_line(cases[i].pre, cases[i].fill,
					  cases[i].fc, cases[i].post, bw, out,
					  &ol);
			ck_assert_msg(r == cases[i].ret, "case %zu (%s): %d",
				      i, bw ? "bytewise" : "whole", r);
			if (r == 1)
				ck_assert(ol == 5 && !memcmp(out, "hello", 5));
		}
}
END_TEST

START_TEST(chunked_body)
{
	const struct chunk_case *c = &chunks[_i];
	struct fed f;
	feed(c, 0, c->len, &f);
	check_fed(c, &f, "whole", c->len);
	feed(c, 1, 0, &f);
	check_fed(c, &f, "byte by byte", 1);
	for (size_t s = 0; s <= c->len; s++) {
		feed(c, 0, s, &f);
		check_fed(c, &f, "split at", s);
	}
	/* In place at the guard page, every prefix. */
	for (size_t k = 0; k <= c->len; k++) {
		struct fut_http_chunked st = { 0 };
		char *b = guard_place(c->in, k);
		size_t len = k, rest;
		int r = fut_http_chunked_decode(&st, b, &len, &rest, c->max_body);
		ck_assert(r == 0 || r == c->ret);
		ck_assert_uint_le(len, k);
	}
}
END_TEST

/* The decoder on the body of a parsed request, both in one buffer. */
START_TEST(chunked_after_head)
{
	char buf[] = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
		     "\r\n4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n"
		     "0\r\n\r\nGET /next HTTP/1.1\r\n";
	struct fut_http_request_head req;
	struct fut_http_header h[8];
	int r = fut_http_parse_request(buf, sizeof(buf) - 1, 0, &req, h, 8,
				       NULL);
	ck_assert_int_gt(r, 0);
	ck_assert_int_eq(req.chunked, 1);
	struct fut_http_chunked st = { 0 };
	size_t len = sizeof(buf) - 1 - (size_t)r, rest;
	char *body = buf + r;
	ck_assert_int_eq(fut_http_chunked_decode(&st, body, &len, &rest, 0), 1);
	ck_assert(view_eq(body, len, "Wikipedia in\r\n\r\nchunks."));
	ck_assert(view_eq(body + len, rest, "GET /next HTTP/1.1\r\n"));
	ck_assert_uint_eq(st.total, len);
	/* done: more calls keep answering 1 and hand back the bytes */
	char more[] = "xyz";
	len = 3;
	ck_assert_int_eq(fut_http_chunked_decode(&st, more, &len, &rest, 0), 1);
	ck_assert_uint_eq(len, 0);
	ck_assert_uint_eq(rest, 3);
}
END_TEST

/* ---- status, reason, query ---- */

START_TEST(status_of)
{
	static const struct { int err, status; } t[] = {
		{ FUT_HTTP_EBADREQ, 400 },     { FUT_HTTP_EURITOOLONG, 414 },
		{ FUT_HTTP_EHDRTOOBIG, 431 },  { FUT_HTTP_EBODYTOOBIG, 413 },
		{ FUT_HTTP_ENOTIMPL, 501 },    { FUT_HTTP_EVERSION, 505 },
		{ FUT_HTTP_EINCOMPLETE, 0 },   { FUT_HTTP_EBADRESP, 0 },
		{ FUT_HTTP_EBADURL, 0 },       { 0, 0 },
		{ -EINVAL, 0 },                { 400, 0 },
	};
	for (size_t i = 0; i < NELEM(t); i++)
		ck_assert_msg(fut_http_status_of(t[i].err) == t[i].status,
			      "status_of(%d) = %d, want %d", t[i].err,
			      fut_http_status_of(t[i].err), t[i].status);
	/* each status a parse error maps to has its reason */
	for (size_t i = 0; i < 6; i++)
		ck_assert_str_ne(fut_http_reason(t[i].status), "Unknown");
}
END_TEST

START_TEST(reason)
{
	static const struct { int status; const char *reason; } t[] = {
		{ 100, "Continue" }, { 101, "Switching Protocols" },
		{ 103, "Early Hints" },
		{ 200, "OK" }, { 201, "Created" }, { 202, "Accepted" },
		{ 203, "Non-Authoritative Information" },
		{ 204, "No Content" }, { 205, "Reset Content" },
		{ 206, "Partial Content" },
		{ 301, "Moved Permanently" }, { 302, "Found" },
		{ 303, "See Other" }, { 304, "Not Modified" },
		{ 307, "Temporary Redirect" }, { 308, "Permanent Redirect" },
		{ 400, "Bad Request" }, { 401, "Unauthorized" },
		{ 403, "Forbidden" }, { 404, "Not Found" },
		{ 405, "Method Not Allowed" }, { 408, "Request Timeout" },
		{ 409, "Conflict" }, { 411, "Length Required" },
		{ 413, "Content Too Large" }, { 414, "URI Too Long" },
		{ 415, "Unsupported Media Type" },
		{ 416, "Range Not Satisfiable" },
		{ 417, "Expectation Failed" }, { 421, "Misdirected Request" },
		{ 422, "Unprocessable Content" }, { 426, "Upgrade Required" },
		{ 428, "Precondition Required" }, { 429, "Too Many Requests" },
		{ 451, "Unavailable For Legal Reasons" },
		{ 511, "Network Authentication Required" },
		{ 431, "Request Header Fields Too Large" },
		{ 500, "Internal Server Error" }, { 501, "Not Implemented" },
		{ 502, "Bad Gateway" }, { 503, "Service Unavailable" },
		{ 504, "Gateway Timeout" },
		{ 505, "HTTP Version Not Supported" },
		{ 0, "Unknown" }, { 299, "Unknown" }, { -1, "Unknown" },
		{ 1000, "Unknown" },
	};
	for (size_t i = 0; i < NELEM(t); i++)
		ck_assert_str_eq(fut_http_reason(t[i].status), t[i].reason);
}
END_TEST

START_TEST(query_param)
{
	static const struct {
		const char *q, *name, *val; /* val NULL: not found */
	} t[] = {
		{ "a=1&b=2", "a", "1" },     { "a=1&b=2", "b", "2" },
		{ "a=1&b=2", "c", NULL },    { "ab=1&a=2", "a", "2" },
		{ "a=1&ab=2", "ab", "2" },   { "flag&x=1", "flag", "" },
		{ "x=&y=1", "x", "" },       { "a=1&a=2", "a", "1" },
		{ "a=b=c", "a", "b=c" },     { "&&a=1&", "a", "1" },
		{ "", "a", NULL },           { "A=1", "a", NULL },
		{ "q=%20x+y", "q", "%20x+y" }, { "a=1", "a=1", NULL },
	};
	for (size_t i = 0; i < NELEM(t); i++) {
		const char *v = NULL;
		size_t n = 99;
		int r = fut_http_query_param(t[i].q, strlen(t[i].q), t[i].name,
					     &v, &n);
		if (!t[i].val) {
			ck_assert_msg(r == 0, "'%s' in '%s' found", t[i].name,
				      t[i].q);
			continue;
		}
		ck_assert_msg(r == 1 && view_eq(v, n, t[i].val),
			      "'%s' in '%s': %d '%.*s', want '%s'", t[i].name,
			      t[i].q, r, r ? (int)n : 0, r ? v : "", t[i].val);
	}
	/* the length bounds the search: no match past query_len */
	const char *v;
	size_t n;
	ck_assert_int_eq(fut_http_query_param("a=1&b=2", 3, "b", &v, &n), 0);
	ck_assert_int_eq(fut_http_query_param("a=12", 3, "a", &v, &n), 1);
	ck_assert(view_eq(v, n, "1"));
	ck_assert_int_eq(fut_http_query_param(NULL, 0, "a", &v, &n), 0);
	/* straight from a parsed request */
	const char *m = "GET /s?q=abc&page=2 HTTP/1.1\r\nHost: a\r\n\r\n";
	struct fut_http_request_head req;
	struct fut_http_header h[2];
	ck_assert_int_gt(fut_http_parse_request(m, strlen(m), 0, &req, h, 2,
						NULL), 0);
	ck_assert_int_eq(fut_http_query_param(req.query, req.query_len, "page",
					      &v, &n), 1);
	ck_assert(view_eq(v, n, "2"));
}
END_TEST

Suite *http_parser_suite(void)
{
	Suite *s = suite_create("http-parser");
	TCase *tc = tcase_create("requests");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, valid_request, 0, NELEM(vreqs));
	tcase_add_loop_test(tc, valid_request_splits, 0, NELEM(vreqs));
	tcase_add_loop_test(tc, valid_request_guard_page, 0, NELEM(vreqs));
	tcase_add_loop_test(tc, invalid_request, 0, NELEM(ireqs));
	tcase_add_loop_test(tc, invalid_request_splits, 0, NELEM(ireqs));
	tcase_add_loop_test(tc, invalid_request_guard_page, 0, NELEM(ireqs));
	tcase_add_loop_test(tc, host_values, 0, NELEM(hosts));
	tcase_add_test(tc, default_request_line_limit);
	tcase_add_test(tc, many_headers);
	tcase_add_test(tc, default_header_bytes_limit);
	tcase_add_test(tc, trailer_limit_counts_line_endings);
	tcase_add_test(tc, bad_arguments);
	suite_add_tcase(s, tc);
	tc = tcase_create("responses");
	tcase_add_loop_test(tc, valid_response, 0, NELEM(vresps));
	tcase_add_loop_test(tc, invalid_response, 0, NELEM(iresps));
	suite_add_tcase(s, tc);
	tc = tcase_create("chunked");
	tcase_add_loop_test(tc, chunked_body, 0, NELEM(chunks));
	tcase_add_test(tc, chunked_after_head);
	tcase_add_test(tc, chunk_size_line_limit);
	suite_add_tcase(s, tc);
	tc = tcase_create("helpers");
	tcase_add_test(tc, status_of);
	tcase_add_test(tc, reason);
	tcase_add_test(tc, query_param);
	suite_add_tcase(s, tc);
	return s;
}
