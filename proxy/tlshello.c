/* tlshello: the SNI of a TLS ClientHello (RFC 8446 4.1.2, RFC 6066 3).
 *
 * Two layers: the records (type 22, handshake) are unwrapped into one
 * handshake message, which may be spread over several records, then the
 * ClientHello's fields are walked to its server_name extension. Every length
 * is checked against what encloses it; anything that does not fit is
 * malformed, never read past. */
#include "tlshello.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

enum {
	REC_HEADER = 5,
	REC_HANDSHAKE = 22,
	REC_MAX = 16384, /* a plaintext record's payload (2^14) */
	HS_HEADER = 4,
	HS_CLIENT_HELLO = 1,
	EXT_SERVER_NAME = 0,
	SNI_HOST_NAME = 0,
};

struct cursor {
	const unsigned char *p, *end;
	int bad;
};

static unsigned get_u8(struct cursor *c)
{
	if (c->bad || c->end - c->p < 1) {
		c->bad = 1;
		return 0;
	}
	return *c->p++;
}

static unsigned get_u16(struct cursor *c)
{
	unsigned hi = get_u8(c);
	return hi << 8 | get_u8(c);
}

/* Takes `n` bytes as a sub-cursor (bad when they are not there). */
static struct cursor take(struct cursor *c, size_t n)
{
	struct cursor sub = {c->p, c->p, 1};

	if (c->bad || (size_t)(c->end - c->p) < n) {
		c->bad = 1;
		return sub;
	}
	sub.end = c->p + n;
	sub.bad = 0;
	c->p += n;
	return sub;
}

/* A DNS host name: letters, digits, '-' and '_' in non-empty labels of at
 * most 63 characters, without a trailing dot; stored in lower case. */
static int copy_host_name(struct cursor *name, char sni[TLSHELLO_SNI_MAX])
{
	size_t n = (size_t)(name->end - name->p), label = 0;

	if (n == 0 || n >= TLSHELLO_SNI_MAX - 1)
		return -EBADMSG;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = name->p[i];
		if (ch == '.') {
			if (label == 0)
				return -EBADMSG;
			label = 0;
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
			   ch == '_') {
			label++;
		} else if (ch >= 'A' && ch <= 'Z') {
			ch = (unsigned char)(ch - 'A' + 'a');
			label++;
		} else {
			return -EBADMSG;
		}
		if (label > 63)
			return -EBADMSG;
		sni[i] = (char)ch;
	}
	if (label == 0)
		return -EBADMSG;
	sni[n] = '\0';
	return 0;
}

/* server_name extension: a list of names, of which the host_name counts. */
static int parse_server_name(struct cursor *ext, char sni[TLSHELLO_SNI_MAX])
{
	struct cursor list = take(ext, get_u16(ext));

	if (ext->bad || ext->p != ext->end || list.p == list.end)
		return -EBADMSG;
	while (list.p < list.end) {
		unsigned type = get_u8(&list);
		struct cursor name = take(&list, get_u16(&list));
		if (list.bad)
			return -EBADMSG;
		if (type == SNI_HOST_NAME)
			return copy_host_name(&name, sni);
	}
	return 0;
}

static int parse_extensions(struct cursor *body, char sni[TLSHELLO_SNI_MAX])
{
	struct cursor exts = take(body, get_u16(body));
	int seen = 0;

	if (body->bad || body->p != body->end)
		return -EBADMSG;
	while (exts.p < exts.end) {
		unsigned type = get_u16(&exts);
		struct cursor ext = take(&exts, get_u16(&exts));
		if (exts.bad)
			return -EBADMSG;
		if (type != EXT_SERVER_NAME)
			continue;
		if (seen++) /* an extension may appear once */
			return -EBADMSG;
		int ret = parse_server_name(&ext, sni);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* The ClientHello's body: version, random, session id, cipher suites,
 * compression methods, then (optionally, before TLS 1.2) extensions. */
static int parse_client_hello(struct cursor *body, char sni[TLSHELLO_SNI_MAX])
{
	unsigned major = get_u8(body);
	get_u8(body);
	take(body, 32);
	size_t sid = get_u8(body);
	take(body, sid);
	size_t suites = get_u16(body);
	take(body, suites);
	size_t comp = get_u8(body);
	take(body, comp);
	if (body->bad || major != 3 || sid > 32 || suites < 2 || suites % 2 || comp < 1)
		return -EBADMSG;
	sni[0] = '\0';
	if (body->p == body->end)
		return 0;
	return parse_extensions(body, sni);
}

/* Once the handshake header is in (`have` bytes of the message): the whole
 * message's length, or 0 when unknown yet, or -EBADMSG. */
static long hello_length(const unsigned char *msg, size_t have)
{
	if (have < HS_HEADER)
		return 0;
	if (msg[0] != HS_CLIENT_HELLO)
		return -EBADMSG;
	return (long)(HS_HEADER + ((size_t)msg[1] << 16 | (size_t)msg[2] << 8 | msg[3]));
}

/* The fewest bytes of records that can carry a message of `want` bytes, given
 * that the record at `off` (payload `rlen`) holds its bytes from `have` on: a
 * message that goes on past this record needs one more record header at
 * least. Checking this as soon as the length is known refuses a hello that
 * cannot fit at once, whichever way the client cuts it into records. */
static size_t hello_min_bytes(size_t off, size_t rlen, size_t have, size_t want)
{
	size_t rest = want - have;

	return off + REC_HEADER + rest + (rest > rlen ? REC_HEADER : 0);
}

/* Gathers the records' payloads into `msg` until the handshake message is
 * complete. Returns its length, or -EAGAIN with *need, -EBADMSG, -EMSGSIZE.
 * A record still arriving is copied too, so that a hello announcing an
 * oversized length is refused at once rather than waited for. */
static long gather(const unsigned char *p, size_t len, unsigned char *msg, size_t *need)
{
	size_t off = 0, have = 0;
	long want;

	for (;;) {
		if (off + REC_HEADER > len) {
			*need = off + REC_HEADER + 1;
			break;
		}
		size_t rlen = (size_t)p[off + 3] << 8 | p[off + 4];
		if (p[off] != REC_HANDSHAKE || p[off + 1] != 3 || rlen == 0 || rlen > REC_MAX)
			return -EBADMSG;
		if (off + REC_HEADER + rlen > TLSHELLO_MAX)
			return -EMSGSIZE;
		size_t part = len - off - REC_HEADER < rlen ? len - off - REC_HEADER : rlen;
		memcpy(msg + have, p + off + REC_HEADER, part);
		want = hello_length(msg, have + part);
		if (want < 0)
			return want;
		if (want && hello_min_bytes(off, rlen, have, (size_t)want) > TLSHELLO_MAX)
			return -EMSGSIZE;
		if (want && have + part >= (size_t)want)
			return want;
		if (part < rlen) {
			*need = off + REC_HEADER + rlen;
			break;
		}
		have += rlen;
		off += REC_HEADER + rlen;
	}
	/* Never ask for more than the caller keeps: it would wait for ever. */
	return *need > TLSHELLO_MAX ? -EMSGSIZE : -EAGAIN;
}

int tlshello_parse(const unsigned char *p, size_t len, char sni[TLSHELLO_SNI_MAX], size_t *need)
{
	/* Record payloads are at most TLSHELLO_MAX - REC_HEADER bytes in all. */
	unsigned char msg[TLSHELLO_MAX];
	long n = gather(p, len, msg, need);

	if (n < 0)
		return (int)n;
	struct cursor body = {msg + HS_HEADER, msg + n, 0};
	return parse_client_hello(&body, sni);
}

int tlshello_match(const char *pattern, const char *sni)
{
	if (pattern[0] == '*' && pattern[1] == '.') {
		const char *dot = strchr(sni, '.');
		return dot && dot > sni && strcasecmp(dot, pattern + 1) == 0;
	}
	return strcasecmp(pattern, sni) == 0;
}

int tlshello_route(const struct config_route *routes, int n, const char *sni)
{
	for (int i = 0; sni && sni[0] && i < n; i++)
		if (tlshello_match(routes[i].sni, sni))
			return i;
	return -1;
}
