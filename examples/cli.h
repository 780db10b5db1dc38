/*
 * Command-line helpers shared by the examples: a test harness drives them
 * with exact command lines, so a bad value must be a usage error, never a
 * silently different port.
 */
#ifndef EXAMPLES_CLI_H
#define EXAMPLES_CLI_H

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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

/* -h or --help anywhere: the caller prints its usage to stdout, exit 0. */
static inline bool cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return true;
	return false;
}

#endif
