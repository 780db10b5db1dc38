/* The main demonstration until the HTTP demo exists: an echo round trip,
 * timers, fut_all and a timeout, on whatever backend FUTURE_BACKEND picks. */
#include <future.h>

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void on_echo(fut *f, void *arg)
{
	char *buf = arg;
	if (fut_error(f))
		printf("recv failed: %s\n", fut_strerror(fut_error(f)));
	else
		printf("received %lld bytes: %.*s\n", (long long)fut_value(f),
		       (int)fut_value(f), buf);
}

int main(void)
{
	int err, sv[2];
	fut_loop *loop = fut_loop_new(NULL, &err);
	if (!loop) {
		fprintf(stderr, "fut_loop_new: %s\n", fut_strerror(err));
		return 1;
	}
	printf("backend: %s\n", fut_loop_backend(loop));
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 1;

	static char buf[64];
	fut_on_done(fut_recv(loop, sv[1], buf, sizeof(buf), 0), on_echo, buf);
	fut_unref(fut_send(loop, sv[0], "hello, future", 13, 0));

	/* Tornado's "yield [a, b, c]": wait for three timers at once. */
	fut *sleeps[3] = { fut_sleep(loop, 30), fut_sleep(loop, 10),
			   fut_sleep(loop, 20) };
	uint64_t t0 = fut_loop_now(loop);
	fut *all = fut_all(loop, sleeps, 3, FUT_ALL_FAIL_FAST);
	fut_loop_run_until(loop, all);
	printf("fut_all of 10/20/30 ms sleeps took %llu ms\n",
	       (unsigned long long)(fut_loop_now(loop) - t0));
	fut_unref(all);

	/* A timeout really cancels what it guards. */
	fut *slow = fut_timeout(fut_sleep(loop, 10000), 25);
	fut_loop_run_until(loop, slow);
	printf("10 s sleep with a 25 ms timeout: %s\n",
	       fut_strerror(fut_error(slow)));
	fut_unref(slow);

	fut_unref(fut_close(loop, sv[0]));
	fut_unref(fut_close(loop, sv[1]));
	fut_loop_run(loop);
	int leaked = fut_loop_free(loop);
	printf("loop freed, %d futures leaked\n", leaked);
	return leaked != 0;
}
