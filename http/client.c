/*
 * The HTTP/1.1 client: fut_http_fetch, on the public libfuture API.
 *
 * Connections are pooled per loop and per host:port, at most max_per_host
 * of them; requests beyond wait in a FIFO (Tornado's max_clients). The
 * three timeouts are separate phases of a request, each its own timer:
 * waiting for a pooled connection (queue), resolving and connecting
 * (connect), and sending the request through reading the last body byte
 * (request); time spent in one never counts against another.
 *
 * An idle pooled connection keeps a recv pending (wrapped in a timeout) so
 * that a server closing it is noticed and the fd released; taking it for
 * a request cancels that recv first. A reused connection that dies before
 * any response byte arrives (the server closed it while we were sending)
 * is retried once on a new connection, for idempotent methods only: the
 * server may have acted on a POST before closing (RFC 9112 9.3.1).
 *
 * Names resolve with getaddrinfo on the loop's thread pool (it blocks);
 * numeric addresses skip it.
 */
#include "http-internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <search.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEF_CONNECT_TIMEOUT 10000
#define DEF_QUEUE_TIMEOUT 30000
#define DEF_REQUEST_TIMEOUT 60000
#define DEF_MAX_PER_HOST 32
#define DEF_MAX_BODY (64u << 20)
#define DEF_IDLE_MS 4000
#define DEF_MAX_HEADERS 100
#define DEF_MAX_HEADER_BYTES 65536
/* Each hop's request is held until the result ends (its cancel callback
 * is on the result future): a bound, where a redirect loop went on for
 * as long as the server answered (20000 hops: 125 MB). */
#define MAX_REDIRECTS 100
#define MAX_MAX_HEADERS 10000 /* bounds the per-request array */
#define ALONGSIDE_MIN 16384  /* a request larger is read while it is sent */

struct client;
struct pool;
struct request;

enum cstate { C_CONNECTING, C_BUSY, C_IDLE, C_WATCH_CANCEL };

struct conn {
	struct conn *next, *prev; /* pool->idle */
	struct pool *pool;
	int fd;
	enum cstate state;
	int reused;
	fut *watch;           /* idle: recv wrapped in a timeout */
	struct request *req;
	char *buf;
	size_t len, cap;
	char byte;            /* the idle watcher's buffer */
	unsigned idle_ms;     /* how long it may stay idle in the pool */
	uint64_t idle_at;     /* loop ms it went idle */
	struct addrs *addrs;  /* connecting: resolved addresses, next to try */
	bool resolving;       /* its name lookup is running */
	bool slot_freed;      /* ... for a request that ended: not counted */
};

struct pool {
	struct pool *next;
	struct client *cl;
	char *key;            /* "host:port" */
	unsigned nconns;      /* connecting + busy + idle */
	unsigned lookups;     /* name lookups of ended requests, still on the
				 pool: not counted above, but the pool must
				 outlive them */
	struct conn *idle;
	struct request *wq_head, *wq_last; /* waiting for a connection */
	unsigned cap_max;     /* no queued request has a larger max_per_host:
				 at nconns >= cap_max none can start, and
				 the queue is not walked (it was, per fetch
				 and per response: 10,000 queued took 3.5 s) */
	unsigned serving;     /* pool_next runs: a connect that fails at once
				 must not free the pool under its loop */
};

struct client {
	struct client *next;
	fut_loop *loop;
	struct pool *pools;
};

enum rphase { R_QUEUED, R_CONNECT, R_REQUEST, R_DONE };

struct request {
	struct request *wq_next, *wq_prev;
	int refs;             /* the request itself + pending callbacks */
	fut_loop *loop;
	fut *result;
	struct pool *pool;
	struct conn *conn;
	enum rphase phase;
	fut *timer;
	fut *io;
	fut *sio;             /* a send still running while io reads */
	/* A response complete before its request was all sent, waiting
	 * for the send (req_finish's arguments; body as an offset in the
	 * connection's buffer, SIZE_MAX for none). */
	bool fin_pending;
	bool fin_reusable;
	size_t fin_off, fin_len;
	char *host;
	char port[8];
	int head_req;
	int retried;
	int idempotent; /* may be retried on a new connection */
	int close_req;  /* the caller sent Connection: close: never reused
			   (RFC 9112 9.6) */
	int send_err;   /* the send failed; a response may still be there */
	struct fut_http_fetch_opts o;
	char *out;            /* the whole request */
	size_t out_len;
	/* response */
	int head_len;         /* > 0 once the head is parsed */
	size_t head_seen;     /* bytes of a partial head the parser saw */
	struct fut_http_response_head rh;
	size_t body_start, dec_end;
	struct fut_http_chunked ch;
	int until_close;
	int answered;         /* a 1xx came: the server has answered */
	uint64_t deadline;    /* loop ms the request times out at, from its
				 first send; a retry does not restart it */
	char *url;            /* as fetched: the response's url */
	struct follow *fw;    /* redirects to follow, or NULL */
	struct fut_http_header *hv; /* o.max_headers of them, made when
				       the response starts: a queued request
				       is small (3.2 KiB less by default) */
};

/*
 * What following a redirect needs of the caller's request, copied at the
 * call (its pointers need not outlive it). Handed from each hop's request
 * to the next; only with max_redirects.
 */
struct follow {
	uint32_t left;
	char *method;  /* NULL: the default (GET, or POST with a body) */
	char **headers; /* NULL-terminated */
	char *body;
	size_t body_len;
};

static __thread struct client *clients;

static void req_unref(struct request *r);
static void req_fail(struct request *r, int err);
static void conn_use(struct conn *c, struct request *r);
static void pool_next(struct pool *p);
static void start_connect(struct pool *p, struct request *r);
static void conn_idle(struct conn *c);
static void connect_to(struct request *r, struct conn *c,
		       const struct sockaddr *sa, socklen_t sl);

/* ---- registry ---- */

static struct pool *pool_get(fut_loop *loop, const char *key)
{
	struct client *cl;
	for (cl = clients; cl && cl->loop != loop; cl = cl->next)
		;
	if (!cl) {
		cl = calloc(1, sizeof(*cl));
		if (!cl)
			return NULL;
		cl->loop = loop;
		cl->next = clients;
		clients = cl;
	}
	struct pool *p;
	for (p = cl->pools; p && strcmp(p->key, key) != 0; p = p->next)
		;
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p || !(p->key = strdup(key))) {
			free(p);
			return NULL;
		}
		p->cl = cl;
		p->next = cl->pools;
		cl->pools = p;
	}
	return p;
}

/* Free a pool that has nothing left, and its client when it was the
 * last: nothing outlives the loop's last connection. */
static void pool_maybe_free(struct pool *p)
{
	if (p->nconns || p->wq_head || p->lookups || p->serving)
		return;
	struct client *cl = p->cl;
	struct pool **pp = &cl->pools;
	while (*pp != p)
		pp = &(*pp)->next;
	*pp = p->next;
	free(p->key);
	free(p);
	if (cl->pools)
		return;
	struct client **cp = &clients;
	while (*cp != cl)
		cp = &(*cp)->next;
	*cp = cl->next;
	free(cl);
}

/* ---- connections ---- */

static void idle_unlink(struct conn *c)
{
	struct pool *p = c->pool;
	if (c->prev)
		c->prev->next = c->next;
	else
		p->idle = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

static void conn_destroy(struct conn *c)
{
	struct pool *p = c->pool;
	if (c->fd >= 0)
		fut_unref(fut_close(p->cl->loop, c->fd));
	free(c->addrs);
	free(c->buf);
	if (c->slot_freed)
		p->lookups--;
	else
		p->nconns--;
	free(c);
	pool_next(p);
	pool_maybe_free(p);
}

/*
 * The clock of the request deadline and the idle connections' ages, read
 * afresh: fut_loop_now(3) is the time of the loop's last tick, and a
 * fetch started from outside the loop, after the program did other work,
 * counted that work against its request timeout (a retry on a new
 * connection timed out at once) and took an idle connection for younger
 * than it was.
 */
static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*
 * Whether an idle connection whose watcher was cancelled can take a
 * request: not past its idle time, and nothing (the server's close, or
 * bytes it should not have sent) waiting in the socket. The watcher sees
 * both only while the loop runs; a program that let the loop rest would
 * otherwise send on a connection known to be closed, and a POST, which is
 * not retried, would fail (RFC 9112 9.3.1).
 */
static int still_open(struct conn *c)
{
	if (now_ms() - c->idle_at >= c->idle_ms)
		return 0;
	char b;
	return recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
	       (errno == EAGAIN || errno == EWOULDBLOCK);
}

static void on_watch(fut *f, void *arg)
{
	struct conn *c = arg;
	int err = fut_error(f);
	c->watch = NULL;
	if (c->state == C_WATCH_CANCEL && err == -ECANCELED && still_open(c)) {
		struct request *r = c->req;
		c->req = NULL;
		if (r->phase == R_DONE) /* it timed out meanwhile */
			conn_idle(c);
		else
			conn_use(c, r);
		req_unref(r);
		return;
	}
	/* Closed by the server, unexpected bytes, idle too long, or the
	 * loop is going away. */
	if (c->state == C_WATCH_CANCEL) {
		struct request *r = c->req;
		c->req = NULL;
		c->state = C_BUSY;
		/* Not this request's fault: get it another connection. It
		 * was not sent, so its request timeout starts afresh. */
		if (r->phase != R_DONE) {
			r->deadline = 0;
			start_connect(r->pool, r);
		}
		conn_destroy(c);
		req_unref(r);
		return;
	}
	idle_unlink(c);
	conn_destroy(c);
}

static void conn_idle(struct conn *c)
{
	struct pool *p = c->pool;
	c->state = C_IDLE;
	c->req = NULL;
	c->len = 0;
	c->reused = 1;
	c->idle_at = now_ms();
	if (c->cap > 65536) { /* an idle connection keeps no large buffer */
		free(c->buf);
		c->buf = NULL;
		c->cap = 0;
	}
	c->next = p->idle;
	c->prev = NULL;
	if (p->idle)
		p->idle->prev = c;
	p->idle = c;
	fut *w = fut_timeout(fut_recv(p->cl->loop, c->fd, &c->byte, 1, 0),
			     c->idle_ms);
	if (!w) {
		idle_unlink(c);
		conn_destroy(c);
		return;
	}
	/* As Node's agent unrefs a free socket: an idle connection waits for
	 * the next request, it is not work fut_loop_run should wait for (a
	 * program's run went on 4 s after its last response). */
	fut_background(w);
	c->watch = w;
	fut_on_done(w, on_watch, c);
	pool_next(p);
}

/* ---- requests ---- */

static void follow_free(struct follow *fw)
{
	if (!fw)
		return;
	for (char **h = fw->headers; h && *h; h++)
		free(*h);
	free(fw->headers);
	free(fw->method);
	free(fw->body);
	free(fw);
}

static void req_unref(struct request *r)
{
	if (--r->refs)
		return;
	follow_free(r->fw);
	free(r->hv);
	free(r->url);
	free(r->host);
	free(r->out);
	fut_unref(r->result);
	free(r);
}

static void phase_timer_stop(struct request *r)
{
	if (r->timer) {
		fut_cancel(r->timer);
		r->timer = NULL;
	}
}

static void on_timer(fut *f, void *arg);

static void phase_timer(struct request *r, enum rphase ph, unsigned ms)
{
	phase_timer_stop(r);
	r->phase = ph;
	fut *t = fut_sleep(r->loop, ms);
	if (!t)
		return;
	r->timer = t;
	r->refs++;
	fut_on_done(t, on_timer, r);
}

/* ms left of the request timeout once it has started, else UINT_MAX. */
static unsigned request_left(struct request *r)
{
	if (!r->deadline)
		return UINT_MAX;
	uint64_t now = now_ms();
	return now >= r->deadline ? 0 : (unsigned)(r->deadline - now);
}

/* The request timeout runs from the first send to the end of the
 * response, across a retry on a new connection. */
static void request_timer(struct request *r)
{
	if (!r->deadline)
		r->deadline = now_ms() + r->o.request_timeout_ms;
	phase_timer(r, R_REQUEST, request_left(r));
}

static void wq_append(struct pool *p, struct request *r)
{
	r->wq_next = NULL;
	r->wq_prev = p->wq_last;
	if (p->wq_last)
		p->wq_last->wq_next = r;
	else
		p->wq_head = r;
	p->wq_last = r;
	if (r->o.max_per_host > p->cap_max)
		p->cap_max = r->o.max_per_host;
}

/* O(1): a queue of thousands loses its timed-out ones one by one. */
static void wq_remove(struct pool *p, struct request *r)
{
	if (!r->wq_prev && p->wq_head != r)
		return; /* not queued */
	if (r->wq_prev)
		r->wq_prev->wq_next = r->wq_next;
	else
		p->wq_head = r->wq_next;
	if (r->wq_next)
		r->wq_next->wq_prev = r->wq_prev;
	else
		p->wq_last = r->wq_prev;
	r->wq_next = r->wq_prev = NULL;
}

/*
 * Stop a send that runs alongside the read. Its callback then only lets
 * go of the request (whose out buffer it sends from), so the connection
 * may go at once: a send holds nothing of it.
 */
static void send_detach(struct request *r)
{
	if (r->sio) {
		fut_cancel(r->sio);
		r->sio = NULL;
	}
}

/* The request lets go of its connection and closes it. */
static void drop_conn(struct request *r)
{
	send_detach(r);
	struct conn *c = r->conn;
	r->conn = NULL;
	if (c) {
		c->req = NULL;
		conn_destroy(c);
	}
}

/* A reused connection died before any response byte: once more on a
 * new one (taken before the old one's slot is given back). */
static void retry_fresh(struct request *r)
{
	struct conn *c = r->conn;
	send_detach(r);
	r->retried = 1;
	r->conn = NULL;
	start_connect(r->pool, r);
	c->req = NULL;
	conn_destroy(c);
}

/* Connecting failed (or the request ended meanwhile): close the half-made
 * connection and fail the request if it still runs. */
static void connect_failed(struct request *r, int err)
{
	drop_conn(r);
	if (r->phase != R_DONE)
		req_fail(r, err);
}

/* End the request with err; its connection (if any) is closed, since the
 * exchange on it is in an unknown state. */
static void req_fail(struct request *r, int err)
{
	if (r->phase == R_DONE)
		return;
	enum rphase was = r->phase;
	struct pool *p = r->pool;
	r->phase = R_DONE;
	phase_timer_stop(r);
	send_detach(r);
	if (was == R_QUEUED)
		wq_remove(p, r);
	fut_reject(r->result, err);
	struct conn *c = r->conn;
	bool freed = false;
	if (r->io && c && c->resolving && !c->slot_freed) {
		/* getaddrinfo cannot be interrupted: the lookup runs on, but
		 * its connection slot goes to whoever waits for one now. */
		c->slot_freed = freed = true;
		p->nconns--;
		p->lookups++;
	}
	if (r->io)
		fut_cancel(r->io); /* its callback closes the connection */
	else
		drop_conn(r);
	req_unref(r);
	if (was == R_QUEUED || freed) {
		pool_next(p); /* those behind it may go now */
		pool_maybe_free(p);
	}
}

static void req_finish(struct request *r, const char *body, size_t blen,
		       int reusable);

/* A response that waited for its request's send (req_finish) ends now:
 * the send is done, failed, or out of time. Not reused unless the send
 * completed. */
static void fin_now(struct request *r)
{
	if (!r->fin_pending || r->phase == R_DONE)
		return;
	struct conn *c = r->conn;
	r->fin_pending = false;
	bool reusable = r->fin_reusable && !r->sio && !r->send_err;
	send_detach(r);
	req_finish(r, r->fin_off == SIZE_MAX ? NULL : c->buf + r->fin_off,
		   r->fin_len, reusable);
}

static void on_timer(fut *f, void *arg)
{
	struct request *r = arg;
	bool fired = !fut_error(f) && r->timer == f;
	/* The whole response is in: the timeout cuts the send short, not
	 * the exchange. */
	if (fired && r->fin_pending)
		fin_now(r);
	else if (fired)
		req_fail(r, r->phase == R_QUEUED ? FUT_HTTP_ETIMEOUT_QUEUE :
			    r->phase == R_CONNECT && request_left(r) ?
			    FUT_HTTP_ETIMEOUT_CONNECT :
			    /* A send that failed and a server that then said
			     * nothing: the send's error says more. */
			    r->send_err && !r->head_len ? r->send_err :
			    FUT_HTTP_ETIMEOUT_REQUEST);
	req_unref(r);
}

/*
 * The responses fut_http_fetch made and that are still alive, so that
 * fut_http_response_of can tell one from any other pointer a future may
 * hold (reading a foreign pointer as a response would run off its end).
 * A tree from <search.h> under a lock: responses may be freed on any
 * loop's thread.
 */
static void *live;
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;

static int ptr_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
	return x < y ? -1 : x > y;
}

static int live_add(void *p)
{
	pthread_mutex_lock(&live_lock);
	void *r = tsearch(p, &live, ptr_cmp);
	pthread_mutex_unlock(&live_lock);
	return r ? 0 : -ENOMEM;
}

static int live_has(const void *p)
{
	pthread_mutex_lock(&live_lock);
	void *r = tfind(p, &live, ptr_cmp);
	pthread_mutex_unlock(&live_lock);
	return r != NULL;
}

static void resp_free(void *p)
{
	pthread_mutex_lock(&live_lock);
	tdelete(p, &live, ptr_cmp);
	pthread_mutex_unlock(&live_lock);
	free(p);
}

/* The exchange is over: its connection goes back to the pool, or is closed. */
static void conn_release(struct request *r, int reusable)
{
	struct conn *c = r->conn;
	r->conn = NULL;
	/* Answered before the request was all sent (a 413 to an upload):
	 * the rest cannot go out on this connection, nor another request. */
	if (r->sio)
		reusable = 0;
	send_detach(r);
	if (reusable && r->rh.keep_alive && !r->close_req && !r->send_err) {
		c->idle_ms = r->o.idle_timeout_ms; /* the last user's */
		conn_idle(c);
	}
	else
		conn_destroy(c);
}

static int follow(struct request *r, int reusable);

static bool redirect_status(int st)
{
	return st == 301 || st == 302 || st == 303 || st == 307 || st == 308;
}

/* A redirect status with hops left: follow() may take it. */
static bool may_follow(const struct request *r)
{
	return r->fw && r->fw->left && redirect_status(r->rh.status);
}

/* Resolve with one block: the struct, the headers, the head, the body. */
static void req_finish(struct request *r, const char *body, size_t blen,
		       int reusable)
{
	struct conn *c = r->conn;
	if (r->sio && r->rh.status < 400 && !may_follow(r)) {
		/* The server answered before it had the whole body, and
		 * not with an error: it may still read it (an upload acted on
		 * after an early 200, as nginx reads and drops a body after
		 * its response). The exchange ends when the body is out, not
		 * with the rest cut off. An error status says the body is not
		 * wanted: the send stops (RFC 9112 9.5); so does a redirect
		 * that will be followed (the body goes to the next hop). */
		r->fin_pending = true;
		r->fin_off = body ? (size_t)(body - c->buf) : SIZE_MAX;
		r->fin_len = blen;
		r->fin_reusable = reusable;
		return;
	}
	if (may_follow(r) && follow(r, reusable))
		return;
	size_t nh = r->rh.num_headers;
	size_t ul = strlen(r->url) + 1;
	size_t sz = sizeof(struct fut_http_response) +
		    nh * sizeof(struct fut_http_header) +
		    (size_t)r->head_len + blen + 1 + ul;
	struct fut_http_response *res = malloc(sz);
	if (!res) {
		req_fail(r, -ENOMEM);
		return;
	}
	struct fut_http_header *h = (struct fut_http_header *)(res + 1);
	char *head = (char *)(h + nh);
	char *b = head + r->head_len;
	memcpy(head, c->buf, (size_t)r->head_len);
	ptrdiff_t d = head - c->buf;
	for (size_t i = 0; i < nh; i++) {
		h[i] = r->rh.headers[i];
		h[i].name += d;
		h[i].value += d;
	}
	if (blen)
		memcpy(b, body, blen);
	b[blen] = '\0';
	res->url = memcpy(b + blen + 1, r->url, ul);
	res->redirects = r->fw ? r->o.max_redirects - r->fw->left : 0;
	res->status = r->rh.status;
	res->minor_version = r->rh.minor_version;
	res->reason = r->rh.reason + d;
	res->reason_len = r->rh.reason_len;
	res->headers = h;
	res->num_headers = nh;
	res->body = b;
	res->body_len = blen;
	if (live_add(res) < 0) { /* failed before R_DONE: req_fail ends it */
		free(res);
		req_fail(r, -ENOMEM);
		return;
	}
	r->phase = R_DONE;
	phase_timer_stop(r);
	if (fut_resolve_ptr(r->result, res, resp_free) < 0)
		resp_free(res); /* the caller cancelled the future meanwhile */
	conn_release(r, reusable);
	req_unref(r);
}

static void conn_read(struct request *r);

/*
 * A user agent must replace obs-fold (a field line continued on the next
 * line after whitespace) with SP before interpreting the field (RFC 9112
 * 5.2); the parser, strict for servers, refuses it. Once the whole head
 * is in buf, turn each line break that is followed by SP or HTAB into
 * spaces. The line after the status line is left alone: whitespace
 * there is invalid, not a fold (RFC 9112 2.2).
 */
static bool unfold(char *buf, size_t len)
{
	bool any = false;
	char *first = memchr(buf, '\n', len);
	if (!first)
		return false;
	size_t lf0 = (size_t)(first - buf), end = SIZE_MAX;
	for (size_t i = lf0; i < len && end == SIZE_MAX; i++)
		if (buf[i] == '\n' && i + 1 < len &&
		    (buf[i + 1] == '\n' ||
		     (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')))
			end = i; /* the last field line's LF */
	for (size_t i = lf0 + 1; i < end && end != SIZE_MAX; i++)
		if (buf[i] == '\n' && (buf[i + 1] == ' ' || buf[i + 1] == '\t')) {
			buf[i] = ' ';
			if (buf[i - 1] == '\r')
				buf[i - 1] = ' ';
			any = true;
		}
	return any;
}

/* Parse what is in the buffer. Returns 1 when done (finished or failed). */
static int resp_progress(struct request *r, int eof)
{
	struct conn *c = r->conn;
	if (!r->head_len) {
		if (!r->hv && !(r->hv = malloc(r->o.max_headers *
					       sizeof(*r->hv)))) {
			req_fail(r, -ENOMEM);
			return 1;
		}
		struct fut_http_limits lim = {
			.max_header_bytes = r->o.max_header_bytes,
			.max_headers = r->o.max_headers };
		/* 1xx heads before the final one (RFC 9110 15.2: any
		 * number) are skipped in a loop, and their bytes dropped
		 * once: a server sending thousands of them in one buffer
		 * recursed once per head (a stack overflow) and moved the
		 * buffer once per head. */
		size_t skip = 0;
		int n;
		for (;;) {
			char *p = c->buf + skip;
			size_t len = c->len - skip;
			/* From head_seen on: a head that trickles in is
			 * scanned once, not once per recv. */
			n = fut_http_parse_response(p, len, r->head_seen,
						    &r->rh, r->hv,
						    r->o.max_headers, &lim);
			/* Only a refused head is looked at for obs-fold: a
			 * rescan of every partial head would cost a
			 * trickling server's head squared. */
			if (n == FUT_HTTP_EBADRESP && unfold(p, len))
				n = fut_http_parse_response(p, len, 0, &r->rh,
							    r->hv,
							    r->o.max_headers,
							    &lim);
			if (n <= 0 || r->rh.status >= 200 ||
			    r->rh.status == 101)
				break;
			r->answered = 1; /* 1xx: another head follows */
			skip += (size_t)n;
			r->head_seen = 0;
		}
		if (skip) {
			memmove(c->buf, c->buf + skip, c->len - skip);
			c->len -= skip;
			/* The head's views pointed before the move. */
			if (n > 0)
				n = fut_http_parse_response(c->buf, c->len, 0,
							    &r->rh, r->hv,
							    r->o.max_headers,
							    &lim);
		}
		if (n == FUT_HTTP_EINCOMPLETE) {
			r->head_seen = c->len;
			if (eof) {
				req_fail(r, r->send_err ? r->send_err :
					 c->len || r->answered || !c->reused ?
					 FUT_HTTP_ECLOSED : -ECONNRESET);
				return 1;
			}
			return 0;
		}
		if (n < 0) {
			req_fail(r, n == FUT_HTTP_EHDRTOOBIG ? n :
				    FUT_HTTP_EBADRESP);
			return 1;
		}
		if (r->rh.status == 101) {
			/* The bytes after it are another protocol, never
			 * HTTP to parse (RFC 9110 15.2.2); the client does
			 * not switch, and did not ask to. */
			req_fail(r, FUT_HTTP_EBADRESP);
			return 1;
		}
		r->head_len = n;
		r->body_start = r->dec_end = (size_t)n;
		if (r->head_req || r->rh.status == 204 || r->rh.status == 304) {
			req_finish(r, NULL, 0, c->len == (size_t)n);
			return 1;
		}
		if (!r->rh.chunked && r->rh.content_length < 0) {
			r->until_close = 1;
			r->rh.keep_alive = 0;
		}
		if (r->rh.content_length >= 0 &&
		    (uint64_t)r->rh.content_length > r->o.max_body) {
			req_fail(r, FUT_HTTP_EBODYTOOBIG);
			return 1;
		}
	}
	size_t hl = (size_t)r->head_len;
	if (r->rh.chunked) {
		size_t n = c->len - r->dec_end, rest;
		int rc = fut__http_chunked_decode_response(
			&r->ch, c->buf + r->dec_end, &n, &rest, r->o.max_body);
		if (rc < 0) {
			req_fail(r, rc == FUT_HTTP_EBODYTOOBIG ||
					    rc == FUT_HTTP_EHDRTOOBIG ? rc :
				    FUT_HTTP_EBADRESP);
			return 1;
		}
		r->dec_end += n;
		c->len = r->dec_end + (rc == 1 ? rest : 0);
		if (rc == 1) {
			req_finish(r, c->buf + hl, r->dec_end - hl, rest == 0);
			return 1;
		}
	} else if (!r->until_close) {
		size_t need = hl + (size_t)r->rh.content_length;
		if (c->len >= need) {
			req_finish(r, c->buf + hl, need - hl, c->len == need);
			return 1;
		}
	} else if (eof) {
		req_finish(r, c->buf + hl, c->len - hl, 0);
		return 1;
	} else if (c->len - hl > r->o.max_body) {
		req_fail(r, FUT_HTTP_EBODYTOOBIG);
		return 1;
	}
	if (eof) {
		req_fail(r, FUT_HTTP_ECLOSED); /* cut short */
		return 1;
	}
	return 0;
}

static void on_recv(fut *f, void *arg)
{
	struct request *r = arg;
	int64_t n = fut_error(f) ? fut_error(f) : fut_value(f);
	r->io = NULL;
	struct conn *c = r->conn;
	if (r->phase == R_DONE) { /* failed meanwhile: drop the connection */
		drop_conn(r);
		req_unref(r);
		return;
	}
	if (n < 0 && !c->len && !r->answered && c->reused && !r->retried &&
	    r->idempotent &&
	    n != -ECANCELED) {
		/* A pooled connection the server had closed: once more on a
		 * new one. */
		retry_fresh(r);
		req_unref(r);
		return;
	}
	if (n < 0) {
		req_fail(r, r->send_err && !r->head_len ? r->send_err : (int)n);
		req_unref(r);
		return;
	}
	if (n == 0 && !c->len && !r->answered && c->reused && !r->retried &&
	    r->idempotent) {
		retry_fresh(r);
		req_unref(r);
		return;
	}
	c->len += (size_t)n;
	if (!resp_progress(r, n == 0))
		conn_read(r);
	req_unref(r);
}

static void conn_read(struct request *r)
{
	struct conn *c = r->conn;
	if (c->len == c->cap) {
		/* Saturating: max_body may be UINT64_MAX, "no limit". */
		uint64_t hb = (uint64_t)r->o.max_header_bytes + 65536;
		size_t limit = r->o.max_body > SIZE_MAX - hb ? SIZE_MAX :
			       (size_t)(r->o.max_body + hb);
		size_t cap = c->cap ? c->cap * 2 : 16384;
		/* Grown into as the body arrives, not allocated as declared:
		 * a server's Content-Length costs nothing until it sends. */
		if (r->head_len && r->rh.content_length >= 0) {
			size_t need = (size_t)r->head_len +
				      (size_t)r->rh.content_length;
			if (cap > need && need > c->len)
				cap = need;
		}
		if (c->cap >= limit) {
			req_fail(r, r->head_len ? FUT_HTTP_EBODYTOOBIG :
				    FUT_HTTP_EHDRTOOBIG);
			return;
		}
		char *p = realloc(c->buf, cap);
		if (!p) {
			req_fail(r, -ENOMEM);
			return;
		}
		/* Header views point into the buffer. */
		if (r->head_len && p != c->buf) {
			ptrdiff_t d = p - c->buf;
			for (size_t i = 0; i < r->rh.num_headers; i++) {
				r->hv[i].name += d;
				r->hv[i].value += d;
			}
			r->rh.reason += d;
		}
		c->buf = p;
		c->cap = cap;
	}
	fut *f = fut_recv(r->loop, c->fd, c->buf + c->len, c->cap - c->len, 0);
	if (!f) {
		req_fail(r, -ENOMEM);
		return;
	}
	r->io = f;
	r->refs++;
	fut_on_done(f, on_recv, r);
}

static void on_sent(fut *f, void *arg)
{
	struct request *r = arg;
	int err = fut_error(f);
	r->io = NULL;
	struct conn *c = r->conn;
	if (r->phase == R_DONE) {
		drop_conn(r);
	} else if (err && c->reused && !r->retried && r->idempotent &&
		   err != -ECANCELED) {
		retry_fresh(r);
	} else if (err == -EPIPE || err == -ECONNRESET) {
		/* A server may answer before it has read the whole body (413
		 * on an upload) and close, which fails the rest of the send.
		 * Its response is still in the socket: read it (RFC 9112 9.5:
		 * a client watches for an error response while it sends). */
		r->send_err = err;
		conn_read(r);
	} else if (err) {
		req_fail(r, err);
	} else {
		conn_read(r);
	}
	req_unref(r);
}

/* The send of a request whose response is read meanwhile. */
static void on_sent_alongside(fut *f, void *arg)
{
	struct request *r = arg;
	if (f == r->sio) {
		int err = fut_error(f);
		r->sio = NULL;
		/* A failed send is the read's to report (and a reused
		 * connection's to retry, in on_recv): the socket's error
		 * ends the read too, and a response may be in the socket
		 * before it. Only then may the connection go. */
		if (err)
			r->send_err = err; /* and not reused */
		fin_now(r);
	}
	req_unref(r);
}

/*
 * The request owns c from here: send, and read the response. A send that
 * cannot complete at once (a body larger than the socket's buffers) runs
 * alongside the read: a server that answers before it reads the whole
 * body, or echoes as it reads, fills our receive buffer while we fill
 * its, and each then waited for the other until the request timed out
 * (RFC 9112 9.5: a client watches for a response while it sends; curl
 * does).
 */
static void conn_use(struct conn *c, struct request *r)
{
	c->state = C_BUSY;
	c->req = r;
	c->len = 0;
	r->conn = c;
	r->head_len = 0;
	r->head_seen = 0;
	memset(&r->ch, 0, sizeof(r->ch));
	r->until_close = 0;
	r->answered = 0;
	r->send_err = 0;
	r->fin_pending = false;
	if (r->phase != R_REQUEST)
		request_timer(r);
	fut *f = fut_send(r->loop, c->fd, r->out, r->out_len, MSG_NOSIGNAL);
	if (!f) {
		req_fail(r, -ENOMEM);
		return;
	}
	r->refs++;
	/* Small requests go whole into the socket buffers, so the read
	 * waits for the send as before: alongside, io_uring clients made
	 * 6% fewer requests a second (the recv armed before the response
	 * could be there). */
	if (fut_state(f) == FUT_PENDING && r->out_len > ALONGSIDE_MIN) {
		r->sio = f;
		fut_on_done(f, on_sent_alongside, r);
		conn_read(r);
		return;
	}
	r->io = f;
	fut_on_done(f, on_sent, r);
}

/*
 * A connection is free or can be opened: serve the queue. An idle
 * connection goes to the first waiter; a new one to the first waiter
 * still under its own max_per_host, so one whose cap is reached holds up
 * nobody with a larger cap behind it. Each round takes one request off
 * the queue (rescanning from the head, since starting one can change the
 * queue), so this ends. Not nested: a connect that fails at once
 * (socket() out of fds) ends in conn_destroy, which calls here again,
 * once per queued request. The pool outlives the call even when every
 * request in it fails: the caller frees it with pool_maybe_free.
 */
static void pool_next(struct pool *p)
{
	if (p->serving)
		return; /* the running call rescans from the head */
	p->serving++;
	for (;;) {
		struct request *r = p->wq_head;
		if (!r)
			break;
		if (p->idle) {
			wq_remove(p, r);
			struct conn *c = p->idle;
			idle_unlink(c);
			c->state = C_WATCH_CANCEL;
			c->req = r;
			r->refs++;
			request_timer(r);
			fut_cancel(c->watch);
			continue;
		}
		if (p->nconns >= p->cap_max)
			break;
		unsigned cap = 0;
		while (r && p->nconns >= r->o.max_per_host) {
			if (r->o.max_per_host > cap)
				cap = r->o.max_per_host;
			r = r->wq_next;
		}
		if (!r) {
			p->cap_max = cap; /* the largest still queued */
			break;
		}
		wq_remove(p, r);
		start_connect(p, r);
	}
	p->serving--;
}

/* ---- connecting ---- */

#define MAX_ADDRS 8 /* resolved addresses tried in turn, as curl and Python do */

struct addrs {
	struct sockaddr_storage ss[MAX_ADDRS];
	socklen_t len[MAX_ADDRS];
	int n, next;
};

struct resolve {
	char *host;
	char port[8];
	struct addrs *out;
};

/* getaddrinfo's failures are not errno values: a name that does not
 * resolve gets its own code, not a misleading "no route to host". Out of
 * descriptors, glibc says EAI_NONAME with errno EMFILE: that is no
 * answer about the name (the caller clears errno before the call). */
int fut__http_gai_error(int gai)
{
	if (gai != EAI_MEMORY && (errno == EMFILE || errno == ENFILE))
		return -errno;
	switch (gai) {
	case EAI_SYSTEM:
		return errno ? -errno : -EIO;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_AGAIN:
		return FUT_HTTP_ERESOLVE_AGAIN;
	default: /* EAI_NONAME, EAI_NODATA, EAI_FAIL, EAI_ADDRFAMILY... */
		return FUT_HTTP_ERESOLVE;
	}
}

static int64_t resolve_job(void *arg)
{
	struct resolve *rs = arg;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG };
	struct addrinfo *ai;
	errno = 0;
	int e = getaddrinfo(rs->host, rs->port, &hints, &ai);
	if (e)
		return fut__http_gai_error(e);
	struct addrs *a = rs->out;
	for (struct addrinfo *i = ai; i && a->n < MAX_ADDRS; i = i->ai_next) {
		if (i->ai_addrlen > sizeof(a->ss[0]))
			continue;
		memcpy(&a->ss[a->n], i->ai_addr, i->ai_addrlen);
		a->len[a->n++] = i->ai_addrlen;
	}
	freeaddrinfo(ai);
	return a->n ? 0 : FUT_HTTP_ERESOLVE;
}

static void connect_to(struct request *r, struct conn *c,
		       const struct sockaddr *sa, socklen_t sl);

/* Errors after which the next address of the name may still work. */
static int try_next(int err)
{
	return err == -ECONNREFUSED || err == -ENETUNREACH ||
	       err == -EHOSTUNREACH || err == -EADDRNOTAVAIL ||
	       err == -EAFNOSUPPORT || err == -ETIMEDOUT ||
	       err == -ECONNRESET;
}

static void on_connected(fut *f, void *arg)
{
	struct conn *c = arg;
	struct request *r = c->req;
	int err = fut_error(f);
	r->io = NULL;
	if (r->phase != R_DONE && c->addrs && try_next(err) &&
	    c->addrs->next < c->addrs->n) {
		/* The connect timer keeps running: it bounds all the tries. */
		fut_unref(fut_close(r->loop, c->fd));
		struct addrs *a = c->addrs;
		int i = a->next++;
		connect_to(r, c, (struct sockaddr *)&a->ss[i], a->len[i]);
		req_unref(r);
		return;
	}
	free(c->addrs);
	c->addrs = NULL;
	if (r->phase == R_DONE || err) {
		connect_failed(r, err);
		req_unref(r);
		return;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	conn_use(c, r);
	req_unref(r);
}

static void connect_to(struct request *r, struct conn *c,
		       const struct sockaddr *sa, socklen_t sl)
{
	/* A family this host lacks (IPv6 disabled: EAFNOSUPPORT) moves on
	 * to the name's next address, as a refused connect does. */
	while ((c->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
			       SOCK_CLOEXEC, 0)) < 0) {
		int err = -errno;
		struct addrs *a = c->addrs;
		if (!a || !try_next(err) || a->next >= a->n) {
			connect_failed(r, err);
			return;
		}
		int i = a->next++;
		sa = (struct sockaddr *)&a->ss[i];
		sl = a->len[i];
	}
	fut *f = fut_connect(r->loop, c->fd, sa, sl);
	if (!f) {
		connect_failed(r, -ENOMEM);
		return;
	}
	r->io = f;
	r->refs++;
	fut_on_done(f, on_connected, c);
}

/* The resolve job's result travels in its arg; the job owns it. */
struct resolve_ctx {
	struct resolve rs;
	struct conn *c;
};

static void on_resolve_job(fut *f, void *arg)
{
	struct resolve_ctx *x = arg;
	struct conn *c = x->c;
	struct request *r = c->req;
	int err = fut_error(f);
	r->io = NULL;
	c->resolving = false;
	if (r->phase == R_DONE || err) {
		free(x->rs.out);
		connect_failed(r, err);
	} else {
		struct addrs *a = c->addrs = x->rs.out;
		a->next = 1;
		connect_to(r, c, (struct sockaddr *)&a->ss[0], a->len[0]);
	}
	free(x->rs.host);
	free(x);
	req_unref(r);
}

static void start_connect(struct pool *p, struct request *r)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		req_fail(r, -ENOMEM);
		return;
	}
	c->pool = p;
	c->fd = -1;
	c->state = C_CONNECTING;
	c->req = r;
	r->conn = c;
	p->nconns++;
	unsigned left = request_left(r); /* a retry: the request's time */
	phase_timer(r, R_CONNECT, left < r->o.connect_timeout_ms ?
		    left : r->o.connect_timeout_ms);

	union {
		struct sockaddr_in v4;
		struct sockaddr_in6 v6;
	} a;
	memset(&a, 0, sizeof(a));
	int port = atoi(r->port);
	if (inet_pton(AF_INET, r->host, &a.v4.sin_addr) == 1) {
		a.v4.sin_family = AF_INET;
		a.v4.sin_port = htons((uint16_t)port);
		connect_to(r, c, (struct sockaddr *)&a.v4, sizeof(a.v4));
		return;
	}
	if (inet_pton(AF_INET6, r->host, &a.v6.sin6_addr) == 1) {
		a.v6.sin6_family = AF_INET6;
		a.v6.sin6_port = htons((uint16_t)port);
		connect_to(r, c, (struct sockaddr *)&a.v6, sizeof(a.v6));
		return;
	}
	struct resolve_ctx *x = calloc(1, sizeof(*x));
	if (!x || !(x->rs.host = strdup(r->host)) ||
	    !(x->rs.out = calloc(1, sizeof(*x->rs.out)))) {
		if (x)
			free(x->rs.host);
		free(x);
		connect_failed(r, -ENOMEM);
		return;
	}
	memcpy(x->rs.port, r->port, sizeof(x->rs.port));
	x->c = c;
	c->resolving = true;
	fut *f = fut_run_blocking(r->loop, resolve_job, &x->rs);
	if (!f) {
		c->resolving = false;
		free(x->rs.out);
		free(x->rs.host);
		free(x);
		connect_failed(r, -ENOMEM);
		return;
	}
	r->io = f;
	r->refs++;
	fut_on_done(f, on_resolve_job, x);
}

/* ---- the request ---- */

/* http://host[:port][/path][?query]; no userinfo, no https. */
static int parse_url(const char *url, char **host, char *port,
		     const char **path)
{
	if (strncasecmp(url, "http://", 7) != 0) {
		/* "https://..." is the usual surprise: say it is the scheme
		 * (RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )). */
		size_t n = strspn(url, "abcdefghijklmnopqrstuvwxyz"
				  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
		return n && isalpha((unsigned char)url[0]) &&
		       strncmp(url + n, "://", 3) == 0 ? FUT_HTTP_ESCHEME
						       : FUT_HTTP_EBADURL;
	}
	const char *h = url + 7, *he, *p;
	for (const char *q = url; *q; q++)
		if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f)
			return FUT_HTTP_EBADURL;
	const char *end = h + strcspn(h, "/?#");
	if (memchr(h, '@', (size_t)(end - h)))
		return FUT_HTTP_EBADURL;
	if (*h == '[') {
		/* Brackets hold an IPv6 literal only (RFC 3986 3.2.2). */
		he = memchr(h, ']', (size_t)(end - h));
		if (!he || !memchr(h, ':', (size_t)(he - h)))
			return FUT_HTTP_EBADURL;
		char lit[64];
		struct in6_addr a6;
		size_t ll = (size_t)(he - h - 1);
		if (ll >= sizeof(lit))
			return FUT_HTTP_EBADURL;
		memcpy(lit, h + 1, ll);
		lit[ll] = '\0';
		if (inet_pton(AF_INET6, lit, &a6) != 1)
			return FUT_HTTP_EBADURL;
		p = he + 1;
		h++;
	} else {
		he = memchr(h, ':', (size_t)(end - h));
		if (!he)
			he = end;
		p = he;
	}
	if (he == h || he - h > 255) /* a DNS name has at most 253 */
		return FUT_HTTP_EBADURL;
	long pn = 80;
	if (p < end && *p != ':')
		return FUT_HTTP_EBADURL;
	if (p < end && p + 1 < end) { /* "host:" is the default port */
		const char *d = p + 1;
		size_t nd = (size_t)(end - d);
		if (strspn(d, "0123456789") < nd)
			return FUT_HTTP_EBADURL; /* port = *DIGIT */
		while (nd > 1 && *d == '0') /* leading zeros are allowed */
			d++, nd--;
		if (nd > 5)
			return FUT_HTTP_EBADURL;
		pn = strtol(d, NULL, 10);
		if (pn < 1 || pn > 65535)
			return FUT_HTTP_EBADURL;
	}
	snprintf(port, 8, "%ld", pn);
	*host = strndup(h, (size_t)(he - h));
	if (!*host)
		return -ENOMEM;
	*path = end;
	return 0;
}

static int valid_header_line(const char *s)
{
	const char *colon = strchr(s, ':');
	if (!colon || colon == s)
		return 0;
	for (const char *p = s; p < colon; p++)
		if (!fut__http_tchar((unsigned char)*p))
			return 0; /* field-name = token (RFC 9110 5.1) */
	for (const char *p = colon; *p; p++)
		if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
			return 0;
	return 1;
}

static int build(struct request *r, const char *path,
		 const struct fut_http_fetch_opts *o)
{
	const char *method = o->method ? o->method :
			     o->body ? "POST" : "GET";
	for (const char *m = method; *m; m++)
		if (!fut__http_tchar((unsigned char)*m))
			return -EINVAL; /* method = token (RFC 9110 9.1) */
	/* CONNECT opens a tunnel (RFC 9110 9.3.6): its target is an
	 * authority and its 2xx ends HTTP on the connection, which an
	 * exchange of request and response cannot stand for. */
	if (!*method || strcmp(method, "CONNECT") == 0)
		return -EINVAL;
	r->head_req = strcmp(method, "HEAD") == 0;
	static const char *const idem[] = { "GET", "HEAD", "OPTIONS", "TRACE",
					    "PUT", "DELETE" }; /* RFC 9110 9.2.2 */
	for (size_t i = 0; i < sizeof(idem) / sizeof(idem[0]); i++)
		if (strcmp(method, idem[i]) == 0)
			r->idempotent = 1;
	size_t plen = strcspn(path, "#");
	/* Host from the parsed host and port: "h:080" and "h:80" are
	 * "h" (RFC 3986 6.2.3), an IPv6 literal keeps its brackets. */
	char hostport[300];
	int v6 = strchr(r->host, ':') != NULL, dflt = strcmp(r->port, "80") == 0;
	int hplen = snprintf(hostport, sizeof(hostport), "%s%s%s%s%s",
			     v6 ? "[" : "", r->host, v6 ? "]" : "",
			     dflt ? "" : ":", dflt ? "" : r->port);
	static const char ua[] = "User-Agent: libfuture/" FUT_HTTP_VERSION
				 "\r\n";
	size_t sz = strlen(method) + plen + (size_t)hplen + o->body_len + 128 +
		    sizeof(ua);
	int own_ua = 0;
	const char *own_host = NULL;
	for (const char *const *h = o->headers; h && *h; h++) {
		if (!valid_header_line(*h))
			return -EINVAL;
		size_t nl = strcspn(*h, ":");
		/* The framing is the library's: a second Content-Length or a
		 * Transfer-Encoding would make the request say two things
		 * about where it ends (request smuggling). */
		if (fut__http_ieq(*h, nl, "content-length") ||
		    fut__http_ieq(*h, nl, "transfer-encoding"))
			return -EINVAL;
		if (fut__http_ieq(*h, nl, "host")) {
			/* One Host (RFC 9112 3.2), an authority: a server
			 * MUST answer any other value with 400. */
			const char *v = *h + nl + 1;
			size_t vl = strlen(v);
			while (vl && (*v == ' ' || *v == '\t'))
				v++, vl--;
			while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			if (own_host || !vl || !fut__http_valid_host(v, vl))
				return -EINVAL;
			own_host = *h;
		}
		own_ua |= fut__http_ieq(*h, nl, "user-agent");
		if (fut__http_ieq(*h, nl, "connection") &&
		    fut__http_list_has(*h + nl + 1, strlen(*h + nl + 1),
				       "close"))
			r->close_req = 1;
		sz += strlen(*h) + 2;
	}
	char *out = malloc(sz);
	if (!out)
		return -ENOMEM;
	/* A Host of the caller's replaces the URL's (virtual hosts by
	 * address, as curl -H does), first as the URL's would be (RFC 9110
	 * 7.2: a user agent SHOULD send Host as the first field). */
	int n = own_host ?
		snprintf(out, sz, "%s %s%.*s HTTP/1.1\r\n%s\r\n", method,
			 plen && path[0] == '/' ? "" : "/", (int)plen, path,
			 own_host) :
		snprintf(out, sz, "%s %s%.*s HTTP/1.1\r\nHost: %.*s\r\n", method,
			 plen && path[0] == '/' ? "" : "/", (int)plen, path,
			 hplen, hostport);
	size_t len = (size_t)n;
	/* A user agent SHOULD say what it is (RFC 9110 10.1.5), as curl
	 * and Python do; the caller's own field replaces it. */
	if (!own_ua) {
		memcpy(out + len, ua, sizeof(ua) - 1);
		len += sizeof(ua) - 1;
	}
	for (const char *const *h = o->headers; h && *h; h++) {
		if (*h == own_host)
			continue; /* went first */
		size_t l = strlen(*h);
		memcpy(out + len, *h, l);
		memcpy(out + len + l, "\r\n", 2);
		len += l + 2;
	}
	/* A method that gives content a meaning says "none" (RFC 9110 8.6). */
	if (o->body_len || strcmp(method, "POST") == 0 ||
	    strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0)
		len += (size_t)snprintf(out + len, sz - len,
					"Content-Length: %zu\r\n", o->body_len);
	memcpy(out + len, "\r\n", 2);
	len += 2;
	if (o->body_len)
		memcpy(out + len, o->body, o->body_len);
	r->out = out;
	r->out_len = len + o->body_len;
	return 0;
}

/* The result ended: by the exchange (R_DONE already), or by the caller. */
static void on_result(fut *f, void *arg)
{
	struct request *r = arg;
	if (r->phase != R_DONE)
		req_fail(r, fut_error(f));
	req_unref(r);
}

/*
 * One exchange for res, queued on its host's pool: the caller's, or the
 * next hop of a redirect. `call` has the request's method, fields and
 * body; o the options with their defaults. Takes fw. Returns -ENOMEM if
 * nothing was started (res untouched), else 0 (res rejected on errors).
 */
static int request_start(fut_loop *loop, fut *res, const char *url,
			 const struct fut_http_fetch_opts *call,
			 const struct fut_http_fetch_opts *o,
			 struct follow *fw)
{
	struct request *r = calloc(1, sizeof(*r));
	if (!r) {
		follow_free(fw);
		return -ENOMEM;
	}
	r->refs = 1;
	r->loop = loop;
	r->result = fut_ref(res);
	r->o = *o;
	r->o.method = NULL;
	r->o.body = NULL;
	r->o.headers = NULL; /* copied into the request bytes */
	r->fw = fw;
	const char *path;
	int err = (r->url = strdup(url)) ?
		  parse_url(url, &r->host, r->port, &path) : -ENOMEM;
	if (!err)
		err = build(r, path, call);
	char key[300];
	struct pool *p = NULL;
	if (!err) {
		snprintf(key, sizeof(key), "%.255s:%s", r->host, r->port);
		p = pool_get(loop, key);
		if (!p)
			err = -ENOMEM;
	}
	if (!err) {
		/* The caller's fut_cancel ends res: the exchange must end
		 * with it, or it held its connection (and max_per_host
		 * slot) until the response came or a timeout struck. A
		 * redirect's hop adds its own callback: that one may fail. */
		r->refs++;
		if (fut_on_done(fut_ref(res), on_result, r) < 0) {
			r->refs--;
			err = -ENOMEM;
		}
	}
	if (err) {
		r->phase = R_DONE;
		fut_reject(res, err);
		req_unref(r);
		return 0;
	}
	r->pool = p;
	/* Queue behind the others, then let the pool hand out what it
	 * can: FIFO even when a connection is free right now. */
	r->phase = R_QUEUED;
	wq_append(p, r);
	phase_timer(r, R_QUEUED, o->queue_timeout_ms);
	pool_next(p);
	pool_maybe_free(p); /* the request failed at once (out of fds) */
	return 0;
}

/* The caller's method, fields and body, for the hops after the first. */
static struct follow *follow_new(const struct fut_http_fetch_opts *call)
{
	struct follow *fw = calloc(1, sizeof(*fw));
	if (!fw)
		return NULL;
	fw->left = call->max_redirects;
	size_t n = 0;
	for (const char *const *h = call->headers; h && *h; h++)
		n++;
	bool ok = (fw->headers = calloc(n + 1, sizeof(char *))) != NULL;
	for (size_t i = 0; ok && i < n; i++)
		ok = (fw->headers[i] = strdup(call->headers[i])) != NULL;
	if (ok && call->method)
		ok = (fw->method = strdup(call->method)) != NULL;
	/* A non-NULL body, even empty, makes the default method POST. */
	if (ok && call->body) {
		fw->body_len = call->body_len;
		ok = (fw->body = malloc(call->body_len + 1)) != NULL;
		if (ok)
			memcpy(fw->body, call->body, call->body_len);
	}
	if (!ok) {
		follow_free(fw);
		return NULL;
	}
	return fw;
}

/* RFC 3986 5.2.4, in place: "/a/b/../c/./d" -> "/a/c/d". */
static void remove_dots(char *p)
{
	char *in = p, *out = p;
	while (*in) {
		if (!strncmp(in, "../", 3)) {
			in += 3;
		} else if (!strncmp(in, "./", 2)) {
			in += 2;
		} else if (!strncmp(in, "/./", 3)) {
			in += 2;
		} else if (!strcmp(in, "/.")) {
			in += 1;
			*in = '/'; /* what is left is "/" */
		} else if (!strncmp(in, "/../", 4) || !strcmp(in, "/..")) {
			if (in[3]) {
				in += 3;
			} else {
				in += 2;
				*in = '/';
			}
			while (out > p && *--out != '/')
				; /* the output's last segment goes */
		} else if (!strcmp(in, ".") || !strcmp(in, "..")) {
			in += strlen(in);
		} else {
			do
				*out++ = *in++;
			while (*in && *in != '/');
		}
	}
	*out = '\0';
}

/*
 * A Location (RFC 9110 10.2.2) against the URL that got it (RFC 3986
 * 5.2): absolute, "//authority/...", "/path", "?query" or relative to
 * the base's directory. Its fragment, or else the base's (RFC 9110
 * 10.2.2: inherited), stays on the URL, never sent. NULL for another
 * scheme than http: (https: needs TLS) or no memory. ref is NUL-terminated
 * at rl.
 */
static char *resolve_ref(const char *base, const char *ref, size_t rl)
{
	const char *frag = memchr(ref, '#', rl);
	size_t fl = 0;
	if (frag) {
		fl = rl - (size_t)(frag - ref);
		rl = (size_t)(frag - ref);
	}
	size_t sl = 0;
	if (rl && isalpha((unsigned char)ref[0])) {
		sl = strspn(ref, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS"
			    "TUVWXYZ0123456789+-.");
		if (sl >= rl || ref[sl] != ':')
			sl = 0; /* no scheme: a relative path */
	}
	if (sl && !(sl == 4 && !strncasecmp(ref, "http", 4)))
		return NULL;
	/* "http:path" (no "//"): the base's own scheme, so a relative
	 * reference, as browsers read it (RFC 3986 5.2.2, non-strict). */
	if (sl && !(rl >= sl + 3 && ref[sl + 1] == '/' && ref[sl + 2] == '/')) {
		ref += sl + 1;
		rl -= sl + 1;
		sl = 0;
	}
	/* base is "http://authority[/path][?query]" (parse_url took it) */
	size_t ba = 7 + strcspn(base + 7, "/?#");
	size_t bp = ba + strcspn(base + ba, "?#");
	size_t bq = bp + strcspn(base + bp, "#");
	if (!frag) {
		frag = base + bq;
		fl = strlen(frag);
	}
	char *u = malloc(bq + rl + fl + 16);
	if (!u)
		return NULL;
	size_t n;
	const char *rest;
	size_t restl;
	if (sl)
		ref += sl + 1, rl -= sl + 1;
	if (rl >= 2 && ref[0] == '/' && ref[1] == '/') {
		size_t al = 2 + strcspn(ref + 2, "/?");
		if (al > rl)
			al = rl;
		memcpy(u, "http:", 5);
		memcpy(u + 5, ref, al);
		n = 5 + al;
		rest = ref + al;
		restl = rl - al;
	} else {
		memcpy(u, base, ba);
		n = ba;
		rest = ref;
		restl = rl;
		if (!rl) { /* the same resource */
			memcpy(u + n, base + ba, bq - ba);
			n += bq - ba;
		} else if (ref[0] == '?') {
			memcpy(u + n, base + ba, bp - ba);
			n += bp - ba;
		} else if (ref[0] != '/') {
			const char *dir = base + ba;
			size_t dl = bp - ba;
			while (dl && dir[dl - 1] != '/')
				dl--;
			if (!dl)
				u[n++] = '/';
			memcpy(u + n, dir, dl);
			n += dl;
		}
	}
	memcpy(u + n, rest, restl);
	u[n + restl] = '\0';
	/* Dots only in the path: "?a=../b" is a query. */
	size_t pa = 7 + strcspn(u + 7, "/?");
	if (u[pa] == '/') {
		size_t pe = pa + strcspn(u + pa, "?");
		char save = u[pe];
		u[pe] = '\0';
		remove_dots(u + pa);
		size_t nl = strlen(u + pa);
		u[pe] = save;
		memmove(u + pa + nl, u + pe, strlen(u + pe) + 1);
	}
	n = strlen(u);
	memcpy(u + n, frag, fl);
	u[n + fl] = '\0';
	return u;
}

/*
 * The Location as a string (the value is a view into the buffer, with no
 * NUL after), with spaces and bytes outside ASCII percent-encoded, as
 * browsers and curl send them: a server that redirects to "/a b" or to a
 * raw UTF-8 path is followed, not left as the answer.
 */
static char *location_copy(const char *v, size_t n)
{
	char *s = malloc(3 * n + 1), *w = s;
	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c <= 0x20 || c >= 0x7f) {
			*w++ = '%';
			*w++ = "0123456789ABCDEF"[c >> 4];
			*w++ = "0123456789ABCDEF"[c & 15];
		} else {
			*w++ = (char)c;
		}
	}
	*w = '\0';
	return s;
}

/* Fields that carry the caller's credentials or name its first host:
 * not sent on to another origin (curl drops them the same way). */
static bool origin_bound(const char *line)
{
	size_t nl = strcspn(line, ":");
	return fut__http_ieq(line, nl, "authorization") ||
	       fut__http_ieq(line, nl, "proxy-authorization") ||
	       fut__http_ieq(line, nl, "cookie") ||
	       fut__http_ieq(line, nl, "host");
}

/* Fields about the content: they go with it when a redirect drops the
 * body (RFC 9110 15.4, point 5). */
static bool content_bound(const char *line)
{
	size_t nl = strcspn(line, ":");
	return (nl >= 8 && !strncasecmp(line, "content-", 8)) ||
	       fut__http_ieq(line, nl, "digest") ||
	       fut__http_ieq(line, nl, "last-modified");
}

/* Drop the caller's fields that drop(line) names. */
static void drop_fields(char **headers, bool (*drop)(const char *))
{
	char **w = headers;
	for (char **h = headers; *h; h++) {
		if (drop(*h))
			free(*h);
		else
			*w++ = *h;
	}
	*w = NULL;
}

/*
 * A complete response that may_follow: if it names where to go, the next
 * hop goes there for the same result future, and the 3xx goes no further
 * than this connection. Returns 0 (the 3xx is the result) when it is not
 * one to follow: no Location or two, or a Location this client cannot
 * fetch.
 */
static int follow(struct request *r, int reusable)
{
	int st = r->rh.status;
	const struct fut_http_header *loc = NULL;
	for (size_t i = 0; i < r->rh.num_headers; i++) {
		const struct fut_http_header *h = &r->rh.headers[i];
		if (fut__http_ieq(h->name, h->name_len, "location")) {
			if (loc)
				return 0;
			loc = h;
		}
	}
	if (!loc)
		return 0;
	char *lv = location_copy(loc->value, loc->value_len);
	char *next = lv ? resolve_ref(r->url, lv, strlen(lv)) : NULL;
	free(lv);
	char *host = NULL, port[8];
	const char *path;
	if (!next || parse_url(next, &host, port, &path) < 0) {
		free(next);
		return 0;
	}
	bool same = strcasecmp(host, r->host) == 0 && !strcmp(port, r->port);
	free(host);
	struct follow *fw = r->fw;
	r->fw = NULL;
	fw->left--;
	/* 303 means "GET that" (RFC 9110 15.4.4); a POST answered 301 or
	 * 302 becomes a GET too, as every browser, curl and Tornado do
	 * (15.4.2 allows it); 307 and 308 keep the method and the body. */
	const char *m = fw->method ? fw->method : fw->body ? "POST" : "GET";
	if ((st == 303 && strcmp(m, "HEAD") != 0) ||
	    ((st == 301 || st == 302) && !strcmp(m, "POST"))) {
		free(fw->method);
		free(fw->body);
		fw->method = NULL;
		fw->body = NULL;
		fw->body_len = 0;
		drop_fields(fw->headers, content_bound);
	}
	if (!same)
		drop_fields(fw->headers, origin_bound);
	r->phase = R_DONE;
	phase_timer_stop(r);
	conn_release(r, reusable);
	free(r->out); /* held until the result ends: not needed */
	r->out = NULL;
	struct fut_http_fetch_opts call = r->o;
	call.method = fw->method;
	call.headers = (const char *const *)fw->headers;
	call.body = fw->body;
	call.body_len = fw->body_len;
	if (request_start(r->loop, r->result, next, &call, &r->o, fw) < 0)
		fut_reject(r->result, -ENOMEM);
	free(next);
	req_unref(r);
	return 1;
}

fut *fut_http_fetch(fut_loop *loop, const char *url,
		    const struct fut_http_fetch_opts *opts)
{
	if (!loop)
		return NULL;
	struct fut_http_fetch_opts o;
	memset(&o, 0, sizeof(o));
	if (opts)
		o = *opts;
	if (!url || (o.body_len && !o.body))
		return fut_rejected(loop, -EINVAL);
	for (size_t i = 0; i < sizeof(o.reserved) / sizeof(o.reserved[0]); i++)
		if (o.reserved[i])
			return fut_rejected(loop, -EINVAL);
	if (!o.connect_timeout_ms)
		o.connect_timeout_ms = DEF_CONNECT_TIMEOUT;
	if (!o.queue_timeout_ms)
		o.queue_timeout_ms = DEF_QUEUE_TIMEOUT;
	if (!o.request_timeout_ms)
		o.request_timeout_ms = DEF_REQUEST_TIMEOUT;
	if (!o.max_per_host)
		o.max_per_host = DEF_MAX_PER_HOST;
	if (!o.idle_timeout_ms)
		o.idle_timeout_ms = DEF_IDLE_MS;
	if (!o.max_body)
		o.max_body = DEF_MAX_BODY;
	if (!o.max_header_bytes)
		o.max_header_bytes = DEF_MAX_HEADER_BYTES;
	if (!o.max_headers)
		o.max_headers = DEF_MAX_HEADERS;
	if (o.max_headers > MAX_MAX_HEADERS || o.max_redirects > MAX_REDIRECTS)
		return fut_rejected(loop, -EINVAL);
	fut *res = fut_new(loop);
	if (!res)
		return NULL;
	struct follow *fw = NULL;
	if (o.max_redirects && !(fw = follow_new(&o))) {
		fut_unref(res);
		return NULL;
	}
	if (request_start(loop, res, url, &o, &o, fw) < 0) {
		fut_unref(res);
		return NULL;
	}
	return res;
}

const struct fut_http_response *fut_http_response_of(fut *f)
{
	if (!f || fut_state(f) != FUT_RESOLVED)
		return NULL;
	void *p = fut_ptr(f);
	return p && live_has(p) ? p : NULL;
}

const char *fut_http_response_header(const struct fut_http_response *resp,
				     const char *name, size_t *len)
{
	if (!resp || !name)
		return NULL;
	return fut__http_find(resp->headers, resp->num_headers, name, len);
}
