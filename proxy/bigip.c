/* bigip: a BIG-IP LTM configuration converted to snatproxy's INI.
 *
 * The tmsh syntax (bigip.conf, `tmsh list ltm`, also its one-line form) is
 * words, quoted strings and brace blocks: `ltm pool /Common/p { members {
 * /Common/fe1:444 { address 198.18.0.11 } } monitor /Common/m }`. The
 * tokenizer turns the file into a flat array of tokens in which each brace
 * knows its partner, so that a block is a range and walking it needs no
 * recursion; iRule bodies (Tcl) are skipped as raw brace-balanced text. The
 * top-level objects are indexed by kind and name, and the converter walks
 * the virtuals and pools, following references (pool, monitor, profiles,
 * snatpool, nodes) through the index.
 *
 * Attributes are read as `key value` where the value is one word or one
 * block; in the multi-line form a key alone on its line has no value, and a
 * few keys are flags (`disabled`, `vlans-enabled`), so that the one-line form
 * reads the same. `monitor` alone takes several words (`a and b`, `min 1 of
 * { a b }`).
 *
 * Everything emitted is checked against what config.c accepts (names,
 * lengths, ranges, address families, a port for checks), so the output
 * passes `snatproxy -t` but for certificate files: the fuzz harness holds
 * the converter to that. */
#include "bigip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME_MAX_OUT     63  /* config.c's names */
#define VALUE_MAX        150 /* values stay well inside config.c's 197-character lines */
#define FILE_NAME_MAX    100
#define CHAIN_MAX        8 /* defaults-from levels followed */
#define MEMBERS_MAX      4096
#define SNAT_ADDRS_MAX   64
#define TLS_PAIRS_MAX    8
#define HEADER_WORDS_MAX 6

enum tok_type { T_WORD, T_OPEN, T_CLOSE };

struct tok {
	unsigned char type;
	bool bol; /* the first token of its line */
	int line;
	int match; /* T_OPEN, T_CLOSE: the index of the other brace */
	char *s;   /* T_WORD: NUL-terminated, in the arena */
};

enum cls {
	C_OTHER,
	C_LTM, /* an ltm object of a kind with no equivalent */
	C_VIRTUAL,
	C_VADDR,
	C_POOL,
	C_NODE,
	C_MONITOR,
	C_SNATPOOL,
	C_SNATXL,
	C_PROFILE,
	C_PERSIST,
	C_RULE,
	C_DNM,
	C_SNAT,
};

struct pool_out;
struct vip_out;

struct obj {
	struct bigip_object pub;
	enum cls cls;
	const char *name, *type; /* tokens; type: of monitors, profiles, persistence */
	int body;                /* the index of its '{' */
	bool used, noted;        /* noted: its own notes are written (once) */
	struct pool_out *pool;
};

/* A string set with an int per key: the object index, and the names
 * already given to VIPs, pools and listen addresses. */
struct hmap {
	char **key;
	int *val;
	size_t cap, n;
};

struct bigip {
	const char *path;
	char *arena;
	struct tok *t;
	int nt, tcap;
	struct obj *o;
	int no, ocap;
	struct hmap index, vip_names, pool_names, listens;
	int nvips, npools;
	bool oom;
};

/* ---- small things ---- */

static bool streq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static bool in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (streq(s, *list))
			return true;
	return false;
}

/* Digits only, at most MAX. */
static bool parse_num(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || *s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (max - (uint64_t)(*s - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return *s == '\0';
}

/* For comments and notes: one line of printable text, cut at MAX bytes. */
static void printable(const char *s, char *out, size_t cap, size_t max)
{
	size_t n = 0;

	for (; s && *s && n + 1 < cap && n < max; s++)
		out[n++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
	out[n] = '\0';
}

static void note(struct obj *o, enum bigip_status sev, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Adds a reason to the object's line; its status is the worst one given. */
static void note(struct obj *o, enum bigip_status sev, const char *fmt, ...)
{
	struct bigip_object *p = &o->pub;
	size_t n = strlen(p->note);
	char text[BIGIP_NOTE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (sev == BIGIP_SKIPPED && p->status != BIGIP_SKIPPED) /* only why it is not there */
		p->note[0] = '\0', n = 0;
	if (strstr(p->note, text)) /* a member or reference repeating itself */
		text[0] = '\0';
	else if (n + 2 < sizeof(p->note) && n)
		memcpy(p->note + n, "; ", 3), n += 2;
	if (n + 1 < sizeof(p->note))
		printable(text, p->note + n, sizeof(p->note) - n, sizeof(p->note));
	if (sev > p->status)
		p->status = sev;
}

/* ---- the string map ---- */

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static size_t hmap_slot(const struct hmap *m, const char *key)
{
	size_t i = (size_t)hash_str(key) & (m->cap - 1);

	while (m->key[i] && strcmp(m->key[i], key) != 0)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static int hmap_get(const struct hmap *m, const char *key)
{
	if (!m->cap)
		return -1;
	size_t i = hmap_slot(m, key);
	return m->key[i] ? m->val[i] : -1;
}

static int hmap_grow(struct hmap *m)
{
	struct hmap g = {.cap = m->cap ? m->cap * 2 : 64};

	g.key = calloc(g.cap, sizeof(*g.key));
	g.val = calloc(g.cap, sizeof(*g.val));
	if (!g.key || !g.val) {
		free(g.key);
		free(g.val);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++)
		if (m->key[i]) {
			size_t j = hmap_slot(&g, m->key[i]);
			g.key[j] = m->key[i];
			g.val[j] = m->val[i];
			g.n++;
		}
	free(m->key);
	free(m->val);
	*m = g;
	return 0;
}

/* Adds KEY (copied) unless present. Returns 0, 1 when it was there, or
 * -ENOMEM. */
static int hmap_put(struct hmap *m, const char *key, int val)
{
	if ((m->n + 1) * 2 > m->cap && hmap_grow(m) < 0)
		return -ENOMEM;
	size_t i = hmap_slot(m, key);
	if (m->key[i])
		return 1;
	if (!(m->key[i] = strdup(key)))
		return -ENOMEM;
	m->val[i] = val;
	m->n++;
	return 0;
}

static void hmap_free(struct hmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->key[i]);
	free(m->key);
	free(m->val);
	memset(m, 0, sizeof(*m));
}

/* ---- tokenizer ---- */

static int syntax(const struct bigip *b, FILE *errs, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int syntax(const struct bigip *b, FILE *errs, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(errs, "%s:%d: ", b->path, line);
	va_start(ap, fmt);
	vfprintf(errs, fmt, ap);
	va_end(ap);
	fputc('\n', errs);
	return -EINVAL;
}

static int tok_push(struct bigip *b, enum tok_type type, int line, bool bol, char *s)
{
	if (b->nt == b->tcap) {
		int cap = b->tcap ? b->tcap * 2 : 1024;
		struct tok *t = realloc(b->t, (size_t)cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		b->t = t;
		b->tcap = cap;
	}
	b->t[b->nt++] = (struct tok){.type = type, .bol = bol, .line = line, .match = -1, .s = s};
	return 0;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* `ltm rule NAME {`: the body is Tcl, whose quotes and comments are not
 * tmsh's; only its braces balance. */
static bool rule_statement(const struct bigip *b, int stmt)
{
	return b->nt - stmt >= 3 && b->t[stmt + 1].type == T_WORD &&
	       streq(b->t[stmt + 1].s, "rule");
}

struct lexer {
	const char *text;
	size_t len, i;
	int line;
	char *a; /* the next free byte of the arena */
};

/* Past a raw body's closing brace; pushes the pair as an empty block. */
static int lex_raw(struct bigip *b, struct lexer *lx, FILE *errs, bool bol)
{
	int open_line = lx->line, depth = 1, ret;

	lx->i++;
	while (lx->i < lx->len && depth > 0) {
		char c = lx->text[lx->i++];
		if (c == '\\' && lx->i < lx->len)
			c = lx->text[lx->i++] == '\n' ? '\n' : 'x';
		if (c == '\n')
			lx->line++;
		else if (c == '{')
			depth++;
		else if (c == '}')
			depth--;
	}
	if (depth)
		return syntax(b, errs, open_line, "'{' is never closed");
	if ((ret = tok_push(b, T_OPEN, open_line, bol, NULL)) < 0 ||
	    (ret = tok_push(b, T_CLOSE, lx->line, false, NULL)) < 0)
		return ret;
	b->t[b->nt - 2].match = b->nt - 1;
	b->t[b->nt - 1].match = b->nt - 2;
	return 0;
}

/* A quoted string, kept as written between its quotes (escapes included:
 * a monitor's send string interprets them itself). */
static int lex_string(struct bigip *b, struct lexer *lx, FILE *errs, bool bol)
{
	int line = lx->line;
	char *w = lx->a;

	lx->i++;
	while (lx->i < lx->len && lx->text[lx->i] != '"') {
		int n = lx->text[lx->i] == '\\' && lx->i + 1 < lx->len ? 2 : 1;
		for (; n > 0; n--) {
			char c = lx->text[lx->i++];
			if (c == '\0')
				return syntax(b, errs, lx->line, "NUL byte in a string");
			lx->line += c == '\n';
			*lx->a++ = c;
		}
	}
	if (lx->i >= lx->len)
		return syntax(b, errs, line, "string never closed: '\"' expected");
	lx->i++;
	*lx->a++ = '\0';
	return tok_push(b, T_WORD, line, bol, w);
}

static int lex_word(struct bigip *b, struct lexer *lx, bool bol)
{
	char *w = lx->a;

	while (lx->i < lx->len) {
		char c = lx->text[lx->i];
		if (blank(c) || c == '\n' || c == '{' || c == '}' || c == '\0')
			break;
		*lx->a++ = c;
		lx->i++;
	}
	*lx->a++ = '\0';
	return tok_push(b, T_WORD, lx->line, bol, w);
}

static int lex(struct bigip *b, const char *text, size_t len, FILE *errs)
{
	struct lexer lx = {.text = text, .len = len, .line = 1, .a = b->arena};
	int stack[BIGIP_DEPTH_MAX], depth = 0, stmt = 0, ret = 0;
	bool bol = true; /* nothing but blanks since the last newline */

	while (ret == 0 && lx.i < len) {
		char c = text[lx.i];
		if (c == '\n') {
			lx.line++, lx.i++, bol = true;
			continue;
		}
		if (blank(c)) {
			lx.i++;
			continue;
		}
		if (c == '\0')
			return syntax(b, errs, lx.line, "NUL byte");
		if (c == '#' && bol) {
			while (lx.i < len && text[lx.i] != '\n')
				lx.i++;
			continue;
		}
		bool first = bol;
		bol = false;
		if (c == '{' && depth == 0 && rule_statement(b, stmt)) {
			ret = lex_raw(b, &lx, errs, first);
			stmt = b->nt;
		} else if (c == '{') {
			if (depth == BIGIP_DEPTH_MAX)
				return syntax(b, errs, lx.line,
					      "braces nested deeper than %d levels",
					      BIGIP_DEPTH_MAX);
			stack[depth++] = b->nt;
			ret = tok_push(b, T_OPEN, lx.line, first, NULL);
			lx.i++;
		} else if (c == '}') {
			if (depth == 0)
				return syntax(b, errs, lx.line, "'}' without a '{' before it");
			if ((ret = tok_push(b, T_CLOSE, lx.line, first, NULL)) < 0)
				break;
			b->t[b->nt - 1].match = stack[--depth];
			b->t[stack[depth]].match = b->nt - 1;
			if (depth == 0)
				stmt = b->nt;
			lx.i++;
		} else if (c == '"') {
			ret = lex_string(b, &lx, errs, first);
		} else {
			ret = lex_word(b, &lx, first);
		}
	}
	if (ret == 0 && depth)
		return syntax(b, errs, b->t[stack[depth - 1]].line, "'{' is never closed");
	return ret;
}

/* ---- the objects ---- */

static enum cls classify(const struct tok *w, int n, const char **type)
{
	static const struct {
		const char *word;
		enum cls cls;
		int words; /* with the name; 4: a type word too */
	} kinds[] = {
	    {"virtual", C_VIRTUAL, 3},
	    {"virtual-address", C_VADDR, 3},
	    {"pool", C_POOL, 3},
	    {"node", C_NODE, 3},
	    {"monitor", C_MONITOR, 4},
	    {"snatpool", C_SNATPOOL, 3},
	    {"snat-translation", C_SNATXL, 3},
	    {"profile", C_PROFILE, 4},
	    {"persistence", C_PERSIST, 4},
	    {"rule", C_RULE, 3},
	    {"default-node-monitor", C_DNM, 2},
	    {"snat", C_SNAT, 3},
	};

	*type = NULL;
	if (n < 2 || !streq(w[0].s, "ltm"))
		return C_OTHER;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (streq(w[1].s, kinds[i].word) && n == kinds[i].words) {
			*type = n == 4 ? w[2].s : NULL;
			return kinds[i].cls;
		}
	return C_LTM;
}

static char cls_char(enum cls c)
{
	return (char)('A' + (int)c);
}

/* The index key of an object: its class and its name. */
static char *index_key(enum cls c, const char *name)
{
	char *k = NULL;

	if (asprintf(&k, "%c%s", cls_char(c), name) < 0)
		return NULL;
	return k;
}

static int add_object(struct bigip *b, int first, int n, int body)
{
	const struct tok *w = &b->t[first];
	struct obj *o;
	size_t len = 0;

	if (b->no == BIGIP_OBJECTS_MAX)
		return -E2BIG;
	if (b->no == b->ocap) {
		int cap = b->ocap ? b->ocap * 2 : 256;
		o = realloc(b->o, (size_t)cap * sizeof(*o));
		if (!o)
			return -ENOMEM;
		b->o = o;
		b->ocap = cap;
	}
	o = &b->o[b->no];
	memset(o, 0, sizeof(*o));
	o->cls = classify(w, n, &o->type);
	o->body = body;
	o->name = n >= 3 ? w[n - 1].s : "";
	o->pub.line = w[0].line;
	for (int i = 0; i < (n >= 3 ? n - 1 : n) && len + 2 < sizeof(o->pub.kind); i++) {
		if (i)
			o->pub.kind[len++] = ' ';
		printable(w[i].s, o->pub.kind + len, sizeof(o->pub.kind) - len, 60 - len);
		len = strlen(o->pub.kind);
	}
	printable(o->name, o->pub.name, sizeof(o->pub.name), sizeof(o->pub.name));
	if (o->name[0]) {
		char *k = index_key(o->cls, o->name);
		if (!k || hmap_put(&b->index, k, b->no) < 0) {
			free(k);
			return -ENOMEM;
		}
		free(k);
	}
	b->no++;
	return 0;
}

/* Top level: `WORD... { ... }`, the words on one line. */
static int build_objects(struct bigip *b, FILE *errs)
{
	for (int i = 0; i < b->nt;) {
		int first = i, ret;
		while (i < b->nt && b->t[i].type == T_WORD) {
			if (i > first && b->t[i].bol)
				break;
			i++;
		}
		if (i == first)
			return syntax(b, errs, b->t[i].line,
				      "'{' without an object's name before it");
		if (i == b->nt || b->t[i].type != T_OPEN) {
			char w0[64], w1[64]; /* quoted words may hold newlines */
			printable(b->t[first].s, w0, sizeof(w0), 60);
			printable(i - first > 1 ? b->t[first + 1].s : "", w1, sizeof(w1), 60);
			return syntax(b, errs, b->t[first].line, "expected '{' after '%s%s%s'", w0,
				      w1[0] ? " " : "", w1);
		}
		if (i - first > HEADER_WORDS_MAX)
			return syntax(b, errs, b->t[first].line,
				      "%d words before '{': an object is named by at most %d",
				      i - first, HEADER_WORDS_MAX);
		if ((ret = add_object(b, first, i - first, i)) == -E2BIG)
			return syntax(b, errs, b->t[first].line, "more than %d objects",
				      BIGIP_OBJECTS_MAX);
		if (ret < 0)
			return ret;
		i = b->t[i].match + 1;
	}
	return 0;
}

/* A reference as written: "/Common/p", or "p" for /Common/p. */
static struct obj *find(struct bigip *b, enum cls c, const char *ref)
{
	char *k;
	int i;

	if (!ref || !*ref)
		return NULL;
	if (ref[0] == '/')
		k = index_key(c, ref);
	else if (asprintf(&k, "%c/Common/%s", cls_char(c), ref) < 0)
		k = NULL;
	if (!k) {
		b->oom = true;
		return NULL;
	}
	i = hmap_get(&b->index, k);
	free(k);
	return i >= 0 ? &b->o[i] : NULL;
}

/* ---- attributes ---- */

struct attr {
	const char *key;
	int line;
	int v, vend; /* the value's tokens [v, vend); v = -1: none */
};

static const char *const flags[] = {
    "enabled",    "disabled", "vlans-enabled", "vlans-disabled", "internal", "ip-forward",
    "l2-forward", "reject",   "stateless",     "dhcp-relay",     NULL};

static int after(const struct bigip *b, int i)
{
	return b->t[i].type == T_OPEN ? b->t[i].match + 1 : i + 1;
}

/* `monitor a and b`, `monitor min 1 of { a b }`: one value of several tokens. */
static int monitor_value_end(const struct bigip *b, int v, int end)
{
	const struct tok *t = b->t;
	int p = v + 1;

	if (streq(t[v].s, "min") && p + 2 < end && t[p + 1].type == T_WORD &&
	    t[p + 2].type == T_OPEN)
		return after(b, p + 2);
	while (p + 1 < end && t[p].type == T_WORD && streq(t[p].s, "and") &&
	       t[p + 1].type == T_WORD)
		p += 2;
	return p;
}

/* The next `key [value]` of the block opened at OPEN, from *pos. */
static bool attr_next(const struct bigip *b, int open, int *pos, struct attr *a)
{
	const struct tok *t = b->t;
	int end = t[open].match, p = *pos;

	while (p < end && t[p].type != T_WORD)
		p = after(b, p);
	if (p >= end)
		return false;
	*a = (struct attr){.key = t[p].s, .line = t[p].line, .v = -1};
	p++;
	if (!in_list(a->key, flags) && p < end && (t[p].type == T_OPEN || !t[p].bol)) {
		a->v = p;
		a->vend = after(b, p);
		if (t[p].type == T_WORD && streq(a->key, "monitor"))
			a->vend = monitor_value_end(b, p, end);
		p = a->vend;
	}
	*pos = p;
	return true;
}

static bool attr_get(const struct bigip *b, int open, const char *key, struct attr *out)
{
	struct attr a;

	for (int pos = open + 1; attr_next(b, open, &pos, &a);)
		if (streq(a.key, key)) {
			*out = a;
			return true;
		}
	return false;
}

static const char *vword(const struct bigip *b, const struct attr *a)
{
	return a->v >= 0 && b->t[a->v].type == T_WORD ? b->t[a->v].s : NULL;
}

static int vblock(const struct bigip *b, const struct attr *a)
{
	return a->v >= 0 && b->t[a->v].type == T_OPEN ? a->v : -1;
}

static const char *attr_word(const struct bigip *b, int open, const char *key)
{
	struct attr a;

	return attr_get(b, open, key, &a) ? vword(b, &a) : NULL;
}

/* The next `name [{ body }]` of a list block (members, profiles, rules). */
static bool entry_next(const struct bigip *b, int open, int *pos, int *word, int *body)
{
	const struct tok *t = b->t;
	int end = t[open].match, p = *pos;

	while (p < end && t[p].type != T_WORD)
		p = after(b, p);
	if (p >= end)
		return false;
	*word = p++;
	*body = p < end && t[p].type == T_OPEN ? p : -1;
	*pos = *body >= 0 ? after(b, p) : p;
	return true;
}

/* KEY of O or of the objects it inherits from (defaults-from, in the file).
 * *root: the first ancestor not in the file (a built-in), or NULL. */
static bool chain_get(struct bigip *b, const struct obj *o, const char *key, struct attr *a,
		      const char **root)
{
	*root = NULL;
	for (int depth = 0; o && depth < CHAIN_MAX; depth++) {
		if (attr_get(b, o->body, key, a))
			return true;
		const char *parent = attr_word(b, o->body, "defaults-from");
		if (!parent)
			return false;
		const struct obj *p = find(b, o->cls, parent);
		if (!p)
			*root = parent;
		o = p;
	}
	return false;
}

static const char *chain_word(struct bigip *b, const struct obj *o, const char *key,
			      const char **root)
{
	struct attr a;

	return chain_get(b, o, key, &a, root) ? vword(b, &a) : NULL;
}

/* Used, and so are the objects it inherits from. */
static void mark_used(struct bigip *b, struct obj *o)
{
	for (int depth = 0; o && depth < CHAIN_MAX; depth++) {
		o->used = true;
		o = find(b, o->cls, attr_word(b, o->body, "defaults-from"));
	}
}

/* ---- names, addresses, ports, files ---- */

static const char *base_name(const char *full)
{
	const char *slash = strrchr(full, '/');

	return slash ? slash + 1 : full;
}

/* A config.c name: /Common/x is x, /P/x is P_x, other characters become _. */
static void out_name(const char *full, char *out, size_t cap)
{
	static const char allowed[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				      "0123456789_.-";
	size_t n = 0;

	if (strncmp(full, "/Common/", 8) == 0)
		full += 8;
	else if (full[0] == '/')
		full++;
	for (; *full && n + 1 < cap && n < NAME_MAX_OUT; full++)
		out[n++] = strchr(allowed, *full) && *full ? *full : '_';
	if (n == 0)
		out[n++] = 'x';
	out[n] = '\0';
}

/* NAME, or NAME-2, NAME-3... the first one not yet in SET. */
static int unique_name(struct bigip *b, struct hmap *set, char *name)
{
	char base[NAME_MAX_OUT + 1];

	snprintf(base, sizeof(base), "%s", name);
	for (int i = 2; hmap_get(set, name) >= 0; i++) {
		char suffix[16];
		int sl = snprintf(suffix, sizeof(suffix), "-%d", i);
		snprintf(name, NAME_MAX_OUT + 1, "%.*s%s", NAME_MAX_OUT - sl, base, suffix);
	}
	if (hmap_put(set, name, 0) < 0) {
		b->oom = true;
		return -ENOMEM;
	}
	return 0;
}

/* A certificate or key file of the BIG-IP's store under its own name,
 * relative to the output's folder. */
static void out_file(const char *ref, char *out, size_t cap)
{
	static const char allowed[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				      "0123456789_.-";
	const char *s = base_name(ref);
	size_t n = 0;

	for (; *s && n + 1 < cap && n < FILE_NAME_MAX; s++) {
		bool ok = strchr(allowed, *s) && !(n == 0 && *s == '.');
		out[n++] = ok ? *s : '_';
	}
	if (n == 0)
		out[n++] = '_';
	out[n] = '\0';
}

/* An address as tmsh writes it, "198.18.0.11", "2001:db8::11" or with a
 * route domain "10.0.0.1%2", into its canonical text and family. */
static bool parse_ip(const char *s, char *out, size_t cap, int *fam, unsigned long *rd)
{
	char text[INET6_ADDRSTRLEN + 1];
	unsigned char buf[sizeof(struct in6_addr)];
	const char *pct = strchr(s, '%');
	size_t len = pct ? (size_t)(pct - s) : strlen(s);
	uint64_t n = 0;

	*rd = 0;
	if (len == 0 || len >= sizeof(text) || (pct && !parse_num(pct + 1, 65534, &n)))
		return false;
	*rd = (unsigned long)n;
	memcpy(text, s, len);
	text[len] = '\0';
	*fam = strchr(text, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(*fam, text, buf) != 1)
		return false;
	return inet_ntop(*fam, buf, out, (socklen_t)cap) != NULL;
}

static bool ip_unspecified(const char *canon)
{
	return streq(canon, "0.0.0.0") || streq(canon, "::");
}

/* tmsh writes a port by its /etc/services name when it has one. */
static int port_number(const char *s)
{
	static const struct {
		const char *name;
		int port;
	} names[] = {
	    {"any", 0},         {"*", 0},        {"ftp", 21},
	    {"ssh", 22},        {"telnet", 23},  {"smtp", 25},
	    {"domain", 53},     {"http", 80},    {"kerberos", 88},
	    {"pop3", 110},      {"epmap", 135},  {"loc-srv", 135},
	    {"imap", 143},      {"snmp", 161},   {"ldap", 389},
	    {"https", 443},     {"snpp", 444},   {"microsoft-ds", 445},
	    {"ldaps", 636},     {"imaps", 993},  {"pop3s", 995},
	    {"ms-sql-s", 1433}, {"mysql", 3306}, {"ms-wbt-server", 3389},
	    {"sip", 5060},      {"sips", 5061},  {"sip-tls", 5061},
	    {"http-alt", 8080},
	};
	uint64_t n;

	if (parse_num(s, 65535, &n))
		return (int)n;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (streq(s, names[i].name))
			return names[i].port;
	return -1;
}

/* "/Common/198.18.0.10:444", "/Common/fe1:https", "/Common/2001:db8::10.443":
 * the part before the port (partition included) and the port text. IPv6
 * addresses take a '.' before the port. */
static bool split_port(const char *s, char *head, size_t hcap, char *port, size_t pcap)
{
	const char *tail = base_name(s), *sep;
	int colons = 0;

	for (const char *p = tail; *p; p++)
		colons += *p == ':';
	sep = colons == 1 ? strchr(tail, ':') : colons > 1 ? strrchr(tail, '.') : NULL;
	if (!sep || sep == tail || !sep[1] || (size_t)(sep - s) >= hcap || strlen(sep + 1) >= pcap)
		return false;
	memcpy(head, s, (size_t)(sep - s));
	head[sep - s] = '\0';
	snprintf(port, pcap, "%s", sep + 1);
	return true;
}

static void addr_port_text(const char *ip, int fam, int port, char *out, size_t cap)
{
	if (port)
		snprintf(out, cap, fam == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, port);
	else
		snprintf(out, cap, fam == AF_INET6 ? "[%s]" : "%s", ip);
}

/* An ltm object's address: the name, or its `address` (nodes, virtual
 * addresses, SNAT translations are named by address by default). */
static bool object_ip(struct bigip *b, enum cls c, const char *ref, char *out, size_t cap, int *fam,
		      unsigned long *rd)
{
	struct obj *o = find(b, c, ref);
	const char *a = o ? attr_word(b, o->body, "address") : NULL;

	if (a && parse_ip(a, out, cap, fam, rd))
		return true;
	return parse_ip(base_name(ref), out, cap, fam, rd);
}

/* ---- monitors: a pool's check ---- */

enum mon_type { M_NONE, M_TCP, M_HTTP, M_HTTPS, M_HALF_OPEN, M_OTHER };

static enum mon_type mon_type_of(const char *type)
{
	if (streq(type, "tcp"))
		return M_TCP;
	if (streq(type, "http"))
		return M_HTTP;
	if (streq(type, "https"))
		return M_HTTPS;
	if (streq(type, "tcp-half-open"))
		return M_HALF_OPEN;
	return M_OTHER;
}

/* The built-in monitors, by name: their type and what differs from the
 * type's defaults (interval 5, timeout 16, send "GET /\r\n", destination
 * *:*). */
static const struct builtin_mon {
	const char *name, *type, *dest, *send;
} builtin_mons[] = {
    {"tcp", "tcp", NULL, NULL},
    {"http", "http", NULL, NULL},
    {"https", "https", NULL, NULL},
    {"https_443", "https", "*:443", NULL},
    {"http_head_f5", "http", NULL, "HEAD / HTTP/1.0\\r\\n\\r\\n"},
    {"tcp_half_open", "tcp-half-open", NULL, NULL},
    {"gateway_icmp", "gateway-icmp", NULL, NULL},
    {"icmp", "icmp", NULL, NULL},
    {"inband", "inband", NULL, NULL},
    {"none", "none", NULL, NULL},
};

static const struct builtin_mon *builtin_mon(const char *ref)
{
	if (!ref || (ref[0] == '/' && strncmp(ref, "/Common/", 8) != 0))
		return NULL;
	for (size_t i = 0; i < sizeof(builtin_mons) / sizeof(builtin_mons[0]); i++)
		if (streq(base_name(ref), builtin_mons[i].name))
			return &builtin_mons[i];
	return NULL;
}

/* A monitor as the converter sees it: the file's object (or NULL for a
 * built-in) and the built-in at the root of its defaults-from chain. */
struct mon {
	struct obj *o;
	const struct builtin_mon *root;
	const char *ref, *type;
	struct obj *notes; /* where its own losses are said: itself, or the pool */
};

static const char *mon_word(struct bigip *b, const struct mon *m, const char *key)
{
	const char *root = NULL, *v = m->o ? chain_word(b, m->o, key, &root) : NULL;
	const struct builtin_mon *bm = m->o ? builtin_mon(root) : m->root;

	if (v || !bm)
		return v;
	if (streq(key, "interval"))
		return "5";
	if (streq(key, "timeout"))
		return "16";
	if (streq(key, "destination"))
		return bm->dest ? bm->dest : "*:*";
	if (streq(key, "send") && (streq(bm->type, "http") || streq(bm->type, "https")))
		return bm->send ? bm->send : "GET /\\r\\n";
	return NULL;
}

/* tmsh's escapes in a send string: \r, \n, \t, \\ and \". A recv string
 * is a regular expression: only \\ and \" are tmsh's (ALL false). */
static void unescape(const char *s, char *out, size_t cap, bool all)
{
	size_t n = 0;

	for (; *s && n + 1 < cap; s++) {
		char c = *s;
		if (c == '\\' && (s[1] == '\\' || s[1] == '"' || (all && s[1]))) {
			c = *++s;
			c = !all ? c : c == 'r' ? '\r' : c == 'n' ? '\n' : c == 't' ? '\t' : c;
		}
		out[n++] = c;
	}
	out[n] = '\0';
}

static bool value_ok(const char *v, bool spaces)
{
	if (!*v || strlen(v) > VALUE_MAX)
		return false;
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f || (!spaces && *p == ' '))
			return false;
	/* inih: ';' after a blank starts a comment; blanks at the ends go */
	return !strstr(v, " ;") && v[0] != ' ' && v[strlen(v) - 1] != ' ' && v[0] != ';';
}

/* "GET /LiveServer/MCUFactory/ HTTP/1.1\r\nHost: pool01\r\n\r\n". Returns
 * whether it gave check_host. */
static bool check_send(const struct mon *m, const char *send, FILE *f)
{
	char req[2048], *save = NULL;
	bool host = false;

	unescape(send, req, sizeof(req), true);
	char *body = strstr(req, "\r\n\r\n");
	if (body && body[4])
		note(m->notes, BIGIP_PARTIAL, "the request body of send is not sent");
	char *line = strtok_r(req, "\r\n", &save), *words = NULL;
	char *method = line ? strtok_r(line, " ", &words) : NULL;
	char *target = method ? strtok_r(NULL, " ", &words) : NULL;

	if (in_list(method, (const char *const[]){"GET", "HEAD", "POST", NULL}))
		fprintf(f, "check_method = %s\n", method);
	else
		note(m->notes, BIGIP_PARTIAL, "send: method %.20s is not one of GET, HEAD, POST",
		     method ? method : "(none)");
	if (target && strncmp(target, "http", 4) == 0 && strstr(target, "://")) {
		char *host = strstr(target, "://") + 3;
		target = strchr(host, '/');
	}
	if (target && target[0] == '/' && value_ok(target, false))
		fprintf(f, "check_path = %s\n", target);
	else if (target)
		note(m->notes, BIGIP_PARTIAL, "send: path not converted (too long or not /...)");
	for (char *h; (h = strtok_r(NULL, "\r\n", &save));) {
		if (strncasecmp(h, "Host:", 5) == 0) {
			char *v = h + 5 + strspn(h + 5, " \t"), *e = v + strlen(v);
			while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
				*--e = '\0';
			char *colon = v[0] == '[' ? strstr(v, "]:") : strchr(v, ':');
			if (colon && (v[0] == '[' || !strchr(colon + 1, ':')))
				colon[v[0] == '['] = '\0';
			if (value_ok(v, false) && !strchr(v, '/') && !host)
				host = fprintf(f, "check_host = %s\n", v) > 0;
			else
				note(m->notes, BIGIP_PARTIAL, "send: Host header not converted");
		} else if (strncasecmp(h, "Connection:", 11) != 0 && (!body || h < body)) {
			char name[40];
			printable(h, name, sizeof(name), strcspn(h, ":"));
			note(m->notes, BIGIP_PARTIAL, "send: header %s is not sent", name);
		}
	}
	return host;
}

/* One status pattern of recv: "200", "2[0-9][0-9]", "2\d\d", "2.." */
static bool status_pattern(const char **s, uint16_t *lo, uint16_t *hi)
{
	const char *p = *s;
	int v = 0, wild = 0;

	for (int d = 0; d < 3; d++) {
		int digit = -1;
		if (*p >= '0' && *p <= '9' && !wild)
			digit = *p++ - '0';
		else if (strncmp(p, "[0-9]", 5) == 0)
			p += 5;
		else if (strncmp(p, "\\d", 2) == 0)
			p += 2;
		else if (*p == '.' || *p == 'x' || *p == 'X')
			p++;
		else
			return false;
		if (digit < 0 && d == 0)
			return false;
		wild += digit < 0;
		v = v * 10 + (digit < 0 ? 0 : digit);
	}
	int span = wild == 2 ? 99 : wild == 1 ? 9 : 0;
	if (v < 100 || v + span > 599)
		return false;
	*lo = (uint16_t)v, *hi = (uint16_t)(v + span);
	*s = p;
	return true;
}

/* recv "200 OK", "HTTP/1\.[01] (200|405)", "^HTTP/1.1 2[0-9][0-9]": status
 * codes. Anything after the codes (a reason phrase) is not checked. */
static bool recv_status(const char *recv, char *out, size_t cap)
{
	const char *p = recv + (recv[0] == '^');
	uint16_t lo, hi;
	size_t n = 0;
	int count = 0;

	if (strncmp(p, "HTTP/", 5) == 0) {
		p += strcspn(p, " ");
		p += strspn(p, " ");
	} else if (strncmp(p, "HTTP", 4) == 0 && strstr(p, "\\s")) {
		p = strstr(p, "\\s") + 2;
	}
	bool group = *p == '(';
	p += group;
	do {
		if (!status_pattern(&p, &lo, &hi) || ++count > 16)
			return false;
		n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, lo == hi ? "%s%u" : "%s%u-%u",
				      n ? "," : "", lo, hi);
	} while (*p == '|' && p++);
	if (group && *p++ != ')')
		return false;
	return (*p == '\0' || *p == ' ' || *p == '$') && n < cap;
}

static void check_recv(struct bigip *b, const struct mon *m, FILE *f)
{
	const char *recv = mon_word(b, m, "recv");
	char text[512], codes[128];

	if (!recv || streq(recv, "none") || !recv[0]) {
		/* the F5 takes any answer; so does 100-599 */
		fprintf(f, "check_expect = 100-599\n");
		return;
	}
	unescape(recv, text, sizeof(text), false);
	if (recv_status(text, codes, sizeof(codes)))
		fprintf(f, "check_expect = %s\n", codes);
	else if (!text[strcspn(text, "\\^$|?*+()[]{}")] && value_ok(text, true)) {
		fprintf(f, "check_expect = 100-599\ncheck_body = %s\n", text);
		note(m->notes, BIGIP_PARTIAL, "recv \"%.60s\" is looked for in the body only",
		     text);
	} else
		note(m->notes, BIGIP_PARTIAL,
		     "recv \"%.60s\": only status codes and plain text convert; any answer is up",
		     recv);
	if (mon_word(b, m, "recv-disable") && !streq(mon_word(b, m, "recv-disable"), "none"))
		note(m->notes, BIGIP_PARTIAL,
		     "recv-disable (a server disabled by its answer) is not converted");
}

/* The server-ssl profile (or the monitor's own cert and key, before 13.0) of
 * an https check: the client certificate it presents. */
static void check_tls(struct bigip *b, const struct mon *m, FILE *f)
{
	const char *prof = mon_word(b, m, "ssl-profile"), *root = NULL;
	struct obj *p = prof ? find(b, C_PROFILE, prof) : NULL;
	const char *cert = mon_word(b, m, "cert"), *key = mon_word(b, m, "key"), *ca = NULL;
	char file[FILE_NAME_MAX + 1];

	if (p) {
		mark_used(b, p);
		cert = chain_word(b, p, "cert", &root);
		key = chain_word(b, p, "key", &root);
		ca = chain_word(b, p, "ca-file", &root);
	} else if (prof && !streq(base_name(prof), "serverssl")) {
		note(m->notes, BIGIP_PARTIAL, "ssl-profile %.80s is not in the file", prof);
	}
	if (cert && !streq(cert, "none")) {
		out_file(cert, file, sizeof(file));
		fprintf(f, "check_cert = %s\n", file);
		if (key && !streq(key, "none")) {
			out_file(key, file, sizeof(file));
			fprintf(f, "check_key = %s\n", file);
		}
	}
	if (ca && !streq(ca, "none")) {
		out_file(ca, file, sizeof(file));
		fprintf(f, "check_ca = %s\n", file);
	} else {
		note(m->notes, BIGIP_PARTIAL,
		     "the F5 does not verify the servers' certificates, snatproxy does: put their "
		     "CA in check_ca (empty: the system's CAs)");
	}
}

static void check_timing(struct bigip *b, const struct mon *m, FILE *f)
{
	uint64_t interval = 5, timeout = 16, up = 0;

	if (!parse_num(mon_word(b, m, "interval"), 86400, &interval) || interval == 0)
		interval = 5;
	if (!parse_num(mon_word(b, m, "timeout"), 86400 * 100, &timeout) || timeout == 0)
		timeout = 3 * interval + 1;
	parse_num(mon_word(b, m, "time-until-up"), 86400 * 100, &up);
	/* The F5 probes every interval and marks a server down when none
	 * succeeded for `timeout`: so many probes in a row, each given until
	 * the next one. Up after one success unless time-until-up says. */
	uint64_t fall = timeout / interval, rise = up ? (up + interval - 1) / interval : 1;
	fprintf(f, "check_interval = %llus\n", (unsigned long long)interval);
	fprintf(f, "check_timeout = %llus\n",
		(unsigned long long)(interval < timeout ? (interval < 3600 ? interval : 3600)
							: (timeout < 3600 ? timeout : 3600)));
	fprintf(f, "check_fall = %llu\n",
		(unsigned long long)(fall < 1     ? 1
				     : fall > 100 ? 100
						  : fall));
	fprintf(f, "check_rise = %llu\n", (unsigned long long)(rise > 100 ? 100 : rise));
	if (mon_word(b, m, "up-interval") && !streq(mon_word(b, m, "up-interval"), "0"))
		note(m->notes, BIGIP_PARTIAL, "up-interval: one interval for up and down servers");
}

/* Attributes of a monitor that change how it checks and have no key. */
static void check_unconverted(struct bigip *b, const struct mon *m)
{
	static const char *const lost[] = {"username",      "transparent", "reverse",
					   "manual-resume", "adaptive",    NULL};

	for (const char *const *k = lost; *k; k++) {
		const char *v = mon_word(b, m, *k);
		if (v && !streq(v, "disabled") && !streq(v, "none") && !streq(v, ""))
			note(m->notes, BIGIP_PARTIAL, "%s is not converted", *k);
	}
}

/* The check lines of one monitor; false when it has none to give. */
static bool convert_monitor(struct bigip *b, struct mon *m, bool servers_without_port,
			    struct obj *pool, FILE *f)
{
	enum mon_type type = mon_type_of(m->type);
	const char *tname = m->type ? m->type : "?";
	char head[256] = "*", port[16];
	int p = 0;

	if (type == M_OTHER) {
		note(pool, BIGIP_PARTIAL, "monitor %.80s: type %.30s has no equivalent: no check",
		     m->ref, tname);
		if (m->o && !m->o->noted)
			note(m->o, BIGIP_SKIPPED, "type %.30s has no equivalent (tcp, http, https)",
			     tname);
		return false;
	}
	const char *dest = mon_word(b, m, "destination");
	if (dest && !split_port(dest, head, sizeof(head), port, sizeof(port)))
		p = -1, head[0] = '*', head[1] = '\0';
	else if (dest)
		p = port_number(port);
	if (p < 0) {
		note(m->notes, BIGIP_PARTIAL, "destination %.40s not understood", dest);
		p = 0;
	}
	if (!streq(head, "*") && !streq(base_name(head), "*"))
		note(m->notes, BIGIP_PARTIAL, "alias address %.40s: each server is checked", head);
	if (streq(mon_word(b, m, "reverse"), "enabled")) {
		note(pool, BIGIP_PARTIAL, "monitor %.80s is a reverse monitor: no check", m->ref);
		return false;
	}
	if (p == 0 && servers_without_port) {
		note(pool, BIGIP_PARTIAL,
		     "monitor %.80s checks each member's port, but members take any port: no check",
		     m->ref);
		return false;
	}
	static const char *const names[] = {
	    [M_TCP] = "tcp", [M_HTTP] = "http", [M_HTTPS] = "https", [M_HALF_OPEN] = "tcp"};
	fprintf(f, "check = %s\n", names[type]);
	if (p)
		fprintf(f, "check_port = %d\n", p);
	if (type == M_HALF_OPEN)
		note(m->notes, BIGIP_PARTIAL, "a half-open check becomes a full connect");
	if (type == M_HTTP || type == M_HTTPS) {
		const char *send = mon_word(b, m, "send");
		bool host = send && !streq(send, "none") && check_send(m, send, f);
		if (!host && type == M_HTTPS)
			note(
			    m->notes, BIGIP_PARTIAL,
			    "no Host in send: snatproxy verifies each server's certificate against "
			    "its address unless check_host names it");
		check_recv(b, m, f);
	} else if ((mon_word(b, m, "send") && !streq(mon_word(b, m, "send"), "none")) ||
		   (mon_word(b, m, "recv") && !streq(mon_word(b, m, "recv"), "none"))) {
		note(m->notes, BIGIP_PARTIAL, "send and recv: a tcp check only connects");
	}
	if (type == M_HTTPS)
		check_tls(b, m, f);
	check_timing(b, m, f);
	check_unconverted(b, m);
	return true;
}

/* ---- pools ---- */

struct server_out {
	char name[NAME_MAX_OUT + 1];
	char addr[64]; /* "198.18.0.11:444", or without a port */
	int fam, prio;
	uint64_t weight, max_conn;
};

struct pool_out {
	char name[NAME_MAX_OUT + 1];
	char *text; /* check lines */
	size_t len;
	struct server_out *srv;
	int nsrv;
	bool fam4, fam6, noport;
	bool leastconn, weighted;
	struct hmap names;  /* of its servers */
	int persist, plain; /* converted virtuals using it, with and without source_addr */
};

/* A load-balancing mode: leastconn or not, weighted or not; partial for
 * those snatproxy has only the nearest of. */
static void pool_mode(struct obj *o, const char *mode, struct pool_out *p)
{
	static const char *const rr[] = {"round-robin", NULL};
	static const char *const ratio[] = {"ratio-member", "ratio-node", "ratio-session", NULL};
	static const char *const lc[] = {"least-connections-member", "least-connections-node",
					 NULL};
	static const char *const rlc[] = {"ratio-least-connections-member",
					  "ratio-least-connections-node", NULL};

	if (!mode || in_list(mode, rr))
		return;
	if (in_list(mode, ratio)) {
		p->weighted = true;
		return;
	}
	p->leastconn = true;
	if (in_list(mode, lc))
		return;
	p->weighted = in_list(mode, rlc);
	if (!p->weighted)
		note(o, BIGIP_PARTIAL, "load-balancing-mode %.40s: leastconn, the nearest", mode);
}

static bool weighted_by_node(const char *mode)
{
	return mode && strstr(mode, "-node");
}

/* One member: its address (from the member, its node, or its name), port,
 * ratio, connection limit and priority group. */
static void pool_member(struct bigip *b, struct obj *o, struct pool_out *p, const char *mode,
			int word, int body)
{
	const char *name = b->t[word].s, *v;
	char head[256], port[32], ip[INET6_ADDRSTRLEN];
	struct server_out s = {.weight = 1};
	unsigned long rd = 0;
	int pn;

	if (!split_port(name, head, sizeof(head), port, sizeof(port)) ||
	    (pn = port_number(port)) < 0) {
		note(o, BIGIP_PARTIAL, "member %.80s: no port in its name: left out", name);
		return;
	}
	struct obj *node = find(b, C_NODE, head);
	const char *addr = body >= 0 ? attr_word(b, body, "address") : NULL;
	if (!addr && node)
		addr = attr_word(b, node->body, "address");
	if (node)
		mark_used(b, node);
	if (!parse_ip(addr ? addr : base_name(head), ip, sizeof(ip), &s.fam, &rd) ||
	    ip_unspecified(ip)) {
		note(o, BIGIP_PARTIAL, "member %.80s: no address (an FQDN node?): left out", name);
		return;
	}
	if (rd)
		note(o, BIGIP_PARTIAL, "route domain %%%lu dropped: the host's routes apply", rd);
	if (body >= 0 && (streq(attr_word(b, body, "state"), "user-down") ||
			  streq(attr_word(b, body, "session"), "user-disabled")))
		note(o, BIGIP_PARTIAL,
		     "member %.80s is disabled or forced offline on the F5, enabled here: disable "
		     "it "
		     "through the admin endpoint",
		     name);
	int src = weighted_by_node(mode) && node ? node->body : body;
	if (p->weighted && src >= 0 && (v = attr_word(b, src, "ratio")) &&
	    (!parse_num(v, 65535, &s.weight) || s.weight > 256 || s.weight == 0)) {
		note(o, BIGIP_PARTIAL, "ratio %.10s of %.80s: weights go from 1 to 256", v, name);
		s.weight = s.weight > 256 ? 256 : 1;
	}
	if (!((body >= 0 && (v = attr_word(b, body, "connection-limit"))) ||
	      (node && (v = attr_word(b, node->body, "connection-limit")))) ||
	    !parse_num(v, 10000000, &s.max_conn))
		s.max_conn = 0;
	uint64_t prio = 0;
	if (body >= 0 && parse_num(attr_word(b, body, "priority-group"), 65535, &prio))
		s.prio = (int)prio;
	if (body >= 0 && attr_word(b, body, "monitor") &&
	    !streq(attr_word(b, body, "monitor"), "default"))
		note(o, BIGIP_PARTIAL,
		     "member monitors are not converted (the pool's check applies)");
	if (node && attr_word(b, node->body, "monitor"))
		note(node, BIGIP_PARTIAL, "node monitors are not converted");
	out_name(node ? node->name : base_name(head), s.name, sizeof(s.name));
	addr_port_text(ip, s.fam, pn, s.addr, sizeof(s.addr));
	if (unique_name(b, &p->names, s.name) < 0) /* one node on two ports: fe1, fe1-2 */
		return;
	struct server_out *grown = realloc(p->srv, (size_t)(p->nsrv + 1) * sizeof(s));
	if (!grown) {
		b->oom = true;
		return;
	}
	p->srv = grown;
	p->srv[p->nsrv++] = s;
	p->fam4 |= s.fam == AF_INET;
	p->fam6 |= s.fam == AF_INET6;
	p->noport |= pn == 0;
}

/* The monitors a pool names: `a`, `a and b`, `min N of { a b }`. */
static int pool_monitor_refs(const struct bigip *b, const struct attr *a, const char **refs,
			     int cap)
{
	int n = 0;

	for (int i = a->v; i >= 0 && i < a->vend && n < cap; i++) {
		const struct tok *t = &b->t[i];
		if (t->type != T_WORD || streq(t->s, "and") || streq(t->s, "of") ||
		    (streq(t->s, "min") && i == a->v) ||
		    (i == a->v + 1 && streq(b->t[a->v].s, "min")))
			continue;
		refs[n++] = t->s;
	}
	return n;
}

static void pool_check(struct bigip *b, struct obj *o, struct pool_out *p, FILE *f)
{
	const char *refs[16];
	struct attr a;

	if (!attr_get(b, o->body, "monitor", &a))
		return;
	int n = pool_monitor_refs(b, &a, refs, 16);
	for (int i = 0; i < n; i++) {
		struct mon m = {.ref = refs[i], .o = find(b, C_MONITOR, refs[i])};
		if (m.o) {
			m.type = m.o->type;
			m.notes = m.o->noted ? &(struct obj){0} : m.o;
			mark_used(b, m.o);
		} else if ((m.root = builtin_mon(refs[i]))) {
			m.type = m.root->type;
			m.notes = o;
			if (streq(m.type, "none"))
				continue;
		} else {
			note(o, BIGIP_PARTIAL, "monitor %.80s is not in the file: no check",
			     refs[i]);
			continue;
		}
		bool done = convert_monitor(b, &m, p->noport, o, f);
		if (m.o)
			m.o->noted = true;
		if (!done)
			continue;
		if (n > 1)
			note(o, BIGIP_PARTIAL,
			     "%d monitors: only %.80s is converted (one check a pool)", n, refs[i]);
		return;
	}
}

/* Members, mode and check; a pool without a usable member is skipped. */
static void convert_pool(struct bigip *b, struct obj *o)
{
	static const char *const quiet[] = {"members",
					    "monitor",
					    "load-balancing-mode",
					    "description",
					    "min-active-members",
					    "allow-nat",
					    "allow-snat",
					    "reselect-tries",
					    "ip-tos-to-client",
					    "ip-tos-to-server",
					    "link-qos-to-client",
					    "link-qos-to-server",
					    "ignore-persisted-weight",
					    "minimum-monitors",
					    "app-service",
					    "partition",
					    "metadata",
					    "profiles",
					    "min-up-members",
					    "min-up-members-action",
					    "min-up-members-checking",
					    "queue-depth-limit",
					    "queue-time-limit",
					    "creation-time",
					    "last-modified-time",
					    "service-down-action",
					    "slow-ramp-time",
					    "queue-on-connection-limit",
					    NULL};
	struct pool_out *p = calloc(1, sizeof(*p));
	const char *mode = attr_word(b, o->body, "load-balancing-mode"), *v;
	struct attr a;
	int word, body;

	if (!p) {
		b->oom = true;
		return;
	}
	o->pool = p;
	pool_mode(o, mode, p);
	if (attr_get(b, o->body, "members", &a) && vblock(b, &a) >= 0)
		for (int pos = a.v + 1; entry_next(b, a.v, &pos, &word, &body);) {
			if (p->nsrv == MEMBERS_MAX) {
				note(o, BIGIP_PARTIAL, "only the first %d members", MEMBERS_MAX);
				break;
			}
			pool_member(b, o, p, mode, word, body);
		}
	hmap_free(&p->names);
	if (p->nsrv == 0) {
		note(o, BIGIP_SKIPPED, "no member with an address");
		return;
	}
	for (int pos = o->body + 1; attr_next(b, o->body, &pos, &a);)
		if (!in_list(a.key, quiet))
			note(o, BIGIP_PARTIAL, "%.40s is not converted", a.key);
	if ((v = attr_word(b, o->body, "slow-ramp-time")) && !streq(v, "0"))
		note(o, BIGIP_PARTIAL, "slow-ramp-time is not converted");
	if ((v = attr_word(b, o->body, "service-down-action")) && !streq(v, "none"))
		note(o, BIGIP_PARTIAL,
		     "service-down-action %.20s: open connections to a down server go on", v);
	if ((v = attr_word(b, o->body, "queue-on-connection-limit")) && streq(v, "enabled"))
		note(o, BIGIP_PARTIAL, "queue-on-connection-limit: a full server is skipped");
	FILE *f = open_memstream(&p->text, &p->len);
	if (!f) {
		b->oom = true;
		return;
	}
	pool_check(b, o, p, f);
	if (fclose(f) != 0)
		b->oom = true;
	out_name(o->name, p->name, sizeof(p->name));
	if (unique_name(b, &b->pool_names, p->name) == 0)
		snprintf(o->pub.as, sizeof(o->pub.as), "pool %s", p->name);
	b->npools++;
}

/* With min-active-members, the F5 uses the highest priority group and
 * falls back to lower ones: the highest are the servers, the rest backup. */
static void pool_backups(struct bigip *b, struct obj *o, bool *backup)
{
	struct pool_out *p = o->pool;
	uint64_t min = 0;
	int top = 0, levels = 0;

	for (int i = 0; i < p->nsrv; i++)
		top = p->srv[i].prio > top ? p->srv[i].prio : top;
	for (int i = 0; i < p->nsrv; i++) {
		bool seen = false;
		for (int j = 0; j < i; j++)
			seen |= p->srv[j].prio == p->srv[i].prio;
		levels += !seen;
		backup[i] = false;
	}
	if (!parse_num(attr_word(b, o->body, "min-active-members"), 65535, &min) || min == 0 ||
	    levels < 2)
		return;
	for (int i = 0; i < p->nsrv; i++)
		backup[i] = p->srv[i].prio < top;
	if (levels > 2)
		note(o, BIGIP_PARTIAL,
		     "%d priority groups: the highest serve, all others are backup", levels);
}

static void emit_pool(struct bigip *b, struct obj *o, FILE *out)
{
	struct pool_out *p = o->pool;
	char text[200];
	bool *backup = calloc((size_t)p->nsrv, sizeof(*backup));

	if (!backup) {
		b->oom = true;
		return;
	}
	pool_backups(b, o, backup);
	printable(o->name, text, sizeof(text), 100);
	fprintf(out, "\n; %s %s (line %d)\n", o->pub.kind, text, o->pub.line);
	if (p->persist)
		fprintf(out,
			"; persist source_addr on its virtuals: a hash of the client address\n");
	fprintf(out, "[pool %s]\nbalance = %s\n", p->name,
		p->persist     ? "source"
		: p->leastconn ? "leastconn"
			       : "roundrobin");
	for (int i = 0; i < p->nsrv; i++) {
		const struct server_out *s = &p->srv[i];
		fprintf(out, "server = %s %s", s->name, s->addr);
		if (p->weighted && s->weight != 1)
			fprintf(out, " weight=%llu", (unsigned long long)s->weight);
		if (s->max_conn)
			fprintf(out, " max_conn=%llu", (unsigned long long)s->max_conn);
		fprintf(out, "%s\n", backup[i] ? " backup" : "");
	}
	if (p->len)
		fwrite(p->text, 1, p->len, out);
	free(backup);
}

/* ---- virtuals ---- */

struct vip_out {
	struct obj *o;
	char name[NAME_MAX_OUT + 1];
	char listen[64];
	int fam;
	struct obj *pool;
	bool persist, transparent;
	char *text; /* the lines after pool = */
	size_t len;
	struct obj **refs; /* used once the virtual is converted */
	int nrefs;
};

static void vip_ref(struct bigip *b, struct vip_out *v, struct obj *o)
{
	struct obj **grown;

	if (!o)
		return;
	grown = realloc(v->refs, (size_t)(v->nrefs + 1) * sizeof(*grown));
	if (!grown) {
		b->oom = true;
		return;
	}
	v->refs = grown;
	v->refs[v->nrefs++] = o;
}

/* "/Common/198.18.0.10%2:443" into the listen address. */
static bool vip_destination(struct bigip *b, struct vip_out *v)
{
	struct obj *o = v->o;
	const char *dest = attr_word(b, o->body, "destination"), *mask;
	char head[256], port[32], ip[INET6_ADDRSTRLEN];
	unsigned long rd;
	int pn;

	if (!dest || !split_port(dest, head, sizeof(head), port, sizeof(port))) {
		note(o, BIGIP_SKIPPED, "no destination ADDR:PORT");
		return false;
	}
	if ((pn = port_number(port)) <= 0) {
		note(o, BIGIP_SKIPPED, "destination port %.20s: a VIP listens on one port", port);
		return false;
	}
	struct obj *va = find(b, C_VADDR, head);
	vip_ref(b, v, va);
	if (!object_ip(b, C_VADDR, head, ip, sizeof(ip), &v->fam, &rd)) {
		note(o, BIGIP_SKIPPED, "destination %.80s: no address", dest);
		return false;
	}
	mask = attr_word(b, o->body, "mask");
	bool host = !mask || streq(mask, "255.255.255.255") ||
		    streq(mask, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	if (!host && !(ip_unspecified(ip) && (streq(mask, "any") || streq(mask, "0.0.0.0") ||
					      streq(mask, "any6") || streq(mask, "::")))) {
		note(o, BIGIP_SKIPPED, "a network virtual (mask %.40s): a VIP is one address",
		     mask);
		return false;
	}
	if (ip_unspecified(ip))
		note(o, BIGIP_PARTIAL, "a wildcard virtual: listens on every address of the host");
	if (rd)
		note(o, BIGIP_PARTIAL, "route domain %%%lu dropped: the host's routes apply", rd);
	addr_port_text(ip, v->fam, pn, v->listen, sizeof(v->listen));
	return true;
}

/* The addresses of an ltm snatpool, one `snat =` line each; false when none
 * serves the pool's members' family. */
static bool snatpool_lines(struct bigip *b, struct vip_out *v, struct obj *sp, FILE *f)
{
	char ip[INET6_ADDRSTRLEN], seen[SNAT_ADDRS_MAX][INET6_ADDRSTRLEN];
	struct pool_out *p = v->pool->pool;
	bool fam4 = false, fam6 = false;
	int n = 0, word, body, fam;
	unsigned long rd;
	struct attr a;

	if (!attr_get(b, sp->body, "members", &a) || vblock(b, &a) < 0)
		return false;
	for (int pos = a.v + 1; entry_next(b, a.v, &pos, &word, &body);) {
		const char *m = b->t[word].s;
		bool dup = false;
		vip_ref(b, v, find(b, C_SNATXL, m));
		if (!object_ip(b, C_SNATXL, m, ip, sizeof(ip), &fam, &rd) || ip_unspecified(ip)) {
			note(v->o, BIGIP_PARTIAL, "snatpool member %.80s has no address", m);
			continue;
		}
		if (rd)
			note(v->o, BIGIP_PARTIAL,
			     "route domain %%%lu dropped: the host's routes apply", rd);
		for (int i = 0; i < n; i++)
			dup |= streq(seen[i], ip);
		if (dup)
			continue;
		if (n == SNAT_ADDRS_MAX) {
			note(v->o, BIGIP_PARTIAL, "snatpool: only the first %d addresses",
			     SNAT_ADDRS_MAX);
			break;
		}
		snprintf(seen[n++], sizeof(seen[0]), "%s", ip);
		fprintf(f, "snat = %s\n", ip);
		fam4 |= fam == AF_INET;
		fam6 |= fam == AF_INET6;
	}
	return n > 0 && (!p->fam4 || fam4) && (!p->fam6 || fam6);
}

/* source-address-translation, or snat/snatpool before 11.3. */
static bool vip_snat(struct bigip *b, struct vip_out *v, FILE *f)
{
	struct obj *o = v->o;
	const char *type = NULL, *spool = NULL;
	struct attr a;

	if (attr_get(b, o->body, "source-address-translation", &a) && vblock(b, &a) >= 0) {
		type = attr_word(b, a.v, "type");
		spool = attr_word(b, a.v, "pool");
	} else if ((spool = attr_word(b, o->body, "snatpool"))) {
		type = "snat";
	} else {
		type = attr_word(b, o->body, "snat");
	}
	if (streq(type, "automap")) {
		fprintf(f, "snat = auto\n");
		return true;
	}
	if (!type || streq(type, "none")) {
		fprintf(f, "snat = off\n");
		v->transparent = true;
		note(
		    o, BIGIP_WARNED,
		    "no SNAT: the servers see the clients' own addresses and answer them directly, "
		    "so replies will bypass the balancer unless the servers route back through it "
		    "(converted to snat = off, transparent: docs/snat.md)");
		return true;
	}
	struct obj *sp = streq(type, "snat") ? find(b, C_SNATPOOL, spool) : NULL;
	if (!sp) {
		note(o, BIGIP_SKIPPED, "source-address-translation %.20s %.80s: not converted",
		     type, spool ? spool : "");
		return false;
	}
	vip_ref(b, v, sp);
	if (!snatpool_lines(b, v, sp, f)) {
		note(o, BIGIP_SKIPPED,
		     "snatpool %.80s has no address of the pool's members' family", spool);
		return false;
	}
	return true;
}

/* The built-in profiles, by name, and their types. */
static const char *builtin_profile(const char *ref)
{
	static const char *const map[][2] = {
	    {"tcp", "tcp"},
	    {"tcp-lan-optimized", "tcp"},
	    {"tcp-wan-optimized", "tcp"},
	    {"tcp-mobile-optimized", "tcp"},
	    {"f5-tcp-progressive", "tcp"},
	    {"f5-tcp-lan", "tcp"},
	    {"f5-tcp-wan", "tcp"},
	    {"f5-tcp-mobile", "tcp"},
	    {"mptcp-mobile-optimized", "tcp"},
	    {"tcp-legacy", "tcp"},
	    {"fastL4", "fastl4"},
	    {"clientssl", "client-ssl"},
	    {"clientssl-secure", "client-ssl"},
	    {"clientssl-insecure-compatible", "client-ssl"},
	    {"serverssl", "server-ssl"},
	    {"serverssl-insecure-compatible", "server-ssl"},
	    {"serverssl-secure", "server-ssl"},
	    {"http", "http"},
	    {"oneconnect", "one-connect"},
	    {"udp", "udp"},
	    {"stream", "stream"},
	    {"analytics", "analytics"},
	    {"sip", "sip"},
	};

	if (ref[0] == '/' && strncmp(ref, "/Common/", 8) != 0)
		return NULL;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (streq(base_name(ref), map[i][0]))
			return map[i][1];
	return NULL;
}

struct vip_tls {
	char certs[TLS_PAIRS_MAX][FILE_NAME_MAX + 1], keys[TLS_PAIRS_MAX][FILE_NAME_MAX + 1];
	int npairs;
	char client_ca[FILE_NAME_MAX + 1];
	bool server;
	char server_cert[FILE_NAME_MAX + 1], server_key[FILE_NAME_MAX + 1];
	char server_ca[FILE_NAME_MAX + 1];
	bool idle_set;
	uint64_t idle;
};

static void tls_pair(struct vip_out *v, struct vip_tls *t, const char *cert, const char *key,
		     const char *chain)
{
	if (!cert || !key || streq(cert, "none") || streq(key, "none"))
		return;
	if (t->npairs == TLS_PAIRS_MAX) {
		note(v->o, BIGIP_PARTIAL, "only the first %d certificates", TLS_PAIRS_MAX);
		return;
	}
	out_file(cert, t->certs[t->npairs], sizeof(t->certs[0]));
	out_file(key, t->keys[t->npairs++], sizeof(t->keys[0]));
	if (chain && !streq(chain, "none"))
		note(v->o, BIGIP_PARTIAL,
		     "chain %.60s: append it to %.60s (tls_cert holds the chain)", base_name(chain),
		     base_name(cert));
}

static void profile_client_ssl(struct bigip *b, struct vip_out *v, struct obj *p, struct vip_tls *t)
{
	const char *root;
	struct attr a;
	int word, body;

	if (p && chain_get(b, p, "cert-key-chain", &a, &root) && vblock(b, &a) >= 0) {
		for (int pos = a.v + 1; entry_next(b, a.v, &pos, &word, &body);)
			if (body >= 0)
				tls_pair(v, t, attr_word(b, body, "cert"),
					 attr_word(b, body, "key"), attr_word(b, body, "chain"));
	} else if (p) {
		tls_pair(v, t, chain_word(b, p, "cert", &root), chain_word(b, p, "key", &root),
			 chain_word(b, p, "chain", &root));
	}
	if (!p || (t->npairs == 0 && !chain_word(b, p, "cert", &root)))
		tls_pair(v, t, "/Common/default.crt", "/Common/default.key", NULL);
	const char *mode = p ? chain_word(b, p, "peer-cert-mode", &root) : NULL;
	const char *ca = p ? chain_word(b, p, "ca-file", &root) : NULL;
	if (streq(mode, "require") && ca && !streq(ca, "none"))
		out_file(ca, t->client_ca, sizeof(t->client_ca));
	else if (streq(mode, "request") || streq(mode, "require"))
		note(v->o, BIGIP_PARTIAL,
		     "peer-cert-mode %s: client certificates are not asked for", mode);
}

static void profile_server_ssl(struct bigip *b, struct vip_out *v, struct obj *p, struct vip_tls *t)
{
	const char *root, *cert = NULL, *key = NULL, *ca = NULL;

	t->server = true;
	if (p) {
		cert = chain_word(b, p, "cert", &root);
		key = chain_word(b, p, "key", &root);
		ca = chain_word(b, p, "ca-file", &root);
	}
	if (cert && key && !streq(cert, "none") && !streq(key, "none")) {
		out_file(cert, t->server_cert, sizeof(t->server_cert));
		out_file(key, t->server_key, sizeof(t->server_key));
	}
	if (ca && !streq(ca, "none"))
		out_file(ca, t->server_ca, sizeof(t->server_ca));
	else
		note(v->o, BIGIP_PARTIAL,
		     "server-ssl: snatproxy verifies the servers' certificates (the system's CAs "
		     "unless server_ca is given), the F5 by default does not");
}

static void profile_tcp(struct bigip *b, struct vip_out *v, struct obj *p, struct vip_tls *t)
{
	const char *root = NULL, *idle = p ? chain_word(b, p, "idle-timeout", &root) : NULL;
	uint64_t s = 300; /* tcp's and fastL4's default */

	if (streq(idle, "indefinite"))
		s = 0;
	else if (idle && (!parse_num(idle, 365ULL * 86400, &s)))
		note(v->o, BIGIP_PARTIAL, "idle-timeout %.20s not understood: 300 s", idle),
		    s = 300;
	if (!t->idle_set)
		t->idle = s;
	t->idle_set = true;
}

static void vip_profiles(struct bigip *b, struct vip_out *v, struct vip_tls *t)
{
	struct attr a;
	int word, body;
	bool client = false;

	if (!attr_get(b, v->o->body, "profiles", &a) || vblock(b, &a) < 0)
		return;
	for (int pos = a.v + 1; entry_next(b, a.v, &pos, &word, &body);) {
		const char *ref = b->t[word].s;
		const char *ctx = body >= 0 ? attr_word(b, body, "context") : NULL;
		struct obj *p = find(b, C_PROFILE, ref);
		const char *type = p ? p->type : builtin_profile(ref);
		vip_ref(b, v, p);
		if (streq(type, "tcp") || streq(type, "fastl4")) {
			if (!streq(ctx, "serverside"))
				profile_tcp(b, v, p, t);
		} else if (streq(type, "client-ssl")) {
			profile_client_ssl(b, v, p, t);
			client = true;
		} else if (streq(type, "server-ssl")) {
			profile_server_ssl(b, v, p, t);
		} else {
			note(v->o, BIGIP_PARTIAL, "profile %.80s (%.30s) is not converted", ref,
			     type ? type : "not in the file");
			if (p && !p->noted)
				note(p, BIGIP_SKIPPED,
				     "a %.30s profile has no equivalent: snatproxy "
				     "relays bytes",
				     type);
			if (p)
				p->noted = true;
		}
	}
	if (client && t->npairs == 0)
		note(v->o, BIGIP_PARTIAL, "client-ssl without a certificate: TLS passes through");
	if (t->server && !client) {
		note(v->o, BIGIP_PARTIAL, "server-ssl without client-ssl is not converted");
		t->server = false;
	}
}

static void vip_persist(struct bigip *b, struct vip_out *v)
{
	struct attr a;
	int word, body;
	const char *ref;

	if (!attr_get(b, v->o->body, "persist", &a))
		return;
	if (vblock(b, &a) >= 0) {
		if (!entry_next(b, a.v, &(int){a.v + 1}, &word, &body))
			return;
		ref = b->t[word].s;
	} else if (!(ref = vword(b, &a))) {
		return;
	}
	struct obj *p = find(b, C_PERSIST, ref);
	const char *type = p                                      ? p->type
			   : streq(base_name(ref), "source_addr") ? "source-addr"
								  : NULL;
	vip_ref(b, v, p);
	if (streq(type, "source-addr")) {
		v->persist = true;
		return;
	}
	note(v->o, BIGIP_PARTIAL, "persist %.80s (%.30s) is not converted", ref,
	     type ? type : "not in the file");
	if (p && !p->noted)
		note(p, BIGIP_SKIPPED, "%.30s persistence has no equivalent", type);
	if (p)
		p->noted = true;
}

/* What a virtual has that snatproxy has no key for. */
static void vip_losses(struct bigip *b, struct vip_out *v)
{
	static const char *const quiet[] = {"destination",
					    "ip-protocol",
					    "mask",
					    "pool",
					    "profiles",
					    "persist",
					    "source-address-translation",
					    "snat",
					    "snatpool",
					    "description",
					    "creation-time",
					    "last-modified-time",
					    "source-port",
					    "translate-address",
					    "translate-port",
					    "vs-index",
					    "enabled",
					    "vlans-disabled",
					    "cmp-enabled",
					    "mirror",
					    "nat64",
					    "auto-lasthop",
					    "gtm-score",
					    "app-service",
					    "partition",
					    "metadata",
					    "serverssl-use-sni",
					    "syn-cookie-status",
					    "service-down-immediate-action",
					    "address-status",
					    "source",
					    "rules",
					    "vlans",
					    "vlans-enabled",
					    "connection-limit",
					    "rate-limit",
					    "rate-limit-mode",
					    "rate-limit-dst-mask",
					    "rate-limit-src-mask",
					    "throughput-capacity",
					    "flow-eviction-policy",
					    "security-log-profiles",
					    NULL};
	struct obj *o = v->o;
	struct attr a;
	const char *s;
	int word, body;

	if (attr_get(b, o->body, "rules", &a) && vblock(b, &a) >= 0)
		for (int pos = a.v + 1; entry_next(b, a.v, &pos, &word, &body);) {
			note(o, BIGIP_PARTIAL, "iRule %.80s is not converted", b->t[word].s);
			vip_ref(b, v, find(b, C_RULE, b->t[word].s));
		}
	if ((s = attr_word(b, o->body, "source")) && !streq(s, "0.0.0.0/0") && !streq(s, "::/0"))
		note(o, BIGIP_PARTIAL, "source %.50s: clients from any address are taken", s);
	if ((s = attr_word(b, o->body, "connection-limit")) && !streq(s, "0"))
		note(o, BIGIP_PARTIAL, "connection-limit: max_connections is global");
	if ((s = attr_word(b, o->body, "rate-limit")) && !streq(s, "0") && !streq(s, "disabled"))
		note(o, BIGIP_PARTIAL, "rate-limit is not converted");
	if (attr_get(b, o->body, "vlans-enabled", &a) && attr_get(b, o->body, "vlans", &a))
		note(o, BIGIP_PARTIAL, "vlans-enabled: the VIP listens on every interface");
	if (streq(attr_word(b, o->body, "translate-port"), "disabled"))
		note(o, BIGIP_PARTIAL, "translate-port disabled: the members' ports are used");
	for (int pos = o->body + 1; attr_next(b, o->body, &pos, &a);)
		if (!in_list(a.key, quiet) && !in_list(a.key, flags))
			note(o, BIGIP_PARTIAL, "%.40s is not converted", a.key);
}

static void vip_tls_lines(const struct vip_tls *t, FILE *f)
{
	if (t->idle_set)
		fprintf(f, "timeout_idle = %llus\n", (unsigned long long)t->idle);
	if (!t->npairs)
		return;
	fprintf(f, "tls = terminate\n");
	for (int i = 0; i < t->npairs; i++)
		fprintf(f, "tls_cert = %s\ntls_key = %s\n", t->certs[i], t->keys[i]);
	if (t->client_ca[0])
		fprintf(f, "tls_client_ca = %s\n", t->client_ca);
	if (!t->server)
		return;
	fprintf(f, "server_tls = on\n");
	if (t->server_cert[0])
		fprintf(f, "server_cert = %s\nserver_key = %s\n", t->server_cert, t->server_key);
	if (t->server_ca[0])
		fprintf(f, "server_ca = %s\n", t->server_ca);
}

/* Everything a virtual needs, or the reason it is skipped. */
static bool vip_analyse(struct bigip *b, struct vip_out *v, FILE *f)
{
	static const char *const kinds[] = {"ip-forward", "l2-forward", "reject", "internal",
					    "stateless",  "dhcp-relay", NULL};
	struct obj *o = v->o;
	struct attr a;
	struct vip_tls t = {0};
	const char *proto = attr_word(b, o->body, "ip-protocol"), *pool;

	for (const char *const *k = kinds; *k; k++)
		if (attr_get(b, o->body, *k, &a)) {
			note(o, BIGIP_SKIPPED, "a %s virtual: nothing to balance", *k);
			return false;
		}
	if (attr_get(b, o->body, "disabled", &a)) {
		note(o, BIGIP_SKIPPED, "disabled on the F5");
		return false;
	}
	if (proto && !streq(proto, "tcp")) {
		note(o, BIGIP_SKIPPED, "ip-protocol %.20s: snatproxy relays TCP", proto);
		return false;
	}
	if (streq(attr_word(b, o->body, "translate-address"), "disabled")) {
		note(o, BIGIP_SKIPPED, "translate-address disabled: a forwarding virtual");
		return false;
	}
	if (!(pool = attr_word(b, o->body, "pool"))) {
		note(o, BIGIP_SKIPPED, "no pool (an iRule or forwarding virtual)");
		return false;
	}
	v->pool = find(b, C_POOL, pool);
	if (!v->pool || !v->pool->pool || !v->pool->pool->nsrv) {
		note(o, BIGIP_SKIPPED, "pool %.80s %s", pool,
		     v->pool ? "was not converted" : "is not in the file");
		return false;
	}
	if (!vip_destination(b, v))
		return false;
	if (!vip_snat(b, v, f))
		return false;
	vip_profiles(b, v, &t);
	vip_persist(b, v);
	vip_losses(b, v);
	vip_tls_lines(&t, f);
	return true;
}

/* A transparent VIP keeps the client's address: listen and servers of one
 * family; a listen address taken once. */
static bool vip_fits(struct bigip *b, struct vip_out *v, bool transparent)
{
	struct pool_out *p = v->pool->pool;
	int owner;

	if (transparent && ((v->fam == AF_INET && p->fam6) || (v->fam == AF_INET6 && p->fam4))) {
		note(v->o, BIGIP_SKIPPED, "no SNAT, and members of another family than the VIP");
		return false;
	}
	if ((owner = hmap_get(&b->listens, v->listen)) >= 0) {
		note(v->o, BIGIP_SKIPPED, "destination %s is taken by %.80s (line %d)", v->listen,
		     b->o[owner].name, b->o[owner].pub.line);
		return false;
	}
	if (hmap_put(&b->listens, v->listen, (int)(v->o - b->o)) < 0)
		b->oom = true;
	return true;
}

static void convert_vip(struct bigip *b, struct vip_out *v)
{
	FILE *f = open_memstream(&v->text, &v->len);

	if (!f) {
		b->oom = true;
		return;
	}
	bool ok = vip_analyse(b, v, f);
	if (fclose(f) != 0)
		b->oom = true;
	if (!ok || !v->text || !vip_fits(b, v, v->transparent)) {
		free(v->text);
		v->text = NULL;
		v->len = 0;
		return;
	}
	out_name(v->o->name, v->name, sizeof(v->name));
	if (unique_name(b, &b->vip_names, v->name) < 0)
		return;
	snprintf(v->o->pub.as, sizeof(v->o->pub.as), "vip %s", v->name);
	v->o->used = true;
	mark_used(b, v->pool);
	for (int i = 0; i < v->nrefs; i++)
		mark_used(b, v->refs[i]);
	if (v->persist)
		v->pool->pool->persist++;
	else
		v->pool->pool->plain++;
	b->nvips++;
}

static void emit_vip(const struct vip_out *v, FILE *out)
{
	char text[200];

	printable(v->o->name, text, sizeof(text), 100);
	fprintf(out, "\n; %s %s (line %d)\n", v->o->pub.kind, text, v->o->pub.line);
	fprintf(out, "[vip %s]\nlisten = %s\npool = %s\n", v->name, v->listen, v->pool->pool->name);
	fwrite(v->text, 1, v->len, out);
}

/* ---- the objects that are not virtuals or pools ---- */

static void account(struct bigip *b, struct obj *o)
{
	if (o->pub.status == BIGIP_SKIPPED || o->cls == C_VIRTUAL || o->cls == C_POOL)
		return;
	switch (o->cls) {
	case C_OTHER:
		note(o, BIGIP_SKIPPED, "not an ltm object");
		return;
	case C_LTM:
		note(o, BIGIP_SKIPPED, "no equivalent");
		return;
	case C_RULE:
		note(o, BIGIP_SKIPPED, "iRules are not converted");
		return;
	case C_SNAT:
		note(o, BIGIP_SKIPPED, "a global SNAT: only virtuals' SNAT is converted");
		return;
	case C_DNM:
		if (!streq(attr_word(b, o->body, "rule"), "none"))
			note(o, BIGIP_SKIPPED, "node monitors are not converted");
		return;
	default:
		break;
	}
	if (!o->used)
		note(o, BIGIP_SKIPPED, "no converted virtual or pool uses it");
}

/* ---- public ---- */

int bigip_parse(const char *path, const char *text, size_t len, struct bigip **out, FILE *errs)
{
	struct bigip *b;
	int ret;

	*out = NULL;
	if (len > BIGIP_FILE_MAX)
		return -EFBIG;
	if (!(b = calloc(1, sizeof(*b))) || !(b->arena = malloc(len + 2))) {
		free(b);
		return -ENOMEM;
	}
	b->path = path;
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		text += 3, len -= 3;
	ret = lex(b, text, len, errs);
	if (ret == 0)
		ret = build_objects(b, errs);
	if (ret < 0) {
		bigip_free(b);
		return ret;
	}
	*out = b;
	return 0;
}

static void print_notes(const struct bigip *b, FILE *notes)
{
	static const char *const words[] = {[BIGIP_WARNED] = "warning",
					    [BIGIP_PARTIAL] = "converted in part",
					    [BIGIP_SKIPPED] = "skipped"};

	for (int i = 0; i < b->no; i++) {
		const struct bigip_object *p = &b->o[i].pub;
		if (p->status == BIGIP_CONVERTED)
			continue;
		fprintf(notes, "%s:%d: %s%s%s: %s: %s\n", b->path, p->line, p->kind,
			p->name[0] ? " " : "", p->name, words[p->status], p->note);
	}
}

int bigip_convert(struct bigip *b, FILE *out, FILE *notes)
{
	struct vip_out *vips = calloc((size_t)b->no + 1, sizeof(*vips));
	int nv = 0;
	char path[200];

	if (!vips)
		return -ENOMEM;
	for (int i = 0; i < b->no; i++)
		if (b->o[i].cls == C_POOL)
			convert_pool(b, &b->o[i]);
	for (int i = 0; i < b->no; i++)
		if (b->o[i].cls == C_VIRTUAL) {
			vips[nv].o = &b->o[i];
			convert_vip(b, &vips[nv++]);
		}
	for (int i = 0; i < b->no; i++) {
		struct pool_out *p = b->o[i].pool;
		if (p && p->persist && p->plain)
			note(&b->o[i], BIGIP_PARTIAL,
			     "used with and without persist source_addr: balance = source for all");
		account(b, &b->o[i]);
	}
	printable(b->path, path, sizeof(path), 120);
	fprintf(out,
		"; Converted from the BIG-IP configuration %s by snatproxy --import-bigip\n"
		"; (docs/bigip.md). Certificates and keys keep their BIG-IP names, relative to\n"
		"; this file's folder. Check with: snatproxy -t -c FILE\n",
		path);
	for (int i = 0; i < b->no; i++)
		if (b->o[i].cls == C_POOL && b->o[i].pool && b->o[i].pool->nsrv)
			emit_pool(b, &b->o[i], out);
	for (int i = 0; i < nv; i++)
		if (vips[i].text)
			emit_vip(&vips[i], out);
	if (b->nvips == 0)
		fprintf(out, "\n; No virtual server could be converted: this file has no [vip].\n");
	for (int i = 0; i < nv; i++) {
		free(vips[i].text);
		free(vips[i].refs);
	}
	free(vips);
	print_notes(b, notes);
	if (b->nvips == 0)
		fprintf(notes,
			"%s: warning: no virtual server was converted: the output has no [vip]\n",
			b->path);
	fflush(out);
	fflush(notes);
	return b->oom ? -ENOMEM : 0;
}

int bigip_nobjects(const struct bigip *b)
{
	return b->no;
}

const struct bigip_object *bigip_object(const struct bigip *b, int i)
{
	return i >= 0 && i < b->no ? &b->o[i].pub : NULL;
}

void bigip_counts(const struct bigip *b, int *nvips, int *npools)
{
	*nvips = b->nvips;
	*npools = b->npools;
}

void bigip_free(struct bigip *b)
{
	if (!b)
		return;
	for (int i = 0; i < b->no; i++)
		if (b->o[i].pool) {
			free(b->o[i].pool->text);
			free(b->o[i].pool->srv);
			free(b->o[i].pool);
		}
	free(b->o);
	free(b->t);
	free(b->arena);
	hmap_free(&b->index);
	hmap_free(&b->vip_names);
	hmap_free(&b->pool_names);
	hmap_free(&b->listens);
	free(b);
}

/* The whole file, from a regular file only (a FIFO could stall us). */
static int read_file(const char *path, char **text, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	ssize_t n;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size > BIGIP_FILE_MAX) {
		close(fd);
		return -EFBIG;
	}
	*text = malloc((size_t)st.st_size + 1);
	*len = 0;
	while (*text && *len < (size_t)st.st_size &&
	       (n = read(fd, *text + *len, (size_t)st.st_size - *len)) > 0)
		*len += (size_t)n;
	int err = !*text ? ENOMEM : errno;
	close(fd);
	if (!*text || *len < (size_t)st.st_size) {
		free(*text);
		return -(err ? err : EIO);
	}
	return 0;
}

int bigip_import(const char *path, FILE *out, FILE *errs)
{
	struct bigip *b = NULL;
	char *text = NULL;
	size_t len = 0;
	int ret = read_file(path, &text, &len);

	if (ret == -EINVAL)
		fprintf(errs, "%s: not a regular file\n", path);
	else if (ret == -EFBIG)
		fprintf(errs, "%s: larger than %u MiB\n", path, BIGIP_FILE_MAX >> 20);
	else if (ret < 0)
		fprintf(errs, "%s: %s\n", path, strerror(-ret));
	if (ret < 0)
		return ret;
	ret = bigip_parse(path, text, len, &b, errs);
	if (ret == 0)
		ret = bigip_convert(b, out, errs);
	if (ret == -ENOMEM)
		fprintf(errs, "%s: out of memory\n", path);
	bigip_free(b);
	free(text);
	return ret;
}
