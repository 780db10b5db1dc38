/*
 * End-to-end checks of the core contract on the backend FUTURE_BACKEND
 * names: cross-thread resolution, socket and file I/O through every path a
 * backend has (immediate, queued, partial, pooled), cancellation reaching
 * the work, and clean teardown with work still pending.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* POLLRDHUP */
#endif
#include <future.h>

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests.h"

struct resolver {
	fut **fs;
	int n;
	int failures;
};

static void *resolve_all(void *arg)
{
	struct resolver *r = arg;
	for (int i = 0; i < r->n; i++)
		if (fut_resolve(r->fs[i], i) != 0)
			r->failures++;
	return NULL;
}

START_TEST(resolve_from_8_threads)
{
	/* 240k resolutions race enough (800k cost CI 4 s a run). */
	enum { T = 8, N = 30000 };
	fut_loop *loop = new_loop();
	fut **fs = malloc(sizeof(*fs) * T * N);
	struct resolver r[T];
	pthread_t th[T];
	long hits = 0;
	for (int i = 0; i < T * N; i++) {
		fs[i] = fut_new(loop);
		fut_ref(fs[i]);
		ck_assert_int_eq(fut_on_done(fs[i], count_cb, &hits), 0);
	}
	for (int t = 0; t < T; t++) {
		r[t] = (struct resolver){ fs + t * N, N, 0 };
		ck_assert_int_eq(pthread_create(&th[t], NULL, resolve_all, &r[t]), 0);
	}
	fut *all = fut_all(loop, (fut *[]){ fut_ref(fs[T * N - 1]) }, 1, 0);
	wait_for(loop, all);
	for (int t = 0; t < T; t++) {
		pthread_join(th[t], NULL);
		ck_assert_int_eq(r[t].failures, 0);
	}
	ck_assert_int_eq(fut_loop_run(loop), 0);
	ck_assert_int_eq(hits, T * N);
	for (int i = 0; i < T * N; i++) {
		ck_assert_int_eq(fut_value(fs[i]), i % N);
		/* A second resolve, from any thread, is refused. */
		ck_assert_int_eq(fut_resolve(fs[i], 1), -EALREADY);
		fut_unref(fs[i]);
	}
	fut_unref(all);
	free(fs);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* A stream socketpair whose sv[0] has a tiny send buffer, so that big
 * sends on it complete only through partial writes. */
static void small_send_buffer_pair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	int small = 4096;
	ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small,
				    sizeof(small)), 0);
}

START_TEST(send_16mib_through_partial_writes)
{
	fut_loop *loop = new_loop();
	int sv[2];
	small_send_buffer_pair(sv);
	size_t big = 16u << 20;
	char *src = malloc(big), *dst = malloc(big);
	for (size_t i = 0; i < big; i++)
		src[i] = (char)(i * 31 + (i >> 13));
	fut *s = fut_send(loop, sv[0], src, big, 0);
	size_t got = 0;
	while (got < big) {
		size_t want = big - got > 50000 ? 50000 : big - got;
		fut *r = fut_recv(loop, sv[1], dst + got, want, 0);
		wait_for(loop, r);
		ck_assert_int_gt(fut_value(r), 0);
		got += (size_t)fut_value(r);
		fut_unref(r);
	}
	wait_for(loop, s);
	ck_assert_int_eq(fut_value(s), (int64_t)big);
	ck_assert(memcmp(src, dst, big) == 0);
	fut_unref(s);
	fut_unref(fut_close(loop, sv[0]));
	fut_unref(fut_close(loop, sv[1]));
	ck_assert_int_eq(fut_loop_run(loop), 0);
	free(src);
	free(dst);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* Sends queued on one socket: the bytes arrive in submission order, the
 * futures end in that order, and a cancelled send that had not started
 * leaves no byte behind (the threads backend tries a send on the loop's
 * thread first, so this covers a partly tried send with others queued). */
static int send_order[3], send_ended;

static void note_send(fut *f, void *arg)
{
	(void)f;
	send_order[send_ended++] = (int)(intptr_t)arg;
}

START_TEST(sends_keep_order_and_cancel_cleanly)
{
	fut_loop *loop = new_loop();
	int sv[2];
	small_send_buffer_pair(sv);
	size_t na = 1u << 20, nb = 1000, nc = 65536;
	char *a = malloc(na), *b = malloc(nb), *c = malloc(nc);
	char *dst = malloc(na + nc + 1);
	for (size_t i = 0; i < na; i++)
		a[i] = (char)(i * 7 + (i >> 11));
	memset(b, 'b', nb);
	for (size_t i = 0; i < nc; i++)
		c[i] = (char)(i * 13 + 1);
	send_ended = 0;
	fut *fa = fut_send(loop, sv[0], a, na, 0);
	fut *fb = fut_send(loop, sv[0], b, nb, 0);
	fut *fc = fut_send(loop, sv[0], c, nc, 0);
	ck_assert_int_eq(fut_on_done(fut_ref(fa), note_send, (void *)0), 0);
	ck_assert_int_eq(fut_on_done(fut_ref(fc), note_send, (void *)2), 0);
	/* a cannot have finished: nobody reads yet and the buffer is small. */
	ck_assert_int_eq(fut_state(fa), FUT_PENDING);
	ck_assert_int_eq(fut_cancel(fb), 0);
	ck_assert_int_eq(fut_error(fb), -ECANCELED);
	size_t got = 0;
	while (got < na + nc) { /* then no recv is left blocked */
		fut *r = fut_recv(loop, sv[1], dst + got, na + nc + 1 - got, 0);
		wait_for(loop, r);
		ck_assert_int_gt(fut_value(r), 0);
		got += (size_t)fut_value(r);
		fut_unref(r);
		ck_assert_uint_le(got, na + nc);
	}
	ck_assert_uint_eq(got, na + nc);
	ck_assert(memcmp(dst, a, na) == 0);
	ck_assert(memcmp(dst + na, c, nc) == 0);
	wait_for(loop, fc);
	ck_assert_int_eq(fut_value(fa), (int64_t)na);
	ck_assert_int_eq(fut_value(fc), (int64_t)nc);
	run_for(loop, 1);
	ck_assert_int_eq(send_ended, 2);
	ck_assert_int_eq(send_order[0], 0);
	ck_assert_int_eq(send_order[1], 2);
	fut_unref(fa);
	fut_unref(fb);
	fut_unref(fc);
	/* Room appears in the socket while a is still in flight: b must
	 * still wait for it (a backend that tries b at once would put it
	 * ahead of a's rest). */
	for (int round = 0; round < 20; round++) {
		size_t n = 256u << 10;
		fa = fut_send(loop, sv[0], a, n, 0);
		ck_assert_int_eq(fut_state(fa), FUT_PENDING);
		run_for(loop, 1); /* io_uring submits at the next tick */
		ssize_t first = recv(sv[1], dst, 4096, 0);
		ck_assert_int_gt(first, 0);
		fb = fut_send(loop, sv[0], b, 100, 0);
		got = (size_t)first;
		while (got < n + 100) {
			fut *r = fut_recv(loop, sv[1], dst + got,
					  n + 100 - got, 0);
			wait_for(loop, r);
			ck_assert_int_gt(fut_value(r), 0);
			got += (size_t)fut_value(r);
			fut_unref(r);
		}
		ck_assert(memcmp(dst, a, n) == 0);
		ck_assert(memcmp(dst + n, b, 100) == 0);
		wait_for(loop, fb);
		ck_assert_int_eq(fut_value(fa), (int64_t)n);
		ck_assert_int_eq(fut_value(fb), 100);
		fut_unref(fa);
		fut_unref(fb);
	}
	fut_unref(fut_close(loop, sv[0]));
	fut_unref(fut_close(loop, sv[1]));
	ck_assert_int_eq(fut_loop_run(loop), 0);
	free(a);
	free(b);
	free(c);
	free(dst);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

START_TEST(cancel_pending_recv_then_eof_and_epipe)
{
	fut_loop *loop = new_loop();
	int sv[2];
	char b[16];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fut *r = fut_recv(loop, sv[1], b, sizeof(b), 0);
	ck_assert_int_eq(fut_state(r), FUT_PENDING);
	ck_assert_int_eq(fut_cancel(r), 0);
	wait_for(loop, r);
	ck_assert_int_eq(fut_error(r), -ECANCELED);
	ck_assert_int_eq(fut_cancel(r), -EALREADY);
	fut_unref(r);
	/* The withdrawn recv took nothing: the next one gets the data. */
	fut_unref(fut_send(loop, sv[0], "xyz", 3, 0));
	r = fut_recv(loop, sv[1], b, sizeof(b), 0);
	wait_for(loop, r);
	ck_assert_int_eq(fut_value(r), 3);
	ck_assert(memcmp(b, "xyz", 3) == 0);
	fut_unref(r);
	/* Peer closes: EOF is a resolved 0, not an error. */
	fut *c = fut_close(loop, sv[0]);
	wait_for(loop, c);
	ck_assert_int_eq(fut_error(c), 0);
	fut_unref(c);
	r = fut_recv(loop, sv[1], b, sizeof(b), 0);
	wait_for(loop, r);
	ck_assert_int_eq(fut_state(r), FUT_RESOLVED);
	ck_assert_int_eq(fut_value(r), 0);
	fut_unref(r);
	fut_unref(fut_close(loop, sv[1]));
	/* Send to a closed peer: -EPIPE, and no SIGPIPE kills us. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	fut *s = fut_send(loop, sv[0], "a", 1, 0);
	wait_for(loop, s);
	ck_assert(fut_error(s) == -EPIPE || fut_error(s) == -ECONNRESET);
	fut_unref(s);
	fut_unref(fut_close(loop, sv[0]));
	ck_assert_int_eq(fut_loop_run(loop), 0);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

static int listener(struct sockaddr_in *a)
{
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	*a = (struct sockaddr_in){ .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	ck_assert_int_eq(bind(ls, (struct sockaddr *)a, sizeof(*a)), 0);
	ck_assert_int_eq(listen(ls, 16), 0);
	socklen_t al = sizeof(*a);
	getsockname(ls, (struct sockaddr *)a, &al);
	return ls;
}

START_TEST(tcp_accept_connect_refused)
{
	fut_loop *loop = new_loop();
	struct sockaddr_in a, peer;
	socklen_t plen = sizeof(peer);
	int ls = listener(&a);
	fut *acc = fut_accept(loop, ls, (struct sockaddr *)&peer, &plen);
	int cs = socket(AF_INET, SOCK_STREAM, 0);
	fut *con = fut_connect(loop, cs, (struct sockaddr *)&a, sizeof(a));
	wait_for(loop, acc);
	wait_for(loop, con);
	ck_assert_int_eq(fut_error(con), 0);
	ck_assert_int_ge(fut_value(acc), 0);
	ck_assert_int_eq(peer.sin_family, AF_INET);
	/* The connect's outcome was collected: the socket is connected
	 * for the kernel too, on every backend. */
	fut *again = fut_connect(loop, cs, (struct sockaddr *)&a, sizeof(a));
	wait_for(loop, again);
	ck_assert_int_eq(fut_error(again), -EISCONN);
	fut_unref(again);
	ck_assert_int_eq(connect(cs, (struct sockaddr *)&a, sizeof(a)), -1);
	ck_assert_int_eq(errno, EISCONN);
	int as = (int)fut_value(acc);
	ck_assert(fcntl(as, F_GETFL) & O_NONBLOCK);
	ck_assert(fcntl(as, F_GETFD) & FD_CLOEXEC);
	/* Data both ways over the accepted connection. */
	char b[8] = { 0 };
	fut_unref(fut_send(loop, cs, "ping", 4, 0));
	fut *r = fut_recv(loop, as, b, sizeof(b), 0);
	wait_for(loop, r);
	ck_assert_int_eq(fut_value(r), 4);
	fut_unref(r);
	fut_unref(fut_close(loop, as));
	fut_unref(fut_close(loop, cs));
	/* The close is done when its future ends (io_uring closes from
	 * the ring, asynchronously). */
	fut *lc = fut_close(loop, ls);
	wait_for(loop, lc);
	ck_assert_int_eq(fut_error(lc), 0);
	fut_unref(lc);
	fut_unref(acc);
	fut_unref(con);
	/* The listener is gone: connecting is refused, and so is a retry
	 * (a socket the caller made non-blocking: the threads backend
	 * waits on it in poll). */
	int cs2 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	for (int i = 0; i < 2; i++) {
		con = fut_connect(loop, cs2, (struct sockaddr *)&a, sizeof(a));
		wait_for(loop, con);
		ck_assert_int_eq(fut_error(con), -ECONNREFUSED);
		fut_unref(con);
	}
	fut_unref(fut_close(loop, cs2));
	ck_assert_int_eq(fut_loop_run(loop), 0);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* A Unix socket's full backlog: a non-blocking connect says EAGAIN and
 * nothing is under way, so the future says so too, on every backend (epoll
 * waited for an edge that never came, threads spun in poll and connect). */
START_TEST(unix_connect_to_full_backlog_is_eagain)
{
	fut_loop *loop = new_loop();
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "/tmp/fut-unix-%d", getpid());
	unlink(a.sun_path);
	int ls = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(ls, 0), 0);
	int fill[8], n = 0;
	for (; n < 8; n++) {
		fill[n] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (connect(fill[n], (struct sockaddr *)&a, sizeof(a)) < 0) {
			ck_assert_int_eq(errno, EAGAIN);
			close(fill[n]);
			break;
		}
	}
	ck_assert_int_lt(n, 8);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	fut *c = fut_connect(loop, s, (struct sockaddr *)&a, sizeof(a));
	wait_for(loop, c);
	ck_assert_int_eq(fut_error(c), -EAGAIN);
	fut_unref(c);
	c = fut_close(loop, s);
	wait_for(loop, c);
	fut_unref(c);
	/* A blocking socket waits for room where the kernel connects it
	 * (io_uring, threads), or is made non-blocking (epoll: EAGAIN);
	 * cancelled, it says so: io_uring's worker said -EINTR. */
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	c = fut_connect(loop, s, (struct sockaddr *)&a, sizeof(a));
	run_for(loop, 50);
	if (!strcmp(fut_loop_backend(loop), "epoll")) {
		ck_assert_int_eq(fut_error(c), -EAGAIN);
	} else {
		ck_assert_int_eq(fut_state(c), FUT_PENDING);
		fut_cancel(c);
		wait_for(loop, c);
		ck_assert_int_eq(fut_error(c), -ECANCELED);
	}
	fut_unref(c);
	c = fut_close(loop, s);
	wait_for(loop, c);
	fut_unref(c);
	while (n)
		close(fill[--n]);
	close(ls);
	unlink(a.sun_path);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

static int open_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

/* Connections that arrive before anyone accepts are handed out in arrival
 * order with their addresses (io_uring keeps them from its multishot
 * accept); a cancelled accept takes none; closing the listener closes the
 * ones never accepted. */
/*
 * A connection is taken from the listen backlog only for a fut_accept
 * that asked: a loop that accepted once and waits no more leaves the
 * others, queued before or arriving after, for another loop on the same
 * listener (one per thread), and for the program after the loop is freed.
 * io_uring's multishot accept took them all for the first loop, and its
 * free reset them.
 */
START_TEST(accept_takes_only_what_is_asked)
{
	enum { N = 6 };
	struct sockaddr_in a;
	int ls = listener(&a);
	fut_loop *la = new_loop(), *lb = new_loop();
	int c[2 * N + 1];
	/* The first of several already queued: the others stay queued. */
	for (int i = 0; i <= N / 2; i++) {
		c[i] = socket(AF_INET, SOCK_STREAM, 0);
		ck_assert_int_eq(connect(c[i], (struct sockaddr *)&a,
					 sizeof(a)), 0);
	}
	usleep(20 * 1000);
	fut *f = fut_accept(la, ls, NULL, NULL);
	wait_for(la, f);
	ck_assert_int_ge(fut_value(f), 0);
	close((int)fut_value(f));
	fut_unref(f);
	for (int i = N / 2 + 1; i <= N; i++) {
		c[i] = socket(AF_INET, SOCK_STREAM, 0);
		ck_assert_int_eq(connect(c[i], (struct sockaddr *)&a,
					 sizeof(a)), 0);
	}
	usleep(20 * 1000);
	fut *g[N];
	for (int i = 0; i < N; i++)
		g[i] = fut_timeout(fut_accept(lb, ls, NULL, NULL), 2000);
	for (int i = 0; i < N; i++) {
		wait_for(lb, g[i]);
		ck_assert_msg(fut_value(g[i]) >= 0, "accept %d of %d: %s", i, N,
			      fut_strerror(fut_error(g[i])));
		close((int)fut_value(g[i]));
		fut_unref(g[i]);
	}
	/* Those that come after a loop is freed stay for the program. */
	ck_assert_int_eq(fut_loop_free(la), 0);
	for (int i = N + 1; i <= 2 * N; i++) {
		c[i] = socket(AF_INET, SOCK_STREAM, 0);
		ck_assert_int_eq(connect(c[i], (struct sockaddr *)&a,
					 sizeof(a)), 0);
	}
	usleep(20 * 1000);
	int got = 0;
	/* Non-blocking: a connection taken from the backlog fails the test
	 * instead of hanging it. */
	ck_assert_int_eq(fcntl(ls, F_SETFL, O_NONBLOCK), 0);
	for (int i = 0; i < N; i++) {
		int fd = accept4(ls, NULL, NULL, 0);
		if (fd >= 0) {
			got++;
			close(fd);
		}
	}
	ck_assert_int_eq(got, N);
	ck_assert_int_eq(fut_loop_free(lb), 0);
	for (int i = 0; i <= 2 * N; i++)
		close(c[i]);
	/* An accept left pending when its loop is freed: a connection the
	 * kernel gave it meanwhile (io_uring runs the accept as soon as the
	 * connection comes) is closed, not left open with no future to go
	 * to. */
	int fds0 = open_fds();
	la = new_loop();
	f = fut_accept(la, ls, NULL, NULL);
	run_for(la, 5);
	c[0] = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(c[0], (struct sockaddr *)&a, sizeof(a)), 0);
	usleep(20 * 1000);
	fut_unref(f);
	ck_assert_int_eq(fut_loop_free(la), 0);
	close(c[0]);
	ck_assert_int_eq(open_fds(), fds0);
	close(ls);
}
END_TEST

START_TEST(accept_backlog_order_cancel_close)
{
	enum { N = 24, LATE = 3 };
	int fds0 = open_fds();
	fut_loop *loop = new_loop();
	struct sockaddr_in a;
	int ls = listener(&a);
	ck_assert_int_eq(listen(ls, 64), 0);
	fut *c0 = fut_accept(loop, ls, NULL, NULL);
	ck_assert_int_eq(fut_cancel(c0), 0);
	wait_for(loop, c0);
	ck_assert_int_eq(fut_error(c0), -ECANCELED);
	fut_unref(c0);

	int cs[N + LATE];
	unsigned short port[N];
	for (int i = 0; i < N + LATE; i++) {
		cs[i] = socket(AF_INET, SOCK_STREAM, 0);
		ck_assert_int_eq(connect(cs[i], (struct sockaddr *)&a,
					 sizeof(a)), 0);
		struct sockaddr_in me;
		socklen_t ml = sizeof(me);
		getsockname(cs[i], (struct sockaddr *)&me, &ml);
		if (i < N)
			port[i] = me.sin_port;
		if (i == N - 1 || i == N + LATE - 1) { /* let the loop see them */
			fut *s = fut_sleep(loop, 20);
			wait_for(loop, s);
			fut_unref(s);
		}
		if (i == N - 1) {
			struct sockaddr_in peer[N];
			socklen_t pl[N];
			fut *acc[N];
			for (int j = 0; j < N; j++) {
				pl[j] = sizeof(peer[j]);
				acc[j] = fut_accept(loop, ls,
					(struct sockaddr *)&peer[j], &pl[j]);
			}
			for (int j = 0; j < N; j++) {
				wait_for(loop, acc[j]);
				ck_assert_int_ge(fut_value(acc[j]), 0);
				ck_assert_int_eq(pl[j], sizeof(peer[j]));
				ck_assert_int_eq(peer[j].sin_port, port[j]);
				close((int)fut_value(acc[j]));
				fut_unref(acc[j]);
			}
		}
	}
	fut *lc = fut_close(loop, ls);
	wait_for(loop, lc);
	ck_assert_int_eq(fut_error(lc), 0);
	fut_unref(lc);
	for (int i = N; i < N + LATE; i++) { /* never accepted: reset */
		struct pollfd p = { .fd = cs[i], .events = POLLIN };
		ck_assert_int_eq(poll(&p, 1, 2000), 1);
		char b;
		ck_assert_int_le(read(cs[i], &b, 1), 0);
	}
	for (int i = 0; i < N + LATE; i++)
		close(cs[i]);
	ck_assert_int_eq(fut_loop_free(loop), 0);
	ck_assert_int_eq(open_fds(), fds0);
}
END_TEST

/* Accepting fds past the end of a backend's fd table while accepts wait
 * in it: the table grows under the queue that is being run (epoll once
 * wrote through a stale pointer here). */
START_TEST(accept_past_fd_table_end)
{
	enum { N = 40 };
	fut_loop *loop = new_loop();
	struct sockaddr_in a;
	int ls = listener(&a);
	int pad[200], np = 0;
	while (np < 200) { /* the next fds are in the 60s and beyond */
		int d = dup(0);
		if (d < 0)
			break;
		pad[np++] = d;
		if (d >= 60)
			break;
	}
	fut *acc[N];
	for (int i = 0; i < N; i++)
		acc[i] = fut_accept(loop, ls, NULL, NULL);
	int cs[N];
	for (int i = 0; i < N; i++) {
		cs[i] = socket(AF_INET, SOCK_STREAM, 0);
		fut *c = fut_connect(loop, cs[i], (struct sockaddr *)&a,
				     sizeof(a));
		wait_for(loop, c);
		ck_assert_int_eq(fut_error(c), 0);
		fut_unref(c);
	}
	for (int i = 0; i < N; i++) {
		wait_for(loop, acc[i]);
		ck_assert_int_ge(fut_value(acc[i]), 0);
		/* The accepted socket works. */
		int fd = (int)fut_value(acc[i]);
		fut *s = fut_send(loop, fd, "x", 1, 0);
		wait_for(loop, s);
		ck_assert_int_eq(fut_value(s), 1);
		fut_unref(s);
		fut *cl = fut_close(loop, fd);
		wait_for(loop, cl);
		fut_unref(cl);
		fut_unref(acc[i]);
		close(cs[i]);
	}
	fut *lc = fut_close(loop, ls);
	wait_for(loop, lc);
	fut_unref(lc);
	for (int i = 0; i < np; i++)
		close(pad[i]);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* Close fd through the loop and wait for it. */
static void close_fd(fut_loop *loop, int fd)
{
	fut *f = fut_close(loop, fd);
	wait_for(loop, f);
	fut_unref(f);
}

/* A page of the file tests: its number first, then letters from `first`. */
static void check_page(const char *p, size_t size, int want, char first)
{
	int at;
	memcpy(&at, p, sizeof(at));
	ck_assert_int_eq(at, want);
	ck_assert_int_eq(p[size - 1], first + want % 26);
}

/* Many reads with offsets in flight on one file: each gets its own page
 * (io_uring sends them all to the ring at once). */
START_TEST(file_reads_in_parallel)
{
	enum { N = 64, PG = 4096 };
	fut_loop *loop = new_loop();
	char path[] = "/tmp/libfuture-pXXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	static char page[PG];
	for (int i = 0; i < N; i++) {
		memset(page, 'A' + i % 26, PG);
		memcpy(page, &i, sizeof(i));
		ck_assert_int_eq(pwrite(fd, page, PG, (off_t)i * PG), PG);
	}
	static char buf[N][PG];
	fut *r[N];
	for (int i = 0; i < N; i++) /* in reverse page order */
		r[i] = fut_read(loop, fd, buf[i], PG, (int64_t)(N - 1 - i) * PG);
	for (int i = 0; i < N; i++) {
		wait_for(loop, r[i]);
		ck_assert_int_eq(fut_value(r[i]), PG);
		check_page(buf[i], PG, N - 1 - i, 'A');
		fut_unref(r[i]);
	}
	close_fd(loop, fd);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/*
 * Writes and reads at the file position (-1) queued together on one file
 * happen one after the other in the order they were made (fut_read(3)),
 * whatever their direction, also when one in the middle is cancelled:
 * epoll's pool ran them side by side and the pages came out shuffled.
 * Repeated: a race shows itself in some rounds only.
 */
START_TEST(file_position_ops_keep_order)
{
	enum { N = 64, PG = 4096, ROUNDS = 8, SKIP = N / 2 };
	fut_loop *loop = new_loop();
	static char page[N][PG], buf[N][PG];
	for (int round = 0; round < ROUNDS; round++) {
		char path[] = "/tmp/libfuture-posXXXXXX";
		int fd = mkstemp(path);
		ck_assert_int_ge(fd, 0);
		unlink(path);
		fut *w[N];
		for (int i = 0; i < N; i++) {
			memset(page[i], 'a' + i % 26, PG);
			memcpy(page[i], &i, sizeof(i));
			w[i] = fut_write(loop, fd, page[i], PG, -1);
			ck_assert_ptr_nonnull(w[i]);
		}
		/* Withdrawn before it ran, unless it already has: either
		 * way the pages after it keep their order. */
		int skipped = fut_cancel(w[SKIP]) == 0;
		int pos = 0;
		for (int i = 0; i < N; i++) {
			wait_for(loop, w[i]);
			if (i == SKIP && skipped) {
				ck_assert_int_eq(fut_error(w[i]), -ECANCELED);
			} else {
				ck_assert_int_eq(fut_value(w[i]), PG);
				int at;
				ck_assert_int_eq(pread(fd, &at, sizeof(at),
						       (off_t)pos * PG),
						 sizeof(at));
				ck_assert_int_eq(at, i);
				pos++;
			}
			fut_unref(w[i]);
		}
		ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
		fut *r[N];
		for (int i = 0; i < pos; i++)
			r[i] = fut_read(loop, fd, buf[i], PG, -1);
		for (int i = 0, want = 0; i < pos; i++, want++) {
			wait_for(loop, r[i]);
			ck_assert_int_eq(fut_value(r[i]), PG);
			if (want == SKIP && skipped)
				want++;
			check_page(buf[i], PG, want, 'a');
			fut_unref(r[i]);
		}
		/* A read queued behind a write reads after it, from where
		 * the write left the position (io_uring and threads ran
		 * the two side by side and read the first page). */
		for (int k = 0; k < 20; k++) {
			ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
			fut *mw = fut_write(loop, fd, page[0], PG, -1);
			fut *mr = fut_read(loop, fd, buf[0], PG, -1);
			wait_for(loop, mw);
			wait_for(loop, mr);
			ck_assert_int_eq(fut_value(mw), PG);
			ck_assert_int_eq(fut_value(mr), PG);
			check_page(buf[0], PG, 1, 'a');
			fut_unref(mw);
			fut_unref(mr);
		}
		close_fd(loop, fd);
	}
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/*
 * fut_close of a file with reads and writes still in flight: those not
 * started end with -ECANCELED, one already running finishes first, and
 * none of them touches the next file to get the same number (the close
 * waits for it). Four writes of 1 MiB, on a pool of one thread.
 */
START_TEST(file_close_stops_its_operations)
{
	enum { N = 16, MB = 1 << 20 };
	struct fut_loop_opts o = { .threads = 1 };
	int err = 0;
	fut_loop *loop = fut_loop_new(&o, &err);
	ck_assert_msg(loop, "%s", fut_strerror(err));
	char pa[] = "/tmp/libfuture-aXXXXXX", pb[] = "/tmp/libfuture-bXXXXXX";
	int a = mkstemp(pa);
	ck_assert_int_ge(a, 0);
	unlink(pa);
	static char data[MB];
	memset(data, 'W', sizeof(data));
	fut *w[N];
	for (int i = 0; i < N; i++)
		w[i] = fut_write(loop, a, data, MB, (int64_t)i * MB);
	fut *c = fut_close(loop, a);
	/* What a program does next: open another file; it gets a's number
	 * once the close has happened. */
	int b = mkstemp(pb);
	ck_assert_int_ge(b, 0);
	unlink(pb);
	ck_assert_int_eq(write(b, "precious", 8), 8);
	int cancelled = 0;
	for (int i = 0; i < N; i++) {
		wait_for(loop, w[i]);
		if (fut_error(w[i]) == -ECANCELED)
			cancelled++;
		else
			ck_assert_msg(fut_value(w[i]) == MB, "%s",
				      fut_strerror(fut_error(w[i])));
		fut_unref(w[i]);
	}
	wait_for(loop, c);
	ck_assert_int_eq(fut_error(c), 0);
	fut_unref(c);
	struct stat st;
	ck_assert_int_eq(fstat(b, &st), 0);
	ck_assert_msg(st.st_size == 8, "the next file grew to %lld bytes",
		      (long long)st.st_size);
	close(b);
	(void)cancelled; /* io_uring may have them all in the kernel */
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* Close both ends through the loop, so that it forgets them before the
 * numbers come back (a plain close(2) leaves epoll a stale registration). */
static void close_pair(fut_loop *loop, const int sv[2])
{
	close_fd(loop, sv[0]);
	close_fd(loop, sv[1]);
}

/* MSG_WAITALL means the whole length (or end of file), on every backend. */
START_TEST(recv_waitall_gathers)
{
	fut_loop *loop = new_loop();
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	char buf[8];
	ck_assert_int_eq(write(sv[1], "abc", 3), 3);
	fut *f = fut_recv(loop, sv[0], buf, 8, MSG_WAITALL);
	run_for(loop, 50);
	ck_assert_int_eq(fut_state(f), FUT_PENDING);
	ck_assert_int_eq(write(sv[1], "defgh", 5), 5);
	wait_for(loop, f);
	ck_assert_int_eq(fut_value(f), 8);
	ck_assert(!memcmp(buf, "abcdefgh", 8));
	fut_unref(f);
	/* End of file after part of it: the part. */
	ck_assert_int_eq(write(sv[1], "xy", 2), 2);
	f = fut_recv(loop, sv[0], buf, 8, MSG_WAITALL);
	run_for(loop, 20);
	ck_assert_int_eq(fut_state(f), FUT_PENDING);
	shutdown(sv[1], SHUT_WR);
	wait_for(loop, f);
	ck_assert_int_eq(fut_value(f), 2);
	ck_assert(!memcmp(buf, "xy", 2));
	fut_unref(f);
	close_pair(loop, sv);
	/* The same on an O_NONBLOCK socket, where recv(2) itself does not
	 * wait for the rest. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
				    sv), 0);
	ck_assert_int_eq(write(sv[1], "abc", 3), 3);
	f = fut_recv(loop, sv[0], buf, 8, MSG_WAITALL);
	run_for(loop, 50);
	ck_assert_int_eq(fut_state(f), FUT_PENDING);
	ck_assert_int_eq(write(sv[1], "defgh", 5), 5);
	wait_for(loop, f);
	ck_assert_int_eq(fut_value(f), 8);
	ck_assert(!memcmp(buf, "abcdefgh", 8));
	fut_unref(f);
	close_pair(loop, sv);
	/* A cancel after some bytes came: they are the result, not lost
	 * (the socket no longer has them). */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(write(sv[1], "abc", 3), 3);
	f = fut_recv(loop, sv[0], buf, 8, MSG_WAITALL);
	run_for(loop, 50);
	ck_assert_int_eq(fut_state(f), FUT_PENDING);
	fut_cancel(f);
	wait_for(loop, f);
	ck_assert_int_eq(fut_value(f), 3);
	ck_assert(!memcmp(buf, "abc", 3));
	fut_unref(f);
	/* ... also cancelled at once, when the threads backend has just
	 * handed it (with bytes the loop gathered) to an idle worker that
	 * has not started it yet: it said -ECANCELED and the bytes were
	 * gone. A recv before each makes sure a worker is idle. */
	char ten[16];
	for (int i = 0; i < 100; i++) {
		fut *w = fut_recv(loop, sv[0], ten, 1, 0);
		ck_assert_int_eq(write(sv[1], "x", 1), 1);
		wait_for(loop, w);
		fut_unref(w);
		ck_assert_int_eq(write(sv[1], "0123456789", 10), 10);
		f = fut_recv(loop, sv[0], ten, sizeof(ten), MSG_WAITALL);
		fut_cancel(f);
		wait_for(loop, f);
		ck_assert_msg(fut_value(f) == 10, "round %d: %s", i,
			      fut_strerror(fut_error(f)));
		ck_assert(!memcmp(ten, "0123456789", 10));
		fut_unref(f);
	}
	close_pair(loop, sv);
	/* A SEQPACKET message is whole with the flag or without: never run
	 * together with the next. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	ck_assert_int_eq(write(sv[1], "abc", 3), 3);
	ck_assert_int_eq(write(sv[1], "defg", 4), 4);
	f = fut_recv(loop, sv[0], buf, 8, MSG_WAITALL);
	wait_for(loop, f);
	ck_assert_int_eq(fut_value(f), 3);
	fut_unref(f);
	f = fut_recv(loop, sv[0], buf, 8, MSG_WAITALL);
	wait_for(loop, f);
	ck_assert_int_eq(fut_value(f), 4);
	ck_assert(!memcmp(buf, "defg", 4));
	fut_unref(f);
	close_pair(loop, sv);
	/* MSG_PEEK never gives the same bytes twice in one result. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	char pk[16];
	ck_assert_int_eq(write(sv[1], "abcde", 5), 5);
	f = fut_recv(loop, sv[0], pk, sizeof(pk), MSG_PEEK | MSG_WAITALL);
	run_for(loop, 30);
	ck_assert_int_eq(write(sv[1], "fghijklmnop", 11), 11);
	wait_for(loop, f);
	ck_assert_int_gt(fut_value(f), 0);
	ck_assert(!memcmp(pk, "abcdefghijklmnop", (size_t)fut_value(f)));
	fut_unref(f);
	close_pair(loop, sv);
	/* A datagram is one message, MSG_WAITALL or not. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
	ck_assert_int_eq(write(sv[1], "0123456789", 10), 10);
	ck_assert_int_eq(write(sv[1], "abcdefghij", 10), 10);
	f = fut_recv(loop, sv[0], pk, sizeof(pk), MSG_WAITALL);
	wait_for(loop, f);
	ck_assert_int_eq(fut_value(f), 10);
	fut_unref(f);
	/* A send of 0 bytes is an empty datagram, as send(2) makes it (all
	 * three backends took it for nothing to send). */
	ck_assert_int_eq(recv(sv[0], pk, sizeof(pk), 0), 10); /* the 2nd */
	f = fut_send(loop, sv[1], pk, 0, 0);
	wait_for(loop, f);
	ck_assert_int_eq(fut_value(f), 0);
	fut_unref(f);
	ck_assert_int_eq(recv(sv[0], pk, sizeof(pk), MSG_DONTWAIT), 0);
	close_pair(loop, sv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/*
 * A poll for POLLOUT on a socket whose send buffer is full, when the peer
 * shuts down its side and then reads: it ends (with POLLOUT; on io_uring
 * possibly with POLLRDHUP alone, which the kernel adds to every poll, see
 * fut_poll(3)) instead of waiting for good.
 */
START_TEST(poll_out_after_peer_half_close)
{
	fut_loop *loop = new_loop();
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	static char junk[4096];
	while (send(sv[0], junk, sizeof(junk), MSG_DONTWAIT) > 0)
		;
	fut *f = fut_poll(loop, sv[0], POLLOUT);
	run_for(loop, 20);
	ck_assert_int_eq(fut_state(f), FUT_PENDING);
	shutdown(sv[1], SHUT_WR);
	run_for(loop, 20);
	while (recv(sv[1], junk, sizeof(junk), MSG_DONTWAIT) > 0)
		;
	wait_for(loop, f);
	ck_assert_msg(fut_value(f) == POLLOUT || fut_value(f) == POLLRDHUP,
		      "revents %#llx, error %s", (unsigned long long)fut_value(f),
		      fut_strerror(fut_error(f)));
	fut_unref(f);
	close_pair(loop, sv);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* Edges where the kernel interfaces differ and the backends must not. */
/*
 * fut_write on a socket whose peer is gone fails with -EPIPE on every
 * backend, as fut_send does: write(2) raised SIGPIPE, whose default action
 * killed the process (a server, over one client that went away). SIGPIPE
 * is left at its default here, so the old behaviour fails the test.
 */
START_TEST(socket_write_never_raises_sigpipe)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL }, old;
	ck_assert_int_eq(sigaction(SIGPIPE, &dfl, &old), 0);
	fut_loop *loop = new_loop();
	int sv[2];
	char b[8];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	/* A live peer gets the bytes, and a positional write is ESPIPE. */
	fut *w = fut_write(loop, sv[0], "abc", 3, -1);
	wait_for(loop, w);
	ck_assert_int_eq(fut_value(w), 3);
	fut_unref(w);
	ck_assert_int_eq(recv(sv[1], b, sizeof(b), 0), 3);
	ck_assert(memcmp(b, "abc", 3) == 0);
	w = fut_write(loop, sv[0], "abc", 3, 0);
	wait_for(loop, w);
	ck_assert_int_eq(fut_error(w), -ESPIPE);
	fut_unref(w);
	fut *c = fut_close(loop, sv[1]);
	wait_for(loop, c);
	fut_unref(c);
	w = fut_write(loop, sv[0], "abc", 3, -1);
	wait_for(loop, w);
	ck_assert_msg(fut_error(w) == -EPIPE, "%s", fut_errname(fut_error(w)));
	fut_unref(w);
	c = fut_close(loop, sv[0]);
	wait_for(loop, c);
	fut_unref(c);
	/* The same for an accepted TCP connection (epoll learns an accepted
	 * socket from the accept, not from fstat). */
	struct sockaddr_in a;
	int ls = listener(&a), cs = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(cs, (struct sockaddr *)&a, sizeof(a)), 0);
	fut *acc = fut_accept(loop, ls, NULL, NULL);
	wait_for(loop, acc);
	ck_assert_int_ge(fut_value(acc), 0);
	int as = (int)fut_value(acc);
	fut_unref(acc);
	/* A reset peer: the first write draws the RST, a later one EPIPE. */
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	ck_assert_int_eq(setsockopt(cs, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(cs);
	int err = 0;
	for (int i = 0; i < 50 && err != -EPIPE; i++) {
		w = fut_write(loop, as, "abc", 3, -1);
		wait_for(loop, w);
		err = fut_error(w);
		ck_assert(err == 0 || err == -EPIPE || err == -ECONNRESET);
		fut_unref(w);
		usleep(1000);
	}
	ck_assert_int_eq(err, -EPIPE);
	c = fut_close(loop, as);
	wait_for(loop, c);
	fut_unref(c);
	close(ls);
	ck_assert_int_eq(fut_loop_free(loop), 0);
	sigaction(SIGPIPE, &old, NULL);
}
END_TEST

/* A stream write to a pipe larger than the pipe holds completes through
 * partial writes while the loop itself reads the other end. */
START_TEST(pipe_stream_write_and_read)
{
	fut_loop *loop = new_loop();
	enum { LEN = 1 << 20 };
	unsigned char *src = malloc(LEN), *dst = malloc(LEN);
	ck_assert(src && dst);
	for (size_t i = 0; i < LEN; i++)
		src[i] = (unsigned char)(i * 7 + i / 4096);
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	fut *w = fut_write(loop, p[1], src, LEN, -1);
	size_t got = 0;
	while (got < LEN) {
		fut *r = fut_read(loop, p[0], dst + got, LEN - got, -1);
		wait_for(loop, r);
		ck_assert_msg(fut_value(r) > 0, "read: %s",
			      fut_errname(fut_error(r)));
		got += (size_t)fut_value(r);
		fut_unref(r);
	}
	wait_for(loop, w);
	ck_assert_int_eq(fut_value(w), LEN);
	fut_unref(w);
	ck_assert(memcmp(src, dst, LEN) == 0);
	/* The writer's end closed through the loop: the reader sees EOF. */
	fut *c = fut_close(loop, p[1]);
	wait_for(loop, c);
	fut_unref(c);
	fut *r = fut_read(loop, p[0], dst, 16, -1);
	wait_for(loop, r);
	ck_assert_int_eq(fut_state(r), FUT_RESOLVED);
	ck_assert_int_eq(fut_value(r), 0);
	fut_unref(r);
	c = fut_close(loop, p[0]);
	wait_for(loop, c);
	fut_unref(c);
	free(src);
	free(dst);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* An operation submitted after fut_close, while the close is under way,
 * fails with -EBADF on every backend (io_uring ran it before the close). */
START_TEST(op_after_close_is_ebadf)
{
	fut_loop *loop = new_loop();
	int sv[2];
	char b[4];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fut *r = fut_recv(loop, sv[0], b, sizeof(b), 0); /* the fd is known */
	fut *c = fut_close(loop, sv[0]);
	fut *s = fut_send(loop, sv[0], "x", 1, 0);
	/* A pair opened before the close has ended may get the number back
	 * (epoll and io_uring close at once): it works as any other. */
	int nv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, nv), 0);
	fut *ns = fut_send(loop, nv[0], "y", 1, 0);
	wait_for(loop, ns);
	ck_assert_msg(fut_error(ns) == 0, "%s", fut_errname(fut_error(ns)));
	fut_unref(ns);
	ck_assert_int_eq(recv(nv[1], b, sizeof(b), 0), 1);
	close_pair(loop, nv);
	wait_for(loop, c);
	wait_for(loop, s);
	wait_for(loop, r);
	ck_assert_int_eq(fut_error(c), 0);
	ck_assert_int_eq(fut_error(r), -ECANCELED);
	ck_assert_msg(fut_error(s) == -EBADF, "%s", fut_errname(fut_error(s)));
	/* Nothing reached the peer. */
	ck_assert_int_eq(recv(sv[1], b, sizeof(b), MSG_DONTWAIT), 0);
	fut_unref(r);
	fut_unref(c);
	fut_unref(s);
	close(sv[1]);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* A send cut short by fut_close never goes on into the file that gets the
 * number next (io_uring resubmitted the rest of a short send by number). */
START_TEST(close_stops_a_partial_send)
{
	fut_loop *loop = new_loop();
	enum { LEN = 8 << 20 };
	char *big = calloc(1, LEN);
	ck_assert_ptr_nonnull(big);
	int sv[2], nv[2];
	char b[65536];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fut *s = fut_send(loop, sv[0], big, LEN, 0);
	run_for(loop, 20);
	ck_assert_int_eq(fut_state(s), FUT_PENDING);
	/* The peer drains what was sent, so the send in the kernel makes
	 * progress and comes back short, unseen yet, as the close runs. */
	while (recv(sv[1], b, sizeof(b), MSG_DONTWAIT) > 0)
		;
	fut *c = fut_close(loop, sv[0]);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, nv), 0);
	while (recv(sv[1], b, sizeof(b), MSG_DONTWAIT) > 0)
		;
	wait_for(loop, c);
	wait_for(loop, s);
	ck_assert_int_lt(fut_error(s), 0);
	run_for(loop, 20);
	ck_assert_int_eq(recv(nv[1], b, sizeof(b), MSG_DONTWAIT), -1);
	ck_assert_int_eq(errno, EAGAIN);
	fut_unref(c);
	fut_unref(s);
	close(sv[1]);
	close(nv[0]);
	close(nv[1]);
	free(big);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

START_TEST(backends_agree_on_edges)
{
	fut_loop *loop = new_loop();
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	/* A recv with MSG_DONTWAIT still waits for data. */
	char buf[8];
	fut *f = fut_recv(loop, sv[0], buf, sizeof(buf), MSG_DONTWAIT);
	run_for(loop, 30);
	ck_assert_int_eq(fut_state(f), FUT_PENDING);
	ck_assert_int_eq(write(sv[1], "a", 1), 1);
	wait_for(loop, f);
	ck_assert_int_eq(fut_value(f), 1);
	fut_unref(f);
	/* A poll reports only what it asked for (and errors, hang-ups);
	 * one for something that never comes waits. */
	shutdown(sv[1], SHUT_WR);
	f = fut_poll(loop, sv[0], POLLIN);
	wait_for(loop, f);
	ck_assert_int_eq(fut_error(f), 0);
	ck_assert_msg((fut_value(f) & POLLIN) &&
		      !(fut_value(f) & ~(POLLIN | POLLHUP | POLLERR)),
		      "revents %#llx", (unsigned long long)fut_value(f));
	fut_unref(f);
	f = fut_poll(loop, sv[0], POLLOUT);
	wait_for(loop, f);
	ck_assert_int_eq(fut_value(f), POLLOUT);
	fut_unref(f);
	/* Sending nothing is done at once, even on a shut-down socket. */
	shutdown(sv[0], SHUT_WR);
	f = fut_send(loop, sv[0], "", 0, 0);
	wait_for(loop, f);
	ck_assert_int_eq(fut_value(f), 0);
	fut_unref(f);
	f = fut_send(loop, sv[0], NULL, 0, 0);
	wait_for(loop, f);
	ck_assert_int_eq(fut_value(f), 0);
	fut_unref(f);
	close_pair(loop, sv); /* the loop forgets them: fds are reused */
	/* A regular file is always readable and writable; a poll for
	 * anything else could never end and is refused. */
	char path[] = "/tmp/libfuture-qXXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	f = fut_poll(loop, fd, POLLIN | POLLOUT | POLLPRI);
	wait_for(loop, f);
	ck_assert_int_eq(fut_value(f), POLLIN | POLLOUT);
	fut_unref(f);
	short nothing[] = { 0, POLLPRI };
	for (int i = 0; i < 2; i++) {
		f = fut_poll(loop, fd, nothing[i]);
		wait_for(loop, f);
		ck_assert_int_eq(fut_error(f), -EINVAL);
		fut_unref(f);
	}
	f = fut_close(loop, fd); /* the number is reused below */
	wait_for(loop, f);
	fut_unref(f);
	/* An offset on a descriptor without a position (an eventfd):
	 * ESPIPE, as pread(2) says; the ring would have ignored it. */
	int ev = eventfd(1, EFD_CLOEXEC);
	ck_assert_int_ge(ev, 0);
	uint64_t cnt = 0;
	f = fut_read(loop, ev, &cnt, sizeof(cnt), 0);
	wait_for(loop, f);
	ck_assert_int_eq(fut_error(f), -ESPIPE);
	fut_unref(f);
	/* Known to the loop, then closed behind its back: a poll says
	 * EBADF (epoll's poll(2) gave POLLNVAL as the result). */
	f = fut_poll(loop, ev, POLLIN);
	wait_for(loop, f);
	ck_assert_int_eq(fut_value(f), POLLIN);
	fut_unref(f);
	close(ev);
	f = fut_poll(loop, ev, POLLIN);
	wait_for(loop, f);
	ck_assert_int_eq(fut_error(f), -EBADF);
	fut_unref(f);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* Polls on one fd are independent: one waiting for something that never
 * comes (POLLPRI on a socketpair) holds back neither a poll that is ready
 * at once nor one that becomes ready later; a close ends the one left. */
START_TEST(polls_on_one_fd_are_independent)
{
	fut_loop *loop = new_loop();
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fut *pri = fut_poll(loop, sv[0], POLLPRI);
	run_for(loop, 10);
	fut *out = fut_poll(loop, sv[0], POLLOUT);
	wait_for(loop, out);
	ck_assert_int_eq(fut_value(out), POLLOUT);
	fut_unref(out);
	fut *in = fut_poll(loop, sv[0], POLLIN);
	fut *in2 = fut_poll(loop, sv[0], POLLIN | POLLPRI);
	run_for(loop, 10);
	ck_assert_int_eq(fut_state(in), FUT_PENDING);
	ck_assert_int_eq(write(sv[1], "x", 1), 1);
	wait_for(loop, in);
	ck_assert_int_eq(fut_value(in), POLLIN);
	wait_for(loop, in2);
	ck_assert_int_eq(fut_value(in2), POLLIN); /* io_uring said POLLPRI too */
	fut_unref(in);
	fut_unref(in2);
	ck_assert_int_eq(fut_state(pri), FUT_PENDING);
	fut *c = fut_close(loop, sv[0]);
	wait_for(loop, c);
	ck_assert_int_eq(fut_error(c), 0);
	wait_for(loop, pri);
	ck_assert_int_eq(fut_error(pri), -ECANCELED);
	fut_unref(c);
	fut_unref(pri);
	close(sv[1]);
	/* A device that cannot be waited on (/dev/null: always ready to read
	 * and write, never anything else) answers what it is ready for, and
	 * a poll for anything else fails as for a regular file; the threads
	 * backend waited in poll(2) for good. */
	int dn = open("/dev/null", O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(dn, 0);
	fut *p = fut_poll(loop, dn, POLLIN);
	wait_for(loop, p);
	ck_assert_int_eq(fut_value(p), POLLIN);
	fut_unref(p);
	p = fut_poll(loop, dn, POLLPRI);
	fut *t = fut_timeout(p, 2000);
	wait_for(loop, t);
	ck_assert_int_eq(fut_error(t), -EINVAL);
	fut_unref(t);
	c = fut_close(loop, dn);
	wait_for(loop, c);
	fut_unref(c);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* Out of descriptors the threads backend could not learn whether
 * /dev/null can be waited on, took it for yes and its poll for POLLPRI
 * waited in poll(2) for good: now it fails at once, -EMFILE there (its
 * man page) and -EINVAL elsewhere. */
START_TEST(poll_out_of_fds_does_not_hang)
{
	fut_loop *loop = new_loop();
	int dn = open("/dev/null", O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(dn, 0);
	int ev = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_ge(ev, 0);
	struct fds_taken fds;
	fds_exhaust(&fds);
	fut *t = fut_timeout(fut_poll(loop, dn, POLLPRI), 2000);
	wait_for(loop, t);
	/* A device that can be waited on is, with no descriptor to spare
	 * (the fix above first failed this one too). */
	fut *e = fut_poll(loop, ev, POLLIN);
	run_for(loop, 20);
	ck_assert_int_eq(fut_state(e), FUT_PENDING);
	uint64_t one = 1;
	ck_assert_int_eq(write(ev, &one, sizeof(one)), sizeof(one));
	wait_for(loop, e);
	ck_assert_int_eq(fut_value(e), POLLIN);
	fut_unref(e);
	fds_restore(&fds);
	ck_assert_int_eq(fut_error(t), strcmp(fut_loop_backend(loop),
					      "threads") ? -EINVAL : -EMFILE);
	fut_unref(t);
	/* With a descriptor free again it learns, as on the others. */
	t = fut_timeout(fut_poll(loop, dn, POLLPRI), 2000);
	wait_for(loop, t);
	ck_assert_int_eq(fut_error(t), -EINVAL);
	fut_unref(t);
	fut *c = fut_close(loop, dn);
	wait_for(loop, c);
	fut_unref(c);
	c = fut_close(loop, ev);
	wait_for(loop, c);
	fut_unref(c);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

START_TEST(regular_file_read_write)
{
	fut_loop *loop = new_loop();
	char path[] = "/tmp/libfuture-tXXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	fut *w = fut_write(loop, fd, "hello world", 11, 100);
	wait_for(loop, w);
	ck_assert_int_eq(fut_value(w), 11);
	fut_unref(w);
	char rb[32] = { 0 };
	fut *r = fut_read(loop, fd, rb, 5, 106);
	wait_for(loop, r);
	ck_assert_int_eq(fut_value(r), 5);
	ck_assert(memcmp(rb, "world", 5) == 0);
	fut_unref(r);
	/* Past the end: EOF is 0. */
	r = fut_read(loop, fd, rb, 5, 4096);
	wait_for(loop, r);
	ck_assert_int_eq(fut_state(r), FUT_RESOLVED);
	ck_assert_int_eq(fut_value(r), 0);
	fut_unref(r);
	/* The hole before offset 100 reads as zeros. */
	r = fut_read(loop, fd, rb, 4, 0);
	wait_for(loop, r);
	ck_assert_int_eq(fut_value(r), 4);
	ck_assert(rb[0] == 0 && rb[3] == 0);
	fut_unref(r);
	/* Regular files are always ready for fut_poll. */
	fut *p = fut_poll(loop, fd, POLLIN);
	wait_for(loop, p);
	ck_assert(fut_value(p) & POLLIN);
	fut_unref(p);
	fut_unref(fut_close(loop, fd));
	ck_assert_int_eq(fut_loop_run(loop), 0);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* Lengths of 4 GiB and more: an io_uring SQE holds 32 bits, and 4 GiB
 * went in as 0 (a recv "reached end of file" with data waiting). */
START_TEST(lengths_past_4gib)
{
	size_t big = ((size_t)1 << 32) + 2;
	char *buf = mmap(NULL, big + 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (buf == MAP_FAILED)
		return; /* no address space for it here (valgrind) */
	fut_loop *loop = new_loop();
	int sp[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	ck_assert_int_eq(send(sp[1], "hello", 5, 0), 5);
	fut *rv = fut_recv(loop, sp[0], buf, big - 2, 0); /* 4 GiB */
	wait_for(loop, rv);
	ck_assert_int_eq(fut_value(rv), 5);
	ck_assert(memcmp(buf, "hello", 5) == 0);
	fut_unref(rv);
	char path[] = "/tmp/libfuture-tXXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	ck_assert_int_eq(pwrite(fd, "hello world", 11, 100), 11);
	fut *r = fut_read(loop, fd, buf, big - 2, 106);
	wait_for(loop, r);
	ck_assert_int_eq(fut_value(r), 5);
	ck_assert(memcmp(buf, "world", 5) == 0);
	fut_unref(r);
	fut_unref(fut_close(loop, fd));
	fut_unref(fut_close(loop, sp[0]));
	close(sp[1]);
	ck_assert_int_eq(fut_loop_run(loop), 0);
	ck_assert_int_eq(fut_loop_free(loop), 0);
	munmap(buf, big + 4096);
}
END_TEST

/* A recv of 0 bytes waits until the socket is readable, then ends with 0
 * and leaves the data unread, on every backend (a blocking recv(2) of 0
 * bytes returns at once on TCP, a non-blocking one says EAGAIN). */
START_TEST(zero_length_recv_waits_for_data)
{
	fut_loop *loop = new_loop();
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	ck_assert_int_eq(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
	getsockname(ls, (struct sockaddr *)&a, &al);
	ck_assert_int_eq(listen(ls, 1), 0);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	int s = accept(ls, NULL, NULL);
	ck_assert_int_ge(s, 0);
	char b[4];
	fut *r = fut_recv(loop, s, b, 0, 0);
	run_for(loop, 50);
	ck_assert_int_eq(fut_state(r), FUT_PENDING);
	ck_assert_int_eq(send(c, "x", 1, 0), 1);
	wait_for(loop, r);
	ck_assert_int_eq(fut_error(r), 0);
	ck_assert_int_eq(fut_value(r), 0);
	fut_unref(r);
	r = fut_recv(loop, s, b, sizeof(b), 0);
	wait_for(loop, r);
	ck_assert_int_eq(fut_value(r), 1);
	fut_unref(r);
	fut_unref(fut_close(loop, s));
	close(c);
	close(ls);
	ck_assert_int_eq(fut_loop_run(loop), 0);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

START_TEST(invalid_io_arguments)
{
	fut_loop *loop = new_loop();
	char b[4];
	fut *fs[] = {
		fut_recv(loop, -1, b, 4, 0), fut_send(loop, -1, b, 4, 0),
		fut_read(loop, -1, b, 4, 0), fut_write(loop, -1, b, 4, -1),
		fut_accept(loop, -1, NULL, NULL), fut_poll(loop, -1, POLLIN),
		fut_close(loop, -1),
	};
	for (size_t i = 0; i < sizeof(fs) / sizeof(fs[0]); i++) {
		ck_assert_int_eq(fut_error(fs[i]), -EBADF);
		fut_unref(fs[i]);
	}
	fut *f = fut_recv(loop, 0, NULL, 4, 0);
	ck_assert_int_eq(fut_error(f), -EINVAL);
	fut_unref(f);
	f = fut_read(loop, 0, b, 4, -2);
	ck_assert_int_eq(fut_error(f), -EINVAL);
	fut_unref(f);
	/* Past SSIZE_MAX: EINVAL on every backend (the ring read a few
	 * bytes where epoll's read(2) said EFAULT). */
	fut *big[] = { fut_read(loop, 0, b, SIZE_MAX, -1),
		       fut_recv(loop, 0, b, (size_t)SSIZE_MAX + 1, 0),
		       fut_send(loop, 0, b, SIZE_MAX, 0),
		       fut_write(loop, 0, b, SIZE_MAX, 0) };
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		ck_assert_int_eq(fut_error(big[i]), -EINVAL);
		fut_unref(big[i]);
	}
	f = fut_connect(loop, 0, NULL, 0);
	ck_assert_int_eq(fut_error(f), -EINVAL);
	fut_unref(f);
	/* fds that are not open, beyond the fd table and inside it: EBADF
	 * on every backend, without sizing a table by INT_MAX. */
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	int closed = p[0];
	close(p[0]);
	int bad[] = { INT_MAX, 1 << 20, closed };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fut *g[] = { fut_poll(loop, bad[i], POLLIN),
			     fut_recv(loop, bad[i], b, 4, 0) };
		for (int k = 0; k < 2; k++) {
			fut_loop_run_until(loop, g[k]);
			ck_assert_msg(fut_error(g[k]) == -EBADF, "fd %d op %d: %s",
				      bad[i], k, fut_errname(fut_error(g[k])));
			fut_unref(g[k]);
		}
	}
	/* A positional read of a pipe is ESPIPE, as pread(2) says. */
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(write(p[1], "abcd", 4), 4);
	f = fut_read(loop, p[0], b, 4, 0);
	fut_loop_run_until(loop, f);
	ck_assert_int_eq(fut_error(f), -ESPIPE);
	fut_unref(f);
	/* And a positional write (epoll wrote it at the pipe's end). */
	f = fut_write(loop, p[1], "ef", 2, 0);
	fut_loop_run_until(loop, f);
	ck_assert_int_eq(fut_error(f), -ESPIPE);
	fut_unref(f);
	f = fut_close(loop, p[0]);
	fut_loop_run_until(loop, f);
	fut_unref(f);
	close(p[1]);
	ck_assert_ptr_null(fut_recv(NULL, 0, b, 4, 0));
	ck_assert_ptr_null(fut_sleep(NULL, 1));
	ck_assert_ptr_null(fut_run_blocking(NULL, NULL, NULL));
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

static int64_t sleepy(void *arg)
{
	usleep(50000);
	return (int64_t)(intptr_t)arg;
}

static int64_t failing(void *arg)
{
	return -EIO;
}

/* Returns its argument: an int64 below INT32_MIN */
static int64_t returns(void *arg)
{
	return *(const int64_t *)arg;
}

START_TEST(blocking_jobs)
{
	struct fut_loop_opts o = { .threads = 1 };
	int err;
	fut_loop *loop = fut_loop_new(&o, &err);
	ck_assert_ptr_nonnull(loop);
	fut *a = fut_run_blocking(loop, sleepy, (void *)7);
	fut *b = fut_run_blocking(loop, sleepy, (void *)8);
	fut *c = fut_run_blocking(loop, failing, NULL);
	/* One worker: b waits in the queue and can be withdrawn. */
	ck_assert_int_eq(fut_cancel(b), 0);
	ck_assert_int_eq(fut_error(b), -ECANCELED);
	wait_for(loop, a);
	ck_assert_int_eq(fut_value(a), 7);
	wait_for(loop, c);
	ck_assert_int_eq(fut_error(c), -EIO);
	fut_unref(a);
	fut_unref(b);
	fut_unref(c);
	fut *n = fut_run_blocking(loop, NULL, NULL);
	ck_assert_int_eq(fut_error(n), -EINVAL);
	fut_unref(n);
	/* Errors are ints: -2^32 came out as a success, others positive. */
	static const int64_t low[] = { -4294967296LL, INT64_MIN,
				       -2147483649LL, -5000000000LL };
	for (int i = 0; i < 4; i++) {
		n = fut_run_blocking(loop, returns, (void *)&low[i]);
		wait_for(loop, n);
		ck_assert_int_eq(fut_state(n), FUT_REJECTED);
		ck_assert_int_eq(fut_error(n), -EINVAL);
		fut_unref(n);
	}
	int64_t big = INT64_MAX;
	n = fut_run_blocking(loop, returns, &big);
	wait_for(loop, n);
	ck_assert(fut_value(n) == INT64_MAX);
	fut_unref(n);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* The library's threads (the blocking pool, the threads backend's
 * workers) block every signal: a signal the program blocks and takes with
 * signalfd reaches the signalfd, not a worker where its default action
 * would kill the process. */
/* fut_write to a pipe whose reader is gone raises SIGPIPE on every backend
 * (libfuture(7)), also where a worker thread makes the write(2): a child
 * with SIGPIPE at its default must die of it. */
START_TEST(pipe_write_raises_sigpipe_everywhere)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		alarm(10);
		fut_loop *loop = fut_loop_new(NULL, NULL);
		int p[2];
		if (!loop || pipe(p) < 0)
			_exit(3);
		close(p[0]);
		fut *w = fut_write(loop, p[1], "x", 1, -1);
		fut_loop_run_until(loop, w);
		_exit(fut_error(w) == -EPIPE ? 4 : 5);
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE,
		      "status %#x", st);
}
END_TEST

/* A pool thread's mask: bit 0, SIGUSR1 blocked; bit 1, SIGSEGV and SIGPIPE
 * open (a fault goes to the program's handler, a write to a closed pipe
 * raises SIGPIPE, as on the loop's thread). */
static int64_t mask_job(void *arg)
{
	(void)arg;
	sigset_t cur;
	pthread_sigmask(SIG_SETMASK, NULL, &cur);
	return (sigismember(&cur, SIGUSR1) == 1) |
	       (!sigismember(&cur, SIGSEGV) && !sigismember(&cur, SIGPIPE)) << 1;
}

START_TEST(library_threads_leave_signals_alone)
{
	struct fut_loop_opts o = { .threads = 2 };
	fut_loop *loop = fut_loop_new(&o, NULL);
	ck_assert_ptr_nonnull(loop);
	fut *j[2] = { fut_run_blocking(loop, sleepy, (void *)1),
		      fut_run_blocking(loop, sleepy, (void *)2) };
	for (int i = 0; i < 2; i++) {
		wait_for(loop, j[i]);
		fut_unref(j[i]);
	}
	fut *m = fut_run_blocking(loop, mask_job, NULL);
	wait_for(loop, m);
	ck_assert_int_eq(fut_value(m), 3);
	fut_unref(m);
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	char buf[8];
	fut *r = fut_recv(loop, sv[0], buf, sizeof(buf), 0);
	fut *tick = fut_sleep(loop, 20); /* threads: a worker waits in it */
	wait_for(loop, tick);
	fut_unref(tick);
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &set, &old), 0);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	ck_assert_int_ge(sfd, 0);
	ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
	struct pollfd p = { .fd = sfd, .events = POLLIN };
	ck_assert_int_eq(poll(&p, 1, 2000), 1);
	struct signalfd_siginfo si;
	ck_assert_int_eq(read(sfd, &si, sizeof(si)), (ssize_t)sizeof(si));
	ck_assert_uint_eq(si.ssi_signo, SIGUSR1);
	close(sfd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	ck_assert_int_eq(fut_cancel(r), 0);
	wait_for(loop, r);
	fut_unref(r);
	close(sv[0]);
	close(sv[1]);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* The threads backend blocks one worker per waiting op, up to its cap
 * (the workers option); past it, ops wait for a worker, and one whose fd
 * is ready must still end: the loop polls them. Here 2 workers wait in
 * recvs that never get data, and a recv, an accept, a poll and a send
 * queued behind them end all the same. Other backends ignore the option. */
START_TEST(ops_past_the_worker_cap_still_end)
{
	struct fut_loop_opts o = { .workers = 2 };
	fut_loop *loop = fut_loop_new(&o, NULL);
	ck_assert_ptr_nonnull(loop);
	enum { N = 3 };
	int sv[N][2];
	char buf[N][8];
	fut *r[N];
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]), 0);
		r[i] = fut_recv(loop, sv[i][0], buf[i], sizeof(buf[i]), 0);
	}
	/* r[0] and r[1] hold the workers; these wait for one. */
	struct sockaddr_in a;
	int ls = listener(&a);
	fut *acc = fut_accept(loop, ls, NULL, NULL);
	fut *pl = fut_poll(loop, sv[1][1], POLLIN);
	run_for(loop, 30);
	ck_assert_int_eq(write(sv[2][1], "hi", 2), 2);
	wait_for(loop, r[2]);
	ck_assert_int_eq(fut_value(r[2]), 2);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	wait_for(loop, acc);
	ck_assert_int_ge(fut_value(acc), 0);
	close((int)fut_value(acc));
	close(c);
	ck_assert_int_eq(write(sv[1][0], "p", 1), 1);
	wait_for(loop, pl);
	ck_assert_int_eq(fut_value(pl), POLLIN);
	/* MSG_WAITALL gathers without a worker too (it waited for one, for
	 * good); a peek ends with what is there. */
	int w[2];
	char wb[4], pb[4];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, w), 0);
	fut *wa = fut_recv(loop, w[0], wb, sizeof(wb), MSG_WAITALL);
	ck_assert_int_eq(write(w[1], "ab", 2), 2);
	run_for(loop, 40);
	ck_assert_int_eq(fut_state(wa), FUT_PENDING);
	ck_assert_int_eq(write(w[1], "cd", 2), 2);
	wait_for(loop, wa);
	ck_assert_int_eq(fut_value(wa), 4);
	ck_assert(!memcmp(wb, "abcd", 4));
	fut_unref(wa);
	/* Gathered by the loop, then timed out: the bytes are the result. */
	fut *wt = fut_timeout(fut_recv(loop, w[0], wb, sizeof(wb),
				       MSG_WAITALL), 80);
	ck_assert_int_eq(write(w[1], "ef", 2), 2);
	wait_for(loop, wt);
	ck_assert_int_eq(fut_value(wt), 2);
	ck_assert(!memcmp(wb, "ef", 2));
	fut_unref(wt);
	fut *pk = fut_recv(loop, w[0], pb, sizeof(pb), MSG_WAITALL | MSG_PEEK);
	ck_assert_int_eq(write(w[1], "xy", 2), 2);
	run_for(loop, 40);
	ck_assert_int_eq(write(w[1], "zw", 2), 2);
	wait_for(loop, pk);
	ck_assert_int_gt(fut_value(pk), 0);
	ck_assert(!memcmp(pb, "xyzw", (size_t)fut_value(pk)));
	fut_unref(pk);
	close_pair(loop, w);
	ck_assert_int_eq(fut_state(r[0]), FUT_PENDING);
	ck_assert_int_eq(fut_state(r[1]), FUT_PENDING);
	fut *fs[] = { r[0], r[1], r[2], acc, pl };
	for (size_t i = 0; i < sizeof(fs) / sizeof(fs[0]); i++) {
		fut_cancel(fs[i]);
		wait_for(loop, fs[i]);
		fut_unref(fs[i]);
	}
	for (int i = 0; i < N; i++) {
		close(sv[i][0]);
		close(sv[i][1]);
	}
	close(ls);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* The library's file I/O must not wait behind long user jobs. */
static atomic_int rendezvous;

/* Returns 1 if another job joined it within 2 s, i.e. both ran at once. */
static int64_t meet(void *arg)
{
	(void)arg;
	atomic_fetch_add(&rendezvous, 1);
	for (int i = 0; i < 2000; i++) {
		if (atomic_load(&rendezvous) >= 2)
			return 1;
		usleep(1000);
	}
	return 0;
}

static int64_t quick(void *arg)
{
	(void)arg;
	return 0;
}

/* An idle worker must not be counted twice: two jobs submitted together
 * while one worker idles run on two workers, at the same time. */
START_TEST(blocking_jobs_run_in_parallel)
{
	fut_loop *loop = new_loop();
	fut *q = fut_run_blocking(loop, quick, NULL);
	wait_for(loop, q); /* one worker started, now idle */
	fut_unref(q);
	atomic_store(&rendezvous, 0);
	fut *a = fut_run_blocking(loop, meet, NULL);
	fut *b = fut_run_blocking(loop, meet, NULL);
	wait_for(loop, a);
	wait_for(loop, b);
	ck_assert_int_eq(fut_value(a), 1);
	ck_assert_int_eq(fut_value(b), 1);
	fut_unref(a);
	fut_unref(b);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

START_TEST(file_io_not_starved_by_blocking_jobs)
{
	struct fut_loop_opts o = { .threads = 1 };
	int err;
	fut_loop *loop = fut_loop_new(&o, &err);
	ck_assert_ptr_nonnull(loop);
	fut *jobs[4];
	for (int i = 0; i < 4; i++)
		jobs[i] = fut_run_blocking(loop, sleepy, NULL);
	char path[] = "/tmp/libfuture-tXXXXXX";
	int fd = mkstemp(path);
	unlink(path);
	uint64_t t0 = fut_loop_now(loop);
	fut *w = fut_write(loop, fd, "x", 1, 0);
	wait_for(loop, w);
	ck_assert_int_eq(fut_value(w), 1);
	/* The jobs need 200 ms on the single user worker. */
	ck_assert_uint_lt(fut_loop_now(loop) - t0, 150);
	fut_unref(w);
	for (int i = 0; i < 4; i++)
		fut_unref(jobs[i]);
	fut_unref(fut_close(loop, fd));
	ck_assert_int_eq(fut_loop_run(loop), 0);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* Jobs that wait for the gate to open, so the queue can be filled and
 * cancelled while nothing runs. */
static atomic_int gate_open, gate_waiting;

static int64_t gate(void *arg)
{
	(void)arg;
	atomic_fetch_add(&gate_waiting, 1);
	while (!atomic_load(&gate_open))
		usleep(1000);
	return 0;
}

#define NJOBS 3000
static atomic_int job_ran[NJOBS];

static int64_t numbered(void *arg)
{
	intptr_t i = (intptr_t)arg;
	atomic_fetch_add(&job_ran[i], 1);
	return i * 3;
}

static fut_loop *gated_loop(unsigned threads, fut **gates)
{
	struct fut_loop_opts o = { .threads = threads };
	int err;
	fut_loop *loop = fut_loop_new(&o, &err);
	ck_assert_ptr_nonnull(loop);
	atomic_store(&gate_open, 0);
	atomic_store(&gate_waiting, 0);
	for (unsigned i = 0; i < threads; i++)
		gates[i] = fut_run_blocking(loop, gate, NULL);
	for (int i = 0; i < 5000 && atomic_load(&gate_waiting) < (int)threads;
	     i++)
		usleep(1000);
	ck_assert_int_eq(atomic_load(&gate_waiting), (int)threads);
	return loop;
}

/* Jobs submitted back to back, each blocking until all have started, run
 * at once on as many workers: none waits behind a busy worker while the
 * pool could still grow. Many rounds, because the workers' start-up races
 * the submissions. */
START_TEST(blocking_jobs_all_start)
{
	for (int round = 0; round < 200; round++) {
		fut *gates[4];
		struct fut_loop_opts o = { .threads = 4 };
		int err;
		fut_loop *loop = fut_loop_new(&o, &err);
		ck_assert_ptr_nonnull(loop);
		atomic_store(&gate_open, 0);
		atomic_store(&gate_waiting, 0);
		for (int i = 0; i < 4; i++)
			gates[i] = fut_run_blocking(loop, gate, NULL);
		for (int i = 0; i < 5000 && atomic_load(&gate_waiting) < 4; i++)
			usleep(200);
		ck_assert_int_eq(atomic_load(&gate_waiting), 4);
		atomic_store(&gate_open, 1);
		for (int i = 0; i < 4; i++) {
			wait_for(loop, gates[i]);
			fut_unref(gates[i]);
		}
		ck_assert_int_eq(fut_loop_free(loop), 0);
	}
}
END_TEST

/* More jobs than the pool's queue holds at once: every one runs exactly
 * once with its own result, and cancelling queued ones (wherever they
 * wait) withdraws them before they run. */
START_TEST(blocking_jobs_beyond_the_queue)
{
	fut *gates[2];
	fut_loop *loop = gated_loop(2, gates);
	static fut *f[NJOBS];
	for (int i = 0; i < NJOBS; i++) {
		atomic_store(&job_ran[i], 0);
		f[i] = fut_run_blocking(loop, numbered, (void *)(intptr_t)i);
		ck_assert_ptr_nonnull(f[i]);
	}
	for (int i = 0; i < NJOBS; i += 7) {
		ck_assert_int_eq(fut_cancel(f[i]), 0);
		ck_assert_int_eq(fut_error(f[i]), -ECANCELED);
	}
	atomic_store(&gate_open, 1);
	for (int i = 0; i < NJOBS; i++)
		wait_for(loop, f[i]);
	for (int i = 0; i < NJOBS; i++) {
		if (i % 7 == 0) {
			ck_assert_int_eq(atomic_load(&job_ran[i]), 0);
		} else {
			ck_assert_int_eq(fut_error(f[i]), 0);
			ck_assert_int_eq(fut_value(f[i]), i * 3);
			ck_assert_int_eq(atomic_load(&job_ran[i]), 1);
		}
		fut_unref(f[i]);
	}
	for (int i = 0; i < 2; i++) {
		wait_for(loop, gates[i]);
		fut_unref(gates[i]);
	}
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* Jobs queued behind a queue whose every job was cancelled still run: a
 * withdrawn job frees its place without a completion to say so. */
START_TEST(blocking_jobs_behind_cancelled_ones)
{
	fut *gates[1];
	fut_loop *loop = gated_loop(1, gates);
	static fut *f[NJOBS];
	for (int i = 0; i < NJOBS; i++)
		f[i] = fut_run_blocking(loop, numbered, (void *)(intptr_t)i);
	for (int i = 0; i < NJOBS; i++) {
		ck_assert_int_eq(fut_cancel(f[i]), 0);
		fut_unref(f[i]);
	}
	fut *late[100];
	for (int i = 0; i < 100; i++) {
		atomic_store(&job_ran[i], 0);
		late[i] = fut_run_blocking(loop, numbered, (void *)(intptr_t)i);
	}
	atomic_store(&gate_open, 1);
	for (int i = 0; i < 100; i++) {
		wait_for(loop, late[i]);
		ck_assert_int_eq(fut_value(late[i]), i * 3);
		ck_assert_int_eq(atomic_load(&job_ran[i]), 1);
		fut_unref(late[i]);
	}
	wait_for(loop, gates[0]);
	fut_unref(gates[0]);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/*
 * A cancel that reaches an op only after it has completed (io_uring and
 * threads cancel asynchronously; the recv below is done in the kernel or
 * on a worker before the loop hears of it) still cancels what waits on it:
 * fut_then's fn does not run. A fut_timeout passes the recv's result on
 * (the byte it consumed is not lost), as the recv's own future would.
 */
static int then_fn_calls;

static fut *then_fn(fut *f, void *arg)
{
	(void)f;
	then_fn_calls++;
	return fut_sleep(arg, 2000);
}

START_TEST(late_cancel_still_cancels)
{
	fut_loop *loop = new_loop();
	for (int kind = 0; kind < 2; kind++) {
		int sv[2];
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		char buf[8];
		fut *r = fut_recv(loop, sv[0], buf, sizeof(buf), 0);
		fut *g = kind ? fut_timeout(r, 10000) :
				fut_then(r, then_fn, loop);
		run_for(loop, 20);
		ck_assert_int_eq(write(sv[1], "x", 1), 1);
		usleep(50 * 1000); /* the op completes, the loop not told */
		then_fn_calls = 0;
		ck_assert_int_eq(fut_cancel(g), 0);
		wait_for(loop, g);
		if (kind) /* -ECANCELED on epoll, the byte elsewhere */
			ck_assert_msg(fut_error(g) == -ECANCELED ||
				      fut_value(g) == 1, "timeout: %s",
				      fut_strerror(fut_error(g)));
		else
			ck_assert_msg(fut_error(g) == -ECANCELED, "then: %s",
				      fut_strerror(fut_error(g)));
		ck_assert_int_eq(then_fn_calls, 0);
		fut_unref(g);
		close(sv[0]);
		close(sv[1]);
	}
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* fn returns a future that waits on g itself: cancelling g goes round
 * the cycle once, not until the stack overflows; freeing the loop ends
 * both. */
static fut *cyc_g;

static fut *cyc_fn(fut *f, void *arg)
{
	(void)f;
	(void)arg;
	return fut_timeout(fut_ref(cyc_g), 60000);
}

START_TEST(cancel_cycle_through_then)
{
	fut_loop *loop = new_loop();
	cyc_g = fut_then(fut_resolved(loop, 1), cyc_fn, NULL);
	run_for(loop, 20);
	ck_assert_int_eq(fut_state(cyc_g), FUT_PENDING);
	ck_assert_int_eq(fut_cancel(cyc_g), 0);
	run_for(loop, 20);
	fut_unref(cyc_g);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

START_TEST(combinators_really_cancel)
{
	fut_loop *loop = new_loop();
	fut *two[2] = { fut_sleep(loop, 10), fut_sleep(loop, 100000) };
	fut *any = fut_any(loop, two, 2);
	wait_for(loop, any);
	ck_assert_int_eq(fut_value(any), 0);
	ck_assert_int_eq(fut_error(fut_at(any, 1)), -ECANCELED);
	fut_unref(any);
	/* Nothing is left armed: run returns at once. */
	uint64_t t0 = fut_loop_now(loop);
	ck_assert_int_eq(fut_loop_run(loop), 0);
	ck_assert_uint_lt(fut_loop_now(loop) - t0, 1000);
	fut *m[3] = { fut_resolved(loop, 1), fut_rejected(loop, -EIO),
		      fut_sleep(loop, 5) };
	fut *all = fut_all(loop, m, 3, FUT_ALL_SETTLED);
	wait_for(loop, all);
	ck_assert_int_eq(fut_value(all), 1);
	ck_assert_int_eq(fut_error(fut_at(all, 1)), -EIO);
	ck_assert_int_eq(fut_value(fut_at(all, 0)), 1);
	fut_unref(all);
	/* A timeout cancels a pending recv behind it. */
	int sv[2];
	char b[4];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fut *t = fut_timeout(fut_recv(loop, sv[0], b, 4, 0), 20);
	wait_for(loop, t);
	ck_assert_int_eq(fut_error(t), -ETIMEDOUT);
	fut_unref(t);
	fut_unref(fut_send(loop, sv[1], "ab", 2, 0));
	fut *r = fut_recv(loop, sv[0], b, 4, 0);
	wait_for(loop, r);
	ck_assert_int_eq(fut_value(r), 2);
	fut_unref(r);
	fut_unref(fut_close(loop, sv[0]));
	fut_unref(fut_close(loop, sv[1]));
	ck_assert_int_eq(fut_loop_run(loop), 0);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

START_TEST(free_with_pending_work)
{
	fut_loop *loop = new_loop();
	int pp[2];
	char b[4];
	long hits = 0;
	ck_assert_int_eq(pipe(pp), 0);
	fut *r = fut_read(loop, pp[0], b, 4, -1);
	fut_ref(r);
	ck_assert_int_eq(fut_on_done(r, count_cb, &hits), 0);
	fut_on_done(fut_sleep(loop, 50000), count_cb, &hits);
	fut_on_done(fut_new(loop), count_cb, &hits);
	fut_unref(r);
	/* Every pending future ends with -ECANCELED and its callback runs
	 * inside fut_loop_free, never after. */
	ck_assert_int_eq(fut_loop_free(loop), 0);
	ck_assert_int_eq(hits, 3);
	close(pp[0]);
	close(pp[1]);
}
END_TEST

START_TEST(leak_is_reported)
{
	fut_loop *loop = new_loop();
	fut *kept = fut_new(loop);
	(void)kept;
	ck_assert_int_eq(fut_loop_free(loop), 1);
}
END_TEST

Suite *smoke_suite(void)
{
	Suite *s = suite_create("smoke");
	TCase *tc = tcase_create("smoke");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, cancel_pending_recv_then_eof_and_epipe);
	tcase_add_test(tc, sends_keep_order_and_cancel_cleanly);
	tcase_add_test(tc, tcp_accept_connect_refused);
	tcase_add_test(tc, unix_connect_to_full_backlog_is_eagain);
	tcase_add_test(tc, accept_backlog_order_cancel_close);
	tcase_add_test(tc, accept_takes_only_what_is_asked);
	tcase_add_test(tc, accept_past_fd_table_end);
	tcase_add_test(tc, regular_file_read_write);
	tcase_add_test(tc, lengths_past_4gib);
	tcase_add_test(tc, file_reads_in_parallel);
	tcase_add_test(tc, file_position_ops_keep_order);
	tcase_add_test(tc, file_close_stops_its_operations);
	tcase_add_test(tc, recv_waitall_gathers);
	tcase_add_test(tc, socket_write_never_raises_sigpipe);
	tcase_add_test(tc, pipe_stream_write_and_read);
	tcase_add_test(tc, op_after_close_is_ebadf);
	tcase_add_test(tc, close_stops_a_partial_send);
	tcase_add_test(tc, backends_agree_on_edges);
	tcase_add_test(tc, polls_on_one_fd_are_independent);
	tcase_add_test(tc, poll_out_after_peer_half_close);
	tcase_add_test(tc, zero_length_recv_waits_for_data);
	tcase_add_test(tc, invalid_io_arguments);
	tcase_add_test(tc, blocking_jobs);
	tcase_add_test(tc, library_threads_leave_signals_alone);
	tcase_add_test(tc, pipe_write_raises_sigpipe_everywhere);
	tcase_add_test(tc, ops_past_the_worker_cap_still_end);
	tcase_add_test(tc, blocking_jobs_run_in_parallel);
	tcase_add_test(tc, file_io_not_starved_by_blocking_jobs);
	tcase_add_test(tc, blocking_jobs_beyond_the_queue);
	tcase_add_test(tc, blocking_jobs_behind_cancelled_ones);
	tcase_add_test(tc, combinators_really_cancel);
	tcase_add_test(tc, late_cancel_still_cancels);
	tcase_add_test(tc, cancel_cycle_through_then);
	tcase_add_test(tc, free_with_pending_work);
	tcase_add_test(tc, leak_is_reported);
	suite_add_tcase(s, tc);
	/* Millions of operations: minutes under valgrind, which skips them
	 * (.ci/test-all); every other build runs them. */
	tc = tcase_create("heavy");
	tcase_set_timeout(tc, 60);
	tcase_set_tags(tc, "heavy");
	tcase_add_test(tc, resolve_from_8_threads);
	tcase_add_test(tc, send_16mib_through_partial_writes);
	tcase_add_test(tc, blocking_jobs_all_start);
	suite_add_tcase(s, tc);
	/* valgrind keeps fds of its own at the top of RLIMIT_NOFILE, which
	 * this test lowers: the valgrind run (.ci/test-all) leaves it out. */
	tc = tcase_create("rlimit");
	tcase_set_timeout(tc, 30);
	tcase_set_tags(tc, "no-valgrind");
	tcase_add_test(tc, poll_out_of_fds_does_not_hang);
	suite_add_tcase(s, tc);
	return s;
}
