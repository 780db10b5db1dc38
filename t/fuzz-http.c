/*
 * libFuzzer target for the HTTP/1.1 parser (http/parser.c); built and run
 * by t/fuzz.sh. The first input byte picks a split point and a few
 * options; the rest is the message. For requests and responses, parsed
 * with the default limits and with small ones: the message fed as
 * [0, split) then the whole (last_len = split) must give the one-shot
 * result (an error may come with the prefix, but the same error), with the
 * same fields. The chunked decoder must give the same result, decoded bytes
 * and rest, whole and in two pieces. Any mismatch abort()s. Every buffer
 * is malloc'd at its exact size so ASan catches a read past len.
 */
#include <future/http.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXH 128

static void fail(const char *what, int a, int b)
{
	fprintf(stderr, "fuzz-http: %s: %d != %d\n", what, a, b);
	abort();
}

static char *copy(const uint8_t *p, size_t n)
{
	char *b = malloc(n ? n : 1);
	if (!b)
		abort();
	if (n)
		memcpy(b, p, n);
	return b;
}

/* Header views must lie inside the head. */
static void check_headers(const char *buf, int end,
			  const struct fut_http_header *h, size_t nh)
{
	for (size_t i = 0; i < nh; i++) {
		if (h[i].name < buf || h[i].name + h[i].name_len > buf + end ||
		    h[i].value < buf ||
		    h[i].value + h[i].value_len > buf + end || !h[i].name_len)
			fail("header view outside the head", (int)i, end);
	}
}

#define OFF(p, base) ((p) ? (long)((p) - (base)) : -1L)

static void same_request(const char *a, const struct fut_http_request_head *x,
			 const char *b, const struct fut_http_request_head *y)
{
	if (OFF(x->method, a) != OFF(y->method, b) ||
	    x->method_len != y->method_len ||
	    OFF(x->target, a) != OFF(y->target, b) ||
	    x->target_len != y->target_len ||
	    (x->path != y->path && OFF(x->path, a) != OFF(y->path, b)) ||
	    x->path_len != y->path_len ||
	    OFF(x->query, a) != OFF(y->query, b) ||
	    x->query_len != y->query_len ||
	    x->minor_version != y->minor_version ||
	    x->num_headers != y->num_headers ||
	    x->content_length != y->content_length ||
	    x->chunked != y->chunked || x->keep_alive != y->keep_alive ||
	    x->expect_continue != y->expect_continue)
		fail("request fields differ after a split", 0, 1);
}

static void request(const uint8_t *data, size_t n, size_t split,
		    const struct fut_http_limits *lim)
{
	static struct fut_http_header h1[MAXH], h2[MAXH];
	struct fut_http_request_head r1, r2;
	char *full = copy(data, n);
	int one = fut_http_parse_request(full, n, 0, &r1, h1, MAXH, lim);
	if (one == 0 || (one > 0 && (size_t)one > n))
		fail("request head length", one, (int)n);
	if (one > 0) {
		check_headers(full, one, h1, r1.num_headers);
		/* The path is a view of the head, or the constant "/" of an
		 * absolute-form target without a path. */
		int path_out = r1.path < full ||
			       r1.path + r1.path_len > full + one;
		if (r1.method < full ||
		    (path_out && !(r1.path_len == 1 && r1.path[0] == '/')) ||
		    (r1.query && r1.query + r1.query_len > full + one) ||
		    (r1.chunked && r1.content_length >= 0))
			fail("request views", one, 0);
	}
	char *pre = copy(data, split);
	int p = fut_http_parse_request(pre, split, 0, &r2, h2, MAXH, lim);
	if (p != FUT_HTTP_EINCOMPLETE) {
		/* complete or refused with the prefix: the same result */
		if (p != one)
			fail("request: prefix result differs from one-shot", p,
			     one);
		if (p > 0)
			same_request(full, &r1, pre, &r2);
	} else {
		int two = fut_http_parse_request(full, n, split, &r2, h2, MAXH,
						 lim);
		if (two != one)
			fail("request: split result differs from one-shot",
			     two, one);
		if (two > 0)
			same_request(full, &r1, full, &r2);
	}
	free(pre);
	free(full);
}

static void response(const uint8_t *data, size_t n, size_t split,
		     const struct fut_http_limits *lim)
{
	static struct fut_http_header h1[MAXH], h2[MAXH];
	struct fut_http_response_head r1, r2;
	char *full = copy(data, n);
	int one = fut_http_parse_response(full, n, 0, &r1, h1, MAXH, lim);
	if (one == 0 || (one > 0 && (size_t)one > n))
		fail("response head length", one, (int)n);
	if (one > 0) {
		check_headers(full, one, h1, r1.num_headers);
		if (r1.status < 100 || r1.status > 999 ||
		    (r1.chunked && r1.content_length >= 0))
			fail("response fields", r1.status, 0);
	}
	char *pre = copy(data, split);
	int p = fut_http_parse_response(pre, split, 0, &r2, h2, MAXH, lim);
	int two = p;
	if (p == FUT_HTTP_EINCOMPLETE)
		two = fut_http_parse_response(full, n, split, &r2, h2, MAXH,
					      lim);
	if (two != one)
		fail("response: split result differs from one-shot", two, one);
	if (one > 0 && (r1.status != r2.status ||
			r1.minor_version != r2.minor_version ||
			r1.reason_len != r2.reason_len ||
			r1.num_headers != r2.num_headers ||
			r1.content_length != r2.content_length ||
			r1.chunked != r2.chunked ||
			r1.keep_alive != r2.keep_alive))
		fail("response fields differ after a split", 0, 1);
	free(pre);
	free(full);
}

struct decoded {
	int ret;
	char *out;
	size_t out_len;
	char *rest;
	size_t rest_len;
};

/* Decode data[0..n) in pieces [0, split) and [split, n). */
static void chunked(const uint8_t *data, size_t n, size_t split,
		    uint64_t max_body, struct decoded *d)
{
	struct fut_http_chunked st;
	memset(&st, 0, sizeof(st));
	d->ret = 0;
	d->out = malloc(n + 1);
	d->rest = malloc(n + 1);
	d->out_len = d->rest_len = 0;
	size_t bounds[2] = { split, n }, pos = 0;
	for (int i = 0; i < 2; i++) {
		size_t k = bounds[i] - pos;
		char *b = copy(data + pos, k);
		size_t len = k, rest = 0;
		int r = fut_http_chunked_decode(&st, b, &len, &rest, max_body);
		if (len > k || (r == 1 && len + rest > k) ||
		    (r != 1 && rest != 0))
			fail("chunked lengths", (int)len, (int)k);
		memcpy(d->out + d->out_len, b, len);
		d->out_len += len;
		if (r == 1) {
			memcpy(d->rest, b + len, rest);
			memcpy(d->rest + rest, data + bounds[i], n - bounds[i]);
			d->rest_len = rest + n - bounds[i];
		}
		free(b);
		d->ret = r;
		if (r != 0) {
			if (r < 0) { /* errors stick */
				char z = '0';
				size_t one = 1, rest2;
				int again = fut_http_chunked_decode(&st, &z,
						&one, &rest2, max_body);
				if (again != r)
					fail("chunked error not sticky", again,
					     r);
			}
			break;
		}
		pos = bounds[i];
	}
	if (d->ret != 1 && d->rest_len)
		fail("chunked rest", (int)d->rest_len, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	uint8_t ctl = data[0];
	const uint8_t *msg = data + 1;
	size_t n = size - 1;
	size_t split = ctl % (n + 1);
	static const struct fut_http_limits small = {
		.max_request_line = 64,
		.max_header_bytes = 256,
		.max_headers = 8,
		.max_body = 1000,
	};

	request(msg, n, split, NULL);
	request(msg, n, split, &small);
	response(msg, n, split, NULL);
	response(msg, n, split, &small);

	uint64_t max_body = (ctl & 0x80) ? 0 : (uint64_t)(ctl & 0x3f);
	struct decoded whole, two;
	chunked(msg, n, n, max_body, &whole);
	chunked(msg, n, split, max_body, &two);
	if (whole.ret != two.ret || whole.out_len != two.out_len ||
	    memcmp(whole.out, two.out, whole.out_len) != 0 ||
	    whole.rest_len != two.rest_len ||
	    memcmp(whole.rest, two.rest, whole.rest_len) != 0)
		fail("chunked: split result differs from whole", two.ret,
		     whole.ret);
	free(whole.out);
	free(whole.rest);
	free(two.out);
	free(two.rest);
	return 0;
}
