#!/bin/sh
# HTTP interop tests (t/http-interop.sh) on the threads backend (exit 77 = SKIP).
FUTURE_BACKEND=threads exec "${srcdir:-.}"/t/http-interop.sh "$@"
