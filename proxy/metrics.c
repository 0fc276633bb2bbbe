/* metrics: Prometheus exposition, JSON and HTML from the runtime's atomics.
 *
 * The exposition format wants every sample of a metric family together,
 * under one HELP and one TYPE line; so each family is a row of a table
 * (name, type, help, extra label, getter) and the writer loops over the
 * servers (or VIPs, workers) once per row. A pool's figures are the sums of
 * its servers', from the same getters, so the two can never disagree. */
#include "metrics.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "budget.h"

#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)

const char *metrics_state_name(unsigned flags)
{
	if (flags & BALANCE_DISABLED)
		return "disabled";
	if (flags & BALANCE_DOWN)
		return "down";
	if (flags & BALANCE_DRAIN)
		return "drain";
	return "up";
}

/* Label values: backslash, double quote and newline escaped, as the format says. */
static void prom_label(FILE *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', out);
		if (*s == '\n')
			fputs("\\n", out);
		else
			fputc(*s, out);
	}
}

/* HELP and TYPE once per family: rows of one family follow each other, and
 * `last` (128 bytes) holds the family written last. */
static void prom_head(FILE *out, char *last, const char *name, const char *type, const char *help)
{
	if (strcmp(last, name) == 0)
		return;
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	snprintf(last, 128, "%s", name);
}

/* ---- servers and pools ---- */

typedef unsigned long long (*server_get)(const struct runtime_pool *p, int i);

static unsigned long long srv_flags(const struct runtime_pool *p, int i)
{
	return LD(p->bal.srv[i].flags);
}
static unsigned long long srv_active(const struct runtime_pool *p, int i)
{
	int n = LD(p->bal.srv[i].active);
	return n > 0 ? (unsigned long long)n : 0;
}
static unsigned long long srv_conns(const struct runtime_pool *p, int i)
{
	return LD(p->stats[i].conns);
}
static unsigned long long srv_bytes_to_server(const struct runtime_pool *p, int i)
{
	return LD(p->stats[i].bytes_out);
}
static unsigned long long srv_bytes_to_client(const struct runtime_pool *p, int i)
{
	return LD(p->stats[i].bytes_in);
}
static unsigned long long srv_fail_refused(const struct runtime_pool *p, int i)
{
	return LD(p->stats[i].fail_refused);
}
static unsigned long long srv_fail_timeout(const struct runtime_pool *p, int i)
{
	return LD(p->stats[i].fail_timeout);
}
static unsigned long long srv_fail_error(const struct runtime_pool *p, int i)
{
	return LD(p->stats[i].fail_error);
}
static unsigned long long srv_retries(const struct runtime_pool *p, int i)
{
	return LD(p->stats[i].retries);
}
static unsigned long long srv_weight(const struct runtime_pool *p, int i)
{
	return (unsigned long long)p->bal.srv[i].weight;
}
static unsigned long long srv_up(const struct runtime_pool *p, int i)
{
	return srv_flags(p, i) == 0;
}
static unsigned long long srv_is_down(const struct runtime_pool *p, int i)
{
	return strcmp(metrics_state_name((unsigned)srv_flags(p, i)), "down") == 0;
}
static unsigned long long srv_is_drain(const struct runtime_pool *p, int i)
{
	return strcmp(metrics_state_name((unsigned)srv_flags(p, i)), "drain") == 0;
}
static unsigned long long srv_is_disabled(const struct runtime_pool *p, int i)
{
	return strcmp(metrics_state_name((unsigned)srv_flags(p, i)), "disabled") == 0;
}

struct server_family {
	const char *name; /* after snatproxy_server_ / snatproxy_pool_ */
	const char *type, *label, *help;
	server_get get;
	bool pool; /* also summed per pool */
};

static const struct server_family server_families[] = {
    {"connections_active", "gauge", NULL, "Open connections.", srv_active, true},
    {"connections_total", "counter", NULL, "Connections established to the server.", srv_conns,
     true},
    {"bytes_total", "counter", "direction=\"to_server\"",
     "Bytes relayed, counted when a connection ends.", srv_bytes_to_server, true},
    {"bytes_total", "counter", "direction=\"to_client\"",
     "Bytes relayed, counted when a connection ends.", srv_bytes_to_client, true},
    {"connect_failures_total", "counter", "cause=\"refused\"", "Failed connects by cause.",
     srv_fail_refused, true},
    {"connect_failures_total", "counter", "cause=\"timeout\"", "Failed connects by cause.",
     srv_fail_timeout, true},
    {"connect_failures_total", "counter", "cause=\"error\"", "Failed connects by cause.",
     srv_fail_error, true},
    {"retries_total", "counter", NULL,
     "Connections retried on another server after this one failed.", srv_retries, true},
    {"up", "gauge", NULL, "1 when the server takes new connections.", srv_up, false},
    {"weight", "gauge", NULL, "Configured weight.", srv_weight, false},
    {"state", "gauge", "state=\"up\"", "1 for the server's current state.", srv_up, false},
    {"state", "gauge", "state=\"drain\"", "1 for the server's current state.", srv_is_drain, false},
    {"state", "gauge", "state=\"down\"", "1 for the server's current state.", srv_is_down, false},
    {"state", "gauge", "state=\"disabled\"", "1 for the server's current state.", srv_is_disabled,
     false},
};
#define N_SERVER_FAMILIES (sizeof(server_families) / sizeof(server_families[0]))

static void prom_sample(FILE *out, const char *prefix, const char *name, const char *pool,
			const char *server, const char *label, unsigned long long v)
{
	fprintf(out, "snatproxy_%s_%s{pool=\"", prefix, name);
	prom_label(out, pool);
	if (server) {
		fputs("\",server=\"", out);
		prom_label(out, server);
	}
	fprintf(out, "\"%s%s} %llu\n", label ? "," : "", label ? label : "", v);
}

static void prom_servers(FILE *out, const struct runtime *rt, bool pools)
{
	char name[128], last[128] = "";

	for (size_t f = 0; f < N_SERVER_FAMILIES; f++) {
		const struct server_family *sf = &server_families[f];
		if (pools && !sf->pool)
			continue;
		snprintf(name, sizeof(name), "snatproxy_%s_%s", pools ? "pool" : "server",
			 sf->name);
		prom_head(out, last, name, sf->type, sf->help);
		for (int p = 0; p < rt->cfg->npools; p++) {
			const struct runtime_pool *rp = &rt->pools[p];
			unsigned long long sum = 0;
			for (int i = 0; i < rp->cfg->nservers; i++) {
				if (pools)
					sum += sf->get(rp, i);
				else
					prom_sample(out, "server", sf->name, rp->cfg->name,
						    rp->cfg->servers[i].name, sf->label,
						    sf->get(rp, i));
			}
			if (pools)
				prom_sample(out, "pool", sf->name, rp->cfg->name, NULL, sf->label,
					    sum);
		}
	}
}

static void prom_pool_servers(FILE *out, const struct runtime *rt)
{
	fputs("# HELP snatproxy_pool_servers Servers in the pool.\n"
	      "# TYPE snatproxy_pool_servers gauge\n",
	      out);
	for (int p = 0; p < rt->cfg->npools; p++)
		prom_sample(out, "pool", "servers", rt->pools[p].cfg->name, NULL, NULL,
			    (unsigned long long)rt->pools[p].cfg->nservers);
	fputs("# HELP snatproxy_pool_servers_up Servers taking new connections.\n"
	      "# TYPE snatproxy_pool_servers_up gauge\n",
	      out);
	for (int p = 0; p < rt->cfg->npools; p++) {
		unsigned long long up = 0;
		for (int i = 0; i < rt->pools[p].cfg->nservers; i++)
			up += srv_up(&rt->pools[p], i);
		prom_sample(out, "pool", "servers_up", rt->pools[p].cfg->name, NULL, NULL, up);
	}
}

/* ---- VIPs, SNAT addresses, workers ---- */

typedef unsigned long long (*vip_get)(const struct runtime_vip *v);

static unsigned long long vip_active(const struct runtime_vip *v)
{
	int n = LD(v->active);
	return n > 0 ? (unsigned long long)n : 0;
}
static unsigned long long vip_conns(const struct runtime_vip *v)
{
	return LD(v->conns);
}
static unsigned long long vip_bytes_in(const struct runtime_vip *v)
{
	return LD(v->bytes_in);
}
static unsigned long long vip_bytes_out(const struct runtime_vip *v)
{
	return LD(v->bytes_out);
}

static const struct {
	const char *name, *type, *label, *help;
	vip_get get;
} vip_families[] = {
    {"connections_active", "gauge", NULL, "Open client connections.", vip_active},
    {"connections_total", "counter", NULL, "Client connections accepted.", vip_conns},
    {"bytes_total", "counter", "direction=\"to_server\"",
     "Bytes relayed, counted when a connection ends.", vip_bytes_in},
    {"bytes_total", "counter", "direction=\"to_client\"",
     "Bytes relayed, counted when a connection ends.", vip_bytes_out},
};

static void prom_vips(FILE *out, const struct runtime *rt)
{
	char name[128], last[128] = "";

	for (size_t f = 0; f < sizeof(vip_families) / sizeof(vip_families[0]); f++) {
		snprintf(name, sizeof(name), "snatproxy_vip_%s", vip_families[f].name);
		prom_head(out, last, name, vip_families[f].type, vip_families[f].help);
		for (int v = 0; v < rt->cfg->nvips; v++) {
			fprintf(out, "%s{vip=\"", name);
			prom_label(out, rt->vips[v].cfg->name);
			fprintf(out, "\"%s%s} %llu\n", vip_families[f].label ? "," : "",
				vip_families[f].label ? vip_families[f].label : "",
				vip_families[f].get(&rt->vips[v]));
		}
	}
}

static void prom_snat(FILE *out, const struct runtime *rt)
{
	char a[ADDR_STRLEN];

	fputs("# HELP snatproxy_snat_port_exhausted_total Connects refused for want of a source "
	      "port (EADDRNOTAVAIL), per SNAT address.\n"
	      "# TYPE snatproxy_snat_port_exhausted_total counter\n",
	      out);
	for (int v = 0; v < rt->cfg->nvips; v++)
		for (int i = 0; i < rt->vips[v].cfg->nsnat; i++) {
			const struct runtime_snat_addr *sa = &rt->vips[v].snat[i];
			fputs("snatproxy_snat_port_exhausted_total{vip=\"", out);
			prom_label(out, rt->vips[v].cfg->name);
			fputs("\",address=\"", out);
			prom_label(out,
				   addr_format((const struct sockaddr *)&sa->addr, a, sizeof(a)));
			fprintf(out, "\"} %llu\n", (unsigned long long)LD(sa->exhausted));
		}
}

/* Worker figures are published by each worker once per tick (100 ms). */
static unsigned long long wk_get(const struct runtime_worker_stats *w, int what)
{
	switch (what) {
	case 0:
		return LD(w->submitted);
	case 1:
		return LD(w->completed);
	case 2:
		return LD(w->cq_overflow);
	case 3:
		return LD(w->enobufs);
	case 4:
		return LD(w->buffers_free);
	case 5:
		return LD(w->buffers);
	default:
		return (unsigned long long)(LD(w->live) > 0 ? LD(w->live) : 0);
	}
}

static const struct {
	const char *name, *type, *help;
} worker_families[] = {
    {"ring_submissions_total", "counter", "io_uring requests submitted."},
    {"ring_completions_total", "counter", "io_uring completions handled."},
    {"ring_cq_overflows_total", "counter", "Completions the kernel could not post (CQ full)."},
    {"buffer_exhausted_total", "counter",
     "Receives that found the provided-buffer ring empty (ENOBUFS)."},
    {"buffers_free", "gauge", "Provided receive buffers not in use."},
    {"buffers", "gauge", "Provided receive buffers."},
    {"connections_active", "gauge", "Open client connections of the worker."},
};

static void prom_workers(FILE *out, const struct runtime *rt)
{
	for (int f = 0; f < (int)(sizeof(worker_families) / sizeof(worker_families[0])); f++) {
		const char *n = worker_families[f].name;
		fprintf(out, "# HELP snatproxy_worker_%s %s\n# TYPE snatproxy_worker_%s %s\n", n,
			worker_families[f].help, n, worker_families[f].type);
		for (int w = 0; w < rt->nworkers; w++)
			fprintf(out, "snatproxy_worker_%s{worker=\"%d\"} %llu\n", n, w,
				wk_get(&rt->root->wstats[w], f));
	}
}

/* Upper bounds of the loop's batch histograms (loop.h), the last bucket
 * being +Inf: completions per batch, and seconds per batch. */
static const double batch_le_n[RUNTIME_HIST - 1] = {1, 3, 7, 15, 31, 63};
static const double batch_le_s[RUNTIME_HIST - 1] = {16e-6,   64e-6,   256e-6,
						    1024e-6, 4096e-6, 16384e-6};

/* One histogram per worker, cumulative as Prometheus counts buckets. */
static void prom_batches(FILE *out, const struct runtime *rt, bool time)
{
	const char *n = time ? "loop_batch_seconds" : "loop_batch_completions";

	fprintf(out, "# HELP snatproxy_worker_%s %s\n# TYPE snatproxy_worker_%s histogram\n", n,
		time ? "Time one batch of completions took to handle."
		     : "Completions handled in one batch.",
		n);
	for (int w = 0; w < rt->nworkers; w++) {
		const struct runtime_worker_stats *ws = &rt->root->wstats[w];
		unsigned long long cum = 0;
		for (int i = 0; i < RUNTIME_HIST; i++) {
			char le[24] = "+Inf";
			if (i < RUNTIME_HIST - 1)
				snprintf(le, sizeof(le), "%g",
					 time ? batch_le_s[i] : batch_le_n[i]);
			cum += time ? LD(ws->batch_us[i]) : LD(ws->batch_n[i]);
			fprintf(out, "snatproxy_worker_%s_bucket{worker=\"%d\",le=\"%s\"} %llu\n",
				n, w, le, cum);
		}
		if (time)
			fprintf(out, "snatproxy_worker_%s_sum{worker=\"%d\"} %.6f\n", n, w,
				(double)LD(ws->busy_us) / 1e6);
		else
			fprintf(out, "snatproxy_worker_%s_sum{worker=\"%d\"} %llu\n", n, w,
				(unsigned long long)LD(ws->completed));
		fprintf(out, "snatproxy_worker_%s_count{worker=\"%d\"} %llu\n", n, w, cum);
	}
}

void metrics_prometheus(FILE *out, const struct runtime *rt)
{
	fprintf(out,
		"# HELP snatproxy_build_info Version of the running proxy.\n"
		"# TYPE snatproxy_build_info gauge\n"
		"snatproxy_build_info{version=\"%s\"} 1\n"
		"# HELP snatproxy_start_time_seconds When the proxy started, Unix time.\n"
		"# TYPE snatproxy_start_time_seconds gauge\n"
		"snatproxy_start_time_seconds %llu\n"
		"# HELP snatproxy_connections_active Open client connections, all VIPs.\n"
		"# TYPE snatproxy_connections_active gauge\n"
		"snatproxy_connections_active %d\n"
		"# HELP snatproxy_max_connections Configured max_connections.\n"
		"# TYPE snatproxy_max_connections gauge\n"
		"snatproxy_max_connections %d\n"
		"# HELP snatproxy_accept_paused_total Times a worker stopped accepting, by cause "
		"(clients wait in the kernel's backlog meanwhile).\n"
		"# TYPE snatproxy_accept_paused_total counter\n"
		"snatproxy_accept_paused_total{reason=\"max_connections\"} %llu\n"
		"snatproxy_accept_paused_total{reason=\"descriptors\"} %llu\n"
		"# HELP snatproxy_descriptor_waits_total Client connections that waited for a "
		"descriptor to open their server socket.\n"
		"# TYPE snatproxy_descriptor_waits_total counter\n"
		"snatproxy_descriptor_waits_total %llu\n",
		SNATPROXY_VERSION, (unsigned long long)rt->root->start_time,
		LD(rt->root->live) > 0 ? LD(rt->root->live) : 0, rt->max_connections,
		(unsigned long long)LD(rt->root->paused[RUNTIME_PAUSE_MAXCONN]),
		(unsigned long long)LD(rt->root->paused[RUNTIME_PAUSE_NOFILE]),
		(unsigned long long)LD(rt->root->nofile_waits));
	prom_vips(out, rt);
	prom_servers(out, rt, true);
	prom_pool_servers(out, rt);
	prom_servers(out, rt, false);
	prom_snat(out, rt);
	prom_workers(out, rt);
	prom_batches(out, rt, false);
	prom_batches(out, rt, true);
	budget_prometheus(out, rt);
}

/* ---- JSON ---- */

/* Names are restricted to [A-Za-z0-9_.-] by the config and addresses are
 * printed by addr_format, so neither needs escaping in JSON. */
static void json_server(FILE *out, const struct runtime_pool *rp, int i)
{
	char a[ADDR_STRLEN];
	const struct config_server *cs = &rp->cfg->servers[i];

	fprintf(out,
		"{\"name\":\"%s\",\"address\":\"%s\",\"state\":\"%s\",\"weight\":%d,"
		"\"backup\":%s,\"connections_active\":%llu,\"connections_total\":%llu,"
		"\"bytes_to_server\":%llu,\"bytes_to_client\":%llu,"
		"\"connect_failures\":{\"refused\":%llu,\"timeout\":%llu,\"error\":%llu},"
		"\"retries\":%llu}",
		cs->name, addr_format((const struct sockaddr *)&cs->addr, a, sizeof(a)),
		metrics_state_name((unsigned)srv_flags(rp, i)), rp->bal.srv[i].weight,
		cs->backup ? "true" : "false", srv_active(rp, i), srv_conns(rp, i),
		srv_bytes_to_server(rp, i), srv_bytes_to_client(rp, i), srv_fail_refused(rp, i),
		srv_fail_timeout(rp, i), srv_fail_error(rp, i), srv_retries(rp, i));
}

static void json_vip(FILE *out, const struct runtime_vip *v)
{
	char a[ADDR_STRLEN];

	fprintf(out, "{\"name\":\"%s\",\"pool\":\"%s\",\"listen\":[", v->cfg->name,
		v->pool->cfg->name);
	for (int i = 0; i < v->cfg->nlisten; i++)
		fprintf(out, "%s\"%s\"", i ? "," : "",
			addr_format((const struct sockaddr *)&v->cfg->listen[i], a, sizeof(a)));
	fprintf(out,
		"],\"connections_active\":%llu,\"connections_total\":%llu,"
		"\"bytes_to_server\":%llu,\"bytes_to_client\":%llu,\"snat\":[",
		vip_active(v), vip_conns(v), vip_bytes_in(v), vip_bytes_out(v));
	for (int i = 0; i < v->cfg->nsnat; i++)
		fprintf(out, "%s{\"address\":\"%s\",\"port_exhausted\":%llu}", i ? "," : "",
			addr_format((const struct sockaddr *)&v->snat[i].addr, a, sizeof(a)),
			(unsigned long long)LD(v->snat[i].exhausted));
	fputs("]}", out);
}

static void json_worker(FILE *out, const struct runtime *rt, int w)
{
	const struct runtime_worker_stats *ws = &rt->root->wstats[w];

	fprintf(out,
		"{\"worker\":%d,\"ring_submissions\":%llu,\"ring_completions\":%llu,"
		"\"ring_cq_overflows\":%llu,\"buffer_exhausted\":%llu,\"buffers_free\":%llu,"
		"\"buffers\":%llu,\"connections_active\":%llu",
		w, wk_get(ws, 0), wk_get(ws, 1), wk_get(ws, 2), wk_get(ws, 3), wk_get(ws, 4),
		wk_get(ws, 5), wk_get(ws, 6));
	/* Per bucket, not cumulative: batches by completions (1, 2-3, ...,
	 * 64 and more) and by time (under 16 us, 64, ..., 16384 us and more). */
	for (int t = 0; t < 2; t++) {
		fputs(t ? "],\"batch_us\":[" : ",\"batch_completions\":[", out);
		for (int i = 0; i < RUNTIME_HIST; i++)
			fprintf(out, "%s%llu", i ? "," : "",
				(unsigned long long)(t ? LD(ws->batch_us[i]) : LD(ws->batch_n[i])));
	}
	fputs("]}", out);
}

void metrics_json(FILE *out, const struct runtime *rt)
{
	fprintf(out,
		"{\"version\":\"%s\",\"start_time\":%llu,\"uptime_s\":%llu,"
		"\"connections_active\":%d,\"max_connections\":%d,"
		"\"accept_paused\":{\"max_connections\":%llu,\"descriptors\":%llu},"
		"\"descriptor_waits\":%llu,\"vips\":[",
		SNATPROXY_VERSION, (unsigned long long)rt->root->start_time,
		(unsigned long long)time(NULL) - rt->root->start_time,
		LD(rt->root->live) > 0 ? LD(rt->root->live) : 0, rt->max_connections,
		(unsigned long long)LD(rt->root->paused[RUNTIME_PAUSE_MAXCONN]),
		(unsigned long long)LD(rt->root->paused[RUNTIME_PAUSE_NOFILE]),
		(unsigned long long)LD(rt->root->nofile_waits));
	for (int v = 0; v < rt->cfg->nvips; v++) {
		fputs(v ? "," : "", out);
		json_vip(out, &rt->vips[v]);
	}
	fputs("],\"pools\":[", out);
	for (int p = 0; p < rt->cfg->npools; p++) {
		const struct runtime_pool *rp = &rt->pools[p];
		fprintf(out, "%s{\"name\":\"%s\",\"servers\":[", p ? "," : "", rp->cfg->name);
		for (int i = 0; i < rp->cfg->nservers; i++) {
			fputs(i ? "," : "", out);
			json_server(out, rp, i);
		}
		fputs("]}", out);
	}
	fputs("],\"workers\":[", out);
	for (int w = 0; w < rt->nworkers; w++) {
		fputs(w ? "," : "", out);
		json_worker(out, rt, w);
	}
	fputs("]}\n", out);
}

/* ---- HTML ---- */

static const char html_head[] =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
    "<meta http-equiv=\"refresh\" content=\"2\"><title>snatproxy</title>"
    "<style>body{font-family:sans-serif;margin:1em 2em}table{border-collapse:collapse;"
    "margin-bottom:1.5em}td,th{border:1px solid #bbb;padding:.2em .6em;text-align:right}"
    "td:first-child,th:first-child{text-align:left}.up{background:#cfc}.drain{background:#ffc}"
    ".down,.disabled{background:#fcc}</style></head><body>\n";

static void html_pool(FILE *out, const struct runtime_pool *rp)
{
	char a[ADDR_STRLEN];

	fprintf(out,
		"<h2>pool %s</h2><table><tr><th>server</th><th>address</th><th>state</th>"
		"<th>weight</th><th>active</th><th>total</th><th>to server</th><th>to client</th>"
		"<th>connect failures</th><th>retries</th></tr>\n",
		rp->cfg->name);
	for (int i = 0; i < rp->cfg->nservers; i++) {
		const char *st = metrics_state_name((unsigned)srv_flags(rp, i));
		fprintf(
		    out,
		    "<tr><td>%s%s</td><td>%s</td><td class=\"%s\">%s</td><td>%d</td>"
		    "<td>%llu</td><td>%llu</td><td>%llu</td><td>%llu</td><td>%llu</td>"
		    "<td>%llu</td></tr>\n",
		    rp->cfg->servers[i].name, rp->cfg->servers[i].backup ? " (backup)" : "",
		    addr_format((const struct sockaddr *)&rp->cfg->servers[i].addr, a, sizeof(a)),
		    st, st, rp->bal.srv[i].weight, srv_active(rp, i), srv_conns(rp, i),
		    srv_bytes_to_server(rp, i), srv_bytes_to_client(rp, i),
		    srv_fail_refused(rp, i) + srv_fail_timeout(rp, i) + srv_fail_error(rp, i),
		    srv_retries(rp, i));
	}
	fputs("</table>\n", out);
}

void metrics_html(FILE *out, const struct runtime *rt)
{
	fputs(html_head, out);
	fprintf(out,
		"<h1>snatproxy %s</h1><p>up %llu s, %d open connection(s) of %d, %d worker(s). "
		"This page refreshes every 2 s; <a href=\"/metrics\">/metrics</a>, "
		"<a href=\"/stats\">/stats</a>.</p>\n<h2>VIPs</h2><table><tr><th>vip</th>"
		"<th>pool</th><th>active</th><th>total</th><th>to server</th>"
		"<th>to client</th></tr>\n",
		SNATPROXY_VERSION, (unsigned long long)time(NULL) - rt->root->start_time,
		LD(rt->root->live) > 0 ? LD(rt->root->live) : 0, rt->max_connections,
		rt->nworkers);
	for (int v = 0; v < rt->cfg->nvips; v++) {
		const struct runtime_vip *rv = &rt->vips[v];
		fprintf(out,
			"<tr><td>%s</td><td>%s</td><td>%llu</td><td>%llu</td><td>%llu</td>"
			"<td>%llu</td></tr>\n",
			rv->cfg->name, rv->pool->cfg->name, vip_active(rv), vip_conns(rv),
			vip_bytes_in(rv), vip_bytes_out(rv));
	}
	fputs("</table>\n", out);
	for (int p = 0; p < rt->cfg->npools; p++)
		html_pool(out, &rt->pools[p]);
	budget_html(out, rt);
	fputs("<p>Bytes are counted when a connection ends. Drain a server: <code>curl -X POST "
	      "http://ADMIN/pools/POOL/servers/SERVER/drain</code> (also <code>disable</code>, "
	      "<code>enable</code>).</p></body></html>\n",
	      out);
}
