/*
 * Benchmark 2: arm and fire N (default 1,000,000) one-shot timers.
 *
 * Shape, identical for every implementation: timer i gets the deadline
 * d[i] = 1 + (x_i mod 1000) ms, x_i from a fixed-seed xorshift64, i.e.
 * deadlines spread uniformly over 1..1000 ms in a random arming order
 * (sorted or round-robin orders would flatter heaps or wheels). Each timer
 * has a callback that counts; the count is checked after every round.
 *
 *   arm   the time to arm all N timers, per timer:
 *           libfuture  fut_sleep + fut_on_done
 *           libuv      uv_timer_init + uv_timer_start (handles preallocated)
 *           libevent   event_assign + event_add (events preallocated)
 *   fire  after arming, a plain nanosleep until the last deadline has
 *         passed (+50 ms), then the loop is run once; its duration, per
 *         timer, is pure CPU work: expiry, dispatch, callback, cleanup.
 *
 * Each repetition runs two rounds per implementation on the same loop:
 * round 1 "cold" (fresh loop, nothing allocated or faulted in yet) and
 * round 2 "warm" (libfuture's free lists, libevent's heap array and the
 * caller's handle arrays already in memory). The warm numbers are the
 * headline; the cold ones are printed as arm_cold / fire_cold.
 *
 * Usage: timers [-r reps] [-n timers] [-o libfuture|libuv|libevent]
 */
#include "bench.h"
#include "future.h"

#include <event2/event.h>
#include <uv.h>

#define BENCH "timers"
#define SPREAD_MS 1000
#define MARGIN_MS 50

static uint16_t *deadline; /* ms, 1..SPREAD_MS */
static long count;

static void make_deadlines(long n)
{
	deadline = malloc((size_t)n * sizeof(*deadline));
	if (!deadline)
		bench_die("out of memory");
	uint64_t x = 0x9E3779B97F4A7C15ull;
	for (long i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		deadline[i] = (uint16_t)(1 + x % SPREAD_MS);
	}
}

static void wait_past_deadlines(void)
{
	bench_sleep_ns((uint64_t)(SPREAD_MS + MARGIN_MS) * 1000000u);
}

static void report(const char *impl, int warm, long n, uint64_t arm_ns,
		   uint64_t fire_ns)
{
	bench_result(BENCH, impl, warm ? "arm" : "arm_cold",
		     (double)arm_ns / (double)n);
	bench_result(BENCH, impl, warm ? "fire" : "fire_cold",
		     (double)fire_ns / (double)n);
}

/* --- libfuture --- */

static void lf_fired(fut *f, void *arg)
{
	(void)f;
	(void)arg;
	count++;
}

static void run_libfuture(long n)
{
	int err;
	fut_loop *loop = fut_loop_new(NULL, &err);
	if (!loop)
		bench_die("fut_loop_new: %s", fut_strerror(err));
	for (int warm = 0; warm < 2; warm++) {
		count = 0;
		uint64_t t0 = bench_now_ns();
		for (long i = 0; i < n; i++) {
			fut *f = fut_sleep(loop, deadline[i]);
			if (!f || fut_on_done(f, lf_fired, NULL) < 0)
				bench_die("fut_sleep/fut_on_done failed");
		}
		uint64_t t1 = bench_now_ns();
		wait_past_deadlines();
		uint64_t t2 = bench_now_ns();
		int r = fut_loop_run(loop);
		uint64_t t3 = bench_now_ns();
		if (r < 0)
			bench_die("fut_loop_run: %s", fut_strerror(r));
		if (count != n)
			bench_die("libfuture: %ld of %ld timers fired", count, n);
		report("libfuture", warm, n, t1 - t0, t3 - t2);
	}
	int leaked = fut_loop_free(loop);
	if (leaked)
		bench_die("libfuture: %d futures leaked", leaked);
}

/* --- libuv --- */

static void uv_fired(uv_timer_t *t)
{
	(void)t;
	count++;
}

static void run_libuv(long n)
{
	uv_loop_t loop;
	if (uv_loop_init(&loop) != 0)
		bench_die("uv_loop_init failed");
	uv_timer_t *ts = malloc((size_t)n * sizeof(*ts));
	if (!ts)
		bench_die("out of memory");
	for (int warm = 0; warm < 2; warm++) {
		count = 0;
		uv_update_time(&loop);
		uint64_t t0 = bench_now_ns();
		for (long i = 0; i < n; i++) {
			uv_timer_init(&loop, &ts[i]);
			if (uv_timer_start(&ts[i], uv_fired, deadline[i], 0) != 0)
				bench_die("uv_timer_start failed");
		}
		uint64_t t1 = bench_now_ns();
		wait_past_deadlines();
		uint64_t t2 = bench_now_ns();
		uv_run(&loop, UV_RUN_DEFAULT);
		uint64_t t3 = bench_now_ns();
		if (count != n)
			bench_die("libuv: %ld of %ld timers fired", count, n);
		report("libuv", warm, n, t1 - t0, t3 - t2);
		/* Untimed: the handles stay in the loop until closed. */
		for (long i = 0; i < n; i++)
			uv_close((uv_handle_t *)&ts[i], NULL);
		uv_run(&loop, UV_RUN_DEFAULT);
	}
	if (uv_loop_close(&loop) != 0)
		bench_die("uv_loop_close failed");
	free(ts);
}

/* --- libevent --- */

static void ev_fired(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	count++;
}

static void run_libevent(long n)
{
	struct event_base *base = event_base_new();
	if (!base)
		bench_die("event_base_new failed");
	size_t esz = event_get_struct_event_size();
	char *evs = malloc((size_t)n * esz);
	if (!evs)
		bench_die("out of memory");
	for (int warm = 0; warm < 2; warm++) {
		count = 0;
		uint64_t t0 = bench_now_ns();
		for (long i = 0; i < n; i++) {
			struct event *ev = (struct event *)(evs + (size_t)i * esz);
			struct timeval tv = { deadline[i] / 1000,
					      (deadline[i] % 1000) * 1000 };
			if (event_assign(ev, base, -1, 0, ev_fired, NULL) != 0 ||
			    event_add(ev, &tv) != 0)
				bench_die("event_assign/event_add failed");
		}
		uint64_t t1 = bench_now_ns();
		wait_past_deadlines();
		uint64_t t2 = bench_now_ns();
		if (event_base_loop(base, 0) < 0)
			bench_die("event_base_loop failed");
		uint64_t t3 = bench_now_ns();
		if (count != n)
			bench_die("libevent: %ld of %ld timers fired", count, n);
		report("libevent", warm, n, t1 - t0, t3 - t2);
	}
	event_base_free(base);
	free(evs);
}

int main(int argc, char **argv)
{
	struct bench_args a = bench_parse(argc, argv, 1000000);
	make_deadlines(a.n);
	{
		fut_loop *l = fut_loop_new(NULL, NULL);
		if (!l)
			bench_die("fut_loop_new failed");
		bench_info(BENCH, "backend", "%s", fut_loop_backend(l));
		fut_loop_free(l);
		struct event_base *b = event_base_new();
		bench_info(BENCH, "libevent_method", "%s",
			   b ? event_base_get_method(b) : "?");
		if (b)
			event_base_free(b);
	}
	bench_info(BENCH, "timers", "%ld", a.n);
	bench_info(BENCH, "libuv_version", "%s", uv_version_string());
	bench_info(BENCH, "libevent_version", "%s", event_get_version());
	for (int rep = 0; rep < a.reps; rep++) {
		if (bench_want(&a, "libfuture"))
			run_libfuture(a.n);
		if (bench_want(&a, "libuv"))
			run_libuv(a.n);
		if (bench_want(&a, "libevent"))
			run_libevent(a.n);
	}
	free(deadline);
	return 0;
}
