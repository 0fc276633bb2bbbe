/* snat: the source address of server connections.
 *
 * auto: the kernel chooses by its routes (a hardware balancer's automap);
 * pool: the VIP's addresses in turn, bound with IP_BIND_ADDRESS_NO_PORT so
 *       that the port is chosen at connect() by the whole 4-tuple, and the
 *       next address taken when one has no port left (EADDRNOTAVAIL);
 * off:  transparent, the client's own address and port (IP_TRANSPARENT). */
#ifndef SNATPROXY_SNAT_H
#define SNATPROXY_SNAT_H

#include <sys/socket.h>

#include "runtime.h"

/* Opens a TCP socket to reach `server` for a client of `vip`, bound as the
 * VIP's mode says; in pool mode, to address number `idx` modulo the pool's
 * size. Returns the descriptor or -errno; an SNAT address that cannot be
 * bound is logged, at most once per interval for the VIP. */
int snat_socket(struct runtime_vip *vip, const struct sockaddr *client,
		const struct sockaddr *server, unsigned idx);

/* Is ADDR (port 0) an address of this host, that a server connection can
 * be bound to? Binds a socket to it as snat_socket will, with IP_FREEBIND
 * off. Returns 0 or -errno (-EADDRNOTAVAIL: not this host's). */
int snat_check_addr(const struct sockaddr *addr);

/* Can this process make transparent sockets of FAMILY (IP_TRANSPARENT needs
 * CAP_NET_ADMIN)? Returns 0 or -errno (-EPERM: it cannot). */
int snat_check_transparent(int family);

/* A connect from pool address `idx` failed with EADDRNOTAVAIL: counted, and
 * logged at most once per interval for the VIP. */
void snat_exhausted(struct runtime_vip *vip, unsigned idx);

/* A connect in transparent mode got no answer: logs, at most once per
 * interval, that replies probably bypass the proxy. */
void snat_transparent_hint(struct runtime_vip *vip, const struct sockaddr *server);

/* At start: warns for each transparent VIP whose servers share a directly
 * connected subnet with the VIP, where the seed's failure will happen. */
void snat_check_routes(const struct runtime *rt);

#endif
