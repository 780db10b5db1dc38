/*
 * Command-line helpers shared by the examples: a test harness drives them
 * with exact command lines, so a bad value must be a usage error, never a
 * silently different port.
 */
#ifndef EXAMPLES_CLI_H
#define EXAMPLES_CLI_H

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The whole of s as a decimal number in [lo, hi]: 0, or -1. strtol alone
 * would take " 8080", "+8080" and "-0" too: only digits, and a sign when
 * the range has negatives. */
static inline int cli_num(const char *s, long lo, long hi, long *out)
{
	char *end;
	const char *d = lo < 0 && (*s == '-' || *s == '+') ? s + 1 : s;
	if (*d < '0' || *d > '9')
		return -1;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* -h or --help anywhere: the caller prints its usage to stdout, exit 0. */
static inline bool cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return true;
	return false;
}

/* A usage error: the message (which names the program and what was
 * wrong, as "httpd: --threads: 0 is not in 1..1024"), a newline, then the
 * usage, on stderr. Returns 2, the exit status of a usage error. */
static inline int cli_usage_error(const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline int cli_usage_error(const char *usage, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fputs(usage, stderr);
	return 2;
}

static inline long long cli_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * After the first signal of set (first, as sigwaitinfo gave it), wait up
 * to wait_ms (-1: for ever) for a second one, which asks to stop now.
 * Returns its number, or 0 when the time ran out. A copy of the first is
 * no second: timeout(1) forwards a signal to its child, then to its whole
 * process group, so one kill of timeout arrives twice, from one sender,
 * at once (a terminal's Ctrl-C comes from the kernel, never twice).
 */
static inline int cli_second_signal(const sigset_t *set,
				    const siginfo_t *first, long wait_ms)
{
	long long start = cli_now_ms();
	for (;;) {
		siginfo_t si;
		long long left = start + wait_ms - cli_now_ms();
		struct timespec ts = { (time_t)(left / 1000),
				       (long)(left % 1000) * 1000000 };
		if (wait_ms >= 0 && left <= 0)
			return 0;
		int sig = wait_ms < 0 ? sigwaitinfo(set, &si) :
					sigtimedwait(set, &si, &ts);
		if (sig < 0 && errno == EAGAIN)
			return 0;
		if (sig < 0)
			continue; /* EINTR */
		bool copy = si.si_code == SI_USER &&
			    first->si_code == SI_USER &&
			    si.si_pid == first->si_pid && sig == first->si_signo &&
			    cli_now_ms() - start < 1000;
		if (!copy)
			return sig;
	}
}

#endif
