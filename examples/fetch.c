/*
 * fetch: the libfuture-http example client.
 *
 *   fetch [-L] [-X METHOD] [-d BODY|@FILE|@-] URL
 *
 * Prints the response body to stdout and the status line to stderr.
 * -d sends BODY (then the method defaults to POST); -d @FILE sends the
 * bytes of FILE as they are, -d @- those of stdin. Redirects are not
 * followed (a 3xx is a response like another) unless -L says so, as
 * curl's: up to 20 (a 21st fails, exit 1), and a "Location:" line on
 * stderr with the last URL.
 * Exit status: 0 for a 1xx-3xx response, 1 for a 4xx/5xx response or any
 * failure (bad URL, refused, timed out, malformed response, unreadable
 * FILE: a message on stderr says which), 2 for a usage error.
 */
#include <future.h>
#include <future/http.h>

#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define USAGE "usage: fetch [-L] [-X METHOD] [-d BODY|@FILE|@-] URL\n"

/* Why fut_http_fetch would refuse method m (with -EINVAL, which alone
 * would not say what was wrong), or NULL. */
static const char *bad_method(const char *m)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~0123456789"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "abcdefghijklmnopqrstuvwxyz";
	if (!*m || strspn(m, tchar) != strlen(m))
		return "is not a valid method (RFC 9110: a token, as GET)";
	if (!strcmp(m, "CONNECT")) /* a tunnel, no request and response */
		return "is not supported";
	return NULL;
}

/* The whole of f into *body (malloc'd), whatever bytes it holds: 0, or
 * -1 with errno. */
static int slurp(FILE *f, char **body, size_t *len)
{
	size_t cap = 0, n = 0, r;
	char *b = NULL;
	do {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 65536;
			char *nb = ncap > cap ? realloc(b, ncap) : NULL;
			if (!nb) {
				free(b);
				errno = ENOMEM;
				return -1;
			}
			b = nb;
			cap = ncap;
		}
		r = fread(b + n, 1, cap - n, f);
		n += r;
	} while (r);
	if (ferror(f)) {
		int e = errno; /* the failed read's */
		free(b);
		errno = e;
		return -1;
	}
	*body = b;
	*len = n;
	return 0;
}

/* -d @FILE or @-: the body from FILE or stdin. 0, or 1 with a message. */
static int body_from(const char *name, char **body, size_t *len)
{
	FILE *f = strcmp(name, "-") ? fopen(name, "rb") : stdin;
	int err = !f || slurp(f, body, len) ? errno : 0;
	if (f && f != stdin)
		fclose(f);
	if (!err)
		return 0;
	fprintf(stderr, "fetch: -d @%s: %s\n", name, strerror(err));
	return 1;
}

/* The statuses fut_http_fetch follows (fut_http_fetch(3), REDIRECTS). */
static int followable(int status)
{
	return status == 301 || status == 302 || status == 303 ||
	       status == 307 || status == 308;
}

int main(int argc, char **argv)
{
	struct fut_http_fetch_opts o = { 0 };
	char *file_body = NULL; /* -d @FILE's bytes */
	int c;
	if (cli_wants_help(argc, argv)) {
		fputs(USAGE, stdout);
		return 0;
	}
	opterr = 0; /* getopt would name the program by its path */
	while ((c = getopt(argc, argv, ":LX:d:")) != -1) {
		switch (c) {
		case 'L':
			o.max_redirects = 20;
			break;
		case 'X':
			if (bad_method(optarg))
				return cli_usage_error(USAGE, "fetch: -X: '%s' "
						       "%s", optarg,
						       bad_method(optarg));
			o.method = optarg;
			break;
		case 'd': /* the last -d wins */
			free(file_body);
			file_body = NULL;
			if (optarg[0] == '@') {
				if (body_from(optarg + 1, &file_body,
					      &o.body_len))
					return 1;
				o.body = file_body;
			} else {
				o.body = optarg;
				o.body_len = strlen(optarg);
			}
			break;
		case ':':
			return cli_usage_error(USAGE, "fetch: -%c needs a value",
					       optopt);
		default:
			return cli_usage_error(USAGE, "fetch: unknown option "
					       "-%c", optopt);
		}
	}
	if (optind == argc)
		return cli_usage_error(USAGE, "fetch: no URL");
	if (optind < argc - 1)
		return cli_usage_error(USAGE, "fetch: %s: one URL only",
				       argv[optind + 1]);
	const char *url = argv[optind];
	int err;
	fut_loop *loop = fut_loop_new(NULL, &err);
	if (!loop) {
		fprintf(stderr, "fetch: cannot create a loop: %s\n",
			fut_strerror(err));
		free(file_body);
		return 1;
	}
	fut *f = fut_http_fetch(loop, url, &o);
	if (!f) {
		fprintf(stderr, "fetch: out of memory\n");
		fut_loop_free(loop);
		free(file_body);
		return 1;
	}
	fut_loop_run_until(loop, f);
	int status = 1;
	const struct fut_http_response *r = fut_http_response_of(f);
	if (!r) {
		fprintf(stderr, "fetch: %s: %s\n", url,
			fut_strerror(fut_error(f)));
	} else {
		if (strcmp(r->url, url) != 0)
			fprintf(stderr, "Location: %s\n", r->url);
		fprintf(stderr, "HTTP/1.%d %d%s%.*s\n", r->minor_version,
			r->status, r->reason_len ? " " : "", (int)r->reason_len,
			r->reason);
		if (fwrite(r->body, 1, r->body_len, stdout) != r->body_len ||
		    fflush(stdout) != 0)
			fprintf(stderr, "fetch: cannot write the body\n");
		else if (o.max_redirects && r->redirects == o.max_redirects &&
			 followable(r->status) &&
			 fut_http_response_header(r, "Location", NULL))
			/* as curl -L: the hops ran out, not an answer */
			fprintf(stderr, "fetch: %s: more than %u redirects\n",
				url, o.max_redirects);
		else
			status = r->status >= 400;
	}
	fut_unref(f);
	fut_loop_free(loop);
	free(file_body);
	return status;
}
