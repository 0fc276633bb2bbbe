/* loadgen: the benchmark's HTTP/1.1 load generator (epoll, one thread).
 *
 *   loadgen [options] HOST:PORT [HOST:PORT ...]
 *     --rate R         open loop: request i is due at start + i/R
 *     --max N          closed loop: N requests in flight, each followed at
 *                      once by the next (the burst rate)
 *     --duration S     how long to offer load (default 10)
 *     --keepalive      reuse connections (default: one request per
 *                      connection, "Connection: close", the server closes)
 *     --src LIST       client addresses to bind before connect, round robin:
 *                      "A,B,C" or a range "198.19.1.100-107"
 *     --conns N        open loop: at most N connections at once (10000)
 *     --timeout S      a request not answered by then is an error (10)
 *     --path P         request path (/)
 *     --quiet          no per-second lines
 *
 * Targets are used round robin. Latency runs from the time a request was
 * due (open loop) or started (closed loop) to its last response byte, so in
 * open loop a stall of the target shows in the percentiles instead of
 * slowing the generator down (no coordinated omission): a request that is
 * due while --conns connections are busy waits, and its wait counts.
 *
 * Output, one record a line, space-separated key=value:
 *   tick t=SECOND ok=N err=N started=N open=N backlog=N
 *   result mode=open|max conn=new|keepalive offered=R duration=S ok=N
 *          err=N rate=N p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=..
 *          err_connect=N err_reset=N err_timeout=N err_addr=N err_proto=N
 *          unsent=N
 * A request is ok when the whole response arrived with status 2xx and
 * exactly Content-Length body bytes. Exit status 0 unless the options were
 * wrong or nothing could be set up. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"

enum cstate { C_FREE, C_CONNECTING, C_SENT, C_DRAIN, C_IDLE };
enum err { E_CONNECT, E_RESET, E_TIMEOUT, E_ADDR, E_PROTO, E_COUNT };
static const char *const err_names[E_COUNT] = {"connect", "reset", "timeout", "addr", "proto"};

struct conn {
	int fd;
	enum cstate state;
	bool busy;	   /* a request is outstanding on it */
	uint64_t due;	   /* when the current request was due, ns */
	uint64_t deadline; /* ns */
	unsigned hlen;	   /* header bytes kept in hdr */
	long body_left;	   /* -1 until the header is complete */
	char hdr[1024];
};

struct gen {
	/* options */
	double rate;
	unsigned max_inflight;
	double duration;
	bool keepalive, quiet;
	unsigned cap;
	uint64_t timeout_ns;
	struct bu_addrs srcs, dsts;
	char req[512];
	size_t req_len;
	/* state */
	int ep;
	struct conn *conns;
	unsigned *free_stack, nfree;
	unsigned *idle_stack, nidle;
	unsigned open, inflight;
	uint64_t t0, end, next_idx, started;
	unsigned src_rr, dst_rr;
	/* results */
	struct bu_hist hist;
	uint64_t ok, ok_in_window, err, errs[E_COUNT];
	uint64_t tick_ok, tick_err, tick_started;
	unsigned tick_no;
};

static volatile sig_atomic_t stop_now;

static void on_signal(int sig)
{
	(void)sig;
	stop_now = 1;
}

static struct conn *conn_of(struct gen *g, unsigned i)
{
	return &g->conns[i];
}

static void idle_remove(struct gen *g, unsigned i)
{
	for (unsigned k = 0; k < g->nidle; k++) {
		if (g->idle_stack[k] == i) {
			g->idle_stack[k] = g->idle_stack[--g->nidle];
			return;
		}
	}
}

static void conn_release(struct gen *g, unsigned i)
{
	struct conn *c = conn_of(g, i);
	if (c->state == C_IDLE)
		idle_remove(g, i); /* rare: the server closed an idle connection */
	if (c->fd >= 0)
		close(c->fd); /* also leaves the epoll set */
	c->fd = -1;
	c->state = C_FREE;
	c->busy = false;
	g->free_stack[g->nfree++] = i;
	g->open--;
}

static void request_failed(struct gen *g, unsigned i, enum err e)
{
	struct conn *c = conn_of(g, i);
	if (c->busy) {
		g->err++;
		g->errs[e]++;
		g->tick_err++;
		g->inflight--;
	}
	/* An error ends the connection: a reset keeps no TIME_WAIT anywhere. */
	struct linger lg = {1, 0};
	if (c->fd >= 0 && e != E_ADDR)
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	conn_release(g, i);
}

static void request_done(struct gen *g, struct conn *c)
{
	uint64_t now = bu_now_ns();
	bu_hist_add(&g->hist, now > c->due ? now - c->due : 0);
	g->ok++;
	g->tick_ok++;
	if (now <= g->end)
		g->ok_in_window++;
	c->busy = false;
	g->inflight--;
}

static int send_request(struct gen *g, unsigned i)
{
	struct conn *c = conn_of(g, i);
	ssize_t n = send(c->fd, g->req, g->req_len, MSG_NOSIGNAL);
	if (n != (ssize_t)g->req_len) {
		/* The request is far smaller than any socket buffer: a short
		 * send means the connection is broken. */
		request_failed(g, i, E_RESET);
		return -1;
	}
	c->state = C_SENT;
	c->hlen = 0;
	c->body_left = -1;
	return 0;
}

/* A new connection for the request due at 'due'; the request goes out when
 * the connection is established. Returns 0, 1 when the request failed at
 * once (no address or port left: the caller should not retry in a loop),
 * or -1 when no connection slot is free. */
static int conn_open(struct gen *g, uint64_t due)
{
	if (g->nfree == 0)
		return -1;
	unsigned i = g->free_stack[--g->nfree];
	struct conn *c = conn_of(g, i);
	g->open++;
	g->inflight++;
	g->started++;
	g->tick_started++;
	c->busy = true;
	c->due = due;
	c->deadline = bu_now_ns() + g->timeout_ns;
	c->state = C_CONNECTING;
	const struct sockaddr_storage *src = NULL;
	if (g->srcs.n)
		src = &g->srcs.a[g->src_rr++ % g->srcs.n];
	const struct sockaddr_storage *dst = &g->dsts.a[g->dst_rr++ % g->dsts.n];
	int err = 0;
	c->fd = bu_connect_nb(src, dst, &err);
	if (c->fd < 0) {
		request_failed(g, i,
			       err == EADDRNOTAVAIL || err == EADDRINUSE ? E_ADDR : E_CONNECT);
		return 1;
	}
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
				 .data.u32 = i};
	if (epoll_ctl(g->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		request_failed(g, i, E_CONNECT);
		return 1;
	}
	return 0;
}

/* Starts the request due at 'due': on an idle keep-alive connection when
 * there is one, else on a new connection. Returns -1 when every connection
 * slot is busy, so the caller keeps the request waiting. */
static int start_request(struct gen *g, uint64_t due)
{
	while (g->nidle > 0) {
		unsigned i = g->idle_stack[--g->nidle];
		struct conn *c = conn_of(g, i);
		c->busy = true;
		c->due = due;
		c->deadline = bu_now_ns() + g->timeout_ns;
		g->inflight++;
		g->started++;
		g->tick_started++;
		send_request(g, i);
		return 0;
	}
	return conn_open(g, due);
}

/* Parses the response header once it is complete: status and length. */
static int parse_header(struct conn *c, size_t end)
{
	c->hdr[end] = 0;
	if (strncmp(c->hdr, "HTTP/1.", 7) != 0 || c->hdr[9] != '2')
		return -1;
	const char *cl = strcasestr(c->hdr, "\r\ncontent-length:");
	if (!cl)
		return -1;
	c->body_left = strtol(cl + 17, NULL, 10);
	return c->body_left >= 0 ? 0 : -1;
}

/* Feeds received bytes into the response parser. Returns 1 when the
 * response is complete, 0 when more is needed, -1 on a malformed one. */
static int feed(struct conn *c, const char *p, size_t n)
{
	if (c->body_left < 0) {
		size_t room = sizeof(c->hdr) - 1 - c->hlen;
		size_t take = n < room ? n : room;
		memcpy(c->hdr + c->hlen, p, take);
		c->hlen += (unsigned)take;
		c->hdr[c->hlen] = 0;
		char *e = strstr(c->hdr, "\r\n\r\n");
		if (!e)
			return c->hlen >= sizeof(c->hdr) - 1 ? -1 : 0;
		size_t hend = (size_t)(e - c->hdr) + 4;
		size_t extra = c->hlen - hend;
		if (parse_header(c, hend) < 0)
			return -1;
		/* Bytes past the header in this read belong to the body. */
		n = extra + (n - take);
	}
	if ((long)n > c->body_left)
		return -1;
	c->body_left -= (long)n;
	return c->body_left == 0 ? 1 : 0;
}

static void response_complete(struct gen *g, unsigned i)
{
	struct conn *c = conn_of(g, i);
	request_done(g, c);
	if (g->keepalive) {
		c->state = C_IDLE;
		g->idle_stack[g->nidle++] = i;
		return;
	}
	/* Wait for the server's FIN so that the server closes first, as with
	 * wrk and browsers: TIME_WAIT stays where it would in production. */
	c->state = C_DRAIN;
	c->deadline = bu_now_ns() + 1000000000ull;
}

static void on_readable(struct gen *g, unsigned i)
{
	static char buf[65536];
	struct conn *c = conn_of(g, i);
	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
		if (n > 0) {
			if (c->state != C_SENT)
				continue; /* nothing more is expected: discard */
			int r = feed(c, buf, (size_t)n);
			if (r < 0)
				return request_failed(g, i, E_PROTO);
			if (r > 0)
				response_complete(g, i);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n == 0 && !c->busy)
			return conn_release(g, i); /* server closed: the normal end */
		return request_failed(g, i, n == 0 ? E_PROTO : E_RESET);
	}
}

static void on_event(struct gen *g, unsigned i, uint32_t events)
{
	struct conn *c = conn_of(g, i);
	if (c->state == C_CONNECTING) {
		if (events & (EPOLLERR | EPOLLHUP)) {
			int e = 0;
			socklen_t l = sizeof(e);
			getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &l);
			return request_failed(g, i, e == ECONNRESET ? E_RESET : E_CONNECT);
		}
		if (!(events & EPOLLOUT))
			return;
		if (send_request(g, i) < 0)
			return;
	}
	if (c->state == C_FREE)
		return;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))
		on_readable(g, i);
}

/* Closed loop: keeps max_inflight requests going until the end. */
static void fill_closed_loop(struct gen *g, uint64_t now)
{
	while (now < g->end && g->inflight < g->max_inflight) {
		if (start_request(g, now) != 0)
			break;
	}
}

/* Open loop: starts every request that is due, as long as a connection
 * slot is free; the rest wait with their due time unchanged. */
static void fill_open_loop(struct gen *g, uint64_t now)
{
	for (;;) {
		uint64_t due = g->t0 + (uint64_t)((double)g->next_idx * 1e9 / g->rate);
		if (due > now || due >= g->end)
			return;
		if (start_request(g, due) < 0)
			return;
		g->next_idx++;
	}
}

static void expire(struct gen *g, uint64_t now)
{
	for (unsigned i = 0; i < g->cap; i++) {
		struct conn *c = conn_of(g, i);
		if (c->state == C_FREE || c->state == C_IDLE || now < c->deadline)
			continue;
		if (c->state == C_DRAIN)
			conn_release(g, i); /* done; the server did not close */
		else
			request_failed(g, i, E_TIMEOUT);
	}
}

static void print_tick(struct gen *g)
{
	uint64_t backlog = 0;
	if (g->rate > 0) {
		uint64_t due_n = (uint64_t)((double)(g->tick_no + 1) * g->rate);
		backlog = due_n > g->next_idx ? due_n - g->next_idx : 0;
	}
	g->tick_no++;
	if (!g->quiet)
		printf("tick t=%u ok=%llu err=%llu started=%llu open=%u backlog=%llu\n", g->tick_no,
		       (unsigned long long)g->tick_ok, (unsigned long long)g->tick_err,
		       (unsigned long long)g->tick_started, g->open, (unsigned long long)backlog);
	fflush(stdout);
	g->tick_ok = g->tick_err = g->tick_started = 0;
}

static uint64_t next_wakeup(struct gen *g, uint64_t now)
{
	uint64_t t = g->t0 + (uint64_t)(g->tick_no + 1) * 1000000000ull;
	uint64_t soon = now + 50000000ull; /* timeouts are checked every 50 ms */
	if (soon < t)
		t = soon;
	if (g->rate > 0 && now < g->end) {
		uint64_t due = g->t0 + (uint64_t)((double)g->next_idx * 1e9 / g->rate);
		if (due < t && (g->nfree > 0 || g->nidle > 0))
			t = due;
	}
	return t > now ? t - now : 0;
}

static void run(struct gen *g)
{
	struct epoll_event evs[512];
	uint64_t last_expire = 0, grace_end = 0;
	for (;;) {
		uint64_t now = bu_now_ns();
		if (stop_now)
			break;
		while (now >= g->t0 + (uint64_t)(g->tick_no + 1) * 1000000000ull &&
		       now <= g->end + 999999999ull)
			print_tick(g);
		if (now >= g->end) {
			/* Requests in flight may finish within the timeout. */
			if (!grace_end)
				grace_end = now + g->timeout_ns;
			if (g->inflight == 0 || now >= grace_end)
				break;
		} else if (g->rate > 0) {
			fill_open_loop(g, now);
		} else {
			fill_closed_loop(g, now);
		}
		if (now - last_expire >= 50000000ull) {
			expire(g, now);
			last_expire = now;
		}
		uint64_t wait = next_wakeup(g, now);
		struct timespec ts = {(time_t)(wait / 1000000000ull), (long)(wait % 1000000000ull)};
		int n = epoll_pwait2(g->ep, evs, 512, &ts, NULL);
		for (int k = 0; k < n; k++)
			on_event(g, evs[k].data.u32, evs[k].events);
	}
}

static void print_result(struct gen *g)
{
	uint64_t unsent = 0;
	if (g->rate > 0) {
		uint64_t due_n = (uint64_t)(g->duration * g->rate);
		unsent = due_n > g->next_idx ? due_n - g->next_idx : 0;
	}
	printf("result mode=%s conn=%s offered=%.0f duration=%.0f ok=%llu err=%llu rate=%.0f",
	       g->rate > 0 ? "open" : "max", g->keepalive ? "keepalive" : "new",
	       g->rate > 0 ? g->rate : (double)g->max_inflight, g->duration,
	       (unsigned long long)g->ok, (unsigned long long)(g->err + unsent),
	       (double)g->ok_in_window / g->duration);
	static const double q[] = {0.5, 0.9, 0.99, 0.999};
	static const char *const qn[] = {"p50", "p90", "p99", "p999"};
	for (int k = 0; k < 4; k++)
		printf(" %s_us=%.1f", qn[k], bu_hist_quantile(&g->hist, q[k]) / 1e3);
	printf(" max_us=%.1f", (double)g->hist.max / 1e3);
	for (int e = 0; e < E_COUNT; e++)
		printf(" err_%s=%llu", err_names[e], (unsigned long long)g->errs[e]);
	printf(" unsent=%llu\n", (unsigned long long)unsent);
	fflush(stdout);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: loadgen (--rate R | --max N) [--duration S] [--keepalive] [--src LIST]\n"
		"               [--conns N] [--timeout S] [--path P] [--quiet] HOST:PORT...\n");
	exit(2);
}

static void parse_options(struct gen *g, int argc, char **argv)
{
	static const struct option opts[] = {{"rate", 1, 0, 'r'},     {"max", 1, 0, 'm'},
					     {"duration", 1, 0, 'd'}, {"keepalive", 0, 0, 'k'},
					     {"src", 1, 0, 's'},      {"conns", 1, 0, 'c'},
					     {"timeout", 1, 0, 't'},  {"path", 1, 0, 'p'},
					     {"quiet", 0, 0, 'q'},    {0, 0, 0, 0}};
	const char *path = "/";
	double timeout = 10;
	int o;
	g->duration = 10;
	g->cap = 10000;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'r':
			g->rate = atof(optarg);
			break;
		case 'm':
			g->max_inflight = (unsigned)atoi(optarg);
			break;
		case 'd':
			g->duration = atof(optarg);
			break;
		case 'k':
			g->keepalive = true;
			break;
		case 's':
			if (bu_addrs_parse(&g->srcs, optarg, false) < 0)
				bu_die("loadgen: bad --src '%s'", optarg);
			break;
		case 'c':
			g->cap = (unsigned)atoi(optarg);
			break;
		case 't':
			timeout = atof(optarg);
			break;
		case 'p':
			path = optarg;
			break;
		case 'q':
			g->quiet = true;
			break;
		default:
			usage();
		}
	}
	if (optind >= argc || (g->rate > 0) == (g->max_inflight > 0) || g->duration <= 0 ||
	    timeout <= 0)
		usage();
	for (; optind < argc; optind++)
		if (bu_addrs_parse(&g->dsts, argv[optind], true) < 0)
			bu_die("loadgen: bad target '%s' (want HOST:PORT)", argv[optind]);
	if (g->max_inflight > 0)
		g->cap = g->max_inflight;
	g->timeout_ns = (uint64_t)(timeout * 1e9);
	char host[INET6_ADDRSTRLEN + 8];
	bu_addr_str(&g->dsts.a[0], host, sizeof(host));
	g->req_len =
	    (size_t)snprintf(g->req, sizeof(g->req), "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", path,
			     host, g->keepalive ? "" : "Connection: close\r\n");
	if (g->req_len >= sizeof(g->req))
		bu_die("loadgen: --path too long");
}

static void setup(struct gen *g)
{
	bu_raise_nofile(g->cap + 64);
	g->ep = epoll_create1(EPOLL_CLOEXEC);
	g->conns = calloc(g->cap, sizeof(*g->conns));
	g->free_stack = calloc(g->cap, sizeof(unsigned));
	g->idle_stack = calloc(g->cap, sizeof(unsigned));
	if (g->ep < 0 || !g->conns || !g->free_stack || !g->idle_stack)
		bu_die("loadgen: setup: %s", strerror(errno));
	for (unsigned i = 0; i < g->cap; i++) {
		g->conns[i].fd = -1;
		g->free_stack[i] = g->cap - 1 - i;
	}
	g->nfree = g->cap;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
}

int main(int argc, char **argv)
{
	static struct gen g;
	parse_options(&g, argc, argv);
	setup(&g);
	g.t0 = bu_now_ns();
	g.end = g.t0 + (uint64_t)(g.duration * 1e9);
	run(&g);
	print_result(&g);
	return 0;
}
