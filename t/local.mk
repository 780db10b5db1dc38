# Test suites (check), run once per backend: t/backend-<name>.sh sets
# FUTURE_BACKEND; a backend the machine cannot run exits 77 (SKIP).
TESTS += t/symbols.sh
EXTRA_DIST += t/symbols.sh t/run-unit.sh t/backend-epoll.sh t/backend-io_uring.sh \
	t/backend-threads.sh t/tests.h
# HTTP interop against real clients and servers (curl, python3, ab, nginx;
# a missing one is a SKIP), once per backend.
TESTS += t/http-interop-epoll.sh t/http-interop-io_uring.sh \
	t/http-interop-threads.sh
EXTRA_DIST += t/fuzz.sh t/fuzz-http.c t/http-interop.sh t/http-interop-epoll.sh \
	t/http-interop-io_uring.sh t/http-interop-threads.sh
if HAVE_CHECK
check_PROGRAMS += t/unit
t_unit_SOURCES = t/main.c t/util.c t/select.c t/smoke.c t/core.c t/coro.c t/http.c \
	t/http-parser.c
t_unit_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
t_unit_LDADD = libfuture-http.la libfuture.la $(CHECK_LIBS) -lpthread
TESTS += t/backend-epoll.sh t/backend-io_uring.sh t/backend-threads.sh
endif
# Valgrind and TSan slow everything down.
AM_TESTS_ENVIRONMENT = CK_DEFAULT_TIMEOUT=60; export CK_DEFAULT_TIMEOUT;
