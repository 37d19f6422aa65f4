/*
 * test_aead.c - dm-crypt's authenticated encryption (src/crypto/aead.c) and the two targets
 * that carry it: crypt with integrity:<bytes>:aead and integrity without internal_hash.
 *
 *   - KATS: authenc(hmac(sha1|sha256|sha512), xts|cbc(aes)) with plain, plain64 and random
 *     IVs, truncated tags, and gcm(aes)-random with 128- and 256-bit keys, sector sizes 512
 *     and 4096, sector numbers past 2^32, iv_offset.  The answers were computed once by
 *     tests/fixtures/aead/gen_kat.py (python3-cryptography's AES-XTS/CBC/GCM and HMAC, from
 *     the sector format of dm-crypt) and are embedded below as the SHA-256 of the ciphertext
 *     and every tag in full.  Each case also decrypts back, in place and not.
 *   - Random IVs: two encryptions of the same data differ, and each decrypts.
 *   - Tampering: a flipped bit in the ciphertext, the auth tag, the stored IV, or a wrong
 *     sector number or iv_offset makes exactly the affected sectors fail with -EILSEQ; they
 *     are zeroed in the output, the others decrypt; *bad and *nbad name them.
 *   - Specifications, key sizes and tag sizes: accepted and refused with a reason.
 *   - Targets: integrity without internal_hash stores and returns the tags a request carries
 *     (journal and direct modes) and refuses metadata of another size; crypt in AEAD mode is
 *     refused over anything but a blkstack device, and without an AEAD cipher.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "crypto/aead.h"
#include "engine/table.h"
#include "helpers.h"
#include "util/parse.h"
#include "util/strbuf.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static void key_pattern(uint8_t *key, size_t n)
{
	for (size_t i = 0; i < n; i++)
		key[i] = (uint8_t)(i * 7 + 1);
}

static void data_pattern(uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)(i * 31 + 7);
}

static void iv_pattern(uint8_t *ivs, unsigned iv_size, size_t nsec)
{
	for (size_t i = 0; i < nsec; i++)
		for (unsigned j = 0; j < iv_size; j++)
			ivs[i * iv_size + j] = (uint8_t)(0xa0 + 16 * i + j);
}

static void sha256_hex(const void *buf, size_t n, char out[65])
{
	uint8_t md[32];
	unsigned len = 0;

	assert_true(EVP_Digest(buf, n, md, &len, EVP_sha256(), NULL));
	bs_hex_encode(md, 32, out);
}

static struct bs_aead *new_aead(const char *spec, const uint8_t *key, size_t key_len,
				unsigned tag_size, unsigned sector_size, bool large)
{
	struct bs_aead_spec s;
	struct bs_aead *a = NULL;
	const char *why = NULL;

	if (bs_aead_spec_parse(spec, &s, &why) ||
	    bs_aead_new(&s, key, key_len, tag_size, sector_size, large, &a, &why)) {
		print_error("%s: %s\n", spec, why);
		fail();
	}
	return a;
}

/* ---- known answers ---------------------------------------------------------------------- */

struct kat {
	const char *spec;
	unsigned key_len, sector_size;
	uint64_t sector; /* 512-byte units, relative to the target */
	uint64_t iv_offset;
	unsigned nsec, tag_size;
	const char *sha256; /* of the ciphertext */
	const char *tags;   /* all of them, hex */
};

/* Output of tests/fixtures/aead/gen_kat.py. */
static const struct kat kats[] = {
    {"capi:authenc(hmac(sha256),xts(aes))-plain64", 96, 512, 0x3e8ull, 0, 3, 32,
     "8d67556ff7fff04ff0ed65c26111540ae6a575ce5c736e28eaa4b1df01091900",
     "fe4c0dcef2dd8ddf4868d752efbeb7c934ad5644aa75ae127cbdfd67ec62ed6a"
     "b98cee5bfd495e9a58d75aa8cea114d51bfa0b4303046c3e5dab26a0e0167df7"
     "458af8cb99691aaf14050fc665cd79ef8b82f739c49a0c976e942d556c06023f"},
    {"capi:authenc(hmac(sha256),xts(aes))-plain64", 96, 4096, 0x100000008ull, 16, 2, 32,
     "d5c31d51ee874cd2bfb0246d6162bf56af95917d71791b53d048b8b5ec533b51",
     "12b3ce30905c18eae937917fca5a276131fdd06299bebf232c64cbf75022322e"
     "97855872a211ae476b0b93dcb012e1d541e84e71f4a157267c236c16f451c98d"},
    {"capi:authenc(hmac(sha256),xts(aes))-plain64", 64, 512, 0x5ull, 0, 2, 20,
     "1d0e2841a9cbe5e2bddf3189e61d50bdd2ca606e2a99654caa0341ae9a6ce3c4",
     "9fb731bba2bbd47eac4bd32ba61da3a04891b7df6aa5082721dea27468dbbc2d"
     "fa74c94d76688086"},
    {"capi:authenc(hmac(sha256),xts(aes))-random", 96, 512, 0x9ull, 0, 2, 48,
     "7dc8d605bcc7987062d8a2b1f54e2b0535ef068c2831227464cd4d575b55b099",
     "e37ff8589dff43311ea59faa095fc3c4c0bacb64d88945eed4c82e16295f9623"
     "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf0dc18e492c7cb90480d281bd6445002c"
     "975bc91587e01bce7443f82f63c9ed1bb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"},
    {"capi:authenc(hmac(sha512),cbc(aes))-plain64", 96, 512, 0x4dull, 3, 2, 64,
     "cc3fe97b102e6d49b534aca1fd4270e324d801bd315e48ba3fe633381aa866dc",
     "d9744821a490586b938d6ee0029764130cd5f4bea332ecff0b9779eedb7f7c31"
     "a9464d18dabdb0432f5be6a7d51b3578612e10aa59314272d0234c8ac1bbb035"
     "e901925355d808624285684aff0738ffad46586b773f4b0020a8670a3eda507c"
     "a42dbb46eb1661e83c8088b90b8bee8b3e0858c979bf55ec6920853b81d8b63d"},
    {"capi:authenc(hmac(sha1),xts(aes))-plain", 84, 4096, 0x18ull, 0, 2, 20,
     "24064cb1e11da76d97e7ca4710da8cd6c297e50b6be4784e32c5ff049cc8d7fb",
     "5414afdd2e8a13de25c2fccc59581f0194d52250e755dc4c69883b946e833d0d"
     "42337d49dd399d85"},
    {"capi:gcm(aes)-random", 32, 512, 0xc8ull, 0, 3, 28,
     "c01371999334f67727aebaccfda0206fa7d142881741e1ec1d95112c84e07503",
     "0c991017f0e602d74c1ab58c38e3f7a7a0a1a2a3a4a5a6a7a8a9aaabb48c7fca"
     "5f170c5b0138423eef1fe0adb0b1b2b3b4b5b6b7b8b9babbeca0c0b788fb76c4"
     "5dafa56b2f2cefa1c0c1c2c3c4c5c6c7c8c9cacb"},
    {"capi:gcm(aes)-random", 16, 4096, 0x200000000ull, 8, 2, 28,
     "b0f16d1c52333717670cd8b94c1ff9d8faf72ee0425500261a096b18c5a489de",
     "68796981acba9d6baf2bac92a655c484a0a1a2a3a4a5a6a7a8a9aaab3d77efe1"
     "009a5e2d797c3013c362825ab0b1b2b3b4b5b6b7b8b9babb"},
    {"aes-gcm-random", 32, 4096, 0x8ull, 0, 1, 28,
     "041d78696e9366e96cab7a9985e0241899eba9df3b1f584d052e332cb639cfb8",
     "9d1c82434c4a2bf672f6ead75e83e645a0a1a2a3a4a5a6a7a8a9aaab"},
};

static void run_kat(const struct kat *k)
{
	const size_t len = (size_t)k->sector_size * k->nsec;
	uint8_t key[128], ivs[64], *pt = malloc(len), *ct = malloc(len), *back = malloc(len);
	uint8_t *tags = malloc((size_t)k->nsec * k->tag_size);
	char sum[65], *hex = malloc(2 * (size_t)k->nsec * k->tag_size + 1);
	struct bs_aead *a;
	unsigned nbad = 99;

	assert_non_null(pt);
	assert_non_null(ct);
	assert_non_null(back);
	assert_non_null(tags);
	assert_non_null(hex);
	key_pattern(key, k->key_len);
	data_pattern(pt, len);
	iv_pattern(ivs, strstr(k->spec, "gcm") ? 12 : 16, k->nsec);
	a = new_aead(k->spec, key, k->key_len, k->tag_size, k->sector_size, false);
	assert_int_equal(bs_aead_tag_size(a), k->tag_size);
	assert_int_equal(bs_aead_encrypt_ivs(a, pt, ct, len, k->sector, k->iv_offset, ivs, tags),
			 0);
	sha256_hex(ct, len, sum);
	if (strcmp(sum, k->sha256)) {
		print_error("%s sector %llu: ciphertext sha256 %s, expected %s\n", k->spec,
			    (unsigned long long)k->sector, sum, k->sha256);
		fail();
	}
	bs_hex_encode(tags, (size_t)k->nsec * k->tag_size, hex);
	if (strcmp(hex, k->tags)) {
		print_error("%s sector %llu: tags\n  %s, expected\n  %s\n", k->spec,
			    (unsigned long long)k->sector, hex, k->tags);
		fail();
	}
	/* back, out of place and in place */
	assert_int_equal(
	    bs_aead_decrypt(a, ct, back, len, k->sector, k->iv_offset, tags, NULL, &nbad), 0);
	assert_int_equal(nbad, 0);
	assert_memory_equal(back, pt, len);
	memcpy(back, ct, len);
	assert_int_equal(
	    bs_aead_decrypt(a, back, back, len, k->sector, k->iv_offset, tags, NULL, NULL), 0);
	assert_memory_equal(back, pt, len);
	/* in-place encryption gives the same */
	memcpy(back, pt, len);
	assert_int_equal(
	    bs_aead_encrypt_ivs(a, back, back, len, k->sector, k->iv_offset, ivs, tags), 0);
	assert_memory_equal(back, ct, len);
	bs_aead_free(a);
	free(pt);
	free(ct);
	free(back);
	free(tags);
	free(hex);
}

static void test_kats(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(kats) / sizeof(kats[0]); i++)
		run_kat(&kats[i]);
}

/*
 * An independent check of the first KAT's first sector with OpenSSL's one-shot APIs (its own
 * XTS and HMAC, not the sector cipher aead.c builds on).
 */
static void test_openssl_oneshot(void **state)
{
	const struct kat *k = &kats[0];
	uint8_t key[96], pt[512], ct[512], mine[512], tags[96], iv[16] = {0}, aad[24], mac[32];
	uint8_t msg[24 + 512];
	size_t maclen = 0;
	int outl = 0;
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	struct bs_aead *a;

	(void)state;
	assert_non_null(x);
	key_pattern(key, sizeof(key));
	data_pattern(pt, sizeof(pt));
	for (int i = 0; i < 8; i++)
		iv[i] = (uint8_t)(k->sector >> (8 * i));
	assert_true(EVP_EncryptInit_ex2(x, EVP_aes_256_xts(), key, iv, NULL));
	assert_true(EVP_EncryptUpdate(x, ct, &outl, pt, sizeof(pt)));
	assert_int_equal(outl, 512);
	EVP_CIPHER_CTX_free(x);
	memcpy(aad, iv, 8); /* le64 sector, then the IV */
	memcpy(aad + 8, iv, 16);
	memcpy(msg, aad, sizeof(aad));
	memcpy(msg + sizeof(aad), ct, sizeof(ct));
	assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key + 64, 32, msg,
				  sizeof(msg), mac, sizeof(mac), &maclen));
	assert_int_equal(maclen, 32);
	a = new_aead(k->spec, key, sizeof(key), 32, 512, false);
	assert_int_equal(bs_aead_encrypt(a, pt, mine, 512, k->sector, 0, tags), 0);
	assert_memory_equal(mine, ct, 512);
	assert_memory_equal(tags, mac, 32);
	bs_aead_free(a);
}

/* Random IVs: fresh for every write, kept in the tag, and every version decrypts. */
static void test_random_ivs(void **state)
{
	uint8_t key[32], pt[2048], c1[2048], c2[2048], t1[4 * 28], t2[4 * 28], back[2048];
	struct bs_aead *a;

	(void)state;
	key_pattern(key, sizeof(key));
	data_pattern(pt, sizeof(pt));
	a = new_aead("capi:gcm(aes)-random", key, sizeof(key), 28, 512, false);
	assert_int_equal(bs_aead_encrypt(a, pt, c1, sizeof(pt), 40, 0, t1), 0);
	assert_int_equal(bs_aead_encrypt(a, pt, c2, sizeof(pt), 40, 0, t2), 0);
	assert_memory_not_equal(c1, c2, 512);
	for (int i = 0; i < 4; i++) /* the stored IVs differ sector by sector, write by write */
		assert_memory_not_equal(t1 + i * 28 + 16, t2 + i * 28 + 16, 12);
	assert_memory_not_equal(t1 + 16, t1 + 28 + 16, 12);
	assert_int_equal(bs_aead_decrypt(a, c1, back, sizeof(pt), 40, 0, t1, NULL, NULL), 0);
	assert_memory_equal(back, pt, sizeof(pt));
	assert_int_equal(bs_aead_decrypt(a, c2, back, sizeof(pt), 40, 0, t2, NULL, NULL), 0);
	assert_memory_equal(back, pt, sizeof(pt));
	bs_aead_free(a);
}

/*
 * Flips bit BIT of byte OFF of the ciphertext (WHICH 0), of the tags (1), then checks that
 * exactly sector BAD_SECTOR (index) fails, zeroed, and the others decrypt.
 */
static void tamper_case(const char *spec, size_t key_len, unsigned tag_size, unsigned ss, int which,
			size_t off, unsigned bad_index)
{
	const unsigned nsec = 4;
	const size_t len = (size_t)ss * nsec;
	const uint64_t sector = 64;
	uint8_t key[128], *pt = malloc(len), *ct = malloc(len), *out = malloc(len);
	uint8_t *tags = malloc((size_t)nsec * tag_size);
	uint64_t bad = 0;
	unsigned nbad = 0;
	struct bs_aead *a;

	assert_non_null(pt);
	assert_non_null(ct);
	assert_non_null(out);
	assert_non_null(tags);
	key_pattern(key, key_len);
	data_pattern(pt, len);
	a = new_aead(spec, key, key_len, tag_size, ss, false);
	assert_int_equal(bs_aead_encrypt(a, pt, ct, len, sector, 0, tags), 0);
	if (which == 0)
		ct[off] ^= 0x10;
	else
		tags[off] ^= 0x01;
	memset(out, 0xaa, len);
	assert_int_equal(bs_aead_decrypt(a, ct, out, len, sector, 0, tags, &bad, &nbad), -EILSEQ);
	assert_int_equal(nbad, 1);
	assert_int_equal(bad, sector + (uint64_t)bad_index * (ss / 512));
	for (unsigned i = 0; i < nsec; i++) {
		if (i == bad_index) {
			for (size_t j = 0; j < ss; j++)
				assert_int_equal(out[(size_t)i * ss + j], 0);
		} else {
			assert_memory_equal(out + (size_t)i * ss, pt + (size_t)i * ss, ss);
		}
	}
	/* in place too */
	assert_int_equal(bs_aead_decrypt(a, ct, ct, len, sector, 0, tags, NULL, NULL), -EILSEQ);
	for (size_t j = 0; j < ss; j++)
		assert_int_equal(ct[(size_t)bad_index * ss + j], 0);
	bs_aead_free(a);
	free(pt);
	free(ct);
	free(out);
	free(tags);
}

static void test_tamper(void **state)
{
	static const char *hmac = "capi:authenc(hmac(sha256),xts(aes))-plain64";
	static const char *gcm = "capi:gcm(aes)-random";

	(void)state;
	/* ciphertext: first byte, last byte of a sector, a middle one */
	tamper_case(hmac, 96, 32, 512, 0, 0, 0);
	tamper_case(hmac, 96, 32, 512, 0, 2 * 512 - 1, 1);
	tamper_case(hmac, 96, 32, 4096, 0, 3 * 4096 + 1000, 3);
	tamper_case(gcm, 32, 28, 512, 0, 512 + 7, 1);
	tamper_case(gcm, 32, 28, 4096, 0, 2 * 4096 + 4095, 2);
	/* the auth tag, and (gcm) the stored IV */
	tamper_case(hmac, 96, 32, 512, 1, 2 * 32 + 31, 2);
	tamper_case(gcm, 32, 28, 512, 1, 0, 0);
	tamper_case(gcm, 32, 28, 512, 1, 3 * 28 + 16, 3);
	tamper_case(gcm, 32, 28, 4096, 1, 28 + 27, 1);
	tamper_case("capi:authenc(hmac(sha256),xts(aes))-random", 96, 48, 512, 1, 48 + 40, 1);
}

/* The sector number and iv_offset are authenticated: data moved or misplaced fails. */
static void test_wrong_place(void **state)
{
	uint8_t key[96], pt[1024], ct[1024], out[1024], tags[2 * 32], gt[2 * 28];
	struct bs_aead *a, *g;
	unsigned nbad = 0;

	(void)state;
	key_pattern(key, sizeof(key));
	data_pattern(pt, sizeof(pt));
	a = new_aead("capi:authenc(hmac(sha256),xts(aes))-plain64", key, 96, 32, 512, false);
	assert_int_equal(bs_aead_encrypt(a, pt, ct, sizeof(pt), 10, 0, tags), 0);
	assert_int_equal(bs_aead_decrypt(a, ct, out, sizeof(pt), 11, 0, tags, NULL, &nbad),
			 -EILSEQ);
	assert_int_equal(nbad, 2);
	assert_int_equal(bs_aead_decrypt(a, ct, out, sizeof(pt), 10, 1, tags, NULL, &nbad),
			 -EILSEQ);
	assert_int_equal(nbad, 2);
	/* swapped sectors with their tags */
	memcpy(out, ct + 512, 512);
	memcpy(out + 512, ct, 512);
	{
		uint8_t sw[64];

		memcpy(sw, tags + 32, 32);
		memcpy(sw + 32, tags, 32);
		assert_int_equal(bs_aead_decrypt(a, out, out, 1024, 10, 0, sw, NULL, &nbad),
				 -EILSEQ);
		assert_int_equal(nbad, 2);
	}
	bs_aead_free(a);
	/* gcm: the sector is in the associated data although the IV is random */
	g = new_aead("capi:gcm(aes)-random", key, 32, 28, 512, false);
	assert_int_equal(bs_aead_encrypt(g, pt, ct, sizeof(pt), 10, 0, gt), 0);
	assert_int_equal(bs_aead_decrypt(g, ct, out, sizeof(pt), 12, 0, gt, NULL, &nbad), -EILSEQ);
	assert_int_equal(nbad, 2);
	/* iv_offset only moves generated IVs: random ones ignore it, as in dm-crypt */
	assert_int_equal(bs_aead_decrypt(g, ct, out, sizeof(pt), 10, 8, gt, NULL, &nbad), 0);
	assert_memory_equal(out, pt, sizeof(pt));
	bs_aead_free(g);
}

static void test_specs(void **state)
{
	struct bs_aead_spec s;
	const char *why = NULL;
	struct bs_aead *a = NULL;
	uint8_t key[128] = {1};

	(void)state;
	assert_true(bs_aead_spec_is_aead("capi:authenc(hmac(sha256),xts(aes))-plain64"));
	assert_true(bs_aead_spec_is_aead("capi:gcm(aes)-random"));
	assert_true(bs_aead_spec_is_aead("aes-gcm-random"));
	assert_false(bs_aead_spec_is_aead("aes-xts-plain64"));
	assert_false(bs_aead_spec_is_aead("aes-cbc-essiv:sha256"));

	assert_int_equal(
	    bs_aead_spec_parse("capi:authenc(hmac(sha256),xts(aes))-plain64", &s, &why), 0);
	assert_int_equal(s.kind, BS_AEAD_AUTHENC);
	assert_string_equal(s.hash, "sha256");
	assert_string_equal(s.chain, "xts");
	assert_false(s.random_iv);
	assert_int_equal(s.iv_size, 16);
	assert_int_equal(s.mac_key_size, 32);
	assert_true(bs_aead_key_size_valid(&s, 96));
	assert_true(bs_aead_key_size_valid(&s, 64));
	assert_false(bs_aead_key_size_valid(&s, 64 + 31));
	assert_false(bs_aead_key_size_valid(&s, 32));
	assert_int_equal(bs_aead_tag_size_check(&s, 32, &why), 0);
	assert_int_equal(bs_aead_tag_size_check(&s, 33, &why), -EINVAL);
	assert_non_null(strstr(why, "longer than the HMAC digest"));

	assert_int_equal(bs_aead_spec_parse("capi:gcm(aes)-random", &s, &why), 0);
	assert_int_equal(s.kind, BS_AEAD_GCM);
	assert_true(s.random_iv);
	assert_int_equal(s.iv_size, 12);
	assert_int_equal(s.mac_key_size, 0);
	assert_true(bs_aead_key_size_valid(&s, 16));
	assert_true(bs_aead_key_size_valid(&s, 32));
	assert_false(bs_aead_key_size_valid(&s, 64));
	assert_int_equal(bs_aead_tag_size_check(&s, 28, &why), 0);
	assert_int_equal(bs_aead_tag_size_check(&s, 12, &why), -EINVAL);
	assert_int_equal(bs_aead_tag_size_check(&s, 29, &why), -EINVAL);
	assert_int_equal(bs_aead_spec_parse("aes-gcm-random", &s, &why), 0);
	assert_int_equal(s.kind, BS_AEAD_GCM);

#define REFUSED(spec, needle)                                                                      \
	do {                                                                                       \
		why = NULL;                                                                        \
		assert_int_equal(bs_aead_spec_parse(spec, &s, &why), -EINVAL);                     \
		assert_non_null(why);                                                              \
		if (!strstr(why, needle)) {                                                        \
			print_error("%s: \"%s\" lacks \"%s\"\n", spec, why, needle);               \
			fail();                                                                    \
		}                                                                                  \
	} while (0)
	REFUSED("capi:gcm(aes)-plain64", "random");
	REFUSED("capi:authenc(hmac(md5),xts(aes))-plain64", "unsupported HMAC hash");
	REFUSED("capi:authenc(hmac(sha256),xts(serpent))-plain64", "unsupported cipher");
	REFUSED("capi:authenc(hmac(sha256),ecb(aes))-plain64", "unsupported cipher");
	REFUSED("capi:authenc(hmac(sha256),xts(aes))-essiv:sha256", "unsupported IV mode");
	REFUSED("capi:gcm(serpent)-random", "unsupported cipher");
	REFUSED("capi:rfc4106(gcm(aes))-seqiv", "unsupported authenticated encryption");
	REFUSED("aes-xts-plain64", "unsupported authenticated encryption");
#undef REFUSED

	/* bad sector sizes and keys fail in bs_aead_new */
	assert_int_equal(bs_aead_spec_parse("capi:gcm(aes)-random", &s, &why), 0);
	assert_int_equal(bs_aead_new(&s, key, 32, 28, 1024 + 512, false, &a, &why), -EINVAL);
	assert_non_null(strstr(why, "sector size"));
	assert_int_equal(bs_aead_new(&s, key, 20, 28, 512, false, &a, &why), -EINVAL);
	assert_non_null(strstr(why, "key size"));
	assert_null(a);
	/* lengths that are not whole sectors */
	a = new_aead("capi:gcm(aes)-random", key, 32, 28, 4096, false);
	{
		uint8_t buf[512], tags[28];

		memset(buf, 0, sizeof(buf));
		assert_int_equal(bs_aead_encrypt(a, buf, buf, 512, 0, 0, tags), -EINVAL);
		assert_int_equal(bs_aead_decrypt(a, buf, buf, 512, 0, 0, tags, NULL, NULL),
				 -EINVAL);
	}
	bs_aead_free(a);
}

/* ---- targets ---------------------------------------------------------------------------- */

static struct h_file disk;

static int setup_disk(void **state)
{
	(void)state;
	h_file_create(&disk, 8 << 20, 0, false);
	return 0;
}

static int teardown_disk(void **state)
{
	(void)state;
	h_file_remove(&disk);
	return 0;
}

static int rw_meta(struct bs_table *t, enum bs_op op, void *buf, uint64_t len, uint64_t off,
		   uint8_t *tags, unsigned tuple, unsigned interval, bool *taken)
{
	struct bs_io_meta m = {.buf = tags, .tuple_size = tuple, .interval = interval};
	struct bs_io io = {.op = op, .off = off, .len = len, .buf = buf, .meta = &m};
	int r = bs_table_submit(t, &io);

	*taken = m.taken;
	return r;
}

/* A table made live as the daemon does it (integrity's journal starts at preresume). */
static struct bs_table *live_table(const char *text)
{
	struct bs_table *t = h_table_ok(text, false);
	struct strbuf err = STRBUF_INIT;

	if (bs_table_preresume(t, &err)) {
		print_error("preresume: %s\n", err.s ? err.s : "?");
		fail();
	}
	sb_free(&err);
	bs_table_resume(t);
	return t;
}

static void kill_table(struct bs_table *t)
{
	bs_table_presuspend(t);
	bs_table_postsuspend(t);
	bs_table_destroy(t);
}

/* External tags: stored with the data, returned with it, in journal and direct modes. */
static void external_case(char mode, unsigned block)
{
	char *line;
	struct bs_table *t;
	struct h_rng rng;
	uint8_t data[8192], back[8192], tags[16 * 28], tback[16 * 28];
	const unsigned nb = sizeof(data) / block;
	bool taken = false;

	h_file_refill(&disk, 0); /* blank: the constructor formats */
	line = h_fmt("0 8192 integrity %s 0 28 %c %u%s", disk.path, mode, block == 512 ? 0 : 1,
		     block == 512 ? "" : " block_size:4096");
	t = live_table(line);
	h_rng_seed(&rng, mode * 7 + block);
	h_rng_fill(&rng, data, sizeof(data));
	h_rng_fill(&rng, tags, nb * 28);
	assert_int_equal(
	    rw_meta(t, BS_OP_WRITE, data, sizeof(data), 4096 * 3, tags, 28, block, &taken), 0);
	assert_true(taken);
	memset(tback, 0, sizeof(tback));
	assert_int_equal(
	    rw_meta(t, BS_OP_READ, back, sizeof(back), 4096 * 3, tback, 28, block, &taken), 0);
	assert_true(taken);
	assert_memory_equal(back, data, sizeof(data));
	assert_memory_equal(tback, tags, nb * 28);
	/* a part of it, from the second block on */
	assert_int_equal(
	    rw_meta(t, BS_OP_READ, back, block, 4096 * 3 + block, tback, 28, block, &taken), 0);
	assert_memory_equal(tback, tags + 28, 28);
	/* without metadata: data only */
	assert_int_equal(h_table_rw(t, BS_OP_READ, back, sizeof(back), 4096 * 3), 0);
	assert_memory_equal(back, data, sizeof(data));
	/* metadata of another tuple or block size fails the request */
	assert_int_equal(rw_meta(t, BS_OP_READ, back, 4096, 0, tback, 32, block, &taken), -EIO);
	assert_int_equal(
	    rw_meta(t, BS_OP_READ, back, 4096, 0, tback, 28, block == 512 ? 4096 : 512, &taken),
	    -EIO);
	/* the table text has no internal_hash */
	{
		char *s = h_table_status(t, BS_STATUS_TABLE);

		assert_null(strstr(s, "internal_hash"));
		assert_non_null(strstr(s, " 28 "));
		free(s);
	}
	kill_table(t);
	/* reopened (journal replayed or not): the same data and tags */
	t = live_table(line);
	assert_int_equal(
	    rw_meta(t, BS_OP_READ, back, sizeof(back), 4096 * 3, tback, 28, block, &taken), 0);
	assert_memory_equal(back, data, sizeof(data));
	assert_memory_equal(tback, tags, nb * 28);
	kill_table(t);
	free(line);
}

static void test_integrity_external(void **state)
{
	(void)state;
	external_case('J', 512);
	external_case('J', 4096);
	external_case('D', 512);
	external_case('D', 4096);
}

static void test_integrity_external_refusals(void **state)
{
	char *a;
	uint8_t buf[512], tags[4];
	bool taken = true;
	struct bs_table *t;

	(void)state;
	h_file_refill(&disk, 0);
	a = h_fmt("0 4096 integrity %s 0 - J 0", disk.path);
	h_table_fails(a, -EINVAL, 1, "Unknown tag size");
	free(a);
	a = h_fmt("0 4096 integrity %s 0 28 J 1 recalculate", disk.path);
	h_table_fails(a, -EINVAL, 1, "Recalculate can only be specified with internal_hash");
	free(a);
	a = h_fmt("0 4096 integrity %s 0 28 B 0", disk.path);
	h_table_fails(a, -EINVAL, 1, "bitmap mode");
	free(a);
	/* metadata given to a device with an internal hash fails the request */
	a = h_fmt("0 4096 integrity %s 0 4 D 1 internal_hash:crc32c", disk.path);
	t = h_table_ok(a, false);
	assert_int_equal(rw_meta(t, BS_OP_READ, buf, 512, 0, tags, 4, 512, &taken), -EIO);
	bs_table_destroy(t);
	free(a);
}

static void test_crypt_aead_refusals(void **state)
{
	char *a;

	(void)state;
	/* tags cannot live in a file */
	a = h_fmt("0 64 crypt capi:gcm(aes)-random "
		  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f 0 %s 0 1 "
		  "integrity:28:aead",
		  disk.path);
	h_table_fails(a, -EINVAL, 1, "Integrity profile not supported");
	free(a);
	/* an AEAD cipher without integrity, integrity without an AEAD cipher */
	a = h_fmt("0 64 crypt capi:gcm(aes)-random "
		  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f 0 %s 0",
		  disk.path);
	h_table_fails(a, -EINVAL, 1, "needs integrity:<bytes>:aead");
	free(a);
	a = h_fmt("0 64 crypt aes-xts-plain64 "
		  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f 0 %s 0 1 "
		  "integrity:32:aead",
		  disk.path);
	h_table_fails(a, -EINVAL, 1, "needs an AEAD cipher");
	free(a);
	/* bad tag sizes, types, keys */
	a = h_fmt("0 64 crypt capi:gcm(aes)-random "
		  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f 0 %s 0 1 "
		  "integrity:12:aead",
		  disk.path);
	h_table_fails(a, -EINVAL, 1, "too small");
	free(a);
	a = h_fmt("0 64 crypt capi:gcm(aes)-random "
		  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f 0 %s 0 1 "
		  "integrity:28:none",
		  disk.path);
	h_table_fails(a, -EINVAL, 1, "only aead");
	free(a);
	a = h_fmt("0 64 crypt capi:authenc(hmac(sha256),xts(aes))-plain64 "
		  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f 0 %s 0 1 "
		  "integrity:32:aead",
		  disk.path);
	h_table_fails(a, -EINVAL, 1, "invalid key size 32 bytes");
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kats),
	    cmocka_unit_test(test_openssl_oneshot),
	    cmocka_unit_test(test_random_ivs),
	    cmocka_unit_test(test_tamper),
	    cmocka_unit_test(test_wrong_place),
	    cmocka_unit_test(test_specs),
	    cmocka_unit_test(test_integrity_external),
	    cmocka_unit_test(test_integrity_external_refusals),
	    cmocka_unit_test(test_crypt_aead_refusals),
	};

	return cmocka_run_group_tests(tests, setup_disk, teardown_disk);
}
