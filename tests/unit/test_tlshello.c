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

/* A ClientHello handshake message of exactly `total` bytes (header
 * included) asking for pool01.lab.test, filled up with a padding extension
 * (RFC 7685). Returns its length, or 0 when `total` is too small. */
static size_t sized_hello(size_t total, unsigned char *out)
{
	static const char name[] = "pool01.lab.test";
	size_t nlen = sizeof(name) - 1, o = 0;
	size_t fixed = 4 + 2 + 32 + 1 + 2 + 2 + 1 + 1 + 2 + (4 + 2 + 3 + nlen) + 4;

	if (total < fixed)
		return 0;
	size_t pad = total - fixed, body = total - 4, exts = total - fixed + 4 + 2 + 3 + nlen + 4;
	out[o++] = 1;
	out[o++] = (unsigned char)(body >> 16), out[o++] = (unsigned char)(body >> 8);
	out[o++] = (unsigned char)body;
	out[o++] = 3, out[o++] = 3;
	memset(out + o, 0x5a, 32), o += 32;
	out[o++] = 0;               /* session id */
	out[o++] = 0, out[o++] = 2; /* one cipher suite */
	out[o++] = 0x13, out[o++] = 1;
	out[o++] = 1, out[o++] = 0; /* null compression */
	out[o++] = (unsigned char)(exts >> 8), out[o++] = (unsigned char)exts;
	out[o++] = 0, out[o++] = 0; /* server_name */
	out[o++] = 0, out[o++] = (unsigned char)(2 + 3 + nlen);
	out[o++] = 0, out[o++] = (unsigned char)(3 + nlen);
	out[o++] = 0, out[o++] = 0, out[o++] = (unsigned char)nlen;
	memcpy(out + o, name, nlen), o += nlen;
	out[o++] = 0, out[o++] = 21; /* padding */
	out[o++] = (unsigned char)(pad >> 8), out[o++] = (unsigned char)pad;
	memset(out + o, 0, pad), o += pad;
	return o;
}

/* `msg` cut into records of `size` bytes (the last one shorter). */
static size_t in_records(const unsigned char *msg, size_t n, size_t size, unsigned char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i += size) {
		size_t k = n - i < size ? n - i : size;
		out[o++] = 22, out[o++] = 3, out[o++] = 1;
		out[o++] = (unsigned char)(k >> 8), out[o++] = (unsigned char)k;
		memcpy(out + o, msg + i, k), o += k;
	}
	return o;
}

/* Every prefix of a hello that fits waits for at most TLSHELLO_MAX bytes
 * and the whole of it parses. */
static void check_fits(const unsigned char *b, size_t m)
{
	char sni[TLSHELLO_SNI_MAX];
	size_t need;

	CHECK(m <= TLSHELLO_MAX);
	for (size_t i = 0; i < m; i += 97) {
		int ret = parse(b, i, sni, &need);
		if (ret != -EAGAIN || need <= i || need > m) {
			CHECK_EQ(ret, -EAGAIN);
			CHECK(need > i && need <= m);
			return;
		}
	}
	CHECK_EQ(parse(b, m, sni, &need), 0);
	CHECK_STR(sni, "pool01.lab.test");
}

/* Around the limit: a hello is refused as soon as its announced length shows
 * it cannot fit in TLSHELLO_MAX bytes of records, never waited for (a caller
 * would wait for bytes it does not keep, until its timeout). */
static void test_limit(void)
{
	static unsigned char msg[TLSHELLO_MAX], b[TLSHELLO_MAX + 16];
	char sni[TLSHELLO_SNI_MAX];
	size_t need, n, m;

	/* One record of exactly TLSHELLO_MAX bytes: fits. */
	n = sized_hello(TLSHELLO_MAX - 5, msg);
	CHECK_EQ(n, TLSHELLO_MAX - 5);
	m = in_records(msg, n, n, b);
	CHECK_EQ(m, TLSHELLO_MAX);
	check_fits(b, m);
	/* The same message in two records needs 5 bytes more: refused from
	 * the first record's header and the hello's length on. */
	m = in_records(msg, n, 16000, b);
	CHECK_EQ(m, TLSHELLO_MAX + 5);
	CHECK_EQ(parse(b, 9, sni, &need), -EMSGSIZE);
	CHECK_EQ(parse(b, TLSHELLO_MAX, sni, &need), -EMSGSIZE);
	/* Issue 10's case: records totalling TLSHELLO_MAX that do not hold the
	 * whole hello they announce (16,375 bytes of body) were waited for. */
	m = in_records(msg, TLSHELLO_MAX - 10, 16000, b);
	CHECK_EQ(m, TLSHELLO_MAX);
	CHECK_EQ(parse(b, m, sni, &need), -EMSGSIZE);
	/* Two records totalling TLSHELLO_MAX: fits. */
	n = sized_hello(TLSHELLO_MAX - 10, msg);
	m = in_records(msg, n, 16000, b);
	CHECK_EQ(m, TLSHELLO_MAX);
	check_fits(b, m);
	/* One byte more, cut in two records: refused at once. */
	n = sized_hello(TLSHELLO_MAX - 9, msg);
	m = in_records(msg, n, 16000, b);
	CHECK_EQ(m, TLSHELLO_MAX + 1);
	CHECK_EQ(parse(b, 9, sni, &need), -EMSGSIZE);
	/* In three records, the second record's header shows it. */
	n = sized_hello(TLSHELLO_MAX - 15, msg);
	m = in_records(msg, n, 8000, b);
	CHECK_EQ(m, TLSHELLO_MAX);
	check_fits(b, m);
	n = sized_hello(TLSHELLO_MAX - 14, msg);
	m = in_records(msg, n, 8000, b);
	CHECK_EQ(parse(b, 8005 + 4, sni, &need), -EAGAIN);
	CHECK(need <= TLSHELLO_MAX);
	CHECK_EQ(parse(b, 8005 + 5, sni, &need), -EMSGSIZE);
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
	test_limit();
	test_names();
	return unit_done("test_tlshello");
}
