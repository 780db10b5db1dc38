#!/bin/sh
# Run every check suite on the io_uring backend (exit 77 = SKIP).
FUTURE_BACKEND=io_uring exec ./t/unit "$@"
