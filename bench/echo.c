/*
 * Backends benchmark: socket echo over loopback TCP.
 *
 * One process, two threads. The server is a libfuture loop on the main
 * thread (not pinned; see main): fut_accept() takes the 64 connections, then
 * every connection runs its own loop of
 *
 *     fut_on_done(fut_then(fut_recv(conn, 1 KiB), send_back), next)
 *
 * where send_back returns fut_send() of the bytes that arrived and next
 * starts the following fut_recv(). The client thread (pinned to cpu 1)
 * keeps exactly one 1 KiB message in flight on each of the 64 connections,
 * checks the echoed bytes, and stops after N round trips in total (default
 * 400,000). It drives its sockets through its own io_uring: one
 * io_uring_enter submits every send and recv that a batch of replies
 * calls for, so the client costs about a third of the system calls of an
 * epoll + recv + send client and the server, not the client, is what the
 * round-trip time measures. ECHO_CLIENT=epoll selects that older client
 * (epoll set, recv and send per message), which was the limit: with it
 * every backend measured within noise of the others.
 *
 * Metric "rt": client wall time from the first send to the last reply,
 * divided by N, i.e. ns per round trip with 64 in flight (the inverse of
 * the throughput). The client thread is usually the limit, so metric
 * "srv_cpu" gives what the server spent: the process's CPU time over the
 * same interval minus the client thread's (io_uring's kernel workers and
 * the threads backend's workers count as server), per round trip. The implementation name is the backend the server
 * loop actually ran on (fut_loop_backend), chosen by FUTURE_BACKEND as
 * usual; bench/run.sh runs the program once per backend.
 *
 * -o libuv serves the same echo with libuv instead (uv_read_start, then
 * uv_try_write and uv_write for what does not fit), against the same
 * client: the peer for "faster than libuv at the jobs they share".
 *
 * Usage: echo [-r reps] [-n round_trips] [-o libuv]
 */
#include "bench.h"
#include "future.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <liburing.h>
#include <uv.h>

#define BENCH "echo"
#define NCONN 64
#define MSG 1024
/* Both servers read into 64 KiB, libuv's suggested_size: a read that
 * fills its buffer cannot tell that the socket is drained, so a buffer
 * the size of one message costs a second, empty read per message. */
#define SRV_BUF 65536

static long n_rounds;

/* ------------------------------------------------------------------ */
/* server: libfuture                                                   */

struct conn {
	fut_loop *loop;
	int fd;
	char buf[SRV_BUF];
};

static int srv_listen_fd;
static int srv_accepted;
static int srv_closed;
static long srv_echoed; /* bytes echoed by the server */

static void srv_recv_next(struct conn *c);

static void srv_closed_cb(fut *f, void *arg)
{
	int err = fut_error(f);
	if (err)
		bench_die("server: fut_close: %s", fut_strerror(err));
	free(arg);
	srv_closed++;
}

static fut *srv_send_back(fut *f, void *arg)
{
	struct conn *c = arg;
	int64_t n = fut_value(f);
	if (n == 0)
		return NULL; /* end of stream: the chain resolves with 0 */
	srv_echoed += n;
	return fut_send(c->loop, c->fd, c->buf, (size_t)n, 0);
}

static void srv_round_done(fut *f, void *arg)
{
	struct conn *c = arg;
	int err = fut_error(f);
	if (err)
		bench_die("server: recv/send on fd %d: %s", c->fd,
			  fut_strerror(err));
	if (fut_value(f) == 0) { /* the client closed this connection */
		fut *cl = fut_close(c->loop, c->fd);
		if (!cl)
			bench_die("server: fut_close: out of memory");
		if (fut_on_done(cl, srv_closed_cb, c) < 0)
			bench_die("server: fut_on_done failed");
		return;
	}
	srv_recv_next(c);
}

static void srv_recv_next(struct conn *c)
{
	fut *r = fut_recv(c->loop, c->fd, c->buf, sizeof c->buf, 0);
	if (!r)
		bench_die("server: fut_recv: out of memory");
	fut *g = fut_then(r, srv_send_back, c);
	if (!g)
		bench_die("server: fut_then: out of memory");
	int e = fut_on_done(g, srv_round_done, c);
	if (e < 0)
		bench_die("server: fut_on_done: %s", fut_strerror(e));
}

static void srv_listener_closed(fut *f, void *arg)
{
	(void)arg;
	int err = fut_error(f);
	if (err)
		bench_die("server: fut_close(listener): %s", fut_strerror(err));
}

static void srv_on_accept(fut *f, void *arg)
{
	fut_loop *loop = arg;
	int err = fut_error(f);
	if (err)
		bench_die("server: fut_accept: %s", fut_strerror(err));
	struct conn *c = malloc(sizeof *c);
	if (!c)
		bench_die("out of memory");
	c->loop = loop;
	c->fd = (int)fut_value(f);
	int one = 1;
	if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
		bench_die("setsockopt(TCP_NODELAY): %s", strerror(errno));
	srv_recv_next(c);
	fut *next;
	if (++srv_accepted < NCONN)
		next = fut_accept(loop, srv_listen_fd, NULL, NULL);
	else
		next = fut_close(loop, srv_listen_fd);
	if (!next)
		bench_die("server: out of memory");
	int e = fut_on_done(next, srv_accepted < NCONN ? srv_on_accept
						       : srv_listener_closed,
			    loop);
	if (e < 0)
		bench_die("server: fut_on_done: %s", fut_strerror(e));
}

/* ------------------------------------------------------------------ */
/* client: blocking sockets + epoll, on its own thread                */

struct client {
	struct sockaddr_in addr;
	uint64_t t0, t1;
	uint64_t srv_cpu; /* process CPU minus this thread's, t0..t1 */
	long done;
};

struct cconn {
	int fd;
	int got;      /* bytes of the current reply received */
	int inflight; /* a message is out */
	unsigned seq;
	char out[MSG];
	char in[MSG];
};

static uint64_t cpu_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void fill_msg(struct cconn *c, int idx)
{
	/* different bytes per connection and message, so a crossed or
	 * stale reply is caught */
	for (int i = 0; i < MSG; i++)
		c->out[i] = (char)(idx * 31 + c->seq * 7 + i);
}

static void client_send(struct cconn *c, int idx)
{
	c->seq++;
	fill_msg(c, idx);
	ssize_t n = send(c->fd, c->out, MSG, MSG_NOSIGNAL);
	if (n != MSG) /* blocking socket, empty send buffer: all or error */
		bench_die("client: send: %s", n < 0 ? strerror(errno) : "short");
	c->got = 0;
	c->inflight = 1;
}

/* A whole reply is in: check it and count it. Returns 1 when another
 * message is to go out on c (counted as sent). */
static int reply_in(struct cconn *c, int i, long *done, long *inflight,
		    long *sent)
{
	if (memcmp(c->in, c->out, MSG) != 0)
		bench_die("client: connection %d: echo differs", i);
	c->inflight = 0;
	++*done;
	--*inflight;
	if (*sent >= n_rounds)
		return 0;
	++*sent;
	++*inflight;
	return 1;
}

static void client_connect(struct client *cl, struct cconn *c)
{
	memset(c, 0, sizeof *c);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		bench_die("client: socket: %s", strerror(errno));
	int one = 1;
	if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
		bench_die("setsockopt(TCP_NODELAY): %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&cl->addr, sizeof cl->addr) < 0)
		bench_die("client: connect: %s", strerror(errno));
}

/* The clock stops, the server's CPU is taken, the connections close. */
static void client_finish(struct client *cl, struct cconn *cs, long done,
			  uint64_t p0, uint64_t c0)
{
	cl->t1 = bench_now_ns();
	cl->srv_cpu = cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - p0 -
		      (cpu_ns(CLOCK_THREAD_CPUTIME_ID) - c0);
	cl->done = done;
	for (int i = 0; i < NCONN; i++)
		if (close(cs[i].fd) < 0)
			bench_die("client: close: %s", strerror(errno));
}

static void *client_epoll(void *arg)
{
	struct client *cl = arg;
	static struct cconn cs[NCONN];
	bench_pin_self(1);

	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		bench_die("epoll_create1: %s", strerror(errno));
	for (int i = 0; i < NCONN; i++) {
		struct cconn *c = &cs[i];
		client_connect(cl, c);
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
		if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
			bench_die("epoll_ctl: %s", strerror(errno));
	}

	long sent = 0, done = 0, inflight = 0;
	uint64_t p0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
	uint64_t c0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
	cl->t0 = bench_now_ns();
	for (int i = 0; i < NCONN && sent < n_rounds; i++, sent++, inflight++)
		client_send(&cs[i], i);
	struct epoll_event evs[NCONN];
	while (inflight > 0) {
		int k = epoll_wait(ep, evs, NCONN, 10000);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			bench_die("epoll_wait: %s", strerror(errno));
		if (k == 0)
			bench_die("client: no reply for 10 s (%ld of %ld done)",
				  done, n_rounds);
		for (int j = 0; j < k; j++) {
			int i = (int)evs[j].data.u32;
			struct cconn *c = &cs[i];
			ssize_t n = recv(c->fd, c->in + c->got,
					 (size_t)(MSG - c->got), MSG_DONTWAIT);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0)
				bench_die("client: recv: %s",
					  n < 0 ? strerror(errno) : "server closed");
			if (!c->inflight)
				bench_die("client: unexpected bytes on connection %d", i);
			c->got += (int)n;
			if (c->got < MSG)
				continue;
			if (reply_in(c, i, &done, &inflight, &sent))
				client_send(c, i);
		}
	}
	client_finish(cl, cs, done, p0, c0);
	close(ep);
	return NULL;
}


/* user_data: connection index, and which of its two ops completed */
#define UD_SEND (1u << 16)

static struct io_uring_sqe *client_sqe(struct io_uring *ring)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	if (!sqe) { /* full: 2 per connection fit, but be safe */
		io_uring_submit(ring);
		sqe = io_uring_get_sqe(ring);
	}
	if (!sqe)
		bench_die("client: io_uring_get_sqe: ring full");
	return sqe;
}

static void client_queue_recv(struct io_uring *ring, struct cconn *c, int i)
{
	struct io_uring_sqe *sqe = client_sqe(ring);
	io_uring_prep_recv(sqe, c->fd, c->in + c->got, (size_t)(MSG - c->got),
			   MSG_WAITALL);
	io_uring_sqe_set_data64(sqe, (uint64_t)i);
}

/* The message and the recv of its reply, both queued: one enter for both. */
static void client_queue_msg(struct io_uring *ring, struct cconn *c, int i)
{
	c->seq++;
	fill_msg(c, i);
	c->got = 0;
	c->inflight = 1;
	struct io_uring_sqe *sqe = client_sqe(ring);
	io_uring_prep_send(sqe, c->fd, c->out, MSG, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, (uint64_t)i | UD_SEND);
	client_queue_recv(ring, c, i);
}

static void *client_uring(void *arg)
{
	struct client *cl = arg;
	static struct cconn cs[NCONN];
	bench_pin_self(1);

	/* Task work runs when this thread enters the ring, never through an
	 * IPI from the server's send: on a paravirtual guest that interrupt
	 * costs the sending server more than its whole send. */
	struct io_uring ring;
	int r = io_uring_queue_init(4 * NCONN, &ring, IORING_SETUP_SINGLE_ISSUER |
				    IORING_SETUP_DEFER_TASKRUN);
	if (r == -EINVAL)
		r = io_uring_queue_init(4 * NCONN, &ring, IORING_SETUP_COOP_TASKRUN);
	if (r == -EINVAL)
		r = io_uring_queue_init(4 * NCONN, &ring, 0);
	if (r < 0)
		bench_die("client: io_uring_queue_init: %s (ECHO_CLIENT=epoll "
			  "runs the epoll client)", strerror(-r));
	for (int i = 0; i < NCONN; i++)
		client_connect(cl, &cs[i]);

	long sent = 0, done = 0, inflight = 0;
	uint64_t p0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
	uint64_t c0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
	cl->t0 = bench_now_ns();
	for (int i = 0; i < NCONN && sent < n_rounds; i++, sent++, inflight++)
		client_queue_msg(&ring, &cs[i], i);
	while (inflight > 0) {
		struct __kernel_timespec ts = { .tv_sec = 10 };
		struct io_uring_cqe *cqe;
		r = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, NULL);
		if (r == -EINTR)
			continue;
		if (r == -ETIME)
			bench_die("client: no reply for 10 s (%ld of %ld done)",
				  done, n_rounds);
		if (r < 0)
			bench_die("client: io_uring_submit_and_wait: %s",
				  strerror(-r));
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&ring, head, cqe) {
			seen++;
			int i = (int)(cqe->user_data & 0xffff);
			struct cconn *c = &cs[i];
			if (cqe->user_data & UD_SEND) {
				if (cqe->res != MSG)
					bench_die("client: send: %s", cqe->res < 0
						  ? strerror(-cqe->res) : "short");
				continue;
			}
			if (cqe->res <= 0)
				bench_die("client: recv: %s", cqe->res < 0
					  ? strerror(-cqe->res) : "server closed");
			c->got += cqe->res;
			if (c->got < MSG) { /* MSG_WAITALL cut short by a signal */
				client_queue_recv(&ring, c, i);
				continue;
			}
			if (reply_in(c, i, &done, &inflight, &sent))
				client_queue_msg(&ring, c, i);
		}
		io_uring_cq_advance(&ring, seen);
	}
	client_finish(cl, cs, done, p0, c0);
	io_uring_queue_exit(&ring);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* server: libuv, the same echo written as its users write it          */

struct uvconn {
	uv_tcp_t h;
	char buf[SRV_BUF];
};

struct uvwrite {
	uv_write_t req;
	char data[];
};

static uv_tcp_t uv_listener;

static void uv_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	(void)hint;
	struct uvconn *c = (struct uvconn *)h;
	*b = uv_buf_init(c->buf, sizeof c->buf);
}

static void uv_conn_closed(uv_handle_t *h)
{
	free(h);
	srv_closed++;
}

static void uv_written(uv_write_t *req, int status)
{
	if (status < 0)
		bench_die("libuv server: write: %s", uv_strerror(status));
	free(req);
}

/* uv_try_write first, as libuv's own docs suggest; what does not fit
 * goes out with uv_write from a copy (the read buffer is reused). */
static void uv_on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	if (n == UV_EOF) {
		uv_close((uv_handle_t *)st, uv_conn_closed);
		return;
	}
	if (n < 0)
		bench_die("libuv server: read: %s", uv_strerror((int)n));
	if (n == 0)
		return;
	srv_echoed += n;
	uv_buf_t out = uv_buf_init(b->base, (unsigned)n);
	int w = uv_try_write(st, &out, 1);
	if (w == n)
		return;
	if (w < 0 && w != UV_EAGAIN)
		bench_die("libuv server: try_write: %s", uv_strerror(w));
	size_t off = w > 0 ? (size_t)w : 0, left = (size_t)n - off;
	struct uvwrite *wr = malloc(sizeof *wr + left);
	if (!wr)
		bench_die("out of memory");
	memcpy(wr->data, b->base + off, left);
	out = uv_buf_init(wr->data, (unsigned)left);
	int e = uv_write(&wr->req, st, &out, 1, uv_written);
	if (e < 0)
		bench_die("libuv server: write: %s", uv_strerror(e));
}

static void uv_on_conn(uv_stream_t *l, int status)
{
	if (status < 0)
		bench_die("libuv server: listen: %s", uv_strerror(status));
	struct uvconn *c = malloc(sizeof *c);
	if (!c)
		bench_die("out of memory");
	uv_tcp_init(l->loop, &c->h);
	int e = uv_accept(l, (uv_stream_t *)&c->h);
	if (e == 0)
		e = uv_tcp_nodelay(&c->h, 1);
	if (e == 0)
		e = uv_read_start((uv_stream_t *)&c->h, uv_alloc, uv_on_read);
	if (e < 0)
		bench_die("libuv server: accept: %s", uv_strerror(e));
	if (++srv_accepted == NCONN)
		uv_close((uv_handle_t *)&uv_listener, NULL);
}

/* Bound, listening, and run until the client's connections have closed. */
static void run_libuv(struct client *cl, pthread_t *t, void *(*client)(void *))
{
	uv_loop_t loop;
	int e = uv_loop_init(&loop);
	if (e == 0)
		e = uv_tcp_init(&loop, &uv_listener);
	if (e == 0)
		e = uv_tcp_open(&uv_listener, srv_listen_fd);
	if (e == 0)
		e = uv_listen((uv_stream_t *)&uv_listener, 2 * NCONN, uv_on_conn);
	if (e < 0)
		bench_die("libuv server: %s", uv_strerror(e));
	int r = pthread_create(t, NULL, client, cl);
	if (r != 0)
		bench_die("pthread_create: %s", strerror(r));
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0)
		bench_die("libuv server: handles left at the end");
}

/* ------------------------------------------------------------------ */

/* Bound, listening, and run until the client's connections have closed. */
static void run_libfuture(struct client *cl, pthread_t *t,
			  void *(*client)(void *), const char **impl)
{
	int err;
	fut_loop *loop = fut_loop_new(NULL, &err);
	if (!loop)
		bench_die("fut_loop_new: %s", fut_strerror(err));
	*impl = fut_loop_backend(loop);
	fut *a = fut_accept(loop, srv_listen_fd, NULL, NULL);
	if (!a)
		bench_die("fut_accept: out of memory");
	int e = fut_on_done(a, srv_on_accept, loop);
	if (e < 0)
		bench_die("fut_on_done: %s", fut_strerror(e));
	int r = pthread_create(t, NULL, client, cl);
	if (r != 0)
		bench_die("pthread_create: %s", strerror(r));
	/* Returns once the client has closed every connection and the
	 * server has closed its side: nothing is left to wait for. */
	r = fut_loop_run(loop);
	if (r < 0)
		bench_die("fut_loop_run: %s", fut_strerror(r));
	int left = fut_loop_free(loop);
	if (left != 0)
		bench_die("fut_loop_free: %d futures leaked", left);
}

static void run_once(bool libuv)
{
	srv_listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (srv_listen_fd < 0)
		bench_die("socket: %s", strerror(errno));
	int one = 1;
	if (setsockopt(srv_listen_fd, SOL_SOCKET, SO_REUSEADDR, &one,
		       sizeof one) < 0)
		bench_die("setsockopt(SO_REUSEADDR): %s", strerror(errno));
	struct client cl;
	memset(&cl, 0, sizeof cl);
	cl.addr.sin_family = AF_INET;
	cl.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cl.addr.sin_port = 0;
	socklen_t alen = sizeof cl.addr;
	if (bind(srv_listen_fd, (struct sockaddr *)&cl.addr, sizeof cl.addr) < 0 ||
	    listen(srv_listen_fd, 2 * NCONN) < 0 ||
	    getsockname(srv_listen_fd, (struct sockaddr *)&cl.addr, &alen) < 0)
		bench_die("bind/listen: %s", strerror(errno));

	srv_accepted = srv_closed = 0;
	srv_echoed = 0;
	const char *kind = getenv("ECHO_CLIENT");
	void *(*client)(void *) = kind && strcmp(kind, "epoll") == 0
					  ? client_epoll : client_uring;
	pthread_t t;
	const char *impl = "libuv";
	if (libuv)
		run_libuv(&cl, &t, client);
	else
		run_libfuture(&cl, &t, client, &impl);
	pthread_join(t, NULL);
	bench_info(BENCH, "backend", "%s", impl);

	if (srv_accepted != NCONN || srv_closed != NCONN)
		bench_die("server: accepted %d, closed %d of %d connections",
			  srv_accepted, srv_closed, NCONN);
	if (cl.done != n_rounds || srv_echoed != (long)MSG * n_rounds)
		bench_die("echo: %ld round trips, %ld bytes echoed; expected %ld",
			  cl.done, srv_echoed, n_rounds);
	double ns = (double)(cl.t1 - cl.t0) / (double)n_rounds;
	char key[64];
	snprintf(key, sizeof key, "%s_msgs_per_s", impl);
	bench_info(BENCH, key, "%.0f", 1e9 / ns);
	bench_result(BENCH, impl, "rt", ns);
	bench_result(BENCH, impl, "srv_cpu", (double)cl.srv_cpu / (double)n_rounds);
}

int main(int argc, char **argv)
{
	struct bench_args a = bench_parse(argc, argv, 400000);
	n_rounds = a.n;
	/* The server thread is not pinned: the threads backend starts its
	 * workers from it on demand, and they would inherit a one-cpu mask. */
	bench_info(BENCH, "connections", "%d x %d bytes", NCONN, MSG);
	bench_info(BENCH, "round_trips", "%ld", n_rounds);
	/* -o libuv: the libuv server instead of libfuture's (the backend
	 * comes from FUTURE_BACKEND as usual). */
	bool libuv = a.only && strcmp(a.only, "libuv") == 0;
	for (int i = 0; i < a.reps; i++)
		run_once(libuv);
	return 0;
}
