/* admin: the HTTP/1.1 admin endpoint (`admin = ADDR:PORT` in [global]).
 *
 * GET /metrics (Prometheus), GET /stats (JSON), GET / (HTML status page),
 * POST /pools/POOL/servers/SERVER/{drain,disable,enable}.
 *
 * It runs on a thread of its own with a small epoll loop and touches the
 * workers only through the runtime's atomics: it never takes a lock a worker
 * takes and never submits to a worker's ring, so however slow or hostile an
 * admin client is, the data path does not wait for it. Requests are bounded
 * in size, connections in number and in time. */
#ifndef SNATPROXY_ADMIN_H
#define SNATPROXY_ADMIN_H

#include <stddef.h>
#include <sys/socket.h>

#include "runtime.h"

struct admin;

/* Binds and listens on `addr` (before privileges are dropped). Returns 0 or
 * -errno, with the reason in `why`. */
int admin_open(struct admin **out, struct runtime *rt, const struct sockaddr *addr, char *why,
	       size_t len);
/* Starts the admin thread. Returns 0 or -errno. */
int admin_start(struct admin *a);
/* After a reload: answer from `rt`; the endpoint drops its reference to
 * the previous generation (rt->refs) at its next turn. */
void admin_set_runtime(struct admin *a, struct runtime *rt);
/* Stops the thread (if started), closes every socket and frees `a`. */
void admin_close(struct admin *a);

#endif
