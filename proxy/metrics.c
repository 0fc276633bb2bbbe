/* metrics: Prometheus exposition, JSON and HTML from the runtime's atomics.
 *
 * Every figure is a row of its object kind's table (the process, VIPs,
 * pools, servers, SNAT addresses, workers): its Prometheus name, type, help
 * and label, its key in /stats, and the accessor that reads it. The writers
 * loop over the rows, so a figure is said once and a new counter is one row
 * plus its accessor (HAProxy's stat_cols_px[] has the same shape). The
 * exposition format wants every sample of a family together under one HELP
 * and one TYPE line, so the Prometheus writer runs each row over all the
 * objects of its kind; /stats nests the objects and writes each one's rows
 * in turn. A pool's figures are the sums of its servers' rows, from the same
 * accessors, so the two can never disagree. The page's tables are lists of
 * columns (header, format, the rows' accessors), laid out for people. */
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

static uint64_t unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the tables ---- */

/* The object a row is read from: the fields its kind uses are set. */
struct mobj {
	const struct runtime *rt;
	const struct runtime_vip *vip;   /* VIP, SNAT address */
	const struct runtime_pool *pool; /* pool, server */
	int i;                           /* the object's index (-1 before the first) */
	int n;                           /* server, SNAT address: its pool's or VIP's index */
};

/* A figure of the object, for value v of the row's label (0 without one);
 * a histogram's accessor gives bucket v (not cumulative), and its sum for
 * v = nvalues. */
typedef unsigned long long (*metric_get)(const struct mobj *o, int v);

/* get(o, v), or with sum (o is a pool) the sum of its servers' figures. */
static unsigned long long metric_value(metric_get get, const struct mobj *o, int v, bool sum)
{
	struct mobj s = *o;
	unsigned long long n = 0;

	if (!sum)
		return get(o, v);
	for (s.i = 0; s.i < o->pool->cfg->nservers; s.i++)
		n += get(&s, v);
	return n;
}

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };
static const char *const metric_type_name[] = {"counter", "gauge", "histogram"};

/* How a row shows in /stats, under its key. */
enum metric_json {
	JSON_NUMBER, /* a number; with a label, an object of numbers by label value */
	JSON_FLAT,   /* with a label: a number per value, keyed KEY_VALUE */
	JSON_BOOL,   /* true or false */
	JSON_NAME,   /* the label value whose sample is not 0, as a string */
	JSON_ARRAY,  /* a histogram's buckets, each its own count */
};

/* Where a server's row is summed per pool. */
enum { POOL_PROM = 1, POOL_JSON = 2 };

struct metric {
	const char *name; /* snatproxy_<kind>_NAME in /metrics; NULL: /stats only */
	enum metric_type type;
	const char *help;
	const char *label;         /* a label that splits the figure, or NULL */
	const char *const *values; /* its values, a sample each; a histogram's buckets */
	int nvalues;               /* (the last bucket is +Inf) */
	const double *le;          /* a histogram's upper bounds, in the values' unit */
	double scale;              /* not 0: /metrics shows value / scale (and le), in seconds */
	const char *json;          /* key in /stats; NULL: /metrics only */
	enum metric_json style;    /* how /stats shows it */
	unsigned pool;             /* servers: POOL_PROM, POOL_JSON */
	bool (*has)(const struct mobj *o); /* NULL: every object of the kind has the row */
	metric_get get;
};

#define NROWS(t) (sizeof(t) / sizeof((t)[0]))

/* An accessor that is one expression of o (and v, for a label's value). */
#define ACCESSOR(fn, expr)                                                                         \
	static unsigned long long fn(const struct mobj *o, int v)                                  \
	{                                                                                          \
		(void)o, (void)v;                                                                  \
		return (unsigned long long)(expr);                                                 \
	}

/* Counts of open connections, never shown below 0. */
static unsigned long long nonneg(int n)
{
	return n > 0 ? (unsigned long long)n : 0;
}

static const char help_bytes[] = "Bytes of the clients' connections, counted as they move.";
static const char *const directions[] = {"to_server", "to_client"};

/* ---- the process ---- */

static const char *const versions[] = {SNATPROXY_VERSION};
static const char *const pause_causes[RUNTIME_PAUSE_N] = {
    [RUNTIME_PAUSE_MAXCONN] = "max_connections", [RUNTIME_PAUSE_NOFILE] = "descriptors"};

ACCESSOR(g_one, 1)
ACCESSOR(g_start, o->rt->root->start_time)
ACCESSOR(g_uptime, (unsigned long long)time(NULL) - o->rt->root->start_time)
ACCESSOR(g_live, nonneg(LD(o->rt->root->live)))
ACCESSOR(g_max_conns, (unsigned long long)o->rt->max_connections)
ACCESSOR(g_paused, LD(o->rt->root->paused[v]))
ACCESSOR(g_nofile_waits, LD(o->rt->root->nofile_waits))

static const struct metric global_metrics[] = {
    {"build_info", METRIC_GAUGE, "Version of the running proxy.", .label = "version",
     .values = versions, .nvalues = 1, .get = g_one},
    {"start_time_seconds", METRIC_GAUGE, "When the proxy started, Unix time.", .json = "start_time",
     .get = g_start},
    {NULL, .json = "uptime_s", .get = g_uptime},
    {"connections_active", METRIC_GAUGE, "Open client connections, all VIPs.",
     .json = "connections_active", .get = g_live},
    {"max_connections", METRIC_GAUGE, "Configured max_connections.", .json = "max_connections",
     .get = g_max_conns},
    {"accept_paused_total", METRIC_COUNTER,
     "Times a worker stopped accepting, by cause (clients wait in the kernel's backlog "
     "meanwhile).",
     .label = "reason", .values = pause_causes, .nvalues = RUNTIME_PAUSE_N, .json = "accept_paused",
     .get = g_paused},
    {"descriptor_waits_total", METRIC_COUNTER,
     "Client connections that waited for a descriptor to open their server socket.",
     .json = "descriptor_waits", .get = g_nofile_waits},
};

/* ---- VIPs ---- */

ACCESSOR(vip_active, nonneg(LD(o->vip->active)))
ACCESSOR(vip_conns, LD(o->vip->conns))
/* The VIP's own generation's workers: as many rows as its pool has. */
ACCESSOR(vip_bytes, runtime_vip_bytes(o->vip, v))
ACCESSOR(vip_no_server, LD(o->vip->refused[RUNTIME_REFUSE_NO_SERVER]))
ACCESSOR(vip_rate, LD(o->vip->rate))
ACCESSOR(vip_rate_peak, LD(o->vip->rate_peak))
ACCESSOR(vip_refused, LD(o->vip->refused[v]))
static bool vip_terminates(const struct mobj *o)
{
	return o->vip->cfg->tls == CONFIG_TLS_TERMINATE;
}
ACCESSOR(vip_handshakes, LD(o->vip->tls.results[v]))

static const struct metric vip_metrics[] = {
    {"connections_active", METRIC_GAUGE, "Open client connections.", .json = "connections_active",
     .get = vip_active},
    {"connections_total", METRIC_COUNTER, "Client connections accepted.",
     .json = "connections_total", .get = vip_conns},
    {"bytes_total", METRIC_COUNTER, help_bytes, .label = "direction", .values = directions,
     .nvalues = 2, .json = "bytes", .style = JSON_FLAT, .get = vip_bytes},
    {"no_server_total", METRIC_COUNTER, "Client connections refused for want of a server.",
     .json = "no_server", .get = vip_no_server},
    {"connection_rate", METRIC_GAUGE, "New client connections per second, over the last second.",
     .json = "connection_rate", .get = vip_rate},
    {"connection_rate_peak", METRIC_GAUGE, "Highest connection_rate seen.",
     .json = "connection_rate_peak", .get = vip_rate_peak},
    {"refused_total", METRIC_COUNTER,
     "Client connections that ended before reaching a server, by cause.", .label = "cause",
     .values = runtime_refuse_name, .nvalues = RUNTIME_REFUSE_N, .json = "refused",
     .get = vip_refused},
    {"tls_handshakes_total", METRIC_COUNTER,
     "Client TLS handshakes by result: ok, or why they failed.", .label = "result",
     .values = tls_result_name, .nvalues = TLS_RESULT_N, .json = "tls_handshakes",
     .has = vip_terminates, .get = vip_handshakes},
};

/* ---- servers, and pools: their sums ---- */

static const char *const fail_causes[] = {"refused", "timeout", "error"};
static const char *const srv_states[] = {"up", "drain", "down", "disabled"};

#define SRV(o) (&(o)->pool->stats[(o)->i])
#define BAL(o) (&(o)->pool->bal.srv[(o)->i])

static unsigned srv_flags(const struct mobj *o)
{
	return LD(BAL(o)->flags);
}
ACCESSOR(srv_active, nonneg(LD(BAL(o)->active)))
ACCESSOR(srv_conns, LD(SRV(o)->conns))
ACCESSOR(srv_bytes, runtime_server_bytes(o->pool, o->i, v))
ACCESSOR(srv_fails, v == 0   ? LD(SRV(o)->fail_refused)
		    : v == 1 ? LD(SRV(o)->fail_timeout)
			     : LD(SRV(o)->fail_error))
ACCESSOR(srv_retries, LD(SRV(o)->retries))
ACCESSOR(srv_up, srv_flags(o) == 0)
ACCESSOR(srv_weight, (unsigned long long)BAL(o)->weight)
ACCESSOR(srv_state, strcmp(metrics_state_name(srv_flags(o)), srv_states[v]) == 0)
ACCESSOR(srv_backup, BAL(o)->backup)
ACCESSOR(srv_max_conn, (unsigned long long)BAL(o)->max_conn)
ACCESSOR(srv_downs, LD(SRV(o)->downs))
ACCESSOR(srv_checks, LD(SRV(o)->checks[v]))
ACCESSOR(srv_check_us, LD(SRV(o)->check_us))
ACCESSOR(srv_check_hist,
	 v < RUNTIME_CHECK_HIST ? LD(SRV(o)->check_hist[v]) : LD(SRV(o)->check_us_sum))
static const double check_le_us[RUNTIME_CHECK_HIST - 1] = {RUNTIME_CHECK_LE_US};
ACCESSOR(srv_state_ms, LD(SRV(o)->state_ms))
static unsigned long long srv_state_s(const struct mobj *o, int v)
{
	uint64_t since = srv_state_ms(o, v), now = unix_ms();
	return now > since ? (now - since) / 1000 : 0;
}
static unsigned long long srv_checks_failed(const struct mobj *o, int v)
{
	unsigned long long n = 0;

	for (int r = HEALTH_OK + 1; r < HEALTH_RESULT_N; r++)
		n += srv_checks(o, r);
	(void)v;
	return n;
}

static const struct metric server_metrics[] = {
    {"connections_active", METRIC_GAUGE, "Open connections.", .json = "connections_active",
     .pool = POOL_PROM | POOL_JSON, .get = srv_active},
    {"connections_total", METRIC_COUNTER, "Connections established to the server.",
     .json = "connections_total", .pool = POOL_PROM | POOL_JSON, .get = srv_conns},
    {"bytes_total", METRIC_COUNTER, help_bytes, .label = "direction", .values = directions,
     .nvalues = 2, .json = "bytes", .style = JSON_FLAT, .pool = POOL_PROM | POOL_JSON,
     .get = srv_bytes},
    {"connect_failures_total", METRIC_COUNTER, "Failed connects by cause.", .label = "cause",
     .values = fail_causes, .nvalues = 3, .json = "connect_failures", .pool = POOL_PROM | POOL_JSON,
     .get = srv_fails},
    {"retries_total", METRIC_COUNTER,
     "Connections retried on another server after this one failed.", .json = "retries",
     .pool = POOL_PROM, .get = srv_retries},
    {"up", METRIC_GAUGE, "1 when the server takes new connections.", .get = srv_up},
    {"weight", METRIC_GAUGE, "Configured weight.", .json = "weight", .get = srv_weight},
    {"state", METRIC_GAUGE, "1 for the server's current state.", .label = "state",
     .values = srv_states, .nvalues = 4, .json = "state", .style = JSON_NAME, .get = srv_state},
    {"backup", METRIC_GAUGE, "1 for a backup server.", .json = "backup", .style = JSON_BOOL,
     .get = srv_backup},
    {"max_conn", METRIC_GAUGE, "Configured max_conn (0: unlimited).", .json = "max_conn",
     .get = srv_max_conn},
    {"downs_total", METRIC_COUNTER, "Times the server went down (checks or client connects).",
     .json = "downs", .get = srv_downs},
    {"checks_total", METRIC_COUNTER, "Health checks by result.", .label = "result",
     .values = health_result_name, .nvalues = HEALTH_RESULT_N, .json = "checks", .get = srv_checks},
    {NULL, .json = "checks_failed", .get = srv_checks_failed},
    {"check_duration_seconds", METRIC_GAUGE, "How long the last health check took.", .scale = 1e6,
     .get = srv_check_us},
    {"check_seconds", METRIC_HISTOGRAM, "How long health checks took.",
     .nvalues = RUNTIME_CHECK_HIST, .le = check_le_us, .scale = 1e6, .json = "check_us",
     .style = JSON_ARRAY, .get = srv_check_hist},
    {"state_change_timestamp_seconds", METRIC_GAUGE,
     "When the server's state last changed, Unix time.", .scale = 1e3, .json = "state_since",
     .get = srv_state_ms},
    {NULL, .json = "state_seconds", .get = srv_state_s},
};

/* A pool's own rows; the others are its servers' rows marked POOL_*. */
ACCESSOR(pool_servers, (unsigned long long)o->pool->cfg->nservers)
ACCESSOR(pool_servers_up, metric_value(srv_up, o, v, true))

static const struct metric pool_metrics[] = {
    {"servers", METRIC_GAUGE, "Servers in the pool.", .json = "servers_total", .get = pool_servers},
    {"servers_up", METRIC_GAUGE, "Servers taking new connections.", .json = "servers_up",
     .get = pool_servers_up},
};

/* ---- SNAT addresses ---- */

ACCESSOR(snat_exhausted, LD(o->vip->snat[o->i].exhausted))

static const struct metric snat_metrics[] = {
    {"port_exhausted_total", METRIC_COUNTER,
     "Connects refused for want of a source port (EADDRNOTAVAIL), per SNAT address.",
     .json = "port_exhausted", .get = snat_exhausted},
};

/* ---- workers ---- */

/* Worker figures are published by each worker once per tick (100 ms). */
#define WS(o) (&(o)->rt->root->wstats[(o)->i])

ACCESSOR(wk_submitted, LD(WS(o)->submitted))
ACCESSOR(wk_completed, LD(WS(o)->completed))
ACCESSOR(wk_cq_overflow, LD(WS(o)->cq_overflow))
ACCESSOR(wk_enobufs, LD(WS(o)->enobufs))
ACCESSOR(wk_buffers_free, LD(WS(o)->buffers_free))
ACCESSOR(wk_buffers, LD(WS(o)->buffers))
ACCESSOR(wk_live, nonneg(LD(WS(o)->live)))
ACCESSOR(wk_batch_n, v < RUNTIME_HIST ? LD(WS(o)->batch_n[v]) : LD(WS(o)->completed))
ACCESSOR(wk_batch_us, v < RUNTIME_HIST ? LD(WS(o)->batch_us[v]) : LD(WS(o)->busy_us))

/* Upper bounds of the loop's batch histograms (loop.h), the last bucket
 * being +Inf: completions per batch (1, 2-3, ..., 64 and more), and
 * time per batch (under 16 us, 64, ..., 16384 us and more). */
static const double batch_le_n[RUNTIME_HIST - 1] = {1, 3, 7, 15, 31, 63};
static const double batch_le_us[RUNTIME_HIST - 1] = {16, 64, 256, 1024, 4096, 16384};

static const struct metric worker_metrics[] = {
    {"ring_submissions_total", METRIC_COUNTER, "io_uring requests submitted.",
     .json = "ring_submissions", .get = wk_submitted},
    {"ring_completions_total", METRIC_COUNTER, "io_uring completions handled.",
     .json = "ring_completions", .get = wk_completed},
    {"ring_cq_overflows_total", METRIC_COUNTER, "Completions the kernel could not post (CQ full).",
     .json = "ring_cq_overflows", .get = wk_cq_overflow},
    {"buffer_exhausted_total", METRIC_COUNTER,
     "Receives that found the provided-buffer ring empty (ENOBUFS).", .json = "buffer_exhausted",
     .get = wk_enobufs},
    {"buffers_free", METRIC_GAUGE, "Provided receive buffers not in use.", .json = "buffers_free",
     .get = wk_buffers_free},
    {"buffers", METRIC_GAUGE, "Provided receive buffers.", .json = "buffers", .get = wk_buffers},
    {"connections_active", METRIC_GAUGE, "Open client connections of the worker.",
     .json = "connections_active", .get = wk_live},
    {"loop_batch_completions", METRIC_HISTOGRAM, "Completions handled in one batch.",
     .nvalues = RUNTIME_HIST, .le = batch_le_n, .json = "batch_completions", .style = JSON_ARRAY,
     .get = wk_batch_n},
    {"loop_batch_seconds", METRIC_HISTOGRAM, "Time one batch of completions took to handle.",
     .nvalues = RUNTIME_HIST, .le = batch_le_us, .scale = 1e6, .json = "batch_us",
     .style = JSON_ARRAY, .get = wk_batch_us},
};

/* ---- the kinds: their objects and their identifying labels ---- */

static bool next_once(struct mobj *o)
{
	return ++o->i == 0;
}
static bool next_vip(struct mobj *o)
{
	if (++o->i >= o->rt->cfg->nvips)
		return false;
	o->vip = &o->rt->vips[o->i];
	return true;
}
static bool next_pool(struct mobj *o)
{
	if (++o->i >= o->rt->cfg->npools)
		return false;
	o->pool = &o->rt->pools[o->i];
	return true;
}
static bool next_server(struct mobj *o)
{
	for (; o->n < o->rt->cfg->npools; o->n++, o->i = -1) {
		o->pool = &o->rt->pools[o->n];
		if (++o->i < o->pool->cfg->nservers)
			return true;
	}
	return false;
}
static bool next_snat(struct mobj *o)
{
	for (; o->n < o->rt->cfg->nvips; o->n++, o->i = -1) {
		o->vip = &o->rt->vips[o->n];
		if (++o->i < o->vip->cfg->nsnat)
			return true;
	}
	return false;
}
static bool next_worker(struct mobj *o)
{
	return ++o->i < o->rt->nworkers;
}

/* Label values: backslash, double quote and newline escaped, as the format says. */
static void prom_label(FILE *out, const char *name, const char *s)
{
	fprintf(out, "%s=\"", name);
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', out);
		if (*s == '\n')
			fputs("\\n", out);
		else
			fputc(*s, out);
	}
	fputc('"', out);
}

static void labels_vip(FILE *out, const struct mobj *o)
{
	prom_label(out, "vip", o->vip->cfg->name);
}
static void labels_pool(FILE *out, const struct mobj *o)
{
	prom_label(out, "pool", o->pool->cfg->name);
}
static void labels_server(FILE *out, const struct mobj *o)
{
	labels_pool(out, o);
	fputc(',', out);
	prom_label(out, "server", o->pool->cfg->servers[o->i].name);
}
static void labels_snat(FILE *out, const struct mobj *o)
{
	char a[ADDR_STRLEN];

	labels_vip(out, o);
	fputc(',', out);
	prom_label(out, "address",
		   addr_format((const struct sockaddr *)&o->vip->snat[o->i].addr, a, sizeof(a)));
}
static void labels_worker(FILE *out, const struct mobj *o)
{
	fprintf(out, "worker=\"%d\"", o->i);
}

struct metric_kind {
	const char *prefix; /* of the rows' names, after snatproxy_ */
	const struct metric *rows;
	size_t nrows;
	bool (*next)(struct mobj *o);                    /* to the next object, or false */
	void (*labels)(FILE *out, const struct mobj *o); /* the object's; NULL: none */
	unsigned sum; /* pools: the server rows marked so, summed over the pool */
};

/* In /metrics, in this order: a pool's sums of its servers' rows, then
 * its own rows. */
static const struct metric_kind kinds[] = {
    {"", global_metrics, NROWS(global_metrics), next_once, NULL, 0},
    {"vip_", vip_metrics, NROWS(vip_metrics), next_vip, labels_vip, 0},
    {"pool_", server_metrics, NROWS(server_metrics), next_pool, labels_pool, POOL_PROM},
    {"pool_", pool_metrics, NROWS(pool_metrics), next_pool, labels_pool, 0},
    {"server_", server_metrics, NROWS(server_metrics), next_server, labels_server, 0},
    {"snat_", snat_metrics, NROWS(snat_metrics), next_snat, labels_snat, 0},
    {"worker_", worker_metrics, NROWS(worker_metrics), next_worker, labels_worker, 0},
};

/* ---- Prometheus ---- */

/* NAME{the object's labels,LABEL="VALUE"} and the space before the value. */
static void prom_series(FILE *out, const char *name, const char *suffix,
			const struct metric_kind *k, const struct mobj *o, const char *label,
			const char *value)
{
	fprintf(out, "%s%s", name, suffix);
	if (k->labels) {
		fputc('{', out);
		k->labels(out, o);
	}
	if (label) {
		fputc(k->labels ? ',' : '{', out);
		prom_label(out, label, value);
	}
	fputs(k->labels || label ? "} " : " ", out);
}

static void prom_value(FILE *out, const struct metric *m, unsigned long long v)
{
	if (m->scale != 0)
		fprintf(out, "%.6f\n", (double)v / m->scale);
	else
		fprintf(out, "%llu\n", v);
}

/* Buckets cumulative, as Prometheus counts them. */
static void prom_histogram(FILE *out, const char *name, const struct metric_kind *k,
			   const struct metric *m, const struct mobj *o)
{
	unsigned long long cum = 0;

	for (int b = 0; b < m->nvalues; b++) {
		char le[24] = "+Inf";
		if (b < m->nvalues - 1)
			snprintf(le, sizeof(le), "%g", m->scale ? m->le[b] / m->scale : m->le[b]);
		cum += m->get(o, b);
		prom_series(out, name, "_bucket", k, o, "le", le);
		fprintf(out, "%llu\n", cum);
	}
	prom_series(out, name, "_sum", k, o, NULL, NULL);
	prom_value(out, m, m->get(o, m->nvalues));
	prom_series(out, name, "_count", k, o, NULL, NULL);
	fprintf(out, "%llu\n", cum);
}

static void prom_kind(FILE *out, const struct runtime *rt, const struct metric_kind *k)
{
	char name[128];

	for (size_t r = 0; r < k->nrows; r++) {
		const struct metric *m = &k->rows[r];
		if (!m->name || (k->sum && !(m->pool & k->sum)))
			continue;
		snprintf(name, sizeof(name), "snatproxy_%s%s", k->prefix, m->name);
		fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, m->help, name,
			metric_type_name[m->type]);
		/* A label's first value for every object, then its next one. */
		int nv = m->type == METRIC_HISTOGRAM || !m->label ? 1 : m->nvalues;
		for (int v = 0; v < nv; v++)
			for (struct mobj o = {.rt = rt, .i = -1}; k->next(&o);) {
				if (m->has && !m->has(&o))
					continue;
				if (m->type == METRIC_HISTOGRAM) {
					prom_histogram(out, name, k, m, &o);
					continue;
				}
				prom_series(out, name, "", k, &o, m->label,
					    m->label ? m->values[v] : NULL);
				prom_value(out, m, metric_value(m->get, &o, v, k->sum));
			}
	}
}

void metrics_prometheus(FILE *out, const struct runtime *rt)
{
	for (size_t k = 0; k < NROWS(kinds); k++)
		prom_kind(out, rt, &kinds[k]);
	budget_prometheus(out, rt);
}

/* ---- JSON ---- */

static const char *const snat_mode_name[] = {
    [CONFIG_SNAT_AUTO] = "auto", [CONFIG_SNAT_OFF] = "off", [CONFIG_SNAT_POOL] = "addresses"};
static const char *const tls_mode_name[] = {
    [CONFIG_TLS_OFF] = "off", [CONFIG_TLS_TERMINATE] = "terminate", [CONFIG_TLS_ROUTE] = "route"};

/* The rows of object o as ,"key":value after the members that name it;
 * with sum (a pool), the server rows marked so, a label's values summed
 * unless they have keys of their own (JSON_FLAT). */
static void json_rows(FILE *out, const struct metric *rows, size_t n, const struct mobj *o,
		      unsigned sum)
{
	for (size_t r = 0; r < n; r++) {
		const struct metric *m = &rows[r];
		int nv = m->label || m->type == METRIC_HISTOGRAM ? m->nvalues : 1;
		if (!m->json || (sum && !(m->pool & sum)) || (m->has && !m->has(o)))
			continue;
		switch (m->style) {
		case JSON_NUMBER:
			if (!m->label || sum) {
				unsigned long long t = 0;
				for (int v = 0; v < nv; v++)
					t += metric_value(m->get, o, v, sum);
				fprintf(out, ",\"%s\":%llu", m->json, t);
				break;
			}
			fprintf(out, ",\"%s\":{", m->json);
			for (int v = 0; v < nv; v++)
				fprintf(out, "%s\"%s\":%llu", v ? "," : "", m->values[v],
					metric_value(m->get, o, v, sum));
			fputc('}', out);
			break;
		case JSON_FLAT:
			for (int v = 0; v < nv; v++)
				fprintf(out, ",\"%s_%s\":%llu", m->json, m->values[v],
					metric_value(m->get, o, v, sum));
			break;
		case JSON_BOOL:
			fprintf(out, ",\"%s\":%s", m->json,
				metric_value(m->get, o, 0, sum) ? "true" : "false");
			break;
		case JSON_NAME:
			for (int v = 0; v < nv; v++)
				if (metric_value(m->get, o, v, sum)) {
					fprintf(out, ",\"%s\":\"%s\"", m->json, m->values[v]);
					break;
				}
			break;
		case JSON_ARRAY:
			fprintf(out, ",\"%s\":[", m->json);
			for (int v = 0; v < nv; v++)
				fprintf(out, "%s%llu", v ? "," : "", m->get(o, v));
			fputc(']', out);
			break;
		}
	}
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
static const char *srv_down_reason(const struct mobj *o, char *buf, size_t len)
{
	int err = LD(SRV(o)->down_err);

	if (!err || strcmp(metrics_state_name(srv_flags(o)), "down") != 0)
		return NULL;
	snprintf(buf, len, "client connects failed: %s", health_errno_text(-err));
	return buf;
}

static void json_check(FILE *out, const struct mobj *o)
{
	struct health_last h;
	char why[96];

	health_last_get(o->pool, o->i, &h);
	fprintf(out, ",\"check\":{\"type\":\"%s\"", h.type);
	if (h.checked) {
		fprintf(out, ",\"result\":\"%s\",\"duration_ms\":%.3f,\"at\":%llu,\"text\":",
			health_result_name[h.result], (double)h.dur_us / 1000,
			(unsigned long long)h.unix_ms);
		json_text(out, h.text);
	}
	if (srv_down_reason(o, why, sizeof(why)))
		fprintf(out, ",\"down_reason\":\"%s\"", why);
	fputc('}', out);
}

/* Names are restricted to [A-Za-z0-9_.-] by the config and addresses are
 * printed by addr_format, so neither needs escaping in JSON. */
static void json_server(FILE *out, const struct mobj *o)
{
	char a[ADDR_STRLEN];
	const struct config_server *cs = &o->pool->cfg->servers[o->i];

	fprintf(out, "{\"name\":\"%s\",\"address\":\"%s\"", cs->name,
		addr_format((const struct sockaddr *)&cs->addr, a, sizeof(a)));
	json_check(out, o);
	json_rows(out, server_metrics, NROWS(server_metrics), o, 0);
	fputc('}', out);
}

static void json_pool(FILE *out, const struct mobj *o)
{
	struct mobj s = *o;

	fprintf(out, "{\"name\":\"%s\"", o->pool->cfg->name);
	json_rows(out, pool_metrics, NROWS(pool_metrics), o, 0);
	json_rows(out, server_metrics, NROWS(server_metrics), o, POOL_JSON);
	fputs(",\"servers\":[", out);
	for (s.i = 0; s.i < o->pool->cfg->nservers; s.i++) {
		fputs(s.i ? "," : "", out);
		json_server(out, &s);
	}
	fputs("]}", out);
}

static void json_vip(FILE *out, const struct mobj *o)
{
	const struct runtime_vip *v = o->vip;
	struct mobj s = *o;
	char a[ADDR_STRLEN];

	fprintf(out, "{\"name\":\"%s\",\"pool\":\"%s\",\"listen\":[", v->cfg->name,
		v->pool->cfg->name);
	for (int i = 0; i < v->cfg->nlisten; i++)
		fprintf(out, "%s\"%s\"", i ? "," : "",
			addr_format((const struct sockaddr *)&v->cfg->listen[i], a, sizeof(a)));
	fprintf(out, "],\"snat_mode\":\"%s\",\"tls\":\"%s\"", snat_mode_name[v->cfg->snat],
		tls_mode_name[v->cfg->tls]);
	json_rows(out, vip_metrics, NROWS(vip_metrics), o, 0);
	fputs(",\"snat\":[", out);
	for (s.i = 0; s.i < v->cfg->nsnat; s.i++) {
		fprintf(out, "%s{\"address\":\"%s\"", s.i ? "," : "",
			addr_format((const struct sockaddr *)&v->snat[s.i].addr, a, sizeof(a)));
		json_rows(out, snat_metrics, NROWS(snat_metrics), &s, 0);
		fputc('}', out);
	}
	fputs("]}", out);
}

void metrics_json(FILE *out, const struct runtime *rt)
{
	struct mobj o = {.rt = rt};

	fprintf(out, "{\"version\":\"%s\"", SNATPROXY_VERSION);
	json_rows(out, global_metrics, NROWS(global_metrics), &o, 0);
	fputs(",\"vips\":[", out);
	for (o.i = -1; next_vip(&o);) {
		fputs(o.i ? "," : "", out);
		json_vip(out, &o);
	}
	fputs("],\"pools\":[", out);
	for (o.i = -1; next_pool(&o);) {
		fputs(o.i ? "," : "", out);
		json_pool(out, &o);
	}
	fputs("],\"workers\":[", out);
	for (o.i = -1; next_worker(&o);) {
		fprintf(out, "%s{\"worker\":%d", o.i ? "," : "", o.i);
		json_rows(out, worker_metrics, NROWS(worker_metrics), &o, 0);
		fputc('}', out);
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

/* A column of the page. A figure's cell reads the same accessor as its row
 * in /metrics and /stats, and carries data-k for the page's script, which
 * refreshes it from /stats; other cells (names, addresses, buttons) are
 * written by a function of their own. */
enum page_format {
	PAGE_NUMBER,
	PAGE_BYTES,  /* binary units */
	PAGE_AGE,    /* seconds, in their two largest units */
	PAGE_YES_NO, /* a flag */
	PAGE_DASH_0, /* a limit, 0 (none) shown as "-" */
	PAGE_COUNTS, /* "cause N, cause M", the nonzero counts by label value, or "none" */
};

struct page_col {
	const char *th, *key; /* header; data-k (NULL: the script leaves the cell) */
	enum page_format format;
	metric_get get;
	int v, nv;                /* label values v .. v + nv - 1, summed (nv 0: v alone) */
	const char *const *names; /* PAGE_COUNTS: the values' names */
	bool (*has)(const struct mobj *o); /* NULL: always; else "-" without */
	bool total;                        /* summed in a pool's total row */
	void (*cell)(FILE *out, const struct mobj *o);
};

static void page_cell(FILE *out, const struct page_col *c, const struct mobj *o, bool sum)
{
	unsigned long long n = 0;
	char buf[32];
	bool any = false;

	if (c->cell) {
		c->cell(out, o);
		return;
	}
	fprintf(out, "<td%s", c->format == PAGE_COUNTS ? " class=\"t\"" : "");
	if (c->key)
		fprintf(out, " data-k=\"%s\"", c->key);
	fputc('>', out);
	if (c->has && !c->has(o)) {
		fputs("-</td>", out);
		return;
	}
	if (c->format == PAGE_COUNTS) {
		for (int v = c->v; v < c->v + c->nv; v++) {
			unsigned long long k = c->get(o, v);
			if (k)
				fprintf(out, "%s%s %llu", any ? ", " : "", c->names[v], k);
			any = any || k;
		}
		fputs(any ? "</td>" : "none</td>", out);
		return;
	}
	for (int v = c->v; v < c->v + (c->nv ? c->nv : 1); v++)
		n += metric_value(c->get, o, v, sum);
	switch (c->format) {
	case PAGE_BYTES:
		fputs(html_bytes(n, buf, sizeof(buf)), out);
		break;
	case PAGE_AGE:
		fputs(html_age(n, buf, sizeof(buf)), out);
		break;
	case PAGE_YES_NO:
		fputs(n ? "yes" : "no", out);
		break;
	case PAGE_DASH_0:
		if (!n) {
			fputc('-', out);
			break;
		}
		/* fall through */
	default:
		fprintf(out, "%llu", n);
	}
	fputs("</td>", out);
}

static void page_head(FILE *out, const struct page_col *cols, size_t n)
{
	fputs("<table><tr>", out);
	for (size_t c = 0; c < n; c++)
		fprintf(out, "<th>%s</th>", cols[c].th);
	fputs("</tr>\n", out);
}

static void page_row(FILE *out, const struct page_col *cols, size_t n, const struct mobj *o)
{
	for (size_t c = 0; c < n; c++)
		page_cell(out, &cols[c], o, false);
	fputs("</tr>\n", out);
}

/* A pool's total row: its first cell says so, the columns marked total are
 * summed over its servers, the others left blank. */
static void page_total(FILE *out, const struct page_col *cols, size_t n, const struct mobj *o)
{
	fprintf(out, "<tr class=\"sum\" data-p=\"%s\"><td>total</td>", o->pool->cfg->name);
	for (size_t c = 1; c < n;) {
		size_t blank = 0;
		while (c + blank < n && !cols[c + blank].total)
			blank++;
		if (blank) {
			fprintf(out, "<td colspan=\"%zu\"></td>", blank);
			c += blank;
			continue;
		}
		page_cell(out, &cols[c++], o, true);
	}
	fputs("</tr>", out);
}

static void cell_vip(FILE *out, const struct mobj *o)
{
	fprintf(out, "<td>%s</td>", o->vip->cfg->name);
}
static void cell_vip_pool(FILE *out, const struct mobj *o)
{
	fprintf(out, "<td>%s</td>", o->vip->pool->cfg->name);
}
static void cell_listen(FILE *out, const struct mobj *o)
{
	const struct config_vip *cv = o->vip->cfg;
	char a[ADDR_STRLEN];

	fputs("<td class=\"t\">", out);
	for (int i = 0; i < cv->nlisten; i++)
		fprintf(out, "%s%s", i ? "<br>" : "",
			addr_format((const struct sockaddr *)&cv->listen[i], a, sizeof(a)));
	fputs("</td>", out);
}
static void cell_snat(FILE *out, const struct mobj *o)
{
	char a[ADDR_STRLEN];

	fprintf(out, "<td class=\"t\">%s", snat_mode_name[o->vip->cfg->snat]);
	for (int i = 0; i < o->vip->cfg->nsnat; i++)
		fprintf(out, "%s%s", i ? ", " : ": ",
			addr_format((const struct sockaddr *)&o->vip->snat[i].addr, a, sizeof(a)));
	fputs("</td>", out);
}
static void cell_tls(FILE *out, const struct mobj *o)
{
	fprintf(out, "<td class=\"t\">%s</td>", tls_mode_name[o->vip->cfg->tls]);
}
static void cell_rate(FILE *out, const struct mobj *o)
{
	fprintf(out, "<td data-k=\"rate\">%llu/s (peak %llu/s)</td>", vip_rate(o, 0),
		vip_rate_peak(o, 0));
}

static const struct page_col vip_page[] = {
    {"vip", .cell = cell_vip},
    {"pool", .cell = cell_vip_pool},
    {"listen", .cell = cell_listen},
    {"SNAT", .cell = cell_snat},
    {"TLS", .cell = cell_tls},
    {"active", "active", PAGE_NUMBER, .get = vip_active},
    {"total", "total", PAGE_NUMBER, .get = vip_conns},
    {"to server", "to_server", PAGE_BYTES, .get = vip_bytes, .v = 0},
    {"to client", "to_client", PAGE_BYTES, .get = vip_bytes, .v = 1},
    {"new connections", .cell = cell_rate},
    {"refused", "refused", PAGE_COUNTS, .get = vip_refused, .nv = RUNTIME_REFUSE_N,
     .names = runtime_refuse_name},
    {"TLS handshakes", "tls", PAGE_COUNTS, .get = vip_handshakes, .nv = TLS_RESULT_N,
     .names = tls_result_name, .has = vip_terminates},
};

static void cell_server(FILE *out, const struct mobj *o)
{
	fprintf(out, "<td>%s</td>", o->pool->cfg->servers[o->i].name);
}
static void cell_address(FILE *out, const struct mobj *o)
{
	char a[ADDR_STRLEN];

	fprintf(
	    out, "<td>%s</td>",
	    addr_format((const struct sockaddr *)&o->pool->cfg->servers[o->i].addr, a, sizeof(a)));
}
static void cell_state(FILE *out, const struct mobj *o)
{
	const char *st = metrics_state_name(srv_flags(o));

	fprintf(out, "<td data-k=\"state\" class=\"%s\">%s</td>", st, st);
}
static void cell_check(FILE *out, const struct mobj *o)
{
	struct health_last h;
	char buf[HEALTH_TEXT_MAX + 64];

	health_last_get(o->pool, o->i, &h);
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
	if (srv_down_reason(o, buf, sizeof(buf)))
		fprintf(out, "; %s", buf);
	fputs("</td>", out);
}
static void cell_actions(FILE *out, const struct mobj *o)
{
	static const char *const act[] = {"drain", "disable", "enable"};

	fputs("<td class=\"a\">", out);
	for (int b = 0; b < 3; b++)
		fprintf(out,
			"<button type=\"submit\" name=\"do\" value=\"%s\" "
			"formaction=\"/pools/%s/servers/%s/%s\">%s</button>",
			act[b], o->pool->cfg->name, o->pool->cfg->servers[o->i].name, act[b],
			act[b]);
	fputs("</td>", out);
}

static const struct page_col server_page[] = {
    {"server", .cell = cell_server},
    {"address", .cell = cell_address},
    {"state", .cell = cell_state},
    {"for", "for", PAGE_AGE, .get = srv_state_s},
    {"last check", .cell = cell_check},
    {"checks failed", "failed", PAGE_NUMBER, .get = srv_checks_failed},
    {"downs", "downs", PAGE_NUMBER, .get = srv_downs},
    {"weight", NULL, PAGE_NUMBER, .get = srv_weight},
    {"backup", NULL, PAGE_YES_NO, .get = srv_backup},
    {"max_conn", NULL, PAGE_DASH_0, .get = srv_max_conn},
    {"active", "active", PAGE_NUMBER, .get = srv_active, .total = true},
    {"total", "total", PAGE_NUMBER, .get = srv_conns, .total = true},
    {"to server", "to_server", PAGE_BYTES, .get = srv_bytes, .v = 0, .total = true},
    {"to client", "to_client", PAGE_BYTES, .get = srv_bytes, .v = 1, .total = true},
    {"connect failures", "connfail", PAGE_NUMBER, .get = srv_fails, .nv = 3, .total = true},
    {"retries", "retries", PAGE_NUMBER, .get = srv_retries},
    {"action", .cell = cell_actions},
};

static void html_pool(FILE *out, const struct mobj *o)
{
	struct mobj s = *o;

	fprintf(
	    out, "<h2 data-p=\"%s\">pool %s: <span data-k=\"up\">%llu of %d</span> servers up</h2>",
	    o->pool->cfg->name, o->pool->cfg->name, pool_servers_up(o, 0), o->pool->cfg->nservers);
	page_head(out, server_page, NROWS(server_page));
	for (s.i = 0; s.i < o->pool->cfg->nservers; s.i++) {
		fprintf(out, "<tr data-pool=\"%s\" data-server=\"%s\">", o->pool->cfg->name,
			o->pool->cfg->servers[s.i].name);
		page_row(out, server_page, NROWS(server_page), &s);
	}
	page_total(out, server_page, NROWS(server_page), o);
	fputs("</table>\n", out);
}

void metrics_html(FILE *out, const struct runtime *rt)
{
	struct mobj o = {.rt = rt};
	char age[32];

	fputs(html_head, out);
	fprintf(out,
		"<h1>snatproxy %s</h1><p data-g>up <span data-k=\"uptime\">%s</span>, "
		"<span data-k=\"live\">%llu</span> open connection(s) of %d, %d worker(s). "
		"<a href=\"/metrics\">/metrics</a>, <a href=\"/stats\">/stats</a>. "
		"<span id=\"upd\"><noscript>Reload the page to update it.</noscript></span></p>\n"
		"<form method=\"post\" action=\"/\">",
		SNATPROXY_VERSION, html_age(g_uptime(&o, 0), age, sizeof(age)), g_live(&o, 0),
		rt->max_connections, rt->nworkers);
	if (rt->cfg->admin_token[0])
		fputs("<p>Admin token for the buttons: <input type=\"password\" name=\"token\" "
		      "autocomplete=\"current-password\"></p>",
		      out);
	fputs("<h2>VIPs</h2>", out);
	page_head(out, vip_page, NROWS(vip_page));
	for (o.i = -1; next_vip(&o);) {
		fprintf(out, "<tr data-v=\"%s\">", o.vip->cfg->name);
		page_row(out, vip_page, NROWS(vip_page), &o);
	}
	fputs("</table>\n", out);
	for (o.i = -1; next_pool(&o);)
		html_pool(out, &o);
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
