/*
 * The core contract, function by function: futures, callbacks and their
 * order, references, chaining, combinators, timers, the loop, errors.
 */
#include <future.h>

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "tests.h"

struct order {
	int seen[64];
	int n;
};

static void record(fut *f, void *arg)
{
	struct order *o = arg;
	o->seen[o->n++] = (int)fut_value(f);
}

START_TEST(callbacks_fifo_and_never_inline)
{
	fut_loop *loop = new_loop();
	struct order o = { .n = 0 };
	fut *fs[5];
	for (int i = 0; i < 5; i++) {
		fs[i] = fut_new(loop);
		ck_assert_int_eq(fut_state(fs[i]), FUT_PENDING);
		fut_ref(fs[i]);
		ck_assert_int_eq(fut_on_done(fs[i], record, &o), 0);
	}
	/* Resolve in a scrambled order: callbacks follow resolution order. */
	int order[5] = { 3, 0, 4, 1, 2 };
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(fut_resolve(fs[order[i]], order[i]), 0);
		ck_assert_int_eq(o.n, 0); /* never inline */
	}
	ck_assert_int_eq(fut_loop_run(loop), 0);
	ck_assert_int_eq(o.n, 5);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(o.seen[i], order[i]);
	/* Several callbacks on one future run in registration order, and a
	 * callback added to an ended future is still deferred. */
	o.n = 0;
	for (int i = 0; i < 3; i++)
		fut_on_done(fut_ref(fs[0]), record, &o);
	ck_assert_int_eq(o.n, 0);
	ck_assert_int_eq(fut_loop_run(loop), 0);
	ck_assert_int_eq(o.n, 3);
	for (int i = 0; i < 5; i++)
		fut_unref(fs[i]);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

static int dtor_calls;
static void dtor(void *p)
{
	dtor_calls++;
	free(p);
}

START_TEST(values_errors_and_refs)
{
	fut_loop *loop = new_loop();
	fut *f = fut_new(loop);
	ck_assert_ptr_eq(fut_loop_of(f), loop);
	ck_assert_int_eq(fut_error(f), 0);
	ck_assert_int_eq(fut_resolve(f, -42), 0);
	ck_assert_int_eq(fut_value(f), -42);
	ck_assert_int_eq(fut_resolve(f, 1), -EALREADY);
	ck_assert_int_eq(fut_reject(f, -EIO), -EALREADY);
	ck_assert_int_eq(fut_cancel(f), -EALREADY);
	ck_assert_int_eq(fut_value(f), -42);
	fut_unref(f);

	f = fut_new(loop);
	ck_assert_int_eq(fut_reject(f, 5), -EINVAL); /* must be negative */
	ck_assert_int_eq(fut_reject(f, -EIO), 0);
	ck_assert_int_eq(fut_state(f), FUT_REJECTED);
	ck_assert_int_eq(fut_error(f), -EIO);
	ck_assert_int_eq(fut_value(f), 0);
	fut_unref(f);

	dtor_calls = 0;
	f = fut_new(loop);
	fut_ref(f);
	ck_assert_int_eq(fut_resolve_ptr(f, strdup("x"), dtor), 0);
	ck_assert_str_eq(fut_ptr(f), "x");
	ck_assert_int_eq(fut_value(f), 0);
	fut_unref(f);
	ck_assert_int_eq(dtor_calls, 0); /* one reference left */
	fut_unref(f);
	ck_assert_int_eq(dtor_calls, 1);

	f = fut_rejected(loop, 7);
	ck_assert_int_eq(fut_error(f), -EINVAL);
	fut_unref(f);
	f = fut_resolved(loop, 9);
	ck_assert_int_eq(fut_value(f), 9);
	fut_unref(f);

	ck_assert_ptr_null(fut_new(NULL));
	ck_assert_int_eq(fut_resolve(NULL, 1), -EINVAL);
	ck_assert_int_eq(fut_reject(NULL, -1), -EINVAL);
	ck_assert_int_eq(fut_cancel(NULL), -EINVAL);
	ck_assert_int_eq(fut_state(NULL), -EINVAL);
	ck_assert_int_eq(fut_error(NULL), -EINVAL);
	ck_assert_ptr_null(fut_ptr(NULL));
	ck_assert_ptr_null(fut_ref(NULL));
	fut_unref(NULL);
	ck_assert_int_eq(fut_on_done(NULL, record, NULL), -EINVAL);
	ck_assert_int_eq(fut_on_done(fut_new(loop), NULL, NULL), -EINVAL);
	ck_assert_int_eq(fut_loop_free(loop), 0); /* the ref was consumed */
}
END_TEST

START_TEST(cancel_before_and_after)
{
	fut_loop *loop = new_loop();
	struct order o = { .n = 0 };
	fut *f = fut_new(loop);
	fut_ref(f);
	fut_on_done(f, record, &o);
	ck_assert_int_eq(fut_cancel(f), 0);
	ck_assert_int_eq(fut_error(f), -ECANCELED);
	ck_assert_int_eq(fut_resolve(f, 1), -EALREADY);
	ck_assert_int_eq(fut_loop_run(loop), 0);
	ck_assert_int_eq(o.n, 1);
	fut_unref(f);
	/* A cancelled sleep is disarmed: the loop has nothing to wait for. */
	fut *s = fut_sleep(loop, 60000);
	ck_assert_int_eq(fut_cancel(s), 0);
	ck_assert_int_eq(fut_error(s), -ECANCELED);
	uint64_t t0 = fut_loop_now(loop);
	ck_assert_int_eq(fut_loop_run(loop), 0);
	ck_assert_uint_lt(fut_loop_now(loop) - t0, 1000);
	fut_unref(s);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

static fut *plus_one_later(fut *f, void *arg)
{
	fut *g = fut_sleep(fut_loop_of(f), 2);
	(void)g;
	fut_unref(g);
	return fut_resolved(fut_loop_of(f), fut_value(f) + 1);
}

static fut *passthrough(fut *f, void *arg)
{
	(*(int *)arg)++;
	return NULL;
}

static fut *never_called(fut *f, void *arg)
{
	ck_abort_msg("then callback ran for a rejected source");
	return NULL;
}

static fut *inner_pending(fut *f, void *arg)
{
	fut **out = arg;
	*out = fut_sleep(fut_loop_of(f), 60000);
	return fut_ref(*out);
}

static fut *other_loop_future(fut *f, void *arg)
{
	(void)f;
	return fut_resolved(arg, 7);
}

START_TEST(then_chains_and_flattens)
{
	fut_loop *loop = new_loop();
	int calls = 0;
	fut *g = fut_then(fut_then(fut_resolved(loop, 1), plus_one_later, NULL),
			  plus_one_later, NULL);
	ck_assert_int_eq(fut_loop_run_until(loop, g), 0);
	ck_assert_int_eq(fut_value(g), 3);
	fut_unref(g);
	g = fut_then(fut_resolved(loop, 5), passthrough, &calls);
	ck_assert_int_eq(fut_loop_run_until(loop, g), 0);
	ck_assert_int_eq(fut_value(g), 5);
	ck_assert_int_eq(calls, 1);
	fut_unref(g);
	g = fut_then(fut_rejected(loop, -EIO), never_called, NULL);
	ck_assert_int_eq(fut_loop_run_until(loop, g), 0);
	ck_assert_int_eq(fut_error(g), -EIO);
	fut_unref(g);
	/* Cancelling the chain reaches the inner future fn returned. */
	fut *inner = NULL;
	g = fut_then(fut_resolved(loop, 0), inner_pending, &inner);
	fut *t = fut_sleep(loop, 1);
	fut_loop_run_until(loop, t);
	fut_unref(t);
	ck_assert_ptr_nonnull(inner);
	ck_assert_int_eq(fut_cancel(g), 0);
	ck_assert_int_eq(fut_loop_run_until(loop, g), 0);
	ck_assert_int_eq(fut_error(g), -ECANCELED);
	ck_assert_int_eq(fut_error(inner), -ECANCELED);
	fut_unref(inner);
	fut_unref(g);
	g = fut_then(fut_resolved(loop, 0), NULL, NULL);
	ck_assert_int_eq(fut_error(g), -EINVAL);
	fut_unref(g);
	/* fn returning another loop's future: -EINVAL, not a wait forever. */
	fut_loop *other = new_loop();
	g = fut_then(fut_resolved(loop, 0), other_loop_future, other);
	ck_assert_int_eq(fut_loop_run_until(loop, g), 0);
	ck_assert_int_eq(fut_error(g), -EINVAL);
	fut_unref(g);
	ck_assert_int_eq(fut_loop_free(other), 0);
	ck_assert_ptr_null(fut_then(NULL, passthrough, NULL));
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

START_TEST(all_any_timeout_mixed)
{
	fut_loop *loop = new_loop();
	/* Fail fast: the first error wins and the rest are cancelled. */
	fut *fs[3] = { fut_sleep(loop, 60000), fut_rejected(loop, -EIO),
		       fut_resolved(loop, 3) };
	fut *g = fut_all(loop, fs, 3, FUT_ALL_FAIL_FAST);
	ck_assert_int_eq(fut_loop_run_until(loop, g), 0);
	ck_assert_int_eq(fut_error(g), -EIO);
	ck_assert_int_eq(fut_error(fut_at(g, 0)), -ECANCELED);
	ck_assert_int_eq(fut_value(fut_at(g, 2)), 3);
	ck_assert_ptr_null(fut_at(g, 3));
	fut_unref(g);
	/* All resolved. */
	fut *ok[2] = { fut_sleep(loop, 2), fut_resolved(loop, 4) };
	g = fut_all(loop, ok, 2, FUT_ALL_FAIL_FAST);
	fut_loop_run_until(loop, g);
	ck_assert_int_eq(fut_value(g), 2);
	fut_unref(g);
	g = fut_all(loop, NULL, 0, 0);
	ck_assert_int_eq(fut_value(g), 0);
	fut_unref(g);
	fut *bad[1] = { fut_resolved(loop, 1) };
	g = fut_all(loop, bad, 1, 99);
	ck_assert_int_eq(fut_error(g), -EINVAL);
	fut_unref(g);
	/* Any: all failing -> the last error. */
	fut *fail[2] = { fut_rejected(loop, -EIO), fut_rejected(loop, -EPIPE) };
	g = fut_any(loop, fail, 2);
	fut_loop_run_until(loop, g);
	ck_assert_int_eq(fut_error(g), -EPIPE);
	fut_unref(g);
	g = fut_any(loop, NULL, 0);
	ck_assert_int_eq(fut_error(g), -EINVAL);
	fut_unref(g);
	/* Timeout not reached: the inner outcome passes through. */
	g = fut_timeout(fut_sleep(loop, 1), 5000);
	fut_loop_run_until(loop, g);
	ck_assert_int_eq(fut_state(g), FUT_RESOLVED);
	fut_unref(g);
	/* Cancelling a combinator cancels its children. */
	fut *kids[2] = { fut_sleep(loop, 60000), fut_sleep(loop, 60000) };
	g = fut_all(loop, kids, 2, FUT_ALL_SETTLED);
	ck_assert_int_eq(fut_cancel(g), 0);
	fut_loop_run_until(loop, g);
	ck_assert_int_eq(fut_error(g), -ECANCELED);
	ck_assert_int_eq(fut_error(fut_at(g, 1)), -ECANCELED);
	fut_unref(g);
	ck_assert_int_eq(fut_loop_run(loop), 0);
	ck_assert_ptr_null(fut_timeout(NULL, 1));
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

struct deadline_check {
	uint64_t last;
	int n, bad;
};

static void check_order(fut *f, void *arg)
{
	struct deadline_check *c = arg;
	/* fut_value is 0 for sleeps; the deadline is in the loop clock. */
	uint64_t now = fut_loop_now(fut_loop_of(f));
	if (now < c->last)
		c->bad++;
	c->last = now;
	c->n++;
}

struct stamped {
	uint64_t lo, hi; /* the library's deadline lies in [lo, hi] */
	struct deadline_check *c;
	uint64_t *prev;
};

/* The library reads the clock inside fut_sleep, so the test brackets
 * each deadline with a clock read before and after the call (a slow
 * machine or a sanitizer can put milliseconds between them): a timer
 * fired out of order only if its deadline was surely earlier than one
 * that fired before it; "never early" is checked against the lower end. */
static void check_deadline(fut *f, void *arg)
{
	struct stamped *s = arg;
	if (s->hi < *s->prev)
		s->c->bad++;
	if (fut_loop_now(fut_loop_of(f)) < s->lo)
		s->c->bad++; /* fired early */
	if (s->lo > *s->prev)
		*s->prev = s->lo;
	s->c->n++;
}

static uint64_t ceil_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u +
	       ((uint64_t)ts.tv_nsec + 999999u) / 1000000u;
}

START_TEST(timers_fire_in_deadline_order)
{
	enum { N = 100000 };
	fut_loop *loop = new_loop();
	struct deadline_check c = { 0, 0, 0 };
	uint64_t prev = 0;
	struct stamped *st = malloc(N * sizeof(*st));
	uint64_t base = fut_loop_now(loop);
	srand(7);
	for (int i = 0; i < N; i++) {
		uint64_t ms = (uint64_t)(rand() % 200);
		/* 0 ms means the next tick: the loop's time, not the clock. */
		uint64_t lo = ms ? ceil_ms() + ms : base;
		fut *sl = fut_sleep(loop, ms);
		uint64_t hi = ms ? ceil_ms() + ms : base;
		st[i] = (struct stamped){ lo, hi, &c, &prev };
		fut_on_done(sl, check_deadline, &st[i]);
	}
	ck_assert_int_eq(fut_loop_run(loop), 0);
	ck_assert_int_eq(c.n, N);
	ck_assert_int_eq(c.bad, 0);
	ck_assert_uint_ge(fut_loop_now(loop) - base, 199 - 1);
	free(st);
	(void)check_order;
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

static void tick_cb(fut_timer *t, void *arg)
{
	int *n = arg;
	if (++*n == 3)
		fut_timer_free(t); /* from inside its own callback */
}

START_TEST(periodic_timer)
{
	fut_loop *loop = new_loop();
	int n = 0;
	uint64_t t0 = fut_loop_now(loop);
	ck_assert_ptr_nonnull(fut_timer_new(loop, 5, tick_cb, &n));
	ck_assert_int_eq(fut_loop_run(loop), 0); /* returns once freed */
	ck_assert_int_eq(n, 3);
	ck_assert_uint_ge(fut_loop_now(loop) - t0, 14);
	ck_assert_ptr_null(fut_timer_new(loop, 0, tick_cb, &n));
	ck_assert_ptr_null(fut_timer_new(loop, 5, NULL, &n));
	ck_assert_ptr_null(fut_timer_new(NULL, 5, tick_cb, &n));
	fut_timer_free(NULL);
	/* A live timer is freed by fut_loop_free. */
	ck_assert_ptr_nonnull(fut_timer_new(loop, 5, tick_cb, &n));
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Starts of a periodic timer's runs, in us since it was created. */
struct runs {
	int64_t t0, at[16];
	int n;
	unsigned busy_ms, stop_ms;
};

static void note_run(fut_timer *t, void *arg)
{
	struct runs *r = arg;
	int64_t at = now_us() - r->t0;
	r->at[r->n++] = at;
	if (at >= (int64_t)r->stop_ms * 1000 || r->n == 16)
		fut_timer_free(t);
	else
		usleep(r->busy_ms * 1000);
}

static void slow_then_timer(fut *f, void *arg)
{
	struct runs *r = arg;
	usleep(60000); /* this tick's time is now 60 ms old */
	r->t0 = now_us();
	ck_assert_ptr_nonnull(fut_timer_new(fut_loop_of(f), 50, note_run, r));
}

/* The first run is a period after the timer's creation, not after the
 * start of the tick that created it. */
START_TEST(periodic_timer_first_run_after_creation)
{
	fut_loop *loop = new_loop();
	struct runs r = { .stop_ms = 0 };
	fut_on_done(fut_resolved(loop, 0), slow_then_timer, &r);
	ck_assert_int_eq(fut_loop_run(loop), 0);
	ck_assert_int_eq(r.n, 1);
	ck_assert_msg(r.at[0] >= 49000, "first run %lld us after creation",
		      (long long)r.at[0]);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* A callback longer than the period: the runs it overlapped are skipped,
 * not run back to back. 50 ms period, 125 ms runs: the schedule's points
 * at 50, 200, 350, 500... are the only ones a run can start at or after,
 * so at most three start before 475 ms (back to back: 50, 175, 300, 425). */
START_TEST(periodic_timer_skips_missed_runs)
{
	fut_loop *loop = new_loop();
	struct runs r = { .busy_ms = 125, .stop_ms = 475 };
	r.t0 = now_us();
	ck_assert_ptr_nonnull(fut_timer_new(loop, 50, note_run, &r));
	ck_assert_int_eq(fut_loop_run(loop), 0);
	int early = 0;
	while (early < r.n && r.at[early] < 475000)
		early++;
	ck_assert_int_ge(r.at[0], 49000);
	ck_assert_msg(early >= 1 && early <= 3,
		      "%d runs in 475 ms, at %lld %lld %lld %lld us", early,
		      (long long)r.at[0], (long long)r.at[1],
		      (long long)r.at[2], (long long)r.at[3]);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* A timer's callback frees, or cancels, what is due in the same tick. */
static fut_timer *due_pair[2];
static fut *due_sleep;
static int due_fired[2];

static void due_cb(fut_timer *t, void *arg)
{
	(void)arg;
	int i = t == due_pair[1];
	due_fired[i]++;
	if (i == 0 && due_pair[1]) {
		fut_timer_free(due_pair[1]);
		due_pair[1] = NULL;
		ck_assert_int_eq(fut_cancel(due_sleep), 0);
	}
}

START_TEST(timer_frees_another_due_now)
{
	fut_loop *loop = new_loop();
	due_fired[0] = due_fired[1] = 0;
	due_pair[0] = fut_timer_new(loop, 5, due_cb, NULL);
	due_pair[1] = fut_timer_new(loop, 5, due_cb, NULL);
	due_sleep = fut_sleep(loop, 5);
	fut *stop = fut_sleep(loop, 40);
	ck_assert_int_eq(fut_loop_run_until(loop, stop), 0);
	ck_assert_int_ge(due_fired[0], 1);
	ck_assert_int_eq(due_fired[1], 0);
	ck_assert_int_eq(fut_error(due_sleep), -ECANCELED);
	fut_unref(due_sleep);
	fut_unref(stop);
	fut_timer_free(due_pair[0]);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

struct pingpong {
	fut_loop *loop;
	int fd[2];
	char buf[2][8];
	int rounds;
};

static void on_pong(fut *f, void *arg);

static void ping(struct pingpong *p)
{
	fut_unref(fut_send(p->loop, p->fd[0], "ping", 4, 0));
	fut_on_done(fut_recv(p->loop, p->fd[1], p->buf[1], 4, 0), on_pong, p);
}

static void on_pong(fut *f, void *arg)
{
	struct pingpong *p = arg;
	ck_assert_int_eq(fut_value(f), 4);
	ck_assert(memcmp(p->buf[1], "ping", 4) == 0);
	if (--p->rounds > 0)
		ping(p);
}

START_TEST(socketpair_ping_pong)
{
	struct pingpong p = { .loop = new_loop(), .rounds = 10000 };
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, p.fd), 0);
	ping(&p);
	ck_assert_int_eq(fut_loop_run(p.loop), 0);
	ck_assert_int_eq(p.rounds, 0);
	/* fut_poll: writable at once; readable once data is there. */
	fut *w = fut_poll(p.loop, p.fd[0], POLLOUT);
	fut *r = fut_poll(p.loop, p.fd[1], POLLIN);
	fut_loop_run_until(p.loop, w);
	ck_assert(fut_value(w) & POLLOUT);
	ck_assert_int_eq(fut_state(r), FUT_PENDING);
	fut_unref(fut_send(p.loop, p.fd[0], "x", 1, 0));
	fut_loop_run_until(p.loop, r);
	ck_assert(fut_value(r) & POLLIN);
	fut_unref(w);
	fut_unref(r);
	/* fut_close ends what is pending on the fd with -ECANCELED. */
	char b[4];
	fut *pending = fut_recv(p.loop, p.fd[0], b, 4, 0);
	fut *c = fut_close(p.loop, p.fd[0]);
	fut_loop_run_until(p.loop, c);
	fut_loop_run_until(p.loop, pending);
	ck_assert_int_eq(fut_error(pending), -ECANCELED);
	fut_unref(pending);
	fut_unref(c);
	fut_unref(fut_close(p.loop, p.fd[1]));
	ck_assert_int_eq(fut_loop_run(p.loop), 0);
	ck_assert_int_eq(fut_loop_free(p.loop), 0);
}
END_TEST

struct poster {
	fut_loop *loop;
	long n;
	long *count;
};

static void bump(void *arg)
{
	(*(long *)arg)++;
}

static void *post_many(void *arg)
{
	struct poster *p = arg;
	for (long i = 0; i < p->n; i++)
		ck_assert_int_eq(fut_loop_post(p->loop, bump, p->count), 0);
	return NULL;
}

static void stopper(void *arg)
{
	fut_loop_stop(arg);
}

static fut_loop *alarm_loop;
static volatile int alarm_errno;

static void stop_on_alarm(int sig)
{
	(void)sig;
	int saved = errno;
	errno = 1234;
	fut_loop_stop(alarm_loop);
	alarm_errno = errno;
	errno = saved;
}

START_TEST(post_stop_and_run_rules)
{
	fut_loop *loop = new_loop();
	long count = 0;
	struct poster p = { loop, 200000, &count };
	pthread_t th;
	fut *never = fut_new(loop);
	pthread_create(&th, NULL, post_many, &p);
	pthread_join(th, NULL);
	ck_assert_int_eq(fut_loop_run(loop), 0);
	ck_assert_int_eq(count, 200000); /* none lost, none coalesced */
	/* stop from another thread's post interrupts run_until. */
	ck_assert_int_eq(fut_loop_post(loop, stopper, loop), 0);
	ck_assert_int_eq(fut_loop_run_until(loop, never), FUT_ESTOPPED);
	ck_assert_int_eq(fut_loop_stop(loop), 0);
	ck_assert_int_eq(fut_loop_run(loop), FUT_ESTOPPED);
	/* From a signal handler (SIGALRM in 20 ms) while the run waits:
	 * async-signal-safe, errno untouched. */
	struct sigaction sa = { .sa_handler = stop_on_alarm }, old;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGALRM, &sa, &old), 0);
	alarm_loop = loop;
	struct itimerval it = { .it_value = { .tv_usec = 20000 } };
	ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
	ck_assert_int_eq(fut_loop_run_until(loop, never), FUT_ESTOPPED);
	ck_assert_int_eq(alarm_errno, 1234);
	sigaction(SIGALRM, &old, NULL);
	fut *other_loop_f = fut_new(loop);
	fut_loop *l2 = new_loop();
	ck_assert_int_eq(fut_loop_run_until(l2, other_loop_f), -EINVAL);
	ck_assert_int_eq(fut_loop_free(l2), 0);
	fut_unref(other_loop_f);
	ck_assert_int_eq(fut_loop_post(NULL, bump, &count), -EINVAL);
	ck_assert_int_eq(fut_loop_post(loop, NULL, &count), -EINVAL);
	ck_assert_int_eq(fut_loop_run(NULL), -EINVAL);
	ck_assert_int_eq(fut_loop_run_until(NULL, never), -EINVAL);
	ck_assert_int_eq(fut_loop_stop(NULL), -EINVAL);
	ck_assert_int_eq(fut_loop_free(NULL), -EINVAL);
	ck_assert_uint_eq(fut_loop_now(NULL), 0);
	fut_unref(never);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

struct seq {
	fut_loop *loop;
	int *log, *n, v;
};

static void log_post(void *arg)
{
	struct seq *s = arg;
	s->log[(*s->n)++] = s->v;
}

static void *post_seq(void *arg)
{
	struct seq *s = arg;
	ck_assert_int_eq(fut_loop_post(s->loop, log_post, s), 0);
	return NULL;
}

/* fut_loop_post(3) promises only each thread's own order, but queues are
 * drained oldest first, so a thread that posts after another one posted
 * and was joined does not overtake it (newest first, it did). */
START_TEST(post_drain_oldest_queue_first)
{
	fut_loop *loop = new_loop();
	int log[3] = { 0 }, n = 0;
	struct seq s[3];
	for (int i = 0; i < 3; i++) {
		pthread_t th;
		s[i] = (struct seq){ loop, log, &n, i + 1 };
		pthread_create(&th, NULL, post_seq, &s[i]);
		pthread_join(th, NULL);
	}
	ck_assert_int_eq(fut_loop_run(loop), 0);
	ck_assert_int_eq(n, 3);
	ck_assert_msg(log[0] == 1 && log[1] == 2 && log[2] == 3,
		      "ran %d %d %d", log[0], log[1], log[2]);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

struct spawner {
	fut_loop *loop;
	long *count;
	fut *done;
};

static void *post_once(void *arg)
{
	struct spawner *sp = arg;
	ck_assert_int_eq(fut_loop_post(sp->loop, bump, sp->count), 0);
	return NULL;
}

/* Short-lived threads, one at a time, each posting once. */
static void *spawn_posters(void *arg)
{
	struct spawner *sp = arg;
	for (int i = 0; i < 2000; i++) {
		pthread_t th;
		ck_assert_int_eq(pthread_create(&th, NULL, post_once, sp), 0);
		pthread_join(th, NULL);
	}
	fut_resolve(sp->done, 0);
	return NULL;
}

/* A thread that posted and exited leaves no queue behind: each used to
 * keep 16 KiB and a place in every tick's scan, for the loop's life. */
START_TEST(exited_posters_leave_nothing)
{
	fut_loop *loop = new_loop();
	long count = 0;
	struct spawner sp = { loop, &count, fut_new(loop) };
	pthread_t th;
	pthread_create(&th, NULL, post_once, &sp); /* warm the allocator */
	pthread_join(th, NULL);
	ck_assert_int_eq(fut_loop_run(loop), 0);
	size_t base = heap_in_use();
	/* The loop runs while they come and go. */
	pthread_create(&th, NULL, spawn_posters, &sp);
	wait_for(loop, sp.done);
	pthread_join(th, NULL);
	ck_assert_int_eq(fut_loop_run(loop), 0);
	ck_assert_int_eq(count, 2001); /* none lost */
	size_t now = heap_in_use();
	ck_assert_msg(now < base + (2u << 20),
		      "2000 exited threads left %zu KiB", (now - base) >> 10);
	fut_unref(sp.done);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

struct outliver {
	fut_loop *loop;
	long *count;
	pthread_barrier_t *bar;
};

static void *post_around_free(void *arg)
{
	struct outliver *o = arg;
	ck_assert_int_eq(fut_loop_post(o->loop, bump, o->count), 0);
	pthread_barrier_wait(o->bar); /* posted */
	pthread_barrier_wait(o->bar); /* that loop is freed, a new one made */
	ck_assert_int_eq(fut_loop_post(o->loop, bump, o->count), 0);
	pthread_barrier_wait(o->bar); /* posted */
	pthread_barrier_wait(o->bar); /* that one is freed too */
	return NULL; /* and its queues go at exit (ASan: no use after free) */
}

/* A posting thread outlives the loops it posted to. */
START_TEST(poster_outlives_loop)
{
	long count = 0;
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, 2);
	struct outliver o = { new_loop(), &count, &bar };
	pthread_t th;
	pthread_create(&th, NULL, post_around_free, &o);
	pthread_barrier_wait(&bar);
	ck_assert_int_eq(fut_loop_free(o.loop), 0);
	ck_assert_int_eq(count, 1); /* run by the free */
	o.loop = new_loop(); /* perhaps at the same address */
	pthread_barrier_wait(&bar);
	pthread_barrier_wait(&bar);
	ck_assert_int_eq(fut_loop_run(o.loop), 0);
	ck_assert_int_eq(count, 2);
	ck_assert_int_eq(fut_loop_free(o.loop), 0);
	pthread_barrier_wait(&bar);
	pthread_join(th, NULL);
	pthread_barrier_destroy(&bar);
}
END_TEST

static void *resolve_it(void *arg)
{
	fut_resolve(arg, 7);
	return NULL;
}

/* A thread's resolve published the state, then made its first post (the
 * handoff), registering its queue with the loop: a loop that saw the
 * state returned from run_until and was freed under it (ASan: use after
 * free in register_queue; TSan: a race). A new thread each round, so
 * each resolve is its thread's first. */
START_TEST(resolve_from_thread_then_free)
{
	for (int i = 0; i < 300; i++) {
		fut_loop *loop = new_loop();
		fut *f = fut_new(loop);
		pthread_t th;
		pthread_create(&th, NULL, resolve_it, f);
		ck_assert_int_eq(fut_loop_run_until(loop, f), 0);
		ck_assert_int_eq(fut_value(f), 7);
		fut_unref(f);
		ck_assert_int_eq(fut_loop_free(loop), 0);
		pthread_join(th, NULL);
	}
}
END_TEST

static void free_inside(fut *f, void *arg)
{
	*(int *)arg = fut_loop_free(fut_loop_of(f));
}

START_TEST(free_inside_callback_is_refused)
{
	fut_loop *loop = new_loop();
	int r = 0;
	fut_on_done(fut_resolved(loop, 0), free_inside, &r);
	ck_assert_int_eq(fut_loop_run(loop), 0);
	ck_assert_int_eq(r, -EBUSY);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

static int dtor_calls;

static void count_dtor(void *p)
{
	(void)p;
	dtor_calls++;
}

static fut *keep_value(fut *f, void *arg)
{
	(void)f;
	(void)arg;
	return NULL; /* g takes f's value */
}

/* A pointer value taken over by a wrapper (fut_timeout, fut_then) is
 * shared: fut_ptr of the source stays valid after the wrapper is gone,
 * and the destructor runs once, when the last of them goes. */
START_TEST(pointer_value_shared_with_wrappers)
{
	fut_loop *loop = new_loop();
	static int value = 42;
	for (int k = 0; k < 2; k++) {
		dtor_calls = 0;
		fut *f = fut_new(loop);
		fut *g = k ? fut_then(fut_ref(f), keep_value, NULL) :
			     fut_timeout(fut_ref(f), 10000);
		ck_assert_int_eq(fut_resolve_ptr(f, &value, count_dtor), 0);
		ck_assert_int_eq(fut_loop_run_until(loop, g), 0);
		ck_assert_ptr_eq(fut_ptr(g), &value);
		fut_unref(g);
		fut *t = fut_sleep(loop, 1); /* let deferred releases run */
		fut_loop_run_until(loop, t);
		fut_unref(t);
		ck_assert_int_eq(dtor_calls, 0);
		ck_assert_ptr_eq(fut_ptr(f), &value);
		fut_unref(f);
		ck_assert_int_eq(dtor_calls, 1);
	}
	/* A wrapper the caller still holds at fut_loop_free is one future
	 * held, not two: its source is kept by the wrapper, not the caller. */
	dtor_calls = 0;
	fut *f = fut_new(loop);
	fut *g = fut_then(fut_ref(f), keep_value, NULL);
	fut *h = fut_timeout(fut_ref(g), 10000);
	ck_assert_int_eq(fut_resolve_ptr(f, &value, count_dtor), 0);
	ck_assert_int_eq(fut_loop_run_until(loop, h), 0);
	fut_unref(f);
	fut_unref(g);
	/* ... and a group's children, like a timeout's source and timer,
	 * are the group's. */
	fut *kids[2] = { fut_resolved(loop, 1), fut_new(loop) };
	fut *all = fut_all(loop, kids, 2, FUT_ALL_SETTLED);
	ck_assert_ptr_nonnull(all);
	ck_assert_int_eq(dtor_calls, 0);
	ck_assert_int_eq(fut_loop_free(loop), 2); /* h and all */
	ck_assert_int_eq(dtor_calls, 1);
}
END_TEST

/* fut_loop_run with only background work left returns at once, in ms. */
static uint64_t run_ms(fut_loop *loop)
{
	uint64_t t0 = fut_loop_now(loop);
	ck_assert_int_eq(fut_loop_run(loop), 0);
	return fut_loop_now(loop) - t0;
}

static int cleaned_up;

/* Waits for good; cancelled, it cleans up (an await of its own). */
static int64_t waits_then_cleans_up(void *arg)
{
	fut_loop *loop = arg;
	int e = fut_await(fut_sleep(loop, 100000), NULL);
	ck_assert_int_eq(fut_coro_sleep(30), 0);
	cleaned_up = 1;
	return e;
}

static fut *long_sleep(fut *f, void *arg)
{
	(void)f;
	return fut_sleep(arg, 100000);
}

/*
 * fut_background: the work behind a future goes on, but fut_loop_run does
 * not wait for it (as uv_unref). Through fut_then (the next future too),
 * fut_all and fut_timeout; the future still ends as usual, and
 * fut_loop_free cancels it.
 */
START_TEST(background_work_does_not_keep_run)
{
	fut_loop *loop = new_loop();
	ck_assert_int_eq(fut_background(NULL), -EINVAL);
	fut *done = fut_resolved(loop, 1);
	ck_assert_int_eq(fut_background(done), 0);
	fut_unref(done);
	/* A sleep: the run returns, the sleep still fires. */
	fut *s = fut_sleep(loop, 60);
	ck_assert_int_eq(fut_background(s), 0);
	ck_assert_int_eq(fut_background(s), 0); /* twice is once */
	ck_assert_uint_lt(run_ms(loop), 40);
	ck_assert_int_eq(fut_state(s), FUT_PENDING);
	ck_assert_int_eq(fut_loop_run_until(loop, s), 0);
	ck_assert_int_eq(fut_state(s), FUT_RESOLVED);
	fut_unref(s);
	/* Foreground work still holds the run, background or not. */
	fut *bg = fut_sleep(loop, 100000), *fg = fut_sleep(loop, 30);
	fut_background(bg);
	uint64_t took = run_ms(loop);
	ck_assert_uint_ge(took, 30);
	ck_assert_uint_lt(took, 1000);
	ck_assert_int_eq(fut_state(fg), FUT_RESOLVED);
	fut_unref(fg);
	/* An I/O operation, inside a timeout. */
	int sv[2];
	char b[4];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fut *r = fut_timeout(fut_recv(loop, sv[0], b, sizeof(b), 0), 100000);
	fut_background(r);
	ck_assert_uint_lt(run_ms(loop), 40);
	ck_assert_int_eq(send(sv[1], "ab", 2, 0), 2);
	ck_assert_int_eq(fut_loop_run_until(loop, r), 0);
	ck_assert_int_eq(fut_value(r), 2);
	fut_unref(r);
	/* Cancelled, it counts again until it has ended (io_uring ends it
	 * later, and the op may use its buffer until then). */
	r = fut_recv(loop, sv[0], b, sizeof(b), 0);
	fut_background(r);
	ck_assert_int_eq(fut_cancel(r), 0);
	run_ms(loop);
	ck_assert_int_ne(fut_state(r), FUT_PENDING);
	fut_unref(r);
	/* ... and marking it after the cancel changes nothing. */
	r = fut_recv(loop, sv[0], b, sizeof(b), 0);
	ck_assert_int_eq(fut_cancel(r), 0);
	fut_background(r);
	run_ms(loop);
	ck_assert_int_ne(fut_state(r), FUT_PENDING);
	fut_unref(r);
	/* A cancelled background coroutine's clean-up holds the run. */
	fut *co = fut_spawn(loop, waits_then_cleans_up, loop);
	fut_background(co);
	ck_assert_uint_lt(run_ms(loop), 40);
	ck_assert_int_eq(cleaned_up, 0);
	ck_assert_int_eq(fut_cancel(co), 0);
	run_ms(loop);
	ck_assert_int_eq(cleaned_up, 1);
	ck_assert_int_ne(fut_state(co), FUT_PENDING);
	fut_unref(co);
	/* fut_then: what fn returns later is background too. */
	fut *t = fut_then(fut_sleep(loop, 20), long_sleep, loop);
	fut_background(t);
	fg = fut_sleep(loop, 40);
	run_ms(loop);
	fut_unref(fg);
	ck_assert_int_eq(fut_state(t), FUT_PENDING);
	ck_assert_uint_lt(run_ms(loop), 40);
	/* fut_all of two. */
	fut *kids[] = { fut_sleep(loop, 100000),
			fut_recv(loop, sv[0], b, sizeof(b), 0) };
	fut *a = fut_all(loop, kids, 2, FUT_ALL_SETTLED);
	fut_background(a);
	ck_assert_uint_lt(run_ms(loop), 40);
	ck_assert_int_eq(fut_state(a), FUT_PENDING);
	/* Freeing the loop ends them all, and every reference goes. */
	long hits = 0;
	fut_on_done(t, count_cb, &hits);
	fut_on_done(a, count_cb, &hits);
	fut_unref(bg);
	ck_assert_int_eq(fut_loop_free(loop), 0);
	ck_assert_int_eq(hits, 2);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(error_names)
{
	ck_assert_str_eq(fut_errname(-ECANCELED), "ECANCELED");
	ck_assert_str_eq(fut_errname(ETIMEDOUT), "ETIMEDOUT");
	ck_assert_str_eq(fut_strerror(-ECONNREFUSED), strerror(ECONNREFUSED));
	int codes[] = { FUT_EBACKEND, FUT_ENOTCORO, FUT_ESTOPPED,
			FUT_EWRONGTHREAD, FUT_ENOTCOMPILED, FUT_ESYSCTL,
			FUT_HTTP_EBADREQ, FUT_HTTP_ETIMEOUT_REQUEST,
			FUT_HTTP_ERESOLVE, FUT_HTTP_ERESOLVE_AGAIN,
			FUT_HTTP_ESCHEME, FUT_HTTP_ECLOSED };
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		ck_assert_ptr_nonnull(fut_strerror(codes[i]));
		ck_assert(strncmp(fut_errname(codes[i]), "FUT_", 4) == 0);
		ck_assert(strncmp(fut_strerror(codes[i]), "Unknown", 7) != 0);
	}
	ck_assert_str_eq(fut_strerror(-99999), "Unknown error -99999");
	ck_assert_str_eq(fut_errname(-99999), "UNKNOWN");
	/* no overflow negating it (UBSan) */
	ck_assert_str_eq(fut_strerror(INT_MIN), "Unknown error -2147483648");
	ck_assert_str_eq(fut_errname(INT_MIN), "UNKNOWN");
}
END_TEST

Suite *core_suite(void)
{
	Suite *s = suite_create("core");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, callbacks_fifo_and_never_inline);
	tcase_add_test(tc, values_errors_and_refs);
	tcase_add_test(tc, cancel_before_and_after);
	tcase_add_test(tc, then_chains_and_flattens);
	tcase_add_test(tc, all_any_timeout_mixed);
	tcase_add_test(tc, timers_fire_in_deadline_order);
	tcase_add_test(tc, periodic_timer);
	tcase_add_test(tc, periodic_timer_first_run_after_creation);
	tcase_add_test(tc, periodic_timer_skips_missed_runs);
	tcase_add_test(tc, timer_frees_another_due_now);
	tcase_add_test(tc, socketpair_ping_pong);
	tcase_add_test(tc, post_stop_and_run_rules);
	tcase_add_test(tc, post_drain_oldest_queue_first);
	tcase_add_test(tc, exited_posters_leave_nothing);
	tcase_add_test(tc, poster_outlives_loop);
	tcase_add_test(tc, resolve_from_thread_then_free);
	tcase_add_test(tc, free_inside_callback_is_refused);
	tcase_add_test(tc, pointer_value_shared_with_wrappers);
	tcase_add_test(tc, background_work_does_not_keep_run);
	tcase_add_test(tc, error_names);
	suite_add_tcase(s, tc);
	return s;
}
