/* log: one line per message on stderr, written with a single write(2) so that
 * lines from several workers never interleave. */
#ifndef SNATPROXY_LOG_H
#define SNATPROXY_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* Allows one message per interval: returns 1 when the caller may log now and
 * stores how many were suppressed since the last one in *suppressed. The slot
 * is shared between threads, hence atomic. */
struct log_ratelimit {
	_Atomic unsigned long long next_ms;
	_Atomic unsigned long suppressed;
};
int log_ratelimit(struct log_ratelimit *rl, unsigned interval_ms, unsigned long *suppressed);

/* One finished connection, as relay.c describes it; NULL err: none. A
 * connection retried on another server has `retry`, why the first connect
 * failed (an end name such as connect-timeout), and its retry_err (or NULL);
 * `end` is always how the connection itself ended. */
struct log_conn {
	const char *vip, *client, *snat, *server, *server_addr, *end, *err;
	const char *retry, *retry_err; /* NULL: no retry */
	const char *extra;             /* NULL, or key=value pairs (TLS details), one space apart */
	unsigned long long to_server, to_client, duration_ms;
	int retries;
};

/* Per-connection lines go to PATH (NULL or "": stderr), appended, as text
 * (key=value) or one JSON object per line. Returns 0 or -errno. */
int log_access_open(const char *path, bool json);
/* Could log_access_open open PATH for appending, creating it if missing?
 * Tried without creating anything (for -t). Returns 0 or -errno, the reason
 * in `why`. */
int log_access_check(const char *path, char *why, size_t len);
/* Opens the file again under the same name (after a rotation), atomically
 * for the writers. Returns 0 or -errno, keeping the old file on failure. */
int log_access_reopen(void);
void log_conn(const struct log_conn *e);

#endif
