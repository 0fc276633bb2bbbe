#include "privs.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* glibc has no capset(); libcap would be a dependency for one call. */
static int privs_keep_only_net_admin(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {{0}};

	data[0].effective = data[0].permitted = 1u << CAP_NET_ADMIN;
	return syscall(SYS_capset, &hdr, data) < 0 ? -errno : 0;
}

static int privs_fail(char *why, size_t len, const char *user, const char *what, int err)
{
	snprintf(why, len, "user %s: %s: %s%s", user, what, strerror(err),
		 err == EPERM ? " (only root can switch users: start as root, or remove user =)"
			      : "");
	return -err;
}

/* Single-threaded callers only (the start, -t): getpwnam's result is static. */
static struct passwd *privs_lookup(const char *user, char *why, size_t len)
{
	struct passwd *pw = getpwnam(user);

	if (!pw)
		snprintf(why, len, "user %s: no such user on this host", user);
	return pw;
}

int privs_check_user(const char *user, char *why, size_t len)
{
	return privs_lookup(user, why, len) ? 0 : -ENOENT;
}

int privs_drop(const char *user, bool keep_net_admin, char *why, size_t len)
{
	struct passwd *pw = privs_lookup(user, why, len);

	if (!pw)
		return -ENOENT;
	/* Already that user (systemd's User=): nothing to give up. */
	if (getuid() == pw->pw_uid && geteuid() == pw->pw_uid)
		return 0;
	if (keep_net_admin && prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) < 0)
		return privs_fail(why, len, user, "PR_SET_KEEPCAPS", errno);
	if (setgroups(1, &pw->pw_gid) < 0)
		return privs_fail(why, len, user, "setgroups", errno);
	if (setgid(pw->pw_gid) < 0)
		return privs_fail(why, len, user, "setgid", errno);
	if (setuid(pw->pw_uid) < 0)
		return privs_fail(why, len, user, "setuid", errno);
	if (keep_net_admin) {
		int ret = privs_keep_only_net_admin();
		prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L);
		if (ret < 0)
			return privs_fail(why, len, user, "capset CAP_NET_ADMIN", -ret);
	}
	/* A switch that could be undone was not a switch. */
	if (pw->pw_uid != 0 && setuid(0) == 0) {
		snprintf(why, len, "user %s: root privileges could be regained", user);
		return -EPERM;
	}
	return 0;
}
