/*
 * Backends benchmark: random 4 KiB reads from a 256 MiB file with
 * fut_read(), 64 reads in flight, on the backend FUTURE_BACKEND picks
 * (bench/run.sh runs the program once per backend).
 *
 * The file is /var/tmp/libfuture-bench-fileread.dat (FILEREAD_PATH to
 * change it). It is created on first use: 65,536 pages of pseudo-random
 * bytes, each starting with its own page number, then fsync()ed. Later
 * runs reuse it when its size and first page match; bench/run.sh removes
 * it at the end. Offsets follow a permutation of the pages (i * a + b mod
 * 65536, a odd), so the reads of one pass never touch a page twice; each
 * read checks the page number at the start of its buffer.
 *
 * Metrics, ns per read (wall time of the pass / reads):
 *   cold  posix_fadvise(POSIX_FADV_DONTNEED) on the whole file first, then
 *         min(N / 4, 65,536) distinct pages: reads go to the disk.
 *   warm  the whole file read into the page cache first, then N reads
 *         (default 400,000): the cost of the backend, not of the disk.
 * The fraction of the file resident in the page cache (mincore) before
 * each pass is printed as "I fileread resident_<pass> <percent>".
 * POSIX_FADV_RANDOM is set on the descriptor, so a miss reads one page.
 *
 * Usage: fileread [-r reps] [-n warm_reads]
 */
#include "bench.h"
#include "future.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define BENCH "fileread"
#define PAGE 4096
#define NPAGES 65536 /* 256 MiB */
#define FILE_SIZE ((int64_t)PAGE * NPAGES)
#define INFLIGHT 64

static const char *path;

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rng(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1du;
}

static int file_ok(void)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	struct stat st;
	uint64_t first = ~0u;
	int ok = fstat(fd, &st) == 0 && st.st_size == FILE_SIZE &&
		 pread(fd, &first, sizeof first, 0) == (ssize_t)sizeof first &&
		 first == 0;
	close(fd);
	return ok;
}

static void make_file(void)
{
	if (file_ok()) {
		bench_info(BENCH, "file", "%s (reused)", path);
		return;
	}
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		bench_die("open %s: %s", tmp, strerror(errno));
	enum { CHUNK = 256 }; /* pages per write: 1 MiB */
	uint64_t *buf = malloc((size_t)PAGE * CHUNK);
	if (!buf)
		bench_die("out of memory");
	for (uint64_t p = 0; p < NPAGES; p += CHUNK) {
		for (size_t i = 0; i < (size_t)PAGE * CHUNK / 8; i++)
			buf[i] = rng();
		for (uint64_t k = 0; k < CHUNK; k++)
			buf[k * PAGE / 8] = p + k;
		size_t len = (size_t)PAGE * CHUNK, off = 0;
		while (off < len) {
			ssize_t w = pwrite(fd, (char *)buf + off, len - off,
					   (off_t)(p * PAGE + off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				bench_die("write %s: %s", tmp, strerror(errno));
			off += (size_t)w;
		}
	}
	free(buf);
	if (fsync(fd) < 0)
		bench_die("fsync %s: %s", tmp, strerror(errno));
	if (close(fd) < 0 || rename(tmp, path) < 0)
		bench_die("rename %s: %s", tmp, strerror(errno));
	bench_info(BENCH, "file", "%s (created)", path);
}

/* Percentage of the file's pages in the page cache. */
static double resident_pct(void)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		bench_die("open %s: %s", path, strerror(errno));
	void *m = mmap(NULL, (size_t)FILE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		bench_die("mmap: %s", strerror(errno));
	long pg = sysconf(_SC_PAGESIZE);
	size_t n = (size_t)FILE_SIZE / (size_t)pg;
	unsigned char *vec = malloc(n);
	if (!vec)
		bench_die("out of memory");
	if (mincore(m, (size_t)FILE_SIZE, vec) < 0)
		bench_die("mincore: %s", strerror(errno));
	size_t in = 0;
	for (size_t i = 0; i < n; i++)
		in += vec[i] & 1;
	free(vec);
	munmap(m, (size_t)FILE_SIZE);
	close(fd);
	return 100.0 * (double)in / (double)n;
}

static void drop_cache(void)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		bench_die("open %s: %s", path, strerror(errno));
	int r = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	if (r != 0)
		bench_die("posix_fadvise(DONTNEED): %s", strerror(r));
	close(fd);
}

static void warm_cache(void)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		bench_die("open %s: %s", path, strerror(errno));
	static char buf[1 << 20];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			bench_die("read %s: %s", path, strerror(errno));
		if (n == 0)
			break;
	}
	close(fd);
}

/* ------------------------------------------------------------------ */

struct slot {
	_Alignas(4096) char buf[PAGE];
	uint64_t page;
};

static struct slot slots[INFLIGHT];
static fut_loop *loop;
static int file_fd;
static long n_reads, issued, completed;
static uint64_t perm_a, perm_b;

static void submit(struct slot *s);

static void on_read(fut *f, void *arg)
{
	struct slot *s = arg;
	int err = fut_error(f);
	if (err)
		bench_die("fut_read at page %llu: %s",
			  (unsigned long long)s->page, fut_strerror(err));
	if (fut_value(f) != PAGE)
		bench_die("fut_read at page %llu: %lld bytes",
			  (unsigned long long)s->page, (long long)fut_value(f));
	uint64_t got;
	memcpy(&got, s->buf, sizeof got);
	if (got != s->page)
		bench_die("fut_read at page %llu: read page %llu",
			  (unsigned long long)s->page, (unsigned long long)got);
	completed++;
	if (issued < n_reads)
		submit(s);
}

static void submit(struct slot *s)
{
	s->page = ((uint64_t)issued * perm_a + perm_b) % NPAGES;
	issued++;
	fut *f = fut_read(loop, file_fd, s->buf, PAGE, (int64_t)(s->page * PAGE));
	if (!f)
		bench_die("fut_read: out of memory");
	int e = fut_on_done(f, on_read, s);
	if (e < 0)
		bench_die("fut_on_done: %s", fut_strerror(e));
}

static void pass(const char *name, long n, const char *backend)
{
	n_reads = n;
	issued = completed = 0;
	perm_a = (rng() % NPAGES) | 1; /* odd: i -> i*a+b is a permutation */
	perm_b = rng() % NPAGES;
	char key[64];
	snprintf(key, sizeof key, "resident_%s_%s", name, backend);
	bench_info(BENCH, key, "%.1f%%", resident_pct());

	uint64_t t0 = bench_now_ns();
	for (int i = 0; i < INFLIGHT && issued < n_reads; i++)
		submit(&slots[i]);
	int r = fut_loop_run(loop);
	uint64_t t1 = bench_now_ns();
	if (r < 0)
		bench_die("fut_loop_run: %s", fut_strerror(r));
	if (completed != n_reads)
		bench_die("%s: %ld of %ld reads completed", name, completed, n_reads);
	bench_result(BENCH, backend, name, (double)(t1 - t0) / (double)n);
}

static void run_once(long n_warm)
{
	int err;
	loop = fut_loop_new(NULL, &err);
	if (!loop)
		bench_die("fut_loop_new: %s", fut_strerror(err));
	const char *backend = fut_loop_backend(loop);
	bench_info(BENCH, "backend", "%s", backend);

	file_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (file_fd < 0)
		bench_die("open %s: %s", path, strerror(errno));
	int r = posix_fadvise(file_fd, 0, 0, POSIX_FADV_RANDOM);
	if (r != 0)
		bench_die("posix_fadvise(RANDOM): %s", strerror(r));

	long n_cold = n_warm / 4 < NPAGES ? n_warm / 4 : NPAGES;
	if (n_cold < 1)
		n_cold = 1;
	drop_cache();
	pass("cold", n_cold, backend);
	warm_cache();
	pass("warm", n_warm, backend);

	fut *c = fut_close(loop, file_fd);
	if (!c)
		bench_die("fut_close: out of memory");
	r = fut_loop_run_until(loop, c);
	if (r < 0 || fut_error(c))
		bench_die("fut_close: %s", fut_strerror(r < 0 ? r : fut_error(c)));
	fut_unref(c);
	int left = fut_loop_free(loop);
	if (left != 0)
		bench_die("fut_loop_free: %d futures leaked", left);
}

int main(int argc, char **argv)
{
	struct bench_args a = bench_parse(argc, argv, 400000);
	path = getenv("FILEREAD_PATH");
	if (!path || !*path)
		path = "/var/tmp/libfuture-bench-fileread.dat";
	rng_state ^= (uint64_t)getpid() << 32 ^ bench_now_ns();
	make_file();
	bench_info(BENCH, "size", "256 MiB, 4 KiB reads, %d in flight", INFLIGHT);
	for (int i = 0; i < a.reps; i++)
		run_once(a.n);
	return 0;
}
