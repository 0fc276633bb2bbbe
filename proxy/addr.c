/* addr: socket addresses as the configuration writes them.
 *
 * Strict on purpose: inet_pton() alone decides what an address is (no host
 * names, no "1.2.3" shorthand, no octal), and anything after the address
 * other than ":PORT" is an error, so a typo cannot turn into a different
 * address that happens to parse. */
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* Longest address text inet_pton() accepts: INET6_ADDRSTRLEN with its NUL. */
#define ADDR_TEXT_MAX INET6_ADDRSTRLEN

/* "1".."65535": digits only, so "+80", " 80", "80x" and "0x50" all fail. */
static int addr_parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;

	if (*s == '\0' || strlen(s) > 5)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	if (v < 1 || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

static int addr_from_text(const char *host, size_t len, int family, struct sockaddr_storage *out)
{
	char text[ADDR_TEXT_MAX];

	if (len == 0 || len >= sizeof(text))
		return -EINVAL;
	memcpy(text, host, len);
	text[len] = '\0';
	memset(out, 0, sizeof(*out));
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)out;
		in->sin_family = AF_INET;
		return inet_pton(AF_INET, text, &in->sin_addr) == 1 ? 0 : -EINVAL;
	}
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
	in6->sin6_family = AF_INET6;
	return inet_pton(AF_INET6, text, &in6->sin6_addr) == 1 ? 0 : -EINVAL;
}

/* Splits S into the address text and the port text (NULL when absent). */
static int addr_split(const char *s, const char **host, size_t *hlen, int *family,
		      const char **port)
{
	const char *colon = strchr(s, ':');

	*port = NULL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close)
			return -EINVAL;
		*host = s + 1;
		*hlen = (size_t)(close - s - 1);
		*family = AF_INET6;
		if (close[1] == ':')
			*port = close + 2;
		else if (close[1] != '\0')
			return -EINVAL;
		return 0;
	}
	*host = s;
	if (colon && strchr(colon + 1, ':')) {
		/* Two colons or more: a bare IPv6 address, which cannot carry a
		 * port without brackets. */
		*hlen = strlen(s);
		*family = AF_INET6;
		return 0;
	}
	*family = AF_INET;
	*hlen = colon ? (size_t)(colon - s) : strlen(s);
	if (colon)
		*port = colon + 1;
	return 0;
}

int addr_parse(const char *s, int port_rule, struct sockaddr_storage *out)
{
	const char *host, *ptext;
	size_t hlen;
	int family, ret;
	uint16_t port = 0;

	if (!s || !out)
		return -EINVAL;
	ret = addr_split(s, &host, &hlen, &family, &ptext);
	if (ret < 0)
		return ret;
	if (ptext ? port_rule == ADDR_PORT_NONE : port_rule == ADDR_PORT_REQUIRED)
		return -EINVAL;
	if (ptext && addr_parse_port(ptext, &port) < 0)
		return -EINVAL;
	ret = addr_from_text(host, hlen, family, out);
	if (ret < 0)
		return ret;
	addr_set_port((struct sockaddr *)out, port);
	return 0;
}

char *addr_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char text[ADDR_TEXT_MAX];
	const void *bin;
	uint16_t port = addr_port(sa);

	if (len == 0)
		return buf;
	if (sa->sa_family == AF_INET)
		bin = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		bin = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	else {
		snprintf(buf, len, "(family %d)", sa->sa_family);
		return buf;
	}
	if (!inet_ntop(sa->sa_family, bin, text, sizeof(text)))
		snprintf(text, sizeof(text), "?");
	if (sa->sa_family == AF_INET6)
		snprintf(buf, len, port ? "[%s]:%u" : "[%s]", text, port);
	else
		snprintf(buf, len, port ? "%s:%u" : "%s", text, port);
	return buf;
}

uint16_t addr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

void addr_set_port(struct sockaddr *sa, uint16_t port)
{
	if (sa->sa_family == AF_INET)
		((struct sockaddr_in *)sa)->sin_port = htons(port);
	else if (sa->sa_family == AF_INET6)
		((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
}

socklen_t addr_len(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return sizeof(struct sockaddr_in);
	if (sa->sa_family == AF_INET6)
		return sizeof(struct sockaddr_in6);
	return 0;
}

int addr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family || addr_port(a) != addr_port(b))
		return 0;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			      &((const struct sockaddr_in6 *)b)->sin6_addr,
			      sizeof(struct in6_addr)) == 0;
	return 0;
}
