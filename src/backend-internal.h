/*
 * The backend interface. A backend is one file in backends/ exporting one
 * const struct fut_backend. The interface is completion-shaped (STYLE.md 7):
 * the core hands over an op with its fd, buffer and length, and the backend
 * later calls fut__op_complete(op, result) on the loop thread, with a byte
 * count, a new fd, 0, or a negative errno. Readiness never leaves the
 * backend.
 */
#ifndef FUTURE_BACKEND_INTERNAL_H
#define FUTURE_BACKEND_INTERNAL_H

#include "future-internal.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

struct fut_backend {
	/* Name reported by fut_loop_backend() and matched by FUTURE_BACKEND. */
	const char *name;

	/* Create the backend's state and hang it on loop->be_data. Must
	 * really create the kernel object (ring, epoll fd): success means the
	 * backend works here. Returns 0 or a negative errno; -ENOSYS and
	 * -EPERM mean "this kernel or sandbox refuses it". */
	int (*init)(struct fut_loop *loop);

	/* Free the state. Every op has completed by then. */
	void (*fini)(struct fut_loop *loop);

	/* Start op (OP_ACCEPT..OP_CLOSE). May complete it before returning
	 * (fut__op_complete is safe here: callbacks never run inline). */
	void (*submit)(struct fut_loop *loop, struct fut__op *op);

	/* Withdraw op. Returns 0 after completing it with -ECANCELED, 1 when
	 * the withdrawal is asynchronous (the op completes later, with
	 * -ECANCELED or with its own result), -EBUSY when it cannot. */
	int (*cancel)(struct fut_loop *loop, struct fut__op *op);

	/* Block up to timeout_ms (-1: no limit, 0: poll) for completions and
	 * deliver them. Returns 0 or a negative errno. A call to wake() from
	 * any thread makes a blocked wait return. */
	int (*wait)(struct fut_loop *loop, int timeout_ms);

	/* Thread-safe: interrupt wait(). */
	void (*wake)(struct fut_loop *loop);
};

/*
 * What an fd is, from its fstat mode, the same on every backend (which
 * each learn once and keep until fut_close): a file (regular, block
 * device or directory: not pollable, read and written at offsets), a
 * pipe, a socket, or something else pollable (a tty, an eventfd). io_uring
 * took a directory for "other" where epoll and threads took it for a file.
 */
enum { FUT__FD_UNKNOWN = 0, FUT__FD_FILE, FUT__FD_PIPE, FUT__FD_SOCK,
       FUT__FD_OTHER };

static inline int fut__fd_kind(mode_t mode)
{
	if (S_ISREG(mode) || S_ISBLK(mode) || S_ISDIR(mode))
		return FUT__FD_FILE;
	return S_ISFIFO(mode) ? FUT__FD_PIPE :
	       S_ISSOCK(mode) ? FUT__FD_SOCK : FUT__FD_OTHER;
}

/*
 * fut_poll on a regular file or block device, the same on every backend:
 * such a file is always ready to read and write (poll(2) says so at once),
 * and a poll for nothing else could never end, so it is refused.
 */
static inline int64_t fut__file_poll(short events)
{
	short r = events & (POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM);
	return r ? r : -EINVAL;
}

/* A stream socket: a short MSG_WAITALL recv on it goes on (src/io.c). */
bool fut__sock_gathers(int fd);

/* A send of 0 bytes that send(2) would make: an empty datagram on a
 * datagram or seqpacket socket. On a stream there is nothing to send. */
bool fut__sends_empty(const struct fut__op *op);

/* What a cancelled op ends with: the bytes a MSG_WAITALL recv gathered
 * before the cancel are taken from the socket, so they are its result
 * (as the ring's own cancel gives them), not lost in -ECANCELED. */
static inline int64_t fut__cancel_result(const struct fut__op *op)
{
	return op->kind == OP_RECV && op->done ? (int64_t)op->done
						: -ECANCELED;
}

/* A poll(2) result as fut_poll's: POLLNVAL (a number closed behind the
 * loop's back) is EBADF, on every backend. */
static inline int64_t fut__poll_result(short revents)
{
	return revents & POLLNVAL ? -EBADF : revents;
}

/*
 * fut_write on a socket, the same on every backend: write(2) would raise
 * SIGPIPE when the peer is gone, which kills a server over one client that
 * went away. The stream write becomes the send it is, with fut_send's
 * MSG_NOSIGNAL; a positional write keeps its ESPIPE. Call once fd is known
 * to be a socket.
 */
static inline void fut__socket_write(struct fut__op *op)
{
	if (op->kind == OP_WRITE && op->off < 0) {
		op->kind = OP_SEND;
		op->flags = MSG_NOSIGNAL;
	}
}

extern const struct fut_backend fut__backend_epoll;
#ifdef HAVE_LIBURING
extern const struct fut_backend fut__backend_io_uring;
#endif
#ifdef FUT_HAVE_THREADS_BACKEND
extern const struct fut_backend fut__backend_threads;
#endif

#endif /* FUTURE_BACKEND_INTERNAL_H */
