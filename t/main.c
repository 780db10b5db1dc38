/*
 * The check runner: one binary with every suite, run once per backend by
 * the t/backend-*.sh scripts. A backend this machine cannot run makes the
 * whole binary exit 77, which automake reports as SKIP, never PASS.
 */
#include <future.h>

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

static Suite *(*const suites[])(void) = {
	select_suite,
	smoke_suite,
	core_suite,
	coro_suite,
	http_suite,
	http_parser_suite,
};

int main(int argc, char **argv)
{
	int err = 0;
	if (argc == 3 && strcmp(argv[1], "--child") == 0)
		return strcmp(argv[2], "slow") == 0 ? coro_child(argv[2]) :
							select_child(argv[2]);
	const char *want = getenv("FUTURE_BACKEND");
	fut_loop *probe = fut_loop_new(NULL, &err);
	if (!probe) {
		printf("SKIP: backend %s unavailable here: %s (%s)\n",
		       want ? want : "auto", fut_strerror(err), fut_errname(err));
		return 77;
	}
	printf("backend: %s\n", fut_loop_backend(probe));
	fut_loop_free(probe);
	SRunner *sr = srunner_create(NULL);
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		srunner_add_suite(sr, suites[i]());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
