/* budget: the SNAT port budget, per VIP, source address and server.
 *
 * A connection toward a server takes a local port of its source address
 * from the local port range (net.ipv4.ip_local_port_range), unique for that
 * source address and server ADDR:PORT; the port stays taken while the
 * connection is open and, when this side closed first, for TIME_WAIT (60 s)
 * after it. The workers count new and ended connections per budget (one
 * relaxed atomic add each): their difference is what is open; the kernel
 * (sock_diag) counts the sockets that hold a port otherwise (connecting,
 * closing, TIME_WAIT). The main thread turns the counts into rates once a
 * second, forecasts, and warns when a budget would run out within
 * BUDGET_WARN_S. GET /snat, /metrics and the status page show the
 * same figures (computed on the admin thread when asked). */
#ifndef SNATPROXY_BUDGET_H
#define SNATPROXY_BUDGET_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "runtime.h"

/* Rates are measured over this many seconds. */
#define BUDGET_WINDOW_S 10
/* A warning when a budget is forecast to run out sooner than this. */
#define BUDGET_WARN_S 300
/* Linux's TIME_WAIT, fixed in the kernel (TCP_TIMEWAIT_LEN). */
#define BUDGET_TIME_WAIT_S 60

/* One budget's figures, as the forecast takes them. */
struct budget_state {
	double ports;     /* in the local port range */
	double in_use;    /* sockets open from the source to the server */
	double time_wait; /* ... in TIME_WAIT */
	double tw_left_s; /* the least time left to one of those (0..60) */
	double rate;      /* new connections per second */
	double ends;      /* connections ended per second */
};

/* Seconds until no port is left at these rates, or -1 for never. Pure.
 * Connections that stay open take ports at rate - ends; ports entering
 * TIME_WAIT come back 60 s later, so the TIME_WAIT pool grows at the rate
 * it has been filling (time_wait over its oldest socket's age) until its
 * first sockets expire, tw_left_s from now, and holds steady after that. */
double budget_exhaustion_s(const struct budget_state *s);
/* Addresses to add, to the `have` used now, for the forecast to go past
 * BUDGET_WARN_S at these rates (at least 1). Pure. */
int budget_addresses_to_add(const struct budget_state *s, int have);

/* A VIP's counters (runtime.c); 0 or -ENOMEM. VIPs with snat = off have
 * none (the client's own address and port). */
int budget_vip_init(struct runtime_vip *v, const struct config *cfg);
void budget_vip_free(struct runtime_vip *v);

/* On a worker: a connection of VIP v to server `server` of pool `pool`
 * (index in the runtime) from SNAT address `src` (0 with snat = auto) is
 * established (opened) or ends. */
void budget_count(struct runtime_vip *v, int pool, int server, unsigned src, bool opened);

/* On the main thread, about once a second: the rates, and the forecast
 * with its warning (at most once a minute per budget). */
void budget_tick(struct runtime *rt);

/* On the admin thread: GET /snat (a JSON array), the Prometheus families,
 * the status page's table. */
void budget_json(FILE *out, const struct runtime *rt);
void budget_prometheus(FILE *out, const struct runtime *rt);
void budget_html(FILE *out, const struct runtime *rt);

#endif
