/*
 * The epoll backend: completions emulated on readiness.
 *
 * An op is first tried as a non-blocking syscall; only on EAGAIN is it
 * queued on its fd, and the fd is registered with epoll once, edge-triggered
 * for both directions, for its whole life (libuv and h2o re-arm per op; one
 * epoll_ctl per fd is what lets a keep-alive connection cost no epoll_ctl
 * per request). Per fd there are three FIFO queues (read side, write side,
 * poll) so operations on one fd complete in the order they were submitted.
 *
 * Regular files cannot be polled (epoll_ctl says EPERM), so their reads and
 * writes run on the loop's I/O thread-pool lane. Those at an offset run
 * side by side; those at the file position (offset -1) go to the pool one
 * at a time per fd, in order, or two workers would race for the position
 * and a file written in pieces would come out shuffled.
 */
#include "backend-internal.h"
#include "opq.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define WAKE_TAG UINT64_MAX
#define MAX_EVENTS 256

/* Q_HELD: a file op at the file position (off < 0) waiting in fq behind
 * another one, off the pool until that one ends. */
enum { Q_NONE = 0, Q_READ, Q_WRITE, Q_POLL, Q_POOL, Q_HELD };
/* attempt(): a connect that failed with EAGAIN, not one to wait for. */
#define CONNECT_EAGAIN (-EAGAIN - 4096)
enum { FD_UNKNOWN = 0, FD_POLLABLE, FD_FILE };

struct fdstate {
	struct fut__opq q[3]; /* Q_READ, Q_WRITE, Q_POLL (index - 1) */
	struct fut__opq fq;   /* FD_FILE: ops on the pool, queued or running */
	struct fut__op *close_op; /* waits for fq's running ops */
	uint8_t kind;
	bool registered;
	bool sock;
	bool stream;   /* SOCK_STREAM: a short recv means the buffer is empty */
	bool rdrained; /* known empty until the next EPOLLIN edge */
	bool rdhup;    /* the peer's FIN (or an error) was seen: stays readable */
};

struct ep {
	int epfd, evfd;
	struct fdstate *fds;
	size_t nfds;
	struct epoll_event ev[MAX_EVENTS];
};

static struct ep *EP(struct fut_loop *loop)
{
	return loop->be_data;
}

static struct fdstate *fdstate(struct ep *ep, int fd)
{
	if ((size_t)fd >= ep->nfds) {
		void *tab = fut__fdtable_grow(ep->fds, &ep->nfds,
					      sizeof(struct fdstate), fd);
		if (!tab)
			return NULL;
		ep->fds = tab;
	}
	return &ep->fds[fd];
}

static int ep_init(struct fut_loop *loop)
{
	struct ep *ep = calloc(1, sizeof(*ep));
	if (!ep)
		return -ENOMEM;
	ep->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ep->epfd < 0) {
		int r = -errno;
		free(ep);
		return r;
	}
	ep->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	/* Edge-triggered, and never read: every write to an eventfd wakes
	 * its waiters, so each wake() is one new edge and the loop saves the
	 * read(2) that a level-triggered eventfd would cost per wake-up. */
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET,
				  .data.u64 = WAKE_TAG };
	if (ep->evfd < 0 || epoll_ctl(ep->epfd, EPOLL_CTL_ADD, ep->evfd, &ev) < 0) {
		int r = -errno;
		if (ep->evfd >= 0)
			close(ep->evfd);
		close(ep->epfd);
		free(ep);
		return r;
	}
	loop->be_data = ep;
	return 0;
}

static void ep_fini(struct fut_loop *loop)
{
	struct ep *ep = EP(loop);
	close(ep->evfd);
	close(ep->epfd);
	free(ep->fds);
	free(ep);
}

static void ep_wake(struct fut_loop *loop)
{
	struct ep *ep = EP(loop);
	uint64_t one = 1;
	/* EAGAIN means the counter is full: a wake-up is pending anyway. */
	while (write(ep->evfd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

/* Learn what fd is, once: pollable (made non-blocking) or a regular file. */
static int classify(struct fdstate *fs, int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	int kind = fut__fd_kind(st.st_mode);
	if (kind == FUT__FD_FILE) {
		fs->kind = FD_FILE;
		return 0;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
		return -errno;
	fs->kind = FD_POLLABLE;
	fs->sock = kind == FUT__FD_SOCK;
	int type = 0;
	socklen_t tl = sizeof(type);
	fs->stream = fs->sock &&
		     getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 &&
		     type == SOCK_STREAM;
	fs->rdrained = fs->rdhup = false;
	return 0;
}

static int ensure_registered(struct ep *ep, struct fdstate *fs, int fd)
{
	if (fs->registered)
		return 0;
	/* epoll_ctl(ADD) reports readiness that already exists, so an edge
	 * that came between our EAGAIN and this call is not lost. */
	struct epoll_event ev = {
		/* EPOLLPRI for a fut_poll of POLLPRI (urgent data, a pty's
		 * packet mode): it comes rarely, and only on what asks. */
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET,
		.data.u64 = (uint64_t)fd,
	};
	if (epoll_ctl(ep->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		if (errno != EEXIST)
			return -errno;
		if (epoll_ctl(ep->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
			return -errno;
	}
	fs->registered = true;
	return 0;
}

/* A freshly accepted socket is known: non-blocking, and not registered
 * (whatever a previous holder of that number left behind). */
static void adopt_accepted(struct ep *ep, int nfd, bool stream)
{
	/* Never grow the table here: this runs inside attempt(), whose
	 * callers hold pointers into it. A number past its end has no
	 * state yet; fdstate() zeroes it when it is first used (and
	 * classify() then learns what it is). */
	if ((size_t)nfd >= ep->nfds)
		return;
	struct fdstate *fs = &ep->fds[nfd];
	if (fs->registered)
		(void)epoll_ctl(ep->epfd, EPOLL_CTL_DEL, nfd, NULL);
	fs->registered = false;
	fs->kind = FD_POLLABLE;
	fs->sock = true;
	fs->stream = stream;
	fs->rdrained = fs->rdhup = false;
}

/*
 * recv(2) and send(2) as bare system calls. The loop's never block
 * (MSG_DONTWAIT), so they have no use for glibc's cancellation point,
 * which in a process with more than one thread turns asynchronous
 * cancellation on and off around each call: four atomic operations per
 * request and response.
 */
static ssize_t nb_recv(int fd, void *buf, size_t len, int flags)
{
	return syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
}

static ssize_t nb_send(int fd, const void *buf, size_t len, int flags)
{
	return syscall(SYS_sendto, fd, buf, len, flags, NULL, 0);
}

static int64_t send_some(struct fut__op *op)
{
	char *p = op->buf;
	bool empty = fut__sends_empty(op);
	while (op->done < op->len || empty) {
		ssize_t r;
		if (op->kind == OP_SEND)
			r = nb_send(op->fd, p + op->done, op->len - op->done,
				    op->flags | MSG_DONTWAIT);
		else if (op->off >= 0) /* ESPIPE on a pipe, as the others */
			r = pwrite(op->fd, p + op->done, op->len - op->done,
				   op->off + (off_t)op->done);
		else
			r = write(op->fd, p + op->done, op->len - op->done);
		if (r >= 0) {
			op->done += (size_t)r;
			empty = false;
		} else if (errno != EINTR) {
			return -errno;
		}
	}
	return (int64_t)op->len;
}

/*
 * MSG_WAITALL, which MSG_DONTWAIT overrides: gather until len, end of
 * file or an error, as recv(2) would block for (the other backends keep
 * the flag's meaning too). An error after some bytes reports the bytes.
 */
static int64_t recv_all(struct fut__op *op)
{
	char *p = op->buf;
	while (op->done < op->len) {
		ssize_t r = nb_recv(op->fd, p + op->done, op->len - op->done,
				    op->flags | MSG_DONTWAIT);
		if (r > 0)
			op->done += (size_t)r;
		else if (r == 0)
			break;
		else if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -EAGAIN;
		else if (errno != EINTR)
			return op->done ? (int64_t)op->done : -errno;
	}
	return (int64_t)op->done;
}

/* Try op once without blocking; -EAGAIN means "wait for readiness". */
static int64_t attempt(struct ep *ep, struct fut__op *op)
{
	ssize_t r;
	int fd = op->fd;
	for (;;) {
		switch (op->kind) {
		case OP_RECV:
			/* Gathered for a stream, as the kernel would block
			 * for; MSG_PEEK would copy the same bytes again, and a
			 * datagram is one message whatever the flag. */
			if ((op->flags & MSG_WAITALL) && op->len &&
			    !(op->flags & MSG_PEEK) &&
			    (size_t)fd < ep->nfds && ep->fds[fd].stream)
				return recv_all(op);
			r = nb_recv(fd, op->buf, op->len,
				    op->flags | MSG_DONTWAIT);
			break;
		case OP_READ:
			r = op->off >= 0 ? pread(fd, op->buf, op->len, op->off) :
					   read(fd, op->buf, op->len);
			break;
		case OP_ACCEPT:
			r = accept4(fd, op->addr, op->addrlen,
				    SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (r >= 0)
				adopt_accepted(ep, (int)r,
					       (size_t)fd < ep->nfds &&
					       ep->fds[fd].stream);
			break;
		case OP_SEND:
		case OP_WRITE:
			return send_some(op);
		case OP_CONNECT:
			if (!op->bq) {
				r = connect(fd, op->addr, op->sslen);
				if (r < 0 && errno == EINPROGRESS)
					return -EAGAIN;
				/* A Unix socket's full backlog: nothing is
				 * under way, no edge will come. The answer,
				 * as io_uring gives it. */
				if (r < 0 && errno == EAGAIN)
					return CONNECT_EAGAIN;
				break;
			}
			/* The outcome is collected by connecting again, as the
			 * kernel wants: SO_ERROR and getpeername leave the
			 * socket "connecting", so a later connect(2) of the
			 * program's said 0 where io_uring's says EISCONN, and a
			 * refused one read as ECONNABORTED when retried. */
			if (connect(fd, op->addr, op->sslen) == 0 ||
			    errno == EISCONN)
				return 0;
			if (errno == EALREADY || errno == EINPROGRESS ||
			    errno == EAGAIN || errno == EINTR)
				return -EAGAIN;
			return -errno;
		case OP_POLL: {
			struct pollfd p = { .fd = fd, .events = op->events };
			r = poll(&p, 1, 0);
			if (r > 0)
				return fut__poll_result(p.revents);
			if (r == 0)
				return -EAGAIN;
			break;
		}
		default:
			return -EINVAL;
		}
		if (r >= 0)
			return r;
		if (errno != EINTR)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

/* A recv on a stream socket that came back short emptied the socket's
 * buffer: until the next EPOLLIN edge (the fd is registered, so one comes
 * when data arrives) another recv would only return EAGAIN, so it waits
 * without trying. A keep-alive server saves that syscall on every request
 * (nginx keeps the same "ready" state per connection). */
static bool drained_by(struct fdstate *fs, const struct fut__op *op,
		       int64_t res)
{
	return op->kind == OP_RECV && !op->flags && fs->stream &&
	       fs->registered && !fs->rdhup && (res == -EAGAIN ||
				  (res > 0 && (size_t)res < op->len));
}

static bool skip_try(const struct fdstate *fs, const struct fut__op *op)
{
	return op->kind == OP_RECV && !op->flags && fs->rdrained;
}

static int64_t file_work(struct fut__job *job)
{
	return fut__op_exec_blocking(fut__container_of(job, struct fut__op, u.job));
}

static void close_now(struct ep *ep, struct fdstate *fs, struct fut__op *op);

/* Whether op went to the pool; if not, it has ended (and is freed). */
static bool file_start(struct fut_loop *loop, struct fdstate *fs,
		       struct fut__op *op)
{
	op->bq = Q_POOL;
	int r = fut__pool_submit(loop, FUT__LANE_IO, &op->u.job);
	if (r < 0) {
		op->bq = Q_NONE;
		fut__opq_unlink(&fs->fq, op);
		fut__op_complete(op, r);
		return false;
	}
	return true;
}

/* The first op at the file position still in fq, running or held. */
static struct fut__op *first_at_pos(struct fdstate *fs)
{
	for (struct fut__op *o = fs->fq.head; o; o = o->next)
		if (o->off < 0)
			return o;
	return NULL;
}

/* The op at the file position ahead of the rest ended: the next goes. */
static void start_held(struct fut_loop *loop, struct fdstate *fs)
{
	struct fut__op *o;
	while ((o = first_at_pos(fs)) && o->bq == Q_HELD)
		if (file_start(loop, fs, o))
			return;
}

static void file_done(struct fut__job *job, int64_t res)
{
	struct fut__op *op = fut__container_of(job, struct fut__op, u.job);
	struct ep *ep = EP(op->loop);
	struct fdstate *fs = &ep->fds[op->fd];
	op->bq = Q_NONE;
	fut__opq_unlink(&fs->fq, op);
	if (op->off < 0)
		start_held(op->loop, fs);
	fut__op_complete(op, res);
	if (fs->close_op && !fs->fq.head) {
		struct fut__op *c = fs->close_op;
		fs->close_op = NULL;
		close_now(ep, fs, c);
	}
}

static void fail_queue(struct fut__opq *q, int err)
{
	struct fut__op *op;
	while ((op = q->head)) {
		fut__opq_unlink(q, op);
		fut__op_complete(op, err);
	}
}

static void close_now(struct ep *ep, struct fdstate *fs, struct fut__op *op)
{
	if (fs) {
		if (fs->registered)
			(void)epoll_ctl(ep->epfd, EPOLL_CTL_DEL, op->fd, NULL);
		fs->registered = false;
		fs->kind = FD_UNKNOWN;
	}
	/* Linux always releases the fd, even when close reports EINTR. */
	int r = close(op->fd) < 0 && errno != EINTR ? -errno : 0;
	fut__op_complete(op, r);
}

/*
 * A file's reads and writes still queued on the pool are cancelled; one a
 * worker is running delays the close until it returns, or it would run
 * on whatever file is opened next under the same number.
 */
static void do_close(struct ep *ep, struct fut__op *op)
{
	int fd = op->fd;
	if ((size_t)fd >= ep->nfds) {
		close_now(ep, NULL, op);
		return;
	}
	struct fdstate *fs = &ep->fds[fd];
	if (fs->close_op) {
		fut__op_complete(op, -EBADF); /* closed twice */
		return;
	}
	for (int i = 0; i < 3; i++)
		fail_queue(&fs->q[i], -ECANCELED);
	for (struct fut__op *o = fs->fq.head, *next; o; o = next) {
		next = o->next;
		if (o->bq == Q_HELD || fut__pool_cancel(&o->u.job) == 0) {
			o->bq = Q_NONE;
			fut__opq_unlink(&fs->fq, o);
			fut__op_complete(o, -ECANCELED);
		}
	}
	if (fs->fq.head)
		fs->close_op = op;
	else
		close_now(ep, fs, op);
}

static void ep_submit(struct fut_loop *loop, struct fut__op *op)
{
	struct ep *ep = EP(loop);
	if (op->kind == OP_CLOSE) {
		do_close(ep, op);
		return;
	}
	struct fdstate *fs = fdstate(ep, op->fd);
	if (!fs) {
		fut__op_complete(op, -errno); /* EBADF or ENOMEM */
		return;
	}
	if (fs->close_op) { /* being closed: as good as closed */
		fut__op_complete(op, -EBADF);
		return;
	}
	int r;
	if (fs->kind == FD_UNKNOWN && (r = classify(fs, op->fd)) < 0) {
		fut__op_complete(op, r);
		return;
	}
	if (fs->kind == FD_FILE) {
		if (op->kind == OP_POLL) {
			fut__op_complete(op, fut__file_poll(op->events));
			return;
		}
		op->u.job.work = file_work;
		op->u.job.done = file_done;
		bool behind = op->off < 0 && first_at_pos(fs);
		fut__opq_append(&fs->fq, op);
		if (behind)
			op->bq = Q_HELD;
		else
			(void)file_start(loop, fs, op);
		return;
	}
	if (fs->sock)
		fut__socket_write(op);
	int qi = fut__op_side(op->kind) + 1;
	struct fut__opq *q = &fs->q[qi - 1];
	if (op->kind == OP_CONNECT) /* a new connection on this number */
		fs->rdrained = fs->rdhup = false;
	/* Polls consume nothing and keep no order: each is tried, even
	 * behind another (an edge that already passed would not come again
	 * for it). */
	if ((!q->head || op->kind == OP_POLL) && !skip_try(fs, op)) {
		int64_t res = attempt(ep, op);
		if (res != -EAGAIN) {
			if (res == CONNECT_EAGAIN)
				res = -EAGAIN;
			/* Known drained, but not registered yet: the next
			 * recv registers when it has to wait, and ADD then
			 * reports data that came meanwhile. A connection
			 * that reads one request, answers and closes (HTTP/1.0)
			 * never costs an epoll_ctl ADD and DEL. */
			if (res > 0 && op->kind == OP_RECV && !op->flags &&
			    fs->stream && !fs->rdhup && (size_t)res < op->len)
				fs->rdrained = true;
			fut__op_complete(op, res);
			return;
		}
	}
	if ((r = ensure_registered(ep, fs, op->fd)) < 0) {
		/* EPERM: a file epoll cannot watch (/dev/null), always ready
		 * for what it offers; a poll for anything else would never
		 * end, as for a regular file: refused the same way. */
		fut__op_complete(op, r == -EPERM && op->kind == OP_POLL ?
					     -EINVAL : r);
		return;
	}
	op->bq = (uint8_t)qi;
	fut__opq_append(q, op);
}

static int ep_cancel(struct fut_loop *loop, struct fut__op *op)
{
	struct ep *ep = EP(loop);
	if (op->bq == Q_POOL || op->bq == Q_HELD) {
		int r = op->bq == Q_HELD ? 0 : fut__pool_cancel(&op->u.job);
		if (r == 0) {
			struct fdstate *fs = &ep->fds[op->fd];
			op->bq = Q_NONE;
			fut__opq_unlink(&fs->fq, op);
			/* A queued one at the position withdrawn: one held
			 * behind it may be first now. */
			if (op->off < 0)
				start_held(loop, fs);
			fut__op_complete(op, -ECANCELED);
		}
		return r;
	}
	if (op->bq == Q_NONE || (size_t)op->fd >= ep->nfds)
		return -EBUSY;
	fut__opq_unlink(&ep->fds[op->fd].q[op->bq - 1], op);
	fut__op_complete(op, fut__cancel_result(op));
	return 0;
}

static void run_queue(struct ep *ep, struct fdstate *fs, struct fut__opq *q)
{
	struct fut__op *op;
	while ((op = q->head)) {
		if (skip_try(fs, op))
			return;
		int64_t res = attempt(ep, op);
		if (drained_by(fs, op, res))
			fs->rdrained = true;
		if (res == -EAGAIN)
			return;
		fut__opq_unlink(q, op);
		fut__op_complete(op, res);
	}
}

static void on_event(struct ep *ep, int fd, uint32_t events)
{
	if ((size_t)fd >= ep->nfds)
		return;
	struct fdstate *fs = &ep->fds[fd];
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
		fs->rdrained = false;
		/* A short read does not empty a socket whose FIN has come:
		 * the next recv returns 0 at once, and no new edge follows. */
		if (events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP))
			fs->rdhup = true;
		run_queue(ep, fs, &fs->q[Q_READ - 1]);
	}
	if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
		run_queue(ep, fs, &fs->q[Q_WRITE - 1]);
	/* epoll's EPOLL* bits equal poll's POLL* bits on Linux. */
	struct fut__opq *pq = &fs->q[Q_POLL - 1];
	for (struct fut__op *op = pq->head, *next; op; op = next) {
		next = op->next;
		short rev = (short)(events & ((uint32_t)op->events |
				    POLLERR | POLLHUP));
		if (rev) {
			fut__opq_unlink(pq, op);
			fut__op_complete(op, rev);
		}
	}
}

static int ep_wait(struct fut_loop *loop, int timeout_ms)
{
	struct ep *ep = EP(loop);
	int n;
	bool waited = false;
#ifdef HAVE_EPOLL_PWAIT2
	/* To the ns (Linux 5.11); epoll_wait's whole ms fire timers late. */
	static _Atomic bool no_pwait2;
	if (timeout_ms > 0 && !atomic_load_explicit(&no_pwait2,
						     memory_order_relaxed)) {
		n = epoll_pwait2(ep->epfd, ep->ev, MAX_EVENTS, &loop->wait_ts,
				 NULL);
		waited = n >= 0 || errno != ENOSYS;
		if (!waited) /* an old kernel, or valgrind */
			atomic_store_explicit(&no_pwait2, true,
					      memory_order_relaxed);
	}
#endif
	if (!waited)
		n = epoll_wait(ep->epfd, ep->ev, MAX_EVENTS, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		uint64_t tag = ep->ev[i].data.u64;
		if (tag != WAKE_TAG)
			on_event(ep, (int)tag, ep->ev[i].events);
	}
	return 0;
}

const struct fut_backend fut__backend_epoll = {
	.name = "epoll",
	.init = ep_init,
	.fini = ep_fini,
	.submit = ep_submit,
	.cancel = ep_cancel,
	.wait = ep_wait,
	.wake = ep_wake,
};
