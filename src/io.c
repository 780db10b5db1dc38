/*
 * The I/O front: argument checks, op allocation from per-loop slabs, and the
 * one completion path every backend uses. Also the blocking form of each op,
 * which the thread pool runs for regular files and the threads backend runs
 * for everything.
 */
#include "backend-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fut__op *fut__op_alloc(struct fut_loop *loop, int kind)
{
	struct fut__op *op = fut__obj_alloc(&loop->ops);
	if (!op)
		return NULL;
	op->next = op->prev = NULL;
	op->f = NULL;
	op->loop = loop;
	op->kind = (uint8_t)kind;
	op->bq = 0;
	op->fd = -1;
	op->done = 0;
	op->stop_on_eintr = false;
	op->cancel_req = 0;
	op->bg = false;
	op->fg_only = false;
	return op;
}

void fut__op_free(struct fut__op *op)
{
	op->kind = OP_NONE;
	fut__obj_free(&op->loop->ops, op);
}

/*
 * Attach a future to op. The producer holds its own reference, so a caller
 * that drops the future early does not free it under a pending op.
 */
fut *fut__op_future(struct fut__op *op, const struct fut__producer *prod)
{
	struct fut_loop *loop = op->loop;
	fut *f = fut__alloc(loop);
	if (!f) {
		fut__op_free(op);
		return NULL;
	}
	f->refs = 2;
	f->prod = prod;
	f->pdata = op;
	op->f = f;
	loop->active++;
	return f;
}

void fut__op_complete(struct fut__op *op, int64_t res)
{
	fut *f = op->f;
	struct fut_loop *loop = op->loop;
	/* fut_loop_free ends every pending future with -ECANCELED: a
	 * connection that an accept still took (io_uring's cancel is
	 * asynchronous, a worker's accept may win) has nobody to go to, and
	 * stayed open for good. */
	if (loop->closing && op->kind == OP_ACCEPT && res >= 0) {
		close((int)res);
		res = -ECANCELED;
	}
	f->prod = NULL;
	f->pdata = NULL;
	if (op->bg)
		loop->active_bg--;
	else
		loop->active--;
	/* Errors are ints: a blocking job's int64 below INT32_MIN lost its
	 * high half (-2^32 came out as success), so it is -EINVAL, as a
	 * coroutine's is. */
	fut__complete(f, res < 0 ? 0 : res,
		      res < 0 ? (int)(res < INT32_MIN ? -EINVAL : res) : 0);
	fut__op_free(op);
	fut_unref(f);
}

/*
 * A cancelled op counts for run() again until it has ended: a cancel may
 * complete later (io_uring, a busy worker), and until then the op may
 * still use its buffer, so a run must not return and let the caller free
 * it (libuv keeps the loop alive for a closing handle too).
 */
static void op_foreground(struct fut__op *op)
{
	op->fg_only = true;
	if (op->bg) {
		op->bg = false;
		op->loop->active_bg--;
		op->loop->active++;
	}
}

static int io_cancel(fut *f)
{
	struct fut__op *op = f->pdata;
	op_foreground(op);
	return op->loop->be->cancel(op->loop, op);
}

static void op_background(fut *f)
{
	struct fut__op *op = f->pdata;
	if (op->fg_only)
		return;
	if (!op->bg) {
		op->loop->active--;
		op->loop->active_bg++;
	}
	op->bg = true;
}

const struct fut__producer fut__io_producer = {
	.cancel = io_cancel,
	.background = op_background,
};

/*
 * Two steps so each call can fill its own fields: prep() makes the op and
 * its future (or returns NULL with *out set to a rejected future, or to NULL
 * when memory or the loop is missing), go() hands the op to the backend.
 */
static struct fut__op *prep(struct fut_loop *loop, int kind, int fd, int err,
			    fut **out)
{
	*out = NULL;
	if (!loop)
		return NULL;
	if (err) {
		*out = fut_rejected(loop, err);
		return NULL;
	}
	struct fut__op *op = fut__op_alloc(loop, kind);
	if (!op)
		return NULL;
	op->fd = fd;
	op->buf = NULL;
	op->len = 0;
	op->off = -1;
	op->flags = 0;
	op->addr = NULL;
	op->addrlen = NULL;
	*out = fut__op_future(op, &fut__io_producer);
	return *out ? op : NULL;
}

static fut *go(struct fut__op *op)
{
	struct fut_loop *loop = op->loop;
	fut *f = op->f;
	if (fut__unlikely(loop->closing))
		fut__op_complete(op, -ECANCELED);
	else
		loop->be->submit(loop, op);
	return f;
}

static int check_buf(int fd, const void *buf, size_t len)
{
	if (fd < 0)
		return -EBADF;
	/* Past SSIZE_MAX read(2)'s result is the implementation's: epoll's
	 * kernel said EFAULT, the ring clamped and read a few bytes. */
	if ((!buf && len) || len > SSIZE_MAX)
		return -EINVAL;
	return 0;
}

fut *fut_accept(fut_loop *loop, int fd, struct sockaddr *addr,
		socklen_t *addrlen)
{
	fut *f;
	int err = fd < 0 ? -EBADF : (addr && !addrlen) ? -EINVAL : 0;
	struct fut__op *op = prep(loop, OP_ACCEPT, fd, err, &f);
	if (!op)
		return f;
	op->addr = addr;
	op->addrlen = addr ? addrlen : NULL;
	return go(op);
}

fut *fut_connect(fut_loop *loop, int fd, const struct sockaddr *addr,
		 socklen_t addrlen)
{
	fut *f;
	int err = fd < 0 ? -EBADF : 0;
	if (!err && (!addr || addrlen == 0 || addrlen > sizeof(struct sockaddr_storage)))
		err = -EINVAL;
	struct fut__op *op = prep(loop, OP_CONNECT, fd, err, &f);
	if (!op)
		return f;
	memcpy(&op->ss, addr, addrlen);
	op->addr = (struct sockaddr *)&op->ss;
	op->sslen = addrlen;
	return go(op);
}

static fut *xfer(struct fut_loop *loop, int kind, int fd, const void *buf,
		 size_t len, int flags, int64_t off)
{
	fut *f;
	int err = check_buf(fd, buf, len);
	if (!err && off < -1)
		err = -EINVAL;
	struct fut__op *op = prep(loop, kind, fd, err, &f);
	if (!op)
		return f;
	op->buf = (void *)buf;
	op->len = len;
	op->flags = flags;
	op->off = off;
	return go(op);
}

fut *fut_recv(fut_loop *loop, int fd, void *buf, size_t len, int flags)
{
	return xfer(loop, OP_RECV, fd, buf, len, flags, -1);
}

fut *fut_send(fut_loop *loop, int fd, const void *buf, size_t len, int flags)
{
	return xfer(loop, OP_SEND, fd, buf, len, flags | MSG_NOSIGNAL, -1);
}

fut *fut_read(fut_loop *loop, int fd, void *buf, size_t len, int64_t offset)
{
	return xfer(loop, OP_READ, fd, buf, len, 0, offset);
}

fut *fut_write(fut_loop *loop, int fd, const void *buf, size_t len,
	       int64_t offset)
{
	return xfer(loop, OP_WRITE, fd, buf, len, 0, offset);
}

fut *fut_poll(fut_loop *loop, int fd, short events)
{
	fut *f;
	struct fut__op *op = prep(loop, OP_POLL, fd, fd < 0 ? -EBADF : 0, &f);
	if (!op)
		return f;
	op->events = events;
	return go(op);
}

fut *fut_close(fut_loop *loop, int fd)
{
	fut *f;
	struct fut__op *op = prep(loop, OP_CLOSE, fd, fd < 0 ? -EBADF : 0, &f);
	if (!op)
		return f;
	/* Close even while the loop is being torn down: the fd is ours. */
	loop->be->submit(loop, op);
	return f;
}

/* --- the blocking form of every op --- */

/* EINTR ends the op only when it was asked to stop: a backend's
 * interrupt signal can arrive late, after its worker moved on to another
 * op, and must not fail that one. */
static bool stop_here(struct fut__op *op)
{
	return op->stop_on_eintr &&
	       __atomic_load_n(&op->cancel_req, __ATOMIC_ACQUIRE);
}

/* Wait until fd is ready; used when a blocking call meets O_NONBLOCK. */
static int wait_ready(struct fut__op *op, int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	for (;;) {
		if (poll(&p, 1, -1) >= 0)
			return 0;
		if (errno != EINTR || stop_here(op))
			return -errno;
	}
}

#define RETRY(expr, fd, ev)                                                  \
	for (;;) {                                                           \
		ssize_t r_ = (expr);                                         \
		if (r_ >= 0)                                                 \
			return r_;                                           \
		if (errno == EINTR && !stop_here(op))                        \
			continue;                                            \
		if ((errno == EAGAIN || errno == EWOULDBLOCK)) {             \
			int w_ = wait_ready(op, fd, ev);                     \
			if (w_ == 0)                                         \
				continue;                                    \
			return w_;                                           \
		}                                                            \
		return -errno;                                               \
	}

/* A stream socket's recv with MSG_WAITALL that came back short stops
 * only at the end of the stream; a datagram's is the whole message. */
bool fut__sock_gathers(int fd)
{
	int type = 0;
	socklen_t sl = sizeof(type);
	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sl) == 0 &&
	       type == SOCK_STREAM;
}

bool fut__sends_empty(const struct fut__op *op)
{
	int type = 0;
	socklen_t sl = sizeof(type);
	return op->kind == OP_SEND && !op->len &&
	       getsockopt(op->fd, SOL_SOCKET, SO_TYPE, &type, &sl) == 0 &&
	       type != SOCK_STREAM;
}

/*
 * recv with MSG_WAITALL: all len bytes, or fewer at the end of the
 * stream or when an error follows some. By hand, since recv(2) waits for
 * nothing on an O_NONBLOCK socket, and the threads backend's loop may
 * have gathered the first bytes already (op->done).
 */
static int64_t recv_all(struct fut__op *op)
{
	char *p = op->buf;
	while (op->done < op->len) {
		ssize_t r = recv(op->fd, p + op->done, op->len - op->done,
				 op->flags);
		if (r > 0) {
			op->done += (size_t)r;
			/* Short: a datagram, or a blocking recv that a cancel's
			 * signal cut after some bytes (it says no EINTR then). */
			if (op->done < op->len &&
			    (stop_here(op) || !fut__sock_gathers(op->fd)))
				break;
			continue;
		}
		if (r == 0)
			break;
		if (errno == EINTR && !stop_here(op))
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int w = wait_ready(op, op->fd, POLLIN);
			if (w == 0)
				continue;
			return op->done ? (int64_t)op->done : w;
		}
		return op->done ? (int64_t)op->done : -errno;
	}
	return (int64_t)op->done;
}

/* Transfer the rest of an all-or-error op (send, write). */
static int64_t xfer_all(struct fut__op *op)
{
	char *p = op->buf;
	bool empty = fut__sends_empty(op);
	while (op->done < op->len || empty) {
		ssize_t r;
		if (op->kind == OP_SEND)
			r = send(op->fd, p + op->done, op->len - op->done,
				 op->flags);
		else if (op->off >= 0)
			r = pwrite(op->fd, p + op->done, op->len - op->done,
				   op->off + (int64_t)op->done);
		else
			r = write(op->fd, p + op->done, op->len - op->done);
		if (r >= 0) {
			op->done += (size_t)r;
			empty = false;
			continue;
		}
		if (errno == EINTR && !stop_here(op))
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int w = wait_ready(op, op->fd, POLLOUT);
			if (w == 0)
				continue;
			return w;
		}
		return -errno;
	}
	return (int64_t)op->len;
}

/*
 * Runs op as the plain blocking syscall and returns its result. Called on
 * worker threads. A backend that interrupts workers with a signal sets
 * op->stop_on_eintr, and op->cancel_req when it wants the op to stop, so
 * that EINTR then ends the op instead of restarting it.
 */
int64_t fut__op_exec_blocking(struct fut__op *op)
{
	int fd = op->fd;
	switch (op->kind) {
	case OP_ACCEPT:
		RETRY(accept4(fd, op->addr, op->addrlen,
			      SOCK_NONBLOCK | SOCK_CLOEXEC), fd, POLLIN);
	case OP_CONNECT:
		if (connect(fd, op->addr, op->sslen) == 0)
			return 0;
		/* EALREADY here: another connect is under way (io_uring and
		 * epoll say so too); EAGAIN: a Unix socket's full backlog,
		 * nothing under way, the answer (io_uring's too). */
		if (errno != EINPROGRESS && errno != EINTR)
			return -errno;
		/* Collected by connecting again (see epoll.c's attempt): a
		 * blocking socket waits in it, a non-blocking one says
		 * EALREADY until the handshake ends. */
		for (;;) {
			if (errno == EINTR && stop_here(op))
				return -EINTR;
			int r = wait_ready(op, fd, POLLOUT);
			if (r < 0)
				return r;
			if (connect(fd, op->addr, op->sslen) == 0 ||
			    errno == EISCONN)
				return 0;
			if (errno != EALREADY && errno != EINPROGRESS &&
			    errno != EINTR)
				return -errno;
		}
	case OP_RECV:
		/* A blocking recv of 0 bytes returns 0 at once on a TCP socket
		 * but waits on others, and a non-blocking one says EAGAIN:
		 * wait until readable, as the epoll and io_uring forms do. */
		if (!op->len) {
			int r = wait_ready(op, fd, POLLIN);
			if (r < 0)
				return r;
		}
		if ((op->flags & (MSG_WAITALL | MSG_PEEK)) == MSG_WAITALL)
			return recv_all(op);
		RETRY(recv(fd, op->buf, op->len, op->flags), fd, POLLIN);
	case OP_READ:
		if (op->off >= 0)
			RETRY(pread(fd, op->buf, op->len, op->off), fd, POLLIN);
		RETRY(read(fd, op->buf, op->len), fd, POLLIN);
	case OP_SEND:
	case OP_WRITE:
		return xfer_all(op);
	case OP_POLL: {
		struct pollfd p = { .fd = fd, .events = op->events };
		for (;;) {
			int r = poll(&p, 1, -1);
			if (r > 0)
				return fut__poll_result(p.revents);
			if (r < 0 && (errno != EINTR || stop_here(op)))
				return -errno;
		}
	}
	case OP_CLOSE:
		return close(fd) < 0 && errno != EINTR ? -errno : 0;
	default:
		return -EINVAL;
	}
}

/* --- fut_run_blocking --- */

static int64_t blocking_work(struct fut__job *job)
{
	struct fut__op *op = fut__container_of(job, struct fut__op, u.job);
	return op->bfn(op->barg);
}

static void blocking_done(struct fut__job *job, int64_t res)
{
	fut__op_complete(fut__container_of(job, struct fut__op, u.job), res);
}

static int blocking_cancel(fut *f)
{
	struct fut__op *op = f->pdata;
	op_foreground(op);
	int r = fut__pool_cancel(&op->u.job);
	if (r == 0)
		fut__op_complete(op, -ECANCELED);
	return r;
}

static const struct fut__producer blocking_producer = {
	.cancel = blocking_cancel,
	.background = op_background,
};

fut *fut_run_blocking(fut_loop *loop, fut_blocking_fn fn, void *arg)
{
	if (!loop)
		return NULL;
	if (!fn)
		return fut_rejected(loop, -EINVAL);
	struct fut__op *op = fut__op_alloc(loop, OP_BLOCKING);
	if (!op)
		return NULL;
	fut *f = fut__op_future(op, &blocking_producer);
	if (!f)
		return NULL;
	op->bfn = fn;
	op->barg = arg;
	op->u.job.work = blocking_work;
	op->u.job.done = blocking_done;
	int r = loop->closing ? -ECANCELED :
		fut__pool_submit(loop, FUT__LANE_USER, &op->u.job);
	if (r < 0)
		fut__op_complete(op, r);
	return f;
}
