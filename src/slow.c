/*
 * The slow-callback detector (FUTURE_SLOW_MS=N): any callback or coroutine
 * step that holds the loop for N ms or more prints one line to stderr with
 * the function's name, as asyncio's debug mode and Tornado's
 * set_blocking_log_threshold do. When the variable is unset the only cost
 * is one predicted branch per callback.
 */
#include "future-internal.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

unsigned fut__env_slow_ms(void)
{
	static _Atomic int cached = -1;
	int v = atomic_load_explicit(&cached, memory_order_relaxed);
	if (v >= 0)
		return (unsigned)v;
	const char *s = secure_getenv("FUTURE_SLOW_MS");
	long n = s && *s ? strtol(s, NULL, 10) : 0;
	v = n <= 0 ? 0 : n > 3600000 ? 3600000 : (int)n;
	atomic_store_explicit(&cached, v, memory_order_relaxed);
	return (unsigned)v;
}

uint64_t fut__slow_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void fut__slow_check(struct fut_loop *loop, uint64_t t0, void *fn,
		     const char *what)
{
	uint64_t ns = fut__slow_now() - t0;
	/* A coroutine resumed from a library callback names itself. */
	if (loop->slow_fn) {
		fn = loop->slow_fn;
		what = "coroutine";
		loop->slow_fn = NULL;
	}
	if (ns < (uint64_t)loop->slow_ms * 1000000u)
		return;
	Dl_info info;
	const char *name = NULL, *obj = "?";
	uintptr_t off = 0;
	if (dladdr(fn, &info)) {
		name = info.dli_sname;
		obj = info.dli_fname ? info.dli_fname : "?";
		off = (uintptr_t)fn - (uintptr_t)(name ? info.dli_saddr :
							 info.dli_fbase);
	}
	fprintf(stderr,
		"libfuture: slow %s %s%s(%s+0x%lx) held the loop for %.1f ms "
		"(FUTURE_SLOW_MS=%u)\n",
		what, name ? name : "", name ? " " : "", obj,
		(unsigned long)off, (double)ns / 1e6, loop->slow_ms);
}
