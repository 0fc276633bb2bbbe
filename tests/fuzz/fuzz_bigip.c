/* bigip_parse and bigip_convert on arbitrary bytes, as `snatproxy
 * --import-bigip FILE` reads a BIG-IP configuration. Properties: the parse
 * returns 0 or -EINVAL with exactly one "PATH:LINE: message" line (or
 * -ENOMEM); a conversion returns 0, writes one "PATH:LINE: ..." line per
 * object not converted whole and a reason for each; and its output loads with
 * config_load, every error being about a certificate, key or CA file of a
 * VIP (none exist here), or the lack of any VIP when none was converted;
 * nothing is left allocated (LeakSanitizer). */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "bigip.h"
#include "config.h"
#include "fuzz.h"

#define PATH "in.conf"

static char dir[64], ini[96];

static void cleanup(void)
{
	unlink(ini);
	rmdir(dir);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/fuzz_bigip.XXXXXX");
	FUZZ_ASSERT(mkdtemp(dir));
	snprintf(ini, sizeof(ini), "%s/out.ini", dir);
	atexit(cleanup);
}

/* "PATH:LINE: text" with LINE from 1; returns how many lines. */
static int check_lines(const char *text, const char *path, bool no_vip_line)
{
	size_t plen = strlen(path);
	int n = 0;

	for (const char *l = text; l && *l; n++) {
		const char *nl = strchr(l, '\n');
		FUZZ_ASSERT(nl);
		FUZZ_ASSERT(strncmp(l, path, plen) == 0 && l[plen] == ':');
		if (no_vip_line && strncmp(l + plen, ": warning: no virtual server", 28) == 0) {
			l = nl + 1;
			continue;
		}
		FUZZ_ASSERT(l[plen + 1] >= '1' && l[plen + 1] <= '9');
		const char *t = strstr(l + plen + 1, ": ");
		FUZZ_ASSERT(t && t < nl);
		l = nl + 1;
	}
	return n;
}

/* The line LINE (from 1) of TEXT. */
static const char *line_at(const char *text, int line)
{
	for (int n = 1; text && n < line; n++)
		text = strchr(text, '\n') ? strchr(text, '\n') + 1 : NULL;
	return text;
}

static void check_output(const char *out, size_t olen, int nvips, int npools)
{
	struct config cfg;
	char *errs = NULL;
	size_t elen = 0;
	FILE *f = fopen(ini, "w");

	FUZZ_ASSERT(f);
	FUZZ_ASSERT(fwrite(out, 1, olen, f) == olen || olen == 0);
	FUZZ_ASSERT(fclose(f) == 0);
	f = open_memstream(&errs, &elen);
	FUZZ_ASSERT(f);
	int ret = config_load(ini, &cfg, f);
	FUZZ_ASSERT(fclose(f) == 0);
	FUZZ_ASSERT(ret == 0 || ret == -EINVAL || ret == -ENOMEM);
	check_lines(errs, ini, false);
	for (const char *l = errs; ret == -EINVAL && *l; l = strchr(l, '\n') + 1) {
		const char *at = line_at(out, atoi(l + strlen(ini) + 1));
		bool cert = at && (strncmp(at, "tls_", 4) == 0 || strncmp(at, "server_", 7) == 0);
		bool empty = nvips == 0 && strstr(l, "no [vip NAME] section");
		if (!cert && !empty)
			fprintf(stderr, "config_load refused the output: %s\n%s", l, out);
		FUZZ_ASSERT(cert || empty);
	}
	if (ret == 0) {
		FUZZ_ASSERT(cfg.nvips == nvips && cfg.npools == npools);
		config_free(&cfg);
	}
	free(errs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bigip *b = NULL;
	char *out = NULL, *notes = NULL;
	size_t olen = 0, nlen = 0;
	int nvips, npools;

	if (!dir[0])
		setup();
	FILE *fo = open_memstream(&out, &olen), *fn = open_memstream(&notes, &nlen);
	FUZZ_ASSERT(fo && fn);
	int ret = bigip_parse(PATH, (const char *)data, size, &b, fn);
	FUZZ_ASSERT(ret == 0 || ret == -EINVAL || ret == -ENOMEM);
	if (ret == 0)
		FUZZ_ASSERT(bigip_convert(b, fo, fn) == 0);
	FUZZ_ASSERT(fclose(fo) == 0 && fclose(fn) == 0);
	if (ret == -EINVAL) {
		FUZZ_ASSERT(b == NULL);
		FUZZ_ASSERT(check_lines(notes, PATH, false) == 1);
	}
	if (ret == 0) {
		int n = 0;
		bigip_counts(b, &nvips, &npools);
		for (int i = 0; i < bigip_nobjects(b); i++) {
			const struct bigip_object *o = bigip_object(b, i);
			FUZZ_ASSERT((o->status == BIGIP_CONVERTED) == (o->note[0] == '\0'));
			FUZZ_ASSERT(!strchr(o->note, '\n') && !strchr(o->kind, '\n') &&
				    !strchr(o->name, '\n'));
			n += o->status != BIGIP_CONVERTED;
		}
		FUZZ_ASSERT(check_lines(notes, PATH, nvips == 0) == n + (nvips == 0));
		check_output(out, olen, nvips, npools);
		bigip_free(b);
	}
	free(out);
	free(notes);
	return 0;
}
