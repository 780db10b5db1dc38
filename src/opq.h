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

#endif
