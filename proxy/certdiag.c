/* certdiag: see include/certdiag.h. Everything goes through OpenSSL's own
 * checks (X509_check_purpose, X509_verify_cert with a purpose), so that what
 * it reports is what a TLS peer running OpenSSL would decide. */
#include "certdiag.h"

#include <errno.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

const char certdiag_advice[] =
    "A front-end calling the MCU factory (https://POOL:444/LiveServer/MCUFactory/) presents "
    "its certificate as a TLS client; without the Client Authentication purpose the call "
    "fails and the conferencing servers log event 61013 (failed to send health "
    "notifications to the MCU factory). Issue the certificate with both Server "
    "Authentication and Client Authentication in its extended key usage, and make sure "
    "the issuing root is trusted for Client Authentication too (a root whose properties "
    "allow Server Authentication only causes the same failure).";

const char *certdiag_verify_string(int err)
{
	return X509_verify_cert_error_string(err);
}

static void certdiag_name(const X509_NAME *n, char *out, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int got = 0;

	if (b && X509_NAME_print_ex(b, n, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB) >= 0)
		got = BIO_read(b, out, (int)len - 1);
	out[got > 0 ? got : 0] = '\0';
	BIO_free(b);
}

static void certdiag_time(const ASN1_TIME *t, char *out, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int got = 0;

	if (b && ASN1_TIME_print(b, t))
		got = BIO_read(b, out, (int)len - 1);
	out[got > 0 ? got : 0] = '\0';
	BIO_free(b);
}

static void certdiag_key(X509 *x, const char *cert, const char *key, struct certdiag *d)
{
	bool given = key && *key;
	FILE *f = fopen(given ? key : cert, "r");
	EVP_PKEY *pk = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;

	if (f)
		fclose(f);
	if (!pk) {
		d->key = given ? CERTDIAG_KEY_BAD : CERTDIAG_KEY_NONE;
		snprintf(d->key_why, sizeof(d->key_why), "%s",
			 f ? "no PEM private key in it (or it is encrypted)" : strerror(errno));
	} else {
		d->key = X509_check_private_key(x, pk) ? CERTDIAG_KEY_MATCH : CERTDIAG_KEY_MISMATCH;
	}
	EVP_PKEY_free(pk);
	ERR_clear_error();
}

/* Verifies X with its CHAIN for one use; returns X509_V_OK or the error. */
static int certdiag_verify(X509_STORE *store, X509 *x, STACK_OF(X509) * chain, int purpose,
			   int *len)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int err = X509_V_ERR_UNSPECIFIED;

	if (ctx && X509_STORE_CTX_init(ctx, store, x, chain)) {
		X509_STORE_CTX_set_purpose(ctx, purpose);
		err = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
		STACK_OF(X509) *got = X509_STORE_CTX_get0_chain(ctx);
		if (got && err == X509_V_OK)
			*len = sk_X509_num(got);
	}
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return err;
}

static void certdiag_chain(X509 *x, STACK_OF(X509) * chain, const char *ca, struct certdiag *d)
{
	X509_STORE *store = X509_STORE_new();
	bool ok = store && (ca && *ca ? X509_STORE_load_file(store, ca) == 1
				      : X509_STORE_set_default_paths(store) == 1);

	d->chain_checked = ok;
	if (ok) {
		d->chain_server =
		    certdiag_verify(store, x, chain, X509_PURPOSE_SSL_SERVER, &d->chain_len);
		d->chain_client =
		    certdiag_verify(store, x, chain, X509_PURPOSE_SSL_CLIENT, &d->chain_len);
	}
	X509_STORE_free(store);
	ERR_clear_error();
}

int certdiag_examine(const char *cert, const char *key, const char *ca, struct certdiag *d,
		     char *why, size_t len)
{
	FILE *f = fopen(cert, "r");
	STACK_OF(X509) *chain = sk_X509_new_null();
	X509 *x, *more;

	memset(d, 0, sizeof(*d));
	if (!f) {
		int err = errno;
		snprintf(why, len, "cannot open %s: %s", cert, strerror(err));
		sk_X509_free(chain);
		return -err;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	while (x && chain && (more = PEM_read_X509(f, NULL, NULL, NULL)))
		sk_X509_push(chain, more);
	fclose(f);
	ERR_clear_error();
	if (!x || !chain) {
		snprintf(why, len, "%s holds no PEM certificate", cert);
		X509_free(x);
		sk_X509_pop_free(chain, X509_free);
		return -EINVAL;
	}
	certdiag_name(X509_get_subject_name(x), d->subject, sizeof(d->subject));
	certdiag_name(X509_get_issuer_name(x), d->issuer, sizeof(d->issuer));
	certdiag_time(X509_get0_notBefore(x), d->not_before, sizeof(d->not_before));
	certdiag_time(X509_get0_notAfter(x), d->not_after, sizeof(d->not_after));
	d->expired = X509_cmp_current_time(X509_get0_notAfter(x)) < 0;
	d->not_yet_valid = X509_cmp_current_time(X509_get0_notBefore(x)) > 0;
	d->has_eku = (X509_get_extension_flags(x) & EXFLAG_XKUSAGE) != 0;
	d->server_ok = X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0) == 1;
	d->client_ok = X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0) == 1;
	certdiag_key(x, cert, key, d);
	certdiag_chain(x, chain, ca, d);
	X509_free(x);
	sk_X509_pop_free(chain, X509_free);
	return 0;
}

static const char *certdiag_use(const struct certdiag *d, bool client)
{
	if (client ? d->client_ok : d->server_ok)
		return d->has_eku ? client ? "yes (extended key usage includes clientAuth)"
					   : "yes (extended key usage includes serverAuth)"
				  : "yes (no extended key usage: any purpose)";
	if (d->has_eku)
		return client
			   ? "NO: its extended key usage lacks clientAuth (Client Authentication)"
			   : "NO: its extended key usage lacks serverAuth (Server Authentication)";
	return "NO: its key usage or Netscape certificate type forbids it";
}

/* OpenSSL rejects a chain whose root carries trust settings (a TRUSTED
 * CERTIFICATE) that leave out the use: the seed's root "allowed only Server
 * authentication". */
static const char *certdiag_trust_note(int err, bool client)
{
	if (err != X509_V_ERR_CERT_REJECTED && err != X509_V_ERR_CERT_UNTRUSTED)
		return "";
	return client ? ": the root's trust settings do not allow Client Authentication"
		      : ": the root's trust settings do not allow Server Authentication";
}

static bool certdiag_print_chain(const struct certdiag *d, const char *ca, FILE *out)
{
	const char *store = ca && *ca ? ca : "the system's CA store";

	if (!d->chain_checked) {
		fprintf(out, "  chain:       not checked: cannot load %s\n", store);
		return false;
	}
	if (d->chain_server == X509_V_OK && d->chain_client == X509_V_OK) {
		fprintf(out,
			"  chain:       verified against %s (%d certificates), for both uses\n",
			store, d->chain_len);
		return true;
	}
	fprintf(out, "  chain as server: %s%s\n",
		d->chain_server == X509_V_OK ? "verified" : certdiag_verify_string(d->chain_server),
		certdiag_trust_note(d->chain_server, false));
	fprintf(out, "  chain as client: %s%s\n",
		d->chain_client == X509_V_OK ? "verified" : certdiag_verify_string(d->chain_client),
		certdiag_trust_note(d->chain_client, true));
	fprintf(out, "  (verified against %s)\n", store);
	return false;
}

/* A chain that does not verify for either use is a matter of which CA, not
 * of the certificate's purposes. */
static void certdiag_chain_advice(const struct certdiag *d, const char *cert, const char *ca,
				  FILE *out)
{
	int err = d->chain_server;

	if (!(ca && *ca))
		fprintf(out,
			"advice: the chain does not verify against the system's CA store (%s): "
			"if a private CA issued %s, give its certificate with -a CA (check_ca, "
			"server_ca and tls_client_ca take the same file)\n",
			certdiag_verify_string(err), cert);
	else if (err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
		 err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT)
		fprintf(
		    out,
		    "advice: %s holds no issuer of %s: give the root that issued it with -a, "
		    "and put any intermediate certificates in %s after the certificate itself\n",
		    ca, cert, cert);
	else
		fprintf(out, "advice: the chain does not verify against %s: %s\n", ca,
			certdiag_verify_string(err));
}

/* One line of advice per problem, each fitting its cause. */
static void certdiag_print_advice(const struct certdiag *d, const char *cert, const char *key,
				  const char *ca, FILE *out)
{
	bool client_trust = d->chain_client == X509_V_ERR_CERT_REJECTED ||
			    d->chain_client == X509_V_ERR_CERT_UNTRUSTED;

	if (d->expired || d->not_yet_valid)
		fprintf(out, "advice: %s is %s: issue a new one\n", cert,
			d->expired ? "expired" : "not valid yet (or this host's clock is wrong)");
	if (d->key == CERTDIAG_KEY_MISMATCH)
		fprintf(out,
			"advice: %s is not the key of %s: give the key made with its request "
			"(-k KEY; check_key, tls_key, server_key)\n",
			key && *key ? key : cert, cert);
	if (d->chain_checked && d->chain_server != X509_V_OK && !client_trust &&
	    d->chain_server != X509_V_ERR_CERT_REJECTED &&
	    d->chain_server != X509_V_ERR_CERT_UNTRUSTED)
		certdiag_chain_advice(d, cert, ca, out);
	/* The seed's cause: the certificate, or its root, for servers only. */
	if (!d->client_ok ||
	    (d->chain_checked && d->chain_server == X509_V_OK && d->chain_client != X509_V_OK) ||
	    client_trust)
		fprintf(out, "advice: %s\n", certdiag_advice);
}

int certdiag_print(const struct certdiag *d, const char *cert, const char *key, const char *ca,
		   FILE *out)
{
	bool good = true;

	fprintf(out, "certificate %s\n", cert);
	fprintf(out, "  subject:     %s\n  issuer:      %s\n", d->subject, d->issuer);
	fprintf(out, "  valid:       %s to %s%s\n", d->not_before, d->not_after,
		d->expired         ? ": EXPIRED"
		: d->not_yet_valid ? ": NOT YET VALID"
				   : "");
	good = !d->expired && !d->not_yet_valid;
	switch (d->key) {
	case CERTDIAG_KEY_MATCH:
		fprintf(out, "  private key: %s matches\n",
			key && *key ? key : "(in the same file)");
		break;
	case CERTDIAG_KEY_MISMATCH:
		fprintf(out, "  private key: %s DOES NOT MATCH this certificate\n",
			key && *key ? key : "(in the same file)");
		good = false;
		break;
	case CERTDIAG_KEY_BAD:
		fprintf(out, "  private key: cannot read %s: %s\n", key, d->key_why);
		good = false;
		break;
	case CERTDIAG_KEY_NONE:
		fprintf(out, "  private key: not checked (give it with -k KEY)\n");
		break;
	}
	fprintf(out, "  TLS server:  %s\n", certdiag_use(d, false));
	fprintf(out, "  TLS client:  %s\n", certdiag_use(d, true));
	good = certdiag_print_chain(d, ca, out) && good && d->server_ok && d->client_ok;
	certdiag_print_advice(d, cert, key, ca, out);
	return good ? 0 : 1;
}
