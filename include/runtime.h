/* runtime: what the workers share, built once from the configuration:
 * pools (with their balancing state), VIPs, SNAT source pools and the
 * counters. Read-only after start except for the atomics. */
#ifndef SNATPROXY_RUNTIME_H
#define SNATPROXY_RUNTIME_H

#include <stdatomic.h>
#include <stdint.h>
#include <linux/time_types.h>

#include "balance.h"
#include "config.h"
#include "log.h"
#include "tls.h"

struct health_pool;
struct ledger;
struct budget_vip;

/* Results a health check can have (enum health_result in health.h). */
#define RUNTIME_CHECK_RESULTS 7
/* Upper bounds of the health checks' duration histogram, in us; the last
 * bucket (RUNTIME_CHECK_HIST) is for longer ones. */
#define RUNTIME_CHECK_LE_US 1000, 5000, 25000, 100000, 500000, 2500000
#define RUNTIME_CHECK_HIST  7

struct runtime_server_stats {
	_Atomic uint64_t conns, connect_fail, retries;
	/* connect_fail by cause (the admin endpoint's metrics) */
	_Atomic uint64_t fail_refused, fail_timeout, fail_error;
	/* Health checks by result (enum health_result), the last one's
	 * duration, the times the server went down, and when its state last
	 * changed (Unix ms): carried over reloads like the counters above. */
	_Atomic uint64_t checks[RUNTIME_CHECK_RESULTS], check_us, downs, state_ms;
	/* Every check's duration: a histogram and the sum, in us. */
	_Atomic uint64_t check_hist[RUNTIME_CHECK_HIST], check_us_sum;
	/* Why it last went down: 0 its checks, else the (positive) errno of
	 * the client connects that failed. */
	_Atomic int down_err;
};

/* Bytes a worker has relayed for one VIP or server, [0] toward the server
 * and [1] toward the client, added as they move (runtime_bytes_add): each
 * worker writes only its own row, a cache line of its own, so counting costs
 * a plain load and store, and the admin thread sums the rows. */
struct runtime_bytes {
	_Alignas(64) _Atomic uint64_t n[2];
};

static inline void runtime_bytes_add(struct runtime_bytes *b, int d, uint64_t n)
{
	atomic_store_explicit(&b->n[d], atomic_load_explicit(&b->n[d], memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* A VIP's or a server's rows, one per worker. A reload that keeps the VIP
 * or server (by name) hands its rows to the new generation, so a connection
 * opened before the reload counts where the metrics are read, for as long
 * as it lasts. refs: the generations holding them (only the main thread,
 * which builds and frees generations, changes it). */
struct runtime_bytes_rows {
	int refs, n;
	struct runtime_bytes w[]; /* [worker], n of them */
};

struct runtime_pool {
	const struct config_pool *cfg;
	struct balance_pool bal;
	struct runtime_server_stats *stats; /* one per server */
	struct health_pool *health;         /* health checks (health.c); NULL until health_init */
	struct runtime_bytes_rows **bytes;  /* [server] */
};

struct runtime_snat_addr {
	struct sockaddr_storage addr;
	_Atomic uint64_t exhausted; /* connects refused with EADDRNOTAVAIL */
};

/* Why a client connection ended before it reached a server. */
enum runtime_refuse {
	RUNTIME_REFUSE_NO_SERVER,      /* no server could take it */
	RUNTIME_REFUSE_CONNECT_FAILED, /* its connects failed, retry included */
	RUNTIME_REFUSE_BAD_HELLO,      /* tls = route: no usable ClientHello */
	RUNTIME_REFUSE_HELLO_TIMEOUT,
	RUNTIME_REFUSE_TLS_HANDSHAKE, /* tls = terminate: failed, or not within timeout_connect */
	RUNTIME_REFUSE_N
};
extern const char *const runtime_refuse_name[RUNTIME_REFUSE_N];

struct runtime_vip {
	const struct config_vip *cfg;
	struct runtime_pool *pool;
	struct runtime_snat_addr *snat; /* cfg->nsnat entries */
	struct budget_vip *budget;      /* SNAT port budgets (budget.c); NULL with snat = off */
	struct __kernel_timespec connect_ts;
	struct log_ratelimit rl_snat, rl_transparent, rl_accept;
	struct tls_vip tls; /* tls = terminate: contexts and handshake counters */
	_Atomic uint64_t conns;
	_Atomic int active;                         /* open client connections */
	struct runtime_bytes_rows *bytes;           /* to and from its servers */
	_Atomic uint64_t refused[RUNTIME_REFUSE_N]; /* client connections, by cause */
	/* New connections per second over the last second, and the highest
	 * seen: sampled by the admin thread (metrics_sample), which alone
	 * writes them and rate_prev, rate_ms. */
	_Atomic uint64_t rate, rate_peak;
	uint64_t rate_prev, rate_ms;
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

/* Whether the node asks for traffic (GET /ready): POST /drain and the
 * first part of a stop (drain_delay) still take new connections, so that
 * keepalived or the BGP daemon moves the VIP before anything is refused. */
enum runtime_state {
	RUNTIME_SERVING,
	RUNTIME_DRAINED,    /* POST /drain, until POST /undrain */
	RUNTIME_STOP_DRAIN, /* SIGTERM, for drain_delay */
	RUNTIME_STOPPING,   /* listeners closed: open connections finish within grace */
};

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
	_Atomic uint64_t nofile_waits;            /* connections that waited for a server socket */
	/* Connections waiting for one now, over all workers: while any does,
	 * no worker accepts (the descriptor table is the process's). */
	_Atomic int nofile_waiting;
	/* Until then (monotonic ms), accepts take one connection at a time:
	 * a worker ran out of descriptors a moment ago. */
	_Atomic uint64_t nofile_scarce_ms;
	struct runtime_worker_stats *wstats; /* nworkers */
	struct ledger *ledger;               /* GET /connections: a slot per worker */
	/* Bumped by the admin endpoint when a server is disabled: each worker
	 * then closes that server's connections at its next tick. */
	_Atomic unsigned kick;
	uint64_t start_time; /* Unix seconds */
	_Atomic int state;   /* enum runtime_state, in the root */
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
/* Ready: serving, and every VIP's pool has a server that takes new
 * connections. Returns 0, or -EAGAIN; `why` gets one line either way. */
int runtime_ready(const struct runtime *rt, char *why, size_t len);

/* Bytes relayed so far toward the server (d = 0) or the client (d = 1),
 * open connections included. */
uint64_t runtime_vip_bytes(const struct runtime_vip *v, int d);
uint64_t runtime_server_bytes(const struct runtime_pool *p, int s, int d);
/* Server s of p changed state (up, down, drain, disabled): for the time
 * in its current state; `down` counts one more down. */
void runtime_state_changed(struct runtime_pool *p, int s, bool down);

#endif
