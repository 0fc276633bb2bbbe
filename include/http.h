/* http: a bounded, incremental parser of HTTP/1.x responses, as the health
 * checks receive them.
 *
 * Pure logic: the caller keeps the bytes received so far in one buffer of at
 * most HTTP_RESPONSE_MAX bytes and calls http_parse_response after each
 * receive; the parser reads that buffer from the start each time (bounded, so
 * cheap) and never allocates. A response that does not fit is an error, not
 * a reason to grow: a server cannot make a check use more memory. */
#ifndef SNATPROXY_HTTP_H
#define SNATPROXY_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_RESPONSE_MAX    16384
#define HTTP_STATUS_LINE_MAX 128

enum {
	HTTP_NO_BODY = 1 << 0,      /* the request was HEAD: no body follows the headers */
	HTTP_HEADERS_ONLY = 1 << 1, /* complete once the headers are: the body is not wanted */
};

struct http_response {
	int status;                             /* 100..599 */
	char status_line[HTTP_STATUS_LINE_MAX]; /* printable, for log lines */
	size_t body_len;                        /* bytes written to the caller's body buffer */
};

/* Parses the LEN bytes of BUF (the response so far; EOF: the peer has closed
 * after them). The body, de-chunked, goes to BODY (CAP bytes). Returns 1 when
 * the response is complete, 0 when more bytes are needed, -EBADMSG when it is
 * malformed or truncated, -EMSGSIZE when it exceeds HTTP_RESPONSE_MAX; on an
 * error, *WHY says what was wrong in words for a log line. */
int http_parse_response(const char *buf, size_t len, bool eof, unsigned flags, char *body,
			size_t cap, struct http_response *r, const char **why);

#endif
