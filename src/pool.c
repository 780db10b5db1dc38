/*
 * The loop's thread pool, in two lanes: FUT__LANE_USER runs
 * fut_run_blocking() jobs, FUT__LANE_IO runs the library's own blocking
 * work (regular-file I/O on epoll). Each lane has its own workers, so a
 * user job that sleeps for a minute never delays a file read; libuv's
 * single shared pool is a known complaint (libuv/libuv#1815).
 *
 * Workers are started lazily, on the first job of their lane. Finished jobs
 * go back to the loop through fut__post(): one lock, and one wake-up per
 * batch thanks to the loop's coalescing.
 */
#include "future-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct fut__pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fut__job *head, *tail; /* queued jobs, FIFO */
	struct fut_loop *loop;
	unsigned nthreads, started, idle;
	size_t queued; /* jobs in the FIFO */
	bool stopping;
	pthread_t *threads;
};

static _Atomic unsigned env_threads;

/* FUTURE_THREADS, read once per process and clamped (STYLE.md 14). */
unsigned fut__env_threads(void)
{
	unsigned n = atomic_load_explicit(&env_threads, memory_order_relaxed);
	if (n)
		return n;
	const char *s = secure_getenv("FUTURE_THREADS");
	n = 4;
	if (s && *s) {
		char *end;
		unsigned long v = strtoul(s, &end, 10);
		if (*end == '\0')
			n = v == 0 ? 1 : v > 1024 ? 1024 : (unsigned)v;
	}
	atomic_store_explicit(&env_threads, n, memory_order_relaxed);
	return n;
}

static void job_finished(void *arg)
{
	struct fut__job *job = arg;
	job->done(job, job->res);
}

static void *worker(void *arg)
{
	struct fut__pool *p = arg;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->head && !p->stopping) {
			p->idle++;
			pthread_cond_wait(&p->cond, &p->lock);
			p->idle--;
		}
		if (!p->head)
			break;
		struct fut__job *job = p->head;
		p->head = job->next;
		if (p->head)
			p->head->prev = NULL;
		else
			p->tail = NULL;
		job->state = JOB_RUNNING;
		p->queued--;
		pthread_mutex_unlock(&p->lock);
		job->res = job->work(job);
		/* Only the loop reads the job from here on (cancel looks for
		 * JOB_QUEUED only): post it without holding the pool lock,
		 * which the loop wants for its next submission. The post
		 * cannot fail for lack of memory without losing the
		 * completion; fut__post only grows an array, retry until it
		 * has room rather than drop a result. */
		while (fut__post(p->loop, job_finished, job) < 0)
			sched_yield();
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static struct fut__pool *pool_get(struct fut_loop *loop, int lane)
{
	struct fut__pool **pp = lane == FUT__LANE_IO ? &loop->pool_io :
						       &loop->pool_user;
	if (*pp)
		return *pp;
	struct fut__pool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->threads = calloc(loop->nthreads, sizeof(*p->threads));
	if (!p->threads) {
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->loop = loop;
	p->nthreads = loop->nthreads;
	*pp = p;
	return p;
}

int fut__pool_submit(struct fut_loop *loop, int lane, struct fut__job *job)
{
	struct fut__pool *p = pool_get(loop, lane);
	if (!p)
		return -ENOMEM;
	pthread_mutex_lock(&p->lock);
	job->pool = p;
	job->state = JOB_QUEUED;
	job->next = NULL;
	job->prev = p->tail;
	if (p->tail)
		p->tail->next = job;
	else
		p->head = job;
	p->tail = job;
	/* Start another worker when the queued jobs outnumber the idle
	 * ones: an idle worker stays counted until it wakes, so comparing
	 * with zero would let two quick submissions share one worker. */
	if (++p->queued > p->idle && p->started < p->nthreads) {
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 256 * 1024);
		if (pthread_create(&p->threads[p->started], &attr, worker, p) == 0)
			p->started++;
		pthread_attr_destroy(&attr);
		if (p->started == 0) {
			/* No worker at all: the job could never run. */
			p->head = p->tail = NULL;
			p->queued = 0;
			job->state = JOB_IDLE;
			pthread_mutex_unlock(&p->lock);
			return -EAGAIN;
		}
	} else {
		pthread_cond_signal(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	return 0;
}

/* Withdraw a job that no worker has taken yet; -EBUSY once one has. */
int fut__pool_cancel(struct fut__job *job)
{
	struct fut__pool *p = job->pool;
	int r = -EBUSY;
	pthread_mutex_lock(&p->lock);
	if (job->state == JOB_QUEUED) {
		if (job->prev)
			job->prev->next = job->next;
		else
			p->head = job->next;
		if (job->next)
			job->next->prev = job->prev;
		else
			p->tail = job->prev;
		job->state = JOB_IDLE;
		p->queued--;
		r = 0;
	}
	pthread_mutex_unlock(&p->lock);
	return r;
}

/* Called by fut_loop_free once no job is queued or running. */
void fut__pool_destroy(struct fut__pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->started; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p);
}
