/*
 * Backends benchmark: thread-pool throughput for empty tasks.
 *
 *   libfuture  fut_run_blocking(loop, empty, NULL) + fut_on_done()
 *   libuv      uv_queue_work(loop, req, empty, after)
 *
 * Both pools have POOL threads: FUTURE_THREADS and UV_THREADPOOL_SIZE are
 * set with setenv() before either library is used (an existing value in
 * the environment is overridden). N tasks (default 4,000,000) are run with
 * at most WINDOW (1024) submitted and not yet completed: every completion
 * callback, on the loop thread, counts the task and submits the next.
 * Metric "task": wall time / N, in ns; "I blocking Mtasks_per_s_<impl>"
 * gives the same as millions of tasks per second. libfuture runs on the
 * backend FUTURE_BACKEND picks (printed).
 *
 * Usage: blocking [-r reps] [-n tasks] [-o libfuture|libuv]
 */
#include "bench.h"
#include "future.h"

#include <uv.h>

#define BENCH "blocking"
#define POOL "4"
#define WINDOW 1024

static long n_tasks;
static long issued, completed;

static void report(const char *impl, uint64_t ns)
{
	double per = (double)ns / (double)n_tasks;
	char key[64];
	snprintf(key, sizeof key, "Mtasks_per_s_%s", impl);
	bench_info(BENCH, key, "%.2f", 1e3 / per);
	bench_result(BENCH, impl, "task", per);
}

/* ------------------------------------------------------------------ */
/* libfuture                                                           */

static fut_loop *lf_loop;

static int64_t lf_empty(void *arg)
{
	(void)arg;
	return 0;
}

static void lf_submit(void);

static void lf_done(fut *f, void *arg)
{
	(void)arg;
	int err = fut_error(f);
	if (err)
		bench_die("fut_run_blocking: %s", fut_strerror(err));
	completed++;
	if (issued < n_tasks)
		lf_submit();
}

static void lf_submit(void)
{
	issued++;
	fut *f = fut_run_blocking(lf_loop, lf_empty, NULL);
	if (!f)
		bench_die("fut_run_blocking: out of memory");
	int e = fut_on_done(f, lf_done, NULL);
	if (e < 0)
		bench_die("fut_on_done: %s", fut_strerror(e));
}

static void run_libfuture(void)
{
	int err;
	lf_loop = fut_loop_new(NULL, &err);
	if (!lf_loop)
		bench_die("fut_loop_new: %s", fut_strerror(err));
	bench_info(BENCH, "libfuture_backend", "%s", fut_loop_backend(lf_loop));
	issued = completed = 0;
	uint64_t t0 = bench_now_ns();
	for (int i = 0; i < WINDOW && issued < n_tasks; i++)
		lf_submit();
	int r = fut_loop_run(lf_loop);
	uint64_t t1 = bench_now_ns();
	if (r < 0)
		bench_die("fut_loop_run: %s", fut_strerror(r));
	if (completed != n_tasks)
		bench_die("libfuture: %ld of %ld tasks completed", completed, n_tasks);
	report("libfuture", t1 - t0);
	int left = fut_loop_free(lf_loop);
	if (left != 0)
		bench_die("fut_loop_free: %d futures leaked", left);
}

/* ------------------------------------------------------------------ */
/* libuv                                                               */

static uv_loop_t lu_loop;
static uv_work_t lu_reqs[WINDOW];

static void lu_empty(uv_work_t *req)
{
	(void)req;
}

static void lu_submit(uv_work_t *req);

static void lu_after(uv_work_t *req, int status)
{
	if (status != 0)
		bench_die("uv_queue_work: %s", uv_strerror(status));
	completed++;
	if (issued < n_tasks)
		lu_submit(req);
}

static void lu_submit(uv_work_t *req)
{
	issued++;
	int r = uv_queue_work(&lu_loop, req, lu_empty, lu_after);
	if (r != 0)
		bench_die("uv_queue_work: %s", uv_strerror(r));
}

static void run_libuv(void)
{
	int r = uv_loop_init(&lu_loop);
	if (r != 0)
		bench_die("uv_loop_init: %s", uv_strerror(r));
	issued = completed = 0;
	uint64_t t0 = bench_now_ns();
	for (int i = 0; i < WINDOW && issued < n_tasks; i++)
		lu_submit(&lu_reqs[i]);
	r = uv_run(&lu_loop, UV_RUN_DEFAULT);
	uint64_t t1 = bench_now_ns();
	if (r < 0)
		bench_die("uv_run: %s", uv_strerror(r));
	if (completed != n_tasks)
		bench_die("libuv: %ld of %ld tasks completed", completed, n_tasks);
	report("libuv", t1 - t0);
	r = uv_loop_close(&lu_loop);
	if (r != 0)
		bench_die("uv_loop_close: %s", uv_strerror(r));
}

int main(int argc, char **argv)
{
	/* Before either library starts a pool thread. */
	if (setenv("FUTURE_THREADS", POOL, 1) != 0 ||
	    setenv("UV_THREADPOOL_SIZE", POOL, 1) != 0)
		bench_die("setenv: %s", strerror(errno));
	struct bench_args a = bench_parse(argc, argv, 4000000);
	n_tasks = a.n;
	bench_info(BENCH, "pool", "%s threads each, %d tasks in flight at most",
		   POOL, WINDOW);
	for (int i = 0; i < a.reps; i++) {
		if (bench_want(&a, "libfuture"))
			run_libfuture();
		if (bench_want(&a, "libuv"))
			run_libuv();
	}
	return 0;
}
