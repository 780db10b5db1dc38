noinst_PROGRAMS += examples/demo
examples_demo_SOURCES = examples/demo.c
examples_demo_LDADD = libfuture.la

bin_PROGRAMS = examples/future-doctor
examples_future_doctor_SOURCES = examples/future-doctor.c
examples_future_doctor_LDADD = libfuture.la

# The HTTP examples: exact command lines are documented in README.md.
noinst_PROGRAMS += examples/httpd
examples_httpd_SOURCES = examples/httpd.c
examples_httpd_LDADD = libfuture-http.la libfuture.la -lpthread
noinst_PROGRAMS += examples/fetch
examples_fetch_SOURCES = examples/fetch.c
examples_fetch_LDADD = libfuture-http.la libfuture.la
noinst_PROGRAMS += examples/seed-endpoint
examples_seed_endpoint_SOURCES = examples/seed-endpoint.c
examples_seed_endpoint_LDADD = libfuture-http.la libfuture.la -lpthread
EXTRA_DIST += examples/cli.h examples/seed.sh examples/tornado/seed_endpoint.py examples/tornado/hello.py
