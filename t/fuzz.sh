#!/bin/sh
# Fuzz the HTTP parser: build t/fuzz-http.c with libFuzzer, ASan and UBSan
# into a temporary directory and run it for N seconds (default 20).
#   t/fuzz.sh [seconds]
# Exit 0: no finding; 77: clang or libFuzzer unavailable (SKIP); otherwise
# a crash, leak or mismatch (the reproducer is kept, its path printed).
secs=${1:-20}
top=$(cd "$(dirname "$0")/.." && pwd)
CC=${CLANG:-clang}

if ! command -v "$CC" >/dev/null 2>&1; then
	echo "SKIP: $CC not found"
	exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-http.XXXXXX") || exit 1
cleanup() { rm -rf "$tmp"; }

printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' >"$tmp/probe.c"
if ! "$CC" -fsanitize=fuzzer,address,undefined "$tmp/probe.c" \
		-o "$tmp/probe" >/dev/null 2>&1; then
	echo "SKIP: $CC cannot build a libFuzzer target here"
	cleanup
	exit 77
fi
if ! "$CC" -g -O1 -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -I"$top/include" \
		"$top/t/fuzz-http.c" "$top/http/parser.c" -o "$tmp/fuzz-http"; then
	echo "FAIL: building the fuzz target"
	cleanup
	exit 1
fi

# Seeds: the first byte picks the split point, the rest is the message.
mkdir "$tmp/corpus"
seed() { printf "$2" >"$tmp/corpus/$1"; }
seed req-get '\025GET /a?b=c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
seed req-post '\060POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc'
seed req-chunked '\100POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n'
seed req-10 '\003\r\nGET http://h/p HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'
seed resp '\033HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'
seed resp-lf '\011HTTP/1.0 404\nTransfer-Encoding: chunked\n\n'
seed chunks '\007a;x=1\r\n0123456789\r\n3\r\nabc\r\n0\r\nT: v\r\n\r\nrest'

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
"$tmp/fuzz-http" -max_total_time="$secs" -timeout=10 -max_len=4096 -error_exitcode=1 \
	-artifact_prefix="$tmp/" -print_final_stats=1 "$tmp/corpus"
rc=$?
if [ $rc -ne 0 ]; then
	echo "FAIL: fuzz-http exited $rc; reproducer(s) kept in $tmp:"
	ls "$tmp" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' |
		sed "s|^|  $tmp/|"
	exit 1
fi
cleanup
exit 0
