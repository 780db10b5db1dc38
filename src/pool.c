/*
 * The loop's thread pool, in two lanes: FUT__LANE_USER runs
 * fut_run_blocking() jobs, FUT__LANE_IO runs the library's own blocking
 * work (regular-file I/O on epoll). Each lane has its own workers, so a
 * user job that sleeps for a minute never delays a file read; libuv's
 * single shared pool is a known complaint (libuv/libuv#1815).
 *
 * No lock on the hot path. Only the loop thread submits, so each lane is a
 * single-producer, multi-consumer ring of RING cells (Vyukov's bounded
 * queue: a sequence number per cell, one CAS per dequeue). A mutex-guarded
 * FIFO, as libuv and the first version here had, spent most of its time in
 * futex calls once four workers and the loop fought over the lock on two
 * cores (perf: 45% of the samples in the futex wake/wait paths).
 *
 * When the ring is full, jobs wait on a loop-private overflow FIFO and are
 * moved in as completions come back (a completion means a cell was freed).
 * Cancelling a queued job clears its cell with a CAS that races the
 * worker's exchange: exactly one of them gets the job. The cleared cell
 * takes the overflow's head, if any, so no cell is ever lost to a cancel.
 *
 * Idle workers sleep on a semaphore. A submitter that sees idle workers
 * claims one (decrements `idle`) and posts one token; a worker announces
 * itself in `idle` before its last look at the ring (the Dekker pair with
 * the submitter's fence), so a job is never left with every worker asleep.
 *
 * Workers are started lazily, when a job finds none idle. Finished
 * jobs go back to the loop through fut__post(): a per-thread queue, one
 * wake-up per batch.
 */
#include "future-internal.h"

#include <errno.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define RING 1024 /* cells per lane; a power of two */
#define SPIN 512 /* pauses (~10 us) a searching worker spins before sleeping */

struct fut__cell {
	_Atomic size_t seq;
	_Atomic(struct fut__job *) job;
};

struct fut__pool {
	struct fut__cell ring[RING];
	/* Workers' side, on its own cache line. */
	_Alignas(64) _Atomic size_t head; /* next cell to dequeue */
	_Alignas(64) _Atomic unsigned idle; /* asleep, not yet claimed */
	_Atomic unsigned searching;      /* workers looking for a job */
	_Atomic bool stopping;
	sem_t sem;
	/* Loop's side. */
	_Alignas(64) size_t tail; /* next cell to fill */
	struct fut__job *ovf_head, *ovf_tail;
	struct fut_loop *loop;
	unsigned nthreads;
	_Atomic unsigned started; /* written under spawn_lock */
	pthread_mutex_t spawn_lock;
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

/* Loop thread: put job in the next cell; false when the ring is full. */
static bool ring_put(struct fut__pool *p, struct fut__job *job)
{
	struct fut__cell *c = &p->ring[p->tail & (RING - 1)];
	if (atomic_load_explicit(&c->seq, memory_order_acquire) != p->tail)
		return false;
	job->cell = c;
	job->state = JOB_RING;
	atomic_store_explicit(&c->job, job, memory_order_relaxed);
	atomic_store_explicit(&c->seq, p->tail + 1, memory_order_release);
	p->tail++;
	return true;
}

/* Worker: take the next cell. Returns false when the ring is empty; a
 * true return with *job == NULL is a cell whose job was cancelled. */
static bool ring_take(struct fut__pool *p, struct fut__job **job)
{
	size_t pos = atomic_load_explicit(&p->head, memory_order_relaxed);
	struct fut__cell *c;
	for (;;) {
		c = &p->ring[pos & (RING - 1)];
		size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		intptr_t diff = (intptr_t)(seq - (pos + 1));
		if (diff == 0) {
			if (atomic_compare_exchange_weak_explicit(
				    &p->head, &pos, pos + 1,
				    memory_order_relaxed, memory_order_relaxed))
				break;
		} else if (diff < 0) {
			return false;
		} else {
			pos = atomic_load_explicit(&p->head,
						   memory_order_relaxed);
		}
	}
	*job = atomic_exchange_explicit(&c->job, NULL, memory_order_acq_rel);
	atomic_store_explicit(&c->seq, pos + RING, memory_order_release);
	return true;
}

static bool ring_empty(struct fut__pool *p)
{
	size_t pos = atomic_load_explicit(&p->head, memory_order_relaxed);
	size_t seq = atomic_load_explicit(&p->ring[pos & (RING - 1)].seq,
					  memory_order_acquire);
	return seq != pos + 1;
}

/* Jobs in the ring not yet taken (an estimate while workers take). */
static size_t queued(struct fut__pool *p)
{
	return p->tail - atomic_load_explicit(&p->head, memory_order_relaxed);
}

static void ovf_unlink(struct fut__pool *p, struct fut__job *job)
{
	if (job->prev)
		job->prev->next = job->next;
	else
		p->ovf_head = job->next;
	if (job->next)
		job->next->prev = job->prev;
	else
		p->ovf_tail = job->prev;
	job->next = job->prev = NULL;
}

static void published(struct fut__pool *p);

/* Loop thread: move overflow jobs into free cells, oldest first. */
static void refill(struct fut__pool *p)
{
	struct fut__job *job;
	bool moved = false;
	while ((job = p->ovf_head) && ring_put(p, job)) {
		ovf_unlink(p, job);
		moved = true;
	}
	if (moved)
		published(p);
}

/* A worker took a cancelled cell: that freed a cell but brings no
 * completion, so refill here or an overflow job could wait forever. By
 * loop, not pool: fut_loop_free may run this after the pools are gone. */
static void refill_posted(void *arg)
{
	struct fut_loop *loop = arg;
	if (loop->pool_user)
		refill(loop->pool_user);
	if (loop->pool_io)
		refill(loop->pool_io);
}

static void job_finished(void *arg)
{
	struct fut__job *job = arg;
	struct fut__pool *p = job->pool;
	if (p->ovf_head)
		refill(p);
	job->done(job, job->res);
}

/*
 * Make sure some worker will look at the ring: if none is searching, turn
 * one sleeper into the searcher. Returns false when there is no searcher
 * and no sleeper to wake (every worker is busy).
 */
static bool wake_one(struct fut__pool *p)
{
	unsigned z = 0;
	if (atomic_load_explicit(&p->searching, memory_order_relaxed) ||
	    !atomic_compare_exchange_strong_explicit(&p->searching, &z, 1,
						     memory_order_seq_cst,
						     memory_order_relaxed))
		return true;
	unsigned n = atomic_load_explicit(&p->idle, memory_order_seq_cst);
	while (n > 0) {
		if (atomic_compare_exchange_weak_explicit(
			    &p->idle, &n, n - 1, memory_order_seq_cst,
			    memory_order_relaxed)) {
			sem_post(&p->sem);
			return true;
		}
	}
	atomic_fetch_sub_explicit(&p->searching, 1, memory_order_seq_cst);
	return false;
}

/*
 * A worker that finds the ring empty searches (spins) for a while before it
 * sleeps, and while one searches, submissions wake nobody: with short jobs
 * that saves a futex wake and a context switch per job. Only one worker
 * searches at a time, so on a small machine the spinning never starves the
 * loop thread for long. A searcher that finds a job hands the searching
 * role on (wake_worker: a sleeper, or a new worker) if more jobs are
 * queued, so a burst still spreads over every worker. Go's scheduler does
 * the same with its spinning Ms.
 */
static void wake_worker(struct fut__pool *p);

static void *worker(void *arg)
{
	struct fut__pool *p = arg;
	bool searching = true; /* counted by spawn */
	for (;;) {
		struct fut__job *job;
		if (ring_take(p, &job)) {
			if (searching) {
				searching = false;
				if (atomic_fetch_sub_explicit(
					    &p->searching, 1,
					    memory_order_seq_cst) == 1 &&
				    !ring_empty(p))
					wake_worker(p);
			}
			fut_post_fn fn = job_finished;
			void *parg = job;
			if (job) {
				job->res = job->work(job);
			} else { /* cancelled while queued */
				fn = refill_posted;
				parg = p->loop;
			}
			/* The post cannot fail for lack of memory without
			 * losing the completion; fut__post only grows a
			 * queue, retry until it has room. */
			while (fut__post(p->loop, fn, parg) < 0)
				sched_yield();
			continue;
		}
		if (atomic_load_explicit(&p->stopping, memory_order_acquire))
			break;
		if (!searching) {
			unsigned z = 0;
			searching = atomic_compare_exchange_strong_explicit(
				&p->searching, &z, 1, memory_order_seq_cst,
				memory_order_relaxed);
		}
		if (searching) {
			int i = 0;
			/* Look now and then only: each look pulls the
			 * cell the loop is about to fill away from it. */
			while (i < SPIN && ring_empty(p)) {
				for (int k = 0; k < 16; k++)
					fut__cpu_relax();
				i += 16;
			}
			if (i < SPIN)
				continue;
		}
		/* Going to sleep: announce it, stop searching, then look
		 * once more (the Dekker pair with fut__pool_submit). */
		atomic_fetch_add_explicit(&p->idle, 1, memory_order_seq_cst);
		if (searching) {
			searching = false;
			atomic_fetch_sub_explicit(&p->searching, 1,
						  memory_order_seq_cst);
		}
		atomic_thread_fence(memory_order_seq_cst);
		if (!ring_empty(p) ||
		    atomic_load_explicit(&p->stopping, memory_order_seq_cst)) {
			/* Withdraw the announcement, unless a waker already
			 * claimed it: then its token is on the way. */
			unsigned n = atomic_load_explicit(&p->idle,
							  memory_order_relaxed);
			while (n > 0)
				if (atomic_compare_exchange_weak_explicit(
					    &p->idle, &n, n - 1,
					    memory_order_relaxed,
					    memory_order_relaxed))
					break;
			if (n > 0) {
				/* Search again: a submitter may have counted
				 * this worker twice (searching and idle) in the
				 * moment between the two announcements above,
				 * and started nobody for its job. Taking a job
				 * as a searcher hands the role on. */
				atomic_fetch_add_explicit(&p->searching, 1,
							  memory_order_seq_cst);
				searching = true;
				continue;
			}
		}
		while (sem_wait(&p->sem) < 0 && errno == EINTR)
			;
		searching = true; /* the waker counted us */
	}
	if (searching)
		atomic_fetch_sub_explicit(&p->searching, 1,
					  memory_order_relaxed);
	return NULL;
}

/*
 * Every thread the library starts begins with the asynchronous signals
 * blocked (as libuv's do): the program's handlers, signalfd and sigwait
 * expect its own threads to take them, and a worker that inherited an
 * unblocked mask would take a process-directed signal meant for a
 * signalfd and die of its default action. Blocked before the create, so
 * there is no window. The synchronous ones stay open: they concern the
 * thread that caused them, and a blocked SIGSEGV kills the process
 * without running the program's handler (crash reporters, ASan), a
 * blocked SIGPIPE would make a threads-backend write to a closed pipe
 * fail where the other backends raise it.
 */
int fut__thread_start(pthread_t *thread, size_t stack,
		      void *(*fn)(void *), void *arg)
{
	static const int sync_sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL,
					  SIGTRAP, SIGSYS, SIGABRT, SIGPIPE };
	sigset_t all, old;
	sigfillset(&all);
	for (size_t i = 0; i < sizeof(sync_sigs) / sizeof(sync_sigs[0]); i++)
		sigdelset(&all, sync_sigs[i]);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, stack);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int r = pthread_create(thread, &attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return r;
}

/*
 * Add a worker, as a searcher. The loop and the workers both call this (a
 * searcher that hands its role on when nobody sleeps has to), hence the
 * lock; it is taken only while the pool grows.
 */
static bool spawn(struct fut__pool *p)
{
	bool ok = false;
	pthread_mutex_lock(&p->spawn_lock);
	unsigned n = atomic_load_explicit(&p->started, memory_order_relaxed);
	if (n < p->nthreads) {
		atomic_fetch_add_explicit(&p->searching, 1,
					  memory_order_seq_cst);
		ok = fut__thread_start(&p->threads[n], 256 * 1024, worker,
				       p) == 0;
		if (ok)
			atomic_store_explicit(&p->started, n + 1,
					      memory_order_relaxed);
		else
			atomic_fetch_sub_explicit(&p->searching, 1,
						  memory_order_seq_cst);
	}
	pthread_mutex_unlock(&p->spawn_lock);
	return ok;
}

static unsigned started(struct fut__pool *p)
{
	return atomic_load_explicit(&p->started, memory_order_relaxed);
}

/* Someone must look at the ring: a searcher, a woken sleeper, or a new
 * worker when every one is busy running a job. */
static void wake_worker(struct fut__pool *p)
{
	if (!wake_one(p) && started(p) < p->nthreads)
		(void)spawn(p);
}

/* Loop thread, after filling cells: see that a worker will take them. */
static void published(struct fut__pool *p)
{
	/* The other half of the Dekker pair in worker(). */
	atomic_thread_fence(memory_order_seq_cst);
	wake_worker(p);
	/* A burst larger than the searchers and sleepers can take at once
	 * adds a worker now rather than one per handed-on search. */
	if (started(p) < p->nthreads &&
	    queued(p) > atomic_load_explicit(&p->searching,
					     memory_order_relaxed) +
				atomic_load_explicit(&p->idle,
						     memory_order_relaxed))
		(void)spawn(p);
}

static struct fut__pool *pool_get(struct fut_loop *loop, int lane)
{
	struct fut__pool **pp = lane == FUT__LANE_IO ? &loop->pool_io :
						       &loop->pool_user;
	if (*pp)
		return *pp;
	struct fut__pool *p = aligned_alloc(64, sizeof(*p));
	if (!p)
		return NULL;
	memset(p, 0, sizeof(*p));
	p->threads = calloc(loop->nthreads, sizeof(*p->threads));
	if (!p->threads || sem_init(&p->sem, 0, 0) < 0) {
		free(p->threads);
		free(p);
		return NULL;
	}
	for (size_t i = 0; i < RING; i++)
		atomic_init(&p->ring[i].seq, i);
	pthread_mutex_init(&p->spawn_lock, NULL);
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
	if (started(p) == 0 && !spawn(p))
		return -EAGAIN; /* no worker: the job could never run */
	job->pool = p;
	job->next = job->prev = NULL;
	if (p->ovf_head)
		refill(p);
	if (!p->ovf_head && ring_put(p, job)) {
		published(p);
		return 0;
	}
	/* Every cell is taken: wait for a completion to free one. */
	job->state = JOB_OVERFLOW;
	job->prev = p->ovf_tail;
	if (p->ovf_tail)
		p->ovf_tail->next = job;
	else
		p->ovf_head = job;
	p->ovf_tail = job;
	return 0;
}

/* Withdraw a job that no worker has taken yet; -EBUSY once one has. */
int fut__pool_cancel(struct fut__job *job)
{
	struct fut__pool *p = job->pool;
	if (job->state == JOB_OVERFLOW) {
		ovf_unlink(p, job);
		job->state = JOB_IDLE;
		return 0;
	}
	if (job->state != JOB_RING)
		return -EBUSY;
	/* Hand the cell to the oldest overflow job in the same step. */
	struct fut__job *next = p->ovf_head;
	struct fut__job *expect = job;
	if (!atomic_compare_exchange_strong_explicit(
		    &job->cell->job, &expect, next, memory_order_acq_rel,
		    memory_order_acquire))
		return -EBUSY;
	job->state = JOB_IDLE;
	if (next) {
		ovf_unlink(p, next);
		next->cell = job->cell;
		next->state = JOB_RING;
	}
	return 0;
}

/* Called by fut_loop_free once no job is queued or running. */
void fut__pool_destroy(struct fut__pool *p)
{
	if (!p)
		return;
	atomic_store_explicit(&p->stopping, true, memory_order_seq_cst);
	pthread_mutex_lock(&p->spawn_lock);
	unsigned n = started(p);
	pthread_mutex_unlock(&p->spawn_lock);
	for (unsigned i = 0; i < n; i++) {
		atomic_fetch_add_explicit(&p->searching, 1,
					  memory_order_relaxed);
		sem_post(&p->sem);
	}
	for (unsigned i = 0; i < n; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->spawn_lock);
	sem_destroy(&p->sem);
	free(p->threads);
	free(p);
}
