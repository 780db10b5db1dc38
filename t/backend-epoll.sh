#!/bin/sh
# Run every check suite on the epoll backend (exit 77 = SKIP).
exec "${srcdir:-.}"/t/run-unit.sh epoll "$@"
