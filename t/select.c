/*
 * Backend selection: names in options, FUTURE_BACKEND, auto and its
 * fallback when io_uring is refused by a seccomp filter, as Docker's
 * default profile does. Environment cases run in a forked child because
 * the library reads the environment once per process.
 */
#include <future.h>

#include <check.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests.h"

/* Run fn in a child; its exit status is the test's verdict (0 = pass). */
static int in_child(int (*fn)(void))
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(fn());
	int st = 0;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/*
 * Run a child case in a fresh process image with FUTURE_BACKEND=value:
 * the library reads its environment once per process, so a fork of this
 * test process would inherit what it already read.
 */
static int in_fresh_process(const char *name, const char *backend)
{
	const char *exe = self_exe();
	pid_t pid = fork();
	if (pid == 0) {
		setenv("FUTURE_BACKEND", backend, 1);
		execl(exe, "unit", "--child", name, (char *)NULL);
		_exit(126);
	}
	int st = 0;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static bool backend_works(const char *name)
{
	struct fut_loop_opts o = { .backend = name, .flags = FUT_LOOP_IGNORE_ENV };
	int err;
	fut_loop *loop = fut_loop_new(&o, &err);
	if (!loop)
		return false;
	return fut_loop_free(loop) == 0; /* also used outside a test */
}

START_TEST(named_backend_is_used)
{
	static const char *const names[] = { "epoll", "io_uring", "threads" };
	for (size_t i = 0; i < 3; i++) {
		struct fut_loop_opts o = { .backend = names[i] };
		int err = 1;
		fut_loop *loop = fut_loop_new(&o, &err);
		if (!loop) {
			/* Unavailable is an error with a reason, never a
			 * silent substitute. */
			ck_assert_int_lt(err, 0);
			ck_assert_ptr_nonnull(fut_strerror(err));
			continue;
		}
		ck_assert_int_eq(err, 0);
		ck_assert_str_eq(fut_loop_backend(loop), names[i]);
		ck_assert_int_eq(fut_loop_fallback_reason(loop), 0);
		ck_assert_int_eq(fut_loop_free(loop), 0);
	}
}
END_TEST

START_TEST(unknown_name_fails_cleanly)
{
	struct fut_loop_opts o = { .backend = "kqueue" };
	int err = 0;
	ck_assert_ptr_null(fut_loop_new(&o, &err));
	ck_assert_int_eq(err, FUT_EBACKEND);
	ck_assert_str_eq(fut_errname(err), "FUT_EBACKEND");
	o.backend = "";
	ck_assert_ptr_null(fut_loop_new(&o, &err));
	ck_assert_int_eq(err, FUT_EBACKEND);
}
END_TEST

START_TEST(invalid_options)
{
	struct fut_loop_opts o = { .reserved = { 0, 1 } };
	int err = 0;
	ck_assert_ptr_null(fut_loop_new(&o, &err));
	ck_assert_int_eq(err, -EINVAL);
	struct fut_loop_opts o2 = { .flags = 1u << 9 };
	ck_assert_ptr_null(fut_loop_new(&o2, &err));
	ck_assert_int_eq(err, -EINVAL);
	ck_assert_ptr_null(fut_loop_new(&o2, NULL)); /* err may be NULL */
	struct fut_loop_opts o3 = { .reserved32 = 1 };
	ck_assert_ptr_null(fut_loop_new(&o3, &err));
	ck_assert_int_eq(err, -EINVAL);
	struct fut_loop_opts o4 = { .workers = 65537 };
	ck_assert_ptr_null(fut_loop_new(&o4, &err));
	ck_assert_int_eq(err, -EINVAL);
	o4.workers = 65536;
	fut_loop *l = fut_loop_new(&o4, &err);
	ck_assert_msg(l, "workers 65536: %s", fut_strerror(err));
	ck_assert_int_eq(fut_loop_free(l), 0);
	ck_assert_int_eq(fut_loop_fallback_reason(NULL), -EINVAL);
	ck_assert_ptr_null(fut_loop_backend(NULL));
}
END_TEST

static int env_switches_engine(void)
{
	int err;
	fut_loop *loop = fut_loop_new(NULL, &err);
	if (!loop || strcmp(fut_loop_backend(loop), "epoll") != 0)
		return 1;
	fut_loop_free(loop);
	/* Options win over the environment. */
	if (backend_works("threads")) {
		struct fut_loop_opts o = { .backend = "threads" };
		loop = fut_loop_new(&o, &err);
		if (!loop || strcmp(fut_loop_backend(loop), "threads") != 0)
			return 2;
		fut_loop_free(loop);
	}
	return 0;
}

START_TEST(env_variable_switches_engine)
{
	ck_assert_int_eq(in_fresh_process("env_switches_engine", "epoll"), 0);
}
END_TEST

static int env_unknown(void)
{
	int err = 0;
	if (fut_loop_new(NULL, &err) || err != FUT_EBACKEND)
		return 1;
	/* FUT_LOOP_IGNORE_ENV: the variable is not consulted at all. */
	struct fut_loop_opts o = { .flags = FUT_LOOP_IGNORE_ENV };
	fut_loop *loop = fut_loop_new(&o, &err);
	if (!loop)
		return 2;
	fut_loop_free(loop);
	return 0;
}

START_TEST(env_unknown_name_fails)
{
	ck_assert_int_eq(in_fresh_process("env_unknown", "bogus"), 0);
}
END_TEST

/* Make io_uring_setup fail with EPERM, as container seccomp profiles do. */
static int deny_io_uring(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(filter) / sizeof(filter[0]),
				   .filter = filter };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}

static int seccomp_fallback(void)
{
	if (deny_io_uring() < 0)
		return 10;
	struct fut_loop_opts o = { .backend = "auto", .flags = FUT_LOOP_IGNORE_ENV };
	int err;
	fut_loop *loop = fut_loop_new(&o, &err);
	if (!loop)
		return 1;
	if (strcmp(fut_loop_backend(loop), "epoll") != 0)
		return 2;
	int why = fut_loop_fallback_reason(loop);
	/* EPERM from the filter; FUT_ENOTCOMPILED in a build without
	 * liburing, where io_uring was never a candidate. */
	if (why != -EPERM && why != FUT_ENOTCOMPILED)
		return 3;
	/* The loop really works. */
	fut *s = fut_sleep(loop, 1);
	if (fut_loop_run_until(loop, s) != 0 || fut_state(s) != FUT_RESOLVED)
		return 4;
	fut_unref(s);
	if (fut_loop_free(loop) != 0)
		return 5;
	/* Named explicitly, io_uring is an error, never a silent epoll. */
	o.backend = "io_uring";
	if (fut_loop_new(&o, &err) || (err != -EPERM && err != FUT_ENOTCOMPILED))
		return 6;
	return 0;
}

START_TEST(auto_falls_back_under_seccomp)
{
	ck_assert_int_eq(in_child(seccomp_fallback), 0);
}
END_TEST

START_TEST(auto_prefers_io_uring_when_it_works)
{
	struct fut_loop_opts o = { .backend = "auto", .flags = FUT_LOOP_IGNORE_ENV };
	int err;
	fut_loop *loop = fut_loop_new(&o, &err);
	ck_assert_ptr_nonnull(loop);
	if (backend_works("io_uring")) {
		ck_assert_str_eq(fut_loop_backend(loop), "io_uring");
		ck_assert_int_eq(fut_loop_fallback_reason(loop), 0);
	} else {
		ck_assert_str_eq(fut_loop_backend(loop), "epoll");
		ck_assert_int_lt(fut_loop_fallback_reason(loop), 0);
	}
	ck_assert_int_eq(fut_loop_free(loop), 0);
}
END_TEST

int select_child(const char *name)
{
	if (strcmp(name, "env_switches_engine") == 0)
		return env_switches_engine();
	if (strcmp(name, "env_unknown") == 0)
		return env_unknown();
	return 125;
}

Suite *select_suite(void)
{
	Suite *s = suite_create("select");
	TCase *tc = tcase_create("select");
	tcase_add_test(tc, named_backend_is_used);
	tcase_add_test(tc, unknown_name_fails_cleanly);
	tcase_add_test(tc, invalid_options);
	tcase_add_test(tc, env_variable_switches_engine);
	tcase_add_test(tc, env_unknown_name_fails);
	tcase_add_test(tc, auto_falls_back_under_seccomp);
	tcase_add_test(tc, auto_prefers_io_uring_when_it_works);
	suite_add_tcase(s, tc);
	return s;
}
