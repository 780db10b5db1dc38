/* Helpers shared by the check suites. */
#include <future.h>

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <unistd.h>

#include "tests.h"

fut_loop *new_loop(void)
{
	int err = 0;
	fut_loop *loop = fut_loop_new(NULL, &err);
	ck_assert_msg(loop, "fut_loop_new: %s", fut_strerror(err));
	return loop;
}

/* Run until f ends, failing the test (not hanging) after 15 s. */
void wait_for(fut_loop *loop, fut *f)
{
	fut *guard = fut_timeout(fut_ref(f), 15000);
	ck_assert_int_eq(fut_loop_run_until(loop, guard), 0);
	/* The guard cancels what it guards: that pair means a hang. */
	ck_assert_msg(!(fut_error(guard) == -ETIMEDOUT &&
			fut_error(f) == -ECANCELED), "no result in 15 s");
	fut_unref(guard);
}

void fds_exhaust(struct fds_taken *fds)
{
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &fds->old), 0);
	struct rlimit low = fds->old;
	if (low.rlim_cur > 1024)
		low.rlim_cur = 1024;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	int d;
	fds->n = 0;
	while (fds->n < 4096 && (d = dup(0)) >= 0)
		fds->pad[fds->n++] = d;
	ck_assert_int_eq(errno, EMFILE);
}

void fds_restore(struct fds_taken *fds)
{
	while (fds->n)
		close(fds->pad[--fds->n]);
	setrlimit(RLIMIT_NOFILE, &fds->old);
}

/* Run the loop for ms milliseconds. */
void run_for(fut_loop *loop, uint64_t ms)
{
	fut *s = fut_sleep(loop, ms);
	fut_loop_run_until(loop, s);
	fut_unref(s);
}

/* This test program's own path, for re-executing it in a fresh process.
 * Not "/proc/self/exe" itself: under valgrind that names valgrind's tool,
 * while readlink() of it gives the program valgrind runs. */
const char *self_exe(void)
{
	static char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	ck_assert_int_gt(n, 0);
	path[n] = '\0';
	return path;
}

void count_cb(fut *f, void *arg)
{
	(void)f;
	(*(long *)arg)++;
}

size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}
