/*
 * libfuture — futures, an event loop and completion-style I/O for C.
 *
 * Conventions (see libfuture(7)):
 *  - Functions returning int return >= 0 on success and a negative errno-style
 *    code on failure; errno is never used to carry an error.
 *  - A function returning a future hands the caller one reference. Passing a
 *    future to fut_on_done(), fut_then(), fut_timeout(), fut_all() or
 *    fut_any() hands that reference over, on every path, even on failure.
 *    Inside a callback the future is borrowed.
 *  - Functions returning a future return NULL only when the loop argument is
 *    NULL or memory is exhausted; every other failure comes back as a future
 *    rejected with the error code.
 *  - Everything runs on the loop's thread, except fut_resolve(),
 *    fut_resolve_ptr(), fut_reject(), fut_loop_post() and fut_loop_stop(),
 *    which any thread may call.
 */
#ifndef FUTURE_H
#define FUTURE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(FUT_BUILDING) && defined(__GNUC__)
#define FUT_EXPORT __attribute__((visibility("default")))
#else
#define FUT_EXPORT
#endif

#define FUT_VERSION_MAJOR 0
#define FUT_VERSION_MINOR 1
#define FUT_VERSION_PATCH 0

typedef struct fut fut;             /* a future: a value that is not there yet */
typedef struct fut_loop fut_loop;   /* an event loop, run by one thread */
typedef struct fut_timer fut_timer; /* a periodic timer */

/* Library-specific error codes: far below every errno value. */
enum {
	FUT_EBACKEND = -4001,  /* unknown backend name */
	FUT_ENOTCORO = -4002,  /* fut_await() outside a coroutine */
	FUT_ESTOPPED = -4003,  /* fut_loop_stop() interrupted the run */
	FUT_EWRONGTHREAD = -4004, /* reserved: not returned yet */
	FUT_ENOTCOMPILED = -4005, /* backend not compiled into this build */
	FUT_ESYSCTL = -4006,   /* io_uring disabled by kernel.io_uring_disabled */
	/* libfuture-http (see <future/http.h>) */
	FUT_HTTP_EINCOMPLETE = -4100, /* need more bytes (not an error) */
	FUT_HTTP_EBADREQ = -4101,     /* malformed message: 400 */
	FUT_HTTP_EURITOOLONG = -4102, /* request line over limit: 414 */
	FUT_HTTP_EHDRTOOBIG = -4103,  /* header section over limit: 431 */
	FUT_HTTP_EBODYTOOBIG = -4104, /* body over limit: 413 */
	FUT_HTTP_ENOTIMPL = -4105,    /* unknown transfer coding: 501 */
	FUT_HTTP_EVERSION = -4106,    /* HTTP major version not 1: 505 */
	FUT_HTTP_EBADRESP = -4107,    /* malformed response (client) */
	FUT_HTTP_EBADURL = -4108,     /* URL the client cannot use */
	FUT_HTTP_ETIMEOUT_CONNECT = -4109, /* client: connect timed out */
	FUT_HTTP_ETIMEOUT_QUEUE = -4110,   /* client: no free connection in time */
	FUT_HTTP_ETIMEOUT_REQUEST = -4111, /* client: response not in time */
	FUT_HTTP_ERESOLVE = -4112,    /* host name does not resolve */
	FUT_HTTP_ERESOLVE_AGAIN = -4113, /* name server failed, try later */
	FUT_HTTP_ESCHEME = -4114,     /* client: URL scheme other than http:// */
	FUT_HTTP_ECLOSED = -4115,     /* client: server closed mid-response */
	FUT_ERR_MIN_ = -4199
};

/* Future states, as returned by fut_state(). Cancelled is rejected with
 * -ECANCELED; timed out is rejected with -ETIMEDOUT. */
enum { FUT_PENDING = 0, FUT_RESOLVED = 1, FUT_REJECTED = 2 };

/* Flags for fut_all(). */
enum {
	FUT_ALL_FAIL_FAST = 0, /* reject with the first error, cancel the rest */
	FUT_ALL_SETTLED = 1    /* wait for every one; resolve with #failures */
};

/* Flags for struct fut_loop_opts. */
enum {
	FUT_LOOP_IGNORE_ENV = 1u << 0 /* do not read FUTURE_* variables */
};

/* Loop options. A zeroed struct means "defaults". */
struct fut_loop_opts {
	const char *backend; /* "epoll", "io_uring", "threads", "auto" or NULL */
	unsigned flags;      /* FUT_LOOP_* */
	unsigned threads;    /* blocking pool size; 0: FUTURE_THREADS or 4 */
	unsigned workers;    /* threads backend: ops blocked at once; 0: 512 */
	unsigned reserved32; /* must be zero */
	uint64_t reserved[7]; /* must be zero */
};

typedef void (*fut_cb)(fut *f, void *arg);
typedef fut *(*fut_then_fn)(fut *f, void *arg);
typedef void (*fut_post_fn)(void *arg);
typedef void (*fut_timer_fn)(fut_timer *t, void *arg);
typedef int64_t (*fut_blocking_fn)(void *arg);

/* --- loop: see fut_loop_new(3) --- */

/* Create a loop; on failure returns NULL and stores the code in *err. */
FUT_EXPORT fut_loop *fut_loop_new(const struct fut_loop_opts *opts, int *err);
/* End every pending future with -ECANCELED, run their callbacks, free the
 * loop. Returns the number of futures the caller still held (0 = clean). */
FUT_EXPORT int fut_loop_free(fut_loop *loop);
/* Run until fut_loop_stop() or until nothing is left to wait for. */
FUT_EXPORT int fut_loop_run(fut_loop *loop);
/* Run until f ends (f is borrowed, not consumed). */
FUT_EXPORT int fut_loop_run_until(fut_loop *loop, fut *f);
/* Make the current run return FUT_ESTOPPED. Any thread. */
FUT_EXPORT int fut_loop_stop(fut_loop *loop);
/* Run fn(arg) on the loop's thread, soon. Any thread. */
FUT_EXPORT int fut_loop_post(fut_loop *loop, fut_post_fn fn, void *arg);
/* Monotonic time in milliseconds, cached at the start of each tick. */
FUT_EXPORT uint64_t fut_loop_now(fut_loop *loop);
/* Name of the backend this loop runs on. */
FUT_EXPORT const char *fut_loop_backend(const fut_loop *loop);
/* 0, or why auto could not use its first choice (io_uring) for this loop. */
FUT_EXPORT int fut_loop_fallback_reason(const fut_loop *loop);

/* --- futures: see fut_new(3) --- */

FUT_EXPORT fut *fut_new(fut_loop *loop);
FUT_EXPORT fut *fut_resolved(fut_loop *loop, int64_t value);
FUT_EXPORT fut *fut_rejected(fut_loop *loop, int err);
FUT_EXPORT int fut_resolve(fut *f, int64_t value);
FUT_EXPORT int fut_resolve_ptr(fut *f, void *ptr, void (*dtor)(void *));
FUT_EXPORT int fut_reject(fut *f, int err);
FUT_EXPORT int fut_cancel(fut *f);
/* Let the work behind f go on without keeping fut_loop_run going (as
 * uv_unref); f still ends as usual. */
FUT_EXPORT int fut_background(fut *f);
FUT_EXPORT fut *fut_ref(fut *f);
FUT_EXPORT void fut_unref(fut *f);
FUT_EXPORT int fut_state(const fut *f);
FUT_EXPORT int64_t fut_value(const fut *f);
FUT_EXPORT void *fut_ptr(const fut *f);
FUT_EXPORT int fut_error(const fut *f);
FUT_EXPORT fut_loop *fut_loop_of(const fut *f);

/* --- callbacks and chaining: see fut_on_done(3), fut_then(3) --- */

FUT_EXPORT int fut_on_done(fut *f, fut_cb cb, void *arg);
FUT_EXPORT fut *fut_then(fut *f, fut_then_fn fn, void *arg);

/* --- combinators: see fut_all(3) --- */

FUT_EXPORT fut *fut_all(fut_loop *loop, fut **fs, size_t n, unsigned flags);
FUT_EXPORT fut *fut_any(fut_loop *loop, fut **fs, size_t n);
FUT_EXPORT fut *fut_at(const fut *combined, size_t i);
FUT_EXPORT fut *fut_timeout(fut *f, uint64_t ms);

/* --- timers: see fut_sleep(3), fut_timer_new(3) --- */

FUT_EXPORT fut *fut_sleep(fut_loop *loop, uint64_t ms);
FUT_EXPORT fut_timer *fut_timer_new(fut_loop *loop, uint64_t period_ms,
				    fut_timer_fn fn, void *arg);
FUT_EXPORT void fut_timer_free(fut_timer *t);

/* --- completion-style I/O: see fut_recv(3) --- */

FUT_EXPORT fut *fut_accept(fut_loop *loop, int fd, struct sockaddr *addr,
			   socklen_t *addrlen);
FUT_EXPORT fut *fut_connect(fut_loop *loop, int fd,
			    const struct sockaddr *addr, socklen_t addrlen);
FUT_EXPORT fut *fut_recv(fut_loop *loop, int fd, void *buf, size_t len,
			 int flags);
FUT_EXPORT fut *fut_send(fut_loop *loop, int fd, const void *buf, size_t len,
			 int flags);
FUT_EXPORT fut *fut_read(fut_loop *loop, int fd, void *buf, size_t len,
			 int64_t offset);
FUT_EXPORT fut *fut_write(fut_loop *loop, int fd, const void *buf, size_t len,
			  int64_t offset);
FUT_EXPORT fut *fut_poll(fut_loop *loop, int fd, short events);
FUT_EXPORT fut *fut_close(fut_loop *loop, int fd);

/* --- blocking work: see fut_run_blocking(3) --- */

FUT_EXPORT fut *fut_run_blocking(fut_loop *loop, fut_blocking_fn fn,
				 void *arg);

/* --- coroutines: see fut_spawn(3), fut_await(3) --- */

typedef int64_t (*fut_coro_fn)(void *arg);

/* Coroutine options. A zeroed struct means "defaults". */
struct fut_spawn_opts {
	size_t stack_size;    /* usable bytes; 0: 256 KiB; at least 16 KiB */
	uint64_t reserved[4]; /* must be zero */
};

/* Start fn(arg) as a coroutine on the next tick; the future ends with its
 * return value (>= 0) or error (< 0). */
FUT_EXPORT fut *fut_spawn(fut_loop *loop, fut_coro_fn fn, void *arg);
FUT_EXPORT fut *fut_spawn_opts(fut_loop *loop, fut_coro_fn fn, void *arg,
			       const struct fut_spawn_opts *opts);
/* Inside a coroutine: wait for f (consumed); 0 and *value, or its error. */
FUT_EXPORT int fut_await(fut *f, int64_t *value);
/* Wait for all of fs at once (consumed, as fut_all); see fut_await(3). */
FUT_EXPORT int fut_await_all(fut **fs, size_t n, unsigned flags, fut **all);
FUT_EXPORT int fut_yield(void);
FUT_EXPORT int fut_coro_sleep(uint64_t ms);
FUT_EXPORT fut_loop *fut_coro_loop(void);

/* --- errors: see fut_strerror(3) --- */

FUT_EXPORT const char *fut_strerror(int err);
FUT_EXPORT const char *fut_errname(int err);

#ifdef __cplusplus
}
#endif
#endif /* FUTURE_H */
