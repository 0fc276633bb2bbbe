/* addr: parsing and printing of socket addresses as written in the config
 * ("198.18.0.10:444", "[::1]:8080", "198.18.0.11" with no port). */
#ifndef SNATPROXY_ADDR_H
#define SNATPROXY_ADDR_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An IPv4 or IPv6 socket address in the size it needs, for what a
 * connection or a check keeps (a sockaddr_storage is four times larger). */
union addr_sa {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

/* Longest text addr_format() writes: "[v6]:port" plus NUL. */
#define ADDR_STRLEN 56

/* Parses "IPv4[:port]", "[IPv6][:port]" or a bare IPv6 address. port_rule:
 * ADDR_PORT_REQUIRED, ADDR_PORT_OPTIONAL (absent port is stored as 0) or
 * ADDR_PORT_NONE. Returns 0 or -EINVAL. */
enum { ADDR_PORT_REQUIRED, ADDR_PORT_OPTIONAL, ADDR_PORT_NONE };
int addr_parse(const char *s, int port_rule, struct sockaddr_storage *out);

/* "a.b.c.d:port" or "[v6]:port"; port omitted when 0. Returns buf. */
char *addr_format(const struct sockaddr *sa, char *buf, size_t len);

uint16_t addr_port(const struct sockaddr *sa);
void addr_set_port(struct sockaddr *sa, uint16_t port);
socklen_t addr_len(const struct sockaddr *sa);
int addr_equal(const struct sockaddr *a, const struct sockaddr *b); /* address and port */

#endif
