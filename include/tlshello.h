/* tlshello: finds the server name (SNI) in a TLS ClientHello without
 * decrypting anything, and the route it chooses, so that `tls = route` can
 * pick a pool by name and forward the client's bytes untouched (nginx's
 * ssl_preread, kept apart from the relay in the same way).
 *
 * Pure functions over bytes: no allocation, no I/O. The hello may be cut into
 * several TLS records and arrive over several TCP segments; the caller keeps
 * what it has received and calls again with all of it. */
#ifndef SNATPROXY_TLSHELLO_H
#define SNATPROXY_TLSHELLO_H

#include <stddef.h>

#include "config.h"

/* Most bytes of records read to find the hello; a larger hello is refused
 * (a real one, even with post-quantum key shares, is under 2 KiB). */
#define TLSHELLO_MAX 16384
/* Room for the longest DNS name and its NUL. */
#define TLSHELLO_SNI_MAX 256

/* Parses the first `len` bytes a client sent. Returns:
 *   0          a complete hello: `sni` holds its host name in lower case,
 *              or "" when the hello carries none;
 *   -EAGAIN    incomplete: call again once at least *need bytes are there
 *              (*need is at most TLSHELLO_MAX);
 *   -EBADMSG   not a TLS ClientHello, or a malformed one (including an
 *              invalid host name);
 *   -EMSGSIZE  the hello needs more than TLSHELLO_MAX bytes of records,
 *              reported as soon as its announced length and the records
 *              so far show it (never -EAGAIN for bytes that cannot fit). */
int tlshello_parse(const unsigned char *p, size_t len, char sni[TLSHELLO_SNI_MAX], size_t *need);

/* Does host name `sni` match `pattern` ("name.example" exactly, or
 * "*.example": any one label in front of example)? Case-insensitive. */
int tlshello_match(const char *pattern, const char *sni);

/* The first of a VIP's `n` routes whose pattern matches `sni`, or -1 (no
 * SNI, or no match: the VIP's own pool). */
int tlshello_route(const struct config_route *routes, int n, const char *sni);

#endif
