/* ledger: GET /connections, the workers' open connections read without
 * sharing them.
 *
 * A slot per worker carries one request at a time through four states:
 * IDLE, POSTED (by the admin thread, with the filter and a buffer), WORKING
 * (taken by the worker), DONE (the buffer filled, handed back). The state is
 * the only field both threads touch at once: what the admin writes before
 * POSTED (release) the worker reads after taking it (acquire), and the other
 * way round for DONE, so the rest needs no lock. A request the admin stops
 * waiting for is withdrawn if the worker has not taken it (POSTED to IDLE by
 * compare-and-swap); one already taken is left to finish, and the next
 * request finds it DONE and takes the slot back. */
#include "ledger.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "relay.h"

/* Room for one JSON object: three addresses, a VIP name, a server name
 * indication of up to 255 bytes each escaped as \u00XX, the numbers. */
#define LEDGER_ENTRY_MAX (3 * ADDR_STRLEN + CONFIG_NAME_MAX + 6 * 255 + 256)

enum { SLOT_IDLE, SLOT_POSTED, SLOT_WORKING, SLOT_DONE };

struct ledger_slot {
	_Alignas(64) _Atomic int state;
	int wake_fd; /* set before the threads start */
	/* The admin thread's while IDLE or DONE, the worker's while WORKING. */
	struct ledger_filter filter;
	char *buf;
	size_t cap, len;
	unsigned n;
	bool full; /* a match was left out: the limit was reached */
};

struct ledger {
	int nworkers;
	int done_fd; /* workers wake the admin thread through it */
	struct ledger_slot *slots;
};

/* ---- the query ---- */

static int ledger_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes src[0..n) into dst (size len). Returns 0 or -EINVAL. */
static int ledger_unescape(const char *src, size_t n, char *dst, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)src[i];
		if (c == '%') {
			int a = i + 1 < n ? ledger_hex(src[i + 1]) : -1;
			int b = i + 2 < n ? ledger_hex(src[i + 2]) : -1;
			if (a < 0 || b < 0 || a * 16 + b == 0)
				return -EINVAL;
			c = a * 16 + b;
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (o + 1 >= len)
			return -EINVAL;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return 0;
}

static int __attribute__((format(printf, 3, 4)))
ledger_refuse(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int ledger_limit(const char *v, unsigned *out)
{
	unsigned long n = 0;

	if (!v[0] || strspn(v, "0123456789") != strlen(v) || strlen(v) > 6)
		return -EINVAL;
	n = strtoul(v, NULL, 10);
	if (n < 1 || n > LEDGER_LIMIT_MAX)
		return -EINVAL;
	*out = (unsigned)n;
	return 0;
}

/* One key=value pair of the query. */
static int ledger_pair(const char *p, size_t n, struct ledger_filter *f, char *why, size_t len)
{
	const char *eq = memchr(p, '=', n);
	char key[16], val[ADDR_STRLEN + CONFIG_NAME_MAX];
	struct sockaddr_storage *addr = NULL;

	if (!eq || (size_t)(eq - p) >= sizeof(key) ||
	    ledger_unescape(p, (size_t)(eq - p), key, sizeof(key)) < 0 ||
	    ledger_unescape(eq + 1, n - (size_t)(eq - p) - 1, val, sizeof(val)) < 0)
		return ledger_refuse(why, len, "bad query: expected KEY=VALUE pairs, '&' apart\n");
	if (strcmp(key, "client") == 0)
		addr = &f->client;
	else if (strcmp(key, "snat") == 0)
		addr = &f->snat;
	else if (strcmp(key, "server") == 0)
		addr = &f->server;
	if (addr) {
		if (addr_parse(val, ADDR_PORT_OPTIONAL, addr) < 0)
			return ledger_refuse(why, len, "bad %s: expected ADDR:PORT or ADDR\n", key);
		return 0;
	}
	if (strcmp(key, "vip") == 0) {
		if (!val[0] || strlen(val) >= sizeof(f->vip))
			return ledger_refuse(why, len, "bad vip: expected a VIP's name\n");
		memcpy(f->vip, val, strlen(val) + 1);
		return 0;
	}
	if (strcmp(key, "limit") == 0) {
		if (ledger_limit(val, &f->limit) < 0)
			return ledger_refuse(why, len, "bad limit: expected 1 to %d\n",
					     LEDGER_LIMIT_MAX);
		return 0;
	}
	return ledger_refuse(why, len,
			     "unknown query key: use client, snat, server, vip or limit\n");
}

int ledger_parse_query(const char *query, struct ledger_filter *f, char *why, size_t len)
{
	memset(f, 0, sizeof(*f));
	f->limit = LEDGER_LIMIT_DEFAULT;
	while (*query) {
		size_t n = strcspn(query, "&");
		if (n && ledger_pair(query, n, f, why, len) < 0)
			return -EINVAL;
		query += n;
		if (*query == '&')
			query++;
	}
	return 0;
}

static bool ledger_addr_match(const struct sockaddr_storage *want, const struct sockaddr *have)
{
	const struct sockaddr *w = (const struct sockaddr *)want;

	if (!want->ss_family)
		return true;
	if (!have || have->sa_family != w->sa_family)
		return false;
	if (addr_port(w) && addr_port(w) != addr_port(have))
		return false;
	if (w->sa_family == AF_INET)
		return ((const struct sockaddr_in *)w)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)have)->sin_addr.s_addr;
	return memcmp(&((const struct sockaddr_in6 *)w)->sin6_addr,
		      &((const struct sockaddr_in6 *)have)->sin6_addr,
		      sizeof(struct in6_addr)) == 0;
}

bool ledger_match(const struct ledger_filter *f, const struct ledger_conn *c)
{
	return (!f->vip[0] || strcmp(f->vip, c->vip) == 0) &&
	       ledger_addr_match(&f->client, c->client) && ledger_addr_match(&f->snat, c->snat) &&
	       ledger_addr_match(&f->server, c->server);
}

/* ---- the worker's side ---- */

/* A JSON string: the SNI is the client's text; anything but printable
 * ASCII, a quote or a backslash is escaped. */
static size_t ledger_json_str(char *out, size_t len, const char *s)
{
	size_t o = 0;

	for (; *s && o + 7 < len; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
			o += (size_t)snprintf(out + o, len - o, "\\u%04x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	return o;
}

/* One connection as a line "{...}\n". Returns its length, or -1 if it does
 * not fit in `len`. */
static int ledger_format(char *out, size_t len, const struct ledger_conn *c)
{
	char cb[ADDR_STRLEN], sb[ADDR_STRLEN + 2] = "null", vb[ADDR_STRLEN + 2] = "null";
	char sni[6 * 256 + 1];
	char a[ADDR_STRLEN];

	if (c->snat)
		snprintf(sb, sizeof(sb), "\"%s\"", addr_format(c->snat, a, sizeof(a)));
	if (c->server)
		snprintf(vb, sizeof(vb), "\"%s\"", addr_format(c->server, a, sizeof(a)));
	int n = snprintf(out, len,
			 "{\"vip\":\"%s\",\"client\":\"%s\",\"snat\":%s,\"server\":%s,"
			 "\"to_server\":%llu,\"to_client\":%llu,\"age_ms\":%llu",
			 c->vip, addr_format(c->client, cb, sizeof(cb)), sb, vb,
			 (unsigned long long)c->to_server, (unsigned long long)c->to_client,
			 (unsigned long long)c->age_ms);
	if (n > 0 && (size_t)n < len && c->sni) {
		ledger_json_str(sni, sizeof(sni), c->sni);
		n += snprintf(out + n, len - (size_t)n, ",\"sni\":\"%s\"", sni);
	}
	if (n > 0 && (size_t)n < len)
		n += snprintf(out + n, len - (size_t)n, "}\n");
	return n > 0 && (size_t)n < len ? n : -1;
}

static bool ledger_take(void *arg, const struct ledger_conn *c)
{
	struct ledger_slot *s = arg;

	if (!ledger_match(&s->filter, c))
		return true;
	int n = s->n < s->filter.limit ? ledger_format(s->buf + s->len, s->cap - s->len, c) : -1;
	if (n < 0) {
		s->full = true;
		return false;
	}
	s->len += (size_t)n;
	s->n++;
	return true;
}

static void ledger_wake(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0) {
		/* an eventfd's counter cannot overflow with these few writes */
	}
}

void ledger_serve(struct ledger *l, int worker, struct relay *r, bool stopping)
{
	struct ledger_slot *s = l ? &l->slots[worker] : NULL;
	int st = s ? atomic_load_explicit(&s->state, memory_order_acquire) : SLOT_IDLE;

	if (st != SLOT_POSTED && st != SLOT_WORKING)
		return;
	bool start = st == SLOT_POSTED;
	if (start) {
		int want = SLOT_POSTED;
		if (!atomic_compare_exchange_strong_explicit(
			&s->state, &want, SLOT_WORKING, memory_order_acquire, memory_order_relaxed))
			return; /* withdrawn meanwhile */
		s->len = 0;
		s->n = 0;
		s->full = false;
	}
	bool end = relay_ledger_step(r, start, LEDGER_STEP, ledger_take, s) || stopping;
	if (!end) {
		/* Come back after the next batch, at once even when idle. */
		ledger_wake(s->wake_fd);
		return;
	}
	atomic_store_explicit(&s->state, SLOT_DONE, memory_order_release);
	ledger_wake(l->done_fd);
}

/* ---- the admin thread's side ---- */

struct ledger *ledger_new(int nworkers)
{
	struct ledger *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->nworkers = nworkers;
	l->slots = aligned_alloc(64, sizeof(*l->slots) * (size_t)nworkers);
	l->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!l->slots || l->done_fd < 0) {
		free(l->slots);
		if (l->done_fd >= 0)
			close(l->done_fd);
		free(l);
		return NULL;
	}
	memset(l->slots, 0, sizeof(*l->slots) * (size_t)nworkers);
	for (int i = 0; i < nworkers; i++)
		l->slots[i].wake_fd = -1;
	return l;
}

void ledger_free(struct ledger *l)
{
	if (!l)
		return;
	for (int i = 0; i < l->nworkers; i++)
		free(l->slots[i].buf);
	close(l->done_fd);
	free(l->slots);
	free(l);
}

void ledger_set_wake(struct ledger *l, int worker, int fd)
{
	if (l)
		l->slots[worker].wake_fd = fd;
}

static uint64_t ledger_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Takes back the slots a previous request left DONE; -EBUSY if a worker is
 * still on one. */
static int ledger_reclaim(struct ledger *l)
{
	for (int i = 0; i < l->nworkers; i++) {
		int st = atomic_load_explicit(&l->slots[i].state, memory_order_acquire);
		if (st == SLOT_DONE)
			atomic_store_explicit(&l->slots[i].state, SLOT_IDLE, memory_order_relaxed);
		else if (st != SLOT_IDLE)
			return -EBUSY;
	}
	return 0;
}

static int ledger_post(struct ledger *l, const struct ledger_filter *f)
{
	size_t cap = (size_t)f->limit * LEDGER_ENTRY_MAX;

	for (int i = 0; i < l->nworkers; i++) {
		struct ledger_slot *s = &l->slots[i];
		if (s->cap < cap) {
			free(s->buf);
			s->cap = 0;
			/* Virtual room: only what the worker writes is touched. */
			if (!(s->buf = malloc(cap)))
				return -ENOMEM;
			s->cap = cap;
		}
	}
	for (int i = 0; i < l->nworkers; i++) {
		l->slots[i].filter = *f;
		atomic_store_explicit(&l->slots[i].state, SLOT_POSTED, memory_order_release);
		ledger_wake(l->slots[i].wake_fd);
	}
	return 0;
}

/* Waits for every slot to be DONE, for LEDGER_WAIT_MS at most; withdraws
 * what no worker took. Returns how many workers did not answer. */
static int ledger_wait(struct ledger *l)
{
	uint64_t end = ledger_now_ms() + LEDGER_WAIT_MS, val;
	int missing;

	for (;;) {
		missing = 0;
		for (int i = 0; i < l->nworkers; i++)
			missing += atomic_load_explicit(&l->slots[i].state, memory_order_acquire) !=
				   SLOT_DONE;
		uint64_t now = ledger_now_ms();
		if (!missing || now >= end)
			break;
		struct pollfd p = {.fd = l->done_fd, .events = POLLIN};
		poll(&p, 1, (int)(end - now));
		if (read(l->done_fd, &val, sizeof(val)) < 0) {
			/* EAGAIN: woken by the timeout */
		}
	}
	for (int i = 0; i < l->nworkers; i++) {
		int want = SLOT_POSTED;
		atomic_compare_exchange_strong(&l->slots[i].state, &want, SLOT_IDLE);
	}
	return missing;
}

/* The DONE slots' lines as one JSON array, `limit` objects at most. */
static int ledger_join(struct ledger *l, unsigned limit, char **body, size_t *len, bool *truncated)
{
	FILE *f = open_memstream(body, len);
	unsigned n = 0;

	if (!f)
		return -ENOMEM;
	fputs("[", f);
	for (int i = 0; i < l->nworkers; i++) {
		struct ledger_slot *s = &l->slots[i];
		if (atomic_load_explicit(&s->state, memory_order_acquire) != SLOT_DONE)
			continue;
		*truncated |= s->full;
		for (size_t o = 0; o < s->len;) {
			const char *nl = memchr(s->buf + o, '\n', s->len - o);
			size_t k = (size_t)(nl - (s->buf + o));
			if (n == limit) {
				*truncated = true;
				break;
			}
			fprintf(f, "%s\n%.*s", n++ ? "," : "", (int)k, s->buf + o);
			o += k + 1;
		}
	}
	fputs("\n]\n", f);
	return fclose(f) == 0 ? 0 : -ENOMEM;
}

int ledger_collect(struct ledger *l, const struct ledger_filter *f, char **body, size_t *len,
		   bool *truncated)
{
	uint64_t val;
	int ret;

	*truncated = false;
	if ((ret = ledger_reclaim(l)) < 0)
		return ret;
	if (read(l->done_fd, &val, sizeof(val)) < 0) {
		/* EAGAIN: nothing left from an earlier request */
	}
	if ((ret = ledger_post(l, f)) < 0)
		return ret;
	if (ledger_wait(l) > 0)
		*truncated = true;
	ret = ledger_join(l, f->limit, body, len, truncated);
	/* A large request's room is given back; a slot still WORKING keeps its
	 * buffer until it is DONE. */
	for (int i = 0; i < l->nworkers; i++) {
		struct ledger_slot *s = &l->slots[i];
		if (atomic_load_explicit(&s->state, memory_order_acquire) == SLOT_DONE &&
		    s->cap > (size_t)LEDGER_LIMIT_DEFAULT * LEDGER_ENTRY_MAX) {
			free(s->buf);
			s->buf = NULL;
			s->cap = 0;
		}
	}
	return ret;
}
