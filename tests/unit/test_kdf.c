/*
 * test_kdf.c - the key derivation and AF primitives LUKS rests on, against published known
 * answers: PBKDF2-HMAC-SHA1 (RFC 6070), PBKDF2-HMAC-SHA256 (RFC 7914 section 11), Argon2i
 * and Argon2id (RFC 9106 section 5), and the LUKS AF merge against an independent model
 * (a short Python transcription of LUKS1 specification section 2.4, run once; its outputs
 * are embedded below).  Also AF split/merge round trips for several hashes.
 */
#include <argon2.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/af.h"
#include "crypto/pbkdf.h"
#include "util/parse.h"
#include "util/secmem.h"

static void hex(const char *s, uint8_t *out, size_t n)
{
	assert_int_equal(bs_hex_decode(s, out, n), 0);
}

static void check_pbkdf2(const char *hash, const void *pass, size_t plen, const void *salt,
			 size_t slen, uint32_t iter, const char *want)
{
	struct bs_pbkdf p = {.type = BS_PBKDF2, .iterations = iter};
	size_t n = strlen(want) / 2;
	uint8_t out[64], exp[64];

	strcpy(p.hash, hash);
	hex(want, exp, n);
	assert_int_equal(bs_pbkdf_derive(&p, pass, plen, salt, slen, out, n), 0);
	assert_memory_equal(out, exp, n);
}

/* RFC 6070 section 2 (the 16777216-iteration case is left out for time). */
static void test_pbkdf2_sha1(void **state)
{
	(void)state;
	check_pbkdf2("sha1", "password", 8, "salt", 4, 1,
		     "0c60c80f961f0e71f3a9b524af6012062fe037a6");
	check_pbkdf2("sha1", "password", 8, "salt", 4, 2,
		     "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957");
	check_pbkdf2("sha1", "password", 8, "salt", 4, 4096,
		     "4b007901b765489abead49d926f721d065a429c1");
	check_pbkdf2("sha1", "passwordPASSWORDpassword", 24, "saltSALTsaltSALTsaltSALTsaltSALTsalt",
		     36, 4096, "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038");
	check_pbkdf2("sha1", "pass\0word", 9, "sa\0lt", 5, 4096,
		     "56fa6aa75548099dcc37d7f03425e0c3");
}

/* RFC 7914 section 11. */
static void test_pbkdf2_sha256(void **state)
{
	(void)state;
	check_pbkdf2("sha256", "passwd", 6, "salt", 4, 1,
		     "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
		     "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783");
	check_pbkdf2("sha256", "Password", 8, "NaCl", 4, 80000,
		     "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"
		     "a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d");
}

static void test_pbkdf2_bad(void **state)
{
	struct bs_pbkdf p = {.type = BS_PBKDF2, .iterations = 1, .hash = "nosuchhash"};
	uint8_t out[32];

	(void)state;
	assert_int_equal(bs_pbkdf_derive(&p, "a", 1, "b", 1, out, sizeof(out)), -EINVAL);
	strcpy(p.hash, "sha256");
	p.iterations = 0;
	assert_int_equal(bs_pbkdf_derive(&p, "a", 1, "b", 1, out, sizeof(out)), -EINVAL);
}

/*
 * RFC 9106 section 5: 32 KiB, 3 passes, 4 lanes, 32-byte tag; password 32 x 0x01, salt
 * 16 x 0x02, secret 8 x 0x03, associated data 12 x 0x04; version 0x13.
 */
static void rfc9106(argon2_type type, const char *want)
{
	uint8_t pwd[32], salt[16], secret[8], ad[12], out[32], exp[32];
	argon2_context ctx = {
	    .out = out,
	    .outlen = sizeof(out),
	    .pwd = pwd,
	    .pwdlen = sizeof(pwd),
	    .salt = salt,
	    .saltlen = sizeof(salt),
	    .secret = secret,
	    .secretlen = sizeof(secret),
	    .ad = ad,
	    .adlen = sizeof(ad),
	    .t_cost = 3,
	    .m_cost = 32,
	    .lanes = 4,
	    .threads = 4,
	    .version = ARGON2_VERSION_13,
	    .flags = ARGON2_DEFAULT_FLAGS,
	};

	memset(pwd, 1, sizeof(pwd));
	memset(salt, 2, sizeof(salt));
	memset(secret, 3, sizeof(secret));
	memset(ad, 4, sizeof(ad));
	hex(want, exp, sizeof(exp));
	assert_int_equal(argon2_ctx(&ctx, type), ARGON2_OK);
	assert_memory_equal(out, exp, sizeof(exp));
}

static void test_argon2_rfc9106(void **state)
{
	(void)state;
	rfc9106(Argon2_i, "c814d9d1dc7f37aa13f0d77f2494bda1c8de6b016dd388d29952a4c4672b6ce8");
	rfc9106(Argon2_id, "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659");
}

/* bs_pbkdf_derive (what LUKS key slots use) is the same function without secret and AD. */
static void test_argon2_wrapper(void **state)
{
	static const argon2_type types[] = {Argon2_i, Argon2_id};
	uint8_t pwd[32], salt[16], a[64], b[64];

	(void)state;
	memset(pwd, 1, sizeof(pwd));
	memset(salt, 2, sizeof(salt));
	for (int i = 0; i < 2; i++) {
		struct bs_pbkdf p = {.type = i ? BS_ARGON2ID : BS_ARGON2I,
				     .iterations = 3,
				     .memory_kb = 64,
				     .parallel = 2};
		argon2_context ctx = {.out = b,
				      .outlen = sizeof(b),
				      .pwd = pwd,
				      .pwdlen = sizeof(pwd),
				      .salt = salt,
				      .saltlen = sizeof(salt),
				      .t_cost = 3,
				      .m_cost = 64,
				      .lanes = 2,
				      .threads = 2,
				      .version = ARGON2_VERSION_13};

		assert_int_equal(
		    bs_pbkdf_derive(&p, pwd, sizeof(pwd), salt, sizeof(salt), a, sizeof(a)), 0);
		assert_int_equal(argon2_ctx(&ctx, types[i]), ARGON2_OK);
		assert_memory_equal(a, b, sizeof(a));
	}
	/* out-of-range costs are refused, not attempted */
	{
		struct bs_pbkdf p = {
		    .type = BS_ARGON2ID, .iterations = 1, .memory_kb = 8, .parallel = 4};

		assert_int_equal(bs_pbkdf_derive(&p, pwd, 1, salt, 16, a, 32), -EINVAL);
		p.parallel = 0;
		assert_int_equal(bs_pbkdf_derive(&p, pwd, 1, salt, 16, a, 32), -EINVAL);
	}
}

/*
 * Argon2's working memory (its blocks give the key without the passphrase) is secure memory:
 * out of core dumps, wiped.  A 4 MiB derivation raises the most secure memory mapped at once
 * by at least its 4 MiB, and leaves none of it mapped.
 */
static void test_argon2_memory_secure(void **state)
{
	struct bs_pbkdf p = {
	    .type = BS_ARGON2ID, .iterations = 1, .memory_kb = 4096, .parallel = 2};
	uint8_t pwd[8] = {1}, salt[16] = {2}, out[32];
	size_t base;

	(void)state;
	bs_secure_peak_reset();
	base = bs_secure_peak();
	assert_int_equal(
	    bs_pbkdf_derive(&p, pwd, sizeof(pwd), salt, sizeof(salt), out, sizeof(out)), 0);
	assert_true(bs_secure_peak() >= base + (4u << 20));
	bs_secure_peak_reset();
	assert_int_equal(bs_secure_peak(), base);
}

static void material(uint8_t *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		m[i] = (uint8_t)(((i * 7 + 3) ^ (i >> 8)) & 0xff);
}

/* AF merge of fixed material against the independent model's outputs. */
static void test_af_merge_known(void **state)
{
	static const struct {
		size_t key_len;
		unsigned stripes;
		const char *hash;
		const char *want;
	} v[] = {
	    {32, 4000, "sha256",
	     "4fff2632446ce695f4f7a1b66f8320aa897d9537b778fef9a997842892523369"},
	    {40, 3, "sha256",
	     "8a4eb0cf11f4c942ca2d2b262902ae512df55813bf0c67c538d726ccc0120354385c7de83e4b7498"},
	    {20, 5, "sha1", "8c37f0a0261b109b84941f7c4cb2eef93e8b3732"},
	    {64, 4000, "sha512",
	     "5f8fccee3802c82d1590d5baa4b0992991760e1d8ee41c237468406a7cc47b53"
	     "2cdcae6912a09a83b28829c7f0fcbb6c3b225cc6ee96cf46251c6055dee79a4c"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t n = bs_af_split_size(v[i].key_len, v[i].stripes);
		uint8_t *m = malloc(n), key[64], exp[64];

		assert_non_null(m);
		material(m, n);
		hex(v[i].want, exp, v[i].key_len);
		assert_int_equal(bs_af_merge(m, v[i].key_len, v[i].stripes, v[i].hash, key), 0);
		assert_memory_equal(key, exp, v[i].key_len);
		free(m);
	}
}

static void test_af_round_trip(void **state)
{
	static const char *const hashes[] = {"sha1", "sha256", "sha512", "sha384"};
	static const size_t keys[] = {16, 32, 33, 64};

	(void)state;
	for (size_t h = 0; h < 4; h++)
		for (size_t k = 0; k < 4; k++) {
			size_t n = bs_af_split_size(keys[k], 4000);
			uint8_t *m = malloc(n), key[64], back[64];

			assert_non_null(m);
			for (size_t i = 0; i < keys[k]; i++)
				key[i] = (uint8_t)(i * 13 + h);
			assert_int_equal(bs_af_split(key, keys[k], 4000, hashes[h], m), 0);
			assert_int_equal(bs_af_merge(m, keys[k], 4000, hashes[h], back), 0);
			assert_memory_equal(key, back, keys[k]);
			/* anti-forensic: one damaged stripe destroys the key */
			m[n / 2] ^= 1;
			assert_int_equal(bs_af_merge(m, keys[k], 4000, hashes[h], back), 0);
			assert_memory_not_equal(key, back, keys[k]);
			free(m);
		}
	assert_int_equal(bs_af_split("k", 1, 10, "nosuchhash", (uint8_t[10]){0}), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pbkdf2_sha1),	   cmocka_unit_test(test_pbkdf2_sha256),
	    cmocka_unit_test(test_pbkdf2_bad),	   cmocka_unit_test(test_argon2_rfc9106),
	    cmocka_unit_test(test_argon2_wrapper), cmocka_unit_test(test_argon2_memory_secure),
	    cmocka_unit_test(test_af_merge_known), cmocka_unit_test(test_af_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
