// Coroutine switch cost, one direction, in one run: libfuture's assembly
// switch (src/switch-x86_64.S linked in directly), a full libfuture
// fut_yield round through the loop's ready queue, boost.context's
// jump_fcontext, and glibc swapcontext. Also the resident memory of
// 100,000 suspended libfuture coroutines.
//
//   make -C bench coro_switch && bench/coro_switch [N]
#include <boost/context/detail/fcontext.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <ucontext.h>
#include <sys/mman.h>

extern "C" {
#include <future.h>
void fut__ctx_switch(void **save_sp, void *load_sp);
}

namespace bc = boost::context::detail;

static double now()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static long N = 10000000;

/* --- raw libfuture switch: a context built like fut__ctx_switch leaves one */
static void *main_sp, *co_sp;
extern "C" void fut__ctx_entry(void);
static void raw_body(void *)
{
	for (;;)
		fut__ctx_switch(&co_sp, main_sp);
}

static double bench_raw()
{
	size_t sz = 64 * 1024;
	char *stk = (char *)malloc(sz);
	uintptr_t top = ((uintptr_t)(stk + sz)) & ~(uintptr_t)15;
	uint64_t *sp = (uint64_t *)(top - 104);
	memset(sp, 0, 104);
	uint16_t cw;
	uint32_t mx;
	__asm__ volatile("fnstcw %0" : "=m"(cw));
	__asm__ volatile("stmxcsr %0" : "=m"(mx));
	sp[0] = cw;
	sp[1] = mx;
	sp[4] = (uint64_t)(uintptr_t)raw_body; /* r13: entry */
	sp[5] = 0;                              /* r12: arg */
	sp[8] = (uint64_t)(uintptr_t)fut__ctx_entry;
	co_sp = sp;
	double t0 = now();
	for (long i = 0; i < N; i++)
		fut__ctx_switch(&main_sp, co_sp);
	double t = now() - t0;
	free(stk);
	return t * 1e9 / (2.0 * N); /* two switches per iteration */
}

/* --- boost.context */
static bc::fcontext_t boost_main;
static void boost_body(bc::transfer_t t)
{
	for (;;)
		t = bc::jump_fcontext(t.fctx, nullptr);
}

static double bench_boost()
{
	size_t sz = 64 * 1024;
	char *stk = (char *)malloc(sz);
	bc::fcontext_t c = bc::make_fcontext(stk + sz, sz, boost_body);
	double t0 = now();
	for (long i = 0; i < N; i++)
		c = bc::jump_fcontext(c, nullptr).fctx;
	double t = now() - t0;
	free(stk);
	(void)boost_main;
	return t * 1e9 / (2.0 * N);
}

/* --- swapcontext */
static ucontext_t uc_main, uc_co;
static void uc_body()
{
	for (;;)
		swapcontext(&uc_co, &uc_main);
}

static double bench_ucontext(long n)
{
	size_t sz = 64 * 1024;
	char *stk = (char *)malloc(sz);
	getcontext(&uc_co);
	uc_co.uc_stack.ss_sp = stk;
	uc_co.uc_stack.ss_size = sz;
	uc_co.uc_link = nullptr;
	makecontext(&uc_co, uc_body, 0);
	double t0 = now();
	for (long i = 0; i < n; i++)
		swapcontext(&uc_main, &uc_co);
	double t = now() - t0;
	free(stk);
	return t * 1e9 / (2.0 * n);
}

/* --- libfuture fut_yield ping-pong: two coroutines through the loop */
static long yields;
static int64_t yielder(void *)
{
	while (yields < N) {
		yields++;
		fut_yield();
	}
	return 0;
}

static double bench_yield()
{
	fut_loop *loop = fut_loop_new(nullptr, nullptr);
	yields = 0;
	fut *a = fut_spawn(loop, yielder, nullptr);
	fut *b = fut_spawn(loop, yielder, nullptr);
	double t0 = now();
	fut_loop_run(loop);
	double t = now() - t0;
	fut_unref(a);
	fut_unref(b);
	fut_loop_free(loop);
	return t * 1e9 / (double)N; /* per yield: a switch out and one in */
}

/* --- resident memory of 100,000 suspended coroutines */
static long rss_kb()
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = 0;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "VmRSS:", 6))
			sscanf(line + 6, "%ld", &v);
	fclose(f);
	return v;
}

static int64_t idle(void *)
{
	fut_await(fut_new(fut_coro_loop()), nullptr);
	return 0;
}

static double bench_rss()
{
	fut_loop *loop = fut_loop_new(nullptr, nullptr);
	long r0 = rss_kb();
	for (int i = 0; i < 100000; i++)
		fut_unref(fut_spawn(loop, idle, nullptr));
	fut *w = fut_sleep(loop, 1);
	fut_loop_run_until(loop, w);
	fut_unref(w);
	long r1 = rss_kb();
	fut_loop_free(loop);
	return (double)(r1 - r0) / 100000.0;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		N = atol(argv[1]);
	double raw = bench_raw(), boost = bench_boost();
	double uc = bench_ucontext(N / 20), y = bench_yield();
	double kib = bench_rss();
	printf("R coro switch libfuture-asm %.2f\n", raw);
	printf("R coro switch boost-fcontext %.2f\n", boost);
	printf("R coro switch swapcontext %.2f\n", uc);
	printf("R coro yield libfuture-loop %.2f\n", y);
	printf("R coro rss_kib_per_coroutine %.2f\n", kib);
	printf("asm vs boost: %.2fx  asm vs swapcontext: %.1fx faster\n",
	       boost / raw, uc / raw);
	return 0;
}
