#!/bin/sh
# HTTP interop tests (t/http-interop.sh) on the io_uring backend; SKIP
# (exit 77) where io_uring cannot run (old kernel, seccomp, sysctl).
if ! ./examples/future-doctor 2>&1 | grep -Eq '^io_uring +available'; then
	echo "SKIP: io_uring cannot run here:"
	./examples/future-doctor 2>&1 | grep '^io_uring'
	exit 77
fi
FUTURE_BACKEND=io_uring exec "${srcdir:-.}"/t/http-interop.sh "$@"
