#!/bin/sh
# Man-page coverage and lint, run by "make check" from the build directory.
#  - every symbol libfuture.so exports starts with fut_ ...
#  - ... and has a page man/<name>.3 (a file or a link to the family page);
#  - every page in man/ passes "mandoc -Tlint" with no message at all.
# $srcdir (set by automake's test harness) locates man/; the libraries
# are looked for as .libs/libfuture.so and .libs/libfuture-http.so in the
# current (build) directory.
# Exit status: 0 all well, 1 a failure (named on stderr), 77 skipped (no
# shared library, so the symbol checks could not run).

srcdir=${srcdir:-.}
man=$srcdir/man
NM=${NM:-nm}
status=0
skipped=

fail() {
	echo "FAIL: $*" >&2
	status=1
}

if [ ! -d "$man" ]; then
	echo "FAIL: no man/ directory in $srcdir" >&2
	exit 1
fi

# --- exported symbols ---------------------------------------------------
for lib in .libs/libfuture.so .libs/libfuture-http.so; do
if [ -f "$lib" ]; then
	if ! syms=$($NM -D --defined-only "$lib"); then
		echo "FAIL: $NM -D --defined-only $lib failed" >&2
		exit 1
	fi
	# Lines are "ADDRESS TYPE NAME[@[@]VERSION]".  The version-script
	# node (e.g. "A LIBFUTURE_0") is an absolute symbol with no "@": not
	# a function, so it is skipped.
	names=$(printf '%s\n' "$syms" | awk '
		NF >= 2 {
			n = $NF; t = $(NF - 1)
			if (t == "A" && n !~ /@/)
				next
			sub(/@.*/, "", n)
			print n
		}' | sort -u)
	count=0
	for s in $names; do
		count=$((count + 1))
		case $s in
		fut_*)
			[ -f "$man/$s.3" ] ||
				fail "$s: exported, but $man/$s.3 is missing"
			;;
		*)
			fail "$s: exported, but its name does not start with fut_"
			;;
		esac
	done
	[ "$count" -gt 0 ] || fail "$lib exports no symbol at all"
	echo "checked $count exported symbols of $lib"
else
	echo "note: $lib not found (static-only build?): symbol checks skipped"
	skipped=1
fi
done

# --- lint ---------------------------------------------------------------
if command -v mandoc >/dev/null 2>&1; then
	n=0
	for p in "$man"/*.[1-9]; do
		# No page at all: the pattern stays unexpanded.
		[ -e "$p" ] || [ -h "$p" ] || continue
		n=$((n + 1))
		if [ ! -f "$p" ]; then
			fail "$p: broken link"
			continue
		fi
		out=$(mandoc -Tlint "$p" 2>&1)
		rc=$?
		if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
			fail "$p: mandoc -Tlint exit $rc"
			printf '%s\n' "$out" >&2
		fi
	done
	echo "linted $n pages in $man"
else
	echo "note: mandoc not found: lint of $man skipped"
fi

if [ "$status" -ne 0 ]; then
	exit 1
fi
if [ -n "$skipped" ]; then
	exit 77
fi
exit 0
