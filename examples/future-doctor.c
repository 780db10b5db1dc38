/*
 * future-doctor: which libfuture backends work on this machine, and why the
 * others do not. Answers "why am I not on io_uring?" for operators.
 * Exit status: 0 if the default (auto) choice works, 1 otherwise.
 */
#include <future.h>

#include <stdio.h>
#include <stdlib.h>

static const char *const names[] = { "io_uring", "epoll", "threads" };

int main(void)
{
	int err;
	printf("%-10s %-12s %s\n", "backend", "status", "reason");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct fut_loop_opts o = { .backend = names[i],
					   .flags = FUT_LOOP_IGNORE_ENV };
		fut_loop *loop = fut_loop_new(&o, &err);
		if (loop) {
			printf("%-10s %-12s\n", names[i], "available");
			fut_loop_free(loop);
		} else {
			printf("%-10s %-12s %s (%s)\n", names[i], "unavailable",
			       fut_strerror(err), fut_errname(err));
		}
	}
	struct fut_loop_opts o = { .backend = "auto", .flags = FUT_LOOP_IGNORE_ENV };
	fut_loop *loop = fut_loop_new(&o, &err);
	if (!loop) {
		printf("auto: no backend works here: %s\n", fut_strerror(err));
		return 1;
	}
	int why = fut_loop_fallback_reason(loop);
	printf("auto picks: %s", fut_loop_backend(loop));
	if (why)
		printf(" (first choice io_uring refused: %s)", fut_strerror(why));
	printf("\n");
	const char *env = getenv("FUTURE_BACKEND");
	if (env && *env)
		printf("FUTURE_BACKEND=%s is set in this environment\n", env);
	fut_loop_free(loop);
	return 0;
}
