#!/bin/sh
# The shared libraries export exactly the documented fut_ API: nothing
# without the prefix, nothing internal (fut__*); libfuture-http exports
# only fut_http_ names.
status=0
for lib in .libs/libfuture.so .libs/libfuture-http.so; do
	[ -f "$lib" ] || { echo "no $lib"; exit 1; }
	names=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^LIBFUTURE')
	case $lib in
	*http*) bad=$(printf '%s\n' "$names" | grep -Ev '^fut_http_[a-z0-9]') ;;
	*) bad=$(printf '%s\n' "$names" | grep -Ev '^fut_[a-z0-9]' ;
		printf '%s\n' "$names" | grep '^fut__') ;;
	esac
	if [ -n "$bad" ]; then
		echo "$lib: unexpected exported symbols:"; echo "$bad"; status=1
	fi
	echo "$lib exports: $(printf '%s\n' "$names" | grep -c '^fut_')"
done
exit $status
