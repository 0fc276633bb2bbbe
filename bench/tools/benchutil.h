/* benchutil.h: helpers shared by the benchmark tools (loadgen, idlehold):
 * clocks, address lists, non-blocking connects, a latency histogram.
 * Header-only so that each tool stays one translation unit, as the
 * Makefile builds bench/tools/NAME.c alone into build/tools/NAME. */
#ifndef BENCHUTIL_H
#define BENCHUTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define BU_MAX_ADDRS 256

struct bu_addrs {
	unsigned n;
	struct sockaddr_storage a[BU_MAX_ADDRS];
};

static inline void bu_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static inline uint64_t bu_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One address, "1.2.3.4", "1.2.3.4:80", "[::1]:80" or "::1"; the port is
 * required when want_port is set. */
static inline int bu_addr_parse(struct sockaddr_storage *ss, const char *s, bool want_port)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(s, ':');
	const char *rb = strchr(s, ']');
	bool v6 = s[0] == '[' || (colon && strchr(s, ':') != colon);
	int port = 0;
	size_t hl = strlen(s);
	if (want_port) {
		if (!colon || (v6 && (!rb || colon < rb)))
			return -1;
		port = atoi(colon + 1);
		hl = (size_t)(colon - s);
		if (port <= 0 || port > 65535)
			return -1;
	}
	if (s[0] == '[') {
		if (!rb)
			return -1;
		s++;
		hl = (size_t)(rb - s);
	}
	if (hl >= sizeof(host))
		return -1;
	memcpy(host, s, hl);
	host[hl] = 0;
	memset(ss, 0, sizeof(*ss));
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		return inet_pton(AF_INET6, host, &a->sin6_addr) == 1 ? 0 : -1;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

/* "A-N": an IPv4 range in the last byte, 198.19.1.100-107. */
static inline int bu_addrs_range(struct bu_addrs *l, const char *s)
{
	char first[INET_ADDRSTRLEN];
	const char *dash = strchr(s, '-');
	size_t n = (size_t)(dash - s);
	if (n >= sizeof(first))
		return -1;
	memcpy(first, s, n);
	first[n] = 0;
	struct sockaddr_storage ss;
	if (bu_addr_parse(&ss, first, false) < 0 || ss.ss_family != AF_INET)
		return -1;
	struct sockaddr_in *a = (struct sockaddr_in *)&ss;
	uint32_t lo = ntohl(a->sin_addr.s_addr), last = (uint32_t)atoi(dash + 1);
	uint32_t hi = (lo & ~0xffu) | last;
	if (last > 255 || hi < lo)
		return -1;
	for (uint32_t v = lo; v <= hi; v++) {
		if (l->n >= BU_MAX_ADDRS)
			return -1;
		a->sin_addr.s_addr = htonl(v);
		l->a[l->n++] = ss;
	}
	return 0;
}

/* Appends a comma-separated list of addresses or ranges to l. */
static inline int bu_addrs_parse(struct bu_addrs *l, const char *list, bool want_port)
{
	char *copy = strdup(list), *save = NULL;
	int rc = 0;
	for (char *t = strtok_r(copy, ",", &save); t && rc == 0; t = strtok_r(NULL, ",", &save)) {
		if (!want_port && strchr(t, '-'))
			rc = bu_addrs_range(l, t);
		else if (l->n >= BU_MAX_ADDRS)
			rc = -1;
		else
			rc = bu_addr_parse(&l->a[l->n++], t, want_port);
	}
	free(copy);
	return l->n == 0 ? -1 : rc;
}

static inline void bu_addr_str(const struct sockaddr_storage *ss, char *out, size_t len)
{
	const void *p = ss->ss_family == AF_INET6
			    ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
			    : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
	if (!inet_ntop(ss->ss_family, p, out, (socklen_t)len))
		snprintf(out, len, "?");
}

static inline socklen_t bu_addr_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* A non-blocking connect from src (port chosen at connect time, so many
 * connections share one address as long as their 4-tuples differ).
 * Returns the fd, or -1 with *err set. */
static inline int bu_connect_nb(const struct sockaddr_storage *src,
				const struct sockaddr_storage *dst, int *err)
{
	int fd = socket(dst->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*err = errno;
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (src) {
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (const struct sockaddr *)src, bu_addr_len(src)) < 0)
			goto fail;
	}
	if (connect(fd, (const struct sockaddr *)dst, bu_addr_len(dst)) == 0 ||
	    errno == EINPROGRESS)
		return fd;
fail:
	*err = errno;
	close(fd);
	return -1;
}

/* Raises the open-file limit to at least want (root may lift the hard
 * limit too); returns the limit in force. */
static inline rlim_t bu_raise_nofile(rlim_t want)
{
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur >= want)
		return rl.rlim_cur;
	rl.rlim_cur = want;
	if (rl.rlim_max < want)
		rl.rlim_max = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	return rl.rlim_cur;
}

/* Log-linear latency histogram in nanoseconds: exact below 128 ns, then 64
 * buckets per power of two, so any quantile is within 1.6 % of the truth
 * with a fixed 30 KiB table and no allocation per sample. */
#define BU_HIST_SUB   64
#define BU_HIST_SLOTS (128 + 57 * BU_HIST_SUB)

struct bu_hist {
	uint64_t count, max;
	uint64_t slot[BU_HIST_SLOTS];
};

static inline unsigned bu_hist_index(uint64_t v)
{
	if (v < 128)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= 7 */
	unsigned shift = e - 6;
	unsigned m = (unsigned)(v >> shift); /* 64..127 */
	return 128 + (e - 7) * BU_HIST_SUB + (m - BU_HIST_SUB);
}

static inline double bu_hist_value(unsigned idx)
{
	if (idx < 128)
		return idx;
	unsigned e = (idx - 128) / BU_HIST_SUB + 7, m = (idx - 128) % BU_HIST_SUB + BU_HIST_SUB;
	unsigned shift = e - 6;
	return (double)((uint64_t)m << shift) + (double)(1ull << shift) / 2;
}

static inline void bu_hist_add(struct bu_hist *h, uint64_t v)
{
	h->slot[bu_hist_index(v)]++;
	h->count++;
	if (v > h->max)
		h->max = v;
}

static inline double bu_hist_quantile(const struct bu_hist *h, double q)
{
	if (h->count == 0)
		return 0;
	uint64_t want = (uint64_t)(q * (double)h->count + 0.999999), seen = 0;
	if (want == 0)
		want = 1;
	for (unsigned i = 0; i < BU_HIST_SLOTS; i++) {
		seen += h->slot[i];
		if (seen >= want) {
			double v = bu_hist_value(i);
			return v > (double)h->max ? (double)h->max : v;
		}
	}
	return (double)h->max;
}

#endif
