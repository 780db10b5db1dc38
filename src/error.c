/*
 * Error names and messages for every code the library can return: errno
 * values (negative, as the library returns them, or positive) and the
 * library's own block far below them.
 */
#include "future-internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct libcode {
	int code;
	const char *name;
	const char *msg;
};

static const struct libcode libcodes[] = {
	{ FUT_EBACKEND, "FUT_EBACKEND", "unknown backend name" },
	{ FUT_ENOTCORO, "FUT_ENOTCORO", "not inside a coroutine" },
	{ FUT_ESTOPPED, "FUT_ESTOPPED", "event loop stopped" },
	{ FUT_EWRONGTHREAD, "FUT_EWRONGTHREAD",
	  "called from a thread that does not run the loop" },
	{ FUT_ENOTCOMPILED, "FUT_ENOTCOMPILED",
	  "backend not compiled into this build" },
	{ FUT_ESYSCTL, "FUT_ESYSCTL",
	  "io_uring disabled by the kernel.io_uring_disabled sysctl" },
	{ FUT_HTTP_EINCOMPLETE, "FUT_HTTP_EINCOMPLETE",
	  "incomplete HTTP message" },
	{ FUT_HTTP_EBADREQ, "FUT_HTTP_EBADREQ", "malformed HTTP request" },
	{ FUT_HTTP_EURITOOLONG, "FUT_HTTP_EURITOOLONG",
	  "HTTP request line too long" },
	{ FUT_HTTP_EHDRTOOBIG, "FUT_HTTP_EHDRTOOBIG",
	  "HTTP header section too large" },
	{ FUT_HTTP_EBODYTOOBIG, "FUT_HTTP_EBODYTOOBIG",
	  "HTTP body too large" },
	{ FUT_HTTP_ENOTIMPL, "FUT_HTTP_ENOTIMPL",
	  "HTTP transfer coding not implemented" },
	{ FUT_HTTP_EVERSION, "FUT_HTTP_EVERSION",
	  "HTTP version not supported" },
	{ FUT_HTTP_EBADRESP, "FUT_HTTP_EBADRESP", "malformed HTTP response" },
	{ FUT_HTTP_EBADURL, "FUT_HTTP_EBADURL", "unusable URL" },
	{ FUT_HTTP_ETIMEOUT_CONNECT, "FUT_HTTP_ETIMEOUT_CONNECT",
	  "HTTP connect timed out" },
	{ FUT_HTTP_ETIMEOUT_QUEUE, "FUT_HTTP_ETIMEOUT_QUEUE",
	  "timed out waiting for a free HTTP connection" },
	{ FUT_HTTP_ETIMEOUT_REQUEST, "FUT_HTTP_ETIMEOUT_REQUEST",
	  "HTTP request timed out" },
	{ FUT_HTTP_ERESOLVE, "FUT_HTTP_ERESOLVE", "host name does not resolve" },
	{ FUT_HTTP_ERESOLVE_AGAIN, "FUT_HTTP_ERESOLVE_AGAIN",
	  "temporary failure in name resolution" },
	{ FUT_HTTP_ESCHEME, "FUT_HTTP_ESCHEME",
	  "URL scheme not supported (only http://)" },
	{ FUT_HTTP_ECLOSED, "FUT_HTTP_ECLOSED",
	  "server closed the connection before the response was complete" },
};

static const struct libcode *find(int err)
{
	for (size_t i = 0; i < sizeof(libcodes) / sizeof(libcodes[0]); i++)
		if (libcodes[i].code == err)
			return &libcodes[i];
	return NULL;
}

/* Per-thread buffer for unknown codes, so the result never dangles. */
static _Thread_local char unknown[48];

const char *fut_strerror(int err)
{
	const struct libcode *c = find(err);
	if (c)
		return c->msg;
	/* -INT_MIN overflows: anything outside +-4095 is unknown anyway. */
	int e = err > -4096 && err < 0 ? -err : err;
	if (e > 0 && e < 4096) {
		const char *s = strerrordesc_np(e);
		if (s)
			return s;
	}
	if (err == 0)
		return "Success";
	snprintf(unknown, sizeof(unknown), "Unknown error %d", err);
	return unknown;
}

const char *fut_errname(int err)
{
	const struct libcode *c = find(err);
	if (c)
		return c->name;
	int e = err > -4096 && err < 0 ? -err : err;
	if (e > 0 && e < 4096) {
		const char *s = strerrorname_np(e);
		if (s)
			return s;
	}
	return err == 0 ? "OK" : "UNKNOWN";
}
