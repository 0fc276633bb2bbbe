/* A unit test is one program: main() runs its cases, and the exit status says
 * pass (0), fail (1) or skip (77), as tests/run expects. */
#ifndef SNATPROXY_UNIT_H
#define SNATPROXY_UNIT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int unit_failures;

#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			unit_failures++;                                                   \
		}                                                                          \
	} while (0)

#define CHECK_EQ(a, b)                                                                     \
	do {                                                                               \
		long long a_ = (long long)(a), b_ = (long long)(b);                        \
		if (a_ != b_) {                                                            \
			fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__, \
				__LINE__, #a, a_, #b, b_);                                 \
			unit_failures++;                                                   \
		}                                                                          \
	} while (0)

#define CHECK_STR(a, b)                                                                    \
	do {                                                                               \
		const char *a_ = (a), *b_ = (b);                                           \
		if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                   \
			fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__,   \
				__LINE__, #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)");     \
			unit_failures++;                                                   \
		}                                                                          \
	} while (0)

static inline int unit_done(const char *name)
{
	if (unit_failures) {
		fprintf(stderr, "%s: %d check(s) failed\n", name, unit_failures);
		return 1;
	}
	return 0;
}

#endif
