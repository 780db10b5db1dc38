/*
 * The threads backend: every operation is the plain blocking system call,
 * run on a worker thread; completions go back to the loop in batches
 * through the core's cross-thread queue (one wake-up per batch).
 *
 * It exists for portability and as a reference: it needs nothing but
 * POSIX threads and poll(2), and its results must match epoll's and
 * io_uring's exactly, which the shared test suite checks.
 *
 * Ordering: each fd has a FIFO queue per side (reads, writes); only the
 * head of a queue runs, the next one is released when the head
 * completes, so operations on one fd complete in submission order while a
 * socket's reads and writes still run concurrently. Polls consume nothing
 * and keep no order: each runs at once, on its own worker, listed in the
 * fd's `polls` so that fut_close can interrupt and wait for them.
 *
 * Sends, accepts and recvs are tried once on the loop thread first,
 * without blocking (see try_send, try_accept, try_recv); only one that
 * would block goes to a worker.
 *
 * Workers: started on demand, one per operation blocked at a time (a
 * blocked recv holds its worker), up to the loop's cap (fut_loop_opts
 * workers, 512 by default). At the cap ops wait for a worker, and the
 * loop polls the waiting ones itself (sweep_runq). An idle worker sleeps
 * on its own semaphore and is handed its next op directly, so it wakes up
 * running, without taking the lock again (with a shared condition
 * variable every wake-up fought the other workers for the mutex). With no
 * idle worker the op waits in the run queue, a new worker starts, and
 * whichever worker finishes first takes it.
 *
 * Cancellation: a queued operation is withdrawn at once. A blocked one is
 * interrupted with a signal (SIGRTMIN + 7, handler installed without
 * SA_RESTART) so its system call returns EINTR; because a signal sent just
 * before the worker enters the call would be lost, the loop re-sends it
 * every CANCEL_RETRY_MS until the worker reports back. fut_close waits for
 * the fd's running operations to finish before closing it, so a worker
 * never touches a reused fd number.
 */
#include "backend-internal.h"
#include "opq.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define CANCEL_RETRY_MS 5
#define SWEEP_MS 10
#define SWEEP_MAX 256

enum { Q_READ = FUT__SIDE_READ, Q_WRITE = FUT__SIDE_WRITE,
       Q_POLL = FUT__SIDE_POLL, NQ = FUT__NSIDES };
/* op->bq: where the op is. */
enum { B_NONE = 0, B_FDQ, B_RUNQ, B_RUNNING, B_DONE };

struct fdstate {
	struct fut__opq q[NQ];
	struct fut__op *running[NQ]; /* [Q_POLL] unused: see polls */
	struct fut__op **polls; /* running (or waiting for a worker) */
	unsigned npolls, cappolls;
	struct fut__op *close_op; /* waits for running ops to finish */
	bool nonblock; /* O_NONBLOCK set, for try_accept */
	uint8_t kind;  /* FUT__FD_*: learned once, kept until fut_close */
	int8_t waitable; /* FUT__FD_OTHER: 0 not known, 1 yes, -1 no */
};

struct wk {
	struct thr *t;
	pthread_t thread;      /* from pthread_create: for the join */
	pthread_t tid;         /* the worker's own pthread_self(): signals */
	sem_t sem;             /* posted when op is set, or to stop */
	struct fut__op *op;    /* handed over by dispatch() */
	struct wk *next_idle;
};

struct thr {
	struct fut_loop *loop;
	int evfd;
	struct fdstate *fds;
	size_t nfds;
	size_t cancelling; /* running ops with a cancel in flight */
	uint64_t swept;    /* when sweep_runq last ran (ms) */

	pthread_mutex_t lock; /* runq, workers, idle, stopping, op->u.be */
	struct fut__opq runq;
	struct wk **workers; /* loop->nworkers of them at most */
	unsigned nworkers;
	bool short_of_workers; /* the last thread start failed (ulimit -u) */
	struct wk *idle; /* stack: the most recently idle is warmest */
	bool stopping;
};

/* Backend scratch in op->u.be (the op's job field is unused here). */
#define OP_WORKER(op) ((op)->u.be[0]) /* pthread_t of its worker */
#define OP_CANCEL(op) ((op)->u.be[1]) /* cancel requested */
#define OP_QI(op) ((op)->u.be[2])     /* its queue index */

static int wake_signal(void)
{
	return SIGRTMIN + 7;
}

static void on_wake_signal(int sig)
{
	(void)sig; /* only there to make the blocked call return EINTR */
}

static pthread_once_t sig_once = PTHREAD_ONCE_INIT;

static void install_signal(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_wake_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: interrupted calls fail with EINTR */
	sigaction(wake_signal(), &sa, NULL);
}

static struct thr *T(struct fut_loop *loop)
{
	return loop->be_data;
}

static struct fdstate *fdstate(struct thr *t, int fd)
{
	if ((size_t)fd >= t->nfds) {
		void *tab = fut__fdtable_grow(t->fds, &t->nfds,
					      sizeof(struct fdstate), fd);
		if (!tab)
			return NULL;
		t->fds = tab;
	}
	return &t->fds[fd];
}

static void completion(void *arg);

/*
 * Called with t->lock held; returns with it released. The next op to run,
 * taken from the run queue or handed over while idle, or NULL to stop.
 */
static struct fut__op *next_op(struct thr *t, struct wk *w)
{
	for (;;) {
		if (t->stopping) {
			pthread_mutex_unlock(&t->lock);
			return NULL;
		}
		struct fut__op *op = t->runq.head;
		if (op) {
			fut__opq_unlink(&t->runq, op);
			op->bq = B_RUNNING;
			OP_WORKER(op) = (uint64_t)w->tid;
			pthread_mutex_unlock(&t->lock);
			return op;
		}
		w->op = NULL;
		w->next_idle = t->idle;
		t->idle = w;
		pthread_mutex_unlock(&t->lock);
		/* EINTR: a cancel's signal for the op just handed over. */
		while (sem_wait(&w->sem) != 0)
			;
		if (w->op)
			return w->op;
		pthread_mutex_lock(&t->lock); /* woken to stop */
	}
}

static void *worker(void *arg)
{
	struct wk *w = arg;
	struct thr *t = w->t;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, wake_signal());
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	pthread_mutex_lock(&t->lock);
	/* POSIX does not promise pthread_create has stored the id before
	 * the new thread runs, so take it from here, under the lock. */
	w->tid = pthread_self();
	struct fut__op *op;
	while ((op = next_op(t, w))) {
		op->stop_on_eintr = true;
		bool cancelled = __atomic_load_n(&op->cancel_req, __ATOMIC_ACQUIRE);
		/* A cancel that came before the worker did still reports
		 * what the loop gathered for a MSG_WAITALL recv (those bytes
		 * have left the socket). */
		int64_t res = cancelled ? fut__cancel_result(op) :
					  fut__op_exec_blocking(op);
		pthread_mutex_lock(&t->lock);
		/* Finished: from now on a cancel (or its re-send) must not
		 * signal this thread, which moves on to other ops. */
		op->bq = B_DONE;
		if (OP_CANCEL(op) && (res == -EINTR || res == -ECANCELED))
			res = -ECANCELED;
		op->u.be[3] = (uint64_t)res;
		/* Retry rather than drop a completion if the handoff array
		 * cannot grow for a moment. */
		while (fut__post(t->loop, completion, op) < 0) {
			pthread_mutex_unlock(&t->lock);
			sched_yield();
			pthread_mutex_lock(&t->lock);
		}
	}
	return NULL;
}

static void start_worker(struct thr *t)
{
	struct wk *w = calloc(1, sizeof(*w));
	t->short_of_workers = !w;
	if (!w)
		return; /* the op waits for a running worker */
	w->t = t;
	sem_init(&w->sem, 0, 0);
	if (fut__thread_start(&w->thread, 128 * 1024, worker, w) == 0) {
		t->workers[t->nworkers++] = w;
	} else {
		t->short_of_workers = true; /* the sweep stands in */
		sem_destroy(&w->sem);
		free(w);
	}
}

/* Hand op to an idle worker, or queue it and start one. */
static void dispatch(struct thr *t, struct fut__op *op)
{
	pthread_mutex_lock(&t->lock);
	struct wk *w = t->idle;
	if (w) {
		t->idle = w->next_idle;
		w->op = op;
		op->bq = B_RUNNING;
		OP_WORKER(op) = (uint64_t)w->tid;
		pthread_mutex_unlock(&t->lock);
		sem_post(&w->sem);
		return;
	}
	op->bq = B_RUNQ;
	fut__opq_append(&t->runq, op);
	if (t->nworkers < t->loop->nworkers)
		start_worker(t);
	pthread_mutex_unlock(&t->lock);
}

/* fut__fd_kind, learned once. Not kept when fstat fails: the number is
 * not open. */
static int fd_kind(struct fdstate *fs, int fd)
{
	struct stat st;
	if (fs->kind == FUT__FD_UNKNOWN && fstat(fd, &st) == 0)
		fs->kind = (uint8_t)fut__fd_kind(st.st_mode);
	return fs->kind;
}

static void do_close(struct thr *t, struct fdstate *fs, struct fut__op *op);

/* op (dispatched) is fs's running op of its side, or one of its polls. */
static bool run_add(struct fdstate *fs, struct fut__op *op)
{
	if (op->kind != OP_POLL) {
		fs->running[OP_QI(op)] = op;
		return true;
	}
	if (fs->npolls == fs->cappolls) {
		unsigned cap = fs->cappolls ? 2 * fs->cappolls : 4;
		void *n = realloc(fs->polls, cap * sizeof(*fs->polls));
		if (!n)
			return false;
		fs->polls = n;
		fs->cappolls = cap;
	}
	fs->polls[fs->npolls++] = op;
	return true;
}

static void run_del(struct fdstate *fs, struct fut__op *op)
{
	if (op->kind != OP_POLL) {
		fs->running[OP_QI(op)] = NULL;
		return;
	}
	for (unsigned i = 0; i < fs->npolls; i++)
		if (fs->polls[i] == op) {
			fs->polls[i] = fs->polls[--fs->npolls];
			return;
		}
}

/* After an op of fd left queue qi: start the next one, or a pending close. */
static void advance(struct thr *t, int fd, int qi)
{
	struct fdstate *fs = &t->fds[fd];
	struct fut__op *next = qi < Q_POLL ? fs->q[qi].head : NULL;
	if (next && !fs->close_op) {
		fut__opq_unlink(&fs->q[qi], next);
		fs->running[qi] = next;
		dispatch(t, next);
		return;
	}
	if (fs->close_op && !fs->running[Q_READ] && !fs->running[Q_WRITE] &&
	    !fs->npolls) {
		struct fut__op *c = fs->close_op;
		fs->close_op = NULL;
		do_close(t, fs, c);
	}
}

static void done(struct thr *t, struct fut__op *op)
{
	int fd = op->fd, qi = (int)OP_QI(op);
	int64_t res = (int64_t)op->u.be[3];
	if (OP_CANCEL(op))
		t->cancelling--;
	run_del(&t->fds[fd], op);
	op->bq = B_NONE;
	fut__op_complete(op, res);
	advance(t, fd, qi);
}

static void do_close(struct thr *t, struct fdstate *fs, struct fut__op *op)
{
	(void)t;
	free(fs->polls);
	memset(fs, 0, sizeof(*fs));
	/* Linux releases the fd even when close reports EINTR. */
	int r = close(op->fd) < 0 && errno != EINTR ? -errno : 0;
	fut__op_complete(op, r);
}

static int th_cancel(struct fut_loop *loop, struct fut__op *op);

/*
 * A send usually fits in the socket buffer. Try it once here without
 * blocking (as libuv's uv_try_write does) and give a worker only what
 * would block: that saves a worker wake-up and a completion handoff per
 * message, most of a send's cost on this backend. Only called when no
 * other send of the fd is queued or running, so order is kept. Returns
 * true when op completed here.
 */
static bool try_send(struct fut__op *op)
{
#ifdef MSG_DONTWAIT
	if (op->kind != OP_SEND ||
	    (op->done >= op->len && !fut__sends_empty(op)))
		return false; /* an empty stream send stays the worker's no-op */
	ssize_t r;
	do
		r = send(op->fd, (char *)op->buf + op->done, op->len - op->done,
			 op->flags | MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return false;
		fut__op_complete(op, -errno);
		return true;
	}
	op->done += (size_t)r;
	if (op->done < op->len)
		return false;
	fut__op_complete(op, (int64_t)op->len);
	return true;
#else
	(void)op;
	return false;
#endif
}

/*
 * The same for accept, on a listening socket made O_NONBLOCK (as every
 * backend may; libfuture(7)). A worker's accept is a round trip through a
 * thread that has to be scheduled: with a connection burst and hundreds
 * of busy workers on the cpu, that took ~4 ms per accept, and 500
 * connections waited up to 2 s in the backlog with their first request
 * sent (wrk -c500 p99 over 600 ms). Here the backlog drains at the loop's
 * pace; the worker, when it does get the op, waits in poll(2) and then
 * accepts (fut__op_exec_blocking does that for an O_NONBLOCK fd).
 */
static bool try_accept(struct fdstate *fs, struct fut__op *op)
{
	if (op->kind != OP_ACCEPT)
		return false;
	if (!fs->nonblock) {
		int fl = fcntl(op->fd, F_GETFL);
		if (fl < 0 || (!(fl & O_NONBLOCK) &&
			       fcntl(op->fd, F_SETFL, fl | O_NONBLOCK) < 0))
			return false; /* the worker reports the error */
		fs->nonblock = true;
	}
	int r;
	do
		r = accept4(op->fd, op->addr, op->addrlen,
			    SOCK_NONBLOCK | SOCK_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return false;
	fut__op_complete(op, r < 0 ? -errno : r);
	return true;
}

/*
 * And a recv: when it finds data, that saves the worker round trip (two
 * context switches, a futex wake and a completion handoff, ~10 us here);
 * when it does not, it cost one system call (~1 us). Data is there more
 * often than not under load: by the time a busy loop asks for a
 * connection's next message, the peer has often sent it. Session 8
 * measured that 70% of the recvs a worker ran at wrk -c500 found their
 * data at once; trying every recv here (instead of only the first of an
 * fd and after a full read, as before) halved the server's CPU per round
 * trip in bench/echo and took 8% off wrk -c50 (BENCHMARKS.md).
 */
static bool try_recv(struct fut__op *op, bool swept)
{
#ifdef MSG_DONTWAIT
	/* A 0-byte recv returns 0 at once; it must wait for data instead.
	 * MSG_WAITALL gathers into op->done, where a worker resumes; with
	 * MSG_PEEK it cannot, so it is left to a worker, unless no worker
	 * is coming (the sweep): then it ends with fewer bytes, as
	 * fut_recv(3) allows a peek to. */
	if (op->kind != OP_RECV || !op->len ||
	    (!swept && (op->flags & (MSG_WAITALL | MSG_PEEK)) ==
			       (MSG_WAITALL | MSG_PEEK)))
		return false;
	ssize_t r;
	do
		r = recv(op->fd, (char *)op->buf + op->done, op->len - op->done,
			 op->flags | MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return false;
	if (r > 0 && (op->flags & (MSG_WAITALL | MSG_PEEK)) == MSG_WAITALL) {
		op->done += (size_t)r;
		if (op->done < op->len && fut__sock_gathers(op->fd))
			return false;
		r = (ssize_t)op->done;
	} else if (r <= 0 && op->done) { /* end or error after some bytes */
		r = (ssize_t)op->done;
	}
	fut__op_complete(op, r < 0 ? -errno : r);
	return true;
#else
	(void)op;
	(void)swept;
	return false;
#endif
}

/*
 * Whether the driver behind a FUT__FD_OTHER fd can be waited on. One that
 * cannot (/dev/null) is always ready to read and write and never anything
 * else: poll(2) waited on it for good where epoll refuses it (EPERM) and
 * the other backends fail the poll with -EINVAL. Called when poll(2) found
 * none of the events: not ready to read or write proves a driver that can
 * be waited on. Otherwise an epoll probe tells, once per fd: 1 it can, 0
 * it cannot, -errno when the probe has no descriptor (the poll fails: on a
 * worker it might never end).
 */
static int waitable(struct fdstate *fs, int fd, short events)
{
	if (!fs->waitable && (events & (POLLIN | POLLOUT | POLLRDNORM |
					POLLWRNORM)))
		fs->waitable = 1;
	if (!fs->waitable) {
		int ep = epoll_create1(EPOLL_CLOEXEC);
		if (ep < 0)
			return -errno; /* asked again next time */
		struct epoll_event ev = { .events = 0 };
		bool no = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 &&
			  errno == EPERM;
		close(ep);
		fs->waitable = no ? -1 : 1;
	}
	return fs->waitable > 0;
}

/* And a poll: what is ready already costs no worker. */
static bool try_poll(struct fut__op *op)
{
	if (op->kind != OP_POLL)
		return false;
	struct pollfd p = { .fd = op->fd, .events = op->events };
	int r;
	do
		r = poll(&p, 1, 0);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return false;
	fut__op_complete(op, r < 0 ? -errno : fut__poll_result(p.revents));
	return true;
}

static void th_submit(struct fut_loop *loop, struct fut__op *op)
{
	struct thr *t = T(loop);
	struct fdstate *fs = fdstate(t, op->fd);
	if (!fs) {
		fut__op_complete(op, -errno); /* EBADF or ENOMEM */
		return;
	}
	if (op->kind == OP_CLOSE) {
		/* Pending ops end -ECANCELED; the close itself waits until no
		 * worker uses the fd any more. */
		for (int qi = 0; qi < NQ; qi++) {
			struct fut__op *q;
			while ((q = fs->q[qi].head)) {
				fut__opq_unlink(&fs->q[qi], q);
				q->bq = B_NONE;
				fut__op_complete(q, -ECANCELED);
			}
			if (fs->running[qi])
				(void)th_cancel(loop, fs->running[qi]);
		}
		/* Downwards: a poll still waiting for a worker leaves the
		 * list at once (its place taken by the last one, seen). */
		for (unsigned i = fs->npolls; i-- > 0;)
			if (i < fs->npolls)
				(void)th_cancel(loop, fs->polls[i]);
		if (fs->close_op) { /* already closing */
			fut__op_complete(op, -EBADF);
			return;
		}
		fs->close_op = op;
		advance(t, op->fd, Q_READ);
		return;
	}
	if (fs->close_op) {
		fut__op_complete(op, -EBADF);
		return;
	}
	if (op->kind == OP_POLL && fd_kind(fs, op->fd) == FUT__FD_FILE) {
		fut__op_complete(op, fut__file_poll(op->events));
		return;
	}
	if (op->kind == OP_WRITE && op->off < 0 &&
	    fd_kind(fs, op->fd) == FUT__FD_SOCK)
		fut__socket_write(op);
	int qi = fut__op_queue(op, fd_kind(fs, op->fd) == FUT__FD_FILE);
	op->u.be[0] = op->u.be[1] = 0;
	OP_QI(op) = (uint64_t)qi;
	if (op->kind != OP_POLL && fs->running[qi]) {
		op->bq = B_FDQ;
		fut__opq_append(&fs->q[qi], op);
		return;
	}
	if (try_send(op) || try_accept(fs, op) || try_recv(op, false) ||
	    try_poll(op))
		return;
	int w = op->kind == OP_POLL && fs->kind == FUT__FD_OTHER ?
		waitable(fs, op->fd, op->events) : 1;
	if (w <= 0) {
		fut__op_complete(op, w < 0 ? w : -EINVAL);
		return;
	}
	if (!run_add(fs, op)) {
		fut__op_complete(op, -ENOMEM);
		return;
	}
	dispatch(t, op);
}

static int th_cancel(struct fut_loop *loop, struct fut__op *op)
{
	struct thr *t = T(loop);
	/* Workers write bq (RUNQ -> RUNNING) under the lock. */
	pthread_mutex_lock(&t->lock);
	if (op->bq == B_FDQ) {
		pthread_mutex_unlock(&t->lock);
		fut__opq_unlink(&t->fds[op->fd].q[OP_QI(op)], op);
		op->bq = B_NONE;
		fut__op_complete(op, -ECANCELED);
		return 0;
	}
	if (op->bq == B_RUNQ) {
		fut__opq_unlink(&t->runq, op);
		pthread_mutex_unlock(&t->lock);
		int fd = op->fd, qi = (int)OP_QI(op);
		run_del(&t->fds[fd], op);
		op->bq = B_NONE;
		fut__op_complete(op, fut__cancel_result(op));
		advance(t, fd, qi);
		return 0;
	}
	if (op->bq == B_RUNNING && !OP_CANCEL(op)) {
		OP_CANCEL(op) = 1;
		__atomic_store_n(&op->cancel_req, 1, __ATOMIC_RELEASE);
		t->cancelling++;
		pthread_kill((pthread_t)OP_WORKER(op), wake_signal());
	}
	pthread_mutex_unlock(&t->lock);
	return 1; /* ends when the worker returns */
}

/* No more workers to be had (the cap, or a thread start failed), and ops
 * waiting for one. The first part is read on the loop thread, the only
 * one that starts workers. */
static bool saturated(struct thr *t)
{
	if (t->nworkers < t->loop->nworkers && !t->short_of_workers)
		return false;
	pthread_mutex_lock(&t->lock);
	bool s = t->runq.head != NULL;
	pthread_mutex_unlock(&t->lock);
	return s;
}

/*
 * With every worker blocked, a queued op waits until one of them ends,
 * which may be never: 512 idle keep-alive connections, or blocked recvs
 * whose data depends on a queued op. So the loop takes the queued ops that
 * can end without blocking (recv, accept, send, poll), polls their fds
 * once, and completes the ready ones itself, as a worker would have; the
 * others go back to wait. Runs every SWEEP_MS while saturated.
 */
static void sweep_runq(struct thr *t)
{
	struct fut__op *ops[SWEEP_MAX];
	struct pollfd p[SWEEP_MAX];
	int n = 0;
	pthread_mutex_lock(&t->lock);
	for (struct fut__op *op = t->runq.head, *next; op && n < SWEEP_MAX;
	     op = next) {
		next = op->next;
		short ev;
		if (op->kind == OP_RECV && op->len)
			ev = POLLIN;
		else if (op->kind == OP_ACCEPT)
			ev = POLLIN;
		else if (op->kind == OP_SEND)
			ev = POLLOUT;
		else if (op->kind == OP_POLL)
			ev = op->events;
		else
			continue;
		fut__opq_unlink(&t->runq, op);
		op->bq = B_NONE; /* the loop's now: no worker takes it */
		p[n] = (struct pollfd){ .fd = op->fd, .events = ev };
		ops[n++] = op;
	}
	pthread_mutex_unlock(&t->lock);
	int r = n ? poll(p, (nfds_t)n, 0) : 0;
	for (int i = 0; i < n; i++) {
		struct fut__op *op = ops[i];
		int fd = op->fd, qi = (int)OP_QI(op);
		struct fdstate *fs = &t->fds[fd];
		bool fin = false;
		if (r > 0 && p[i].revents && op->kind == OP_POLL) {
			run_del(fs, op);
			fut__op_complete(op, fut__poll_result(p[i].revents));
			fin = true;
		} else if (r > 0 && p[i].revents) {
			fin = try_send(op) || try_accept(fs, op) ||
			      try_recv(op, true);
			if (fin) /* not a poll: its side's running op */
				fs->running[qi] = NULL;
		}
		if (fin)
			advance(t, fd, qi);
		else
			dispatch(t, op); /* a worker may have come free */
	}
}

/* Re-send the interrupt to workers whose cancel has not landed yet. */
static void resend_cancel(struct thr *t, struct fut__op *op)
{
	pthread_mutex_lock(&t->lock);
	if (op->bq == B_RUNNING && OP_CANCEL(op))
		pthread_kill((pthread_t)OP_WORKER(op), wake_signal());
	pthread_mutex_unlock(&t->lock);
}

static void resend_cancels(struct thr *t)
{
	for (size_t fd = 0; fd < t->nfds; fd++) {
		struct fdstate *fs = &t->fds[fd];
		for (int qi = 0; qi < NQ; qi++)
			if (fs->running[qi])
				resend_cancel(t, fs->running[qi]);
		for (unsigned i = 0; i < fs->npolls; i++)
			resend_cancel(t, fs->polls[i]);
	}
}

static int th_wait(struct fut_loop *loop, int timeout_ms)
{
	struct thr *t = T(loop);
	struct timespec zero = { 0, 0 }, *ts = timeout_ms < 0 ? NULL :
					       timeout_ms ? &loop->wait_ts : &zero;
	struct timespec retry = { 0, CANCEL_RETRY_MS * 1000000L };
	struct timespec sweep = { 0, SWEEP_MS * 1000000L };
	bool sat = saturated(t);
	if (sat && (timeout_ms < 0 || timeout_ms > SWEEP_MS))
		ts = &sweep;
	if (t->cancelling && (timeout_ms < 0 || timeout_ms > CANCEL_RETRY_MS))
		ts = &retry;
	struct pollfd p = { .fd = t->evfd, .events = POLLIN };
	int n = ppoll(&p, 1, ts, NULL);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (n > 0) {
		uint64_t v;
		while (read(t->evfd, &v, sizeof(v)) < 0 && errno == EINTR)
			;
	}
	if (t->cancelling)
		resend_cancels(t);
	if (sat) { /* at most every SWEEP_MS, however busy the loop */
		uint64_t now = fut__clock_ms();
		if (now - t->swept >= SWEEP_MS) {
			t->swept = now;
			sweep_runq(t);
		}
	}
	return 0;
}

static void th_wake(struct fut_loop *loop)
{
	uint64_t one = 1;
	while (write(T(loop)->evfd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

/* Runs on the loop thread, from the core's cross-thread queue. */
static void completion(void *arg)
{
	struct fut__op *op = arg;
	done(T(op->loop), op);
}

static int th_init(struct fut_loop *loop)
{
	pthread_once(&sig_once, install_signal);
	struct thr *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->workers = calloc(loop->nworkers, sizeof(*t->workers));
	t->evfd = t->workers ? eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) : -1;
	if (t->evfd < 0) {
		int r = t->workers ? -errno : -ENOMEM;
		free(t->workers);
		free(t);
		return r;
	}
	t->loop = loop;
	pthread_mutex_init(&t->lock, NULL);
	loop->be_data = t;
	return 0;
}

static void th_fini(struct fut_loop *loop)
{
	struct thr *t = T(loop);
	pthread_mutex_lock(&t->lock);
	t->stopping = true;
	for (struct wk *w = t->idle; w; w = w->next_idle)
		sem_post(&w->sem);
	t->idle = NULL;
	pthread_mutex_unlock(&t->lock);
	for (unsigned i = 0; i < t->nworkers; i++) {
		pthread_join(t->workers[i]->thread, NULL);
		sem_destroy(&t->workers[i]->sem);
		free(t->workers[i]);
	}
	pthread_mutex_destroy(&t->lock);
	close(t->evfd);
	free(t->workers);
	for (size_t fd = 0; fd < t->nfds; fd++)
		free(t->fds[fd].polls);
	free(t->fds);
	free(t);
}

const struct fut_backend fut__backend_threads = {
	.name = "threads",
	.init = th_init,
	.fini = th_fini,
	.submit = th_submit,
	.cancel = th_cancel,
	.wait = th_wait,
	.wake = th_wake,
};
