#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "snat.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define SNAT_LOG_INTERVAL_MS 10000

static int snat_setopt(int fd, int level, int name)
{
	int one = 1;
	return setsockopt(fd, level, name, &one, sizeof(one)) < 0 ? -errno : 0;
}

/* The connection's own line says end=internal-error:ERRNO; this one says
 * what failed and with which address, once per interval per VIP (a client
 * flood must not become a log flood). */
static void snat_failed(struct runtime_vip *vip, const char *what, const struct sockaddr *sa,
			int err)
{
	bool pool = vip->cfg->snat == CONFIG_SNAT_POOL;

	unsigned long suppressed;
	char buf[ADDR_STRLEN];

	if (!log_ratelimit(&vip->rl_snat, SNAT_LOG_INTERVAL_MS, &suppressed))
		return;
	log_err("vip %s: %s %s: %s%s (%lu more since last message)", vip->cfg->name, what,
		addr_format(sa, buf, sizeof(buf)), strerror(err),
		pool && err == EADDRNOTAVAIL ? ": not an address of this host (any more)" : "",
		suppressed);
}

static int snat_bind_pool(struct runtime_vip *vip, int fd, int family, unsigned idx)
{
	int n = vip->cfg->nsnat;
	/* Addresses of the server's family only; the config may mix them. */
	for (int k = 0; k < n; k++) {
		const struct sockaddr *sa = (const struct sockaddr *)&vip->snat[(idx + k) % n].addr;
		if (sa->sa_family != family)
			continue;
		int ret = snat_setopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT);
		if (ret == 0 && bind(fd, sa, addr_len(sa)) < 0) {
			ret = -errno;
			snat_failed(vip, "cannot bind SNAT address", sa, -ret);
		}
		return ret;
	}
	return -EAFNOSUPPORT;
}

int snat_check_addr(const struct sockaddr *sa)
{
	bool v6 = sa->sa_family == AF_INET6;
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0), off = 0, ret = 0;

	if (fd < 0)
		return -errno;
	/* Off explicitly: with IP_FREEBIND any address binds, and the test
	 * would prove nothing. */
	if (setsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_FREEBIND : IP_FREEBIND, &off,
		       sizeof(off)) < 0)
		ret = -errno;
	if (ret == 0)
		ret = snat_setopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT);
	if (ret == 0 && bind(fd, sa, addr_len(sa)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int snat_check_transparent(int family)
{
	bool v6 = family == AF_INET6;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), ret;

	if (fd < 0)
		return -errno;
	ret =
	    snat_setopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_TRANSPARENT : IP_TRANSPARENT);
	close(fd);
	return ret;
}

static int snat_bind_transparent(int fd, const struct sockaddr *client)
{
	int level = client->sa_family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP;
	int name = client->sa_family == AF_INET6 ? IPV6_TRANSPARENT : IP_TRANSPARENT;
	int ret = snat_setopt(fd, level, name);
	if (ret == 0)
		ret = snat_setopt(fd, SOL_SOCKET, SO_REUSEADDR);
	if (ret == 0 && bind(fd, client, addr_len(client)) < 0)
		ret = -errno;
	return ret;
}

/* Blocking sockets: io_uring polls them itself, and on a non-blocking
 * socket a connect that io_uring retries can complete with EINPROGRESS. */
int snat_socket(struct runtime_vip *vip, const struct sockaddr *client,
		const struct sockaddr *server, unsigned idx)
{
	int fd = socket(server->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int ret = 0;

	if (fd < 0) {
		ret = -errno;
		/* Out of descriptors, the caller waits for one and says so. */
		if (ret != -EMFILE && ret != -ENFILE && ret != -ENOBUFS && ret != -ENOMEM)
			snat_failed(vip, "cannot open a socket to server", server, -ret);
		return ret;
	}
	snat_setopt(fd, IPPROTO_TCP, TCP_NODELAY);
	switch (vip->cfg->snat) {
	case CONFIG_SNAT_AUTO:
		break;
	case CONFIG_SNAT_POOL:
		ret = snat_bind_pool(vip, fd, server->sa_family, idx);
		break;
	case CONFIG_SNAT_OFF:
		ret = client->sa_family == server->sa_family ? snat_bind_transparent(fd, client)
							     : -EAFNOSUPPORT;
		if (ret < 0)
			snat_failed(vip, "snat = off: cannot bind client address", client, -ret);
		break;
	}
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

void snat_exhausted(struct runtime_vip *vip, unsigned idx)
{
	struct runtime_snat_addr *a = &vip->snat[idx % (unsigned)vip->cfg->nsnat];
	unsigned long suppressed;
	char buf[ADDR_STRLEN];

	atomic_fetch_add(&a->exhausted, 1);
	if (log_ratelimit(&vip->rl_snat, SNAT_LOG_INTERVAL_MS, &suppressed))
		log_warn("vip %s: SNAT address %s has no free port toward a server; using the "
			 "next address (%lu more since last message); add addresses to `snat`",
			 vip->cfg->name, addr_format((struct sockaddr *)&a->addr, buf, sizeof(buf)),
			 suppressed);
}

void snat_transparent_hint(struct runtime_vip *vip, const struct sockaddr *server)
{
	unsigned long suppressed;
	char buf[ADDR_STRLEN];

	if (vip->cfg->snat != CONFIG_SNAT_OFF ||
	    !log_ratelimit(&vip->rl_transparent, SNAT_LOG_INTERVAL_MS, &suppressed))
		return;
	log_warn("vip %s: connect to %s from a client's own address got no answer: the server's "
		 "replies probably bypass the proxy (server and client on one subnet, proxy not "
		 "their gateway); `snat = auto` fixes it (%lu more since last message)",
		 vip->cfg->name, addr_format(server, buf, sizeof(buf)), suppressed);
}

/* The most specific IPv4 route of the main table that holds `a` (network
 * order), from /proc/net/route. Returns 0 and fills net, mask and gw, or -1. */
static int snat_route4(uint32_t a, uint32_t *net, uint32_t *mask, uint32_t *gw)
{
	FILE *f = fopen("/proc/net/route", "r");
	char line[256], ifname[32];
	unsigned dst, g, flags, refcnt, use, metric, m;
	int found = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%31s %x %x %x %u %u %u %x", ifname, &dst, &g, &flags, &refcnt,
			   &use, &metric, &m) != 8 ||
		    !(flags & 1 /* RTF_UP */))
			continue;
		if ((a & m) != dst || (found == 0 && ntohl(m) <= ntohl(*mask)))
			continue;
		*net = dst, *mask = m, *gw = g, found = 0;
	}
	fclose(f);
	return found;
}

static void snat_check_vip(const struct runtime_vip *vip)
{
	const struct config_pool *pool = vip->pool->cfg;
	char sbuf[ADDR_STRLEN], vbuf[ADDR_STRLEN];

	for (int l = 0; l < vip->cfg->nlisten; l++) {
		const struct sockaddr_in *v = (const struct sockaddr_in *)&vip->cfg->listen[l];
		if (v->sin_family != AF_INET)
			continue;
		for (int s = 0; s < pool->nservers; s++) {
			const struct sockaddr_in *sa =
			    (const struct sockaddr_in *)&pool->servers[s].addr;
			uint32_t net = 0, mask = 0, gw = 0;
			if (sa->sin_family != AF_INET ||
			    snat_route4(sa->sin_addr.s_addr, &net, &mask, &gw) < 0 || gw != 0 ||
			    (v->sin_addr.s_addr & mask) != net)
				continue;
			log_warn(
			    "vip %s: snat = off, but server %s (%s) is on the same directly "
			    "connected subnet as the VIP %s: clients on that subnet, the servers "
			    "themselves included, will get replies straight from the server and "
			    "reset them. Use `snat = auto`, or make this proxy the servers' "
			    "gateway "
			    "with clients on another subnet",
			    vip->cfg->name, pool->servers[s].name,
			    addr_format((const struct sockaddr *)sa, sbuf, sizeof(sbuf)),
			    addr_format((const struct sockaddr *)v, vbuf, sizeof(vbuf)));
			return;
		}
	}
}

void snat_check_routes(const struct runtime *rt)
{
	for (int i = 0; i < rt->cfg->nvips; i++)
		if (rt->vips[i].cfg->snat == CONFIG_SNAT_OFF)
			snat_check_vip(&rt->vips[i]);
}
