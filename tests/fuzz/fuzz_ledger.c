/* ledger_parse_query on arbitrary bytes, as GET /connections?QUERY hands
 * it what follows the '?'. Properties: taken or refused, nothing else; a
 * refusal says why in one line; a filter taken has a limit within bounds,
 * a terminated VIP name and addresses of a known family; and matching it
 * against a connection never reads past what it was given. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "fuzz.h"
#include "ledger.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ledger_filter f;
	struct sockaddr_storage a;
	char why[128] = "", *q = malloc(size + 1);
	struct ledger_conn c = {.vip = "web",
				.client = (struct sockaddr *)&a,
				.snat = (struct sockaddr *)&a,
				.server = NULL};

	if (!q)
		return 0;
	memcpy(q, data, size);
	q[size] = '\0';
	int ret = ledger_parse_query(q, &f, why, sizeof(why));
	FUZZ_ASSERT(ret == 0 || ret == -EINVAL);
	if (ret < 0) {
		size_t n = strlen(why);
		FUZZ_ASSERT(n > 0 && why[n - 1] == '\n' && strchr(why, '\n') == why + n - 1);
	} else {
		FUZZ_ASSERT(f.limit >= 1 && f.limit <= LEDGER_LIMIT_MAX);
		FUZZ_ASSERT(memchr(f.vip, '\0', sizeof(f.vip)) != NULL);
		FUZZ_ASSERT(f.client.ss_family == 0 || f.client.ss_family == AF_INET ||
			    f.client.ss_family == AF_INET6);
		addr_parse("198.18.0.10:52311", ADDR_PORT_REQUIRED, &a);
		ledger_match(&f, &c);
	}
	free(q);
	return 0;
}
