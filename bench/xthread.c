/*
 * Benchmark 3: cross-thread posting. The loop thread is pinned to cpu 0,
 * the other thread to cpu 1 (pthread_setaffinity_np), for every peer.
 *
 * flood: a producer thread posts N (default 10,000,000) times; the loop
 *   thread runs them. Metric "post": wall time from the start until the
 *   loop has run the last one, per post.
 *     libfuture   fut_loop_post(loop, fn, i); each fn checks it got i, in
 *                 order, so a lost, duplicated or reordered post fails.
 *     libuv       uv_async_send() on one handle. libuv COALESCES: many
 *                 sends give one callback; the callbacks delivered are
 *                 reported ("I xthread uv_async_delivered ..."). This is
 *                 a wake-up primitive, not a queue: it carries no data.
 *     libuv-queue what a lossless post costs on libuv: a mutex-protected
 *                 array of (fn, arg) plus uv_async_send() per post; the
 *                 callback swaps the array out and runs it (informational).
 * pingpong: two threads, each running its own loop; a post to the other
 *   loop answers every post, M (default N/10 = 1,000,000) round trips.
 *   Metric "rtt": wall time per round trip.
 *     libfuture   fut_loop_post back and forth between two fut_loops.
 *     libuv       two uv_loops, two uv_async handles.
 *     eventfd     the floor: two blocking eventfds, read(2) then write(2).
 *
 * Usage: xthread [-r reps] [-n posts] [-o impl|part|part:impl]  (M = n/10)
 * e.g. -o flood:libfuture, -o pingpong, -o eventfd.
 */
#include "bench.h"
#include "future.h"

#include <stdatomic.h>
#include <sys/eventfd.h>
#include <uv.h>

#define BENCH "xthread"

static long n_posts, n_rounds;

static pthread_t start_thread(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	int r = pthread_create(&t, NULL, fn, arg);
	if (r != 0)
		bench_die("pthread_create: %s", strerror(r));
	return t;
}

/* ------------------------------------------------------------------ */
/* flood: libfuture                                                    */

static fut_loop *fl_loop;
static fut *fl_done;
static long fl_next; /* the index the next post must carry */
static long fl_bad;

static void fl_count(void *arg)
{
	if ((long)(intptr_t)arg != fl_next)
		fl_bad++;
	fl_next++;
}

static void fl_fin(void *arg)
{
	(void)arg;
	fut_resolve(fl_done, 0);
}

static void *fl_producer(void *arg)
{
	(void)arg;
	bench_pin_self(1);
	for (long i = 0; i < n_posts; i++)
		if (fut_loop_post(fl_loop, fl_count, (void *)(intptr_t)i) != 0)
			bench_die("fut_loop_post failed");
	if (fut_loop_post(fl_loop, fl_fin, NULL) != 0)
		bench_die("fut_loop_post failed");
	return NULL;
}

static void flood_libfuture(void)
{
	int err;
	fl_loop = fut_loop_new(NULL, &err);
	if (!fl_loop)
		bench_die("fut_loop_new: %s", fut_strerror(err));
	fl_done = fut_new(fl_loop);
	fl_next = fl_bad = 0;
	uint64_t t0 = bench_now_ns();
	pthread_t t = start_thread(fl_producer, NULL);
	int r = fut_loop_run_until(fl_loop, fl_done);
	uint64_t t1 = bench_now_ns();
	pthread_join(t, NULL);
	if (r < 0)
		bench_die("fut_loop_run_until: %s", fut_strerror(r));
	if (fl_next != n_posts || fl_bad)
		bench_die("libfuture flood: %ld of %ld posts ran, %ld out of order",
			  fl_next, n_posts, fl_bad);
	bench_info(BENCH, "libfuture_lost", "%ld", n_posts - fl_next);
	bench_result(BENCH, "libfuture", "post", (double)(t1 - t0) / n_posts);
	fut_unref(fl_done);
	if (fut_loop_free(fl_loop) != 0)
		bench_die("libfuture flood: leaked futures");
}

/* ------------------------------------------------------------------ */
/* flood: libuv uv_async_send (coalescing)                             */

static uv_async_t ua;
static atomic_int ua_finished;
static long ua_delivered;

static void ua_cb(uv_async_t *h)
{
	ua_delivered++;
	if (atomic_load_explicit(&ua_finished, memory_order_acquire))
		uv_close((uv_handle_t *)h, NULL);
}

static void *ua_producer(void *arg)
{
	(void)arg;
	bench_pin_self(1);
	for (long i = 0; i < n_posts; i++)
		if (uv_async_send(&ua) != 0)
			bench_die("uv_async_send failed");
	atomic_store_explicit(&ua_finished, 1, memory_order_release);
	uv_async_send(&ua);
	return NULL;
}

static void flood_libuv(void)
{
	uv_loop_t loop;
	if (uv_loop_init(&loop) != 0 || uv_async_init(&loop, &ua, ua_cb) != 0)
		bench_die("uv init failed");
	atomic_store(&ua_finished, 0);
	ua_delivered = 0;
	uint64_t t0 = bench_now_ns();
	pthread_t t = start_thread(ua_producer, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uint64_t t1 = bench_now_ns();
	pthread_join(t, NULL);
	if (uv_loop_close(&loop) != 0)
		bench_die("uv_loop_close failed");
	bench_info(BENCH, "uv_async_delivered", "%ld of %ld sends", ua_delivered,
		   n_posts + 1);
	bench_result(BENCH, "libuv", "post", (double)(t1 - t0) / n_posts);
}

/* ------------------------------------------------------------------ */
/* flood: libuv + a mutex-protected queue (lossless)                   */

struct item {
	void (*fn)(void *arg);
	void *arg;
};

static struct {
	pthread_mutex_t mu;
	struct item *buf, *spare;
	size_t len, cap, sparecap;
} uq = { .mu = PTHREAD_MUTEX_INITIALIZER };
static uv_async_t uqa;
static long uq_next, uq_bad;
static int uq_fin_seen;

static void uq_count(void *arg)
{
	if ((long)(intptr_t)arg != uq_next)
		uq_bad++;
	uq_next++;
}

static void uq_fin(void *arg)
{
	(void)arg;
	uq_fin_seen = 1;
}

static void uq_post(void (*fn)(void *), void *arg)
{
	pthread_mutex_lock(&uq.mu);
	if (uq.len == uq.cap) {
		size_t cap = uq.cap ? uq.cap * 2 : 64;
		struct item *p = realloc(uq.buf, cap * sizeof(*p));
		if (!p)
			bench_die("out of memory");
		uq.buf = p;
		uq.cap = cap;
	}
	uq.buf[uq.len].fn = fn;
	uq.buf[uq.len].arg = arg;
	uq.len++;
	pthread_mutex_unlock(&uq.mu);
	uv_async_send(&uqa);
}

static void uq_cb(uv_async_t *h)
{
	pthread_mutex_lock(&uq.mu);
	struct item *buf = uq.buf;
	size_t n = uq.len, cap = uq.cap;
	uq.buf = uq.spare;
	uq.cap = uq.sparecap;
	uq.len = 0;
	pthread_mutex_unlock(&uq.mu);
	for (size_t i = 0; i < n; i++)
		buf[i].fn(buf[i].arg);
	uq.spare = buf;
	uq.sparecap = cap;
	if (uq_fin_seen)
		uv_close((uv_handle_t *)h, NULL);
}

static void *uq_producer(void *arg)
{
	(void)arg;
	bench_pin_self(1);
	for (long i = 0; i < n_posts; i++)
		uq_post(uq_count, (void *)(intptr_t)i);
	uq_post(uq_fin, NULL);
	return NULL;
}

static void flood_libuv_queue(void)
{
	uv_loop_t loop;
	if (uv_loop_init(&loop) != 0 || uv_async_init(&loop, &uqa, uq_cb) != 0)
		bench_die("uv init failed");
	uq_next = uq_bad = 0;
	uq_fin_seen = 0;
	uint64_t t0 = bench_now_ns();
	pthread_t t = start_thread(uq_producer, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uint64_t t1 = bench_now_ns();
	pthread_join(t, NULL);
	if (uv_loop_close(&loop) != 0)
		bench_die("uv_loop_close failed");
	if (uq_next != n_posts || uq_bad)
		bench_die("libuv-queue: %ld of %ld ran", uq_next, n_posts);
	bench_result(BENCH, "libuv-queue", "post", (double)(t1 - t0) / n_posts);
	free(uq.buf);
	free(uq.spare);
	uq.buf = uq.spare = NULL;
	uq.len = uq.cap = uq.sparecap = 0;
}

/* ------------------------------------------------------------------ */
/* ping-pong: libfuture                                                */

static struct {
	fut_loop *a, *b;
	fut *done_a, *done_b;
	long rounds;
	pthread_barrier_t ready;
} lp;

static void lp_on_a(void *arg);

static void lp_on_b(void *arg)
{
	(void)arg;
	if (fut_loop_post(lp.a, lp_on_a, NULL) != 0)
		bench_die("fut_loop_post failed");
}

static void lp_stop_b(void *arg)
{
	(void)arg;
	fut_resolve(lp.done_b, 0);
}

static void lp_on_a(void *arg)
{
	(void)arg;
	if (++lp.rounds == n_rounds) {
		fut_resolve(lp.done_a, 0);
		fut_loop_post(lp.b, lp_stop_b, NULL);
	} else if (fut_loop_post(lp.b, lp_on_b, NULL) != 0) {
		bench_die("fut_loop_post failed");
	}
}

static void *lp_thread_b(void *arg)
{
	(void)arg;
	int err;
	bench_pin_self(1);
	lp.b = fut_loop_new(NULL, &err);
	if (!lp.b)
		bench_die("fut_loop_new: %s", fut_strerror(err));
	lp.done_b = fut_new(lp.b);
	pthread_barrier_wait(&lp.ready);
	int r = fut_loop_run_until(lp.b, lp.done_b);
	if (r < 0)
		bench_die("fut_loop_run_until: %s", fut_strerror(r));
	return NULL;
}

static void pingpong_libfuture(void)
{
	int err;
	lp.a = fut_loop_new(NULL, &err);
	if (!lp.a)
		bench_die("fut_loop_new: %s", fut_strerror(err));
	lp.done_a = fut_new(lp.a);
	lp.rounds = 0;
	pthread_barrier_init(&lp.ready, NULL, 2);
	pthread_t t = start_thread(lp_thread_b, NULL);
	pthread_barrier_wait(&lp.ready);
	uint64_t t0 = bench_now_ns();
	if (fut_loop_post(lp.b, lp_on_b, NULL) != 0)
		bench_die("fut_loop_post failed");
	int r = fut_loop_run_until(lp.a, lp.done_a);
	uint64_t t1 = bench_now_ns();
	pthread_join(t, NULL);
	if (r < 0 || lp.rounds != n_rounds)
		bench_die("libfuture pingpong: %ld of %ld rounds", lp.rounds,
			  n_rounds);
	bench_result(BENCH, "libfuture", "rtt", (double)(t1 - t0) / n_rounds);
	fut_unref(lp.done_a);
	fut_unref(lp.done_b);
	if (fut_loop_free(lp.a) != 0 || fut_loop_free(lp.b) != 0)
		bench_die("libfuture pingpong: leaked futures");
	pthread_barrier_destroy(&lp.ready);
}

/* ------------------------------------------------------------------ */
/* ping-pong: libuv, two loops, two uv_async handles                   */

static struct {
	uv_loop_t la, lb;
	uv_async_t aa, ab; /* aa lives on la (thread A), ab on lb */
	long rounds;
	atomic_int stop;
} up;

static void up_on_b(uv_async_t *h)
{
	if (atomic_load_explicit(&up.stop, memory_order_acquire))
		uv_close((uv_handle_t *)h, NULL);
	else
		uv_async_send(&up.aa);
}

static void up_on_a(uv_async_t *h)
{
	if (++up.rounds == n_rounds) {
		atomic_store_explicit(&up.stop, 1, memory_order_release);
		uv_async_send(&up.ab);
		uv_close((uv_handle_t *)h, NULL);
	} else {
		uv_async_send(&up.ab);
	}
}

static void *up_thread_b(void *arg)
{
	(void)arg;
	bench_pin_self(1);
	uv_run(&up.lb, UV_RUN_DEFAULT);
	return NULL;
}

static void pingpong_libuv(void)
{
	if (uv_loop_init(&up.la) != 0 || uv_loop_init(&up.lb) != 0 ||
	    uv_async_init(&up.la, &up.aa, up_on_a) != 0 ||
	    uv_async_init(&up.lb, &up.ab, up_on_b) != 0)
		bench_die("uv init failed");
	up.rounds = 0;
	atomic_store(&up.stop, 0);
	pthread_t t = start_thread(up_thread_b, NULL);
	uint64_t t0 = bench_now_ns();
	uv_async_send(&up.ab);
	uv_run(&up.la, UV_RUN_DEFAULT);
	uint64_t t1 = bench_now_ns();
	pthread_join(t, NULL);
	if (up.rounds != n_rounds)
		bench_die("libuv pingpong: %ld rounds", up.rounds);
	if (uv_loop_close(&up.la) != 0 || uv_loop_close(&up.lb) != 0)
		bench_die("uv_loop_close failed");
	bench_result(BENCH, "libuv", "rtt", (double)(t1 - t0) / n_rounds);
}

/* ------------------------------------------------------------------ */
/* ping-pong: raw blocking eventfds                                    */

static int ef_a, ef_b;

static void ef_write(int fd, uint64_t v)
{
	while (write(fd, &v, sizeof(v)) != sizeof(v))
		if (errno != EINTR)
			bench_die("eventfd write: %s", strerror(errno));
}

static uint64_t ef_read(int fd)
{
	uint64_t v;
	while (read(fd, &v, sizeof(v)) != sizeof(v))
		if (errno != EINTR)
			bench_die("eventfd read: %s", strerror(errno));
	return v;
}

static void *ef_thread_b(void *arg)
{
	(void)arg;
	bench_pin_self(1);
	while (ef_read(ef_b) == 1)
		ef_write(ef_a, 1);
	return NULL;
}

static void pingpong_eventfd(void)
{
	ef_a = eventfd(0, EFD_CLOEXEC);
	ef_b = eventfd(0, EFD_CLOEXEC);
	if (ef_a < 0 || ef_b < 0)
		bench_die("eventfd: %s", strerror(errno));
	pthread_t t = start_thread(ef_thread_b, NULL);
	uint64_t t0 = bench_now_ns();
	for (long i = 0; i < n_rounds; i++) {
		ef_write(ef_b, 1);
		ef_read(ef_a);
	}
	uint64_t t1 = bench_now_ns();
	ef_write(ef_b, 2); /* stop */
	pthread_join(t, NULL);
	close(ef_a);
	close(ef_b);
	bench_result(BENCH, "eventfd", "rtt", (double)(t1 - t0) / n_rounds);
}

int main(int argc, char **argv)
{
	struct bench_args a = bench_parse(argc, argv, 10000000);
	n_posts = a.n;
	n_rounds = a.n / 10 > 0 ? a.n / 10 : 1;
	bench_pin_self(0);
	{
		fut_loop *l = fut_loop_new(NULL, NULL);
		if (!l)
			bench_die("fut_loop_new failed");
		bench_info(BENCH, "backend", "%s", fut_loop_backend(l));
		fut_loop_free(l);
	}
	bench_info(BENCH, "posts", "%ld", n_posts);
	bench_info(BENCH, "rounds", "%ld", n_rounds);
	bench_info(BENCH, "libuv_version", "%s", uv_version_string());
	for (int rep = 0; rep < a.reps; rep++) {
		if (bench_want_part(&a, "flood", "libfuture"))
			flood_libfuture();
		if (bench_want_part(&a, "flood", "libuv"))
			flood_libuv();
		if (bench_want_part(&a, "flood", "libuv-queue"))
			flood_libuv_queue();
		if (bench_want_part(&a, "pingpong", "libfuture"))
			pingpong_libfuture();
		if (bench_want_part(&a, "pingpong", "libuv"))
			pingpong_libuv();
		if (bench_want_part(&a, "pingpong", "eventfd"))
			pingpong_eventfd();
	}
	return 0;
}
