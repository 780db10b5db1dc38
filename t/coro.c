/*
 * Coroutines: await values and errors, no switch for ended futures,
 * fut_await_all, yield interleaving, cancellation, teardown with suspended
 * coroutines, cross-thread resumption, stack overflow report and the
 * slow-callback detector.
 */
#include <future.h>

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests.h"

static int64_t doubler(void *arg)
{
	int64_t v = 0;
	if (fut_await(fut_sleep(fut_coro_loop(), 2), &v) != 0)
		return -EIO;
	return (intptr_t)arg * 2;
}

static int64_t parent(void *arg)
{
	fut_loop *loop = fut_coro_loop();
	int64_t v = 0;
	ck_assert_int_eq(fut_await(fut_spawn(loop, doubler, (void *)21), &v), 0);
	ck_assert_int_eq(v, 42);
	ck_assert_int_eq(fut_await(fut_rejected(loop, -EIO), &v), -EIO);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(fut_await(NULL, &v), -EINVAL);
	fut *fs[3] = { fut_sleep(loop, 3), fut_resolved(loop, 9),
		       fut_sleep(loop, 1) };
	fut *all = NULL;
	ck_assert_int_eq(fut_await_all(fs, 3, FUT_ALL_FAIL_FAST, &all), 0);
	ck_assert_ptr_nonnull(all);
	ck_assert_int_eq(fut_value(fut_at(all, 1)), 9);
	fut_unref(all);
	ck_assert_int_eq(fut_coro_sleep(1), 0);
	return 7;
}

START_TEST(await_values_and_errors)
{
	fut_loop *loop = new_loop();
	fut *p = fut_spawn(loop, parent, NULL);
	ck_assert_int_eq(fut_state(p), FUT_PENDING); /* not started inline */
	ck_assert_int_eq(fut_loop_run_until(loop, p), 0);
	ck_assert_int_eq(fut_value(p), 7);
	fut_unref(p);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

static int64_t returns_error(void *arg)
{
	return -EPIPE;
}

static long shared_counter;

static int64_t bump_forever(void *arg)
{
	for (;;) {
		shared_counter++;
		if (fut_yield() != 0)
			return 0;
		if (shared_counter > 1000)
			return 0;
	}
}

static int64_t no_switch_on_ended(void *arg)
{
	fut_loop *loop = fut_coro_loop();
	long before = shared_counter;
	for (int i = 0; i < 100; i++)
		fut_await(fut_resolved(loop, i), NULL);
	/* The other coroutine never ran in between. */
	return shared_counter == before ? 0 : -EIO;
}

START_TEST(ended_future_does_not_switch)
{
	fut_loop *loop = new_loop();
	shared_counter = 0;
	fut *a = fut_spawn(loop, bump_forever, NULL);
	fut *b = fut_spawn(loop, no_switch_on_ended, NULL);
	fut *e = fut_spawn(loop, returns_error, NULL);
	ck_assert_int_eq(fut_loop_run_until(loop, b), 0);
	ck_assert_int_eq(fut_error(b), 0);
	ck_assert_int_eq(fut_loop_run_until(loop, e), 0);
	ck_assert_int_eq(fut_error(e), -EPIPE);
	ck_assert_int_eq(fut_cancel(a), 0);
	ck_assert_int_eq(fut_loop_run_until(loop, a), 0);
	fut_unref(a);
	fut_unref(b);
	fut_unref(e);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

struct trace {
	char buf[32];
	int n;
};

static int64_t tracer(void *arg)
{
	struct trace *t = *(struct trace **)arg;
	char id = ((char *)arg)[sizeof(struct trace *)];
	for (int i = 0; i < 3; i++) {
		t->buf[t->n++] = id;
		fut_yield();
	}
	return 0;
}

START_TEST(yield_interleaves_exactly)
{
	fut_loop *loop = new_loop();
	struct trace t = { .n = 0 };
	struct {
		struct trace *t;
		char id;
	} a = { &t, 'a' }, b = { &t, 'b' };
	fut *fa = fut_spawn(loop, tracer, &a);
	fut *fb = fut_spawn(loop, tracer, &b);
	ck_assert_int_eq(fut_loop_run(loop), 0);
	t.buf[t.n] = 0;
	ck_assert_str_eq(t.buf, "ababab");
	fut_unref(fa);
	fut_unref(fb);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

static int64_t sleeps_long(void *arg)
{
	int *seen = arg;
	*seen = fut_coro_sleep(60000);
	return *seen == -ECANCELED ? 5 : 0;
}

START_TEST(cancel_resumes_with_ecanceled)
{
	fut_loop *loop = new_loop();
	int seen = 0;
	fut *c = fut_spawn(loop, sleeps_long, &seen);
	fut *t = fut_sleep(loop, 5);
	fut_loop_run_until(loop, t);
	fut_unref(t);
	ck_assert_int_eq(fut_cancel(c), 0);
	ck_assert_int_eq(fut_loop_run_until(loop, c), 0);
	ck_assert_int_eq(seen, -ECANCELED);
	ck_assert_int_eq(fut_value(c), 5); /* the coroutine chose its end */
	fut_unref(c);
	/* Cancelled before it started: fn never runs. */
	seen = 1;
	c = fut_spawn(loop, sleeps_long, &seen);
	ck_assert_int_eq(fut_cancel(c), 0);
	fut_loop_run_until(loop, c);
	ck_assert_int_eq(fut_error(c), -ECANCELED);
	ck_assert_int_eq(seen, 1);
	fut_unref(c);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* The recv a coroutine waits on completes before the cancel reaches it
 * (io_uring, threads: cancels are asynchronous): its fut_await still
 * returns -ECANCELED, the same on every backend. */
static int late_fd;

static int64_t awaits_recv(void *arg)
{
	int *seen = arg;
	char b[8];
	*seen = fut_await(fut_recv(fut_coro_loop(), late_fd, b, sizeof(b), 0),
			  NULL);
	return 7;
}

START_TEST(late_cancel_resumes_with_ecanceled)
{
	fut_loop *loop = new_loop();
	int sv[2], seen = 1;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	late_fd = sv[0];
	fut *c = fut_spawn(loop, awaits_recv, &seen);
	run_for(loop, 20);
	ck_assert_int_eq(write(sv[1], "x", 1), 1);
	usleep(50 * 1000);
	ck_assert_int_eq(fut_cancel(c), 0);
	wait_for(loop, c);
	ck_assert_int_eq(seen, -ECANCELED);
	ck_assert_int_eq(fut_value(c), 7);
	fut_unref(c);
	close(sv[0]);
	close(sv[1]);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* A coroutine that cancels its own future while it runs gets -ECANCELED
 * from its next fut_await at once: the awaited future is cancelled, as an
 * outside cancel would have done (it waited 60 s for the sleep, and for
 * good on an idle socket). The await after that one is a plain await. */
static fut *self_cancel_g;
static int self_cancel_err[3];

static int64_t cancels_itself(void *arg)
{
	fut_loop *loop = fut_coro_loop();
	int fd = *(int *)arg;
	char b[4];
	ck_assert_int_eq(fut_cancel(self_cancel_g), 0);
	self_cancel_err[0] = fut_await(fut_sleep(loop, 60000), NULL);
	ck_assert_int_eq(fut_cancel(self_cancel_g), 0);
	self_cancel_err[1] = fut_await(fut_recv(loop, fd, b, sizeof(b), 0),
				       NULL);
	self_cancel_err[2] = fut_await(fut_sleep(loop, 1), NULL);
	return 9;
}

START_TEST(self_cancel_ends_the_next_await)
{
	fut_loop *loop = new_loop();
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	self_cancel_g = fut_spawn(loop, cancels_itself, &sv[0]);
	fut *t = fut_timeout(fut_ref(self_cancel_g), 5000);
	uint64_t t0 = fut_loop_now(loop);
	ck_assert_int_eq(fut_loop_run_until(loop, t), 0);
	ck_assert_uint_lt(fut_loop_now(loop) - t0, 2000);
	ck_assert_int_eq(fut_error(t), 0);
	ck_assert_int_eq(fut_value(self_cancel_g), 9);
	ck_assert_int_eq(self_cancel_err[0], -ECANCELED);
	ck_assert_int_eq(self_cancel_err[1], -ECANCELED);
	ck_assert_int_eq(self_cancel_err[2], 0);
	fut_unref(t);
	fut_unref(self_cancel_g);
	close(sv[0]);
	close(sv[1]);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* An await that could never end (a coroutine awaiting its own future, or
 * one that awaits it back) fails with -EDEADLK instead of deadlocking;
 * cancelling such a cycle went round it until the stack overflowed. */
static fut *self_g, *pair_g[2];
static int pair_err[2];

static int64_t awaits_itself(void *arg)
{
	(void)arg;
	return fut_await(fut_ref(self_g), NULL);
}

static int64_t awaits_other(void *arg)
{
	int i = (int)(intptr_t)arg;
	fut_await(fut_sleep(fut_coro_loop(), (uint64_t)i * 5), NULL);
	pair_err[i] = fut_await(fut_ref(pair_g[!i]), NULL);
	return pair_err[i];
}

START_TEST(await_cycles_fail_with_edeadlk)
{
	fut_loop *loop = new_loop();
	self_g = fut_spawn(loop, awaits_itself, NULL);
	fut *t = fut_timeout(fut_ref(self_g), 1000);
	ck_assert_int_eq(fut_loop_run_until(loop, t), 0);
	ck_assert_int_eq(fut_error(t), -EDEADLK);
	fut_unref(t);
	fut_unref(self_g);
	/* 0 waits for 1; 1, later, would wait for 0: 1 is refused, ends,
	 * and so 0's await ends with 1's result. */
	pair_err[0] = pair_err[1] = 1;
	pair_g[0] = fut_spawn(loop, awaits_other, (void *)0);
	pair_g[1] = fut_spawn(loop, awaits_other, (void *)1);
	ck_assert_int_eq(fut_loop_run_until(loop, pair_g[0]), 0);
	ck_assert_int_eq(pair_err[1], -EDEADLK);
	ck_assert_int_eq(pair_err[0], -EDEADLK);
	fut_unref(pair_g[0]);
	fut_unref(pair_g[1]);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

static int64_t waits_forever(void *arg)
{
	(*(int *)arg)++;
	int err = fut_await(fut_new(fut_coro_loop()), NULL);
	return err == -ECANCELED ? 0 : -EIO;
}

START_TEST(free_with_suspended_coroutines)
{
	fut_loop *loop = new_loop();
	int started = 0;
	for (int i = 0; i < 1000; i++)
		fut_unref(fut_spawn(loop, waits_forever, &started));
	fut *t = fut_sleep(loop, 1);
	fut_loop_run_until(loop, t);
	fut_unref(t);
	ck_assert_int_eq(started, 1000);
	/* Stacks released, no future left: ASan/valgrind see no leak. */
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

struct xthread {
	fut *f;
	pthread_t loop_thread, resumed_on;
};

static void *resolve_later(void *arg)
{
	struct xthread *x = arg;
	usleep(2000);
	fut_resolve(x->f, 11);
	return NULL;
}

static int64_t awaits_remote(void *arg)
{
	struct xthread *x = arg;
	int64_t v = 0;
	int err = fut_await(x->f, &v);
	x->resumed_on = pthread_self();
	return err ? err : v;
}

START_TEST(cross_thread_resolve_resumes_on_loop)
{
	fut_loop *loop = new_loop();
	struct xthread x = { .f = fut_new(loop), .loop_thread = pthread_self() };
	fut *c = fut_spawn(loop, awaits_remote, &x);
	pthread_t th;
	pthread_create(&th, NULL, resolve_later, &x);
	ck_assert_int_eq(fut_loop_run_until(loop, c), 0);
	pthread_join(th, NULL);
	ck_assert_int_eq(fut_value(c), 11);
	ck_assert(pthread_equal(x.resumed_on, x.loop_thread));
	fut_unref(c);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

START_TEST(outside_a_coroutine)
{
	fut_loop *loop = new_loop();
	int64_t v = 1;
	ck_assert_int_eq(fut_await(fut_resolved(loop, 1), &v), FUT_ENOTCORO);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(fut_yield(), FUT_ENOTCORO);
	ck_assert_int_eq(fut_coro_sleep(1), FUT_ENOTCORO);
	ck_assert_ptr_null(fut_coro_loop());
	fut *fs[1] = { fut_resolved(loop, 1) };
	fut *all = (fut *)1;
	ck_assert_int_eq(fut_await_all(fs, 1, 0, &all), FUT_ENOTCORO);
	ck_assert_ptr_null(all);
	ck_assert_ptr_null(fut_spawn(NULL, doubler, NULL));
	fut *f = fut_spawn(loop, NULL, NULL);
	ck_assert_int_eq(fut_error(f), -EINVAL);
	fut_unref(f);
	struct fut_spawn_opts small = { .stack_size = 1024 };
	f = fut_spawn_opts(loop, doubler, NULL, &small);
	ck_assert_int_eq(fut_error(f), -EINVAL);
	fut_unref(f);
	struct fut_spawn_opts bad = { .reserved = { 1 } };
	f = fut_spawn_opts(loop, doubler, NULL, &bad);
	ck_assert_int_eq(fut_error(f), -EINVAL);
	fut_unref(f);
	struct fut_spawn_opts big = { .stack_size = 1u << 20 };
	f = fut_spawn_opts(loop, doubler, (void *)2, &big);
	fut_loop_run_until(loop, f);
	ck_assert_int_eq(fut_value(f), 4);
	fut_unref(f);
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

/* Run fn in a child with stderr captured; returns the wait status. */
static int child_stderr(void (*fn)(void), char *out, size_t cap)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 2);
		close(p[0]);
		fn();
		_exit(0);
	}
	close(p[1]);
	size_t n = 0;
	ssize_t r;
	while (n + 1 < cap && (r = read(p[0], out + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = 0;
	close(p[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	return st;
}

/* Recurses until the stack runs out (the depth check hides that from
 * the compiler's infinite-recursion warning). */
static int64_t recurse(void *arg)
{
	volatile char pad[512];
	intptr_t depth = (intptr_t)arg;
	pad[0] = (char)depth;
	if (depth > ((intptr_t)1 << 40))
		return 0;
	return recurse((void *)(depth + 1)) + pad[0];
}

static void overflow_child(void)
{
	fut_loop *loop = fut_loop_new(NULL, NULL);
	struct fut_spawn_opts o = { .stack_size = 64 * 1024 };
	fut_unref(fut_spawn_opts(loop, recurse, NULL, &o));
	fut_loop_run(loop);
}

START_TEST(stack_overflow_is_reported)
{
	char out[1024];
	int st = child_stderr(overflow_child, out, sizeof(out));
	ck_assert(WIFSIGNALED(st));
	ck_assert_int_eq(WTERMSIG(st), SIGSEGV);
	ck_assert_msg(strstr(out, "coroutine stack overflow"), "stderr: %s", out);
}
END_TEST

static void slow_cb(fut *f, void *arg)
{
	struct timespec ts = { 0, 30 * 1000000 };
	nanosleep(&ts, NULL);
}

static int64_t slow_step(void *arg)
{
	struct timespec ts = { 0, 30 * 1000000 };
	nanosleep(&ts, NULL);
	return 0;
}

static void quick_cb(fut *f, void *arg)
{
}

/* Runs in a fresh process started with FUTURE_SLOW_MS=10. */
int coro_child(const char *name)
{
	if (strcmp(name, "slow") != 0)
		return 125;
	fut_loop *loop = fut_loop_new(NULL, NULL);
	if (!loop)
		return 1;
	fut_on_done(fut_resolved(loop, 0), slow_cb, NULL);
	fut_on_done(fut_resolved(loop, 0), quick_cb, NULL);
	fut_unref(fut_spawn(loop, slow_step, NULL));
	fut_loop_run(loop);
	return fut_loop_free(loop) == 0 ? 0 : 2;
}

static int64_t nothing(void *arg)
{
	(void)arg;
	return 0;
}

static void *loop_thread(void *arg)
{
	fut_loop *loop = new_loop();
	if (arg) { /* with a coroutine */
		fut *g = fut_spawn(loop, nothing, NULL);
		ck_assert_ptr_nonnull(g);
		wait_for(loop, g);
		fut_unref(g);
	}
	ck_assert_int_eq(fut_loop_free(loop), 0);
	return NULL;
}

static long vm_size_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmSize:", 7))
			kib = atol(line + 7);
	if (f)
		fclose(f);
	return kib;
}

/* 200 threads one after another, each with a loop (and a coroutine):
 * how much address space they left behind. */
static long left_by_threads(int with_coroutine)
{
	pthread_t th;
	void *arg = with_coroutine ? &th : NULL;
	pthread_create(&th, NULL, loop_thread, arg);
	pthread_join(th, NULL);
	long base = vm_size_kib();
	ck_assert_int_gt(base, 0);
	for (int i = 0; i < 200; i++) {
		pthread_create(&th, NULL, loop_thread, arg);
		pthread_join(th, NULL);
	}
	return vm_size_kib() - base;
}

/* The signal stack for the overflow message (64 KiB, one per thread that
 * spawns) outlived its thread: 200 threads that each ran a coroutine and
 * exited left 12.5 MiB of mappings behind. Against the same threads with
 * no coroutine, as a sanitizer keeps some per thread of its own. */
START_TEST(threads_leave_no_signal_stack)
{
	long plain = left_by_threads(0);
	long coro = left_by_threads(1);
	ck_assert_msg(coro - plain < 4096, "200 threads left %ld KiB, "
		      "without coroutines %ld", coro, plain);
}
END_TEST

START_TEST(slow_callbacks_are_named)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	const char *exe = self_exe();
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 2);
		close(p[0]);
		setenv("FUTURE_SLOW_MS", "10", 1);
		execl(exe, "unit", "--child", "slow", (char *)NULL);
		_exit(126);
	}
	close(p[1]);
	char out[4096];
	size_t n = 0;
	ssize_t r;
	while (n + 1 < sizeof(out) &&
	       (r = read(p[0], out + n, sizeof(out) - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = 0;
	close(p[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_msg(strstr(out, "libfuture: slow callback"), "stderr: %s", out);
	ck_assert_msg(strstr(out, "libfuture: slow coroutine"), "stderr: %s", out);
	ck_assert_msg(strstr(out, "FUTURE_SLOW_MS=10"), "stderr: %s", out);
	/* One line each: the quick callback is not reported. */
	int lines = 0;
	for (char *q = out; (q = strstr(q, "libfuture: slow")); q++)
		lines++;
	ck_assert_int_eq(lines, 2);
}
END_TEST

Suite *coro_suite(void)
{
	Suite *s = suite_create("coro");
	TCase *tc = tcase_create("coro");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, await_values_and_errors);
	tcase_add_test(tc, ended_future_does_not_switch);
	tcase_add_test(tc, yield_interleaves_exactly);
	tcase_add_test(tc, cancel_resumes_with_ecanceled);
	tcase_add_test(tc, late_cancel_resumes_with_ecanceled);
	tcase_add_test(tc, self_cancel_ends_the_next_await);
	tcase_add_test(tc, await_cycles_fail_with_edeadlk);
	tcase_add_test(tc, free_with_suspended_coroutines);
	tcase_add_test(tc, cross_thread_resolve_resumes_on_loop);
	tcase_add_test(tc, outside_a_coroutine);
	tcase_add_test(tc, stack_overflow_is_reported);
	tcase_add_test(tc, slow_callbacks_are_named);
	suite_add_tcase(s, tc);
	/* valgrind keeps address space of its own per thread that switched
	 * stacks (30..100 KiB): the count means nothing there. */
	tc = tcase_create("threads");
	tcase_set_tags(tc, "no-valgrind");
	tcase_add_test(tc, threads_leave_no_signal_stack);
	suite_add_tcase(s, tc);
	return s;
}
