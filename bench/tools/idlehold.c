/* idlehold: idle connections through a balancer, to weigh its memory.
 *
 *   idlehold serve ADDR:PORT [ADDR:PORT ...]
 *       accepts connections, sends each one byte ("k") and keeps it open
 *       without reading, until the peer closes.
 *   idlehold hold [--src LIST] [--parallel N] [--timeout S] [--hold S]
 *                 --steps N1,N2,... HOST:PORT [HOST:PORT ...]
 *       opens connections (round robin over the targets and over --src
 *       addresses, at most --parallel handshakes at once) until N1 have
 *       received the server's byte, so each one is known to reach a server
 *       through the balancer; prints
 *         ready n=N1 ok=N err=N dropped=N secs=S
 *       and waits for SIGUSR1 before going on to N2, and so on. After the
 *       last step it holds everything until SIGTERM/SIGINT or --hold
 *       seconds (default 600), then closes. A step that cannot be reached
 *       within --timeout seconds (default 120) is reported with the count
 *       it got. dropped counts connections closed by the other side while
 *       held. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "benchutil.h"

#define MAX_STEPS 16

enum hstate { H_FREE, H_PENDING, H_HELD };

struct holder {
	struct bu_addrs srcs, dsts;
	unsigned parallel;
	double timeout, hold;
	unsigned steps[MAX_STEPS], nsteps;
	int ep;
	enum hstate *state; /* indexed by fd */
	unsigned cap;
	unsigned pending, held, ok_total, err, dropped;
	unsigned src_rr, dst_rr;
};

static volatile sig_atomic_t got_usr1, got_term;

static void on_usr1(int sig)
{
	(void)sig;
	got_usr1 = 1;
}

static void on_term(int sig)
{
	(void)sig;
	got_term = 1;
}

static void drop_fd(struct holder *h, int fd, enum hstate was)
{
	if (was == H_PENDING) {
		h->pending--;
		h->err++;
	} else if (was == H_HELD) {
		h->held--;
		h->dropped++;
	}
	h->state[fd] = H_FREE;
	close(fd);
}

static void open_one(struct holder *h)
{
	const struct sockaddr_storage *src = h->srcs.n ? &h->srcs.a[h->src_rr++ % h->srcs.n] : NULL;
	int err = 0;
	int fd = bu_connect_nb(src, &h->dsts.a[h->dst_rr++ % h->dsts.n], &err);
	if (fd < 0 || (unsigned)fd >= h->cap) {
		if (fd >= 0)
			close(fd);
		h->err++;
		return;
	}
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.fd = fd};
	if (epoll_ctl(h->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		close(fd);
		h->err++;
		return;
	}
	h->state[fd] = H_PENDING;
	h->pending++;
}

static void on_event(struct holder *h, int fd, uint32_t events)
{
	enum hstate st = h->state[fd];
	if (st == H_FREE)
		return;
	if (st == H_PENDING && (events & EPOLLIN)) {
		char c;
		if (recv(fd, &c, 1, 0) == 1) {
			h->state[fd] = H_HELD;
			h->pending--;
			h->held++;
			h->ok_total++;
			st = H_HELD;
			events &= ~(uint32_t)EPOLLIN;
		}
	}
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLIN))
		drop_fd(h, fd, st);
}

/* Opens connections until 'target' are held; returns when reached, on
 * timeout or on a signal to stop. */
static void reach(struct holder *h, unsigned target)
{
	struct epoll_event evs[256];
	uint64_t t0 = bu_now_ns(), limit = t0 + (uint64_t)(h->timeout * 1e9);
	while (h->held < target && !got_term && bu_now_ns() < limit) {
		/* Bounded per round: a connect that fails at once must not spin. */
		for (unsigned k = 0;
		     k < h->parallel && h->held + h->pending < target && h->pending < h->parallel;
		     k++)
			open_one(h);
		int n = epoll_wait(h->ep, evs, 256, 100);
		for (int k = 0; k < n; k++)
			on_event(h, evs[k].data.fd, evs[k].events);
	}
	printf("ready n=%u ok=%u err=%u dropped=%u secs=%.2f\n", target, h->held, h->err,
	       h->dropped, (double)(bu_now_ns() - t0) / 1e9);
	fflush(stdout);
}

/* Holds what is open (watching for drops) until SIGUSR1, SIGTERM or the
 * deadline. */
static void hold_until_signal(struct holder *h, double secs)
{
	struct epoll_event evs[256];
	uint64_t limit = bu_now_ns() + (uint64_t)(secs * 1e9);
	while (!got_usr1 && !got_term && bu_now_ns() < limit) {
		int n = epoll_wait(h->ep, evs, 256, 100);
		for (int k = 0; k < n; k++)
			on_event(h, evs[k].data.fd, evs[k].events);
	}
	got_usr1 = 0;
}

static void parse_hold(struct holder *h, int argc, char **argv)
{
	static const struct option opts[] = {{"src", 1, 0, 's'},     {"parallel", 1, 0, 'p'},
					     {"timeout", 1, 0, 't'}, {"hold", 1, 0, 'H'},
					     {"steps", 1, 0, 'n'},   {0, 0, 0, 0}};
	int o;
	h->parallel = 256;
	h->timeout = 120;
	h->hold = 600;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			if (bu_addrs_parse(&h->srcs, optarg, false) < 0)
				bu_die("idlehold: bad --src '%s'", optarg);
			break;
		case 'p':
			h->parallel = (unsigned)atoi(optarg);
			break;
		case 't':
			h->timeout = atof(optarg);
			break;
		case 'H':
			h->hold = atof(optarg);
			break;
		case 'n':
			for (char *p = optarg; *p && h->nsteps < MAX_STEPS; p += *p == ',')
				h->steps[h->nsteps++] = (unsigned)strtoul(p, &p, 10);
			break;
		default:
			bu_die(
			    "idlehold: unknown option (see the comment at the top of idlehold.c)");
		}
	}
	if (h->nsteps == 0 || optind >= argc || h->parallel == 0)
		bu_die("usage: idlehold hold [--src LIST] [--parallel N] [--timeout S] [--hold S] "
		       "--steps N1,N2 HOST:PORT...");
	for (; optind < argc; optind++)
		if (bu_addrs_parse(&h->dsts, argv[optind], true) < 0)
			bu_die("idlehold: bad target '%s' (want HOST:PORT)", argv[optind]);
}

static int cmd_hold(int argc, char **argv)
{
	static struct holder h;
	parse_hold(&h, argc, argv);
	unsigned most = 0;
	for (unsigned i = 0; i < h.nsteps; i++)
		most = h.steps[i] > most ? h.steps[i] : most;
	h.cap = (unsigned)bu_raise_nofile(most + h.parallel + 64);
	h.state = calloc(h.cap, sizeof(*h.state));
	h.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!h.state || h.ep < 0)
		bu_die("idlehold: setup: %s", strerror(errno));
	for (unsigned i = 0; i < h.nsteps && !got_term; i++) {
		reach(&h, h.steps[i]);
		hold_until_signal(&h, h.hold);
	}
	return 0;
}

static void serve_accept(int ep, int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLET, .data.u64 = (uint64_t)fd};
		if (send(fd, "k", 1, MSG_NOSIGNAL) != 1 ||
		    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			close(fd);
	}
}

static int cmd_serve(int argc, char **argv)
{
	bu_raise_nofile(1 << 20);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 0; i < argc; i++) {
		struct sockaddr_storage ss;
		if (bu_addr_parse(&ss, argv[i], true) < 0)
			bu_die("idlehold: bad address '%s'", argv[i]);
		int one = 1,
		    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&ss, bu_addr_len(&ss)) < 0 || listen(fd, 4096) < 0)
			bu_die("idlehold: listen on %s: %s", argv[i], strerror(errno));
		/* Listening sockets are marked by the top bit of the data. */
		struct epoll_event ev = {.events = EPOLLIN,
					 .data.u64 = (1ull << 63) | (uint64_t)fd};
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	}
	struct epoll_event evs[256];
	while (!got_term) {
		int n = epoll_wait(ep, evs, 256, 500);
		for (int k = 0; k < n; k++) {
			int fd = (int)(evs[k].data.u64 & 0x7fffffff);
			if (evs[k].data.u64 >> 63)
				serve_accept(ep, fd);
			else
				close(fd); /* the peer closed */
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	signal(SIGUSR1, on_usr1);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	if (argc >= 3 && strcmp(argv[1], "serve") == 0)
		return cmd_serve(argc - 2, argv + 2);
	if (argc >= 3 && strcmp(argv[1], "hold") == 0)
		return cmd_hold(argc - 1, argv + 1);
	bu_die("usage: idlehold serve ADDR:PORT... | idlehold hold [options] --steps N,.. "
	       "HOST:PORT...");
	return 2;
}
