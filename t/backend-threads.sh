#!/bin/sh
# Run every check suite on the threads backend (exit 77 = SKIP).
FUTURE_BACKEND=threads exec ./t/unit "$@"
