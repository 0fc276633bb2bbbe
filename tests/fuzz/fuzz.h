/* Shared by the libFuzzer harnesses (tests/fuzz/fuzz_NAME.c): each one feeds
 * one parser arbitrary bytes and checks the properties its callers rely on;
 * a property that fails aborts, which libFuzzer reports as a finding with
 * the input saved. */
#ifndef SNATPROXY_FUZZ_H
#define SNATPROXY_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_ASSERT(cond)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__,        \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
