/* The SNAT port budget's forecast (budget.c) and the ledger's query and
 * filter (ledger.c): pure functions, the cases an operator meets. */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "addr.h"
#include "budget.h"
#include "ledger.h"
#include "unit.h"

#define PORTS 28232.0 /* Linux's default range, 32768 to 60999 */

static bool near(double a, double b)
{
	return a > b - 0.5 && a < b + 0.5;
}

static void test_long_lived(void)
{
	/* Connections that stay open: the free ports go at the new rate. */
	struct budget_state s = {.ports = 200, .in_use = 150, .rate = 10};
	CHECK(near(budget_exhaustion_s(&s), 5));
	/* Half of them end as fast: only the other half take ports. */
	s.ends = 5;
	CHECK(near(budget_exhaustion_s(&s), 10));
	s.ends = 10;
	CHECK_EQ(budget_exhaustion_s(&s), -1);
	s = (struct budget_state){.ports = 200, .in_use = 200, .rate = 1};
	CHECK_EQ(budget_exhaustion_s(&s), 0);
	s = (struct budget_state){.ports = 200, .in_use = 20};
	CHECK_EQ(budget_exhaustion_s(&s), -1); /* no new connections */
}

static void test_time_wait(void)
{
	/* 300 short connections a second closed by this side, for 10 s: the
	 * TIME_WAIT pool will hold 18,000 ports once its first ones expire,
	 * 50 s from now, which the range can give: never. */
	struct budget_state s = {
	    .ports = PORTS, .time_wait = 3000, .tw_left_s = 50, .rate = 300, .ends = 300};
	CHECK_EQ(budget_exhaustion_s(&s), -1);
	/* At 600 a second it would need 36,000: out while the pool fills. */
	s = (struct budget_state){
	    .ports = PORTS, .time_wait = 6000, .tw_left_s = 50, .rate = 600, .ends = 600};
	double t = budget_exhaustion_s(&s);
	CHECK(near(t, (PORTS - 6000) / 600));
	CHECK(t < BUDGET_WARN_S);
	CHECK(budget_addresses_to_add(&s, 1) >= 1);
	/* A pool in balance (its oldest socket about to expire) and a few
	 * connections piling up on top. */
	s = (struct budget_state){.ports = PORTS,
				  .in_use = 1000,
				  .time_wait = 18000,
				  .tw_left_s = 0.1,
				  .rate = 310,
				  .ends = 300};
	t = budget_exhaustion_s(&s);
	CHECK(t > 900 && t < 930); /* (28232 - 19000 - 30) / 10, and the 0.1 s */
	/* A burst's 30 ports in TIME_WAIT, 2 s old, and none ending since: no
	 * more are coming (this said 11 s before the ages were capped by the
	 * rate of ends: 30 ports over 2 s, as if 15 more came each second). */
	s = (struct budget_state){.ports = 200, .time_wait = 30, .tw_left_s = 58};
	CHECK_EQ(budget_exhaustion_s(&s), -1);
	s.rate = s.ends = 3; /* ending as fast as they come: out in 170 / 3 s */
	CHECK(near(budget_exhaustion_s(&s), 170.0 / 3));
	/* The server closes first: no TIME_WAIT here, ports come back. */
	s = (struct budget_state){.ports = PORTS, .in_use = 50, .rate = 2000, .ends = 2000};
	CHECK_EQ(budget_exhaustion_s(&s), -1);
}

static void test_addresses(void)
{
	/* 150 open, 10 more a second for 5 minutes: 3,150 ports, 16 addresses
	 * of 200 ports where one is used. */
	struct budget_state s = {.ports = 200, .in_use = 150, .rate = 10};
	CHECK_EQ(budget_addresses_to_add(&s, 1), 15);
	/* With two addresses sharing the load, each needs the same. */
	CHECK_EQ(budget_addresses_to_add(&s, 2), 30);
	s = (struct budget_state){.ports = PORTS, .in_use = 10, .rate = 1};
	CHECK_EQ(budget_addresses_to_add(&s, 1), 1); /* always at least one */
}

static void test_query(void)
{
	struct ledger_filter f;
	char why[128], buf[ADDR_STRLEN];

	CHECK_EQ(ledger_parse_query("", &f, why, sizeof(why)), 0);
	CHECK_EQ(f.limit, LEDGER_LIMIT_DEFAULT);
	CHECK_EQ(f.client.ss_family, 0);
	CHECK_EQ(ledger_parse_query("snat=198.18.0.10:52311&limit=5&vip=web", &f, why, sizeof(why)),
		 0);
	CHECK_STR(addr_format((struct sockaddr *)&f.snat, buf, sizeof(buf)), "198.18.0.10:52311");
	CHECK_EQ(f.limit, 5);
	CHECK_STR(f.vip, "web");
	CHECK_EQ(ledger_parse_query("client=%5B2001:db8::1%5D:443&&", &f, why, sizeof(why)), 0);
	CHECK_STR(addr_format((struct sockaddr *)&f.client, buf, sizeof(buf)), "[2001:db8::1]:443");
	CHECK_EQ(ledger_parse_query("server=198.18.1.1", &f, why, sizeof(why)), 0);
	static const char *const bad[] = {
	    "limit=0",    "limit=10001", "limit=", "limit=-1", "snat=x", "client=1.2.3.4:99999",
	    "what=1",     "vip",         "vip=",   "vip=%00",  "vip=%4", "=1",
	    "client=%zz", "limit=1e3",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		CHECK_EQ(ledger_parse_query(bad[i], &f, why, sizeof(why)), -EINVAL);
		CHECK(strlen(why) > 0 && why[strlen(why) - 1] == '\n');
	}
}

static void test_match(void)
{
	struct ledger_filter f;
	struct sockaddr_storage client, snat, server;
	char why[128];
	struct ledger_conn c = {.vip = "web",
				.client = (struct sockaddr *)&client,
				.snat = (struct sockaddr *)&snat,
				.server = (struct sockaddr *)&server};

	addr_parse("198.18.2.7:40001", ADDR_PORT_REQUIRED, &client);
	addr_parse("198.18.0.10:52311", ADDR_PORT_REQUIRED, &snat);
	addr_parse("198.18.1.1:443", ADDR_PORT_REQUIRED, &server);
	ledger_parse_query("snat=198.18.0.10:52311", &f, why, sizeof(why));
	CHECK(ledger_match(&f, &c));
	ledger_parse_query("snat=198.18.0.10:52312", &f, why, sizeof(why));
	CHECK(!ledger_match(&f, &c));
	ledger_parse_query("client=198.18.2.7&server=198.18.1.1:443&vip=web", &f, why, sizeof(why));
	CHECK(ledger_match(&f, &c));
	ledger_parse_query("vip=we", &f, why, sizeof(why));
	CHECK(!ledger_match(&f, &c));
	/* Not connected yet: no source address, so no ?snat= match. */
	c.snat = NULL;
	ledger_parse_query("snat=198.18.0.10", &f, why, sizeof(why));
	CHECK(!ledger_match(&f, &c));
	ledger_parse_query("snat=[2001:db8::1]", &f, why, sizeof(why));
	c.snat = (struct sockaddr *)&snat;
	CHECK(!ledger_match(&f, &c));
}

int main(void)
{
	test_long_lived();
	test_time_wait();
	test_addresses();
	test_query();
	test_match();
	return unit_done("test_budget");
}
