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

struct runtime_server_stats {
	_Atomic uint64_t conns, bytes_in, bytes_out, connect_fail, retries;
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
	struct __kernel_timespec connect_ts;
	struct log_ratelimit rl_snat, rl_transparent;
	struct tls_vip tls; /* tls = terminate: contexts and handshake counters */
	_Atomic uint64_t conns, refused;
};

struct runtime {
	const struct config *cfg;
	int nworkers;
	struct runtime_pool *pools;
	struct runtime_vip *vips;
	_Atomic int live; /* client connections open, against max_connections */
	struct log_ratelimit rl_maxconn;
};

int runtime_init(struct runtime *rt, const struct config *cfg);
void runtime_free(struct runtime *rt);

#endif
