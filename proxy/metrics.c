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
#include "health.h"

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
	return runtime_server_bytes(p, i, 0);
}
static unsigned long long srv_bytes_to_client(const struct runtime_pool *p, int i)
{
	return runtime_server_bytes(p, i, 1);
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

static unsigned long long srv_max_conn(const struct runtime_pool *p, int i)
{
	return (unsigned long long)p->bal.srv[i].max_conn;
}
static unsigned long long srv_backup(const struct runtime_pool *p, int i)
{
	return p->bal.srv[i].backup;
}
static unsigned long long srv_downs(const struct runtime_pool *p, int i)
{
	return LD(p->stats[i].downs);
}
static unsigned long long srv_checks_failed(const struct runtime_pool *p, int i)
{
	unsigned long long n = 0;

	for (int r = HEALTH_OK + 1; r < HEALTH_RESULT_N; r++)
		n += LD(p->stats[i].checks[r]);
	return n;
}
#define SRV_CHECKS(R)                                                                              \
	static unsigned long long srv_checks_##R(const struct runtime_pool *p, int i)              \
	{                                                                                          \
		return LD(p->stats[i].checks[R]);                                                  \
	}
SRV_CHECKS(HEALTH_OK)
SRV_CHECKS(HEALTH_TIMEOUT)
SRV_CHECKS(HEALTH_REFUSED)
SRV_CHECKS(HEALTH_RESET)
SRV_CHECKS(HEALTH_STATUS)
SRV_CHECKS(HEALTH_TLS)
SRV_CHECKS(HEALTH_ERROR)

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
     "Bytes of the clients' connections, counted as they move.", srv_bytes_to_server, true},
    {"bytes_total", "counter", "direction=\"to_client\"",
     "Bytes of the clients' connections, counted as they move.", srv_bytes_to_client, true},
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
    {"backup", "gauge", NULL, "1 for a backup server.", srv_backup, false},
    {"max_conn", "gauge", NULL, "Configured max_conn (0: unlimited).", srv_max_conn, false},
    {"downs_total", "counter", NULL, "Times the server went down (checks or client connects).",
     srv_downs, false},
#define CHECK_ROW(R, NAME)                                                                         \
	{                                                                                          \
		"checks_total", "counter", "result=\"" NAME "\"", "Health checks by result.",      \
		    srv_checks_##R, false                                                          \
	}
    CHECK_ROW(HEALTH_OK, "ok"),
    CHECK_ROW(HEALTH_TIMEOUT, "timeout"),
    CHECK_ROW(HEALTH_REFUSED, "refused"),
    CHECK_ROW(HEALTH_RESET, "reset"),
    CHECK_ROW(HEALTH_STATUS, "status"),
    CHECK_ROW(HEALTH_TLS, "tls"),
    CHECK_ROW(HEALTH_ERROR, "error"),
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

/* The servers' gauges in seconds: the last check's duration, and when the
 * state last changed (Unix time). */
static void prom_server_seconds(FILE *out, const struct runtime *rt)
{
	for (int f = 0; f < 2; f++) {
		const char *n = f ? "state_change_timestamp_seconds" : "check_duration_seconds";
		fprintf(out, "# HELP snatproxy_server_%s %s\n# TYPE snatproxy_server_%s gauge\n", n,
			f ? "When the server's state last changed, Unix time."
			  : "How long the last health check took.",
			n);
		for (int p = 0; p < rt->cfg->npools; p++) {
			const struct runtime_pool *rp = &rt->pools[p];
			for (int i = 0; i < rp->cfg->nservers; i++) {
				fprintf(out, "snatproxy_server_%s{pool=\"", n);
				prom_label(out, rp->cfg->name);
				fputs("\",server=\"", out);
				prom_label(out, rp->cfg->servers[i].name);
				fprintf(out, "\"} %.6f\n",
					(double)(f ? LD(rp->stats[i].state_ms)
						   : LD(rp->stats[i].check_us)) /
					    (f ? 1e3 : 1e6));
			}
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
/* The VIP's own generation's workers: as many rows as its pool has. */
static unsigned long long vip_to_server(const struct runtime_vip *v)
{
	return runtime_vip_bytes(v, v->pool->nworkers, 0);
}
static unsigned long long vip_to_client(const struct runtime_vip *v)
{
	return runtime_vip_bytes(v, v->pool->nworkers, 1);
}
static unsigned long long vip_no_server(const struct runtime_vip *v)
{
	return LD(v->refused[RUNTIME_REFUSE_NO_SERVER]);
}
static unsigned long long vip_rate(const struct runtime_vip *v)
{
	return LD(v->rate);
}
static unsigned long long vip_rate_peak(const struct runtime_vip *v)
{
	return LD(v->rate_peak);
}

static const struct {
	const char *name, *type, *label, *help;
	vip_get get;
} vip_families[] = {
    {"connections_active", "gauge", NULL, "Open client connections.", vip_active},
    {"connections_total", "counter", NULL, "Client connections accepted.", vip_conns},
    {"bytes_total", "counter", "direction=\"to_server\"",
     "Bytes of the clients' connections, counted as they move.", vip_to_server},
    {"bytes_total", "counter", "direction=\"to_client\"",
     "Bytes of the clients' connections, counted as they move.", vip_to_client},
    {"no_server_total", "counter", NULL, "Client connections refused for want of a server.",
     vip_no_server},
    {"connection_rate", "gauge", NULL, "New client connections per second, over the last second.",
     vip_rate},
    {"connection_rate_peak", "gauge", NULL, "Highest connection_rate seen.", vip_rate_peak},
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

/* Per VIP and one label of causes: refusals, and (tls = terminate) how
 * the clients' handshakes ended. */
static void prom_vip_causes(FILE *out, const struct runtime *rt, bool tls)
{
	const char *n = tls ? "tls_handshakes_total" : "refused_total";
	int nc = tls ? TLS_RESULT_N : RUNTIME_REFUSE_N;

	fprintf(out, "# HELP snatproxy_vip_%s %s\n# TYPE snatproxy_vip_%s counter\n", n,
		tls ? "Client TLS handshakes by result: ok, or why they failed."
		    : "Client connections that ended before reaching a server, by cause.",
		n);
	for (int v = 0; v < rt->cfg->nvips; v++) {
		const struct runtime_vip *rv = &rt->vips[v];
		if (tls && rv->cfg->tls != CONFIG_TLS_TERMINATE)
			continue;
		for (int c = 0; c < nc; c++) {
			fprintf(out, "snatproxy_vip_%s{vip=\"", n);
			prom_label(out, rv->cfg->name);
			fprintf(out, "\",%s=\"%s\"} %llu\n", tls ? "result" : "cause",
				tls ? tls_result_name[c] : runtime_refuse_name[c],
				(unsigned long long)(tls ? LD(rv->tls.results[c])
							 : LD(rv->refused[c])));
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
	prom_vip_causes(out, rt, false);
	prom_vip_causes(out, rt, true);
	prom_servers(out, rt, true);
	prom_pool_servers(out, rt);
	prom_servers(out, rt, false);
	prom_server_seconds(out, rt);
	prom_snat(out, rt);
	prom_workers(out, rt);
	prom_batches(out, rt, false);
	prom_batches(out, rt, true);
	budget_prometheus(out, rt);
}

/* ---- JSON ---- */

static const char *const snat_mode_name[] = {
    [CONFIG_SNAT_AUTO] = "auto", [CONFIG_SNAT_OFF] = "off", [CONFIG_SNAT_POOL] = "addresses"};
static const char *const tls_mode_name[] = {
    [CONFIG_TLS_OFF] = "off", [CONFIG_TLS_TERMINATE] = "terminate", [CONFIG_TLS_ROUTE] = "route"};

static uint64_t unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A check's text comes from the server (its status line): quotes,
 * backslashes and control bytes escaped, and bytes outside ASCII shown as
 * '?' so that the document stays valid UTF-8 whatever the server sent. */
static void json_text(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c < 0x80 ? c : '?', out);
	}
	fputc('"', out);
}

/* A server down for failed client connects (not its checks): why. */
static const char *srv_down_reason(const struct runtime_pool *rp, int i, char *buf, size_t len)
{
	int err = LD(rp->stats[i].down_err);

	if (!err || strcmp(metrics_state_name((unsigned)srv_flags(rp, i)), "down") != 0)
		return NULL;
	snprintf(buf, len, "client connects failed: %s", health_errno_text(-err));
	return buf;
}

static void json_check(FILE *out, const struct runtime_pool *rp, int i)
{
	struct health_last h;

	health_last_get(rp, i, &h);
	fprintf(out, "\"check\":{\"type\":\"%s\"", h.type);
	if (h.checked) {
		fprintf(out, ",\"result\":\"%s\",\"duration_ms\":%.3f,\"at\":%llu,\"text\":",
			health_result_name[h.result], (double)h.dur_us / 1000,
			(unsigned long long)h.unix_ms);
		json_text(out, h.text);
	}
	char why[96];
	if (srv_down_reason(rp, i, why, sizeof(why)))
		fprintf(out, ",\"down_reason\":\"%s\"", why);
	fputs("},\"checks\":{", out);
	for (int r = 0; r < HEALTH_RESULT_N; r++)
		fprintf(out, "%s\"%s\":%llu", r ? "," : "", health_result_name[r],
			(unsigned long long)LD(rp->stats[i].checks[r]));
	fputs("},", out);
}

/* Names are restricted to [A-Za-z0-9_.-] by the config and addresses are
 * printed by addr_format, so neither needs escaping in JSON. */
static void json_server(FILE *out, const struct runtime_pool *rp, int i)
{
	char a[ADDR_STRLEN];
	const struct config_server *cs = &rp->cfg->servers[i];
	uint64_t since = LD(rp->stats[i].state_ms), now = unix_ms();

	fprintf(out,
		"{\"name\":\"%s\",\"address\":\"%s\",\"state\":\"%s\",\"weight\":%d,"
		"\"backup\":%s,\"max_conn\":%d,\"state_since\":%llu,\"state_seconds\":%llu,",
		cs->name, addr_format((const struct sockaddr *)&cs->addr, a, sizeof(a)),
		metrics_state_name((unsigned)srv_flags(rp, i)), rp->bal.srv[i].weight,
		cs->backup ? "true" : "false", cs->max_conn, (unsigned long long)since,
		(unsigned long long)(now > since ? (now - since) / 1000 : 0));
	json_check(out, rp, i);
	fprintf(out,
		"\"checks_failed\":%llu,\"downs\":%llu,"
		"\"connections_active\":%llu,\"connections_total\":%llu,"
		"\"bytes_to_server\":%llu,\"bytes_to_client\":%llu,"
		"\"connect_failures\":{\"refused\":%llu,\"timeout\":%llu,\"error\":%llu},"
		"\"retries\":%llu}",
		srv_checks_failed(rp, i), srv_downs(rp, i), srv_active(rp, i), srv_conns(rp, i),
		srv_bytes_to_server(rp, i), srv_bytes_to_client(rp, i), srv_fail_refused(rp, i),
		srv_fail_timeout(rp, i), srv_fail_error(rp, i), srv_retries(rp, i));
}

/* A pool's servers summed, for its totals in /stats and on the page. */
struct pool_sum {
	unsigned long long up, active, conns, to_server, to_client, connect_failures;
};

static struct pool_sum pool_sum(const struct runtime_pool *rp)
{
	struct pool_sum t = {0};

	for (int i = 0; i < rp->cfg->nservers; i++) {
		t.up += srv_up(rp, i);
		t.active += srv_active(rp, i);
		t.conns += srv_conns(rp, i);
		t.to_server += srv_bytes_to_server(rp, i);
		t.to_client += srv_bytes_to_client(rp, i);
		t.connect_failures +=
		    srv_fail_refused(rp, i) + srv_fail_timeout(rp, i) + srv_fail_error(rp, i);
	}
	return t;
}

static void json_pool(FILE *out, const struct runtime_pool *rp)
{
	struct pool_sum t = pool_sum(rp);

	fprintf(out,
		"{\"name\":\"%s\",\"servers_up\":%llu,\"servers_total\":%d,"
		"\"connections_active\":%llu,\"connections_total\":%llu,\"bytes_to_server\":%llu,"
		"\"bytes_to_client\":%llu,\"connect_failures\":%llu,\"servers\":[",
		rp->cfg->name, t.up, rp->cfg->nservers, t.active, t.conns, t.to_server, t.to_client,
		t.connect_failures);
	for (int i = 0; i < rp->cfg->nservers; i++) {
		fputs(i ? "," : "", out);
		json_server(out, rp, i);
	}
	fputs("]}", out);
}

static void json_vip(FILE *out, const struct runtime_vip *v)
{
	char a[ADDR_STRLEN];

	fprintf(out, "{\"name\":\"%s\",\"pool\":\"%s\",\"listen\":[", v->cfg->name,
		v->pool->cfg->name);
	for (int i = 0; i < v->cfg->nlisten; i++)
		fprintf(out, "%s\"%s\"", i ? "," : "",
			addr_format((const struct sockaddr *)&v->cfg->listen[i], a, sizeof(a)));
	fprintf(
	    out,
	    "],\"snat_mode\":\"%s\",\"tls\":\"%s\",\"connections_active\":%llu,"
	    "\"connections_total\":%llu,\"connection_rate\":%llu,\"connection_rate_peak\":%llu,"
	    "\"bytes_to_server\":%llu,\"bytes_to_client\":%llu,\"no_server\":%llu,\"refused\":{",
	    snat_mode_name[v->cfg->snat], tls_mode_name[v->cfg->tls], vip_active(v), vip_conns(v),
	    vip_rate(v), vip_rate_peak(v), vip_to_server(v), vip_to_client(v), vip_no_server(v));
	for (int c = 0; c < RUNTIME_REFUSE_N; c++)
		fprintf(out, "%s\"%s\":%llu", c ? "," : "", runtime_refuse_name[c],
			(unsigned long long)LD(v->refused[c]));
	fputs("},", out);
	if (v->cfg->tls == CONFIG_TLS_TERMINATE) {
		fputs("\"tls_handshakes\":{", out);
		for (int c = 0; c < TLS_RESULT_N; c++)
			fprintf(out, "%s\"%s\":%llu", c ? "," : "", tls_result_name[c],
				(unsigned long long)LD(v->tls.results[c]));
		fputs("},", out);
	}
	fputs("\"snat\":[", out);
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
		fputs(p ? "," : "", out);
		json_pool(out, &rt->pools[p]);
	}
	fputs("],\"workers\":[", out);
	for (int w = 0; w < rt->nworkers; w++) {
		fputs(w ? "," : "", out);
		json_worker(out, rt, w);
	}
	fputs("]}\n", out);
}

/* ---- HTML ---- */

/* The page is complete as served (readable and usable without JavaScript:
 * the buttons are form posts); its script then refreshes the figures in
 * place from /stats every 2 s. Each figure is written twice, here and in
 * the script, with the same formatting: bytes in binary units, times in
 * their two largest units, a check as "https 200 in 3 ms" or its reason. */
static const char html_head[] =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>snatproxy</title>"
    "<style>body{font-family:sans-serif;margin:1em 2em}table{border-collapse:collapse;"
    "margin-bottom:1.5em}td,th{border:1px solid #bbb;padding:.2em .6em;text-align:right}"
    "td:first-child,th:first-child,td.t{text-align:left}.up{background:#cfc}"
    ".drain{background:#ffc}.down,.disabled{background:#fcc}tr.sum td{font-weight:bold}"
    "td{white-space:nowrap}td.t{white-space:normal}button{margin:0 .1em}</style></head><body>\n";

static const char html_script[] =
    "<script>(function(){"
    "function B(n){if(n<1024)return n+' B';var u=['KiB','MiB','GiB','TiB','PiB'],i=-1;"
    "while(n>=1024&&i<4){n/=1024;i++}return n.toFixed(1)+' '+u[i]}"
    "function A(s){return s<60?s+'s':s<3600?(s/60|0)+'m '+s%60+'s':s<86400?(s/3600|0)+'h '+"
    "((s%3600)/60|0)+'m':(s/86400|0)+'d '+((s%86400)/3600|0)+'h'}"
    "function K(c){return H(c)+(c.down_reason?'; '+c.down_reason:'')}"
    "function H(c){if(c.type=='none')return 'none';if(!c.result)return c.type+', not yet';"
    "var m=Math.round(c.duration_ms);return (c.result=='ok'?c.type+' '+c.text+' in '+m+' ms':"
    "c.type+': '+c.text+' ('+m+' ms)')}"
    "function L(o){var t=[];for(var k in o)if(o[k])t.push(k+' '+o[k]);return t.join(', ')||"
    "'none'}"
    "function S(r,k,v){var e=r.querySelector('[data-k=\"'+k+'\"]');if(e)e.textContent=v;"
    "return e}"
    "function E(q,f){document.querySelectorAll(q).forEach(f)}"
    "function T(r,o){S(r,'active',o.connections_active);S(r,'total',o.connections_total);"
    "S(r,'to_server',B(o.bytes_to_server));S(r,'to_client',B(o.bytes_to_client))}"
    "function U(s){E('[data-g]',function(r){S(r,'uptime',A(s.uptime_s));"
    "S(r,'live',s.connections_active)});"
    "s.vips.forEach(function(v){E('[data-v=\"'+v.name+'\"]',function(r){T(r,v);"
    "S(r,'rate',v.connection_rate+'/s (peak '+v.connection_rate_peak+'/s)');"
    "S(r,'refused',L(v.refused));S(r,'tls',v.tls_handshakes?L(v.tls_handshakes):'-')})});"
    "s.pools.forEach(function(p){E('[data-p=\"'+p.name+'\"]',function(r){T(r,p);"
    "S(r,'up',p.servers_up+' of '+p.servers_total);S(r,'connfail',p.connect_failures)});"
    "p.servers.forEach(function(v){E('tr[data-pool=\"'+p.name+'\"][data-server=\"'+v.name+"
    "'\"]',function(r){var e=S(r,'state',v.state),f=v.connect_failures;if(e)e.className=v.state;"
    "T(r,v);S(r,'for',A(v.state_seconds));S(r,'check',K(v.check));"
    "S(r,'failed',v.checks_failed);S(r,'downs',v.downs);"
    "S(r,'connfail',f.refused+f.timeout+f.error);S(r,'retries',v.retries)})})});"
    "document.getElementById('upd').textContent='updated '+new Date().toLocaleTimeString()}"
    "function F(){fetch('/stats',{cache:'no-store'}).then(function(r){return r.json()})"
    ".then(U).catch(function(){document.getElementById('upd').textContent='update failed'})}"
    "setInterval(F,2000)})();</script>\n";

static const char *html_bytes(unsigned long long n, char *buf, size_t len)
{
	static const char *const unit[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)n;
	int u = -1;

	if (n < 1024) {
		snprintf(buf, len, "%llu B", n);
		return buf;
	}
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, unit[u]);
	return buf;
}

static const char *html_age(unsigned long long s, char *buf, size_t len)
{
	if (s < 60)
		snprintf(buf, len, "%llus", s);
	else if (s < 3600)
		snprintf(buf, len, "%llum %llus", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%lluh %llum", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, len, "%llud %lluh", s / 86400, s % 86400 / 3600);
	return buf;
}

/* Text that may come from a server (a check's reason quotes its status
 * line): markup escaped, bytes outside ASCII shown as '?'. */
static void html_text(FILE *out, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '&')
			fputs("&amp;", out);
		else if (c == '<')
			fputs("&lt;", out);
		else if (c == '>')
			fputs("&gt;", out);
		else if (c == '"')
			fputs("&quot;", out);
		else if (c == '\'')
			fputs("&#39;", out);
		else
			fputc(c >= 0x20 && c < 0x7f ? c : '?', out);
	}
}

static void html_check(FILE *out, const struct runtime_pool *rp, int i)
{
	struct health_last h;
	char buf[HEALTH_TEXT_MAX + 64];

	health_last_get(rp, i, &h);
	unsigned long long ms = (h.dur_us + 500) / 1000;
	if (strcmp(h.type, "none") == 0)
		snprintf(buf, sizeof(buf), "none");
	else if (!h.checked)
		snprintf(buf, sizeof(buf), "%s, not yet", h.type);
	else if (h.result == HEALTH_OK)
		snprintf(buf, sizeof(buf), "%s %s in %llu ms", h.type, h.text, ms);
	else
		snprintf(buf, sizeof(buf), "%s: %s (%llu ms)", h.type, h.text, ms);
	fputs("<td class=\"t\" data-k=\"check\">", out);
	html_text(out, buf);
	if (srv_down_reason(rp, i, buf, sizeof(buf)))
		fprintf(out, "; %s", buf);
	fputs("</td>", out);
}

/* "cause N, cause M", or "none": the nonzero counts of a list. */
static void html_counts(FILE *out, const char *key, const char *const *names,
			const _Atomic uint64_t *n, int count)
{
	bool any = false;

	fprintf(out, "<td class=\"t\" data-k=\"%s\">", key);
	for (int c = 0; c < count; c++) {
		if (!LD(n[c]))
			continue;
		fprintf(out, "%s%s %llu", any ? ", " : "", names[c], (unsigned long long)LD(n[c]));
		any = true;
	}
	fputs(any ? "</td>" : "none</td>", out);
}

/* Active, total, to server, to client: the cells every table has. */
static void html_traffic(FILE *out, unsigned long long active, unsigned long long total,
			 unsigned long long to_server, unsigned long long to_client)
{
	char a[32], b[32];

	fprintf(out,
		"<td data-k=\"active\">%llu</td><td data-k=\"total\">%llu</td>"
		"<td data-k=\"to_server\">%s</td><td data-k=\"to_client\">%s</td>",
		active, total, html_bytes(to_server, a, sizeof(a)),
		html_bytes(to_client, b, sizeof(b)));
}

static void html_vip(FILE *out, const struct runtime_vip *rv)
{
	char a[ADDR_STRLEN];

	fprintf(out, "<tr data-v=\"%s\"><td>%s</td><td>%s</td><td class=\"t\">", rv->cfg->name,
		rv->cfg->name, rv->pool->cfg->name);
	for (int i = 0; i < rv->cfg->nlisten; i++)
		fprintf(out, "%s%s", i ? "<br>" : "",
			addr_format((const struct sockaddr *)&rv->cfg->listen[i], a, sizeof(a)));
	fprintf(out, "</td><td class=\"t\">%s", snat_mode_name[rv->cfg->snat]);
	for (int i = 0; i < rv->cfg->nsnat; i++)
		fprintf(out, "%s%s", i ? ", " : ": ",
			addr_format((const struct sockaddr *)&rv->snat[i].addr, a, sizeof(a)));
	fprintf(out, "</td><td class=\"t\">%s</td>", tls_mode_name[rv->cfg->tls]);
	html_traffic(out, vip_active(rv), vip_conns(rv), vip_to_server(rv), vip_to_client(rv));
	fprintf(out, "<td data-k=\"rate\">%llu/s (peak %llu/s)</td>", vip_rate(rv),
		vip_rate_peak(rv));
	html_counts(out, "refused", runtime_refuse_name, rv->refused, RUNTIME_REFUSE_N);
	if (rv->cfg->tls == CONFIG_TLS_TERMINATE)
		html_counts(out, "tls", tls_result_name, rv->tls.results, TLS_RESULT_N);
	else
		fputs("<td class=\"t\" data-k=\"tls\">-</td>", out);
	fputs("</tr>\n", out);
}

static void html_server(FILE *out, const struct runtime_pool *rp, int i, uint64_t now)
{
	const struct config_server *cs = &rp->cfg->servers[i];
	const char *st = metrics_state_name((unsigned)srv_flags(rp, i));
	uint64_t since = LD(rp->stats[i].state_ms);
	char a[ADDR_STRLEN], age[32];

	fprintf(out,
		"<tr data-pool=\"%s\" data-server=\"%s\"><td>%s</td><td>%s</td>"
		"<td data-k=\"state\" class=\"%s\">%s</td><td data-k=\"for\">%s</td>",
		rp->cfg->name, cs->name, cs->name,
		addr_format((const struct sockaddr *)&cs->addr, a, sizeof(a)), st, st,
		html_age(now > since ? (now - since) / 1000 : 0, age, sizeof(age)));
	html_check(out, rp, i);
	fprintf(out,
		"<td data-k=\"failed\">%llu</td><td data-k=\"downs\">%llu</td><td>%d</td>"
		"<td>%s</td><td>%s%.0d</td>",
		srv_checks_failed(rp, i), srv_downs(rp, i), rp->bal.srv[i].weight,
		cs->backup ? "yes" : "no", cs->max_conn ? "" : "-", cs->max_conn);
	html_traffic(out, srv_active(rp, i), srv_conns(rp, i), srv_bytes_to_server(rp, i),
		     srv_bytes_to_client(rp, i));
	fprintf(out,
		"<td data-k=\"connfail\">%llu</td><td data-k=\"retries\">%llu</td><td class=\"a\">",
		srv_fail_refused(rp, i) + srv_fail_timeout(rp, i) + srv_fail_error(rp, i),
		srv_retries(rp, i));
	for (int b = 0; b < 3; b++) {
		static const char *const act[] = {"drain", "disable", "enable"};
		fprintf(out,
			"<button type=\"submit\" name=\"do\" value=\"%s\" "
			"formaction=\"/pools/%s/servers/%s/%s\">%s</button>",
			act[b], rp->cfg->name, cs->name, act[b], act[b]);
	}
	fputs("</td></tr>\n", out);
}

static void html_pool(FILE *out, const struct runtime_pool *rp, uint64_t now)
{
	struct pool_sum t = pool_sum(rp);

	fprintf(out,
		"<h2 data-p=\"%s\">pool %s: <span data-k=\"up\">%llu of %d</span> servers up</h2>"
		"<table><tr><th>server</th><th>address</th><th>state</th><th>for</th>"
		"<th>last check</th><th>checks failed</th><th>downs</th><th>weight</th>"
		"<th>backup</th><th>max_conn</th><th>active</th><th>total</th><th>to server</th>"
		"<th>to client</th><th>connect failures</th><th>retries</th><th>action</th></tr>\n",
		rp->cfg->name, rp->cfg->name, t.up, rp->cfg->nservers);
	for (int i = 0; i < rp->cfg->nservers; i++)
		html_server(out, rp, i, now);
	fprintf(out, "<tr class=\"sum\" data-p=\"%s\"><td>total</td><td colspan=\"9\"></td>",
		rp->cfg->name);
	html_traffic(out, t.active, t.conns, t.to_server, t.to_client);
	fprintf(out, "<td data-k=\"connfail\">%llu</td><td colspan=\"2\"></td></tr></table>\n",
		t.connect_failures);
}

void metrics_html(FILE *out, const struct runtime *rt)
{
	uint64_t now = unix_ms();
	char age[32];

	fputs(html_head, out);
	fprintf(out,
		"<h1>snatproxy %s</h1><p data-g>up <span data-k=\"uptime\">%s</span>, "
		"<span data-k=\"live\">%d</span> open connection(s) of %d, %d worker(s). "
		"<a href=\"/metrics\">/metrics</a>, <a href=\"/stats\">/stats</a>. "
		"<span id=\"upd\"><noscript>Reload the page to update it.</noscript></span></p>\n"
		"<form method=\"post\" action=\"/\">",
		SNATPROXY_VERSION,
		html_age((unsigned long long)time(NULL) - rt->root->start_time, age, sizeof(age)),
		LD(rt->root->live) > 0 ? LD(rt->root->live) : 0, rt->max_connections, rt->nworkers);
	if (rt->cfg->admin_token[0])
		fputs("<p>Admin token for the buttons: <input type=\"password\" name=\"token\" "
		      "autocomplete=\"current-password\"></p>",
		      out);
	fputs("<h2>VIPs</h2><table><tr><th>vip</th><th>pool</th><th>listen</th><th>SNAT</th>"
	      "<th>TLS</th><th>active</th><th>total</th><th>to server</th><th>to client</th>"
	      "<th>new connections</th><th>refused</th><th>TLS handshakes</th></tr>\n",
	      out);
	for (int v = 0; v < rt->cfg->nvips; v++)
		html_vip(out, &rt->vips[v]);
	fputs("</table>\n", out);
	for (int p = 0; p < rt->cfg->npools; p++)
		html_pool(out, &rt->pools[p], now);
	fputs("</form>", out);
	budget_html(out, rt);
	fputs("<p>Bytes are those of the clients' connections, counted as they move. "
	      "drain: no new connections; disable: none, and open ones are closed; enable: undoes "
	      "both. From a shell: <code>curl -X POST "
	      "http://ADMIN/pools/POOL/servers/SERVER/drain</code>.</p>\n",
	      out);
	fputs(html_script, out);
	fputs("</body></html>\n", out);
}

void metrics_sample(struct runtime *rt)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	for (int v = 0; v < rt->cfg->nvips; v++) {
		struct runtime_vip *rv = &rt->vips[v];
		uint64_t conns = LD(rv->conns);
		if (rv->rate_ms && now - rv->rate_ms < 1000)
			continue;
		if (rv->rate_ms) {
			/* Rounded up, as HAProxy counts the last second's events:
			 * one connection in a window of 1.2 s is a rate of 1, not 0. */
			uint64_t dt = now - rv->rate_ms;
			uint64_t rate = ((conns - rv->rate_prev) * 1000 + dt - 1) / dt;
			atomic_store_explicit(&rv->rate, rate, memory_order_relaxed);
			if (rate > LD(rv->rate_peak))
				atomic_store_explicit(&rv->rate_peak, rate, memory_order_relaxed);
		}
		rv->rate_prev = conns;
		rv->rate_ms = now;
	}
}
