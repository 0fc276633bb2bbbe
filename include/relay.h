/* relay: client connections of one worker, from accept to close.
 *
 * A connection is two sockets and two halves: half 0 carries what the client
 * sends to the server, half 1 the way back. Each half has at most one
 * multishot receive and one send in flight; received buffers wait in a short
 * queue until sent, and receiving pauses while the queue is above its high
 * mark, so a slow reader costs the proxy a bounded amount of memory and the
 * kernel's TCP windows push back on the fast sender. */
#ifndef SNATPROXY_RELAY_H
#define SNATPROXY_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "loop.h"
#include "runtime.h"

struct relay_conn;

struct relay_lru {
	struct relay_conn *head, *tail; /* least recently active first */
};

struct relay_listener {
	_Alignas(16) int fd;
	uint16_t port; /* network order: a server with no port gets this one */
	bool armed;
	struct runtime_vip *vip;
};

struct relay {
	struct loop *loop;
	struct runtime *rt;
	int worker;
	struct relay_lru *lru;    /* per VIP */
	struct relay_lru *hello;  /* per VIP: tls = route, waiting for a ClientHello */
	unsigned char *scratch;   /* TLSHELLO_MAX bytes: a hello spread over buffers */
	struct relay_conn *starved; /* waiting for provided buffers */
	unsigned snat_cursor;
	int live;                 /* this worker's open client connections */
	int nconns;               /* allocated, including those closing */
	uint32_t high_mark;       /* bytes queued per half before receiving pauses */
};

int relay_init(struct relay *r, struct loop *l, struct runtime *rt, int worker);
void relay_free(struct relay *r);

/* Arms a multishot accept on a listener of this worker. */
void relay_listen(struct relay *r, struct relay_listener *ls);
/* Stops accepting on a listener and closes it. */
void relay_unlisten(struct relay *r, struct relay_listener *ls);

/* Periodic work: idle timeouts, and receives starved of buffers. */
void relay_tick(struct relay *r);

/* Closes every open connection (end of the grace period). */
void relay_close_all(struct relay *r);

#endif
