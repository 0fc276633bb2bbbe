/* admin_parse_request on arbitrary bytes, as the admin endpoint calls it on
 * what a client has sent so far. Properties: complete, refused or waiting,
 * nothing else; a refusal has a status and a one-line reason; a request
 * taken has a method, a path starting with '/' and a length within what was
 * given; -EAGAIN only below the size limit (a client cannot make it wait for
 * bytes that would not fit); and the parse depends only on the request's
 * own bytes: its prefixes wait, and what follows it does not matter. */
#include <errno.h>
#include <string.h>

#include "admin.h"
#include "fuzz.h"

static void check_result(int ret, size_t size, const struct admin_request *q)
{
	FUZZ_ASSERT(ret == 0 || ret == -EAGAIN);
	if (ret == -EAGAIN) {
		FUZZ_ASSERT(size < ADMIN_REQ_MAX && q->status == 0);
		return;
	}
	if (q->status) {
		size_t n = strlen(q->why);
		FUZZ_ASSERT(q->status >= 400 && q->status <= 599);
		FUZZ_ASSERT(n > 0 && q->why[n - 1] == '\n' &&
			    strchr(q->why, '\n') == q->why + n - 1);
		return;
	}
	FUZZ_ASSERT(q->method[0] && q->path[0] == '/');
	FUZZ_ASSERT(q->head_len > 0 && q->head_len <= q->length && q->length <= size);
	FUZZ_ASSERT(q->length <= ADMIN_REQ_MAX);
	FUZZ_ASSERT(strlen(q->token) <= CONFIG_TOKEN_MAX);
	FUZZ_ASSERT(!q->token[0] || q->auth);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct admin_request q, again;

	int ret = admin_parse_request(buf, size, &q);
	check_result(ret, size, &q);
	if (ret != 0 || q.status)
		return 0;
	/* The request alone parses the same; a prefix of it waits. */
	FUZZ_ASSERT(admin_parse_request(buf, q.length, &again) == 0);
	FUZZ_ASSERT(again.status == 0 && again.length == q.length);
	FUZZ_ASSERT(strcmp(again.method, q.method) == 0 && strcmp(again.path, q.path) == 0);
	FUZZ_ASSERT(strcmp(again.token, q.token) == 0 && again.auth == q.auth);
	FUZZ_ASSERT(admin_parse_request(buf, q.length - 1, &again) == -EAGAIN);
	FUZZ_ASSERT(admin_parse_request(buf, q.length / 2, &again) == -EAGAIN);
	return 0;
}
