/*
 * Helpers shared by the benchmark programs (C and C++).
 *
 * Every program prints one line per measurement:
 *
 *     R <bench> <impl> <metric> <value>
 *
 * (value in ns per operation unless the metric name says otherwise) and
 * informational lines "I <bench> <key> <value>". bench/run.sh collects the
 * R lines of all repetitions and prints medians and ratios. Programs take
 * -r REPS (repetitions, default 5) and -n N (problem size).
 */
#ifndef BENCH_H
#define BENCH_H

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Plain sleep, used to let timer deadlines pass without running a loop. */
static inline void bench_sleep_ns(uint64_t ns)
{
	struct timespec ts;
	ts.tv_sec = (time_t)(ns / 1000000000u);
	ts.tv_nsec = (long)(ns % 1000000000u);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static inline void bench_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* Pin the calling thread to one CPU; a machine with fewer CPUs than asked
 * for is reported once and the thread stays unpinned. */
static inline void bench_pin_self(int cpu)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (cpu >= ncpu) {
		static int warned;
		if (!warned++)
			fprintf(stderr, "bench: only %ld cpus, not pinning\n", ncpu);
		return;
	}
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	int r = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (r != 0)
		bench_die("pthread_setaffinity_np(%d): %s", cpu, strerror(r));
}

static inline void bench_result(const char *bench, const char *impl,
				const char *metric, double value)
{
	printf("R %s %s %s %.3f\n", bench, impl, metric, value);
	fflush(stdout);
}

static inline void bench_info(const char *bench, const char *key,
			      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("I %s %s ", bench, key);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	va_end(ap);
}

struct bench_args {
	int reps;
	long n;
	const char *only; /* run just this implementation, or NULL */
};

static inline struct bench_args bench_parse(int argc, char **argv, long n_default)
{
	struct bench_args a;
	a.reps = 5;
	a.n = n_default;
	a.only = NULL;
	int c;
	while ((c = getopt(argc, argv, "r:n:o:h")) != -1) {
		switch (c) {
		case 'r':
			a.reps = atoi(optarg);
			break;
		case 'n':
			a.n = atol(optarg);
			break;
		case 'o':
			a.only = optarg;
			break;
		default:
			fprintf(stderr, "usage: %s [-r reps] [-n size] [-o impl]\n",
				argv[0]);
			exit(c == 'h' ? 0 : 2);
		}
	}
	if (a.reps < 1 || a.n < 1)
		bench_die("-r and -n must be positive");
	return a;
}

/* Whether implementation `impl` was selected with -o (default: all). */
static inline int bench_want(const struct bench_args *a, const char *impl)
{
	return !a->only || strcmp(a->only, impl) == 0;
}

/* The same for programs with several parts: -o accepts "impl", "part" or
 * "part:impl" (e.g. -o pingpong:libuv). */
static inline int bench_want_part(const struct bench_args *a, const char *part,
				  const char *impl)
{
	if (!a->only || strcmp(a->only, impl) == 0 ||
	    strcmp(a->only, part) == 0)
		return 1;
	size_t n = strlen(part);
	return strncmp(a->only, part, n) == 0 && a->only[n] == ':' &&
	       strcmp(a->only + n + 1, impl) == 0;
}

#endif /* BENCH_H */
