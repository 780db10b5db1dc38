/*
 * Futures: allocation from per-loop slabs, resolution from any thread, the
 * ready queue, callbacks and reference counting.
 *
 * Only the state word is shared between threads. Everything else (refs,
 * flags, the callback list, the ready queue) belongs to the loop thread,
 * which keeps the hot path free of atomics apart from the one CAS that
 * decides who ends the future.
 */
#include "future-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FUT_SLAB_OBJS 256

static uint32_t load_state(const fut *f)
{
	return atomic_load_explicit(&((fut *)f)->state, memory_order_acquire);
}

/*
 * A per-thread marker whose address identifies the thread. initial-exec
 * makes it one %fs-relative lea instead of a __tls_get_addr call (the
 * library is loaded at start-up, so the static TLS block has room).
 */
static _Thread_local char thread_mark __attribute__((tls_model("initial-exec")));

const void *fut__thread_id(void)
{
	return &thread_mark;
}

bool fut__on_loop_thread(const struct fut_loop *loop)
{
	return atomic_load_explicit(&((struct fut_loop *)loop)->owner,
				    memory_order_relaxed) == &thread_mark;
}

static int grow_slab(struct fut_loop *loop)
{
	struct fut__slab *s = malloc(sizeof(*s) + FUT_SLAB_OBJS * sizeof(fut));
	if (!s)
		return -ENOMEM;
	s->n = FUT_SLAB_OBJS;
	s->next = loop->fslabs;
	loop->fslabs = s;
	fut *objs = (fut *)(s + 1);
	/* Link in reverse so the free list hands them out in address order. */
	for (size_t i = s->n; i-- > 0;) {
		atomic_init(&objs[i].state, ST_FREE);
		objs[i].next = loop->free_futs;
		loop->free_futs = &objs[i];
	}
	return 0;
}

fut *fut__alloc(struct fut_loop *loop)
{
	if (fut__unlikely(!loop->free_futs) && grow_slab(loop) < 0)
		return NULL;
	fut *f = loop->free_futs;
	loop->free_futs = f->next;
	__builtin_prefetch(loop->free_futs, 1); /* see fut__obj_alloc */
	f->loop = loop;
	atomic_store_explicit(&f->state, ST_PENDING, memory_order_relaxed);
	f->refs = 1;
	f->flags = 0;
	f->err = 0;
	f->v.i = 0;
	f->dtor = NULL;
	f->next = NULL;
	f->cb.fn = NULL;
	f->xcb = NULL;
	f->nxcb = f->capxcb = 0;
	f->prod = NULL;
	f->pdata = NULL;
	f->keep = NULL;
	loop->live_futs++;
	return f;
}

static void release(fut *f)
{
	struct fut_loop *loop = f->loop;
	if (fut__unlikely(f->prod != NULL) && f->prod->release)
		f->prod->release(f);
	if (fut__unlikely(load_state(f) & ST_PTR) && f->dtor)
		f->dtor(f->v.p);
	if (fut__unlikely(f->xcb != NULL))
		free(f->xcb);
	atomic_store_explicit(&f->state, ST_FREE, memory_order_relaxed);
	f->next = loop->free_futs;
	loop->free_futs = f;
	loop->live_futs--;
	if (fut__unlikely(f->keep != NULL)) {
		fut *k = f->keep;
		f->keep = NULL;
		fut_unref(k);
	}
}

static void enqueue(fut *f)
{
	struct fut_loop *loop = f->loop;
	f->flags |= FF_QUEUED;
	f->next = NULL;
	if (loop->rq_tail)
		loop->rq_tail->next = f;
	else
		loop->rq_head = f;
	loop->rq_tail = f;
}

static bool has_callbacks(const fut *f)
{
	return f->cb.fn || f->nxcb;
}

/*
 * Publish the outcome. Returns -EALREADY when somebody else ended it first.
 * On the loop thread the future goes straight to the ready queue (when it
 * has callbacks); from another thread it travels through the loop's remote
 * queue, which is the only cross-thread path into the loop.
 */
static int finish(fut *f, int64_t v, void *p, void (*dtor)(void *), int err)
{
	uint32_t expect = ST_PENDING;
	if (!atomic_compare_exchange_strong_explicit(&f->state, &expect,
			ST_COMPLETING, memory_order_acquire, memory_order_relaxed))
		return -EALREADY;
	struct fut_loop *loop = f->loop;
	uint32_t final = err ? ST_REJECTED : ST_RESOLVED;
	f->err = err;
	if (p || dtor) {
		f->v.p = p;
		f->dtor = dtor;
		final |= ST_PTR;
	} else {
		f->v.i = v;
	}
	if (fut__likely(fut__on_loop_thread(loop))) {
		atomic_store_explicit(&f->state, final, memory_order_release);
		if (has_callbacks(f) && !(f->flags & FF_QUEUED))
			enqueue(f);
		return 0;
	}
	/* The handoff's queue only grows when the loop falls behind; if even
	 * that allocation fails the loop could never learn that f ended:
	 * no way back from ST_COMPLETING. Reserved before the state is out,
	 * so a loop freed as soon as it sees the state waits for the post. */
	struct fut__pq *q = fut__post_reserve(loop);
	if (!q)
		abort();
	atomic_store_explicit(&f->state, final | ST_REMOTE,
			      memory_order_release);
	fut__post_commit(loop, q, fut__remote_done, f);
	return 0;
}

void fut__remote_done(void *arg)
{
	fut *f = arg;
	uint32_t st = load_state(f);
	atomic_store_explicit(&f->state, st & ~(uint32_t)ST_REMOTE,
			      memory_order_relaxed);
	if (f->flags & FF_ZOMBIE) {
		release(f);
		return;
	}
	if (has_callbacks(f) && !(f->flags & FF_QUEUED))
		enqueue(f);
}

void fut__complete(fut *f, int64_t v, int err)
{
	(void)finish(f, v, NULL, NULL, err);
}

/* Move src's outcome into dst; a pointer value changes owner. */
void fut__adopt(fut *dst, fut *src)
{
	uint32_t st = load_state(src) & ST_MASK;
	if (st == ST_REJECTED) {
		fut__complete(dst, 0, src->err);
	} else if (load_state(src) & ST_PTR) {
		/*
		 * Shared, not moved: src keeps its destructor and dst holds a
		 * reference to src, so the value lives while either does.
		 * (Moving it left fut_ptr(src) dangling once dst was freed, as
		 * a caller still holding src after a fut_timeout found.)
		 */
		if (finish(dst, 0, src->v.p, NULL, 0) == 0 && src->dtor) {
			dst->keep = src;
			src->refs++;
		}
	} else {
		fut__complete(dst, src->v.i, 0);
	}
}

/*
 * Run the callbacks of every future queued before this call. Futures that
 * end while we run are appended and wait for the next tick, so one busy
 * producer cannot starve I/O and timers.
 */
void fut__run_ready(struct fut_loop *loop)
{
	fut *f = loop->rq_head, *last = loop->rq_tail;
	if (!f)
		return;
	loop->rq_head = loop->rq_tail = NULL;
	for (;;) {
		fut *next = f->next;
		bool end = (f == last);
		f->flags &= ~FF_QUEUED;
		struct fut__cbent cb = f->cb;
		struct fut__cbent *x = f->xcb;
		uint32_t nx = f->nxcb;
		f->cb.fn = NULL;
		f->xcb = NULL;
		f->nxcb = f->capxcb = 0;
		/* Each registration holds a reference, dropped after its call. */
		if (cb.fn) {
			FUT__TIMED(loop, cb.fn, "callback", cb.fn(f, cb.arg));
			fut_unref(f);
		}
		for (uint32_t i = 0; i < nx; i++) {
			FUT__TIMED(loop, x[i].fn, "callback", x[i].fn(f, x[i].arg));
			fut_unref(f);
		}
		if (x)
			free(x);
		if (end)
			break;
		f = next;
	}
}

fut *fut_new(fut_loop *loop)
{
	return loop ? fut__alloc(loop) : NULL;
}

fut *fut_resolved(fut_loop *loop, int64_t value)
{
	fut *f = fut_new(loop);
	if (f)
		fut__complete(f, value, 0);
	return f;
}

fut *fut_rejected(fut_loop *loop, int err)
{
	fut *f = fut_new(loop);
	if (f)
		fut__complete(f, 0, err < 0 ? err : -EINVAL);
	return f;
}

int fut_resolve(fut *f, int64_t value)
{
	if (!f)
		return -EINVAL;
	return finish(f, value, NULL, NULL, 0);
}

int fut_resolve_ptr(fut *f, void *ptr, void (*dtor)(void *))
{
	if (!f)
		return -EINVAL;
	if (!ptr && !dtor)
		return finish(f, 0, NULL, NULL, 0);
	return finish(f, 0, ptr, dtor, 0);
}

int fut_reject(fut *f, int err)
{
	if (!f || err >= 0)
		return -EINVAL;
	return finish(f, 0, NULL, NULL, err);
}

int fut_cancel(fut *f)
{
	if (!f)
		return -EINVAL;
	if ((load_state(f) & ST_MASK) != ST_PENDING)
		return -EALREADY;
	if (f->prod && f->prod->cancel) {
		int r = f->prod->cancel(f);
		return r > 0 ? 0 : r; /* 1: withdrawal under way */
	}
	return finish(f, 0, NULL, NULL, -ECANCELED);
}

/*
 * As uv_unref: the work behind f goes on, but a run with nothing else
 * left returns. The flag stays on f, so work it starts later (fut_then's
 * next future, a coroutine's next await) is backgrounded too, and a cycle
 * of combinators is walked once.
 */
int fut_background(fut *f)
{
	if (!f)
		return -EINVAL;
	if ((f->flags & FF_BG) || (load_state(f) & ST_MASK) != ST_PENDING)
		return 0;
	f->flags |= FF_BG;
	if (f->prod && f->prod->background)
		f->prod->background(f);
	return 0;
}

fut *fut_ref(fut *f)
{
	if (f)
		f->refs++;
	return f;
}

void fut_unref(fut *f)
{
	if (!f || --f->refs)
		return;
	uint32_t st = load_state(f);
	/* Another thread is still inside finish() or the future sits in the
	 * remote queue: mark it and let fut__remote_done reap it. */
	if (st == ST_COMPLETING || (st & ST_REMOTE)) {
		f->flags |= FF_ZOMBIE;
		return;
	}
	if (f->flags & FF_QUEUED) {
		/* Cannot happen: a queued future has callbacks, and each holds
		 * a reference. Kept as a guard against refcount misuse. */
		f->refs = 1;
		return;
	}
	release(f);
}

int fut_state(const fut *f)
{
	if (!f)
		return -EINVAL;
	switch (load_state(f) & ST_MASK) {
	case ST_RESOLVED:
		return FUT_RESOLVED;
	case ST_REJECTED:
		return FUT_REJECTED;
	default:
		return FUT_PENDING;
	}
}

int64_t fut_value(const fut *f)
{
	uint32_t st = f ? load_state(f) : 0;
	if ((st & ST_MASK) != ST_RESOLVED || (st & ST_PTR))
		return 0;
	return f->v.i;
}

void *fut_ptr(const fut *f)
{
	uint32_t st = f ? load_state(f) : 0;
	if ((st & ST_MASK) != ST_RESOLVED || !(st & ST_PTR))
		return NULL;
	return f->v.p;
}

int fut_error(const fut *f)
{
	if (!f)
		return -EINVAL;
	return (load_state(f) & ST_MASK) == ST_REJECTED ? f->err : 0;
}

fut_loop *fut_loop_of(const fut *f)
{
	return f ? f->loop : NULL;
}

int fut_on_done(fut *f, fut_cb cb, void *arg)
{
	if (!f)
		return -EINVAL;
	if (!cb) {
		fut_unref(f);
		return -EINVAL;
	}
	if (!f->cb.fn && !f->nxcb) {
		f->cb.fn = cb;
		f->cb.arg = arg;
	} else {
		if (f->nxcb == f->capxcb) {
			uint32_t cap = f->capxcb ? f->capxcb * 2 : 4;
			void *x = realloc(f->xcb, cap * sizeof(*f->xcb));
			if (!x) {
				fut_unref(f);
				return -ENOMEM;
			}
			f->xcb = x;
			f->capxcb = cap;
		}
		f->xcb[f->nxcb].fn = cb;
		f->xcb[f->nxcb].arg = arg;
		f->nxcb++;
	}
	uint32_t st = load_state(f);
	if ((st & ST_MASK) >= ST_RESOLVED && !(st & ST_REMOTE) &&
	    !(f->flags & FF_QUEUED))
		enqueue(f);
	return 0;
}

/*
 * Loop teardown: cancel every pending future, or with force end it at
 * once (the last resort, for what cancelling cannot end). Returns how many
 * it touched.
 */
static size_t end_pending(struct fut_loop *loop, bool force)
{
	size_t n = 0;
	for (struct fut__slab *s = loop->fslabs; s; s = s->next) {
		fut *objs = (fut *)(s + 1);
		for (size_t i = 0; i < s->n; i++) {
			fut *f = &objs[i];
			if (load_state(f) != ST_PENDING)
				continue;
			/* Hold it: cancelling may drop the producer's ref. */
			f->refs++;
			if (force)
				fut__complete(f, 0, -ECANCELED);
			else
				(void)fut_cancel(f);
			fut_unref(f);
			n++;
		}
	}
	return n;
}

size_t fut__cancel_all(struct fut_loop *loop)
{
	return end_pending(loop, false);
}

void fut__end_all(struct fut_loop *loop)
{
	(void)end_pending(loop, true);
}

/*
 * Loop teardown, after every callback has run: whatever is still allocated
 * is held by the user. Pin all of them first so that releasing one (a
 * combinator dropping its children) never frees another under our feet,
 * then release producers and values and drop the slabs. Returns the count.
 */
size_t fut__free_all(struct fut_loop *loop)
{
	size_t leaked = 0;
	/* Count what the caller held, not what those futures hold in turn
	 * (a timeout's source and timer, a group's children, the source
	 * whose pointer value a wrapper shares): take the references live
	 * futures hold on each other out first. */
	for (struct fut__slab *s = loop->fslabs; s; s = s->next) {
		fut *objs = (fut *)(s + 1);
		for (size_t i = 0; i < s->n; i++) {
			fut *f = &objs[i];
			if (load_state(f) & ST_FREE)
				continue;
			if (f->keep)
				f->keep->refs--;
			if (f->prod && f->prod->uncount)
				f->prod->uncount(f);
		}
	}
	for (struct fut__slab *s = loop->fslabs; s; s = s->next) {
		fut *objs = (fut *)(s + 1);
		for (size_t i = 0; i < s->n; i++)
			if (!(load_state(&objs[i]) & ST_FREE)) {
				leaked += objs[i].refs > 0;
				objs[i].refs = UINT32_MAX / 2;
			}
	}
	for (struct fut__slab *s = loop->fslabs; s; s = s->next) {
		fut *objs = (fut *)(s + 1);
		for (size_t i = 0; i < s->n; i++) {
			fut *f = &objs[i];
			uint32_t st = load_state(f);
			if (st & ST_FREE)
				continue;
			if (f->prod && f->prod->release)
				f->prod->release(f);
			if ((st & ST_PTR) && f->dtor)
				f->dtor(f->v.p);
			free(f->xcb);
		}
	}
	while (loop->fslabs) {
		struct fut__slab *s = loop->fslabs;
		loop->fslabs = s->next;
		free(s);
	}
	loop->free_futs = NULL;
	loop->live_futs = 0;
	return leaked;
}
