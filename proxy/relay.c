#include <errno.h>
#include <fcntl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <unistd.h>

#include "addr.h"
#include "budget.h"
#include "health.h"
#include "ledger.h"
#include "listener.h"
#include "log.h"
#include "relay.h"
#include "snat.h"
#include "tls.h"
#include "tlshello.h"

/* A connection's two sockets, fd[C_CLIENT] and fd[C_SERVER], and its two
 * directions: half[TO_SERVER] is what arrives on the client's socket for the
 * server's, half[TO_CLIENT] the way back. Half d is received on fd[d] and
 * sent on fd[1 - d], which is why the values pair up. */
enum { C_CLIENT = 0, C_SERVER = 1 };
enum { TO_SERVER = C_CLIENT, TO_CLIENT = C_SERVER };

/* A half's flags. */
enum {
	H_RECV = 1 << 0,       /* multishot receive armed */
	H_CANCELLING = 1 << 1, /* ... and asked to stop (queue above the high mark) */
	H_SENDING = 1 << 2,
	H_EOF = 1 << 3,     /* the sender shut its side */
	H_SHUT = 1 << 4,    /* ... and that was relayed with shutdown(SHUT_WR) */
	H_STARVED = 1 << 5, /* the receive ended with ENOBUFS */
};

/* S_HELLO: tls = route, reading the ClientHello before choosing a pool.
 * S_HANDSHAKE: tls = terminate, the client's handshake before any server
 * is chosen. */
enum relay_state { S_CONNECTING, S_RELAYING, S_CLOSING, S_HELLO, S_HANDSHAKE };

enum relay_end {
	END_NONE,
	END_CLIENT_CLOSED,
	END_SERVER_CLOSED,
	END_CLIENT_RESET,
	END_SERVER_RESET,
	END_CONNECT_TIMEOUT,
	END_CONNECT_REFUSED,
	END_CONNECT_ERROR,
	END_NO_SERVER,
	END_IDLE_TIMEOUT,
	END_SHUTDOWN,
	END_INTERNAL,
	END_DISABLED,
	END_HELLO_TIMEOUT,
	END_BAD_HELLO,
	END_TLS_HANDSHAKE,
	END_TLS_ERROR,
	END_HANDSHAKE_TIMEOUT,
};

static const char *const relay_end_name[] = {
    [END_NONE] = "none",
    [END_CLIENT_CLOSED] = "client-closed",
    [END_SERVER_CLOSED] = "server-closed",
    [END_CLIENT_RESET] = "client-reset",
    [END_SERVER_RESET] = "server-reset",
    [END_CONNECT_TIMEOUT] = "connect-timeout",
    [END_CONNECT_REFUSED] = "connect-refused",
    [END_CONNECT_ERROR] = "connect-error",
    [END_NO_SERVER] = "no-server",
    [END_IDLE_TIMEOUT] = "idle-timeout",
    [END_SHUTDOWN] = "shutdown",
    [END_INTERNAL] = "internal-error",
    [END_DISABLED] = "server-disabled",
    [END_HELLO_TIMEOUT] = "hello-timeout",
    [END_BAD_HELLO] = "bad-hello",
    [END_TLS_HANDSHAKE] = "tls-handshake-failed",
    [END_TLS_ERROR] = "tls-error",
    [END_HANDSHAKE_TIMEOUT] = "tls-handshake-timeout",
};

/* A listener paused for want of descriptors tries again after this long,
 * or as soon as this worker closes a socket. */
#define RELAY_NOFILE_RETRY_MS 100
/* Room under max_connections, per worker, below which accepts take one
 * connection at a time, and how long they do so after descriptors ran out. */
#define RELAY_ACCEPT_ROOM 64
#define RELAY_SCARCE_MS   1000
/* A stopping listener's queue is taken until no handshake has completed for
 * this long, at most this many times (relay_drain_close). */
#define RELAY_SETTLE_MS     5
#define RELAY_SETTLE_ROUNDS 100
/* tls = terminate: how long a client that has finished its handshake may
 * stay silent before the server is connected anyway (the server speaks
 * first: IMAPS, SMTPS). */
static const struct __kernel_timespec relay_defer_ts = {.tv_nsec = 2 * 1000 * 1000};

/* Buffers one send may gather: the high mark keeps about four queued. */
#define RELAY_IOV 4

struct relay_half {
	uint16_t head, tail; /* queued buffer ids, linked through loop->buf_next */
	uint32_t head_off;   /* bytes of the head buffer already sent */
	uint32_t queued;     /* bytes received and not yet sent */
	uint16_t promised;   /* buffers its armed bulk receive may still take */
	uint8_t flags;
	/* A gathered send's message, read by the kernel when it is submitted. */
	struct msghdr msg;
	struct iovec iov[RELAY_IOV];
};

/* Kept small: an idle connection costs this and its two sockets, no buffer. */
struct relay_conn {
	_Alignas(16) int fd[2];
	struct relay_half half[2]; /* [TO_SERVER], [TO_CLIENT] */
	uint8_t state, end, tries, inflight;
	uint8_t starved_listed; /* 1 + the starved list it is on, 0 for none */
	uint8_t snat_tries, snat_idx;
	uint8_t fd_waiting; /* on the worker's fdwait list (1), or was (2) */
	uint8_t err;        /* errno behind an END_CONNECT_ERROR */
	int16_t server;
	uint16_t port;       /* the VIP port the client connected to */
	uint16_t hello_need; /* S_HELLO: bytes to wait for before parsing again */
	uint8_t in_hello;    /* on the hello list: no hello or handshake yet */
	uint8_t defer;       /* S_HANDSHAKE: the connect's timer armed (1), or fired (2) */
	uint8_t snat_set;    /* snat is our source address; while connecting, the server's */
	uint8_t xprt;        /* how its bytes move: XPRT_RAW or XPRT_TLS */
	int16_t failed;      /* server whose connect failed, avoided on retry */
	uint8_t retry_end, retry_err; /* why the first connect failed (tries > 1) */
	struct runtime_vip *vip;
	struct relay_gen *gen;
	struct runtime_pool *pool; /* the VIP's, or the one its SNI routes to */
	char *sni;                 /* tls = route: the name the client asked for */
	struct tls_conn *tls;      /* tls = terminate: the TLS layer, NULL otherwise */
	uint64_t start_ms, last_ms;
	uint64_t bytes[2];
	TAILQ_ENTRY(relay_conn) lru_link, starved_link, fdwait_link, all_link;
	union addr_sa client, snat;
};

/* How a connection's bytes move, raw or through the TLS layer (tls =
 * terminate), behind one set of operations as HAProxy's xprt_ops: the
 * relay's data path calls them and never asks which it has. */
struct relay_xprt {
	/* Moves half d along: sends what is ready, relays the end. */
	void (*flush)(struct relay *r, struct relay_conn *c, int d);
	/* A send of half d completed with n bytes. */
	void (*sent)(struct relay *r, struct relay_conn *c, int d, uint32_t n);
	/* The server is connected: 0, or -ENOMEM. */
	int (*connected)(struct relay *r, struct relay_conn *c);
	/* The connection ends for `why`, before its sockets close. */
	void (*end)(struct relay_conn *c, int why);
	/* " tls=... sni=..." for the log line, or "". */
	void (*describe)(const struct relay_conn *c, char *buf, size_t len);
	/* The name the client asked for, or NULL. */
	const char *(*sni)(const struct relay_conn *c);
	/* How a connection ends that did not complete its first step in time. */
	int slow_start_end;
};
enum { XPRT_RAW, XPRT_TLS };
static const struct relay_xprt relay_xprts[2];

static void relay_arm_recv(struct relay *r, struct relay_conn *c, int d);
static void relay_flush(struct relay *r, struct relay_conn *c, int d);
static void relay_connect(struct relay *r, struct relay_conn *c);
static void relay_hello(struct relay *r, struct relay_conn *c);
static void relay_tls_pump(struct relay *r, struct relay_conn *c);

/* The idle list of the connection's VIP, in its own generation. */
static inline struct relay_lru *conn_lru(struct relay_conn *c)
{
	return &c->gen->lru[c->vip - c->gen->rt->vips];
}

/* Errors of accept and socket that mean "no descriptor (or memory for one)
 * now": the client is left in the kernel's backlog or kept waiting, never
 * dropped. */
static bool relay_nofile(int err)
{
	return err == -EMFILE || err == -ENFILE || err == -ENOBUFS || err == -ENOMEM;
}

/* ---- bookkeeping: LRU for idle timeouts, the starved list ---- */

/* A connection waiting for its ClientHello (tls = route) or for the end of
 * its client's handshake (tls = terminate) is on the VIP's hello list, in
 * accept order, for its timeout: not on the idle list. */
static struct relay_lru *relay_list(struct relay_conn *c)
{
	return c->in_hello ? &c->gen->hello[c->vip - c->gen->rt->vips] : conn_lru(c);
}

static void relay_touch(struct relay *r, struct relay_conn *c)
{
	if (c->in_hello)
		return;
	c->last_ms = r->loop->now_ms;
	struct relay_lru *q = conn_lru(c);
	if (TAILQ_LAST(q, relay_lru) != c) {
		TAILQ_REMOVE(q, c, lru_link);
		TAILQ_INSERT_TAIL(q, c, lru_link);
	}
}

/* The hello or handshake has come: from the hello list to the idle list. */
static void relay_hello_done(struct relay *r, struct relay_conn *c)
{
	TAILQ_REMOVE(relay_list(c), c, lru_link);
	c->in_hello = 0;
	TAILQ_INSERT_TAIL(relay_list(c), c, lru_link);
	relay_touch(r, c);
}

static void starved_remove(struct relay *r, struct relay_conn *c)
{
	TAILQ_REMOVE(&r->starved[c->starved_listed - 1], c, starved_link);
	c->starved_listed = 0;
}

static void fdwait_remove(struct relay *r, struct relay_conn *c)
{
	TAILQ_REMOVE(&r->fdwait, c, fdwait_link);
	atomic_fetch_sub(&r->rt->root->nofile_waiting, 1);
	c->fd_waiting = 2;
}

/* ---- buffers queued in a half ---- */

static void half_push(struct loop *l, struct relay_half *h, uint16_t bid, uint32_t len)
{
	l->buf_len[bid] = len;
	l->buf_next[bid] = LOOP_BUF_NONE;
	if (h->tail == LOOP_BUF_NONE)
		h->head = bid;
	else
		l->buf_next[h->tail] = bid;
	h->tail = bid;
	h->queued += len;
}

static void half_pop(struct loop *l, struct relay_half *h)
{
	uint16_t bid = h->head;
	h->head = l->buf_next[bid];
	if (h->head == LOOP_BUF_NONE)
		h->tail = LOOP_BUF_NONE;
	h->head_off = 0;
	loop_buf_put(l, bid);
}

static void half_drop(struct loop *l, struct relay_half *h)
{
	while (h->head != LOOP_BUF_NONE)
		half_pop(l, h);
	h->queued = 0;
}

/* ---- the end of a connection ---- */

static void relay_log(struct relay *r, struct relay_conn *c)
{
	char cb[ADDR_STRLEN], sb[ADDR_STRLEN], vb[ADDR_STRLEN] = "-", tail[384] = "";
	const char *name = "-";
	int srv = c->server >= 0 ? c->server : c->failed;
	struct log_conn e;

	if (!c->gen->rt->cfg->log_connections)
		return;
	if (srv >= 0) {
		const struct config_server *s = &c->pool->cfg->servers[srv];
		union addr_sa sa;
		memcpy(&sa, &s->addr, sizeof(sa));
		if (addr_port(&sa.sa) == 0)
			addr_set_port(&sa.sa, ntohs(c->port));
		name = s->name;
		addr_format(&sa.sa, vb, sizeof(vb));
	}
	e = (struct log_conn){
	    .vip = c->vip->cfg->name,
	    .client = addr_format(&c->client.sa, cb, sizeof(cb)),
	    .snat = c->snat_set ? addr_format(&c->snat.sa, sb, sizeof(sb)) : "-",
	    .server = name,
	    .server_addr = vb,
	    .to_server = c->bytes[TO_SERVER],
	    .to_client = c->bytes[TO_CLIENT],
	    .duration_ms = r->loop->now_ms - c->start_ms,
	    .retries = c->tries > 1 ? c->tries - 1 : 0,
	    .retry = c->tries > 1 ? relay_end_name[c->retry_end] : NULL,
	    .retry_err = c->tries > 1 && c->retry_err ? strerrorname_np(c->retry_err) : NULL,
	    .end = relay_end_name[c->end],
	    .err = c->err ? strerrorname_np(c->err) : NULL,
	};
	relay_xprts[c->xprt].describe(c, tail, sizeof(tail));
	e.extra = tail[0] ? tail + 1 : NULL;
	log_conn(&e);
}

static void relay_maybe_free(struct relay *r, struct relay_conn *c)
{
	if (c->state == S_CLOSING && c->inflight == 0) {
		if (r->ledger_at == c)
			r->ledger_at = TAILQ_NEXT(c, all_link);
		TAILQ_REMOVE(&r->all, c, all_link);
		c->gen->nconns--;
		free(c->sni);
		tls_conn_free(c->tls);
		free(c);
		r->nconns--;
	}
}

static void relay_release_server(struct relay_conn *c)
{
	if (c->server < 0)
		return;
	struct runtime_pool *p = c->pool;
	balance_release(&p->bal, c->server);
}

/* Bytes of the client's connection as they move, c->bytes[d] for the log
 * line and this worker's rows for the metrics: what the client sent (d =
 * TO_SERVER, counted as received) and what it was sent (d = TO_CLIENT, at
 * send completion), TLS records included under tls = terminate. The rows
 * are the worker's own cache lines, so an open connection shows without
 * an atomic operation per completion. */
static void relay_count(struct relay *r, struct relay_conn *c, int d, uint32_t n)
{
	c->bytes[d] += n;
	runtime_bytes_add(&c->vip->bytes->w[r->worker], d, n);
	if (c->server >= 0)
		runtime_bytes_add(&c->pool->bytes[c->server]->w[r->worker], d, n);
}

/* How a connection ended, for the metrics: a client refused before it
 * reached a server, by cause; a client TLS handshake left unfinished. */
static void relay_count_end(struct relay_conn *c, enum relay_end why)
{
	static const int8_t cause[] = {
	    [END_NO_SERVER] = RUNTIME_REFUSE_NO_SERVER + 1,
	    [END_CONNECT_TIMEOUT] = RUNTIME_REFUSE_CONNECT_FAILED + 1,
	    [END_CONNECT_REFUSED] = RUNTIME_REFUSE_CONNECT_FAILED + 1,
	    [END_CONNECT_ERROR] = RUNTIME_REFUSE_CONNECT_FAILED + 1,
	    [END_BAD_HELLO] = RUNTIME_REFUSE_BAD_HELLO + 1,
	    [END_HELLO_TIMEOUT] = RUNTIME_REFUSE_HELLO_TIMEOUT + 1,
	    [END_TLS_HANDSHAKE] = RUNTIME_REFUSE_TLS_HANDSHAKE + 1,
	    [END_HANDSHAKE_TIMEOUT] = RUNTIME_REFUSE_TLS_HANDSHAKE + 1,
	};

	relay_xprts[c->xprt].end(c, why);
	if (c->state != S_RELAYING && why < sizeof(cause) && cause[why])
		atomic_fetch_add(&c->vip->refused[cause[why] - 1], 1);
}

static void relay_reset_on_close(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

/* A multishot accept takes the whole backlog in one go before the worker
 * sees any of it: past max_connections, and into the descriptors that
 * connections waiting for a server socket need (in any worker, since the
 * descriptor table is the process's). Close to either limit, each accept
 * takes one connection, and the limits are checked before the next. */
static bool relay_accept_scarce(const struct relay *r)
{
	struct runtime *root = r->rt->root;
	int room = r->rt->max_connections - atomic_load_explicit(&root->live, memory_order_relaxed);

	return room < RELAY_ACCEPT_ROOM * r->rt->nworkers ||
	       atomic_load_explicit(&root->nofile_waiting, memory_order_relaxed) > 0 ||
	       r->loop->now_ms <
		   atomic_load_explicit(&root->nofile_scarce_ms, memory_order_relaxed);
}

/* Ends a connection. `rst` has bit C_CLIENT / C_SERVER set for the sockets
 * that must see a reset instead of an orderly close. Requests still in
 * flight hold their own reference to the sockets, so the descriptors can be
 * closed now; the structure lives until the last completion has come back,
 * and only the entry points (completion handlers, tick) free it, so that no
 * function deeper down touches a freed connection. */
static void relay_close(struct relay *r, struct relay_conn *c, enum relay_end why, unsigned rst)
{
	if (c->state == S_CLOSING)
		return;
	if (c->state == S_CONNECTING && c->inflight)
		loop_cancel(r->loop, c, r->op.connect);
	TAILQ_REMOVE(relay_list(c), c, lru_link);
	if (c->state == S_RELAYING)
		budget_count(c->vip, (int)(c->pool - c->gen->rt->pools), c->server, c->snat_idx,
			     false);
	relay_count_end(c, why);
	c->state = S_CLOSING;
	c->end = why;
	for (int d = 0; d < 2; d++) {
		struct relay_half *h = &c->half[d];
		if (h->flags & H_RECV)
			loop_cancel(r->loop, c, r->op.recv[d]);
		/* A buffer being sent must not go back to the kernel before
		 * the send completes: it could be refilled under the send. */
		if (h->flags & H_SENDING)
			loop_cancel(r->loop, c, r->op.send[d]);
		else
			half_drop(r->loop, h);
		if (c->fd[d] >= 0) {
			if (rst & (1u << d))
				relay_reset_on_close(c->fd[d]);
			loop_close(r->loop, c->fd[d]);
			c->fd[d] = -1;
		}
	}
	relay_log(r, c);
	relay_release_server(c);
	atomic_fetch_sub(&c->vip->active, 1);
	if (c->starved_listed)
		starved_remove(r, c);
	if (c->fd_waiting == 1)
		fdwait_remove(r, c);
	r->fd_freed = true;
	r->live--;
	/* Other workers accept on this count, which must not run ahead of
	 * the descriptors: the closes would otherwise wait in the queue until
	 * the batch ends, or for as long as the scheduler leaves this thread
	 * off the CPU, and an accept of theirs could find none. Only close to
	 * the limits is that worth a system call. */
	if (relay_accept_scarce(r))
		loop_submit(r->loop);
	atomic_fetch_sub(&r->rt->root->live, 1);
}

/* Both directions are finished once each has seen its EOF relayed. */
static void relay_check_done(struct relay *r, struct relay_conn *c)
{
	if ((c->half[0].flags & H_SHUT) && (c->half[1].flags & H_SHUT))
		relay_close(r, c, c->end, 0);
}

/* ---- receiving ---- */

/* Bytes a half may hold. While less than a quarter of the worker's buffers
 * are free, every half may hold one buffer's worth: those holding the most
 * stop receiving first, and a new request still finds a buffer. A half
 * waiting for its ClientHello may always hold a whole hello. */
static uint32_t relay_mark(const struct relay *r, const struct relay_conn *c)
{
	const struct loop *l = r->loop;
	uint32_t mark = l->buf_free < l->nbufs / 4 ? l->buf_size : r->high_mark;

	return c->state == S_HELLO && mark < TLSHELLO_MAX ? TLSHELLO_MAX : mark;
}

/* A connection that has relayed more than a half's high mark is a bulk
 * transfer: while buffers are short, it waits behind lighter ones. */
static bool relay_heavy(const struct relay *r, const struct relay_conn *c)
{
	return c->bytes[0] + c->bytes[1] >= r->high_mark;
}

static bool relay_starving(const struct relay *r)
{
	return !TAILQ_EMPTY(&r->starved[0]) || !TAILQ_EMPTY(&r->starved[1]);
}

/* Buffers that bulk transfers may not take: an eighth of the pool stays for
 * new requests however many slow readers hold the rest. */
static uint32_t relay_reserve(const struct relay *r)
{
	return r->loop->nbufs / 8;
}

/* Buffers a bulk receive may be promised now: the free ones less the
 * reserve and less what bulk receives armed before may still take. Armed
 * together, bulk receives would otherwise each count the same free buffers
 * and take the reserve between them; and what they take may stay held for
 * minutes by a send to a reader whose socket is full. */
static int64_t relay_bulk_room(const struct relay *r)
{
	return (int64_t)r->loop->buf_free - relay_reserve(r) - r->promised;
}

/* Arms a receive that may take no more than the half's mark allows, so its
 * bound holds whatever arrives before the completions are seen (a
 * multishot receive otherwise goes on filling buffers within one batch).
 * A bulk receive takes no more than relay_bulk_room either, which the
 * caller has seen to be at least one buffer. */
static void relay_arm_recv(struct relay *r, struct relay_conn *c, int d)
{
	struct relay_half *h = &c->half[d];
	struct loop *l = r->loop;
	struct io_uring_sqe *sqe = loop_sqe(l);
	uint32_t budget = relay_mark(r, c) - h->queued;

	if (relay_heavy(r, c)) {
		int64_t room = relay_bulk_room(r);
		if (room < 1)
			room = 1;
		if ((uint64_t)budget > (uint64_t)room * l->buf_size)
			budget = (uint32_t)room * l->buf_size;
		h->promised = (uint16_t)((budget + l->buf_size - 1) / l->buf_size);
		r->promised += h->promised;
	}
	io_uring_prep_recv(sqe, c->fd[d], NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = l->bgid;
	if (l->recv_limit) {
		sqe->ioprio |= IORING_RECV_MULTISHOT;
		sqe->file_index = budget; /* the kernel's optlen: liburing 2.3 lacks the name */
	} else {
		sqe->len = budget;
	}
	/* A bundle takes as many buffers as the socket has data for in one
	 * completion: fewer completions and system calls for bulk transfers. */
	if (l->bundles)
		sqe->ioprio |= IORING_RECVSEND_BUNDLE;
	io_uring_sqe_set_data64(sqe, loop_ud(c, r->op.recv[d]));
	h->flags = (uint8_t)((h->flags | H_RECV) & ~(H_STARVED | H_CANCELLING));
	c->inflight++;
}

/* What a completion of half d's receive took from its promise: all of it
 * once the receive has ended. */
static void relay_keep_promise(struct relay *r, struct relay_half *h,
			       const struct io_uring_cqe *cqe)
{
	uint32_t took = h->promised;

	if (cqe->flags & IORING_CQE_F_MORE) {
		uint32_t size = r->loop->buf_size;
		uint32_t bufs = cqe->res > 0 ? ((uint32_t)cqe->res + size - 1) / size : 0;
		took = bufs < took ? bufs : took;
	}
	h->promised = (uint16_t)(h->promised - took);
	r->promised -= took;
}

/* Half d waits for buffers, behind those that waited before it; a light
 * connection (a new request) goes on the list served first. */
static void relay_wait_buffers(struct relay *r, struct relay_conn *c, int d)
{
	c->half[d].flags |= H_STARVED;
	if (!c->starved_listed) {
		c->starved_listed = (uint8_t)(1 + relay_heavy(r, c));
		TAILQ_INSERT_TAIL(&r->starved[c->starved_listed - 1], c, starved_link);
	}
}

/* After a receive has ended without error: receive again unless the queue
 * is full (the send completion re-arms) or the peer has finished. */
/* A receive is armed once the queue is at most half the mark, so that it
 * may take at least half a mark: a bulk transfer pays one re-arm per half
 * mark, not one per buffer as when re-armed with what a send in flight
 * leaves. A half waiting for its hello is armed until the hello is whole. */
static bool relay_may_arm(const struct relay *r, const struct relay_conn *c, int d)
{
	const struct relay_half *h = &c->half[d];
	uint32_t mark = relay_mark(r, c);

	/* Before the server is connected, only a route VIP's client receives. */
	return c->state != S_CLOSING && (c->state == S_RELAYING || d == TO_SERVER) &&
	       !(h->flags & (H_RECV | H_EOF | H_STARVED)) &&
	       (c->state == S_HELLO ? h->queued < mark : h->queued <= mark / 2);
}

static void relay_rearm(struct relay *r, struct relay_conn *c, int d)
{
	if (!relay_may_arm(r, c, d))
		return;
	/* While receives wait for buffers, or only the reserve is left, a bulk
	 * transfer takes its turn behind them rather than take the next ones. */
	if (relay_heavy(r, c) && (relay_starving(r) || relay_bulk_room(r) < 1))
		relay_wait_buffers(r, c, d);
	else
		relay_arm_recv(r, c, d);
}

static void relay_on_eof(struct relay *r, struct relay_conn *c, int d)
{
	if (c->state == S_HANDSHAKE && tls_client_ready(c->tls)) {
		relay_close(r, c, END_CLIENT_CLOSED, 0); /* before any server */
		return;
	}
	if (c->state == S_HELLO || c->state == S_HANDSHAKE) {
		/* closed before its hello or its handshake was complete */
		c->err = ENODATA;
		relay_close(r, c, c->state == S_HELLO ? END_BAD_HELLO : END_TLS_HANDSHAKE, 0);
		return;
	}
	c->half[d].flags |= H_EOF;
	if (c->end == END_NONE)
		c->end = d == TO_SERVER ? END_CLIENT_CLOSED : END_SERVER_CLOSED;
	relay_flush(r, c, d);
}

struct relay_take {
	struct loop *l;
	struct relay_half *h; /* NULL: closing, the data goes nowhere */
};

/* A piece that fits in the space left in the last queued buffer joins it,
 * so a peer sending tiny segments cannot hold a buffer per segment: a half's
 * buffers stay within its byte budget over the buffer size, plus one. A send
 * in flight from that buffer covers only the bytes queued when it was
 * prepared, and half_sent measures against the buffer's current length, so
 * appending behind it is safe. */
static void relay_take_buf(void *arg, uint16_t bid, uint32_t len)
{
	struct relay_take *t = arg;
	struct loop *l = t->l;
	uint16_t tail = t->h ? t->h->tail : LOOP_BUF_NONE;

	if (!t->h) {
		loop_buf_put(l, bid);
	} else if (tail != LOOP_BUF_NONE && l->buf_len[tail] + len <= l->buf_size) {
		memcpy(loop_buf(l, tail) + l->buf_len[tail], loop_buf(l, bid), len);
		l->buf_len[tail] += len;
		t->h->queued += len;
		loop_buf_put(l, bid);
	} else {
		half_push(l, t->h, bid, len);
	}
}

static void relay_on_data(struct relay *r, struct relay_conn *c, int d, struct io_uring_cqe *cqe)
{
	struct relay_half *h = &c->half[d];
	struct relay_take t = {r->loop, c->state == S_CLOSING ? NULL : h};

	if (loop_recv_bufs(r->loop, cqe, relay_take_buf, &t) < 0 && r->loop->bundles) {
		log_warn("worker %d: a receive's buffers were not where the ring said; "
			 "receiving without bundles from now on",
			 r->worker);
		r->loop->bundles = false;
	}
	if (!t.h)
		return;
	if (d == TO_SERVER)
		relay_count(r, c, d, (uint32_t)cqe->res);
	relay_touch(r, c);
	if (c->state == S_HELLO) {
		relay_hello(r, c);
		if (c->state == S_CLOSING)
			return;
	}
	relay_flush(r, c, d);
	/* Buffers ran short after this receive was armed with a larger budget. */
	if (h->queued >= relay_mark(r, c) && (h->flags & H_RECV) && !(h->flags & H_CANCELLING) &&
	    (cqe->flags & IORING_CQE_F_MORE)) {
		h->flags |= H_CANCELLING;
		loop_cancel(r->loop, c, r->op.recv[d]);
	}
}

static void relay_on_recv(struct relay *r, struct relay_conn *c, int d, struct io_uring_cqe *cqe)
{
	struct relay_half *h = &c->half[d];
	int res = cqe->res;

	if (h->promised)
		relay_keep_promise(r, h, cqe);
	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		h->flags &= (uint8_t) ~(H_RECV | H_CANCELLING);
		c->inflight--;
	}
	if (res > 0)
		relay_on_data(r, c, d, cqe);
	if (c->state == S_CLOSING)
		;
	else if (res == 0)
		relay_on_eof(r, c, d);
	else if (res == -ENOBUFS) {
		r->loop->stats.enobufs++;
		relay_wait_buffers(r, c, d);
	} else if (res == -EINVAL && r->loop->recv_limit && !(h->flags & H_RECV)) {
		/* A kernel older than 6.16 refuses a multishot receive's byte
		 * limit: receive one completion at a time instead. */
		log_info("worker %d: this kernel cannot limit a multishot receive; receiving "
			 "single-shot",
			 r->worker);
		r->loop->recv_limit = false;
		relay_rearm(r, c, d);
	} else if (res < 0 && res != -ECANCELED)
		relay_close(r, c, d == C_CLIENT ? END_CLIENT_RESET : END_SERVER_RESET,
			    1u << (1 - d));
	else if (!(cqe->flags & IORING_CQE_F_MORE))
		relay_rearm(r, c, d);
	relay_maybe_free(r, c);
}

/* ---- sending ---- */

/* ---- tls = terminate: the TLS layer between receive and send ---- */

static void relay_tls_fail(struct relay *r, struct relay_conn *c)
{
	/* The alert tells the client why, unless other bytes are on their way. */
	if (!(c->half[TO_CLIENT].flags & H_SENDING))
		tls_send_alert(c->tls, C_CLIENT, c->fd[C_CLIENT]);
	relay_close(r, c, tls_handshake_failed(c->tls) ? END_TLS_HANDSHAKE : END_TLS_ERROR, 0);
}

/* Hands half d's queued buffers to the TLS layer, as much as it takes. */
static int relay_tls_feed(struct relay *r, struct relay_conn *c, int d)
{
	struct relay_half *h = &c->half[d];
	struct loop *l = r->loop;

	while (h->head != LOOP_BUF_NONE) {
		uint32_t left = l->buf_len[h->head] - h->head_off;
		int n = tls_input(c->tls, d, loop_buf(l, h->head) + h->head_off, left);
		if (n <= 0)
			return n;
		h->head_off += (uint32_t)n;
		h->queued -= (uint32_t)n;
		if (h->head_off == l->buf_len[h->head])
			half_pop(l, h);
	}
	return 0;
}

/* Sends what the TLS layer has for half d's destination; once the source
 * has finished (FIN or close_notify) and all is sent, relays the end: a
 * close_notify first when the destination speaks TLS, then SHUT_WR. */
static int relay_tls_send(struct relay *r, struct relay_conn *c, int d)
{
	struct relay_half *h = &c->half[d];
	const unsigned char *p;
	size_t n;
	int ret;

	if (h->flags & (H_SENDING | H_SHUT))
		return 0;
	/* No server yet: only the client's handshake moves; what the client
	 * sends after it waits, encrypted, until the server is connected (and,
	 * with server_tls, its own TLS is ready to take it). */
	if (c->state == S_HANDSHAKE && d == TO_SERVER)
		return tls_handshake(c->tls, C_CLIENT);
	if ((ret = tls_output(c->tls, d, &p, &n)) < 0)
		return ret;
	if (n == 0 && tls_closed(c->tls, d) && !(h->flags & H_EOF)) {
		h->flags |= H_EOF;
		if (c->end == END_NONE)
			c->end = d == TO_SERVER ? END_CLIENT_CLOSED : END_SERVER_CLOSED;
	}
	bool done = (h->flags & H_EOF) && h->head == LOOP_BUF_NONE;
	if (n == 0 && done && tls_finish(c->tls, d) && (ret = tls_output(c->tls, d, &p, &n)) < 0)
		return ret;
	if (n) {
		struct io_uring_sqe *sqe = loop_sqe(r->loop);
		io_uring_prep_send(sqe, c->fd[1 - d], p, n, MSG_NOSIGNAL);
		io_uring_sqe_set_data64(sqe, loop_ud(c, r->op.send[d]));
		h->flags |= H_SENDING;
		c->inflight++;
	} else if (done) {
		shutdown(c->fd[1 - d], SHUT_WR);
		h->flags |= H_SHUT;
		relay_check_done(r, c);
	}
	return 0;
}

/* The client's handshake is through. The server is connected once the
 * client sends more, or relay_defer_ts later when it stays silent (the
 * server speaks first): a client that finishes its handshake and goes (a
 * probe, a handshake benchmark, a check of the VIP) costs the server
 * nothing, as with HAProxy. */
static void relay_handshake_done(struct relay *r, struct relay_conn *c)
{
	if (c->defer == 2 || tls_client_sent(c->tls) || c->half[TO_SERVER].head != LOOP_BUF_NONE) {
		c->state = S_CONNECTING;
		relay_connect(r, c);
	} else if (!c->defer) {
		struct io_uring_sqe *sqe = loop_sqe(r->loop);
		io_uring_prep_timeout(sqe, (struct __kernel_timespec *)&relay_defer_ts, 0, 0);
		io_uring_sqe_set_data64(sqe, loop_ud(c, r->op.defer));
		c->defer = 1;
		c->inflight++;
	}
}

/* Moves everything that can move, in both directions: progress in one (a
 * handshake message read) often makes output for the other. */
static void relay_tls_pump(struct relay *r, struct relay_conn *c)
{
	for (int pass = 0; pass < 2; pass++)
		for (int d = 0; d < 2; d++) {
			if (relay_tls_feed(r, c, d) < 0 || relay_tls_send(r, c, d) < 0) {
				relay_tls_fail(r, c);
				return;
			}
			if (c->state == S_CLOSING)
				return;
		}
	for (int d = 0; d < 2; d++)
		relay_rearm(r, c, d);
	if (c->in_hello && tls_client_ready(c->tls))
		relay_hello_done(r, c);
	if (c->state == S_HANDSHAKE && tls_client_ready(c->tls))
		relay_handshake_done(r, c);
}

/* Should the server connection end with a reset rather than our FIN? When
 * the server closed first, a FIN from us would leave its side in TIME_WAIT
 * for a minute, holding the 4-tuple of our SNAT address and port: a later
 * connection that reuses the port then meets that TIME_WAIT, which may drop
 * its SYN (PAWS), and the retransmit costs a second. That is how new
 * connection rates through a SNAT address collapse under sustained load. A
 * reset leaves nothing behind; it is safe once the server has finished
 * sending and has acknowledged all we sent (what it has not read yet stays
 * readable to it). */
static bool relay_server_done(struct relay_conn *c)
{
	int unacked = 1;

	if (!(c->half[TO_CLIENT].flags & H_SHUT))
		return false;
	return ioctl(c->fd[C_SERVER], SIOCOUTQ, &unacked) == 0 && unacked == 0;
}

/* The queue's first buffers as iovecs; returns how many (at least one). */
static int relay_gather(struct loop *l, struct relay_half *h)
{
	uint32_t off = h->head_off;
	int n = 0;

	for (uint16_t b = h->head; b != LOOP_BUF_NONE && n < RELAY_IOV; b = l->buf_next[b]) {
		h->iov[n].iov_base = loop_buf(l, b) + off;
		h->iov[n].iov_len = l->buf_len[b] - off;
		off = 0;
		n++;
	}
	return n;
}

/* A send completed with `sent` bytes: the buffers wholly sent go back. */
static void half_sent(struct loop *l, struct relay_half *h, uint32_t sent)
{
	h->queued -= sent;
	while (sent) {
		uint32_t left = l->buf_len[h->head] - h->head_off;
		if (sent < left) {
			h->head_off += sent;
			return;
		}
		sent -= left;
		half_pop(l, h);
	}
}

static void relay_flush(struct relay *r, struct relay_conn *c, int d)
{
	if (c->state == S_RELAYING || c->state == S_HANDSHAKE)
		relay_xprts[c->xprt].flush(r, c, d);
}

static void relay_raw_flush(struct relay *r, struct relay_conn *c, int d)
{
	struct relay_half *h = &c->half[d];
	struct loop *l = r->loop;

	if (h->flags & H_SENDING)
		return;
	if (h->head != LOOP_BUF_NONE) {
		struct io_uring_sqe *sqe = loop_sqe(l);
		int n = relay_gather(l, h);
		/* Several queued buffers (a receive bundle's, say) go in one
		 * sendmsg: one request and one completion instead of one each. */
		if (n == 1) {
			io_uring_prep_send(sqe, c->fd[1 - d], h->iov[0].iov_base, h->iov[0].iov_len,
					   MSG_NOSIGNAL);
		} else {
			h->msg = (struct msghdr){.msg_iov = h->iov, .msg_iovlen = (size_t)n};
			io_uring_prep_sendmsg(sqe, c->fd[1 - d], &h->msg, MSG_NOSIGNAL);
		}
		io_uring_sqe_set_data64(sqe, loop_ud(c, r->op.send[d]));
		h->flags |= H_SENDING;
		c->inflight++;
		return;
	}
	if ((h->flags & (H_EOF | H_SHUT)) == H_EOF) {
		if (d == TO_SERVER && relay_server_done(c)) {
			relay_close(r, c, c->end, 1u << C_SERVER);
			return;
		}
		shutdown(c->fd[1 - d], SHUT_WR);
		h->flags |= H_SHUT;
		relay_check_done(r, c);
	}
}

static void relay_on_send(struct relay *r, struct relay_conn *c, int d, struct io_uring_cqe *cqe)
{
	struct relay_half *h = &c->half[d];
	struct loop *l = r->loop;

	c->inflight--;
	h->flags &= (uint8_t)~H_SENDING;
	if (c->state == S_CLOSING) {
		half_drop(l, h);
		relay_maybe_free(r, c);
		return;
	}
	if (d == TO_CLIENT && cqe->res > 0)
		relay_count(r, c, d, (uint32_t)cqe->res);
	if (cqe->res < 0)
		/* The receiver of this half is gone: reset the sender. */
		relay_close(r, c, d == TO_SERVER ? END_SERVER_RESET : END_CLIENT_RESET, 1u << d);
	else
		relay_xprts[c->xprt].sent(r, c, d, (uint32_t)cqe->res);
	relay_maybe_free(r, c);
}

/* What was sent leaves the queue; its buffers go back to the kernel. */
static void relay_raw_sent(struct relay *r, struct relay_conn *c, int d, uint32_t n)
{
	half_sent(r->loop, &c->half[d], n);
	relay_touch(r, c);
	relay_flush(r, c, d);
	relay_rearm(r, c, d);
}

static int relay_raw_connected(struct relay *r, struct relay_conn *c)
{
	(void)r;
	(void)c;
	return 0;
}

static void relay_raw_end(struct relay_conn *c, int why)
{
	(void)c;
	(void)why;
}

/* The TLS layer keeps what it sent until told; the buffers it read from
 * went back as it took them (relay_tls_feed). */
static void relay_tls_sent(struct relay *r, struct relay_conn *c, int d, uint32_t n)
{
	tls_sent(c->tls, d, n);
	relay_touch(r, c);
	relay_flush(r, c, d);
}

/* Either direction's progress can make output for the other. */
static void relay_tls_flush(struct relay *r, struct relay_conn *c, int d)
{
	(void)d;
	relay_tls_pump(r, c);
}

/* server_tls: TLS toward the server too, from its first byte. */
static int relay_tls_connected(struct relay *r, struct relay_conn *c)
{
	if (!c->vip->cfg->server_tls)
		return 0;
	return tls_conn_server(c->tls, r->worker, c->server, &c->pool->cfg->servers[c->server]);
}

static void relay_tls_end(struct relay_conn *c, int why)
{
	tls_conn_end(c->tls, why == END_HANDSHAKE_TIMEOUT);
}

/* A route VIP's connections name the SNI that chose their pool. */
static void relay_raw_describe(const struct relay_conn *c, char *buf, size_t len)
{
	if (c->vip->cfg->tls == CONFIG_TLS_ROUTE)
		snprintf(buf, len, " sni=%s", c->sni ? c->sni : "-");
}

static const char *relay_raw_sni(const struct relay_conn *c)
{
	return c->sni;
}

static void relay_tls_describe(const struct relay_conn *c, char *buf, size_t len)
{
	tls_describe(c->tls, buf, len);
}

static const char *relay_tls_sni(const struct relay_conn *c)
{
	return tls_sni(c->tls);
}

static const struct relay_xprt relay_xprts[2] = {
    [XPRT_RAW] = {relay_raw_flush, relay_raw_sent, relay_raw_connected, relay_raw_end,
		  relay_raw_describe, relay_raw_sni, END_HELLO_TIMEOUT},
    [XPRT_TLS] = {relay_tls_flush, relay_tls_sent, relay_tls_connected, relay_tls_end,
		  relay_tls_describe, relay_tls_sni, END_HANDSHAKE_TIMEOUT},
};

/* ---- connecting to a server ---- */

static void relay_server_addr(struct relay_conn *c, int s, union addr_sa *out)
{
	memcpy(out, &c->pool->cfg->servers[s].addr, sizeof(*out));
	if (addr_port(&out->sa) == 0)
		addr_set_port(&out->sa, ntohs(c->port));
}

static void relay_connected(struct relay *r, struct relay_conn *c)
{
	c->state = S_RELAYING;
	/* A failed first connect's end and errno are kept in retry_end and
	 * retry_err: the connection's own end is yet to come. */
	c->end = END_NONE;
	c->err = 0;
	atomic_fetch_add(&c->pool->stats[c->server].conns, 1);
	budget_count(c->vip, (int)(c->pool - c->gen->rt->pools), c->server, c->snat_idx, true);
	health_passive(c->pool, c->server, true, 0);
	if (relay_xprts[c->xprt].connected(r, c) < 0) {
		relay_close(r, c, END_INTERNAL, (1u << C_CLIENT) | (1u << C_SERVER));
		return;
	}
	if (c->vip->cfg->snat == CONFIG_SNAT_OFF) {
		c->snat = c->client;
		c->snat_set = 1;
	} else if (c->gen->rt->cfg->log_connections) {
		socklen_t len = sizeof(c->snat);
		c->snat_set = getsockname(c->fd[C_SERVER], &c->snat.sa, &len) == 0;
	}
	relay_touch(r, c);
	/* A route VIP's client may be receiving already, with its hello queued
	 * (relay_rearm arms only what is not armed). */
	relay_rearm(r, c, TO_SERVER);
	relay_rearm(r, c, TO_CLIENT);
	relay_flush(r, c, TO_SERVER);
}

static enum relay_end relay_connect_end(int res)
{
	switch (res) {
	case -ECANCELED:
	case -ETIMEDOUT:
		return END_CONNECT_TIMEOUT;
	case -ECONNREFUSED:
		return END_CONNECT_REFUSED;
	default:
		return END_CONNECT_ERROR;
	}
}

/* The metrics count failed connects by cause. */
static _Atomic uint64_t *relay_fail_counter(struct runtime_server_stats *st, enum relay_end end)
{
	if (end == END_CONNECT_REFUSED)
		return &st->fail_refused;
	if (end == END_CONNECT_TIMEOUT)
		return &st->fail_timeout;
	return &st->fail_error;
}

static void relay_connect_failed(struct relay *r, struct relay_conn *c, int res)
{
	struct runtime_pool *p = c->pool;
	union addr_sa sa;

	close(c->fd[C_SERVER]);
	c->fd[C_SERVER] = -1;
	c->snat.sa.sa_family = 0;
	if (res == -EADDRNOTAVAIL && c->vip->cfg->snat == CONFIG_SNAT_POOL &&
	    ++c->snat_tries < c->vip->cfg->nsnat) {
		/* That source address has no port left: same server, next one. */
		snat_exhausted(c->vip, c->snat_idx);
		c->snat_idx = (uint8_t)((c->snat_idx + 1) % c->vip->cfg->nsnat);
		relay_connect(r, c);
		return;
	}
	relay_server_addr(c, c->server, &sa);
	bool timeout = res == -ECANCELED || res == -ETIMEDOUT;
	if (timeout)
		snat_transparent_hint(c->vip, &sa.sa);
	atomic_fetch_add(&p->stats[c->server].connect_fail, 1);
	/* Without SNAT, a connect that times out says more about where the
	 * client is (the server's answer went straight to it) than about the
	 * server: it must not take the server out for every other client. No
	 * source port left (EADDRNOTAVAIL) is this host's budget, not the
	 * server's fault either. */
	if (!(timeout && c->vip->cfg->snat == CONFIG_SNAT_OFF) && res != -EADDRNOTAVAIL)
		health_passive(p, c->server, false, res);
	c->failed = c->server;
	balance_release(&p->bal, c->server);
	c->server = -1;
	c->end = relay_connect_end(res);
	c->err = c->end == END_CONNECT_ERROR ? (uint8_t)-res : 0;
	atomic_fetch_add(relay_fail_counter(&p->stats[c->failed], c->end), 1);
	if (c->tries < 2) {
		atomic_fetch_add(&p->stats[c->failed].retries, 1);
		c->retry_end = c->end;
		c->retry_err = c->err;
		relay_connect(r, c);
		return;
	}
	relay_close(r, c, c->end, 1u << C_CLIENT);
}

static void relay_on_connect(struct relay *r, struct relay_conn *c, struct io_uring_cqe *cqe)
{
	c->inflight--;
	if (c->state == S_CLOSING) {
		relay_maybe_free(r, c);
		return;
	}
	if (cqe->res == 0)
		relay_connected(r, c);
	else
		relay_connect_failed(r, c, cqe->res);
	relay_maybe_free(r, c);
}

static void relay_submit_connect(struct relay *r, struct relay_conn *c, const union addr_sa *sa)
{
	struct io_uring_sqe *sqe = loop_sqe(r->loop);
	io_uring_prep_connect(sqe, c->fd[C_SERVER], &sa->sa, addr_len(&sa->sa));
	sqe->flags |= IOSQE_IO_LINK;
	io_uring_sqe_set_data64(sqe, loop_ud(c, r->op.connect));
	sqe = loop_sqe(r->loop);
	io_uring_prep_link_timeout(sqe, &c->vip->connect_ts, 0);
	io_uring_sqe_set_data64(sqe, loop_ud(c, r->op.connect_timeout));
	c->inflight += 2;
}

/* A few descriptors each worker keeps open on /dev/null. One accept can
 * take every free descriptor in a burst, before any of those connections
 * has opened its server socket: each would then wait for a descriptor that
 * only another's end could free, and none would ever end. A spare given up
 * lets a connection go on, end, and give two back; spares are taken again
 * before accepting resumes. */
static bool relay_spares_fill(struct relay *r)
{
	while (r->nspare < RELAY_SPARE_FDS) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return false;
		r->spare[r->nspare++] = fd;
	}
	return true;
}

/* A server socket that found no descriptor, with a spare given up for it. */
static int relay_socket_spare(struct relay *r, struct relay_conn *c)
{
	if (!r->nspare)
		return -EMFILE;
	close(r->spare[--r->nspare]);
	return snat_socket(c->vip, &c->client.sa, &c->snat.sa, c->snat_idx);
}

/* No descriptor for the server socket: the connection waits (its server
 * chosen and counted) until this worker frees one or the next tick, for at
 * most timeout_connect from its accept; new clients wait in the backlog
 * meanwhile (relay_on_accept pauses). */
static void relay_wait_fd(struct relay *r, struct relay_conn *c)
{
	if (!c->fd_waiting)
		atomic_fetch_add(&r->rt->root->nofile_waits, 1);
	c->fd_waiting = 1;
	TAILQ_INSERT_TAIL(&r->fdwait, c, fdwait_link);
	atomic_fetch_add(&r->rt->root->nofile_waiting, 1);
}

/* Picks a server (never the one that just failed) and starts connecting. */
static void relay_connect(struct relay *r, struct relay_conn *c)
{
	struct runtime_pool *p = c->pool;
	int fd;

	if (c->server < 0) {
		int s = balance_pick(&p->bal, balance_hash_addr(&c->client.sa), c->failed);
		if (s < 0) {
			relay_close(r, c, c->tries ? c->end : END_NO_SERVER, 1u << C_CLIENT);
			return;
		}
		c->server = (int16_t)s;
		c->tries++;
		c->snat_tries = 0;
		if (c->vip->cfg->nsnat)
			c->snat_idx = (uint8_t)(r->snat_cursor++ % (unsigned)c->vip->cfg->nsnat);
	}
	/* The kernel reads the address when the request is issued, after this
	 * returns: it lives in the connection until the connect completes. */
	c->snat_set = 0;
	relay_server_addr(c, c->server, &c->snat);
	fd = snat_socket(c->vip, &c->client.sa, &c->snat.sa, c->snat_idx);
	if (fd == -EMFILE)
		fd = relay_socket_spare(r, c);
	if (relay_nofile(fd)) {
		relay_wait_fd(r, c);
		return;
	}
	if (fd < 0) { /* snat_socket has logged what failed, with the address */
		c->err = (uint8_t)-fd;
		relay_close(r, c, END_INTERNAL, 1u << C_CLIENT);
		return;
	}
	c->fd[C_SERVER] = fd;
	relay_submit_connect(r, c, &c->snat);
}

/* ---- tls = route: the pool chosen by the ClientHello's SNI ---- */

static void relay_wait_hello(struct relay *r, struct relay_conn *c)
{
	c->state = S_HELLO;
	c->in_hello = 1;
	TAILQ_INSERT_TAIL(relay_list(c), c, lru_link);
	relay_arm_recv(r, c, TO_SERVER);
}

/* The first bytes of the client's queue in one piece (at most TLSHELLO_MAX). */
static const unsigned char *hello_bytes(struct relay *r, struct relay_half *h, size_t *len)
{
	struct loop *l = r->loop;
	size_t n = 0;

	if (h->head == h->tail) {
		*len = l->buf_len[h->head];
		return loop_buf(l, h->head);
	}
	for (uint16_t b = h->head; b != LOOP_BUF_NONE && n < TLSHELLO_MAX; b = l->buf_next[b]) {
		size_t k = l->buf_len[b] < TLSHELLO_MAX - n ? l->buf_len[b] : TLSHELLO_MAX - n;
		memcpy(r->scratch + n, loop_buf(l, b), k);
		n += k;
	}
	*len = n;
	return r->scratch;
}

/* In the connection's own generation: a route's pool is an index into its
 * configuration's pools, and only that generation is held while the
 * connection lives (a reload may have come since the accept). */
static struct runtime_pool *hello_pool(struct relay_conn *c)
{
	const struct config_vip *v = c->vip->cfg;
	int i = tlshello_route(v->routes, v->nroutes, c->sni);

	return i < 0 ? c->vip->pool : &c->gen->rt->pools[v->routes[i].pool];
}

/* Data has come while waiting for the hello: once it is complete, choose the
 * pool and connect; the hello stays queued and goes to the server first. */
static void relay_hello(struct relay *r, struct relay_conn *c)
{
	struct relay_half *h = &c->half[TO_SERVER];
	char sni[TLSHELLO_SNI_MAX];
	size_t len, need = 0;

	if (h->queued < c->hello_need)
		return;
	const unsigned char *p = hello_bytes(r, h, &len);
	int ret = tlshello_parse(p, len, sni, &need);
	if (ret == -EAGAIN) {
		c->hello_need = (uint16_t)need;
		return;
	}
	if (ret < 0) {
		c->err = (uint8_t)-ret;
		relay_close(r, c, END_BAD_HELLO, 1u << C_CLIENT);
		return;
	}
	if (sni[0])
		c->sni = strdup(sni);
	c->pool = hello_pool(c);
	c->state = S_CONNECTING;
	relay_hello_done(r, c);
	relay_connect(r, c);
}

/* ---- tls = terminate: the client's handshake first ---- */

/* The server is chosen and connected once the client's handshake is done
 * (relay_tls_pump), as HAProxy does: a failed or abandoned handshake (a
 * scanner, a client refusing the certificate) costs no server connection
 * and shows in no server's counters, and a handshake does not wait for a
 * server's accept. */
static void relay_wait_handshake(struct relay *r, struct relay_conn *c)
{
	c->state = S_HANDSHAKE;
	c->in_hello = 1;
	TAILQ_INSERT_TAIL(relay_list(c), c, lru_link);
	if (!(c->tls = tls_conn_new(&c->vip->tls))) {
		relay_close(r, c, END_INTERNAL, 1u << C_CLIENT);
		return;
	}
	c->xprt = XPRT_TLS;
	relay_arm_recv(r, c, TO_SERVER);
}

/* ---- accepting ---- */

static void relay_accepted(struct relay *r, struct relay_listener *ls, int fd)
{
	struct relay_conn *c = calloc(1, sizeof(*c));
	socklen_t len = sizeof(union addr_sa);

	if (!c || getpeername(fd, &c->client.sa, &len) < 0) {
		free(c);
		close(fd);
		atomic_fetch_sub(&r->rt->root->live, 1);
		return;
	}
	r->nconns++;
	TAILQ_INSERT_TAIL(&r->all, c, all_link);
	c->gen = LIST_FIRST(&r->gens);
	c->gen->nconns++;
	c->fd[C_CLIENT] = fd;
	c->fd[C_SERVER] = -1;
	c->server = c->failed = -1;
	c->vip = ls->vip;
	c->pool = ls->vip->pool;
	c->port = ls->port;
	c->start_ms = c->last_ms = r->loop->now_ms;
	for (int d = 0; d < 2; d++)
		c->half[d].head = c->half[d].tail = LOOP_BUF_NONE;
	r->live++;
	atomic_fetch_add(&c->vip->conns, 1);
	atomic_fetch_add(&c->vip->active, 1);
	if (c->vip->cfg->tls == CONFIG_TLS_ROUTE) {
		relay_wait_hello(r, c);
	} else if (c->vip->cfg->tls == CONFIG_TLS_TERMINATE) {
		relay_wait_handshake(r, c);
	} else {
		TAILQ_INSERT_TAIL(relay_list(c), c, lru_link);
		relay_connect(r, c);
	}
	relay_maybe_free(r, c);
}

static void relay_log_pause(struct relay *r, struct relay_listener *ls, enum runtime_pause why)
{
	struct runtime *root = r->rt->root;
	unsigned long suppressed;

	if (why == RUNTIME_PAUSE_MAXCONN && log_ratelimit(&root->rl_maxconn, 10000, &suppressed))
		log_warn("max_connections (%d) reached: vip %s stops accepting until connections "
			 "end; new clients wait in the backlog (%lu more since last message)",
			 r->rt->max_connections, ls->vip->cfg->name, suppressed);
	if (why == RUNTIME_PAUSE_NOFILE && log_ratelimit(&root->rl_nofile, 10000, &suppressed))
		log_warn("worker %d: out of file descriptors with %d connection(s) open: vip %s "
			 "stops accepting until descriptors are freed; raise LimitNOFILE= or "
			 "lower max_connections (%lu more since last message)",
			 r->worker, r->live, ls->vip->cfg->name, suppressed);
}

/* Stops accepting on a listener for a while. The clients that connect
 * meanwhile wait in the kernel's backlog; relay_resume starts again. */
static void relay_pause(struct relay *r, struct relay_listener *ls, enum runtime_pause why)
{
	if (ls->paused || ls->fd < 0 || ls->stopping)
		return;
	ls->paused = (uint8_t)(1 + why);
	if (ls->armed)
		loop_cancel(r->loop, ls, r->op.accept);
	LIST_INSERT_HEAD(&r->paused, ls, pause_link);
	if (why == RUNTIME_PAUSE_NOFILE) {
		r->nofile_retry_ms = r->loop->now_ms + RELAY_NOFILE_RETRY_MS;
		atomic_store(&r->rt->root->nofile_scarce_ms, r->loop->now_ms + RELAY_SCARCE_MS);
	}
	atomic_fetch_add(&r->rt->root->paused[why], 1);
	relay_log_pause(r, ls, why);
}

/* Takes what the listener's queue holds, without waiting. */
static void relay_drain_queue(struct relay *r, struct relay_listener *ls)
{
	for (;;) {
		int fd = accept4(ls->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			atomic_fetch_add(&r->rt->root->live, 1);
			relay_accepted(r, ls, fd);
		} else if (errno != ECONNABORTED && errno != EINTR) {
			return;
		}
	}
}

/* The kernel completes handshakes for a listener on its own: closing it
 * resets the connections waiting in its queue, which the client saw
 * connected and the proxy never logged. So the last accept request ends
 * first (no completion can come after the close), the listener stops
 * taking new SYNs, and its queue is taken until no handshake it had begun
 * has completed for RELAY_SETTLE_MS (one round trip is enough; the rest is
 * for a loaded machine): a client whose handshake completes between the
 * last accept and the close would be reset unlogged, and a worker taken
 * off the CPU there made that window milliseconds wide. */
static void relay_drain_close(struct relay *r, struct relay_listener *ls)
{
	struct pollfd p = {.fd = ls->fd, .events = POLLIN};
	int rounds = RELAY_SETTLE_ROUNDS;

	if (fcntl(ls->fd, F_SETFL, O_NONBLOCK) == 0) {
		bool settle = listener_refuse_new(ls->fd) == 0;
		do
			relay_drain_queue(r, ls);
		while (settle && --rounds > 0 && poll(&p, 1, RELAY_SETTLE_MS) > 0);
	}
	close(ls->fd);
	ls->fd = -1;
}

static void relay_on_accept(void *ctx, void *owner, struct io_uring_cqe *cqe)
{
	struct relay *r = ctx;
	struct relay_listener *ls = owner;
	unsigned long suppressed;
	int res = cqe->res;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		ls->armed = false;
	if (res >= 0 && ls->retired) {
		close(res); /* accepted just before a reload removed its address */
	} else if (res >= 0) {
		int live = atomic_fetch_add(&r->rt->root->live, 1) + 1;
		relay_accepted(r, ls, res);
		/* Connections still waiting for a descriptor, in any worker,
		 * go first. */
		if (atomic_load_explicit(&r->rt->root->nofile_waiting, memory_order_relaxed) > 0)
			relay_pause(r, ls, RUNTIME_PAUSE_NOFILE);
		else if (live >= r->rt->max_connections)
			relay_pause(r, ls, RUNTIME_PAUSE_MAXCONN);
	} else if (relay_nofile(res)) {
		relay_pause(r, ls, RUNTIME_PAUSE_NOFILE);
	} else if (res != -ECANCELED && log_ratelimit(&ls->vip->rl_accept, 10000, &suppressed)) {
		log_warn("vip %s: accept failed: %s (%lu more since last message)",
			 ls->vip->cfg->name, strerror(-res), suppressed);
	}
	if (!ls->armed && ls->stopping && ls->fd >= 0)
		relay_drain_close(r, ls);
	else if (!ls->armed && !ls->paused && ls->fd >= 0)
		relay_listen(r, ls);
	else if (ls->armed && ls->multishot && !ls->paused && !ls->stopping &&
		 relay_accept_scarce(r)) {
		ls->multishot = false; /* its last completion re-arms, one at a time */
		loop_cancel(r->loop, ls, r->op.accept);
	}
}

void relay_listen(struct relay *r, struct relay_listener *ls)
{
	struct io_uring_sqe *sqe = loop_sqe(r->loop);

	ls->multishot = !relay_accept_scarce(r);
	if (ls->multishot)
		io_uring_prep_multishot_accept(sqe, ls->fd, NULL, NULL, SOCK_CLOEXEC);
	else
		io_uring_prep_accept(sqe, ls->fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, loop_ud(ls, r->op.accept));
	ls->armed = true;
}

static void relay_unpause(struct relay_listener *ls)
{
	if (ls->paused) /* then it is on the list */
		LIST_REMOVE(ls, pause_link);
	ls->paused = 0;
}

void relay_unlisten(struct relay *r, struct relay_listener *ls)
{
	if (ls->fd < 0)
		return;
	if (ls->paused)
		relay_unpause(ls);
	if (ls->armed)
		loop_cancel(r->loop, ls, r->op.accept);
	close(ls->fd);
	ls->fd = -1;
}

void relay_stop_listen(struct relay *r, struct relay_listener *ls)
{
	if (ls->fd < 0 || ls->stopping)
		return;
	ls->stopping = true;
	if (ls->paused)
		relay_unpause(ls);
	if (ls->armed) /* its last completion drains the queue (relay_on_accept) */
		loop_cancel(r->loop, ls, r->op.accept);
	else
		relay_drain_close(r, ls);
}

/* ---- completion handlers ---- */

static void relay_on_connect_cqe(void *ctx, void *owner, struct io_uring_cqe *cqe)
{
	relay_on_connect(ctx, owner, cqe);
}

static void relay_on_connect_timeout(void *ctx, void *owner, struct io_uring_cqe *cqe)
{
	struct relay *r = ctx;
	struct relay_conn *c = owner;
	(void)cqe;
	c->inflight--;
	relay_maybe_free(r, c);
}

static void relay_on_defer(void *ctx, void *owner, struct io_uring_cqe *cqe)
{
	struct relay *r = ctx;
	struct relay_conn *c = owner;
	(void)cqe;
	c->inflight--;
	c->defer = 2;
	if (c->state == S_HANDSHAKE)
		relay_handshake_done(r, c);
	relay_maybe_free(r, c);
}

static void relay_on_recv_client(void *ctx, void *owner, struct io_uring_cqe *cqe)
{
	relay_on_recv(ctx, owner, TO_SERVER, cqe);
}

static void relay_on_recv_server(void *ctx, void *owner, struct io_uring_cqe *cqe)
{
	relay_on_recv(ctx, owner, TO_CLIENT, cqe);
}

static void relay_on_send_server(void *ctx, void *owner, struct io_uring_cqe *cqe)
{
	relay_on_send(ctx, owner, TO_SERVER, cqe);
}

static void relay_on_send_client(void *ctx, void *owner, struct io_uring_cqe *cqe)
{
	relay_on_send(ctx, owner, TO_CLIENT, cqe);
}

/* ---- worker-level ---- */

LOOP_OWNER(struct relay_conn);
LOOP_OWNER(struct relay_listener);

static int relay_register(struct relay *r, struct loop *l)
{
	const struct {
		int *op;
		loop_handler fn;
	} ops[] = {
	    {&r->op.accept, relay_on_accept},
	    {&r->op.connect, relay_on_connect_cqe},
	    {&r->op.connect_timeout, relay_on_connect_timeout},
	    {&r->op.defer, relay_on_defer},
	    {&r->op.recv[TO_SERVER], relay_on_recv_client},
	    {&r->op.recv[TO_CLIENT], relay_on_recv_server},
	    {&r->op.send[TO_SERVER], relay_on_send_server},
	    {&r->op.send[TO_CLIENT], relay_on_send_client},
	};

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		*ops[i].op = loop_register(l, ops[i].fn, r);
		if (*ops[i].op < 0) {
			relay_free(r);
			return *ops[i].op;
		}
	}
	return 0;
}

int relay_init(struct relay *r, struct loop *l, struct runtime *rt, int worker)
{
	const struct config *cfg = rt->cfg;

	memset(r, 0, sizeof(*r));
	r->loop = l;
	r->rt = rt;
	r->worker = worker;
	TAILQ_INIT(&r->starved[0]);
	TAILQ_INIT(&r->starved[1]);
	TAILQ_INIT(&r->fdwait);
	TAILQ_INIT(&r->all);
	relay_spares_fill(r);
	/* Four buffers a half keep one send in flight and the next ready; the
	 * sockets' own buffers do the rest. */
	r->high_mark = 4 * cfg->buffer_size;
	struct relay_gen *g = relay_gen_new(rt);
	if (g)
		LIST_INSERT_HEAD(&r->gens, g, link);
	r->scratch = malloc(TLSHELLO_MAX);
	if (!g || !r->scratch) {
		relay_free(r);
		return -ENOMEM;
	}
	return relay_register(r, l);
}

struct relay_gen *relay_gen_new(struct runtime *rt)
{
	struct relay_gen *g = calloc(1, sizeof(*g));

	if (g) {
		g->lru = calloc((size_t)rt->cfg->nvips, sizeof(*g->lru));
		g->hello = calloc((size_t)rt->cfg->nvips, sizeof(*g->hello));
	}
	if (!g || !g->lru || !g->hello) {
		relay_gen_discard(g);
		return NULL;
	}
	for (int v = 0; v < rt->cfg->nvips; v++) {
		TAILQ_INIT(&g->lru[v]);
		TAILQ_INIT(&g->hello[v]);
	}
	g->rt = rt;
	return g;
}

void relay_gen_discard(struct relay_gen *g)
{
	if (!g)
		return;
	free(g->lru);
	free(g->hello);
	free(g);
}

static void relay_gen_release(struct relay_gen *g)
{
	atomic_fetch_sub(&g->rt->refs, 1);
	relay_gen_discard(g);
}

void relay_switch(struct relay *r, struct relay_gen *g)
{
	LIST_INSERT_HEAD(&r->gens, g, link);
	r->rt = g->rt;
}

/* Older generations whose last connection of this worker is gone. */
static void relay_gen_sweep(struct relay *r)
{
	struct relay_gen *g = LIST_NEXT(LIST_FIRST(&r->gens), link), *next;

	for (; g; g = next) {
		next = LIST_NEXT(g, link);
		if (g->nconns > 0)
			continue;
		LIST_REMOVE(g, link);
		relay_gen_release(g);
	}
}

void relay_free(struct relay *r)
{
	struct relay_gen *g;

	while ((g = LIST_FIRST(&r->gens))) {
		LIST_REMOVE(g, link);
		relay_gen_release(g);
	}
	free(r->scratch);
	r->scratch = NULL;
	while (r->nspare)
		close(r->spare[--r->nspare]);
}

/* Arms the receives of one list's waiting connections while buffers are
 * left for them: light ones while `free` stays above what those just armed
 * may take (under pressure a receive takes at most about two buffers),
 * bulk ones while relay_bulk_room has a buffer to promise. */
static void relay_unstarve_list(struct relay *r, struct relay_conn_list *q, bool bulk)
{
	uint32_t armed = 0;

	while (!TAILQ_EMPTY(q) &&
	       (bulk ? relay_bulk_room(r) >= 1 : r->loop->buf_free > 2 * armed)) {
		struct relay_conn *c = TAILQ_FIRST(q);
		starved_remove(r, c);
		for (int d = 0; d < 2; d++) {
			if (!(c->half[d].flags & H_STARVED))
				continue;
			c->half[d].flags &= (uint8_t)~H_STARVED;
			if (relay_may_arm(r, c, d)) {
				relay_arm_recv(r, c, d);
				armed++;
			}
		}
	}
}

/* Receives that found no buffer go on, each list in the order it starved:
 * light connections first (a new request is served before a bulk transfer
 * takes more), then bulk transfers, which leave the reserve alone. */
static void relay_unstarve(struct relay *r)
{
	relay_unstarve_list(r, &r->starved[0], false);
	if (TAILQ_EMPTY(&r->starved[0]))
		relay_unstarve_list(r, &r->starved[1], true);
}

/* Connections waiting for a descriptor try again, in the order they came;
 * those that still find none wait on, in the same order. */
static void relay_retry_fdwait(struct relay *r)
{
	struct relay_conn_list retry = TAILQ_HEAD_INITIALIZER(retry);
	struct relay_conn *c;

	TAILQ_CONCAT(&retry, &r->fdwait, fdwait_link);
	while ((c = TAILQ_FIRST(&retry))) {
		TAILQ_REMOVE(&retry, c, fdwait_link);
		atomic_fetch_sub(&r->rt->root->nofile_waiting, 1);
		c->fd_waiting = 2;
		relay_connect(r, c);
		relay_maybe_free(r, c);
	}
}

/* Listeners paused at max_connections start again below it; those paused
 * for descriptors once no connection waits for one and this worker has
 * closed sockets, or after a short backoff (another worker may have). */
static void relay_resume_listeners(struct relay *r)
{
	struct relay_listener *ls, *next;
	bool below = atomic_load(&r->rt->root->live) < r->rt->max_connections;
	bool fds = atomic_load(&r->rt->root->nofile_waiting) == 0 &&
		   (r->fd_freed || r->loop->now_ms >= r->nofile_retry_ms) && relay_spares_fill(r);

	for (ls = LIST_FIRST(&r->paused); ls; ls = next) {
		bool go = ls->paused == 1 + RUNTIME_PAUSE_MAXCONN ? below : fds && below;
		next = LIST_NEXT(ls, pause_link);
		if (!go)
			continue;
		LIST_REMOVE(ls, pause_link);
		ls->paused = 0;
		if (!ls->armed && ls->fd >= 0)
			relay_listen(r, ls);
	}
}

void relay_resume(struct relay *r)
{
	if (relay_starving(r))
		relay_unstarve(r);
	if (!TAILQ_EMPTY(&r->fdwait) && (r->fd_freed || r->loop->now_ms >= r->nofile_retry_ms)) {
		r->nofile_retry_ms = r->loop->now_ms + RELAY_NOFILE_RETRY_MS;
		relay_retry_fdwait(r);
	}
	if (r->fd_freed && r->nspare < RELAY_SPARE_FDS && TAILQ_EMPTY(&r->fdwait))
		relay_spares_fill(r);
	if (!LIST_EMPTY(&r->paused))
		relay_resume_listeners(r);
	r->fd_freed = false;
}

/* Connections that waited for a descriptor longer than timeout_connect. */
static void relay_fdwait_expire(struct relay *r)
{
	struct relay_conn *c, *next;

	for (c = TAILQ_FIRST(&r->fdwait); c; c = next) {
		next = TAILQ_NEXT(c, fdwait_link);
		if (c->start_ms + c->vip->cfg->timeout_connect_ms > r->loop->now_ms)
			continue;
		c->err = EMFILE;
		relay_close(r, c, END_CONNECT_ERROR, 1u << C_CLIENT);
		relay_maybe_free(r, c);
	}
}

/* For the admin endpoint: this worker's connection counts, copied once per
 * tick (the worker publishes its loop's). */
static void relay_publish(struct relay *r)
{
	struct runtime_worker_stats *w = &r->rt->root->wstats[r->worker];

	atomic_store_explicit(&w->live, r->live, memory_order_relaxed);
	atomic_store_explicit(&w->conns, r->nconns, memory_order_relaxed);
}

/* Operators act on the current generation: a connection of an older one is
 * judged by the server of the same pool and name in the current one. */
static bool relay_server_disabled(struct relay *r, struct relay_conn *c)
{
	/* The connection's own pool: a route VIP's SNI may have chosen
	 * another than the VIP's default, with other servers. */
	const struct config_pool *cp = c->pool->cfg;
	const char *name = cp->servers[c->server].name;

	if (atomic_load(&c->pool->bal.srv[c->server].flags) & BALANCE_DISABLED)
		return true;
	for (int p = 0; c->gen != LIST_FIRST(&r->gens) && p < r->rt->cfg->npools; p++) {
		const struct runtime_pool *rp = &r->rt->pools[p];
		if (strcmp(rp->cfg->name, cp->name) != 0)
			continue;
		for (int i = 0; i < rp->cfg->nservers; i++)
			if (strcmp(rp->cfg->servers[i].name, name) == 0)
				return atomic_load(&rp->bal.srv[i].flags) & BALANCE_DISABLED;
	}
	return false;
}

static void relay_close_disabled_gen(struct relay *r, struct relay_gen *g)
{
	for (int v = 0; v < g->rt->cfg->nvips; v++) {
		struct relay_conn *c = TAILQ_FIRST(&g->lru[v]), *next;
		for (; c; c = next) {
			next = TAILQ_NEXT(c, lru_link);
			if (c->server < 0 || !relay_server_disabled(r, c))
				continue;
			relay_close(r, c, END_DISABLED, (1u << C_CLIENT) | (1u << C_SERVER));
			relay_maybe_free(r, c);
		}
	}
}

/* An operator disabled a server ("down now"): its open connections end. The
 * lists are walked only when the kick count moved, which is rare. */
static void relay_close_disabled(struct relay *r)
{
	unsigned kick = atomic_load(&r->rt->root->kick);

	if (kick == r->kick_seen)
		return;
	r->kick_seen = kick;
	struct relay_gen *g;
	LIST_FOREACH(g, &r->gens, link)
	relay_close_disabled_gen(r, g);
}

static void relay_idle_gen(struct relay *r, struct relay_gen *g)
{
	uint64_t now = r->loop->now_ms;

	for (int v = 0; v < g->rt->cfg->nvips; v++) {
		uint64_t idle = g->rt->vips[v].cfg->timeout_idle_ms;
		struct relay_lru *q = &g->lru[v];
		struct relay_conn *c;
		while (idle && (c = TAILQ_FIRST(q)) && c->last_ms + idle <= now) {
			relay_close(r, c, END_IDLE_TIMEOUT, 0);
			relay_maybe_free(r, c);
		}
		/* No complete ClientHello or handshake within timeout_connect. */
		uint64_t hello = g->rt->vips[v].cfg->timeout_connect_ms;
		q = &g->hello[v];
		while ((c = TAILQ_FIRST(q)) && c->start_ms + hello <= now) {
			relay_close(r, c, relay_xprts[c->xprt].slow_start_end, 1u << C_CLIENT);
			relay_maybe_free(r, c);
		}
	}
}

void relay_tick(struct relay *r)
{
	relay_close_disabled(r);
	relay_publish(r);
	struct relay_gen *g;
	LIST_FOREACH(g, &r->gens, link)
	relay_idle_gen(r, g);
	relay_fdwait_expire(r);
	relay_resume(r);
	relay_gen_sweep(r);
}

static void relay_close_list(struct relay *r, struct relay_lru *q)
{
	struct relay_conn *c;

	while ((c = TAILQ_FIRST(q))) {
		relay_close(r, c, END_SHUTDOWN, (1u << C_CLIENT) | (1u << C_SERVER));
		relay_maybe_free(r, c);
	}
}

void relay_close_all(struct relay *r)
{
	struct relay_gen *g;
	LIST_FOREACH(g, &r->gens, link)
	for (int v = 0; v < g->rt->cfg->nvips; v++) {
		relay_close_list(r, &g->lru[v]);
		relay_close_list(r, &g->hello[v]);
	}
}

/* ---- the ledger (GET /connections) ---- */

/* The source address is read from the socket on the first walk that needs
 * it when log_connections did not already (relay_connected), and kept. */
static void relay_describe(struct relay *r, struct relay_conn *c, struct ledger_conn *e,
			   union addr_sa *server)
{
	socklen_t len = sizeof(c->snat);

	if (!c->snat_set && c->state == S_RELAYING && c->fd[C_SERVER] >= 0)
		c->snat_set = getsockname(c->fd[C_SERVER], &c->snat.sa, &len) == 0;
	*e = (struct ledger_conn){
	    .vip = c->vip->cfg->name,
	    .sni = relay_xprts[c->xprt].sni(c),
	    .client = &c->client.sa,
	    .snat = c->snat_set ? &c->snat.sa : NULL,
	    .to_server = c->bytes[TO_SERVER],
	    .to_client = c->bytes[TO_CLIENT],
	    .age_ms = r->loop->now_ms - c->start_ms,
	};
	if (c->server >= 0) {
		relay_server_addr(c, c->server, server);
		e->server = &server->sa;
	}
}

bool relay_ledger_step(struct relay *r, bool start, unsigned max,
		       bool (*fn)(void *arg, const struct ledger_conn *c), void *arg)
{
	struct ledger_conn e;
	union addr_sa server;

	if (start)
		r->ledger_at = TAILQ_FIRST(&r->all);
	while (r->ledger_at && max--) {
		struct relay_conn *c = r->ledger_at;
		r->ledger_at = TAILQ_NEXT(c, all_link);
		if (c->state == S_CLOSING)
			continue;
		relay_describe(r, c, &e, &server);
		if (!fn(arg, &e))
			r->ledger_at = NULL;
	}
	return r->ledger_at == NULL;
}
