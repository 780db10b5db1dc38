#!/bin/sh
# The shared library exports exactly the documented fut_ API: nothing
# without the prefix, nothing internal (fut__*).
lib=.libs/libfuture.so
[ -f "$lib" ] || { echo "no $lib"; exit 1; }
bad=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^LIBFUTURE_' |
	grep -Ev '^fut_[a-z0-9]' )
int=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep '^fut__')
if [ -n "$bad$int" ]; then
	echo "unexpected exported symbols:"; echo "$bad$int"; exit 1
fi
echo "exports: $(nm -D --defined-only "$lib" | grep -c ' fut_')"
