/* config_load on arbitrary bytes written to a file, as `snatproxy -t` or
 * the start reads a configuration. The file lives in a folder of its own
 * that is otherwise empty, so relative paths in the input (tls_cert = x)
 * name nothing. Properties: 0, -EINVAL (with at least one message), -ENOMEM
 * or a read error, never anything else; every message is FILE:LINE: text;
 * a configuration taken has at least one VIP, every VIP a listen address
 * and pools that exist, every pool a server; nothing is left allocated
 * (LeakSanitizer). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

static char dir[64], path[96];

static void cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/fuzz_config.XXXXXX");
	FUZZ_ASSERT(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/c.ini", dir);
	atexit(cleanup);
}

static void check_config(const struct config *cfg)
{
	FUZZ_ASSERT(cfg->nvips > 0);
	for (int i = 0; i < cfg->nvips; i++) {
		const struct config_vip *v = &cfg->vips[i];
		FUZZ_ASSERT(v->nlisten > 0);
		FUZZ_ASSERT(v->pool >= 0 && v->pool < cfg->npools);
		for (int k = 0; k < v->nroutes; k++)
			FUZZ_ASSERT(v->routes[k].pool >= 0 && v->routes[k].pool < cfg->npools);
		FUZZ_ASSERT(v->tls_min >= 0 && v->tls_min <= v->tls_max && v->tls_max <= 3);
		FUZZ_ASSERT(v->tls_alpn_len >= 0 && (size_t)v->tls_alpn_len <= sizeof(v->tls_alpn));
		for (int k = 0; k < v->tls_alpn_len; k += 1 + v->tls_alpn[k]) /* names fit */
			FUZZ_ASSERT(v->tls_alpn[k] > 0 && k + 1 + v->tls_alpn[k] <= v->tls_alpn_len);
	}
	for (int i = 0; i < cfg->npools; i++) {
		const struct config_check *c = &cfg->pools[i].check;
		FUZZ_ASSERT(cfg->pools[i].nservers > 0);
		FUZZ_ASSERT(c->source != CONFIG_SOURCE_SNAT ||
			    (c->source_vip >= 0 && c->source_vip < cfg->nvips));
	}
	FUZZ_ASSERT(strlen(cfg->admin_token) <= CONFIG_TOKEN_MAX);
}

/* Every message is "PATH:LINE: text" with LINE a number from 1; returns
 * how many there are. */
static int check_messages(const char *text)
{
	size_t plen = strlen(path);
	int n = 0;

	for (const char *l = text; *l; n++) {
		const char *nl = strchr(l, '\n');
		FUZZ_ASSERT(nl);
		FUZZ_ASSERT(strncmp(l, path, plen) == 0 && l[plen] == ':');
		FUZZ_ASSERT(l[plen + 1] >= '1' && l[plen + 1] <= '9');
		const char *text = strstr(l + plen + 1, ": ");
		FUZZ_ASSERT(text && text < nl);
		l = nl + 1;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	char *text = NULL;
	size_t tlen = 0;

	if (!path[0])
		setup();
	FILE *f = fopen(path, "w");
	FUZZ_ASSERT(f);
	FUZZ_ASSERT(fwrite(data, 1, size, f) == size || size == 0);
	FUZZ_ASSERT(fclose(f) == 0);
	FILE *errs = open_memstream(&text, &tlen);
	FUZZ_ASSERT(errs);
	int ret = config_load(path, &cfg, errs);
	FUZZ_ASSERT(fclose(errs) == 0);
	FUZZ_ASSERT(ret == 0 || ret == -EINVAL || ret == -ENOMEM || ret == -EIO);
	int n = check_messages(text);
	if (ret == -EINVAL)
		FUZZ_ASSERT(n > 0);
	free(text);
	if (ret == 0) {
		check_config(&cfg);
		config_free(&cfg);
	}
	return 0;
}
