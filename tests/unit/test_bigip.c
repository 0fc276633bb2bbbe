/* bigip: the OCS 2007 R2 sample (config/bigip-ocs2007r2.conf) converts with
 * every object accounted for, and the output loads with config_load but for
 * the certificate files it names; the one-line form, IPv6, route domains,
 * older syntax, priority groups; syntax errors at their line. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bigip.h"
#include "config.h"
#include "unit.h"

#define SAMPLE "config/bigip-ocs2007r2.conf"

struct run {
	int ret;
	struct bigip *b;
	char *out, *notes;
	size_t olen, nlen;
};

static void run_free(struct run *r)
{
	bigip_free(r->b);
	free(r->out);
	free(r->notes);
	memset(r, 0, sizeof(*r));
}

/* Parses and converts TEXT as if read from PATH. */
static void convert(const char *path, const char *text, size_t len, struct run *r)
{
	FILE *out = open_memstream(&r->out, &r->olen);
	FILE *notes = open_memstream(&r->notes, &r->nlen);

	r->b = NULL;
	r->ret = bigip_parse(path, text, len, &r->b, notes);
	if (r->ret == 0)
		r->ret = bigip_convert(r->b, out, notes);
	fclose(out);
	fclose(notes);
}

static void convert_str(const char *text, struct run *r)
{
	convert("t.conf", text, strlen(text), r);
}

/* The text of the section "[KIND NAME]" of the output, up to the next blank
 * line; "" when it is not there. */
static const char *section(const struct run *r, const char *header)
{
	static char bufs[4][4096];
	static int next;
	char *buf = bufs[next++ % 4];
	const char *s = r->out ? strstr(r->out, header) : NULL;

	buf[0] = '\0';
	if (!s)
		return buf;
	const char *e = strstr(s, "\n\n");
	snprintf(buf, sizeof(bufs[0]), "%.*s", (int)(e ? e - s + 1 : (long)strlen(s)), s);
	return buf;
}

static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *s = text; s && (s = strstr(s, line)); s++)
		if ((s == text || s[-1] == '\n') && (s[n] == '\n' || s[n] == '\0'))
			return true;
	return false;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; s && *s; s++)
		n += *s == '\n';
	return n;
}

static const struct bigip_object *object(const struct run *r, const char *kind, const char *name)
{
	for (int i = 0; i < bigip_nobjects(r->b); i++) {
		const struct bigip_object *o = bigip_object(r->b, i);
		if (strcmp(o->kind, kind) == 0 && strcmp(o->name, name) == 0)
			return o;
	}
	return NULL;
}

/* config_load on the output: every error (certificate files do not exist
 * here) is on a line that names a certificate, key or CA file of a VIP. */
static void check_loads(const struct run *r, int nvips, int npools)
{
	char path[] = "/tmp/test_bigip.XXXXXX", *errs = NULL;
	size_t elen = 0;
	struct config cfg;
	int fd = mkstemp(path);

	CHECK(fd >= 0 && write(fd, r->out, r->olen) == (ssize_t)r->olen);
	close(fd);
	FILE *e = open_memstream(&errs, &elen);
	int ret = config_load(path, &cfg, e);
	fclose(e);
	CHECK(ret == 0 || ret == -EINVAL);
	for (const char *l = errs; l && *l;) {
		const char *nl = strchr(l, '\n');
		int line = atoi(l + strlen(path) + 1), n = 1;
		const char *s = r->out;
		for (; s && n < line; n++)
			s = strchr(s, '\n') ? strchr(s, '\n') + 1 : NULL;
		bool cert = s && (strncmp(s, "tls_", 4) == 0 || strncmp(s, "server_", 7) == 0);
		if (!cert)
			fprintf(stderr, "unexpected error: %.*s\n", (int)(nl - l), l);
		CHECK(cert);
		l = nl ? nl + 1 : "";
	}
	if (ret == 0) {
		CHECK_EQ(cfg.nvips, nvips);
		CHECK_EQ(cfg.npools, npools);
		config_free(&cfg);
	}
	unlink(path);
	free(errs);
}

/* What each object of the sample became. */
static const struct {
	const char *kind, *name;
	enum bigip_status status;
	const char *as;
} sample_objects[] = {
    {"ltm default-node-monitor", "", BIGIP_CONVERTED, ""},
    {"ltm monitor https", "/Common/ocs_mcu_https", BIGIP_CONVERTED, ""},
    {"ltm monitor http", "/Common/ocs_http_old", BIGIP_SKIPPED, ""},
    {"ltm monitor tcp", "/Common/ocs_sip_tcp", BIGIP_CONVERTED, ""},
    {"ltm node", "/Common/ocs_fe1", BIGIP_CONVERTED, ""},
    {"ltm node", "/Common/ocs_fe2", BIGIP_CONVERTED, ""},
    {"ltm persistence source-addr", "/Common/ocs_source_1800", BIGIP_CONVERTED, ""},
    {"ltm pool", "/Common/ocs_fe_135", BIGIP_CONVERTED, "pool ocs_fe_135"},
    {"ltm pool", "/Common/ocs_fe_443", BIGIP_PARTIAL, "pool ocs_fe_443"},
    {"ltm pool", "/Common/ocs_fe_444", BIGIP_CONVERTED, "pool ocs_fe_444"},
    {"ltm pool", "/Common/ocs_fe_5061", BIGIP_CONVERTED, "pool ocs_fe_5061"},
    {"ltm pool", "/Common/ocs_fe_5065", BIGIP_CONVERTED, "pool ocs_fe_5065"},
    {"ltm pool", "/Common/ocs_fe_5069", BIGIP_CONVERTED, "pool ocs_fe_5069"},
    {"ltm profile client-ssl", "/Common/ocs_clientssl_pool01", BIGIP_CONVERTED, ""},
    {"ltm profile server-ssl", "/Common/ocs_serverssl_mcu", BIGIP_CONVERTED, ""},
    {"ltm profile server-ssl", "/Common/ocs_serverssl_web", BIGIP_CONVERTED, ""},
    {"ltm profile tcp", "/Common/ocs_tcp_1800", BIGIP_CONVERTED, ""},
    {"ltm profile one-connect", "/Common/ocs_oneconnect", BIGIP_SKIPPED, ""},
    {"ltm rule", "/Common/ocs_web_xff", BIGIP_SKIPPED, ""},
    {"ltm snat-translation", "/Common/198.18.0.20", BIGIP_CONVERTED, ""},
    {"ltm snat-translation", "/Common/198.18.0.21", BIGIP_CONVERTED, ""},
    {"ltm snatpool", "/Common/ocs_snatpool", BIGIP_CONVERTED, ""},
    {"ltm virtual", "/Common/ocs_pool01_135", BIGIP_CONVERTED, "vip ocs_pool01_135"},
    {"ltm virtual", "/Common/ocs_pool01_443", BIGIP_PARTIAL, "vip ocs_pool01_443"},
    {"ltm virtual", "/Common/ocs_pool01_444", BIGIP_WARNED, "vip ocs_pool01_444"},
    {"ltm virtual", "/Common/ocs_pool01_5060_udp", BIGIP_SKIPPED, ""},
    {"ltm virtual", "/Common/ocs_pool01_5061", BIGIP_CONVERTED, "vip ocs_pool01_5061"},
    {"ltm virtual", "/Common/ocs_pool01_5065", BIGIP_CONVERTED, "vip ocs_pool01_5065"},
    {"ltm virtual", "/Common/ocs_pool01_5069", BIGIP_CONVERTED, "vip ocs_pool01_5069"},
    {"ltm virtual-address", "/Common/198.18.0.10", BIGIP_CONVERTED, ""},
};
#define NSAMPLE (int)(sizeof(sample_objects) / sizeof(sample_objects[0]))

static void test_sample(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = fopen(SAMPLE, "r");
	struct run r;
	int nvips, npools, ports[] = {135, 443, 444, 5061, 5065, 5069};

	CHECK(f != NULL);
	if (!f)
		return;
	text = malloc(1 << 20);
	len = fread(text, 1, 1 << 20, f);
	fclose(f);
	convert(SAMPLE, text, len, &r);
	free(text);
	CHECK_EQ(r.ret, 0);
	if (r.ret)
		return;
	bigip_counts(r.b, &nvips, &npools);
	CHECK_EQ(nvips, 6);
	CHECK_EQ(npools, 6);

	/* every object of the file, and nothing else */
	CHECK_EQ(bigip_nobjects(r.b), NSAMPLE);
	for (int i = 0; i < NSAMPLE; i++) {
		const struct bigip_object *o =
		    object(&r, sample_objects[i].kind, sample_objects[i].name);
		if (!o) {
			fprintf(stderr, "missing: %s %s\n", sample_objects[i].kind,
				sample_objects[i].name);
			CHECK(o != NULL);
			continue;
		}
		if (o->status != sample_objects[i].status)
			fprintf(stderr, "%s %s: %s\n", o->kind, o->name, o->note);
		CHECK_EQ(o->status, sample_objects[i].status);
		CHECK_STR(o->as, sample_objects[i].as);
		CHECK((o->status == BIGIP_CONVERTED) == (o->note[0] == '\0'));
	}
	/* one line per object not converted whole */
	CHECK_EQ(count_lines(r.notes), 7);
	CHECK(strstr(r.notes, SAMPLE ":230: ltm virtual /Common/ocs_pool01_444: warning: no SNAT"));
	CHECK(strstr(r.notes, "replies will bypass the balancer"));
	CHECK(strstr(r.notes, SAMPLE ":244: ltm virtual /Common/ocs_pool01_5060_udp: skipped: "
				     "ip-protocol udp"));
	CHECK(strstr(r.notes, "iRule /Common/ocs_web_xff is not converted"));
	CHECK(strstr(r.notes, "profile /Common/ocs_oneconnect (one-connect) is not converted"));

	for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
		char h[64], l[64];
		snprintf(h, sizeof(h), "[vip ocs_pool01_%d]", ports[i]);
		snprintf(l, sizeof(l), "listen = 198.18.0.10:%d", ports[i]);
		CHECK(has_line(section(&r, h), l));
	}
	const char *v444 = section(&r, "[vip ocs_pool01_444]");
	CHECK(has_line(v444, "snat = off"));
	CHECK(has_line(v444, "timeout_idle = 1800s"));
	CHECK(has_line(section(&r, "[vip ocs_pool01_5061]"), "snat = auto"));
	const char *v135 = section(&r, "[vip ocs_pool01_135]");
	CHECK(has_line(v135, "snat = 198.18.0.20") && has_line(v135, "snat = 198.18.0.21"));
	const char *v443 = section(&r, "[vip ocs_pool01_443]");
	CHECK(has_line(v443, "tls = terminate"));
	CHECK(has_line(v443, "tls_cert = pool01.lab.test.crt"));
	CHECK(has_line(v443, "tls_key = pool01.lab.test.key"));
	CHECK(has_line(v443, "server_tls = on") && has_line(v443, "server_ca = lab_ca.crt"));
	CHECK(has_line(section(&r, "[vip ocs_pool01_5069]"), "timeout_idle = 300s"));

	const char *p444 = section(&r, "[pool ocs_fe_444]");
	CHECK(has_line(p444, "balance = leastconn"));
	CHECK(has_line(p444, "server = ocs_fe1 198.18.0.11:444"));
	CHECK(has_line(p444, "server = ocs_fe2 198.18.0.12:444"));
	CHECK(has_line(p444, "check = https"));
	CHECK(has_line(p444, "check_path = /LiveServer/MCUFactory/"));
	CHECK(has_line(p444, "check_host = pool01.lab.test"));
	CHECK(has_line(p444, "check_expect = 200,405"));
	CHECK(has_line(p444, "check_cert = ocs_fe.crt") &&
	      has_line(p444, "check_key = ocs_fe.key"));
	CHECK(has_line(p444, "check_ca = lab_ca.crt"));
	CHECK(has_line(p444, "check_interval = 5s") && has_line(p444, "check_fall = 3"));
	CHECK(has_line(p444, "check_rise = 1"));
	CHECK(has_line(section(&r, "[pool ocs_fe_443]"), "balance = source"));
	CHECK(has_line(section(&r, "[pool ocs_fe_135]"), "balance = roundrobin"));
	CHECK(has_line(section(&r, "[pool ocs_fe_5069]"),
		       "server = ocs_fe1 198.18.0.11:5069 weight=2"));
	const char *p5061 = section(&r, "[pool ocs_fe_5061]");
	CHECK(has_line(p5061, "check = tcp") && has_line(p5061, "check_interval = 10s"));
	check_loads(&r, 6, 6);
	run_free(&r);
}

/* tmsh's one-line form, IPv6 (a '.' before the port), a member of any port,
 * two monitors, an https monitor with its own cert and key (before 13.0). */
static void test_one_line(void)
{
	struct run r;

	convert_str(
	    "ltm virtual /Common/vs6 { destination /Common/2001:db8::10.443 ip-protocol tcp mask "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff pool /Common/p6 profiles { /Common/tcp { } } "
	    "snat automap vlans-disabled }\n"
	    "ltm pool /Common/p6 { members { /Common/2001:db8::11.443 { address 2001:db8::11 } "
	    "/Common/2001:db8::12.any { address 2001:db8::12 } } monitor /Common/m1 and "
	    "/Common/tcp }\n"
	    "ltm monitor https /Common/m1 { cert /Common/c.crt defaults-from /Common/https_443 "
	    "interval 3 key /Common/c.key recv \"200 OK\" send \"HEAD /x HTTP/1.0\\r\\n\\r\\n\" "
	    "timeout 10 }\n",
	    &r);
	CHECK_EQ(r.ret, 0);
	const char *v = section(&r, "[vip vs6]"), *p = section(&r, "[pool p6]");
	CHECK(has_line(v, "listen = [2001:db8::10]:443"));
	CHECK(has_line(v, "snat = auto") && has_line(v, "timeout_idle = 300s"));
	CHECK(has_line(p, "server = 2001_db8__11 [2001:db8::11]:443"));
	CHECK(has_line(p, "server = 2001_db8__12 [2001:db8::12]"));
	CHECK(has_line(p, "check = https") && has_line(p, "check_port = 443"));
	CHECK(has_line(p, "check_method = HEAD") && has_line(p, "check_path = /x"));
	CHECK(has_line(p, "check_expect = 200"));
	CHECK(has_line(p, "check_cert = c.crt") && has_line(p, "check_key = c.key"));
	CHECK(has_line(p, "check_interval = 3s") && has_line(p, "check_fall = 3"));
	CHECK(strstr(r.notes, "2 monitors: only /Common/m1 is converted"));
	check_loads(&r, 1, 1);
	run_free(&r);
}

/* Route domains, named ports, priority groups, ratio modes, nodes. */
static void test_details(void)
{
	struct run r;

	convert_str("ltm node /Common/a { address 10.0.0.11%2 ratio 3 }\n"
		    "ltm node /Common/b { address 10.0.0.12%2 }\n"
		    "ltm pool /Common/p {\n"
		    "    load-balancing-mode ratio-node\n"
		    "    min-active-members 1\n"
		    "    members {\n"
		    "        /Common/a:http { priority-group 10 }\n"
		    "        /Common/b:http { priority-group 5 connection-limit 100 }\n"
		    "    }\n"
		    "}\n"
		    "ltm virtual /Common/v {\n"
		    "    destination /Common/10.0.0.1%2:http\n"
		    "    pool /Common/p\n"
		    "    persist { /Common/cookie { default yes } }\n"
		    "    source-address-translation { type automap }\n"
		    "}\n"
		    "ltm virtual /Common/w { destination /Common/10.0.0.1%2:80 pool /Common/p }\n"
		    "sys folder /Common/x { }\n",
		    &r);
	CHECK_EQ(r.ret, 0);
	const char *p = section(&r, "[pool p]"), *v = section(&r, "[vip v]");
	CHECK(has_line(p, "server = a 10.0.0.11:80 weight=3"));
	CHECK(has_line(p, "server = b 10.0.0.12:80 max_conn=100 backup"));
	CHECK(has_line(v, "listen = 10.0.0.1:80"));
	CHECK(strstr(r.notes,
		     "t.conf:11: ltm virtual /Common/v: converted in part: route domain %2"));
	CHECK(strstr(r.notes, "persist /Common/cookie (not in the file) is not converted"));
	CHECK(strstr(r.notes, "t.conf:17: ltm virtual /Common/w: skipped: destination "
			      "10.0.0.1:80 is taken by /Common/v (line 11)"));
	CHECK(strstr(r.notes, "t.conf:18: sys folder /Common/x: skipped: not an ltm object"));
	check_loads(&r, 1, 1);
	run_free(&r);
}

static void expect_syntax(const char *text, const char *message)
{
	struct run r;

	convert_str(text, &r);
	CHECK_EQ(r.ret, -EINVAL);
	CHECK(r.b == NULL);
	if (!r.notes || !strstr(r.notes, message))
		fprintf(stderr, "expected '%s', got: %s", message, r.notes ? r.notes : "");
	CHECK(r.notes && strstr(r.notes, message));
	CHECK_EQ(count_lines(r.notes), 1);
	run_free(&r);
}

static void test_syntax(void)
{
	char deep[200] = "ltm pool /Common/p ";
	struct run r;

	expect_syntax("ltm pool /Common/p {\n    members {\n", "t.conf:2: '{' is never closed");
	expect_syntax("ltm pool /Common/p {\n}\n}\n", "t.conf:3: '}' without a '{' before it");
	expect_syntax("ltm monitor http /Common/m {\n send \"GET /\n}\n",
		      "t.conf:2: string never closed");
	expect_syntax("ltm pool /Common/p\nltm node /Common/n { }\n",
		      "t.conf:1: expected '{' after 'ltm pool'");
	expect_syntax("# comment\n{ }\n", "t.conf:2: '{' without an object's name");
	/* a quoted word keeps its newline, a message does not (fuzz_bigip) */
	expect_syntax("ltm \"a\nb\"\nltm x { }\n", "t.conf:1: expected '{' after 'ltm a?b'");
	expect_syntax("ltm rule /Common/r {\nwhen X { \" }\n", "t.conf:1: '{' is never closed");
	for (int i = 0; i < BIGIP_DEPTH_MAX + 1; i++)
		strcat(deep, "{");
	expect_syntax(deep, "t.conf:1: braces nested deeper than 32 levels");
	convert("t.conf", "ltm pool /Common/p {\0}", 23, &r);
	CHECK_EQ(r.ret, -EINVAL);
	CHECK(r.notes && strstr(r.notes, "t.conf:1: NUL byte"));
	run_free(&r);

	/* Tcl quotes and comments inside an iRule are its own */
	convert_str("ltm rule /Common/r {\n# it's \"odd\n when X { set a \\} }\n}\n", &r);
	CHECK_EQ(r.ret, 0);
	CHECK(strstr(r.notes, "t.conf:1: ltm rule /Common/r: skipped: iRules are not converted"));
	CHECK(strstr(r.notes, "t.conf: warning: no virtual server was converted"));
	run_free(&r);
	convert_str("", &r);
	CHECK_EQ(r.ret, 0);
	CHECK_EQ(bigip_nobjects(r.b), 0);
	run_free(&r);
}

int main(void)
{
	test_sample();
	test_one_line();
	test_details();
	test_syntax();
	return unit_done("test_bigip");
}
