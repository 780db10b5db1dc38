# libfuture-http: the HTTP/1.1 parser, server and client, a separate library
# built only on the public libfuture API (include/future.h).
futureincludedir = $(includedir)/future
futureinclude_HEADERS = include/future/http.h
pkgconfig_DATA += libfuture-http.pc
lib_LTLIBRARIES += libfuture-http.la
libfuture_http_la_SOURCES = http/http-internal.h http/parser.c http/server.c http/client.c
libfuture_http_la_CPPFLAGS = -I$(top_srcdir)/include \
	-DFUT_HTTP_VERSION='"$(PACKAGE_VERSION)"'
libfuture_http_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden
libfuture_http_la_LIBADD = libfuture.la
libfuture_http_la_LDFLAGS = $(AM_LDFLAGS) -version-info 0:0:0 -no-undefined \
	-Wl,--version-script=$(top_srcdir)/http/libfuture-http.map
EXTRA_libfuture_http_la_DEPENDENCIES = $(top_srcdir)/http/libfuture-http.map
EXTRA_DIST += http/libfuture-http.map libfuture-http.pc.in
