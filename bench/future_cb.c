/*
 * Benchmark 1: the per-operation cost of create -> resolve -> callback.
 *
 *   libfuture     fut_new + fut_on_done(cb) + fut_resolve per op, in batches
 *                 of B (default 1000) after which fut_loop_run() runs the
 *                 B callbacks from the ready queue.
 *   libfuture-b1  the same with B = 1: one fut_loop_run() per op, i.e. the
 *                 fixed cost of one loop run (informational).
 *   raw           the floor: malloc + free + one indirect call per op, in
 *                 the same batch shape (B allocations, then B calls+frees).
 *   raw-tight     malloc, indirect call, free back to back (hottest path
 *                 glibc has: the same tcache slot every time).
 *
 * The std::promise peer is bench/promise.cpp (a separate C++ program).
 * Usage: future_cb [-r reps] [-n ops] [-o impl]; batch size: FUT_BENCH_BATCH.
 */
#include "bench.h"
#include "future.h"

#include <stdint.h>

#define BENCH "future_cb"

static uint64_t counter;

static void on_done(fut *f, void *arg)
{
	(void)f;
	++*(uint64_t *)arg;
}

static double run_libfuture(fut_loop *loop, long nops, long batch)
{
	counter = 0;
	uint64_t t0 = bench_now_ns();
	for (long done = 0; done < nops; done += batch) {
		long b = nops - done < batch ? nops - done : batch;
		for (long i = 0; i < b; i++) {
			fut *f = fut_new(loop);
			if (!f)
				bench_die("fut_new failed");
			if (fut_on_done(f, on_done, &counter) < 0)
				bench_die("fut_on_done failed");
			if (fut_resolve(f, i) < 0)
				bench_die("fut_resolve failed");
		}
		int r = fut_loop_run(loop);
		if (r < 0)
			bench_die("fut_loop_run: %s", fut_strerror(r));
	}
	uint64_t t1 = bench_now_ns();
	if (counter != (uint64_t)nops)
		bench_die("libfuture: %llu callbacks for %ld ops",
			  (unsigned long long)counter, nops);
	return (double)(t1 - t0) / (double)nops;
}

/* The raw baseline's "future": about what a minimal one needs. */
struct obj {
	void (*cb)(struct obj *o, void *arg);
	void *arg;
	int64_t value;
	struct obj *next;
	char pad[32];
};

static void on_raw(struct obj *o, void *arg)
{
	(void)o;
	++*(uint64_t *)arg;
}

/* volatile: the compiler cannot see which function is called, so the call
 * stays indirect and the malloc/free pair cannot be elided. */
static void (*volatile raw_cb)(struct obj *, void *) = on_raw;

static double run_raw(long nops, long batch)
{
	struct obj **objs = malloc((size_t)batch * sizeof(*objs));
	if (!objs)
		bench_die("out of memory");
	counter = 0;
	uint64_t t0 = bench_now_ns();
	for (long done = 0; done < nops; done += batch) {
		long b = nops - done < batch ? nops - done : batch;
		for (long i = 0; i < b; i++) {
			struct obj *o = malloc(sizeof(*o));
			if (!o)
				bench_die("out of memory");
			o->cb = raw_cb;
			o->arg = &counter;
			o->value = i;
			objs[i] = o;
		}
		for (long i = 0; i < b; i++) {
			struct obj *o = objs[i];
			o->cb(o, o->arg);
			free(o);
		}
	}
	uint64_t t1 = bench_now_ns();
	free(objs);
	if (counter != (uint64_t)nops)
		bench_die("raw: lost callbacks");
	return (double)(t1 - t0) / (double)nops;
}

static double run_raw_tight(long nops)
{
	counter = 0;
	uint64_t t0 = bench_now_ns();
	for (long i = 0; i < nops; i++) {
		struct obj *o = malloc(sizeof(*o));
		if (!o)
			bench_die("out of memory");
		o->cb = raw_cb;
		o->arg = &counter;
		o->value = i;
		o->cb(o, o->arg);
		free(o);
	}
	uint64_t t1 = bench_now_ns();
	if (counter != (uint64_t)nops)
		bench_die("raw-tight: lost callbacks");
	return (double)(t1 - t0) / (double)nops;
}

int main(int argc, char **argv)
{
	struct bench_args a = bench_parse(argc, argv, 10000000);
	const char *bs = getenv("FUT_BENCH_BATCH");
	long batch = bs ? atol(bs) : 1000;
	if (batch < 1)
		bench_die("FUT_BENCH_BATCH must be positive");
	int err;
	fut_loop *loop = fut_loop_new(NULL, &err);
	if (!loop)
		bench_die("fut_loop_new: %s", fut_strerror(err));
	bench_info(BENCH, "backend", "%s", fut_loop_backend(loop));
	bench_info(BENCH, "ops", "%ld", a.n);
	bench_info(BENCH, "batch", "%ld", batch);
	long n_b1 = a.n / 10 > 0 ? a.n / 10 : 1;

	/* Warm-up: fills libfuture's free lists and glibc's bins. */
	run_libfuture(loop, 100000 < a.n ? 100000 : a.n, batch);
	run_raw(100000 < a.n ? 100000 : a.n, batch);

	for (int rep = 0; rep < a.reps; rep++) {
		if (bench_want(&a, "libfuture"))
			bench_result(BENCH, "libfuture", "op",
				     run_libfuture(loop, a.n, batch));
		if (bench_want(&a, "raw"))
			bench_result(BENCH, "raw", "op", run_raw(a.n, batch));
		if (bench_want(&a, "raw-tight"))
			bench_result(BENCH, "raw-tight", "op", run_raw_tight(a.n));
		if (bench_want(&a, "libfuture-b1"))
			bench_result(BENCH, "libfuture-b1", "op",
				     run_libfuture(loop, n_b1, 1));
	}
	int leaked = fut_loop_free(loop);
	if (leaked != 0)
		bench_die("fut_loop_free: %d futures leaked", leaked);
	return 0;
}
