/*
 * Command-line helpers shared by the examples: a test harness drives them
 * with exact command lines, so a bad value must be a usage error, never a
 * silently different port.
 */
#ifndef EXAMPLES_CLI_H
#define EXAMPLES_CLI_H

#include <errno.h>
#include <stdlib.h>

/* The whole of s as a decimal number in [lo, hi]: 0, or -1. */
static inline int cli_num(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

#endif
