/* health: see include/health.h.
 *
 * A check is a small state machine with at most one request in flight (plus
 * the timeout linked to it): WAIT (a timer until the next check), CONNECT,
 * SEND, RECV. Its completions all come back to one handler, and the state
 * says which request it was. For https, a probe of the TLS engine (tls.c)
 * takes the bytes we received and gives what it wants sent; the loop moves
 * them with ordinary sends and receives. */
#include "health.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "certdiag.h"
#include "http.h"
#include "log.h"
#include "tls.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define HEALTH_NET_BUF   8192 /* TLS bytes moved per send or receive */
#define HEALTH_CAUSE_MAX 1024
#define HEALTH_HOST_MAX  (CONFIG_SNI_MAX + 8)

enum health_state { ST_WAIT, ST_CONNECT, ST_SEND, ST_RECV };

#define HEALTH_WORDS (HEALTH_TEXT_MAX / 8)

struct health_server {
	_Atomic int passive_fails; /* client connects failed in a row */
	/* The last check, for the status page: written by the one worker that
	 * checks the server, read by the admin thread, under a sequence count
	 * (odd while a write is under way) over atomic words, so that neither
	 * ever waits for the other and a read that overlapped a write is
	 * simply done again. */
	_Atomic unsigned seq;
	_Atomic int result;
	_Atomic uint64_t dur_us, unix_ms;
	_Atomic uint64_t text[HEALTH_WORDS];
};

const char *const health_result_name[HEALTH_RESULT_N] = {
    [HEALTH_OK] = "ok",       [HEALTH_TIMEOUT] = "timeout", [HEALTH_REFUSED] = "refused",
    [HEALTH_RESET] = "reset", [HEALTH_STATUS] = "status",   [HEALTH_TLS] = "tls",
    [HEALTH_ERROR] = "error",
};
_Static_assert(HEALTH_RESULT_N == RUNTIME_CHECK_RESULTS, "one list of results, two names");

struct health_pool {
	const struct config_pool *cfg;
	SSL_CTX *ctx;        /* https only */
	bool cert_no_client; /* check_cert lacks the clientAuth purpose */
	struct health_server *srv;
};

struct health_check {
	_Alignas(16) int fd;
	uint8_t state;
	uint8_t inflight;
	bool handshaken, eof, seen_down;
	bool retired; /* its generation was replaced by a reload: freed once idle */
	LIST_ENTRY(health_check) retired_link;
	struct health_worker *w;
	struct runtime_pool *rp;
	const struct config_check *cfg;
	int server, rise_n, fall_n;
	union addr_sa addr;
	union addr_sa src; /* check_source; family 0: the kernel's choice */
	uint64_t start_ms, deadline_ms, down_ms;
	uint64_t start_us; /* CLOCK_MONOTONIC: the check's duration */
	int result;        /* enum health_result of a failure, set before health_fail */
	struct __kernel_timespec ts_wait, ts_link;
	struct tls_probe *tls; /* https: the TLS client, while connected */
	char req[768];
	size_t req_len, req_off;
	unsigned char net[HEALTH_NET_BUF]; /* TLS: bytes to send, or just received */
	size_t net_len, net_off;
	char in[HTTP_RESPONSE_MAX]; /* the response (decrypted for https) */
	size_t in_len;
	char body[HTTP_RESPONSE_MAX];
	char cause[HEALTH_CAUSE_MAX];
};
LOOP_OWNER(struct health_check);

static const char *const health_type_name[] = {
    [CONFIG_CHECK_NONE] = "none",
    [CONFIG_CHECK_TCP] = "tcp",
    [CONFIG_CHECK_HTTP] = "http",
    [CONFIG_CHECK_HTTPS] = "https",
};

static void health_arm_wait(struct health_check *c, uint64_t delay_ms);

/* ---- state changes ---- */

static const char *health_server_text(const struct health_check *c, char *buf, size_t len)
{
	const struct config_server *s = &c->rp->cfg->servers[c->server];
	char a[ADDR_STRLEN];

	snprintf(buf, len, "server %s %s of pool %s", s->name,
		 addr_format(&c->addr.sa, a, sizeof(a)), c->rp->cfg->name);
	return buf;
}

static void health_mark_down(struct health_check *c)
{
	struct balance_server *bs = &c->rp->bal.srv[c->server];
	char who[200];

	c->down_ms = c->w->loop->now_ms;
	c->seen_down = true;
	if (atomic_fetch_or(&bs->flags, BALANCE_DOWN) & BALANCE_DOWN)
		return; /* a worker's passive check was first, and said so */
	atomic_store(&c->rp->stats[c->server].down_err, 0);
	runtime_state_changed(c->rp, c->server, true);
	log_warn("%s is DOWN: %s (%d failed %s check%s in a row)",
		 health_server_text(c, who, sizeof(who)), c->cause, c->fall_n,
		 health_type_name[c->cfg->type], c->fall_n > 1 ? "s" : "");
}

static void health_mark_up(struct health_check *c)
{
	struct balance_server *bs = &c->rp->bal.srv[c->server];
	char who[200];

	atomic_fetch_and(&bs->flags, ~(unsigned)BALANCE_DOWN);
	runtime_state_changed(c->rp, c->server, false);
	c->seen_down = false;
	log_info("%s is UP: %d successful %s check%s in a row",
		 health_server_text(c, who, sizeof(who)), c->rise_n, health_type_name[c->cfg->type],
		 c->rise_n > 1 ? "s" : "");
}

/* Counts a check's result toward rise or fall. The server's state is read
 * from its shared flags, since a passive check in another worker may have
 * marked it down meanwhile: the counts restart when it changed. */
static void health_count(struct health_check *c, bool ok)
{
	bool down = atomic_load(&c->rp->bal.srv[c->server].flags) & BALANCE_DOWN;
	char who[200];

	if (down != c->seen_down) {
		c->seen_down = down;
		c->rise_n = c->fall_n = 0;
	}
	if (ok) {
		c->fall_n = 0;
		atomic_store(&c->rp->health->srv[c->server].passive_fails, 0);
		if (down && ++c->rise_n >= c->cfg->rise)
			health_mark_up(c);
		return;
	}
	c->rise_n = 0;
	log_debug("%s: check failed: %s", health_server_text(c, who, sizeof(who)), c->cause);
	if (!down && ++c->fall_n >= c->cfg->fall)
		health_mark_down(c);
}

/* ---- one check's end ---- */

static void health_close(struct health_check *c)
{
	tls_probe_free(c->tls);
	c->tls = NULL;
	if (c->fd >= 0) {
		loop_close(c->w->loop, c->fd); /* after what is queued: see loop.h */
		c->fd = -1;
	}
}

static uint64_t health_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void health_count_duration(struct runtime_server_stats *st, uint64_t dur_us)
{
	static const uint64_t le[RUNTIME_CHECK_HIST - 1] = {RUNTIME_CHECK_LE_US};
	int b = 0;

	while (b < RUNTIME_CHECK_HIST - 1 && dur_us > le[b])
		b++;
	atomic_fetch_add(&st->check_hist[b], 1);
	atomic_fetch_add(&st->check_us_sum, dur_us);
}

/* The check's outcome for the status page and the metrics. */
static void health_publish(struct health_check *c, bool ok)
{
	struct health_server *hs = &c->rp->health->srv[c->server];
	struct runtime_server_stats *st = &c->rp->stats[c->server];
	uint64_t words[HEALTH_WORDS] = {0};
	uint64_t now = health_mono_us(), dur = now > c->start_us ? now - c->start_us : 0;
	unsigned seq = atomic_load_explicit(&hs->seq, memory_order_relaxed);
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	memcpy(words, c->cause, strnlen(c->cause, sizeof(words) - 1)); /* cut to fit */
	atomic_store_explicit(&hs->seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&hs->result, ok ? HEALTH_OK : c->result, memory_order_relaxed);
	atomic_store_explicit(&hs->dur_us, dur, memory_order_relaxed);
	atomic_store_explicit(&hs->unix_ms,
			      (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000,
			      memory_order_relaxed);
	for (int i = 0; i < HEALTH_WORDS; i++)
		atomic_store_explicit(&hs->text[i], words[i], memory_order_relaxed);
	atomic_store_explicit(&hs->seq, seq + 2, memory_order_release);
	atomic_fetch_add(&st->checks[ok ? HEALTH_OK : c->result], 1);
	atomic_store(&st->check_us, dur);
	health_count_duration(st, dur);
}

void health_last_get(const struct runtime_pool *p, int s, struct health_last *out)
{
	const struct health_server *hs = p->health ? &p->health->srv[s] : NULL;
	uint64_t words[HEALTH_WORDS];

	memset(out, 0, sizeof(*out));
	out->type = health_type_name[p->cfg->check.type];
	for (int tries = 0; hs && tries < 1000; tries++) {
		unsigned seq = atomic_load_explicit(&hs->seq, memory_order_acquire);
		if (seq & 1)
			continue;
		out->result = atomic_load_explicit(&hs->result, memory_order_relaxed);
		out->dur_us = atomic_load_explicit(&hs->dur_us, memory_order_relaxed);
		out->unix_ms = atomic_load_explicit(&hs->unix_ms, memory_order_relaxed);
		for (int i = 0; i < HEALTH_WORDS; i++)
			words[i] = atomic_load_explicit(&hs->text[i], memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&hs->seq, memory_order_relaxed) != seq)
			continue;
		out->checked = seq > 0;
		memcpy(out->text, words, sizeof(out->text));
		out->text[sizeof(out->text) - 1] = '\0';
		if (out->result < 0 || out->result >= HEALTH_RESULT_N)
			out->result = HEALTH_ERROR;
		return;
	}
}

static void health_done(struct health_check *c, bool ok)
{
	uint64_t now = c->w->loop->now_ms, next = c->start_ms + c->cfg->interval_ms;

	health_publish(c, ok);
	health_close(c);
	health_count(c, ok);
	health_arm_wait(c, next > now ? next - now : 1);
}

static void __attribute__((format(printf, 2, 3)))
health_fail(struct health_check *c, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(c->cause, sizeof(c->cause), fmt, ap);
	va_end(ap);
	n = strlen(c->cause);
	/* A client certificate servers will refuse is named wherever a
	 * mutual-TLS exchange fails (not for a refused or unanswered connect:
	 * the certificate played no part there). */
	if (c->rp->health->cert_no_client && c->tls && n < sizeof(c->cause))
		snprintf(
		    c->cause + n, sizeof(c->cause) - n,
		    "; check_cert %s lacks the clientAuth purpose (Client Authentication), the "
		    "likely cause: see snatproxy -C",
		    c->cfg->cert);
	health_done(c, false);
}

static void health_fail_errno(struct health_check *c, const char *during, int err)
{
	c->result = err == -ECANCELED || err == -ETIME || err == -ETIMEDOUT ? HEALTH_TIMEOUT
		    : err == -ECONNREFUSED                                  ? HEALTH_REFUSED
		    : err == -ECONNRESET || err == -EPIPE                   ? HEALTH_RESET
									    : HEALTH_ERROR;
	if (c->result == HEALTH_TIMEOUT)
		health_fail(c, "timeout: no %s within check_timeout (%llu ms)", during,
			    (unsigned long long)c->cfg->timeout_ms);
	else if (c->result == HEALTH_REFUSED)
		health_fail(c, "connection refused");
	else if (c->result == HEALTH_RESET)
		health_fail(c, "connection reset by the server during the %s", during);
	else
		health_fail(c, "%s failed: %s", during, strerror(-err));
}

/* ---- requests in the ring ---- */

static void health_link(struct health_check *c, struct io_uring_sqe *sqe)
{
	struct loop *l = c->w->loop;
	uint64_t left = c->deadline_ms > l->now_ms ? c->deadline_ms - l->now_ms : 1;

	sqe->flags |= IOSQE_IO_LINK;
	io_uring_sqe_set_data64(sqe, loop_ud(c, c->w->op_check));
	c->ts_link.tv_sec = (long long)(left / 1000);
	c->ts_link.tv_nsec = (long long)(left % 1000) * 1000000;
	sqe = loop_sqe(l);
	io_uring_prep_link_timeout(sqe, &c->ts_link, 0);
	io_uring_sqe_set_data64(sqe, loop_ud(c, c->w->op_timeout));
	c->inflight += 2;
	c->w->inflight += 2;
}

static void health_arm_wait(struct health_check *c, uint64_t delay_ms)
{
	struct io_uring_sqe *sqe;

	if (c->w->stopping)
		return;
	sqe = loop_sqe(c->w->loop);
	c->state = ST_WAIT;
	c->ts_wait.tv_sec = (long long)(delay_ms / 1000);
	c->ts_wait.tv_nsec = (long long)(delay_ms % 1000) * 1000000;
	io_uring_prep_timeout(sqe, &c->ts_wait, 0, 0);
	io_uring_sqe_set_data64(sqe, loop_ud(c, c->w->op_check));
	c->inflight++;
	c->w->inflight++;
}

static void health_send(struct health_check *c, const void *buf, size_t len)
{
	struct io_uring_sqe *sqe = loop_sqe(c->w->loop);

	c->state = ST_SEND;
	io_uring_prep_send(sqe, c->fd, buf, len, MSG_NOSIGNAL);
	health_link(c, sqe);
}

static void health_recv(struct health_check *c, void *buf, size_t len)
{
	struct io_uring_sqe *sqe = loop_sqe(c->w->loop);

	c->state = ST_RECV;
	io_uring_prep_recv(sqe, c->fd, buf, len, 0);
	health_link(c, sqe);
}

/* check_source: the port is left to connect(), which picks it for the
 * whole 4-tuple, as the VIP's own SNAT sockets do (snat.c). */
static int health_bind(struct health_check *c)
{
	char a[ADDR_STRLEN];
	int one = 1;

	if (setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) == 0 &&
	    bind(c->fd, &c->src.sa, addr_len(&c->src.sa)) == 0)
		return 0;
	health_fail(c, "cannot bind check_source %s: %s", addr_format(&c->src.sa, a, sizeof(a)),
		    strerror(errno));
	return -1;
}

static void health_start(struct health_check *c)
{
	struct loop *l = c->w->loop;
	struct io_uring_sqe *sqe;

	c->start_ms = l->now_ms;
	c->start_us = health_mono_us();
	c->result = HEALTH_ERROR;
	c->deadline_ms = l->now_ms + c->cfg->timeout_ms;
	c->handshaken = c->eof = false;
	c->req_off = c->net_len = c->net_off = c->in_len = 0;
	/* A blocking socket: io_uring completes the connect itself, where a
	 * non-blocking one would end with EINPROGRESS (docs/engine.md). */
	c->fd = socket(c->addr.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		health_fail(c, "cannot open a socket: %s", strerror(errno));
		return;
	}
	if (c->src.sa.sa_family && health_bind(c) < 0)
		return;
	c->state = ST_CONNECT;
	sqe = loop_sqe(l);
	io_uring_prep_connect(sqe, c->fd, &c->addr.sa, addr_len(&c->addr.sa));
	health_link(c, sqe);
}

/* ---- http ---- */

static void health_host(const struct health_check *c, char *buf, size_t len)
{
	char a[ADDR_STRLEN];

	const char *name = c->rp->cfg->servers[c->server].server_name;

	if (c->cfg->host[0] || name[0]) {
		snprintf(buf, len, "%s", c->cfg->host[0] ? c->cfg->host : name);
		return;
	}
	union addr_sa sa = c->addr;
	addr_set_port(&sa.sa, 0);
	snprintf(buf, len, "%s", addr_format(&sa.sa, a, sizeof(a)));
}

static void health_build_request(struct health_check *c)
{
	static const char *const methods[] = {"GET", "HEAD", "POST"};
	char host[HEALTH_HOST_MAX];
	int n;

	health_host(c, host, sizeof(host));
	n = snprintf(c->req, sizeof(c->req),
		     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: snatproxy-health/" SNATPROXY_VERSION
		     "\r\nAccept: */*\r\nConnection: close\r\n%s\r\n",
		     methods[c->cfg->method], c->cfg->path, host,
		     c->cfg->method == CONFIG_METHOD_POST ? "Content-Length: 0\r\n" : "");
	c->req_len = n > 0 && (size_t)n < sizeof(c->req) ? (size_t)n : 0;
	c->req_off = 0;
}

static bool health_status_expected(const struct config_check *cfg, int status)
{
	for (int i = 0; i < cfg->nexpect; i++)
		if (status >= cfg->expect[i].lo && status <= cfg->expect[i].hi)
			return true;
	return false;
}

static bool health_body_has(const struct health_check *c, size_t len)
{
	return memmem(c->body, len, c->cfg->body, strlen(c->cfg->body)) != NULL;
}

/* After more of the response (or its end): returns true when the check is
 * finished (and reported), false when more bytes are needed. */
static bool health_response(struct health_check *c)
{
	struct http_response r;
	const char *why;
	unsigned flags = (c->cfg->method == CONFIG_METHOD_HEAD ? HTTP_NO_BODY : 0) |
			 (c->cfg->body[0] ? 0 : HTTP_HEADERS_ONLY);
	int ret = http_parse_response(c->in, c->in_len, c->eof, flags, c->body, sizeof(c->body), &r,
				      &why);

	if (ret == 0)
		return false;
	c->result = HEALTH_STATUS;
	if (ret > 0) /* the status, for the status page: "https 200 in 3 ms" */
		snprintf(c->cause, sizeof(c->cause), "%d", r.status);
	if (ret < 0)
		health_fail(c, "bad HTTP response: %s", why);
	else if (!health_status_expected(c->cfg, r.status))
		health_fail(c, "unexpected status: '%s'", r.status_line);
	else if (c->cfg->body[0] && !health_body_has(c, r.body_len))
		health_fail(c, "body mismatch: the response body ('%s', %zu bytes) lacks '%s'",
			    r.status_line, r.body_len, c->cfg->body);
	else
		health_done(c, true);
	return true;
}

static void health_plain_recv(struct health_check *c)
{
	health_recv(c, c->in + c->in_len, sizeof(c->in) - c->in_len);
}

/* ---- https: a TLS probe (tls.c) whose bytes the check moves ---- */

/* Sends what the TLS layer has written, if anything: returns true if it did. */
static bool health_tls_flush(struct health_check *c)
{
	size_t n = tls_probe_output(c->tls, c->net, sizeof(c->net));

	if (n == 0)
		return false;
	c->net_len = n;
	c->net_off = 0;
	health_send(c, c->net, c->net_len);
	return true;
}

static void health_tls_error(struct health_check *c)
{
	char host[HEALTH_HOST_MAX], why[HEALTH_CAUSE_MAX];

	health_host(c, host, sizeof(host));
	tls_probe_why(c->tls, host, c->cfg->ca, why, sizeof(why));
	c->result = HEALTH_TLS;
	health_fail(c, "%s", why);
}

/* One step of the exchange; returns 1 to go on, 0 when a request is in
 * flight or the check has ended. */
static int health_tls_once(struct health_check *c)
{
	int r;

	if (!c->handshaken)
		r = tls_probe_handshake(c->tls);
	else if (c->req_off < c->req_len)
		r = tls_probe_write(c->tls, c->req + c->req_off, c->req_len - c->req_off);
	else
		r = tls_probe_read(c->tls, c->in + c->in_len, sizeof(c->in) - c->in_len);
	if (r > 0) {
		if (!c->handshaken)
			c->handshaken = true;
		else if (c->req_off < c->req_len)
			c->req_off += (size_t)r;
		else if ((c->in_len += (size_t)r, health_response(c)))
			return 0;
		return 1;
	}
	if (r == 0) { /* the server's turn */
		if (!health_tls_flush(c))
			health_recv(c, c->net, sizeof(c->net));
	} else if (r == -EPIPE) {
		c->eof = true;
		if (!health_response(c))
			health_fail(c, "bad HTTP response: connection closed too early");
	} else {
		health_tls_error(c);
	}
	return 0;
}

static void health_tls_pump(struct health_check *c)
{
	while (!health_tls_flush(c) && health_tls_once(c))
		;
}

static void health_tls_begin(struct health_check *c)
{
	char host[HEALTH_HOST_MAX];

	health_host(c, host, sizeof(host));
	if (host[0] == '[') { /* an IPv6 address as in a Host header */
		memmove(host, host + 1, strlen(host));
		host[strcspn(host, "]")] = '\0';
	}
	if (!(c->tls = tls_probe_new(c->rp->health->ctx, host))) {
		health_fail(c, "out of memory for TLS");
		return;
	}
	health_build_request(c);
	health_tls_pump(c);
}

/* ---- completions ---- */

static void health_connected(struct health_check *c)
{
	switch (c->cfg->type) {
	case CONFIG_CHECK_HTTP:
		health_build_request(c);
		health_send(c, c->req, c->req_len);
		break;
	case CONFIG_CHECK_HTTPS:
		health_tls_begin(c);
		break;
	default:
		snprintf(c->cause, sizeof(c->cause), "connected");
		health_done(c, true);
	}
}

static void health_on_send(struct health_check *c, int res)
{
	bool tls = c->cfg->type == CONFIG_CHECK_HTTPS;
	size_t *off = tls ? &c->net_off : &c->req_off, len = tls ? c->net_len : c->req_len;
	const char *buf = tls ? (const char *)c->net : c->req;

	if (res <= 0) {
		health_fail_errno(c, "progress sending the request", res ? res : -EPIPE);
		return;
	}
	*off += (size_t)res;
	if (*off < len)
		health_send(c, buf + *off, len - *off);
	else if (tls)
		health_tls_pump(c);
	else
		health_plain_recv(c);
}

static void health_on_recv(struct health_check *c, int res)
{
	if (res < 0) {
		health_fail_errno(c, "response", res);
		return;
	}
	if (c->cfg->type == CONFIG_CHECK_HTTPS) {
		c->eof = res == 0;
		tls_probe_input(c->tls, c->net, (size_t)res);
		health_tls_pump(c);
		return;
	}
	c->eof = res == 0;
	c->in_len += (size_t)res;
	if (!health_response(c))
		health_plain_recv(c);
}

/* Frees the retired checks whose last request has come back. */
static void health_sweep(struct health_worker *h)
{
	struct health_check *c = LIST_FIRST(&h->retired), *next;

	for (; c; c = next) {
		next = LIST_NEXT(c, retired_link);
		if (c->inflight)
			continue;
		LIST_REMOVE(c, retired_link);
		health_close(c);
		free(c);
	}
}

static void health_on_cqe(void *ctx, void *owner, struct io_uring_cqe *cqe)
{
	struct health_check *c = owner;
	(void)ctx;

	c->inflight--;
	c->w->inflight--;
	if (c->w->stopping || c->retired) {
		health_close(c);
		health_sweep(c->w);
		return;
	}
	switch (c->state) {
	case ST_WAIT:
		if (cqe->res != -ECANCELED)
			health_start(c);
		break;
	case ST_CONNECT:
		if (cqe->res < 0)
			health_fail_errno(c, "answer to connect", cqe->res);
		else
			health_connected(c);
		break;
	case ST_SEND:
		health_on_send(c, cqe->res);
		break;
	case ST_RECV:
		health_on_recv(c, cqe->res);
		break;
	}
}

static void health_on_timeout(void *ctx, void *owner, struct io_uring_cqe *cqe)
{
	struct health_check *c = owner;
	(void)ctx;
	(void)cqe;
	c->inflight--;
	c->w->inflight--;
	if (c->retired)
		health_sweep(c->w);
}

/* ---- start: pools, TLS contexts, the client certificate ---- */

static void __attribute__((format(printf, 4, 5)))
health_msg(FILE *errs, const struct config *cfg, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(errs, "%s:%d: ", cfg->path, line);
	va_start(ap, fmt);
	vfprintf(errs, fmt, ap);
	va_end(ap);
	fputc('\n', errs);
}

/* Examines check_cert: errors for what cannot work, warnings for what
 * servers that verify their clients will refuse. Returns the number of
 * errors. */
static int health_examine_cert(struct health_pool *hp, const struct config *cfg, FILE *errs)
{
	const struct config_check *c = &hp->cfg->check;
	const char *pool = hp->cfg->name;
	int kline = c->key_line ? c->key_line : c->cert_line, n = 0;
	struct certdiag d;
	char why[CONFIG_PATH_MAX + 64];

	if (certdiag_examine(c->cert, c->key, c->ca, &d, why, sizeof(why)) < 0) {
		health_msg(errs, cfg, c->cert_line, "pool %s: check_cert: %s", pool, why);
		return 1;
	}
	if (d.key == CERTDIAG_KEY_MISMATCH)
		n++, health_msg(errs, cfg, kline,
				"pool %s: the private key in %s does not match check_cert %s", pool,
				c->key[0] ? c->key : c->cert, c->cert);
	else if (d.key == CERTDIAG_KEY_BAD)
		n++, health_msg(errs, cfg, kline, "pool %s: check_key %s: %s", pool, c->key,
				d.key_why);
	else if (d.key == CERTDIAG_KEY_NONE)
		n++, health_msg(errs, cfg, c->cert_line,
				"pool %s: no private key in check_cert %s: give check_key = FILE",
				pool, c->cert);
	if (d.expired)
		n++, health_msg(errs, cfg, c->cert_line, "pool %s: check_cert %s expired on %s",
				pool, c->cert, d.not_after);
	if (d.not_yet_valid)
		n++, health_msg(errs, cfg, c->cert_line,
				"pool %s: check_cert %s is not valid before %s", pool, c->cert,
				d.not_before);
	if (d.client_ok && c->ca[0] && d.chain_checked && d.chain_client != X509_V_OK)
		health_msg(
		    errs, cfg, c->cert_line,
		    "warning: pool %s: check_cert %s does not verify as a client certificate "
		    "against check_ca %s: %s; servers that trust the same CA will refuse it "
		    "(see snatproxy -C)",
		    pool, c->cert, c->ca, certdiag_verify_string(d.chain_client));
	if (!d.client_ok) {
		hp->cert_no_client = true;
		health_msg(
		    errs, cfg, c->cert_line,
		    "warning: pool %s: check_cert %s cannot be used for client authentication: "
		    "%s; servers that verify client certificates will refuse the https checks "
		    "(snatproxy -C %s says what to change)",
		    pool, c->cert,
		    d.has_eku ? "its extended key usage lacks clientAuth"
			      : "its key usage forbids it",
		    c->cert);
	}
	return n;
}

static int health_tls_ctx(struct health_pool *hp, const struct config *cfg, FILE *errs)
{
	const struct config_check *c = &hp->cfg->check;
	const char *pool = hp->cfg->name;
	char why[256];

	if (!(hp->ctx = tls_probe_ctx_new(c->ca, why, sizeof(why)))) {
		health_msg(errs, cfg, c->ca_line,
			   "pool %s: check_ca %s: cannot load CA certificates: %s", pool, c->ca,
			   why);
		return -EINVAL;
	}
	if (!c->cert[0])
		return 0;
	if (health_examine_cert(hp, cfg, errs))
		return -EINVAL;
	if (tls_probe_ctx_cert(hp->ctx, c->cert, c->key, why, sizeof(why)) < 0) {
		health_msg(errs, cfg, c->cert_line, "pool %s: check_cert %s: %s", pool, c->cert,
			   why);
		return -EINVAL;
	}
	return 0;
}

int health_init(struct runtime *rt, FILE *errs)
{
	const struct config *cfg = rt->cfg;
	int ret = 0;

	for (int i = 0; i < cfg->npools; i++) {
		struct runtime_pool *rp = &rt->pools[i];
		struct health_pool *hp = calloc(1, sizeof(*hp));
		if (!hp || !(hp->srv = calloc((size_t)rp->cfg->nservers, sizeof(*hp->srv)))) {
			free(hp);
			return -ENOMEM;
		}
		hp->cfg = rp->cfg;
		rp->health = hp;
		if (hp->cfg->check.type == CONFIG_CHECK_HTTPS && health_tls_ctx(hp, cfg, errs) < 0)
			ret = -EINVAL;
	}
	fflush(errs);
	return ret;
}

void health_free(struct runtime *rt)
{
	for (int i = 0; rt->pools && i < rt->cfg->npools; i++) {
		struct health_pool *hp = rt->pools[i].health;
		if (!hp)
			continue;
		tls_probe_ctx_free(hp->ctx);
		free(hp->srv);
		free(hp);
		rt->pools[i].health = NULL;
	}
}

/* ---- workers ---- */

/* check_source: its address, or the first snat address of the server's
 * family of the VIP config.c chose (none when that VIP has none). */
static void health_source(struct health_check *c, const struct config *cfg)
{
	const struct config_check *cc = c->cfg;
	int family = c->addr.sa.sa_family;

	if (cc->source == CONFIG_SOURCE_ADDR)
		memcpy(&c->src, &cc->source_addr, sizeof(c->src));
	if (cc->source != CONFIG_SOURCE_SNAT || cc->source_vip < 0)
		return;
	const struct config_vip *v = &cfg->vips[cc->source_vip];
	for (int i = 0; v->snat == CONFIG_SNAT_POOL && i < v->nsnat; i++)
		if (v->snat_addrs[i].ss_family == family) {
			memcpy(&c->src, &v->snat_addrs[i], sizeof(c->src));
			return;
		}
}

static int health_add(struct health_worker *h, struct runtime_pool *rp, int s, int g)
{
	const struct config_check *cfg = &rp->cfg->check;
	struct health_check *c = calloc(1, sizeof(*c));
	struct health_check **grown = realloc(h->checks, (size_t)(h->nchecks + 1) * sizeof(*grown));

	if (!c || !grown) {
		free(c);
		return -ENOMEM;
	}
	h->checks = grown;
	h->checks[h->nchecks++] = c;
	c->fd = -1;
	c->w = h;
	c->rp = rp;
	c->cfg = cfg;
	c->server = s;
	memcpy(&c->addr, &rp->cfg->servers[s].addr, sizeof(c->addr));
	if (cfg->port)
		addr_set_port(&c->addr.sa, cfg->port);
	health_source(c, h->rt->cfg);
	/* Spread the first checks a little, so they do not all start at once. */
	health_arm_wait(c, 1 + (uint64_t)(g * 37) %
				   (cfg->interval_ms < 1000 ? cfg->interval_ms : 1000));
	return 0;
}

static int health_worker_take(struct health_worker *h, struct runtime *rt);

int health_worker_init(struct health_worker *h, struct loop *l, struct runtime *rt, int id)
{
	memset(h, 0, sizeof(*h));
	h->loop = l;
	h->id = id;
	h->op_check = loop_register(l, health_on_cqe, h);
	h->op_timeout = loop_register(l, health_on_timeout, h);
	if (h->op_check < 0 || h->op_timeout < 0)
		return -ENOSPC;
	return health_worker_take(h, rt);
}

void health_worker_stop(struct health_worker *h)
{
	if (h->stopping)
		return;
	h->stopping = true;
	for (int i = 0; i < h->nchecks; i++)
		if (h->checks[i]->inflight)
			loop_cancel(h->loop, h->checks[i], h->op_check);
}

bool health_worker_idle(const struct health_worker *h)
{
	return h->inflight == 0;
}

/* Takes this worker's share of the servers of rt. */
static int health_worker_take(struct health_worker *h, struct runtime *rt)
{
	int g = 0;

	h->rt = rt;
	for (int p = 0; p < rt->cfg->npools; p++) {
		struct runtime_pool *rp = &rt->pools[p];
		if (!rp->health || rp->cfg->check.type == CONFIG_CHECK_NONE)
			continue;
		for (int s = 0; s < rp->cfg->nservers; s++, g++)
			if (g % rt->nworkers == h->id && health_add(h, rp, s, g) < 0)
				return -ENOMEM;
	}
	return 0;
}

int health_worker_switch(struct health_worker *h, struct runtime *rt)
{
	for (int i = 0; i < h->nchecks; i++) {
		struct health_check *c = h->checks[i];
		c->retired = true;
		LIST_INSERT_HEAD(&h->retired, c, retired_link);
		if (c->inflight)
			loop_cancel(h->loop, c, h->op_check);
	}
	free(h->checks);
	h->checks = NULL;
	h->nchecks = 0;
	health_sweep(h);
	return health_worker_take(h, rt);
}

void health_worker_free(struct health_worker *h)
{
	for (int i = 0; i < h->nchecks; i++) {
		health_close(h->checks[i]);
		free(h->checks[i]);
	}
	struct health_check *c;

	while ((c = LIST_FIRST(&h->retired))) {
		LIST_REMOVE(c, retired_link);
		health_close(c);
		free(c);
	}
	free(h->checks);
	h->checks = NULL;
	h->nchecks = 0;
}

/* ---- passive checking ---- */

const char *health_errno_text(int err)
{
	switch (err) {
	case -ECONNREFUSED:
		return "connection refused";
	case -ECANCELED:
	case -ETIMEDOUT:
		return "connect timeout";
	default:
		return strerror(-err);
	}
}

/* check = none: only client connects tell, so a server they failed is given
 * one trial connection after fail_timeout (see balance.c), and that trial's
 * success is all it takes to bring it back. */
static void health_passive_none(struct runtime_pool *p, int s, bool ok, int err)
{
	struct health_pool *hp = p->health;
	const struct config_server *cs = &hp->cfg->servers[s];
	unsigned long long wait = p->bal.fail_timeout_ms;
	char a[ADDR_STRLEN];
	int n;

	if (ok) { /* read first: no cache-line write per connection */
		if (atomic_load_explicit(&hp->srv[s].passive_fails, memory_order_relaxed))
			atomic_store(&hp->srv[s].passive_fails, 0);
		if (!balance_recover(&p->bal, s))
			return;
		runtime_state_changed(p, s, false);
		addr_format((const struct sockaddr *)&cs->addr, a, sizeof(a));
		log_info("server %s %s of pool %s is UP: a client connected to it", cs->name, a,
			 hp->cfg->name);
		return;
	}
	n = atomic_fetch_add(&hp->srv[s].passive_fails, 1) + 1;
	if (n < hp->cfg->check.fall && !(atomic_load(&p->bal.srv[s].flags) & BALANCE_DOWN))
		return;
	addr_format((const struct sockaddr *)&cs->addr, a, sizeof(a));
	if (!balance_fail(&p->bal, s)) {
		log_info("server %s %s of pool %s is still down: a client connect failed (%s); "
			 "one connection tries it again in %llu ms",
			 cs->name, a, hp->cfg->name, health_errno_text(err), wait);
		return;
	}
	atomic_store(&p->stats[s].down_err, -err);
	runtime_state_changed(p, s, true);
	log_warn("server %s %s of pool %s is DOWN: %d client connects in a row failed "
		 "(last: %s); one connection tries it again in %llu ms (fail_timeout)",
		 cs->name, a, hp->cfg->name, n, health_errno_text(err), wait);
}

void health_passive(struct runtime_pool *p, int s, bool ok, int err)
{
	struct health_pool *hp = p->health;
	const struct config_server *cs;
	char a[ADDR_STRLEN];
	int n;

	if (!hp)
		return;
	if (hp->cfg->check.type == CONFIG_CHECK_NONE) {
		if (p->bal.fail_timeout_ms)
			health_passive_none(p, s, ok, err);
		return;
	}
	if (ok) { /* read first: no cache-line write per connection */
		if (atomic_load_explicit(&hp->srv[s].passive_fails, memory_order_relaxed))
			atomic_store(&hp->srv[s].passive_fails, 0);
		return;
	}
	n = atomic_fetch_add(&hp->srv[s].passive_fails, 1) + 1;
	if (n < hp->cfg->check.fall ||
	    (atomic_fetch_or(&p->bal.srv[s].flags, BALANCE_DOWN) & BALANCE_DOWN))
		return;
	atomic_store(&p->stats[s].down_err, -err);
	runtime_state_changed(p, s, true);
	cs = &hp->cfg->servers[s];
	log_warn("server %s %s of pool %s is DOWN: %d client connects in a row failed (last: %s); "
		 "it comes back after %d successful %s check%s",
		 cs->name, addr_format((const struct sockaddr *)&cs->addr, a, sizeof(a)),
		 hp->cfg->name, n, health_errno_text(err), hp->cfg->check.rise,
		 health_type_name[hp->cfg->check.type], hp->cfg->check.rise > 1 ? "s" : "");
}
