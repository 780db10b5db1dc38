/*
 * The io_uring backend (liburing): the kernel completes operations itself,
 * so the core's completion-shaped interface maps onto it one to one.
 *
 * - SQEs are queued by submit() and handed to the kernel once per loop
 *   tick, in wait(), together with the wait itself
 *   (io_uring_submit_and_wait_timeout: one io_uring_enter per tick).
 * - Per fd, only the head operation of each direction is in the ring, the
 *   rest wait in a FIFO here: io_uring gives no ordering between two sends
 *   on one socket (a short first send would let the second overtake it),
 *   and the library promises that sends never interleave and that
 *   operations on one fd complete in submission order.
 * - Cancellation goes through the ring (IORING_OP_ASYNC_CANCEL on the op's
 *   user_data) and is asynchronous: the op's own CQE arrives later with
 *   -ECANCELED, or with its result if it won the race.
 * - A short send or write is resubmitted from op->done until all is sent.
 * - Other threads wake a loop blocked in the ring by writing an eventfd
 *   that a multishot poll in the ring watches (see arm_wake).
 * - Accept is single-shot, one SQE per fut_accept: a multishot accept
 *   takes every connection in the backlog as soon as it is armed, and
 *   whatever arrives while it stays armed, for a loop that asked for one;
 *   another loop on the same listener, or the program after the loop was
 *   freed, found none (session 14). It saved 7..26% of the CPU per request
 *   with a connection per request.
 * - Ring flags: COOP_TASKRUN (5.19) where the kernel has it; not
 *   SINGLE_ISSUER/DEFER_TASKRUN (6.0/6.1), which would tie the ring to the
 *   thread that created it, while a loop may be created on one thread and
 *   run on another.
 */
#include "backend-internal.h"
#include "opq.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define RING_ENTRIES 256
/* user_data: 0 for cancel SQEs, TAG_WAKE for the eventfd read, or an op
 * pointer (8-aligned). */
#define TAG_WAKE 1

enum { Q_READ = FUT__SIDE_READ, Q_WRITE = FUT__SIDE_WRITE,
       Q_POLL = FUT__SIDE_POLL, NQ = FUT__NSIDES };
enum { B_NONE = 0, B_FDQ, B_RING };


struct fdstate {
	struct fut__opq q[NQ];
	struct fut__op *inflight[NQ];
	uint8_t kind; /* FUT__FD_*: learned once, kept until fut_close */
	bool closed; /* by fut_close; the number may be open again since */
	uint64_t gen; /* fut_closes of this number so far */
	unsigned polls; /* in the ring, outside the queues */
};

struct uring {
	struct io_uring ring;
	int evfd;
	uint64_t evbuf;
	bool wake_read; /* no multishot poll here: a read stays queued */
	struct fdstate *fds;
	size_t nfds;
};

#define OP_QI(op) ((op)->u.be[0])
#define OP_GEN(op) ((op)->u.be[1]) /* its fd's gen when submitted */

static struct uring *U(struct fut_loop *loop)
{
	return loop->be_data;
}

static struct fdstate *fdstate(struct uring *u, int fd)
{
	if ((size_t)fd >= u->nfds) {
		void *tab = fut__fdtable_grow(u->fds, &u->nfds,
					      sizeof(struct fdstate), fd);
		if (!tab)
			return NULL;
		u->fds = tab;
	}
	return &u->fds[fd];
}

/* An SQE, flushing the queue to the kernel when it is full. */
static struct io_uring_sqe *sqe_get(struct uring *u)
{
	struct io_uring_sqe *sqe;
	while (!(sqe = io_uring_get_sqe(&u->ring))) {
		int r = io_uring_submit(&u->ring);
		if (r == -EBUSY) /* CQ overflow backlog: let it drain */
			io_uring_get_events(&u->ring);
	}
	return sqe;
}

/* Hand every queued SQE to the kernel now (they are issued as this
 * returns). */
static void submit_all(struct uring *u)
{
	while (io_uring_sq_ready(&u->ring)) {
		int r = io_uring_submit(&u->ring);
		if (r == -EBUSY) /* CQ overflow backlog: let it drain */
			io_uring_get_events(&u->ring);
		else if (r < 0 && r != -EINTR)
			return; /* the wait's submit reports it */
	}
}

/*
 * The wake-up eventfd is watched by a multishot poll and never read, as
 * the epoll backend watches it edge-triggered: every write(2) wakes the
 * eventfd's waiters, so each wake() is one CQE, and no read completes and
 * is re-armed per wake-up. Kernels without multishot poll (before 5.13)
 * answer -EINVAL; the loop then keeps one read queued instead.
 */
static void arm_wake(struct uring *u)
{
	struct io_uring_sqe *sqe = sqe_get(u);
	if (u->wake_read)
		io_uring_prep_read(sqe, u->evfd, &u->evbuf, sizeof(u->evbuf), 0);
	else
		io_uring_prep_poll_multishot(sqe, u->evfd, POLLIN);
	io_uring_sqe_set_data64(sqe, TAG_WAKE);
}

static void wake_cqe(struct uring *u, int res, unsigned flags)
{
	if (res == -EINVAL && !u->wake_read)
		u->wake_read = true;
	if (!(flags & IORING_CQE_F_MORE))
		arm_wake(u);
}

static int ur_init(struct fut_loop *loop)
{
	struct uring *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_COOP_TASKRUN;
	int r = io_uring_queue_init_params(RING_ENTRIES, &u->ring, &p);
	if (r == -EINVAL) { /* kernel older than 5.19 */
		memset(&p, 0, sizeof(p));
		r = io_uring_queue_init_params(RING_ENTRIES, &u->ring, &p);
	}
	if (r < 0) {
		free(u);
		return r;
	}
	u->evfd = eventfd(0, EFD_CLOEXEC);
	if (u->evfd < 0) {
		r = -errno;
		io_uring_queue_exit(&u->ring);
		free(u);
		return r;
	}
	loop->be_data = u;
	arm_wake(u);
	return 0;
}

static void ur_fini(struct fut_loop *loop)
{
	struct uring *u = U(loop);
	io_uring_queue_exit(&u->ring);
	close(u->evfd);
	free(u->fds);
	free(u);
}

static void ur_wake(struct fut_loop *loop)
{
	uint64_t one = 1;
	while (write(U(loop)->evfd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

/* An SQE's length is 32 bits: 4 GiB + 1 went in as 1 (a send reported
 * done with one byte sent, a read of 4 GiB as end of file). Submit at
 * most what one read(2) transfers; a short recv or read is allowed, and
 * send and write go on with the rest (completed). */
#define MAX_RW 0x7ffff000u

static unsigned ring_len(size_t n)
{
	return n > MAX_RW ? MAX_RW : (unsigned)n;
}

/* Put op (its remaining part, for send/write) into the ring. */
static void to_ring(struct uring *u, struct fut__op *op)
{
	struct io_uring_sqe *sqe = sqe_get(u);
	/* NULL is a valid buffer for 0 bytes: no arithmetic on it. */
	char *buf = op->buf ? (char *)op->buf + op->done : NULL;
	/* The ring would answer MSG_DONTWAIT with -EAGAIN; every backend
	 * waits for readiness instead. */
	int flags = op->flags & ~MSG_DONTWAIT;
	/* The ring's own MSG_WAITALL retry would peek the same bytes again
	 * into the rest of the buffer. */
	if (flags & MSG_PEEK)
		flags &= ~MSG_WAITALL;
	switch (op->kind) {
	case OP_ACCEPT:
		io_uring_prep_accept(sqe, op->fd, op->addr, op->addrlen,
				     SOCK_NONBLOCK | SOCK_CLOEXEC);
		break;
	case OP_CONNECT:
		io_uring_prep_connect(sqe, op->fd, op->addr, op->sslen);
		break;
	case OP_RECV:
		io_uring_prep_recv(sqe, op->fd, buf,
				   ring_len(op->len - op->done), flags);
		break;
	case OP_SEND:
		io_uring_prep_send(sqe, op->fd, buf,
				   ring_len(op->len - op->done), flags);
		break;
	case OP_READ:
		/* Offset -1: the file position (kernel 5.6+). */
		io_uring_prep_read(sqe, op->fd, op->buf, ring_len(op->len),
				   (uint64_t)op->off);
		break;
	case OP_WRITE:
		io_uring_prep_write(sqe, op->fd, buf,
				    ring_len(op->len - op->done),
				    op->off < 0 ? (uint64_t)-1 :
				    (uint64_t)op->off + op->done);
		break;
	case OP_POLL:
		io_uring_prep_poll_add(sqe, op->fd, (unsigned)op->events);
		break;
	}
	io_uring_sqe_set_data(sqe, op);
	op->bq = B_RING;
}

/* Start op, now the head of its fd's queue. Returns 1 when it completed
 * at once, 0 when it is under way. */
static int start(struct uring *u, struct fut__op *op)
{
	if ((op->kind == OP_SEND || op->kind == OP_WRITE) && !op->len &&
	    !fut__sends_empty(op)) {
		/* Nothing to send: done, in its turn, as on the others (the
		 * ring would say EPIPE on a shut-down socket). */
		op->bq = B_NONE;
		fut__op_complete(op, 0);
		return 1;
	}
	to_ring(u, op);
	return 0;
}

/* The head op of fd's queue qi has ended: start the next ones. */
static void advance(struct uring *u, int fd, int qi)
{
	struct fdstate *fs = &u->fds[fd];
	for (;;) {
		fs->inflight[qi] = NULL;
		struct fut__op *next = fs->q[qi].head;
		if (!next)
			return;
		fut__opq_unlink(&fs->q[qi], next);
		fs->inflight[qi] = next;
		if (!start(u, next))
			return;
	}
}

static void close_fd(struct uring *u, struct fut__op *op)
{
	struct fdstate *fs = (size_t)op->fd < u->nfds ? &u->fds[op->fd] : NULL;
	for (int qi = 0; fs && qi < NQ; qi++) {
		struct fut__op *q;
		while ((q = fs->q[qi].head)) {
			fut__opq_unlink(&fs->q[qi], q);
			q->bq = B_NONE;
			fut__op_complete(q, -ECANCELED);
		}
	}
	/* Positional file I/O is not tracked per fd: assume some. */
	bool busy = fs && fs->kind == FUT__FD_FILE;
	for (int qi = 0; fs && qi < NQ; qi++)
		busy = busy || fs->inflight[qi];
	busy = busy || (fs && fs->polls);
	if (fs) {
		fs->polls = 0; /* theirs end -ECANCELED, counted by gen */
		fs->kind = FUT__FD_UNKNOWN; /* the number may come back as anything */
		fs->closed = true;
		fs->gen++;
	}
	/*
	 * Cancel what the ring holds for this fd, and close it here, now, as
	 * the other backends do: an op submitted after fut_close then meets a
	 * closed fd (or whatever the program opens next under that number),
	 * never the old file. The cancel and every SQE before it go to the
	 * kernel first: each request takes its own reference to the file as
	 * it is issued, and the cancel finds them by fd, so the close cannot
	 * pull the file from under them. Nothing in flight: no system call
	 * but the close.
	 */
	if (busy) {
		struct io_uring_sqe *sqe = sqe_get(u);
		io_uring_prep_cancel_fd(sqe, op->fd, IORING_ASYNC_CANCEL_ALL);
		io_uring_sqe_set_data64(sqe, 0);
		submit_all(u);
	}
	/* Linux always releases the fd, even when close reports EINTR. */
	int r = close(op->fd) < 0 && errno != EINTR ? -errno : 0;
	op->bq = B_NONE;
	OP_QI(op) = NQ;
	fut__op_complete(op, r);
}

static bool is_file(struct fdstate *fs, int fd)
{
	struct stat st;
	/* Not kept when fstat fails: the number is not open. */
	if (fs->kind == FUT__FD_UNKNOWN && fstat(fd, &st) == 0)
		fs->kind = (uint8_t)fut__fd_kind(st.st_mode);
	return fs->kind == FUT__FD_FILE;
}

static void ur_submit(struct fut_loop *loop, struct fut__op *op)
{
	struct uring *u = U(loop);
	if (op->kind == OP_CLOSE) {
		close_fd(u, op);
		return;
	}
	struct fdstate *fs = fdstate(u, op->fd);
	if (!fs) {
		fut__op_complete(op, -errno); /* EBADF or ENOMEM */
		return;
	}
	/* Closed through the loop: an SQE only names the number, and by the
	 * time the kernel reads it the program may have opened something else
	 * under it. Ask now, once, as epoll's attempt would find out. */
	if (fs->closed) {
		if (fcntl(op->fd, F_GETFD) < 0) {
			fut__op_complete(op, -EBADF);
			return;
		}
		fs->closed = false;
	}
	OP_GEN(op) = fs->gen;
	if (op->kind == OP_POLL && is_file(fs, op->fd)) {
		fut__op_complete(op, fut__file_poll(op->events));
		return;
	}
	if ((op->kind == OP_READ || op->kind == OP_WRITE) && op->off >= 0 &&
	    is_file(fs, op->fd)) {
		/* Positional file I/O has no order to keep (each op names its
		 * offset, as epoll's pool runs them): all go to the ring at
		 * once, so random reads run in parallel. */
		OP_QI(op) = NQ;
		to_ring(u, op);
		return;
	}
	if ((op->kind == OP_READ || op->kind == OP_WRITE) && op->off >= 0 &&
	    (fs->kind == FUT__FD_PIPE || fs->kind == FUT__FD_SOCK ||
	     (fs->kind == FUT__FD_OTHER && pread(op->fd, NULL, 0, 0) < 0 &&
	      errno == ESPIPE))) {
		/* The ring would ignore the offset; pread(2) says ESPIPE,
		 * and so do the other backends (a tty, an eventfd: opened
		 * without a position, which a pread of nothing tells: the
		 * kernel checks that before the access mode or the length). */
		fut__op_complete(op, -ESPIPE);
		return;
	}
	if (op->kind == OP_POLL) {
		/* Polls consume nothing and keep no order: each is its own
		 * SQE, so one waiting for POLLPRI does not hold back another
		 * for POLLIN (it did: one per fd at a time). */
		OP_QI(op) = NQ;
		fs->polls++;
		to_ring(u, op);
		return;
	}
	if (op->kind == OP_WRITE && !is_file(fs, op->fd) && fs->kind == FUT__FD_SOCK)
		fut__socket_write(op);
	/* The ring's MSG_WAITALL retry would run messages together (three
	 * SEQPACKET messages came back as one); a message is whole with or
	 * without the flag, as recv(2) keeps them. */
	if (op->kind == OP_RECV &&
	    (op->flags & (MSG_WAITALL | MSG_PEEK)) == MSG_WAITALL &&
	    !fut__sock_gathers(op->fd))
		op->flags &= ~MSG_WAITALL;
	int qi = fut__op_queue(op, is_file(fs, op->fd));
	OP_QI(op) = (uint64_t)qi;
	if (fs->inflight[qi]) {
		op->bq = B_FDQ;
		fut__opq_append(&fs->q[qi], op);
		return;
	}
	fs->inflight[qi] = op;
	if (start(u, op))
		fs->inflight[qi] = NULL;
}

static int ur_cancel(struct fut_loop *loop, struct fut__op *op)
{
	struct uring *u = U(loop);
	if (op->bq == B_FDQ) {
		fut__opq_unlink(&u->fds[op->fd].q[OP_QI(op)], op);
		op->bq = B_NONE;
		fut__op_complete(op, -ECANCELED);
		return 0;
	}
	if (op->bq != B_RING)
		return -EBUSY;
	/* The CQE may be out already, and completed() would then put the
	 * op back in the ring (a short send's rest, a poll woken for
	 * nothing) where this cancel no longer finds it. */
	op->cancel_req = 1;
	struct io_uring_sqe *sqe = sqe_get(u);
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, 0);
	io_uring_sqe_set_data64(sqe, 0);
	return 1; /* the op's own CQE ends it */
}

static void completed(struct uring *u, struct fut__op *op, int res)
{
	/* The rest of a short transfer would go to whatever holds the
	 * number after a fut_close: the close ended this op. */
	bool reopened = (size_t)op->fd < u->nfds &&
			u->fds[op->fd].gen != OP_GEN(op);
	if (op->kind == OP_POLL && res > 0 && (res & POLLPRI) && !reopened) {
		/* The ring reports the wake-up's key, and a socket's data
		 * wake-up names POLLPRI with POLLIN: ask poll(2) what is
		 * really there, and wait on when nothing asked for is. */
		struct pollfd p = { .fd = op->fd, .events = op->events };
		int n = poll(&p, 1, 0);
		if (n == 0 && !op->cancel_req) {
			to_ring(u, op);
			return;
		}
		if (n == 0)
			res = -ECANCELED;
		if (n > 0)
			res = (int)fut__poll_result(p.revents);
	}
	if (op->kind == OP_POLL && res > 0) {
		/* The kernel reports POLLRDHUP to every poll: report only what
		 * was asked for, as poll(2) does, when anything asked for is
		 * there. A result of POLLRDHUP alone is passed on: re-arming
		 * would complete at once again (the half-close is for good),
		 * and parking the poll would miss the event it waits for. */
		int asked = res & (op->events | POLLERR | POLLHUP | POLLNVAL);
		if (asked)
			res = asked;
	}
	if ((op->kind == OP_SEND || op->kind == OP_WRITE) && res > 0) {
		op->done += (size_t)res;
		if (op->done >= op->len) {
			res = (int)(op->len > INT32_MAX ? INT32_MAX : op->len);
		} else if (reopened || op->cancel_req) {
			res = -ECANCELED;
		} else { /* short: send the rest */
			to_ring(u, op);
			return;
		}
	}
	/* MSG_WAITALL past one SQE's length: wait for the rest too. */
	bool waitall = op->kind == OP_RECV && (op->flags & MSG_WAITALL) &&
		       !(op->flags & MSG_PEEK);
	if (waitall && res > 0 && (unsigned)res == MAX_RW && !reopened &&
	    !op->cancel_req) {
		/* The kernel's MSG_WAITALL got all of a clamped SQE: go on
		 * for the rest. A shorter result is its own answer (end of
		 * stream, a datagram, an error after some bytes). */
		op->done += (size_t)res;
		if (op->done < op->len) {
			to_ring(u, op);
			return;
		}
	}
	/* An op the kernel ran blocking on a worker (a connect on a blocking
	 * Unix socket whose listener is full) is stopped by a signal: it
	 * was cancelled, as the others say. */
	if (res == -EINTR && (op->cancel_req || reopened))
		res = -ECANCELED;
	int fd = op->fd, kind = op->kind;
	int qi = (int)OP_QI(op);
	op->bq = B_NONE;
	if (op->kind == OP_ACCEPT && res >= 0 && (size_t)res < u->nfds)
		u->fds[res].closed = false; /* the kernel handed it out */
	int64_t r = res;
	if (waitall && op->done) /* the last SQE's bytes are not in done */
		r = (int64_t)op->done +
		    (op->done < op->len && res > 0 ? res : 0);
	if ((op->kind == OP_SEND || op->kind == OP_WRITE) && res >= 0)
		r = (int64_t)op->len;
	fut__op_complete(op, r);
	if ((size_t)fd >= u->nfds)
		return;
	if (kind == OP_POLL && !reopened)
		u->fds[fd].polls--;
	if (qi < NQ)
		advance(u, fd, qi);
}

static int ur_wait(struct fut_loop *loop, int timeout_ms)
{
	struct uring *u = U(loop);
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts = {
		.tv_sec = loop->wait_ts.tv_sec,
		.tv_nsec = loop->wait_ts.tv_nsec,
	};
	int r;
	if (timeout_ms == 0) {
		r = io_uring_submit(&u->ring);
	} else {
		r = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1,
						     timeout_ms < 0 ? NULL : &ts,
						     NULL);
	}
	if (r == -EBUSY)
		io_uring_get_events(&u->ring);
	else if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN)
		return r;
	for (;;) {
		unsigned head, n = 0;
		io_uring_for_each_cqe(&u->ring, head, cqe) {
			uint64_t tag = cqe->user_data;
			int res = cqe->res;
			n++;
			/* The macro rereads the tail: CQEs that arrive while
			 * completions queue new SQEs are taken too. */
			if (tag == TAG_WAKE)
				wake_cqe(u, res, cqe->flags);
			else if (tag != 0)
				completed(u, (struct fut__op *)(uintptr_t)tag, res);
		}
		if (!n)
			break;
		io_uring_cq_advance(&u->ring, n);
	}
	return 0;
}

const struct fut_backend fut__backend_io_uring = {
	.name = "io_uring",
	.init = ur_init,
	.fini = ur_fini,
	.submit = ur_submit,
	.cancel = ur_cancel,
	.wait = ur_wait,
	.wake = ur_wake,
};
