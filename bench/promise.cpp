// Benchmark 1, C++ peer: std::promise<int> / std::future<int>, one
// create + get_future + set_value + get per operation, single thread.
// Prints "R future_cb promise op <ns>" lines like bench/future_cb.c.
// Usage: promise [-r reps] [-n ops]
#include "bench.h"

#include <future>

static double run_promise(long nops)
{
	long sink = 0;
	uint64_t t0 = bench_now_ns();
	for (long i = 0; i < nops; i++) {
		std::promise<int> p;
		std::future<int> f = p.get_future();
		p.set_value((int)i);
		sink += f.get();
	}
	uint64_t t1 = bench_now_ns();
	long want = 0;
	for (long i = 0; i < nops; i++)
		want += (int)i;
	if (sink != want)
		bench_die("promise: wrong sum");
	return (double)(t1 - t0) / (double)nops;
}

int main(int argc, char **argv)
{
	struct bench_args a = bench_parse(argc, argv, 2000000);
	bench_info("future_cb", "promise_ops", "%ld", a.n);
	run_promise(a.n / 10 > 0 ? a.n / 10 : 1); // warm-up
	for (int rep = 0; rep < a.reps; rep++)
		bench_result("future_cb", "promise", "op", run_promise(a.n));
	return 0;
}
