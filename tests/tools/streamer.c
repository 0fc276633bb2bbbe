/* streamer: a test peer for byte-exact relaying through the proxy.
 *
 *   streamer serve ADDR:PORT [echo|source BYTES] [--peers] [--ends]
 *                  [--reset-after BYTES]
 *       echo: returns every byte and relays the client's half-close;
 *       source: sends BYTES of the pattern, then closes.
 *       --peers prints "peer ADDR:PORT" per accepted connection.
 *       --ends prints "end ADDR:PORT sent=N got=N how=HOW" when a connection
 *       ends; HOW is done (source: all sent), eof (echo: the client's FIN,
 *       echo finished), reset (ECONNRESET or EPIPE from the peer),
 *       reset-sent (--reset-after) or error-ERRNO.
 *       --reset-after: after sending that many bytes on a connection, closes
 *       it with SO_LINGER {1, 0}: a reset in the middle of the stream.
 *   streamer run ADDR:PORT [--conns N] [--bytes N] [--download N]
 *                [--rate BYTES_PER_S] [--timeout S] [--reset]
 *                [--expect full|reset|eof]
 *       opens N connections at once; each sends --bytes of the pattern,
 *       shuts its write side and checks that the echo is byte-exact, or
 *       (--download) checks N pattern bytes sent by a source server.
 *       --rate reads no faster than that (a slow reader).
 *       --reset: instead of shutting its write side, each connection waits
 *       for its whole echo, then closes with a reset (SO_LINGER {1, 0}).
 *       --expect reset: each connection must end with ECONNRESET (or EPIPE)
 *       after byte-exact data; --expect eof: with an early EOF (fewer bytes
 *       than wanted, byte-exact); full (default): every byte, then EOF.
 *       Prints "ok conns=N bytes_each_way=N ... received=N" and exits 0 when
 *       every connection ended as expected; otherwise says which did not,
 *       with the bytes received in total, and exits 1.
 *
 * The pattern is a function of (connection seed, offset), so each side can
 * check any byte without keeping what was sent. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536

static uint8_t pattern(uint64_t seed, uint64_t off)
{
	uint64_t z = seed * 0x9e3779b97f4a7c15ULL + (off >> 3) + 1;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return (uint8_t)(z >> ((off & 7) * 8));
}

static void fill(uint8_t *buf, size_t n, uint64_t seed, uint64_t off)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = pattern(seed, off + i);
}

static int parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[128];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	int port = atoi(colon + 1);
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		host[strlen(host) - 1] = 0;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a);
		return inet_pton(AF_INET6, host + 1, &a->sin6_addr) == 1 ? 0 : -1;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	*len = sizeof(*a);
	return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void close_with_reset(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static int is_reset(int err)
{
	return err == ECONNRESET || err == EPIPE;
}

/* ---- server ---- */

struct serve_opts {
	int source, peers, ends;
	uint64_t total;       /* source: bytes to send */
	uint64_t reset_after; /* 0: never */
};

struct sconn {
	int fd;
	char peer[64];
	uint8_t buf[CHUNK];
	size_t len, off; /* echo: bytes held, of them sent */
	uint64_t sent, got;
	int eof;
};

/* How much more the connection may send before its --reset-after. */
static size_t serve_allowance(const struct serve_opts *o, const struct sconn *c, size_t want)
{
	if (o->reset_after && o->reset_after - c->sent < want)
		return (size_t)(o->reset_after - c->sent);
	return want;
}

/* Sends what the connection may; returns NULL to go on, else how it ended. */
static const char *serve_source(const struct serve_opts *o, struct sconn *c)
{
	while (c->sent < o->total) {
		size_t want = o->total - c->sent < CHUNK ? (size_t)(o->total - c->sent) : CHUNK;
		want = serve_allowance(o, c, want);
		if (want == 0)
			return "reset-sent";
		fill(c->buf, want, 1, c->sent);
		ssize_t w = send(c->fd, c->buf, want, MSG_NOSIGNAL);
		if (w < 0)
			return errno == EAGAIN ? NULL : is_reset(errno) ? "reset" : "error";
		c->sent += (uint64_t)w;
	}
	return "done";
}

static const char *serve_echo(const struct serve_opts *o, struct sconn *c)
{
	for (;;) {
		if (c->len > c->off) {
			size_t want = serve_allowance(o, c, c->len - c->off);
			if (want == 0)
				return "reset-sent";
			ssize_t w = send(c->fd, c->buf + c->off, want, MSG_NOSIGNAL);
			if (w < 0)
				return errno == EAGAIN ? NULL : is_reset(errno) ? "reset" : "error";
			c->off += (size_t)w;
			c->sent += (uint64_t)w;
			continue;
		}
		c->len = c->off = 0;
		if (c->eof) {
			shutdown(c->fd, SHUT_WR);
			return "eof";
		}
		ssize_t r = recv(c->fd, c->buf, CHUNK, 0);
		if (r == 0)
			c->eof = 1;
		else if (r < 0)
			return errno == EAGAIN ? NULL : is_reset(errno) ? "reset" : "error";
		else
			c->len = (size_t)r, c->got += (uint64_t)r;
	}
}

static void serve_end(const struct serve_opts *o, struct sconn *c, const char *how)
{
	int err = errno;

	if (o->ends) {
		if (strcmp(how, "error") == 0)
			printf("end %s sent=%llu got=%llu how=error-%s\n", c->peer,
			       (unsigned long long)c->sent, (unsigned long long)c->got,
			       strerror(err));
		else
			printf("end %s sent=%llu got=%llu how=%s\n", c->peer,
			       (unsigned long long)c->sent, (unsigned long long)c->got, how);
	}
	if (strcmp(how, "reset-sent") == 0)
		close_with_reset(c->fd);
	else
		close(c->fd);
	free(c);
}

static void serve_accept(const struct serve_opts *o, int ep, int lfd)
{
	struct sockaddr_storage peer;
	socklen_t pl = sizeof(peer);
	int fd = accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK);
	if (fd < 0)
		return;
	struct sconn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	char h[INET6_ADDRSTRLEN] = "?";
	struct sockaddr_in *p4 = (struct sockaddr_in *)&peer;
	inet_ntop(AF_INET, &p4->sin_addr, h, sizeof(h));
	snprintf(c->peer, sizeof(c->peer), "%s:%u", h, ntohs(p4->sin_port));
	if (o->peers)
		printf("peer %s\n", c->peer);
	c->fd = fd;
	struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

static int serve(const char *addr, const struct serve_opts *o)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, ep = epoll_create1(0);
	if (parse_addr(addr, &ss, &sl) < 0)
		return fprintf(stderr, "bad address %s\n", addr), 2;
	int lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&ss, sl) < 0 || listen(lfd, 4096) < 0)
		return perror("listen"), 2;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	printf("listening %s\n", addr);
	fflush(stdout);
	for (;;) {
		struct epoll_event evs[256];
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			struct sconn *c = evs[i].data.ptr;
			if (!c) {
				serve_accept(o, ep, lfd);
				continue;
			}
			const char *how = o->source ? serve_source(o, c) : serve_echo(o, c);
			if (how)
				serve_end(o, c, how);
		}
	}
}

/* ---- client ---- */

enum { END_OPEN, END_EOF, END_RESET, END_ERROR };

struct cconn {
	int fd, idx, connected, wdone, rdone, bad, end;
	uint64_t sent, got;
};

struct run {
	uint64_t bytes, download, rate;
	int nconns, ep, reset, expect; /* expect: END_EOF (full), END_RESET or -END_EOF (early) */
	struct cconn *c;
	uint8_t buf[CHUNK];
	uint64_t total_read;
	double start;
};

static void client_write(struct run *r, struct cconn *c)
{
	while (!c->wdone) {
		if (c->sent >= r->bytes) {
			if (!r->reset)
				shutdown(c->fd, SHUT_WR);
			c->wdone = 1;
			break;
		}
		size_t want = r->bytes - c->sent < CHUNK ? r->bytes - c->sent : CHUNK;
		fill(r->buf, want, (uint64_t)c->idx + 100, c->sent);
		ssize_t w = send(c->fd, r->buf, want, MSG_NOSIGNAL);
		if (w <= 0) {
			if (w < 0 && errno != EAGAIN) {
				c->end = is_reset(errno) ? END_RESET : END_ERROR;
				c->wdone = c->rdone = 1;
			}
			break;
		}
		c->sent += (size_t)w;
	}
}

/* Did the connection end the way the run expects? */
static int client_verdict(const struct run *r, const struct cconn *c)
{
	uint64_t expect = r->download ? r->download : r->bytes;

	if (c->bad)
		return 0;
	switch (r->expect) {
	case END_RESET:
		return c->end == END_RESET && c->got <= expect;
	case -END_EOF:
		return c->end == END_EOF && c->got < expect;
	default:
		return c->end == END_EOF && c->got == expect;
	}
}

static void client_check(struct run *r, struct cconn *c, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n && !c->bad; i++)
		if (r->buf[i] != pattern(seed, c->got + i)) {
			fprintf(stderr, "conn %d: byte %llu differs\n", c->idx,
				(unsigned long long)(c->got + i));
			c->bad = 1;
		}
}

static void client_read(struct run *r, struct cconn *c)
{
	uint64_t expect = r->download ? r->download : r->bytes;
	uint64_t seed = r->download ? 1 : (uint64_t)c->idx + 100;
	while (!c->rdone) {
		size_t want = CHUNK;
		if (r->rate) {
			double allowed =
			    (now_s() - r->start) * (double)r->rate - (double)r->total_read;
			/* 16 KiB at least: taking the few bytes the clock allows
			 * each time spins in tiny receives (a core of system time)
			 * that never catch up, and the timeout is never checked. */
			if (allowed < 16384)
				return;
			if (allowed < want)
				want = (size_t)allowed;
		}
		ssize_t n = recv(c->fd, r->buf, want, 0);
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			c->rdone = 1;
			c->end = n == 0 ? END_EOF : is_reset(errno) ? END_RESET : END_ERROR;
			return;
		}
		client_check(r, c, (size_t)n, seed);
		c->got += (uint64_t)n;
		r->total_read += (uint64_t)n;
		if (r->reset && c->got == expect) {
			/* The whole echo is back: end with a reset, not a FIN. */
			struct linger lg = {.l_onoff = 1, .l_linger = 0};
			setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			c->rdone = 1;
			c->end = END_EOF;
		}
	}
}
static int client_open(struct run *r, struct cconn *c, struct sockaddr_storage *ss, socklen_t sl)
{
	c->fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		return -1;
	if (connect(c->fd, (struct sockaddr *)ss, sl) < 0 && errno != EINPROGRESS)
		return -1;
	struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
	epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &e);
	if (r->download) {
		shutdown(c->fd, SHUT_WR);
		c->wdone = 1;
	}
	return 0;
}

static const char *const end_name[] = {"unfinished", "eof", "reset", "error"};

/* Counts a finished connection; says why one did not end as expected. */
static void client_done(struct run *r, struct cconn *c, int *left, int *bad)
{
	(*left)--;
	close(c->fd);
	if (client_verdict(r, c))
		return;
	(*bad)++;
	fprintf(stderr, "conn %d: ended by %s after %llu bytes%s\n", c->idx, end_name[c->end],
		(unsigned long long)c->got, c->bad ? ", with bytes that differ" : "");
}

static void client_poll(struct run *r, int *left, int *bad)
{
	struct epoll_event evs[512];
	int n = epoll_wait(r->ep, evs, 512, r->rate ? 5 : 200);
	for (int i = 0; i < n; i++) {
		struct cconn *c = evs[i].data.ptr;
		if (c->rdone)
			continue;
		client_write(r, c);
		client_read(r, c);
		if (c->rdone)
			client_done(r, c, left, bad);
	}
	/* A slow reader is woken by its clock, not by the socket. */
	for (int i = 0; r->rate && i < r->nconns; i++)
		if (!r->c[i].rdone) {
			client_read(r, &r->c[i]);
			if (r->c[i].rdone)
				client_done(r, &r->c[i], left, bad);
		}
}

static int run(const char *addr, struct run *r, double timeout)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int left = r->nconns, bad = 0;

	if (parse_addr(addr, &ss, &sl) < 0)
		return fprintf(stderr, "bad address %s\n", addr), 2;
	r->ep = epoll_create1(0);
	r->c = calloc((size_t)r->nconns, sizeof(*r->c));
	r->start = now_s();
	for (int i = 0; i < r->nconns; i++) {
		r->c[i].idx = i;
		if (client_open(r, &r->c[i], &ss, sl) < 0)
			return fprintf(stderr, "conn %d: %s\n", i, strerror(errno)), 1;
	}
	while (left > 0 && now_s() - r->start < timeout)
		client_poll(r, &left, &bad);
	if (left > 0)
		fprintf(stderr, "timeout: %d connection(s) unfinished, received=%llu\n", left,
			(unsigned long long)r->total_read);
	if (bad)
		fprintf(stderr, "%d connection(s) did not end as expected, received=%llu\n", bad,
			(unsigned long long)r->total_read);
	if (left || bad)
		return 1;
	printf("ok conns=%d bytes_each_way=%llu seconds=%.2f ended=%s received=%llu\n", r->nconns,
	       (unsigned long long)(r->download ? r->download : r->bytes), now_s() - r->start,
	       r->expect == END_RESET ? "reset"
	       : r->reset             ? "reset-sent"
				      : "eof",
	       (unsigned long long)r->total_read);
	return 0;
}

static int serve_main(int argc, char **argv)
{
	struct serve_opts o = {0};
	int i = 3;

	if (i < argc && strcmp(argv[i], "echo") == 0) {
		i++;
	} else if (i + 1 < argc && strcmp(argv[i], "source") == 0) {
		o.source = 1;
		o.total = strtoull(argv[i + 1], NULL, 0);
		i += 2;
	}
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "--peers"))
			o.peers = 1;
		else if (!strcmp(argv[i], "--ends"))
			o.ends = 1;
		else if (!strcmp(argv[i], "--reset-after") && i + 1 < argc)
			o.reset_after = strtoull(argv[++i], NULL, 0);
		else
			return fprintf(stderr, "unknown option %s\n", argv[i]), 2;
	}
	return serve(argv[2], &o);
}

static int expect_of(const char *s)
{
	if (!strcmp(s, "reset"))
		return END_RESET;
	if (!strcmp(s, "eof"))
		return -END_EOF;
	return !strcmp(s, "full") ? END_EOF : 0;
}

static int run_main(int argc, char **argv)
{
	static struct run r = {.bytes = 1 << 20, .nconns = 1, .expect = END_EOF};
	double timeout = 60;

	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--reset")) {
			r.reset = 1;
			continue;
		}
		if (i + 1 >= argc)
			return fprintf(stderr, "option %s wants a value\n", argv[i]), 2;
		const char *v = argv[++i];
		if (!strcmp(argv[i - 1], "--conns"))
			r.nconns = atoi(v);
		else if (!strcmp(argv[i - 1], "--bytes"))
			r.bytes = strtoull(v, NULL, 0);
		else if (!strcmp(argv[i - 1], "--download"))
			r.download = strtoull(v, NULL, 0);
		else if (!strcmp(argv[i - 1], "--rate"))
			r.rate = strtoull(v, NULL, 0);
		else if (!strcmp(argv[i - 1], "--timeout"))
			timeout = atof(v);
		else if (!strcmp(argv[i - 1], "--expect") && (r.expect = expect_of(v)) != 0)
			;
		else
			return fprintf(stderr, "unknown option %s %s\n", argv[i - 1], v), 2;
	}
	return run(argv[2], &r, timeout);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && strcmp(argv[1], "serve") == 0)
		return serve_main(argc, argv);
	if (argc >= 3 && strcmp(argv[1], "run") == 0)
		return run_main(argc, argv);
	fprintf(stderr, "usage: streamer serve ADDR:PORT [echo|source BYTES] [--peers] [--ends] "
			"[--reset-after BYTES]\n"
			"       streamer run ADDR:PORT [--conns N] [--bytes N] [--download N] "
			"[--rate B/s] [--timeout S] [--reset] [--expect full|reset|eof]\n");
	return 2;
}
