/*
 * Backend selection: the ordered registry and the only reads of
 * FUTURE_BACKEND and FUTURE_DEBUG (STYLE.md 8). Precedence: a name in the
 * options, then the environment, then auto, which takes the first backend
 * whose init() really succeeds. A backend named explicitly never falls back.
 */
#include "backend-internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	const char *name;
	const struct fut_backend *be; /* NULL: not compiled in */
	bool in_auto;
};

/* Preference order for auto. threads is never chosen automatically: it
 * exists for portability and testing, not speed. */
static const struct entry registry[] = {
#ifdef HAVE_LIBURING
	{ "io_uring", &fut__backend_io_uring, true },
#else
	{ "io_uring", NULL, true },
#endif
	{ "epoll", &fut__backend_epoll, true },
#ifdef FUT_HAVE_THREADS_BACKEND
	{ "threads", &fut__backend_threads, false },
#else
	{ "threads", NULL, false },
#endif
};

#define NREG (sizeof(registry) / sizeof(registry[0]))

/*
 * io_uring says EPERM both under a seccomp filter (Docker's default profile)
 * and when the kernel.io_uring_disabled sysctl (6.6+) forbids it; operators
 * fix the two differently, so tell them apart.
 */
static int explain(const struct fut_backend *be, int r)
{
	if (r != -EPERM || strcmp(be->name, "io_uring") != 0)
		return r;
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
	int v = 0;
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 0;
		fclose(f);
	}
	/* 2: disabled for everyone; 1: only for unprivileged processes
	 * outside the io_uring_group, which is who gets EPERM here. */
	return v > 0 ? FUT_ESYSCTL : r;
}

static int try_init(struct fut_loop *loop, const struct fut_backend *be)
{
	loop->be = be;
	int r = be->init(loop);
	if (r < 0) {
		loop->be = NULL;
		r = explain(be, r);
	}
	return r;
}

static void debug(const struct fut_loop *loop, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void debug(const struct fut_loop *loop, const char *fmt, ...)
{
	if (!loop->debug)
		return;
	va_list ap;
	va_start(ap, fmt);
	fputs("libfuture: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* The environment is read once per process (STYLE.md 14). */
static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static const char *env_backend;
static bool env_debug;

static void read_env(void)
{
	const char *s = secure_getenv("FUTURE_BACKEND");
	env_backend = s && *s ? strdup(s) : NULL;
	s = secure_getenv("FUTURE_DEBUG");
	env_debug = s && *s && strcmp(s, "0") != 0;
}

int fut__backend_select(struct fut_loop *loop, const struct fut_loop_opts *o)
{
	bool env = !(o->flags & FUT_LOOP_IGNORE_ENV);
	const char *name = o->backend;
	if (env) {
		pthread_once(&env_once, read_env);
		loop->debug = env_debug;
		if (!name)
			name = env_backend;
	}
	if (name && strcmp(name, "auto") != 0) {
		for (size_t i = 0; i < NREG; i++) {
			if (strcmp(name, registry[i].name) != 0)
				continue;
			if (!registry[i].be) {
				debug(loop, "backend %s not compiled in", name);
				return FUT_ENOTCOMPILED;
			}
			int r = try_init(loop, registry[i].be);
			debug(loop, "backend %s %s%s", name,
			      r < 0 ? "unavailable: " : "selected",
			      r < 0 ? fut_strerror(r) : "");
			return r;
		}
		debug(loop, "unknown backend \"%s\"", name);
		return FUT_EBACKEND;
	}
	int last = FUT_ENOTCOMPILED;
	for (size_t i = 0; i < NREG; i++) {
		if (!registry[i].in_auto)
			continue;
		if (!registry[i].be) {
			debug(loop, "auto: %s not compiled in", registry[i].name);
			if (!loop->fallback)
				loop->fallback = FUT_ENOTCOMPILED;
			continue;
		}
		int r = try_init(loop, registry[i].be);
		if (r == 0) {
			debug(loop, "auto: selected %s", registry[i].name);
			return 0;
		}
		if (!loop->fallback)
			loop->fallback = r;
		debug(loop, "auto: %s unavailable: %s", registry[i].name,
		      fut_strerror(r));
		last = r;
	}
	return last;
}
