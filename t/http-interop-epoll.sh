#!/bin/sh
# HTTP interop tests (t/http-interop.sh) on the epoll backend (exit 77 = SKIP).
FUTURE_BACKEND=epoll exec "${srcdir:-.}"/t/http-interop.sh "$@"
