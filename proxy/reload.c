#include "reload.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/queue.h>

#include "health.h"
#include "log.h"
#include "snat.h"

/* A configuration loaded by SIGHUP and the runtime built from it. */
struct generation {
	struct config cfg;
	struct runtime rt;
	LIST_ENTRY(generation) link; /* on the retired ones, newest first */
};

struct reload {
	struct runtime *root, *cur;
	struct generation *gen;          /* the current one, NULL while root is */
	LIST_HEAD(, generation) retired; /* waiting for their last holder */
	struct worker *w;
	struct admin *admin;
};

struct reload *reload_new(struct runtime *root, struct worker *w, struct admin *admin)
{
	struct reload *rl = calloc(1, sizeof(*rl));

	if (rl) {
		rl->root = rl->cur = root;
		rl->w = w;
		rl->admin = admin;
	}
	return rl;
}

struct runtime *reload_current(struct reload *rl)
{
	return rl->cur;
}

/* config_load's messages, one log line each. */
static void reload_log_errors(char *text)
{
	char *save = NULL;

	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		log_err("SIGHUP: %s", l);
}

/* Keys that shape what was set up once at start: the worker threads and
 * their buffers refuse the reload; the rest keep their running value. */
static int reload_fixed_keys(const struct config *old, struct config *cfg)
{
	if (cfg->workers != old->workers || cfg->buffers != old->buffers ||
	    cfg->buffer_size != old->buffer_size) {
		log_err("SIGHUP: %s: workers, buffers and buffer_size change only at a restart; "
			"keeping the running configuration",
			cfg->path);
		return -EINVAL;
	}
	if (memcmp(&cfg->admin, &old->admin, sizeof(cfg->admin)) || strcmp(cfg->user, old->user) ||
	    strcmp(cfg->access_log, old->access_log) || cfg->log_format != old->log_format)
		log_warn("SIGHUP: %s: admin, user, access_log and log_format change only at a "
			 "restart; they keep their running values",
			 cfg->path);
	cfg->admin = old->admin;
	memcpy(cfg->user, old->user, sizeof(cfg->user));
	memcpy(cfg->access_log, old->access_log, sizeof(cfg->access_log));
	cfg->log_format = old->log_format;
	return 0;
}

static int reload_load(struct reload *rl, struct config *cfg)
{
	const char *path = rl->cur->cfg->path;
	char *text = NULL;
	size_t len = 0;
	FILE *errs = open_memstream(&text, &len);
	/* The SNAT addresses are checked again: one not on this host would fail
	 * every connection; user and access_log keep their running values. */
	int ret = errs ? config_load_host(path, cfg, errs, CONFIG_HOST_SNAT) : -ENOMEM;

	if (errs)
		fclose(errs);
	if (ret < 0) {
		if (text)
			reload_log_errors(text);
		log_err("SIGHUP: %s: %s; keeping the running configuration", path,
			ret == -EINVAL ? "invalid" : strerror(-ret));
	}
	free(text);
	if (ret == 0 && reload_fixed_keys(rl->cur->cfg, cfg) < 0) {
		config_free(cfg);
		ret = -EINVAL;
	}
	return ret;
}

static bool reload_pending(struct reload *rl)
{
	for (int i = 0; i < rl->root->nworkers; i++)
		if (worker_reload_pending(&rl->w[i]))
			return true;
	return false;
}

/* Workers switch within one turn of their loop (they are woken for it);
 * the wait is bounded so that a stuck worker cannot hang the main thread. */
static void reload_wait_switch(struct reload *rl)
{
	const struct timespec ms = {.tv_sec = 0, .tv_nsec = 1000000L};

	for (int i = 0; i < 5000 && reload_pending(rl); i++)
		nanosleep(&ms, NULL);
	if (reload_pending(rl))
		log_warn("SIGHUP: a worker has not switched after 5 s; it will at its next turn");
}

/* Every worker's plan, or none: a listener that cannot be bound refuses the
 * whole reload (the reason is logged with the config's file and line). */
static int reload_prepare(struct reload *rl, struct runtime *rt, struct worker_reload **plans)
{
	int n = rl->root->nworkers;

	for (int i = 0; i < n; i++) {
		int ret = worker_reload_prepare(&rl->w[i], rt, &plans[i]);
		if (ret < 0) {
			for (int j = 0; j < i; j++)
				worker_reload_discard(plans[j]);
			return ret;
		}
	}
	return 0;
}

static int reload_start(struct reload *rl, struct generation *g)
{
	int n = rl->root->nworkers;
	struct worker_reload **plans = calloc((size_t)n, sizeof(*plans));
	int ret = plans ? runtime_init_next(&g->rt, &g->cfg, rl->cur) : -ENOMEM;

	/* The checks' certificates are loaded and examined here, as at start:
	 * a reload that cannot check its servers is refused. */
	if (ret == 0 && (ret = health_init(&g->rt, stderr)) < 0) {
		health_free(&g->rt);
		runtime_free(&g->rt);
	}
	if (ret == 0) {
		atomic_store(&g->rt.refs, n + (rl->admin ? 1 : 0));
		ret = reload_prepare(rl, &g->rt, plans);
		if (ret < 0) {
			health_free(&g->rt);
			runtime_free(&g->rt);
		}
	}
	if (ret < 0) {
		log_err("SIGHUP: %s: %s; keeping the running configuration", g->cfg.path,
			ret == -ENOMEM ? "out of memory"
			: ret == -EINVAL
			    ? "a health check's certificates cannot be used (see above)"
			    : "cannot listen on every address");
		free(plans);
		return ret;
	}
	for (int i = 0; i < n; i++)
		worker_reload(&rl->w[i], plans[i]);
	free(plans);
	reload_wait_switch(rl);
	admin_set_runtime(rl->admin, &g->rt);
	return 0;
}

void reload_run(struct reload *rl)
{
	struct generation *g;

	if (reload_pending(rl)) {
		log_err("SIGHUP: the previous reload is still being applied; ignored");
		return;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		log_err("SIGHUP: out of memory; keeping the running configuration");
		return;
	}
	if (reload_load(rl, &g->cfg) < 0) {
		free(g);
		return;
	}
	if (reload_start(rl, g) < 0) {
		config_free(&g->cfg);
		free(g);
		return;
	}
	if (rl->gen)
		LIST_INSERT_HEAD(&rl->retired, rl->gen, link);
	rl->gen = g;
	rl->cur = &g->rt;
	snat_check_routes(rl->cur);
	log_info("SIGHUP: %s reloaded: %d vip(s), %d pool(s)", g->cfg.path, g->cfg.nvips,
		 g->cfg.npools);
	reload_collect(rl);
}

static void reload_free_gen(struct generation *g)
{
	health_free(&g->rt);
	runtime_free(&g->rt);
	config_free(&g->cfg);
	free(g);
}

void reload_collect(struct reload *rl)
{
	struct generation *g = LIST_FIRST(&rl->retired), *next;

	for (; g; g = next) {
		next = LIST_NEXT(g, link);
		if (atomic_load(&g->rt.refs) > 0)
			continue;
		LIST_REMOVE(g, link);
		log_debug("a configuration replaced by SIGHUP has no connection left: freed");
		reload_free_gen(g);
	}
}

void reload_free(struct reload *rl)
{
	if (!rl)
		return;
	struct generation *g;

	while ((g = LIST_FIRST(&rl->retired))) {
		LIST_REMOVE(g, link);
		reload_free_gen(g);
	}
	if (rl->gen)
		reload_free_gen(rl->gen);
	free(rl);
}
