/* metrics: the runtime's counters and states as text for people and
 * scrapers: Prometheus text exposition, JSON, and a small HTML page.
 *
 * Reads only atomics and the read-only configuration, so it can run on any
 * thread (the admin endpoint's) while the workers run. Writes to a stdio
 * stream (the admin endpoint gives it an open_memstream). */
#ifndef SNATPROXY_METRICS_H
#define SNATPROXY_METRICS_H

#include <stdio.h>

#include "runtime.h"

/* "up", "down" (health checks), "drain" or "disabled" (operator). */
const char *metrics_state_name(unsigned flags);

void metrics_prometheus(FILE *out, const struct runtime *rt);
void metrics_json(FILE *out, const struct runtime *rt);
void metrics_html(FILE *out, const struct runtime *rt);

/* Called by the admin thread (alone) now and then: each VIP's connection
 * rate over the last second, and its peak. */
void metrics_sample(struct runtime *rt);

#endif
