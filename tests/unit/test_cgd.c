/*
 * test_cgd.c - NetBSD cgdconfig parameters files (formats/cgd.c).
 *
 *   - a file in cgdconfig's exact layout (laid out by a Python transcription of params.c's
 *     printing rules: base64 wrapped past column 50, continuation lines indented under the
 *     value) parses and is written back byte for byte; generated parameters round-trip;
 *   - the examples of NetBSD's cgdconfig(8) parse, including the deprecated keygen_*
 *     statements; comments, continuations and brace blocks as cgdlex.l tokenizes them;
 *   - keys: PBKDF2-HMAC-SHA1 against RFC 6070, the old "pkcs5_pbkdf2" (block index from 0)
 *     and XORed keygens against Python's hmac module;
 *   - hostile files are refused, each with its reason, and no error quotes key material.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "formats/cgd.h"
#include "util/parse.h"
#include "util/secmem.h"

static struct cgd_params *parse_ok(const char *text)
{
	struct strbuf err = STRBUF_INIT;
	struct cgd_params *p = NULL;

	if (cgd_params_parse(text, strlen(text), &p, &err)) {
		print_error("refused: %s\n--- file ---\n%s\n", sb_str(&err), text);
		sb_free(&err);
		fail();
	}
	sb_free(&err);
	return p;
}

static void check_ok(struct cgd_params *p)
{
	struct strbuf err = STRBUF_INIT;

	if (cgd_params_check(p, &err)) {
		print_error("check: %s\n", sb_str(&err));
		sb_free(&err);
		fail();
	}
	sb_free(&err);
}

static char *write_params(const struct cgd_params *p)
{
	struct strbuf sb = STRBUF_INIT;
	char *s;

	cgd_params_write(p, &sb);
	s = strdup(sb_str(&sb));
	sb_free(&sb);
	assert_non_null(s);
	return s;
}

/* A key of 192 bits 40 41 ... 57 and a salt 00 11 22 ... ff, in cgdconfig's layout. */
static const char canonical[] = "algorithm aes-cbc;\n"
				"iv-method encblkno1;\n"
				"keylength 192;\n"
				"verify_method none;\n"
				"keygen storedkey key AAAAwEBBQkNERUZHSElKS0xNTk9QUV \\\n"
				"                     JTVFVWVw==;\n"
				"keygen pkcs5_pbkdf2/sha1 {\n"
				"        iterations 1000;\n"
				"        salt AAAAgAARIjNEVWZ3iJmqu8zd7v8=;\n"
				"};\n";

static void test_canonical_round_trip(void **state)
{
	struct cgd_params *p = parse_ok(canonical);
	const struct cgd_keygen *kg;
	char *out;

	(void)state;
	check_ok(p);
	assert_string_equal(p->algorithm, "aes-cbc");
	assert_string_equal(p->ivmethod, "encblkno1");
	assert_int_equal(p->keylen, 192);
	assert_int_equal(p->verify, CGD_VERIFY_NONE);
	kg = p->keygens;
	assert_int_equal(kg->method, CGD_KG_STOREDKEY);
	assert_int_equal(kg->key.nbits, 192);
	for (int i = 0; i < 24; i++)
		assert_int_equal(kg->key.data[i], 0x40 + i);
	kg = kg->next;
	assert_int_equal(kg->method, CGD_KG_PBKDF2_SHA1);
	assert_int_equal(kg->iterations, 1000);
	assert_int_equal(kg->salt.nbits, 128);
	assert_int_equal(kg->salt.data[15], 0xff);
	assert_null(kg->next);
	assert_string_equal(cgd_params_dm_cipher(p), "aes-cbc-encblkno1");
	out = write_params(p);
	assert_string_equal(out, canonical);
	free(out);
	cgd_params_free(p);
}

/* A 512-bit stored key wraps over four lines. */
static void test_long_key_layout(void **state)
{
	static const char text[] = "algorithm aes-xts;\n"
				   "iv-method encblkno1;\n"
				   "keylength 512;\n"
				   "verify_method none;\n"
				   "keygen storedkey key AAACAAABAgMEBQYHCAkKCwwNDg8QER \\\n"
				   "                     ITFBUWFxgZGhscHR4fICEiIyQlJico \\\n"
				   "                     KSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj \\\n"
				   "                     8=;\n";
	struct cgd_params *p = parse_ok(text);
	char *out;

	(void)state;
	check_ok(p);
	assert_int_equal(p->keygens->key.nbits, 512);
	for (int i = 0; i < 64; i++)
		assert_int_equal(p->keygens->key.data[i], i);
	assert_string_equal(cgd_params_dm_cipher(p), "aes-xts-plain64");
	out = write_params(p);
	assert_string_equal(out, text);
	free(out);
	cgd_params_free(p);
}

static void round_trip_generated(const char *alg, unsigned keylen, enum cgd_keygen_method m,
				 const char *ivmethod)
{
	struct strbuf err = STRBUF_INIT;
	struct cgd_params *p = NULL, *q;
	char *a, *b;

	if (cgd_params_generate(alg, keylen, m, 1234, ivmethod, CGD_VERIFY_NONE, &p, &err)) {
		print_error("generate %s %u: %s\n", alg, keylen, sb_str(&err));
		fail();
	}
	a = write_params(p);
	q = parse_ok(a);
	check_ok(q);
	b = write_params(q);
	assert_string_equal(a, b);
	assert_int_equal(q->keylen, p->keylen);
	assert_int_equal(q->keygens->method, m);
	if (m == CGD_KG_STOREDKEY) {
		assert_int_equal(q->keygens->key.nbits, (uint32_t)p->keylen);
		assert_memory_equal(q->keygens->key.data, p->keygens->key.data, p->keylen / 8);
	}
	if (m == CGD_KG_PBKDF2_SHA1) {
		assert_int_equal(q->keygens->iterations, 1234);
		assert_int_equal(q->keygens->salt.nbits, CGD_DEFAULT_SALT_BITS);
	}
	free(a);
	free(b);
	cgd_params_free(p);
	cgd_params_free(q);
	sb_free(&err);
}

static void test_generate(void **state)
{
	struct strbuf err = STRBUF_INIT;
	struct cgd_params *p = NULL, *q = NULL;

	(void)state;
	round_trip_generated("aes-cbc", 128, CGD_KG_STOREDKEY, NULL);
	round_trip_generated("aes-cbc", 192, CGD_KG_STOREDKEY, "encblkno8");
	round_trip_generated("aes-cbc", 256, CGD_KG_PBKDF2_SHA1, NULL);
	round_trip_generated("aes-xts", 256, CGD_KG_PBKDF2_SHA1, NULL);
	round_trip_generated("aes-xts", 512, CGD_KG_STOREDKEY, NULL);
	round_trip_generated("aes-xts", 0, CGD_KG_RANDOMKEY, NULL);
	round_trip_generated("aes-cbc", 0, CGD_KG_URANDOMKEY, NULL);
	/* defaults: keylength of crypto_defaults[], encblkno1 */
	assert_int_equal(
	    cgd_params_generate("aes-xts", 0, CGD_KG_STOREDKEY, 0, NULL, CGD_VERIFY_NONE, &p, &err),
	    0);
	assert_int_equal(p->keylen, CGD_DEFAULT_KEYLEN_XTS);
	assert_string_equal(p->ivmethod, "encblkno1");
	/* two stored keys are different */
	assert_int_equal(
	    cgd_params_generate("aes-xts", 0, CGD_KG_STOREDKEY, 0, NULL, CGD_VERIFY_NONE, &q, &err),
	    0);
	assert_memory_not_equal(p->keygens->key.data, q->keygens->key.data, 32);
	cgd_params_free(p);
	cgd_params_free(q);
	/* refusals */
	assert_int_equal(cgd_params_generate("3des-cbc", 192, CGD_KG_STOREDKEY, 0, NULL,
					     CGD_VERIFY_NONE, &p, &err),
			 -EINVAL);
	assert_non_null(strstr(sb_str(&err), "not supported"));
	sb_reset(&err);
	assert_int_equal(cgd_params_generate("aes-cbc", 512, CGD_KG_STOREDKEY, 0, NULL,
					     CGD_VERIFY_NONE, &p, &err),
			 -EINVAL);
	assert_non_null(strstr(sb_str(&err), "keylength 512 is not valid for aes-cbc"));
	sb_reset(&err);
	assert_int_equal(cgd_params_generate("aes-cbc", 128, CGD_KG_SHELL_CMD, 0, NULL,
					     CGD_VERIFY_NONE, &p, &err),
			 -EINVAL);
	assert_non_null(strstr(sb_str(&err), "not supported"));
	sb_free(&err);
}

/* The examples of cgdconfig(8). */
static void test_manual_examples(void **state)
{
	static const char pbkdf2[] = "\talgorithm aes-cbc;\n"
				     "\tiv-method encblkno;\n"
				     "\tkeylength 128;\n"
				     "\tverify_method none;\n"
				     "\tkeygen pkcs5_pbkdf2 {\n"
				     "\t\titerations 39361;\n"
				     "\t\tsalt AAAAgMoHiYonye6Kog \\\n"
				     "\t\t     dYJAobCHE=;\n"
				     "\t};\n";
	static const char stored[] = "\talgorithm       aes-cbc;\n"
				     "\tiv-method       encblkno;\n"
				     "\tkeylength       256;\n"
				     "\tverify_method   none;\n"
				     "\tkeygen storedkey key AAABAK3QO6d7xzLfrXTdsgg4 \\\n"
				     "\t\t\t     ly2TdxkFqOkYYcbyUKu/f60L;\n";
	struct cgd_params *p;

	(void)state;
	p = parse_ok(pbkdf2);
	check_ok(p);
	assert_int_equal(p->keygens->method, CGD_KG_PBKDF2_OLD);
	assert_int_equal(p->keygens->iterations, 39361);
	assert_int_equal(p->keygens->salt.nbits, 128);
	assert_int_equal(p->keygens->salt.data[0], 0xca);
	assert_string_equal(cgd_params_dm_cipher(p), "aes-cbc-encblkno8"); /* "encblkno" */
	cgd_params_free(p);
	p = parse_ok(stored);
	check_ok(p);
	assert_int_equal(p->keygens->key.nbits, 256);
	assert_int_equal(p->keygens->key.data[0], 0xad);
	assert_int_equal(p->keygens->key.data[31], 0x0b);
	cgd_params_free(p);
}

static void test_syntax(void **state)
{
	struct cgd_params *p;

	(void)state;
	/* comments end at ';' or a newline; several statements on a line; no final newline */
	p = parse_ok("# a comment\nalgorithm aes-xts; keylength 512 # comment\n"
		     "iv-method encblkno8;verify_method re-enter;;\n\n"
		     "keygen randomkey;\nkeygen urandomkey;");
	check_ok(p);
	assert_int_equal(p->keylen, 512);
	assert_int_equal(p->verify, CGD_VERIFY_REENTER);
	assert_int_equal(p->keygens->method, CGD_KG_RANDOMKEY);
	assert_int_equal(p->keygens->next->method, CGD_KG_URANDOMKEY);
	assert_string_equal(cgd_params_dm_cipher(p), "aes-xts-plain64"); /* encblkno8 ignored */
	cgd_params_free(p);
	/* later statements win; keywords as values; blocks over one line */
	p = parse_ok("algorithm aes-cbc;\nalgorithm aes-xts;\nkeylength 128;\nkeylength 256;\n"
		     "blocksize 128;\nkeygen pkcs5_pbkdf2/sha1 { iterations 5; salt AAAAgAARIjN"
		     "EVWZ3iJmqu8zd7v8=; iterations 7; };\n");
	check_ok(p);
	assert_string_equal(p->algorithm, "aes-xts");
	assert_int_equal(p->keylen, 256);
	assert_int_equal(p->blocksize, 128);
	assert_int_equal(p->keygens->iterations, 7);
	cgd_params_free(p);
	/* defaults: iv-method encblkno1, keylength by algorithm, verify_method none */
	p = parse_ok("algorithm aes-cbc;\nkeygen randomkey;\n");
	check_ok(p);
	assert_string_equal(p->ivmethod, "encblkno1");
	assert_int_equal(p->keylen, 128);
	assert_int_equal(p->verify, CGD_VERIFY_NONE);
	cgd_params_free(p);
	/* the deprecated statements: xor_key first (as storedkey), then the old keygen */
	p = parse_ok("algorithm aes-cbc;\nkeylength 192;\nkeygen_method pkcs5_pbkdf2;\n"
		     "keygen_salt AAAAgAARIjNEVWZ3iJmqu8zd7v8=;\n"
		     "xor_key AAAAwEBBQkNERUZHSElKS0xNTk9QUVJTVFVWVw==;\nkeygen randomkey;\n");
	check_ok(p);
	assert_int_equal(p->keygens->method, CGD_KG_STOREDKEY);
	assert_int_equal(p->keygens->key.nbits, 192);
	assert_int_equal(p->keygens->next->method, CGD_KG_PBKDF2_OLD);
	assert_int_equal(p->keygens->next->iterations, CGD_DEPRECATED_ITERATIONS);
	assert_int_equal(p->keygens->next->next->method, CGD_KG_RANDOMKEY);
	cgd_params_free(p);
}

static void test_base64(void **state)
{
	static const struct {
		const char *raw, *b64;
	} v[] = {{"", ""},
		 {"f", "Zg=="},
		 {"fo", "Zm8="},
		 {"foo", "Zm9v"},
		 {"foob", "Zm9vYg=="},
		 {"fooba", "Zm9vYmE="},
		 {"foobar", "Zm9vYmFy"}};
	uint8_t out[16];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) { /* RFC 4648 section 10 */
		struct strbuf sb = STRBUF_INIT;

		cgd_base64_encode((const uint8_t *)v[i].raw, strlen(v[i].raw), &sb);
		assert_string_equal(sb_str(&sb), v[i].b64);
		sb_free(&sb);
		assert_int_equal(cgd_base64_decode(v[i].b64, strlen(v[i].b64), out, &n), 0);
		assert_int_equal(n, strlen(v[i].raw));
		assert_memory_equal(out, v[i].raw, n);
	}
	assert_int_equal(cgd_base64_decode("Zm9", 3, out, &n), -EINVAL);
	assert_int_equal(cgd_base64_decode("Zm=v", 4, out, &n), -EINVAL);
	assert_int_equal(cgd_base64_decode("Z===", 4, out, &n), -EINVAL);
	assert_int_equal(cgd_base64_decode("Zm9!", 4, out, &n), -EINVAL);
	assert_int_equal(cgd_base64_decode("Zh==", 4, out, &n), -EINVAL); /* stray bits */
	assert_int_equal(cgd_base64_decode("Zg==Zg==", 8, out, &n), -EINVAL);
}

static void check_pbkdf2(const char *pass, size_t plen, const char *salt, size_t slen,
			 uint32_t iter, bool old, const char *want)
{
	uint8_t out[64], exp[64];
	size_t n = strlen(want) / 2;

	assert_int_equal(bs_hex_decode(want, exp, n), 0);
	assert_int_equal(
	    cgd_pbkdf2_sha1(pass, plen, (const uint8_t *)salt, slen, iter, old, out, n), 0);
	assert_memory_equal(out, exp, n);
}

static void test_pbkdf2(void **state)
{
	(void)state;
	/* RFC 6070 */
	check_pbkdf2("password", 8, "salt", 4, 1, false,
		     "0c60c80f961f0e71f3a9b524af6012062fe037a6");
	check_pbkdf2("password", 8, "salt", 4, 4096, false,
		     "4b007901b765489abead49d926f721d065a429c1");
	check_pbkdf2("passwordPASSWORDpassword", 24, "saltSALTsaltSALTsaltSALTsaltSALTsalt", 36,
		     4096, false, "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038");
	/* Python's hmac, block index from 0 (cgdconfig's "pkcs5_pbkdf2") */
	check_pbkdf2("my passphrase", 13,
		     "\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff", 16, 1000,
		     true, "94e5854c41ad2c3521d5dda8151a02acc2a5615c034a2d5c0b9b9421145700f4");
	check_pbkdf2("my passphrase", 13,
		     "\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff", 16, 7,
		     true,
		     "f7985d82c1fc192c878dc643a7ee689045987cebb23b9781e9e7834edc65c667"
		     "2511deadfa70427d455f37f3fdf1f059128ead394ea715660a1be65ce9a38963");
	check_pbkdf2("my passphrase", 13,
		     "\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff", 16, 1000,
		     false, "034a2d5c0b9b9421145700f4abd0a56783377e6e69a5d1c04df98f4657a9ef21");
	assert_int_equal(
	    cgd_pbkdf2_sha1("a", 1, (const uint8_t *)"b", 1, 0, false, (uint8_t[20]){0}, 20),
	    -EINVAL);
	assert_true(cgd_pbkdf2_calibrate(16, 20) >= 1);
}

struct asked {
	const char *pass;
	int calls;
};

static int ask(void *arg, char **pass, size_t *len)
{
	struct asked *a = arg;

	a->calls++;
	if (!a->pass)
		return -1;
	*pass = bs_secure_strdup(a->pass);
	*len = strlen(a->pass) + 3; /* bytes after a NUL do not count, as in cgdconfig */
	return *pass ? 0 : -1;
}

static void test_keys(void **state)
{
	struct cgd_params *p = parse_ok(canonical);
	struct asked a = {"my passphrase", 0};
	uint8_t key[24], exp[24];
	const char *why = NULL;

	(void)state;
	check_ok(p);
	/* pbkdf2/sha1 (1000 iterations, 24 bytes) XOR the stored key, by Python */
	assert_int_equal(cgd_params_key(p, ask, &a, key, &why), 0);
	assert_int_equal(a.calls, 1);
	assert_int_equal(bs_hex_decode("430b6f1f4fded2665c1e4abfe79deb28d3662c3d3df08797", exp, 24),
			 0);
	assert_memory_equal(key, exp, 24);
	a.pass = NULL;
	memset(key, 0x5a, sizeof(key));
	assert_int_equal(cgd_params_key(p, ask, &a, key, &why), -ECANCELED);
	for (size_t i = 0; i < sizeof(key); i++)
		assert_int_equal(key[i], 0);
	cgd_params_free(p);
}

static void bad_parse(const char *text, size_t len, const char *needle)
{
	struct strbuf err = STRBUF_INIT;
	struct cgd_params *p = NULL;

	if (!cgd_params_parse(text, len, &p, &err)) {
		print_error("accepted:\n%s\n", text);
		cgd_params_free(p);
		fail();
	}
	if (!strstr(sb_str(&err), needle)) {
		print_error("\"%s\" does not say \"%s\"\n", sb_str(&err), needle);
		fail();
	}
	assert_null(strchr(sb_str(&err), '\n'));
	/* errors never quote base64 (key) text */
	assert_null(strstr(sb_str(&err), "AAAA"));
	sb_free(&err);
}

static void bad_check(const char *text, const char *needle)
{
	struct strbuf err = STRBUF_INIT;
	struct cgd_params *p = parse_ok(text);

	if (!cgd_params_check(p, &err)) {
		print_error("check accepted:\n%s\n", text);
		fail();
	}
	if (!strstr(sb_str(&err), needle)) {
		print_error("\"%s\" does not say \"%s\"\n", sb_str(&err), needle);
		fail();
	}
	assert_null(strstr(sb_str(&err), "AAAA"));
	cgd_params_free(p);
	sb_free(&err);
}

#define BAD(text, needle) bad_parse(text, sizeof(text) - 1, needle)

static void test_hostile(void **state)
{
	char *big;

	(void)state;
	BAD("algorithm aes-cbc;\nfrobnicate 3;\n", "line 2: unknown statement");
	BAD("AAAAwEBBQkNERUZHSElKS0xNTk9QUVJTVFVWVw==;\n", "line 1: unknown statement");
	BAD("algorithm;\n", "line 1: algorithm needs a value");
	BAD("algorithm aes-cbc aes-xts;\n", "expected ';'");
	BAD("keylength 12x;\n", "keylength needs a number");
	BAD("keylength -128;\n", "keylength needs a number");
	BAD("keylength 99999999999999999999;\n", "number too large");
	BAD("algorithm aes\0-cbc;\n", "NUL byte");
	BAD("# comment \0\n", "NUL byte");
	BAD("{\n", "unexpected '{'");
	BAD("keygen storedkey key AAAAwEBBQkNER!ZHSElKS0xNTk9QUVJTVFVWVw==;\n", "invalid base64");
	BAD("keygen storedkey key AAAAwEBBQkNERUZHSElKS0xNTk9QUVJTVFVWVw=;\n", "invalid base64");
	BAD("keygen storedkey key AAA=;\n", "too short");
	BAD("keygen storedkey key AAAB;\n", "too short");
	BAD("keygen storedkey key AAABAEBB;\n", "bit count 256 is longer than the 2 bytes");
	BAD("keygen storedkey key;\n", "key needs a base64 value");
	BAD("keygen pkcs5_pbkdf2/sha1 {\n iterations 3;\n", "keygen block not closed");
	BAD("keygen pkcs5_pbkdf2/sha1 { iterations 3; bogus 4; };\n", "unexpected word");
	BAD("keygen pkcs5_pbkdf2/sha1 { iterations x; };\n", "iterations needs a number");
	BAD("keygen frobkey;\n", "unknown keygen method \"frobkey\"");
	BAD("keygen AAAAwEBBQkNERUZHSElKS0xNTk9QUVJTVFVWVw==;\n", "unknown keygen method");
	BAD("keygen;\n", "keygen needs a method");
	BAD("keygen randomkey; keylength 128;\n", "expected ';'");
	BAD("verify_method sometimes;\n", "unknown verify_method \"sometimes\"");
	BAD("keygen argon2id { shared \"x\" algorithm hkdf-hmac-sha256 subkey AAAA; };\n",
	    "shared keys");
	BAD("keygen_salt AAAAgAARIjNEVWZ3iJmqu8zd7v8=;\n", "without keygen_method");
	BAD("keygen_method nosuch;\n", "unknown keygen_method");
	big = calloc(1, CGD_PARAMS_MAX + 2);
	assert_non_null(big);
	memset(big, '#', CGD_PARAMS_MAX + 1);
	bad_parse(big, CGD_PARAMS_MAX + 1, "larger than");
	free(big);

	bad_check("keygen randomkey;\n", "no algorithm statement");
	bad_check("algorithm 3des-cbc;\nkeygen randomkey;\n", "\"3des-cbc\" is not supported");
	bad_check("algorithm adiantum;\nkeygen randomkey;\n", "not supported");
	bad_check("algorithm aes-cbc\r\nkeygen randomkey;\n", "algorithm not supported");
	bad_check("algorithm aes-cbc;\nkeylength 100;\nkeygen randomkey;\n",
		  "keylength 100 is not valid for aes-cbc (128, 192 or 256)");
	bad_check("algorithm aes-xts;\nkeylength 384;\nkeygen randomkey;\n",
		  "keylength 384 is not valid for aes-xts (256 or 512)");
	bad_check("algorithm aes-cbc;\niv-method plain64;\nkeygen randomkey;\n",
		  "iv-method \"plain64\" is not supported");
	bad_check("algorithm aes-cbc;\nblocksize 64;\nkeygen randomkey;\n", "blocksize 64");
	bad_check("algorithm aes-cbc;\nverify_method disklabel;\nkeygen randomkey;\n",
		  "verify_method disklabel is not supported");
	bad_check("algorithm aes-cbc;\nverify_method ffs;\nkeygen randomkey;\n", "ffs");
	bad_check("algorithm aes-cbc;\nverify_method gpt;\nkeygen randomkey;\n", "gpt");
	bad_check("algorithm aes-cbc;\n", "no keygen statement");
	bad_check("algorithm aes-cbc;\nkeygen storedkey;\n", "has no key");
	bad_check("algorithm aes-cbc;\nkeylength 128;\n"
		  "keygen storedkey key AAAAwEBBQkNERUZHSElKS0xNTk9QUVJTVFVWVw==;\n",
		  "the stored key has 192 bits but keylength is 128");
	bad_check("algorithm aes-cbc;\nkeygen pkcs5_pbkdf2/sha1 { iterations 3; };\n",
		  "needs a salt");
	bad_check("algorithm aes-cbc;\nkeygen pkcs5_pbkdf2/sha1 { salt "
		  "AAAAgAARIjNEVWZ3iJmqu8zd7v8=; };\n",
		  "needs iterations");
	bad_check("algorithm aes-cbc;\nkeygen pkcs5_pbkdf2/sha1 { iterations 0; salt "
		  "AAAAgAARIjNEVWZ3iJmqu8zd7v8=; };\n",
		  "needs iterations");
	bad_check("algorithm aes-cbc;\nkeygen shell_cmd cmd /usr/bin/true;\n",
		  "shell_cmd is not supported");
	bad_check("algorithm aes-cbc;\nkeygen argon2id { iterations 1; memory 256; "
		  "parallelism 1; version 19; salt AAAAgAARIjNEVWZ3iJmqu8zd7v8=; };\n",
		  "argon2id is not supported");
	bad_check("algorithm aes-cbc;\nkeygen randomkey { memory 5; };\n",
		  "belong to other keygens");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_canonical_round_trip),
	    cmocka_unit_test(test_long_key_layout),
	    cmocka_unit_test(test_generate),
	    cmocka_unit_test(test_manual_examples),
	    cmocka_unit_test(test_syntax),
	    cmocka_unit_test(test_base64),
	    cmocka_unit_test(test_pbkdf2),
	    cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
