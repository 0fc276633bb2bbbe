/* certdiag: what a certificate can be used for, in words an operator can act
 * on. Used at start for the health checks' client certificate (check_cert)
 * and by `snatproxy -C CERT [-k KEY] [-a CA]`.
 *
 * The seed's second cause of failed MCU health notifications (event 61013)
 * is a certificate, or a root trusted, for Server Authentication only: a
 * front-end must present its certificate as a TLS *client* too. */
#ifndef SNATPROXY_CERTDIAG_H
#define SNATPROXY_CERTDIAG_H

#include <stdbool.h>
#include <stdio.h>

enum certdiag_key {
	CERTDIAG_KEY_NONE,
	CERTDIAG_KEY_MATCH,
	CERTDIAG_KEY_MISMATCH,
	CERTDIAG_KEY_BAD
};

struct certdiag {
	char subject[256], issuer[256], not_before[64], not_after[64];
	bool expired, not_yet_valid;
	bool has_eku;              /* the certificate restricts its purposes */
	bool server_ok, client_ok; /* usable as a TLS server, as a TLS client */
	enum certdiag_key key;
	char key_why[160];              /* CERTDIAG_KEY_BAD: OpenSSL's reason */
	bool chain_checked;             /* a CA store was available */
	int chain_server, chain_client; /* X509_V_OK or the verify error for that use */
	int chain_len;                  /* certificates in the verified chain */
};

/* The advice of the seed, printed when clientAuth is missing. */
extern const char certdiag_advice[];

/* Examines CERT (PEM, the leaf first, then its chain), its private key (KEY,
 * or NULL/"" to look in CERT) and, when CA is given (or NULL/"": the system's
 * store), its chain for each use. Returns 0, or -errno with the reason in WHY
 * when CERT cannot be read as a certificate at all. */
int certdiag_examine(const char *cert, const char *key, const char *ca, struct certdiag *d,
		     char *why, size_t len);

/* Prints the report `snatproxy -C` shows. Returns 0 when the certificate
 * can serve both ways with a good chain and key, 1 otherwise. */
int certdiag_print(const struct certdiag *d, const char *cert, const char *key, const char *ca,
		   FILE *out);

/* X509_verify_cert_error_string, as a stable place for callers. */
const char *certdiag_verify_string(int err);

#endif
