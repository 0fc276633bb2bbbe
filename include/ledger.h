/* ledger: the open connections, read across threads for GET /connections.
 *
 * Connections belong to their worker and are never touched by another
 * thread. The admin thread posts a request (a filter and a limit) in each
 * worker's slot and wakes the worker through the eventfd its ring already
 * reads; between two batches of completions the worker looks at no more
 * than LEDGER_STEP of its connections, writes the matching ones as JSON
 * objects into the slot's buffer, and once it has seen them all (or filled
 * the limit) marks the slot done and wakes the admin thread. The data path
 * pays one atomic load per loop iteration while nothing is asked. */
#ifndef SNATPROXY_LEDGER_H
#define SNATPROXY_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"

#define LEDGER_LIMIT_DEFAULT 1000
#define LEDGER_LIMIT_MAX     10000
/* Connections a worker looks at per loop iteration: about 30 us of work
 * (measured with 9,000 connections), 0.5 ms on the first walk that reads
 * the source addresses (a getsockname each, then kept); a worker with
 * 100,000 connections answers in about 200 iterations, and none of its
 * batches waits longer than one step for the ledger. */
#define LEDGER_STEP 512
/* The admin thread waits this long for the workers' answers. */
#define LEDGER_WAIT_MS 3000

/* ?client=, ?snat=, ?server= (ADDR:PORT, or ADDR for any port), ?vip=NAME,
 * ?limit=N. A family of 0 matches anything. */
struct ledger_filter {
	struct sockaddr_storage client, snat, server;
	char vip[CONFIG_NAME_MAX];
	unsigned limit;
};

/* One open connection as its worker describes it; snat and server are NULL
 * while not known (connecting, or waiting for a ClientHello). */
struct ledger_conn {
	const char *vip, *sni;
	const struct sockaddr *client, *snat, *server;
	uint64_t to_server, to_client, age_ms;
};

/* Parses a query string (after the '?', may be empty). Pure. Returns 0, or
 * -EINVAL with a one-line reason ending in a newline in `why`. */
int ledger_parse_query(const char *query, struct ledger_filter *f, char *why, size_t len);
bool ledger_match(const struct ledger_filter *f, const struct ledger_conn *c);

struct ledger;
struct relay;

/* One slot per worker; NULL without memory. */
struct ledger *ledger_new(int nworkers);
void ledger_free(struct ledger *l);
/* The eventfd that worker `worker` reads (worker.c). */
void ledger_set_wake(struct ledger *l, int worker, int fd);

/* On worker `worker`'s thread, after each batch of completions: goes on with
 * a request if one is posted. `stopping`: the worker is leaving its loop,
 * so a request in progress ends with what it has. */
void ledger_serve(struct ledger *l, int worker, struct relay *r, bool stopping);

/* On the admin thread: asks every worker, waits for them (LEDGER_WAIT_MS at
 * most) and returns a JSON array in *body (malloc'd). *truncated says the
 * limit was reached. Returns 0, -ENOMEM, or -EBUSY when a worker has not
 * finished a previous request yet. */
int ledger_collect(struct ledger *l, const struct ledger_filter *f, char **body, size_t *len,
		   bool *truncated);

#endif
