#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "listener.h"

/* The kernel caps it at net.core.somaxconn. */
#define LISTENER_BACKLOG 65535

int listener_open(const struct sockaddr *addr, char *why, size_t len)
{
	int one = 1, fd, err;
	char buf[ADDR_STRLEN];

	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = errno;
		snprintf(why, len, "socket: %s", strerror(err));
		return -err;
	}
	/* TCP_NODELAY is inherited by accepted sockets: no Nagle delay on what
	 * the proxy relays, without a setsockopt per connection. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
	    (addr->sa_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)) {
		err = errno;
		snprintf(why, len, "setsockopt: %s", strerror(err));
		close(fd);
		return -err;
	}
	if (bind(fd, addr, addr_len(addr)) < 0 || listen(fd, LISTENER_BACKLOG) < 0) {
		err = errno;
		snprintf(why, len, "cannot listen on %s: %s%s", addr_format(addr, buf, sizeof(buf)),
			 strerror(err),
			 err == EADDRNOTAVAIL ? " (the address is not on this host)"
			 : err == EACCES      ? " (ports below 1024 need CAP_NET_BIND_SERVICE)"
			 : err == EADDRINUSE  ? " (another program holds this address and port)"
					      : "");
		close(fd);
		return -err;
	}
	return fd;
}
