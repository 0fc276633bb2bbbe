/* balance: choosing a server of a pool for a new connection.
 *
 * Three algorithms, as in HAProxy and nginx:
 *  - roundrobin: nginx's smooth weighted round robin (weights 5,1,1 give
 *    a a b a c a a, not a a a a a b c), precomputed once per pool because the
 *    sequence only depends on the weights; skipping servers that cannot take
 *    the connection moves on to the next entry;
 *  - leastconn: fewest active connections per unit of weight, ties taken in
 *    turn so that an idle pool still spreads its clients;
 *  - source: a consistent-hash ring of the client's address, so that a server
 *    going down moves only its own clients, and they come back when it does.
 * Backups serve only while no primary server can take the connection.
 *
 * A pool without active checks learns from its client connects, as nginx
 * does with max_fails and fail_timeout: a server that failed check_fall in a
 * row is skipped for fail_timeout, then given one trial connection; its
 * success brings the server back, its failure renews the wait. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>

#include "balance.h"

/* Ring points per unit of weight: enough for an even spread (about 3% of
 * deviation with 160 points a server), few enough to search quickly. */
#define BALANCE_RING_POINTS 160

enum { TIER_PRIMARY, TIER_BACKUP };

static uint32_t balance_mix(uint32_t h)
{
	/* murmur3's finaliser: every input bit moves every output bit. */
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

static uint32_t balance_fnv(const void *data, size_t len, uint32_t h)
{
	const unsigned char *b = data;
	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

uint32_t balance_hash_addr(const struct sockaddr *client)
{
	uint32_t h = 2166136261u;

	if (client->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)client;
		h = balance_fnv(&s6->sin6_addr, sizeof(s6->sin6_addr), h);
	} else if (client->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)client;
		h = balance_fnv(&s4->sin_addr, sizeof(s4->sin_addr), h);
	}
	return balance_mix(h);
}

static int balance_tier_of(const struct balance_server *s)
{
	return s->backup ? TIER_BACKUP : TIER_PRIMARY;
}

/* nginx's smooth weighted round robin, run for one full cycle. */
static int balance_sched_init(struct balance_pool *p, int tier)
{
	struct balance_tier *t = &p->tier[tier];
	int total = 0, *current;

	for (int i = 0; i < p->n; i++)
		if (balance_tier_of(&p->srv[i]) == tier)
			total += p->srv[i].weight;
	if (!total)
		return 0;
	t->sched = calloc((size_t)total, sizeof(*t->sched));
	current = calloc((size_t)p->n, sizeof(*current));
	if (!t->sched || !current) {
		free(current);
		return -ENOMEM;
	}
	for (int k = 0; k < total; k++) {
		int best = -1;
		for (int i = 0; i < p->n; i++) {
			if (balance_tier_of(&p->srv[i]) != tier)
				continue;
			current[i] += p->srv[i].weight;
			if (best < 0 || current[i] > current[best])
				best = i;
		}
		current[best] -= total;
		t->sched[k] = (uint16_t)best;
	}
	t->sched_len = total;
	free(current);
	return 0;
}

static int balance_ring_cmp(const void *a, const void *b)
{
	const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Points are hashed from the server's name, not its index, so that a
 * reordered or extended pool keeps its clients where they were. */
static int balance_ring_init(struct balance_pool *p, const struct config_pool *cfg)
{
	uint64_t *pts;
	int len = 0, k = 0;

	for (int i = 0; i < p->n; i++)
		len += p->srv[i].weight * BALANCE_RING_POINTS;
	pts = calloc((size_t)len, sizeof(*pts));
	p->ring_hash = calloc((size_t)len, sizeof(*p->ring_hash));
	p->ring_srv = calloc((size_t)len, sizeof(*p->ring_srv));
	if (!pts || !p->ring_hash || !p->ring_srv) {
		free(pts);
		return -ENOMEM;
	}
	for (int i = 0; i < p->n; i++) {
		const char *name = cfg->servers[i].name;
		uint32_t base = balance_fnv(name, strlen(name), 2166136261u);
		for (int j = 0; j < p->srv[i].weight * BALANCE_RING_POINTS; j++) {
			uint32_t h = balance_mix(balance_fnv(&j, sizeof(j), base));
			pts[k++] = (uint64_t)h << 16 | (uint64_t)i;
		}
	}
	qsort(pts, (size_t)len, sizeof(*pts), balance_ring_cmp);
	for (int j = 0; j < len; j++) {
		p->ring_hash[j] = (uint32_t)(pts[j] >> 16);
		p->ring_srv[j] = (uint16_t)(pts[j] & 0xffff);
	}
	p->ring_len = len;
	free(pts);
	return 0;
}

int balance_pool_init(struct balance_pool *p, const struct config_pool *cfg)
{
	int ret;

	memset(p, 0, sizeof(*p));
	if (cfg->nservers <= 0 || cfg->nservers > UINT16_MAX)
		return -EINVAL;
	p->algo = cfg->balance;
	p->n = cfg->nservers;
	p->fail_timeout_ms = cfg->check.type == CONFIG_CHECK_NONE ? cfg->fail_timeout_ms : 0;
	p->srv = calloc((size_t)p->n, sizeof(*p->srv));
	if (!p->srv)
		return -ENOMEM;
	for (int i = 0; i < p->n; i++) {
		const struct config_server *cs = &cfg->servers[i];
		if (cs->weight < 1 || cs->weight > 256 || cs->max_conn < 0) {
			balance_pool_free(p);
			return -EINVAL;
		}
		p->srv[i].weight = cs->weight;
		p->srv[i].max_conn = cs->max_conn;
		p->srv[i].backup = cs->backup;
	}
	ret = balance_sched_init(p, TIER_PRIMARY);
	if (!ret)
		ret = balance_sched_init(p, TIER_BACKUP);
	if (!ret && p->algo == CONFIG_BALANCE_SOURCE)
		ret = balance_ring_init(p, cfg);
	if (ret)
		balance_pool_free(p);
	return ret;
}

void balance_pool_free(struct balance_pool *p)
{
	free(p->srv);
	free(p->tier[TIER_PRIMARY].sched);
	free(p->tier[TIER_BACKUP].sched);
	free(p->ring_hash);
	free(p->ring_srv);
	memset(p, 0, sizeof(*p));
}

uint64_t balance_now_ms(void)
{
	struct timespec ts;

	/* The coarse clock is read without a system call and ticks every few
	 * milliseconds, plenty for waits of seconds. */
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* May server s be offered a connection? Not while a flag is set, but for a
 * server down for failed connects (pool without active checks) whose wait
 * is over: with `claim`, the caller that moves retry_ms on wins its one trial
 * connection, and every other caller skips the server until the trial has
 * told (or until the next wait is over, should the trial never tell). */
static bool balance_open(const struct balance_pool *p, struct balance_server *s, bool claim)
{
	unsigned f = atomic_load(&s->flags);

	if (!f)
		return true;
	if (f != BALANCE_DOWN || !p->fail_timeout_ms)
		return false;
	uint64_t at = atomic_load(&s->retry_ms), now = balance_now_ms();
	if (now < at)
		return false;
	return !claim ||
	       atomic_compare_exchange_strong(&s->retry_ms, &at, now + p->fail_timeout_ms);
}

bool balance_fail(struct balance_pool *p, int i)
{
	struct balance_server *s = &p->srv[i];

	/* The time first: whoever sees the flag sees the new time. */
	atomic_store(&s->retry_ms, balance_now_ms() + p->fail_timeout_ms);
	return !(atomic_fetch_or(&s->flags, BALANCE_DOWN) & BALANCE_DOWN);
}

bool balance_recover(struct balance_pool *p, int i)
{
	struct balance_server *s = &p->srv[i];

	/* Read first: no write to a shared line per successful connect. */
	if (!(atomic_load(&s->flags) & BALANCE_DOWN))
		return false;
	return atomic_fetch_and(&s->flags, ~(unsigned)BALANCE_DOWN) & BALANCE_DOWN;
}

/* Counts a connection on server i if it may take one. The increment comes
 * first so that two workers racing for the last slot under max_conn cannot
 * both win. */
static bool balance_take(struct balance_pool *p, int i, int tier, int avoid)
{
	struct balance_server *s = &p->srv[i];

	if (i == avoid || balance_tier_of(s) != tier || !balance_open(p, s, true))
		return false;
	int before = atomic_fetch_add(&s->active, 1);
	if (s->max_conn && before >= s->max_conn) {
		atomic_fetch_sub(&s->active, 1);
		return false;
	}
	return true;
}

static int balance_pick_rr(struct balance_pool *p, int tier, int avoid)
{
	struct balance_tier *t = &p->tier[tier];
	bool retry = avoid >= 0;

	if (!t->sched_len)
		return -EAGAIN;
	/* A retry had its step: taking another would make every connection
	 * after a failed one start at the failed server again (with a dead
	 * server among three, half the first attempts went to it). */
	uint64_t start = retry ? atomic_load(&t->next) : atomic_fetch_add(&t->next, 1);
	for (int k = 0; k < t->sched_len; k++) {
		int i = t->sched[(start + (uint64_t)k) % (uint64_t)t->sched_len];
		if (balance_take(p, i, tier, avoid)) {
			/* Skipped entries would otherwise be served again by the
			 * next pick: move the cursor past the one taken. */
			if (k && !retry)
				atomic_fetch_add(&t->next, (uint64_t)k);
			return i;
		}
	}
	return -EAGAIN;
}

/* Is a (with na connections) less loaded than b, per unit of weight? */
static bool balance_lighter(const struct balance_server *a, int na, const struct balance_server *b,
			    int nb)
{
	return (int64_t)na * b->weight < (int64_t)nb * a->weight;
}

static int balance_pick_leastconn(struct balance_pool *p, int tier, int avoid)
{
	unsigned start = atomic_fetch_add(&p->tier[tier].ties, 1);

	/* Another worker may fill the chosen server between the scan and the
	 * reservation; a few rescans settle it. */
	for (int attempt = 0; attempt < 4; attempt++) {
		int best = -1, best_n = 0;
		for (int k = 0; k < p->n; k++) {
			int i = (int)((start + (unsigned)k) % (unsigned)p->n);
			struct balance_server *s = &p->srv[i];
			if (i == avoid || balance_tier_of(s) != tier || !balance_open(p, s, false))
				continue;
			int n = atomic_load(&s->active);
			if (s->max_conn && n >= s->max_conn)
				continue;
			if (best < 0 || balance_lighter(s, n, &p->srv[best], best_n)) {
				best = i;
				best_n = n;
			}
		}
		if (best < 0)
			return -EAGAIN;
		if (balance_take(p, best, tier, avoid))
			return best;
	}
	return -EAGAIN;
}

static int balance_pick_source(struct balance_pool *p, int tier, uint32_t key, int avoid)
{
	int lo = 0, hi = p->ring_len;

	while (lo < hi) { /* first point at or after key, wrapping to 0 */
		int mid = lo + (hi - lo) / 2;
		if (p->ring_hash[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (int k = 0; k < p->ring_len; k++) {
		int i = p->ring_srv[(lo + k) % p->ring_len];
		if (balance_take(p, i, tier, avoid))
			return i;
	}
	return -EAGAIN;
}

int balance_pick(struct balance_pool *p, uint32_t key, int avoid)
{
	int ret = -EAGAIN;

	for (int tier = TIER_PRIMARY; tier <= TIER_BACKUP && ret < 0; tier++) {
		switch (p->algo) {
		case CONFIG_BALANCE_ROUNDROBIN:
			ret = balance_pick_rr(p, tier, avoid);
			break;
		case CONFIG_BALANCE_LEASTCONN:
			ret = balance_pick_leastconn(p, tier, avoid);
			break;
		case CONFIG_BALANCE_SOURCE:
			ret = balance_pick_source(p, tier, key, avoid);
			break;
		}
	}
	return ret;
}

void balance_release(struct balance_pool *p, int i)
{
	if (i >= 0 && i < p->n)
		atomic_fetch_sub(&p->srv[i].active, 1);
}
