#!/bin/sh
# Run every check suite on the threads backend (exit 77 = SKIP).
exec "${srcdir:-.}"/t/run-unit.sh threads "$@"
