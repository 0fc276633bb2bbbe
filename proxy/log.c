/* log: timestamped lines on stderr.
 *
 * Each message is formatted into a stack buffer and written with one write(2):
 * writes of up to PIPE_BUF bytes to a pipe are atomic, and journald or a shell
 * redirect reads stderr through a pipe or a file opened O_APPEND, so lines
 * from several workers never interleave and no lock is needed. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Below PIPE_BUF (4096 on Linux), so one write stays atomic on a pipe. */
#define LOG_LINE_MAX 2048

static _Atomic int log_level = LOG_INFO;

/* The access log: its descriptor keeps its number for the life of the
 * process; a reopen dup2()s the new file onto it, which the kernel does
 * atomically, so writers never see a closed or half-switched descriptor. */
static _Atomic int access_fd = STDERR_FILENO;
static _Atomic bool access_json;
static char access_path[256];

static const char *const log_names[] = {
    [LOG_ERR] = "ERROR",
    [LOG_WARN] = "WARN",
    [LOG_INFO] = "INFO",
    [LOG_DEBUG] = "DEBUG",
};

void log_set_level(enum log_level level)
{
	atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

/* "2026-11-25T10:00:00.123Z": UTC, so lines from hosts in different zones
 * (the proxy and the pool's servers) can be compared directly. */
static size_t log_timestamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 ts.tv_nsec / 1000000);
	return n < 0 ? 0 : (size_t)n >= len ? len - 1 : (size_t)n;
}

/* Messages may quote what a peer or a config file sent: control characters
 * would let them forge extra log lines, so they become '?'. */
static void log_sanitize(char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = '?';
}

static void log_write_fd(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

static void log_write(const char *buf, size_t len)
{
	log_write_fd(STDERR_FILENO, buf, len);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char cut[] = "...";
	char buf[LOG_LINE_MAX];
	int saved = errno; /* callers may log between a failure and using errno */
	va_list ap;

	if ((unsigned)level > LOG_DEBUG)
		level = LOG_ERR;
	if ((int)level > atomic_load_explicit(&log_level, memory_order_relaxed))
		return;
	size_t n = log_timestamp(buf, sizeof(buf));
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, " %s ", log_names[level]);

	/* Room is kept for the newline; a message that does not fit is cut
	 * and ends with "..." so the reader knows. */
	size_t room = sizeof(buf) - n - 1;
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, room + 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	if ((size_t)m > room) {
		m = (int)room;
		memcpy(buf + n + room - (sizeof(cut) - 1), cut, sizeof(cut) - 1);
	}
	log_sanitize(buf + n, (size_t)m);
	n += (size_t)m;
	buf[n++] = '\n';
	log_write(buf, n);
	errno = saved;
}

static unsigned long long log_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
}

/* Lock-free: the thread that moves next_ms forward with its compare-exchange
 * owns this interval's message; every other caller in the interval only
 * counts itself as suppressed. A zeroed slot lets the first message through. */
int log_ratelimit(struct log_ratelimit *rl, unsigned interval_ms, unsigned long *suppressed)
{
	unsigned long long now = log_now_ms();
	unsigned long long next = atomic_load_explicit(&rl->next_ms, memory_order_relaxed);

	if (now < next ||
	    !atomic_compare_exchange_strong_explicit(&rl->next_ms, &next, now + interval_ms,
						     memory_order_acq_rel, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&rl->suppressed, 1, memory_order_relaxed);
		return 0;
	}
	unsigned long n = atomic_exchange_explicit(&rl->suppressed, 0, memory_order_relaxed);
	if (suppressed)
		*suppressed = n;
	return 1;
}

/* ---- the access log ---- */

static int log_access_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	return fd < 0 ? -errno : fd;
}

/* Where a missing file would be created: its directory must exist and let
 * this process add a file (W_OK and X_OK, as the effective user). */
static int log_access_check_dir(const char *path, char *why, size_t len)
{
	char dir[256];
	const char *slash = strrchr(path, '/');
	struct stat st;

	snprintf(dir, sizeof(dir), "%.*s", slash && slash > path ? (int)(slash - path) : 1,
		 slash ? path : ".");
	if (stat(dir, &st) < 0) {
		int err = errno;
		snprintf(why, len, "access_log %s: cannot be created: directory %s: %s", path, dir,
			 strerror(err));
		return -err;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, len, "access_log %s: cannot be created: %s is not a directory", path,
			 dir);
		return -ENOTDIR;
	}
	if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) < 0) {
		int err = errno;
		snprintf(why, len, "access_log %s: cannot be created in %s: %s", path, dir,
			 strerror(err));
		return -err;
	}
	return 0;
}

int log_access_check(const char *path, char *why, size_t len)
{
	/* O_NONBLOCK: a FIFO without a reader fails at once instead of
	 * blocking. Nothing is created: -t must leave no trace. */
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno == ENOENT)
		return log_access_check_dir(path, why, len);
	int err = errno;
	snprintf(why, len, "access_log %s: %s", path, strerror(err));
	return -err;
}

int log_access_open(const char *path, bool json)
{
	atomic_store(&access_json, json);
	if (!path || !*path)
		return 0;
	if (strlen(path) >= sizeof(access_path))
		return -ENAMETOOLONG;
	int fd = log_access_file(path);
	if (fd < 0)
		return fd;
	snprintf(access_path, sizeof(access_path), "%s", path);
	atomic_store(&access_fd, fd);
	return 0;
}

int log_access_reopen(void)
{
	int old = atomic_load(&access_fd);

	if (old == STDERR_FILENO)
		return 0;
	int fd = log_access_file(access_path);
	if (fd < 0)
		return fd;
	int ret = dup2(fd, old) < 0 ? -errno : 0;
	close(fd);
	return ret;
}

/* Names and addresses are restricted by the config and addr_format, but a
 * JSON string must stay valid whatever it is given. */
static size_t log_json_str(char *buf, size_t len, const char *s)
{
	size_t n = 0;

	for (; *s && n + 7 < len; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch < 0x20 || ch == '"' || ch == '\\')
			n += (size_t)snprintf(buf + n, len - n, "\\u%04x", ch);
		else
			buf[n++] = (char)ch;
	}
	buf[n] = '\0';
	return n;
}

/* Why a retried connection's first connect failed: " retry=WHY[:ERRNO]" in
 * text, ',"retry":"WHY","retry_error":"ERRNO"|null' in JSON, after the retry
 * count; nothing without a retry, so such lines keep their old form. */
static void log_retry(char *buf, size_t len, const struct log_conn *e, bool json)
{
	buf[0] = '\0';
	if (!e->retry)
		return;
	if (json)
		snprintf(buf, len, ",\"retry\":\"%s\",\"retry_error\":%s%s%s", e->retry,
			 e->retry_err ? "\"" : "", e->retry_err ? e->retry_err : "null",
			 e->retry_err ? "\"" : "");
	else
		snprintf(buf, len, " retry=%s%s%s", e->retry, e->retry_err ? ":" : "",
			 e->retry_err ? e->retry_err : "");
}

static int log_conn_json(char *buf, size_t len, const char *ts, const struct log_conn *e)
{
	char vip[160], server[160], end[64], extra[512] = "", retry[96];

	if (e->extra) {
		char esc[400];
		log_json_str(esc, sizeof(esc), e->extra);
		snprintf(extra, sizeof(extra), ",\"tls\":\"%s\"", esc);
	}
	log_json_str(vip, sizeof(vip), e->vip);
	log_json_str(server, sizeof(server), e->server);
	log_json_str(end, sizeof(end), e->end);
	log_retry(retry, sizeof(retry), e, true);
	return snprintf(buf, len,
			"{\"time\":\"%s\",\"vip\":\"%s\",\"client\":\"%s\",\"snat\":\"%s\","
			"\"server\":\"%s\",\"server_addr\":\"%s\",\"to_server\":%llu,"
			"\"to_client\":%llu,\"duration_ms\":%llu,\"retries\":%d%s,\"end\":\"%s\","
			"\"error\":%s%s%s%s}\n",
			ts, vip, e->client, e->snat, server, e->server_addr, e->to_server,
			e->to_client, e->duration_ms, e->retries, retry, end, e->err ? "\"" : "",
			e->err ? e->err : "null", e->err ? "\"" : "", extra);
}

static int log_conn_text(char *buf, size_t len, const char *ts, const struct log_conn *e)
{
	char retry[96];

	log_retry(retry, sizeof(retry), e, false);
	return snprintf(buf, len,
			"%s INFO conn vip=%s client=%s snat=%s server=%s/%s to_server=%llu "
			"to_client=%llu duration_ms=%llu retries=%d%s end=%s%s%s%s%s\n",
			ts, e->vip, e->client, e->snat, e->server, e->server_addr, e->to_server,
			e->to_client, e->duration_ms, e->retries, retry, e->end, e->err ? ":" : "",
			e->err ? e->err : "", e->extra ? " " : "", e->extra ? e->extra : "");
}

void log_conn(const struct log_conn *e)
{
	char ts[40], buf[LOG_LINE_MAX];
	int saved = errno;

	log_timestamp(ts, sizeof(ts));
	int n = atomic_load(&access_json) ? log_conn_json(buf, sizeof(buf), ts, e)
					  : log_conn_text(buf, sizeof(buf), ts, e);
	if (n > 0 && (size_t)n < sizeof(buf))
		log_write_fd(atomic_load(&access_fd), buf, (size_t)n);
	errno = saved;
}
