#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	return 0;
}

int runtime_init(struct runtime *rt, const struct config *cfg)
{
	int ret;

	memset(rt, 0, sizeof(*rt));
	rt->cfg = cfg;
	rt->nworkers = cfg->workers;
	if (rt->nworkers <= 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		rt->nworkers = n > 0 ? (int)(n > 64 ? 64 : n) : 1;
	}
	rt->pools = calloc((size_t)cfg->npools, sizeof(*rt->pools));
	rt->vips = calloc((size_t)cfg->nvips, sizeof(*rt->vips));
	if (!rt->pools || !rt->vips) {
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
		tls_vip_free(&rt->vips[i].tls);
	}
	free(rt->pools);
	free(rt->vips);
	memset(rt, 0, sizeof(*rt));
}
