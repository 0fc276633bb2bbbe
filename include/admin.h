/* admin: the HTTP/1.1 admin endpoint (`admin = ADDR:PORT` in [global]).
 *
 * GET /metrics (Prometheus), GET /stats (JSON), GET / (HTML status page),
 * GET /connections (the open connections, ledger.h), GET /snat (budget.h),
 * POST /pools/POOL/servers/SERVER/{drain,disable,enable}; GET /ready (200 or
 * 503 with one line saying why), POST /drain and POST /undrain (the node's
 * readiness, for keepalived or a BGP daemon). With
 * admin_token_file, every request but a GET or HEAD on a loopback address
 * needs `Authorization: Bearer TOKEN` (401 otherwise), or for the status
 * page's forms a `token` field in an application/x-www-form-urlencoded
 * body; a form's action is answered 303, back to the page.
 *
 * It runs on a thread of its own with a small epoll loop and touches the
 * workers only through the runtime's atomics (and, for /connections, the
 * ledger's slots, which the workers fill between batches): it never takes a lock a worker
 * takes and never submits to a worker's ring, so however slow or hostile an
 * admin client is, the data path does not wait for it. Requests are bounded
 * in size; connections in number, per client address too, and in time (a
 * second for a request head), so idle clients cannot keep others out. */
#ifndef SNATPROXY_ADMIN_H
#define SNATPROXY_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "runtime.h"

struct admin;

/* Bytes of one request, head and body together. */
#define ADMIN_REQ_MAX 4096

/* A request as admin_parse_request reads it. */
struct admin_request {
	char method[8];
	char path[256];
	bool head;                        /* HEAD: the response goes without its body */
	bool auth;                        /* Authorization given (or a form's token) */
	bool form;                        /* an application/x-www-form-urlencoded body */
	char token[CONFIG_TOKEN_MAX + 1]; /* its Bearer credentials; "": none, or unusable */
	size_t head_len;                  /* through the blank line; 0 while incomplete */
	size_t length;                    /* head and body */
	int status;                       /* 0, or the HTTP status that refuses the request */
	char why[128];                    /* the refusal in words: one line, ending in a newline */
};

/* Parses the first `len` bytes received on a connection. Pure: no I/O, no
 * allocation, nothing read past buf[len - 1]. Returns -EAGAIN while more
 * bytes are needed (q->head_len says whether the head is complete), or 0 once
 * the request is complete (q->status 0) or refused (q->status and q->why).
 * Lines end in CRLF; a bare LF or CR, a NUL, obsolete line folding or a
 * malformed header is refused as soon as it arrives. */
int admin_parse_request(const char *buf, size_t len, struct admin_request *q);

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
