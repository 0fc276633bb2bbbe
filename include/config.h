/* config: the INI configuration, read with inih into plain structures.
 *
 * Every key lives in one table in config.c (section, name, value type, the
 * field it fills, bounds or names, default, description); parsing, defaults,
 * error messages, `snatproxy -t` and `snatproxy --keys` (the reference that
 * docs/configuration.md must match) all read that table. */
#ifndef SNATPROXY_CONFIG_H
#define SNATPROXY_CONFIG_H

#include <stdint.h>
#include <stdio.h>
#include <stdbool.h>
#include <sys/socket.h>

#define CONFIG_NAME_MAX 64

enum config_balance { CONFIG_BALANCE_ROUNDROBIN, CONFIG_BALANCE_LEASTCONN, CONFIG_BALANCE_SOURCE };
enum config_snat { CONFIG_SNAT_AUTO, CONFIG_SNAT_OFF, CONFIG_SNAT_POOL };
enum config_log_format { CONFIG_LOG_TEXT, CONFIG_LOG_JSON };
enum config_tls { CONFIG_TLS_OFF, CONFIG_TLS_TERMINATE, CONFIG_TLS_ROUTE };

#define CONFIG_SNI_MAX 256

/* tls = route: clients whose SNI matches `sni` ("name" or "*.domain") go to
 * pool `pool`; the others to the VIP's own pool. */
struct config_route {
	char sni[CONFIG_SNI_MAX];
	char pool_name[CONFIG_NAME_MAX];
	int pool; /* index into config.pools, resolved after parsing */
	int line;
};

struct config_server {
	char name[CONFIG_NAME_MAX];
	struct sockaddr_storage addr; /* port 0: the port the client connected to */
	int weight;                   /* 1..256, default 1 */
	int max_conn;                 /* 0: unlimited */
	bool backup;
	/* server_tls and https checks: the name sent as SNI and verified in
	 * the server's certificate; "": the pool's server_name, else the
	 * server's address (resolved after parsing) */
	char server_name[CONFIG_SNI_MAX];
	int line;
};

/* Where a pool's health checks leave from (check_source). */
enum config_check_source { CONFIG_SOURCE_AUTO, CONFIG_SOURCE_SNAT, CONFIG_SOURCE_ADDR };

enum config_check_type {
	CONFIG_CHECK_NONE,
	CONFIG_CHECK_TCP,
	CONFIG_CHECK_HTTP,
	CONFIG_CHECK_HTTPS
};
enum config_check_method { CONFIG_METHOD_GET, CONFIG_METHOD_HEAD, CONFIG_METHOD_POST };

#define CONFIG_EXPECT_MAX 16
#define CONFIG_TEXT_MAX   200 /* a value fits in one line of at most 197 characters */
#define CONFIG_PATH_MAX   512 /* file paths, made absolute against the config's directory */

/* The admin endpoint's bearer token, in characters. */
#define CONFIG_TOKEN_MIN 16
#define CONFIG_TOKEN_MAX 256

/* A file named in the configuration, resolved against the config's folder. */
struct config_file {
	char path[CONFIG_PATH_MAX]; /* "": not given */
	int line;
};

/* A pool's health checks (the check_* keys). */
struct config_check {
	enum config_check_type type;
	uint16_t port; /* 0: each server's own port */
	enum config_check_method method;
	char path[CONFIG_TEXT_MAX];
	char host[CONFIG_TEXT_MAX]; /* Host header and SNI; "": the server's address */
	struct {
		uint16_t lo, hi;
	} expect[CONFIG_EXPECT_MAX]; /* status ranges that mean up */
	int nexpect;
	char body[CONFIG_TEXT_MAX]; /* "": any body */
	uint64_t interval_ms, timeout_ms;
	int rise, fall;
	char cert[CONFIG_PATH_MAX], key[CONFIG_PATH_MAX], ca[CONFIG_PATH_MAX]; /* "": none */
	enum config_check_source source;
	struct sockaddr_storage source_addr; /* CONFIG_SOURCE_ADDR */
	int source_vip; /* CONFIG_SOURCE_SNAT: the VIP whose snat addresses (-1: none) */
	int line, port_line, cert_line, key_line, ca_line; /* where given, 0: not given */
	int source_line;
};

struct config_pool {
	char name[CONFIG_NAME_MAX];
	enum config_balance balance;
	struct config_check check;
	/* check = none: how long a server that failed check_fall client
	 * connects in a row is skipped; 0: never skipped */
	uint64_t fail_timeout_ms;
	struct config_server *servers;
	int nservers;
	char server_name[CONFIG_SNI_MAX]; /* the servers' default server_name; "": none */
	int line;                         /* of the [pool NAME] header */
};

struct config_vip {
	char name[CONFIG_NAME_MAX];
	struct sockaddr_storage *listen;
	int nlisten;
	char pool_name[CONFIG_NAME_MAX];
	int pool;      /* index into config.pools, resolved after parsing */
	int pool_line; /* of `pool =`, kept when its value is refused; 0: not given */
	enum config_snat snat;
	struct sockaddr_storage *snat_addrs; /* CONFIG_SNAT_POOL only; port 0 */
	int nsnat;
	uint64_t timeout_connect_ms;
	uint64_t timeout_idle_ms;
	enum config_tls tls;
	struct config_route *routes;
	int nroutes;
	struct config_file *certs, *keys; /* tls = terminate: pairs, in order */
	int ncerts, nkeys;
	struct config_file client_ca;
	bool server_tls; /* re-encrypt toward the servers (tls = terminate) */
	struct config_file server_cert, server_key, server_ca;
	/* tls = terminate, toward the clients: TLS 1.x versions (0..3, for
	 * 1.0..1.3), OpenSSL's cipher lists, and ALPN names in wire format
	 * (each name after its length byte) */
	int tls_min, tls_max;
	char tls_ciphers[CONFIG_TEXT_MAX], tls_ciphersuites[CONFIG_TEXT_MAX];
	unsigned char tls_alpn[CONFIG_TEXT_MAX];
	int tls_alpn_len;
	int tls_min_line, tls_max_line, tls_ciphers_line, tls_ciphersuites_line, tls_alpn_line;
	int tls_line, server_tls_line;
	int line;
};

struct config {
	char path[256];
	int workers;         /* 0: auto, one per CPU */
	int max_connections; /* client connections across all VIPs */
	uint64_t grace_ms;
	uint64_t drain_delay_ms; /* SIGTERM: /ready says 503 this long before the listeners close */
	uint32_t buffer_size;    /* bytes per provided receive buffer */
	uint32_t buffers;        /* provided buffers per worker */
	bool log_connections;    /* one line per finished connection */
	struct sockaddr_storage admin;          /* admin endpoint; ss_family 0: off */
	char access_log[256];                   /* "": stderr */
	enum config_log_format log_format;      /* of the per-connection lines */
	char user[CONFIG_NAME_MAX];             /* "": keep the starting user */
	char admin_token[CONFIG_TOKEN_MAX + 1]; /* "": none; read from admin_token_file */
	struct config_file admin_token_file;
	struct config_pool *pools;
	int npools;
	struct config_vip *vips;
	int nvips;
};

/* Reads and validates PATH into *cfg. Every error is printed to `errs` as
 * "PATH:LINE: message" (parsing goes on, so one run shows them all); returns
 * 0, -EINVAL when any error was printed, or -errno when PATH cannot be read. */
int config_load(const char *path, struct config *cfg, FILE *errs);

/* Facts of this machine that a start would trip over, checked by
 * config_load_host on top of the file and reported like its other errors,
 * at the line that names them. The start and -t check them all; a plain
 * config_load (unit tests, a reload that keeps user and access_log) none. */
enum {
	CONFIG_HOST_USER = 1 << 0,       /* `user` exists */
	CONFIG_HOST_ACCESS_LOG = 1 << 1, /* `access_log` can be opened for appending */
	CONFIG_HOST_SNAT = 1 << 2,       /* `snat` addresses can be bound here */
	CONFIG_HOST_ALL = (1 << 3) - 1,
};
int config_load_host(const char *path, struct config *cfg, FILE *errs, unsigned host);
void config_free(struct config *cfg);

/* Writes the key reference (section, key, default, description) as markdown
 * table rows, the source of truth for docs/configuration.md. */
void config_print_keys(FILE *out);

/* Is this an address of the host's loopback (127.0.0.0/8, ::1, or
 * ::ffff:127.0.0.0/104)? */
bool config_addr_loopback(const struct sockaddr *sa);

/* "500ms", "2s", "30m", "1h", "1d", or "0". Returns 0 or -EINVAL. */
int config_parse_duration(const char *s, uint64_t *ms);
/* "16384", "16k", "1m". Returns 0 or -EINVAL. */
int config_parse_size(const char *s, uint64_t *bytes);

#endif
