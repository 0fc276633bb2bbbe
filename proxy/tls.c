/* tls: OpenSSL endpoints between memory BIOs (see include/tls.h). */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "addr.h"
#include "certdiag.h"

/* Toward the servers: forward secrecy only for TLS 1.2 (TLS 1.3's suites
 * are all fine). Toward the clients, tls_ciphers says. */
#define TLS_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES"

struct tls_side {
	SSL *ssl; /* NULL: this side speaks plaintext */
	BIO *rbio, *wbio;
	bool done;     /* its handshake completed */
	bool closed;   /* it sent close_notify */
	bool notified; /* we queued our close_notify to it */
};

/* What direction d has ready for its destination socket. */
struct tls_out {
	unsigned char *buf;
	uint32_t len, off;
};

struct tls_conn {
	struct tls_vip *vip;
	struct tls_side side[2];            /* [0] toward the client, [1] toward the server */
	struct tls_out out[2];              /* per direction */
	SSL_SESSION **slot;                 /* server_tls: where this server's session is kept */
	const struct config_server *server; /* server_tls: the one connected to */
	bool failed, in_handshake;
	char reason[192];
};

/* ---- errors ---- */

const char *const tls_result_name[TLS_RESULT_N] = {
    [TLS_RESULT_OK] = "ok",
    [TLS_RESULT_FAILED] = "failed",
    [TLS_RESULT_NO_SHARED_CIPHER] = "no_shared_cipher",
    [TLS_RESULT_PROTOCOL_VERSION] = "protocol_version",
    [TLS_RESULT_UNKNOWN_CA] = "unknown_ca",
    [TLS_RESULT_BAD_CERTIFICATE] = "bad_certificate",
    [TLS_RESULT_NOT_TLS] = "not_tls",
    [TLS_RESULT_TIMEOUT] = "timeout",
    [TLS_RESULT_EOF] = "eof",
};

/* The failure of a client's handshake, from OpenSSL's reason code (the
 * alerts the client sent arrive as SSL_R_*_ALERT_* reasons). */
static enum tls_result tls_classify(unsigned long e)
{
	switch (ERR_GET_LIB(e) == ERR_LIB_SSL ? ERR_GET_REASON(e) : 0) {
	case SSL_R_NO_SHARED_CIPHER:
	case SSL_R_NO_SHARED_GROUPS:
	case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
	case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
		return TLS_RESULT_NO_SHARED_CIPHER;
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_VERSION_TOO_LOW:
	case SSL_R_VERSION_TOO_HIGH:
	case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
	case SSL_R_UNKNOWN_PROTOCOL:
		return TLS_RESULT_PROTOCOL_VERSION;
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
		return TLS_RESULT_UNKNOWN_CA;
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
	case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
	case SSL_R_TLSV1_ALERT_DECRYPT_ERROR:
	case SSL_R_CERTIFICATE_VERIFY_FAILED:
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
		return TLS_RESULT_BAD_CERTIFICATE;
	case SSL_R_HTTP_REQUEST:
	case SSL_R_HTTPS_PROXY_REQUEST:
	case SSL_R_WRONG_VERSION_NUMBER:
	case SSL_R_PACKET_LENGTH_TOO_LONG:
		return TLS_RESULT_NOT_TLS;
	case SSL_R_UNEXPECTED_EOF_WHILE_READING:
		return TLS_RESULT_EOF;
	default:
		return TLS_RESULT_FAILED;
	}
}

/* OpenSSL's error queue is per thread: read it, word it, empty it. */
static void tls_reason(char *buf, size_t len, const char *fallback)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	snprintf(buf, len, "%s", r ? r : fallback);
	ERR_clear_error();
}

static int file_error(const char *what, const char *path, char *why, size_t len)
{
	char r[128];

	tls_reason(r, sizeof(r), "unreadable or not PEM");
	snprintf(why, len, "%s %s: %s", what, path, r);
	return -EINVAL;
}

/* The system's word for a file that cannot be opened, OpenSSL's being
 * "system lib". */
static int tls_readable(const char *what, const char *path, char *why, size_t len)
{
	FILE *f = fopen(path, "r");

	if (!f) {
		int err = errno;
		snprintf(why, len, "%s %s: %s", what, path, strerror(err));
		return -err;
	}
	fclose(f);
	return 0;
}

int tls_check_pair(const char *cert, const char *key, char *why, size_t len)
{
	SSL_CTX *ctx;
	int ret = 0;

	if ((ret = tls_readable("certificate", cert, why, len)) < 0 ||
	    (ret = tls_readable("key", key, why, len)) < 0)
		return ret;
	if (!(ctx = SSL_CTX_new(TLS_server_method())))
		return -ENOMEM;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		ret = file_error("certificate", cert, why, len);
	else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		ret = file_error("key", key, why, len);
	else if (SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		snprintf(why, len, "key %s does not match certificate %s", key, cert);
		ret = -EINVAL;
	}
	SSL_CTX_free(ctx);
	return ret;
}

int tls_check_ca(const char *ca, char *why, size_t len)
{
	STACK_OF(X509_NAME) * names;
	int ret = tls_readable("CA file", ca, why, len);

	if (ret < 0)
		return ret;
	if (!(names = SSL_load_client_CA_file(ca)))
		return file_error("CA file", ca, why, len);
	sk_X509_NAME_pop_free(names, X509_NAME_free);
	return 0;
}

/* Each item of an OpenSSL cipher list on its own, so that a misspelt one is
 * named rather than silently dropped, as OpenSSL does when others match. */
int tls_check_ciphers(const char *list, bool legacy, char *why, size_t len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char buf[512], *save = NULL;
	int ret = 0;

	if (!ctx)
		return -ENOMEM;
	if (legacy)
		SSL_CTX_set_security_level(ctx, 0);
	snprintf(buf, sizeof(buf), "%s", list);
	for (char *t = strtok_r(buf, ":, ", &save); t && !ret; t = strtok_r(NULL, ":, ", &save))
		if (!strchr("!-+@", t[0]) && SSL_CTX_set_cipher_list(ctx, t) != 1) {
			snprintf(
			    why, len,
			    "'%s' names no cipher suite of TLS 1.2 or below that OpenSSL knows "
			    "(see openssl ciphers -v)",
			    t);
			ret = -EINVAL;
		}
	if (!ret && SSL_CTX_set_cipher_list(ctx, list) != 1) {
		snprintf(why, len, "'%s' leaves no cipher suite", list);
		ret = -EINVAL;
	}
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return ret;
}

int tls_check_ciphersuites(const char *list, char *why, size_t len)
{
	/* OpenSSL skips names it does not know: all of TLS 1.3's. */
	static const char *const known[] = {
	    "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256",
	    "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"};
	char buf[512], *save = NULL;
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", list);
	for (char *t = strtok_r(buf, ":", &save); t; t = strtok_r(NULL, ":", &save), n++) {
		size_t i = 0;
		while (i < sizeof(known) / sizeof(known[0]) && strcmp(t, known[i]) != 0)
			i++;
		if (i == sizeof(known) / sizeof(known[0])) {
			snprintf(why, len,
				 "'%s' is not a TLS 1.3 cipher suite: expected names such as "
				 "TLS_AES_256_GCM_SHA384, separated by colons",
				 t);
			return -EINVAL;
		}
	}
	if (n == 0) {
		snprintf(why, len, "no cipher suite given");
		return -EINVAL;
	}
	return 0;
}

/* ---- contexts ---- */

/* The server's order of preference, of the names both sides know; none in
 * common: the handshake goes on without ALPN, as nginx's does. */
static int tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
			   const unsigned char *in, unsigned inlen, void *arg)
{
	const struct config_vip *v = arg;
	unsigned char *sel;
	(void)ssl;

	if (SSL_select_next_proto(&sel, outlen, v->tls_alpn, (unsigned)v->tls_alpn_len, in,
				  inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* tls_min_version and the rest. TLS 1.0 and 1.1 sign their handshake with
 * SHA-1 and MD5, which OpenSSL 3 refuses above security level 0 (and
 * Debian's default is 2): allowing them needs level 0, for this VIP only. */
static void tls_front_door(SSL_CTX *ctx, const struct config_vip *v)
{
	SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION + v->tls_min);
	SSL_CTX_set_max_proto_version(ctx, TLS1_VERSION + v->tls_max);
	if (v->tls_min < 2)
		SSL_CTX_set_security_level(ctx, 0);
	/* Checked when the configuration was read. */
	SSL_CTX_set_cipher_list(ctx, v->tls_ciphers);
	SSL_CTX_set_ciphersuites(ctx, v->tls_ciphersuites);
	if (v->tls_alpn_len)
		SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_select, (void *)v);
	ERR_clear_error();
}

/* Picks the certificate whose names match the client's SNI. */
static int tls_servername(SSL *ssl, int *alert, void *arg)
{
	struct tls_vip *tv = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	(void)alert;

	if (!name)
		return SSL_TLSEXT_ERR_OK;
	for (int i = 0; i < tv->nctx; i++) {
		X509 *x = SSL_CTX_get0_certificate(tv->ctx[i]);
		if (x && X509_check_host(x, name, 0, 0, NULL) == 1) {
			if (i > 0)
				SSL_set_SSL_CTX(ssl, tv->ctx[i]);
			break;
		}
	}
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *tls_server_ctx(struct tls_vip *tv, int i, const char *path, char *why, size_t len)
{
	const struct config_vip *v = tv->cfg;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char r[160];

	if (!ctx)
		return NULL;
	tls_front_door(ctx, v);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)v->name,
				       (unsigned)strlen(v->name));
	if (tls_check_pair(v->certs[i].path, v->keys[i].path, r, sizeof(r)) < 0 ||
	    SSL_CTX_use_certificate_chain_file(ctx, v->certs[i].path) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, v->keys[i].path, SSL_FILETYPE_PEM) != 1) {
		snprintf(why, len, "%s:%d: vip %s: %s", path, v->certs[i].line, v->name, r);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (v->client_ca.path[0]) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(v->client_ca.path);
		if (!names || SSL_CTX_load_verify_locations(ctx, v->client_ca.path, NULL) != 1) {
			tls_reason(r, sizeof(r), "unreadable");
			snprintf(why, len, "%s:%d: vip %s: CA file %s: %s", path, v->client_ca.line,
				 v->name, v->client_ca.path, r);
			sk_X509_NAME_pop_free(names, X509_NAME_free);
			SSL_CTX_free(ctx);
			return NULL;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	if (i == 0) {
		SSL_CTX_set_tlsext_servername_callback(ctx, tls_servername);
		SSL_CTX_set_tlsext_servername_arg(ctx, tv);
	}
	return ctx;
}

/* A session (a TLS 1.3 ticket comes after the handshake) to offer the same
 * server next time; the connection's slot belongs to its worker. */
static int tls_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_conn *t = SSL_get_app_data(ssl);

	if (!t || !t->slot)
		return 0;
	SSL_SESSION_free(*t->slot);
	*t->slot = sess;
	return 1; /* we keep the reference */
}

/* The proxy as a TLS client of its servers. */
static int tls_client_ctx(struct tls_vip *tv, const char *path, char *why, size_t len)
{
	const struct config_vip *v = tv->cfg;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char r[160];

	if (!(tv->client_ctx = ctx))
		return -ENOMEM;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(ctx,
				       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, tls_new_session);
	if (v->server_ca.path[0] ? SSL_CTX_load_verify_locations(ctx, v->server_ca.path, NULL) != 1
				 : SSL_CTX_set_default_verify_paths(ctx) != 1) {
		tls_reason(r, sizeof(r), "unreadable");
		snprintf(why, len, "%s:%d: vip %s: server_ca %s: %s", path, v->server_ca.line,
			 v->name, v->server_ca.path, r);
		return -EINVAL;
	}
	if (v->server_cert.path[0] &&
	    (SSL_CTX_use_certificate_chain_file(ctx, v->server_cert.path) != 1 ||
	     SSL_CTX_use_PrivateKey_file(ctx, v->server_key.path, SSL_FILETYPE_PEM) != 1 ||
	     SSL_CTX_check_private_key(ctx) != 1)) {
		tls_reason(r, sizeof(r), "unreadable");
		snprintf(why, len, "%s:%d: vip %s: server_cert %s or server_key %s: %s", path,
			 v->server_cert.line, v->name, v->server_cert.path, v->server_key.path, r);
		return -EINVAL;
	}
	return 0;
}

int tls_vip_init(struct tls_vip *tv, const struct config_vip *cfg, const char *path, int nworkers,
		 int nservers, char *why, size_t len)
{
	int ret;

	memset(tv, 0, sizeof(*tv));
	tv->cfg = cfg;
	if (cfg->tls != CONFIG_TLS_TERMINATE)
		return 0;
	if (cfg->server_tls) {
		tv->nworkers = nworkers;
		tv->nservers = nservers;
		tv->sessions = calloc((size_t)nworkers * (size_t)nservers, sizeof(*tv->sessions));
		if (!tv->sessions)
			return -ENOMEM;
		if ((ret = tls_client_ctx(tv, path, why, len)) < 0) {
			tls_vip_free(tv);
			return ret;
		}
	}
	tv->ctx = calloc((size_t)cfg->ncerts, sizeof(*tv->ctx));
	if (!tv->ctx)
		return -ENOMEM;
	for (; tv->nctx < cfg->ncerts; tv->nctx++) {
		tv->ctx[tv->nctx] = tls_server_ctx(tv, tv->nctx, path, why, len);
		if (!tv->ctx[tv->nctx]) {
			tls_vip_free(tv);
			return -EINVAL;
		}
	}
	return 0;
}

void tls_vip_free(struct tls_vip *tv)
{
	for (int i = 0; tv->ctx && i < tv->nctx; i++)
		SSL_CTX_free(tv->ctx[i]);
	free(tv->ctx);
	tv->ctx = NULL;
	tv->nctx = 0;
	for (int i = 0; tv->sessions && i < tv->nworkers * tv->nservers; i++)
		SSL_SESSION_free(tv->sessions[i]);
	free(tv->sessions);
	tv->sessions = NULL;
	SSL_CTX_free(tv->client_ctx);
	tv->client_ctx = NULL;
}

/* ---- connections ---- */

static int tls_side_init(struct tls_side *s, SSL_CTX *ctx, bool server)
{
	s->ssl = SSL_new(ctx);
	s->rbio = BIO_new(BIO_s_mem());
	s->wbio = BIO_new(BIO_s_mem());
	if (!s->ssl || !s->rbio || !s->wbio) {
		SSL_free(s->ssl);
		BIO_free(s->rbio);
		BIO_free(s->wbio);
		s->ssl = NULL;
		return -ENOMEM;
	}
	/* An empty read BIO means "more to come", not end of file. */
	BIO_set_mem_eof_return(s->rbio, -1);
	SSL_set_bio(s->ssl, s->rbio, s->wbio);
	if (server)
		SSL_set_accept_state(s->ssl);
	else
		SSL_set_connect_state(s->ssl);
	return 0;
}

struct tls_conn *tls_conn_new(struct tls_vip *tv)
{
	struct tls_conn *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->vip = tv;
	if (tls_side_init(&t->side[0], tv->ctx[0], true) < 0) {
		free(t);
		return NULL;
	}
	return t;
}

/* An address as X509_VERIFY_PARAM_set1_ip_asc takes it: no port, no []. */
static void tls_server_ip(const struct config_server *cs, char *buf, size_t len)
{
	const struct sockaddr *sa = (const struct sockaddr *)&cs->addr;
	const void *a = sa->sa_family == AF_INET6
			    ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
			    : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;

	if (!inet_ntop(sa->sa_family, a, buf, (socklen_t)len))
		buf[0] = '\0';
}

static bool tls_is_ip(const char *s)
{
	unsigned char b[16];
	return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

/* The name the server's certificate must carry, as nginx's
 * proxy_ssl_verify: server_name, else (with a server_ca, whose certificates
 * the operator made for these servers) the server's address. */
static const char *tls_expected(const struct tls_conn *t, char *buf, size_t len)
{
	const struct config_server *cs = t->server;

	if (cs->server_name[0])
		return cs->server_name;
	if (!t->vip->cfg->server_ca.path[0])
		return NULL;
	tls_server_ip(cs, buf, len);
	return buf[0] ? buf : NULL;
}

int tls_conn_server(struct tls_conn *t, int worker, int server, const struct config_server *cs)
{
	struct tls_vip *tv = t->vip;
	struct tls_side *s = &t->side[1];
	const char *sni = SSL_get_servername(t->side[0].ssl, TLSEXT_NAMETYPE_host_name);
	char ip[INET6_ADDRSTRLEN];
	const char *name;

	if (tls_side_init(s, tv->client_ctx, false) < 0)
		return -ENOMEM;
	SSL_set_app_data(s->ssl, t);
	t->server = cs;
	t->slot = &tv->sessions[worker * tv->nservers + server];
	if (*t->slot)
		SSL_set_session(s->ssl, *t->slot);
	name = tls_expected(t, ip, sizeof(ip));
	if (cs->server_name[0] && !tls_is_ip(cs->server_name))
		sni = cs->server_name;
	if (sni) /* server_name, or the client's, for servers with several names */
		SSL_set_tlsext_host_name(s->ssl, sni);
	if (name && (tls_is_ip(name) ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), name)
				     : SSL_set1_host(s->ssl, name)) != 1)
		return -ENOMEM;
	return 0;
}

void tls_conn_free(struct tls_conn *t)
{
	if (!t)
		return;
	for (int s = 0; s < 2; s++) {
		SSL_free(t->side[s].ssl); /* and its BIOs */
		free(t->out[s].buf);
	}
	free(t);
}

/* The server's certificate did not verify: OpenSSL's error queue only says
 * "certificate verify failed"; the verify result says why, and for a name
 * the operator must know which one was expected. */
static void tls_verify_reason(struct tls_conn *t)
{
	long v = SSL_get_verify_result(t->side[1].ssl);
	char ip[INET6_ADDRSTRLEN];
	const char *name;

	if (v == X509_V_OK)
		return;
	name = tls_expected(t, ip, sizeof(ip));
	if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
		snprintf(t->reason, sizeof(t->reason),
			 "certificate verify failed: %s (expected %s)",
			 X509_verify_cert_error_string(v), name ? name : "?");
	else
		snprintf(t->reason, sizeof(t->reason), "certificate verify failed: %s",
			 X509_verify_cert_error_string(v));
}

/* A fatal error on side s: counted, logged (rate-limited) when it broke a
 * handshake, and kept for the connection's log line. */
static int tls_fail(struct tls_conn *t, int s)
{
	struct tls_side *side = &t->side[s];
	unsigned long suppressed;

	t->failed = true;
	t->in_handshake = !side->done;
	if (s == 0 && t->in_handshake)
		atomic_fetch_add(&t->vip->results[tls_classify(ERR_peek_last_error())], 1);
	tls_reason(t->reason, sizeof(t->reason), "protocol error");
	if (s == 1 && t->server)
		tls_verify_reason(t);
	if (t->in_handshake) {
		char who[CONFIG_NAME_MAX + ADDR_STRLEN + 16] = "the client", a[ADDR_STRLEN];
		if (s == 1 && t->server)
			snprintf(
			    who, sizeof(who), "server %s %s", t->server->name,
			    addr_format((const struct sockaddr *)&t->server->addr, a, sizeof(a)));
		atomic_fetch_add(&t->vip->failures, 1);
		if (log_ratelimit(&t->vip->rl_fail, 10000, &suppressed))
			log_warn("vip %s: TLS handshake with %s failed: %s (%llu failures in all, "
				 "%lu not logged since the last message)",
				 t->vip->cfg->name, who, t->reason,
				 (unsigned long long)atomic_load(&t->vip->failures), suppressed);
	}
	return -EPROTO;
}

static void tls_check_done(struct tls_conn *t, int s)
{
	struct tls_side *side = &t->side[s];

	if (side->done || !SSL_is_init_finished(side->ssl))
		return;
	side->done = true;
	atomic_fetch_add(&t->vip->handshakes, 1);
	if (s == 0)
		atomic_fetch_add(&t->vip->results[TLS_RESULT_OK], 1);
	if (SSL_session_reused(side->ssl))
		atomic_fetch_add(&t->vip->resumed, 1);
}

/* What SSL_read/SSL_write's result means for us: 0 to wait, or -EPROTO. */
static int tls_result(struct tls_conn *t, int s, int ret)
{
	switch (SSL_get_error(t->side[s].ssl, ret)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		tls_check_done(t, s);
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		t->side[s].closed = true;
		return 0;
	default:
		return tls_fail(t, s);
	}
}

int tls_input(struct tls_conn *t, int d, const unsigned char *p, size_t len)
{
	struct tls_side *src = &t->side[d], *dst = &t->side[1 - d];

	if (src->ssl) {
		if (src->closed) /* nothing counts after close_notify */
			return (int)(len > INT32_MAX ? INT32_MAX : len);
		size_t pend = BIO_ctrl_pending(src->rbio);
		if (pend >= TLS_IN_MAX)
			return 0;
		int n = BIO_write(src->rbio, p,
				  (int)(len < TLS_IN_MAX - pend ? len : TLS_IN_MAX - pend));
		return n > 0 ? n : tls_fail(t, d);
	}
	/* Plaintext for a TLS destination, once its handshake is through. */
	if (!dst->done || BIO_ctrl_pending(dst->wbio) >= TLS_OUT_MAX || dst->notified)
		return 0;
	int n = SSL_write(dst->ssl, p, (int)(len < TLS_OUT_BUF ? len : TLS_OUT_BUF));
	return n > 0 ? n : tls_result(t, 1 - d, n);
}

/* Decrypts what side d sent into `buf`; *got bytes. */
static int tls_read(struct tls_conn *t, int d, unsigned char *buf, size_t cap, uint32_t *got)
{
	struct tls_side *src = &t->side[d];

	*got = 0;
	while (*got < cap && !src->closed) {
		int n = SSL_read(src->ssl, buf + *got, (int)(cap - *got));
		if (n <= 0)
			return tls_result(t, d, n);
		*got += (uint32_t)n;
		tls_check_done(t, d);
	}
	return 0;
}

/* Both sides speak TLS: drives side d's handshake, then moves its plaintext
 * into side 1-d's SSL once that one's handshake is through. */
static int tls_transfer(struct tls_conn *t, int d)
{
	struct tls_side *src = &t->side[d], *dst = &t->side[1 - d];
	unsigned char buf[TLS_OUT_BUF];
	uint32_t got;

	if (!src->done) {
		int n = SSL_do_handshake(src->ssl);
		if (n != 1)
			return tls_result(t, d, n);
		tls_check_done(t, d);
	}
	while (dst->done && !dst->notified && BIO_ctrl_pending(dst->wbio) < TLS_OUT_MAX) {
		int ret = tls_read(t, d, buf, sizeof(buf), &got);
		if (ret < 0 || got == 0)
			return ret;
		/* A memory BIO takes everything: a short write is a failure. */
		if (SSL_write(dst->ssl, buf, (int)got) != (int)got)
			return tls_fail(t, 1 - d);
	}
	return 0;
}

/* A memory BIO keeps the largest buffer it ever needed: once empty, one
 * that grew past a page is replaced. Measured with 300 connections left
 * idle after a 300 KB download each: 87 KiB of RSS per connection without
 * this, 37 KiB with it. */
static void tls_trim(struct tls_side *s)
{
	BUF_MEM *bm;

	if (!s->ssl)
		return;
	if (BIO_ctrl_pending(s->rbio) == 0 && BIO_get_mem_ptr(s->rbio, &bm) == 1 && bm &&
	    bm->max > 4096) {
		BIO *b = BIO_new(BIO_s_mem());
		if (b) {
			BIO_set_mem_eof_return(b, -1);
			SSL_set0_rbio(s->ssl, b); /* frees the old one */
			s->rbio = b;
		}
	}
	if (BIO_ctrl_pending(s->wbio) == 0 && BIO_get_mem_ptr(s->wbio, &bm) == 1 && bm &&
	    bm->max > 4096) {
		BIO *b = BIO_new(BIO_s_mem());
		if (b) {
			SSL_set0_wbio(s->ssl, b);
			s->wbio = b;
		}
	}
}

/* Fills direction d's output buffer. */
static int tls_pull(struct tls_conn *t, int d)
{
	struct tls_side *src = &t->side[d], *dst = &t->side[1 - d];
	struct tls_out *o = &t->out[d];
	int n;

	if (!o->buf && !(o->buf = malloc(TLS_OUT_BUF)))
		return -ENOMEM;
	if (!dst->ssl) /* plaintext destination: what side d sent, decrypted */
		return tls_read(t, d, o->buf, TLS_OUT_BUF, &o->len);
	if (src->ssl && (n = tls_transfer(t, d)) < 0)
		return n;
	n = BIO_read(dst->wbio, o->buf, TLS_OUT_BUF);
	o->len = n > 0 ? (uint32_t)n : 0;
	return 0;
}

int tls_output(struct tls_conn *t, int d, const unsigned char **p, size_t *len)
{
	struct tls_out *o = &t->out[d];

	if (t->failed)
		return -EPROTO;
	if (o->off == o->len) {
		o->off = o->len = 0;
		int ret = tls_pull(t, d);
		if (ret < 0)
			return ret;
		if (o->len == 0) { /* idle: keep no buffer */
			free(o->buf);
			o->buf = NULL;
			tls_trim(&t->side[d]);
			tls_trim(&t->side[1 - d]);
		}
	}
	*p = o->buf ? o->buf + o->off : NULL;
	*len = o->len - o->off;
	return 0;
}

void tls_sent(struct tls_conn *t, int d, size_t n)
{
	t->out[d].off += (uint32_t)n;
}

bool tls_closed(const struct tls_conn *t, int d)
{
	return t->side[d].ssl && t->side[d].closed;
}

bool tls_finish(struct tls_conn *t, int d)
{
	struct tls_side *dst = &t->side[1 - d];

	if (!dst->ssl || dst->notified || !dst->done)
		return false;
	dst->notified = true;
	SSL_shutdown(dst->ssl); /* queues close_notify; never waits for the peer's */
	ERR_clear_error();
	return BIO_ctrl_pending(dst->wbio) > 0;
}

void tls_send_alert(struct tls_conn *t, int s, int fd)
{
	char buf[64];
	int n;

	if (!t->side[s].ssl || BIO_ctrl_pending(t->side[s].wbio) > sizeof(buf))
		return;
	n = BIO_read(t->side[s].wbio, buf, sizeof(buf));
	if (n > 0 && send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return; /* the client is gone or not reading: nothing to do */
}

int tls_handshake(struct tls_conn *t, int s)
{
	struct tls_side *side = &t->side[s];

	if (t->failed)
		return -EPROTO;
	if (!side->ssl || side->done)
		return 0;
	int n = SSL_do_handshake(side->ssl);
	if (n != 1)
		return tls_result(t, s, n);
	tls_check_done(t, s);
	return 0;
}

bool tls_client_sent(const struct tls_conn *t)
{
	const struct tls_side *side = &t->side[0];

	return BIO_ctrl_pending(side->rbio) > 0 || SSL_pending(side->ssl) > 0;
}

bool tls_client_ready(const struct tls_conn *t)
{
	return t->side[0].done;
}

bool tls_handshake_failed(const struct tls_conn *t)
{
	return t->failed && t->in_handshake;
}

void tls_conn_end(struct tls_conn *t, bool timeout)
{
	if (!t->side[0].done && !(t->failed && t->in_handshake))
		atomic_fetch_add(&t->vip->results[timeout ? TLS_RESULT_TIMEOUT : TLS_RESULT_EOF],
				 1);
}

const char *tls_sni(const struct tls_conn *t)
{
	return SSL_get_servername(t->side[0].ssl, TLSEXT_NAMETYPE_host_name);
}

void tls_describe(const struct tls_conn *t, char *buf, size_t len)
{
	SSL *ssl = t->side[0].ssl;
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	int n;

	if (t->side[0].done)
		n = snprintf(buf, len, " tls=%s cipher=%s sni=%s%s", SSL_get_version(ssl),
			     SSL_get_cipher_name(ssl), sni ? sni : "-",
			     SSL_session_reused(ssl) ? " resumed" : "");
	else
		n = snprintf(buf, len, " tls=- sni=%s", sni ? sni : "-");
	if (t->side[1].done && n > 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, " server_tls=%s%s",
			      SSL_get_version(t->side[1].ssl),
			      SSL_session_reused(t->side[1].ssl) ? " server_resumed" : "");
	if (t->failed && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, " tls_error=\"%s\"", t->reason);
}

/* ---- probes ---- */

struct tls_probe {
	struct tls_side side; /* a client side, as a connection's toward its server */
	const char *alert;    /* a fatal alert from the server (a static string) */
	bool eof;
};

/* Remembers a fatal alert from the server: its description is the cause. */
static void tls_probe_info(const SSL *ssl, int where, int ret)
{
	struct tls_probe *p = SSL_get_app_data(ssl);

	if (p && (where & SSL_CB_READ_ALERT) == SSL_CB_READ_ALERT && (ret >> 8) == SSL3_AL_FATAL)
		p->alert = SSL_alert_desc_string_long(ret);
}

SSL_CTX *tls_probe_ctx_new(const char *ca, char *why, size_t len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx) {
		snprintf(why, len, "out of memory");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* A server that closes without close_notify has still answered. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_TICKET);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_info_callback(ctx, tls_probe_info);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (ca && ca[0] ? SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1
			: SSL_CTX_set_default_verify_paths(ctx) != 1) {
		tls_reason(why, len, "unknown OpenSSL error");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int tls_probe_ctx_cert(SSL_CTX *ctx, const char *cert, const char *key, char *why, size_t len)
{
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key && key[0] ? key : cert, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		tls_reason(why, len, "unknown OpenSSL error");
		return -EINVAL;
	}
	return 0;
}

void tls_probe_ctx_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

struct tls_probe *tls_probe_new(SSL_CTX *ctx, const char *host)
{
	struct tls_probe *p = calloc(1, sizeof(*p));

	if (!p || tls_side_init(&p->side, ctx, false) < 0) {
		free(p);
		return NULL;
	}
	SSL_set_app_data(p->side.ssl, p);
	if (tls_is_ip(host)) {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(p->side.ssl), host);
	} else {
		SSL_set_tlsext_host_name(p->side.ssl, host);
		SSL_set1_host(p->side.ssl, host);
	}
	return p;
}

void tls_probe_free(struct tls_probe *p)
{
	if (!p)
		return;
	SSL_free(p->side.ssl); /* and its BIOs */
	free(p);
}

void tls_probe_input(struct tls_probe *p, const void *buf, size_t n)
{
	if (n == 0) {
		p->eof = true;
		BIO_set_mem_eof_return(p->side.rbio, 0);
	} else {
		BIO_write(p->side.rbio, buf, (int)n);
	}
}

size_t tls_probe_output(struct tls_probe *p, void *buf, size_t cap)
{
	int n = BIO_read(p->side.wbio, buf, (int)cap);
	return n > 0 ? (size_t)n : 0;
}

/* What an SSL call's result r means for the probe (see tls_probe_handshake). */
static int tls_probe_result(struct tls_probe *p, int r, bool handshaken)
{
	int err;

	if (r > 0)
		return r;
	err = SSL_get_error(p->side.ssl, r);
	if (err == SSL_ERROR_WANT_READ && !p->eof)
		return 0;
	if (err == SSL_ERROR_ZERO_RETURN && handshaken && !p->alert)
		return -EPIPE;
	return -EPROTO;
}

int tls_probe_handshake(struct tls_probe *p)
{
	ERR_clear_error();
	return tls_probe_result(p, SSL_do_handshake(p->side.ssl), false);
}

int tls_probe_write(struct tls_probe *p, const void *buf, size_t n)
{
	ERR_clear_error();
	return tls_probe_result(p, SSL_write(p->side.ssl, buf, (int)n), true);
}

int tls_probe_read(struct tls_probe *p, void *buf, size_t cap)
{
	ERR_clear_error();
	return tls_probe_result(p, SSL_read(p->side.ssl, buf, (int)cap), true);
}

void tls_probe_why(struct tls_probe *p, const char *host, const char *ca, char *buf, size_t len)
{
	long verify = SSL_get_verify_result(p->side.ssl);
	unsigned long e = ERR_peek_last_error();

	if (p->alert)
		snprintf(buf, len, "TLS alert from the server: %s", p->alert);
	else if (verify != X509_V_OK)
		snprintf(buf, len,
			 "certificate verify failure: %s (server certificate for '%s', checked "
			 "against %s)",
			 certdiag_verify_string((int)verify), host,
			 ca && ca[0] ? ca : "the system's CA store");
	else if (p->eof)
		snprintf(buf, len, "connection closed by the server during the TLS handshake");
	else if (e)
		snprintf(buf, len, "TLS error: %s", ERR_reason_error_string(e));
	else
		snprintf(buf, len, "TLS error");
	ERR_clear_error();
}
