/* http: see include/http.h. Lenient where servers differ harmlessly (bare \n
 * line ends, header case), strict where a wrong guess would misread the body
 * (conflicting Content-Length, bad chunk sizes). */
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

enum { FRAME_CLOSE, FRAME_LENGTH, FRAME_CHUNKED, FRAME_NONE };

struct http_head {
	int status;
	int framing;
	size_t length; /* FRAME_LENGTH */
	size_t end;    /* offset of the first body byte */
};

/* The end of the line starting at P, or NULL if it is not all there yet.
 * *NEXT is set past its \n. */
static const char *http_line(const char *p, const char *end, const char **next)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));

	if (!nl)
		return NULL;
	*next = nl + 1;
	return nl > p && nl[-1] == '\r' ? nl - 1 : nl;
}

static void http_copy_line(char *out, const char *p, const char *e)
{
	size_t n = (size_t)(e - p);

	if (n >= HTTP_STATUS_LINE_MAX)
		n = HTTP_STATUS_LINE_MAX - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = isprint((unsigned char)p[i]) ? p[i] : '?';
	out[n] = '\0';
}

/* "HTTP/1.x NNN[ reason]" */
static int http_status_line(const char *p, const char *e, int *status)
{
	if (e - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)p[7]) ||
	    p[8] != ' ')
		return -EBADMSG;
	for (int i = 9; i < 12; i++)
		if (!isdigit((unsigned char)p[i]))
			return -EBADMSG;
	if (e - p > 12 && p[12] != ' ')
		return -EBADMSG;
	*status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	return *status >= 100 && *status <= 599 ? 0 : -EBADMSG;
}

static bool http_header_is(const char *p, const char *colon, const char *name)
{
	size_t n = strlen(name);
	return (size_t)(colon - p) == n && strncasecmp(p, name, n) == 0;
}

/* One header line; only the two that frame the body matter. */
static int http_header(struct http_head *h, const char *p, const char *e, const char **why)
{
	const char *colon = memchr(p, ':', (size_t)(e - p));
	const char *v;

	if (!colon || colon == p) {
		*why = "malformed header line (no name: value)";
		return -EBADMSG;
	}
	for (v = colon + 1; v < e && (*v == ' ' || *v == '\t'); v++)
		;
	if (http_header_is(p, colon, "Content-Length")) {
		size_t n = 0;
		if (v == e) {
			*why = "empty Content-Length";
			return -EBADMSG;
		}
		for (; v < e && isdigit((unsigned char)*v); v++) {
			if (n > HTTP_RESPONSE_MAX)
				break; /* too large anyway: no overflow */
			n = n * 10 + (size_t)(*v - '0');
		}
		for (; v < e && (*v == ' ' || *v == '\t'); v++)
			;
		if (v != e || (h->framing == FRAME_LENGTH && h->length != n)) {
			*why = "bad or conflicting Content-Length";
			return -EBADMSG;
		}
		if (h->framing != FRAME_CHUNKED)
			h->framing = FRAME_LENGTH;
		h->length = n;
	} else if (http_header_is(p, colon, "Transfer-Encoding")) {
		for (; v + 7 <= e; v++)
			if (strncasecmp(v, "chunked", 7) == 0)
				h->framing = FRAME_CHUNKED;
	}
	return 0;
}

/* The status line and headers of one response (skipping 1xx ones).
 * Returns 1 with *h filled, 0 when incomplete, or an error. */
static int http_parse_head(const char *buf, const char *end, struct http_response *r,
			   struct http_head *h, const char **why)
{
	const char *p = buf, *e, *next;

	for (;;) {
		memset(h, 0, sizeof(*h));
		if (!(e = http_line(p, end, &next)))
			return 0;
		http_copy_line(r->status_line, p, e);
		if (http_status_line(p, e, &h->status) < 0) {
			*why = "not an HTTP/1.x status line";
			return -EBADMSG;
		}
		r->status = h->status;
		for (p = next;; p = next) {
			if (!(e = http_line(p, end, &next)))
				return 0;
			if (e == p)
				break;
			if (http_header(h, p, e, why) < 0)
				return -EBADMSG;
		}
		p = next;
		if (h->status >= 200)
			break;
	}
	h->end = (size_t)(p - buf);
	return 1;
}

static int http_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A chunked body from P: copies the data to BODY as far as it goes. */
static int http_chunked(const char *p, const char *end, char *body, size_t cap,
			struct http_response *r, const char **why)
{
	const char *e, *next;

	for (;;) {
		size_t n = 0;
		int d, digits = 0;
		if (!(e = http_line(p, end, &next)))
			return 0;
		for (; p < e && (d = http_hex(*p)) >= 0; p++, digits++) {
			if (n > HTTP_RESPONSE_MAX)
				break;
			n = n * 16 + (size_t)d;
		}
		if (!digits || (p < e && *p != ';' && *p != ' ' && *p != '\t') ||
		    n > HTTP_RESPONSE_MAX) {
			*why = "bad chunk size in a chunked body";
			return -EBADMSG;
		}
		p = next;
		if (n == 0) { /* trailers, then an empty line */
			for (;; p = next) {
				if (!(e = http_line(p, end, &next)))
					return 0;
				if (e == p)
					return 1;
			}
		}
		if ((size_t)(end - p) < n)
			return 0;
		size_t take = n < cap - r->body_len ? n : cap - r->body_len;
		memcpy(body + r->body_len, p, take);
		r->body_len += take;
		p += n;
		if (!(e = http_line(p, end, &next)))
			return 0;
		if (e != p) {
			*why = "chunk data longer than its size";
			return -EBADMSG;
		}
		p = next;
	}
}

static int http_body(const char *buf, size_t len, bool eof, const struct http_head *h, char *body,
		     size_t cap, struct http_response *r, const char **why)
{
	const char *p = buf + h->end, *end = buf + len;
	size_t have = len - h->end;

	switch (h->framing) {
	case FRAME_CHUNKED:
		return http_chunked(p, end, body, cap, r, why);
	case FRAME_LENGTH:
		if (have < h->length)
			return 0;
		have = h->length;
		break;
	default: /* the body runs until the server closes */
		if (!eof)
			return 0;
	}
	r->body_len = have < cap ? have : cap;
	memcpy(body, p, r->body_len);
	return 1;
}

int http_parse_response(const char *buf, size_t len, bool eof, unsigned flags, char *body,
			size_t cap, struct http_response *r, const char **why)
{
	struct http_head h;
	int ret;

	memset(r, 0, sizeof(*r));
	*why = "";
	ret = http_parse_head(buf, buf + len, r, &h, why);
	if (ret == 1) {
		if ((flags & (HTTP_NO_BODY | HTTP_HEADERS_ONLY)) || h.status == 204 ||
		    h.status == 304)
			return 1;
		ret = http_body(buf, len, eof, &h, body, cap, r, why);
		if (ret == 0 && eof) {
			*why = "connection closed before the end of the body";
			return -EBADMSG;
		}
	} else if (ret == 0 && eof) {
		*why = len ? "connection closed before the end of the headers"
			   : "connection closed without a response";
		return -EBADMSG;
	}
	if (ret == 0 && len >= HTTP_RESPONSE_MAX) {
		*why = "response larger than 16 KiB";
		return -EMSGSIZE;
	}
	return ret;
}
