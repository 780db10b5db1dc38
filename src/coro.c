/*
 * Stackful coroutines: fut_spawn, fut_await, fut_await_all, fut_yield,
 * fut_coro_sleep.
 *
 * A coroutine runs on its own mmap'd stack and is always resumed from a
 * future's callback on the loop thread: fut_await registers a callback on
 * the awaited future and switches back to whoever resumed the coroutine;
 * the callback switches in again. So a coroutine step is just a long
 * callback, all loop rules hold (never inline in resolve, one thread), and
 * nested resumes need no scheduler of their own.
 *
 * Context switch: hand-written assembly on x86-64 (src/switch-x86_64.S:
 * callee-saved registers and the FPU control words, nothing else), and
 * ucontext elsewhere or when configured with --with-coro=ucontext.
 * swapcontext costs a sigprocmask system call per switch, hence the
 * assembly.
 *
 * Stacks: mmap'd with a guard page at the low end, pooled per loop. The
 * guard is installed with MADV_GUARD_INSTALL (Linux 6.13) where available,
 * which does not split the mapping: with mprotect each guarded stack costs
 * two VMAs, and vm.max_map_count (65530 by default) would cap a process at
 * ~32,000 coroutines. A fault in a guard page prints "coroutine stack
 * overflow" from a SIGSEGV handler running on an alternate signal stack.
 */
#include "future-internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef FUT_CORO_UCONTEXT
#include <ucontext.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define FUT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define FUT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FUT_TSAN 1
#endif
#endif

/* Sanitizers must be told about stack switches (their fiber APIs), or
 * they report false positives on the coroutine stacks. */
#ifdef FUT_ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save,
				    const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save,
				     const void **bottom_old, size_t *size_old);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#endif
#ifdef FUT_TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define DEFAULT_STACK (256u * 1024u)
#define MIN_STACK (16u * 1024u)
#define MAX_POOLED_STACKS 64

struct coro {
#ifdef FUT_CORO_UCONTEXT
	ucontext_t ctx, *caller;
#else
	void *sp;      /* saved stack pointer while suspended */
	void **caller; /* where the resumer's stack pointer was saved */
#endif
	struct fut_loop *loop;
	fut *result;   /* the future fut_spawn returned */
	fut *awaiting; /* borrowed: what the coroutine waits on */
	fut_coro_fn fn;
	void *arg;
	char *stack;   /* mapping base: the guard page is its first page */
	size_t size;   /* whole mapping, guard included */
	int64_t wake_val;
	int wake_err;
	bool done, cancelled, started;
	bool cancelling; /* inside coro_cancel */
	bool cancel_due; /* cancelled since it started: the fut_await under
			    way (or the next one) returns -ECANCELED */
#ifdef FUT_ASAN
	void *fake_stack;          /* the coroutine's, while switched out */
	const void *caller_bottom; /* the resumer's stack, for switching back */
	size_t caller_size;
#endif
#ifdef FUT_TSAN
	void *fiber, *caller_fiber;
#endif
};

struct stack_cache {
	struct stack_cache *next;
	size_t size;
};

static _Thread_local struct coro *current
	__attribute__((tls_model("initial-exec")));

/* Atomic: loops on several threads start their first coroutines at
 * once (each stores the same value, but a plain store races). */
static size_t page_size(void)
{
	static _Atomic size_t ps;
	size_t v = atomic_load_explicit(&ps, memory_order_relaxed);
	if (!v) {
		v = (size_t)sysconf(_SC_PAGESIZE);
		atomic_store_explicit(&ps, v, memory_order_relaxed);
	}
	return v;
}

/* --- stack overflow reporting --- */

static struct sigaction old_segv;
static pthread_once_t segv_once = PTHREAD_ONCE_INIT;
static _Thread_local bool altstack_set;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	struct coro *c = current;
	char *addr = si->si_addr;
	if (c && addr >= c->stack && addr < c->stack + page_size()) {
		static const char msg[] =
			"libfuture: coroutine stack overflow (raise "
			"stack_size in fut_spawn_opts)\n";
		ssize_t r = write(STDERR_FILENO, msg, sizeof(msg) - 1);
		(void)r;
		signal(SIGSEGV, SIG_DFL);
		raise(SIGSEGV);
		return;
	}
	/* Not ours: hand over to the previous handler, or re-fault with the
	 * default action. */
	if (old_segv.sa_flags & SA_SIGINFO && old_segv.sa_sigaction) {
		old_segv.sa_sigaction(sig, si, uc);
	} else if (old_segv.sa_handler != SIG_DFL &&
		   old_segv.sa_handler != SIG_IGN && old_segv.sa_handler) {
		old_segv.sa_handler(sig);
	} else {
		signal(SIGSEGV, SIG_DFL);
	}
}

static void install_segv(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
}

#define ALTSTACK_SIZE (64 * 1024)

static pthread_key_t altstack_key;
static pthread_once_t altstack_once = PTHREAD_ONCE_INIT;

/* Thread exit: a mapping outlives its thread, so each thread that ever
 * spawned a coroutine left 64 KiB of address space behind (coroutine
 * audit: 1000 loop threads, 64 MB). Taken down unless the application
 * put its own in place meanwhile, then unmapped. */
static void altstack_free(void *p)
{
	stack_t cur;
	if (sigaltstack(NULL, &cur) == 0 && cur.ss_sp == p &&
	    !(cur.ss_flags & SS_DISABLE)) {
		stack_t off = { .ss_flags = SS_DISABLE };
		sigaltstack(&off, NULL);
	}
	munmap(p, ALTSTACK_SIZE);
}

static void altstack_key_init(void)
{
	pthread_key_create(&altstack_key, altstack_free);
}

/* The handler needs a stack of its own: the faulting one is exhausted. */
static void ensure_altstack(void)
{
	if (altstack_set)
		return;
	altstack_set = true;
	stack_t cur;
	if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
		return; /* the application has one already */
	pthread_once(&altstack_once, altstack_key_init);
	void *p = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return;
	stack_t ss = { .ss_sp = p, .ss_size = ALTSTACK_SIZE };
	if (sigaltstack(&ss, NULL) < 0 ||
	    pthread_setspecific(altstack_key, p) != 0) {
		stack_t off = { .ss_flags = SS_DISABLE };
		sigaltstack(&off, NULL);
		munmap(p, ALTSTACK_SIZE);
	}
}

/* --- stacks --- */

static char *stack_get(struct fut_loop *loop, size_t size)
{
	struct stack_cache **pp = (struct stack_cache **)&loop->stacks;
	for (struct stack_cache *s; (s = *pp); pp = &s->next) {
		if (s->size == size) {
			*pp = s->next;
			loop->nstacks--;
			char *p = (char *)(s + 1) - size;
#ifdef FUT_ASAN
			/* A finished coroutine's last frames never returned,
			 * so their redzones are still poisoned. */
			__asan_unpoison_memory_region(p + page_size(),
						      size - page_size());
#endif
			return p;
		}
	}
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
		       -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (madvise(p, page_size(), MADV_GUARD_INSTALL) != 0 &&
	    mprotect(p, page_size(), PROT_NONE) != 0) {
		munmap(p, size);
		return NULL;
	}
	return p;
}

/* Pooled stacks keep their cache record at the top, in the stack itself. */
static void stack_put(struct fut_loop *loop, char *p, size_t size)
{
	if (loop->nstacks >= MAX_POOLED_STACKS || loop->closing) {
		munmap(p, size);
		return;
	}
	struct stack_cache *s = (struct stack_cache *)(p + size) - 1;
	s->size = size;
	s->next = loop->stacks;
	loop->stacks = s;
	loop->nstacks++;
}

void fut__coro_stacks_free(struct fut_loop *loop)
{
	struct stack_cache *s = loop->stacks;
	while (s) {
		struct stack_cache *next = s->next;
		munmap((char *)(s + 1) - s->size, s->size);
		s = next;
	}
	loop->stacks = NULL;
	loop->nstacks = 0;
}

/* --- switching --- */

#ifdef FUT_CORO_UCONTEXT

static void entry(unsigned lo, unsigned hi);

static int ctx_init(struct coro *c)
{
	if (getcontext(&c->ctx) < 0)
		return -errno;
	c->ctx.uc_stack.ss_sp = c->stack + page_size();
	c->ctx.uc_stack.ss_size = c->size - page_size();
	c->ctx.uc_link = NULL;
	uintptr_t p = (uintptr_t)c;
	makecontext(&c->ctx, (void (*)(void))entry, 2, (unsigned)p,
		    (unsigned)(p >> 32));
	return 0;
}

static void switch_in(struct coro *c)
{
	ucontext_t here;
	ucontext_t *saved = c->caller;
	c->caller = &here;
	swapcontext(&here, &c->ctx);
	c->caller = saved;
}

static void switch_out(struct coro *c)
{
	swapcontext(&c->ctx, c->caller);
}

#else

void fut__ctx_switch(void **save_sp, void *load_sp);
void fut__ctx_entry(void);
static void coro_main(struct coro *c);

#if defined(__x86_64__)
static int ctx_init(struct coro *c)
{
	uintptr_t top = (uintptr_t)(c->stack + c->size);
	top &= ~(uintptr_t)15;
	/* Stack as fut__ctx_switch leaves it: two FPU words, r15, r14, r13,
	 * r12, rbx, rbp, return address. After the final jump the stack is
	 * 16-byte aligned, as the entry's call requires. */
	uint64_t *sp = (uint64_t *)(top - 104);
	uint16_t cw;
	uint32_t mxcsr;
	__asm__ volatile("fnstcw %0" : "=m"(cw));
	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	memset(sp, 0, 104);
	sp[0] = cw;
	sp[1] = mxcsr;
	sp[4] = (uint64_t)(uintptr_t)coro_main; /* r13 */
	sp[5] = (uint64_t)(uintptr_t)c;         /* r12 */
	sp[8] = (uint64_t)(uintptr_t)fut__ctx_entry;
	c->sp = sp;
	return 0;
}
#elif defined(__aarch64__)
static int ctx_init(struct coro *c)
{
	uintptr_t top = (uintptr_t)(c->stack + c->size);
	top &= ~(uintptr_t)15;
	/* The 176-byte frame of src/switch-aarch64.S: x19..x30, d8..d15,
	 * FPCR. x30 is where its ret goes. */
	uint64_t *sp = (uint64_t *)(top - 176);
	uint64_t fpcr;
	__asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
	memset(sp, 0, 176);
	sp[0] = (uint64_t)(uintptr_t)c;          /* x19 */
	sp[1] = (uint64_t)(uintptr_t)coro_main;  /* x20 */
	sp[11] = (uint64_t)(uintptr_t)fut__ctx_entry; /* x30 */
	sp[20] = fpcr;
	c->sp = sp;
	return 0;
}
#else
#error "no coroutine assembly for this architecture: configure --with-coro=ucontext"
#endif

static void switch_in(struct coro *c)
{
	void *here;
	void **saved = c->caller;
	c->caller = &here;
	fut__ctx_switch(&here, c->sp);
	c->caller = saved;
}

static void switch_out(struct coro *c)
{
	fut__ctx_switch(&c->sp, *c->caller);
}

#endif

static void coro_free(struct coro *c)
{
#ifdef FUT_TSAN
	__tsan_destroy_fiber(c->fiber);
#endif
	stack_put(c->loop, c->stack, c->size);
	free(c);
}

/* Run c until it suspends or returns; free it when it has returned. */
static void resume(struct coro *c)
{
	struct coro *prev = current;
	current = c;
	/* The slow-callback detector names the coroutine, not the
	 * library callback that resumed it. */
	c->loop->slow_fn = (void *)c->fn;
#ifdef FUT_ASAN
	void *fake = NULL;
	__sanitizer_start_switch_fiber(&fake, c->stack + page_size(),
				       c->size - page_size());
#endif
#ifdef FUT_TSAN
	c->caller_fiber = __tsan_get_current_fiber();
	__tsan_switch_to_fiber(c->fiber, 0);
#endif
	switch_in(c);
#ifdef FUT_ASAN
	__sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
	current = prev;
	if (c->done)
		coro_free(c);
}

static void coro_finish(struct coro *c, int64_t r)
{
	fut *g = c->result;
	g->prod = NULL;
	g->pdata = NULL;
	fut__complete(g, r < 0 ? 0 : r, r < 0 ? (int)(r < INT32_MIN ? -EINVAL : r) : 0);
	fut_unref(g); /* the coroutine's own reference */
	c->done = true;
}

#ifdef FUT_CORO_UCONTEXT
static void coro_main(struct coro *c);
static void entry(unsigned lo, unsigned hi)
{
	coro_main((struct coro *)(((uintptr_t)hi << 32) | lo));
}
#endif

/* Inside the coroutine, right after it was switched in. */
static void arrived(struct coro *c)
{
#ifdef FUT_ASAN
	__sanitizer_finish_switch_fiber(c->fake_stack, &c->caller_bottom,
					&c->caller_size);
#else
	(void)c;
#endif
}

/* Inside the coroutine, right before it switches back to its resumer. */
static void leaving(struct coro *c, bool for_good)
{
#ifdef FUT_ASAN
	__sanitizer_start_switch_fiber(for_good ? NULL : &c->fake_stack,
				       c->caller_bottom, c->caller_size);
#endif
#ifdef FUT_TSAN
	__tsan_switch_to_fiber(c->caller_fiber, 0);
#endif
	(void)c;
	(void)for_good;
}

static void suspend(struct coro *c)
{
	leaving(c, false);
	switch_out(c);
	arrived(c);
}

static void coro_main(struct coro *c)
{
	arrived(c);
	int64_t r = c->cancelled ? -ECANCELED : c->fn(c->arg);
	coro_finish(c, r);
	leaving(c, true);
	switch_out(c);
	abort(); /* a finished coroutine is never resumed */
}

static void start_cb(fut *f, void *arg)
{
	struct coro *c = arg;
	c->started = true;
	resume(c);
}

static void wake_cb(fut *f, void *arg)
{
	struct coro *c = arg;
	c->awaiting = NULL;
	c->wake_err = fut_error(f);
	c->wake_val = fut_value(f);
	if (c->cancel_due) {
		/* Even if what it waited on ended before the cancel reached
		 * it (io_uring, threads: the cancel is asynchronous), so that
		 * every backend tells the coroutine the same thing. */
		c->cancel_due = false;
		c->wake_err = -ECANCELED;
		c->wake_val = 0;
	}
	resume(c);
}

static int coro_cancel(fut *g)
{
	struct coro *c = g->pdata;
	c->cancelled = true;
	if (c->started)
		c->cancel_due = true;
	/* A cycle fut_await does not see (through fut_all, say) would
	 * bring the cancel back here: once is enough. */
	if (c->cancelling)
		return 0;
	/* The coroutine sees -ECANCELED from the fut_await it is in and
	 * decides itself how to end; g ends when it returns. */
	c->cancelling = true;
	if (c->awaiting && fut_state(c->awaiting) == FUT_PENDING)
		(void)fut_cancel(c->awaiting);
	c->cancelling = false;
	return 0;
}

static void coro_background(fut *g)
{
	struct coro *c = g->pdata;
	if (c->awaiting && !c->cancelled)
		fut_background(c->awaiting);
}

static const struct fut__producer coro_producer = {
	.cancel = coro_cancel,
	.background = coro_background,
};

/*
 * Whether c awaiting f would wait on itself: f is c's own future, or the
 * future of a coroutine that (through others) awaits c's. Such an await
 * could never end, and cancelling it went round the cycle until the
 * stack overflowed; it fails with -EDEADLK instead, as pthread_join of
 * the calling thread does. The walk is bounded: a cycle that does not
 * pass through c is not c's to report.
 */
static bool awaits_itself(const struct coro *c, const fut *f)
{
	for (int i = 0; f && i < 1024; i++) {
		if (f == c->result)
			return true;
		if (f->prod != &coro_producer || fut_state((fut *)f) != FUT_PENDING)
			return false;
		f = ((const struct coro *)f->pdata)->awaiting;
	}
	return false;
}

fut *fut_spawn_opts(fut_loop *loop, fut_coro_fn fn, void *arg,
		    const struct fut_spawn_opts *opts)
{
	if (!loop)
		return NULL;
	size_t size = DEFAULT_STACK;
	if (opts) {
		for (size_t i = 0; i < sizeof(opts->reserved) / sizeof(opts->reserved[0]); i++)
			if (opts->reserved[i])
				return fut_rejected(loop, -EINVAL);
		if (opts->stack_size)
			size = opts->stack_size;
	}
	if (!fn || size < MIN_STACK || size > ((size_t)1 << 30))
		return fut_rejected(loop, -EINVAL);
	if (loop->closing)
		return fut_rejected(loop, -ECANCELED);
	size_t ps = page_size();
	size = (size + ps - 1) / ps * ps + ps; /* round up, add the guard */
	pthread_once(&segv_once, install_segv);
	ensure_altstack();
	struct coro *c = calloc(1, sizeof(*c));
	fut *g = c ? fut__alloc(loop) : NULL;
	fut *start = g ? fut_resolved(loop, 0) : NULL;
	char *stack = start ? stack_get(loop, size) : NULL;
	if (!stack) {
		fut_unref(start);
		fut_unref(g);
		free(c);
		return NULL;
	}
	c->loop = loop;
	c->fn = fn;
	c->arg = arg;
	c->stack = stack;
	c->size = size;
	c->result = g;
#ifdef FUT_TSAN
	c->fiber = __tsan_create_fiber(0);
#endif
	int r = ctx_init(c);
	if (r < 0) {
		fut_unref(start);
		coro_free(c);
		fut__complete(g, 0, r);
		return g;
	}
	g->refs = 2; /* the caller's and the coroutine's */
	g->prod = &coro_producer;
	g->pdata = c;
	/* Start on the next tick, from the ready queue like any callback. */
	(void)fut_on_done(start, start_cb, c);
	return g;
}

fut *fut_spawn(fut_loop *loop, fut_coro_fn fn, void *arg)
{
	return fut_spawn_opts(loop, fn, arg, NULL);
}

int fut_await(fut *f, int64_t *value)
{
	struct coro *c = current;
	if (value)
		*value = 0;
	if (!f)
		return -EINVAL;
	if (!c || c->loop != f->loop) {
		fut_unref(f);
		return c ? -EINVAL : FUT_ENOTCORO;
	}
	if (fut_state(f) == FUT_PENDING) {
		if (awaits_itself(c, f)) {
			fut_unref(f);
			return -EDEADLK;
		}
		c->awaiting = f;
		/* A cancelled coroutine's clean-up awaits hold the run: it is
		 * ending, and the caller waits for that. */
		if ((c->result->flags & FF_BG) && !c->cancelled)
			fut_background(f);
		if (fut_on_done(f, wake_cb, c) < 0) {
			c->awaiting = NULL;
			return -ENOMEM;
		}
		/* Cancelled while it ran (by itself, or by what it called):
		 * nothing was awaited then, so this is the await the cancel
		 * is for, and f is cancelled as it would have been. */
		if (c->cancel_due)
			(void)fut_cancel(f);
		suspend(c);
		if (value)
			*value = c->wake_val;
		return c->wake_err;
	}
	/* Already ended: no switch. */
	if (c->cancel_due) {
		c->cancel_due = false;
		fut_unref(f);
		return -ECANCELED;
	}
	int err = fut_error(f);
	if (value)
		*value = fut_value(f);
	fut_unref(f);
	return err;
}

int fut_await_all(fut **fs, size_t n, unsigned flags, fut **all)
{
	if (all)
		*all = NULL;
	struct coro *c = current;
	if (!c) {
		for (size_t i = 0; fs && i < n; i++)
			fut_unref(fs[i]);
		return FUT_ENOTCORO;
	}
	fut *g = fut_all(c->loop, fs, n, flags);
	if (!g)
		return -ENOMEM;
	if (all)
		fut_ref(g);
	int err = fut_await(g, NULL);
	if (all)
		*all = g;
	return err;
}

int fut_yield(void)
{
	struct coro *c = current;
	if (!c)
		return FUT_ENOTCORO;
	/* An ended future's callback runs on the next pass of the ready
	 * queue: everything already due runs before we come back. */
	fut *f = fut_resolved(c->loop, 0);
	if (!f)
		return -ENOMEM;
	c->awaiting = f;
	if (fut_on_done(f, wake_cb, c) < 0) {
		c->awaiting = NULL;
		return -ENOMEM;
	}
	suspend(c);
	return c->wake_err;
}

int fut_coro_sleep(uint64_t ms)
{
	struct coro *c = current;
	if (!c)
		return FUT_ENOTCORO;
	fut *f = fut_sleep(c->loop, ms);
	return f ? fut_await(f, NULL) : -ENOMEM;
}

fut_loop *fut_coro_loop(void)
{
	return current ? current->loop : NULL;
}
