/*
 * cgd.c - see cgd.h.
 *
 * The parser reads the grammar of NetBSD's sbin/cgdconfig/cgdparse.y over the tokens of
 * cgdlex.l: a word is a run of characters other than space, tab, newline, ';', '{' and '}';
 * a word equal to a keyword is that keyword; a word of digits is also an integer.  Everything
 * that may hold key bits stays in locked memory, and errors name lines, never key text.
 */
#include "formats/cgd.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/secmem.h"

#define BITS2BYTES(n) (((size_t)(n) + 7) / 8)

/* ---- bits and base64 -------------------------------------------------------------------- */

static void bits_free(struct cgd_bits *b)
{
	bs_secure_free(b->data);
	b->data = NULL;
	b->nbits = 0;
}

/* Replaces B with NBITS bits from DATA. */
static int bits_set(struct cgd_bits *b, const uint8_t *data, uint32_t nbits)
{
	uint8_t *n = bs_secure_alloc(BITS2BYTES(nbits) ? BITS2BYTES(nbits) : 1);

	if (!n)
		return -ENOMEM;
	memcpy(n, data, BITS2BYTES(nbits));
	bits_free(b);
	b->data = n;
	b->nbits = nbits;
	return 0;
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64val(char c)
{
	const char *p = c ? strchr(b64chars, c) : NULL;

	return p ? (int)(p - b64chars) : -1;
}

int cgd_base64_decode(const char *in, size_t len, uint8_t *out, size_t *out_len)
{
	size_t n = 0;

	if (len % 4)
		return -EINVAL;
	for (size_t i = 0; i < len; i += 4) {
		int v[4], pad = 0;

		for (int j = 0; j < 4; j++) {
			if (in[i + j] == '=' && i + 4 == len && j >= 2) {
				v[j] = 0;
				pad++;
				continue;
			}
			if (pad) /* data after '=' */
				return -EINVAL;
			v[j] = b64val(in[i + j]);
			if (v[j] < 0)
				return -EINVAL;
		}
		out[n++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[n++] = (uint8_t)((v[1] & 15) << 4 | v[2] >> 2);
		if (pad < 1)
			out[n++] = (uint8_t)((v[2] & 3) << 6 | v[3]);
		/* the bits the padding drops must be zero, as a canonical encoder writes them */
		if ((pad == 2 && (v[1] & 15)) || (pad == 1 && (v[2] & 3)))
			return -EINVAL;
	}
	*out_len = n;
	return 0;
}

void cgd_base64_encode(const uint8_t *in, size_t len, struct strbuf *out)
{
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		sb_putc(out, b64chars[v >> 18]);
		sb_putc(out, b64chars[(v >> 12) & 63]);
		sb_putc(out, i + 1 < len ? b64chars[(v >> 6) & 63] : '=');
		sb_putc(out, i + 2 < len ? b64chars[v & 63] : '=');
	}
}

/* cgdconfig's bits_encode(): base64 of the bit count (32-bit big-endian) and the bits. */
static void bits_encode(const struct cgd_bits *b, struct strbuf *out)
{
	size_t n = BITS2BYTES(b->nbits);
	uint8_t *raw = bs_secure_alloc(n + 4);

	if (!raw)
		abort(); /* as strbuf does: a few hundred bytes */
	raw[0] = (uint8_t)(b->nbits >> 24);
	raw[1] = (uint8_t)(b->nbits >> 16);
	raw[2] = (uint8_t)(b->nbits >> 8);
	raw[3] = (uint8_t)b->nbits;
	if (n)
		memcpy(raw + 4, b->data, n);
	cgd_base64_encode(raw, n + 4, out);
	bs_secure_free(raw);
}

/* ---- names ------------------------------------------------------------------------------ */

static const char *const keygen_names[] = {
    [CGD_KG_STOREDKEY] = "storedkey",	  [CGD_KG_PBKDF2_SHA1] = "pkcs5_pbkdf2/sha1",
    [CGD_KG_PBKDF2_OLD] = "pkcs5_pbkdf2", [CGD_KG_RANDOMKEY] = "randomkey",
    [CGD_KG_URANDOMKEY] = "urandomkey",	  [CGD_KG_SHELL_CMD] = "shell_cmd",
    [CGD_KG_ARGON2ID] = "argon2id",
};

static const char *const verify_names[] = {
    [CGD_VERIFY_NONE] = "none", [CGD_VERIFY_DISKLABEL] = "disklabel",
    [CGD_VERIFY_FFS] = "ffs",	[CGD_VERIFY_REENTER] = "re-enter",
    [CGD_VERIFY_MBR] = "mbr",	[CGD_VERIFY_GPT] = "gpt",
};

const char *cgd_keygen_name(enum cgd_keygen_method m)
{
	return (unsigned)m < sizeof(keygen_names) / sizeof(keygen_names[0]) ? keygen_names[m]
									    : NULL;
}

int cgd_keygen_from_name(const char *name, enum cgd_keygen_method *out)
{
	for (unsigned i = 0; i < sizeof(keygen_names) / sizeof(keygen_names[0]); i++)
		if (!strcmp(name, keygen_names[i])) {
			*out = (enum cgd_keygen_method)i;
			return 0;
		}
	return -EINVAL;
}

const char *cgd_verify_name(enum cgd_verify v)
{
	return v >= 0 && (unsigned)v < sizeof(verify_names) / sizeof(verify_names[0])
		   ? verify_names[v]
		   : NULL;
}

static int verify_from_name(const char *name, enum cgd_verify *out)
{
	for (unsigned i = 0; i < sizeof(verify_names) / sizeof(verify_names[0]); i++)
		if (!strcmp(name, verify_names[i])) {
			*out = (enum cgd_verify)i;
			return 0;
		}
	return -EINVAL;
}

/* A value worth quoting in an error: short and plainly not key material. */
static bool quotable(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 24)
		return false;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) &&
		    !strchr("-_/.", *s))
			return false;
	return true;
}

/* ---- lexer ------------------------------------------------------------------------------ */

enum tok_type { T_EOF, T_EOL, T_LBRACE, T_RBRACE, T_WORD };

enum kw {
	KW_NONE,
	KW_ALGORITHM,
	KW_KEYLENGTH,
	KW_IVMETHOD,
	KW_VERIFY_METHOD,
	KW_BLOCKSIZE,
	KW_KEYGEN,
	KW_SALT,
	KW_ITERATIONS,
	KW_KEY,
	KW_CMD,
	KW_MEMORY,
	KW_PARALLELISM,
	KW_VERSION,
	KW_SHARED,
	KW_KEYGEN_METHOD,
	KW_KEYGEN_SALT,
	KW_KEYGEN_ITERATIONS,
	KW_XOR_KEY,
};

static const char *const keywords[] = {
    [KW_ALGORITHM] = "algorithm",
    [KW_KEYLENGTH] = "keylength",
    [KW_IVMETHOD] = "iv-method",
    [KW_VERIFY_METHOD] = "verify_method",
    [KW_BLOCKSIZE] = "blocksize",
    [KW_KEYGEN] = "keygen",
    [KW_SALT] = "salt",
    [KW_ITERATIONS] = "iterations",
    [KW_KEY] = "key",
    [KW_CMD] = "cmd",
    [KW_MEMORY] = "memory",
    [KW_PARALLELISM] = "parallelism",
    [KW_VERSION] = "version",
    [KW_SHARED] = "shared",
    [KW_KEYGEN_METHOD] = "keygen_method",
    [KW_KEYGEN_SALT] = "keygen_salt",
    [KW_KEYGEN_ITERATIONS] = "keygen_iterations",
    [KW_XOR_KEY] = "xor_key",
};

struct tok {
	enum tok_type type;
	enum kw kw;
	const char *s;
	size_t len;
	unsigned line;
};

struct parser {
	const char *p, *end;
	unsigned line;
	struct tok t;
	struct strbuf *err;
	bool failed;
};

static int perr(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int perr(struct parser *ps, const char *fmt, ...)
{
	va_list ap;
	char msg[200];

	if (ps->failed)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sb_printf(ps->err, "line %u: %s", ps->t.line, msg);
	ps->failed = true;
	return -EINVAL;
}

static int next(struct parser *ps)
{
	struct tok *t = &ps->t;

	for (;;) {
		char c;

		t->line = ps->line;
		t->kw = KW_NONE;
		t->s = ps->p;
		t->len = 0;
		if (ps->p == ps->end) {
			t->type = T_EOF;
			return 0;
		}
		c = *ps->p;
		if (c == '\0')
			return perr(ps, "NUL byte in the parameters file");
		if (c == ' ' || c == '\t') {
			ps->p++;
			continue;
		}
		if (c == '\\' && ps->p + 1 < ps->end && ps->p[1] == '\n') {
			ps->p += 2;
			ps->line++;
			continue;
		}
		if (c == '#') {
			while (ps->p < ps->end && *ps->p != ';' && *ps->p != '\n') {
				if (!*ps->p)
					return perr(ps, "NUL byte in the parameters file");
				ps->p++;
			}
			continue;
		}
		ps->p++;
		if (c == ';' || c == '\n') {
			t->type = T_EOL;
			if (c == '\n')
				ps->line++;
			return 0;
		}
		if (c == '{' || c == '}') {
			t->type = c == '{' ? T_LBRACE : T_RBRACE;
			return 0;
		}
		while (ps->p < ps->end && !strchr(" \t\n;{}", *ps->p)) {
			if (!*ps->p)
				return perr(ps, "NUL byte in the parameters file");
			ps->p++;
		}
		t->type = T_WORD;
		t->len = (size_t)(ps->p - t->s);
		for (unsigned k = 1; k < sizeof(keywords) / sizeof(keywords[0]); k++)
			if (strlen(keywords[k]) == t->len && !memcmp(keywords[k], t->s, t->len))
				t->kw = (enum kw)k;
		return 0;
	}
}

/* ---- parser ----------------------------------------------------------------------------- */

static struct cgd_keygen *keygen_new(enum cgd_keygen_method m)
{
	struct cgd_keygen *kg = calloc(1, sizeof(*kg));

	if (kg) {
		kg->method = m;
		kg->iterations = -1;
	}
	return kg;
}

static void keygen_free_list(struct cgd_keygen *kg)
{
	while (kg) {
		struct cgd_keygen *n = kg->next;

		bits_free(&kg->salt);
		bits_free(&kg->key);
		free(kg);
		kg = n;
	}
}

void cgd_params_free(struct cgd_params *p)
{
	if (!p)
		return;
	keygen_free_list(p->keygens);
	free(p);
}

/* The ';' or newline that ends a statement (the end of the file will do too). */
static int end_of_statement(struct parser *ps, const char *what)
{
	if (ps->t.type == T_EOF)
		return 0;
	if (ps->t.type != T_EOL)
		return perr(ps, "%s: expected ';' or the end of the line", what);
	return next(ps);
}

/* A string value into BUF (NUL-terminated). */
static int string_value(struct parser *ps, const char *what, char *buf, size_t size)
{
	if (ps->t.type != T_WORD)
		return perr(ps, "%s needs a value", what);
	if (ps->t.len >= size)
		return perr(ps, "%s: value too long", what);
	memcpy(buf, ps->t.s, ps->t.len);
	buf[ps->t.len] = '\0';
	return next(ps);
}

static int integer_value(struct parser *ps, const char *what, int64_t *out)
{
	int64_t v = 0;

	if (ps->t.type != T_WORD || ps->t.len == 0)
		return perr(ps, "%s needs a number", what);
	for (size_t i = 0; i < ps->t.len; i++) {
		if (!isdigit((unsigned char)ps->t.s[i]))
			return perr(ps, "%s needs a number", what);
		v = v * 10 + (ps->t.s[i] - '0');
		if (v > INT32_MAX)
			return perr(ps, "%s: number too large", what);
	}
	*out = v;
	return next(ps);
}

/* One or more words of base64, concatenated, decoded as cgdconfig's bits_decode() does. */
static int bits_value(struct parser *ps, const char *what, struct cgd_bits *out)
{
	struct strbuf text = STRBUF_SECURE_INIT;
	uint8_t *raw = NULL;
	size_t n = 0;
	uint32_t nbits;
	int r = 0;

	if (ps->t.type != T_WORD)
		return perr(ps, "%s needs a base64 value", what);
	while (ps->t.type == T_WORD && !r) {
		if (text.len + ps->t.len > CGD_PARAMS_MAX) {
			r = perr(ps, "%s: value too long", what);
			break;
		}
		sb_append(&text, ps->t.s, ps->t.len);
		r = next(ps);
	}
	if (r)
		goto out;
	raw = bs_secure_alloc(text.len / 4 * 3 + 1);
	if (!raw) {
		r = -ENOMEM;
		goto out;
	}
	if (cgd_base64_decode(sb_str(&text), text.len, raw, &n)) {
		r = perr(ps, "%s: invalid base64", what);
		goto out;
	}
	if (n < 4) {
		r = perr(ps, "%s: value too short (no bit count)", what);
		goto out;
	}
	nbits = (uint32_t)raw[0] << 24 | (uint32_t)raw[1] << 16 | (uint32_t)raw[2] << 8 | raw[3];
	if (nbits > (n - 4) * 8) {
		r = perr(ps, "%s: bit count %u is longer than the %zu bytes given", what, nbits,
			 n - 4);
		goto out;
	}
	r = bits_set(out, raw + 4, nbits);
out:
	bs_secure_free(raw);
	sb_free(&text);
	return r;
}

/* One statement of a keygen block, into KG. */
static int keygen_var(struct parser *ps, struct cgd_keygen *kg)
{
	int64_t v;
	char tmp[256];
	int r;

	switch (ps->t.type == T_WORD ? ps->t.kw : KW_NONE) {
	case KW_SALT:
		r = next(ps);
		if (!r)
			r = bits_value(ps, "salt", &kg->salt);
		break;
	case KW_KEY:
		r = next(ps);
		if (!r)
			r = bits_value(ps, "key", &kg->key);
		break;
	case KW_ITERATIONS:
		r = next(ps);
		if (!r)
			r = integer_value(ps, "iterations", &v);
		if (!r && v > 0) /* keygen_combine() keeps only positive counts */
			kg->iterations = v;
		break;
	case KW_MEMORY:
	case KW_PARALLELISM:
	case KW_VERSION:
		r = next(ps);
		if (!r)
			r = integer_value(ps, "argon2id parameter", &v);
		kg->has_argon2 = true;
		break;
	case KW_CMD:
		r = next(ps);
		if (!r)
			r = string_value(ps, "cmd", tmp, sizeof(tmp));
		kg->has_cmd = true;
		break;
	case KW_SHARED:
		return perr(ps, "shared keys (cgdconfig -S) are not supported");
	default:
		if (ps->t.type == T_EOL)
			return next(ps);
		return perr(ps,
			    "unexpected %s in a keygen statement (salt, iterations or key "
			    "expected)",
			    ps->t.type == T_WORD ? "word" : "character");
	}
	if (!r)
		r = end_of_statement(ps, "keygen");
	return r;
}

static int keygen_statement(struct parser *ps, struct cgd_params *p)
{
	struct cgd_keygen *kg, **tail;
	enum cgd_keygen_method m;
	char name[32];
	int r;

	if (ps->t.type != T_WORD)
		return perr(ps, "keygen needs a method");
	if (ps->t.len >= sizeof(name))
		return perr(ps, "unknown keygen method");
	memcpy(name, ps->t.s, ps->t.len);
	name[ps->t.len] = '\0';
	if (cgd_keygen_from_name(name, &m))
		return quotable(name) ? perr(ps, "unknown keygen method \"%s\"", name)
				      : perr(ps, "unknown keygen method");
	kg = keygen_new(m);
	if (!kg)
		return -ENOMEM;
	for (tail = &p->keygens; *tail; tail = &(*tail)->next)
		;
	*tail = kg;
	r = next(ps);
	if (r)
		return r;
	if (ps->t.type == T_LBRACE) {
		r = next(ps);
		while (!r && ps->t.type != T_RBRACE) {
			if (ps->t.type == T_EOF)
				return perr(ps, "keygen block not closed with '}'");
			r = keygen_var(ps, kg);
		}
		if (!r)
			r = next(ps);
	} else {
		r = keygen_var(ps, kg);
	}
	if (!r)
		r = end_of_statement(ps, "keygen");
	return r;
}

/* The deprecated keygen_* statements all describe one keygen (cgdparse.y "deprecated"). */
static int deprecated_statement(struct parser *ps, struct cgd_keygen **dep, bool *dep_method)
{
	enum kw kw = ps->t.kw;
	char name[32];
	int64_t v;
	int r;

	if (!*dep && !(*dep = keygen_new(CGD_KG_PBKDF2_OLD)))
		return -ENOMEM;
	r = next(ps);
	if (r)
		return r;
	switch (kw) {
	case KW_KEYGEN_METHOD:
		r = string_value(ps, "keygen_method", name, sizeof(name));
		if (!r && cgd_keygen_from_name(name, &(*dep)->method))
			return perr(ps, "unknown keygen_method");
		*dep_method = true;
		break;
	case KW_KEYGEN_SALT:
		r = bits_value(ps, "keygen_salt", &(*dep)->salt);
		break;
	case KW_KEYGEN_ITERATIONS:
		r = integer_value(ps, "keygen_iterations", &v);
		if (!r && v > 0)
			(*dep)->iterations = v;
		break;
	default: /* KW_XOR_KEY */
		r = bits_value(ps, "xor_key", &(*dep)->key);
		break;
	}
	if (!r)
		r = end_of_statement(ps, keywords[kw]);
	return r;
}

int cgd_params_parse(const char *text, size_t len, struct cgd_params **out, struct strbuf *err)
{
	struct parser ps = {text, text + len, 1, {0}, err, false};
	struct cgd_params *p = calloc(1, sizeof(*p));
	struct cgd_keygen *dep = NULL;
	bool dep_method = false;
	int r;

	if (!p)
		return -ENOMEM;
	p->keylen = -1;
	p->blocksize = -1;
	p->verify = CGD_VERIFY_UNSET;
	if (len > CGD_PARAMS_MAX) {
		sb_printf(err, "parameters file larger than %u bytes", CGD_PARAMS_MAX);
		free(p);
		return -EINVAL;
	}
	r = next(&ps);
	while (!r && ps.t.type != T_EOF) {
		char val[64];
		int64_t v;

		if (ps.t.type == T_EOL) {
			r = next(&ps);
			continue;
		}
		if (ps.t.type != T_WORD) {
			r = perr(&ps, "unexpected '%c'", *ps.t.s);
			break;
		}
		switch (ps.t.kw) {
		case KW_ALGORITHM:
			r = next(&ps);
			if (!r)
				r = string_value(&ps, "algorithm", p->algorithm,
						 sizeof(p->algorithm));
			if (!r)
				r = end_of_statement(&ps, "algorithm");
			break;
		case KW_IVMETHOD:
			r = next(&ps);
			if (!r)
				r = string_value(&ps, "iv-method", p->ivmethod,
						 sizeof(p->ivmethod));
			if (!r)
				r = end_of_statement(&ps, "iv-method");
			break;
		case KW_VERIFY_METHOD:
			r = next(&ps);
			if (!r)
				r = string_value(&ps, "verify_method", val, sizeof(val));
			if (!r && verify_from_name(val, &p->verify))
				r = quotable(val) ? perr(&ps, "unknown verify_method \"%s\"", val)
						  : perr(&ps, "unknown verify_method");
			if (!r)
				r = end_of_statement(&ps, "verify_method");
			break;
		case KW_KEYLENGTH:
		case KW_BLOCKSIZE: {
			enum kw kw = ps.t.kw;

			r = next(&ps);
			if (!r)
				r = integer_value(&ps, keywords[kw], &v);
			if (!r)
				*(kw == KW_KEYLENGTH ? &p->keylen : &p->blocksize) = v;
			if (!r)
				r = end_of_statement(&ps, keywords[kw]);
			break;
		}
		case KW_KEYGEN:
			r = next(&ps);
			if (!r)
				r = keygen_statement(&ps, p);
			break;
		case KW_KEYGEN_METHOD:
		case KW_KEYGEN_SALT:
		case KW_KEYGEN_ITERATIONS:
		case KW_XOR_KEY:
			r = deprecated_statement(&ps, &dep, &dep_method);
			break;
		default:
			r = perr(&ps,
				 "unknown statement (algorithm, iv-method, keylength, blocksize, "
				 "verify_method or keygen expected)");
			break;
		}
	}
	if (!r && dep) {
		/* params_fget(): the old keygen goes first, its xor_key as a storedkey before it */
		if (!dep_method) {
			r = perr(&ps, "keygen_salt, keygen_iterations or xor_key without "
				      "keygen_method");
		} else {
			if (dep->iterations == -1)
				dep->iterations = CGD_DEPRECATED_ITERATIONS;
			dep->next = p->keygens;
			p->keygens = dep;
			if (dep->key.data) {
				struct cgd_keygen *sk = keygen_new(CGD_KG_STOREDKEY);

				if (!sk) {
					r = -ENOMEM;
				} else {
					sk->key = dep->key;
					dep->key.data = NULL;
					dep->key.nbits = 0;
					sk->next = dep;
					p->keygens = sk;
				}
			}
			dep = NULL;
		}
	}
	if (dep)
		keygen_free_list(dep);
	if (r) {
		if (!err->len)
			sb_puts(err, "out of memory");
		cgd_params_free(p);
		return r;
	}
	*out = p;
	return 0;
}

/* ---- checks ----------------------------------------------------------------------------- */

static int cerr(struct strbuf *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int cerr(struct strbuf *err, const char *fmt, ...)
{
	va_list ap;
	char msg[256];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sb_puts(err, msg);
	return -EINVAL;
}

int cgd_params_check(struct cgd_params *p, struct strbuf *err)
{
	bool xts;
	int n = 0;

	if (!p->algorithm[0])
		return cerr(err, "no algorithm statement");
	if (strcmp(p->algorithm, "aes-cbc") && strcmp(p->algorithm, "aes-xts")) {
		if (quotable(p->algorithm))
			return cerr(err,
				    "algorithm \"%s\" is not supported (aes-cbc and aes-xts are)",
				    p->algorithm);
		return cerr(err, "algorithm not supported (aes-cbc and aes-xts are)");
	}
	xts = !strcmp(p->algorithm, "aes-xts");
	if (p->keylen == -1)
		p->keylen = xts ? CGD_DEFAULT_KEYLEN_XTS : CGD_DEFAULT_KEYLEN_CBC;
	if (xts ? p->keylen != 256 && p->keylen != 512
		: p->keylen != 128 && p->keylen != 192 && p->keylen != 256)
		return cerr(err, "keylength %lld is not valid for %s (%s)", (long long)p->keylen,
			    p->algorithm, xts ? "256 or 512" : "128, 192 or 256");
	if (!p->ivmethod[0])
		strcpy(p->ivmethod, CGD_DEFAULT_IVMETHOD);
	if (strcmp(p->ivmethod, "encblkno1") && strcmp(p->ivmethod, "encblkno8") &&
	    strcmp(p->ivmethod, "encblkno")) {
		if (quotable(p->ivmethod))
			return cerr(err,
				    "iv-method \"%s\" is not supported (encblkno1, encblkno8 and "
				    "encblkno are)",
				    p->ivmethod);
		return cerr(err, "iv-method not supported (encblkno1, encblkno8 and encblkno are)");
	}
	if (p->blocksize != -1 && p->blocksize != CGD_AES_BLOCKSIZE)
		return cerr(err, "blocksize %lld is not valid for %s (only %d)",
			    (long long)p->blocksize, p->algorithm, CGD_AES_BLOCKSIZE);
	if (p->verify == CGD_VERIFY_UNSET)
		p->verify = CGD_VERIFY_NONE;
	if (p->verify != CGD_VERIFY_NONE && p->verify != CGD_VERIFY_REENTER)
		return cerr(err, "verify_method %s is not supported (none and re-enter are)",
			    cgd_verify_name(p->verify));
	for (const struct cgd_keygen *kg = p->keygens; kg; kg = kg->next, n++) {
		const char *name = cgd_keygen_name(kg->method);

		if (kg->shared)
			return cerr(err, "shared keys are not supported");
		switch (kg->method) {
		case CGD_KG_STOREDKEY:
			if (!kg->key.data || !kg->key.nbits)
				return cerr(err, "keygen storedkey has no key");
			if (kg->key.nbits != p->keylen)
				return cerr(err, "the stored key has %u bits but keylength is %lld",
					    kg->key.nbits, (long long)p->keylen);
			break;
		case CGD_KG_PBKDF2_SHA1:
		case CGD_KG_PBKDF2_OLD:
			if (kg->iterations < 1)
				return cerr(err, "keygen %s needs iterations", name);
			if (!kg->salt.data || !kg->salt.nbits)
				return cerr(err, "keygen %s needs a salt", name);
			break;
		case CGD_KG_RANDOMKEY:
		case CGD_KG_URANDOMKEY:
			break;
		case CGD_KG_SHELL_CMD:
			return cerr(err, "keygen shell_cmd is not supported (blkstack runs no "
					 "commands from parameters files)");
		case CGD_KG_ARGON2ID:
			return cerr(err, "keygen argon2id is not supported");
		}
		if (kg->has_cmd || kg->has_argon2)
			return cerr(err,
				    "keygen %s: cmd, memory, parallelism and version belong to "
				    "other keygens",
				    name);
	}
	if (!n)
		return cerr(err, "no keygen statement");
	return 0;
}

const char *cgd_params_dm_cipher(const struct cgd_params *p)
{
	if (!strcmp(p->algorithm, "aes-xts"))
		return "aes-xts-plain64"; /* cgd ignores encblkno8 for xts */
	return strcmp(p->ivmethod, "encblkno1") ? "aes-cbc-encblkno8" : "aes-cbc-encblkno1";
}

/* ---- writer ----------------------------------------------------------------------------- */

static void spaces(struct strbuf *out, int n)
{
	while (n-- > 0)
		sb_putc(out, ' ');
}

/* params.c print_kvpair_b64(): wraps the base64 after column CGD_WRAP_COL. */
static void put_bits(struct strbuf *out, int curpos, int ts, const char *key,
		     const struct cgd_bits *b)
{
	struct strbuf text = STRBUF_SECURE_INIT;
	int pos;

	bits_encode(b, &text);
	spaces(out, ts);
	sb_printf(out, "%s ", key);
	curpos += ts + (int)strlen(key) + 1;
	ts = curpos;
	pos = curpos;
	for (size_t i = 0; i < text.len; i++, pos++) {
		if (pos > CGD_WRAP_COL) {
			sb_puts(out, " \\\n");
			spaces(out, ts);
			pos = ts;
		}
		sb_putc(out, text.s[i]);
	}
	sb_puts(out, ";\n");
	sb_free(&text);
}

void cgd_params_write(const struct cgd_params *p, struct strbuf *out)
{
	sb_printf(out, "algorithm %s;\n", p->algorithm);
	sb_printf(out, "iv-method %s;\n", p->ivmethod[0] ? p->ivmethod : CGD_DEFAULT_IVMETHOD);
	if (p->keylen != -1)
		sb_printf(out, "keylength %lld;\n", (long long)p->keylen);
	if (p->blocksize != -1)
		sb_printf(out, "blocksize %lld;\n", (long long)p->blocksize);
	sb_printf(out, "verify_method %s;\n",
		  cgd_verify_name(p->verify == CGD_VERIFY_UNSET ? CGD_VERIFY_NONE : p->verify));
	for (const struct cgd_keygen *kg = p->keygens; kg; kg = kg->next) {
		sb_puts(out, "keygen ");
		switch (kg->method) {
		case CGD_KG_STOREDKEY:
			sb_puts(out, "storedkey ");
			put_bits(out, (int)strlen("keygen storedkey "), 0, "key", &kg->key);
			break;
		case CGD_KG_PBKDF2_SHA1:
		case CGD_KG_PBKDF2_OLD:
			sb_printf(out, "%s {\n", cgd_keygen_name(kg->method));
			spaces(out, CGD_TAB_COL);
			sb_printf(out, "iterations %lld;\n", (long long)kg->iterations);
			put_bits(out, 0, CGD_TAB_COL, "salt", &kg->salt);
			sb_puts(out, "};\n");
			break;
		default:
			sb_printf(out, "%s;\n", cgd_keygen_name(kg->method));
			break;
		}
	}
}

/* ---- keys ------------------------------------------------------------------------------- */

int cgd_pbkdf2_sha1(const void *pass, size_t pass_len, const uint8_t *salt, size_t salt_len,
		    uint32_t iterations, bool old_index, uint8_t *out, size_t out_len)
{
	uint8_t *data, *u, *t;
	int r = 0;

	if (iterations == 0 || iterations > INT_MAX || pass_len > INT_MAX || salt_len > INT_MAX ||
	    out_len > INT_MAX)
		return -EINVAL;
	if (!old_index)
		return PKCS5_PBKDF2_HMAC(pass_len ? pass : "", (int)pass_len, salt, (int)salt_len,
					 (int)iterations, EVP_sha1(), (int)out_len, out)
			   ? 0
			   : -EIO;
	/* pkcs5_pbkdf2.c with compat set: block i (from 0) is F(P, S, c, i). */
	data = bs_secure_alloc(salt_len + 4);
	u = bs_secure_alloc(EVP_MAX_MD_SIZE);
	t = bs_secure_alloc(EVP_MAX_MD_SIZE);
	if (!data || !u || !t) {
		r = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0, done = 0; done < out_len; i++) {
		unsigned ulen = 0;

		memcpy(data, salt, salt_len);
		data[salt_len] = (uint8_t)(i >> 24);
		data[salt_len + 1] = (uint8_t)(i >> 16);
		data[salt_len + 2] = (uint8_t)(i >> 8);
		data[salt_len + 3] = (uint8_t)i;
		if (!HMAC(EVP_sha1(), pass, (int)pass_len, data, salt_len + 4, u, &ulen)) {
			r = -EIO;
			goto out;
		}
		memcpy(t, u, ulen);
		for (uint32_t c = 1; c < iterations; c++) {
			if (!HMAC(EVP_sha1(), pass, (int)pass_len, u, ulen, u, &ulen)) {
				r = -EIO;
				goto out;
			}
			for (unsigned j = 0; j < ulen; j++)
				t[j] ^= u[j];
		}
		memcpy(out + done, t, out_len - done < ulen ? out_len - done : ulen);
		done += out_len - done < ulen ? (uint32_t)(out_len - done) : ulen;
	}
out:
	bs_secure_free(data);
	bs_secure_free(u);
	bs_secure_free(t);
	return r;
}

static double cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint32_t cgd_pbkdf2_calibrate(size_t key_bytes, unsigned msec)
{
	uint8_t pass[64] = {0}, salt[64] = {0}, *out = bs_secure_alloc(key_bytes ? key_bytes : 1);
	uint32_t c = 1024;
	double t = 0;

	if (!out)
		return 1;
	/* as pkcs5_pbkdf2_calibrate(): double the count until it takes a measurable time */
	for (;;) {
		double t0 = cpu_seconds();

		cgd_pbkdf2_sha1(pass, sizeof(pass), salt, sizeof(salt), c, false, out, key_bytes);
		t = cpu_seconds() - t0;
		if (t > 0.03 || c >= (1u << 30))
			break;
		c *= 2;
	}
	bs_secure_free(out);
	t = (double)c * msec / 1000.0 / (t > 0 ? t : 1e-9);
	return t < 1 ? 1 : t > INT32_MAX ? INT32_MAX : (uint32_t)t;
}

int cgd_params_key(const struct cgd_params *p, cgd_passphrase_fn ask, void *arg, uint8_t *key,
		   const char **why)
{
	size_t n = (size_t)p->keylen / 8;
	uint8_t *part = bs_secure_alloc(n);
	int r = 0;

	if (!part) {
		*why = "out of memory";
		return -ENOMEM;
	}
	memset(key, 0, n);
	for (const struct cgd_keygen *kg = p->keygens; kg && !r; kg = kg->next) {
		char *pass = NULL;
		size_t len = 0;

		switch (kg->method) {
		case CGD_KG_STOREDKEY:
			memcpy(part, kg->key.data, n);
			break;
		case CGD_KG_RANDOMKEY:
		case CGD_KG_URANDOMKEY:
			if (RAND_priv_bytes(part, (int)n) != 1) {
				*why = "no random bytes for a randomkey keygen";
				r = -EIO;
			}
			break;
		case CGD_KG_PBKDF2_SHA1:
		case CGD_KG_PBKDF2_OLD:
			if (ask(arg, &pass, &len)) {
				*why = "no passphrase";
				r = -ECANCELED;
				break;
			}
			len = strnlen(pass, len); /* cgdconfig hashes strlen(passphrase) bytes */
			if (cgd_pbkdf2_sha1(pass, len, kg->salt.data, BITS2BYTES(kg->salt.nbits),
					    (uint32_t)kg->iterations,
					    kg->method == CGD_KG_PBKDF2_OLD, part, n)) {
				*why = "PBKDF2 failed";
				r = -EIO;
			}
			bs_secure_free(pass);
			break;
		default:
			*why = "unsupported keygen";
			r = -EINVAL;
			break;
		}
		for (size_t i = 0; i < n && !r; i++)
			key[i] ^= part[i];
	}
	bs_secure_free(part);
	if (r)
		bs_wipe(key, n);
	return r;
}

/* ---- generation ------------------------------------------------------------------------- */

int cgd_params_generate(const char *alg, unsigned keylen, enum cgd_keygen_method method,
			uint32_t iterations, const char *ivmethod, enum cgd_verify verify,
			struct cgd_params **out, struct strbuf *err)
{
	struct cgd_params *p = calloc(1, sizeof(*p));
	struct cgd_keygen *kg;
	int r = -EINVAL;

	if (!p)
		return -ENOMEM;
	p->keylen = keylen ? (int64_t)keylen : -1;
	p->blocksize = -1;
	p->verify = verify;
	if (strlen(alg) >= sizeof(p->algorithm) ||
	    (ivmethod && strlen(ivmethod) >= sizeof(p->ivmethod))) {
		cerr(err, "algorithm or iv-method too long");
		goto fail;
	}
	strcpy(p->algorithm, alg);
	strcpy(p->ivmethod, ivmethod ? ivmethod : CGD_DEFAULT_IVMETHOD);
	/* Check (and fill the defaults) with a keygen that needs nothing, then make the real one.
	 */
	kg = p->keygens = keygen_new(CGD_KG_RANDOMKEY);
	if (!kg) {
		r = -ENOMEM;
		goto fail;
	}
	r = cgd_params_check(p, err);
	if (r)
		goto fail;
	r = -EINVAL;
	kg->method = method;
	switch (method) {
	case CGD_KG_STOREDKEY: {
		uint8_t *key = bs_secure_alloc((size_t)p->keylen / 8);

		if (!key || RAND_priv_bytes(key, (int)(p->keylen / 8)) != 1 ||
		    bits_set(&kg->key, key, (uint32_t)p->keylen)) {
			bs_secure_free(key);
			cerr(err, "cannot make a random key");
			goto fail;
		}
		bs_secure_free(key);
		break;
	}
	case CGD_KG_PBKDF2_SHA1:
	case CGD_KG_PBKDF2_OLD: {
		uint8_t salt[CGD_DEFAULT_SALT_BITS / 8];

		if (RAND_bytes(salt, sizeof(salt)) != 1 ||
		    bits_set(&kg->salt, salt, CGD_DEFAULT_SALT_BITS)) {
			cerr(err, "cannot make a random salt");
			goto fail;
		}
		kg->iterations = iterations ? iterations
					    : cgd_pbkdf2_calibrate((size_t)p->keylen / 8,
								   CGD_DEFAULT_PBKDF2_MSEC);
		break;
	}
	case CGD_KG_RANDOMKEY:
	case CGD_KG_URANDOMKEY:
		break;
	default:
		cerr(err, "keygen %s is not supported", cgd_keygen_name(method));
		goto fail;
	}
	*out = p;
	return 0;
fail:
	cgd_params_free(p);
	return r;
}
