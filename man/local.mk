# Man pages: one per exported function (t/man-coverage.sh checks this),
# plus the libfuture(7) overview and future-doctor(1).  The alias pages
# (fut_loop_free.3, fut_send.3, ...) are symbolic links to the page that
# documents their family: install and dist copy them as regular files.
# mandoc -Tlint flags every .so request ("fragile"), hence links.
dist_man1_MANS = man/future-doctor.1
dist_man3_MANS = \
	man/fut_accept.3 \
	man/fut_all.3 \
	man/fut_any.3 \
	man/fut_at.3 \
	man/fut_await.3 \
	man/fut_await_all.3 \
	man/fut_background.3 \
	man/fut_cancel.3 \
	man/fut_close.3 \
	man/fut_connect.3 \
	man/fut_coro_loop.3 \
	man/fut_coro_sleep.3 \
	man/fut_errname.3 \
	man/fut_error.3 \
	man/fut_http_chunked_decode.3 \
	man/fut_http_fetch.3 \
	man/fut_http_parse_request.3 \
	man/fut_http_parse_response.3 \
	man/fut_http_query_param.3 \
	man/fut_http_reason.3 \
	man/fut_http_req_body.3 \
	man/fut_http_req_head.3 \
	man/fut_http_req_header.3 \
	man/fut_http_req_loop.3 \
	man/fut_http_resp_header.3 \
	man/fut_http_respond.3 \
	man/fut_http_response_header.3 \
	man/fut_http_response_of.3 \
	man/fut_http_server_free.3 \
	man/fut_http_server_new.3 \
	man/fut_http_server_port.3 \
	man/fut_http_server_shutdown.3 \
	man/fut_http_status_of.3 \
	man/fut_http_stream_begin.3 \
	man/fut_http_stream_end.3 \
	man/fut_http_stream_write.3 \
	man/fut_loop_backend.3 \
	man/fut_loop_fallback_reason.3 \
	man/fut_loop_free.3 \
	man/fut_loop_new.3 \
	man/fut_loop_now.3 \
	man/fut_loop_of.3 \
	man/fut_loop_post.3 \
	man/fut_loop_run.3 \
	man/fut_loop_run_until.3 \
	man/fut_loop_stop.3 \
	man/fut_new.3 \
	man/fut_on_done.3 \
	man/fut_poll.3 \
	man/fut_ptr.3 \
	man/fut_read.3 \
	man/fut_recv.3 \
	man/fut_ref.3 \
	man/fut_reject.3 \
	man/fut_rejected.3 \
	man/fut_resolve.3 \
	man/fut_resolve_ptr.3 \
	man/fut_resolved.3 \
	man/fut_run_blocking.3 \
	man/fut_send.3 \
	man/fut_sleep.3 \
	man/fut_spawn.3 \
	man/fut_spawn_opts.3 \
	man/fut_state.3 \
	man/fut_strerror.3 \
	man/fut_then.3 \
	man/fut_timeout.3 \
	man/fut_timer_free.3 \
	man/fut_timer_new.3 \
	man/fut_unref.3 \
	man/fut_value.3 \
	man/fut_write.3 \
	man/fut_yield.3
dist_man7_MANS = man/libfuture.7 man/libfuture-http.7

TESTS += t/man-coverage.sh
EXTRA_DIST += t/man-coverage.sh
