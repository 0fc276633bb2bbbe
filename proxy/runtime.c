#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

#include "addr.h"
#include "budget.h"
#include "ledger.h"
#include "runtime.h"

const char *const runtime_refuse_name[RUNTIME_REFUSE_N] = {
    [RUNTIME_REFUSE_NO_SERVER] = "no_server",
    [RUNTIME_REFUSE_CONNECT_FAILED] = "connect_failed",
    [RUNTIME_REFUSE_BAD_HELLO] = "bad_hello",
    [RUNTIME_REFUSE_HELLO_TIMEOUT] = "hello_timeout",
    [RUNTIME_REFUSE_TLS_HANDSHAKE] = "tls_handshake",
};

static uint64_t runtime_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct runtime_bytes_rows *runtime_rows_new(int nworkers)
{
	size_t len =
	    sizeof(struct runtime_bytes_rows) + (size_t)nworkers * sizeof(struct runtime_bytes);
	struct runtime_bytes_rows *b = aligned_alloc(_Alignof(struct runtime_bytes_rows), len);

	if (b) {
		memset(b, 0, len);
		b->refs = 1;
		b->n = nworkers;
	}
	return b;
}

static void runtime_rows_put(struct runtime_bytes_rows *b)
{
	if (b && --b->refs == 0)
		free(b);
}

/* Another generation's rows, in place of these. */
static void runtime_rows_adopt(struct runtime_bytes_rows **to, struct runtime_bytes_rows *from)
{
	runtime_rows_put(*to);
	from->refs++;
	*to = from;
}

static void runtime_rows_free(struct runtime *rt)
{
	for (int i = 0; rt->pools && i < rt->cfg->npools; i++) {
		struct runtime_pool *rp = &rt->pools[i];
		for (int s = 0; rp->bytes && s < rp->cfg->nservers; s++)
			runtime_rows_put(rp->bytes[s]);
		free(rp->bytes);
		rp->bytes = NULL;
	}
	for (int i = 0; rt->vips && i < rt->cfg->nvips; i++) {
		runtime_rows_put(rt->vips[i].bytes);
		rt->vips[i].bytes = NULL;
	}
}

/* The per-worker byte rows, once the number of workers is known. */
static int runtime_rows_alloc(struct runtime *rt)
{
	runtime_rows_free(rt);
	for (int i = 0; i < rt->cfg->npools; i++) {
		struct runtime_pool *rp = &rt->pools[i];
		rp->bytes = calloc((size_t)rp->cfg->nservers, sizeof(*rp->bytes));
		if (!rp->bytes)
			return -ENOMEM;
		for (int s = 0; s < rp->cfg->nservers; s++)
			if (!(rp->bytes[s] = runtime_rows_new(rt->nworkers)))
				return -ENOMEM;
	}
	for (int i = 0; i < rt->cfg->nvips; i++)
		if (!(rt->vips[i].bytes = runtime_rows_new(rt->nworkers)))
			return -ENOMEM;
	return 0;
}

static uint64_t runtime_rows_sum(const struct runtime_bytes_rows *b, int d)
{
	uint64_t n = 0;

	for (int w = 0; b && w < b->n; w++)
		n += atomic_load_explicit(&b->w[w].n[d], memory_order_relaxed);
	return n;
}

uint64_t runtime_vip_bytes(const struct runtime_vip *v, int d)
{
	return runtime_rows_sum(v->bytes, d);
}

uint64_t runtime_server_bytes(const struct runtime_pool *p, int s, int d)
{
	return runtime_rows_sum(p->bytes ? p->bytes[s] : NULL, d);
}

void runtime_state_changed(struct runtime_pool *p, int s, bool down)
{
	atomic_store(&p->stats[s].state_ms, runtime_unix_ms());
	if (down)
		atomic_fetch_add(&p->stats[s].downs, 1);
}

static int runtime_pool_init(struct runtime_pool *rp, const struct config_pool *cfg)
{
	rp->cfg = cfg;
	rp->stats = calloc((size_t)cfg->nservers, sizeof(*rp->stats));
	if (!rp->stats)
		return -ENOMEM;
	for (int i = 0; i < cfg->nservers; i++)
		atomic_store(&rp->stats[i].state_ms, runtime_unix_ms());
	return balance_pool_init(&rp->bal, cfg);
}

static int runtime_vip_init(struct runtime *rt, struct runtime_vip *rv,
			    const struct config_vip *cfg)
{
	rv->cfg = cfg;
	rv->pool = &rt->pools[cfg->pool];
	rv->connect_ts.tv_sec = (long long)(cfg->timeout_connect_ms / 1000);
	rv->connect_ts.tv_nsec = (long long)(cfg->timeout_connect_ms % 1000) * 1000000;
	char why[512];
	int ret = tls_vip_init(&rv->tls, cfg, rt->cfg->path, rt->nworkers, rv->pool->cfg->nservers,
			       why, sizeof(why));
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
	return n + 8 * nworkers;             /* rings, eventfds, relay's spare descriptors */
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
	if (runtime_rows_alloc(rt) < 0) {
		runtime_free(rt);
		return -ENOMEM;
	}
	return 0;
}

void runtime_free(struct runtime *rt)
{
	runtime_rows_free(rt);
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
	runtime_rows_adopt(&to->bytes[i], from->bytes[j]);
	atomic_store(&b->connect_fail, atomic_load(&a->connect_fail));
	atomic_store(&b->retries, atomic_load(&a->retries));
	atomic_store(&b->fail_refused, atomic_load(&a->fail_refused));
	atomic_store(&b->fail_timeout, atomic_load(&a->fail_timeout));
	atomic_store(&b->fail_error, atomic_load(&a->fail_error));
	for (int r = 0; r < RUNTIME_CHECK_RESULTS; r++)
		atomic_store(&b->checks[r], atomic_load(&a->checks[r]));
	atomic_store(&b->check_us, atomic_load(&a->check_us));
	for (int h = 0; h < RUNTIME_CHECK_HIST; h++)
		atomic_store(&b->check_hist[h], atomic_load(&a->check_hist[h]));
	atomic_store(&b->check_us_sum, atomic_load(&a->check_us_sum));
	atomic_store(&b->downs, atomic_load(&a->downs));
	atomic_store(&b->state_ms, atomic_load(&a->state_ms));
	atomic_store(&b->down_err, atomic_load(&a->down_err));
}

static void runtime_carry_pool(struct runtime_pool *to, const struct runtime *prev)
{
	for (int p = 0; p < prev->cfg->npools; p++) {
		const struct runtime_pool *from = &prev->pools[p];
		if (strcmp(from->cfg->name, to->cfg->name) != 0)
			continue;
		for (int i = 0; i < to->cfg->nservers; i++)
			for (int j = 0; j < from->cfg->nservers; j++)
				if (strcmp(to->cfg->servers[i].name, from->cfg->servers[j].name) ==
				    0)
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
		runtime_rows_adopt(&to->bytes, from->bytes);
		for (int r = 0; r < RUNTIME_REFUSE_N; r++)
			atomic_store(&to->refused[r], atomic_load(&from->refused[r]));
		atomic_store(&to->rate_peak, atomic_load(&from->rate_peak));
		for (int r = 0; r < TLS_RESULT_N; r++)
			atomic_store(&to->tls.results[r], atomic_load(&from->tls.results[r]));
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
	if (rt->nworkers != prev->nworkers) {
		rt->nworkers = prev->nworkers;
		if (runtime_rows_alloc(rt) < 0) {
			runtime_free(rt);
			return -ENOMEM;
		}
	}
	rt->root = prev->root;
	rt->start_time = prev->root->start_time;
	for (int p = 0; p < cfg->npools; p++)
		runtime_carry_pool(&rt->pools[p], prev);
	for (int v = 0; v < cfg->nvips; v++)
		runtime_carry_vip(&rt->vips[v], prev);
	return 0;
}

/* A server takes new connections with no flag set (down, drain, disabled). */
static bool runtime_pool_up(const struct runtime_pool *rp)
{
	for (int i = 0; i < rp->bal.n; i++)
		if (atomic_load(&rp->bal.srv[i].flags) == 0)
			return true;
	return false;
}

int runtime_ready(const struct runtime *rt, char *why, size_t len)
{
	static const char *const states[] = {
	    [RUNTIME_DRAINED] = "draining (POST /drain; POST /undrain ends it)",
	    [RUNTIME_STOP_DRAIN] = "draining before a stop (SIGTERM; drain_delay)",
	    [RUNTIME_STOPPING] = "stopping: no new connections",
	};
	int st = atomic_load(&rt->root->state);

	if (st != RUNTIME_SERVING) {
		snprintf(why, len, "not ready: %s\n", states[st]);
		return -EAGAIN;
	}
	for (int v = 0; v < rt->cfg->nvips; v++) {
		const struct runtime_vip *rv = &rt->vips[v];
		if (!runtime_pool_up(rv->pool)) {
			snprintf(why, len, "not ready: vip %s: no server of pool %s is up\n",
				 rv->cfg->name, rv->pool->cfg->name);
			return -EAGAIN;
		}
	}
	snprintf(why, len, "ready: %d vip(s), each with a server up\n", rt->cfg->nvips);
	return 0;
}
