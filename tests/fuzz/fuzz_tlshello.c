/* tlshello_parse on arbitrary bytes, as the relay calls it on a tls = route
 * client's first bytes (at most TLSHELLO_MAX of them). Properties: one of
 * the four documented results; -EAGAIN asks for more than it has and never
 * more than TLSHELLO_MAX (or the relay would wait for bytes it never keeps);
 * a name found is a valid lower-case host name; a prefix of an input that
 * parses is never refused. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "tlshello.h"

static void check_name(const char *sni)
{
	size_t n = strlen(sni);

	FUZZ_ASSERT(n < TLSHELLO_SNI_MAX);
	for (size_t i = 0; i < n; i++)
		FUZZ_ASSERT((sni[i] >= 'a' && sni[i] <= 'z') || (sni[i] >= '0' && sni[i] <= '9') ||
			    sni[i] == '-' || sni[i] == '_' || sni[i] == '.');
	FUZZ_ASSERT(n == 0 || (sni[0] != '.' && sni[n - 1] != '.' && !strstr(sni, "..")));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char sni[TLSHELLO_SNI_MAX];
	size_t need = 0;

	if (size > TLSHELLO_MAX)
		size = TLSHELLO_MAX;
	int ret = tlshello_parse(data, size, sni, &need);
	FUZZ_ASSERT(ret == 0 || ret == -EAGAIN || ret == -EBADMSG || ret == -EMSGSIZE);
	if (ret == -EAGAIN)
		FUZZ_ASSERT(need > size && need <= TLSHELLO_MAX);
	if (ret != 0)
		return 0;
	check_name(sni);
	/* A hello that parses from `size` bytes was waited for, not refused,
	 * when only part of it had come. (It may ask for more than `size`: the
	 * rest of a record that holds the hello and more.) */
	for (size_t cut = size / 2; cut; cut /= 2) {
		char other[TLSHELLO_SNI_MAX];
		int r = tlshello_parse(data, cut, other, &need);
		FUZZ_ASSERT(r == 0 || r == -EAGAIN);
		if (r == -EAGAIN)
			FUZZ_ASSERT(need > cut && need <= TLSHELLO_MAX);
	}
	return 0;
}
