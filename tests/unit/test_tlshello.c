/* tlshello: real ClientHellos made by OpenSSL, re-cut into records and
 * segments, then truncated, oversized and corrupted copies of them. */
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>

#include "tlshello.h"
#include "unit.h"

/* The first flight of an OpenSSL client asking for `name` (NULL: no SNI). */
static size_t real_hello(const char *name, unsigned char *out, size_t cap)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = SSL_new(ctx);
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	int n;

	SSL_set_bio(ssl, rb, wb);
	if (name)
		SSL_set_tlsext_host_name(ssl, name);
	SSL_connect(ssl); /* writes the hello, then wants to read */
	n = BIO_read(wb, out, (int)cap);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return n > 0 ? (size_t)n : 0;
}

static int parse(const unsigned char *p, size_t len, char *sni, size_t *need)
{
	*need = 0;
	return tlshello_parse(p, len, sni, need);
}

/* Feeding the hello byte by byte: -EAGAIN until the last byte, and `need`
 * never asks for more than the whole hello. */
static void test_every_prefix(const unsigned char *h, size_t n)
{
	char sni[TLSHELLO_SNI_MAX];
	size_t need;

	for (size_t i = 0; i < n; i++) {
		int ret = parse(h, i, sni, &need);
		if (ret != -EAGAIN || need <= i || need > n) {
			CHECK_EQ(ret, -EAGAIN);
			CHECK(need > i && need <= n);
			return;
		}
	}
	CHECK_EQ(parse(h, n, sni, &need), 0);
	CHECK_STR(sni, "pool01.lab.test");
}

/* The same handshake message cut into records of `size` bytes. */
static size_t refragment(const unsigned char *h, size_t n, size_t size, unsigned char *out)
{
	size_t payload = n - 5, o = 0;

	for (size_t i = 0; i < payload; i += size) {
		size_t k = payload - i < size ? payload - i : size;
		out[o++] = 22, out[o++] = 3, out[o++] = 1;
		out[o++] = (unsigned char)(k >> 8), out[o++] = (unsigned char)k;
		memcpy(out + o, h + 5 + i, k);
		o += k;
	}
	return o;
}

static void test_fragmented(const unsigned char *h, size_t n)
{
	static unsigned char buf[TLSHELLO_MAX * 2];
	char sni[TLSHELLO_SNI_MAX];
	size_t need;

	for (size_t size = 1; size < 400; size += 37) {
		size_t m = refragment(h, n, size, buf);
		int ret = parse(buf, m, sni, &need);
		if (m > TLSHELLO_MAX) {
			CHECK_EQ(ret, -EMSGSIZE);
			continue;
		}
		CHECK_EQ(ret, 0);
		CHECK_STR(sni, "pool01.lab.test");
		CHECK_EQ(parse(buf, m - 1, sni, &need), -EAGAIN);
	}
}

static void test_bad_input(const unsigned char *h, size_t n)
{
	unsigned char b[4096];
	char sni[TLSHELLO_SNI_MAX];
	size_t need;
	const char *get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

	CHECK_EQ(parse((const unsigned char *)get, strlen(get), sni, &need), -EBADMSG);
	CHECK_EQ(parse((const unsigned char *)"\x16", 1, sni, &need), -EAGAIN);
	CHECK_EQ(parse((const unsigned char *)"\x17\x03\x03\x00\x01", 5, sni, &need), -EBADMSG);
	CHECK_EQ(parse((const unsigned char *)"\x16\x03\x01\x00\x00", 5, sni, &need), -EBADMSG);
	/* A ServerHello where a ClientHello should be. */
	memcpy(b, h, n);
	b[5] = 2;
	CHECK_EQ(parse(b, n, sni, &need), -EBADMSG);
	/* A handshake length beyond the limit, and a record too long. */
	memcpy(b, h, n);
	b[6] = 1, b[7] = 0, b[8] = 0;
	CHECK_EQ(parse(b, 9, sni, &need), -EMSGSIZE);
	memcpy(b, h, n);
	b[3] = 0x40, b[4] = 1;
	CHECK_EQ(parse(b, n, sni, &need), -EBADMSG);
	/* Every one-byte corruption is refused or parsed, never read past. */
	for (size_t i = 0; i < n; i++) {
		memcpy(b, h, n);
		b[i] ^= 0xff;
		int ret = parse(b, n, sni, &need);
		CHECK(ret == 0 || ret == -EAGAIN || ret == -EBADMSG || ret == -EMSGSIZE);
		if (ret == -EAGAIN)
			CHECK(need <= TLSHELLO_MAX);
	}
}

/* A hello padded (inside its extensions) past TLSHELLO_MAX. */
static void test_oversized(void)
{
	static unsigned char b[TLSHELLO_MAX + 64];
	char sni[TLSHELLO_SNI_MAX];
	size_t need;
	size_t body = TLSHELLO_MAX;

	memset(b, 0, sizeof(b));
	b[0] = 22, b[1] = 3, b[2] = 1, b[3] = 0x40, b[4] = 0;
	b[5] = 1, b[6] = (unsigned char)(body >> 16), b[7] = (unsigned char)(body >> 8);
	b[8] = (unsigned char)body;
	CHECK_EQ(parse(b, 9, sni, &need), -EMSGSIZE);
	CHECK_EQ(parse(b, sizeof(b), sni, &need), -EMSGSIZE);
}

static void test_names(void)
{
	unsigned char h[4096];
	char sni[TLSHELLO_SNI_MAX];
	size_t need, n;

	n = real_hello(NULL, h, sizeof(h));
	CHECK(n > 0);
	CHECK_EQ(parse(h, n, sni, &need), 0);
	CHECK_STR(sni, "");
	n = real_hello("Mixed.Case.TEST", h, sizeof(h));
	CHECK_EQ(parse(h, n, sni, &need), 0);
	CHECK_STR(sni, "mixed.case.test");
	n = real_hello("bad..name", h, sizeof(h));
	CHECK_EQ(parse(h, n, sni, &need), -EBADMSG);
	n = real_hello("spa ce", h, sizeof(h));
	CHECK_EQ(parse(h, n, sni, &need), -EBADMSG);
	CHECK(tlshello_match("pool01.lab.test", "pool01.lab.test"));
	CHECK(tlshello_match("*.lab.test", "pool01.lab.test"));
	CHECK(!tlshello_match("*.lab.test", "a.pool01.lab.test"));
	CHECK(!tlshello_match("*.lab.test", "lab.test"));
	CHECK(!tlshello_match("pool01.lab.test", "pool02.lab.test"));
}

int main(void)
{
	unsigned char h[4096];
	size_t n = real_hello("pool01.lab.test", h, sizeof(h));

	CHECK(n > 100);
	test_every_prefix(h, n);
	test_fragmented(h, n);
	test_bad_input(h, n);
	test_oversized();
	test_names();
	return unit_done("test_tlshello");
}
