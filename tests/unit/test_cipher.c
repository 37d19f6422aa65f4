/*
 * test_cipher.c - known answers for every cipher and IV mode of src/crypto/cipher.c and for
 * the crypt target.
 *
 *   - KATS: every chaining/IV mode (cbc with plain, plain64, plain64be, essiv:sha256, benbi,
 *     null, encblkno1, encblkno8; ecb; xts with 256-, 384- and 512-bit keys), sector sizes 512
 *     to 4096 with and without iv_large_sectors, sector numbers past 2^32.  The answers were
 *     computed once by tests/fixtures/cipher/gen_kat.py (python3-cryptography's AES plus a
 *     transcription of the IV modes of Linux's dm-crypt.rst and NetBSD's cgd.c) and are
 *     embedded below as the first 32 bytes and the SHA-256 of the ciphertext.  Each case also
 *     runs in place, decrypts back, and matches sector-by-sector calls.
 *   - IEEE 1619 (XTS-AES): vectors 1-3 (32-byte data units: the first two blocks of a sector
 *     encrypted under the same tweak), 4-6 (256-bit key, full 512-byte data units, 4 in full,
 *     5 and 6 chained from it and checked on their first and last blocks) and 10-11 (512-bit
 *     key, data units 0xff and 0xffff).  Vector 1 has two equal key halves: OpenSSL 3's XTS
 *     (and python3-cryptography) refuse such keys, Linux does not outside FIPS mode, and
 *     blkstack's XTS (built on AES-ECB) accepts them as Linux does.
 *   - NetBSD cgd: the aes-cbc vectors of tests/dev/cgd/t_cgd_aes.c (rev. 1.8) for 128-, 192-
 *     and 256-bit keys with encblkno1 and encblkno8, blocks 0-3; each ciphertext is embedded
 *     as its first and last 16-byte block.  In CBC mode the last block pins the whole sector:
 *     C[i] = E(P[i] ^ C[i-1]) is injective in C[i-1], so equal last blocks under the same key
 *     and plaintext mean equal ciphertexts and IVs.
 *   - specifications: valid ones parse into the right fields and print back; every invalid
 *     one is refused with its reason.
 *   - the crypt target: bad ciphers, keys, options and alignments are refused with a precise
 *     error; the table masks the key unless BS_STATUS_SHOWKEYS and reads back unchanged; data
 *     written through a table lands on disk as the known answer says.
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

#include "crypto/aes_aesni.h"
#include "crypto/cipher.h"
#include "crypto/xts_aesni.h"
#include "engine/table.h"
#include "helpers.h"
#include "util/parse.h"
#include "util/strbuf.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static void hex(const char *s, uint8_t *out, size_t n)
{
	assert_int_equal(bs_hex_decode(s, out, n), 0);
}

static void key_pattern(uint8_t *key, size_t n)
{
	for (size_t i = 0; i < n; i++)
		key[i] = (uint8_t)i;
}

static void data_pattern(uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)(i * 7 + 3);
}

static void sha256_hex(const void *buf, size_t n, char out[65])
{
	uint8_t md[32];
	unsigned len = 0;

	assert_true(EVP_Digest(buf, n, md, &len, EVP_sha256(), NULL));
	bs_hex_encode(md, 32, out);
}

static struct bs_sector_cipher *new_cipher(const char *spec, const uint8_t *key, size_t key_len,
					   unsigned sector_size, bool large)
{
	struct bs_crypt_spec s;
	struct bs_sector_cipher *c = NULL;
	const char *why = NULL;

	if (bs_crypt_spec_parse(spec, &s, &why)) {
		print_error("%s: %s\n", spec, why);
		fail();
	}
	if (bs_sector_cipher_new(&s, key, key_len, sector_size, large, &c, &why)) {
		print_error("%s: %s\n", spec, why);
		fail();
	}
	return c;
}

/* ---- known answers ---------------------------------------------------------------------- */

struct kat {
	const char *spec;
	unsigned key_len, sector_size;
	bool large;
	uint64_t sector; /* 512-byte units, iv_offset included */
	size_t len;
	const char *head; /* first 32 bytes of the ciphertext */
	const char *sha256;
};

/* Output of tests/fixtures/cipher/gen_kat.py. */
static const struct kat kats[] = {
    {"aes-cbc-plain", 16, 512, false, 0x0ull, 1536,
     "268590873ef180ab539cf461a5c5f892e234097cd413dd84532e948e444fd43b",
     "e509ee3a1d7a329bf12e5b0f730313117ce62244dcfdb0d9cc950771a20b7db4"},
    {"aes-cbc-plain", 32, 512, false, 0x100000005ull, 1536,
     "d57914539b1ccc3a8565b74fc468ad3881444f4d6d6de69e2d2e5ed87d38b363",
     "e4752216852ca7c506dc567bcbe00d6524ec5880a9af379850401c75ef6401dc"},
    {"aes-cbc-plain64", 32, 512, false, 0x100000005ull, 1536,
     "05d410e78ee6366d3eb5786a458b6fe308098fd71b36aa382d7e5f06d64bf8f5",
     "7ecbb63ad574a81c77021d3efecf63619c7ca622182773c8cf8e9f4e2b52a94d"},
    {"aes-cbc-plain64", 24, 512, false, 0x7ull, 1024,
     "5599d60d22325ff4584b7bf4eb88aab4b8102d2067a5d08d7414781e70f25537",
     "cd0daa8efcec6cc6a25df2ad25c49816de2d3e824096e1cd134b1831c961a3d7"},
    {"aes-cbc-plain64be", 16, 512, false, 0x1234567ull, 1536,
     "650340b61f5766df4394e707e5e1c3d23e3de0b296af7a3399f9c6a37ef397db",
     "c8852dc8e455564b2d0a79d1e4ea28e8b5ed9a880641ed49b68334bc5a4f3b44"},
    {"aes-cbc-essiv:sha256", 16, 512, false, 0x3ull, 1536,
     "d0bc02fc17bc4897bf8f75b3f723d03fde2a9a3ea3a5f90f090bcc563f9c3712",
     "64be27e92c80f101cb276cff1964f8ac049b5a60194b94d37829e292468ee60f"},
    {"aes-cbc-essiv:sha256", 32, 512, false, 0x100000000ull, 1024,
     "404c220b79ae884ad39afcd9aa74ee5aac4ba75ed8ea30a82d46337724d5101a",
     "64f8c7dc7d259015498cb60a06ac73e758a880250cf3a0147dd5534b6f2a13d3"},
    {"aes-cbc-benbi", 16, 512, false, 0x9ull, 1536,
     "ffd919035ef0224929de71389bec6292be60577ca3617f95fdef3538cf1c4b55",
     "c586870f26ff57bceb74ed2f401e443b8f3bf6023da7a6204e2f1ad3b0d0abac"},
    {"aes-cbc-null", 24, 512, false, 0x9ull, 1024,
     "3ff9b267a6d17da30ec2fdf1869e402a3d0561ab2bc2a7d8c1318050de31123d",
     "cc0c85a8196bc9dc3a947f09476c982fea4f9009549536bff34c41024755597d"},
    {"aes-ecb", 16, 512, false, 0x0ull, 1024,
     "268590873ef180ab539cf461a5c5f8929995d4a8b9338747669ac484fc5403ef",
     "3abf062289ca7ec33be1f02e257e18b83e783854c063f3ce36c0011d64ca8bc3"},
    {"aes-ecb-plain64", 32, 512, false, 0x4dull, 1024,
     "ae5bf9ddaad53f23deb4efae9db72462c6e8b0d060f9d45d8e1247da4ab53f50",
     "1d244e0c9e3f8856cf1ef2b762bebe75aadd98032e2a1ccee03bc0c47e95678b"},
    {"aes-xts-plain64", 32, 512, false, 0x0ull, 1536,
     "e9e4c0294045c8e699038ed38c1492e8816242a7bbee575625e05b31cff60941",
     "0586c5ba20c03505bd527697f9f502defa576501fa81eb1168b106e7c6c68e6d"},
    {"aes-xts-plain64", 48, 512, false, 0x100000003ull, 1536,
     "41d734a8c12fc128dc365ea2bb30dfbf3ae765abbd34d114e8b31a64e6f633e5",
     "cf6d7a16b89d0c3f981e20bb081588813024e976042474f7848188a5bf2c282e"},
    {"aes-xts-plain64", 64, 512, false, 0xfffffffeull, 1536,
     "3943c0c7a7d1214f6e6665ca2d927c12e1df3849a6571637231d2adc861320aa",
     "b5263280ba532f396e3e000c1358089dc3bb35eba70c4e0061ed995490f29378"},
    {"aes-xts-plain", 64, 512, false, 0xfffffffeull, 1536,
     "3943c0c7a7d1214f6e6665ca2d927c12e1df3849a6571637231d2adc861320aa",
     "30cfd1d9cbd9d55ab605123869aefc88c1919680aae877db20befefc8bffb3c7"},
    {"aes-xts-plain64be", 32, 512, false, 0x5ull, 1024,
     "c25ab09cbee1d8c56df6577b2559ab16d8a8848f6b5eac0162f7fd5c0d53ffa7",
     "f593b49e3f00a9af47247bcede60e501d0f67939cb1d98e5c6eb3cd818e970f8"},
    {"aes-xts-essiv:sha256", 64, 512, false, 0xbull, 1024,
     "d4553a82e36fd8f751343c244c492b4958680b1088de5ad5ca64fcff9607d517",
     "f4141b8e69fa3730223ad52f1b504812fb66d91f0a9d4360434dff604c675a0d"},
    {"aes-xts-benbi", 32, 512, false, 0xbull, 1024,
     "db2b6e20723cd51802816215ca3fbcd76f1eccfe8527430d019ab1b1304268d8",
     "fea8fc43d251d2ecbbe794e34ce85a76beb1fba694fdda7295fdd950925f8478"},
    {"aes-xts-null", 32, 512, false, 0xbull, 1024,
     "e9e4c0294045c8e699038ed38c1492e8816242a7bbee575625e05b31cff60941",
     "6401dd4c4eda7feef5ab5fe4fb98d7eb788f584a673bc3de7619a34e9d622184"},
    {"capi:xts(aes)-plain64", 64, 512, false, 0xfffffffeull, 1536,
     "3943c0c7a7d1214f6e6665ca2d927c12e1df3849a6571637231d2adc861320aa",
     "b5263280ba532f396e3e000c1358089dc3bb35eba70c4e0061ed995490f29378"},
    {"capi:cbc(aes)-essiv:sha256", 16, 512, false, 0x3ull, 1536,
     "d0bc02fc17bc4897bf8f75b3f723d03fde2a9a3ea3a5f90f090bcc563f9c3712",
     "64be27e92c80f101cb276cff1964f8ac049b5a60194b94d37829e292468ee60f"},
    {"aes", 16, 512, false, 0x0ull, 1536,
     "268590873ef180ab539cf461a5c5f892e234097cd413dd84532e948e444fd43b",
     "e509ee3a1d7a329bf12e5b0f730313117ce62244dcfdb0d9cc950771a20b7db4"},
    {"aes-plain", 16, 512, false, 0x0ull, 1536,
     "268590873ef180ab539cf461a5c5f892e234097cd413dd84532e948e444fd43b",
     "e509ee3a1d7a329bf12e5b0f730313117ce62244dcfdb0d9cc950771a20b7db4"},
    {"aes-xts-plain64", 64, 4096, false, 0x10ull, 8192,
     "1144a3dd8f6068ad90adb765b6bd25b7072ac842759fcf58e2bbeba0c7cfa8a8",
     "34cd0beca5617de8fb5d3fab0c56039921dd1cab1ab59f97add24c09ca95d5f7"},
    {"aes-xts-plain64", 64, 4096, true, 0x10ull, 8192,
     "75c5249126fc14f03d4f20b8cd6feb4682a82216a9cedd7c0f4588b2a8558c9a",
     "683d19e58e44997820c71bd724a28846b97bd26e97c158350109cd1c51b65e2b"},
    {"aes-cbc-essiv:sha256", 32, 4096, false, 0x18ull, 8192,
     "d98b0d8fd06b75ce3294df0f0254939e07f8ae53a4c97ed8e1e596db5db9d100",
     "ab7d7573b9454534a962bbd6f83ebc74cdafbc8b99daf317a933a2eb41a47a81"},
    {"aes-cbc-essiv:sha256", 32, 4096, true, 0x18ull, 8192,
     "232bbc3ea8c1e80f8ec28a0b9d16b0b7a675b6dabd5587838348c2484fb59ae1",
     "5df6f55e839bd26bbee40dc0305955cf85bc87cf3bb128948ded9da40182fb47"},
    {"aes-cbc-plain64", 16, 1024, true, 0x6ull, 3072,
     "a662579e6d06b1d3161ced486d056a2e415d017bedcc512a1b415e1e92961a76",
     "e2411c9301d8bed016230bfb190c8df00cdcc7e9e5036a587a44bf443da1c32e"},
    {"aes-cbc-encblkno1", 16, 512, false, 0x2ull, 1536,
     "0ef08f1c921b1d9eebaff00858e4ee66ac2dcd1cbd020bd978be9c30695ea9cf",
     "e45e045d2f612aa808cd1999e1696e5b850fdb5628d9bc860ed106926f3c5087"},
    {"aes-cbc-encblkno8", 32, 512, false, 0x2ull, 1536,
     "b93e3105b6d2245fad68560beb493a327153e60031a73c5abae0ac86e0724552",
     "0ae931583a77e1277030e9f02bc225b1c31e8e75521e662340c354a500e35536"},
    {"aes-cbc-encblkno1", 24, 4096, true, 0x8ull, 8192,
     "5217c5a99e6f79e88cadbee865d1ff0bb5b94c9821cfa3a1191743cd33a98132",
     "23eb7d7d5c3a0dc84f19720a88f2cc084b8c922be045d4c4729ffffba7f11c28"},
    {"aes-xts-plain64", 64, 512, false, 0x66ull, 1536,
     "88327be7a5f4ec0ba801b085701871b37ca9abfd755e522b0fc561745fd584f7",
     "b2ebdc292bda72d94e7e88e11a32c02bb9a2fb2a5bf7caa7b792148a1c5aeb61"},
};

static void run_kat(const struct kat *k)
{
	uint8_t key[64], *pt = malloc(k->len), *ct = malloc(k->len), *tmp = malloc(k->len);
	uint8_t head[32];
	char sum[65];
	struct bs_sector_cipher *c;

	assert_non_null(pt);
	assert_non_null(ct);
	assert_non_null(tmp);
	key_pattern(key, k->key_len);
	data_pattern(pt, k->len);
	c = new_cipher(k->spec, key, k->key_len, k->sector_size, k->large);
	assert_int_equal(bs_sector_cipher_sector_size(c), k->sector_size);

	/* out of place */
	assert_int_equal(bs_sector_cipher_crypt(c, true, pt, ct, k->len, k->sector), 0);
	hex(k->head, head, 32);
	sha256_hex(ct, k->len, sum);
	if (memcmp(ct, head, 32) || strcmp(sum, k->sha256)) {
		print_error("%s key %u sector size %u%s sector %llu: wrong ciphertext\n", k->spec,
			    k->key_len * 8, k->sector_size, k->large ? " (large IVs)" : "",
			    (unsigned long long)k->sector);
		fail();
	}
	/* in place */
	memcpy(tmp, pt, k->len);
	assert_int_equal(bs_sector_cipher_crypt(c, true, tmp, tmp, k->len, k->sector), 0);
	assert_memory_equal(tmp, ct, k->len);
	/* sector by sector */
	for (size_t off = 0; off < k->len; off += k->sector_size)
		assert_int_equal(bs_sector_cipher_crypt(c, true, pt + off, tmp + off,
							k->sector_size, k->sector + off / 512),
				 0);
	assert_memory_equal(tmp, ct, k->len);
	/* decryption, out of place and in place */
	assert_int_equal(bs_sector_cipher_crypt(c, false, ct, tmp, k->len, k->sector), 0);
	assert_memory_equal(tmp, pt, k->len);
	memcpy(tmp, ct, k->len);
	assert_int_equal(bs_sector_cipher_crypt(c, false, tmp, tmp, k->len, k->sector), 0);
	assert_memory_equal(tmp, pt, k->len);
	/* a request that is not whole sectors is refused */
	if (k->len > 16)
		assert_int_equal(bs_sector_cipher_crypt(c, true, pt, tmp, k->len - 16, k->sector),
				 -EINVAL);
	bs_sector_cipher_free(c);
	free(pt);
	free(ct);
	free(tmp);
}

/* Every known answer at every level of acceleration: VAES, AES-NI (which also does the
 * AES of the CBC and ECB modes and of ESSIV and encblkno IVs), none (OpenSSL only). */
static void test_kats(void **state)
{
	(void)state;
	for (int accel = BS_ACCEL_VAES; accel >= BS_ACCEL_NONE; accel--) {
		bs_sector_cipher_set_accel((enum bs_cipher_accel)accel);
		for (size_t i = 0; i < sizeof(kats) / sizeof(kats[0]); i++)
			run_kat(&kats[i]);
	}
	bs_sector_cipher_set_accel(BS_ACCEL_VAES);
}

/* Distinct contexts in use at once (the pool grows) give the same answers. */
static void test_concurrent_contexts(void **state)
{
	const struct kat *k = &kats[0];
	uint8_t key[64], pt[1536], a[1536], b[1536];
	struct bs_sector_cipher *c;

	(void)state;
	key_pattern(key, k->key_len);
	data_pattern(pt, sizeof(pt));
	c = new_cipher(k->spec, key, k->key_len, 512, false);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(bs_sector_cipher_crypt(c, true, pt, a, sizeof(pt), k->sector), 0);
		assert_int_equal(bs_sector_cipher_crypt(c, false, a, b, sizeof(pt), k->sector), 0);
		assert_memory_equal(b, pt, sizeof(pt));
	}
	bs_sector_cipher_free(c);
}

static void test_cipher_null(void **state)
{
	uint8_t pt[1024], out[1024];
	struct bs_sector_cipher *c;

	(void)state;
	data_pattern(pt, sizeof(pt));
	c = new_cipher("cipher_null-ecb", NULL, 0, 512, false);
	assert_int_equal(bs_sector_cipher_crypt(c, true, pt, out, sizeof(pt), 5), 0);
	assert_memory_equal(out, pt, sizeof(pt));
	assert_int_equal(bs_sector_cipher_crypt(c, false, out, out, sizeof(pt), 5), 0);
	assert_memory_equal(out, pt, sizeof(pt));
	bs_sector_cipher_free(c);
}

/* ---- IEEE 1619 -------------------------------------------------------------------------- */

/* IEEE 1619-2007 annex B, vectors 1-3: 32-byte data units (the first two blocks of a sector). */
static void check_xts_short(const char *key_hex, uint64_t du, uint8_t fill, const char *want)
{
	uint8_t key[32], pt[512], ct[512], exp[32];
	struct bs_sector_cipher *c;

	hex(key_hex, key, 32);
	memset(pt, fill, sizeof(pt));
	hex(want, exp, 32);
	c = new_cipher("aes-xts-plain64", key, 32, 512, false);
	assert_int_equal(bs_sector_cipher_crypt(c, true, pt, ct, 512, du), 0);
	assert_memory_equal(ct, exp, 32);
	assert_int_equal(bs_sector_cipher_crypt(c, false, ct, ct, 512, du), 0);
	assert_memory_equal(ct, pt, 512);
	bs_sector_cipher_free(c);
}

static void test_ieee1619_short(void **state)
{
	(void)state;
	/* Vector 1: key1 == key2 (all zero). */
	check_xts_short("0000000000000000000000000000000000000000000000000000000000000000", 0, 0,
			"917cf69ebd68b2ec9b9fe9a3eadda692cd43d2f59598ed858c02c2652fbf922e");
	check_xts_short("1111111111111111111111111111111122222222222222222222222222222222",
			0x3333333333ull, 0x44,
			"c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0");
	check_xts_short("fffefdfcfbfaf9f8f7f6f5f4f3f2f1f022222222222222222222222222222222",
			0x3333333333ull, 0x44,
			"af85336b597afc1a900b2eb21ec949d292df4c047e0b21532186a5971a227a89");
}

/* Vector 4 ciphertext (key 2718...3526 | 3141...2795, data unit 0, plaintext 00..ff twice). */
static const char *const ieee_vec4 = "27a7479befa1d476489f308cd4cfa6e2"
				     "a96e4bbe3208ff25287dd3819616e89c"
				     "c78cf7f5e543445f8333d8fa7f560000"
				     "05279fa5d8b5e4ad40e736ddb4d35412"
				     "328063fd2aab53e5ea1e0a9f332500a5"
				     "df9487d07a5c92cc512c8866c7e860ce"
				     "93fdf166a24912b422976146ae20ce84"
				     "6bb7dc9ba94a767aaef20c0d61ad0265"
				     "5ea92dc4c4e41a8952c651d33174be51"
				     "a10c421110e6d81588ede82103a252d8"
				     "a750e8768defffed9122810aaeb99f91"
				     "72af82b604dc4b8e51bcb08235a6f434"
				     "1332e4ca60482a4ba1a03b3e65008fc5"
				     "da76b70bf1690db4eae29c5f1badd03c"
				     "5ccf2a55d705ddcd86d449511ceb7ec3"
				     "0bf12b1fa35b913f9f747a8afd1b130e"
				     "94bff94effd01a91735ca1726acd0b19"
				     "7c4e5b03393697e126826fb6bbde8ecc"
				     "1e08298516e2c9ed03ff3c1b7860f6de"
				     "76d4cecd94c8119855ef5297ca67e9f3"
				     "e7ff72b1e99785ca0a7e7720c5b36dc6"
				     "d72cac9574c8cbbc2f801e23e56fd344"
				     "b07f22154beba0f08ce8891e643ed995"
				     "c94d9a69c9f1b5f499027a78572aeebd"
				     "74d20cc39881c213ee770b1010e4bea7"
				     "18846977ae119f7a023ab58cca0ad752"
				     "afe656bb3c17256a9f6e9bf19fdd5a38"
				     "fc82bbe872c5539edb609ef4f79c203e"
				     "bb140f2e583cb2ad15b4aa5b655016a8"
				     "449277dbd477ef2c8d6c017db738b18d"
				     "eb4a427d1923ce3ff262735779a418f2"
				     "0a282df920147beabe421ee5319d0568";

static void check_first_last(const uint8_t *ct, const char *first, const char *last)
{
	uint8_t a[16], b[16];

	hex(first, a, 16);
	hex(last, b, 16);
	assert_memory_equal(ct, a, 16);
	assert_memory_equal(ct + 512 - 16, b, 16);
}

static void test_ieee1619_512(void **state)
{
	uint8_t key[64], pt[512], ct[512], v4[512], back[512];
	struct bs_sector_cipher *c;

	(void)state;
	/* Vectors 4-6: 256-bit key; each plaintext is the previous ciphertext. */
	hex("27182818284590452353602874713526"
	    "31415926535897932384626433832795",
	    key, 32);
	for (int i = 0; i < 512; i++)
		pt[i] = (uint8_t)i;
	hex(ieee_vec4, v4, 512);
	c = new_cipher("aes-xts-plain64", key, 32, 512, false);
	assert_int_equal(bs_sector_cipher_crypt(c, true, pt, ct, 512, 0), 0);
	assert_memory_equal(ct, v4, 512);
	assert_int_equal(bs_sector_cipher_crypt(c, false, ct, back, 512, 0), 0);
	assert_memory_equal(back, pt, 512);
	memcpy(pt, ct, 512);
	assert_int_equal(bs_sector_cipher_crypt(c, true, pt, ct, 512, 1), 0);
	check_first_last(ct, "264d3ca8512194fec312c8c9891f279f",
			 "fd2a89ccb45e001a03a867b187f225dd");
	memcpy(pt, ct, 512);
	assert_int_equal(bs_sector_cipher_crypt(c, true, pt, ct, 512, 2), 0);
	check_first_last(ct, "fa762a3680b76007928ed4a4f49a9456",
			 "4bcf518138dc3a25c5e236171a2d01d6");
	bs_sector_cipher_free(c);

	/* Vectors 10 and 11: 512-bit key, data units 0xff and 0xffff. */
	hex("2718281828459045235360287471352662497757247093699959574966967627"
	    "3141592653589793238462643383279502884197169399375105820974944592",
	    key, 64);
	for (int i = 0; i < 512; i++)
		pt[i] = (uint8_t)i;
	c = new_cipher("aes-xts-plain64", key, 64, 512, false);
	assert_int_equal(bs_sector_cipher_crypt(c, true, pt, ct, 512, 0xff), 0);
	check_first_last(ct, "1c3b3a102f770386e4836c99e370cf9b",
			 "c4f36ffda9fcea70b9c6e693e148c151");
	assert_int_equal(bs_sector_cipher_crypt(c, true, pt, ct, 512, 0xffff), 0);
	check_first_last(ct, "77a31251618a15e6b92d1d66dffe7b50",
			 "a4f9e27b42af8100cb9d59cef9645803");
	/* Data unit 0xffff as sector 0xffff of a 4096-byte-sector device with large IVs. */
	bs_sector_cipher_free(c);
	c = new_cipher("aes-xts-plain64", key, 64, 4096, true);
	{
		uint8_t big[4096], out[4096];

		for (int i = 0; i < 4096; i++)
			big[i] = (uint8_t)i;
		assert_int_equal(bs_sector_cipher_crypt(c, true, big, out, 4096, 0xffffull * 8), 0);
		check_first_last(out, "77a31251618a15e6b92d1d66dffe7b50",
				 "a4f9e27b42af8100cb9d59cef9645803" /* block 31 */);
	}
	bs_sector_cipher_free(c);
}

/* ---- NetBSD cgd ------------------------------------------------------------------------- */

struct cgd_vec {
	unsigned key_bits, passes, blkno;
	const char *first, *last;
};

/* tests/dev/cgd/t_cgd_aes.c rev. 1.8: first and last 16 bytes of each ciphertext. */
static const struct cgd_vec cgd_vecs[] = {
    {128, 1, 0, "1e951215f6e0a75695a0a73577f4dddc", "53142434e88ca8ef52fe062c20884fa6"},
    {128, 1, 1, "2f693e95879199d4d95df25232542a80", "d8fbbc741a70942cebf25e6dbb967a2c"},
    {128, 1, 2, "bc49352ce31012657af4ded3f8e14997", "df6c86471029819a73ba78bdc061ee23"},
    {128, 1, 3, "299fb10f7db4d9bbf90660dcb9eb736e", "76cd2c7cfa3436da39002e694ab30f6f"},
    {128, 8, 0, "a664ef0fc445cc5ef827425ebd9399cd", "a3fc38823aa1b55253c72b307c65b97d"},
    {128, 8, 1, "6345160ce44f51de74f87bf50517131e", "1d647e0532baf74ce9a8a9c535342641"},
    {128, 8, 2, "647b627aa6a9b347bc03143d9b56fc13", "dbcf078cfe58ee75019898e460fee67f"},
    {128, 8, 3, "98ae821d763afe8004a343f0064583b7", "1f0c7a25676b85710615d311fef7a9b1"},
    {192, 1, 0, "7cc4ec897c13ac9949a996e7b11ad6b0", "673ca4a108360be977d0e3457d9975c3"},
    {192, 1, 1, "e64175d680df4437a7a2b2290df00278", "531dc8291f6ef113ecb660b14c9dd777"},
    {192, 1, 2, "33fdfa446475227ee3b3a0759996c0ec", "16329524a72b74f167f9f249da1297dd"},
    {192, 1, 3, "a58186784ad75b83cfbf7e3cd7cdaffa", "5a2e0e8b80b7f4e4999b05f5b2e403e4"},
    {192, 8, 0, "879c05d625b9e0be782185818e2f135e", "24c2cdc8d3122eac9a0c2406b81e3d29"},
    {192, 8, 1, "1e3b6676d99ef7821776694d6463f101", "37302ad5c42a9b40978394e77979634b"},
    {192, 8, 2, "34072014640ba22cedba4624a0e6998a", "fc742b6dcc00763e3b85faef8770534e"},
    {192, 8, 3, "feadf34a9d644e5dafa8447ec975e8d0", "c82f2928129b1eea4ea980a1b889213b"},
    {256, 1, 0, "1aa4e309232e911ba83eda92b322d2e8", "37b39836331a11fe41ea59487534f6c4"},
    {256, 1, 1, "58fc1e48667d91c756a34189e81e0277", "174782b9e1118d4bcd1f549617422244"},
    {256, 1, 2, "1d65b24efa3fdbab349d37031744ed5b", "1515462100e4139afab2497e79fb8a2a"},
    {256, 1, 3, "c14a3c90bad49ce7f25b3ac4ce4a264a", "adfd00bca91196ae80f127e0eb5b6039"},
    {256, 8, 0, "e555d9aec0662d2f11b127d2b273e40a", "091bc2852f227c955809ce9c7c50ca89"},
    {256, 8, 1, "374d25db35e08b825f77d253d11ff091", "81afbcb191e7fd813f47c26f0d62f66e"},
    {256, 8, 2, "5a24fdee9a44fbac3e4653959eeb1fd9", "5290afdb261ea9a1c7f9f8a73f85a1a4"},
    {256, 8, 3, "8377d8a86a364172b6034e5e3936e3f5", "8037f9aad15f12b9b315e496a101d5a0"},
};

static void test_netbsd_cgd_cbc(void **state)
{
	/* The keys and the plaintext of t_cgd_aes.c. */
	static const char *const keys[3] = {"0123456789ABCDEF", "ABCDEFGHIJKLMNOPQRSTUVWX",
					    "0123456789ABCDEF0123456789abcdef"};
	uint8_t pt[512], ct[512], back[512];

	(void)state;
	for (int i = 0; i < 16; i++)
		memcpy(pt + 32 * i, "                abcdefghijklmnop", 32);
	for (size_t i = 0; i < sizeof(cgd_vecs) / sizeof(cgd_vecs[0]); i++) {
		const struct cgd_vec *v = &cgd_vecs[i];
		const char *key = keys[v->key_bits / 64 - 2];
		struct bs_sector_cipher *c =
		    new_cipher(v->passes == 1 ? "aes-cbc-encblkno1" : "aes-cbc-encblkno8",
			       (const uint8_t *)key, v->key_bits / 8, 512, false);

		assert_int_equal(bs_sector_cipher_crypt(c, true, pt, ct, 512, v->blkno), 0);
		check_first_last(ct, v->first, v->last);
		assert_int_equal(bs_sector_cipher_crypt(c, false, ct, back, 512, v->blkno), 0);
		assert_memory_equal(back, pt, 512);
		bs_sector_cipher_free(c);
	}
}

/* ---- specifications --------------------------------------------------------------------- */

static void check_spec(const char *spec, const char *cipher, const char *chain, enum bs_iv_mode iv,
		       const char *ivopts, const char *canon)
{
	struct bs_crypt_spec s;
	const char *why = NULL;
	char out[128];

	if (bs_crypt_spec_parse(spec, &s, &why)) {
		print_error("%s refused: %s\n", spec, why);
		fail();
	}
	assert_string_equal(s.cipher, cipher);
	assert_string_equal(s.chain, chain);
	assert_int_equal(s.iv, iv);
	assert_string_equal(s.ivopts, ivopts);
	bs_crypt_spec_format(&s, out, sizeof(out));
	assert_string_equal(out, canon);
}

static void test_spec_valid(void **state)
{
	(void)state;
	check_spec("aes-xts-plain64", "aes", "xts", BS_IV_PLAIN64, "", "aes-xts-plain64");
	check_spec("aes-cbc-essiv:sha256", "aes", "cbc", BS_IV_ESSIV, "sha256",
		   "aes-cbc-essiv:sha256");
	check_spec("aes-cbc-plain", "aes", "cbc", BS_IV_PLAIN, "", "aes-cbc-plain");
	check_spec("aes-cbc-plain64be", "aes", "cbc", BS_IV_PLAIN64BE, "", "aes-cbc-plain64be");
	check_spec("aes-cbc-benbi", "aes", "cbc", BS_IV_BENBI, "", "aes-cbc-benbi");
	check_spec("aes-cbc-null", "aes", "cbc", BS_IV_NULL, "", "aes-cbc-null");
	check_spec("aes-cbc-encblkno1", "aes", "cbc", BS_IV_ENCBLKNO1, "", "aes-cbc-encblkno1");
	check_spec("aes-cbc-encblkno8", "aes", "cbc", BS_IV_ENCBLKNO8, "", "aes-cbc-encblkno8");
	check_spec("aes-ecb", "aes", "ecb", BS_IV_NONE, "", "aes-ecb");
	/* ECB ignores a (valid) IV mode, as Linux does. */
	check_spec("aes-ecb-plain64", "aes", "ecb", BS_IV_NONE, "", "aes-ecb-plain64");
	check_spec("aes:1-xts-plain64", "aes", "xts", BS_IV_PLAIN64, "", "aes-xts-plain64");
	check_spec("capi:xts(aes)-plain64", "aes", "xts", BS_IV_PLAIN64, "",
		   "capi:xts(aes)-plain64");
	check_spec("capi:cbc(aes)-essiv:sha256", "aes", "cbc", BS_IV_ESSIV, "sha256",
		   "capi:cbc(aes)-essiv:sha256");
	/* Legacy dm-crypt: "aes" and "aes-plain" are aes-cbc-plain. */
	check_spec("aes", "aes", "cbc", BS_IV_PLAIN, "", "aes-cbc-plain");
	check_spec("aes-plain", "aes", "cbc", BS_IV_PLAIN, "", "aes-cbc-plain");
	check_spec("cipher_null", "cipher_null", "ecb", BS_IV_NONE, "", "cipher_null-ecb");
	check_spec("cipher_null-ecb", "cipher_null", "ecb", BS_IV_NONE, "", "cipher_null-ecb");
}

static void check_spec_bad(const char *spec, const char *reason)
{
	struct bs_crypt_spec s;
	const char *why = NULL;

	if (!bs_crypt_spec_parse(spec, &s, &why)) {
		print_error("\"%s\" accepted\n", spec);
		fail();
	}
	assert_non_null(why);
	if (!strstr(why, reason)) {
		print_error("\"%s\": \"%s\" does not say \"%s\"\n", spec, why, reason);
		fail();
	}
}

static void test_spec_invalid(void **state)
{
	char longspec[200];

	(void)state;
	memset(longspec, 'a', sizeof(longspec) - 1);
	longspec[sizeof(longspec) - 1] = '\0';
	check_spec_bad("", "invalid cipher specification");
	check_spec_bad(longspec, "invalid cipher specification");
	check_spec_bad("twofish-xts-plain64", "unsupported cipher");
	check_spec_bad("serpent-cbc-essiv:sha256", "unsupported cipher");
	check_spec_bad("aes-ctr-plain64", "unsupported chaining mode");
	check_spec_bad("aes-gcm-random", "unsupported chaining mode");
	check_spec_bad("aes-xts", "IV mechanism required");
	check_spec_bad("aes-cbc-", "IV mechanism required");
	check_spec_bad("aes-xts-plain65", "unsupported IV mode");
	check_spec_bad("aes-cbc-lmk", "unsupported IV mode");
	check_spec_bad("aes-cbc-tcw", "unsupported IV mode");
	check_spec_bad("aes-xts-random", "unsupported IV mode");
	check_spec_bad("aes-xts-eboiv", "unsupported IV mode");
	check_spec_bad("aes-cbc-essiv", "essiv needs a hash");
	check_spec_bad("aes-cbc-essiv:", "invalid IV options");
	check_spec_bad("aes-xts-plain64:sha256", "takes no options");
	check_spec_bad("aes-xts-:sha256", "invalid IV mode");
	check_spec_bad("aes-cbc-essiv:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		       "invalid IV options");
	check_spec_bad("aes-cbc-aaaaaaaaaaaaaaaaaaaa", "invalid IV mode");
	check_spec_bad("aes:64-cbc-lmk", "multi-key");
	check_spec_bad("aes:2-xts-plain64", "multi-key");
	check_spec_bad("aes-xts-encblkno1", "encblkno1 and encblkno8 are for cbc");
	check_spec_bad("aes-xts-encblkno8", "encblkno1 and encblkno8 are for cbc");
	check_spec_bad("capi:xts(aes)", "invalid capi cipher specification");
	check_spec_bad("capi:xts(aes-plain64", "invalid capi cipher specification");
	check_spec_bad("capi:xts(aes)-", "invalid capi cipher specification");
	check_spec_bad("capi:rfc4309(ccm(aes))-plain64", "invalid capi cipher specification");
	check_spec_bad("capi:xts(twofish)-plain64", "unsupported cipher");
	check_spec_bad("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-cbc-plain",
		       "invalid cipher specification");
	check_spec_bad("aes-aaaaaaaaaaaaaaaaaaaa-plain", "invalid cipher specification");
}

static void test_key_sizes(void **state)
{
	static const struct {
		const char *spec;
		size_t ok[3];
	} cases[] = {
	    {"aes-xts-plain64", {32, 48, 64}},
	    {"aes-cbc-essiv:sha256", {16, 24, 32}},
	    {"aes-ecb", {16, 24, 32}},
	};
	struct bs_crypt_spec s;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(bs_crypt_spec_parse(cases[i].spec, &s, &why), 0);
		for (size_t n = 0; n <= 80; n++) {
			bool want =
			    n == cases[i].ok[0] || n == cases[i].ok[1] || n == cases[i].ok[2];

			assert_int_equal(bs_crypt_key_size_valid(&s, n), want);
		}
	}
	assert_int_equal(bs_crypt_spec_parse("cipher_null-ecb", &s, &why), 0);
	assert_true(bs_crypt_key_size_valid(&s, 0));
	assert_false(bs_crypt_key_size_valid(&s, 16));
}

static void test_cipher_new_bad(void **state)
{
	struct bs_crypt_spec s;
	struct bs_sector_cipher *c = NULL;
	const char *why = NULL;
	uint8_t key[64] = {0};

	(void)state;
	assert_int_equal(bs_crypt_spec_parse("aes-xts-plain64", &s, &why), 0);
	assert_int_equal(bs_sector_cipher_new(&s, key, 20, 512, false, &c, &why), -EINVAL);
	assert_non_null(strstr(why, "invalid key size"));
	assert_int_equal(bs_sector_cipher_new(&s, key, 64, 256, false, &c, &why), -EINVAL);
	assert_non_null(strstr(why, "sector size"));
	assert_int_equal(bs_sector_cipher_new(&s, key, 64, 8192, false, &c, &why), -EINVAL);
	assert_int_equal(bs_sector_cipher_new(&s, key, 64, 1536, false, &c, &why), -EINVAL);
	assert_null(c);
	assert_int_equal(bs_crypt_spec_parse("aes-cbc-essiv:sha1", &s, &why), 0);
	assert_int_equal(bs_sector_cipher_new(&s, key, 16, 512, false, &c, &why), -EINVAL);
	assert_non_null(strstr(why, "ESSIV hash size"));
	assert_int_equal(bs_crypt_spec_parse("aes-cbc-essiv:nosuchhash", &s, &why), 0);
	assert_int_equal(bs_sector_cipher_new(&s, key, 16, 512, false, &c, &why), -EINVAL);
	assert_non_null(strstr(why, "unknown ESSIV hash"));
	assert_null(c);
}

/* ---- the crypt target ------------------------------------------------------------------- */

#define KEY64                                                                                      \
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"                         \
	"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
#define KEY32 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static struct h_file disk;

static int setup_disk(void **state)
{
	(void)state;
	h_file_create(&disk, 1 << 20, 0, false);
	return 0;
}

static int remove_disk(void **state)
{
	(void)state;
	h_file_remove(&disk);
	return 0;
}

static void fails(const char *args, const char *needle)
{
	char *t = h_fmt("0 64 crypt %s", args);

	h_table_fails(t, -EINVAL, 1, needle);
	free(t);
}

static void test_target_refusals(void **state)
{
	const char *d = disk.path;
	char *a;

	(void)state;
	fails("", "not enough arguments");
	fails("aes-xts-plain64 " KEY64 " 0", "not enough arguments");
#define F(fmt, needle)                                                                             \
	do {                                                                                       \
		a = h_fmt(fmt, d);                                                                 \
		fails(a, needle);                                                                  \
		free(a);                                                                           \
	} while (0)
	/* ciphers */
	F("aes-foo-plain64 " KEY64 " 0 %s 0", "crypt: aes-foo-plain64: unsupported chaining mode");
	F("twofish-xts-plain64 " KEY64 " 0 %s 0", "unsupported cipher");
	F("aes-xts-bogus " KEY64 " 0 %s 0", "unsupported IV mode");
	F("aes-xts " KEY64 " 0 %s 0", "IV mechanism required");
	F("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-xts-plain64 " KEY64 " 0 %s 0",
	  "cipher specification too long");
	/* keys */
	F("aes-xts-plain64 " KEY64 "0 0 %s 0", "even number of hex digits");
	F("aes-xts-plain64 0 0 %s 0", "even number of hex digits");
	F("aes-xts-plain64 zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f 0 %s 0",
	  "not hexadecimal");
	F("aes-xts-plain64 000102030405060708090a0b0c0d0e0f1011121314151617 0 %s 0",
	  "invalid key size 24 bytes for aes-xts-plain64");
	F("aes-cbc-essiv:sha256 " KEY64 " 0 %s 0", "invalid key size 64 bytes");
	F("aes-cbc-essiv:sha256 - 0 %s 0", "invalid key size 0 bytes");
	F("cipher_null-ecb " KEY32 " 0 %s 0", "invalid key size 32 bytes");
	F("aes-xts-plain64 :64:logon:cryptsetup:key 0 %s 0",
	  "kernel keyring keys are not supported");
	F("aes-xts-plain64 :32:user:k 0 %s 0", "keyring");
	{
		char longkey[1027];

		memset(longkey, 'a', 1026);
		longkey[1026] = '\0';
		a = h_fmt("aes-xts-plain64 %s 0 %s 0", longkey, d);
		fails(a, "invalid key (longer than 512 bytes)");
		free(a);
	}
	/* offsets and the device */
	F("aes-xts-plain64 " KEY64 " -1 %s 0", "IV offset");
	F("aes-xts-plain64 " KEY64 " x %s 0", "IV offset");
	F("aes-xts-plain64 " KEY64 " 0 %s 1x", "device sector");
	F("aes-xts-plain64 " KEY64 " 0 %s 2000", "too small");
	/* options */
	F("aes-xts-plain64 " KEY64 " 0 %s 0 1", "invalid number of optional parameters");
	F("aes-xts-plain64 " KEY64 " 0 %s 0 2 allow_discards", "invalid number of optional");
	F("aes-xts-plain64 " KEY64 " 0 %s 0 x allow_discards", "invalid number of optional");
	F("aes-xts-plain64 " KEY64 " 0 %s 0 1 bogus", "invalid feature argument \"bogus\"");
	F("aes-xts-plain64 " KEY64 " 0 %s 0 1 sector_size:1000", "invalid sector_size \"1000\"");
	F("aes-xts-plain64 " KEY64 " 0 %s 0 1 sector_size:256", "invalid sector_size");
	F("aes-xts-plain64 " KEY64 " 0 %s 0 1 sector_size:8192", "invalid sector_size");
	F("aes-xts-plain64 " KEY64 " 0 %s 0 1 sector_size:", "invalid sector_size");
	F("aes-xts-plain64 " KEY64 " 0 %s 0 1 iv_large_sectors",
	  "iv_large_sectors needs sector_size");
	F("aes-xts-plain64 " KEY64 " 0 %s 0 1 integrity:28:aead", "integrity");
	/* alignment to sector_size */
	F("aes-xts-plain64 " KEY64 " 0 %s 3 1 sector_size:4096", "device offset not aligned");
	F("aes-xts-plain64 " KEY64 " 5 %s 0 2 sector_size:4096 iv_large_sectors",
	  "IV offset not aligned");
#undef F
	/* the segment itself must be whole sectors */
	a = h_fmt("0 12 crypt aes-xts-plain64 " KEY64 " 0 %s 0 1 sector_size:4096", d);
	h_table_fails(a, -EINVAL, 1, "not aligned to its 4096-byte block size");
	free(a);
	a = h_fmt("0 8 zero\n8 12 crypt aes-xts-plain64 " KEY64 " 0 %s 0 1 sector_size:4096", d);
	h_table_fails(a, -EINVAL, 2, "not aligned");
	free(a);
}

static char *status(struct bs_table *t, unsigned flags)
{
	struct strbuf sb = STRBUF_INIT;
	char *s;

	bs_table_status(t, BS_STATUS_TABLE, flags, NULL, &sb);
	s = strdup(sb_str(&sb));
	sb_free(&sb);
	assert_non_null(s);
	return s;
}

/* The table with and without keys, and that each form reads back unchanged. */
static void check_table(const char *line, const char *masked, const char *shown)
{
	struct bs_table *t = h_table_ok(line, false), *again;
	char *m = status(t, 0), *s = status(t, BS_STATUS_SHOWKEYS), *m2, *s2;

	if (strcmp(m, masked) || strcmp(s, shown)) {
		print_error("table %s\nmasked: %s\nwanted: %s\nshown:  %s\nwanted: %s\n", line, m,
			    masked, s, shown);
		fail();
	}
	again = h_table_ok(s, false);
	s2 = status(again, BS_STATUS_SHOWKEYS);
	assert_string_equal(s2, s);
	bs_table_destroy(again);
	again = h_table_ok(m, false); /* the masked key (all zero) is a valid key too */
	m2 = status(again, 0);
	assert_string_equal(m2, m);
	bs_table_destroy(again);
	bs_table_destroy(t);
	free(m);
	free(s);
	free(m2);
	free(s2);
}

static void test_target_table(void **state)
{
	const char *d = disk.path;
	char *line, *masked, *shown;
	const char *zeros64 = "0000000000000000000000000000000000000000000000000000000000000000"
			      "0000000000000000000000000000000000000000000000000000000000000000";

	(void)state;
	line = h_fmt("0 64 crypt aes-xts-plain64 " KEY64 " 7 %s 8", d);
	masked = h_fmt("0 64 crypt aes-xts-plain64 %s 7 %s 8\n", zeros64, d);
	shown = h_fmt("0 64 crypt aes-xts-plain64 " KEY64 " 7 %s 8\n", d);
	check_table(line, masked, shown);
	free(line);
	free(masked);
	free(shown);

	/* Upper-case keys print as Linux prints them: lower case. */
	line = h_fmt("0 64 crypt aes-cbc-essiv:sha256 "
		     "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"
		     " 0 %s 0 3 allow_discards same_cpu_crypt sector_size:4096",
		     d);
	masked = h_fmt("0 64 crypt aes-cbc-essiv:sha256 %.64s 0 %s 0 3 allow_discards "
		       "same_cpu_crypt sector_size:4096\n",
		       zeros64, d);
	shown = h_fmt("0 64 crypt aes-cbc-essiv:sha256 " KEY32
		      " 0 %s 0 3 allow_discards same_cpu_crypt sector_size:4096\n",
		      d);
	check_table(line, masked, shown);
	free(line);
	free(masked);
	free(shown);

	/* Every option, in the order Linux prints them; the cipher is printed as given. */
	line = h_fmt("0 64 crypt aes:1-xts-plain64 " KEY32
		     " 16 %s 8 7 iv_large_sectors no_write_workqueue no_read_workqueue "
		     "submit_from_crypt_cpus same_cpu_crypt allow_discards sector_size:4096",
		     d);
	masked = h_fmt("0 64 crypt aes:1-xts-plain64 %.64s 16 %s 8 7 allow_discards "
		       "same_cpu_crypt submit_from_crypt_cpus no_read_workqueue "
		       "no_write_workqueue sector_size:4096 iv_large_sectors\n",
		       zeros64, d);
	shown = h_fmt("0 64 crypt aes:1-xts-plain64 " KEY32
		      " 16 %s 8 7 allow_discards same_cpu_crypt submit_from_crypt_cpus "
		      "no_read_workqueue no_write_workqueue sector_size:4096 iv_large_sectors\n",
		      d);
	check_table(line, masked, shown);
	free(line);
	free(masked);
	free(shown);

	line = h_fmt("0 64 crypt cipher_null-ecb - 0 %s 0", d);
	shown = h_fmt("0 64 crypt cipher_null-ecb - 0 %s 0\n", d);
	check_table(line, shown, shown);
	free(line);
	free(shown);
}

/* Data written through tables lands on disk as the known answers say. */
static void check_on_disk(const char *table, uint64_t table_off, uint64_t disk_off,
			  const struct kat *k)
{
	struct bs_table *t = h_table_ok(table, false);
	uint8_t *buf = malloc(k->len), *raw = malloc(k->len), head[32];
	char sum[65];

	assert_non_null(buf);
	assert_non_null(raw);
	data_pattern(buf, k->len);
	assert_int_equal(h_table_rw(t, BS_OP_WRITE, buf, k->len, table_off), 0);
	h_file_pread(&disk, raw, k->len, disk_off);
	hex(k->head, head, 32);
	sha256_hex(raw, k->len, sum);
	assert_memory_equal(raw, head, 32);
	assert_string_equal(sum, k->sha256);
	memset(buf, 0, k->len);
	assert_int_equal(h_table_rw(t, BS_OP_READ, buf, k->len, table_off), 0);
	data_pattern(raw, k->len);
	assert_memory_equal(buf, raw, k->len);
	bs_table_destroy(t);
	free(buf);
	free(raw);
}

static const struct kat *find_kat(const char *spec, unsigned key_len, unsigned ss, bool large,
				  uint64_t sector)
{
	for (size_t i = 0; i < sizeof(kats) / sizeof(kats[0]); i++)
		if (!strcmp(kats[i].spec, spec) && kats[i].key_len == key_len &&
		    kats[i].sector_size == ss && kats[i].large == large && kats[i].sector == sector)
			return &kats[i];
	fail_msg("no known answer for %s", spec);
	return NULL;
}

static void test_target_data(void **state)
{
	char *line;

	(void)state;
	/* table sector 2, iv_offset 100 (IV sector 102), device offset 8 (disk sector 10) */
	line = h_fmt("0 64 crypt aes-xts-plain64 " KEY64 " 100 %s 8", disk.path);
	check_on_disk(line, 2 * 512, 10 * 512, find_kat("aes-xts-plain64", 64, 512, false, 102));
	free(line);
	/* 4096-byte sectors with large IVs: table sector 8 + iv_offset 16 = IV sector 24 */
	line = h_fmt("0 64 crypt aes-cbc-essiv:sha256 " KEY32
		     " 16 %s 8 2 sector_size:4096 iv_large_sectors",
		     disk.path);
	check_on_disk(line, 8 * 512, 16 * 512,
		      find_kat("aes-cbc-essiv:sha256", 32, 4096, true, 24));
	free(line);
	/* the same without iv_large_sectors counts 512-byte sectors */
	line = h_fmt("0 64 crypt aes-cbc-essiv:sha256 " KEY32 " 16 %s 8 1 sector_size:4096",
		     disk.path);
	check_on_disk(line, 8 * 512, 16 * 512,
		      find_kat("aes-cbc-essiv:sha256", 32, 4096, false, 24));
	free(line);
}

/* ---- XTS against a reference ------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void rng_fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(rng() >> 24);
}

/* OpenSSL's XTS, one call per sector, with the given IVs (distinct key halves only). */
static void xts_reference(bool encrypt, const uint8_t *key, size_t key_len, unsigned ss,
			  const uint8_t *in, uint8_t *out, size_t len, const uint8_t *ivs)
{
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	const EVP_CIPHER *ciph = key_len == 32 ? EVP_aes_128_xts() : EVP_aes_256_xts();
	int outl;

	assert_non_null(x);
	assert_true(EVP_CipherInit_ex2(x, ciph, key, NULL, encrypt, NULL));
	for (size_t off = 0; off < len; off += ss) {
		assert_true(EVP_CipherInit_ex2(x, NULL, NULL, ivs + off / ss * 16, encrypt, NULL));
		assert_true(EVP_CipherUpdate(x, out + off, &outl, in + off, (int)ss));
		assert_int_equal(outl, (int)ss);
	}
	EVP_CIPHER_CTX_free(x);
}

/* plain64 IVs for NSEC sectors of SS bytes from SECTOR (512-byte units). */
static void plain64_ivs(uint64_t sector, unsigned ss, bool large, size_t nsec, uint8_t *ivs)
{
	const unsigned shift = large ? (unsigned)__builtin_ctz(ss) - 9 : 0;

	memset(ivs, 0, 16 * nsec);
	for (size_t i = 0; i < nsec; i++) {
		uint64_t n = (sector + i * (ss >> 9)) >> shift;

		for (unsigned b = 0; b < 8; b++)
			ivs[16 * i + b] = (uint8_t)(n >> (8 * b));
	}
}

/*
 * Runs C (aes-xts-plain64) over LEN bytes of random data from SECTOR both ways, in place and
 * out of place, and with given IVs, and compares every result with the reference.
 */
static void check_xts_against_reference(struct bs_sector_cipher *c, const uint8_t *key,
					size_t key_len, unsigned ss, bool large, size_t len,
					uint64_t sector)
{
	const size_t nsec = len / ss;
	uint8_t *pt = malloc(len), *want = malloc(len), *got = malloc(len);
	uint8_t *ivs = malloc(16 * nsec);

	assert_non_null(pt);
	assert_non_null(want);
	assert_non_null(got);
	assert_non_null(ivs);
	rng_fill(pt, len);
	plain64_ivs(sector, ss, large, nsec, ivs);
	for (int enc = 0; enc < 2; enc++) {
		xts_reference(enc, key, key_len, ss, pt, want, len, ivs);
		/* out of place */
		memset(got, 0xa5, len);
		assert_int_equal(bs_sector_cipher_crypt(c, enc, pt, got, len, sector), 0);
		assert_memory_equal(got, want, len);
		/* in place */
		memcpy(got, pt, len);
		assert_int_equal(bs_sector_cipher_crypt(c, enc, got, got, len, sector), 0);
		assert_memory_equal(got, want, len);
		/* given IVs (random ones, not plain64) */
		rng_fill(ivs, 16 * nsec);
		xts_reference(enc, key, key_len, ss, pt, want, len, ivs);
		memcpy(got, pt, len);
		assert_int_equal(bs_sector_cipher_crypt_ivs(c, enc, got, got, len, ivs), 0);
		assert_memory_equal(got, want, len);
		plain64_ivs(sector, ss, large, nsec, ivs);
	}
	free(pt);
	free(want);
	free(got);
	free(ivs);
}

/*
 * aes-xts-plain64 with 256- and 512-bit keys (distinct halves) against OpenSSL's XTS called
 * sector by sector, at every level of acceleration (VAES, AES-NI, none) the CPU has: lengths of 1
 * to 19 sectors (around the batches of eight sectors the fast path works in), every sector size,
 * sector numbers around 2^32 and beyond, iv_large_sectors.
 */
static void test_xts_reference(void **state)
{
	static const unsigned sizes[] = {512, 1024, 2048, 4096};
	static const size_t counts[] = {1, 2, 7, 8, 9, 16, 19};
	static const uint64_t sectors[] = {0, 1, 0xfffffff8ull, 0x123456789abull};

	(void)state;
	for (int accel = BS_ACCEL_VAES; accel >= BS_ACCEL_NONE; accel--) {
		bs_sector_cipher_set_accel((enum bs_cipher_accel)accel);
		for (size_t key_len = 32; key_len <= 64; key_len += 32) {
			uint8_t key[64];

			rng_fill(key, key_len);
			for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
				for (int large = 0; large < 2; large++) {
					const unsigned ss = sizes[si];
					struct bs_sector_cipher *c =
					    new_cipher("aes-xts-plain64", key, key_len, ss, large);

					for (size_t ci = 0; ci < sizeof(counts) / sizeof(counts[0]);
					     ci++)
						for (size_t n = 0;
						     n < sizeof(sectors) / sizeof(sectors[0]); n++)
							check_xts_against_reference(
							    c, key, key_len, ss, large,
							    counts[ci] * ss,
							    sectors[n] / (ss >> 9) * (ss >> 9));
					bs_sector_cipher_free(c);
				}
			}
		}
	}
	bs_sector_cipher_set_accel(BS_ACCEL_VAES);
}

/*
 * Every XTS key size (including AES-192, which OpenSSL's XTS lacks, and equal key halves) and
 * IV mode gives the same answers at every level of acceleration (VAES, AES-NI, none).
 */
static void test_xts_accel_same(void **state)
{
	static const char *const specs[] = {"aes-xts-plain64",	 "aes-xts-plain",
					    "aes-xts-plain64be", "aes-xts-essiv:sha256",
					    "aes-xts-benbi",	 "aes-xts-null"};
	const size_t len = 37 * 512;
	uint8_t *pt = malloc(len), *a = malloc(len), *b = malloc(len);

	(void)state;
	assert_non_null(pt);
	assert_non_null(a);
	assert_non_null(b);
	rng_fill(pt, len);
	for (size_t si = 0; si < sizeof(specs) / sizeof(specs[0]); si++) {
		for (size_t key_len = 32; key_len <= 64; key_len += 16) {
			for (int equal = 0; equal < 2; equal++) {
				struct bs_sector_cipher *fast[2], *slow;
				uint8_t key[64];

				rng_fill(key, key_len);
				if (equal)
					memcpy(key + key_len / 2, key, key_len / 2);
				for (int l = 0; l < 2; l++) {
					bs_sector_cipher_set_accel(l ? BS_ACCEL_VAES
								     : BS_ACCEL_AESNI);
					fast[l] = new_cipher(specs[si], key, key_len, 512, false);
				}
				bs_sector_cipher_set_accel(BS_ACCEL_NONE);
				slow = new_cipher(specs[si], key, key_len, 512, false);
				bs_sector_cipher_set_accel(BS_ACCEL_VAES);
				for (int enc = 0; enc < 2; enc++) {
					uint64_t sector = rng() >> (rng() % 64);

					memcpy(b, pt, len);
					assert_int_equal(
					    bs_sector_cipher_crypt(slow, enc, b, b, len, sector),
					    0);
					for (int l = 0; l < 2; l++) {
						assert_int_equal(
						    bs_sector_cipher_crypt(fast[l], enc, pt, a, len,
									   sector),
						    0);
						assert_memory_equal(a, b, len);
					}
				}
				bs_sector_cipher_free(fast[0]);
				bs_sector_cipher_free(fast[1]);
				bs_sector_cipher_free(slow);
			}
		}
	}
	free(pt);
	free(a);
	free(b);
}

/*
 * The AES-NI block functions against OpenSSL's AES-ECB and AES-CBC: every key size, 1 to 40
 * blocks (around the groups of eight ECB works in), in place and out of place.
 */
static void test_aes_aesni(void **state)
{
	uint8_t key[32], iv[16], in[640], want[640], got[640];

	(void)state;
	for (size_t key_len = 16; key_len <= 32; key_len += 8) {
		struct bs_aes_keys *k;

		rng_fill(key, key_len);
		k = bs_aes_keys_new(key, key_len);
		if (!k) {
			assert_int_equal(bs_xts_aesni_level(BS_ACCEL_VAES), BS_ACCEL_NONE);
			skip();
		}
		for (size_t n = 1; n <= 40; n++) {
			const size_t len = 16 * n;

			rng_fill(in, len);
			rng_fill(iv, sizeof(iv));
			for (int mode = 0; mode < 3; mode++) { /* ECB enc, ECB dec, CBC enc */
				char name[32];
				EVP_CIPHER *ciph;
				EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
				int outl = 0;

				snprintf(name, sizeof(name), "AES-%zu-%s", key_len * 8,
					 mode == 2 ? "CBC" : "ECB");
				ciph = EVP_CIPHER_fetch(NULL, name, NULL);
				assert_non_null(ciph);
				assert_non_null(ctx);
				assert_true(EVP_CipherInit_ex2(
				    ctx, ciph, key, mode == 2 ? iv : NULL, mode != 1, NULL));
				EVP_CIPHER_CTX_set_padding(ctx, 0);
				assert_true(EVP_CipherUpdate(ctx, want, &outl, in, (int)len));
				assert_int_equal(outl, (int)len);
				EVP_CIPHER_CTX_free(ctx);
				EVP_CIPHER_free(ciph);
				if (mode == 2)
					bs_aes_cbc_encrypt(k, iv, in, got, len);
				else
					bs_aes_ecb(k, mode == 0, in, got, len);
				assert_memory_equal(got, want, len);
				memcpy(got, in, len);
				if (mode == 2)
					bs_aes_cbc_encrypt(k, iv, got, got, len);
				else
					bs_aes_ecb(k, mode == 0, got, got, len);
				assert_memory_equal(got, want, len);
			}
		}
		bs_aes_keys_free(k);
	}
}

/* "key wipe" and "key set" while suspended, as dm-crypt's messages. */
static void test_target_messages(void **state)
{
	char *line = h_fmt("0 64 crypt aes-xts-plain64 " KEY64 " 0 %s 0", disk.path);
	struct bs_table *t = h_table_ok(line, false);
	struct bs_target *tg = &t->targets[0];
	struct strbuf out = STRBUF_INIT;
	char *argv[3], *s;
	uint8_t buf[512];

	(void)state;
	argv[0] = "key";
	argv[1] = "wipe";
	assert_int_equal(tg->type->message(tg, 2, argv, &out), -EINVAL);
	assert_non_null(strstr(tg->error, "not suspended"));
	bs_table_postsuspend(t);
	assert_int_equal(tg->type->message(tg, 2, argv, &out), 0);
	assert_int_equal(h_table_rw(t, BS_OP_READ, buf, 512, 0), -EIO);
	s = status(t, BS_STATUS_SHOWKEYS);
	assert_null(strstr(s, KEY64));
	free(s);
	argv[1] = "set";
	argv[2] = "0011";
	assert_int_equal(tg->type->message(tg, 3, argv, &out), -EINVAL);
	assert_non_null(strstr(tg->error, "invalid key size"));
	argv[2] = KEY32;
	assert_int_equal(tg->type->message(tg, 3, argv, &out), 0);
	s = status(t, BS_STATUS_SHOWKEYS);
	assert_non_null(strstr(s, " " KEY32 " "));
	free(s);
	sb_free(&out);
	bs_table_destroy(t);
	free(line);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kats),
	    cmocka_unit_test(test_aes_aesni),
	    cmocka_unit_test(test_concurrent_contexts),
	    cmocka_unit_test(test_cipher_null),
	    cmocka_unit_test(test_ieee1619_short),
	    cmocka_unit_test(test_ieee1619_512),
	    cmocka_unit_test(test_xts_reference),
	    cmocka_unit_test(test_xts_accel_same),
	    cmocka_unit_test(test_netbsd_cgd_cbc),
	    cmocka_unit_test(test_spec_valid),
	    cmocka_unit_test(test_spec_invalid),
	    cmocka_unit_test(test_key_sizes),
	    cmocka_unit_test(test_cipher_new_bad),
	    cmocka_unit_test(test_target_refusals),
	    cmocka_unit_test(test_target_table),
	    cmocka_unit_test(test_target_data),
	    cmocka_unit_test(test_target_messages),
	};

	return cmocka_run_group_tests(tests, setup_disk, remove_disk);
}
