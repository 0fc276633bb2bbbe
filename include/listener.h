/* listener: the listening sockets of the VIPs, one per worker and address,
 * joined by SO_REUSEPORT so that the kernel spreads new connections over the
 * workers without a shared accept queue. */
#ifndef SNATPROXY_LISTENER_H
#define SNATPROXY_LISTENER_H

#include <stddef.h>
#include <sys/socket.h>

/* Returns a listening descriptor or -errno, with the reason in `why`. */
int listener_open(const struct sockaddr *addr, char *why, size_t len);

/* From now on the listener answers no new SYN (they are dropped: the client
 * tries again, and finds the port closed or another listener), while the
 * handshakes it has begun still complete. Returns 0 or -errno. */
int listener_refuse_new(int fd);

#endif
