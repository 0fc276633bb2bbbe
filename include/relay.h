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
#include <sys/queue.h>
#include <sys/socket.h>

#include "loop.h"
#include "runtime.h"

#define RELAY_SPARE_FDS 4

struct relay_conn;
TAILQ_HEAD(relay_conn_list, relay_conn);
/* A VIP's connections by last activity, least recently active first. */
TAILQ_HEAD(relay_lru, relay_conn);

struct relay_listener {
	_Alignas(16) int fd;
	uint16_t port; /* network order: a server with no port gets this one */
	bool armed;
	bool multishot; /* the armed accept is multishot (relay_accept_scarce) */
	bool retired;   /* dropped by a reload: its vip is of an older generation */
	bool stopping;  /* shutdown: accepting for the last time (relay_stop_listen) */
	uint8_t paused; /* 1 + enum runtime_pause while not accepting */
	LIST_ENTRY(relay_listener) pause_link; /* on the worker's paused list */
	struct runtime_vip *vip;
	struct sockaddr_storage addr;           /* a reload keeps listeners by address */
	LIST_ENTRY(relay_listener) closed_link; /* on the worker's list of closed ones */
};

/* A worker's share of one runtime generation: its idle lists per VIP and
 * how many of its connections belong to it. */
struct relay_gen {
	struct runtime *rt;
	struct relay_lru *lru;   /* per VIP of rt */
	struct relay_lru *hello; /* per VIP of rt: waiting for a ClientHello or handshake */
	int nconns;
	LIST_ENTRY(relay_gen) link; /* on the worker's generations */
};

/* Allocates a worker's share of `rt` (before the worker switches to it). */
struct relay_gen *relay_gen_new(struct runtime *rt);
/* Frees one that was never switched to (a reload refused). NULL is fine. */
void relay_gen_discard(struct relay_gen *g);

struct relay {
	struct loop *loop;
	struct runtime *rt;
	int worker;
	/* The loop's codes for the relay's requests (loop_register); recv and
	 * send by direction: [TO_SERVER] receives on the client's socket and
	 * sends on the server's. */
	struct {
		int accept, connect, connect_timeout, defer, recv[2], send[2];
	} op;
	/* The current generation first, then older ones with connections left. */
	LIST_HEAD(, relay_gen) gens;
	unsigned char *scratch; /* TLSHELLO_MAX bytes: a hello spread over buffers */
	/* Receives that found no buffer, in arrival order: [0] of light
	 * connections (served first), [1] of bulk transfers. */
	struct relay_conn_list starved[2];
	/* Connections that found no descriptor for their server socket. */
	struct relay_conn_list fdwait;
	LIST_HEAD(, relay_listener) paused; /* listeners not accepting for now */
	uint64_t nofile_retry_ms;           /* when a listener paused for descriptors tries again */
	bool fd_freed;                      /* this worker closed sockets since the last check */
	int spare[RELAY_SPARE_FDS];         /* descriptors kept for server sockets (relay.c) */
	int nspare;
	unsigned snat_cursor;
	int live;           /* this worker's open client connections */
	int nconns;         /* allocated, including those closing */
	uint32_t high_mark; /* bytes queued per half before receiving pauses */
	uint32_t promised;  /* buffers bulk receives armed now may still take */
	unsigned kick_seen; /* runtime.kick last acted on */
	/* Every connection, in accept order, for the ledger's walk (never
	 * reordered, so a walk spread over iterations sees each one once), and
	 * where that walk stands (moved on when its connection is freed). */
	struct relay_conn_list all;
	struct relay_conn *ledger_at;
};

int relay_init(struct relay *r, struct loop *l, struct runtime *rt, int worker);
/* New connections belong to `g` from now on; open ones stay in theirs, and
 * an older generation is released (its refs dropped) once they are gone. */
void relay_switch(struct relay *r, struct relay_gen *g);
void relay_free(struct relay *r);

/* Arms a multishot accept on a listener of this worker. */
void relay_listen(struct relay *r, struct relay_listener *ls);
/* Stops accepting on a listener and closes it. */
void relay_unlisten(struct relay *r, struct relay_listener *ls);
/* Shutdown: stops accepting on a listener, but first takes the connections
 * already waiting in its queue (closing it would reset them, unseen); they
 * are served and logged like any other. ls->fd is -1 once it is closed. */
void relay_stop_listen(struct relay *r, struct relay_listener *ls);

/* Periodic work: idle timeouts, and receives starved of buffers. */
void relay_tick(struct relay *r);

/* After each batch of completions: what waited for buffers, descriptors or
 * a connection slot goes on if it can now. Cheap when nothing waits. */
void relay_resume(struct relay *r);

struct ledger_conn;
/* The ledger (ledger.c): from the first connection when `start`, else from
 * where the last step stopped, hands at most `max` open connections to fn,
 * and stops early when fn returns false. Returns true once the walk has
 * ended. */
bool relay_ledger_step(struct relay *r, bool start, unsigned max,
		       bool (*fn)(void *arg, const struct ledger_conn *c), void *arg);

/* Closes every open connection (end of the grace period). */
void relay_close_all(struct relay *r);

#endif
