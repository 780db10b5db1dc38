/* Shared declarations of the libfuture check suites. */
#ifndef FUT_TESTS_H
#define FUT_TESTS_H

#include <check.h>
#include <future.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

/* t/util.c */
fut_loop *new_loop(void); /* fails the test if it cannot */
void wait_for(fut_loop *loop, fut *f); /* fails after 15 s */
void run_for(fut_loop *loop, uint64_t ms);
void count_cb(fut *f, void *arg); /* ++*(long *)arg */
/* Bytes malloc holds (mallinfo2); 0 under ASan, which replaces malloc. */
size_t heap_in_use(void);
const char *self_exe(void); /* for execl() in a fresh process */
/* Out of descriptors: lowers RLIMIT_NOFILE to at most 1024 and takes
 * every one left (dups of 0, up to 4096) into fds->pad; fds_restore
 * gives them and the limit back. */
struct fds_taken {
	int pad[4096];
	int n;
	struct rlimit old;
};
void fds_exhaust(struct fds_taken *fds);
void fds_restore(struct fds_taken *fds);

Suite *select_suite(void);
int select_child(const char *name); /* t/unit --child NAME */
Suite *smoke_suite(void);
Suite *core_suite(void);
Suite *coro_suite(void);
int coro_child(const char *name); /* t/unit --child NAME */
Suite *http_parser_suite(void);
Suite *http_suite(void);

#endif
