/*
 * libevent's evhttp answering GET / with "hello world\n" (keep-alive), one
 * thread: the evhttp peer of bench/http.sh.
 *
 *   evhttp_hello PORT
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include <stdio.h>
#include <stdlib.h>

static void hello(struct evhttp_request *req, void *arg)
{
	(void)arg;
	struct evbuffer *b = evbuffer_new();
	evbuffer_add(b, "hello world\n", 12);
	evhttp_add_header(evhttp_request_get_output_headers(req),
			  "Content-Type", "text/plain");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: evhttp_hello PORT\n");
		return 2;
	}
	struct event_base *base = event_base_new();
	struct evhttp *http = evhttp_new(base);
	evhttp_set_gencb(http, hello, NULL);
	if (evhttp_bind_socket(http, "127.0.0.1", (unsigned short)atoi(argv[1]))) {
		fprintf(stderr, "evhttp_hello: cannot bind\n");
		return 1;
	}
	event_base_dispatch(base);
	return 0;
}
