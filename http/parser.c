/*
 * HTTP/1.1 message heads and chunked bodies, parsed in place (RFC 9112).
 *
 * Strict where leniency is a known smuggling vector: only CRLF ends a line
 * in a request, no obs-fold, no whitespace before the colon, no bare CR or
 * control bytes, Content-Length and Transfer-Encoding never together,
 * differing Content-Lengths refused, Transfer-Encoding must end in chunked,
 * chunk sizes are bare hex that must not overflow.
 *
 * Incremental: a head is parsed once its blank line has arrived. Until
 * then only the limits are checked and the request line is validated as
 * soon as it is complete, so a client dribbling bytes costs one scan of
 * the new bytes per call (last_len), not a rescan of the whole buffer.
 */
#include "http-internal.h"

#include <stdint.h>
#include <string.h>

#define DEF_REQUEST_LINE 8192
#define DEF_HEADER_BYTES 65536
#define DEF_HEADERS 100
#define DEF_BODY (1u << 20)
#define MAX_CHUNK_LINE 4096  /* bytes of a chunk-size line before its CR:
				size, whitespace, extensions (endless
				leading zeros cost a core for the whole
				body timeout) */
#define MAX_TRAILER 65536    /* bytes of trailer section */

const unsigned char fut__http_tchar_tab[256] = {
	['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
	['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1,
	['`'] = 1, ['|'] = 1, ['~'] = 1,
	['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

static int is_vchar_or_obs(unsigned char c)
{
	return (c > 0x20 && c != 0x7f);
}

void fut__http_limits(const struct fut_http_limits *in,
		      struct fut_http_limits *out)
{
	memset(out, 0, sizeof(*out));
	if (in)
		*out = *in;
	if (!out->max_request_line)
		out->max_request_line = DEF_REQUEST_LINE;
	if (!out->max_header_bytes)
		out->max_header_bytes = DEF_HEADER_BYTES;
	if (!out->max_headers)
		out->max_headers = DEF_HEADERS;
	if (!out->max_body)
		out->max_body = DEF_BODY;
}

static int bad_limits(const struct fut_http_limits *l)
{
	if (!l)
		return 0;
	for (size_t i = 0; i < sizeof(l->reserved) / sizeof(l->reserved[0]); i++)
		if (l->reserved[i])
			return 1;
	return 0;
}

/* A line ends at CRLF; in responses a bare LF is accepted too (RFC 9112
 * 2.2 allows it; servers are not a smuggling vector for our client).
 * Returns the index of the LF, or -1 when the line is not complete, or -2
 * on a bare CR / bare LF that is not allowed. */
static ptrdiff_t line_end(const char *p, size_t n, int allow_lf)
{
	const char *lf = memchr(p, '\n', n);
	if (!lf)
		return -1;
	ptrdiff_t i = lf - p;
	if (i > 0 && p[i - 1] == '\r')
		return i;
	return allow_lf ? i : -2;
}

/* Length of the line's content (without CR). */
static size_t content_len(const char *p, ptrdiff_t lf)
{
	return (size_t)lf - (lf > 0 && p[lf - 1] == '\r');
}

struct framing {
	int64_t content_length;
	int chunked;
	int close;      /* Connection: close */
	int keep_alive; /* Connection: keep-alive */
	int expect_continue;
	int hosts;
	int te_seen;
	int te_unknown; /* a coding other than chunked */
	int te_junk;    /* parameters or bytes that are no coding name */
	int te_early;   /* chunked, then another coding (or chunked again) */
};

/* Content-Length: 1*DIGIT, possibly repeated ("5, 5" or two fields), all
 * the same (RFC 9110 8.6). Not a list field: an empty element (",5",
 * "5,") is an invalid value, answered 400 (RFC 9112 6.3 rule 5), as
 * nginx and llhttp do, rather than a length some front end reads
 * otherwise. */
static int parse_content_length(const char *v, size_t n, struct framing *fr)
{
	size_t i = 0;
	while (i <= n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t'))
			i++;
		uint64_t x = 0;
		size_t d = 0;
		while (i < n && v[i] >= '0' && v[i] <= '9') {
			if (x > (UINT64_MAX >> 1) / 10)
				return FUT_HTTP_EBADREQ; /* overflow */
			x = x * 10 + (uint64_t)(v[i] - '0');
			i++;
			d++;
		}
		if (!d || x > INT64_MAX)
			return FUT_HTTP_EBADREQ;
		while (i < n && (v[i] == ' ' || v[i] == '\t'))
			i++;
		if (i < n && v[i] != ',')
			return FUT_HTTP_EBADREQ;
		if (i + 1 == n) /* a trailing comma */
			return FUT_HTTP_EBADREQ;
		i++;
		if (fr->content_length >= 0 && (uint64_t)fr->content_length != x)
			return FUT_HTTP_EBADREQ;
		fr->content_length = (int64_t)x;
	}
	return 0;
}

/* Transfer-Encoding: a list of codings; only a final "chunked" is
 * understood. */
static int parse_te(const char *v, size_t n, struct framing *fr)
{
	size_t i = 0;
	fr->te_seen = 1;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		if (i >= n)
			break;
		size_t s = i;
		while (i < n && fut__http_tchar_tab[(unsigned char)v[i]])
			i++;
		size_t e = i;
		while (i < n && (v[i] == ' ' || v[i] == '\t'))
			i++;
		if (e == s || (i < n && v[i] != ',')) {
			fr->te_junk = 1; /* parameters, junk */
			return 0;
		}
		if (fr->chunked) /* anything after chunked, or chunked twice */
			fr->te_early = 1;
		fr->chunked = fut__http_ieq(v + s, e - s, "chunked");
		if (!fr->chunked)
			fr->te_unknown = 1; /* a coding we do not decode */
	}
	return 0;
}

/*
 * A request line longer than max: 414 if the target is what makes it
 * long; 400 (RFC 9112 3: an invalid request line) if the target ended in
 * time with a version's 8 bytes after it in the limit too, so that what
 * goes past the limit is junk after the version ("GET / HTTP/1.1" and
 * then junk, or a run of spaces). Judged on the first max bytes only, as
 * the length is, so every split of the bytes gives the same answer.
 */
static int too_long(const char *line, size_t max)
{
	const char *end = line + max;
	const char *sp1 = memchr(line, ' ', max);
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1))
			      : NULL;
	return sp2 && end - (sp2 + 1) >= 8 ? FUT_HTTP_EBADREQ
					  : FUT_HTTP_EURITOOLONG;
}

static int hexval(int c);

/* unreserved / sub-delims (RFC 3986 2.2, 2.3): every byte of a plain
 * host, which is checked on every request. */
static const unsigned char plain_tab[256] = {
	['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1, ['!'] = 1, ['$'] = 1,
	['&'] = 1, ['\''] = 1, ['('] = 1, [')'] = 1, ['*'] = 1, ['+'] = 1,
	[','] = 1, [';'] = 1, ['='] = 1,
	['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

static int uri_plain(unsigned char c)
{
	return plain_tab[c];
}

/*
 * uri-host [ ":" port ] (RFC 3986 3.2.2, 3.2.3), as in Host and in an
 * authority-form target. uri-host is a reg-name (an IPv4 address is one)
 * or an IP literal in brackets: IPvFuture, or IPv6 of which only the
 * characters are checked. Returns the length of uri-host, or -1.
 */
static ptrdiff_t host_port(const char *v, size_t n)
{
	size_t i = 0;
	if (n && v[0] == '[') {
		const char *rb = memchr(v, ']', n);
		if (!rb)
			return -1;
		size_t e = (size_t)(rb - v);
		if (e > 1 && (v[1] == 'v' || v[1] == 'V')) {
			/* "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ) */
			for (i = 2; i < e && hexval(v[i]) >= 0; i++)
				;
			if (i == 2 || i + 1 >= e || v[i] != '.')
				return -1;
			for (i++; i < e; i++)
				if (!uri_plain((unsigned char)v[i]) && v[i] != ':')
					return -1;
		} else {
			int colon = 0;
			for (i = 1; i < e; i++) {
				if (v[i] == ':')
					colon = 1;
				else if (v[i] != '.' && hexval(v[i]) < 0)
					return -1;
			}
			if (!colon) /* every IPv6 address has one */
				return -1;
		}
		i = e + 1;
	} else {
		while (i < n && v[i] != ':') {
			if (v[i] == '%') { /* pct-encoded */
				if (n - i < 3 || hexval(v[i + 1]) < 0 ||
				    hexval(v[i + 2]) < 0)
					return -1;
				i += 3;
			} else if (uri_plain((unsigned char)v[i])) {
				i++;
			} else {
				return -1;
			}
		}
	}
	size_t h = i;
	if (i < n && v[i++] != ':')
		return -1;
	for (; i < n; i++) /* port = *DIGIT */
		if (v[i] < '0' || v[i] > '9')
			return -1;
	return (ptrdiff_t)h;
}

/* Host = uri-host [ ":" port ]; empty is allowed (RFC 9112 3.2). */
int fut__http_valid_host(const char *v, size_t n)
{
	return host_port(v, n) >= 0;
}

static int scheme_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
}

/* Whether the list field value v (#element: elements split by commas,
 * empty ones and OWS allowed, RFC 9110 5.6.1) has the token tok. */
int fut__http_list_has(const char *v, size_t n, const char *tok)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t s = i;
		while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
			i++;
		if (i > s && fut__http_ieq(v + s, i - s, tok))
			return 1;
	}
	return 0;
}

const unsigned char fut__http_fvchar_tab[256] = {
	['\t'] = 1, [' ' ... '~'] = 1, [0x80 ... 0xff] = 1,
};

/*
 * Header fields from p[0..n), which ends with the blank line. Fills
 * headers and fr. bad is the error for a malformed field.
 *
 * One pass over each line: the name, then the value up to the first byte
 * a value cannot hold, which must be the line's CRLF (or a bare LF where
 * allow_lf). head_end has found the blank line, so every line ends
 * before n; a scan that reaches n is refused all the same.
 */
static int parse_fields(const char *p, size_t n, int allow_lf, int bad,
			struct fut_http_header *headers, size_t max_headers,
			size_t *num, struct framing *fr)
{
	size_t i = 0, k = 0;
	fr->content_length = -1;
	for (;;) {
		const char *l = p + i;
		size_t m = n - i;
		if (m >= 2 && l[0] == '\r' && l[1] == '\n') {
			i += 2;
			break;
		}
		if (m >= 1 && l[0] == '\n' && allow_lf) {
			i++;
			break;
		}
		/* A line that starts with SP or HTAB (obs-fold) has no name. */
		size_t c = 0;
		while (c < m && fut__http_tchar_tab[(unsigned char)l[c]])
			c++;
		if (c == 0 || c >= m || l[c] != ':')
			return bad; /* empty name, bad byte, space before ':' */
		size_t vs = c + 1, e;
		while (vs < m && (l[vs] == ' ' || l[vs] == '\t'))
			vs++;
		for (e = vs; e < m && fut__http_fvchar_tab[(unsigned char)l[e]]; e++)
			;
		if (e + 1 < m && l[e] == '\r' && l[e + 1] == '\n')
			i += e + 2;
		else if (e < m && l[e] == '\n' && allow_lf)
			i += e + 1;
		else
			return bad; /* bare CR, NUL, controls */
		size_t ve = e;
		while (ve > vs && (l[ve - 1] == ' ' || l[ve - 1] == '\t'))
			ve--;
		if (k == max_headers)
			return FUT_HTTP_EHDRTOOBIG;
		struct fut_http_header *h = &headers[k++];
		h->name = l;
		h->name_len = c;
		h->value = l + vs;
		h->value_len = ve - vs;
		int r = 0;
		if (fut__http_ieq(l, c, "content-length"))
			r = parse_content_length(h->value, h->value_len, fr);
		else if (fut__http_ieq(l, c, "transfer-encoding"))
			r = parse_te(h->value, h->value_len, fr);
		else if (fut__http_ieq(l, c, "connection")) {
			fr->close |= fut__http_list_has(h->value, h->value_len, "close");
			fr->keep_alive |= fut__http_list_has(h->value, h->value_len,
						   "keep-alive");
		}
		else if (fut__http_ieq(l, c, "host")) {
			fr->hosts++;
			if (!fut__http_valid_host(h->value, h->value_len))
				return bad; /* RFC 9112 3.2: 400 */
		}
		else if (fut__http_ieq(l, c, "expect"))
			/* Expect = #expectation, over any number of fields */
			fr->expect_continue |= fut__http_list_has(h->value, h->value_len,
							"100-continue");
		if (r == FUT_HTTP_EBADREQ)
			return bad;
		if (r)
			return r;
	}
	*num = k;
	return i == n ? 0 : bad;
}

/* "HTTP/" DIGIT "." DIGIT. Returns the minor version, or an error. */
static int parse_version(const char *p, size_t n, int bad)
{
	if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' ||
	    p[5] < '0' || p[5] > '9' || p[7] < '0' || p[7] > '9')
		return bad;
	if (p[5] != '1')
		return FUT_HTTP_EVERSION;
	return p[7] - '0';
}

/* Leading empty lines before a request line are ignored (RFC 9112 2.2). */
static size_t skip_empty_lines(const char *buf, size_t len)
{
	size_t s = 0;
	while (s + 1 < len && buf[s] == '\r' && buf[s + 1] == '\n')
		s += 2;
	return s;
}

/* Find the end of the head (the blank line) scanning from `from`.
 * Returns its length, or 0 when not there yet. */
static size_t head_end(const char *buf, size_t len, size_t from, int allow_lf)
{
	size_t i = from;
	while (i < len) {
		const char *lf = memchr(buf + i, '\n', len - i);
		if (!lf)
			return 0;
		size_t j = (size_t)(lf - buf);
		if (!allow_lf && (j == 0 || buf[j - 1] != '\r'))
			return SIZE_MAX; /* a bare LF: refused at once */
		/* The line before this LF is empty when the previous LF is
		 * right before it (optionally with a CR in between). */
		if (j >= 2 && buf[j - 1] == '\r' && buf[j - 2] == '\n')
			return j + 1;
		if (allow_lf && j >= 1 && buf[j - 1] == '\n')
			return j + 1;
		i = j + 1;
	}
	return 0;
}

static int request_line(const char *l, size_t ll,
			struct fut_http_request_head *req)
{
	size_t i = 0;
	while (i < ll && fut__http_tchar_tab[(unsigned char)l[i]])
		i++;
	if (i == 0 || i >= ll || l[i] != ' ')
		return FUT_HTTP_EBADREQ;
	req->method = l;
	req->method_len = i;
	size_t ts = ++i;
	while (i < ll && l[i] != ' ') {
		unsigned char c = (unsigned char)l[i];
		if (c <= 0x20 || c >= 0x7f || c == '#')
			return FUT_HTTP_EBADREQ;
		i++;
	}
	if (i == ts || i >= ll)
		return FUT_HTTP_EBADREQ;
	req->target = l + ts;
	req->target_len = i - ts;
	int minor = parse_version(l + i + 1, ll - i - 1, FUT_HTTP_EBADREQ);
	if (minor < 0)
		return minor;
	req->minor_version = minor > 1 ? 1 : minor;

	/* origin-form "/p?q", absolute-form "http://h/p?q", "*" for OPTIONS,
	 * authority-form for CONNECT and only there. */
	const char *t = req->target, *end = t + req->target_len;
	const char *path = t;
	int absolute = 0;
	/* Methods are case-sensitive (RFC 9110 9.1): "connect" is some
	 * other, unknown method. */
	if (fut__http_is(req->method, req->method_len, "CONNECT")) {
		/* host ":" port, the port not empty (RFC 9112 3.2.3, RFC
		 * 9110 9.3.6); the path is empty. */
		ptrdiff_t h = host_port(t, req->target_len);
		if (h <= 0 || (size_t)h + 1 >= req->target_len)
			return FUT_HTTP_EBADREQ;
		path = end;
	} else if (t[0] != '/') {
		/* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
		const char *sch = t;
		if ((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z'))
			while (sch < end && scheme_char(*sch))
				sch++;
		if (req->target_len == 1 && t[0] == '*' &&
		    fut__http_is(req->method, req->method_len, "OPTIONS")) {
			path = t;
		} else if (sch > t && end - sch > 3 &&
			   memcmp(sch, "://", 3) == 0) {
			/* The path starts at the first '/' or '?' after
			 * the authority ("http://h?q" has an empty path). */
			const char *auth = sch + 3;
			path = auth;
			while (path < end && *path != '/' && *path != '?')
				path++;
			/* userinfo: credentials in the clear, and a way to
			 * dress one host up as another (RFC 9110 4.2.4). */
			ptrdiff_t h = host_port(auth, (size_t)(path - auth));
			if (memchr(auth, '@', (size_t)(path - auth)) || h < 0)
				return FUT_HTTP_EBADREQ;
			/* An http(s) URI with an empty host is invalid and
			 * MUST be rejected (RFC 9110 4.2.1, 4.2.2). */
			if (!h && (fut__http_ieq(t, (size_t)(sch - t), "http") ||
				   fut__http_ieq(t, (size_t)(sch - t), "https")))
				return FUT_HTTP_EBADREQ;
			absolute = 1;
		} else {
			return FUT_HTTP_EBADREQ;
		}
	}
	const char *q = memchr(path, '?', (size_t)(end - path));
	/* A '%' in the path not followed by two hex digits: an invalid
	 * request line, 400 (RFC 9112 3, SHOULD; nginx too). The query is
	 * passed on as sent: its meaning is the application's. */
	for (const char *pc = path, *pe = q ? q : end;
	     (pc = memchr(pc, '%', (size_t)(pe - pc))); pc += 3)
		if (pe - pc < 3 || hexval(pc[1]) < 0 ||
		    hexval(pc[2]) < 0)
			return FUT_HTTP_EBADREQ;
	req->path = path;
	req->path_len = (size_t)((q ? q : end) - path);
	req->query = q ? q + 1 : NULL;
	req->query_len = q ? (size_t)(end - q - 1) : 0;
	if (absolute && !req->path_len) {
		/* An empty path is "/" (RFC 9110 4.2.3); the path is a view,
		 * so of a constant. */
		req->path = "/";
		req->path_len = 1;
	}
	return 0;
}

/* The arguments both head parsers take; fills *lim with the defaults
 * applied and caps *max_headers. Returns nonzero when they are invalid. */
static int check_args(const char *buf, size_t len, size_t last_len,
		      const void *out, const struct fut_http_header *headers,
		      size_t *max_headers, const struct fut_http_limits *limits,
		      struct fut_http_limits *lim)
{
	if ((!buf && len) || !out || (!headers && *max_headers) ||
	    last_len > len || bad_limits(limits))
		return 1;
	fut__http_limits(limits, lim);
	if (*max_headers > lim->max_headers)
		*max_headers = lim->max_headers;
	return 0;
}

int fut_http_parse_request(const char *buf, size_t len, size_t last_len,
			   struct fut_http_request_head *req,
			   struct fut_http_header *headers, size_t max_headers,
			   const struct fut_http_limits *limits)
{
	struct fut_http_limits lim;
	if (check_args(buf, len, last_len, req, headers, &max_headers, limits,
		       &lim))
		return -EINVAL;
	if (len == 0)
		return FUT_HTTP_EINCOMPLETE;
	size_t s = skip_empty_lines(buf, len);
	if (s > 8)
		return FUT_HTTP_EBADREQ;
	/* The request line: validated as soon as it is complete. Its length
	 * is judged first, so that a long line gets 414 however it ends and
	 * however its bytes arrive. */
	size_t from = last_len > s ? last_len : s;
	const char *nl = memchr(buf + s, '\n', len - s);
	size_t upto = nl ? (size_t)(nl - buf) : len; /* end of what we have */
	/* Except what cannot start a request line: refused as soon as it is
	 * in, not after the header timeout (a TLS ClientHello, 0x16 ..., or
	 * other junk without an LF got 408 after 10 s; RFC 9112 3: an
	 * invalid request-line SHOULD get 400). Only the line's first
	 * max_request_line bytes are looked at, so that every split of the
	 * bytes gives the result they give at once (a byte past the limit
	 * is the long line's, 414). A lone CR at the end may be the start
	 * of an empty line's CRLF. */
	size_t scan_end = upto - s < lim.max_request_line ?
			  upto : s + lim.max_request_line;
	size_t m = s;
	while (m < scan_end && fut__http_tchar_tab[(unsigned char)buf[m]])
		m++;
	if (m < scan_end && buf[m] != ' ' &&
	    !(m == s && m + 1 == upto && buf[m] == '\r'))
		return FUT_HTTP_EBADREQ;
	size_t so_far = upto - s;
	if (so_far && buf[upto - 1] == '\r')
		so_far--;
	if (so_far > lim.max_request_line)
		return too_long(buf + s, lim.max_request_line);
	if (!nl)
		return len > lim.max_header_bytes ? FUT_HTTP_EHDRTOOBIG :
						    FUT_HTTP_EINCOMPLETE;
	ptrdiff_t lf = line_end(buf + s, len - s, 0);
	if (lf == -2)
		return FUT_HTTP_EBADREQ;
	size_t ll = content_len(buf + s, lf);
	memset(req, 0, sizeof(*req));
	int r = request_line(buf + s, ll, req);
	if (r)
		return r;
	size_t hs = s + (size_t)lf + 1; /* header section start */
	if (from < hs)
		from = hs;
	/* The blank line may have arrived with the last bytes: look back. */
	size_t end = head_end(buf, len, from >= hs + 2 ? from - 2 : hs - 1, 0);
	if (end == SIZE_MAX)
		return FUT_HTTP_EBADREQ;
	if (!end) {
		/* A blank line right after the request line: no headers. */
		if (len - hs >= 2 && buf[hs] == '\r' && buf[hs + 1] == '\n')
			end = hs + 2;
	}
	if (!end || end > lim.max_header_bytes) {
		if (end > lim.max_header_bytes || len > lim.max_header_bytes)
			return FUT_HTTP_EHDRTOOBIG;
		return FUT_HTTP_EINCOMPLETE;
	}
	struct framing fr = { 0 };
	size_t num = 0;
	r = parse_fields(buf + hs, end - hs, 0, FUT_HTTP_EBADREQ, headers,
			 max_headers, &num, &fr);
	if (r)
		return r;
	if (req->minor_version >= 1 && fr.hosts != 1)
		return FUT_HTTP_EBADREQ; /* RFC 9112 3.2: exactly one Host */
	if (fr.hosts > 1)
		return FUT_HTTP_EBADREQ;
	if (fr.te_seen) {
		if (fr.content_length >= 0 || req->minor_version == 0)
			return FUT_HTTP_EBADREQ;
		/* A coding with parameters (none is defined for chunked)
		 * or junk: the final coding is not plainly chunked, so the
		 * body's length cannot be told (RFC 9112 6.3: 400). */
		if (fr.te_junk || !fr.chunked || fr.te_early)
			return FUT_HTTP_EBADREQ;
		if (fr.te_unknown) /* RFC 9112 6.1: 501 */
			return FUT_HTTP_ENOTIMPL;
	}
	if (fr.content_length > 0 && (uint64_t)fr.content_length > lim.max_body)
		return FUT_HTTP_EBODYTOOBIG;
	req->headers = headers;
	req->num_headers = num;
	req->content_length = fr.content_length;
	req->chunked = fr.chunked;
	req->keep_alive = req->minor_version >= 1 ? !fr.close :
			  (fr.keep_alive && !fr.close);
	req->expect_continue = fr.expect_continue && req->minor_version >= 1;
	return (int)end;
}

int fut_http_parse_response(const char *buf, size_t len, size_t last_len,
			    struct fut_http_response_head *resp,
			    struct fut_http_header *headers, size_t max_headers,
			    const struct fut_http_limits *limits)
{
	struct fut_http_limits lim;
	if (check_args(buf, len, last_len, resp, headers, &max_headers, limits,
		       &lim))
		return -EINVAL;
	/* Bytes that cannot start a status line fail now, not when the
	 * server closes or the request times out (an HTTP/0.9 answer, a
	 * TLS alert, a banner). */
	if (len && memcmp(buf, "HTTP/", len < 5 ? len : 5) != 0)
		return FUT_HTTP_EBADRESP;
	size_t end = head_end(buf, len, last_len >= 2 ? last_len - 2 : 0, 1);
	if (!end || end > lim.max_header_bytes)
		return (end > lim.max_header_bytes ||
			len > lim.max_header_bytes) ? FUT_HTTP_EHDRTOOBIG :
						      FUT_HTTP_EINCOMPLETE;
	ptrdiff_t lf = line_end(buf, end, 1);
	size_t ll = content_len(buf, lf);
	memset(resp, 0, sizeof(*resp));
	if (ll < 12)
		return FUT_HTTP_EBADRESP;
	int minor = parse_version(buf, 8, FUT_HTTP_EBADRESP);
	if (minor == FUT_HTTP_EVERSION)
		return FUT_HTTP_EBADRESP;
	if (minor < 0)
		return minor;
	if (buf[8] != ' ' || buf[9] < '1' || buf[9] > '9' ||
	    buf[10] < '0' || buf[10] > '9' || buf[11] < '0' || buf[11] > '9' ||
	    (ll > 12 && buf[12] != ' '))
		return FUT_HTTP_EBADRESP;
	for (size_t i = 13; i < ll; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (!is_vchar_or_obs(c) && c != ' ' && c != '\t')
			return FUT_HTTP_EBADRESP;
	}
	resp->minor_version = minor > 1 ? 1 : minor;
	resp->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 +
		       (buf[11] - '0');
	resp->reason = ll > 13 ? buf + 13 : buf + ll;
	resp->reason_len = ll > 13 ? ll - 13 : 0;
	struct framing fr = { 0 };
	size_t num = 0;
	size_t hs = (size_t)lf + 1;
	int r = parse_fields(buf + hs, end - hs, 1, FUT_HTTP_EBADRESP, headers,
			     max_headers, &num, &fr);
	if (r == FUT_HTTP_EBADREQ || r == FUT_HTTP_ENOTIMPL)
		r = FUT_HTTP_EBADRESP;
	if (r)
		return r;
	/*
	 * Transfer-Encoding in a response (RFC 9112 6.1, 6.3): with
	 * Content-Length too, or in HTTP/1.0 (framing to be treated as
	 * faulty), or chunked applied twice, or unparsable: refused. With
	 * chunked last the body is de-chunked; any coding before it stays
	 * applied (the header says which). Without chunked last the body
	 * runs until the server closes (content_length -1, chunked 0).
	 */
	if (fr.te_seen && (fr.content_length >= 0 || minor == 0 || fr.te_junk ||
			   (fr.te_early && fr.chunked)))
		return FUT_HTTP_EBADRESP;
	resp->headers = headers;
	resp->num_headers = num;
	resp->content_length = fr.content_length;
	resp->chunked = fr.chunked;
	resp->keep_alive = resp->minor_version >= 1 ? !fr.close :
			   (fr.keep_alive && !fr.close);
	return (int)end;
}

/* ---- chunked bodies ---- */

enum {
	CH_SIZE0 = 0, /* first hex digit of a size */
	CH_SIZE,      /* more hex digits */
	CH_EXT,       /* after ';' up to CR */
	CH_SIZE_LF,   /* LF after the size line's CR */
	CH_DATA,
	CH_DATA_CR,
	CH_DATA_LF,
	CH_TRAILER0,  /* start of a trailer line (or the final CRLF) */
	CH_TRAILER,   /* a trailer field value */
	CH_TRAILER_LF,
	CH_END_LF,    /* LF of the final blank line */
	CH_DONE,
	CH_BWS,       /* whitespace between the size and ';' */
	CH_TRAILER_NAME, /* a trailer field name, up to its ':' */
};

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20; /* lower case, and no digit or hex letter otherwise */
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
 * (RFC 9112 7.1.1), one byte at a time after the first ';'. Extensions
 * carry nothing we use, but a line that does not parse is one that
 * another parser may frame differently. The state sits in the top bits
 * of the decoder's aux, the line's byte count in the rest.
 */
enum { E_NAME0 = 0, E_NAME, E_AFTER_NAME, E_VAL0, E_TOK, E_AFTER_VAL, E_QS,
       E_QP, E_QEND, E_END };
#define EXT_SHIFT 24
#define EXT_COUNT ((1u << EXT_SHIFT) - 1)

static int ext_step(unsigned e, unsigned char c)
{
	int ws = c == ' ' || c == '\t', tc = fut__http_tchar(c);
	switch (e) {
	case E_NAME0:
		return ws ? E_NAME0 : tc ? E_NAME : -1;
	case E_NAME:
	case E_AFTER_NAME: /* BWS comes before ';' or '=', not before CR */
		if (tc && e == E_NAME)
			return E_NAME;
		return ws ? E_AFTER_NAME : c == '=' ? E_VAL0 :
		       c == ';' ? E_NAME0 :
		       c == '\r' && e == E_NAME ? E_END : -1;
	case E_VAL0:
		return ws ? E_VAL0 : c == '"' ? E_QS : tc ? E_TOK : -1;
	case E_TOK:
	case E_QEND:
	case E_AFTER_VAL:
		if (tc && e == E_TOK)
			return E_TOK;
		return ws ? E_AFTER_VAL : c == ';' ? E_NAME0 :
		       c == '\r' && e != E_AFTER_VAL ? E_END : -1;
	case E_QS:
		return c == '"' ? E_QEND : c == '\\' ? E_QP :
		       ws || is_vchar_or_obs(c) ? E_QS : -1;
	case E_QP:
		return ws || is_vchar_or_obs(c) ? E_QS : -1;
	}
	return -1;
}

static int chunked_decode(struct fut_http_chunked *st, char *buf,
			  size_t *len, size_t *rest, uint64_t max_body,
			  bool fold_ok);

int fut_http_chunked_decode(struct fut_http_chunked *st, char *buf,
			    size_t *len, size_t *rest, uint64_t max_body)
{
	return chunked_decode(st, buf, len, rest, max_body, false);
}

int fut__http_chunked_decode_response(struct fut_http_chunked *st,
				      char *buf, size_t *len, size_t *rest,
				      uint64_t max_body)
{
	return chunked_decode(st, buf, len, rest, max_body, true);
}

static int chunked_decode(struct fut_http_chunked *st, char *buf,
			  size_t *len, size_t *rest, uint64_t max_body,
			  bool fold_ok)
{
	if (!st || !len || (!buf && *len) || !rest)
		return -EINVAL;
	if (st->state < 0)
		return st->state;
	if (!max_body)
		max_body = DEF_BODY;
	size_t in = 0, out = 0, n = *len;
	int err = 0;
	while (in < n && st->state != CH_DONE) {
		unsigned char c = (unsigned char)buf[in];
		switch (st->state) {
		case CH_SIZE0:
		case CH_SIZE: {
			int h = hexval(c);
			if (c != '\r' && st->aux++ >= MAX_CHUNK_LINE) {
				err = FUT_HTTP_EBADREQ; /* counts the line's bytes */
				goto fail;
			}
			if (h >= 0) {
				if (st->remaining >> 60) {
					err = FUT_HTTP_EBADREQ; /* overflow */
					goto fail;
				}
				st->remaining = st->remaining * 16 + (uint64_t)h;
				st->state = CH_SIZE;
			} else if (st->state == CH_SIZE0) {
				err = FUT_HTTP_EBADREQ;
				goto fail;
			} else if (c == ';') {
				st->state = CH_EXT; /* aux: E_NAME0, the count */
			} else if (c == ' ' || c == '\t') {
				st->state = CH_BWS;
			} else if (c == '\r') {
				st->state = CH_SIZE_LF;
			} else {
				err = FUT_HTTP_EBADREQ;
				goto fail;
			}
			in++;
			break;
		}
		case CH_BWS:
			if (st->aux++ >= MAX_CHUNK_LINE ||
			    (c != ';' && c != ' ' && c != '\t')) {
				err = FUT_HTTP_EBADREQ;
				goto fail;
			}
			if (c == ';')
				st->state = CH_EXT;
			in++;
			break;
		case CH_EXT: {
			int e = ext_step(st->aux >> EXT_SHIFT, c);
			if (e < 0 || (e != E_END &&
				      (st->aux & EXT_COUNT) >= MAX_CHUNK_LINE)) {
				err = FUT_HTTP_EBADREQ;
				goto fail;
			}
			st->aux = (uint32_t)e << EXT_SHIFT |
				  ((st->aux & EXT_COUNT) + 1);
			if (e == E_END)
				st->state = CH_SIZE_LF;
			in++;
			break;
		}
		case CH_SIZE_LF:
			if (c != '\n') {
				err = FUT_HTTP_EBADREQ;
				goto fail;
			}
			in++;
			if (st->remaining > max_body - st->total) {
				err = FUT_HTTP_EBODYTOOBIG;
				goto fail;
			}
			if (st->remaining == 0) {
				st->aux = 0;
				st->state = CH_TRAILER0;
			} else {
				st->state = CH_DATA;
			}
			break;
		case CH_DATA: {
			size_t k = n - in;
			if (k > st->remaining)
				k = (size_t)st->remaining;
			if (out != in)
				memmove(buf + out, buf + in, k);
			out += k;
			in += k;
			st->remaining -= k;
			st->total += k;
			if (!st->remaining)
				st->state = CH_DATA_CR;
			break;
		}
		case CH_DATA_CR:
		case CH_TRAILER_LF:
		case CH_END_LF:
		case CH_DATA_LF: {
			int want = st->state == CH_DATA_CR ? '\r' : '\n';
			if (c != want) {
				err = FUT_HTTP_EBADREQ;
				goto fail;
			}
			in++;
			if (st->state == CH_DATA_LF)
				st->aux = 0; /* the next size line's count */
			st->state = st->state == CH_DATA_CR ? CH_DATA_LF :
				    st->state == CH_DATA_LF ? CH_SIZE0 :
				    st->state == CH_TRAILER_LF ? CH_TRAILER0 :
				    CH_DONE;
			break;
		}
		/* A trailer line is a field line, held to the rules of
		 * parse_fields: 1*tchar ":" OWS field-value OWS; no obs-fold,
		 * no whitespace before the colon, no controls. A response's
		 * obs-fold continues the line before (RFC 9112 5.2: a user
		 * agent MUST take it as SP; curl does, and the client drops
		 * trailers anyway). */
		case CH_TRAILER0:
		case CH_TRAILER_NAME:
			if (c == '\r' && st->state == CH_TRAILER0) {
				st->state = CH_END_LF;
			} else if (++st->aux > MAX_TRAILER) {
				err = FUT_HTTP_EHDRTOOBIG; /* 431, as a head */
				goto fail;
			} else if (fold_ok && st->state == CH_TRAILER0 &&
				   st->aux > 1 && (c == ' ' || c == '\t')) {
				st->state = CH_TRAILER;
			} else if (fut__http_tchar_tab[c]) {
				st->state = CH_TRAILER_NAME;
			} else if (c == ':' && st->state == CH_TRAILER_NAME) {
				st->state = CH_TRAILER;
			} else {
				err = FUT_HTTP_EBADREQ; /* fold, no name, no ':' */
				goto fail;
			}
			in++;
			break;
		case CH_TRAILER:
			if (c == '\r' && (st->aux += 2) > MAX_TRAILER) {
				/* The line's CRLF counts too: short lines
				 * got 128 KiB through a 64 KiB limit. */
				err = FUT_HTTP_EHDRTOOBIG;
				goto fail;
			} else if (c == '\r') {
				st->state = CH_TRAILER_LF;
			} else if (!is_vchar_or_obs(c) && c != ' ' &&
				   c != '\t') {
				err = FUT_HTTP_EBADREQ; /* controls */
				goto fail;
			} else if (++st->aux > MAX_TRAILER) {
				err = FUT_HTTP_EHDRTOOBIG;
				goto fail;
			}
			in++;
			break;
		default: /* not a state: a struct never zeroed, say */
			err = -EINVAL;
			goto fail;
		}
	}
	if (st->state == CH_DONE) {
		size_t left = n - in;
		if (left && out != in)
			memmove(buf + out, buf + in, left);
		*len = out;
		*rest = left;
		return 1;
	}
	*len = out;
	*rest = 0;
	return 0;
fail:
	st->state = err;
	*len = out;
	*rest = 0;
	return err;
}

int fut_http_status_of(int err)
{
	switch (err) {
	case FUT_HTTP_EBADREQ: return 400;
	case FUT_HTTP_EURITOOLONG: return 414;
	case FUT_HTTP_EHDRTOOBIG: return 431;
	case FUT_HTTP_EBODYTOOBIG: return 413;
	case FUT_HTTP_ENOTIMPL: return 501;
	case FUT_HTTP_EVERSION: return 505;
	default: return 0;
	}
}

const char *fut_http_reason(int status)
{
	/* RFC 9110 15, plus 103 (RFC 8297), 428 and 511 (RFC 6585), 451
	 * (RFC 7725) */
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 103: return "Early Hints";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 203: return "Non-Authoritative Information";
	case 204: return "No Content";
	case 205: return "Reset Content";
	case 206: return "Partial Content";
	case 300: return "Multiple Choices";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 305: return "Use Proxy";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 407: return "Proxy Authentication Required";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 421: return "Misdirected Request";
	case 422: return "Unprocessable Content";
	case 426: return "Upgrade Required";
	case 428: return "Precondition Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 451: return "Unavailable For Legal Reasons";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	case 511: return "Network Authentication Required";
	default: return "Unknown";
	}
}

int fut_http_query_param(const char *query, size_t query_len,
			 const char *name, const char **val, size_t *len)
{
	if (!query || !name || !val || !len)
		return 0;
	size_t nl = strlen(name), i = 0;
	while (i < query_len) {
		const char *amp = memchr(query + i, '&', query_len - i);
		size_t e = amp ? (size_t)(amp - query) : query_len;
		const char *eq = memchr(query + i, '=', e - i);
		size_t ke = eq ? (size_t)(eq - query) : e;
		if (ke - i == nl && memcmp(query + i, name, nl) == 0) {
			*val = eq ? eq + 1 : query + e;
			*len = eq ? e - ke - 1 : 0;
			return 1;
		}
		i = e + 1;
	}
	return 0;
}

const char *fut__http_find(const struct fut_http_header *h, size_t n,
			   const char *name, size_t *len)
{
	for (size_t i = 0; i < n; i++) {
		if (fut__http_ieq(h[i].name, h[i].name_len, name)) {
			if (len)
				*len = h[i].value_len;
			return h[i].value;
		}
	}
	return NULL;
}
