/* http_parse_response on arbitrary bytes, as a health check calls it on a
 * server's response. The first byte chooses the flags, whether the server
 * has closed, and the body buffer's size (allocated to the byte, so that
 * AddressSanitizer sees any write past it). Properties: one of the
 * documented results; a complete response has a status of 100..599, a
 * printable status line and no more body than the buffer holds; an error
 * says why; a response larger than HTTP_RESPONSE_MAX is never incomplete. */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t caps[] = {0, 1, 16, HTTP_RESPONSE_MAX};
	struct http_response r;
	const char *why = NULL;

	if (size < 1)
		return 0;
	unsigned mode = data[0];
	unsigned flags = mode & (HTTP_NO_BODY | HTTP_HEADERS_ONLY);
	bool eof = mode & 4;
	size_t cap = caps[(mode >> 3) & 3];
	char *body = malloc(cap ? cap : 1);
	/* The health check's buffer holds at most HTTP_RESPONSE_MAX bytes. */
	size_t len = size - 1 < HTTP_RESPONSE_MAX ? size - 1 : HTTP_RESPONSE_MAX;
	char *buf = malloc(len ? len : 1);

	FUZZ_ASSERT(body && buf);
	memcpy(buf, data + 1, len);
	int ret = http_parse_response(buf, len, eof, flags, body, cap, &r, &why);
	FUZZ_ASSERT(ret == 1 || ret == 0 || ret == -EBADMSG || ret == -EMSGSIZE);
	FUZZ_ASSERT(why != NULL);
	if (ret < 0)
		FUZZ_ASSERT(why[0] != '\0');
	if (ret == 0)
		FUZZ_ASSERT(!eof && len < HTTP_RESPONSE_MAX);
	if (ret == 1) {
		FUZZ_ASSERT(r.status >= 100 && r.status <= 599);
		FUZZ_ASSERT(r.body_len <= cap);
		size_t n = strnlen(r.status_line, sizeof(r.status_line));
		FUZZ_ASSERT(n < sizeof(r.status_line));
		for (size_t i = 0; i < n; i++)
			FUZZ_ASSERT(isprint((unsigned char)r.status_line[i]));
	}
	free(buf);
	free(body);
	return 0;
}
