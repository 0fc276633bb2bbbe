/* privs: giving up root once the sockets are bound (`user = NAME`). */
#ifndef SNATPROXY_PRIVS_H
#define SNATPROXY_PRIVS_H

#include <stdbool.h>
#include <stddef.h>

/* Switches the process to USER and its primary group, with no supplementary
 * groups. keep_net_admin keeps CAP_NET_ADMIN (and only it), which
 * transparent VIPs (snat = off) need for IP_TRANSPARENT on every connection.
 * Must run before any thread starts: capabilities are per thread, and new
 * threads inherit the caller's. Returns 0 or -errno, the reason in `why`. */
int privs_drop(const char *user, bool keep_net_admin, char *why, size_t len);

/* Does USER exist on this host? What privs_drop will look up, for `-t` and
 * the start to refuse a config naming a user that is not there. Returns 0 or
 * -ENOENT, the reason in `why`. */
int privs_check_user(const char *user, char *why, size_t len);

#endif
