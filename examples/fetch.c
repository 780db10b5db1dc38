/*
 * fetch: the libfuture-http example client.
 *
 *   fetch [-X METHOD] [-d BODY] URL
 *
 * Prints the response body to stdout and the status line to stderr.
 * Exit status: 0 for a 1xx-3xx response, 1 for a 4xx/5xx response or any
 * failure (bad URL, refused, timed out, malformed response: a message on
 * stderr says which), 2 for a usage error.
 */
#include <future.h>
#include <future/http.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define USAGE "usage: fetch [-X METHOD] [-d BODY] URL\n"

static int usage(void)
{
	fputs(USAGE, stderr);
	return 2;
}

int main(int argc, char **argv)
{
	struct fut_http_fetch_opts o = { 0 };
	int c;
	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		fputs(USAGE, stdout);
		return 0;
	}
	while ((c = getopt(argc, argv, "X:d:h")) != -1) {
		switch (c) {
		case 'h':
			fputs(USAGE, stdout);
			return 0;
		case 'X':
			o.method = optarg;
			break;
		case 'd':
			o.body = optarg;
			o.body_len = strlen(optarg);
			break;
		default:
			return usage();
		}
	}
	if (optind != argc - 1)
		return usage();
	const char *url = argv[optind];
	int err;
	fut_loop *loop = fut_loop_new(NULL, &err);
	if (!loop) {
		fprintf(stderr, "fetch: cannot create a loop: %s\n",
			fut_strerror(err));
		return 1;
	}
	fut *f = fut_http_fetch(loop, url, &o);
	if (!f) {
		fprintf(stderr, "fetch: out of memory\n");
		return 1;
	}
	fut_loop_run_until(loop, f);
	int status = 1;
	const struct fut_http_response *r = fut_http_response_of(f);
	if (!r) {
		fprintf(stderr, "fetch: %s: %s\n", url,
			fut_strerror(fut_error(f)));
	} else {
		fprintf(stderr, "HTTP/1.%d %d%s%.*s\n", r->minor_version,
			r->status, r->reason_len ? " " : "", (int)r->reason_len,
			r->reason);
		if (fwrite(r->body, 1, r->body_len, stdout) != r->body_len ||
		    fflush(stdout) != 0)
			fprintf(stderr, "fetch: cannot write the body\n");
		else
			status = r->status >= 400;
	}
	fut_unref(f);
	fut_loop_free(loop);
	return status;
}
