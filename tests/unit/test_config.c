/* config: values, defaults, every error with its line, durations and sizes.
 * Each case writes a config to a temporary file and loads it as the proxy
 * would; messages are captured to check "PATH:LINE: text". */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "unit.h"

/* Two and three lines: cases add their own lines after these. */
#define POOL_OK "[pool p]\nserver = a 198.18.0.11\n"
#define VIP_OK  "[vip v]\nlisten = 198.18.0.10:444\npool = p\n"

static char tmp_path[64];
static char *errs_text;
static size_t errs_len;

static void write_config(const char *text)
{
	snprintf(tmp_path, sizeof(tmp_path), "/tmp/test_config.XXXXXX");
	int fd = mkstemp(tmp_path);
	if (fd < 0) {
		perror("mkstemp");
		exit(1);
	}
	size_t len = strlen(text);
	if (write(fd, text, len) != (ssize_t)len) {
		perror("write");
		exit(1);
	}
	close(fd);
}

/* Loads TEXT with the CONFIG_HOST_* checks HOST; messages in errs_text. */
static int load_host(const char *text, struct config *cfg, unsigned host)
{
	free(errs_text);
	errs_text = NULL;
	FILE *errs = open_memstream(&errs_text, &errs_len);
	if (!errs) {
		perror("open_memstream");
		exit(1);
	}
	write_config(text);
	int ret = config_load_host(tmp_path, cfg, errs, host);
	fclose(errs);
	unlink(tmp_path);
	return ret;
}

/* Loads TEXT as a plain config_load does: no look at this machine. */
static int load(const char *text, struct config *cfg)
{
	return load_host(text, cfg, 0);
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; s && *s; s++)
		n += *s == '\n';
	return n;
}

/* Whether the messages hold "PATH:LINE: ..." with NEEDLE on that line. */
static bool has_error(int line, const char *needle)
{
	char prefix[128];
	int plen = snprintf(prefix, sizeof(prefix), "%s:%d: ", tmp_path, line);

	for (const char *s = errs_text; s && *s;) {
		const char *end = strchr(s, '\n');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		if (len >= (size_t)plen && strncmp(s, prefix, (size_t)plen) == 0 &&
		    memmem(s, len, needle, strlen(needle)))
			return true;
		s += len + (end != NULL);
	}
	return false;
}

/* A config that must fail with exactly one message, at LINE, saying NEEDLE. */
static void expect_error(int src_line, const char *text, int line, const char *needle)
{
	struct config cfg;
	int ret = load(text, &cfg);

	if (ret != -EINVAL || !has_error(line, needle) || count_lines(errs_text) != 1) {
		fprintf(stderr, "%s:%d: expected one error at line %d with \"%s\", got %d and:\n%s",
			__FILE__, src_line, line, needle, ret, errs_text ? errs_text : "");
		unit_failures++;
	}
	config_free(&cfg);
}
#define EXPECT_ERROR(text, line, needle) expect_error(__LINE__, text, line, needle)

static void test_values(void)
{
	struct config cfg;
	char buf[ADDR_STRLEN];
	int ret = load("; every key set\n"
		       "[global]\n"
		       "workers = 4\n"
		       "max_connections = 2000\n"
		       "grace = 1500ms\n"
		       "buffer_size = 64K\n"
		       "buffers = 256\n"
		       "log_connections = off\n"
		       "[vip web]\n" /* before its pool: resolved at the end */
		       "listen = 198.18.0.10:443\n"
		       "listen = [2001:db8::10]:443   ; inline comment\n"
		       "pool = fe\n"
		       "snat = 198.18.1.1 198.18.1.2\n"
		       "snat = 2001:db8::1\n"
		       "    198.18.1.3\n"
		       "timeout_connect = 250ms\n"
		       "timeout_idle = 2h\n"
		       "[pool other]\n"
		       "server = x [2001:db8::99]:8080 backup\n"
		       "[pool fe]\n"
		       "balance = leastconn\n"
		       "server = fe1 198.18.0.11:8443 weight=3 max_conn=100\n"
		       "server = fe2 198.18.0.12 backup\n"
		       "\tserver-3 2001:db8::12 ; a comment on a continuation line\n",
		       &cfg);
	CHECK_EQ(ret, 0);
	CHECK_STR(errs_text, "");
	CHECK_STR(cfg.path, tmp_path);
	CHECK_EQ(cfg.workers, 4);
	CHECK_EQ(cfg.max_connections, 2000);
	CHECK_EQ(cfg.grace_ms, 1500);
	CHECK_EQ(cfg.buffer_size, 65536);
	CHECK_EQ(cfg.buffers, 256);
	CHECK_EQ(cfg.log_connections, false);
	CHECK_EQ(cfg.npools, 2);
	CHECK_EQ(cfg.nvips, 1);
	if (ret != 0 || cfg.npools != 2 || cfg.nvips != 1)
		return config_free(&cfg);

	const struct config_pool *p = &cfg.pools[1];
	CHECK_STR(p->name, "fe");
	CHECK_EQ(p->line, 20);
	CHECK_EQ(p->balance, CONFIG_BALANCE_LEASTCONN);
	CHECK_EQ(p->nservers, 3);
	CHECK_STR(p->servers[0].name, "fe1");
	CHECK_STR(addr_format((struct sockaddr *)&p->servers[0].addr, buf, sizeof(buf)),
		  "198.18.0.11:8443");
	CHECK_EQ(p->servers[0].weight, 3);
	CHECK_EQ(p->servers[0].max_conn, 100);
	CHECK_EQ(p->servers[0].backup, false);
	CHECK_EQ(p->servers[0].line, 22);
	CHECK_EQ(addr_port((struct sockaddr *)&p->servers[1].addr), 0);
	CHECK_EQ(p->servers[1].weight, 1);
	CHECK_EQ(p->servers[1].backup, true);
	CHECK_STR(p->servers[2].name, "server-3"); /* an indented line continues `server` */
	CHECK_EQ(p->servers[2].addr.ss_family, AF_INET6);
	CHECK_EQ(p->servers[2].line, 24);
	CHECK_EQ(cfg.pools[0].servers[0].backup, true);

	const struct config_vip *v = &cfg.vips[0];
	CHECK_STR(v->name, "web");
	CHECK_EQ(v->line, 9);
	CHECK_EQ(v->nlisten, 2);
	CHECK_STR(addr_format((struct sockaddr *)&v->listen[1], buf, sizeof(buf)),
		  "[2001:db8::10]:443");
	CHECK_STR(v->pool_name, "fe");
	CHECK_EQ(v->pool, 1);
	CHECK_EQ(v->snat, CONFIG_SNAT_POOL);
	CHECK_EQ(v->nsnat, 4);
	CHECK_STR(addr_format((struct sockaddr *)&v->snat_addrs[3], buf, sizeof(buf)),
		  "198.18.1.3");
	CHECK_EQ(v->timeout_connect_ms, 250);
	CHECK_EQ(v->timeout_idle_ms, 2 * 3600 * 1000);
	config_free(&cfg);
	CHECK(cfg.pools == NULL && cfg.vips == NULL && cfg.npools == 0);
}

static void test_defaults(void)
{
	struct config cfg;
	int ret = load(POOL_OK VIP_OK, &cfg);

	CHECK_EQ(ret, 0);
	if (ret != 0)
		return;
	CHECK_EQ(cfg.workers, 0);
	CHECK_EQ(cfg.max_connections, 0); /* auto: derived from the open-file limit */
	CHECK_EQ(cfg.grace_ms, 10000);
	CHECK_EQ(cfg.buffer_size, 16384);
	CHECK_EQ(cfg.buffers, 4096);
	CHECK_EQ(cfg.log_connections, true);
	CHECK_EQ(cfg.pools[0].balance, CONFIG_BALANCE_ROUNDROBIN);
	CHECK_EQ(cfg.pools[0].servers[0].weight, 1);
	CHECK_EQ(cfg.pools[0].servers[0].max_conn, 0);
	CHECK_EQ(cfg.pools[0].servers[0].backup, false);
	CHECK_EQ(cfg.vips[0].pool, 0);
	CHECK_EQ(cfg.vips[0].snat, CONFIG_SNAT_AUTO);
	CHECK_EQ(cfg.vips[0].nsnat, 0);
	CHECK(cfg.vips[0].snat_addrs == NULL);
	CHECK_EQ(cfg.vips[0].timeout_connect_ms, 5000);
	CHECK_EQ(cfg.vips[0].timeout_idle_ms, 30 * 60 * 1000);
	config_free(&cfg);
}

/* What inih as Debian builds it would get wrong on its own. */
static void test_reader(void)
{
	struct config cfg;
	char name63[64], text[512], line[256];

	/* Section names longer than inih's 50-byte section buffer. */
	memset(name63, 'n', 63);
	name63[63] = '\0';
	snprintf(text, sizeof(text),
		 "[pool %s]\nserver = a 198.18.0.11\n[vip v]\n"
		 "listen = 198.18.0.10:1\npool = %s\n",
		 name63, name63);
	CHECK_EQ(load(text, &cfg), 0);
	if (cfg.npools == 1)
		CHECK_STR(cfg.pools[0].name, name63);
	config_free(&cfg);
	snprintf(text, sizeof(text), "[vip %sx]\n", name63);
	EXPECT_ERROR(text, 1, "bad vip name");

	/* 197 characters fit inih's 200-byte line; 198 are refused, not cut. */
	snprintf(line, sizeof(line), "server = b 198.18.0.12 ;%*s", 197 - 24, "x");
	CHECK_EQ(strlen(line), 197);
	snprintf(text, sizeof(text), POOL_OK "%s\n" VIP_OK, line);
	CHECK_EQ(load(text, &cfg), 0);
	CHECK_EQ(cfg.npools == 1 ? cfg.pools[0].nservers : -1, 2);
	config_free(&cfg);
	snprintf(line, sizeof(line), "server = b 198.18.0.12 ;%*s", 198 - 24, "x");
	snprintf(text, sizeof(text), POOL_OK "%s\n" VIP_OK, line);
	EXPECT_ERROR(text, 3, "line too long: 198 characters");

	/* CRLF, a BOM, blank lines, both comment styles, a last line with no
	 * newline. */
	CHECK_EQ(load("\xEF\xBB\xBF[pool p]\r\n\r\n# hash\r\n  ; semi\r\nserver = a 198.18.0.11\r\n"
		      "[vip v]\r\nlisten = 198.18.0.10:444\r\npool = p",
		      &cfg),
		 0);
	CHECK_STR(errs_text, "");
	config_free(&cfg);
}

/* ${NAME} from the environment: one file for every node of a cluster. */
static void test_env(void)
{
	struct config cfg;
	char text[512], line[256];

	setenv("SNATPROXY_T_SNAT", "198.18.0.21 198.18.0.22", 1);
	setenv("SNATPROXY_T_PORT", "444", 1);
	unsetenv("SNATPROXY_T_UNSET");
	CHECK_EQ(load(POOL_OK "[vip v]\nlisten = 198.18.0.10:${SNATPROXY_T_PORT}\npool = p\n"
			      "snat = ${SNATPROXY_T_SNAT} ; $${literal} and a lone $ stay\n"
			      "# ${SNATPROXY_T_UNSET}: comments are left alone\n",
		      &cfg),
		 0);
	CHECK_STR(errs_text, "");
	if (cfg.nvips == 1) {
		CHECK_EQ(cfg.vips[0].nsnat, 2);
		CHECK_EQ(addr_port((const struct sockaddr *)&cfg.vips[0].listen[0]), 444);
	}
	config_free(&cfg);
	EXPECT_ERROR(POOL_OK VIP_OK "snat = ${SNATPROXY_T_UNSET}\n", 6,
		     "${SNATPROXY_T_UNSET}: no such environment variable");
	EXPECT_ERROR(POOL_OK VIP_OK "snat = ${1X}\n", 6, "bad substitution at '${1X}'");
	EXPECT_ERROR(POOL_OK VIP_OK "snat = ${SNATPROXY_T_SNAT\n", 6, "bad substitution");
	EXPECT_ERROR(POOL_OK VIP_OK "snat = ${}\n", 6, "bad substitution");
	/* The 197-character limit holds for the substituted line. */
	memset(line, 'x', 191);
	line[191] = '\0';
	setenv("SNATPROXY_T_LONG", line, 1);
	snprintf(text, sizeof(text),
		 POOL_OK VIP_OK "; ${SNATPROXY_T_LONG}\nsnat = ${SNATPROXY_T_LONG}\n");
	EXPECT_ERROR(text, 7, "line too long once ${...} is substituted: 198");
	unsetenv("SNATPROXY_T_LONG");
}

static void test_snat(void)
{
	struct config cfg;
	char text[2048];
	int n = snprintf(text, sizeof(text), POOL_OK VIP_OK);

	for (int i = 1; i <= 64; i++)
		n += snprintf(text + n, sizeof(text) - (size_t)n, "snat = 198.18.2.%d\n", i);
	CHECK_EQ(load(text, &cfg), 0);
	CHECK_EQ(cfg.nvips == 1 ? cfg.vips[0].nsnat : -1, 64);
	config_free(&cfg);
	snprintf(text + n, sizeof(text) - (size_t)n, "snat = 198.18.2.65\n");
	EXPECT_ERROR(text, 70, "at most 64 addresses");

	CHECK_EQ(load(POOL_OK VIP_OK "snat = off\n", &cfg), 0);
	CHECK_EQ(cfg.nvips == 1 ? (int)cfg.vips[0].snat : -1, CONFIG_SNAT_OFF);
	config_free(&cfg);
	EXPECT_ERROR(POOL_OK VIP_OK "snat = off\nsnat = auto\n", 7, "only snat value");
	EXPECT_ERROR(POOL_OK VIP_OK "snat = 198.18.2.1\nsnat = off\n", 7, "only snat value");
	EXPECT_ERROR(POOL_OK VIP_OK "snat = 198.18.2.1 off\n", 6, "cannot be mixed");
	EXPECT_ERROR(POOL_OK VIP_OK "snat = 198.18.2.1:80\n", 6, "got '198.18.2.1:80'");
	EXPECT_ERROR(POOL_OK VIP_OK "snat = 198.18.2.1 198.18.2.1\n", 6, "given twice");
	EXPECT_ERROR(POOL_OK VIP_OK "snat = 2001:db8::1\n", 6, "snat has no IPv4 address");
	EXPECT_ERROR(POOL_OK VIP_OK "listen = [2001:db8::10]:444\nsnat = off\n", 7,
		     "must all be IPv4");
}

static void test_errors(void)
{
	EXPECT_ERROR("workers = 2\n" POOL_OK VIP_OK, 1, "key 'workers' outside any section");
	EXPECT_ERROR(POOL_OK "[frontend x]\nserver = a 1.2.3.4\n" VIP_OK, 3,
		     "unknown section kind '[frontend]'");
	EXPECT_ERROR(POOL_OK "[pool]\nserver = a 1.2.3.4\n" VIP_OK, 3,
		     "section [pool] needs a name");
	EXPECT_ERROR(POOL_OK VIP_OK "[vip]\n", 6, "section [vip] needs a name");
	EXPECT_ERROR(POOL_OK "[pool a/b]\n" VIP_OK, 3, "bad pool name 'a/b'");
	EXPECT_ERROR(POOL_OK VIP_OK "[pool p]\nserver = b 1.2.3.4\n", 6,
		     "duplicate pool p (first on line 1)");
	EXPECT_ERROR(POOL_OK VIP_OK "[vip v]\nlisten = 198.18.0.10:445\npool = p\n", 6,
		     "duplicate vip v (first on line 3)");
	EXPECT_ERROR("[global ab]\n" POOL_OK VIP_OK, 1, "[global] takes no name");
	EXPECT_ERROR(POOL_OK VIP_OK "[vip w\n", 6, "without ']'");
	EXPECT_ERROR(POOL_OK VIP_OK "[global] x\n", 6, "unexpected text after ']'");
	EXPECT_ERROR(POOL_OK VIP_OK "just words\n", 6, "expected 'key = value'");

	EXPECT_ERROR("[global]\nworker = 2\n" POOL_OK VIP_OK, 2,
		     "unknown key 'worker' in a [global] section");
	EXPECT_ERROR(POOL_OK "listen = 1.2.3.4:80\n" VIP_OK, 3,
		     "unknown key 'listen' in a [pool NAME] section: it belongs in [vip NAME]");
	EXPECT_ERROR(POOL_OK VIP_OK "balance = source\n", 6,
		     "unknown key 'balance' in a [vip NAME] section: it belongs in [pool NAME]");
	EXPECT_ERROR("[global]\nworkers = 2\nworkers = 3\n" POOL_OK VIP_OK, 3,
		     "duplicate key 'workers' (first on line 2)");
	EXPECT_ERROR(POOL_OK VIP_OK "pool = p\n", 6, "duplicate key 'pool' (first on line 5)");
	EXPECT_ERROR(POOL_OK VIP_OK "timeout_idle = 1m\n  2m\n", 7, "duplicate key 'timeout_idle'");

	EXPECT_ERROR("[global]\nworkers = 65\n" POOL_OK VIP_OK, 2,
		     "bad value for 'workers': expected auto or a number from 1 to 64, got '65'");
	EXPECT_ERROR("[global]\nworkers = 0\n" POOL_OK VIP_OK, 2, "got '0'");
	EXPECT_ERROR("[global]\nmax_connections = 10000001\n" POOL_OK VIP_OK, 2, "got '10000001'");
	EXPECT_ERROR("[global]\nmax_connections = -1\n" POOL_OK VIP_OK, 2, "got '-1'");
	EXPECT_ERROR("[global]\ngrace = 10\n" POOL_OK VIP_OK, 2, "bad value for 'grace'");
	EXPECT_ERROR("[global]\ngrace = 2d\n" POOL_OK VIP_OK, 2, "bad value for 'grace'");
	EXPECT_ERROR("[global]\nbuffer_size = 2k\n" POOL_OK VIP_OK, 2,
		     "bad value for 'buffer_size'");
	EXPECT_ERROR("[global]\nbuffer_size = 2m\n" POOL_OK VIP_OK, 2, "got '2m'");
	EXPECT_ERROR("[global]\nbuffer_size = 12k\n" POOL_OK VIP_OK, 2, "power of two");
	EXPECT_ERROR("[global]\nbuffers = 32\n" POOL_OK VIP_OK, 2, "bad value for 'buffers'");
	EXPECT_ERROR("[global]\nbuffers = 1000\n" POOL_OK VIP_OK, 2, "power of two");
	EXPECT_ERROR("[global]\nbuffers = 4k\n" POOL_OK VIP_OK, 2, "bad value for 'buffers'");
	EXPECT_ERROR("[global]\nlog_connections = yes\n" POOL_OK VIP_OK, 2, "expected on or off");
	EXPECT_ERROR(POOL_OK "balance = random\n" VIP_OK, 3,
		     "expected roundrobin, leastconn or source, got 'random'");

	EXPECT_ERROR(POOL_OK "server = b\n" VIP_OK, 3, "expected NAME ADDR[:PORT]");
	EXPECT_ERROR(POOL_OK "server =\n" VIP_OK, 3, "expected NAME ADDR[:PORT]");
	EXPECT_ERROR(POOL_OK "server = b c\n" VIP_OK, 3, "server b: bad address");
	EXPECT_ERROR(POOL_OK "server = b 1.2.3.4:0\n" VIP_OK, 3, "server b: bad address");
	EXPECT_ERROR(POOL_OK "server = b 0.0.0.0\n" VIP_OK, 3, "server b: bad address");
	EXPECT_ERROR(POOL_OK "server = b? 1.2.3.4\n" VIP_OK, 3, "bad server name 'b?'");
	EXPECT_ERROR(POOL_OK "server = b 1.2.3.4 weight=0\n" VIP_OK, 3, "expected 1..256, got '0'");
	EXPECT_ERROR(POOL_OK "server = b 1.2.3.4 weight=257\n" VIP_OK, 3, "got '257'");
	EXPECT_ERROR(POOL_OK "server = b 1.2.3.4 max_conn=-5\n" VIP_OK, 3, "bad max_conn");
	EXPECT_ERROR(POOL_OK "server = b 1.2.3.4 weight=2 weight=3\n" VIP_OK, 3, "given twice");
	EXPECT_ERROR(POOL_OK "server = b 1.2.3.4 fast\n" VIP_OK, 3, "unknown option 'fast'");
	EXPECT_ERROR(POOL_OK "server = a 1.2.3.4\n" VIP_OK, 3,
		     "duplicate server name 'a' in pool p (first on line 2)");

	EXPECT_ERROR(POOL_OK VIP_OK "listen = 198.18.0.10\n", 6, "bad value for 'listen'");
	EXPECT_ERROR(POOL_OK VIP_OK "listen = 198.18.0.10:65536\n", 6, "got '198.18.0.10:65536'");
	EXPECT_ERROR(POOL_OK VIP_OK "listen = ::1\n", 6, "bad value for 'listen'");
	EXPECT_ERROR(POOL_OK VIP_OK "listen = 198.18.0.10:444\n", 6, "given twice in vip v");
	EXPECT_ERROR(POOL_OK VIP_OK "[vip w]\nlisten = 198.18.0.10:444\npool = p\n", 7,
		     "listen 198.18.0.10:444 is already used by vip v (line 3)");
	EXPECT_ERROR(POOL_OK VIP_OK "timeout_connect = 0\n", 6, "bad value for 'timeout_connect'");
	EXPECT_ERROR(POOL_OK VIP_OK "timeout_idle = 30\n", 6,
		     "bad value for 'timeout_idle': expected 0 or a duration");
	EXPECT_ERROR(POOL_OK VIP_OK "timeout_idle = 366d\n", 6, "got '366d'");

	EXPECT_ERROR("[pool p]\n" VIP_OK, 1, "pool p has no server");
	EXPECT_ERROR(POOL_OK "[vip v]\npool = p\n", 3, "vip v has no listen");
	EXPECT_ERROR(POOL_OK "[vip v]\nlisten = 198.18.0.10:444\n", 3, "vip v has no pool");
	EXPECT_ERROR(POOL_OK "[vip v]\nlisten = 198.18.0.10:444\npool = q\n", 5,
		     "vip v: pool q is not defined");
	EXPECT_ERROR(POOL_OK "[vip v]\nlisten = 198.18.0.10:444\npool = a b\n", 5,
		     "bad value for 'pool'");
	EXPECT_ERROR("# nothing\n", 1, "no [vip NAME] section");
}

/* One run reports every error, in line order; a bad section's keys are
 * skipped rather than reported one by one, and a refused server or listen
 * line is not reported again as a missing one. */
static void test_many_errors(void)
{
	struct config cfg;
	int ret = load("[global]\n"
		       "workers = many\n"
		       "[vip v]\n"
		       "pool = nope\n"
		       "[pool]\n"
		       "server = a 1.2.3.4\n"
		       "balance = x\n"
		       "[pool p]\n"
		       "server = a 1.2.3.4:99999\n"
		       "[pool q]\n",
		       &cfg);
	CHECK_EQ(ret, -EINVAL);
	CHECK_EQ(count_lines(errs_text), 6);
	CHECK(has_error(2, "bad value for 'workers'"));
	CHECK(has_error(3, "vip v has no listen"));
	CHECK(has_error(4, "pool nope is not defined"));
	CHECK(has_error(5, "needs a name"));
	CHECK(has_error(9, "server a: bad address")); /* and not "pool p has no server" */
	CHECK(has_error(10, "pool q has no server"));
	CHECK(strstr(errs_text, ":2: ") < strstr(errs_text, ":3: "));
	CHECK(strstr(errs_text, ":8: ") < strstr(errs_text, ":9: "));
	CHECK(cfg.pools == NULL && cfg.vips == NULL); /* freed on failure */
	config_free(&cfg);
}

static void test_files(void)
{
	struct config cfg, zero = {0};

	CHECK_EQ(config_load("/nonexistent/snatproxy.ini", &cfg, stderr), -ENOENT);
	config_free(&cfg);
	CHECK_EQ(config_load("/", &cfg, stderr), -EISDIR);
	config_free(&cfg);
	config_free(&zero);
	config_free(&zero);
}

static void test_durations(void)
{
	static const struct {
		const char *s;
		int ok;
		uint64_t ms;
	} cases[] = {
	    {"0", 1, 0},
	    {"0s", 1, 0},
	    {"500ms", 1, 500},
	    {"2s", 1, 2000},
	    {"30m", 1, 1800000},
	    {"1h", 1, 3600000},
	    {"1d", 1, 86400000},
	    {"18446744073709551615ms", 1, UINT64_MAX},
	    {"18446744073709551616ms", 0, 0},
	    {"213503982335d", 0, 0},
	    {"5", 0, 0},
	    {"", 0, 0},
	    {"s", 0, 0},
	    {"-1s", 0, 0},
	    {"+1s", 0, 0},
	    {"1.5s", 0, 0},
	    {"1 s", 0, 0},
	    {" 1s", 0, 0},
	    {"1S", 0, 0},
	    {"1sec", 0, 0},
	    {"1w", 0, 0},
	    {"1s2", 0, 0},
	    {"0x10s", 0, 0},
	};
	uint64_t ms;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ms = 12345;
		int ret = config_parse_duration(cases[i].s, &ms);
		if (cases[i].ok ? ret != 0 || ms != cases[i].ms : ret != -EINVAL) {
			fprintf(stderr, "duration '%s': ret %d ms %llu\n", cases[i].s, ret,
				(unsigned long long)ms);
			unit_failures++;
		}
	}
}

static void test_sizes(void)
{
	static const struct {
		const char *s;
		int ok;
		uint64_t bytes;
	} cases[] = {
	    {"0", 1, 0},
	    {"16384", 1, 16384},
	    {"16k", 1, 16384},
	    {"16K", 1, 16384},
	    {"1m", 1, 1048576},
	    {"1M", 1, 1048576},
	    {"17592186044415m", 1, 17592186044415ULL << 20},
	    {"17592186044416m", 0, 0},
	    {"", 0, 0},
	    {"k", 0, 0},
	    {"16kb", 0, 0},
	    {"1g", 0, 0},
	    {"-16k", 0, 0},
	    {"16 k", 0, 0},
	    {"1.5k", 0, 0},
	};
	uint64_t b;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		b = 12345;
		int ret = config_parse_size(cases[i].s, &b);
		if (cases[i].ok ? ret != 0 || b != cases[i].bytes : ret != -EINVAL) {
			fprintf(stderr, "size '%s': ret %d bytes %llu\n", cases[i].s, ret,
				(unsigned long long)b);
			unit_failures++;
		}
	}
}

/* admin, access_log, log_format, user: values, defaults and refusals. */
static void test_ops_keys(void)
{
	struct config cfg;

	CHECK_EQ(load(POOL_OK VIP_OK, &cfg), 0);
	CHECK_EQ(cfg.admin.ss_family, 0);
	CHECK_EQ(cfg.access_log[0], '\0');
	CHECK_EQ(cfg.log_format, CONFIG_LOG_TEXT);
	CHECK_EQ(cfg.user[0], '\0');
	config_free(&cfg);
	CHECK_EQ(load("[global]\nadmin = 127.0.0.1:9900\naccess_log = /var/log/sp.log\n"
		      "log_format = json\nuser = nobody\n" POOL_OK VIP_OK,
		      &cfg),
		 0);
	CHECK_EQ(cfg.admin.ss_family, AF_INET);
	CHECK_EQ(addr_port((struct sockaddr *)&cfg.admin), 9900);
	CHECK(strcmp(cfg.access_log, "/var/log/sp.log") == 0);
	CHECK_EQ(cfg.log_format, CONFIG_LOG_JSON);
	CHECK(strcmp(cfg.user, "nobody") == 0);
	config_free(&cfg);
	CHECK_EQ(load("[global]\nadmin = 127.0.0.1\naccess_log = log.txt\nlog_format = xml\n"
		      "user = a b\n" POOL_OK VIP_OK,
		      &cfg),
		 -EINVAL);
	CHECK(strstr(errs_text, ":2: bad value for 'admin'") != NULL);
	CHECK(strstr(errs_text, ":3: bad value for 'access_log'") != NULL);
	CHECK(strstr(errs_text, ":4: bad value for 'log_format'") != NULL);
	CHECK(strstr(errs_text, ":5: bad value for 'user'") != NULL);
}

/* fail_timeout: 10s by default, 0 allowed (off), at most 1h. */
static void test_fail_timeout(void)
{
	struct config cfg;

	CHECK_EQ(load(POOL_OK VIP_OK, &cfg), 0);
	CHECK_EQ(cfg.npools == 1 ? cfg.pools[0].fail_timeout_ms : 1, 10000);
	config_free(&cfg);
	CHECK_EQ(load(POOL_OK "fail_timeout = 0\n" VIP_OK, &cfg), 0);
	CHECK_EQ(cfg.npools == 1 ? cfg.pools[0].fail_timeout_ms : 1, 0);
	config_free(&cfg);
	CHECK_EQ(load(POOL_OK "fail_timeout = 1500ms\n" VIP_OK, &cfg), 0);
	CHECK_EQ(cfg.npools == 1 ? cfg.pools[0].fail_timeout_ms : 1, 1500);
	config_free(&cfg);
	EXPECT_ERROR(POOL_OK "fail_timeout = 2h\n" VIP_OK, 3, "bad value for 'fail_timeout'");
	EXPECT_ERROR(POOL_OK "fail_timeout = 10\n" VIP_OK, 3, "got '10'");
}

/* An admin endpoint on a VIP's address and port could never be bound. */
static void test_admin_clash(void)
{
	struct config cfg;

	EXPECT_ERROR("[global]\nadmin = 198.18.0.10:444\n" POOL_OK VIP_OK, 2,
		     "admin 198.18.0.10:444 clashes with listen 198.18.0.10:444 of vip v (line 5)");
	EXPECT_ERROR("[global]\nadmin = 0.0.0.0:444\n" POOL_OK VIP_OK, 2, "clashes with listen");
	EXPECT_ERROR("[global]\nadmin = [::]:444\n" POOL_OK VIP_OK, 2, "clashes with listen");
	/* Another port, or another address on the same port, binds. */
	CHECK_EQ(load("[global]\nadmin = 198.18.0.10:445\n" POOL_OK VIP_OK, &cfg), 0);
	config_free(&cfg);
	CHECK_EQ(load("[global]\nadmin = 127.0.0.1:444\n" POOL_OK VIP_OK, &cfg), 0);
	config_free(&cfg);
}

/* What config_load_host asks this machine, and only when asked. */
static void test_host_checks(void)
{
	static const char text[] = "[global]\nuser = no_such_user\n"
				   "access_log = /nonexistent/dir/a.log\n" POOL_OK VIP_OK
				   "snat = 127.0.0.20 198.18.0.20\n";
	struct config cfg;

	CHECK_EQ(load(text, &cfg), 0);
	config_free(&cfg);
	CHECK_EQ(load_host(text, &cfg, CONFIG_HOST_ALL), -EINVAL);
	CHECK_EQ(count_lines(errs_text), 3);
	CHECK(strstr(errs_text, ":2: user no_such_user: no such user on this host\n") != NULL);
	CHECK(strstr(errs_text, ":3: access_log /nonexistent/dir/a.log: cannot be created: "
				"directory /nonexistent/dir: No such file or directory\n") != NULL);
	CHECK(strstr(errs_text, ":9: vip v: snat address 198.18.0.20 is not an address of this "
				"host") != NULL);
	CHECK_EQ(load_host(text, &cfg, CONFIG_HOST_SNAT), -EINVAL);
	CHECK_EQ(count_lines(errs_text), 1);
	CHECK_EQ(load_host("[global]\nuser = root\naccess_log = /dev/null\n" POOL_OK VIP_OK
			   "snat = 127.0.0.20 ::1\n",
			   &cfg, CONFIG_HOST_ALL),
		 0);
	config_free(&cfg);
}

static void test_print_keys(void)
{
	static const char *const keys[] = {
	    "workers",
	    "max_connections",
	    "grace",
	    "buffer_size",
	    "buffers",
	    "log_connections",
	    "balance",
	    "server",
	    "listen",
	    "pool",
	    "snat",
	    "timeout_connect",
	    "timeout_idle",
	    "admin",
	    "access_log",
	    "log_format",
	    "user",
	    "check",
	    "check_port",
	    "check_path",
	    "check_method",
	    "check_host",
	    "check_expect",
	    "check_body",
	    "check_interval",
	    "check_timeout",
	    "check_rise",
	    "check_fall",
	    "check_cert",
	    "check_key",
	    "check_ca",
	    "fail_timeout",
	    "tls",
	    "route",
	    "tls_cert",
	    "tls_key",
	    "tls_client_ca",
	    "server_tls",
	    "server_cert",
	    "server_key",
	    "server_ca",
	    "admin_token_file",
	    "check_source",
	    "server_name",
	    "tls_min_version",
	    "tls_max_version",
	    "tls_ciphers",
	    "tls_ciphersuites",
	    "tls_alpn",
	    "drain_delay",
	};
	char *out = NULL, name[64];
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	config_print_keys(f);
	fclose(f);
	CHECK_EQ(count_lines(out), 2 + (int)(sizeof(keys) / sizeof(keys[0])));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(name, sizeof(name), "| `%s` |", keys[i]);
		CHECK(strstr(out, name) != NULL);
	}
	CHECK(strstr(out, "| `[global]` | `workers` | `auto` | ") != NULL);
	CHECK(strstr(out, "| `[vip NAME]` | `timeout_idle` | `30m` | ") != NULL);
	CHECK(strstr(out, "| `[pool NAME]` | `server` | (required) | ") != NULL);
	/* Bounds and names come from each key's row: none left unfilled. */
	CHECK(strchr(out, '{') == NULL && strchr(out, '}') == NULL);
	CHECK(strstr(out, "auto (one per CPU) or 1..64.") != NULL);
	CHECK(strstr(out, "a power of two from 4k to 1m.") != NULL);
	CHECK(strstr(out, "a power of two from 64 to 65536.") != NULL);
	CHECK(strstr(out, "(10ms..1d)") != NULL);
	CHECK(strstr(out, "(0: never; at most 365d)") != NULL);
	CHECK(strstr(out, "connection: on or off.") != NULL);
	CHECK(strstr(out, "GET, HEAD or POST (with an empty body)") != NULL);
	free(out);
}

/* The generic setters: a value and a refusal per kind of key, the refusal
 * saying the bounds or names of the key's row. */
static void test_key_kinds(void)
{
	struct config cfg;
	int ret;

	ret = load("[global]\nworkers = auto\nbuffer_size = 1M\nbuffers = 65536\n"
		   "log_format = json\n[pool p]\nserver = a 198.18.0.11:80\n"
		   "check = https\ncheck_port = 00\n"
		   "fail_timeout = 0\ncheck_body = up and running\ncheck_cert = /c.pem\n"
		   "check_method = HEAD\n" VIP_OK "server_tls = off\ntls = route\n"
		   "server_ca = none\ntimeout_idle = 365d\n",
		   &cfg);
	CHECK_EQ(ret, 0);
	if (ret == 0) {
		CHECK_EQ(cfg.workers, 0);
		CHECK_EQ(cfg.buffer_size, 1 << 20);
		CHECK_EQ(cfg.buffers, 65536);
		CHECK_EQ(cfg.log_format, CONFIG_LOG_JSON);
		CHECK_EQ(cfg.pools[0].check.type, CONFIG_CHECK_HTTPS);
		CHECK_EQ(cfg.pools[0].check.line, 8);
		CHECK_EQ(cfg.pools[0].check.port, 0);
		CHECK_EQ(cfg.pools[0].fail_timeout_ms, 0);
		CHECK(strcmp(cfg.pools[0].check.body, "up and running") == 0);
		CHECK(strcmp(cfg.pools[0].check.cert, "/c.pem") == 0);
		CHECK_EQ(cfg.pools[0].check.cert_line, 12);
		CHECK_EQ(cfg.pools[0].check.method, CONFIG_METHOD_HEAD);
		CHECK_EQ(cfg.vips[0].server_tls, false);
		CHECK_EQ(cfg.vips[0].tls, CONFIG_TLS_ROUTE);
		CHECK_EQ(cfg.vips[0].tls_line, 18);
		CHECK_EQ(cfg.vips[0].pool_line, 16);
		CHECK_EQ(cfg.vips[0].tls_min, 2); /* the default, from no line */
		CHECK_EQ(cfg.vips[0].tls_min_line, 0);
		CHECK_EQ(cfg.vips[0].timeout_idle_ms, 365 * 24 * 3600 * 1000ULL);
		config_free(&cfg);
	}

	EXPECT_ERROR(
	    "[global]\ngrace = 2d\n" POOL_OK VIP_OK, 2,
	    "bad value for 'grace': expected a duration from 0 to 1d such as 10s, got '2d'");
	EXPECT_ERROR("[global]\nbuffer_size = 3k\n" POOL_OK VIP_OK, 2,
		     "expected a power of two from 4k to 1m such as 16k, got '3k'");
	EXPECT_ERROR("[global]\nbuffers = 100\n" POOL_OK VIP_OK, 2,
		     "expected a power of two from 64 to 65536, got '100'");
	EXPECT_ERROR("[global]\nmax_connections = 0\n" POOL_OK VIP_OK, 2,
		     "expected auto or a number from 1 to 10000000, got '0'");
	EXPECT_ERROR(POOL_OK "check_port = 65536\n" VIP_OK, 3,
		     "bad value for 'check_port': expected a number from 0 to 65535, got '65536'");
	EXPECT_ERROR(POOL_OK "fail_timeout = 61m\n" VIP_OK, 3,
		     "expected 0 or a duration up to 1h such as 10s, got '61m'");
	EXPECT_ERROR(POOL_OK "check_interval = 9ms\n" VIP_OK, 3,
		     "expected a duration from 10ms to 1d such as 2s, got '9ms'");
	EXPECT_ERROR(POOL_OK "check_method = get\n" VIP_OK, 3,
		     "bad value for 'check_method': expected GET, HEAD or POST, got 'get'");
	EXPECT_ERROR(POOL_OK "check_host = a/b\n" VIP_OK, 3,
		     "bad value for 'check_host': expected a host name");
	/* (and "need tls = terminate": a refused value still counts as given) */
	CHECK_EQ(load(POOL_OK VIP_OK "tls_max_version = 1.4\n", &cfg), -EINVAL);
	CHECK(has_error(
	    6, "bad value for 'tls_max_version': expected 1.0, 1.1, 1.2 or 1.3, got '1.4'"));
	EXPECT_ERROR(POOL_OK VIP_OK "server_tls = yes\n", 6,
		     "bad value for 'server_tls': expected on or off, got 'yes'");
	EXPECT_ERROR(POOL_OK VIP_OK "tls_client_ca = \n", 6,
		     "bad value for 'tls_client_ca': expected none or a file name, got ''");
	/* a refused pool still counts as given: no "vip v has no pool" after it */
	EXPECT_ERROR(POOL_OK "[vip v]\nlisten = 198.18.0.10:444\npool = no/pool\n", 5,
		     "bad value for 'pool': expected the name of a [pool NAME]");
}

/* server_name (server option, pool default), check_source, and the TLS
 * front door's values; tls = route so that no certificate is read. */
static void test_names_and_tls(void)
{
	struct config cfg;

	CHECK_EQ(load("[pool p]\nserver = a 198.18.0.11 server_name=a.lab.test\nserver = b "
		      "198.18.0.12\nserver_name = pool.lab.test\ncheck = tcp\ncheck_port = 1\n"
		      "check_source = snat\n" VIP_OK "snat = 198.18.0.10\n",
		      &cfg),
		 0);
	CHECK(strcmp(cfg.pools[0].servers[0].server_name, "a.lab.test") == 0);
	CHECK(strcmp(cfg.pools[0].servers[1].server_name, "pool.lab.test") == 0);
	CHECK_EQ(cfg.pools[0].check.source, CONFIG_SOURCE_SNAT);
	CHECK_EQ(cfg.pools[0].check.source_vip, 0);
	config_free(&cfg);

	CHECK_EQ(load(POOL_OK VIP_OK "tls = route\ntls_alpn = h2\n", &cfg), -EINVAL);
	CHECK(strstr(errs_text, ":7: vip v: tls_min_version, tls_max_version") != NULL);
	CHECK_EQ(load(POOL_OK "server = b 198.18.0.12 server_name=bad/name\n", &cfg), -EINVAL);
	CHECK(strstr(errs_text, ":3: server b: bad server_name") != NULL);
	CHECK_EQ(load(POOL_OK "check_source = 198.18.0.1:80\n" VIP_OK, &cfg), -EINVAL);
	CHECK(strstr(errs_text, ":3: bad value for 'check_source'") != NULL);
	CHECK_EQ(load(POOL_OK VIP_OK "tls_min_version = 1.4\n", &cfg), -EINVAL);
	CHECK(strstr(errs_text, ":6: bad value for 'tls_min_version'") != NULL);
}

int main(void)
{
	test_values();
	test_defaults();
	test_reader();
	test_env();
	test_snat();
	test_errors();
	test_many_errors();
	test_files();
	test_durations();
	test_sizes();
	test_ops_keys();
	test_fail_timeout();
	test_admin_clash();
	test_host_checks();
	test_print_keys();
	test_key_kinds();
	test_names_and_tls();
	free(errs_text);
	return unit_done("test_config");
}
