/* balance: choosing a server of a pool for a new connection.
 *
 * Pure logic: no sockets, no I/O. A pool and its shared state (health flags,
 * active-connection counts, the round-robin cursor: all atomic, because every
 * worker reads and changes them) live in struct balance_pool. Round robin is
 * pool-wide, not per worker, so that consecutive clients alternate between
 * servers whichever worker accepted them: the smooth weighted sequence is
 * computed once at start and the workers share one atomic cursor into it. */
#ifndef SNATPROXY_BALANCE_H
#define SNATPROXY_BALANCE_H

#include <stdint.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "config.h"

/* A server takes new connections only while none of these flags is set,
 * except for the trial connection of a pool without active checks. */
enum {
	BALANCE_DOWN = 1 << 0,     /* failed its health checks, or client connects */
	BALANCE_DRAIN = 1 << 1,    /* operator: no new connections */
	BALANCE_DISABLED = 1 << 2, /* operator: down now */
};

struct balance_server {
	_Atomic unsigned flags;
	_Atomic int active; /* open connections, counted by balance_pick/release */
	/* Pools without active checks, while BALANCE_DOWN: when one connection
	 * may try the server again (balance_now_ms). */
	_Atomic uint64_t retry_ms;
	int weight;   /* 1..256 */
	int max_conn; /* 0: unlimited */
	bool backup;
};

/* Servers taking part in one round: the primaries, or the backups. */
struct balance_tier {
	uint16_t *sched; /* smooth weighted round robin's sequence, sum(weight) long */
	int sched_len;
	_Atomic uint64_t next; /* round robin's cursor into sched */
	_Atomic unsigned ties; /* leastconn: rotates the start among equals */
};

struct balance_pool {
	enum config_balance algo;
	int n;
	/* Pools without active checks: how long a server that failed its
	 * client connects is skipped before a trial (fail_timeout); 0: such
	 * a pool never marks servers down. 0 too with active checks, which
	 * alone bring a server back. */
	uint64_t fail_timeout_ms;
	struct balance_server *srv;
	struct balance_tier tier[2]; /* [0] primaries, [1] backups */
	/* Consistent-hash ring for CONFIG_BALANCE_SOURCE: points sorted by hash,
	 * each owned by a server; a server's points are spread by its weight. */
	uint32_t *ring_hash;
	uint16_t *ring_srv;
	int ring_len;
};

/* Builds a pool from its configuration. Returns 0 or -ENOMEM / -EINVAL. */
int balance_pool_init(struct balance_pool *p, const struct config_pool *cfg);
void balance_pool_free(struct balance_pool *p);

/* The key CONFIG_BALANCE_SOURCE hashes: the client's address without port. */
uint32_t balance_hash_addr(const struct sockaddr *client);

/* Picks an available server, never `avoid` (-1: none), preferring non-backup
 * servers, and counts the connection in its `active` (which also enforces
 * max_conn without a lock). Returns the server index, or -EAGAIN when no
 * server can take the connection. `key` is used by CONFIG_BALANCE_SOURCE.
 * A retry (avoid >= 0) does not move the round-robin cursor: it takes the
 * server the next connection would get, so that a failed connect costs the
 * rotation no step and the connection after it does not land on the failed
 * server again. */
int balance_pick(struct balance_pool *p, uint32_t key, int avoid);

/* CLOCK_MONOTONIC_COARSE in milliseconds: the clock of retry_ms. */
uint64_t balance_now_ms(void);

/* Pools with fail_timeout_ms: server i failed its client connects. Marks it
 * down (skipped) until fail_timeout from now; then one connection tries it.
 * Called again while it is down (its trial failed), it renews the wait.
 * Returns true when this call took it down. */
bool balance_fail(struct balance_pool *p, int i);

/* Pools with fail_timeout_ms: a connection to server i succeeded. Returns
 * true when this call brought it back from down. */
bool balance_recover(struct balance_pool *p, int i);

/* The connection counted by balance_pick on server i has ended. */
void balance_release(struct balance_pool *p, int i);

#endif
