/* Shared by the files of libfuture-http; nothing here is exported. */
#ifndef FUTURE_HTTP_INTERNAL_H
#define FUTURE_HTTP_INTERNAL_H

#define FUT_HTTP_BUILDING 1
#include <future/http.h>

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

/* Case-insensitive compare of a (pointer, length) view with a C string. */
int fut__http_ieq(const char *a, size_t alen, const char *b);
/* Exact compare, for methods: they are case-sensitive (RFC 9110 9.1). */
int fut__http_is(const char *a, size_t alen, const char *b);
/* Is c a token character (RFC 9110 5.6.2)? */
int fut__http_tchar(unsigned char c);
/* Whether a list field value (#element, RFC 9110 5.6.1) has token tok. */
int fut__http_list_has(const char *v, size_t n, const char *tok);
/* limits with zeros replaced by the defaults. */
void fut__http_limits(const struct fut_http_limits *in,
		      struct fut_http_limits *out);
/* The first header called name in headers[0..n), or NULL. */
const char *fut__http_find(const struct fut_http_header *h, size_t n,
			   const char *name, size_t *len);

/* A getaddrinfo(3) failure as an error code: the same for the client's
 * lookups and the server's bind address. */
int fut__http_gai_error(int gai);

#endif
