/*
 * Cross-thread handoff into a loop: fut_loop_post, resolutions from other
 * threads, and completions from worker threads all come through here.
 *
 * Each (thread, loop) pair gets its own single-producer queue of {fn, arg}
 * slots in linked segments: a post is a plain store of the slot and one
 * release store of the producer's own counter, with no lock and no cache
 * line that the loop writes on every post. The loop drains every producer
 * queue in its tick. Posts are never coalesced or lost, and each thread's
 * posts run in the order it made them.
 *
 * Wake-ups: the loop announces that it is about to block by setting
 * `sleeping`, then looks at every queue once more; a producer publishes,
 * then looks at `sleeping`. With a full fence on both sides (Dekker), at
 * least one of them sees the other, so a post can never be stranded while
 * the loop sleeps, and a busy loop costs producers no system call at all.
 * This replaces a mutex-protected array whose lock and wake flag both
 * threads wrote on every post (56 ns per post in a flood, BENCHMARKS.md).
 */
#include "backend-internal.h"

#include <errno.h>
#include <stdlib.h>

#define SEG_SLOTS 1023
#define AWAIT_SPIN 512 /* pauses (~10 us) before the loop looks for more posts */

struct seg {
	struct seg *_Atomic next;
	struct fut__post slot[SEG_SLOTS];
};

struct fut__pq {
	/* producer side */
	struct seg *pseg;
	unsigned pslot; /* next slot in pseg */
	uint64_t pcount;
	_Atomic uint64_t published;
	char pad[64];
	/* consumer side */
	struct seg *cseg;
	unsigned cslot; /* next slot in cseg */
	uint64_t consumed;
	struct fut__pq *next; /* the loop's list */
};

/* A thread's queues, one per loop it posted to. The loop's id tells a
 * reused loop address from the loop an entry was made for. */
struct tls_ent {
	struct fut_loop *loop;
	uint64_t loop_id;
	struct fut__pq *q;
	struct tls_ent *next;
};

/* initial-exec: no __tls_get_addr call on every post (as fut__thread_id). */
static _Thread_local struct tls_ent *tls_list
	__attribute__((tls_model("initial-exec")));
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t next_loop_id = 1;

static void tls_free(void *p)
{
	struct tls_ent *e = p;
	while (e) {
		struct tls_ent *next = e->next;
		free(e);
		e = next;
	}
}

static void tls_init(void)
{
	pthread_key_create(&tls_key, tls_free);
}

void fut__post_init(struct fut_loop *loop)
{
	loop->id = atomic_fetch_add_explicit(&next_loop_id, 1,
					     memory_order_relaxed);
}

static struct fut__pq *register_queue(struct fut_loop *loop)
{
	struct fut__pq *q = calloc(1, sizeof(*q));
	struct seg *s = q ? calloc(1, sizeof(*s)) : NULL;
	if (!s) {
		free(q);
		return NULL;
	}
	q->pseg = q->cseg = s;
	pthread_mutex_lock(&loop->rlock);
	q->next = atomic_load_explicit(&loop->pqs, memory_order_relaxed);
	atomic_store_explicit(&loop->pqs, q, memory_order_release);
	pthread_mutex_unlock(&loop->rlock);
	return q;
}

static struct fut__pq *my_queue(struct fut_loop *loop)
{
	struct tls_ent *e;
	for (e = tls_list; e; e = e->next)
		if (e->loop == loop && e->loop_id == loop->id)
			return e->q;
	struct fut__pq *q = register_queue(loop);
	if (!q)
		return NULL;
	for (e = tls_list; e; e = e->next)
		if (e->loop == loop) /* stale: that loop was freed */
			break;
	if (!e) {
		e = malloc(sizeof(*e));
		if (!e)
			return NULL; /* q stays registered; freed with the loop */
		pthread_once(&tls_once, tls_init);
		e->next = tls_list;
		tls_list = e;
		pthread_setspecific(tls_key, tls_list);
	}
	e->loop = loop;
	e->loop_id = loop->id;
	e->q = q;
	return q;
}

/* Wake the loop if it announced it is going to sleep. */
static void nudge(struct fut_loop *loop)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&loop->sleeping, memory_order_relaxed) &&
	    atomic_exchange_explicit(&loop->sleeping, 0, memory_order_seq_cst))
		loop->be->wake(loop);
}

int fut__post(struct fut_loop *loop, fut_post_fn fn, void *arg)
{
	struct fut__pq *q = my_queue(loop);
	if (!q)
		return -ENOMEM;
	if (q->pslot == SEG_SLOTS) {
		struct seg *s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		/* Linked before the count that makes the consumer look. */
		atomic_store_explicit(&q->pseg->next, s, memory_order_relaxed);
		q->pseg = s;
		q->pslot = 0;
	}
	q->pseg->slot[q->pslot].fn = fn;
	q->pseg->slot[q->pslot].arg = arg;
	q->pslot++;
	atomic_store_explicit(&q->published, ++q->pcount, memory_order_release);
	nudge(loop);
	return 0;
}

int fut_loop_post(fut_loop *loop, fut_post_fn fn, void *arg)
{
	if (!loop || !fn)
		return -EINVAL;
	return fut__post(loop, fn, arg);
}

void fut__stop_nudge(struct fut_loop *loop)
{
	nudge(loop);
}

/* Run everything published so far; returns how many ran. Loop thread only. */
size_t fut__drain_posts(struct fut_loop *loop)
{
	size_t any = 0;
	struct fut__pq *q = atomic_load_explicit(&loop->pqs, memory_order_acquire);
	for (; q; q = q->next) {
		uint64_t avail = atomic_load_explicit(&q->published,
						      memory_order_acquire);
		while (q->consumed < avail) {
			if (q->cslot == SEG_SLOTS) {
				struct seg *next = atomic_load_explicit(
					&q->cseg->next, memory_order_relaxed);
				free(q->cseg);
				q->cseg = next;
				q->cslot = 0;
			}
			struct fut__post p = q->cseg->slot[q->cslot++];
			q->consumed++;
			any++;
			FUT__TIMED(loop, p.fn, "posted callback", p.fn(p.arg));
		}
	}
	return any;
}

bool fut__posts_pending(struct fut_loop *loop)
{
	struct fut__pq *q = atomic_load_explicit(&loop->pqs, memory_order_acquire);
	for (; q; q = q->next)
		if (atomic_load_explicit(&q->published, memory_order_acquire) !=
		    q->consumed)
			return true;
	return false;
}

/*
 * Posts are streaming in (the last drain ran a batch): rather than sleep
 * and have the producer pay for a wake-up (a system call, about 1 us) every
 * few dozen posts, wait ~10 us and look again (the pool's searching worker
 * spins too, but looks often). It looks once, at the end: every look pulls
 * the producer's counter and slot lines away from it, and its next post's
 * fence then waits for them to come back. Looking every 16 pauses cost a
 * flood 40..70 ns per post, every 128 about 32, once about 16
 * (BENCHMARKS.md). Returns true when posts arrived or a stop was asked.
 */
bool fut__await_posts(struct fut_loop *loop)
{
	for (int i = 0; i < AWAIT_SPIN; i++)
		fut__cpu_relax();
	return fut__posts_pending(loop) ||
	       atomic_load_explicit(&loop->stop, memory_order_relaxed);
}

/*
 * About to block: announce it, then look once more (the other half of the
 * Dekker pair in nudge). Returns false, with the announcement withdrawn,
 * when something arrived or a stop was requested.
 */
bool fut__prepare_sleep(struct fut_loop *loop)
{
	atomic_store_explicit(&loop->sleeping, 1, memory_order_seq_cst);
	atomic_thread_fence(memory_order_seq_cst);
	if (fut__posts_pending(loop) ||
	    atomic_load_explicit(&loop->stop, memory_order_relaxed)) {
		atomic_store_explicit(&loop->sleeping, 0, memory_order_relaxed);
		return false;
	}
	return true;
}

void fut__posts_free(struct fut_loop *loop)
{
	struct fut__pq *q = atomic_load_explicit(&loop->pqs, memory_order_acquire);
	while (q) {
		struct fut__pq *next = q->next;
		struct seg *s = q->cseg;
		while (s) {
			struct seg *sn = atomic_load_explicit(&s->next,
							      memory_order_relaxed);
			free(s);
			s = sn;
		}
		free(q);
		q = next;
	}
	atomic_store_explicit(&loop->pqs, NULL, memory_order_relaxed);
}
