/* addr: what the config may write as an address, and how it prints back. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "addr.h"
#include "unit.h"

/* Parses S under RULE; on success checks that it prints back as WANT. */
static void check_parse(int line, const char *s, int rule, const char *want)
{
	struct sockaddr_storage ss;
	char buf[ADDR_STRLEN];
	int ret = addr_parse(s, rule, &ss);

	if (want && (ret != 0 ||
		     strcmp(addr_format((struct sockaddr *)&ss, buf, sizeof(buf)), want) != 0)) {
		fprintf(stderr, "%s:%d: addr_parse(\"%s\", %d): ret %d, \"%s\", expected \"%s\"\n",
			__FILE__, line, s, rule, ret, ret ? "" : buf, want);
		unit_failures++;
	} else if (!want && ret != -EINVAL) {
		fprintf(stderr, "%s:%d: addr_parse(\"%s\", %d) = %d, expected -EINVAL\n", __FILE__,
			line, s, rule, ret);
		unit_failures++;
	}
}
#define OK(s, rule, want) check_parse(__LINE__, s, rule, want)
#define BAD(s, rule)      check_parse(__LINE__, s, rule, NULL)

static void test_parse_ok(void)
{
	OK("198.18.0.10:444", ADDR_PORT_REQUIRED, "198.18.0.10:444");
	OK("198.18.0.10:444", ADDR_PORT_OPTIONAL, "198.18.0.10:444");
	OK("198.18.0.11", ADDR_PORT_OPTIONAL, "198.18.0.11");
	OK("198.18.0.11", ADDR_PORT_NONE, "198.18.0.11");
	OK("0.0.0.0:80", ADDR_PORT_REQUIRED, "0.0.0.0:80");
	OK("255.255.255.255:65535", ADDR_PORT_REQUIRED, "255.255.255.255:65535");
	OK("1.2.3.4:1", ADDR_PORT_REQUIRED, "1.2.3.4:1");
	OK("1.2.3.4:00080", ADDR_PORT_REQUIRED, "1.2.3.4:80");
	OK("[::1]:8080", ADDR_PORT_REQUIRED, "[::1]:8080");
	OK("[2001:DB8::10]:443", ADDR_PORT_OPTIONAL, "[2001:db8::10]:443");
	OK("[2001:db8::10]", ADDR_PORT_OPTIONAL, "[2001:db8::10]");
	OK("[2001:db8::10]", ADDR_PORT_NONE, "[2001:db8::10]");
	OK("2001:db8::10", ADDR_PORT_OPTIONAL, "[2001:db8::10]");
	OK("2001:db8::10", ADDR_PORT_NONE, "[2001:db8::10]");
	OK("::", ADDR_PORT_NONE, "[::]");
	OK("[::ffff:198.18.0.1]:5", ADDR_PORT_REQUIRED, "[::ffff:198.18.0.1]:5");
	OK("[1:2:3:4:5:6:7:8]:65535", ADDR_PORT_REQUIRED, "[1:2:3:4:5:6:7:8]:65535");
}

static void test_parse_bad(void)
{
	BAD("198.18.0.10", ADDR_PORT_REQUIRED); /* port missing */
	BAD("198.18.0.10:444", ADDR_PORT_NONE); /* port not allowed */
	BAD("[::1]:80", ADDR_PORT_NONE);
	BAD("[::1]", ADDR_PORT_REQUIRED);
	BAD("::1", ADDR_PORT_REQUIRED); /* a bare IPv6 cannot carry a port */
	BAD("2001:db8::1:80", ADDR_PORT_REQUIRED);
	BAD("1.2.3.4:0", ADDR_PORT_REQUIRED); /* ports are 1..65535 */
	BAD("1.2.3.4:0", ADDR_PORT_OPTIONAL);
	BAD("1.2.3.4:65536", ADDR_PORT_REQUIRED);
	BAD("1.2.3.4:99999999", ADDR_PORT_REQUIRED);
	BAD("1.2.3.4:", ADDR_PORT_OPTIONAL);
	BAD("1.2.3.4:-1", ADDR_PORT_OPTIONAL);
	BAD("1.2.3.4:+80", ADDR_PORT_OPTIONAL);
	BAD("1.2.3.4: 80", ADDR_PORT_OPTIONAL);
	BAD("1.2.3.4:80 ", ADDR_PORT_OPTIONAL);
	BAD("1.2.3.4:0x50", ADDR_PORT_OPTIONAL);
	BAD("1.2.3.4:http", ADDR_PORT_OPTIONAL);
	BAD("1.2.3.4:80:90", ADDR_PORT_OPTIONAL);
	BAD("", ADDR_PORT_OPTIONAL);
	BAD(":80", ADDR_PORT_OPTIONAL);
	BAD("1.2.3", ADDR_PORT_OPTIONAL); /* inet_aton shorthand */
	BAD("1.2.3.256", ADDR_PORT_OPTIONAL);
	BAD("01.2.3.4", ADDR_PORT_OPTIONAL); /* octal-looking */
	BAD("1.2.3.4.5", ADDR_PORT_OPTIONAL);
	BAD(" 1.2.3.4", ADDR_PORT_OPTIONAL);
	BAD("1.2.3.4 ", ADDR_PORT_OPTIONAL);
	BAD("localhost", ADDR_PORT_OPTIONAL); /* no names */
	BAD("localhost:80", ADDR_PORT_OPTIONAL);
	BAD("[1.2.3.4]:80", ADDR_PORT_OPTIONAL); /* brackets are for IPv6 */
	BAD("[::1", ADDR_PORT_OPTIONAL);
	BAD("::1]", ADDR_PORT_OPTIONAL);
	BAD("[::1]80", ADDR_PORT_OPTIONAL);
	BAD("[::1]:", ADDR_PORT_OPTIONAL);
	BAD("[]:80", ADDR_PORT_OPTIONAL);
	BAD("[::1]:80x", ADDR_PORT_OPTIONAL);
	BAD("[fe80::1%eth0]:80", ADDR_PORT_OPTIONAL);
	BAD("1:2:3:4:5:6:7:8:9", ADDR_PORT_OPTIONAL);
	BAD("[0000000000000000000000000000000000000000000000000000::1]:80", ADDR_PORT_OPTIONAL);

	struct sockaddr_storage ss;
	CHECK_EQ(addr_parse(NULL, ADDR_PORT_OPTIONAL, &ss), -EINVAL);
}

static void test_helpers(void)
{
	struct sockaddr_storage a, b;
	char buf[ADDR_STRLEN], small[8];

	CHECK_EQ(addr_parse("198.18.0.10:444", ADDR_PORT_REQUIRED, &a), 0);
	CHECK_EQ(a.ss_family, AF_INET);
	CHECK_EQ(addr_port((struct sockaddr *)&a), 444);
	CHECK_EQ(addr_len((struct sockaddr *)&a), sizeof(struct sockaddr_in));
	CHECK_EQ(((struct sockaddr_in *)&a)->sin_addr.s_addr, inet_addr("198.18.0.10"));
	addr_set_port((struct sockaddr *)&a, 5061);
	CHECK_EQ(ntohs(((struct sockaddr_in *)&a)->sin_port), 5061);
	CHECK_STR(addr_format((struct sockaddr *)&a, buf, sizeof(buf)), "198.18.0.10:5061");
	/* A short buffer is cut, still terminated. */
	CHECK_STR(addr_format((struct sockaddr *)&a, small, sizeof(small)), "198.18.");

	CHECK_EQ(addr_parse("198.18.0.10:5061", ADDR_PORT_REQUIRED, &b), 0);
	CHECK(addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b));
	addr_set_port((struct sockaddr *)&b, 5060);
	CHECK(!addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b));

	CHECK_EQ(addr_parse("[2001:db8::1]:443", ADDR_PORT_REQUIRED, &b), 0);
	CHECK_EQ(b.ss_family, AF_INET6);
	CHECK_EQ(addr_port((struct sockaddr *)&b), 443);
	CHECK_EQ(addr_len((struct sockaddr *)&b), sizeof(struct sockaddr_in6));
	CHECK(!addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b));
	CHECK_EQ(addr_parse("2001:db8::1", ADDR_PORT_OPTIONAL, &a), 0);
	CHECK_EQ(addr_port((struct sockaddr *)&a), 0);
	CHECK(!addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b));
	addr_set_port((struct sockaddr *)&a, 443);
	CHECK(addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b));

	/* The longest form fits ADDR_STRLEN. */
	CHECK_EQ(addr_parse("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535",
			    ADDR_PORT_REQUIRED, &a),
		 0);
	addr_format((struct sockaddr *)&a, buf, sizeof(buf));
	CHECK_STR(buf, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");

	memset(&a, 0, sizeof(a));
	a.ss_family = AF_UNIX;
	CHECK_EQ(addr_port((struct sockaddr *)&a), 0);
	CHECK_EQ(addr_len((struct sockaddr *)&a), 0);
	addr_set_port((struct sockaddr *)&a, 1); /* ignored, no crash */
	CHECK(!addr_equal((struct sockaddr *)&a, (struct sockaddr *)&a));
	CHECK(addr_format((struct sockaddr *)&a, buf, sizeof(buf)) == buf);
}

int main(void)
{
	test_parse_ok();
	test_parse_bad();
	test_helpers();
	return unit_done("test_addr");
}
