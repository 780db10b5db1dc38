#!/bin/sh
# Run every check suite on the epoll backend (exit 77 = SKIP).
FUTURE_BACKEND=epoll exec ./t/unit "$@"
