/* admin: a deliberately small HTTP/1.1 server on its own thread.
 *
 * One request per connection (the response says Connection: close), read
 * whole into a fixed buffer before anything is done with it, and parsed by a
 * pure function (admin_parse_request) that the unit tests and a fuzzer drive
 * directly. Limits, so that no client can make it grow or stall, nor keep
 * another out: ADMIN_REQ_MAX bytes per request; ADMIN_CONNS_MAX connections
 * at once, of which ADMIN_PEER_MAX from one address (more get 503 at once);
 * a request head must be in within ADMIN_HEAD_MS of the accept, so a slot
 * held by an idle client is free again within about a second. The responses
 * are built from atomics (metrics.c) into memory and sent without blocking. */
#include "admin.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "budget.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"

#define ADMIN_CONNS_MAX 64
#define ADMIN_PEER_MAX  4
/* From the accept to the end of the request head, then to the end of its
 * body: a real client sends both at once; an idle one gives its slot back. */
#define ADMIN_HEAD_MS 1000
#define ADMIN_BODY_MS 1000
/* To send a response (a slow reader of a large /metrics), then to see the
 * client's FIN once it is all sent. */
#define ADMIN_WRITE_MS  5000
#define ADMIN_LINGER_MS 1000

enum admin_phase { A_FREE, A_READ, A_WRITE, A_LINGER };

/* Who a connection counts against: an IPv4 address, or an IPv6 /64 (one
 * host commonly holds a whole /64). */
struct admin_peer {
	sa_family_t family;
	unsigned char prefix[8];
};

struct admin_conn {
	int fd;
	enum admin_phase phase;
	bool head_done;
	uint64_t deadline_ms;
	struct admin_peer who;
	char peer[ADDR_STRLEN];
	size_t in_len;
	char in[ADMIN_REQ_MAX];
	char *out;
	size_t out_len, out_off;
};

struct admin {
	struct runtime *rt; /* the generation requests are answered from */
	/* A generation a reload handed over, not yet taken (NULL: none). It
	 * holds the reference the reload counted for the admin endpoint. */
	_Atomic(struct runtime *) next;
	int lfd, efd, stopfd;
	pthread_t thread;
	bool started;
	bool loopback; /* the endpoint's address: reads need no token there */
	char addr[ADDR_STRLEN];
	struct log_ratelimit rl_accept, rl_refused, rl_auth;
	struct admin_conn conns[ADMIN_CONNS_MAX];
};

struct admin_resp {
	int status;
	const char *type;
	char *body; /* malloc'd */
	size_t len;
	const char *extra; /* header lines ending in CRLF (Allow, WWW-Authenticate), or NULL */
};

static uint64_t admin_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *admin_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 303:
		return "See Other";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 431:
		return "Request Header Fields Too Large";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	default:
		return "Internal Server Error";
	}
}

/* ---- responses ---- */

static void __attribute__((format(printf, 3, 4)))
admin_text(struct admin_resp *r, int status, const char *fmt, ...)
{
	va_list ap;

	r->status = status;
	r->type = "text/plain; charset=utf-8";
	va_start(ap, fmt);
	int n = vasprintf(&r->body, fmt, ap);
	va_end(ap);
	if (n < 0) {
		r->body = NULL;
		n = 0;
	}
	r->len = (size_t)n;
}

/* Renders one of metrics.c's writers into memory. */
static void admin_render(struct admin_resp *r, const char *type,
			 void (*fn)(FILE *, const struct runtime *), const struct runtime *rt)
{
	FILE *f = open_memstream(&r->body, &r->len);

	if (!f) {
		admin_text(r, 500, "out of memory\n");
		return;
	}
	fn(f, rt);
	if (fclose(f) != 0) {
		free(r->body);
		admin_text(r, 500, "out of memory\n");
		return;
	}
	r->status = 200;
	r->type = type;
}

/* Header and body in one buffer, so one send usually does it all. */
static void admin_queue(struct admin_conn *c, struct admin_resp *r, bool head)
{
	char hdr[512];
	int n = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
			 r->status, admin_reason(r->status), r->type ? r->type : "text/plain",
			 r->len, r->extra ? r->extra : "");
	size_t blen = head ? 0 : r->len;

	c->out = malloc((size_t)n + blen);
	if (c->out) {
		memcpy(c->out, hdr, (size_t)n);
		if (blen)
			memcpy(c->out + n, r->body, blen);
		c->out_len = (size_t)n + blen;
	}
	c->out_off = 0;
	c->phase = A_WRITE;
	c->deadline_ms = admin_now_ms() + ADMIN_WRITE_MS;
	free(r->body);
}

/* ---- operator actions ---- */

static int admin_find_pool(const struct runtime *rt, const char *name)
{
	for (int p = 0; p < rt->cfg->npools; p++)
		if (strcmp(rt->cfg->pools[p].name, name) == 0)
			return p;
	return -1;
}

static int admin_find_server(const struct config_pool *cp, const char *name)
{
	for (int i = 0; i < cp->nservers; i++)
		if (strcmp(cp->servers[i].name, name) == 0)
			return i;
	return -1;
}

/* drain: no new connections, open ones go on; disable: no new ones, and the
 * workers close the open ones at their next tick; enable: undoes both (a
 * server that fails its health checks stays down until they pass). */
static int admin_act(struct runtime *rt, struct runtime_pool *p, int i, const char *action)
{
	struct balance_server *s = &p->bal.srv[i];
	unsigned was = atomic_load(&s->flags);

	if (strcmp(action, "drain") == 0) {
		atomic_fetch_or(&s->flags, BALANCE_DRAIN);
	} else if (strcmp(action, "disable") == 0) {
		atomic_fetch_or(&s->flags, BALANCE_DISABLED);
		atomic_fetch_add(&rt->root->kick, 1);
	} else if (strcmp(action, "enable") == 0) {
		atomic_fetch_and(&s->flags, ~(unsigned)(BALANCE_DRAIN | BALANCE_DISABLED));
	} else {
		return -EINVAL;
	}
	if (strcmp(metrics_state_name(was), metrics_state_name(atomic_load(&s->flags))) != 0)
		runtime_state_changed(p, i, false);
	return 0;
}

/* POST /pools/POOL/servers/SERVER/ACTION; the path is already split. */
static void admin_server_action(struct admin *a, struct admin_conn *c, struct admin_resp *r,
				char **seg, bool form)
{
	struct runtime *rt = a->rt;
	int p = admin_find_pool(rt, seg[1]);

	if (p < 0)
		return admin_text(r, 404, "no pool named '%s'\n", seg[1]);
	int i = admin_find_server(&rt->cfg->pools[p], seg[3]);
	if (i < 0)
		return admin_text(r, 404, "pool %s has no server named '%s'\n", seg[1], seg[3]);
	struct balance_server *s = &rt->pools[p].bal.srv[i];
	if (admin_act(rt, &rt->pools[p], i, seg[4]) < 0)
		return admin_text(r, 404, "unknown action '%s': use drain, disable or enable\n",
				  seg[4]);
	const char *st = metrics_state_name(atomic_load(&s->flags));
	log_info("admin %s: pool %s server %s: %s (now %s)", c->peer, seg[1], seg[3], seg[4], st);
	admin_text(r, 200, "pool %s server %s: %s, now %s\n", seg[1], seg[3], seg[4], st);
	if (form) { /* the status page's buttons: back to the page */
		r->status = 303;
		r->extra = "Location: /\r\n";
	}
}

/* GET /ready: what keepalived's or the BGP daemon's poller asks. */
static void admin_ready(struct admin *a, struct admin_resp *r)
{
	char why[256];

	admin_text(r, runtime_ready(a->rt, why, sizeof(why)) == 0 ? 200 : 503, "%s", why);
}

/* POST /drain and /undrain: /ready says 503 but new connections are still
 * taken, so that traffic moves away before anything is refused. A stop
 * (SIGTERM) cannot be undone from here. */
static void admin_node_action(struct admin *a, struct admin_conn *c, struct admin_resp *r,
			      bool drain)
{
	_Atomic int *state = &a->rt->root->state;
	int want = drain ? RUNTIME_SERVING : RUNTIME_DRAINED;

	if (atomic_compare_exchange_strong(state, &want,
					   drain ? RUNTIME_DRAINED : RUNTIME_SERVING)) {
		log_info("admin %s: node %s: GET /ready now answers %d", c->peer,
			 drain ? "drained" : "undrained", drain ? 503 : 200);
	} else if (want >= RUNTIME_STOP_DRAIN) {
		return admin_text(r, 409, "the node is stopping (SIGTERM): nothing to %s\n",
				  drain ? "drain" : "undrain");
	}
	admin_text(r, 200, "node %s: /ready answers %s\n", drain ? "draining" : "serving",
		   drain ? "503; new connections are still taken" : "200 when a server is up");
}

/* Splits "/a/b/c" into at most `max` segments in place; returns how many
 * ("/" has none), or -1 for an empty segment or too many of them. */
static int admin_split(char *path, char **seg, int max)
{
	size_t len = strlen(path);
	char *save = NULL;
	int n = 0;

	if (path[0] != '/' || strstr(path, "//") || (len > 1 && path[len - 1] == '/'))
		return -1;
	for (char *t = strtok_r(path + 1, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (n == max)
			return -1;
		seg[n++] = t;
	}
	return n;
}

/* Compared in constant time over the longest token, so that the time taken
 * says nothing of how much of a guess was right (nor of the token's length). */
static bool admin_token_ok(const char *want, const char *given)
{
	unsigned char a[CONFIG_TOKEN_MAX + 1] = {0}, b[CONFIG_TOKEN_MAX + 1] = {0};
	size_t wl = strlen(want), gl = strlen(given);

	memcpy(a, want, wl);
	memcpy(b, given, gl);
	return (CRYPTO_memcmp(a, b, sizeof(a)) == 0) & (wl == gl) & (gl > 0);
}

/* With a token configured, every request needs it but reads (GET, HEAD) on a
 * loopback endpoint. Returns whether the request may go on; if not, r holds
 * the 401. */
static bool admin_authorized(struct admin *a, struct admin_conn *c, const struct admin_request *q,
			     struct admin_resp *r)
{
	const char *want = a->rt->cfg->admin_token;
	bool read = q->head || strcmp(q->method, "GET") == 0;
	unsigned long suppressed;

	if (!want[0] || (read && a->loopback) || admin_token_ok(want, q->token))
		return true;
	r->extra = "WWW-Authenticate: Bearer realm=\"snatproxy\"\r\n";
	admin_text(r, 401, "%s: send Authorization: Bearer TOKEN (the admin_token_file's)\n",
		   q->auth ? "wrong or malformed bearer token" : "this request needs a token");
	if (log_ratelimit(&a->rl_auth, 10000, &suppressed))
		log_warn("admin %s: 401 %s %s: %s (%lu more refused since the last message)",
			 c->peer, q->method, q->path, q->auth ? "wrong token" : "no token",
			 suppressed);
	return false;
}

/* GET /connections[?FILTERS]: the workers' open connections (ledger.c). */
static void admin_connections(struct admin *a, const char *target, struct admin_resp *r)
{
	const char *query = strchr(target, '?');
	struct ledger_filter f;
	char why[128];
	bool truncated = false;

	if (ledger_parse_query(query ? query + 1 : "", &f, why, sizeof(why)) < 0)
		return admin_text(r, 400, "%s", why);
	int ret = ledger_collect(a->rt->root->ledger, &f, &r->body, &r->len, &truncated);
	if (ret == -EBUSY)
		return admin_text(r, 503, "a worker is still answering an earlier request\n");
	if (ret < 0)
		return admin_text(r, 500, "out of memory\n");
	r->status = 200;
	r->type = "application/json";
	/* More matched than the limit, or a worker did not answer in time. */
	r->extra = truncated ? "X-Snatproxy-Truncated: 1\r\n" : NULL;
}

static void admin_route(struct admin *a, struct admin_conn *c, const struct admin_request *q,
			struct admin_resp *r)
{
	bool get = strcmp(q->method, "GET") == 0 || q->head;
	bool post = strcmp(q->method, "POST") == 0;
	char path[sizeof(q->path)], *seg[6];

	if (!admin_authorized(a, c, q, r))
		return;
	snprintf(path, sizeof(path), "%s", q->path);
	path[strcspn(path, "?")] = '\0'; /* query strings are ignored */
	int n = admin_split(path, seg, 6);
	if (n == 1 && (strcmp(seg[0], "connections") == 0 || strcmp(seg[0], "snat") == 0)) {
		if (!get) {
			r->extra = "Allow: GET, HEAD\r\n";
			return admin_text(r, 405, "%s %s: only GET or HEAD here\n", q->method,
					  q->path);
		}
		if (seg[0][0] == 'c')
			return admin_connections(a, q->path, r);
		return admin_render(r, "application/json", budget_json, a->rt);
	}
	if (n == 0 ||
	    (n == 1 && (strcmp(seg[0], "metrics") == 0 || strcmp(seg[0], "stats") == 0))) {
		if (!get) {
			r->extra = "Allow: GET, HEAD\r\n";
			return admin_text(r, 405, "%s %s: only GET or HEAD here\n", q->method,
					  q->path);
		}
		if (n == 0)
			return admin_render(r, "text/html; charset=utf-8", metrics_html, a->rt);
		if (seg[0][0] == 'm')
			return admin_render(r, "text/plain; version=0.0.4; charset=utf-8",
					    metrics_prometheus, a->rt);
		return admin_render(r, "application/json", metrics_json, a->rt);
	}
	if (n == 1 && strcmp(seg[0], "ready") == 0) {
		if (!get) {
			r->extra = "Allow: GET, HEAD\r\n";
			return admin_text(r, 405, "%s %s: only GET or HEAD here\n", q->method,
					  q->path);
		}
		return admin_ready(a, r);
	}
	if (n == 1 && (strcmp(seg[0], "drain") == 0 || strcmp(seg[0], "undrain") == 0)) {
		if (!post) {
			r->extra = "Allow: POST\r\n";
			return admin_text(r, 405, "%s %s: only POST here\n", q->method, q->path);
		}
		return admin_node_action(a, c, r, seg[0][0] == 'd');
	}
	if (n == 5 && strcmp(seg[0], "pools") == 0 && strcmp(seg[2], "servers") == 0) {
		if (!post) {
			r->extra = "Allow: POST\r\n";
			return admin_text(r, 405, "%s %s: only POST here\n", q->method, q->path);
		}
		return admin_server_action(a, c, r, seg, q->form);
	}
	admin_text(
	    r, 404,
	    "no such path %s: try /, /metrics, /stats, /connections, /snat, /ready, POST "
	    "/drain, POST /undrain or POST /pools/POOL/servers/SERVER/{drain,disable,enable}\n",
	    q->path);
}

/* ---- requests: a pure parser ---- */

/* Refuses the request with `status`; returns -1. */
static int __attribute__((format(printf, 3, 4)))
admin_refuse(struct admin_request *q, int status, const char *fmt, ...)
{
	va_list ap;

	q->status = status;
	va_start(ap, fmt);
	vsnprintf(q->why, sizeof(q->why), fmt, ap);
	va_end(ap);
	return -1;
}

/* The request line: METHOD SP /TARGET SP HTTP/1.x, printable ASCII only.
 * Returns 0, or -1 with q refused. */
static int admin_request_line(const char *line, size_t len, struct admin_request *q)
{
	const char *sp1 = memchr(line, ' ', len);
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - line)) : NULL;
	size_t mlen = sp1 ? (size_t)(sp1 - line) : 0;

	for (size_t i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] >= 0x7f)
			return admin_refuse(q, 400,
					    "bad request line: control or non-ASCII byte\n");
	if (!sp2 || mlen == 0 || mlen >= sizeof(q->method) ||
	    strspn(line, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") < mlen)
		return admin_refuse(q, 400, "bad request line: expected METHOD /PATH HTTP/1.1\n");
	size_t vlen = len - (size_t)(sp2 + 1 - line);
	if (vlen != 8 || (strncmp(sp2 + 1, "HTTP/1.1", 8) && strncmp(sp2 + 1, "HTTP/1.0", 8)))
		return admin_refuse(q, 400, "bad request line: expected HTTP/1.1 or HTTP/1.0\n");
	size_t tlen = (size_t)(sp2 - sp1 - 1);
	if (tlen == 0 || sp1[1] != '/')
		return admin_refuse(q, 400, "bad request target: it must start with /\n");
	if (tlen >= sizeof(q->path))
		return admin_refuse(q, 414, "request target longer than %zu bytes\n",
				    sizeof(q->path) - 1);
	memcpy(q->method, line, mlen);
	q->method[mlen] = '\0';
	memcpy(q->path, sp1 + 1, tlen);
	q->path[tlen] = '\0';
	q->head = strcmp(q->method, "HEAD") == 0;
	return 0;
}

static bool admin_is_name(const char *name, size_t nlen, const char *want)
{
	return nlen == strlen(want) && strncasecmp(name, want, nlen) == 0;
}

/* Content-Length: digits only; a second one must agree (RFC 9112 6.3). */
static int admin_content_length(const char *v, size_t vlen, struct admin_request *q, long *cl)
{
	long n = 0;

	if (vlen == 0 || strspn(v, "0123456789") < vlen)
		return admin_refuse(q, 400, "bad Content-Length\n");
	for (size_t i = 0; i < vlen && n <= ADMIN_REQ_MAX; i++)
		n = n * 10 + (v[i] - '0'); /* past the limit: 413 anyway */
	if (*cl >= 0 && *cl != n)
		return admin_refuse(q, 400, "two different Content-Length headers\n");
	if (n > ADMIN_REQ_MAX)
		return admin_refuse(q, 413, "request body longer than %d bytes\n", ADMIN_REQ_MAX);
	*cl = n;
	return 0;
}

/* Authorization: Bearer TOKEN. Any other scheme, or a token too long to be
 * the configured one, counts as given but unusable (a 401 later). */
static int admin_authorization(const char *v, size_t vlen, struct admin_request *q)
{
	if (q->auth)
		return admin_refuse(q, 400, "two Authorization headers\n");
	q->auth = true;
	if (vlen < 7 || strncasecmp(v, "Bearer ", 7) != 0)
		return 0;
	size_t skip = 7;
	while (skip < vlen && v[skip] == ' ')
		skip++;
	if (vlen - skip <= CONFIG_TOKEN_MAX) {
		memcpy(q->token, v + skip, vlen - skip);
		q->token[vlen - skip] = '\0';
	}
	return 0;
}

/* One header line (without its CRLF): NAME ":" OWS VALUE OWS, the name a
 * token, the value without control bytes. Returns 0, or -1 with q refused. */
static int admin_header_line(const char *l, size_t len, struct admin_request *q, long *cl)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~0123456789"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	const char *colon = memchr(l, ':', len);

	if (l[0] == ' ' || l[0] == '\t')
		return admin_refuse(q, 400, "obsolete line folding in the headers\n");
	size_t nlen = colon ? (size_t)(colon - l) : 0, i = nlen + 1;
	for (size_t k = 0; k < nlen; k++)
		if (!l[k] || !strchr(tchar, l[k]))
			nlen = 0;
	if (nlen == 0)
		return admin_refuse(q, 400, "bad header line: expected NAME: VALUE\n");
	while (i < len && (l[i] == ' ' || l[i] == '\t'))
		i++;
	while (len > i && (l[len - 1] == ' ' || l[len - 1] == '\t'))
		len--;
	for (size_t k = i; k < len; k++)
		if (((unsigned char)l[k] < 0x20 && l[k] != '\t') || l[k] == 0x7f)
			return admin_refuse(q, 400, "control byte in the %.*s header\n",
					    (int)(nlen < 40 ? nlen : 40), l);
	if (admin_is_name(l, nlen, "Transfer-Encoding"))
		return admin_refuse(q, 501, "Transfer-Encoding is not supported here\n");
	if (admin_is_name(l, nlen, "Content-Length"))
		return admin_content_length(l + i, len - i, q, cl);
	if (admin_is_name(l, nlen, "Authorization"))
		return admin_authorization(l + i, len - i, q);
	if (admin_is_name(l, nlen, "Content-Type"))
		q->form = len - i >= 33 &&
			  strncasecmp(l + i, "application/x-www-form-urlencoded", 33) == 0;
	return 0;
}

static int admin_hex(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = (char)(ch | 0x20);
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* A form's body (the status page's buttons): its `token` field stands for
 * an Authorization header, which a plain HTML form cannot send. The value
 * is percent-decoded; one too long or malformed counts as given but
 * unusable, as a bad header would. */
static void admin_form(const char *b, size_t len, struct admin_request *q)
{
	size_t i = 0, n = 0;

	while (i < len &&
	       !(len - i >= 6 && strncmp(b + i, "token=", 6) == 0 && (i == 0 || b[i - 1] == '&'))) {
		const char *amp = memchr(b + i, '&', len - i);
		i = amp ? (size_t)(amp - b) + 1 : len;
	}
	if (i >= len || q->auth)
		return;
	q->auth = true;
	for (i += 6; i < len && b[i] != '&'; i++) {
		int c = (unsigned char)b[i], hi, lo;
		if (c == '%') {
			if (i + 2 >= len || (hi = admin_hex(b[i + 1])) < 0 ||
			    (lo = admin_hex(b[i + 2])) < 0)
				goto bad;
			c = hi * 16 + lo;
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (c < 0x21 || c > 0x7e || n == CONFIG_TOKEN_MAX)
			goto bad;
		q->token[n++] = (char)c;
	}
	q->token[n] = '\0';
	return;
bad:
	q->token[0] = '\0';
}

/* Checks one byte of the head: lines must end in CRLF, and a bare LF or CR
 * is refused at once (RFC 9112 2.2 lets a server choose), where waiting for
 * a CRLF CRLF that a client will never send would hold its slot until the
 * timeout. Returns 0, or -1 with q refused. */
static int admin_head_byte(const char *buf, size_t i, size_t n, struct admin_request *q)
{
	if (buf[i] == '\0')
		return admin_refuse(q, 400, "NUL byte in the request head\n");
	if (buf[i] == '\r' && i + 1 < n && buf[i + 1] != '\n')
		return admin_refuse(q, 400, "bare CR in the request head\n");
	if (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r'))
		return admin_refuse(q, 400, "bare LF in the request head: end lines in CRLF\n");
	return 0;
}

/* Checks the body's length once the head is complete; returns -EAGAIN or 0. */
static int admin_body(size_t len, size_t head_len, long cl, struct admin_request *q)
{
	q->head_len = head_len;
	if (cl < 0)
		cl = 0;
	if ((size_t)cl > ADMIN_REQ_MAX - head_len) {
		admin_refuse(q, 413, "request body longer than %zu bytes\n",
			     ADMIN_REQ_MAX - head_len);
		return 0;
	}
	q->length = head_len + (size_t)cl;
	return len >= q->length ? 0 : -EAGAIN;
}

/* Each line is checked as soon as its CRLF arrives, so that a request is
 * refused at the first wrong line rather than at the end of its head. The
 * whole input is read again on each call: it is at most ADMIN_REQ_MAX bytes,
 * and keeping no state between calls keeps the function pure. */
int admin_parse_request(const char *buf, size_t len, struct admin_request *q)
{
	size_t n = len < ADMIN_REQ_MAX ? len : ADMIN_REQ_MAX, start = 0;
	long cl = -1;

	memset(q, 0, sizeof(*q));
	for (size_t i = 0; i < n; i++) {
		if (admin_head_byte(buf, i, n, q) < 0)
			return 0;
		if (buf[i] != '\n')
			continue;
		const char *line = buf + start;
		size_t llen = i - 1 - start;
		start = i + 1;
		if (line == buf) {
			if (admin_request_line(line, llen, q) < 0)
				return 0;
		} else if (llen == 0) {
			int ret = admin_body(len, i + 1, cl, q);
			if (ret == 0 && !q->status && q->form)
				admin_form(buf + q->head_len, q->length - q->head_len, q);
			return ret;
		} else if (admin_header_line(line, llen, q, &cl) < 0) {
			return 0;
		}
	}
	if (len >= ADMIN_REQ_MAX)
		admin_refuse(q, 431, "request head longer than %d bytes\n", ADMIN_REQ_MAX);
	return len >= ADMIN_REQ_MAX ? 0 : -EAGAIN;
}

/* ---- connections ---- */

static void admin_end(struct admin *a, struct admin_conn *c)
{
	epoll_ctl(a->efd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->out);
	c->out = NULL;
	c->phase = A_FREE;
}

static void admin_watch(struct admin *a, struct admin_conn *c, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = c};
	epoll_ctl(a->efd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Sends what it can; once all is sent, shuts the write side and reads until
 * the client closes, so that unread bytes never turn the close into a reset
 * that could destroy the response in flight. */
static void admin_write(struct admin *a, struct admin_conn *c)
{
	while (c->out && c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0)
			return admin_end(a, c);
		c->out_off += (size_t)n;
	}
	shutdown(c->fd, SHUT_WR);
	c->phase = A_LINGER;
	c->deadline_ms = admin_now_ms() + ADMIN_LINGER_MS;
	admin_watch(a, c, EPOLLIN);
}

static void admin_respond(struct admin *a, struct admin_conn *c)
{
	struct admin_request q;
	struct admin_resp r = {0};

	if (admin_parse_request(c->in, c->in_len, &q) == -EAGAIN) {
		if (q.head_len && !c->head_done) {
			c->head_done = true;
			c->deadline_ms = admin_now_ms() + ADMIN_BODY_MS;
		}
		return;
	}
	if (q.status)
		admin_text(&r, q.status, "%s", q.why);
	else
		admin_route(a, c, &q, &r);
	admin_queue(c, &r, q.head);
	admin_watch(a, c, EPOLLOUT);
	admin_write(a, c);
}

static void admin_read(struct admin *a, struct admin_conn *c)
{
	char sink[512];

	for (;;) {
		bool linger = c->phase == A_LINGER;
		char *dst = linger ? sink : c->in + c->in_len;
		size_t room = linger ? sizeof(sink) : ADMIN_REQ_MAX - c->in_len;
		ssize_t n = recv(c->fd, dst, room, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0)
			return admin_end(a, c);
		if (linger)
			continue;
		c->in_len += (size_t)n;
		admin_respond(a, c);
		if (c->phase != A_READ)
			return;
	}
}

/* A last word to a client about to be closed, best effort: never waits. */
static void admin_say(int fd, int status, const char *body)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf),
			 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n%s",
			 status, admin_reason(status), strlen(body), body);
	ssize_t sent = send(fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)sent;
}

static struct admin_peer admin_peer_of(const struct sockaddr_storage *ss)
{
	struct admin_peer p = {.family = ss->ss_family};

	if (ss->ss_family == AF_INET) {
		memcpy(p.prefix, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a)) { /* an IPv4 client of a dual-stack socket */
			p.family = AF_INET;
			memcpy(p.prefix, a->s6_addr + 12, 4);
		} else {
			memcpy(p.prefix, a->s6_addr, 8);
		}
	}
	return p;
}

/* A free slot for a client from `who`, or NULL with the reason in *why. */
static struct admin_conn *admin_slot(struct admin *a, const struct admin_peer *who,
				     const char **why)
{
	struct admin_conn *free_slot = NULL;
	int same = 0;

	for (int i = 0; i < ADMIN_CONNS_MAX; i++) {
		struct admin_conn *c = &a->conns[i];
		if (c->phase == A_FREE)
			free_slot = free_slot ? free_slot : c;
		else if (memcmp(&c->who, who, sizeof(*who)) == 0)
			same++;
	}
	if (same >= ADMIN_PEER_MAX)
		*why = "too many admin connections from this address\n";
	else if (!free_slot)
		*why = "too many admin connections\n";
	return same >= ADMIN_PEER_MAX ? NULL : free_slot;
}

/* Refused before it was taken in: a 503 on the way out, and a log line now
 * and then (a flood must not become a flood of lines). */
static void admin_refuse_conn(struct admin *a, int fd, const struct sockaddr_storage *ss,
			      const char *why)
{
	char peer[ADDR_STRLEN];
	unsigned long suppressed;

	admin_say(fd, 503, why);
	close(fd);
	if (!log_ratelimit(&a->rl_refused, 10000, &suppressed))
		return;
	addr_format((const struct sockaddr *)ss, peer, sizeof(peer));
	log_warn("admin %s: refused %s: %.*s (%lu more refused since the last message)", a->addr,
		 peer, (int)strcspn(why, "\n"), why, suppressed);
}

/* The listener stays readable while accept fails for want of descriptors or
 * memory: pause this thread (never a worker) instead of spinning on it. */
static void admin_accept_failed(struct admin *a, int err)
{
	const struct timespec pause = {.tv_sec = 0, .tv_nsec = 100 * 1000000L};
	unsigned long suppressed;

	if (err == EAGAIN || err == EINTR || err == ECONNABORTED)
		return;
	if (log_ratelimit(&a->rl_accept, 10000, &suppressed))
		log_warn("admin %s: accept: %s (%lu more since the last message)", a->addr,
			 strerror(err), suppressed);
	nanosleep(&pause, NULL);
}

static void admin_accept(struct admin *a)
{
	struct sockaddr_storage ss;
	socklen_t len;
	const char *why = NULL;
	int fd;

	for (;;) {
		len = sizeof(ss);
		fd = accept4(a->lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return admin_accept_failed(a, errno);
		struct admin_peer who = admin_peer_of(&ss);
		struct admin_conn *c = admin_slot(a, &who, &why);
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		if (!c || epoll_ctl(a->efd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			admin_refuse_conn(a, fd, &ss, c ? "out of memory\n" : why);
			continue;
		}
		c->fd = fd;
		c->phase = A_READ;
		c->head_done = false;
		c->in_len = 0;
		c->out = NULL;
		c->deadline_ms = admin_now_ms() + ADMIN_HEAD_MS;
		c->who = who;
		addr_format((struct sockaddr *)&ss, c->peer, sizeof(c->peer));
	}
}

/* Connections past their deadline: a request still incomplete gets 408. */
static void admin_sweep(struct admin *a)
{
	uint64_t now = admin_now_ms();

	for (int i = 0; i < ADMIN_CONNS_MAX; i++) {
		struct admin_conn *c = &a->conns[i];
		if (c->phase == A_FREE || now < c->deadline_ms)
			continue;
		if (c->phase == A_READ)
			admin_say(c->fd, 408,
				  c->head_done ? "request body not complete within 1s\n"
					       : "request head not complete within 1s\n");
		admin_end(a, c);
	}
}

static void admin_event(struct admin *a, struct epoll_event *ev)
{
	struct admin_conn *c = ev->data.ptr;

	if (c->phase == A_FREE)
		return;
	if (c->phase == A_WRITE)
		admin_write(a, c);
	else
		admin_read(a, c);
}

static void *admin_main(void *arg)
{
	struct admin *a = arg;
	struct epoll_event ev[32];

	for (;;) {
		struct runtime *next = atomic_exchange(&a->next, NULL);
		if (next) { /* a reload: let the old generation go */
			atomic_fetch_sub(&a->rt->refs, 1);
			a->rt = next;
		}
		metrics_sample(a->rt);
		int n = epoll_wait(a->efd, ev, 32, 250);
		if (n < 0 && errno != EINTR) {
			log_err("admin %s: epoll_wait: %s; the admin endpoint stops", a->addr,
				strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			if (ev[i].data.ptr == &a->stopfd)
				return NULL;
			if (ev[i].data.ptr == &a->lfd)
				admin_accept(a);
			else
				admin_event(a, &ev[i]);
		}
		admin_sweep(a);
	}
}

/* ---- public ---- */

static int admin_listen(struct admin *a, const struct sockaddr *addr, char *why, size_t len)
{
	int one = 1, err;

	a->lfd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->lfd < 0 || setsockopt(a->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(a->lfd, addr, addr_len(addr)) < 0 || listen(a->lfd, ADMIN_CONNS_MAX) < 0) {
		err = errno;
		snprintf(why, len, "admin %s: cannot listen: %s%s", a->addr, strerror(err),
			 err == EADDRINUSE ? " (another program holds this address and port)" : "");
		return -err;
	}
	a->efd = epoll_create1(EPOLL_CLOEXEC);
	a->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event el = {.events = EPOLLIN, .data.ptr = &a->lfd};
	struct epoll_event es = {.events = EPOLLIN, .data.ptr = &a->stopfd};
	if (a->efd < 0 || a->stopfd < 0 || epoll_ctl(a->efd, EPOLL_CTL_ADD, a->lfd, &el) < 0 ||
	    epoll_ctl(a->efd, EPOLL_CTL_ADD, a->stopfd, &es) < 0) {
		err = errno;
		snprintf(why, len, "admin %s: %s", a->addr, strerror(err));
		return -err;
	}
	return 0;
}

int admin_open(struct admin **out, struct runtime *rt, const struct sockaddr *addr, char *why,
	       size_t len)
{
	struct admin *a = calloc(1, sizeof(*a));

	*out = NULL;
	if (!a) {
		snprintf(why, len, "admin: out of memory");
		return -ENOMEM;
	}
	a->rt = rt;
	a->lfd = a->efd = a->stopfd = -1;
	addr_format(addr, a->addr, sizeof(a->addr));
	a->loopback = config_addr_loopback(addr);
	int ret = admin_listen(a, addr, why, len);
	if (ret < 0) {
		admin_close(a);
		return ret;
	}
	*out = a;
	return 0;
}

int admin_start(struct admin *a)
{
	int ret = pthread_create(&a->thread, NULL, admin_main, a);

	a->started = ret == 0;
	if (ret == 0) {
		pthread_setname_np(a->thread, "admin");
		log_info("admin endpoint on http://%s/", a->addr);
	}
	return -ret;
}

/* Two reloads within one of the admin thread's waits: the generation it
 * never took gives back its reference here, or it would never be freed. */
void admin_set_runtime(struct admin *a, struct runtime *rt)
{
	struct runtime *skipped = a ? atomic_exchange(&a->next, rt) : NULL;

	if (skipped)
		atomic_fetch_sub(&skipped->refs, 1);
}

void admin_close(struct admin *a)
{
	uint64_t one = 1;

	if (!a)
		return;
	if (a->started) {
		if (write(a->stopfd, &one, sizeof(one)) < 0)
			log_warn("admin %s: cannot stop its thread: %s", a->addr, strerror(errno));
		pthread_join(a->thread, NULL);
	}
	for (int i = 0; i < ADMIN_CONNS_MAX; i++)
		if (a->conns[i].phase != A_FREE)
			admin_end(a, &a->conns[i]);
	if (a->lfd >= 0)
		close(a->lfd);
	if (a->efd >= 0)
		close(a->efd);
	if (a->stopfd >= 0)
		close(a->stopfd);
	free(a);
}
