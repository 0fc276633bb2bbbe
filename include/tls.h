/* tls: the one TLS engine, OpenSSL between memory BIOs: at the VIP and toward
 * servers for the relay (driven by its io_uring buffers), and as probes for
 * the https health checks (at the end of this header).
 *
 * No thread and no socket of its own: each TLS endpoint of a connection is
 * an SSL object between two memory BIOs. The relay hands the bytes it
 * received to tls_input() and sends what tls_output() gives it, so TLS costs
 * no system call of its own and every step is bounded:
 *
 *   direction d (0: client to server, 1: server to client) reads from the
 *   socket of side d and writes to the socket of side 1-d. When side d speaks
 *   TLS, its ciphertext is decrypted; when side 1-d speaks TLS, the plaintext
 *   is encrypted for it. Everything the SSL object of side s writes (its
 *   handshake, alerts, close_notify, data) leaves through direction 1-s.
 *
 * A direction holds at most TLS_IN_MAX bytes in its read BIO and TLS_OUT_MAX
 * in its peer's write BIO; beyond that it takes nothing more, the relay's
 * queue fills, and the relay stops receiving (its usual flow control). */
#ifndef SNATPROXY_TLS_H
#define SNATPROXY_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

#include "config.h"
#include "log.h"

#define TLS_IN_MAX  (32 * 1024)
#define TLS_OUT_MAX (32 * 1024)
#define TLS_OUT_BUF (16 * 1024) /* one send's worth, allocated only while in use */

/* How a client's handshake at a VIP ended: done, or why not. */
enum tls_result {
	TLS_RESULT_OK,
	TLS_RESULT_FAILED, /* a failure none of the others names */
	TLS_RESULT_NO_SHARED_CIPHER,
	TLS_RESULT_PROTOCOL_VERSION,
	TLS_RESULT_UNKNOWN_CA,      /* the client does not trust our certificate's issuer */
	TLS_RESULT_BAD_CERTIFICATE, /* the client refused our certificate, or we its */
	TLS_RESULT_NOT_TLS,         /* plain HTTP, or bytes that are not TLS records */
	TLS_RESULT_TIMEOUT,         /* not done within timeout_connect */
	TLS_RESULT_EOF,             /* the client closed or reset first */
	TLS_RESULT_N
};
extern const char *const tls_result_name[TLS_RESULT_N];

/* A VIP's contexts, shared by every worker (OpenSSL's SSL_CTX is thread
 * safe); the counters are atomics for the same reason. */
struct tls_vip {
	const struct config_vip *cfg;
	SSL_CTX **ctx; /* one per tls_cert; [0] is used when no SNI matches */
	int nctx;
	SSL_CTX *client_ctx; /* server_tls: the proxy as a client of the servers */
	/* server_tls: the latest session with each server, one row per worker
	 * so that workers never share one (no lock). */
	SSL_SESSION **sessions;
	int nworkers, nservers;
	_Atomic uint64_t handshakes, resumed, failures;
	_Atomic uint64_t results[TLS_RESULT_N]; /* the clients' handshakes */
	struct log_ratelimit rl_fail;
};

/* Builds a VIP's contexts from its configuration. Returns 0 or -errno with
 * "FILE:LINE: what" in `why`. */
int tls_vip_init(struct tls_vip *tv, const struct config_vip *cfg, const char *path, int nworkers,
		 int nservers, char *why, size_t len);
void tls_vip_free(struct tls_vip *tv);

/* Checks a certificate chain file and its key (readable, PEM, matching);
 * the reason in `why` on failure. Returns 0 or -errno. */
int tls_check_pair(const char *cert, const char *key, char *why, size_t len);
/* Checks a file of CA certificates. Returns 0 or -errno. */
int tls_check_ca(const char *ca, char *why, size_t len);
/* Checks tls_ciphers (each item must name a suite; `legacy`: at security
 * level 0, as with TLS 1.0 and 1.1) and tls_ciphersuites (TLS 1.3 names).
 * Returns 0 or -EINVAL with the reason in `why`. */
int tls_check_ciphers(const char *list, bool legacy, char *why, size_t len);
int tls_check_ciphersuites(const char *list, char *why, size_t len);

struct tls_conn;

/* A connection terminated at the VIP (the client's side speaks TLS).
 * Returns NULL when out of memory. */
struct tls_conn *tls_conn_new(struct tls_vip *tv);
void tls_conn_free(struct tls_conn *t);
/* server_tls: the connection to server `server` (configured as `cs`) is
 * up; starts TLS toward it, offering the worker's last session with that
 * server, sending its server_name (else the client's SNI) and verifying its
 * certificate's name (server_name; with server_ca, else its address).
 * 0 or -ENOMEM. */
int tls_conn_server(struct tls_conn *t, int worker, int server, const struct config_server *cs);

/* Offers `len` received bytes of direction d; returns how many were taken
 * (0: come back after some output was sent) or -EPROTO. */
int tls_input(struct tls_conn *t, int d, const unsigned char *p, size_t len);
/* Bytes ready for the socket of side 1-d: *len is 0 when there are none.
 * They stay valid and in place until tls_sent(). Returns 0 or -EPROTO (the
 * connection must close; tls_describe() tells why). */
int tls_output(struct tls_conn *t, int d, const unsigned char **p, size_t *len);
void tls_sent(struct tls_conn *t, int d, size_t n);
/* Side d has sent its close_notify: direction d carries nothing more. */
bool tls_closed(const struct tls_conn *t, int d);
/* Direction d's source has finished: queues a close_notify for side 1-d if
 * it speaks TLS. Returns true when that made new output (send it first). */
bool tls_finish(struct tls_conn *t, int d);
/* A failure's alert for side s, sent without waiting (best effort). */
void tls_send_alert(struct tls_conn *t, int s, int fd);
/* Drives side s's handshake alone, reading none of its data (the client's,
 * while no server is connected). 0 (done, or waiting for bytes) or -EPROTO. */
int tls_handshake(struct tls_conn *t, int s);
/* After its handshake, the client has sent more (records not read yet). */
bool tls_client_sent(const struct tls_conn *t);
/* The client's handshake is complete. */
bool tls_client_ready(const struct tls_conn *t);
/* True once the connection failed during a handshake. */
bool tls_handshake_failed(const struct tls_conn *t);
/* The connection ends: a client handshake neither done nor failed is
 * counted as given up, by timeout (`timeout`) or by the client. */
void tls_conn_end(struct tls_conn *t, bool timeout);
/* The name the client asked for in its ClientHello, or NULL. */
const char *tls_sni(const struct tls_conn *t);
/* " tls=TLSv1.3 cipher=... sni=..." and the failure's reason, for the log. */
void tls_describe(const struct tls_conn *t, char *buf, size_t len);

/* ---- Probes: a TLS client whose bytes its caller carries ----
 *
 * What an https health check speaks through: the same engine (an SSL object
 * between two memory BIOs), with the caller moving the bytes through the
 * ring. A probe never resumes a session: every check makes the whole
 * handshake, client certificate included, as a new client would. */
struct tls_probe;

/* A context verifying servers against `ca` (the system's store when empty).
 * NULL with OpenSSL's reason in `why` when the CA cannot be loaded. */
SSL_CTX *tls_probe_ctx_new(const char *ca, char *why, size_t len);
/* Presents `cert` (its chain after it) with `key` (NULL or empty: in
 * `cert`). 0, or -EINVAL with OpenSSL's reason in `why`. */
int tls_probe_ctx_cert(SSL_CTX *ctx, const char *cert, const char *key, char *why, size_t len);
void tls_probe_ctx_free(SSL_CTX *ctx);

/* A probe of a server named `host` (sent as SNI and verified in its
 * certificate) or at an IP address (verified). NULL when out of memory. */
struct tls_probe *tls_probe_new(SSL_CTX *ctx, const char *host);
void tls_probe_free(struct tls_probe *p);
/* Bytes received from the server; n == 0: it closed. */
void tls_probe_input(struct tls_probe *p, const void *buf, size_t n);
/* Up to `cap` bytes to send to the server; 0 when there are none. */
size_t tls_probe_output(struct tls_probe *p, void *buf, size_t cap);
/* One step: the handshake until done, then writing, then reading. Each
 * returns > 0 on progress (bytes, or 1: the handshake is done), 0 when it
 * needs more from the server (send tls_probe_output's first), -EPIPE when
 * the server closed cleanly after the handshake, -EPROTO on failure
 * (tls_probe_why says what failed). */
int tls_probe_handshake(struct tls_probe *p);
int tls_probe_write(struct tls_probe *p, const void *buf, size_t n);
int tls_probe_read(struct tls_probe *p, void *buf, size_t cap);
/* Why the probe failed, for an operator: the server's alert, the
 * certificate's verify error (naming `host` and `ca`), a close during the
 * handshake, or OpenSSL's reason. */
void tls_probe_why(struct tls_probe *p, const char *host, const char *ca, char *buf, size_t len);

#endif
