/* http: the health checks' response parser on good, garbage, truncated and
 * oversized responses, fed whole and byte by byte. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "unit.h"

static char body[HTTP_RESPONSE_MAX];
static struct http_response resp;
static const char *why;

static int parse(const char *text, bool eof, unsigned flags)
{
	return http_parse_response(text, strlen(text), eof, flags, body, sizeof(body), &resp, &why);
}

/* Every proper prefix must ask for more (or, with eof, be an error). */
static void check_prefixes(const char *text, unsigned flags)
{
	size_t n = strlen(text);
	for (size_t i = 0; i < n; i++) {
		int ret =
		    http_parse_response(text, i, false, flags, body, sizeof(body), &resp, &why);
		if (ret != 0)
			fprintf(stderr, "prefix %zu of %.20s...: %d\n", i, text, ret);
		CHECK_EQ(ret, 0);
		ret = http_parse_response(text, i, true, flags, body, sizeof(body), &resp, &why);
		CHECK(ret == -EBADMSG || ret == 1); /* 1: a close-framed body may end anywhere */
	}
}

static void test_good(void)
{
	const char *cl = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello";
	CHECK_EQ(parse(cl, false, 0), 1);
	CHECK_EQ(resp.status, 200);
	CHECK_STR(resp.status_line, "HTTP/1.1 200 OK");
	CHECK_EQ(resp.body_len, 5);
	CHECK(memcmp(body, "hello", 5) == 0);
	check_prefixes(cl, 0);

	const char *ch = "HTTP/1.1 405 Method Not Allowed\r\ntransfer-encoding: chunked\r\n\r\n"
			 "3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nTrailer: t\r\n\r\n";
	CHECK_EQ(parse(ch, false, 0), 1);
	CHECK_EQ(resp.status, 405);
	CHECK_EQ(resp.body_len, 7);
	CHECK(memcmp(body, "abcdefg", 7) == 0);
	check_prefixes(ch, 0);

	const char *close = "HTTP/1.0 200 OK\nX: y\n\nuntil close";
	CHECK_EQ(parse(close, false, 0), 0);
	CHECK_EQ(parse(close, true, 0), 1);
	CHECK_EQ(resp.body_len, 11);

	const char *interim = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
	CHECK_EQ(parse(interim, false, 0), 1);
	CHECK_EQ(resp.status, 204);

	/* HEAD: Content-Length announces a body that never comes. */
	CHECK_EQ(parse("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", false, HTTP_NO_BODY), 1);
	CHECK_EQ(parse("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", false, HTTP_HEADERS_ONLY),
		 1);
	CHECK_EQ(parse("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", false, 0), 0);
}

static void test_garbage(void)
{
	static const char *const bad[] = {
	    "SSH-2.0-OpenSSH_9.2\r\n",
	    "HTTP/2 200\r\n\r\n",
	    "HTTP/1.1 20 OK\r\n\r\n",
	    "HTTP/1.1 2000 OK\r\n\r\n",
	    "HTTP/1.1 700 Odd\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int ret = parse(bad[i], false, 0);
		if (ret != -EBADMSG)
			fprintf(stderr, "garbage %zu: %d\n", i, ret);
		CHECK_EQ(ret, -EBADMSG);
		CHECK(why && *why);
	}
	/* Random bytes: never a crash, never "complete" unless it parses. */
	char junk[4096];
	srand(42);
	for (int round = 0; round < 2000; round++) {
		size_t n = (size_t)(rand() % (int)sizeof(junk));
		for (size_t i = 0; i < n; i++)
			junk[i] = (char)(rand() % 4 ? "HTP/1. 02\r\n:;0aC"[rand() % 17] : rand());
		if (round % 2)
			memcpy(junk, "HTTP/1.1 200 OK\r\n", n < 17 ? n : 17);
		int ret = http_parse_response(junk, n, round % 3 == 0, 0, body, sizeof(body), &resp,
					      &why);
		CHECK(ret >= -EMSGSIZE && ret <= 1);
	}
}

static void test_truncated(void)
{
	CHECK_EQ(parse("", true, 0), -EBADMSG);
	CHECK_STR(why, "connection closed without a response");
	CHECK_EQ(parse("HTTP/1.1 200 OK\r\nContent-Le", true, 0), -EBADMSG);
	CHECK_STR(why, "connection closed before the end of the headers");
	CHECK_EQ(parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true, 0), -EBADMSG);
	CHECK_STR(why, "connection closed before the end of the body");
	CHECK_EQ(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", true, 0),
		 -EBADMSG);
}

static void test_oversized(void)
{
	static char big[HTTP_RESPONSE_MAX + 64];
	size_t n = (size_t)snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\n");
	while (n + 20 < sizeof(big))
		n += (size_t)snprintf(big + n, sizeof(big) - n, "X-Padding: aaaaaa\r\n");
	CHECK_EQ(
	    http_parse_response(big, HTTP_RESPONSE_MAX, false, 0, body, sizeof(body), &resp, &why),
	    -EMSGSIZE);
	CHECK_STR(why, "response larger than 16 KiB");
	/* A body that is announced larger than the buffer can hold. */
	n = (size_t)snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
	memset(big + n, 'b', HTTP_RESPONSE_MAX - n);
	CHECK_EQ(
	    http_parse_response(big, HTTP_RESPONSE_MAX, false, 0, body, sizeof(body), &resp, &why),
	    -EMSGSIZE);
	/* ... unless the body is not wanted. */
	CHECK_EQ(http_parse_response(big, HTTP_RESPONSE_MAX, false, HTTP_HEADERS_ONLY, body,
				     sizeof(body), &resp, &why),
		 1);
	/* A status line longer than the copy kept for the log is cut, not overrun. */
	memset(big, 'r', sizeof(big));
	memcpy(big, "HTTP/1.1 500 ", 13);
	memcpy(big + 1000, "\r\n\r\n", 4);
	CHECK_EQ(http_parse_response(big, 1004, false, HTTP_HEADERS_ONLY, body, sizeof(body), &resp,
				     &why),
		 1);
	CHECK_EQ(strlen(resp.status_line), HTTP_STATUS_LINE_MAX - 1);
}

int main(void)
{
	test_good();
	test_garbage();
	test_truncated();
	test_oversized();
	return unit_done("test_http");
}
