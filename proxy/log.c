/* log: timestamped lines on stderr.
 *
 * Each message is formatted into a stack buffer and written with one write(2):
 * writes of up to PIPE_BUF bytes to a pipe are atomic, and journald or a shell
 * redirect reads stderr through a pipe or a file opened O_APPEND, so lines
 * from several workers never interleave and no lock is needed. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Below PIPE_BUF (4096 on Linux), so one write stays atomic on a pipe. */
#define LOG_LINE_MAX 2048

static _Atomic int log_level = LOG_INFO;

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

static void log_write(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
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
