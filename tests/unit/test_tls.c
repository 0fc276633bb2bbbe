/* tls: a real OpenSSL client talks to the TLS layer through memory, with no
 * socket: the handshake, data both ways, the bounds on what the layer takes
 * while its output is not sent, close_notify, and a garbage client. */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "tls.h"
#include "unit.h"

/* A self-signed P-256 certificate for pool01.lab.test, in two temporary
 * files. */
static void make_cert(char *cert, char *key)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	int fc = mkstemp(cert), fk = mkstemp(key);
	FILE *f;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"pool01.lab.test", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, pk);
	X509_sign(x, pk, EVP_sha256());
	f = fdopen(fc, "w");
	PEM_write_X509(f, x);
	fclose(f);
	f = fdopen(fk, "w");
	PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(pk);
}

struct client {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *rb, *wb;
	unsigned char pend[1 << 20]; /* sent by the client, not yet taken */
	size_t plen;
};

static void client_init(struct client *c)
{
	c->ctx = SSL_CTX_new(TLS_client_method());
	c->ssl = SSL_new(c->ctx);
	c->rb = BIO_new(BIO_s_mem());
	c->wb = BIO_new(BIO_s_mem());
	BIO_set_mem_eof_return(c->rb, -1);
	SSL_set_bio(c->ssl, c->rb, c->wb);
	SSL_set_tlsext_host_name(c->ssl, "pool01.lab.test");
	SSL_set_connect_state(c->ssl);
}

static void client_free(struct client *c)
{
	SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
}

/* Moves the client's bytes into the layer, as many as it takes (returns
 * how many wait), and the layer's output for the client back to it. */
static size_t exchange(struct client *c, struct tls_conn *t)
{
	const unsigned char *p;
	size_t n, off = 0;
	int k;

	while (c->plen < sizeof(c->pend) &&
	       (k = BIO_read(c->wb, c->pend + c->plen, (int)(sizeof(c->pend) - c->plen))) > 0)
		c->plen += (size_t)k;
	while (off < c->plen && (k = tls_input(t, 0, c->pend + off, c->plen - off)) > 0)
		off += (size_t)k;
	memmove(c->pend, c->pend + off, c->plen - off);
	c->plen -= off;
	while (tls_output(t, 1, &p, &n) == 0 && n > 0) {
		BIO_write(c->rb, p, (int)n);
		tls_sent(t, 1, n);
	}
	return c->plen;
}

static void test_session(struct tls_vip *tv)
{
	struct tls_conn *t = tls_conn_new(tv);
	static struct client c;
	unsigned char big[8192], got[8192];
	const unsigned char *p;
	size_t n, taken = 0;
	char desc[256];

	client_init(&c);
	for (int i = 0; i < 10 && !tls_client_ready(t); i++) {
		SSL_do_handshake(c.ssl);
		exchange(&c, t);
		CHECK_EQ(tls_output(t, 0, &p, &n), 0);
		CHECK_EQ(n, 0);
	}
	CHECK(tls_client_ready(t));
	CHECK_EQ(SSL_do_handshake(c.ssl), 1);

	/* The client sends far more than the layer may hold: it stops taking. */
	memset(big, 'x', sizeof(big));
	for (int i = 0; i < 64; i++)
		SSL_write(c.ssl, big, sizeof(big));
	CHECK(exchange(&c, t) > 0);
	/* Draining the plaintext gives the client's bytes. */
	CHECK_EQ(tls_output(t, 0, &p, &n), 0);
	CHECK(n > 0 && n <= TLS_OUT_BUF);
	CHECK(memcmp(p, big, n < sizeof(big) ? n : sizeof(big)) == 0);
	tls_sent(t, 0, n);

	/* The server's plaintext is taken up to the bound, then refused. */
	for (int i = 0; i < 64; i++) {
		int k = tls_input(t, 1, big, sizeof(big));
		CHECK(k >= 0);
		taken += (size_t)k;
	}
	CHECK(taken >= sizeof(big) && taken <= TLS_OUT_MAX + sizeof(big));
	exchange(&c, t);
	CHECK_EQ(SSL_read(c.ssl, got, sizeof(got)) > 0, 1);

	/* close_notify from the client ends direction 0. */
	SSL_shutdown(c.ssl);
	for (int i = 0; i < 200 && !tls_closed(t, 0); i++) {
		exchange(&c, t);
		if (tls_output(t, 0, &p, &n) < 0)
			break;
		tls_sent(t, 0, n);
	}
	CHECK(tls_closed(t, 0));
	CHECK(tls_finish(t, 1)); /* our close_notify goes to the client */
	tls_describe(t, desc, sizeof(desc));
	CHECK(strstr(desc, " tls=TLSv1.3 cipher=") != NULL);
	CHECK(strstr(desc, " sni=pool01.lab.test") != NULL);
	client_free(&c);
	tls_conn_free(t);
}

static void test_garbage(struct tls_vip *tv)
{
	struct tls_conn *t = tls_conn_new(tv);
	const char *get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	const unsigned char *p;
	size_t n;
	char desc[256];

	CHECK(tls_input(t, 0, (const unsigned char *)get, strlen(get)) > 0);
	CHECK_EQ(tls_output(t, 0, &p, &n), -EPROTO);
	CHECK(tls_handshake_failed(t));
	CHECK_EQ(atomic_load(&tv->failures), 1);
	tls_describe(t, desc, sizeof(desc));
	CHECK(strstr(desc, "tls_error=\"http request\"") != NULL);
	tls_conn_free(t);
}

int main(void)
{
	char cert[] = "/tmp/test_tls_cert.XXXXXX", key[] = "/tmp/test_tls_key.XXXXXX", why[512];
	struct config_file cf = {0}, kf = {0};
	/* The defaults of the key table (tls_min_version 1.2 and the rest). */
	struct config_vip v = {.name = "v",
			       .tls = CONFIG_TLS_TERMINATE,
			       .tls_min = 2,
			       .tls_max = 3,
			       .tls_ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES",
			       .tls_ciphersuites = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"};
	struct tls_vip tv;

	make_cert(cert, key);
	snprintf(cf.path, sizeof(cf.path), "%s", cert);
	snprintf(kf.path, sizeof(kf.path), "%s", key);
	v.certs = &cf, v.keys = &kf, v.ncerts = v.nkeys = 1;
	CHECK_EQ(tls_check_pair(cert, key, why, sizeof(why)), 0);
	CHECK(tls_check_pair(cert, "/nonexistent", why, sizeof(why)) < 0);
	CHECK(strstr(why, "No such file") != NULL);
	CHECK_EQ(tls_check_ciphers(v.tls_ciphers, false, why, sizeof(why)), 0);
	CHECK_EQ(tls_check_ciphers("ECDHE+AESGCM:!aNULL:@STRENGTH", false, why, sizeof(why)), 0);
	CHECK_EQ(tls_check_ciphers("ECDHE+AESGCM:NOPE", false, why, sizeof(why)), -EINVAL);
	CHECK(strstr(why, "'NOPE'") != NULL);
	CHECK_EQ(tls_check_ciphers("!ALL", false, why, sizeof(why)), -EINVAL);
	CHECK_EQ(tls_check_ciphersuites(v.tls_ciphersuites, why, sizeof(why)), 0);
	CHECK_EQ(tls_check_ciphersuites("TLS_AES_256_GCM_SHA384:AES128-SHA", why, sizeof(why)),
		 -EINVAL);
	CHECK(strstr(why, "'AES128-SHA'") != NULL);
	CHECK_EQ(tls_check_ciphersuites("", why, sizeof(why)), -EINVAL);
	CHECK_EQ(tls_vip_init(&tv, &v, "test.ini", 1, 1, why, sizeof(why)), 0);
	test_session(&tv);
	test_garbage(&tv);
	tls_vip_free(&tv);
	unlink(cert);
	unlink(key);
	return unit_done("test_tls");
}
