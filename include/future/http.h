/*
 * libfuture-http — HTTP/1.1 parser, server and client on the public
 * libfuture API. Link with -lfuture-http -lfuture (pkg-config
 * libfuture-http).
 *
 * Conventions are libfuture's (see libfuture(7)): negative error codes,
 * zeroed option structs mean the documented defaults, a function returning
 * a future hands the caller one reference. Everything here runs on the
 * loop's thread.
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
	const char *path;   /* target up to '?' ("/" if absolute-form has none) */
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
	int state;          /* private; negative after an error */
	uint32_t aux;       /* private */
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

/* ---- server ---- */

typedef struct fut_http_server fut_http_server;
/* One request and its response: valid from the handler call until the
 * response is complete (fut_http_respond, or fut_http_stream_end). */
typedef struct fut_http_req fut_http_req;

typedef void (*fut_http_handler)(fut_http_req *req, void *arg);

struct fut_http_server_opts {
	const char *host;        /* address to bind; NULL: every IPv6 and IPv4 one */
	int port;                /* 0: any free port, see fut_http_server_port */
	fut_http_handler handler; /* required */
	void *arg;
	int coroutine;           /* nonzero: each handler runs in a coroutine */
	int reuseport;           /* SO_REUSEPORT, one server per loop and thread */
	int backlog;             /* listen(2) backlog; 0: 511 */
	unsigned max_connections;   /* 0: 10000; beyond, accepting pauses */
	unsigned header_timeout_ms; /* request head; 0: 10000 -> 408 */
	unsigned body_timeout_ms;   /* each 256 KiB of a request body;
				       0: 30000 -> 408 */
	unsigned idle_timeout_ms;   /* keep-alive between requests; 0: 60000 */
	unsigned write_timeout_ms;  /* the client takes nothing; 0: 30000 */
	size_t stream_high_water;   /* streamed response bytes queued before
				       a write future waits; 0: 65536 */
	struct fut_http_limits limits;
	int defer_accept_s;      /* hand a new connection over when its first
				    bytes arrive, or after about this many
				    seconds (TCP_DEFER_ACCEPT); 0: 1, -1: off */
	uint32_t linger_ms;      /* lingering close after an error response:
				    input discarded this long; 0: 5000 */
	uint32_t linger_bytes;   /* ... or until this much; 0: 1 GiB */
	uint32_t reserved32;     /* must be zero */
	/* Called with a request's head when it says Expect: 100-continue,
	 * before the body is read; answering refuses the body (the
	 * connection then closes), returning without an answer lets it
	 * come. NULL: every body is let come. */
	fut_http_handler expect; /* in what was reserved[0]: same layout */
	uint64_t reserved[1];    /* must be zero */
};

FUT_HTTP_EXPORT int fut_http_server_new(fut_loop *loop,
		const struct fut_http_server_opts *opts,
		fut_http_server **out);
FUT_HTTP_EXPORT int fut_http_server_port(const fut_http_server *srv);
/* Stop accepting, close idle connections, let requests in progress finish;
 * after deadline_ms close whatever is left. The future resolves (0) when
 * every connection is gone. */
FUT_HTTP_EXPORT fut *fut_http_server_shutdown(fut_http_server *srv,
		unsigned deadline_ms);
/* Close everything now and free the server (no handler runs after). */
FUT_HTTP_EXPORT void fut_http_server_free(fut_http_server *srv);

FUT_HTTP_EXPORT const struct fut_http_request_head *
fut_http_req_head(const fut_http_req *req);
/* The value of the first header called name (case-insensitive), or NULL. */
FUT_HTTP_EXPORT const char *fut_http_req_header(const fut_http_req *req,
		const char *name, size_t *len);
FUT_HTTP_EXPORT const void *fut_http_req_body(const fut_http_req *req,
		size_t *len);
FUT_HTTP_EXPORT fut_loop *fut_http_req_loop(const fut_http_req *req);

/* Add a response header (before fut_http_respond/fut_http_stream_begin). */
FUT_HTTP_EXPORT int fut_http_resp_header(fut_http_req *req, const char *name,
		const char *value);
/* Send the whole response: status, headers, Content-Length, body. */
FUT_HTTP_EXPORT int fut_http_respond(fut_http_req *req, int status,
		const void *body, size_t len);
/* Streamed response (chunked for HTTP/1.1, until close for 1.0). */
FUT_HTTP_EXPORT int fut_http_stream_begin(fut_http_req *req, int status);
FUT_HTTP_EXPORT fut *fut_http_stream_write(fut_http_req *req,
		const void *buf, size_t len);
FUT_HTTP_EXPORT int fut_http_stream_end(fut_http_req *req);

/* ---- client ---- */

struct fut_http_fetch_opts {
	const char *method;        /* NULL: GET, or POST when body is not NULL */
	const char *const *headers; /* NULL-terminated "Name: value" lines */
	const void *body;
	size_t body_len;
	unsigned connect_timeout_ms; /* 0: 10000 */
	unsigned queue_timeout_ms;   /* wait for a pooled connection; 0: 30000 */
	unsigned request_timeout_ms; /* request sent to response read; 0: 60000 */
	unsigned max_per_host;       /* connections per host:port; 0: 32 */
	uint64_t max_body;           /* response body; 0: 64 MiB */
	uint32_t max_header_bytes;   /* response head; 0: 65536 */
	uint32_t max_headers;        /* response header fields; 0: 100 */
	uint32_t idle_timeout_ms;    /* pooled connection kept idle; 0: 4000 */
	uint32_t max_redirects;      /* 3xx followed; 0: none, the 3xx is
					the result */
	uint64_t reserved[2];        /* must be zero */
};

struct fut_http_response {
	int status;
	int minor_version;
	const char *reason;
	size_t reason_len;
	struct fut_http_header *headers;
	size_t num_headers;
	char *body;                  /* NUL-terminated for convenience */
	size_t body_len;
	const char *url;             /* fetched: after redirects, the last */
	unsigned redirects;          /* how many were followed */
};

/* Fetch an http:// URL. The future resolves with a struct
 * fut_http_response (fut_http_response_of) or rejects with an error. */
FUT_HTTP_EXPORT fut *fut_http_fetch(fut_loop *loop, const char *url,
		const struct fut_http_fetch_opts *opts);
FUT_HTTP_EXPORT const struct fut_http_response *
fut_http_response_of(fut *f);
FUT_HTTP_EXPORT const char *fut_http_response_header(
		const struct fut_http_response *resp, const char *name,
		size_t *len);

/* Look up name in a query string ("a=1&b=2"); no percent-decoding.
 * Returns 1 and sets *val and *len when found, else 0. */
FUT_HTTP_EXPORT int fut_http_query_param(const char *query, size_t query_len,
		const char *name, const char **val, size_t *len);

/* The status code a server answers a parse error with (400, 413, ...),
 * or 0 if err is not an HTTP parse error. */
FUT_HTTP_EXPORT int fut_http_status_of(int err);
/* The standard reason phrase of a status code ("Not Found"). */
FUT_HTTP_EXPORT const char *fut_http_reason(int status);

#ifdef __cplusplus
}
#endif
#endif /* FUTURE_HTTP_H */
