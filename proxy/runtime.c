#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

#include "addr.h"
#include "budget.h"
#include "ledger.h"
#include "runtime.h"

static int runtime_pool_init(struct runtime_pool *rp, const struct config_pool *cfg)
{
	rp->cfg = cfg;
	rp->stats = calloc((size_t)cfg->nservers, sizeof(*rp->stats));
	if (!rp->stats)
		return -ENOMEM;
	return balance_pool_init(&rp->bal, cfg);
}

static int runtime_vip_init(struct runtime *rt, struct runtime_vip *rv, const struct config_vip *cfg)
{
	rv->cfg = cfg;
	rv->pool = &rt->pools[cfg->pool];
	rv->connect_ts.tv_sec = (long long)(cfg->timeout_connect_ms / 1000);
	rv->connect_ts.tv_nsec = (long long)(cfg->timeout_connect_ms % 1000) * 1000000;
	char why[512];
	int ret = tls_vip_init(&rv->tls, cfg, rt->cfg->path, rt->nworkers,
			       rv->pool->cfg->nservers, why, sizeof(why));
	if (ret < 0) {
		if (ret != -ENOMEM)
			log_err("%s", why);
		return ret;
	}
	if (cfg->nsnat) {
		rv->snat = calloc((size_t)cfg->nsnat, sizeof(*rv->snat));
		if (!rv->snat)
			return -ENOMEM;
		for (int i = 0; i < cfg->nsnat; i++)
			rv->snat[i].addr = cfg->snat_addrs[i];
	}
	return budget_vip_init(rv, rt->cfg);
}

/* Descriptors kept aside from client connections. */
static int runtime_nofile_reserve(const struct config *cfg, int nworkers)
{
	int n = 64; /* standard streams, logs, admin connections, OpenSSL's files */

	for (int v = 0; v < cfg->nvips; v++)
		n += cfg->vips[v].nlisten * nworkers;
	for (int p = 0; p < cfg->npools; p++)
		n += cfg->pools[p].nservers; /* a health check each */
	return n + 8 * nworkers;          /* rings, eventfds, relay's spare descriptors */
}

/* A client connection holds two descriptors (client and server sockets).
 * `auto` takes what the open-file limit leaves after the reserve, so the
 * limit never promises what the process cannot open; a configured limit
 * above that is kept but said. */
static int runtime_max_connections(const struct config *cfg, int nworkers)
{
	struct rlimit rl = {.rlim_cur = 1024};
	int reserve = runtime_nofile_reserve(cfg, nworkers);

	getrlimit(RLIMIT_NOFILE, &rl);
	long long room = ((long long)rl.rlim_cur - reserve) / 2;
	if (room < 1)
		room = 1;
	if (room > 10000000)
		room = 10000000;
	if (cfg->max_connections == 0)
		return (int)room;
	if (cfg->max_connections > room)
		log_warn("%s: max_connections = %d needs %lld file descriptors, but the limit is "
			 "%llu: at about %lld connections, new clients will wait for descriptors "
			 "(raise ulimit -n or LimitNOFILE=, or use max_connections = auto)",
			 cfg->path, cfg->max_connections, 2LL * cfg->max_connections + reserve,
			 (unsigned long long)rl.rlim_cur, room);
	return cfg->max_connections;
}

int runtime_init(struct runtime *rt, const struct config *cfg)
{
	int ret;

	memset(rt, 0, sizeof(*rt));
	rt->cfg = cfg;
	rt->root = rt;
	rt->nworkers = cfg->workers;
	if (rt->nworkers <= 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		rt->nworkers = n > 0 ? (int)(n > 64 ? 64 : n) : 1;
	}
	rt->max_connections = runtime_max_connections(cfg, rt->nworkers);
	rt->pools = calloc((size_t)cfg->npools, sizeof(*rt->pools));
	rt->vips = calloc((size_t)cfg->nvips, sizeof(*rt->vips));
	rt->wstats = calloc((size_t)rt->nworkers, sizeof(*rt->wstats));
	rt->ledger = ledger_new(rt->nworkers);
	rt->start_time = (uint64_t)time(NULL);
	if (!rt->pools || !rt->vips || !rt->wstats || !rt->ledger) {
		runtime_free(rt);
		return -ENOMEM;
	}
	for (int i = 0; i < cfg->npools; i++) {
		ret = runtime_pool_init(&rt->pools[i], &cfg->pools[i]);
		if (ret < 0) {
			runtime_free(rt);
			return ret;
		}
	}
	for (int i = 0; i < cfg->nvips; i++) {
		ret = runtime_vip_init(rt, &rt->vips[i], &cfg->vips[i]);
		if (ret < 0) {
			runtime_free(rt);
			return ret;
		}
	}
	return 0;
}

void runtime_free(struct runtime *rt)
{
	for (int i = 0; rt->pools && i < rt->cfg->npools; i++) {
		balance_pool_free(&rt->pools[i].bal);
		free(rt->pools[i].stats);
	}
	for (int i = 0; rt->vips && i < rt->cfg->nvips; i++) {
		free(rt->vips[i].snat);
		budget_vip_free(&rt->vips[i]);
		tls_vip_free(&rt->vips[i].tls);
	}
	free(rt->pools);
	free(rt->vips);
	if (rt->root == rt) {
		free(rt->wstats);
		ledger_free(rt->ledger);
	}
	memset(rt, 0, sizeof(*rt));
}

/* Down stays down across a reload where something can bring the server
 * back: the new pool's checks, or with check = none its trial after
 * fail_timeout. Down from failed client connects (check = none on both
 * sides) keeps its timer, so a dead server does not cost check_fall slow
 * connects again after each reload; that is the same server only at the
 * same address, and a shorter new fail_timeout shortens the wait. Down by
 * checks the pool no longer has, or without fail_timeout, nothing would end
 * it: the server starts up. */
static unsigned runtime_carry_down(struct runtime_pool *to, int i, const struct runtime_pool *from,
				   int j, unsigned flags)
{
	const struct sockaddr *na = (const struct sockaddr *)&to->cfg->servers[i].addr;
	const struct sockaddr *oa = (const struct sockaddr *)&from->cfg->servers[j].addr;

	if (!(flags & BALANCE_DOWN) || to->cfg->check.type != CONFIG_CHECK_NONE)
		return flags;
	if (!to->bal.fail_timeout_ms || !from->bal.fail_timeout_ms || !addr_equal(na, oa))
		return flags & ~(unsigned)BALANCE_DOWN;
	uint64_t at = atomic_load(&from->bal.srv[j].retry_ms);
	uint64_t latest = balance_now_ms() + to->bal.fail_timeout_ms;
	atomic_store(&to->bal.srv[i].retry_ms, at < latest ? at : latest);
	return flags;
}

static void runtime_carry_server(struct runtime_pool *to, int i, const struct runtime_pool *from,
				 int j)
{
	const struct runtime_server_stats *a = &from->stats[j];
	struct runtime_server_stats *b = &to->stats[i];
	unsigned flags = atomic_load(&from->bal.srv[j].flags);

	atomic_store(&to->bal.srv[i].flags, runtime_carry_down(to, i, from, j, flags));
	atomic_store(&b->conns, atomic_load(&a->conns));
	atomic_store(&b->bytes_in, atomic_load(&a->bytes_in));
	atomic_store(&b->bytes_out, atomic_load(&a->bytes_out));
	atomic_store(&b->connect_fail, atomic_load(&a->connect_fail));
	atomic_store(&b->retries, atomic_load(&a->retries));
	atomic_store(&b->fail_refused, atomic_load(&a->fail_refused));
	atomic_store(&b->fail_timeout, atomic_load(&a->fail_timeout));
	atomic_store(&b->fail_error, atomic_load(&a->fail_error));
}

static void runtime_carry_pool(struct runtime_pool *to, const struct runtime *prev)
{
	for (int p = 0; p < prev->cfg->npools; p++) {
		const struct runtime_pool *from = &prev->pools[p];
		if (strcmp(from->cfg->name, to->cfg->name) != 0)
			continue;
		for (int i = 0; i < to->cfg->nservers; i++)
			for (int j = 0; j < from->cfg->nservers; j++)
				if (strcmp(to->cfg->servers[i].name, from->cfg->servers[j].name) == 0)
					runtime_carry_server(to, i, from, j);
	}
}

static void runtime_carry_vip(struct runtime_vip *to, const struct runtime *prev)
{
	for (int v = 0; v < prev->cfg->nvips; v++) {
		const struct runtime_vip *from = &prev->vips[v];
		if (strcmp(from->cfg->name, to->cfg->name) != 0)
			continue;
		atomic_store(&to->conns, atomic_load(&from->conns));
		atomic_store(&to->bytes_in, atomic_load(&from->bytes_in));
		atomic_store(&to->bytes_out, atomic_load(&from->bytes_out));
	}
}

int runtime_init_next(struct runtime *rt, const struct config *cfg, const struct runtime *prev)
{
	/* Workers and their counters stay with the root: the caller refuses
	 * a reload that changes `workers`. */
	int ret = runtime_init(rt, cfg);
	if (ret < 0)
		return ret;
	free(rt->wstats);
	rt->wstats = NULL;
	ledger_free(rt->ledger);
	rt->ledger = NULL;
	rt->nworkers = prev->nworkers;
	rt->root = prev->root;
	rt->start_time = prev->root->start_time;
	for (int p = 0; p < cfg->npools; p++)
		runtime_carry_pool(&rt->pools[p], prev);
	for (int v = 0; v < cfg->nvips; v++)
		runtime_carry_vip(&rt->vips[v], prev);
	return 0;
}
