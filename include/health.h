/* health: active checks of each pool's servers (tcp, http, https with a
 * client certificate) and passive checking of client connects.
 *
 * Checks run in the workers' io_uring loops: each server is checked by one
 * worker (its index over all pools, modulo the number of workers), one
 * request in flight at a time (a timer, the connect, a send or a receive),
 * each linked to a timeout for what is left of check_timeout. TLS goes
 * through OpenSSL on memory BIOs, so OpenSSL never touches the socket and
 * never blocks. A server's state is BALANCE_DOWN in its shared atomic flags:
 * every worker's next balance_pick sees it. */
#ifndef SNATPROXY_HEALTH_H
#define SNATPROXY_HEALTH_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/queue.h>

#include "loop.h"
#include "runtime.h"

struct health_check;

/* One worker's share of the checks. */
struct health_worker {
	struct loop *loop;
	struct runtime *rt;
	int id;
	struct health_check **checks;
	int nchecks;
	LIST_HEAD(, health_check) retired; /* of replaced generations, until idle */
	int inflight;                      /* requests in flight over all its checks */
	int op_check, op_timeout;          /* the loop's codes for its requests */
	bool stopping;
};

/* At start: each pool's check state and TLS context. Loads and examines
 * check_cert, check_key and check_ca: unusable files, a key that does not
 * match, or an expired certificate are errors; a certificate without the
 * clientAuth purpose is a warning (the seed's cause of event 61013). Both go
 * to ERRS as "FILE:LINE: ...". Returns 0 or -EINVAL (or -ENOMEM). */
int health_init(struct runtime *rt, FILE *errs);
void health_free(struct runtime *rt);

/* Takes this worker's servers and arms their first checks. */
int health_worker_init(struct health_worker *h, struct loop *l, struct runtime *rt, int id);
/* After a reload, on the worker's thread: the checks of the old generation
 * are cancelled (and freed as their requests come back), and this worker's
 * share of rt's servers is checked from now on. A server that kept its name
 * keeps its state (runtime_init_next carries its flags over). */
int health_worker_switch(struct health_worker *h, struct runtime *rt);

/* Cancels what is in flight; the worker runs its loop until idle. */
void health_worker_stop(struct health_worker *h);
bool health_worker_idle(const struct health_worker *h);
void health_worker_free(struct health_worker *h);

/* A check's result, counted per server (runtime_server_stats.checks). */
enum health_result {
	HEALTH_OK,
	HEALTH_TIMEOUT,
	HEALTH_REFUSED,
	HEALTH_RESET,
	HEALTH_STATUS, /* a bad HTTP response, an unexpected status or body */
	HEALTH_TLS,    /* the TLS handshake or the certificate's verification */
	HEALTH_ERROR,
	HEALTH_RESULT_N
};
extern const char *const health_result_name[HEALTH_RESULT_N];

#define HEALTH_TEXT_MAX 512

/* The last check of a server, as the status page shows it. */
struct health_last {
	const char *type;           /* "tcp", "http", "https", or "none" */
	bool checked;               /* a check of this generation has ended */
	int result;                 /* enum health_result */
	uint64_t dur_us;            /* from the connect to the verdict */
	uint64_t unix_ms;           /* when it ended */
	char text[HEALTH_TEXT_MAX]; /* the status ("200"), "connected" or the reason */
};

/* Reads server s's last check; any thread, while the workers run. */
void health_last_get(const struct runtime_pool *p, int s, struct health_last *out);
/* A failed client connect's -errno in words: "connection refused", ... */
const char *health_errno_text(int err);

/* A client connection to server S of pool P connected (OK) or failed with
 * -errno ERR. check_fall failures in a row mark the server down: until its
 * checks succeed again, or with check = none for fail_timeout, after which
 * one connection tries it (success: up; failure: another fail_timeout).
 * Any worker may call it. */
void health_passive(struct runtime_pool *p, int s, bool ok, int err);

#endif
