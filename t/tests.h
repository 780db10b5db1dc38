/* Shared declarations of the libfuture check suites. */
#ifndef FUT_TESTS_H
#define FUT_TESTS_H

#include <check.h>

Suite *select_suite(void);
int select_child(const char *name); /* t/unit --child NAME */
Suite *smoke_suite(void);
Suite *core_suite(void);
Suite *coro_suite(void);
int coro_child(const char *name); /* t/unit --child NAME */
Suite *http_parser_suite(void);
Suite *http_suite(void);

#endif
