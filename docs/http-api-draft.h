/*
 * DRAFT (not built, not installed): the parser API planned for libfuture-http
 * (issue 5). Move back to include/future/http.h with its implementation,
 * tests and man pages.
 *
 * libfuture-http — HTTP/1.1 parser, server and client on the public
 * libfuture API. Link with -lfuture-http -lfuture.
 *
 * Conventions are libfuture's (see libfuture(7)): negative error codes,
 * zeroed option structs mean defaults, futures hand over one reference.
 */
#ifndef FUTURE_HTTP_H
#define FUTURE_HTTP_H

#include <future.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(FUT_HTTP_BUILDING) && defined(__GNUC__)
#define FUT_HTTP_EXPORT __attribute__((visibility("default")))
#else
#define FUT_HTTP_EXPORT
#endif

/* HTTP error codes (FUT_HTTP_E*) are declared in <future.h> so that
 * fut_strerror() names them; fut_http_status_of() maps them to statuses. */

/* A header: (pointer, length) views into the caller's buffer. */
struct fut_http_header {
	const char *name;
	size_t name_len;
	const char *value; /* leading and trailing whitespace removed */
	size_t value_len;
};

/* Parser limits. A zeroed struct means the documented defaults. */
struct fut_http_limits {
	size_t max_request_line; /* bytes; 0: 8192 */
	size_t max_header_bytes; /* whole header section; 0: 65536 */
	size_t max_headers;      /* count; 0: 100 */
	uint64_t max_body;       /* bytes; 0: 1 MiB */
	uint64_t reserved[4];    /* must be zero */
};

/* A parsed request head: views into the parsed buffer. */
struct fut_http_request_head {
	const char *method;
	size_t method_len;
	const char *target; /* request-target as sent */
	size_t target_len;
	const char *path;   /* target up to '?' */
	size_t path_len;
	const char *query;  /* after '?', or NULL */
	size_t query_len;
	int minor_version;  /* 1 for HTTP/1.1, 0 for HTTP/1.0 */
	struct fut_http_header *headers; /* the caller's array */
	size_t num_headers;
	int64_t content_length; /* -1 when absent */
	int chunked;          /* Transfer-Encoding ends in chunked */
	int keep_alive;       /* connection persists after this exchange */
	int expect_continue;  /* Expect: 100-continue */
	uint64_t reserved[4];
};

/* A parsed response head (client side). */
struct fut_http_response_head {
	int status;
	int minor_version;
	const char *reason;
	size_t reason_len;
	struct fut_http_header *headers;
	size_t num_headers;
	int64_t content_length; /* -1 when absent */
	int chunked;
	int keep_alive;
	uint64_t reserved[4];
};

/*
 * Parse a request head from buf[0..len). headers/max_headers is the
 * caller's array. last_len is how many bytes a previous call already saw
 * (0 the first time) so a slow client costs no rescanning.
 * Returns the head's length in bytes (> 0), FUT_HTTP_EINCOMPLETE, or a
 * FUT_HTTP_E* error. Never reads outside buf[0..len). See
 * fut_http_parse_request(3).
 */
FUT_HTTP_EXPORT int fut_http_parse_request(const char *buf, size_t len,
		size_t last_len, struct fut_http_request_head *req,
		struct fut_http_header *headers, size_t max_headers,
		const struct fut_http_limits *limits);

FUT_HTTP_EXPORT int fut_http_parse_response(const char *buf, size_t len,
		size_t last_len, struct fut_http_response_head *resp,
		struct fut_http_header *headers, size_t max_headers,
		const struct fut_http_limits *limits);

/* Incremental, in-place chunked body decoder. Zero it before the first
 * call. */
struct fut_http_chunked {
	uint64_t remaining; /* bytes left in the current chunk */
	int state;
	uint64_t total;     /* decoded bytes so far */
	uint64_t reserved[2];
};

/*
 * Decode the chunked bytes in buf[0..*len) in place: on return
 * buf[0..*len) holds the decoded data. Returns 1 when the last chunk and
 * trailers have been consumed (*rest set to the number of bytes after the
 * body, which stay at buf + *len), 0 when more input is needed, or a
 * FUT_HTTP_E* error (bad chunk size, overflow, body over max_body).
 */
FUT_HTTP_EXPORT int fut_http_chunked_decode(struct fut_http_chunked *st,
		char *buf, size_t *len, size_t *rest, uint64_t max_body);

/* The status code a server answers a parse error with (400, 413, ...),
 * or 0 if err is not an HTTP parse error. */
FUT_HTTP_EXPORT int fut_http_status_of(int err);
/* The standard reason phrase of a status code ("Not Found"). */
FUT_HTTP_EXPORT const char *fut_http_reason(int status);

#ifdef __cplusplus
}
#endif
#endif /* FUTURE_HTTP_H */
