noinst_PROGRAMS += examples/demo
examples_demo_SOURCES = examples/demo.c
examples_demo_LDADD = libfuture.la

bin_PROGRAMS = examples/future-doctor
examples_future_doctor_SOURCES = examples/future-doctor.c
examples_future_doctor_LDADD = libfuture.la
