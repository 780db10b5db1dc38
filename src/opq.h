/*
 * Intrusive FIFO queues of ops and the per-fd tables the backends keep
 * them in. Every backend queues ops per fd (to keep one fd's operations
 * in submission order), so this lives here once.
 */
#ifndef FUTURE_OPQ_H
#define FUTURE_OPQ_H

#include "future-internal.h"

struct fut__opq {
	struct fut__op *head, *tail;
};

static inline void fut__opq_append(struct fut__opq *q, struct fut__op *op)
{
	op->next = NULL;
	op->prev = q->tail;
	if (q->tail)
		q->tail->next = op;
	else
		q->head = op;
	q->tail = op;
}

static inline void fut__opq_unlink(struct fut__opq *q, struct fut__op *op)
{
	if (op->prev)
		op->prev->next = op->next;
	else
		q->head = op->next;
	if (op->next)
		op->next->prev = op->prev;
	else
		q->tail = op->prev;
	op->next = op->prev = NULL;
}

/* Which per-fd queue an op waits in: reads, writes, or polls. Ops of one
 * side complete in submission order; the sides proceed independently. */
enum { FUT__SIDE_READ = 0, FUT__SIDE_WRITE, FUT__SIDE_POLL, FUT__NSIDES };

static inline int fut__op_side(int kind)
{
	switch (kind) {
	case OP_RECV:
	case OP_READ:
	case OP_ACCEPT:
		return FUT__SIDE_READ;
	case OP_POLL:
		return FUT__SIDE_POLL;
	default:
		return FUT__SIDE_WRITE;
	}
}

/* The side an op queues on. Reads and writes at a regular file's
 * position (-1) share the read side: the position moves with each, so
 * they must run one after the other in the order they were made, of
 * either direction (a read queued behind a write ran beside it and read
 * what was there before the write). */
static inline int fut__op_queue(const struct fut__op *op, bool file)
{
	if (file && op->off < 0 && (op->kind == OP_READ || op->kind == OP_WRITE))
		return FUT__SIDE_READ;
	return fut__op_side(op->kind);
}

#endif
