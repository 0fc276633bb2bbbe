/* bigip: `snatproxy --import-bigip FILE`, a BIG-IP LTM configuration (tmsh
 * `list ltm` output or bigip.conf) turned into a snatproxy INI file.
 *
 * Three steps in one module: a tokenizer (words, quoted strings, braces, `#`
 * comments), a tree of the file's top-level objects, and a converter that
 * walks virtuals, pools, nodes, SNAT pools, monitors and profiles and writes
 * the configuration. Every top-level object ends up with a status, and every
 * object not converted whole gets one line on the notes stream saying why
 * (docs/bigip.md maps each attribute). */
#ifndef SNATPROXY_BIGIP_H
#define SNATPROXY_BIGIP_H

#include <stddef.h>
#include <stdio.h>

/* Bounds on what the parser accepts, so that no input can make it recurse,
 * allocate or loop without limit: at worst (`a{}` over and over) the tokens
 * take 24 bytes per byte of the file. The largest bigip.conf files of big
 * installations are a few MiB. */
#define BIGIP_FILE_MAX    (32u << 20) /* bytes */
#define BIGIP_DEPTH_MAX   32          /* nested braces */
#define BIGIP_OBJECTS_MAX 100000      /* top-level objects */
#define BIGIP_NOTE_MAX    1024

enum bigip_status {
	BIGIP_CONVERTED, /* nothing lost */
	BIGIP_WARNED,    /* converted whole, but something needs a person's eye */
	BIGIP_PARTIAL,   /* converted, some attributes were not */
	BIGIP_SKIPPED,   /* nothing of it is in the output */
};

/* One top-level object of the file and what became of it. */
struct bigip_object {
	char kind[64];  /* "ltm virtual", "ltm monitor https", "sys folder" */
	char name[256]; /* "/Common/ocs_444"; "" for objects without one */
	int line;       /* of its first word */
	enum bigip_status status;
	char as[80];               /* what it became: "vip ocs_444", "pool p", "" */
	char note[BIGIP_NOTE_MAX]; /* why, reasons separated by "; " */
};

struct bigip;

/* Parses TEXT (LEN bytes, the contents of PATH). On a syntax error, prints
 * "PATH:LINE: message" to errs and returns -EINVAL; -ENOMEM or -EFBIG
 * (larger than BIGIP_FILE_MAX) otherwise; 0 with *out set. */
int bigip_parse(const char *path, const char *text, size_t len, struct bigip **out, FILE *errs);

/* Writes the snatproxy configuration to OUT and one line per object not
 * converted whole to NOTES ("PATH:LINE: KIND NAME: skipped: why"). Returns 0
 * or -ENOMEM. Call once per parse. */
int bigip_convert(struct bigip *b, FILE *out, FILE *notes);

int bigip_nobjects(const struct bigip *b);
const struct bigip_object *bigip_object(const struct bigip *b, int i);
/* VIPs and pools written by bigip_convert. */
void bigip_counts(const struct bigip *b, int *nvips, int *npools);
void bigip_free(struct bigip *b);

/* Reads PATH, parses and converts it. Returns 0, -EINVAL (a syntax error,
 * printed to errs as PATH:LINE: message) or -errno (PATH cannot be read). */
int bigip_import(const char *path, FILE *out, FILE *errs);

#endif
