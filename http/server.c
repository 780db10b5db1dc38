/*
 * The HTTP/1.1 server: one listening socket and its connections on one
 * loop, written only against the public libfuture API.
 *
 * A connection handles one request at a time: read the head, read the
 * body, call the handler, send the response, then parse whatever the
 * client pipelined behind it. Responses are therefore in request order
 * without any reordering queue, and the request's views into the input
 * buffer stay valid while the handler runs (nothing is read meanwhile).
 *
 * A connection has at most one I/O future of its own pending (c->io);
 * timeouts are one periodic sweep over the connections that cancels that
 * future, rather than a timer per request.
 *
 * Errors found by the parser are answered with their status and
 * "Connection: close", then the connection lingers (write side shut,
 * input discarded for a moment) so the client reads the answer instead
 * of a reset.
 */
#include "http-internal.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEF_BACKLOG 511
#define DEF_MAX_CONN 10000
#define DEF_HEADER_TIMEOUT 10000
#define DEF_BODY_TIMEOUT 30000
#define DEF_IDLE_TIMEOUT 60000
#define DEF_WRITE_TIMEOUT 30000
#define DEF_HIGH_WATER 65536
/* nginx's lingering_timeout. Time is the bound that matters: a client
 * that sends a large upload to an early 413 as fast as loopback allows
 * (Node does) got a reset, not the 413, once 256 KiB were discarded. */
#define DEF_LINGER_MS 5000
#define DEF_LINGER_BYTES (1u << 30)
#define INBUF_MIN 4096
#define BUF_KEEP 65536 /* larger idle buffers are freed */
#define EMFILE_PAUSE_MS 100
/* The most one send of a response carries: see flush. */
#define SEND_SLICE (256 * 1024)
/* A request body gets body_timeout_ms for each this much of it: a big
 * upload over a slow link is not cut, and a trickle still is. */
#define BODY_SLICE (256 * 1024)
#define ACCEPT_BATCH 64  /* connections taken per accept completion */

enum phase {
	P_HEAD,    /* waiting for (the rest of) a request head */
	P_BODY,    /* reading the body */
	P_HANDLER, /* the handler has the request */
	P_LINGER,  /* error sent, write side shut, discarding input */
	P_CLOSED,  /* fd closed, waiting for the handler to let go */
};

struct outbuf {
	char *p;
	size_t len, cap;
};

struct waiter {
	struct waiter *next;
	fut *f;
	size_t len;
};

struct conn;

struct fut_http_req {
	struct conn *c;
	struct fut_http_request_head head;
	char *body;
	size_t body_len;
	struct outbuf hdrs;  /* extra response header lines */
	int head_only;       /* HEAD, or a status without content: no body
				bytes go out */
	int started;         /* status line sent (respond or stream_begin) */
	int streaming;
	int ended;           /* the handler is done with it */
	int close_after;     /* Connection: close on the response */
	int client_closes;   /* the request said it is the last one */
	int failed;          /* a send failed: error of later writes */
	struct waiter *waiters, **wtail;
};

struct conn {
	struct conn *next, *prev;
	fut_http_server *srv; /* NULL once detached by shutdown or free */
	fut_loop *loop;
	int fd;
	enum phase phase;
	fut *io;            /* our pending recv or send, borrowed */
	fut *watch;         /* a long handler's 0-byte recv, borrowed */
	uint64_t handler_since; /* loop ms the handler was called */
	int peer_eof;       /* the client shut down its side meanwhile */
	int unwatched;      /* a pipelined request came: watch no more */
	int io_is_send;
	int closing;        /* close once io and the handler are done */
	int in_hook;        /* the expect hook runs: conn_free waits */
	int free_after_hook;
	int timed_out;
	uint64_t deadline;  /* loop ms; 0: none */
	size_t body_next;   /* body bytes that move the deadline on */
	char *in;
	size_t in_len, in_cap;
	size_t seen;        /* bytes the head parser already looked at */
	int first;          /* the first request: its head deadline is set
			     * at the accept */
	size_t head_len;
	const char *head_base; /* c->in when the head was parsed */
	size_t dec_end;     /* chunked: end of the decoded body so far */
	struct fut_http_chunked ch;
	struct outbuf out;  /* being sent */
	size_t out_off;     /* how much of out is sent */
	struct outbuf next_out; /* queued behind it */
	size_t lingered;
	int nodelay;        /* TCP_NODELAY set */
	size_t high_water;
	struct fut_http_req req;
	struct fut_http_header *hdrv;
};

/* Outlives the server: the accept, pause and deadline futures' callbacks
 * may run after fut_http_server_free (cancellation can be asynchronous). */
struct anchor {
	fut_http_server *srv;
	int pending;
};

/* A name may stand for several addresses ("localhost": 127.0.0.1 and
 * ::1): the server listens on each, as nginx does. */
#define MAX_LISTEN 8

struct listener {
	int fd;
	fut *accept_f; /* an accept waiting for its connection */
};

struct fut_http_server {
	fut_loop *loop;
	struct fut_http_server_opts o;
	struct fut_http_limits lim;
	struct listener ls[MAX_LISTEN];
	unsigned nls;
	int port;
	struct anchor *anchor;
	fut *pause_f, *deadline_f;
	struct conn *conns;
	unsigned nconns;
	fut_timer *sweep;
	int stopping;
	fut *shutdown_f;
};

static void conn_read(struct conn *c);
static void conn_next(struct conn *c);
static void conn_close(struct conn *c);
static void flush(struct conn *c);
static void start_accept(fut_http_server *s);

/* ---- buffers ---- */

static int out_reserve(struct outbuf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 1024;
	while (cap < b->len + more)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

/* Room for n more bytes at the end of b, or NULL: the caller writes
 * them and adds n to b->len. */
static char *out_room(struct outbuf *b, size_t n)
{
	return out_reserve(b, n) ? NULL : b->p + b->len;
}

static int out_add(struct outbuf *b, const void *p, size_t n)
{
	if (!n)
		return 0;
	if (out_reserve(b, n))
		return -ENOMEM;
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

/*
 * A connection that once carried a large body keeps no large buffer while
 * it waits: idle keep-alive connections would otherwise hold max_body
 * each, for as long as their clients like.
 */
static void out_trim(struct outbuf *b)
{
	if (!b->len && b->cap > BUF_KEEP) {
		free(b->p);
		b->p = NULL;
		b->cap = 0;
	}
}

/* The output side is trimmed by flush, once a response is all sent. */
static void in_trim(struct conn *c)
{
	if (!c->in_len && c->in_cap > BUF_KEEP) {
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
}

/* The IMF-fixdate of the current second, regenerated once a second. */
static const char *http_date(void)
{
	static __thread time_t last;
	static __thread char buf[40];
	time_t now = time(NULL);
	if (now != last) {
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		last = now;
	}
	return buf;
}

/* ---- connection lifecycle ---- */

static uint64_t now_ms(struct conn *c)
{
	return fut_loop_now(c->loop);
}

/*
 * A shutdown's last connection is gone: nothing of the server may keep
 * fut_loop_run(3) going any more (the sweep timer ticked on, and the
 * deadline's sleep ran out its full length, after the future resolved).
 */
static void shutdown_done(fut_http_server *s)
{
	if (s->deadline_f)
		fut_cancel(s->deadline_f);
	if (s->sweep) {
		fut_timer_free(s->sweep);
		s->sweep = NULL;
	}
	fut_resolve(s->shutdown_f, 0);
}

static void detach(struct conn *c)
{
	fut_http_server *s = c->srv;
	if (!s)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->srv = NULL;
	s->nconns--;
	if (s->stopping && !s->nconns && s->shutdown_f)
		shutdown_done(s);
	else if (!s->stopping && !s->pause_f)
		start_accept(s); /* below the cap again */
}

static void fail_waiters(struct fut_http_req *r, int err)
{
	struct waiter *w;
	while ((w = r->waiters)) {
		r->waiters = w->next;
		fut_reject(w->f, err);
		fut_unref(w->f);
		free(w);
	}
	r->wtail = &r->waiters;
}

static void conn_free(struct conn *c)
{
	if (c->in_hook) { /* expect_refused still looks at it */
		c->free_after_hook = 1;
		return;
	}
	detach(c);
	fail_waiters(&c->req, -EPIPE);
	free(c->in);
	free(c->out.p);
	free(c->next_out.p);
	free(c->req.hdrs.p);
	free(c->hdrv);
	free(c);
}

/* Close the fd now; free once no I/O is pending and the handler has let
 * go of the request. */
static void conn_close(struct conn *c)
{
	c->closing = 1;
	/* Closed now, even with a send or the watch in flight (fut_close
	 * cancels them): a free or a shutdown left the socket open until
	 * their cancels came back, and the client waiting on it. */
	if (c->fd >= 0) {
		fut_unref(fut_close(c->loop, c->fd));
		c->fd = -1;
	}
	if (c->io || c->watch) {
		/* Writers waiting for room learn it now: a program that
		 * frees the loop next (after a shutdown) cancelled them. */
		if (c->phase == P_HANDLER && !c->req.ended) {
			if (!c->req.failed)
				c->req.failed = c->timed_out ? -ETIMEDOUT
							     : -EPIPE;
			fail_waiters(&c->req, c->req.failed);
		}
		if (c->io)
			fut_cancel(c->io);
		if (c->watch)
			fut_cancel(c->watch);
		return; /* their callbacks come back here */
	}
	if (c->phase == P_HANDLER && !c->req.ended) {
		c->phase = P_CLOSED;
		/* A writer waiting for room would wait for good: no send
		 * will make any (a send that completed just before a free or
		 * a shutdown's deadline came back here without failing
		 * them). */
		fail_waiters(&c->req, -EPIPE);
		detach(c);
		return;
	}
	conn_free(c);
}

/* ---- responses ---- */

static int status_ok(int status)
{
	return status >= 100 && status <= 999;
}

/* Responses that end with their head (RFC 9112 6.3 rule 1). */
static int no_body_status(int status)
{
	return (status >= 100 && status < 200) || status == 204 ||
	       status == 304;
}

/* No content goes out: a HEAD response, the statuses above, and 205,
 * which "MUST NOT" have content but, unlike 204, is framed (RFC 9110
 * 15.3.6): Content-Length: 0. */
static int no_content(const struct fut_http_req *r, int status)
{
	return r->head_only || no_body_status(status) || status == 205;
}

/* Status line and headers into c->next_out (or out when idle). */
static char *put(char *q, const char *s, size_t n)
{
	if (n) /* s may be NULL then: no headers yet */
		memcpy(q, s, n);
	return q + n;
}

#define PUT_LIT(q, lit) put(q, lit, sizeof(lit) - 1)

static int put_head(struct conn *c, int status, int64_t length)
{
	struct fut_http_req *r = &c->req;
	const char *reason = fut_http_reason(status), *date = http_date();
	size_t rl = strlen(reason), dl = strlen(date);
	int ka = r->head.keep_alive && !r->close_after && c->srv &&
		 !c->srv->stopping;
	/* Built by hand into one reservation: snprintf was a tenth of a
	 * hello-world response, and an out_add per piece another tenth. The
	 * fixed pieces below are at most 96 bytes. */
	char *q = out_room(&c->next_out, 96 + rl + dl + r->hdrs.len);
	if (!q)
		return -ENOMEM;
	char *start = q;
	q = PUT_LIT(q, "HTTP/1.1 ");
	*q++ = (char)('0' + status / 100);
	*q++ = (char)('0' + status / 10 % 10);
	*q++ = (char)('0' + status % 10);
	*q++ = ' ';
	q = put(q, reason, rl);
	q = PUT_LIT(q, "\r\nDate: ");
	q = put(q, date, dl);
	q = PUT_LIT(q, "\r\n");
	q = put(q, r->hdrs.p, r->hdrs.len);
	if (status == 205)
		length = 0;
	if (length >= 0 && !no_body_status(status)) {
		char num[24], *e = num + sizeof(num), *d = e;
		uint64_t v = (uint64_t)length;
		do
			*--d = (char)('0' + v % 10);
		while ((v /= 10));
		q = PUT_LIT(q, "Content-Length: ");
		q = put(q, d, (size_t)(e - d));
		q = PUT_LIT(q, "\r\n");
	} else if (length < 0 && !no_body_status(status)) {
		if (r->head.minor_version >= 1)
			q = PUT_LIT(q, "Transfer-Encoding: chunked\r\n");
		else
			ka = 0; /* HTTP/1.0: the close ends the body */
	}
	if (!ka)
		r->close_after = 1;
	if (!ka)
		q = PUT_LIT(q, "Connection: close\r\n\r\n");
	else if (r->head.minor_version == 0)
		q = PUT_LIT(q, "Connection: keep-alive\r\n\r\n");
	else
		q = PUT_LIT(q, "\r\n");
	c->next_out.len += (size_t)(q - start);
	/* Nagle would hold a response written while the previous one is
	 * unacknowledged (pipelining) and the chunks of a stream; a single
	 * response before a close needs no setsockopt (nginx's rule). */
	if ((ka || length < 0) && !c->nodelay) {
		int one = 1;
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->nodelay = 1;
	}
	return 0;
}

static int check_req(fut_http_req *r)
{
	return !r || r->ended ? -EINVAL : 0;
}

int fut_http_resp_header(fut_http_req *r, const char *name, const char *value)
{
	if (check_req(r) || r->started || !name || !value || !*name)
		return -EINVAL;
	size_t nl = 0, vl = 0;
	for (; name[nl]; nl++)
		if (!fut__http_tchar((unsigned char)name[nl]))
			return -EINVAL;
	for (; value[vl]; vl++) /* no header injection */
		if (!fut__http_fvchar_tab[(unsigned char)value[vl]])
			return -EINVAL;
	if (fut__http_ieq(name, nl, "content-length") ||
	    fut__http_ieq(name, nl, "transfer-encoding") ||
	    fut__http_ieq(name, nl, "date"))
		return -EINVAL; /* the server owns framing */
	if (fut__http_ieq(name, nl, "connection")) {
		if (!fut__http_ieq(value, vl, "close"))
			return -EINVAL;
		r->close_after = 1;
		return 0;
	}
	char *q = out_room(&r->hdrs, nl + vl + 4);
	if (!q)
		return -ENOMEM;
	memcpy(q, name, nl);
	q += nl;
	*q++ = ':';
	*q++ = ' ';
	memcpy(q, value, vl);
	q += vl;
	*q++ = '\r';
	*q = '\n';
	r->hdrs.len += nl + vl + 4;
	return 0;
}

/* The handler is done with the request: once all is sent, go on. */
static void req_end(struct conn *c)
{
	c->req.ended = 1;
	if (c->phase == P_CLOSED) {
		conn_free(c);
		return;
	}
	flush(c);
}

int fut_http_respond(fut_http_req *r, int status, const void *body,
		     size_t len)
{
	if (check_req(r) || r->started || !status_ok(status) ||
	    (len && !body) || status < 200)
		return -EINVAL;
	struct conn *c = r->c;
	r->started = 1;
	if (c->closing) {
		req_end(c);
		return -EPIPE;
	}
	int e = put_head(c, status, (int64_t)len);
	if (!e && !no_content(r, status))
		e = out_add(&c->next_out, body, len);
	if (e) {
		r->close_after = 1;
		c->next_out.len = 0;
	}
	req_end(c);
	return e;
}

int fut_http_stream_begin(fut_http_req *r, int status)
{
	if (check_req(r) || r->started || !status_ok(status) || status < 200)
		return -EINVAL;
	struct conn *c = r->c;
	r->started = 1;
	r->streaming = 1;
	if (c->closing)
		return -EPIPE;
	int e = put_head(c, status, -1);
	if (e)
		return e;
	/* Writes are dropped and no last chunk goes out, as for HEAD: a
	 * 204's chunks would be read as the next response. */
	r->head_only = no_content(r, status);
	flush(c);
	return 0;
}

static int chunked_out(struct fut_http_req *r)
{
	return r->head.minor_version >= 1;
}

fut *fut_http_stream_write(fut_http_req *r, const void *buf, size_t len)
{
	if (check_req(r))
		return NULL;
	struct conn *c = r->c;
	if (!r->streaming || (len && !buf))
		return fut_rejected(c->loop, -EINVAL);
	/* closing: P_CLOSED, or a send of the closed socket still coming
	 * back (freed or cut by a shutdown) */
	if (r->failed || c->closing)
		return fut_rejected(c->loop, r->failed ? r->failed : -EPIPE);
	if (!len || r->head_only)
		return fut_resolved(c->loop, (int64_t)len);
	char pre[24];
	int n = chunked_out(r) ? snprintf(pre, sizeof(pre), "%zx\r\n", len) : 0;
	if (out_add(&c->next_out, pre, (size_t)n) ||
	    out_add(&c->next_out, buf, len) ||
	    (chunked_out(r) && out_add(&c->next_out, "\r\n", 2)))
		return fut_rejected(c->loop, -ENOMEM);
	flush(c);
	if (c->out.len - c->out_off + c->next_out.len <= c->high_water)
		return fut_resolved(c->loop, (int64_t)len);
	/* Backpressure: this write's future waits for the peer. */
	struct waiter *w = malloc(sizeof(*w));
	fut *f = w ? fut_new(c->loop) : NULL;
	if (!f) {
		free(w);
		return fut_rejected(c->loop, -ENOMEM);
	}
	w->f = fut_ref(f);
	w->len = len;
	w->next = NULL;
	*r->wtail = w;
	r->wtail = &w->next;
	return f;
}

int fut_http_stream_end(fut_http_req *r)
{
	if (check_req(r) || !r->streaming)
		return -EINVAL;
	struct conn *c = r->c;
	int e = r->failed;
	if (!c->closing && !r->failed && !r->head_only &&
	    chunked_out(r) && out_add(&c->next_out, "0\r\n\r\n", 5))
		r->close_after = 1;
	if (c->closing && !e)
		e = -EPIPE;
	req_end(c);
	return e;
}

/* ---- requests in, responses out ---- */

static void on_sent(fut *f, void *arg)
{
	struct conn *c = arg;
	int err = fut_error(f);
	c->io = NULL;
	if (!err) {
		c->timed_out = 0; /* done before the sweep's cancel: progress */
		c->out_off += (size_t)fut_value(f);
	}
	if (err || c->out_off >= c->out.len)
		c->out.len = c->out_off = 0;
	if (err < 0) {
		/* Our own cancel: the write timeout's, or a close by free or
		 * shutdown. A handler is told which, not -ECANCELED, which
		 * would read as its own coroutine being cancelled. */
		if (err == -ECANCELED)
			err = c->timed_out ? -ETIMEDOUT : -EPIPE;
		if (!c->req.failed) /* conn_close may have said it first */
			c->req.failed = err;
		fail_waiters(&c->req, c->req.failed);
		conn_close(c);
		return;
	}
	if (c->closing) {
		conn_close(c);
		return;
	}
	/* Release writers waiting for room: by the rule that made them
	 * wait (fut_http_stream_write), counting out's unsent slices. */
	while (c->req.waiters &&
	       c->out.len - c->out_off + c->next_out.len <= c->high_water) {
		struct waiter *w = c->req.waiters;
		c->req.waiters = w->next;
		if (!c->req.waiters)
			c->req.wtail = &c->req.waiters;
		fut_resolve(w->f, (int64_t)w->len);
		fut_unref(w->f);
		free(w);
	}
	flush(c);
}

static void linger_start(struct conn *c);

/*
 * A client that said its request was the last (RFC 9112 9.6: it sends no
 * more) may be closed at once, without the lingering close's shutdown and
 * wait for its FIN, if the close cannot turn into a reset that destroys
 * the response: nothing unread in the socket (a close with unread bytes
 * sends RST), and every response byte acknowledged (bytes arriving after
 * the close are answered with RST, which discards what is still queued;
 * old clients send a CRLF after a body). Two cheap calls; a response
 * still in flight lingers as before.
 */
static int quiet_to_close(struct conn *c)
{
	char b;
	ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n > 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
		return 0;
	int queued = -1;
	return ioctl(c->fd, SIOCOUTQ, &queued) == 0 && queued == 0;
}

/* The response is out: next request, or close. */
static void finish_request(struct conn *c)
{
	struct fut_http_req *r = &c->req;
	int close_after = r->close_after; /* set too by the watch's EOF */
	size_t consumed = c->dec_end;
	if (c->watch) /* kept until its callback: see on_watch */
		fut_cancel(c->watch);
	if (close_after && r->client_closes && consumed == c->in_len &&
	    quiet_to_close(c)) {
		conn_close(c);
		return;
	}
	r->hdrs.len = 0;
	r->started = r->streaming = r->ended = r->failed = 0;
	r->client_closes = 0;
	r->body = NULL;
	r->body_len = 0;
	if (consumed < c->in_len)
		memmove(c->in, c->in + consumed, c->in_len - consumed);
	c->in_len -= consumed;
	c->dec_end = 0;
	if (close_after)
		linger_start(c);
	else
		conn_next(c);
}

static void flush(struct conn *c)
{
	if (c->io || c->fd < 0)
		return;
	if (!c->out.len && c->next_out.len) {
		struct outbuf t = c->out;
		c->out = c->next_out;
		c->next_out = t;
	}
	if (c->out.len) {
		/* In slices, each with its own deadline: write_timeout_ms is
		 * for a peer that takes nothing, not for a slow one still
		 * reading (a 48 MiB body at 2 MiB/s was cut at 30 s). */
		size_t n = c->out.len - c->out_off;
		if (n > SEND_SLICE)
			n = SEND_SLICE;
		if (c->srv)
			c->deadline = now_ms(c) + c->srv->o.write_timeout_ms;
		fut *f = fut_send(c->loop, c->fd, c->out.p + c->out_off, n,
				  MSG_NOSIGNAL);
		if (!f) {
			conn_close(c);
			return;
		}
		c->io = f;
		c->io_is_send = 1;
		fut_on_done(f, on_sent, c);
		return;
	}
	if (c->phase != P_HANDLER || c->req.ended) { /* not mid-stream */
		out_trim(&c->out);
		out_trim(&c->next_out);
	}
	if (c->phase == P_HANDLER && c->req.ended)
		finish_request(c);
}

static void on_recv(fut *f, void *arg);

static void conn_read(struct conn *c)
{
	if (c->in_len == c->in_cap) {
		size_t cap = c->in_cap ? c->in_cap * 2 : INBUF_MIN;
		/* A declared length is grown into as its bytes arrive, not
		 * allocated up front: a client that declares max_body and
		 * sends nothing costs no more than any idle connection. */
		if (c->phase == P_BODY && !c->req.head.chunked) {
			size_t need = c->head_len +
				      (size_t)c->req.head.content_length;
			if (cap > need && need > c->in_len)
				cap = need;
		}
		char *p = realloc(c->in, cap);
		if (!p) {
			conn_close(c);
			return;
		}
		c->in = p;
		c->in_cap = cap;
	}
	fut *f = fut_recv(c->loop, c->fd, c->in + c->in_len,
			  c->in_cap - c->in_len, 0);
	if (!f) {
		conn_close(c);
		return;
	}
	c->io = f;
	c->io_is_send = 0;
	fut_on_done(f, on_recv, c);
}

/* Where the request starts in c->in: after the empty lines the parser
 * skips (RFC 9112 2.2). */
static size_t request_start(const struct conn *c)
{
	size_t i = 0;
	while (i + 1 < c->in_len && c->in[i] == '\r' && c->in[i + 1] == '\n')
		i += 2;
	return i;
}

/*
 * Whether the request an error answers is a HEAD. The error may come
 * before the method is parsed (a 414, a timeout), and once it is, the
 * head's views may point into a buffer the body has since outgrown; but
 * the input buffer starts with the request in every phase, and its method
 * is the first word after the empty lines the parser skips.
 */
static int error_for_head(const struct conn *c)
{
	size_t i = request_start(c);
	return c->in_len - i >= 5 && memcmp(c->in + i, "HEAD ", 5) == 0;
}

static void error_response(struct conn *c, int status)
{
	const char *reason = fut_http_reason(status);
	/* A response to HEAD has no content (RFC 9110 9.3.2), but the
	 * Content-Length of the GET one. */
	int head = error_for_head(c);
	char buf[512];
	int n = snprintf(buf, sizeof(buf),
			 "HTTP/1.1 %d %s\r\nDate: %s\r\n"
			 "Content-Type: text/plain\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n%s%s",
			 status, reason, http_date(), strlen(reason) + 1,
			 head ? "" : reason, head ? "" : "\n");
	c->phase = P_HANDLER;
	c->req.ended = 1;
	c->req.close_after = 1;
	c->dec_end = c->in_len; /* nothing after this is read */
	if (out_add(&c->next_out, buf, (size_t)n)) {
		conn_close(c);
		return;
	}
	flush(c);
}

static void linger_start(struct conn *c)
{
	c->phase = P_LINGER;
	shutdown(c->fd, SHUT_WR);
	c->deadline = now_ms(c) +
		      (c->srv ? c->srv->o.linger_ms : DEF_LINGER_MS);
	c->lingered = 0;
	c->in_len = 0;
	conn_read(c);
}

/*
 * A request line over the limit whose first word alone is longer than
 * any registered method (the longest, UPDATEREDIRECTREF, has 17 bytes) is
 * an unknown method (RFC 9112 3: 501), not a long target.
 */
#define METHOD_MAX 32

static int method_too_long(const struct conn *c)
{
	size_t i = request_start(c), n = c->in_len;
	const char *sp = memchr(c->in + i, ' ', n - i);
	return (size_t)((sp ? sp : c->in + n) - (c->in + i)) > METHOD_MAX;
}

static int64_t coro_entry(void *arg)
{
	struct conn *c = arg;
	if (!c->srv) { /* freed before the coroutine started */
		fut_http_respond(&c->req, 503, NULL, 0);
		return 0;
	}
	c->srv->o.handler(&c->req, c->srv->o.arg);
	return 0;
}

/*
 * The handler's coroutine ended. coro_entry always returns 0, so
 * -ECANCELED means it never started: the loop was freed first (its
 * coroutines are cancelled before their first tick), and the request is
 * ended here instead, which frees a connection the server's free left
 * closed (it leaked).
 */
static void coro_done(fut *f, void *arg)
{
	if (fut_error(f) == -ECANCELED)
		fut_http_respond(&((struct conn *)arg)->req, 503, NULL, 0);
}

static void req_prepare(struct conn *c)
{
	struct fut_http_req *r = &c->req;
	r->c = c;
	r->ended = 0;
	r->head_only = fut__http_is(r->head.method, r->head.method_len,
				    "HEAD");
	r->close_after = r->client_closes = !r->head.keep_alive;
}

/*
 * Expect: 100-continue, and the server has an expect hook: it sees the
 * head before the 100 goes out. An answer there refuses the body (a 401
 * before a large upload, say): nothing more of this request is read, and
 * since the client may send the body anyway (RFC 9110 10.1.1), the
 * connection closes after the answer, lingering. Returns 1 if refused.
 */
static int expect_refused(struct conn *c)
{
	fut_http_server *s = c->srv;
	struct fut_http_req *r = &c->req;
	req_prepare(c);
	r->close_after = 1; /* an answer here says Connection: close */
	c->phase = P_HANDLER;
	c->handler_since = now_ms(c);
	c->in_hook = 1;
	s->o.expect(r, s->o.arg);
	c->in_hook = 0;
	if (c->free_after_hook) { /* freed the server, then answered */
		conn_free(c);
		return 1;
	}
	if (c->phase == P_CLOSED) {
		/* The hook freed the server: with nothing answered, nobody
		 * will end the request (a response under way ends it). */
		if (!r->started)
			conn_free(c);
		return 1;
	}
	if (!c->srv)
		return 1; /* freed after an answer: its close is under way */
	if (!r->started) {
		r->hdrs.len = 0; /* fields meant for a refusal that never was */
		/* Until the handler has it: an answer from a later callback
		 * would go out while the body still comes in. */
		r->ended = 1;
		c->phase = P_BODY;
		return 0;
	}
	r->client_closes = 0;
	c->dec_end = c->in_len; /* the body's first bytes, if any: dropped */
	return 1;
}

static void dispatch(struct conn *c)
{
	fut_http_server *s = c->srv;
	struct fut_http_req *r = &c->req;
	if (c->head_base != c->in) {
		/* The buffer moved while the body came in: take the views
		 * again (the head parses the same way twice). */
		fut_http_parse_request(c->in, c->head_len, 0, &r->head, c->hdrv,
				       s->lim.max_headers, &s->lim);
	}
	req_prepare(c);
	if (r->head.chunked) {
		r->body = c->in + c->head_len;
		r->body_len = c->dec_end - c->head_len;
	} else if (r->head.content_length > 0) {
		r->body = c->in + c->head_len;
		r->body_len = (size_t)r->head.content_length;
	}
	c->phase = P_HANDLER;
	c->deadline = 0;
	c->handler_since = now_ms(c);
	c->peer_eof = c->unwatched = 0;
	if (s->o.coroutine) {
		fut *f = fut_spawn(c->loop, coro_entry, c);
		if (!f) {
			error_response(c, 503);
			return;
		}
		(void)fut_on_done(f, coro_done, c); /* takes the reference */
		return;
	}
	s->o.handler(r, s->o.arg);
}

/* got bytes of body so far (decoded: chunk framing, a run of zeros
 * before a chunk size, do not count): another 256 KiB of it gives the
 * body body_timeout_ms more. */
static void body_progress(struct conn *c, size_t got)
{
	if (got >= c->body_next) {
		c->body_next = got + BODY_SLICE;
		c->deadline = now_ms(c) + c->srv->o.body_timeout_ms;
	}
}

static void process_input(struct conn *c)
{
	fut_http_server *s = c->srv;
	struct fut_http_req *r = &c->req;
	if (c->phase == P_HEAD) {
		int n = fut_http_parse_request(c->in, c->in_len, c->seen,
					       &r->head, c->hdrv,
					       s->lim.max_headers, &s->lim);
		if (n == FUT_HTTP_EINCOMPLETE) {
			/* Later heads get header_timeout from their first
			 * byte; the first one counts from the accept, else
			 * a client could hold a new connection for twice
			 * the timeout by sending a byte just before it. */
			if (!c->seen && !c->first)
				c->deadline = now_ms(c) +
					      s->o.header_timeout_ms;
			c->seen = c->in_len;
			if (c->in_len == c->in_cap &&
			    c->in_cap > s->lim.max_header_bytes) {
				error_response(c, 431);
				return;
			}
			conn_read(c);
			return;
		}
		if (n < 0) {
			int st = fut_http_status_of(n);
			if (n == FUT_HTTP_EURITOOLONG && method_too_long(c))
				st = 501;
			error_response(c, st ? st : 400);
			return;
		}
		c->head_len = (size_t)n;
		c->head_base = c->in;
		c->seen = 0;
		/* Any other method is the handler's (WebDAV, PURGE, ...);
		 * a tunnel is not something this server can give. */
		if (fut__http_is(r->head.method, r->head.method_len,
				 "CONNECT")) {
			error_response(c, 501);
			return;
		}
		if (!r->head.chunked && r->head.content_length <= 0) {
			c->dec_end = c->head_len;
			dispatch(c);
			return;
		}
		c->phase = P_BODY;
		c->deadline = now_ms(c) + s->o.body_timeout_ms;
		c->body_next = BODY_SLICE;
		c->dec_end = c->head_len;
		memset(&c->ch, 0, sizeof(c->ch));
		if (r->head.expect_continue && s->o.expect &&
		    expect_refused(c))
			return;
		if (r->head.expect_continue && c->in_len == c->head_len)
			fut_unref(fut_send(c->loop, c->fd,
					   "HTTP/1.1 100 Continue\r\n\r\n", 25,
					   MSG_NOSIGNAL));
	}
	/* P_BODY */
	if (!r->head.chunked) {
		size_t need = c->head_len + (size_t)r->head.content_length;
		if (c->in_len >= need) {
			c->dec_end = need;
			dispatch(c);
		} else {
			body_progress(c, c->in_len - c->head_len);
			conn_read(c);
		}
		return;
	}
	size_t n = c->in_len - c->dec_end, rest;
	int rc = fut_http_chunked_decode(&c->ch, c->in + c->dec_end, &n, &rest,
					 s->lim.max_body);
	if (rc < 0) {
		int st = fut_http_status_of(rc);
		error_response(c, st ? st : 400);
		return;
	}
	c->dec_end += n;
	if (rc == 1) {
		c->in_len = c->dec_end + rest;
		dispatch(c);
		return;
	}
	c->in_len = c->dec_end;
	if (c->in_len == c->in_cap &&
	    c->in_cap >= c->head_len + s->lim.max_body + 65536) {
		error_response(c, 413);
		return;
	}
	body_progress(c, c->dec_end - c->head_len);
	conn_read(c);
}

static void on_recv(fut *f, void *arg)
{
	struct conn *c = arg;
	int64_t n = fut_error(f) ? fut_error(f) : fut_value(f);
	c->io = NULL;
	if (c->closing || !c->srv) {
		conn_close(c);
		return;
	}
	if (c->phase == P_LINGER) {
		c->lingered += n > 0 ? (size_t)n : 0;
		c->in_len = 0;
		if (n > 0 && c->lingered < c->srv->o.linger_bytes &&
		    !c->timed_out)
			conn_read(c);
		else
			conn_close(c);
		return;
	}
	if (c->timed_out) {
		/* The sweep's cancel may come after the recv completed (its
		 * bytes arrived in the same tick): a request under way is
		 * late all the same, else a client trickling bytes would
		 * escape every timeout. */
		c->timed_out = 0;
		int started = c->phase == P_BODY ||
			      (c->phase == P_HEAD && c->seen);
		if (started && (n == -ECANCELED || n > 0)) {
			error_response(c, 408);
			return;
		}
		if (n == -ECANCELED) {
			conn_close(c); /* idle keep-alive, or nothing sent */
			return;
		}
	}
	if (n <= 0) { /* EOF, reset: nobody to answer */
		conn_close(c);
		return;
	}
	c->in_len += (size_t)n;
	process_input(c);
}

static void conn_next(struct conn *c)
{
	fut_http_server *s = c->srv;
	if (!s || s->stopping) {
		conn_close(c);
		return;
	}
	c->phase = P_HEAD;
	c->seen = 0;
	c->first = 0;
	c->timed_out = 0;
	in_trim(c);
	if (c->in_len) {
		process_input(c);
		return;
	}
	c->deadline = now_ms(c) + s->o.idle_timeout_ms;
	conn_read(c);
}

/* ---- accepting ---- */

static void conn_new(fut_http_server *s, int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct fut_http_header *hv =
		c ? malloc(s->lim.max_headers * sizeof(*hv)) : NULL;
	if (!hv) {
		free(c);
		close(fd);
		return;
	}
	c->hdrv = hv;
	c->srv = s;
	c->loop = s->loop;
	c->fd = fd;
	c->high_water = s->o.stream_high_water;
	c->req.wtail = &c->req.waiters;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	c->phase = P_HEAD;
	c->seen = 0;
	c->first = 1;
	/* A new connection has header_timeout to send its first request. */
	c->deadline = now_ms(c) + s->o.header_timeout_ms;
	conn_read(c);
}

static void anchor_done(struct anchor *a)
{
	if (--a->pending == 0 && !a->srv)
		free(a);
}

/* A callback hung on the anchor has run: the server, or NULL if it is
 * gone. */
static fut_http_server *anchor_take(struct anchor *a)
{
	fut_http_server *s = a->srv;
	anchor_done(a);
	return s;
}

static void on_pause(fut *f, void *arg)
{
	(void)f;
	fut_http_server *s = anchor_take(arg);
	if (!s)
		return;
	s->pause_f = NULL;
	start_accept(s);
}

/*
 * One accept's result. Returns 1 when the server should accept again
 * now (a connection came, or an error that a retry may not repeat).
 */
static int accepted(fut_http_server *s, int64_t v)
{
	if (v >= 0 && s->stopping) { /* came after stop_listening */
		close((int)v);
		return 0;
	}
	if (v >= 0) {
		conn_new(s, (int)v);
		/* At the cap: the other listeners' armed accepts would take
		 * connections over it; they are armed again below it. */
		if (s->nconns >= s->o.max_connections)
			for (unsigned i = 0; i < s->nls; i++)
				if (s->ls[i].accept_f)
					fut_cancel(s->ls[i].accept_f);
		return 1;
	}
	if (v == -EMFILE || v == -ENFILE || v == -ENOBUFS || v == -ENOMEM) {
		/* Out of descriptors: the connection waits in the backlog;
		 * try again shortly instead of spinning (one pause for every
		 * listener). */
		if (s->pause_f)
			return 0;
		s->pause_f = fut_sleep(s->loop, EMFILE_PAUSE_MS);
		if (s->pause_f) {
			s->anchor->pending++;
			fut_on_done(s->pause_f, on_pause, s->anchor);
		}
		return 0;
	}
	return !(v == -ECANCELED || v == -EBADF || v == -EINVAL ||
		 v == -ENOTSOCK || s->stopping);
}

static void on_accept(fut *f, void *arg)
{
	struct anchor *a = arg;
	fut_http_server *s = a->srv;
	int64_t v = fut_error(f) ? fut_error(f) : fut_value(f);
	anchor_done(a);
	if (!s) {
		if (v >= 0)
			close((int)v);
		return;
	}
	for (unsigned i = 0; i < s->nls; i++)
		if (s->ls[i].accept_f == f) {
			s->ls[i].accept_f = NULL;
		}
	/* Cancelled at the cap (accepted): armed again if below it now. */
	if (accepted(s, v) || (v == -ECANCELED && !s->stopping))
		start_accept(s);
}

/*
 * Accept until one has to wait. An accept the backend completes at once
 * (the backlog had a connection) is taken here, without waiting a tick
 * for its callback, as nginx's multi_accept and libuv's uv__server_io
 * take the whole backlog: one connection per tick drained a burst of 500
 * on the threads backend at 0.7 ms per accept, since each tick also ran
 * hundreds of completions, and that was all of its wrk -c500 p99 of
 * 0.5..0.9 s (session 8). Costs nothing when connections come one at a
 * time: the next accept was tried anyway.
 */
static void accept_on(fut_http_server *s, struct listener *l)
{
	for (int i = 0;; i++) {
		if (s->stopping || l->accept_f || s->pause_f || l->fd < 0 ||
		    s->nconns >= s->o.max_connections)
			return;
		fut *f = fut_accept(s->loop, l->fd, NULL, NULL);
		if (!f)
			return;
		/* After a full batch the rest waits for the next tick. */
		if (fut_state(f) == FUT_PENDING || i == ACCEPT_BATCH) {
			l->accept_f = f;
			s->anchor->pending++;
			fut_on_done(f, on_accept, s->anchor);
			return;
		}
		int64_t v = fut_error(f) ? fut_error(f) : fut_value(f);
		fut_unref(f);
		if (!accepted(s, v))
			return;
	}
}

static void start_accept(fut_http_server *s)
{
	for (unsigned i = 0; i < s->nls; i++)
		accept_on(s, &s->ls[i]);
}

/* ---- timeouts ---- */

/*
 * A handler that takes long (a proxy, a long poll) holds its connection,
 * and a client that left meanwhile would hold it on: a client that sends
 * a request and closes, ten thousand times, kept the server at its
 * connection cap for as long as the handlers ran (load audit). So once a
 * handler has run for WATCH_AFTER_MS, a 0-byte recv watches the socket
 * (short handlers, nearly all of them, never pay for it):
 *  - a reset: nobody is left to answer; the connection closes now, and
 *    the handler's response fails with -EPIPE, as after a shutdown;
 *  - end of stream: the client may have half-closed and still wait for
 *    the answer (nc -N, some HTTP/1.0 clients; Go's server, too, answers
 *    them), or be gone. The handler gets write_timeout_ms more; then the
 *    connection closes as above. The connection closes after a response;
 *  - bytes: a pipelined request, read in its turn; the watch stops.
 */
#define WATCH_AFTER_MS 1000

static void on_watch(fut *f, void *arg)
{
	struct conn *c = arg;
	int64_t r = fut_error(f) ? fut_error(f) : fut_value(f);
	c->watch = NULL;
	if (c->closing || !c->srv) {
		conn_close(c);
		return;
	}
	if (r == -ECANCELED || c->phase != P_HANDLER || c->req.ended)
		return; /* withdrawn: the response is done */
	char b;
	ssize_t n = r < 0 ? -1 : recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n > 0) {
		c->unwatched = 1; /* a pipelined request: its turn comes */
		return;
	}
	if (n < 0 && r >= 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return; /* nothing after all: the next sweep looks again */
	if (n < 0) {
		conn_close(c);
		return;
	}
	c->peer_eof = 1;
	c->req.close_after = 1;
	c->deadline = now_ms(c) + c->srv->o.write_timeout_ms;
}

static void watch_start(struct conn *c)
{
	fut *f = fut_recv(c->loop, c->fd, NULL, 0, 0);
	if (!f)
		return; /* out of memory: the next sweep tries again */
	c->watch = f;
	fut_on_done(f, on_watch, c);
}

static void sweep(fut_timer *t, void *arg)
{
	(void)t;
	fut_http_server *s = arg;
	uint64_t now = fut_loop_now(s->loop);
	for (struct conn *c = s->conns, *next; c; c = next) {
		next = c->next; /* a close below unlinks c */
		if (c->deadline && now >= c->deadline && c->io &&
		    !c->timed_out) {
			c->timed_out = 1;
			fut_cancel(c->io);
		} else if (c->phase != P_HANDLER || c->req.ended || c->io ||
			   c->closing || c->fd < 0) {
			continue;
		} else if (c->peer_eof && now >= c->deadline) {
			conn_close(c);
		} else if (c->in_len > c->dec_end) {
			/* A pipelined request is read already: the socket's
			 * end of stream says nothing of it (a watch took it
			 * for a client gone, and dropped that request). */
			continue;
		} else if (!c->watch && !c->peer_eof && !c->unwatched &&
			   now - c->handler_since >= WATCH_AFTER_MS) {
			watch_start(c);
		}
	}
}

static unsigned min_u(unsigned a, unsigned b)
{
	return a < b ? a : b;
}

/* ---- the server ---- */

/*
 * A listening socket for one address. v6only: 1 or 0 sets IPV6_V6ONLY,
 * -1 leaves the system's default. Returns the fd or a negative error.
 */
static int listen_one(const struct addrinfo *ai, int v6only,
		      const struct fut_http_server_opts *o)
{
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			0);
	int err = fd < 0 ? -errno : 0;
	int one = 1;
	if (!err)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (!err && ai->ai_family == AF_INET6 && v6only >= 0 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
		       sizeof(v6only)) < 0)
		err = -EAFNOSUPPORT;
	if (!err && o->reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		err = -errno;
	/* The kernel holds a connection until its first bytes come (as
	 * Apache's default "AcceptFilter http data" does): the accept then
	 * finds the request there, the first recv succeeds and the fd is
	 * never registered with epoll. For ab without -k that was 36 ->
	 * 22 us of server CPU per connection (BENCHMARKS.md). A silent
	 * client costs the kernel a request socket, not us a connection,
	 * and is handed over after about defer_accept_s seconds. */
	int defer = o->defer_accept_s ? o->defer_accept_s : 1;
	if (!err && defer > 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer,
				 sizeof(defer));
	if (!err && (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
		     listen(fd, o->backlog) < 0))
		err = -errno;
	if (err && fd >= 0)
		close(fd);
	return err ? err : fd;
}

static int port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	return ntohs(ss.ss_family == AF_INET6 ?
		     ((struct sockaddr_in6 *)&ss)->sin6_port :
		     ((struct sockaddr_in *)&ss)->sin_port);
}

/* The same address, whatever the port. */
static int same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return 0;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a,
				  *y = (const struct sockaddr_in6 *)b;
	return a->sa_family == AF_INET6 &&
	       !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) &&
	       x->sin6_scope_id == y->sin6_scope_id;
}

static void set_port(struct sockaddr *sa, int port)
{
	if (sa->sa_family == AF_INET6)
		((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
}

/*
 * Listen on host (NULL: every address, IPv6 and IPv4 alike, as Go's and
 * Node's servers do: a client that resolves "localhost" to ::1 first, as
 * ab does with no fallback, must find the server). A name listens on every
 * address it resolves to, as nginx does ("localhost" is 127.0.0.1 and
 * ::1: a client may try either), each on the same port; an address this
 * machine cannot bind (IPv6 switched off) is skipped while another works.
 * Fills s->ls and s->port; returns 0 or a negative error.
 */
static int listen_on(fut_http_server *s, const char *host)
{
	const struct fut_http_server_opts *o = &s->o;
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai = NULL;
	char port[8];
	snprintf(port, sizeof(port), "%d", o->port);
	errno = 0;
	int gai = getaddrinfo(host ? host : "::", port, &hints, &ai);
	if (gai)
		return !host ? -EAFNOSUPPORT : fut__http_gai_error(gai);
	/* Several addresses: each IPv6 socket takes IPv6 only, or "::" would
	 * take the port of "0.0.0.0" too. */
	int many = ai->ai_next != NULL;
	int err, skipped, attempt = 0;
again:
	err = skipped = 0;
	for (struct addrinfo *i = ai; i; i = i->ai_next)
		set_port(i->ai_addr, o->port);
	for (struct addrinfo *i = ai; i && s->nls < MAX_LISTEN; i = i->ai_next) {
		int dup = 0;
		for (struct addrinfo *j = ai; j != i; j = j->ai_next)
			dup |= same_addr(j->ai_addr, i->ai_addr);
		if (dup)
			continue;
		if (s->nls) /* port 0 chose one: the others take it too */
			set_port(i->ai_addr, s->port);
		int fd = listen_one(i, !host ? 0 : many ? 1 : -1, o);
		if (fd == -EADDRNOTAVAIL || fd == -EAFNOSUPPORT) {
			skipped = fd;
			continue;
		}
		if (fd < 0) {
			err = fd;
			break;
		}
		if (!s->nls)
			s->port = port_of(fd);
		s->ls[s->nls].fd = fd;
		s->ls[s->nls++].accept_f = NULL;
	}
	if (!err && !s->nls)
		/* IPv6 switched off (ipv6.disable=1 or disable_ipv6): for
		 * NULL the caller falls back to IPv4. */
		err = !host ? -EAFNOSUPPORT : skipped;
	if (err) {
		int retry = err == -EADDRINUSE && !o->port && s->nls &&
			    ++attempt < 8;
		while (s->nls)
			close(s->ls[--s->nls].fd);
		/* Port 0: the port the first address got is taken on another
		 * one; any free port was asked for, so try another. */
		if (retry)
			goto again;
	}
	freeaddrinfo(ai);
	return err;
}

int fut_http_server_new(fut_loop *loop, const struct fut_http_server_opts *o,
			fut_http_server **out)
{
	if (out)
		*out = NULL;
	if (!loop || !o || !out || !o->handler || o->port < 0 ||
	    o->port > 65535 || o->backlog < 0 || o->defer_accept_s < -1 ||
	    o->reserved32)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(o->reserved) / sizeof(o->reserved[0]); i++)
		if (o->reserved[i])
			return -EINVAL;
	for (size_t i = 0; i < 4; i++)
		if (o->limits.reserved[i])
			return -EINVAL;
	fut_http_server *s = calloc(1, sizeof(*s));
	struct anchor *a = calloc(1, sizeof(*a));
	if (!s || !a) {
		free(s);
		free(a);
		return -ENOMEM;
	}
	s->loop = loop;
	s->o = *o;
	s->anchor = a;
	a->srv = s;
	fut__http_limits(&o->limits, &s->lim);
	if (!s->o.backlog)
		s->o.backlog = DEF_BACKLOG;
	if (!s->o.max_connections)
		s->o.max_connections = DEF_MAX_CONN;
	if (!s->o.header_timeout_ms)
		s->o.header_timeout_ms = DEF_HEADER_TIMEOUT;
	if (!s->o.body_timeout_ms)
		s->o.body_timeout_ms = DEF_BODY_TIMEOUT;
	if (!s->o.idle_timeout_ms)
		s->o.idle_timeout_ms = DEF_IDLE_TIMEOUT;
	if (!s->o.write_timeout_ms)
		s->o.write_timeout_ms = DEF_WRITE_TIMEOUT;
	if (!s->o.linger_ms)
		s->o.linger_ms = DEF_LINGER_MS;
	if (!s->o.linger_bytes)
		s->o.linger_bytes = DEF_LINGER_BYTES;
	if (!s->o.stream_high_water)
		s->o.stream_high_water = DEF_HIGH_WATER;
	int err = listen_on(s, o->host);
	if (!o->host && err == -EAFNOSUPPORT)
		err = listen_on(s, "0.0.0.0"); /* no IPv6 here */
	if (err)
		goto fail;
	unsigned tick = min_u(min_u(s->o.header_timeout_ms, s->o.body_timeout_ms),
			      min_u(s->o.idle_timeout_ms, s->o.write_timeout_ms));
	tick = min_u(tick, s->o.linger_ms);
	tick = tick / 4 < 10 ? 10 : tick / 4 > 1000 ? 1000 : tick / 4;
	s->sweep = fut_timer_new(loop, tick, sweep, s);
	if (!s->sweep) {
		err = -ENOMEM;
		goto fail;
	}
	start_accept(s);
	*out = s;
	return 0;
fail:
	while (s->nls)
		close(s->ls[--s->nls].fd);
	free(a);
	free(s);
	return err;
}

int fut_http_server_port(const fut_http_server *s)
{
	return s ? s->port : -EINVAL;
}

static void on_deadline(fut *f, void *arg)
{
	(void)f;
	fut_http_server *s = anchor_take(arg);
	if (!s)
		return;
	s->deadline_f = NULL;
	while (s->conns) {
		struct conn *c = s->conns;
		detach(c);
		conn_close(c);
	}
}

static void stop_listening(fut_http_server *s)
{
	s->stopping = 1;
	if (s->pause_f)
		fut_cancel(s->pause_f);
	for (unsigned i = 0; i < s->nls; i++) {
		struct listener *l = &s->ls[i];
		if (l->accept_f)
			fut_cancel(l->accept_f);
		if (l->fd < 0)
			continue;
		/* Refuse new connections and free the port now: the close
		 * itself may complete later (io_uring closes through the ring,
		 * threads first interrupts a worker's accept), and a program
		 * that binds the port again, or a client that connects, in
		 * between saw a listener still there. */
		(void)shutdown(l->fd, SHUT_RDWR);
		fut_unref(fut_close(s->loop, l->fd));
		l->fd = -1;
	}
}

fut *fut_http_server_shutdown(fut_http_server *s, unsigned deadline_ms)
{
	if (!s)
		return NULL;
	if (s->shutdown_f)
		return fut_ref(s->shutdown_f);
	s->shutdown_f = fut_new(s->loop);
	if (!s->shutdown_f)
		return NULL;
	stop_listening(s);
	/* Idle connections go now; the others after their response. */
	struct conn *c = s->conns, *n;
	for (; c; c = n) {
		n = c->next;
		if ((c->phase == P_HEAD && !c->seen && !c->in_len) ||
		    c->phase == P_LINGER)
			conn_close(c);
		else
			c->req.close_after = 1;
	}
	if (!s->nconns) {
		shutdown_done(s);
	} else {
		s->deadline_f = fut_sleep(s->loop, deadline_ms);
		if (s->deadline_f) {
			s->anchor->pending++;
			fut_on_done(s->deadline_f, on_deadline, s->anchor);
		}
	}
	return fut_ref(s->shutdown_f);
}

void fut_http_server_free(fut_http_server *s)
{
	if (!s)
		return;
	stop_listening(s);
	if (s->deadline_f)
		fut_cancel(s->deadline_f);
	s->deadline_f = NULL;
	if (s->sweep)
		fut_timer_free(s->sweep);
	s->sweep = NULL;
	/* Before the connections go: their detach must not take a shutdown
	 * cut short for one that completed. */
	if (s->shutdown_f) {
		fut_reject(s->shutdown_f, -ECANCELED); /* no-op if resolved */
		fut_unref(s->shutdown_f);
		s->shutdown_f = NULL;
	}
	while (s->conns) {
		struct conn *c = s->conns;
		detach(c);
		conn_close(c);
	}
	s->anchor->srv = NULL;
	if (!s->anchor->pending)
		free(s->anchor);
	free(s);
}

/* ---- request accessors ---- */

const struct fut_http_request_head *fut_http_req_head(const fut_http_req *r)
{
	return r ? &r->head : NULL;
}

const char *fut_http_req_header(const fut_http_req *r, const char *name,
				size_t *len)
{
	if (!r || !name)
		return NULL;
	const struct fut_http_request_head *h = &r->head;
	/* absolute-form: the target's authority is the host, whatever Host
	 * says (RFC 9112 3.2.2: the server MUST ignore Host then). The
	 * parser accepted the target: "scheme://authority[/?...]". */
	const char *sep = h->target_len && h->target[0] != '/' &&
			  h->target[0] != '*' &&
			  !fut__http_is(h->method, h->method_len, "CONNECT") ?
		memchr(h->target, ':', h->target_len) : NULL;
	if (sep && fut__http_ieq(name, strlen(name), "host")) {
		const char *a = sep + 3, *e = h->target + h->target_len, *p = a;
		while (p < e && *p != '/' && *p != '?')
			p++;
		/* Another scheme may have an empty host ("foo:///x"): then
		 * the field is all there is. */
		if (p > a && *a != ':') {
			if (len)
				*len = (size_t)(p - a);
			return a;
		}
	}
	return fut__http_find(h->headers, h->num_headers, name, len);
}

const void *fut_http_req_body(const fut_http_req *r, size_t *len)
{
	if (!r)
		return NULL;
	if (len)
		*len = r->body_len;
	return r->body;
}

fut_loop *fut_http_req_loop(const fut_http_req *r)
{
	return r ? r->c->loop : NULL;
}
