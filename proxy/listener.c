#include <errno.h>
#include <linux/filter.h>
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

/* A classic BPF filter on the listening socket, run on each segment the
 * listener receives with the TCP header at offset 0: a SYN without ACK
 * (byte 13, the flags) is dropped, the rest (the handshakes' last ACKs)
 * passes. */
int listener_refuse_new(int fd)
{
	static struct sock_filter code[] = {
	    BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),
	    BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12), /* SYN | ACK */
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, 0),
	    BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),
	};
	struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};

	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0 ? -errno : 0;
}
