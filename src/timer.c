/*
 * Timers: a hierarchical timing wheel with 1 ms ticks, six levels of 64
 * slots (level k slots span 64^k ms), owned by the core for every backend.
 *
 * Why a wheel and not libuv's binary heap: arming and firing are O(1), and
 * firing a million timers walks lists slot by slot instead of sifting a
 * million-entry heap whose every pop misses the cache. A timer is placed on
 * the level given by the highest bit in which its deadline differs from
 * the wheel's elapsed time, so it moves down at most five times before it
 * fires, and every timer in a level-0 slot has exactly that slot's deadline:
 * timers fire in deadline order, equal deadlines in arming order. The same
 * scheme is used by tokio's time driver and Linux's pre-4.8 timer wheel.
 */
#include "future-internal.h"

#include <errno.h>
#include <stdlib.h>

#define SLOT_MASK ((uint64_t)FUT__WHEEL_SLOTS - 1)
#define MAX_SPAN ((uint64_t)1 << (FUT__WHEEL_BITS * FUT__WHEEL_LEVELS))
#define LEVEL_DUE 0xff

struct fut_timer {
	struct fut__tnode tn;
	struct fut_loop *loop;
	struct fut_timer *next, *prev; /* loop->timers */
	uint64_t period;
	fut_timer_fn fn;
	void *arg;
	bool in_callback, dead;
};

void fut__wheel_init(struct fut__wheel *w, uint64_t now)
{
	w->elapsed = now;
}

static void list_append(struct fut__tlist *l, struct fut__tnode *tn)
{
	tn->next = NULL;
	tn->prev = l->tail;
	if (l->tail)
		l->tail->next = tn;
	else
		l->head = tn;
	l->tail = tn;
}

static void list_unlink(struct fut__tlist *l, struct fut__tnode *tn)
{
	if (tn->prev)
		tn->prev->next = tn->next;
	else
		l->head = tn->next;
	if (tn->next)
		tn->next->prev = tn->prev;
	else
		l->tail = tn->prev;
}

static unsigned level_for(uint64_t elapsed, uint64_t when)
{
	uint64_t masked = (elapsed ^ when) | SLOT_MASK;
	if (masked >= MAX_SPAN)
		masked = MAX_SPAN - 1;
	unsigned significant = 63u - (unsigned)__builtin_clzll(masked);
	return significant / FUT__WHEEL_BITS;
}

static void place(struct fut__wheel *w, struct fut__tnode *tn)
{
	if (tn->when <= w->elapsed) {
		tn->level = LEVEL_DUE;
		list_append(&w->due, tn);
		return;
	}
	unsigned level = level_for(w->elapsed, tn->when);
	unsigned slot = (unsigned)(tn->when >> (level * FUT__WHEEL_BITS)) &
			SLOT_MASK;
	tn->level = (uint8_t)level;
	tn->slot = (uint8_t)slot;
	list_append(&w->slot[level][slot], tn);
	w->occupied[level] |= (uint64_t)1 << slot;
}

void fut__timer_arm(struct fut_loop *loop, struct fut__tnode *tn, uint64_t when)
{
	struct fut__wheel *w = &loop->wheel;
	/* Beyond the wheel's span (~2 years): park at the far end; it is
	 * re-placed each time that slot comes round. */
	tn->when = when;
	tn->armed = true;
	place(w, tn);
	w->count++;
	w->bg += tn->bg;
}

void fut__timer_disarm(struct fut_loop *loop, struct fut__tnode *tn)
{
	struct fut__wheel *w = &loop->wheel;
	if (!tn->armed)
		return;
	tn->armed = false;
	w->count--;
	w->bg -= tn->bg;
	if (tn->level == LEVEL_DUE) {
		list_unlink(&w->due, tn);
		return;
	}
	struct fut__tlist *l = &w->slot[tn->level][tn->slot];
	list_unlink(l, tn);
	if (!l->head)
		w->occupied[tn->level] &= ~((uint64_t)1 << tn->slot);
}

/* Earliest slot deadline: the lowest occupied level holds the earliest. */
static bool next_expiration(const struct fut__wheel *w, unsigned *lvl,
			    unsigned *slotp, uint64_t *deadline)
{
	for (unsigned level = 0; level < FUT__WHEEL_LEVELS; level++) {
		uint64_t occ = w->occupied[level];
		if (!occ)
			continue;
		unsigned shift = level * FUT__WHEEL_BITS;
		uint64_t slot_range = (uint64_t)1 << shift;
		uint64_t level_range = slot_range << FUT__WHEEL_BITS;
		unsigned now_slot = (unsigned)(w->elapsed >> shift) & SLOT_MASK;
		uint64_t rot = (occ >> now_slot) |
			       (now_slot ? occ << (64 - now_slot) : 0);
		unsigned slot = (now_slot + (unsigned)__builtin_ctzll(rot)) &
				SLOT_MASK;
		uint64_t start = w->elapsed & ~(level_range - 1);
		uint64_t d = start + slot * slot_range;
		if (d <= w->elapsed) /* wrapped: next turn of this level */
			d += level_range;
		*lvl = level;
		*slotp = slot;
		*deadline = d;
		return true;
	}
	return false;
}

static void fire_list(struct fut_loop *loop, struct fut__tlist *l)
{
	struct fut__wheel *w = &loop->wheel;
	struct fut__tnode *tn;
	while ((tn = l->head)) {
		/* A proper unlink: a callback may disarm the next timer
		 * (fut_timer_free of another one due now), which unlinks
		 * through its prev. */
		list_unlink(l, tn);
		tn->next = tn->prev = NULL;
		tn->armed = false;
		w->count--;
		w->bg -= tn->bg;
		tn->fire(tn);
	}
}

void fut__timers_run(struct fut_loop *loop)
{
	struct fut__wheel *w = &loop->wheel;
	uint64_t now = loop->now;
	unsigned level, slot;
	uint64_t deadline;
	fire_list(loop, &w->due);
	while (w->count && next_expiration(w, &level, &slot, &deadline) &&
	       deadline <= now) {
		struct fut__tlist l = w->slot[level][slot];
		w->slot[level][slot].head = w->slot[level][slot].tail = NULL;
		w->occupied[level] &= ~((uint64_t)1 << slot);
		w->elapsed = deadline;
		/* Cascade: each timer either is due or drops to a lower level. */
		struct fut__tnode *tn = l.head;
		while (tn) {
			struct fut__tnode *next = tn->next;
			place(w, tn);
			tn = next;
		}
		fire_list(loop, &w->due);
	}
	if (now > w->elapsed)
		w->elapsed = now;
}

int fut__timers_timeout(struct fut_loop *loop)
{
	struct fut__wheel *w = &loop->wheel;
	unsigned level, slot;
	uint64_t deadline;
	if (w->due.head)
		return 0;
	if (!w->count || !next_expiration(w, &level, &slot, &deadline))
		return -1;
	if (deadline <= loop->now)
		return 0;
	uint64_t d = deadline - loop->now;
	return d > 0x7fffffff ? 0x7fffffff : (int)d;
}

/* --- fut_sleep --- */

/* A sleep needs only its wheel node: a small object of its own keeps a
 * million armed timers at ~56 bytes each plus the future. */
struct sleep {
	struct fut__tnode tn;
	fut *f;
};

void fut__timer_pool_init(struct fut_loop *loop)
{
	fut__objpool_init(&loop->sleeps, sizeof(struct sleep), 1024);
}

static void sleep_end(struct sleep *s, int err)
{
	fut *f = s->f;
	f->prod = NULL;
	f->pdata = NULL;
	fut__obj_free(&f->loop->sleeps, s);
	fut__complete(f, 0, err);
	fut_unref(f); /* the timer's reference */
}

static void sleep_fire(struct fut__tnode *tn)
{
	sleep_end(fut__container_of(tn, struct sleep, tn), 0);
}

static int sleep_cancel(fut *f)
{
	struct sleep *s = f->pdata;
	fut__timer_disarm(f->loop, &s->tn);
	sleep_end(s, -ECANCELED);
	return 0;
}

static void sleep_background(fut *f)
{
	struct sleep *s = f->pdata;
	if (s->tn.armed && !s->tn.bg)
		f->loop->wheel.bg++;
	s->tn.bg = true;
}

static const struct fut__producer sleep_producer = {
	.cancel = sleep_cancel,
	.background = sleep_background,
};

fut *fut_sleep(fut_loop *loop, uint64_t ms)
{
	if (!loop)
		return NULL;
	if (loop->closing)
		return fut_rejected(loop, -ECANCELED);
	fut *f = fut__alloc(loop);
	struct sleep *s = f ? fut__obj_alloc(&loop->sleeps) : NULL;
	if (!s) {
		fut_unref(f);
		return NULL;
	}
	s->f = f;
	s->tn.fire = sleep_fire;
	s->tn.bg = false;
	f->refs = 2;
	f->prod = &sleep_producer;
	f->pdata = s;
	/* "At least ms from now": loop->now is the start of the tick,
	 * truncated to the millisecond, so read the clock and round up. */
	uint64_t start = ms ? fut__clock_ms_ceil() : loop->now;
	uint64_t when = ms > UINT64_MAX - start ? UINT64_MAX : start + ms;
	fut__timer_arm(loop, &s->tn, when);
	return f;
}

/* --- periodic timers (Tornado's PeriodicCallback) --- */

static void periodic_fire(struct fut__tnode *tn)
{
	struct fut_timer *t = fut__container_of(tn, struct fut_timer, tn);
	struct fut_loop *loop = t->loop;
	t->in_callback = true;
	FUT__TIMED(loop, t->fn, "timer callback", t->fn(t, t->arg));
	t->in_callback = false;
	if (t->dead) {
		free(t);
		return;
	}
	/* Skip the runs we are late for instead of firing them in a burst:
	 * the next run is the first of the original schedule still ahead.
	 * The clock, not loop->now: that is the tick's start, and a slow
	 * callback (this one included) would leave every missed run looking
	 * due, so they ran back to back. */
	uint64_t now = fut__clock_ms();
	uint64_t next = t->period > UINT64_MAX - tn->when ?
			UINT64_MAX : tn->when + t->period;
	if (next <= now)
		next += ((now - next) / t->period + 1) * t->period;
	fut__timer_arm(loop, tn, next);
}

fut_timer *fut_timer_new(fut_loop *loop, uint64_t period_ms, fut_timer_fn fn,
			 void *arg)
{
	if (!loop || !fn || !period_ms || loop->closing)
		return NULL;
	struct fut_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->loop = loop;
	t->period = period_ms;
	t->fn = fn;
	t->arg = arg;
	t->tn.fire = periodic_fire;
	t->next = loop->timers;
	if (t->next)
		t->next->prev = t;
	loop->timers = t;
	/* As fut_sleep: the first run is a whole period from now, however
	 * long ago this tick started. */
	uint64_t start = fut__clock_ms_ceil();
	uint64_t when = period_ms > UINT64_MAX - start ?
			UINT64_MAX : start + period_ms;
	fut__timer_arm(loop, &t->tn, when);
	return t;
}

void fut_timer_free(fut_timer *t)
{
	if (!t || t->dead)
		return;
	struct fut_loop *loop = t->loop;
	fut__timer_disarm(loop, &t->tn);
	if (t->prev)
		t->prev->next = t->next;
	else
		loop->timers = t->next;
	if (t->next)
		t->next->prev = t->prev;
	/* Inside its own callback: periodic_fire frees it on return. */
	if (t->in_callback)
		t->dead = true;
	else
		free(t);
}
