/*
 * Combinators: fut_then (with flattening), fut_all, fut_any, fut_timeout.
 *
 * Each combinator future g owns a small state block (g->pdata) and one
 * reference to g per child callback still to come, so g outlives every
 * callback that may touch it. Cancellation goes down: cancelling g cancels
 * what g waits on. A combinator ends only after the children it cancelled
 * have ended, so a buffer lent to a child is free again when g ends; on
 * epoll and the timers that is immediate, on io_uring it waits for the
 * kernel's confirmation.
 */
#include "future-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool pending(const fut *f)
{
	return fut_state(f) == FUT_PENDING;
}

/* --- fut_then --- */

struct then {
	fut_then_fn fn;
	void *arg;
	fut *cur; /* what g waits on now: the source, then fn's result */
	bool cancelled; /* g ends -ECANCELED, even if cur ends well */
	bool cancelling; /* a cycle (fn returned something that waits on g)
			    brings the cancel back: once is enough */
};

static int then_cancel(fut *g)
{
	struct then *t = g->pdata;
	t->cancelled = true;
	if (t->cancelling)
		return 0;
	t->cancelling = true;
	if (t->cur && pending(t->cur))
		(void)fut_cancel(t->cur);
	t->cancelling = false;
	if (t->cur && pending(t->cur))
		return 0; /* g ends when cur does */
	fut__complete(g, 0, -ECANCELED);
	return 0;
}

static void then_release(fut *g)
{
	free(g->pdata);
	g->pdata = NULL;
	g->prod = NULL;
}

static void then_background(fut *g)
{
	struct then *t = g->pdata;
	if (t->cur)
		fut_background(t->cur);
}

static const struct fut__producer then_producer = {
	.cancel = then_cancel,
	.release = then_release,
	.background = then_background,
};

static void then_inner_done(fut *h, void *arg)
{
	fut *g = arg;
	struct then *t = g->pdata;
	if (t)
		t->cur = NULL;
	if (pending(g)) {
		if (t && t->cancelled)
			fut__complete(g, 0, -ECANCELED);
		else
			fut__adopt(g, h);
	}
	fut_unref(g);
}

static void then_src_done(fut *f, void *arg)
{
	fut *g = arg;
	struct then *t = g->pdata;
	t->cur = NULL;
	if (!pending(g)) { /* cancelled meanwhile */
		fut_unref(g);
		return;
	}
	if (fut_state(f) == FUT_REJECTED || t->cancelled) {
		/* Cancelled, but f ended before the cancel reached it (an
		 * asynchronous cancel, io_uring or threads): fn starts no new
		 * work for a g nobody wants. */
		fut__complete(g, 0, t->cancelled ? -ECANCELED : fut_error(f));
		fut_unref(g);
		return;
	}
	fut *h = t->fn(f, t->arg);
	if (!h || h == f) {
		if (h == f)
			fut_unref(h);
		fut__adopt(g, f);
		fut_unref(g);
		return;
	}
	if (h->loop != g->loop) {
		/* Its callbacks would run on the other loop, and g would
		 * wait forever. */
		fut_unref(h);
		fut__complete(g, 0, -EINVAL);
		fut_unref(g);
		return;
	}
	t->cur = h;
	if (g->flags & FF_BG)
		fut_background(h);
	/* g's reference moves on to the inner callback. */
	(void)fut_on_done(h, then_inner_done, g);
}

fut *fut_then(fut *f, fut_then_fn fn, void *arg)
{
	if (!f)
		return NULL;
	struct fut_loop *loop = f->loop;
	fut *g = fut__alloc(loop);
	if (!g) {
		fut_unref(f);
		return NULL;
	}
	struct then *t = fn ? malloc(sizeof(*t)) : NULL;
	if (!t) {
		fut_unref(f);
		if (fn) { /* NULL on exhaustion, as fut__alloc's failure */
			fut_unref(g);
			return NULL;
		}
		fut__complete(g, 0, -EINVAL);
		return g;
	}
	t->fn = fn;
	t->arg = arg;
	t->cur = f;
	t->cancelled = t->cancelling = false;
	g->prod = &then_producer;
	g->pdata = t;
	g->refs++; /* held by the callback chain */
	(void)fut_on_done(f, then_src_done, g);
	return g;
}

/* --- fut_all / fut_any --- */

enum { K_ALL, K_ANY };

struct group {
	int kind;
	unsigned flags;
	size_t n, settled, failed;
	int first_err, last_err;
	int64_t winner;
	bool deciding; /* decided; waiting for cancelled children to end */
	bool cancelled; /* fut_cancel(g): end with -ECANCELED */
	fut *child[];
};

static bool children_ended(const struct group *gr)
{
	for (size_t i = 0; i < gr->n; i++)
		if (pending(gr->child[i]))
			return false;
	return true;
}

static void cancel_children(struct group *gr)
{
	for (size_t i = 0; i < gr->n; i++)
		if (pending(gr->child[i]))
			(void)fut_cancel(gr->child[i]);
}

/* End g with the decided outcome, once no cancelled child is in flight. */
static void group_settle(fut *g)
{
	struct group *gr = g->pdata;
	if (!pending(g) || !children_ended(gr))
		return;
	if (gr->cancelled)
		fut__complete(g, 0, -ECANCELED);
	else if (gr->kind == K_ANY)
		fut__complete(g, gr->winner, gr->winner < 0 ? gr->last_err : 0);
	else if (gr->flags == FUT_ALL_SETTLED)
		fut__complete(g, (int64_t)gr->failed, 0);
	else
		fut__complete(g, (int64_t)gr->n, gr->first_err);
}

static void group_child_done(fut *c, void *arg)
{
	fut *g = arg;
	struct group *gr = g->pdata;
	bool failed = fut_state(c) == FUT_REJECTED;
	gr->settled++;
	if (failed) {
		gr->failed++;
		gr->last_err = fut_error(c);
	}
	if (pending(g) && !gr->deciding) {
		if (gr->kind == K_ALL && failed && gr->flags == FUT_ALL_FAIL_FAST) {
			gr->first_err = fut_error(c);
			gr->deciding = true;
			cancel_children(gr);
		} else if (gr->kind == K_ANY && !failed) {
			for (size_t i = 0; i < gr->n; i++)
				if (gr->child[i] == c)
					gr->winner = (int64_t)i;
			gr->deciding = true;
			cancel_children(gr);
		} else if (gr->settled == gr->n) {
			gr->deciding = true; /* all ended: all ok, or any: all failed */
		}
	}
	if (gr->deciding)
		group_settle(g);
	fut_unref(g);
}

static int group_cancel(fut *g)
{
	struct group *gr = g->pdata;
	if (gr->cancelled) /* again, or round a cycle: once is enough */
		return 0;
	gr->cancelled = true;
	gr->deciding = true;
	cancel_children(gr);
	group_settle(g);
	return 0;
}

static void group_release(fut *g)
{
	struct group *gr = g->pdata;
	for (size_t i = 0; i < gr->n; i++)
		fut_unref(gr->child[i]);
	free(gr);
	g->pdata = NULL;
	g->prod = NULL;
}

static void group_uncount(fut *g)
{
	struct group *gr = g->pdata;
	for (size_t i = 0; i < gr->n; i++)
		gr->child[i]->refs--;
}

static void group_background(fut *g)
{
	struct group *gr = g->pdata;
	for (size_t i = 0; i < gr->n; i++)
		fut_background(gr->child[i]);
}

static const struct fut__producer group_producer = {
	.cancel = group_cancel,
	.release = group_release,
	.uncount = group_uncount,
	.background = group_background,
};

static fut *group_new(struct fut_loop *loop, fut **fs, size_t n, int kind,
		      unsigned flags)
{
	if (!loop)
		goto drop;
	int err = 0;
	if (n && !fs)
		err = -EINVAL;
	if (kind == K_ALL && flags > FUT_ALL_SETTLED)
		err = -EINVAL;
	if (kind == K_ANY && n == 0)
		err = -EINVAL;
	for (size_t i = 0; i < n && !err; i++)
		if (!fs[i] || fs[i]->loop != loop)
			err = -EINVAL;
	if (err) {
		for (size_t i = 0; fs && i < n; i++)
			fut_unref(fs[i]);
		return fut_rejected(loop, err);
	}
	fut *g = fut__alloc(loop);
	struct group *gr = g ? calloc(1, sizeof(*gr) + n * sizeof(fut *)) : NULL;
	if (!gr) {
		if (g)
			fut_unref(g);
		goto drop;
	}
	gr->kind = kind;
	gr->flags = flags;
	gr->n = n;
	gr->winner = -1;
	g->prod = &group_producer;
	g->pdata = gr;
	if (n == 0) {
		fut__complete(g, 0, 0);
		return g;
	}
	/* The group keeps one reference per child (for fut_at) and passes
	 * the caller's reference to the callback; each callback holds g. */
	for (size_t i = 0; i < n; i++) {
		gr->child[i] = fut_ref(fs[i]);
		g->refs++;
		(void)fut_on_done(fs[i], group_child_done, g);
	}
	return g;
drop:
	for (size_t i = 0; fs && i < n; i++)
		fut_unref(fs[i]);
	return NULL;
}

fut *fut_all(fut_loop *loop, fut **fs, size_t n, unsigned flags)
{
	return group_new(loop, fs, n, K_ALL, flags);
}

fut *fut_any(fut_loop *loop, fut **fs, size_t n)
{
	return group_new(loop, fs, n, K_ANY, 0);
}

fut *fut_at(const fut *g, size_t i)
{
	if (!g || g->prod != &group_producer)
		return NULL;
	const struct group *gr = g->pdata;
	return i < gr->n ? gr->child[i] : NULL;
}

/* --- fut_timeout --- */

struct tmo {
	fut *inner, *timer;
	bool timed_out;
	bool cancelling; /* inside tmo_cancel: a cycle comes back once */
};

static void tmo_try_end(fut *g)
{
	struct tmo *t = g->pdata;
	if (!pending(g) || pending(t->inner))
		return;
	/* Cancelled, g ends as inner did, even if inner won the race with
	 * the cancel: its result (bytes a recv consumed) is not lost. */
	if (t->timed_out && fut_error(t->inner) == -ECANCELED)
		fut__complete(g, 0, -ETIMEDOUT);
	else
		fut__adopt(g, t->inner);
}

static void tmo_inner_done(fut *f, void *arg)
{
	fut *g = arg;
	struct tmo *t = g->pdata;
	if (t->timer && pending(t->timer))
		(void)fut_cancel(t->timer);
	tmo_try_end(g);
	fut_unref(g);
}

static void tmo_timer_done(fut *tf, void *arg)
{
	fut *g = arg;
	struct tmo *t = g->pdata;
	if (fut_state(tf) == FUT_RESOLVED && pending(g) && pending(t->inner)) {
		t->timed_out = true;
		(void)fut_cancel(t->inner);
		tmo_try_end(g);
	}
	fut_unref(g);
}

static int tmo_cancel(fut *g)
{
	struct tmo *t = g->pdata;
	if (t->cancelling)
		return 0;
	t->cancelling = true;
	if (t->timer && pending(t->timer))
		(void)fut_cancel(t->timer);
	if (pending(t->inner))
		(void)fut_cancel(t->inner);
	t->cancelling = false;
	if (!pending(t->inner) && pending(g))
		fut__complete(g, 0, -ECANCELED);
	return 0;
}

static void tmo_release(fut *g)
{
	struct tmo *t = g->pdata;
	fut_unref(t->inner);
	fut_unref(t->timer);
	free(t);
	g->pdata = NULL;
	g->prod = NULL;
}

static void tmo_uncount(fut *g)
{
	struct tmo *t = g->pdata;
	t->inner->refs--;
	t->timer->refs--;
}

static void tmo_background(fut *g)
{
	struct tmo *t = g->pdata;
	fut_background(t->inner);
	fut_background(t->timer);
}

static const struct fut__producer tmo_producer = {
	.cancel = tmo_cancel,
	.release = tmo_release,
	.uncount = tmo_uncount,
	.background = tmo_background,
};

fut *fut_timeout(fut *f, uint64_t ms)
{
	if (!f)
		return NULL;
	struct fut_loop *loop = f->loop;
	fut *g = fut__alloc(loop);
	struct tmo *t = g ? calloc(1, sizeof(*t)) : NULL;
	fut *tf = t ? fut_sleep(loop, ms) : NULL;
	if (!tf) {
		free(t);
		if (g)
			fut_unref(g);
		fut_unref(f);
		return NULL;
	}
	t->inner = fut_ref(f);
	t->timer = fut_ref(tf);
	g->prod = &tmo_producer;
	g->pdata = t;
	g->refs += 2;
	(void)fut_on_done(f, tmo_inner_done, g);
	(void)fut_on_done(tf, tmo_timer_done, g);
	return g;
}
