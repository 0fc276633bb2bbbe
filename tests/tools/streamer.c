/* streamer: a test peer for byte-exact relaying through the proxy.
 *
 *   streamer serve ADDR:PORT [echo|source BYTES] [--peers]
 *       echo: returns every byte and relays the client's half-close;
 *       source: sends BYTES of the pattern, then closes.
 *       --peers prints "peer ADDR:PORT" per accepted connection.
 *   streamer run ADDR:PORT [--conns N] [--bytes N] [--download N]
 *                [--rate BYTES_PER_S] [--timeout S]
 *       opens N connections at once; each sends --bytes of the pattern,
 *       shuts its write side and checks that the echo is byte-exact, or
 *       (--download) checks N pattern bytes sent by a source server.
 *       --rate reads no faster than that (a slow reader).
 *       Prints "ok conns=N bytes_each_way=N" and exits 0 when every
 *       connection verified; otherwise says which failed and exits 1.
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

/* ---- server ---- */

struct sconn {
	int fd;
	uint8_t buf[CHUNK];
	size_t len, off; /* echo: bytes held; source: bytes sent */
	int eof;
};

static int serve(const char *addr, int source, uint64_t total, int peers)
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
				struct sockaddr_storage peer;
				socklen_t pl = sizeof(peer);
				int fd = accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK);
				if (fd < 0)
					continue;
				if (peers) {
					char h[64];
					struct sockaddr_in *p4 = (struct sockaddr_in *)&peer;
					inet_ntop(AF_INET, &p4->sin_addr, h, sizeof(h));
					printf("peer %s:%u\n", h, ntohs(p4->sin_port));
					fflush(stdout);
				}
				c = calloc(1, sizeof(*c));
				c->fd = fd;
				struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
				continue;
			}
			int done = 0;
			if (source) {
				while (c->off < total) {
					size_t want = total - c->off < CHUNK ? total - c->off : CHUNK;
					fill(c->buf, want, 1, c->off);
					ssize_t w = send(c->fd, c->buf, want, MSG_NOSIGNAL);
					if (w <= 0) {
						done = w < 0 && errno != EAGAIN;
						break;
					}
					c->off += (size_t)w;
				}
				done |= c->off >= total;
			} else {
				for (;;) {
					if (c->len > c->off) {
						ssize_t w = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
						if (w < 0) {
							done = errno != EAGAIN;
							break;
						}
						c->off += (size_t)w;
						continue;
					}
					c->len = c->off = 0;
					if (c->eof) {
						shutdown(c->fd, SHUT_WR);
						done = 1;
						break;
					}
					ssize_t r = recv(c->fd, c->buf, CHUNK, 0);
					if (r == 0)
						c->eof = 1;
					else if (r < 0) {
						done = errno != EAGAIN;
						break;
					} else
						c->len = (size_t)r;
				}
			}
			if (done) {
				close(c->fd);
				free(c);
			}
		}
	}
}

/* ---- client ---- */

struct cconn {
	int fd, idx, connected, wdone, rdone, bad;
	uint64_t sent, got;
};

struct run {
	uint64_t bytes, download, rate;
	int nconns, ep;
	struct cconn *c;
	uint8_t buf[CHUNK];
	uint64_t total_read;
	double start;
};

static void client_write(struct run *r, struct cconn *c)
{
	while (!c->wdone) {
		if (c->sent >= r->bytes) {
			shutdown(c->fd, SHUT_WR);
			c->wdone = 1;
			break;
		}
		size_t want = r->bytes - c->sent < CHUNK ? r->bytes - c->sent : CHUNK;
		fill(r->buf, want, (uint64_t)c->idx + 100, c->sent);
		ssize_t w = send(c->fd, r->buf, want, MSG_NOSIGNAL);
		if (w <= 0) {
			if (w < 0 && errno != EAGAIN)
				c->bad = 1, c->wdone = c->rdone = 1;
			break;
		}
		c->sent += (size_t)w;
	}
}

static void client_read(struct run *r, struct cconn *c)
{
	uint64_t expect = r->download ? r->download : r->bytes;
	uint64_t seed = r->download ? 1 : (uint64_t)c->idx + 100;
	while (!c->rdone) {
		size_t want = CHUNK;
		if (r->rate) {
			double allowed = (now_s() - r->start) * (double)r->rate - (double)r->total_read;
			if (allowed < 1)
				return;
			if (allowed < want)
				want = (size_t)allowed;
		}
		ssize_t n = recv(c->fd, r->buf, want, 0);
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			c->rdone = 1;
			if (n < 0 || c->got != expect)
				c->bad = 1;
			return;
		}
		for (ssize_t i = 0; i < n && !c->bad; i++)
			if (r->buf[i] != pattern(seed, c->got + (uint64_t)i)) {
				fprintf(stderr, "conn %d: byte %llu differs\n", c->idx,
					(unsigned long long)(c->got + (uint64_t)i));
				c->bad = 1;
			}
		c->got += (uint64_t)n;
		r->total_read += (uint64_t)n;
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
	while (left > 0 && now_s() - r->start < timeout) {
		struct epoll_event evs[512];
		int n = epoll_wait(r->ep, evs, 512, r->rate ? 5 : 200);
		for (int i = 0; i < n; i++) {
			struct cconn *c = evs[i].data.ptr;
			if (c->rdone)
				continue;
			client_write(r, c);
			client_read(r, c);
			if (c->rdone) {
				left--;
				bad += c->bad;
				close(c->fd);
			}
		}
		if (r->rate)
			for (int i = 0; i < r->nconns; i++)
				if (!r->c[i].rdone) {
					client_read(r, &r->c[i]);
					if (r->c[i].rdone)
						left--, bad += r->c[i].bad, close(r->c[i].fd);
				}
	}
	if (left > 0)
		fprintf(stderr, "timeout: %d connection(s) unfinished\n", left);
	if (bad)
		fprintf(stderr, "%d connection(s) failed verification\n", bad);
	if (left || bad)
		return 1;
	printf("ok conns=%d bytes_each_way=%llu seconds=%.2f\n", r->nconns,
	       (unsigned long long)(r->download ? r->download : r->bytes), now_s() - r->start);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && strcmp(argv[1], "serve") == 0) {
		int source = argc >= 5 && strcmp(argv[3], "source") == 0;
		int peers = strcmp(argv[argc - 1], "--peers") == 0;
		return serve(argv[2], source, source ? strtoull(argv[4], NULL, 0) : 0, peers);
	}
	if (argc >= 3 && strcmp(argv[1], "run") == 0) {
		static struct run r = {.bytes = 1 << 20, .nconns = 1};
		double timeout = 60;
		for (int i = 3; i + 1 < argc; i += 2) {
			if (!strcmp(argv[i], "--conns"))
				r.nconns = atoi(argv[i + 1]);
			else if (!strcmp(argv[i], "--bytes"))
				r.bytes = strtoull(argv[i + 1], NULL, 0);
			else if (!strcmp(argv[i], "--download"))
				r.download = strtoull(argv[i + 1], NULL, 0);
			else if (!strcmp(argv[i], "--rate"))
				r.rate = strtoull(argv[i + 1], NULL, 0);
			else if (!strcmp(argv[i], "--timeout"))
				timeout = atof(argv[i + 1]);
			else
				return fprintf(stderr, "unknown option %s\n", argv[i]), 2;
		}
		return run(argv[2], &r, timeout);
	}
	fprintf(stderr, "usage: streamer serve ADDR:PORT [echo|source BYTES] [--peers]\n"
			"       streamer run ADDR:PORT [--conns N] [--bytes N] [--download N] "
			"[--rate B/s] [--timeout S]\n");
	return 2;
}
