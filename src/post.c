/*
 * Cross-thread handoff into a loop: fut_loop_post, resolutions from other
 * threads, and completions from worker threads all come through here.
 *
 * Each (thread, loop) pair gets its own single-producer queue of {fn, arg}
 * slots in linked segments: a post is a plain store of the slot and one
 * release store of the producer's own counter, with no lock and no cache
 * line that the loop writes on every post. The loop drains every producer
 * queue in its tick, oldest queue first. Posts are never coalesced or
 * lost, and each thread's posts run in the order it made them.
 *
 * Lifetime: a queue is shared by its thread and its loop, either of which
 * may go first. A thread that exits marks its queues retired (a bit in
 * the counter the loop reads anyway) and the loop frees each one after it
 * ran what it held; a loop that is freed first leaves each live thread
 * only the queue's header, freed when that thread exits or first posts
 * to another loop. So neither memory nor the tick's scan grows with the number
 * of threads that ever posted, and neither side touches the other's
 * memory after it is gone.
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
#include <sched.h>
#include <stdlib.h>

#define SEG_SLOTS 1023
#define AWAIT_SPIN 512 /* pauses (~10 us) before the loop looks for more posts */
/* In `published`: the producer thread has exited and posts no more. A
 * count never gets near 2^63, so the bit rides on the load the loop makes
 * anyway, and the per-post store stays a plain release store. */
#define RETIRED ((uint64_t)1 << 63)

struct seg {
	struct seg *_Atomic next;
	struct fut__post slot[SEG_SLOTS];
};

struct fut__pq {
	/* producer side */
	struct seg *pseg;
	unsigned pslot; /* next slot in pseg */
	uint64_t pcount;
	_Atomic uint64_t published; /* pcount, | RETIRED at thread exit */
	char pad[64];
	/* consumer side */
	struct seg *cseg;
	unsigned cslot; /* next slot in cseg */
	uint64_t consumed;
	struct fut__pq *_Atomic next; /* the loop's list, oldest first */
	/* One for the loop, one for the producer thread: whichever lets go
	 * last frees it, so neither has to outlive the other. */
	_Atomic int refs;
	char pad2[64];
	/* Set while a post of this thread may still touch the loop: from
	 * before its publish until after its wake-up. On a line
	 * of its own: the loop reads it only when it is freed, so the two
	 * stores per post stay in the producer's cache. */
	_Atomic int busy;
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

static void segs_free(struct seg *s)
{
	while (s) {
		struct seg *next = atomic_load_explicit(&s->next,
							memory_order_relaxed);
		free(s);
		s = next;
	}
}

/* acq_rel: the last one to let go sees everything the other wrote. */
static void pq_put(struct fut__pq *q)
{
	if (atomic_fetch_sub_explicit(&q->refs, 1, memory_order_acq_rel) == 1) {
		segs_free(q->cseg);
		free(q);
	}
}

/*
 * The producer lets go of q: no post will follow, so once the loop has
 * run the ones counted here it unlinks and frees q. Touches only q, never
 * the loop, which may be gone already (its reference keeps q alive until
 * here).
 */
static void pq_retire(struct fut__pq *q)
{
	atomic_store_explicit(&q->published, q->pcount | RETIRED,
			      memory_order_release);
	pq_put(q);
}

/* The loop let go of q: it was freed, so no post to it can follow. */
static bool pq_orphaned(struct fut__pq *q)
{
	return atomic_load_explicit(&q->refs, memory_order_acquire) == 1;
}

/*
 * Thread exit: hand every queue back to its loop. Without this each
 * thread that ever posted left a queue (and its 16 KiB segment) that every
 * tick of the loop scanned, forever.
 */
static void tls_free(void *p)
{
	struct tls_ent *e = p;
	tls_list = NULL; /* a post from a later TLS destructor starts afresh */
	while (e) {
		struct tls_ent *next = e->next;
		pq_retire(e->q);
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

/* Appended, so the loop drains queues in the order they were registered. */
static struct fut__pq *register_queue(struct fut_loop *loop)
{
	struct fut__pq *q = calloc(1, sizeof(*q));
	struct seg *s = q ? calloc(1, sizeof(*s)) : NULL;
	if (!s) {
		free(q);
		return NULL;
	}
	q->pseg = q->cseg = s;
	atomic_init(&q->refs, 2);
	pthread_mutex_lock(&loop->rlock);
	if (loop->pq_tail)
		atomic_store_explicit(&loop->pq_tail->next, q,
				      memory_order_release);
	else
		atomic_store_explicit(&loop->pqs, q, memory_order_release);
	loop->pq_tail = q;
	pthread_mutex_unlock(&loop->rlock);
	return q;
}

/* Drop the entries of loops that were freed: only a header is left. */
static void tls_prune(void)
{
	struct tls_ent **pe = &tls_list;
	while (*pe) {
		struct tls_ent *e = *pe;
		if (pq_orphaned(e->q)) {
			*pe = e->next;
			pq_put(e->q);
			free(e);
		} else {
			pe = &e->next;
		}
	}
}

static struct fut__pq *my_queue(struct fut_loop *loop)
{
	struct tls_ent *e;
	for (e = tls_list; e; e = e->next)
		if (e->loop == loop && e->loop_id == loop->id)
			return e->q;
	pthread_once(&tls_once, tls_init);
	tls_prune();
	e = malloc(sizeof(*e));
	struct fut__pq *q = e ? register_queue(loop) : NULL;
	if (!q) {
		free(e);
		pthread_setspecific(tls_key, tls_list);
		return NULL;
	}
	e->loop = loop;
	e->loop_id = loop->id;
	e->q = q;
	e->next = tls_list;
	tls_list = e;
	pthread_setspecific(tls_key, tls_list);
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

/*
 * A post in two steps, for a resolve from another thread: the future's new
 * state is published between them, and a loop that sees it may return
 * from run_until and be freed before the post itself is published. So
 * busy is set first, in a queue already registered with the loop: the
 * free waits for it (fut__posts_quiesce), not only for a post it ran.
 * Until then the thread's first post registered its queue after the
 * state was out, and locked a freed loop (design audit: TSan).
 */
struct fut__pq *fut__post_reserve(struct fut_loop *loop)
{
	struct fut__pq *q = my_queue(loop);
	if (!q)
		return NULL;
	if (q->pslot == SEG_SLOTS) {
		struct seg *s = calloc(1, sizeof(*s));
		if (!s)
			return NULL;
		/* Linked before the count that makes the consumer look. */
		atomic_store_explicit(&q->pseg->next, s, memory_order_relaxed);
		q->pseg = s;
		q->pslot = 0;
	}
	/* Before what the caller publishes next (a release store): a loop
	 * that saw it sees busy until the nudge below is done with it. */
	atomic_store_explicit(&q->busy, 1, memory_order_relaxed);
	return q;
}

void fut__post_commit(struct fut_loop *loop, struct fut__pq *q,
		      fut_post_fn fn, void *arg)
{
	q->pseg->slot[q->pslot].fn = fn;
	q->pseg->slot[q->pslot].arg = arg;
	q->pslot++;
	atomic_store_explicit(&q->published, ++q->pcount, memory_order_release);
	nudge(loop);
	atomic_store_explicit(&q->busy, 0, memory_order_release);
}

int fut__post(struct fut_loop *loop, fut_post_fn fn, void *arg)
{
	struct fut__pq *q = fut__post_reserve(loop);
	if (!q)
		return -ENOMEM;
	fut__post_commit(loop, q, fn, arg);
	return 0;
}

int fut_loop_post(fut_loop *loop, fut_post_fn fn, void *arg)
{
	if (!loop || !fn)
		return -EINVAL;
	return fut__post(loop, fn, arg);
}

/* fut_loop_stop from any thread: stop is set in here, counted in
 * `stoppers` for the same reason as a post's busy flag. A counter, not
 * the thread's queue: a stop allocates nothing and takes no lock, so a
 * signal handler may still call it. */
void fut__stop_nudge(struct fut_loop *loop)
{
	int saved = errno; /* a handler's caller may be reading it */
	atomic_fetch_add_explicit(&loop->stoppers, 1, memory_order_relaxed);
	atomic_store_explicit(&loop->stop, 1, memory_order_release);
	nudge(loop);
	atomic_fetch_sub_explicit(&loop->stoppers, 1, memory_order_release);
	errno = saved;
}

/*
 * The loop is being freed: wait until no thread is still inside a post or
 * stop that the loop may already have seen. Such a thread has published
 * (the loop ran its post, and the program took that as its sign that the
 * thread was done with the loop) but may not have read `sleeping` or
 * written the backend's eventfd yet; freeing under it was a use after
 * free and a write into whatever file took the eventfd's number (thread
 * audit). The wait is that thread's few instructions, not its next post.
 */
void fut__posts_quiesce(struct fut_loop *loop)
{
	/* After the load of `stop` that ended the run: pairs with the
	 * release store of a stop, so its count is seen. */
	atomic_thread_fence(memory_order_acquire);
	while (atomic_load_explicit(&loop->stoppers, memory_order_acquire))
		sched_yield();
	struct fut__pq *q = atomic_load_explicit(&loop->pqs, memory_order_acquire);
	for (; q; q = atomic_load_explicit(&q->next, memory_order_acquire))
		while (atomic_load_explicit(&q->busy, memory_order_acquire))
			sched_yield();
}

/* Run q's posts up to count avail; returns how many ran. */
static size_t drain_one(struct fut_loop *loop, struct fut__pq *q,
			uint64_t avail)
{
	size_t ran = 0;
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
		ran++;
		FUT__TIMED(loop, p.fn, "posted callback", p.fn(p.arg));
	}
	return ran;
}

/* Take a retired, drained q (after prev) out of the list; returns the next.
 * Under rlock: a producer may be appending after q. */
static struct fut__pq *unlink_queue(struct fut_loop *loop, struct fut__pq *prev,
				    struct fut__pq *q)
{
	pthread_mutex_lock(&loop->rlock);
	struct fut__pq *next = atomic_load_explicit(&q->next,
						    memory_order_relaxed);
	if (prev)
		atomic_store_explicit(&prev->next, next, memory_order_relaxed);
	else
		atomic_store_explicit(&loop->pqs, next, memory_order_relaxed);
	if (loop->pq_tail == q)
		loop->pq_tail = prev;
	pthread_mutex_unlock(&loop->rlock);
	pq_put(q);
	return next;
}

/*
 * Run everything published so far, oldest queue first; returns how many
 * ran. A queue whose thread has exited is freed once it is empty: only the
 * loop frees a queue still in its list, and only after the producer said
 * it is done with it. Loop thread only.
 */
size_t fut__drain_posts(struct fut_loop *loop)
{
	size_t any = 0;
	struct fut__pq *prev = NULL, *next;
	struct fut__pq *q = atomic_load_explicit(&loop->pqs, memory_order_acquire);
	for (; q; q = next) {
		uint64_t pub = atomic_load_explicit(&q->published,
						    memory_order_acquire);
		any += drain_one(loop, q, pub & ~RETIRED);
		if (pub & RETIRED) {
			next = unlink_queue(loop, prev, q);
		} else {
			next = atomic_load_explicit(&q->next,
						    memory_order_acquire);
			prev = q;
		}
	}
	return any;
}

bool fut__posts_pending(struct fut_loop *loop)
{
	struct fut__pq *q = atomic_load_explicit(&loop->pqs, memory_order_acquire);
	for (; q; q = atomic_load_explicit(&q->next, memory_order_acquire))
		if ((atomic_load_explicit(&q->published, memory_order_acquire) &
		     ~RETIRED) != q->consumed)
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

/*
 * The loop is going: let go of every queue. A thread that is still alive
 * keeps its queue's header until it exits (or posts again, see
 * tls_prune), but the segments go now; no post can follow a free.
 */
void fut__posts_free(struct fut_loop *loop)
{
	struct fut__pq *q = atomic_load_explicit(&loop->pqs, memory_order_acquire);
	while (q) {
		struct fut__pq *next = atomic_load_explicit(&q->next,
							    memory_order_relaxed);
		segs_free(q->cseg);
		q->cseg = NULL;
		pq_put(q);
		q = next;
	}
	atomic_store_explicit(&loop->pqs, NULL, memory_order_relaxed);
	loop->pq_tail = NULL;
}
