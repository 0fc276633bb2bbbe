/* config: the INI file, read with inih into struct config.
 *
 * One table (config_keys) lists every key with its section, the kind of
 * value it takes, the field it fills, its bounds or names, its default and
 * its description; a generic setter per kind reads the plain keys (as
 * nginx's ngx_conf_set_*_slot do), and only keys with a syntax of their own
 * (addresses, server and route lines, lists of files) have a parser. A
 * refusal and `snatproxy --keys` both say the row's bounds, so they are
 * written once. Defaults are applied by running a key's setter on its
 * default text, so a default can never be a value the setter would refuse,
 * and `snatproxy --keys` prints the same table docs/configuration.md holds.
 *
 * Debian's inih gives its handler no line number, cuts lines longer than its
 * buffer into pieces, and keeps only 50 bytes of a section name. So we feed
 * it through our own reader: the reader counts lines, refuses long ones,
 * reports lines inih would reject silently, and opens sections itself; the
 * handler only sees key = value pairs, and reads the line and the section
 * from the loader. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"
#include "privs.h"
#include "snat.h"
#include "tls.h"

#define CONFIG_SNAT_MAX 64
#define CONFIG_KEYS_MAX 64
#define MS_PER_DAY      (24ULL * 3600 * 1000)

enum config_section { SEC_NONE, SEC_GLOBAL, SEC_POOL, SEC_VIP, SEC_SKIP };

struct loader;
typedef int (*config_parser)(struct loader *ld, const char *value);

/* How a key's value is read. All but KT_CUSTOM are read by one generic
 * setter each, from what the key's row says. */
enum config_type {
	KT_CUSTOM,   /* the row's own parse function */
	KT_NUM,      /* digits: a count or a port */
	KT_SIZE,     /* bytes: 16384, 16k, 1m */
	KT_DURATION, /* milliseconds: 0, 500ms, 10s, 30m, 1h, 1d */
	KT_ENUM,     /* one of the row's names (on and off among them) */
	KT_STRING,   /* text, accepted by the row's `ok` */
	KT_PATH,     /* a file, relative to the configuration's directory */
};

struct config_enum {
	const char *name;
	int value;
};

/* One row per key: what the setter needs, the default, and the reference
 * text, so that a bound is written once and the error and `--keys` both
 * say it. */
struct config_key {
	enum config_section section;
	const char *name;
	enum config_type type;
	/* The field filled, in struct config ([global]), config_pool or
	 * config_vip, and its size; line_off, when not 0, an int of the same
	 * struct that gets the line the key was given on (0 for the default).
	 * Offset 0 is each struct's path or name, never a line. */
	size_t offset, size, line_off;
	/* KT_NUM, KT_SIZE, KT_DURATION: in units, bytes or ms; KT_CUSTOM: what
	 * its parser enforces, for the description */
	uint64_t min, max;
	bool pow2; /* KT_NUM, KT_SIZE: and a power of two */
	/* KT_NUM, KT_SIZE, KT_DURATION: a word that means 0 (auto), said
	 * before the range; KT_PATH: the word for no file (none) */
	const char *zero;
	const struct config_enum *names; /* KT_ENUM, up to a NULL name */
	bool (*ok)(const char *v);       /* KT_STRING: NULL takes any text */
	const char *expect;              /* KT_STRING: what a refusal asks for */
	config_parser parse;             /* KT_CUSTOM */
	const char *def; /* parsed when the section opens; NULL: the key is required */
	bool repeat;     /* may be given several times in one section */
	/* A markdown table cell (no '|'), where {min}, {max}, {range} and
	 * {values} stand for the row's bounds and names. */
	const char *desc;
};

/* Lines of keys that are checked once the whole file is read. `given` is the
 * first server (pool) or listen (VIP) line, kept even when its value was
 * refused, so that "has no server" does not repeat an error already shown. */
struct later_lines {
	int given;
	int snat;
};

struct config_msg {
	int line, seq;
	bool warn; /* a warning: printed, but the file is still valid */
	char *text;
};

struct loader {
	struct config *cfg;
	const char *path;
	FILE *in, *errs;
	int line, nerrors, nmsgs; /* nmsgs: errors and warnings */
	bool oom;
	unsigned host; /* CONFIG_HOST_* checks of this machine to run */
	enum config_section section;
	int cur;        /* the pool or VIP being read */
	bool after_key; /* inih continues the last key on an indented line */
	int *seen;      /* per key: line it was first given in this section */
	int global_seen[CONFIG_KEYS_MAX], sect_seen[CONFIG_KEYS_MAX];
	bool first;    /* the key's first value in this section */
	bool defaults; /* the values are the table's defaults, not the file's */
	const struct config_key *key;
	char why[384];                       /* a parser's reason for refusing a value */
	struct later_lines *plines, *vlines; /* parallel to cfg->pools, cfg->vips */
	char *buf;
	size_t cap;
	int read_errno;
	struct config_msg *msgs; /* nmsgs of them */
};

static const char *const section_titles[] = {
    [SEC_GLOBAL] = "[global]",
    [SEC_POOL] = "[pool NAME]",
    [SEC_VIP] = "[vip NAME]",
};

/* ---- messages ---- */

/* Messages are kept and printed sorted by line once the file is read: the
 * checks that need the whole file (a pool with no server, a VIP naming a
 * missing pool) then appear among the others, in reading order. */
static void config_note(struct loader *ld, int line, bool warn, const char *fmt, va_list ap)
{
	struct config_msg *grown = realloc(ld->msgs, (size_t)(ld->nmsgs + 1) * sizeof(*grown));
	char *text = NULL;

	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	if (!grown || !text) { /* no memory to keep it: print it now */
		free(text);
		fprintf(ld->errs, "%s:%d: out of memory\n", ld->path, line);
		ld->oom = true;
		return;
	}
	ld->msgs = grown;
	ld->msgs[ld->nmsgs] = (struct config_msg){line, ld->nmsgs, warn, text};
	ld->nmsgs++;
	ld->nerrors += !warn;
}

static void __attribute__((format(printf, 3, 4)))
config_error(struct loader *ld, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	config_note(ld, line, false, fmt, ap);
	va_end(ap);
}

/* Something that works but is likely a mistake: said by -t and at start. */
static void __attribute__((format(printf, 3, 4)))
config_warn(struct loader *ld, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	config_note(ld, line, true, fmt, ap);
	va_end(ap);
}

static int config_msg_cmp(const void *a, const void *b)
{
	const struct config_msg *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void config_flush_errors(struct loader *ld)
{
	if (ld->nmsgs > 0)
		qsort(ld->msgs, (size_t)ld->nmsgs, sizeof(*ld->msgs), config_msg_cmp);
	for (int i = 0; i < ld->nmsgs; i++) {
		fprintf(ld->errs, "%s:%d: %s%s\n", ld->path, ld->msgs[i].line,
			ld->msgs[i].warn ? "warning: " : "", ld->msgs[i].text);
		free(ld->msgs[i].text);
	}
	free(ld->msgs);
	fflush(ld->errs);
}

static int __attribute__((format(printf, 2, 3))) reject(struct loader *ld, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ld->why, sizeof(ld->why), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* The usual refusal: what the key wants, and what it was given. */
static int bad(struct loader *ld, const char *expected, const char *got)
{
	return reject(ld, "bad value for '%s': expected %s, got '%s'", ld->key->name, expected,
		      got);
}

static int out_of_memory(struct loader *ld)
{
	ld->oom = true;
	return reject(ld, "out of memory");
}

/* ---- value syntax ---- */

/* Digits only: no sign, no spaces, no hex. Fails above max. */
static int parse_uint(const char **s, uint64_t max, uint64_t *out)
{
	const char *p = *s;
	uint64_t v = 0;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (max - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*s = p;
	*out = v;
	return 0;
}

static int parse_int_range(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	if (parse_uint(&s, max, out) < 0 || *s != '\0' || *out < min)
		return -EINVAL;
	return 0;
}

int config_parse_duration(const char *s, uint64_t *ms)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", MS_PER_DAY}};
	uint64_t v;

	if (!s || parse_uint(&s, UINT64_MAX, &v) < 0)
		return -EINVAL;
	if (*s == '\0') { /* a bare number means nothing unless it is zero */
		if (v != 0)
			return -EINVAL;
		*ms = 0;
		return 0;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(s, units[i].unit) == 0) {
			if (v > UINT64_MAX / units[i].ms)
				return -EINVAL;
			*ms = v * units[i].ms;
			return 0;
		}
	return -EINVAL;
}

int config_parse_size(const char *s, uint64_t *bytes)
{
	uint64_t v, mult = 1;

	if (!s || parse_uint(&s, UINT64_MAX, &v) < 0)
		return -EINVAL;
	if (*s == 'k' || *s == 'K')
		mult = 1024, s++;
	else if (*s == 'm' || *s == 'M')
		mult = 1024 * 1024, s++;
	if (*s != '\0' || v > UINT64_MAX / mult)
		return -EINVAL;
	*bytes = v * mult;
	return 0;
}

static bool config_name_ok(const char *s)
{
	static const char allowed[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				      "0123456789_.-";
	size_t n = strlen(s);

	return n >= 1 && n < CONFIG_NAME_MAX && strspn(s, allowed) == n;
}

#define NAME_RULE "1..63 characters of A-Z a-z 0-9 _ . -"

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static bool addr_unspecified(const struct sockaddr_storage *ss)
{
	static const struct in6_addr any6 = IN6ADDR_ANY_INIT;

	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	return memcmp(&((const struct sockaddr_in6 *)ss)->sin6_addr, &any6, sizeof(any6)) == 0;
}

/* A file named relative to the configuration file's directory, as an
 * operator reading the file would expect. */
static int parse_file(struct loader *ld, const char *v, char *out, size_t cap, int *line)
{
	const char *slash = strrchr(ld->path, '/');
	int n;

	*line = v[0] ? ld->line : 0;
	if (v[0] == '/' || v[0] == '\0' || !slash)
		n = snprintf(out, cap, "%s", v);
	else
		n = snprintf(out, cap, "%.*s/%s", (int)(slash - ld->path), ld->path, v);
	if (n < 0 || (size_t)n >= cap)
		return reject(ld, "%s: path too long: %zu characters at most", ld->key->name,
			      cap - 1);
	return 0;
}

/* ---- [global] ---- */

static int parse_admin(struct loader *ld, const char *v)
{
	memset(&ld->cfg->admin, 0, sizeof(ld->cfg->admin));
	if (strcmp(v, "off") == 0)
		return 0;
	if (addr_parse(v, ADDR_PORT_REQUIRED, &ld->cfg->admin) < 0)
		return bad(ld, "off or ADDR:PORT such as 127.0.0.1:9900", v);
	return 0;
}

/* RFC 7235's token68: what may follow "Bearer " unquoted. */
static bool token68_ok(const char *t, size_t n)
{
	static const char allowed[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				      "0123456789-._~+/";
	size_t body = strspn(t, allowed);

	return body > 0 && body + strspn(t + body, "=") == n;
}

/* The token is the file's one line. The file is opened without blocking
 * and must be a regular file, so that a FIFO or a device cannot stall the
 * load; its text is never repeated in a message. */
static int read_admin_token(struct loader *ld, const char *path, char *out, size_t cap)
{
	char buf[CONFIG_TOKEN_MAX + 4];
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd < 0)
		return reject(ld, "admin_token_file %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return reject(ld, "admin_token_file %s: not a regular file", path);
	}
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int err = errno;
	close(fd);
	if (n < 0)
		return reject(ld, "admin_token_file %s: %s", path, strerror(err));
	buf[n] = '\0';
	size_t len = strcspn(buf, "\r\n");
	bool one_line =
	    buf[len] == '\0' || strcmp(buf + len, "\n") == 0 || strcmp(buf + len, "\r\n") == 0;
	if ((size_t)n == sizeof(buf) - 1 || !one_line || len < CONFIG_TOKEN_MIN ||
	    len > CONFIG_TOKEN_MAX || !token68_ok(buf, len))
		return reject(ld,
			      "admin_token_file %s: expected one line of %d to %d characters "
			      "A-Z a-z 0-9 - . _ ~ + / (then = only)",
			      path, CONFIG_TOKEN_MIN, CONFIG_TOKEN_MAX);
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		config_warn(ld, ld->line,
			    "admin_token_file %s: other users may read it (mode %03o)", path,
			    (unsigned)(st.st_mode & 0777));
	snprintf(out, cap, "%.*s", (int)len, buf);
	return 0;
}

static int parse_admin_token_file(struct loader *ld, const char *v)
{
	struct config *cfg = ld->cfg;

	cfg->admin_token[0] = '\0';
	cfg->admin_token_file.path[0] = '\0';
	cfg->admin_token_file.line = 0;
	if (strcmp(v, "none") == 0)
		return 0;
	if (*v == '\0')
		return bad(ld, "none or a file name", v);
	if (parse_file(ld, v, cfg->admin_token_file.path, sizeof(cfg->admin_token_file.path),
		       &cfg->admin_token_file.line) < 0)
		return -EINVAL;
	return read_admin_token(ld, cfg->admin_token_file.path, cfg->admin_token,
				sizeof(cfg->admin_token));
}

static int parse_access_log(struct loader *ld, const char *v)
{
	char why[sizeof(ld->why)];

	if (strcmp(v, "stderr") == 0)
		v = "";
	else if (v[0] != '/')
		return bad(ld, "stderr or an absolute path", v);
	if (strlen(v) >= sizeof(ld->cfg->access_log))
		return reject(ld, "access_log: path longer than %zu bytes",
			      sizeof(ld->cfg->access_log) - 1);
	snprintf(ld->cfg->access_log, sizeof(ld->cfg->access_log), "%s", v);
	if (v[0] && (ld->host & CONFIG_HOST_ACCESS_LOG) &&
	    log_access_check(v, why, sizeof(why)) < 0)
		return reject(ld, "%s", why);
	return 0;
}

/* Whether the user exists is a fact of the machine: checked with
 * CONFIG_HOST_USER (the start and -t), not by a plain load. */
static int parse_user(struct loader *ld, const char *v)
{
	char why[sizeof(ld->why)];

	if (strcmp(v, "none") == 0)
		v = "";
	else if (!config_name_ok(v))
		return bad(ld, "none or a user name (" NAME_RULE ")", v);
	snprintf(ld->cfg->user, sizeof(ld->cfg->user), "%s", v);
	if (v[0] && (ld->host & CONFIG_HOST_USER) && privs_check_user(v, why, sizeof(why)) < 0)
		return reject(ld, "%s", why);
	return 0;
}

/* ---- [pool NAME] ---- */

static struct config_pool *cur_pool(struct loader *ld)
{
	return &ld->cfg->pools[ld->cur];
}

/* A name to send as SNI and verify: a host name, or an IP address (checked
 * as one, and sent as no SNI). */
static bool server_name_ok(const char *s)
{
	static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				      "0123456789-_.:";
	size_t n = strlen(s);

	return n >= 1 && n < CONFIG_SNI_MAX && strspn(s, allowed) == n && s[0] != '.' &&
	       !strstr(s, "..");
}

/* "weight=N", "max_conn=N", "server_name=NAME" or "backup" after a server's
 * address. */
static int parse_server_option(struct loader *ld, struct config_server *s, const char *opt,
			       unsigned *given)
{
	uint64_t n;
	unsigned bit;

	if (strncmp(opt, "weight=", 7) == 0) {
		bit = 1;
		if (parse_int_range(opt + 7, 1, 256, &n) < 0)
			return reject(ld, "server %s: bad weight: expected 1..256, got '%s'",
				      s->name, opt + 7);
		s->weight = (int)n;
	} else if (strncmp(opt, "max_conn=", 9) == 0) {
		bit = 2;
		if (parse_int_range(opt + 9, 0, 10000000, &n) < 0)
			return reject(
			    ld,
			    "server %s: bad max_conn: expected 0 (unlimited) to 10000000, "
			    "got '%s'",
			    s->name, opt + 9);
		s->max_conn = (int)n;
	} else if (strcmp(opt, "backup") == 0) {
		bit = 4;
		s->backup = true;
	} else if (strncmp(opt, "server_name=", 12) == 0) {
		bit = 8;
		if (!server_name_ok(opt + 12))
			return reject(ld,
				      "server %s: bad server_name: expected a host name or an "
				      "address, got '%s'",
				      s->name, opt + 12);
		snprintf(s->server_name, sizeof(s->server_name), "%s", opt + 12);
	} else {
		return reject(ld,
			      "server %s: unknown option '%s': expected weight=N, max_conn=N, "
			      "server_name=NAME or backup",
			      s->name, opt);
	}
	if (*given & bit)
		return reject(ld, "server %s: option '%s' given twice", s->name, opt);
	*given |= bit;
	return 0;
}

/* Fills *s from "NAME ADDR[:PORT] [options]"; the pool is not touched. */
static int parse_server_line(struct loader *ld, const char *v, struct config_server *s)
{
	char text[512], *save = NULL;
	unsigned given = 0;

	snprintf(text, sizeof(text), "%s", v);
	char *name = strtok_r(text, " \t", &save);
	char *addr = name ? strtok_r(NULL, " \t", &save) : NULL;
	if (!addr)
		return bad(
		    ld, "NAME ADDR[:PORT] [weight=N] [max_conn=N] [server_name=NAME] [backup]", v);
	if (!config_name_ok(name))
		return reject(ld, "bad server name '%s': expected " NAME_RULE, name);
	snprintf(s->name, sizeof(s->name), "%s", name);
	if (addr_parse(addr, ADDR_PORT_OPTIONAL, &s->addr) < 0 || addr_unspecified(&s->addr))
		return reject(ld,
			      "server %s: bad address: expected IPv4 or [IPv6], with an "
			      "optional :PORT (1..65535), got '%s'",
			      name, addr);
	s->weight = 1;
	s->line = ld->line;
	for (char *opt; (opt = strtok_r(NULL, " \t", &save));)
		if (parse_server_option(ld, s, opt, &given) < 0)
			return -EINVAL;
	return 0;
}

static int parse_server(struct loader *ld, const char *v)
{
	struct config_pool *p = cur_pool(ld);
	struct config_server s = {0};

	if (!ld->plines[ld->cur].given)
		ld->plines[ld->cur].given = ld->line;
	if (parse_server_line(ld, v, &s) < 0)
		return -EINVAL;
	for (int i = 0; i < p->nservers; i++)
		if (strcmp(p->servers[i].name, s.name) == 0)
			return reject(ld,
				      "duplicate server name '%s' in pool %s (first on line %d)",
				      s.name, p->name, p->servers[i].line);
	struct config_server *grown = realloc(p->servers, (size_t)(p->nservers + 1) * sizeof(s));
	if (!grown)
		return out_of_memory(ld);
	p->servers = grown;
	p->servers[p->nservers++] = s;
	return 0;
}

/* ---- [pool NAME]: health checks ---- */

static struct config_check *cur_check(struct loader *ld)
{
	return &cur_pool(ld)->check;
}

/* Text that goes into a request line or header: no spaces or controls in a
 * path, no controls in a host, so that a check cannot send a broken request. */
static bool config_printable(const char *v, bool spaces)
{
	for (; *v; v++)
		if ((unsigned char)*v < 0x21 || *v == 0x7f)
			if (!(spaces && *v == ' '))
				return false;
	return true;
}

/* "200-299,405": codes from 100 to 599, ranges low-high. */
static int parse_check_expect(struct loader *ld, const char *v)
{
	struct config_check *c = cur_check(ld);
	const char *p = v;
	uint64_t lo, hi;

	c->nexpect = 0;
	for (;;) {
		if (parse_uint(&p, 999, &lo) < 0)
			break;
		hi = lo;
		if (*p == '-') {
			p++;
			if (parse_uint(&p, 999, &hi) < 0)
				break;
		}
		if (lo < 100 || hi > 599 || hi < lo)
			break;
		if (c->nexpect >= CONFIG_EXPECT_MAX)
			return reject(ld, "check_expect: at most %d codes or ranges",
				      CONFIG_EXPECT_MAX);
		c->expect[c->nexpect].lo = (uint16_t)lo;
		c->expect[c->nexpect++].hi = (uint16_t)hi;
		if (*p == '\0')
			return 0;
		if (*p++ != ',')
			break;
	}
	return bad(
	    ld, "status codes (100..599) and ranges separated by commas, such as 200-299,405", v);
}

/* Whether the address is this host's is checked with CONFIG_HOST_SNAT, as
 * snat's; which family the servers need, once the pool is read whole. */
static int parse_check_source(struct loader *ld, const char *v)
{
	struct config_check *c = cur_check(ld);
	int ret;

	c->source_line = ld->defaults ? 0 : ld->line;
	c->source_vip = -1;
	memset(&c->source_addr, 0, sizeof(c->source_addr));
	if (strcmp(v, "auto") == 0) {
		c->source = CONFIG_SOURCE_AUTO;
		return 0;
	}
	if (strcmp(v, "snat") == 0) {
		c->source = CONFIG_SOURCE_SNAT;
		return 0;
	}
	if (addr_parse(v, ADDR_PORT_NONE, &c->source_addr) < 0 || addr_unspecified(&c->source_addr))
		return bad(ld, "auto, snat or an IPv4 or IPv6 address without a port", v);
	c->source = CONFIG_SOURCE_ADDR;
	if ((ld->host & CONFIG_HOST_SNAT) &&
	    (ret = snat_check_addr((const struct sockaddr *)&c->source_addr)) < 0)
		return reject(ld, "check_source %s cannot be bound: %s%s", v, strerror(-ret),
			      ret == -EADDRNOTAVAIL ? " (not an address of this host)" : "");
	return 0;
}

/* ---- [vip NAME] ---- */

static struct config_vip *cur_vip(struct loader *ld)
{
	return &ld->cfg->vips[ld->cur];
}

/* Two sockets cannot listen on one address: say which VIP has it already. */
static const struct config_vip *listen_owner(const struct config *cfg,
					     const struct sockaddr_storage *a)
{
	for (int i = 0; i < cfg->nvips; i++)
		for (int j = 0; j < cfg->vips[i].nlisten; j++)
			if (addr_equal((const struct sockaddr *)&cfg->vips[i].listen[j],
				       (const struct sockaddr *)a))
				return &cfg->vips[i];
	return NULL;
}

static int parse_listen(struct loader *ld, const char *v)
{
	struct config_vip *vip = cur_vip(ld);
	struct sockaddr_storage a;
	char buf[ADDR_STRLEN];

	if (!ld->vlines[ld->cur].given)
		ld->vlines[ld->cur].given = ld->line;
	if (addr_parse(v, ADDR_PORT_REQUIRED, &a) < 0)
		return bad(ld, "ADDR:PORT (IPv4) or [IPv6]:PORT with a port from 1 to 65535", v);
	const struct config_vip *owner = listen_owner(ld->cfg, &a);
	if (owner == vip)
		return reject(ld, "listen %s is given twice in vip %s",
			      addr_format((struct sockaddr *)&a, buf, sizeof(buf)), vip->name);
	if (owner)
		return reject(ld, "listen %s is already used by vip %s (line %d)",
			      addr_format((struct sockaddr *)&a, buf, sizeof(buf)), owner->name,
			      owner->line);
	struct sockaddr_storage *grown =
	    realloc(vip->listen, (size_t)(vip->nlisten + 1) * sizeof(a));
	if (!grown)
		return out_of_memory(ld);
	vip->listen = grown;
	vip->listen[vip->nlisten++] = a;
	return 0;
}

/* Otherwise every connection from ADDR would end in internal-error. The
 * address is kept: the error is its own, and the family checks still see it. */
static void snat_check_host(struct loader *ld, const struct config_vip *vip,
			    const struct sockaddr_storage *a, const char *tok)
{
	int ret = snat_check_addr((const struct sockaddr *)a);

	if (ret == -EADDRNOTAVAIL)
		config_error(ld, ld->line,
			     "vip %s: snat address %s is not an address of this host (bind: %s)",
			     vip->name, tok, strerror(-ret));
	else if (ret < 0)
		config_error(ld, ld->line, "vip %s: snat address %s cannot be bound: %s", vip->name,
			     tok, strerror(-ret));
}

static int snat_add(struct loader *ld, struct config_vip *vip, const char *tok)
{
	struct sockaddr_storage a;

	if (addr_parse(tok, ADDR_PORT_NONE, &a) < 0 || addr_unspecified(&a))
		return reject(ld,
			      "bad value for 'snat': expected auto, off or IPv4/IPv6 addresses "
			      "without ports, got '%s'",
			      tok);
	for (int i = 0; i < vip->nsnat; i++)
		if (addr_equal((struct sockaddr *)&vip->snat_addrs[i], (struct sockaddr *)&a))
			return reject(ld, "snat address %s is given twice", tok);
	if (vip->nsnat >= CONFIG_SNAT_MAX)
		return reject(ld, "snat: at most %d addresses per vip", CONFIG_SNAT_MAX);
	struct sockaddr_storage *grown =
	    realloc(vip->snat_addrs, (size_t)(vip->nsnat + 1) * sizeof(a));
	if (!grown)
		return out_of_memory(ld);
	vip->snat_addrs = grown;
	vip->snat_addrs[vip->nsnat++] = a;
	vip->snat = CONFIG_SNAT_POOL;
	if (ld->host & CONFIG_HOST_SNAT)
		snat_check_host(ld, vip, &a, tok);
	return 0;
}

/* Addresses may be spread over several snat lines (or indented continuation
 * lines), since 64 of them do not fit in one line; auto and off stand alone. */
static int parse_snat(struct loader *ld, const char *v)
{
	struct config_vip *vip = cur_vip(ld);
	char text[512], *save = NULL;
	bool keyword = strcmp(v, "auto") == 0 || strcmp(v, "off") == 0;

	if (ld->first) {
		free(vip->snat_addrs);
		vip->snat_addrs = NULL;
		vip->nsnat = 0;
		vip->snat = CONFIG_SNAT_AUTO;
		ld->vlines[ld->cur].snat = ld->line;
	} else if (keyword || vip->snat != CONFIG_SNAT_POOL) {
		return reject(ld, "snat: auto or off must be the only snat value of vip %s",
			      vip->name);
	}
	if (keyword) {
		vip->snat = v[1] == 'u' ? CONFIG_SNAT_AUTO : CONFIG_SNAT_OFF;
		return 0;
	}
	snprintf(text, sizeof(text), "%s", v);
	char *tok = strtok_r(text, " \t", &save);
	if (!tok)
		return bad(ld, "auto, off or addresses", v);
	for (; tok; tok = strtok_r(NULL, " \t", &save)) {
		if (strcmp(tok, "auto") == 0 || strcmp(tok, "off") == 0)
			return reject(ld, "snat: %s cannot be mixed with addresses", tok);
		if (snat_add(ld, vip, tok) < 0)
			return -EINVAL;
	}
	return 0;
}

/* A host name as a client sends it in its SNI, or "*." and one. */
static bool sni_pattern_ok(const char *s)
{
	static const char allowed[] = "abcdefghijklmnopqrstuvwxyz0123456789-_.";
	size_t n = strlen(s);

	if (s[0] == '*' && s[1] == '.')
		s += 2, n -= 2;
	return n >= 1 && n < CONFIG_SNI_MAX && strspn(s, allowed) == n && s[0] != '.' &&
	       s[n - 1] != '.' && !strstr(s, "..");
}

static int parse_route(struct loader *ld, const char *v)
{
	struct config_vip *vip = cur_vip(ld);
	struct config_route rt = {.pool = -1, .line = ld->line};
	char text[512], *save = NULL;

	if (strcmp(v, "none") == 0) /* the default: no route */
		return 0;
	snprintf(text, sizeof(text), "%s", v);
	char *sni = strtok_r(text, " \t", &save);
	char *pool = sni ? strtok_r(NULL, " \t", &save) : NULL;
	if (!pool || strtok_r(NULL, " \t", &save))
		return bad(ld, "SNI POOL, such as 'pool01.lab.test frontends'", v);
	for (char *p = sni; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	if (!sni_pattern_ok(sni))
		return reject(ld, "route: bad server name '%s': expected a host name or *.domain",
			      sni);
	if (!config_name_ok(pool))
		return reject(ld, "route %s: bad pool name '%s': expected " NAME_RULE, sni, pool);
	for (int i = 0; i < vip->nroutes; i++)
		if (strcmp(vip->routes[i].sni, sni) == 0)
			return reject(ld, "route %s is given twice in vip %s (first on line %d)",
				      sni, vip->name, vip->routes[i].line);
	snprintf(rt.sni, sizeof(rt.sni), "%s", sni);
	snprintf(rt.pool_name, sizeof(rt.pool_name), "%s", pool);
	struct config_route *grown = realloc(vip->routes, (size_t)(vip->nroutes + 1) * sizeof(rt));
	if (!grown)
		return out_of_memory(ld);
	vip->routes = grown;
	vip->routes[vip->nroutes++] = rt;
	return 0;
}

/* tls_cert and the like: a file, resolved like check_cert. */
static int parse_tls_file(struct loader *ld, const char *v, struct config_file *f)
{
	if (*v == '\0')
		return bad(ld, "a file name", v);
	return parse_file(ld, v, f->path, sizeof(f->path), &f->line);
}

/* One more file in a list of them (tls_cert, tls_key). */
static int parse_file_list(struct loader *ld, const char *v, struct config_file **list, int *n)
{
	struct config_file f;

	if (strcmp(v, "none") == 0)
		return 0;
	if (parse_tls_file(ld, v, &f) < 0)
		return -EINVAL;
	struct config_file *grown = realloc(*list, (size_t)(*n + 1) * sizeof(f));
	if (!grown)
		return out_of_memory(ld);
	*list = grown;
	(*list)[(*n)++] = f;
	return 0;
}

static int parse_tls_cert(struct loader *ld, const char *v)
{
	return parse_file_list(ld, v, &cur_vip(ld)->certs, &cur_vip(ld)->ncerts);
}

static int parse_tls_key(struct loader *ld, const char *v)
{
	return parse_file_list(ld, v, &cur_vip(ld)->keys, &cur_vip(ld)->nkeys);
}

/* ---- [vip NAME]: what the TLS front door accepts ---- */

/* The line a key was given on, 0 for its default. */
static int given_line(const struct loader *ld)
{
	return ld->defaults ? 0 : ld->line;
}

/* "h2,http/1.1" into ALPN's wire format: each name after its length. */
static int parse_tls_alpn(struct loader *ld, const char *v)
{
	struct config_vip *vip = cur_vip(ld);
	const char *p = v;
	int n = 0;

	vip->tls_alpn_line = given_line(ld);
	vip->tls_alpn_len = 0;
	if (strcmp(v, "none") == 0)
		return 0;
	for (;;) {
		size_t len = strcspn(p, ",");
		if (len == 0 || len > 255 || (size_t)n + 1 + len > sizeof(vip->tls_alpn))
			return bad(
			    ld, "none or protocol names separated by commas, such as h2,http/1.1",
			    v);
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)p[i] < 0x21 || p[i] == 0x7f)
				return bad(ld, "protocol names without spaces, such as h2,http/1.1",
					   v);
		vip->tls_alpn[n++] = (unsigned char)len;
		memcpy(vip->tls_alpn + n, p, len);
		n += (int)len;
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	vip->tls_alpn_len = n;
	return 0;
}

/* ---- generic setters: a key's row says how its value is read ---- */

static const struct config_enum on_off[] = {{"on", true}, {"off", false}, {NULL, 0}};

static bool check_path_ok(const char *v)
{
	return v[0] == '/' && config_printable(v, false);
}

static bool check_host_ok(const char *v)
{
	return config_printable(v, false) && !strchr(v, '/');
}

static bool server_name_or_empty_ok(const char *v)
{
	return *v == '\0' || server_name_ok(v);
}

/* Cipher lists are checked against OpenSSL once the VIP is read whole (the
 * versions decide the security level they are checked at). */
static bool cipher_list_ok(const char *v)
{
	return *v != '\0' && config_printable(v, false);
}

/* A bound as the configuration writes it: 16k, 10ms, 1d. */
static const char *key_value(const struct config_key *k, uint64_t v, char *buf, size_t cap)
{
	static const struct {
		const char *unit;
		uint64_t n;
	} sizes[] = {{"m", 1 << 20}, {"k", 1 << 10}},
	  durations[] = {{"d", MS_PER_DAY}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
	const char *unit = k->type == KT_DURATION ? "ms" : "";
	uint64_t n = v;

	if (v && k->type == KT_SIZE)
		for (size_t i = 0; i < 2 && !unit[0]; i++)
			if (v % sizes[i].n == 0)
				unit = sizes[i].unit, n = v / sizes[i].n;
	if (v && k->type == KT_DURATION)
		for (size_t i = 0; i < 4 && strcmp(unit, "ms") == 0; i++)
			if (v % durations[i].n == 0)
				unit = durations[i].unit, n = v / durations[i].n;
	snprintf(buf, cap, "%llu%s", (unsigned long long)n, v ? unit : "");
	return buf;
}

/* "a, b or c" */
static const char *key_values(const struct config_key *k, char *buf, size_t cap)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; k->names && k->names[i].name && n < cap; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%s",
				      i == 0                 ? ""
				      : k->names[i + 1].name ? ", "
							     : " or ",
				      k->names[i].name);
	return buf;
}

/* What a refusal says the key expects, from its row. */
static const char *key_expect(const struct config_key *k, char *buf, size_t cap)
{
	char lo[32], hi[32];

	switch (k->type) {
	case KT_ENUM:
		return key_values(k, buf, cap);
	case KT_PATH:
		snprintf(buf, cap, "%s%sa file name", k->zero ? k->zero : "",
			 k->zero ? " or " : "");
		return buf;
	case KT_NUM:
	case KT_SIZE:
	case KT_DURATION:
		break;
	default:
		return k->expect ? k->expect : "another value";
	}
	key_value(k, k->min, lo, sizeof(lo));
	key_value(k, k->max, hi, sizeof(hi));
	bool upto = k->zero && k->min == 0; /* "0 or a duration up to 1h" */
	bool example = k->type != KT_NUM && k->def && !(k->zero && strcmp(k->def, k->zero) == 0);
	snprintf(buf, cap, "%s%s%s %s%s%s%s%s%s", k->zero ? k->zero : "", k->zero ? " or " : "",
		 k->pow2                  ? "a power of two"
		 : k->type == KT_DURATION ? "a duration"
		 : k->type == KT_SIZE     ? "a size"
					  : "a number",
		 upto ? "up to " : "from ", upto ? "" : lo, upto ? "" : " to ", hi,
		 example ? " such as " : "", example ? k->def : "");
	return buf;
}

static int key_refuse(struct loader *ld, const char *v)
{
	char buf[256];

	return bad(ld, key_expect(ld->key, buf, sizeof(buf)), v);
}

/* The field at OFF of the struct the key's section fills. */
static void *key_field(struct loader *ld, size_t off)
{
	char *base = ld->key->section == SEC_GLOBAL ? (char *)ld->cfg
		     : ld->key->section == SEC_POOL ? (char *)cur_pool(ld)
						    : (char *)cur_vip(ld);
	return base + off;
}

/* A value too wide for its field, or a field of an odd size, is a bug in
 * the table: refused rather than written past the field. */
static int key_store(struct loader *ld, uint64_t v)
{
	void *p = key_field(ld, ld->key->offset);
	size_t size = ld->key->size;

	if (size < 8 && v >> (size * 8))
		return reject(ld, "%s: %llu does not fit its field", ld->key->name,
			      (unsigned long long)v);
	switch (size) {
	case 1:
		*(uint8_t *)p = (uint8_t)v;
		return 0;
	case 2:
		*(uint16_t *)p = (uint16_t)v;
		return 0;
	case 4:
		*(uint32_t *)p = (uint32_t)v;
		return 0;
	case 8:
		*(uint64_t *)p = v;
		return 0;
	default:
		return reject(ld, "%s: a field of %zu bytes", ld->key->name, size);
	}
}

/* The line is kept even for a value that is refused: the checks made once
 * the file is read then still know the key was given. */
static void key_line(struct loader *ld, int line)
{
	if (ld->key->line_off)
		*(int *)key_field(ld, ld->key->line_off) = line;
}

static int set_number(struct loader *ld, const char *v)
{
	const struct config_key *k = ld->key;
	uint64_t n;
	int ret;

	key_line(ld, given_line(ld));
	if (k->zero && strcmp(v, k->zero) == 0)
		return key_store(ld, 0);
	ret = k->type == KT_DURATION ? config_parse_duration(v, &n)
	      : k->type == KT_SIZE   ? config_parse_size(v, &n)
				     : parse_int_range(v, 0, k->max, &n);
	if (ret < 0 || n < k->min || n > k->max || (k->pow2 && !is_pow2(n)))
		return key_refuse(ld, v);
	return key_store(ld, n);
}

static int set_enum(struct loader *ld, const char *v)
{
	key_line(ld, given_line(ld));
	for (const struct config_enum *e = ld->key->names; e->name; e++)
		if (strcmp(v, e->name) == 0)
			return key_store(ld, (uint64_t)e->value);
	return key_refuse(ld, v);
}

static int set_string(struct loader *ld, const char *v)
{
	const struct config_key *k = ld->key;

	key_line(ld, given_line(ld));
	if ((k->ok && !k->ok(v)) || strlen(v) >= k->size)
		return key_refuse(ld, v);
	memcpy(key_field(ld, k->offset), v, strlen(v) + 1);
	return 0;
}

static int set_path(struct loader *ld, const char *v)
{
	const struct config_key *k = ld->key;
	int line, ret;

	if (k->zero && strcmp(v, k->zero) == 0)
		v = "";
	else if (k->zero && *v == '\0')
		return key_refuse(ld, v);
	ret = parse_file(ld, v, key_field(ld, k->offset), k->size, &line);
	key_line(ld, line);
	return ret;
}

static int key_set(struct loader *ld, const char *v)
{
	switch (ld->key->type) {
	case KT_NUM:
	case KT_SIZE:
	case KT_DURATION:
		return set_number(ld, v);
	case KT_ENUM:
		return set_enum(ld, v);
	case KT_STRING:
		return set_string(ld, v);
	case KT_PATH:
		return set_path(ld, v);
	default:
		return ld->key->parse(ld, v);
	}
}

/* ---- the keys ---- */

#define FIELD(type, f)     .offset = offsetof(type, f), .size = sizeof(((type *)0)->f)
#define GLOBAL(f)          FIELD(struct config, f)
#define POOL(f)            FIELD(struct config_pool, f)
#define VIP(f)             FIELD(struct config_vip, f)
#define LINE(type, f)      .line_off = offsetof(type, f)
#define NUMBER(lo, hi)     KT_NUM, .min = (lo), .max = (hi)
#define DURATION(lo, hi)   KT_DURATION, .min = (lo), .max = (hi)
#define ENUM(list)         KT_ENUM, .names = (list)
#define STRING(check, exp) KT_STRING, .ok = (check), .expect = (exp)
#define CUSTOM(fn)         KT_CUSTOM, .parse = (fn)

static const struct config_enum log_formats[] = {
    {"text", CONFIG_LOG_TEXT}, {"json", CONFIG_LOG_JSON}, {NULL, 0}};
static const struct config_enum balances[] = {{"roundrobin", CONFIG_BALANCE_ROUNDROBIN},
					      {"leastconn", CONFIG_BALANCE_LEASTCONN},
					      {"source", CONFIG_BALANCE_SOURCE},
					      {NULL, 0}};
static const struct config_enum check_types[] = {{"none", CONFIG_CHECK_NONE},
						 {"tcp", CONFIG_CHECK_TCP},
						 {"http", CONFIG_CHECK_HTTP},
						 {"https", CONFIG_CHECK_HTTPS},
						 {NULL, 0}};
static const struct config_enum check_methods[] = {{"GET", CONFIG_METHOD_GET},
						   {"HEAD", CONFIG_METHOD_HEAD},
						   {"POST", CONFIG_METHOD_POST},
						   {NULL, 0}};
static const struct config_enum tls_modes[] = {{"off", CONFIG_TLS_OFF},
					       {"terminate", CONFIG_TLS_TERMINATE},
					       {"route", CONFIG_TLS_ROUTE},
					       {NULL, 0}};
/* TLS 1.x, as tls_min and tls_max count them */
static const struct config_enum tls_versions[] = {
    {"1.0", 0}, {"1.1", 1}, {"1.2", 2}, {"1.3", 3}, {NULL, 0}};

/* Descriptions end up in a markdown table: no '|' in them. */
static const struct config_key config_keys[] = {
    {SEC_GLOBAL, "workers", NUMBER(1, 64), GLOBAL(workers), .zero = "auto", .def = "auto",
     .desc = "Worker threads, each with its own io_uring and listening sockets: auto (one per "
	     "CPU) or {range}."},
    {SEC_GLOBAL, "max_connections", NUMBER(1, 10000000), GLOBAL(max_connections), .zero = "auto",
     .def = "auto",
     .desc = "Client connections open at once across all VIPs (auto or {range}); auto: what the "
	     "open-file limit holds. At the limit, accepting pauses and new clients wait in the "
	     "kernel's backlog."},
    {SEC_GLOBAL, "grace", DURATION(0, MS_PER_DAY), GLOBAL(grace_ms), .def = "10s",
     .desc = "On SIGTERM or SIGINT, how long open connections may go on before they are closed "
	     "({range})."},
    {SEC_GLOBAL, "drain_delay", DURATION(0, 3600000), GLOBAL(drain_delay_ms), .def = "3s",
     .desc = "On SIGTERM or SIGINT with admin on: how long GET /ready answers 503 while new "
	     "connections are still taken, so keepalived or a BGP daemon moves the VIP first; then "
	     "`grace` ({range})."},
    {SEC_GLOBAL, "buffer_size", KT_SIZE, .min = 4096, .max = 1 << 20, .pow2 = true,
     GLOBAL(buffer_size), .def = "16k",
     .desc = "Bytes per receive buffer: a power of two from {min} to {max}."},
    {SEC_GLOBAL, "buffers", NUMBER(64, 65536), .pow2 = true, GLOBAL(buffers), .def = "4096",
     .desc = "Receive buffers per worker, registered with io_uring: a power of two from {min} to "
	     "{max}."},
    {SEC_GLOBAL, "log_connections", ENUM(on_off), GLOBAL(log_connections), .def = "on",
     .desc = "One log line per finished connection: {values}."},
    {SEC_GLOBAL, "admin", CUSTOM(parse_admin), .def = "off",
     .desc = "`ADDR:PORT` of the HTTP admin endpoint (metrics, status, drain/disable/enable), or "
	     "off. Without admin_token_file, anyone who reaches it can drain servers: keep it on "
	     "loopback."},
    {SEC_GLOBAL, "admin_token_file", CUSTOM(parse_admin_token_file), .min = CONFIG_TOKEN_MIN,
     .max = CONFIG_TOKEN_MAX, .def = "none",
     .desc = "File holding the admin endpoint's bearer token (one line of {range} characters "
	     "A-Z a-z 0-9 - . _ ~ + / =): every request but GET and HEAD needs it, and every "
	     "request when admin is not on loopback. none: no token."},
    {SEC_GLOBAL, "access_log", CUSTOM(parse_access_log), .def = "stderr",
     .desc = "Where the per-connection lines go: stderr or an absolute file path (appended to; "
	     "reopened on SIGUSR1)."},
    {SEC_GLOBAL, "log_format", ENUM(log_formats), GLOBAL(log_format), .def = "text",
     .desc = "Format of the per-connection lines: text (key=value) or json (one object per "
	     "line)."},
    {SEC_GLOBAL, "user", CUSTOM(parse_user), .def = "none",
     .desc = "User to run as once the sockets are bound (its primary group too), or none: keep "
	     "the starting user."},
    {SEC_POOL, "balance", ENUM(balances), POOL(balance), .def = "roundrobin",
     .desc = "How a new connection picks a server: {values} (client address hash); all "
	     "weighted."},
    {SEC_POOL, "server", CUSTOM(parse_server), .def = NULL, .repeat = true,
     .desc = "`NAME ADDR[:PORT] [weight=N] [max_conn=N] [server_name=NAME] [backup]`, "
	     "repeatable; no port: the port the client connected to."},
    {SEC_POOL, "check", ENUM(check_types), POOL(check.type), LINE(struct config_pool, check.line),
     .def = "none",
     .desc = "Health check of each server: none, tcp (connect), http or https (a request, see "
	     "docs/health.md)."},
    {SEC_POOL, "check_port", NUMBER(0, 65535), POOL(check.port),
     LINE(struct config_pool, check.port_line), .def = "0",
     .desc = "Port the checks connect to; 0: the server's own port (required for servers "
	     "without one)."},
    {SEC_POOL, "check_path",
     STRING(check_path_ok,
	    "a path starting with / without spaces, such as /LiveServer/MCUFactory/"),
     POOL(check.path), .def = "/",
     .desc = "Path of the http or https check's request, such as /LiveServer/MCUFactory/."},
    {SEC_POOL, "check_method", ENUM(check_methods), POOL(check.method), .def = "GET",
     .desc = "Method of the http or https check's request: {values} (with an empty body)."},
    {SEC_POOL, "check_host",
     STRING(check_host_ok, "a host name such as pool01.lab.test, without spaces or /"),
     POOL(check.host), .def = "",
     .desc = "Host header and TLS server name (SNI, and the name verified); empty: the server's "
	     "server_name, else its address."},
    {SEC_POOL, "check_expect", CUSTOM(parse_check_expect), .def = "200-399",
     .desc = "Status codes that mean up: codes and ranges separated by commas, such as "
	     "200-299,405."},
    {SEC_POOL, "check_body", STRING(NULL, NULL), POOL(check.body), .def = "",
     .desc = "Text the response body must contain (the response must fit in 16 KiB); empty: "
	     "any body."},
    {SEC_POOL, "check_interval", DURATION(10, MS_PER_DAY), POOL(check.interval_ms), .def = "2s",
     .desc = "Time between the starts of two checks of a server ({range})."},
    {SEC_POOL, "check_timeout", DURATION(1, 3600000), POOL(check.timeout_ms), .def = "1s",
     .desc = "How long one check may take, connect to last byte ({range})."},
    {SEC_POOL, "check_rise", NUMBER(1, 100), POOL(check.rise), .def = "2",
     .desc = "Successful checks in a row that bring a server that is down back up ({range})."},
    {SEC_POOL, "check_fall", NUMBER(1, 100), POOL(check.fall), .def = "3",
     .desc = "Failed checks (or failed client connects) in a row that mark a server down "
	     "({range})."},
    {SEC_POOL, "fail_timeout", DURATION(0, 3600000), POOL(fail_timeout_ms), .zero = "0",
     .def = "10s",
     .desc = "check = none: how long a server that failed check_fall client connects in a row "
	     "is skipped before one connection tries it again; 0: never skipped ({range})."},
    {SEC_POOL, "check_cert", KT_PATH, POOL(check.cert), LINE(struct config_pool, check.cert_line),
     .def = "",
     .desc = "PEM client certificate (and chain) the https check presents, for mutual TLS; "
	     "empty: none."},
    {SEC_POOL, "check_key", KT_PATH, POOL(check.key), LINE(struct config_pool, check.key_line),
     .def = "", .desc = "PEM private key of check_cert; empty: in the check_cert file."},
    {SEC_POOL, "check_ca", KT_PATH, POOL(check.ca), LINE(struct config_pool, check.ca_line),
     .def = "",
     .desc = "PEM CA certificates that verify the servers' chains and names; empty: the "
	     "system's."},
    {SEC_POOL, "check_source", CUSTOM(parse_check_source), .def = "auto",
     .desc = "Source address of the checks: auto (the kernel's choice), snat (the first snat "
	     "address of the server's family of the first VIP using this pool) or an address of "
	     "this host."},
    {SEC_POOL, "server_name",
     STRING(server_name_or_empty_ok, "a host name such as pool01.lab.test, or an address"),
     POOL(server_name), .def = "",
     .desc = "Name sent as SNI and verified in the servers' certificates (server_tls, https "
	     "checks), for servers without their own server_name=; empty: the server's address."},
    {SEC_VIP, "listen", CUSTOM(parse_listen), .def = NULL, .repeat = true,
     .desc = "`ADDR:PORT` or `[IPv6]:PORT` the VIP accepts clients on; repeatable, one port "
	     "each."},
    {SEC_VIP, "pool", STRING(config_name_ok, "the name of a [pool NAME], " NAME_RULE),
     VIP(pool_name), LINE(struct config_vip, pool_line), .def = NULL,
     .desc = "Name of the `[pool NAME]` whose servers take this VIP's connections."},
    {SEC_VIP, "snat", CUSTOM(parse_snat), .max = CONFIG_SNAT_MAX, .def = "auto", .repeat = true,
     .desc = "Source address toward the servers: auto (the route's own), off (the client's, "
	     "transparent) or up to {max} addresses."},
    {SEC_VIP, "timeout_connect", DURATION(1, MS_PER_DAY), VIP(timeout_connect_ms), .def = "5s",
     .desc = "How long a server may take to accept a connection ({range})."},
    {SEC_VIP, "timeout_idle", DURATION(0, 365 * MS_PER_DAY), VIP(timeout_idle_ms), .zero = "0",
     .def = "30m",
     .desc = "Close a connection idle this long in both directions (0: never; at most {max})."},
    {SEC_VIP, "tls", ENUM(tls_modes), VIP(tls), LINE(struct config_vip, tls_line), .def = "off",
     .desc = "off (bytes pass through untouched), terminate (TLS ends at the VIP) or route "
	     "(choose the pool by the ClientHello's SNI, without decrypting)."},
    {SEC_VIP, "route", CUSTOM(parse_route), .def = "none", .repeat = true,
     .desc = "`SNI POOL`, repeatable, with tls = route: clients asking for SNI (a name, or "
	     "`*.domain` for one label) go to POOL; others to `pool`."},
    {SEC_VIP, "tls_cert", CUSTOM(parse_tls_cert), .def = "none", .repeat = true,
     .desc = "tls = terminate: a PEM certificate chain file, repeatable; the one whose names "
	     "match the client's SNI is used, else the first. Needed by terminate."},
    {SEC_VIP, "tls_key", CUSTOM(parse_tls_key), .def = "none", .repeat = true,
     .desc = "The PEM private key of each tls_cert, in the same order."},
    {SEC_VIP, "tls_client_ca", KT_PATH, VIP(client_ca.path),
     LINE(struct config_vip, client_ca.line), .zero = "none", .def = "none",
     .desc = "tls = terminate: PEM CA certificates; when given, clients must present a "
	     "certificate signed by one."},
    {SEC_VIP, "server_tls", ENUM(on_off), VIP(server_tls), LINE(struct config_vip, server_tls_line),
     .def = "off",
     .desc = "on: with tls = terminate, connect to the servers in TLS again, verifying them and "
	     "reusing sessions per server."},
    {SEC_VIP, "server_cert", KT_PATH, VIP(server_cert.path),
     LINE(struct config_vip, server_cert.line), .zero = "none", .def = "none",
     .desc = "server_tls: PEM certificate chain presented to the servers (mutual TLS); with "
	     "server_key."},
    {SEC_VIP, "server_key", KT_PATH, VIP(server_key.path), LINE(struct config_vip, server_key.line),
     .zero = "none", .def = "none", .desc = "server_tls: the PEM private key of server_cert."},
    {SEC_VIP, "server_ca", KT_PATH, VIP(server_ca.path), LINE(struct config_vip, server_ca.line),
     .zero = "none", .def = "none",
     .desc = "server_tls: PEM CA certificates the servers' certificates must chain to; none: the "
	     "system's CAs."},
    {SEC_VIP, "tls_min_version", ENUM(tls_versions), VIP(tls_min),
     LINE(struct config_vip, tls_min_line), .def = "1.2",
     .desc = "tls = terminate: the oldest TLS version clients may use, 1.0 to 1.3; 1.0 and 1.1 "
	     "(OCS 2007-era Windows clients) lower OpenSSL's security level to 0 for this VIP."},
    {SEC_VIP, "tls_max_version", ENUM(tls_versions), VIP(tls_max),
     LINE(struct config_vip, tls_max_line), .def = "1.3",
     .desc = "tls = terminate: the newest TLS version clients may use, 1.0 to 1.3."},
    {SEC_VIP, "tls_ciphers",
     STRING(cipher_list_ok, "an OpenSSL cipher list such as ECDHE+AESGCM:ECDHE+CHACHA20"),
     VIP(tls_ciphers), LINE(struct config_vip, tls_ciphers_line),
     .def = "ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES",
     .desc = "tls = terminate: cipher suites of TLS 1.2 and below, in OpenSSL's syntax; "
	     "ECDHE+AES includes the CBC suites (see docs/tls.md for a setting without them)."},
    {SEC_VIP, "tls_ciphersuites",
     STRING(cipher_list_ok, "TLS 1.3 suites such as TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"),
     VIP(tls_ciphersuites), LINE(struct config_vip, tls_ciphersuites_line),
     .def = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256",
     .desc = "tls = terminate: TLS 1.3 cipher suites, colon-separated, in order of preference."},
    {SEC_VIP, "tls_alpn", CUSTOM(parse_tls_alpn), .def = "none",
     .desc = "tls = terminate: ALPN protocols offered to clients, comma-separated in order of "
	     "preference (such as h2,http/1.1); none: no ALPN."},
};
#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))
_Static_assert(CONFIG_NKEYS <= CONFIG_KEYS_MAX, "raise CONFIG_KEYS_MAX");
_Static_assert(offsetof(struct config, path) == 0 && offsetof(struct config_pool, name) == 0 &&
		   offsetof(struct config_vip, name) == 0,
	       "line_off 0 means no line field");

/* ---- sections ---- */

static const struct config_key *config_find_key(enum config_section sec, const char *name)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
		if ((sec == SEC_NONE || config_keys[i].section == sec) &&
		    strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

static void config_apply_defaults(struct loader *ld, enum config_section sec)
{
	ld->defaults = true;
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_key *k = &config_keys[i];
		if (k->section != sec || !k->def)
			continue;
		ld->key = k;
		ld->first = true;
		if (key_set(ld, k->def) < 0) /* a bug in the table: say so loudly */
			config_error(ld, ld->line, "default of '%s': %s", k->name, ld->why);
	}
	ld->defaults = false;
}

/* Grows *ARRAY of N elements of SIZE by one zeroed element. */
static void *config_grow(void *array, int n, size_t size)
{
	char *grown = realloc(array, (size_t)(n + 1) * size);

	if (grown)
		memset(grown + (size_t)n * size, 0, size);
	return grown;
}

/* Adds an empty pool or VIP; returns its index or -1. */
static int config_add_named(struct loader *ld, enum config_section sec, const char *name)
{
	struct config *cfg = ld->cfg;
	bool pool = sec == SEC_POOL;
	int n = pool ? cfg->npools : cfg->nvips;
	struct later_lines *ll = config_grow(pool ? ld->plines : ld->vlines, n, sizeof(*ll));

	if (!ll)
		return -1;
	*(pool ? &ld->plines : &ld->vlines) = ll;
	if (pool) {
		struct config_pool *p = config_grow(cfg->pools, n, sizeof(*p));
		if (!p)
			return -1;
		cfg->pools = p;
		p[n].line = ld->line;
		snprintf(p[n].name, CONFIG_NAME_MAX, "%s", name);
		return cfg->npools++;
	}
	struct config_vip *v = config_grow(cfg->vips, n, sizeof(*v));
	if (!v)
		return -1;
	cfg->vips = v;
	v[n].line = ld->line;
	v[n].pool = -1;
	snprintf(v[n].name, CONFIG_NAME_MAX, "%s", name);
	return cfg->nvips++;
}

/* The line where a pool or VIP called NAME was opened, or 0. */
static int config_find_named(const struct config *cfg, enum config_section sec, const char *name)
{
	if (sec == SEC_POOL) {
		for (int i = 0; i < cfg->npools; i++)
			if (strcmp(cfg->pools[i].name, name) == 0)
				return cfg->pools[i].line;
		return 0;
	}
	for (int i = 0; i < cfg->nvips; i++)
		if (strcmp(cfg->vips[i].name, name) == 0)
			return cfg->vips[i].line;
	return 0;
}

/* [pool NAME] or [vip NAME]; a section in error is skipped whole, so one
 * mistake in a header does not cascade into an error per key. */
static enum config_section config_open_named(struct loader *ld, enum config_section sec,
					     const char *kind, const char *name)
{
	int first;

	if (*name == '\0') {
		config_error(ld, ld->line, "section [%s] needs a name: [%s NAME]", kind, kind);
		return SEC_SKIP;
	}
	if (!config_name_ok(name)) {
		config_error(ld, ld->line, "bad %s name '%s': expected " NAME_RULE, kind, name);
		return SEC_SKIP;
	}
	if ((first = config_find_named(ld->cfg, sec, name))) {
		config_error(ld, ld->line, "duplicate %s %s (first on line %d)", kind, name, first);
		return SEC_SKIP;
	}
	ld->cur = config_add_named(ld, sec, name);
	if (ld->cur < 0) {
		ld->oom = true;
		return SEC_SKIP;
	}
	memset(ld->sect_seen, 0, sizeof(ld->sect_seen));
	ld->seen = ld->sect_seen;
	config_apply_defaults(ld, sec);
	return sec;
}

/* INNER is the text between '[' and ']': "KIND" or "KIND NAME". */
static void config_open_section(struct loader *ld, char *inner)
{
	char *kind = inner + strspn(inner, " \t");
	char *name = kind + strcspn(kind, " \t");

	if (*name)
		*name++ = '\0';
	name += strspn(name, " \t");
	for (char *e = name + strlen(name); e > name && (e[-1] == ' ' || e[-1] == '\t');)
		*--e = '\0';

	if (strcmp(kind, "global") == 0) {
		if (*name)
			config_error(ld, ld->line, "section [global] takes no name, got '%s'",
				     name);
		ld->seen = ld->global_seen;
		ld->section = SEC_GLOBAL;
	} else if (strcmp(kind, "pool") == 0) {
		ld->section = config_open_named(ld, SEC_POOL, kind, name);
	} else if (strcmp(kind, "vip") == 0) {
		ld->section = config_open_named(ld, SEC_VIP, kind, name);
	} else {
		config_error(ld, ld->line,
			     "unknown section kind '[%s]': expected [global], [pool NAME] or "
			     "[vip NAME]",
			     kind);
		ld->section = SEC_SKIP;
	}
}

/* ---- reading lines ---- */

/* inih's inline comments: ';' at the start or after a space or tab. */
static char *config_inline_comment(char *p)
{
	for (char *c = strchr(p, ';'); c; c = strchr(c + 1, ';'))
		if (c == p || c[-1] == ' ' || c[-1] == '\t')
			return c;
	return NULL;
}

/* Looks at a line before inih does, mirroring how inih will read it: returns
 * false for a line inih would refuse without calling the handler. */
static bool config_classify(struct loader *ld, char *s)
{
	char *p = s + strspn(s, " \t");

	if (*p == '\0' || *p == ';' || *p == '#')
		return true;
	if (ld->after_key && p > s) {
		/* inih hands it to the handler as the last key again, but
		 * Debian's version keeps an inline comment in it. */
		char *comment = config_inline_comment(p);
		if (comment)
			*comment = '\0';
		return true;
	}
	if (*p != '[') {
		size_t sep = strcspn(p, "=:");
		char *comment = config_inline_comment(p);
		if (p[sep] == '\0' || (comment && comment < p + sep)) {
			config_error(ld, ld->line,
				     "expected 'key = value' or '[section]', got '%s'", p);
			return false;
		}
		ld->after_key = true;
		return true;
	}
	ld->after_key = false;
	char *close = strchr(p, ']');
	if (!close) {
		config_error(ld, ld->line, "section header without ']': '%s'", p);
		ld->section = SEC_SKIP;
		return false;
	}
	char *rest = close + 1 + strspn(close + 1, " \t");
	if (*rest != '\0' && *rest != ';' && *rest != '#')
		config_error(ld, ld->line, "unexpected text after ']': '%s'", rest);
	char inner[512];
	snprintf(inner, sizeof(inner), "%.*s", (int)(close - p - 1), p + 1);
	config_open_section(ld, inner);
	return true;
}

/* The ${NAME} at p: its value in *val and the character after it in *end.
 * Returns 0, or -1 with the error reported. */
static int config_expand_var(struct loader *ld, const char *p, const char **val, const char **end)
{
	static const char namechars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					"0123456789_";
	size_t nlen = strspn(p + 2, namechars);
	char name[65];

	if (nlen == 0 || nlen >= sizeof(name) || p[2 + nlen] != '}' ||
	    (p[2] >= '0' && p[2] <= '9')) {
		config_error(ld, ld->line,
			     "bad substitution at '%.20s': expected ${NAME}, NAME of letters, "
			     "digits and _ (or $${ for a literal ${)",
			     p);
		return -1;
	}
	snprintf(name, sizeof(name), "%.*s", (int)nlen, p + 2);
	*val = getenv(name);
	*end = p + 3 + nlen;
	if (!*val)
		config_error(ld, ld->line,
			     "${%s}: no such environment variable (set it in the service's "
			     "environment, or write $${ for a literal ${)",
			     name);
	return *val ? 0 : -1;
}

/* ${NAME} in a line becomes the environment variable NAME's value, so that
 * one file serves every node of a cluster with its own SNAT addresses;
 * $${ stands for a literal ${. Whole-line comments are left as they are.
 * Returns the expanded line's length, -1 with the error reported, or -2
 * when it does not fit in `cap`. */
static ssize_t config_expand(struct loader *ld, const char *s, char *out, size_t cap)
{
	const char *p = s + strspn(s, " \t");
	size_t n = 0;

	if (*p == ';' || *p == '#')
		return snprintf(out, cap, "%s", s) < (int)cap ? (ssize_t)strlen(out) : -2;
	for (p = s; *p;) {
		const char *val = p, *end = p + 1;
		if (p[0] == '$' && p[1] == '$' && p[2] == '{')
			val = "${", end = p + 3;
		else if (p[0] == '$' && p[1] == '{' && config_expand_var(ld, p, &val, &end) < 0)
			return -1;
		size_t vlen = val == p ? 1 : strlen(val);
		if (n + vlen >= cap)
			return -2;
		memcpy(out + n, val, vlen);
		n += vlen;
		p = end;
	}
	out[n] = '\0';
	return (ssize_t)n;
}

/* inih's ini_reader: one line per call, as fgets() would give it. */
static char *config_reader(char *str, int num, void *stream)
{
	struct loader *ld = stream;
	ssize_t n = getline(&ld->buf, &ld->cap, ld->in);

	if (n < 0) {
		if (ferror(ld->in))
			ld->read_errno = errno;
		return NULL;
	}
	ld->line++;
	char *s = ld->buf;
	size_t len = (size_t)n;
	if (len && s[len - 1] == '\n')
		s[--len] = '\0';
	if (len && s[len - 1] == '\r')
		s[--len] = '\0';
	if (ld->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3, len -= 3;

	/* inih needs room for "\r\n" and the NUL after the text. */
	char expanded[1024];
	bool ok, grown = false;
	if (strlen(s) == len && strchr(s, '$')) {
		ssize_t x = config_expand(ld, s, expanded, sizeof(expanded));
		if (x == -1)
			goto refused;
		grown = x < 0 || (size_t)x != len;
		s = expanded;
		len = x < 0 ? sizeof(expanded) : (size_t)x;
	}
	if (len + 3 > (size_t)num) {
		config_error(ld, ld->line, "line too long%s: %s%zu characters, at most %d",
			     grown ? " once ${...} is substituted" : "",
			     len == sizeof(expanded) ? "over " : "", len, num - 3);
		ok = false;
	} else if (strlen(s) != len) {
		config_error(ld, ld->line, "line contains a NUL byte");
		ok = false;
	} else {
		ok = config_classify(ld, s);
	}
	snprintf(str, (size_t)num, "%s\n", ok ? s : "");
	return str;
refused:
	snprintf(str, (size_t)num, "\n");
	return str;
}

static int config_handler(void *user, const char *section, const char *name, const char *value)
{
	struct loader *ld = user;
	(void)section; /* inih's copy is cut at 50 bytes: the loader has the real one */

	if (!name || ld->section == SEC_SKIP)
		return 1;
	if (ld->section == SEC_NONE) {
		config_error(ld, ld->line,
			     "key '%s' outside any section: put it under [global], [pool NAME] "
			     "or [vip NAME]",
			     name);
		return 1;
	}
	const struct config_key *k = config_find_key(ld->section, name);
	if (!k) {
		const struct config_key *other = config_find_key(SEC_NONE, name);
		config_error(ld, ld->line, "unknown key '%s' in a %s section%s%s", name,
			     section_titles[ld->section], other ? ": it belongs in " : "",
			     other ? section_titles[other->section] : "");
		return 1;
	}
	size_t i = (size_t)(k - config_keys);
	if (ld->seen[i] && !k->repeat) {
		config_error(ld, ld->line, "duplicate key '%s' (first on line %d)", name,
			     ld->seen[i]);
		return 1;
	}
	ld->first = !ld->seen[i];
	if (!ld->seen[i])
		ld->seen[i] = ld->line;
	ld->key = k;
	if (key_set(ld, value ? value : "") < 0)
		config_error(ld, ld->line, "%s", ld->why);
	return 1;
}

/* ---- checks once the whole file is read ---- */

static int config_pool_index(const struct config *cfg, const char *name)
{
	for (int i = 0; i < cfg->npools; i++)
		if (strcmp(cfg->pools[i].name, name) == 0)
			return i;
	return -1;
}

static bool config_has_family(const struct sockaddr_storage *set, int n, int family)
{
	for (int i = 0; i < n; i++)
		if (set[i].ss_family == family)
			return true;
	return false;
}

/* A server must be reachable from the VIP's source addresses: a snat pool
 * needs an address of the server's family, and transparent mode reuses the
 * client's address, so every listen address must share the server's family. */
static void config_check_families(struct loader *ld, const struct config_vip *v, int line)
{
	const struct config_pool *p = &ld->cfg->pools[v->pool];
	unsigned reported = 0; /* one message per family is enough */
	char buf[ADDR_STRLEN];

	for (int i = 0; i < p->nservers; i++) {
		const struct config_server *s = &p->servers[i];
		int fam = s->addr.ss_family, other = fam == AF_INET ? AF_INET6 : AF_INET;
		const char *want = fam == AF_INET ? "IPv4" : "IPv6";
		bool wrong = v->snat == CONFIG_SNAT_POOL
				 ? !config_has_family(v->snat_addrs, v->nsnat, fam)
				 : v->snat == CONFIG_SNAT_OFF &&
				       config_has_family(v->listen, v->nlisten, other);

		if (!wrong || (reported & (1u << (fam == AF_INET))))
			continue;
		reported |= 1u << (fam == AF_INET);
		addr_format((const struct sockaddr *)&s->addr, buf, sizeof(buf));
		if (v->snat == CONFIG_SNAT_POOL)
			config_error(ld, line, "vip %s: snat has no %s address for server %s %s",
				     v->name, want, s->name, buf);
		else
			config_error(ld, line,
				     "vip %s: snat off keeps the client's address, so its listen "
				     "addresses must all be %s like server %s %s",
				     v->name, want, s->name, buf);
	}
}

/* Routes name pools that must exist, and only mean something with
 * tls = route. */
static void config_check_routes(struct loader *ld, struct config_vip *v)
{
	for (int i = 0; i < v->nroutes; i++) {
		struct config_route *rt = &v->routes[i];
		if (v->tls != CONFIG_TLS_ROUTE) {
			config_error(ld, rt->line, "vip %s: route needs tls = route", v->name);
			return;
		}
		rt->pool = config_pool_index(ld->cfg, rt->pool_name);
		if (rt->pool < 0) {
			config_error(ld, rt->line, "vip %s: route %s: pool %s is not defined",
				     v->name, rt->sni, rt->pool_name);
			continue;
		}
		struct config_vip tmp = *v; /* the route's pool must be reachable too */
		tmp.pool = rt->pool;
		config_check_families(ld, &tmp, rt->line);
	}
}

/* Certificates and keys are read now, so that -t and the start both report
 * a wrong path or a key that does not match with the line that names it. */
static void config_check_tls(struct loader *ld, struct config_vip *v)
{
	char why[384];

	if (v->tls != CONFIG_TLS_TERMINATE) {
		if (v->ncerts || v->nkeys || v->client_ca.path[0])
			config_error(
			    ld,
			    v->ncerts  ? v->certs[0].line
			    : v->nkeys ? v->keys[0].line
				       : v->client_ca.line,
			    "vip %s: tls_cert, tls_key and tls_client_ca need tls = terminate",
			    v->name);
		return;
	}
	if (v->ncerts == 0) {
		config_error(ld, v->tls_line, "vip %s: tls = terminate needs tls_cert and tls_key",
			     v->name);
		return;
	}
	if (v->ncerts != v->nkeys) {
		/* The line of the first certificate or key without its pair. */
		config_error(
		    ld, v->ncerts > v->nkeys ? v->certs[v->nkeys].line : v->keys[v->ncerts].line,
		    "vip %s: %d tls_cert but %d tls_key: give one key per certificate, "
		    "in the same order",
		    v->name, v->ncerts, v->nkeys);
		return;
	}
	for (int i = 0; i < v->ncerts; i++)
		if (tls_check_pair(v->certs[i].path, v->keys[i].path, why, sizeof(why)) < 0)
			config_error(ld, v->certs[i].line, "vip %s: %s", v->name, why);
	if (v->client_ca.path[0] && tls_check_ca(v->client_ca.path, why, sizeof(why)) < 0)
		config_error(ld, v->client_ca.line, "vip %s: %s", v->name, why);
}

/* What the TLS front door accepts: versions in order, cipher lists that
 * OpenSSL knows (at the security level the VIP will use). */
static void config_check_tls_front(struct loader *ld, const struct config_vip *v)
{
	static const char *const ver[] = {"1.0", "1.1", "1.2", "1.3"};
	const int lines[] = {v->tls_min_line, v->tls_max_line, v->tls_ciphers_line,
			     v->tls_ciphersuites_line, v->tls_alpn_line};
	char why[384];

	if (v->tls != CONFIG_TLS_TERMINATE) {
		for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
			if (lines[i]) {
				config_error(
				    ld, lines[i],
				    "vip %s: tls_min_version, tls_max_version, tls_ciphers, "
				    "tls_ciphersuites and tls_alpn need tls = terminate",
				    v->name);
				return;
			}
		return;
	}
	if (v->tls_min > v->tls_max) {
		int line = v->tls_min_line > v->tls_max_line ? v->tls_min_line : v->tls_max_line;
		config_error(ld, line, "vip %s: tls_min_version %s is above tls_max_version %s",
			     v->name, ver[v->tls_min], ver[v->tls_max]);
	} else if (v->tls_min < 2) {
		config_warn(
		    ld, v->tls_min_line,
		    "vip %s: tls_min_version %s allows TLS %s, which OCS 2007-era Windows "
		    "clients need but RFC 8996 deprecates; OpenSSL's security level is 0 for "
		    "this VIP",
		    v->name, ver[v->tls_min], v->tls_min == 0 ? "1.0 and 1.1" : "1.1");
	}
	if (tls_check_ciphers(v->tls_ciphers, v->tls_min < 2, why, sizeof(why)) < 0)
		config_error(ld, v->tls_ciphers_line ? v->tls_ciphers_line : v->line,
			     "vip %s: tls_ciphers: %s", v->name, why);
	if (tls_check_ciphersuites(v->tls_ciphersuites, why, sizeof(why)) < 0)
		config_error(ld, v->tls_ciphersuites_line ? v->tls_ciphersuites_line : v->line,
			     "vip %s: tls_ciphersuites: %s", v->name, why);
}

/* server_tls and its files; the files are read now, like tls_cert's. */
static void config_check_server_tls(struct loader *ld, struct config_vip *v)
{
	const struct config_file *cert = &v->server_cert, *key = &v->server_key;
	char why[384];

	if (!v->server_tls) {
		if (cert->path[0] || key->path[0] || v->server_ca.path[0])
			config_error(
			    ld,
			    cert->path[0]  ? cert->line
			    : key->path[0] ? key->line
					   : v->server_ca.line,
			    "vip %s: server_cert, server_key and server_ca need server_tls = "
			    "on",
			    v->name);
		return;
	}
	if (v->tls != CONFIG_TLS_TERMINATE) {
		config_error(ld, v->server_tls_line, "vip %s: server_tls needs tls = terminate",
			     v->name);
		return;
	}
	if (!cert->path[0] != !key->path[0])
		config_error(ld, cert->path[0] ? cert->line : key->line,
			     "vip %s: server_cert and server_key go together", v->name);
	else if (cert->path[0] && tls_check_pair(cert->path, key->path, why, sizeof(why)) < 0)
		config_error(ld, cert->line, "vip %s: %s", v->name, why);
	if (v->server_ca.path[0] && tls_check_ca(v->server_ca.path, why, sizeof(why)) < 0)
		config_error(ld, v->server_ca.line, "vip %s: %s", v->name, why);
}

static void config_check_vip(struct loader *ld, struct config_vip *v, const struct later_lines *vl)
{
	if (v->nlisten == 0 && !vl->given)
		config_error(ld, v->line, "vip %s has no listen = ADDR:PORT", v->name);
	if (v->pool_name[0] == '\0') {
		if (!v->pool_line)
			config_error(ld, v->line, "vip %s has no pool = NAME", v->name);
		return;
	}
	v->pool = config_pool_index(ld->cfg, v->pool_name);
	if (v->pool < 0) {
		config_error(ld, v->pool_line, "vip %s: pool %s is not defined", v->name,
			     v->pool_name);
		return;
	}
	config_check_families(ld, v, vl->snat ? vl->snat : v->line);
	if (v->snat == CONFIG_SNAT_OFF && (ld->host & CONFIG_HOST_SNAT) && v->nlisten &&
	    snat_check_transparent(v->listen[0].ss_family) == -EPERM)
		config_error(
		    ld, vl->snat,
		    "vip %s: snat = off needs CAP_NET_ADMIN (IP_TRANSPARENT), which this "
		    "process lacks: start as root, or under the systemd unit add it with the "
		    "drop-in of docs/operations.md",
		    v->name);
	config_check_routes(ld, v);
	config_check_tls(ld, v);
	config_check_tls_front(ld, v);
	config_check_server_tls(ld, v);
}

/* Keys that only make sense together, once the pool is read whole. */
static void config_check_pool_check(struct loader *ld, struct config_pool *p)
{
	const struct config_check *c = &p->check;
	int line = c->line ? c->line : p->line;

	/* The pool's server_name may come after its servers. */
	for (int i = 0; i < p->nservers; i++)
		if (!p->servers[i].server_name[0])
			snprintf(p->servers[i].server_name, CONFIG_SNI_MAX, "%s", p->server_name);

	if (c->key_line && !c->cert_line)
		config_error(ld, c->key_line, "pool %s: check_key without check_cert", p->name);
	if (c->type != CONFIG_CHECK_HTTPS && (c->cert_line || c->ca_line))
		config_error(ld, c->cert_line ? c->cert_line : c->ca_line,
			     "pool %s: check_cert and check_ca need check = https", p->name);
	if (c->type == CONFIG_CHECK_NONE || c->port)
		return;
	for (int i = 0; i < p->nservers; i++)
		if (addr_port((const struct sockaddr *)&p->servers[i].addr) == 0) {
			config_error(ld, line,
				     "pool %s: server %s has no port, so its checks need "
				     "check_port = PORT",
				     p->name, p->servers[i].name);
			return;
		}
}

/* check_source: a family the servers can be reached from; snat takes its
 * addresses from the first VIP whose traffic goes to the pool. */
static void config_check_source(struct loader *ld, int pi)
{
	struct config_pool *p = &ld->cfg->pools[pi];
	struct config_check *c = &p->check;
	char a[ADDR_STRLEN], b[ADDR_STRLEN];

	if (!c->source_line)
		return;
	if (c->type == CONFIG_CHECK_NONE) {
		config_error(ld, c->source_line, "pool %s: check_source needs a check", p->name);
		return;
	}
	if (c->source == CONFIG_SOURCE_ADDR) {
		for (int i = 0; i < p->nservers; i++)
			if (p->servers[i].addr.ss_family != c->source_addr.ss_family) {
				addr_format((const struct sockaddr *)&c->source_addr, a, sizeof(a));
				addr_format((const struct sockaddr *)&p->servers[i].addr, b,
					    sizeof(b));
				config_error(ld, c->source_line,
					     "pool %s: check_source %s cannot reach server %s %s: "
					     "not the same address family",
					     p->name, a, p->servers[i].name, b);
				return;
			}
		return;
	}
	if (c->source != CONFIG_SOURCE_SNAT)
		return;
	for (int i = 0; i < ld->cfg->nvips && c->source_vip < 0; i++) {
		const struct config_vip *v = &ld->cfg->vips[i];
		if (v->pool == pi)
			c->source_vip = i;
		for (int r = 0; r < v->nroutes && c->source_vip < 0; r++)
			if (v->routes[r].pool == pi)
				c->source_vip = i;
	}
	if (c->source_vip < 0)
		config_error(
		    ld, c->source_line,
		    "pool %s: check_source = snat, but no VIP sends its traffic to this pool",
		    p->name);
	else if (ld->cfg->vips[c->source_vip].snat == CONFIG_SNAT_OFF)
		config_warn(ld, c->source_line,
			    "pool %s: check_source = snat: vip %s is transparent (snat = off), its "
			    "traffic leaves from the clients' addresses; the checks leave from the "
			    "kernel's choice",
			    p->name, ld->cfg->vips[c->source_vip].name);
}

/* Would the admin socket's bind fail against a VIP's listener on L? The same
 * port and family, and the same address or a wildcard on either side (the
 * listeners are LISTENing, so SO_REUSEADDR does not help); the admin socket
 * is not IPV6_V6ONLY, so [::] also takes the port on every IPv4 address. */
static bool config_admin_clash(const struct sockaddr_storage *admin,
			       const struct sockaddr_storage *l)
{
	if (addr_port((const struct sockaddr *)admin) != addr_port((const struct sockaddr *)l))
		return false;
	if (admin->ss_family != l->ss_family)
		return admin->ss_family == AF_INET6 && addr_unspecified(admin);
	return addr_unspecified(admin) || addr_unspecified(l) ||
	       addr_equal((const struct sockaddr *)admin, (const struct sockaddr *)l);
}

/* Caught here rather than by the admin socket's bind at start, which -t
 * does not try. One message: the first VIP in the way is enough to act. */
static bool config_check_admin_clash(struct loader *ld)
{
	const struct config *cfg = ld->cfg;
	const struct config_key *k = config_find_key(SEC_GLOBAL, "admin");
	int line = ld->global_seen[k - config_keys];
	char a[ADDR_STRLEN], l[ADDR_STRLEN];

	if (!cfg->admin.ss_family)
		return false;
	for (int i = 0; i < cfg->nvips; i++)
		for (int j = 0; j < cfg->vips[i].nlisten; j++) {
			const struct sockaddr_storage *ls = &cfg->vips[i].listen[j];
			if (!config_admin_clash(&cfg->admin, ls))
				continue;
			addr_format((const struct sockaddr *)&cfg->admin, a, sizeof(a));
			addr_format((const struct sockaddr *)ls, l, sizeof(l));
			config_error(
			    ld, line,
			    "admin %s clashes with listen %s of vip %s (line %d): the admin "
			    "endpoint needs an address and port that no VIP listens on",
			    a, l, cfg->vips[i].name, cfg->vips[i].line);
			return true;
		}
	return false;
}

/* An admin endpoint off loopback answers whoever reaches it. */
static void config_check_admin_token(struct loader *ld)
{
	const struct config *cfg = ld->cfg;
	const struct config_key *k = config_find_key(SEC_GLOBAL, "admin");
	char buf[ADDR_STRLEN];

	if (!cfg->admin.ss_family || cfg->admin_token[0] ||
	    config_addr_loopback((const struct sockaddr *)&cfg->admin))
		return;
	addr_format((const struct sockaddr *)&cfg->admin, buf, sizeof(buf));
	config_warn(ld, ld->global_seen[k - config_keys],
		    "admin %s is not on loopback and has no admin_token_file: anyone who reaches "
		    "it can read the status and drain or disable servers",
		    buf);
}

static void config_check(struct loader *ld)
{
	struct config *cfg = ld->cfg;
	bool admin_clash = config_check_admin_clash(ld);

	for (int i = 0; i < cfg->npools; i++)
		config_check_pool_check(ld, &cfg->pools[i]);

	for (int i = 0; i < cfg->npools; i++)
		if (cfg->pools[i].nservers == 0 && !ld->plines[i].given)
			config_error(ld, cfg->pools[i].line,
				     "pool %s has no server: add server = NAME ADDR[:PORT]",
				     cfg->pools[i].name);
	for (int i = 0; i < cfg->nvips; i++)
		config_check_vip(ld, &cfg->vips[i], &ld->vlines[i]);
	for (int i = 0; i < cfg->npools; i++)
		config_check_source(ld, i);
	if (!admin_clash) /* one message about that line is enough */
		config_check_admin_token(ld);
	if (cfg->nvips == 0 && ld->nerrors == 0)
		config_error(ld, ld->line > 0 ? ld->line : 1,
			     "no [vip NAME] section: nothing to serve");
}

/* ---- public ---- */

int config_load(const char *path, struct config *cfg, FILE *errs)
{
	return config_load_host(path, cfg, errs, 0);
}

int config_load_host(const char *path, struct config *cfg, FILE *errs, unsigned host)
{
	struct loader ld = {
	    .cfg = cfg, .path = path, .errs = errs, .section = SEC_NONE, .host = host};
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	if (!path || !errs)
		return -EINVAL;
	if (strlen(path) >= sizeof(cfg->path))
		return -ENAMETOOLONG;
	snprintf(cfg->path, sizeof(cfg->path), "%s", path);
	ld.in = fopen(path, "r");
	if (!ld.in)
		return -errno;
	ld.seen = ld.global_seen;
	config_apply_defaults(&ld, SEC_GLOBAL);
	ret = ini_parse_stream(config_reader, &ld, config_handler, &ld);
	if (ret == -2)
		ld.oom = true;
	else if (ret > 0 && ld.nerrors == 0) /* inih refused a line we let through */
		config_error(&ld, ret, "syntax error");
	ret = ld.read_errno ? -ld.read_errno : ferror(ld.in) ? -EIO : 0;
	fclose(ld.in);
	free(ld.buf);
	if (ret == 0 && !ld.oom)
		config_check(&ld);
	free(ld.plines);
	free(ld.vlines);
	config_flush_errors(&ld);
	if (ret == 0)
		ret = ld.oom ? -ENOMEM : ld.nerrors ? -EINVAL : 0;
	if (ret < 0)
		config_free(cfg);
	return ret;
}

bool config_addr_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family != AF_INET6)
		return false;
	const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

void config_free(struct config *cfg)
{
	for (int i = 0; cfg->pools && i < cfg->npools; i++)
		free(cfg->pools[i].servers);
	for (int i = 0; cfg->vips && i < cfg->nvips; i++) {
		free(cfg->vips[i].listen);
		free(cfg->vips[i].snat_addrs);
		free(cfg->vips[i].routes);
		free(cfg->vips[i].certs);
		free(cfg->vips[i].keys);
	}
	free(cfg->pools);
	free(cfg->vips);
	memset(cfg, 0, sizeof(*cfg));
}

/* The description with {min}, {max}, {range} and {values} filled in. */
static void config_print_desc(FILE *out, const struct config_key *k)
{
	char lo[32], hi[32], names[256];

	for (const char *p = k->desc; *p;) {
		if (strncmp(p, "{min}", 5) == 0)
			fputs(key_value(k, k->min, lo, sizeof(lo)), out), p += 5;
		else if (strncmp(p, "{max}", 5) == 0)
			fputs(key_value(k, k->max, hi, sizeof(hi)), out), p += 5;
		else if (strncmp(p, "{range}", 7) == 0)
			fprintf(out, "%s..%s", key_value(k, k->min, lo, sizeof(lo)),
				key_value(k, k->max, hi, sizeof(hi))),
			    p += 7;
		else if (strncmp(p, "{values}", 8) == 0)
			fputs(key_values(k, names, sizeof(names)), out), p += 8;
		else
			fputc(*p++, out);
	}
}

void config_print_keys(FILE *out)
{
	fprintf(out, "| section | key | default | meaning |\n");
	fprintf(out, "|---|---|---|---|\n");
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_key *k = &config_keys[i];
		bool none = k->def && !k->def[0]; /* `` would not show in markdown */
		fprintf(out, "| `%s` | `%s` | %s%s%s | ", section_titles[k->section], k->name,
			k->def && !none ? "`" : "",
			none     ? "(none)"
			: k->def ? k->def
				 : "(required)",
			k->def && !none ? "`" : "");
		config_print_desc(out, k);
		fprintf(out, " |\n");
	}
}
