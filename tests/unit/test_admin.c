/* admin: the request parser (every prefix of a good request waits, every
 * malformed one is refused as soon as it shows, with a one-line reason), and
 * the admin_token_file key (the token read, file errors at FILE:LINE, and
 * the warnings for an admin address off loopback). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "admin.h"
#include "config.h"
#include "unit.h"

static int parse_n(const char *buf, size_t len, struct admin_request *q)
{
	return admin_parse_request(buf, len, q);
}

#define parse(lit, q) parse_n(lit, sizeof(lit) - 1, q)

/* The LEN bytes of S are refused with STATUS and a one-line reason holding
 * WHY, and so is every longer input starting with them. */
static void refused_n(const char *s, size_t len, int status, const char *why)
{
	static const char more[] = "\r\nHost: x\r\n\r\n";
	struct admin_request q;
	char longer[ADMIN_REQ_MAX + 64];

	CHECK_EQ(parse_n(s, len, &q), 0);
	CHECK_EQ(q.status, status);
	if (!strstr(q.why, why))
		fprintf(stderr, "refusal of \"%.*s\": \"%s\" lacks \"%s\"\n", (int)len, s, q.why,
			why),
		    unit_failures++;
	CHECK(strchr(q.why, '\n') == q.why + strlen(q.why) - 1);
	memcpy(longer, s, len);
	memcpy(longer + len, more, sizeof(more) - 1);
	CHECK_EQ(parse_n(longer, len + sizeof(more) - 1, &q), 0);
	CHECK_EQ(q.status, status);
}

#define refused(lit, status, why) refused_n(lit, sizeof(lit) - 1, status, why)

static void test_good(void)
{
	static const char req[] = "POST /pools/web/servers/fe1/drain HTTP/1.1\r\n"
				  "Host: 127.0.0.1:9900\r\nAuthorization: bearer  s3cr3t-T0ken\r\n"
				  "Content-Length: 4\r\nX-Empty:\r\n\r\nab\0d";
	size_t n = sizeof(req) - 1;
	struct admin_request q;

	for (size_t i = 0; i < n; i++) {
		int ret = parse_n(req, i, &q);
		if (ret != -EAGAIN) {
			fprintf(stderr, "prefix of %zu bytes: %d, status %d\n", i, ret, q.status);
			unit_failures++;
			break;
		}
		CHECK_EQ(q.head_len, i >= n - 4 ? n - 4 : 0);
	}
	CHECK_EQ(parse_n(req, n, &q), 0);
	CHECK_EQ(q.status, 0);
	CHECK_STR(q.method, "POST");
	CHECK_STR(q.path, "/pools/web/servers/fe1/drain");
	CHECK(q.auth);
	CHECK_STR(q.token, "s3cr3t-T0ken");
	CHECK_EQ(q.length, n);
	CHECK(!q.head);
	/* Bytes after the request (a pipelined one) are not its business. */
	CHECK_EQ(parse("HEAD /metrics?x=1 HTTP/1.0\r\n\r\nGET", &q), 0);
	CHECK_EQ(q.status, 0);
	CHECK(q.head);
	CHECK_EQ(q.length, 30);
	CHECK_STR(q.path, "/metrics?x=1");
	CHECK(!q.auth);
	CHECK_STR(q.token, "");
	/* The same Content-Length twice is one. */
	CHECK_EQ(parse("POST / HTTP/1.1\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\nx", &q),
		 0);
	CHECK_EQ(q.status, 0);
	/* Another scheme, or a token longer than any configured one: given,
	 * unusable. */
	CHECK_EQ(parse("GET / HTTP/1.1\r\nAuthorization: Basic YTpi\r\n\r\n", &q), 0);
	CHECK(q.auth && q.status == 0 && q.token[0] == '\0');
	char big[600];
	snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nAuthorization: Bearer %0300d\r\n\r\n", 7);
	CHECK_EQ(parse_n(big, strlen(big), &q), 0);
	CHECK(q.auth && q.status == 0 && q.token[0] == '\0');
}

/* The status page's buttons: a form whose `token` field stands for the
 * Authorization header, percent-decoded; malformed or too long: unusable. */
static void test_form(void)
{
	struct admin_request q;
	static const char head[] =
	    "POST /pools/p/servers/s/drain HTTP/1.1\r\nContent-Type: "
	    "application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\n%s";
	static const struct {
		const char *body, *token;
		bool auth;
	} cases[] = {
	    {"token=s3cr3t-T0ken&do=drain", "s3cr3t-T0ken", true},
	    {"do=drain&token=a%2Fb%3D%3d", "a/b==", true},
	    {"xtoken=no&do=drain", "", false},
	    {"do=drain", "", false},
	    {"token=", "", true},
	    {"token=a%2", "", true},
	    {"token=a%zz", "", true},
	    {"token=a+b", "", true}, /* a space: no token has one */
	    {"token=%00", "", true},
	};
	char req[1024];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = snprintf(req, sizeof(req), head, strlen(cases[i].body), cases[i].body);
		CHECK_EQ(parse_n(req, (size_t)n, &q), 0);
		CHECK_EQ(q.status, 0);
		CHECK(q.form);
		CHECK_EQ(q.auth, cases[i].auth);
		CHECK_STR(q.token, cases[i].token);
	}
	/* A header wins over the form; without the form's type, the body is not read. */
	CHECK_EQ(parse("POST / HTTP/1.1\r\nAuthorization: Bearer hdr\r\nContent-Type: "
		       "application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\ntoken=f",
		       &q),
		 0);
	CHECK_STR(q.token, "hdr");
	CHECK_EQ(parse("POST / HTTP/1.1\r\nContent-Length: 7\r\n\r\ntoken=f", &q), 0);
	CHECK(!q.form && !q.auth && q.token[0] == '\0');
}

static void test_refused(void)
{
	char big[ADMIN_REQ_MAX + 64];

	/* Bare line ends are refused on sight, not waited on. */
	refused("GET / HTTP/1.1\n", 400, "bare LF");
	refused("GET /metrics HTTP/1.1\r\nHost: x\n", 400, "bare LF");
	refused("\n", 400, "bare LF");
	refused("GET / HTTP/1.1\rX", 400, "bare CR");
	refused("GET / HTTP/1.1\r\nHost: a\0b", 400, "NUL");
	refused("garbage\r\n\r", 400, "request line");
	refused("GET /metrics\r\n", 400, "request line");
	refused("GET metrics HTTP/1.1\r\n", 400, "must start with /");
	refused("GET /metrics HTTP/9.9\r\n", 400, "HTTP/1.1");
	refused("get / HTTP/1.1\r\n", 400, "request line");
	refused("LONGMETHOD / HTTP/1.1\r\n", 400, "request line");
	refused("GET /\x01 HTTP/1.1\r\n", 400, "control");
	refused("GET /\xc3\xa9 HTTP/1.1\r\n", 400, "non-ASCII");
	refused(" GET / HTTP/1.1\r\n", 400, "request line");
	refused("GET / HTTP/1.1\r\n X: folded\r\n", 400, "folding");
	refused("GET / HTTP/1.1\r\nHost x\r\n", 400, "NAME: VALUE");
	refused("GET / HTTP/1.1\r\nHost : x\r\n", 400, "NAME: VALUE");
	refused("GET / HTTP/1.1\r\n: x\r\n", 400, "NAME: VALUE");
	refused("GET / HTTP/1.1\r\nX: a\x7f\r\n", 400, "control byte in the X header");
	refused("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n", 400,
		"two different");
	refused("POST / HTTP/1.1\r\nContent-Length: +5\r\n", 400, "Content-Length");
	refused("POST / HTTP/1.1\r\nContent-Length: 1 2\r\n", 400, "Content-Length");
	refused("POST / HTTP/1.1\r\nContent-Length:\r\n", 400, "Content-Length");
	refused("POST / HTTP/1.1\r\nContent-Length: 99999\r\n", 413, "body longer");
	refused("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n", 413,
		"body longer");
	refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n", 501, "Transfer-Encoding");
	refused("GET / HTTP/1.1\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n", 400,
		"two Authorization");
	snprintf(big, sizeof(big), "GET /%0300d HTTP/1.1\r\n", 1);
	refused_n(big, strlen(big), 414, "target longer");
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	struct admin_request q;
	CHECK_EQ(parse_n(big, ADMIN_REQ_MAX - 1, &q), -EAGAIN);
	CHECK_EQ(parse_n(big, ADMIN_REQ_MAX, &q), 0);
	CHECK_EQ(q.status, 431);
	CHECK_EQ(parse_n(big, sizeof(big), &q), 0);
	CHECK_EQ(q.status, 431);
}

/* ---- admin_token_file ---- */

static char dir[64], errs_path[128];
static char *errs_text;

/* Writes FILE in the scratch directory with MODE. */
static void put(const char *file, const char *text, mode_t mode)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
	chmod(path, mode);
}

/* Loads a config of [global] GLOBAL plus a pool and a VIP; its messages
 * are left in errs_text. */
static int load(const char *global, struct config *cfg)
{
	char text[1024];
	size_t len = 0;

	snprintf(text, sizeof(text),
		 "[global]\n%s\n[pool p]\nserver = a 198.18.0.11\n"
		 "[vip v]\nlisten = 198.18.0.10:444\npool = p\n",
		 global);
	put("p.ini", text, 0600);
	snprintf(errs_path, sizeof(errs_path), "%s/p.ini", dir);
	free(errs_text);
	errs_text = NULL;
	FILE *errs = open_memstream(&errs_text, &len);
	int ret = config_load(errs_path, cfg, errs);
	fclose(errs);
	return ret;
}

static void has(const char *text)
{
	if (!errs_text || !strstr(errs_text, text))
		fprintf(stderr, "messages \"%s\" lack \"%s\"\n", errs_text ? errs_text : "", text),
		    unit_failures++;
}

static void test_token_file(void)
{
	struct config cfg;
	char buf[256];

	put("tok", "0123456789abcdef-._~+/XYZ==\n", 0600);
	CHECK_EQ(load("admin = 127.0.0.1:9900\nadmin_token_file = tok", &cfg), 0);
	CHECK_STR(cfg.admin_token, "0123456789abcdef-._~+/XYZ==");
	snprintf(buf, sizeof(buf), "%s/tok", dir);
	CHECK_STR(cfg.admin_token_file.path, buf);
	CHECK_STR(errs_text, "");
	config_free(&cfg);
	put("tok", "0123456789abcdef\r\n", 0600);
	CHECK_EQ(load("admin_token_file = tok", &cfg), 0);
	CHECK_STR(cfg.admin_token, "0123456789abcdef");
	config_free(&cfg);
	CHECK_EQ(load("admin_token_file = none", &cfg), 0);
	CHECK_STR(cfg.admin_token, "");
	config_free(&cfg);

	/* Each refusal names the config's line and the token file. */
	static const struct {
		const char *text;
		mode_t mode;
		const char *why;
	} bad[] = {
	    {"short\n", 0600, "expected one line of 16 to 256"},
	    {"0123456789abcdef\nmore\n", 0600, "expected one line"},
	    {"0123456789abcdef\n\n", 0600, "expected one line"},
	    {"0123456789 abcdef\n", 0600, "expected one line"},
	    {"0123456789=abcdef\n", 0600, "expected one line"},
	    {"", 0600, "expected one line"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put("tok", bad[i].text, bad[i].mode);
		CHECK_EQ(load("workers = 1\nadmin_token_file = tok", &cfg), -EINVAL);
		snprintf(buf, sizeof(buf), "p.ini:3: admin_token_file %s/tok: %s", dir, bad[i].why);
		has(buf);
		CHECK(!strstr(errs_text, "0123456789")); /* the secret is not shown */
	}
	char longer[400];
	memset(longer, 'a', sizeof(longer) - 2);
	longer[sizeof(longer) - 2] = '\n', longer[sizeof(longer) - 1] = '\0';
	put("tok", longer, 0600);
	CHECK_EQ(load("admin_token_file = tok", &cfg), -EINVAL);
	has("p.ini:2: admin_token_file");
	CHECK_EQ(load("admin_token_file = missing", &cfg), -EINVAL);
	snprintf(buf, sizeof(buf), "p.ini:2: admin_token_file %s/missing: No such file", dir);
	has(buf);
	CHECK_EQ(load("admin_token_file = .", &cfg), -EINVAL);
	has("not a regular file");
	snprintf(buf, sizeof(buf), "%s/fifo", dir);
	CHECK_EQ(mkfifo(buf, 0600), 0);
	CHECK_EQ(load("admin_token_file = fifo", &cfg), -EINVAL); /* does not block */
	has("fifo: not a regular file");
	CHECK_EQ(load("admin_token_file =", &cfg), -EINVAL);
	has("p.ini:2: bad value for 'admin_token_file'");

	/* Readable by others: valid, with a warning. */
	put("tok", "0123456789abcdef\n", 0644);
	CHECK_EQ(load("admin_token_file = tok", &cfg), 0);
	has("p.ini:2: warning: admin_token_file");
	has("other users may read it (mode 644)");
	config_free(&cfg);
}

static void test_off_loopback(void)
{
	struct config cfg;

	CHECK_EQ(load("workers = 1\nadmin = 0.0.0.0:9900", &cfg), 0);
	has("p.ini:3: warning: admin 0.0.0.0:9900 is not on loopback and has no admin_token_file");
	config_free(&cfg);
	CHECK_EQ(load("admin = [2001:db8::1]:9900", &cfg), 0);
	has("warning: admin [2001:db8::1]:9900 is not on loopback");
	config_free(&cfg);
	put("tok", "0123456789abcdef\n", 0600);
	CHECK_EQ(load("admin = 0.0.0.0:9900\nadmin_token_file = tok", &cfg), 0);
	CHECK_STR(errs_text, "");
	config_free(&cfg);
	CHECK_EQ(load("admin = 127.0.0.2:9900", &cfg), 0);
	CHECK_STR(errs_text, "");
	config_free(&cfg);
	CHECK_EQ(load("admin = [::1]:9900", &cfg), 0);
	CHECK_STR(errs_text, "");
	config_free(&cfg);

	static const struct {
		const char *addr;
		bool loopback;
	} cases[] = {
	    {"127.0.0.1:1", true},          {"127.255.0.9:1", true},        {"[::1]:1", true},
	    {"[::ffff:127.0.0.5]:1", true}, {"0.0.0.0:1", false},           {"[::]:1", false},
	    {"198.18.0.1:1", false},        {"[::ffff:10.0.0.1]:1", false}, {"128.0.0.1:1", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_storage ss;
		CHECK_EQ(addr_parse(cases[i].addr, ADDR_PORT_REQUIRED, &ss), 0);
		if (config_addr_loopback((struct sockaddr *)&ss) != cases[i].loopback)
			fprintf(stderr, "config_addr_loopback(%s) is wrong\n", cases[i].addr),
			    unit_failures++;
	}
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_admin.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_good();
	test_form();
	test_refused();
	test_token_file();
	test_off_loopback();
	free(errs_text);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return unit_done("test_admin");
}
