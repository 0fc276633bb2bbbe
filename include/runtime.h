/* runtime: what the workers share, built once from the configuration:
 * pools (with their balancing state), VIPs, SNAT source pools and the
 * counters. Read-only after start except for the atomics. */
#ifndef SNATPROXY_RUNTIME_H
#define SNATPROXY_RUNTIME_H

#include <stdint.h>
#include <linux/time_types.h>

#include "balance.h"
#include "config.h"
#include "log.h"
#include "tls.h"

struct health_pool;
struct ledger;
struct budget_vip;

struct runtime_server_stats {
	_Atomic uint64_t conns, bytes_in, bytes_out, connect_fail, retries;
	/* connect_fail by cause (the admin endpoint's metrics) */
	_Atomic uint64_t fail_refused, fail_timeout, fail_error;
};

struct runtime_pool {
	const struct config_pool *cfg;
	struct balance_pool bal;
	struct runtime_server_stats *stats; /* one per server */
	struct health_pool *health;         /* health checks (health.c); NULL until health_init */
};

struct runtime_snat_addr {
	struct sockaddr_storage addr;
	_Atomic uint64_t exhausted; /* connects refused with EADDRNOTAVAIL */
};

struct runtime_vip {
	const struct config_vip *cfg;
	struct runtime_pool *pool;
	struct runtime_snat_addr *snat; /* cfg->nsnat entries */
	struct budget_vip *budget;	/* SNAT port budgets (budget.c); NULL with snat = off */
	struct __kernel_timespec connect_ts;
	struct log_ratelimit rl_snat, rl_transparent, rl_accept;
	struct tls_vip tls; /* tls = terminate: contexts and handshake counters */
	_Atomic uint64_t conns;
	_Atomic int active;		      /* open client connections */
	_Atomic uint64_t bytes_in, bytes_out; /* from / to clients, counted at close */
};

/* Buckets of the loop's batch histograms (LOOP_HIST in loop.h). */
#define RUNTIME_HIST 7

/* A worker's ring counters, published by the worker itself once per tick
 * (relaxed stores), so the admin endpoint reads them without touching the
 * worker's ring or slowing its completion path. */
struct runtime_worker_stats {
	_Atomic uint64_t submitted, completed, cq_overflow, enobufs;
	_Atomic uint64_t batch_n[RUNTIME_HIST], batch_us[RUNTIME_HIST], busy_us;
	_Atomic uint32_t buffers_free, buffers;
	_Atomic int live, conns;
};

/* Why a worker stopped accepting for a while (the clients wait in the
 * kernel's backlog meanwhile). */
enum runtime_pause { RUNTIME_PAUSE_MAXCONN, RUNTIME_PAUSE_NOFILE, RUNTIME_PAUSE_N };

struct runtime {
	const struct config *cfg;
	int nworkers;
	/* max_connections in force: the configured one, or with `auto` what
	 * the open-file limit can hold (runtime_max_connections). */
	int max_connections;
	struct runtime_pool *pools;
	struct runtime_vip *vips;
	_Atomic int live; /* client connections open, against max_connections */
	struct log_ratelimit rl_maxconn, rl_nofile;
	_Atomic uint64_t paused[RUNTIME_PAUSE_N]; /* listeners paused, by cause */
	_Atomic uint64_t nofile_waits; /* connections that waited for a server socket */
	/* Connections waiting for one now, over all workers: while any does,
	 * no worker accepts (the descriptor table is the process's). */
	_Atomic int nofile_waiting;
	/* Until then (monotonic ms), accepts take one connection at a time:
	 * a worker ran out of descriptors a moment ago. */
	_Atomic uint64_t nofile_scarce_ms;
	struct runtime_worker_stats *wstats; /* nworkers */
	struct ledger *ledger;		     /* GET /connections: a slot per worker */
	/* Bumped by the admin endpoint when a server is disabled: each worker
	 * then closes that server's connections at its next tick. */
	_Atomic unsigned kick;
	uint64_t start_time; /* Unix seconds */
	/* SIGHUP builds a new runtime (a generation) from the new config.
	 * `root`, the first one, holds what outlives generations: live,
	 * rl_maxconn, wstats, ledger, kick and start_time. `refs` counts the holders
	 * of a generation (each worker while it is current or has connections
	 * of it, the admin endpoint while it shows it); at 0 it can be freed. */
	struct runtime *root;
	_Atomic int refs;
};

int runtime_init(struct runtime *rt, const struct config *cfg);
/* A generation after `prev`: servers and VIPs that keep their names keep
 * their operator/health flags and their counters; a server down for failed
 * client connects (check = none) keeps its wait if its address stays too. */
int runtime_init_next(struct runtime *rt, const struct config *cfg, const struct runtime *prev);
void runtime_free(struct runtime *rt);

#endif
