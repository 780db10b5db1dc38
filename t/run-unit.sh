#!/bin/sh
# Run every check suite on backend $1 (exit 77 = SKIP). check's per-test
# timeouts (CK_DEFAULT_TIMEOUT) need a fork per test; under CK_FORK=no the
# whole run is bounded instead, so a hang fails the suite instead of
# stalling CI.
backend=$1
shift
if [ "${CK_FORK-}" = no ]; then
	FUTURE_BACKEND=$backend exec timeout -k 10 "${FUT_UNIT_TIMEOUT:-900}" \
		./t/unit "$@"
fi
FUTURE_BACKEND=$backend exec ./t/unit "$@"
