/* Shared by the files of libfuture-http; nothing here is exported. */
#ifndef FUTURE_HTTP_INTERNAL_H
#define FUTURE_HTTP_INTERNAL_H

#define FUT_HTTP_BUILDING 1
#include <future/http.h>

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * Inline, so that the compiler sees the literal every caller passes: its
 * strlen folds to a constant and most compares end at the length (a
 * parsed header was compared with five names through strlen: a tenth of
 * a hello-world request's instructions).
 */

/* Case-insensitive compare of a (pointer, length) view with a C string. */
static inline int fut__http_ieq(const char *a, size_t alen, const char *b)
{
	if (alen != strlen(b))
		return 0;
	for (size_t i = 0; i < alen; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x += 32;
		if (y >= 'A' && y <= 'Z')
			y += 32;
		if (x != y)
			return 0;
	}
	return 1;
}

/* Exact compare, for methods: they are case-sensitive (RFC 9110 9.1). */
static inline int fut__http_is(const char *a, size_t alen, const char *b)
{
	return alen == strlen(b) && memcmp(a, b, alen) == 0;
}

/* tchar (RFC 9110 5.6.2), indexed by byte. */
extern const unsigned char fut__http_tchar_tab[256];

/* What a field value may hold (RFC 9110 5.5): HTAB, SP, VCHAR, obs-text. */
extern const unsigned char fut__http_fvchar_tab[256];

/* Is c a token character? */
static inline int fut__http_tchar(unsigned char c)
{
	return fut__http_tchar_tab[c];
}
/* Whether a list field value (#element, RFC 9110 5.6.1) has token tok. */
int fut__http_list_has(const char *v, size_t n, const char *tok);
/* Host = uri-host [ ":" port ] (RFC 9112 3.2); empty passes. */
int fut__http_valid_host(const char *v, size_t n);
/* fut_http_chunked_decode for a response: an obs-fold in its trailer
 * section is taken as SP (RFC 9112 5.2), as in its head. */
int fut__http_chunked_decode_response(struct fut_http_chunked *st,
				      char *buf, size_t *len, size_t *rest,
				      uint64_t max_body);
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
