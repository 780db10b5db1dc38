#!/bin/sh
# Run every check suite on the io_uring backend (exit 77 = SKIP).
exec "${srcdir:-.}"/t/run-unit.sh io_uring "$@"
