/*
 * The event loop: one tick is "drain the cross-thread queue, run due
 * callbacks, fire timers, wait in the backend". Everything a callback can
 * start is completion-shaped, so a tick never re-enters itself.
 */
#include "backend-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A drain that ran this many posts means posts are streaming in: the loop
 * looks for more for a moment before it sleeps (fut__await_posts). */
#define STREAM_BATCH 8

uint64_t fut__clock_ms_ceil(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u +
	       ((uint64_t)ts.tv_nsec + 999999u) / 1000000u;
}

uint64_t fut__clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void fut__update_time(struct fut_loop *loop)
{
	loop->now = fut__clock_ms();
}

fut_loop *fut_loop_new(const struct fut_loop_opts *opts, int *err)
{
	static const struct fut_loop_opts zero;
	int dummy, r;
	if (!err)
		err = &dummy;
	if (!opts)
		opts = &zero;
	for (size_t i = 0; i < sizeof(opts->reserved) / sizeof(opts->reserved[0]); i++)
		if (opts->reserved[i]) {
			*err = -EINVAL;
			return NULL;
		}
	if (opts->flags & ~(unsigned)FUT_LOOP_IGNORE_ENV || opts->reserved32 ||
	    opts->workers > FUT__MAX_WORKERS) {
		*err = -EINVAL;
		return NULL;
	}
	/* Cache-line aligned: see `sleeping` in struct fut_loop. */
	size_t lsz = (sizeof(struct fut_loop) + 63) & ~(size_t)63;
	struct fut_loop *loop = aligned_alloc(64, lsz);
	if (loop)
		memset(loop, 0, lsz);
	if (!loop) {
		*err = -ENOMEM;
		return NULL;
	}
	atomic_store_explicit(&loop->owner, fut__thread_id(), memory_order_relaxed);
	pthread_mutex_init(&loop->rlock, NULL);
	fut__post_init(loop);
	fut__update_time(loop);
	fut__wheel_init(&loop->wheel, loop->now);
	fut__objpool_init(&loop->ops, sizeof(struct fut__op), 64);
	fut__timer_pool_init(loop);
	bool env = !(opts->flags & FUT_LOOP_IGNORE_ENV);
	loop->nthreads = opts->threads ? opts->threads :
			 env ? fut__env_threads() : 4;
	if (env)
		loop->slow_ms = fut__env_slow_ms();
	if (loop->nthreads > 1024)
		loop->nthreads = 1024;
	loop->nworkers = opts->workers ? opts->workers : FUT__DEF_WORKERS;
	r = fut__backend_select(loop, opts);
	if (r < 0) {
		pthread_mutex_destroy(&loop->rlock);
		free(loop);
		*err = r;
		return NULL;
	}
	*err = 0;
	return loop;
}

static bool alive(struct fut_loop *loop)
{
	/* Freeing, background ops count too: their cancels must come back. */
	return loop->rq_head || loop->active ||
	       (loop->closing && loop->active_bg) ||
	       loop->wheel.count > loop->wheel.bg ||
	       loop->timers || fut__posts_pending(loop);
}

/*
 * One tick: run what is due, then wait in the backend for I/O, timers or a
 * wake-up, unless the callbacks just ran ended the run's reason to wait.
 */
static int tick(struct fut_loop *loop, fut *until)
{
	bool streaming = fut__drain_posts(loop) >= STREAM_BATCH;
	fut__run_ready(loop);
	fut__update_time(loop);
	fut__timers_run(loop);
	int timeout = -1;
	if (loop->rq_head ||
	    atomic_load_explicit(&loop->stop, memory_order_relaxed))
		timeout = 0;
	else if (until ? fut_state(until) != FUT_PENDING : !alive(loop))
		return 0;
	else
		timeout = fut__timers_timeout(loop);
	if (timeout != 0 && streaming && fut__await_posts(loop))
		timeout = 0;
	if (timeout != 0 && !fut__prepare_sleep(loop))
		timeout = 0;
	if (timeout > 0) {
		/* Timers have 1 ms deadlines, but a wait of whole ms from a
		 * clock read mid-millisecond fires up to 1 ms late (0.5 on
		 * average: the seed's 50 ms upstream answered in 51.5). */
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t now_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		int64_t ns = (int64_t)(loop->now + (uint64_t)timeout) * 1000000 -
			     now_ns;
		if (ns <= 0)
			timeout = 0;
		loop->wait_ts.tv_sec = ns > 0 ? ns / 1000000000 : 0;
		loop->wait_ts.tv_nsec = ns > 0 ? ns % 1000000000 : 0;
	}
	int r = loop->be->wait(loop, timeout);
	atomic_store_explicit(&loop->sleeping, 0, memory_order_relaxed);
	fut__update_time(loop);
	fut__timers_run(loop);
	return r;
}

static int enter(struct fut_loop *loop)
{
	if (loop->running)
		return -EBUSY;
	loop->running = true;
	atomic_store_explicit(&loop->owner, fut__thread_id(), memory_order_relaxed);
	fut__update_time(loop);
	return 0;
}

static int run(struct fut_loop *loop, fut *until)
{
	int r = enter(loop);
	if (r < 0)
		return r;
	for (;;) {
		if (atomic_exchange_explicit(&loop->stop, 0, memory_order_relaxed)) {
			r = FUT_ESTOPPED;
			break;
		}
		if (until) {
			if (fut_state(until) != FUT_PENDING) {
				r = 0;
				break;
			}
		} else if (!alive(loop)) {
			r = 0;
			break;
		}
		r = tick(loop, until);
		if (r < 0 && r != -EINTR)
			break;
	}
	loop->running = false;
	return r;
}

int fut_loop_run(fut_loop *loop)
{
	if (!loop)
		return -EINVAL;
	return run(loop, NULL);
}

int fut_loop_run_until(fut_loop *loop, fut *f)
{
	if (!loop || !f || f->loop != loop)
		return -EINVAL;
	return run(loop, f);
}

int fut_loop_stop(fut_loop *loop)
{
	if (!loop)
		return -EINVAL;
	fut__stop_nudge(loop); /* sets loop->stop */
	return 0;
}

uint64_t fut_loop_now(fut_loop *loop)
{
	return loop ? loop->now : 0;
}

const char *fut_loop_backend(const fut_loop *loop)
{
	return loop ? loop->be->name : NULL;
}

int fut_loop_fallback_reason(const fut_loop *loop)
{
	return loop ? loop->fallback : -EINVAL;
}

int fut_loop_free(fut_loop *loop)
{
	if (!loop)
		return -EINVAL;
	if (loop->running)
		return -EBUSY;
	loop->running = true;
	atomic_store_explicit(&loop->owner, fut__thread_id(), memory_order_relaxed);
	loop->closing = true;
	/* Cancelling may start nothing new (ops submitted while closing end
	 * at once), but callbacks may create futures: repeat until quiet. */
	for (size_t last = 0;;) {
		while (loop->timers)
			fut_timer_free(loop->timers);
		size_t n = fut__cancel_all(loop);
		bool idle = !loop->rq_head && !loop->active &&
			    !loop->active_bg && !fut__posts_pending(loop);
		if (!n && idle)
			break;
		/* Still pending with nothing left that could end them: a
		 * cycle of combinators each waiting for the other (fut_then's
		 * fn returned a future that waits on its own result). */
		if (idle && n == last)
			fut__end_all(loop);
		last = n;
		(void)tick(loop, NULL);
	}
	fut__pool_destroy(loop->pool_user);
	fut__pool_destroy(loop->pool_io);
	loop->pool_user = loop->pool_io = NULL;
	/* Pool workers may have posted completions while stopping. */
	while (fut__posts_pending(loop) || loop->rq_head) {
		fut__drain_posts(loop);
		fut__run_ready(loop);
	}
	int leaked = (int)fut__free_all(loop);
	fut__coro_stacks_free(loop);
	fut__posts_quiesce(loop);
	loop->be->fini(loop);
	fut__objpool_destroy(&loop->ops);
	fut__objpool_destroy(&loop->sleeps);
	fut__posts_free(loop);
	pthread_mutex_destroy(&loop->rlock);
	free(loop);
	return leaked;
}
