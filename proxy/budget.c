/* budget: SNAT port budgets from the kernel's sockets and the workers'
 * counts (see include/budget.h for the model).
 *
 * A budget is a row: VIP, source (an SNAT address of its pool, or with
 * snat = auto the address the route gives toward the server) and server
 * ADDR:PORT. Its port space is the pair's (source, server), which other
 * VIPs may share: the counts and the forecast are the pair's, with the
 * rates of every row on it; each row also shows its own rate. Open
 * connections are the workers' counts (established less ended); the
 * sockets that hold a port otherwise (connecting, closing, TIME_WAIT) the
 * kernel's, asked once per report with one sock_diag dump filtered to the
 * servers' ports, on the thread asking
 * (the admin endpoint's, or the main thread's every BUDGET_SCAN_S while
 * connections are being made): never on a worker. */
#include "budget.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"

/* The main thread forecasts this often while any budget has new
 * connections (a kernel dump each time). */
#define BUDGET_SCAN_S 5
/* At most one warning per budget per this long. */
#define BUDGET_WARN_EVERY_MS 60000

struct budget_entry {
	_Atomic uint64_t opened, ended;          /* the workers' */
	_Atomic uint64_t rate_milli, ends_milli; /* per second x 1000, the main thread's */
	/* The main thread's own: the counts of the last seconds, newest at
	 * [(n - 1) % ...], and when this budget last warned. */
	uint64_t hist_opened[BUDGET_WINDOW_S + 1], hist_ended[BUDGET_WINDOW_S + 1];
	unsigned nhist;
	uint64_t warned_ms;
};

/* A VIP's budgets: nsrc sources x nsrv servers, the servers of every pool
 * the VIP may use (its own and its SNI routes'). */
struct budget_vip {
	int nsrc, nsrv;
	int *pool_off; /* per pool of the configuration: its first server's column, or -1 */
	bool *v6;      /* per column: the server is IPv6 */
	/* The address snat.c binds for index i, by the server's family: the
	 * first of that family from i on (a pool may mix them). */
	int *bound[2];
	struct budget_entry *e;
};

/* ---- the forecast (pure) ---- */

/* Ports entering TIME_WAIT per second: how fast the pool filled, from its
 * oldest socket's age, but no faster than connections end now, and none
 * once they stop (a burst's ports, seen before the first sample of the
 * rates or after the burst has left the window, are no forecast). */
static double budget_tw_rate(const struct budget_state *s)
{
	double tw_age = BUDGET_TIME_WAIT_S - s->tw_left_s;
	double tw_in = s->time_wait > 0 && tw_age >= 1 ? s->time_wait / tw_age : 0;

	return tw_in > s->ends ? s->ends : tw_in;
}

double budget_exhaustion_s(const struct budget_state *s)
{
	double free = s->ports - s->in_use - s->time_wait;
	double stay = s->rate - s->ends; /* connections piling up */
	double tw_in = budget_tw_rate(s);
	double fill = s->time_wait > 0 ? s->tw_left_s : 0;

	if (free <= 0)
		return 0;
	if (stay < 0)
		stay = 0;
	/* While the TIME_WAIT pool still fills, ports go at stay + tw_in. */
	if ((stay + tw_in) * fill >= free)
		return free / (stay + tw_in);
	if (stay <= 0)
		return -1;
	return fill + (free - (stay + tw_in) * fill) / stay;
}

int budget_addresses_to_add(const struct budget_state *s, int have)
{
	double tw_in = budget_tw_rate(s);
	double stay = s->rate > s->ends ? s->rate - s->ends : 0;
	/* Ports one address would need for the forecast to go past
	 * BUDGET_WARN_S (and the warning to stop): what it holds, the
	 * TIME_WAIT pool once full, and the connections that stay. */
	double need = s->in_use + tw_in * BUDGET_TIME_WAIT_S + stay * BUDGET_WARN_S;
	double per = s->ports > 0 ? s->ports : 1;
	double want = have * need / per;
	int total = want > 1e6 ? 1000000 : (int)want + ((double)(int)want < want);

	return total > have ? total - have : 1;
}

/* ---- counters (runtime.c, the workers) ---- */

int budget_vip_init(struct runtime_vip *v, const struct config *cfg)
{
	const struct config_vip *cv = v->cfg;
	struct budget_vip *b;

	if (cv->snat == CONFIG_SNAT_OFF)
		return 0;
	if (!(b = v->budget = calloc(1, sizeof(*b))) ||
	    !(b->pool_off = malloc(sizeof(int) * (size_t)cfg->npools)))
		return -ENOMEM;
	for (int p = 0; p < cfg->npools; p++)
		b->pool_off[p] = -1;
	for (int r = -1; r < cv->nroutes; r++) {
		int p = r < 0 ? cv->pool : cv->routes[r].pool;
		if (b->pool_off[p] < 0) {
			b->pool_off[p] = b->nsrv;
			b->nsrv += cfg->pools[p].nservers;
		}
	}
	b->nsrc = cv->snat == CONFIG_SNAT_POOL ? cv->nsnat : 1;
	b->e = calloc((size_t)b->nsrc * (size_t)b->nsrv, sizeof(*b->e));
	b->v6 = calloc((size_t)b->nsrv, sizeof(*b->v6));
	b->bound[0] = calloc((size_t)b->nsrc, sizeof(int));
	b->bound[1] = calloc((size_t)b->nsrc, sizeof(int));
	if (!b->e || !b->v6 || !b->bound[0] || !b->bound[1])
		return -ENOMEM;
	/* The counts start at zero with the budget: that is its first sample
	 * (hist_*[0]), so connections made before the main thread's first
	 * tick count in the rates. Without it they were the baseline, and a
	 * burst in a fresh configuration's first second never showed. */
	for (int i = 0; i < b->nsrc * b->nsrv; i++)
		b->e[i].nhist = 1;
	for (int p = 0; p < cfg->npools; p++)
		for (int i = 0; b->pool_off[p] >= 0 && i < cfg->pools[p].nservers; i++)
			b->v6[b->pool_off[p] + i] =
			    cfg->pools[p].servers[i].addr.ss_family == AF_INET6;
	for (int f = 0; f < 2; f++)
		for (int i = 0; i < b->nsrc; i++) {
			int k = 0;
			while (cv->snat == CONFIG_SNAT_POOL && k < b->nsrc - 1 &&
			       cv->snat_addrs[(i + k) % b->nsrc].ss_family !=
				   (f ? AF_INET6 : AF_INET))
				k++;
			b->bound[f][i] = (i + k) % b->nsrc;
		}
	return 0;
}

void budget_vip_free(struct runtime_vip *v)
{
	if (v->budget) {
		free(v->budget->pool_off);
		free(v->budget->v6);
		free(v->budget->bound[0]);
		free(v->budget->bound[1]);
		free(v->budget->e);
		free(v->budget);
		v->budget = NULL;
	}
}

void budget_count(struct runtime_vip *v, int pool, int server, unsigned src, bool opened)
{
	struct budget_vip *b = v->budget;

	if (!b || b->pool_off[pool] < 0)
		return;
	size_t col = (size_t)(b->pool_off[pool] + server);
	size_t row = (size_t)b->bound[b->v6[col]][src % (unsigned)b->nsrc];
	struct budget_entry *e = &b->e[row * (size_t)b->nsrv + col];
	atomic_fetch_add_explicit(opened ? &e->opened : &e->ended, 1, memory_order_relaxed);
}

/* ---- rows and the kernel's sockets ---- */

/* A pair's identity, comparable with memcmp: the family, the server's
 * address and port, the source address. */
struct budget_key {
	uint8_t family;
	uint8_t dst[16];
	uint16_t dport; /* network order */
	uint8_t src[16];
};

struct budget_row {
	struct budget_key key;
	const struct runtime_vip *vip;
	struct budget_entry *e;
	struct sockaddr_storage src, dst;
	int have; /* the VIP's SNAT addresses of the server's family (1: auto) */
	/* The pair's figures, shared by the rows on it. */
	unsigned in_use, time_wait;
	uint32_t tw_left_ms;
	double pair_rate, pair_ends;
};

struct budget_report {
	struct budget_row *rows;
	int n;
	unsigned ports, lo, hi;
};

static void budget_key_of(struct budget_key *k, const struct sockaddr *src,
			  const struct sockaddr *dst)
{
	memset(k, 0, sizeof(*k));
	k->family = (uint8_t)dst->sa_family;
	k->dport = htons(addr_port(dst));
	if (dst->sa_family == AF_INET) {
		memcpy(k->dst, &((const struct sockaddr_in *)dst)->sin_addr, 4);
		memcpy(k->src, &((const struct sockaddr_in *)src)->sin_addr, 4);
	} else {
		memcpy(k->dst, &((const struct sockaddr_in6 *)dst)->sin6_addr, 16);
		memcpy(k->src, &((const struct sockaddr_in6 *)src)->sin6_addr, 16);
	}
}

static int budget_key_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct budget_row *)a)->key, &((const struct budget_row *)b)->key,
		      sizeof(struct budget_key));
}

/* The local port range of this network namespace; Linux's default when it
 * cannot be read. */
static void budget_port_range(struct budget_report *r)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");

	r->lo = 32768;
	r->hi = 60999;
	if (f) {
		if (fscanf(f, "%u %u", &r->lo, &r->hi) != 2 || r->hi < r->lo) {
			r->lo = 32768;
			r->hi = 60999;
		}
		fclose(f);
	}
	r->ports = r->hi - r->lo + 1;
}

/* snat = auto: the source the route gives toward dst, as connect() will
 * choose it (a UDP socket's connect sends nothing). */
static int budget_route_src(const struct sockaddr *dst, struct sockaddr_storage *src)
{
	int fd = socket(dst->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	socklen_t len = sizeof(*src);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (connect(fd, dst, addr_len(dst)) < 0 ||
	    getsockname(fd, (struct sockaddr *)src, &len) < 0)
		ret = -errno;
	close(fd);
	addr_set_port((struct sockaddr *)src, 0);
	return ret;
}

/* The server's address; one without a port is reached on the port the
 * client connected to: the VIP's first listen address's, for the budget. */
static void budget_server_addr(const struct config_vip *cv, const struct config_server *s,
			       struct sockaddr_storage *out)
{
	*out = s->addr;
	if (addr_port((struct sockaddr *)out) == 0 && cv->nlisten)
		addr_set_port((struct sockaddr *)out,
			      addr_port((const struct sockaddr *)&cv->listen[0]));
}

static int budget_vip_rows(const struct runtime *rt, const struct runtime_vip *v,
			   struct budget_row *rows, int n)
{
	const struct config_vip *cv = v->cfg;
	const struct budget_vip *b = v->budget;

	for (int p = 0; p < rt->cfg->npools; p++) {
		if (b->pool_off[p] < 0)
			continue;
		const struct config_pool *cp = &rt->cfg->pools[p];
		for (int s = 0; s < cp->nservers; s++)
			for (int i = 0; i < b->nsrc; i++) {
				struct budget_row *r = &rows[n];
				memset(r, 0, sizeof(*r));
				budget_server_addr(cv, &cp->servers[s], &r->dst);
				int fam = r->dst.ss_family;
				r->have = 1;
				if (cv->snat == CONFIG_SNAT_POOL) {
					r->src = cv->snat_addrs[i];
					r->have = 0;
					for (int k = 0; k < cv->nsnat; k++)
						r->have += cv->snat_addrs[k].ss_family == fam;
				} else if (budget_route_src((struct sockaddr *)&r->dst, &r->src) <
					   0) {
					continue; /* no route: no budget */
				}
				if (r->src.ss_family != fam)
					continue;
				r->vip = v;
				r->e = &b->e[(size_t)i * (size_t)b->nsrv +
					     (size_t)(b->pool_off[p] + s)];
				budget_key_of(&r->key, (struct sockaddr *)&r->src,
					      (struct sockaddr *)&r->dst);
				n++;
			}
	}
	return n;
}

/* One socket of the dump: counted on its pair, if it has one. */
static void budget_count_sock(struct budget_report *rep, const struct inet_diag_msg *m)
{
	struct budget_row want;
	size_t alen = m->idiag_family == AF_INET ? 4 : 16;

	memset(&want.key, 0, sizeof(want.key));
	want.key.family = m->idiag_family;
	want.key.dport = m->id.idiag_dport;
	memcpy(want.key.dst, m->id.idiag_dst, alen);
	memcpy(want.key.src, m->id.idiag_src, alen);
	struct budget_row *r =
	    bsearch(&want, rep->rows, (size_t)rep->n, sizeof(*r), budget_key_cmp);
	if (!r || m->id.idiag_sport == 0)
		return;
	while (r > rep->rows && budget_key_cmp(r - 1, r) == 0)
		r--; /* the pair's first row holds its counts */
	if (m->idiag_state == TCP_TIME_WAIT) {
		if (!r->time_wait || m->idiag_expires < r->tw_left_ms)
			r->tw_left_ms = m->idiag_expires;
		r->time_wait++;
	} else {
		r->in_use++;
	}
}

/* At most this many distinct server ports go into the kernel's filter;
 * beyond, every socket is dumped and sorted out here. */
#define BUDGET_FILTER_PORTS 64

/* A sock_diag filter keeping the sockets whose remote port is one of the
 * servers' (dumping every socket costs about four times as much: measured
 * with ss on 36,000 sockets, 10 ms against 60 ms). The kernel's bytecode
 * has no OR: each test jumps past the next JMP when it matches and onto it
 * when not, as ss compiles "a or b": [EQ p1][JMP to end][EQ p2][JMP]...[EQ
 * pn], a match falling through to a JMP that goes to the end (accept), a
 * miss to 4 bytes past its own end (the next test, or reject after the
 * last). Returns its length in bytes, 0 for no filter. */
static size_t budget_filter(const struct budget_report *rep, struct inet_diag_bc_op *bc)
{
	uint16_t ports[BUDGET_FILTER_PORTS];
	int n = 0;

	for (int i = 0; i < rep->n; i++) {
		uint16_t p = ntohs(rep->rows[i].key.dport);
		int k = 0;
		while (k < n && ports[k] != p)
			k++;
		if (k == n && n == BUDGET_FILTER_PORTS)
			return 0;
		if (k == n)
			ports[n++] = p;
	}
	size_t o = 0;
	for (int k = 0; k < n; k++) {
		/* Past this JMP (4 bytes) and the n - k - 1 tests after it
		 * (8 bytes each) with their JMPs (4 each, the last has none). */
		uint16_t end = (uint16_t)((n - k - 1) * 12);
		bc[o++] = (struct inet_diag_bc_op){INET_DIAG_BC_D_EQ, 8, 12};
		bc[o++] = (struct inet_diag_bc_op){0, 0, ports[k]};
		if (k < n - 1)
			bc[o++] = (struct inet_diag_bc_op){INET_DIAG_BC_JMP, 4, end};
	}
	return o * sizeof(*bc);
}

/* The sockets the proxy does not count as open connections but that hold
 * a port: connecting, closing, TIME_WAIT. Established ones are counted by
 * the workers: dumping them would cost about 2 us each (45 ms for 9,000). */
#define BUDGET_KERNEL_STATES                                                                       \
	((1u << TCP_SYN_SENT) | (1u << TCP_FIN_WAIT1) | (1u << TCP_FIN_WAIT2) |                    \
	 (1u << TCP_TIME_WAIT) | (1u << TCP_CLOSING) | (1u << TCP_LAST_ACK))

/* The TCP sockets of one family toward the servers' ports that hold a
 * port without being an open connection of the proxy. */
static int budget_dump(struct budget_report *rep, int family)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
		struct nlattr attr;
		struct inet_diag_bc_op bc[BUDGET_FILTER_PORTS * 3];
	} q = {
	    .nlh = {.nlmsg_type = SOCK_DIAG_BY_FAMILY, .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP},
	    .req = {.sdiag_family = (uint8_t)family,
		    .sdiag_protocol = IPPROTO_TCP,
		    .idiag_states = BUDGET_KERNEL_STATES},
	};
	static _Thread_local long buf[8192];
	size_t bclen = budget_filter(rep, q.bc);
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG), ret = 0;

	q.attr = (struct nlattr){.nla_len = (uint16_t)(NLA_HDRLEN + bclen),
				 .nla_type = INET_DIAG_REQ_BYTECODE};
	q.nlh.nlmsg_len = (uint32_t)(offsetof(__typeof__(q), bc) + (bclen ? bclen : 0));
	if (!bclen)
		q.nlh.nlmsg_len = (uint32_t)offsetof(__typeof__(q), attr);
	if (fd < 0)
		return -errno;
	if (send(fd, &q, q.nlh.nlmsg_len, 0) < 0)
		ret = -errno;
	while (ret == 0) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			ret = -errno;
			break;
		}
		struct nlmsghdr *h = (struct nlmsghdr *)buf;
		for (; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE)
				goto done;
			if (h->nlmsg_type == NLMSG_ERROR) {
				ret = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
				ret = ret < 0 ? ret : -EIO;
				goto done;
			}
			budget_count_sock(rep, NLMSG_DATA(h));
		}
	}
done:
	close(fd);
	return ret;
}

/* Every budget of the runtime with the kernel's counts and the pairs'
 * rates; rows sorted by pair. Returns 0 or -errno (rep->rows NULL). */
static int budget_report(const struct runtime *rt, struct budget_report *rep)
{
	size_t max = 0;

	memset(rep, 0, sizeof(*rep));
	budget_port_range(rep);
	for (int v = 0; v < rt->cfg->nvips; v++)
		if (rt->vips[v].budget)
			max += (size_t)rt->vips[v].budget->nsrc * (size_t)rt->vips[v].budget->nsrv;
	if (!max)
		return 0;
	if (!(rep->rows = calloc(max, sizeof(*rep->rows))))
		return -ENOMEM;
	for (int v = 0; v < rt->cfg->nvips; v++)
		if (rt->vips[v].budget)
			rep->n = budget_vip_rows(rt, &rt->vips[v], rep->rows, rep->n);
	qsort(rep->rows, (size_t)rep->n, sizeof(*rep->rows), budget_key_cmp);
	int ret = budget_dump(rep, AF_INET);
	if (ret == 0)
		ret = budget_dump(rep, AF_INET6);
	if (ret < 0)
		log_warn("snat budgets: cannot read the kernel's sockets (sock_diag): %s; "
			 "in_use and free are shown as 0",
			 strerror(-ret));
	/* The pair's counts and summed rates onto each of its rows. */
	for (int i = 0, j; i < rep->n; i = j) {
		double rate = 0, ends = 0;
		unsigned open = 0;
		for (j = i; j < rep->n && budget_key_cmp(&rep->rows[i], &rep->rows[j]) == 0; j++) {
			const struct budget_entry *e = rep->rows[j].e;
			open += (unsigned)(atomic_load_explicit(&e->opened, memory_order_relaxed) -
					   atomic_load_explicit(&e->ended, memory_order_relaxed));
			rate += atomic_load_explicit(&rep->rows[j].e->rate_milli,
						     memory_order_relaxed) /
				1000.0;
			ends += atomic_load_explicit(&rep->rows[j].e->ends_milli,
						     memory_order_relaxed) /
				1000.0;
		}
		rep->rows[i].in_use += open;
		for (int k = i; k < j; k++) {
			rep->rows[k].in_use = rep->rows[i].in_use;
			rep->rows[k].time_wait = rep->rows[i].time_wait;
			rep->rows[k].tw_left_ms = rep->rows[i].tw_left_ms;
			rep->rows[k].pair_rate = rate;
			rep->rows[k].pair_ends = ends;
		}
	}
	return 0;
}

static void budget_state_of(const struct budget_report *rep, const struct budget_row *r,
			    struct budget_state *s)
{
	*s = (struct budget_state){
	    .ports = rep->ports,
	    .in_use = r->in_use,
	    .time_wait = r->time_wait,
	    .tw_left_s = r->tw_left_ms / 1000.0,
	    .rate = r->pair_rate,
	    .ends = r->pair_ends,
	};
}

static unsigned budget_free(const struct budget_report *rep, const struct budget_row *r)
{
	unsigned used = r->in_use + r->time_wait;
	return used < rep->ports ? rep->ports - used : 0;
}

/* ---- the main thread: rates, forecast, warning ---- */

static uint64_t budget_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The rates over the samples kept (up to BUDGET_WINDOW_S seconds).
 * Returns whether this budget had new connections. */
static bool budget_sample(struct budget_entry *e)
{
	const unsigned n = BUDGET_WINDOW_S + 1;
	unsigned i = e->nhist % n;

	e->hist_opened[i] = atomic_load_explicit(&e->opened, memory_order_relaxed);
	e->hist_ended[i] = atomic_load_explicit(&e->ended, memory_order_relaxed);
	e->nhist++;
	/* Over the whole window even before it has passed: a burst at start
	 * counts as what it is over 10 s, not as a rate per second. */
	unsigned span = e->nhist < n ? e->nhist - 1 : n - 1;
	unsigned old = (e->nhist - 1 - span) % n;
	uint64_t o = (e->hist_opened[i] - e->hist_opened[old]) * 1000 / BUDGET_WINDOW_S;
	uint64_t d = (e->hist_ended[i] - e->hist_ended[old]) * 1000 / BUDGET_WINDOW_S;
	atomic_store_explicit(&e->rate_milli, o, memory_order_relaxed);
	atomic_store_explicit(&e->ends_milli, d, memory_order_relaxed);
	return o > 0;
}

static void budget_warn(const struct budget_report *rep, struct budget_row *r, double t,
			uint64_t now)
{
	char sb[ADDR_STRLEN], db[ADDR_STRLEN];
	struct budget_state s;
	bool pool = r->vip->cfg->snat == CONFIG_SNAT_POOL;

	if (r->e->warned_ms && now < r->e->warned_ms + BUDGET_WARN_EVERY_MS)
		return;
	r->e->warned_ms = now;
	budget_state_of(rep, r, &s);
	int add = budget_addresses_to_add(&s, r->have);
	log_warn("vip %s: SNAT %s toward %s: %u of %u ports free (%u open, %u in TIME_WAIT), "
		 "%.1f new connections/s: none left in about %.0f s; add %d SNAT address%s (%s)",
		 r->vip->cfg->name, addr_format((struct sockaddr *)&r->src, sb, sizeof(sb)),
		 addr_format((struct sockaddr *)&r->dst, db, sizeof(db)), budget_free(rep, r),
		 rep->ports, r->in_use, r->time_wait, s.rate, t, add, add == 1 ? "" : "es",
		 pool ? "more addresses on `snat`" : "`snat = ADDR ...` instead of auto");
}

void budget_tick(struct runtime *rt)
{
	static _Thread_local uint64_t last_ms, scan_ms;
	uint64_t now = budget_now_ms();
	bool busy = false;
	struct budget_report rep;

	if (now < last_ms + 1000)
		return;
	last_ms = now;
	for (int v = 0; v < rt->cfg->nvips; v++) {
		struct budget_vip *b = rt->vips[v].budget;
		for (int i = 0; b && i < b->nsrc * b->nsrv; i++)
			busy |= budget_sample(&b->e[i]);
	}
	if (!busy || now < scan_ms + BUDGET_SCAN_S * 1000 || budget_report(rt, &rep) < 0)
		return;
	scan_ms = now;
	for (int i = 0; i < rep.n; i++) {
		struct budget_state s;
		budget_state_of(&rep, &rep.rows[i], &s);
		double t = budget_exhaustion_s(&s);
		/* Each VIP that takes ports of the pair now is told. */
		if (t >= 0 && t < BUDGET_WARN_S &&
		    atomic_load_explicit(&rep.rows[i].e->rate_milli, memory_order_relaxed) > 0)
			budget_warn(&rep, &rep.rows[i], t, now);
	}
	free(rep.rows);
}

/* ---- output, on the admin thread ---- */

static void budget_json_row(FILE *out, const struct budget_report *rep, const struct budget_row *r)
{
	char sb[ADDR_STRLEN], db[ADDR_STRLEN], t[32] = "null";
	struct budget_state s;
	const struct config_vip *cv = r->vip->cfg;
	unsigned long long spilled = 0;

	budget_state_of(rep, r, &s);
	double x = budget_exhaustion_s(&s);
	if (x >= 0)
		snprintf(t, sizeof(t), "%.1f", x);
	if (cv->snat == CONFIG_SNAT_POOL)
		for (int k = 0; k < cv->nsnat; k++)
			if (addr_equal((const struct sockaddr *)&cv->snat_addrs[k],
				       (const struct sockaddr *)&r->src))
				spilled = atomic_load_explicit(&r->vip->snat[k].exhausted,
							       memory_order_relaxed);
	fprintf(
	    out,
	    "{\"vip\":\"%s\",\"snat\":\"%s\",\"server\":\"%s\",\"in_use\":%u,"
	    "\"time_wait\":%u,\"free\":%u,\"ports\":%u,\"rate\":%.1f,\"vip_rate\":%.1f,"
	    "\"ends\":%.1f,\"exhaustion_s\":%s,\"connections\":%llu,\"spilled\":%llu}",
	    cv->name, addr_format((const struct sockaddr *)&r->src, sb, sizeof(sb)),
	    addr_format((const struct sockaddr *)&r->dst, db, sizeof(db)), r->in_use, r->time_wait,
	    budget_free(rep, r), rep->ports, r->pair_rate,
	    atomic_load_explicit(&r->e->rate_milli, memory_order_relaxed) / 1000.0, r->pair_ends, t,
	    (unsigned long long)atomic_load_explicit(&r->e->opened, memory_order_relaxed), spilled);
}

void budget_json(FILE *out, const struct runtime *rt)
{
	struct budget_report rep;

	if (budget_report(rt, &rep) < 0) {
		fputs("[]\n", out);
		return;
	}
	fputs("[", out);
	for (int i = 0; i < rep.n; i++) {
		fputs(i ? ",\n" : "\n", out);
		budget_json_row(out, &rep, &rep.rows[i]);
	}
	fputs("\n]\n", out);
	free(rep.rows);
}

static void budget_prom_labels(FILE *out, const char *name, const struct budget_row *r)
{
	char sb[ADDR_STRLEN], db[ADDR_STRLEN];

	/* VIP names are [A-Za-z0-9_.-] and addresses addr_format's: no escaping. */
	fprintf(out, "%s{vip=\"%s\",snat=\"%s\",server=\"%s\"} ", name, r->vip->cfg->name,
		addr_format((const struct sockaddr *)&r->src, sb, sizeof(sb)),
		addr_format((const struct sockaddr *)&r->dst, db, sizeof(db)));
}

void budget_prometheus(FILE *out, const struct runtime *rt)
{
	static const struct {
		const char *name, *type, *help;
	} fam[] = {
	    {"snatproxy_snat_ports_in_use", "gauge",
	     "Sockets open from the SNAT address to the server (the kernel's count)."},
	    {"snatproxy_snat_ports_time_wait", "gauge",
	     "Ports of the SNAT address toward the server held in TIME_WAIT."},
	    {"snatproxy_snat_ports_free", "gauge",
	     "Ports of the local port range left toward the server."},
	    {"snatproxy_snat_connection_rate", "gauge",
	     "New connections per second toward the server from the SNAT address, over 10 s."},
	    {"snatproxy_snat_exhaustion_seconds", "gauge",
	     "Seconds until no port is left at the current rates (+Inf: never)."},
	};
	struct budget_report rep;

	if (budget_report(rt, &rep) < 0)
		return;
	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", fam[f].name, fam[f].help, fam[f].name,
			fam[f].type);
		for (int i = 0; i < rep.n; i++) {
			const struct budget_row *r = &rep.rows[i];
			struct budget_state s;
			budget_state_of(&rep, r, &s);
			double x = f == 4 ? budget_exhaustion_s(&s) : 0;
			budget_prom_labels(out, fam[f].name, r);
			if (f == 0)
				fprintf(out, "%u\n", r->in_use);
			else if (f == 1)
				fprintf(out, "%u\n", r->time_wait);
			else if (f == 2)
				fprintf(out, "%u\n", budget_free(&rep, r));
			else if (f == 3)
				fprintf(out, "%.3f\n", r->pair_rate);
			else if (x < 0)
				fputs("+Inf\n", out);
			else
				fprintf(out, "%.1f\n", x);
		}
	}
	free(rep.rows);
}

void budget_html(FILE *out, const struct runtime *rt)
{
	char sb[ADDR_STRLEN], db[ADDR_STRLEN], t[32];
	struct budget_report rep;

	if (budget_report(rt, &rep) < 0 || rep.n == 0) {
		free(rep.rows);
		return;
	}
	fprintf(out,
		"<h2>SNAT port budgets</h2><table><tr><th>vip</th><th>snat</th><th>server</th>"
		"<th>in use</th><th>TIME_WAIT</th><th>free of %u</th><th>new/s</th>"
		"<th>runs out in</th></tr>\n",
		rep.ports);
	for (int i = 0; i < rep.n; i++) {
		const struct budget_row *r = &rep.rows[i];
		struct budget_state s;
		budget_state_of(&rep, r, &s);
		double x = budget_exhaustion_s(&s);
		if (x < 0)
			snprintf(t, sizeof(t), "never");
		else
			snprintf(t, sizeof(t), "%.0f s", x);
		fprintf(out,
			"<tr><td>%s</td><td>%s</td><td>%s</td><td>%u</td><td>%u</td><td>%u</td>"
			"<td>%.1f</td><td%s>%s</td></tr>\n",
			r->vip->cfg->name,
			addr_format((const struct sockaddr *)&r->src, sb, sizeof(sb)),
			addr_format((const struct sockaddr *)&r->dst, db, sizeof(db)), r->in_use,
			r->time_wait, budget_free(&rep, r), r->pair_rate,
			x >= 0 && x < BUDGET_WARN_S ? " class=\"down\"" : "", t);
	}
	fputs("</table>\n", out);
	free(rep.rows);
}
