/*
 * Internal definitions shared by src/ and backends/. Never installed.
 *
 * Name tiers (STYLE.md 5): fut_* exported, fut__* shared between the
 * library's files but hidden by -fvisibility=hidden, plain static otherwise.
 */
#ifndef FUTURE_INTERNAL_H
#define FUTURE_INTERNAL_H

#include "config.h"
#include "future.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define fut__container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))
#define fut__likely(x) __builtin_expect(!!(x), 1)
#define fut__unlikely(x) __builtin_expect(!!(x), 0)

struct fut_backend;
struct fut__pool;

/*
 * Future state word. A resolver (any thread) wins the race with a CAS from
 * PENDING to COMPLETING, writes the value, then publishes RESOLVED/REJECTED
 * with a release store. ST_REMOTE is set together with the final state when
 * the resolver was not the loop thread: the future then sits in the loop's
 * remote queue and must not be freed until the loop has drained it.
 */
enum {
	ST_PENDING = 0,
	ST_COMPLETING = 1,
	ST_RESOLVED = 2,
	ST_REJECTED = 3,
	ST_MASK = 3,
	ST_REMOTE = 4,
	ST_FREE = 8, /* on the loop's free list */
	ST_PTR = 16, /* the value is a pointer (fut_resolve_ptr) */
};

/* Flags touched only by the loop thread. */
enum {
	FF_QUEUED = 1u << 0, /* linked in the ready queue */
	FF_ZOMBIE = 1u << 1, /* refs hit 0 while in flight; reap later */
	FF_BG = 1u << 2, /* fut_background: its work does not keep run() going */
};

struct fut__cbent {
	fut_cb fn;
	void *arg;
};

/*
 * The work behind a future: an I/O op, a timer, a combinator. cancel ends
 * the future itself when it can withdraw the work at once and returns 0;
 * it returns 0 without ending it when withdrawal completes later (io_uring),
 * and -EBUSY when the work can no longer be withdrawn. release frees the
 * producer's state when the future itself is freed.
 */
struct fut__producer {
	int (*cancel)(fut *f);
	void (*release)(fut *f);
	/* fut_loop_free's count of futures the caller held: take the
	 * references f holds on other futures out of their refs. */
	void (*uncount)(fut *f);
	/* fut_background: let the work behind f stop counting for run(). */
	void (*background)(fut *f);
};

struct fut {
	struct fut_loop *loop;
	_Atomic uint32_t state;
	uint32_t refs;
	uint32_t flags;
	int32_t err;
	union {
		int64_t i;
		void *p;
	} v;
	void (*dtor)(void *);
	struct fut *next; /* ready queue or free list */
	struct fut__cbent cb; /* the first callback lives inline */
	struct fut__cbent *xcb; /* the others, in a growable array */
	uint32_t nxcb, capxcb;
	const struct fut__producer *prod;
	void *pdata;
	/* The future whose pointer value this one took (fut__adopt): held
	 * until this one goes, so the value outlives both. */
	struct fut *keep;
};

/* --- timers (src/timer.c): a hierarchical wheel with 1 ms ticks --- */

#define FUT__WHEEL_BITS 6
#define FUT__WHEEL_SLOTS (1u << FUT__WHEEL_BITS)
#define FUT__WHEEL_LEVELS 6

struct fut__tnode {
	struct fut__tnode *next, *prev;
	uint64_t when; /* absolute, ms */
	void (*fire)(struct fut__tnode *tn);
	uint8_t level, slot; /* where it is linked; level 0xff: due list */
	bool armed;
	bool bg; /* fut_background: counted in wheel.bg, not for run() */
};

struct fut__tlist {
	struct fut__tnode *head, *tail;
};

struct fut__wheel {
	uint64_t elapsed;
	uint64_t occupied[FUT__WHEEL_LEVELS];
	struct fut__tlist slot[FUT__WHEEL_LEVELS][FUT__WHEEL_SLOTS];
	struct fut__tlist due;
	size_t count;
	size_t bg; /* armed nodes with bg set: count - bg keeps run() going */
};

/* --- thread pool jobs (src/pool.c) --- */

enum { JOB_IDLE = 0, JOB_RING, JOB_OVERFLOW };

struct fut__job {
	struct fut__job *next, *prev; /* the pool's overflow FIFO */
	struct fut__pool *pool;
	struct fut__cell *cell; /* JOB_RING: where it was put */
	int64_t (*work)(struct fut__job *job); /* on a worker thread */
	void (*done)(struct fut__job *job, int64_t res); /* on the loop */
	int64_t res;
	int state; /* JOB_*, loop thread only */
};

/* --- operations: one per pending I/O or timer future --- */

enum fut__op_kind {
	OP_NONE = 0,
	OP_ACCEPT,
	OP_CONNECT,
	OP_RECV,
	OP_SEND,
	OP_READ,
	OP_WRITE,
	OP_POLL,
	OP_CLOSE,
	OP_SLEEP,
	OP_BLOCKING,
};

struct fut__op {
	struct fut__op *next, *prev; /* backend queue or free list */
	fut *f;
	struct fut_loop *loop;
	uint8_t kind;
	uint8_t bq;   /* backend-private: which queue holds it */
	bool stop_on_eintr; /* blocking form: EINTR may end the op (threads) */
	uint8_t cancel_req; /* ... when this is set (atomic): cancel asked */
	bool bg; /* fut_background: not counted in loop->active */
	bool fg_only; /* cancelled: counted until it ends, whatever asks */
	short events; /* OP_POLL */
	int fd;
	int flags;
	void *buf;
	size_t len;
	size_t done; /* bytes already transferred (send/write all) */
	int64_t off;
	struct sockaddr *addr; /* accept: out; connect: points into ss */
	socklen_t *addrlen;
	socklen_t sslen;
	struct sockaddr_storage ss; /* connect: a copy, the caller's may go */
	union {
		struct fut__tnode tn;
		struct fut__job job;
		uint64_t be[6]; /* backend scratch */
	} u;
	fut_blocking_fn bfn;
	void *barg;
};

/* --- the loop --- */

struct fut__post {
	fut_post_fn fn;
	void *arg;
};

struct fut__slab {
	struct fut__slab *next;
	size_t n;
	/* followed by n objects */
};

/* A per-loop free list of fixed-size objects carved from slabs: no malloc
 * per operation once the loop is warm (src/objpool.c). */
struct fut__objpool {
	void *free;
	struct fut__slab *slabs;
	size_t size, per_slab;
};

void fut__objpool_init(struct fut__objpool *p, size_t size, size_t per_slab);
void *fut__obj_alloc(struct fut__objpool *p);
void fut__obj_free(struct fut__objpool *p, void *o);
void fut__objpool_destroy(struct fut__objpool *p);

/* Make entry fd of a table of *n entries of elem bytes exist, growing it by
 * doubling with new entries zeroed. Returns the (possibly moved) table, or
 * NULL with errno EBADF (fd is not open: nothing is grown) or ENOMEM (the
 * old table is left as it was). Entries move
 * when the table grows: hold indexes, not pointers. Used by the backends'
 * per-fd state. */
void *fut__fdtable_grow(void *tab, size_t *n, size_t elem, int fd);

struct fut_loop {
	const struct fut_backend *be;
	void *be_data;
	/* fut__thread_id() of the thread running it; read by resolvers on
	 * any thread, hence atomic (relaxed: only equality matters). */
	_Atomic(const void *) owner;
	bool running;
	bool closing;
	_Atomic int stop;
	_Atomic int stoppers; /* threads inside fut_loop_stop (post.c) */
	uint64_t now;
	/* For a wait with a timeout > 0 ms: the same to the ns, to the next
	 * timer's deadline (backends that can wait that precisely do). */
	struct timespec wait_ts;

	fut *rq_head, *rq_tail; /* ready queue: futures whose callbacks are due */

	/* Cross-thread handoff (src/post.c): one single-producer queue per
	 * posting thread, oldest first; rlock guards only adding one and
	 * taking out one whose thread exited, and pq_tail. */
	pthread_mutex_t rlock;
	_Atomic(struct fut__pq *) pqs;
	struct fut__pq *pq_tail;

	/* Read by every posting thread on every post, so on a cache line of
	 * their own that the loop writes only when it goes to sleep: next to
	 * the ready queue they cost a cache miss per post. */
	_Alignas(64) _Atomic int sleeping; /* about to block: wake it */
	uint64_t id;          /* unique per loop, for post.c's caches */

	_Alignas(64) struct fut__slab *fslabs;
	fut *free_futs;
	struct fut__objpool ops, sleeps;
	size_t live_futs;

	struct fut__wheel wheel;
	struct fut_timer *timers; /* periodic timers, freed with the loop */
	size_t active; /* pending ops, armed timers, jobs: keep run() alive */
	size_t active_bg; /* pending ops under fut_background: do not */

	unsigned nthreads;
	unsigned nworkers; /* the threads backend's cap (fut_loop_opts) */
	struct fut__pool *pool_user, *pool_io;
	int debug;
	unsigned slow_ms; /* FUTURE_SLOW_MS, 0: detector off */
	void *slow_fn;    /* coroutine being timed, see src/slow.c */
	void *stacks;     /* pooled coroutine stacks */
	unsigned nstacks;
	int fallback; /* why auto skipped its first choice, or 0 */
};

static inline void fut__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* future.c */
fut *fut__alloc(struct fut_loop *loop);
void fut__complete(fut *f, int64_t v, int err);
void fut__adopt(fut *dst, fut *src);
void fut__run_ready(struct fut_loop *loop);
void fut__remote_done(void *arg);
bool fut__on_loop_thread(const struct fut_loop *loop);
const void *fut__thread_id(void);
size_t fut__cancel_all(struct fut_loop *loop);
void fut__end_all(struct fut_loop *loop);
size_t fut__free_all(struct fut_loop *loop);

/* post.c */
struct fut__pq;
int fut__post(struct fut_loop *loop, fut_post_fn fn, void *arg);
struct fut__pq *fut__post_reserve(struct fut_loop *loop);
void fut__post_commit(struct fut_loop *loop, struct fut__pq *q,
		      fut_post_fn fn, void *arg);
void fut__post_init(struct fut_loop *loop);
size_t fut__drain_posts(struct fut_loop *loop);
bool fut__posts_pending(struct fut_loop *loop);
bool fut__await_posts(struct fut_loop *loop);
bool fut__prepare_sleep(struct fut_loop *loop);
void fut__stop_nudge(struct fut_loop *loop);
void fut__posts_quiesce(struct fut_loop *loop);
void fut__posts_free(struct fut_loop *loop);

/* loop.c */
void fut__update_time(struct fut_loop *loop);
/* The monotonic clock in ms, rounded up: deadlines are never early. */
uint64_t fut__clock_ms_ceil(void);
/* The same, truncated: what loop->now would be if the tick started now. */
uint64_t fut__clock_ms(void);

/* io.c */
struct fut__op *fut__op_alloc(struct fut_loop *loop, int kind);
void fut__op_free(struct fut__op *op);
fut *fut__op_future(struct fut__op *op, const struct fut__producer *prod);
void fut__op_complete(struct fut__op *op, int64_t res);
int64_t fut__op_exec_blocking(struct fut__op *op);
extern const struct fut__producer fut__io_producer;

/* timer.c */
void fut__wheel_init(struct fut__wheel *w, uint64_t now);
void fut__timer_pool_init(struct fut_loop *loop);
void fut__timer_arm(struct fut_loop *loop, struct fut__tnode *tn, uint64_t when);
void fut__timer_disarm(struct fut_loop *loop, struct fut__tnode *tn);
void fut__timers_run(struct fut_loop *loop);
int fut__timers_timeout(struct fut_loop *loop);

/* The workers option (threads backend): its default, and the most. */
#define FUT__DEF_WORKERS 512
#define FUT__MAX_WORKERS 65536

/* pool.c */
enum { FUT__LANE_USER = 0, FUT__LANE_IO = 1 };
int fut__pool_submit(struct fut_loop *loop, int lane, struct fut__job *job);
int fut__pool_cancel(struct fut__job *job);
void fut__pool_destroy(struct fut__pool *pool);
unsigned fut__env_threads(void);
int fut__thread_start(pthread_t *thread, size_t stack,
		      void *(*fn)(void *), void *arg);

/* slow.c */
unsigned fut__env_slow_ms(void);
uint64_t fut__slow_now(void);
void fut__slow_check(struct fut_loop *loop, uint64_t t0, void *fn,
		     const char *what);

/* Call a user callback, timing it when the slow-callback detector is on. */
#define FUT__TIMED(loop, fn, what, call)                                     \
	do {                                                                 \
		if (fut__unlikely((loop)->slow_ms)) {                        \
			uint64_t t0_ = fut__slow_now();                      \
			call;                                                \
			fut__slow_check((loop), t0_, (void *)(fn), (what));  \
		} else {                                                     \
			call;                                                \
		}                                                            \
	} while (0)

/* coro.c */
void fut__coro_stacks_free(struct fut_loop *loop);

/* backend.c */
int fut__backend_select(struct fut_loop *loop, const struct fut_loop_opts *o);

#endif /* FUTURE_INTERNAL_H */
