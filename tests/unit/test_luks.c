/*
 * test_luks.c - LUKS1 and LUKS2 headers on in-memory devices: what is formatted reads back
 * and unlocks; damaged and hostile headers are refused with a clear reason (checksums,
 * truncated or unterminated JSON, wrong JSON types, segments beyond the device, overlapping
 * or oversized key slot areas, unknown types, requirements, LUKS1 field checks); a damaged
 * or stale LUKS2 copy is recovered from the other; unknown JSON survives a rewrite; key
 * management; the crypt table line.
 */
#include <endian.h>
#include <errno.h>
#include <openssl/sha.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/aead.h"
#include "engine/mem_bdev.h"
#include "formats/integrity_sb.h"
#include "formats/luks.h"
#include "formats/luks_defs.h"
#include "util/secmem.h"

#define DEV_SIZE (4u << 20)
#define PASS	 "correct horse"

static struct luks_format_opts opts2(void)
{
	struct luks_format_opts o = {
	    .version = 2,
	    .cipher = "aes-xts-plain64",
	    .key_bytes = 32,
	    .keyslot = LUKS_ANY_SLOT,
	    .keyslots_size = 512 << 10,
	    .uuid = "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5",
	};

	o.pbkdf.type = BS_PBKDF2;
	o.pbkdf.type_set = true;
	o.pbkdf.iterations = 1000;
	return o;
}

static struct bs_bdev *fresh(int version)
{
	struct luks_format_opts o = opts2();
	struct strbuf err = STRBUF_INIT;
	struct bs_bdev *b;
	int slot = -1;

	assert_int_equal(bs_mem_bdev_create("mem", DEV_SIZE, false, &b), 0);
	o.version = version;
	if (version == 1)
		o.keyslots_size = 0;
	if (luks_format(b, DEV_SIZE, &o, PASS, strlen(PASS), NULL, &slot, &err))
		fail_msg("format: %s", sb_str(&err));
	assert_int_equal(slot, 0);
	sb_free(&err);
	return b;
}

/* Loads B; returns the error (0 when it loads) and the message in MSG. */
static int load(struct bs_bdev *b, bool repair, struct luks_hdr **h, char *msg, size_t n)
{
	struct strbuf err = STRBUF_INIT;
	struct luks_hdr *tmp = NULL;
	int r = luks_load(b, repair, h ? h : &tmp, &err);

	if (msg)
		snprintf(msg, n, "%s", sb_str(&err));
	sb_free(&err);
	luks_free(tmp);
	return r;
}

/* Expects B to be refused with a message containing WHAT. */
static void refused(struct bs_bdev *b, const char *what)
{
	char msg[600];

	assert_int_not_equal(load(b, false, NULL, msg, sizeof(msg)), 0);
	if (!strstr(msg, what))
		fail_msg("expected \"%s\" in \"%s\"", what, msg);
	assert_null(strchr(msg, '\n'));
}

/* ---- raw LUKS2 header surgery ----------------------------------------------------------- */

static uint64_t hdr_size(struct bs_bdev *b)
{
	uint64_t v;

	memcpy(&v, bs_mem_bdev_data(b) + LUKS2_OFF_HDR_SIZE, 8);
	return be64toh(v);
}

static uint64_t copy_off(struct bs_bdev *b, int which)
{
	return which ? hdr_size(b) : 0;
}

static void fix_csum(struct bs_bdev *b, int which)
{
	uint8_t *d = bs_mem_bdev_data(b) + copy_off(b, which);

	memset(d + LUKS2_OFF_CSUM, 0, LUKS2_CHECKSUM_L);
	SHA256(d, hdr_size(b), d + LUKS2_OFF_CSUM);
}

static char *get_json(struct bs_bdev *b, int which)
{
	return strdup((char *)bs_mem_bdev_data(b) + copy_off(b, which) + LUKS2_HDR_BIN_LEN);
}

static void put_json(struct bs_bdev *b, int which, const char *text, size_t len)
{
	uint8_t *d = bs_mem_bdev_data(b) + copy_off(b, which) + LUKS2_HDR_BIN_LEN;
	size_t area = hdr_size(b) - LUKS2_HDR_BIN_LEN;

	memset(d, 0, area);
	memcpy(d, text, len < area ? len : area);
	fix_csum(b, which);
}

/* Replaces FROM by TO in the JSON of both copies and fixes their checksums. */
static void mutate(struct bs_bdev *b, const char *from, const char *to)
{
	for (int w = 0; w < 2; w++) {
		char *j = get_json(b, w), *at = strstr(j, from), *n;

		if (!at)
			fail_msg("\"%s\" not in %s", from, j);
		n = malloc(strlen(j) + strlen(to) + 1);
		memcpy(n, j, (size_t)(at - j));
		strcpy(n + (at - j), to);
		strcat(n, at + strlen(from));
		put_json(b, w, n, strlen(n));
		free(n);
		free(j);
	}
}

static void set_seqid(struct bs_bdev *b, int which, uint64_t seq)
{
	uint64_t v = htobe64(seq);

	memcpy(bs_mem_bdev_data(b) + copy_off(b, which) + LUKS2_OFF_SEQID, &v, 8);
	fix_csum(b, which);
}

static int unlock(struct luks_hdr *h, const char *pass, int *slot)
{
	struct strbuf err = STRBUF_INIT;
	uint8_t *vk;
	size_t n;
	int s, r = luks_unlock(h, LUKS_ANY_SLOT, pass, strlen(pass), &vk, &n, &s, &err);

	if (!r) {
		bs_secure_free(vk);
		if (slot)
			*slot = s;
	} else if (r == -EPERM) {
		assert_string_equal(sb_str(&err), "No key available with this passphrase.");
	}
	sb_free(&err);
	return r;
}

static void add_key(struct luks_hdr *h, const char *old, const char *pass, int *slot)
{
	struct luks_pbkdf_opts pb = {.type = BS_PBKDF2, .type_set = true, .iterations = 1000};
	struct strbuf err = STRBUF_INIT;
	uint8_t *vk;
	size_t n;
	int s;

	assert_int_equal(luks_unlock(h, LUKS_ANY_SLOT, old, strlen(old), &vk, &n, &s, &err), 0);
	if (luks_add_key(h, LUKS_ANY_SLOT, vk, n, pass, strlen(pass), &pb, slot, &err))
		fail_msg("add key: %s", sb_str(&err));
	bs_secure_free(vk);
	sb_free(&err);
}

/* ---- LUKS2 ------------------------------------------------------------------------------ */

static void test_luks2_round_trip(void **state)
{
	struct bs_bdev *b = fresh(2);
	struct luks_hdr *h;
	int slot;

	(void)state;
	assert_int_equal(luks_probe(b), 2);
	assert_int_equal(load(b, false, &h, NULL, 0), 0);
	assert_int_equal(luks_version(h), 2);
	assert_string_equal(luks_uuid(h), "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5");
	assert_int_equal(luks_volume_key_size(h), 32);
	assert_true(luks_data_offset(h) == (1u << 20));
	assert_int_equal(unlock(h, PASS, &slot), 0);
	assert_int_equal(slot, 0);
	assert_int_equal(unlock(h, "wrong", NULL), -EPERM);
	add_key(h, PASS, "second", &slot);
	assert_int_equal(slot, 1);
	luks_free(h);
	/* both copies were rewritten with the next seqid */
	assert_int_equal(load(b, false, &h, NULL, 0), 0);
	assert_int_equal(unlock(h, "second", &slot), 0);
	assert_int_equal(slot, 1);
	assert_int_equal(luks_active_slots(h), 2);
	{
		struct strbuf err = STRBUF_INIT;

		assert_int_equal(luks_kill_slot(h, 0, &err), 0);
		assert_int_equal(luks_kill_slot(h, 0, &err), -EINVAL);
		assert_string_equal(sb_str(&err), "Keyslot 0 is not active.");
		sb_free(&err);
	}
	assert_int_equal(unlock(h, PASS, NULL), -EPERM);
	luks_free(h);
	bs_bdev_close(b);
}

static void test_luks2_checksums(void **state)
{
	struct bs_bdev *b = fresh(2);
	uint8_t *d = bs_mem_bdev_data(b);
	uint64_t hs = hdr_size(b);
	uint8_t good[2][LUKS2_HDR_16K_LEN];
	struct luks_hdr *h;

	(void)state;
	assert_true(hs == LUKS2_HDR_16K_LEN);
	memcpy(good[0], d, hs);
	memcpy(good[1], d + hs, hs);

	/* primary damaged: read from the secondary, and repaired */
	d[LUKS2_HDR_BIN_LEN + 10] ^= 0x20;
	assert_int_equal(load(b, false, &h, NULL, 0), 0);
	assert_int_equal(unlock(h, PASS, NULL), 0);
	luks_free(h);
	assert_memory_not_equal(d, good[0], hs); /* not repaired without REPAIR */
	assert_int_equal(load(b, true, NULL, NULL, 0), 0);
	assert_memory_equal(d + LUKS2_HDR_BIN_LEN, good[0] + LUKS2_HDR_BIN_LEN,
			    hs - LUKS2_HDR_BIN_LEN);
	assert_memory_equal(d, good[0], LUKS2_OFF_SALT); /* same seqid, same fields */

	/* primary magic gone too: the secondary is found at its offset */
	memset(d, 0, 8);
	assert_int_equal(luks_probe(b), 0);
	assert_int_equal(load(b, true, NULL, NULL, 0), 0);
	assert_int_equal(luks_probe(b), 2);

	/* secondary damaged: the primary serves, and the secondary is rebuilt */
	d[hs + LUKS2_OFF_UUID] ^= 1;
	assert_int_equal(load(b, true, NULL, NULL, 0), 0);
	assert_memory_equal(d + hs + LUKS2_OFF_UUID, good[1] + LUKS2_OFF_UUID, 40);

	/* both damaged: refused, saying so */
	d[LUKS2_HDR_BIN_LEN + 10] ^= 0x20;
	d[hs + LUKS2_HDR_BIN_LEN + 10] ^= 0x20;
	refused(b, "LUKS2 header is damaged: checksum mismatch (both copies)");
	bs_bdev_close(b);
}

static void test_luks2_json(void **state)
{
	struct bs_bdev *b;
	char *j;

	(void)state;
	/* truncated JSON (checksums right) */
	b = fresh(2);
	j = get_json(b, 0);
	for (int w = 0; w < 2; w++)
		put_json(b, w, j, strlen(j) / 2);
	refused(b, "JSON metadata is truncated");
	/* not terminated: the whole area is text */
	{
		size_t area = hdr_size(b) - LUKS2_HDR_BIN_LEN;
		char *full = malloc(area);

		memset(full, ' ', area);
		memcpy(full, j, strlen(j));
		for (int w = 0; w < 2; w++)
			put_json(b, w, full, area);
		free(full);
	}
	refused(b, "not terminated");
	/* garbage after the object */
	for (int w = 0; w < 2; w++) {
		char *g = malloc(strlen(j) + 3);

		sprintf(g, "%s}x", j);
		put_json(b, w, g, strlen(g));
		free(g);
	}
	refused(b, "text after the JSON object");
	/* not JSON at all */
	for (int w = 0; w < 2; w++)
		put_json(b, w, "[1,2]", 5);
	refused(b, "does not start with a JSON object");
	free(j);
	bs_bdev_close(b);
}

struct mut {
	const char *from, *to, *why;
};

static void test_luks2_hostile(void **state)
{
	static const struct mut m[] = {
	    /* wrong JSON types */
	    {"\"key_size\":32,\"af\"", "\"key_size\":\"32\",\"af\"", "key_size missing"},
	    {"\"sector_size\":512", "\"sector_size\":\"512\"", "sector_size missing"},
	    {"\"offset\":\"1048576\"", "\"offset\":1048576", "offset missing or not a decimal"},
	    {"\"offset\":\"1048576\"", "\"offset\":\"0x100000\"", "not a decimal string"},
	    {"\"offset\":\"1048576\"", "\"offset\":\"-1048576\"", "not a decimal string"},
	    {"\"iterations\":1000,\"salt\"", "\"iterations\":1000.5,\"salt\"",
	     "pbkdf2 needs exactly"},
	    {"\"keyslots\":{", "\"keyslots\":[],\"x\":{", "lacks one of keyslots"},
	    {"\"stripes\":4000", "\"stripes\":3999", "af stripes must be 4000"},
	    {"\"sector_size\":512", "\"sector_size\":520", "sector_size missing or not"},
	    {"\"json_size\":\"12288\"", "\"json_size\":\"12289\"", "json_size"},
	    {"\"keyslots_size\":\"524288\"", "\"keyslots_size\":\"1099511627776\"",
	     "invalid keyslots_size"},
	    {"\"keyslots_size\":\"524288\"", "\"keyslots_size\":\"16777216\"",
	     "overlaps the metadata and keyslots areas"},
	    /* huge and misplaced key slot areas */
	    {"\"size\":\"131072\"", "\"size\":\"1099511627776\"", "outside the keyslots area"},
	    {"\"offset\":\"32768\"", "\"offset\":\"16384\"", "outside the keyslots area"},
	    {"\"size\":\"131072\"", "\"size\":\"4096\"", "too small for its key material"},
	    {"\"offset\":\"32768\"", "\"offset\":\"18446744073709551615\"", "overflows"},
	    /* unknown types */
	    {"\"type\":\"luks2\"", "\"type\":\"luks3\"", "unsupported type \"luks3\""},
	    {"\"type\":\"luks2\"", "\"type\":\"reencrypt\"", "reencryption key slots"},
	    {"\"type\":\"pbkdf2\",\"keyslots\"", "\"type\":\"hmac\",\"keyslots\"",
	     "digest 0: unsupported type"},
	    {"\"type\":\"raw\"", "\"type\":\"cooked\"", "unsupported area type"},
	    {"\"type\":\"luks1\"", "\"type\":\"luks9\"", "unsupported af type"},
	    /* references */
	    {"\"keyslots\":[\"0\"]", "\"keyslots\":[\"7\"]", "naming what does not exist"},
	    {"\"segments\":[\"0\"]", "\"segments\":[]", "segment 0 has no digest"},
	    {"\"tokens\":{}", "\"tokens\":{\"0\":{\"type\":\"t\",\"keyslots\":[\"5\"]}}",
	     "token 0"},
	    {"\"keyslots\":{\"0\"", "\"keyslots\":{\"00\"", "invalid or repeated key"},
	    {"\"segments\":{\"0\"", "\"segments\":{\"1\"", "keys are not 0..0"},
	    /* requirements */
	    {"\"config\":{",
	     "\"config\":{\"requirements\":{\"mandatory\":[\"online-reencrypt-v2\"]},",
	     "requirement \"online-reencrypt-v2\" is not supported"},
	    {"\"config\":{", "\"config\":{\"flags\":[1],", "flags is not an array of strings"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		struct bs_bdev *b = fresh(2);

		mutate(b, m[i].from, m[i].to);
		refused(b, m[i].why);
		bs_bdev_close(b);
	}
}

/* A sound copy with a requirement wins over an older copy without: never fall back. */
static void test_luks2_requirement_one_copy(void **state)
{
	struct bs_bdev *b = fresh(2);
	char *j = get_json(b, 0), *n = malloc(strlen(j) + 64), *at = strstr(j, "\"config\":{");

	(void)state;
	memcpy(n, j, (size_t)(at - j) + 10);
	strcpy(n + (at - j) + 10, "\"requirements\":{\"mandatory\":[\"online-reencrypt-v2\"]},");
	strcat(n, at + 10);
	put_json(b, 0, n, strlen(n));
	set_seqid(b, 0, 99);
	refused(b, "requirement \"online-reencrypt-v2\" is not supported");
	free(n);
	free(j);
	bs_bdev_close(b);
}

/* Data at offset 0 belongs to a detached header: refused on the header's own device. */
static void test_detached_table(void **state)
{
	struct luks_format_opts o = opts2();
	struct strbuf err = STRBUF_INIT, table = STRBUF_SECURE_INIT;
	struct bs_bdev *b;
	struct luks_hdr *h;
	uint8_t *vk;
	size_t n;
	int s;

	(void)state;
	assert_int_equal(bs_mem_bdev_create("hdr", DEV_SIZE, false, &b), 0);
	o.detached = true;
	assert_int_equal(luks_format(b, 8 << 20, &o, PASS, strlen(PASS), &h, NULL, &err), 0);
	assert_true(luks_data_offset(h) == 0);
	assert_int_equal(luks_unlock(h, 0, PASS, strlen(PASS), &vk, &n, &s, &err), 0);
	assert_int_equal(luks_crypt_table(h, vk, n, "/data", 8 << 20, 0, 0, &table, &err), 0);
	assert_non_null(strstr(sb_str(&table), " 0 /data 0"));
	assert_int_equal(
	    luks_crypt_table(h, vk, n, "/hdr", DEV_SIZE, 0, LUKS_TABLE_ATTACHED, &table, &err),
	    -EINVAL);
	assert_non_null(strstr(sb_str(&err), "meant to be detached"));
	bs_secure_free(vk);
	luks_free(h);
	sb_free(&err);
	sb_free(&table);
	bs_bdev_close(b);
}

/*
 * --integrity: the segment's JSON, the key sizes, the two tables (integrity below crypt) and
 * the wipe: every sector of the integrity device decrypts to zeroes under the volume key.
 */
static void integrity_case(uint64_t dev_size, const char *cipher, const char *integ,
			   uint32_t key_bytes, unsigned sector, size_t want_vk,
			   const char *want_crypt, const char *want_dif)
{
	struct luks_format_opts o = opts2();
	struct strbuf err = STRBUF_INIT, table = STRBUF_SECURE_INIT, dif = STRBUF_INIT;
	struct luks_segment_info si;
	struct bs_bdev *b;
	struct luks_hdr *h;
	uint8_t *vk;
	uint64_t provided = 0;
	size_t n;
	int s;

	assert_int_equal(bs_mem_bdev_create("vol", dev_size, false, &b), 0);
	o.cipher = cipher;
	o.key_bytes = key_bytes;
	o.integrity = luks_integrity_name(integ);
	o.sector_size = sector;
	assert_non_null(o.integrity);
	if (luks_format(b, dev_size, &o, PASS, strlen(PASS), &h, NULL, &err))
		fail_msg("format: %s", sb_str(&err));
	assert_int_equal(luks_volume_key_size(h), want_vk);
	assert_int_equal(luks_segment(h, &si, &err), 0);
	assert_string_equal(si.integrity, o.integrity);
	assert_int_equal(luks_unlock(h, 0, PASS, strlen(PASS), &vk, &n, &s, &err), 0);
	/* the crypt table needs the integrity device */
	assert_int_equal(
	    luks_crypt_table(h, vk, n, "/v", dev_size, 0, LUKS_TABLE_ATTACHED, &table, &err),
	    -EINVAL);
	assert_non_null(strstr(sb_str(&err), "integrity device"));
	sb_reset(&err);
	assert_int_equal(luks_integrity_table(h, b, "/v", &provided, &dif, &err), 0);
	assert_string_equal(sb_str(&dif), want_dif);
	assert_int_equal(luks_crypt_table(h, vk, n, "/dev/mapper/x_dif", provided * 512, 0,
					  LUKS_TABLE_INTEGRITY_DEV, &table, &err),
			 0);
	{
		/* the key as zeroes, for the comparison */
		char *t = strdup(sb_str(&table)), *k = strstr(t, " 0 /dev/mapper");
		char *sp = k;

		while (sp > t && sp[-1] != ' ')
			sp--;
		memset(sp, '0', (size_t)(k - sp));
		assert_string_equal(t, want_crypt);
		free(t);
	}
	{
		/* wiped: the first and last blocks of the integrity device decrypt to zeroes */
		const uint8_t *d = bs_mem_bdev_data(b);
		struct integrity_sb sb;
		struct integrity_geom g;
		struct bs_aead_spec as;
		struct bs_aead *a;
		const char *why;
		uint8_t buf[4096], zero[4096] = {0};
		bool blank;

		assert_int_equal(integrity_sb_read(b, 2048, &sb, &blank, &why), 0);
		assert_int_equal(integrity_geom_init(&g, &sb, false, 2048, dev_size / 512,
						     dev_size / 512, 7, &why),
				 0);
		assert_true(integrity_geom_fit(&g) >= sb.provided_data_sectors);
		g.provided_data_sectors = sb.provided_data_sectors;
		assert_int_equal(bs_aead_spec_parse(si.dm_cipher, &as, &why), 0);
		assert_int_equal(bs_aead_new(&as, vk, n, si.tag_size, sector, false, &a, &why), 0);
		for (uint64_t l = 0; l < provided; l += provided - sector / 512) {
			uint64_t dsec, toff, left;

			integrity_geom_map(&g, l, &dsec, &toff, &left);
			assert_int_equal(bs_aead_decrypt(a, d + dsec * 512, buf, sector, l, 0,
							 d + toff, NULL, NULL),
					 0);
			assert_memory_equal(buf, zero, sector);
		}
		bs_aead_free(a);
	}
	bs_secure_free(vk);
	luks_free(h);
	sb_free(&err);
	sb_free(&dif);
	sb_free(&table);
	bs_bdev_close(b);
}

static void test_luks2_integrity(void **state)
{
	(void)state;
	/* the sizes are the kernel's for these volumes (tests/fixtures/luks-integrity) */
	integrity_case(
	    3 << 20, "aes-xts-plain64", "hmac-sha256", 64, 512, 96,
	    "0 1952 crypt capi:authenc(hmac(sha256),xts(aes))-plain64 "
	    "000000000000000000000000000000000000000000000000000000000000000000000000000000"
	    "000000000000000000000000000000000000000000000000000000000000000000000000000000"
	    "000000000000000000000000000000000000 0 /dev/mapper/x_dif 0 1 integrity:32:aead",
	    "0 1952 integrity /v 2048 32 J 0");
	integrity_case(8 << 20, "aes-gcm-random", "aead", 32, 4096, 32,
		       "0 13840 crypt capi:gcm(aes)-random "
		       "0000000000000000000000000000000000000000000000000000000000000000 0 "
		       "/dev/mapper/x_dif 0 2 integrity:28:aead sector_size:4096",
		       "0 13840 integrity /v 2048 28 J 1 block_size:4096");
}

static void test_luks2_integrity_refused(void **state)
{
	struct luks_format_opts o = opts2();
	struct strbuf err = STRBUF_INIT;
	struct bs_bdev *b;

	(void)state;
	assert_int_equal(bs_mem_bdev_create("vol", 8 << 20, false, &b), 0);
	assert_null(luks_integrity_name("crc32c"));
	o.integrity = "aead"; /* aes-xts-plain64 is no AEAD */
	assert_int_equal(luks_format(b, 8 << 20, &o, PASS, strlen(PASS), NULL, NULL, &err),
			 -EINVAL);
	sb_reset(&err);
	o.cipher = "aes-gcm-random";
	o.version = 1;
	o.keyslots_size = 0;
	assert_int_equal(luks_format(b, 8 << 20, &o, PASS, strlen(PASS), NULL, NULL, &err),
			 -EINVAL);
	assert_non_null(strstr(sb_str(&err), "only for LUKS2"));
	sb_reset(&err);
	o.version = 2;
	o.detached = true;
	assert_int_equal(luks_format(b, 8 << 20, &o, PASS, strlen(PASS), NULL, NULL, &err),
			 -EINVAL);
	assert_non_null(strstr(sb_str(&err), "detached header"));
	/* nothing was written */
	assert_int_equal(luks_probe(b), 0);
	sb_free(&err);
	bs_bdev_close(b);
}

static void test_luks2_overlap(void **state)
{
	struct bs_bdev *b = fresh(2);
	struct luks_hdr *h;
	int slot;

	(void)state;
	assert_int_equal(load(b, false, &h, NULL, 0), 0);
	add_key(h, PASS, "second", &slot);
	luks_free(h);
	/* the second slot's area moved onto the first */
	mutate(b, "\"offset\":\"163840\"", "\"offset\":\"32768\"");
	refused(b, "keyslots 0 and 1: areas overlap");
	bs_bdev_close(b);
}

static void test_luks2_seqid(void **state)
{
	struct bs_bdev *b = fresh(2);
	uint8_t *d = bs_mem_bdev_data(b);
	uint64_t hs = hdr_size(b);
	uint8_t *old = malloc(2 * hs);
	struct luks_hdr *h;
	int slot;

	(void)state;
	memcpy(old, d, 2 * hs);
	assert_int_equal(load(b, false, &h, NULL, 0), 0);
	add_key(h, PASS, "second", &slot);
	luks_free(h);
	/* the primary goes back to before the key was added: the secondary is newer and wins */
	memcpy(d, old, hs);
	assert_int_equal(load(b, false, &h, NULL, 0), 0);
	assert_int_equal(luks_active_slots(h), 2);
	luks_free(h);
	/* a newer primary wins over an older secondary */
	set_seqid(b, 0, 1000);
	assert_int_equal(load(b, false, &h, NULL, 0), 0);
	assert_int_equal(luks_active_slots(h), 1);
	luks_free(h);
	/* repair brings the stale copy up to date: both say the same afterwards */
	assert_int_equal(load(b, true, NULL, NULL, 0), 0);
	assert_memory_equal(d + LUKS2_HDR_BIN_LEN, d + hs + LUKS2_HDR_BIN_LEN,
			    hs - LUKS2_HDR_BIN_LEN);
	assert_memory_equal(d + LUKS2_OFF_SEQID, d + hs + LUKS2_OFF_SEQID, 8);
	free(old);
	bs_bdev_close(b);
}

static void test_luks2_unknown_json_kept(void **state)
{
	struct bs_bdev *b = fresh(2);
	struct luks_hdr *h;
	char *j;
	int slot;

	(void)state;
	mutate(b, "\"config\":{", "\"x-future\":{\"a\":[1,2]},\"config\":{\"x-cfg\":true,");
	assert_int_equal(load(b, false, &h, NULL, 0), 0);
	add_key(h, PASS, "second", &slot);
	luks_free(h);
	for (int w = 0; w < 2; w++) {
		j = get_json(b, w);
		assert_non_null(strstr(j, "\"x-future\":{\"a\":[1,2]}"));
		assert_non_null(strstr(j, "\"x-cfg\":true"));
		free(j);
	}
	bs_bdev_close(b);
}

static void test_luks2_segment_range(void **state)
{
	struct strbuf err = STRBUF_INIT, table = STRBUF_SECURE_INIT;
	struct bs_bdev *b;
	struct luks_hdr *h;
	uint8_t *vk;
	size_t n;
	int s;

	(void)state;
	b = fresh(2);
	assert_int_equal(load(b, false, &h, NULL, 0), 0);
	assert_int_equal(luks_unlock(h, 0, PASS, strlen(PASS), &vk, &n, &s, &err), 0);
	assert_int_equal(
	    luks_crypt_table(h, vk, n, "/data img", DEV_SIZE, 0, LUKS_TABLE_DISCARDS, &table, &err),
	    0);
	{
		char want[512], hex[65];

		for (size_t i = 0; i < n; i++)
			sprintf(hex + 2 * i, "%02x", vk[i]);
		snprintf(want, sizeof(want),
			 "0 6144 crypt aes-xts-plain64 %s 0 /data\\ img 2048 1 allow_discards",
			 hex);
		assert_string_equal(sb_str(&table), want);
	}
	/* LUKS2 persistent activation flags become crypt options */
	luks_free(h);
	mutate(b, "\"config\":{",
	       "\"config\":{\"flags\":[\"no-read-workqueue\",\"x-unknown\",\"allow-discards\"],");
	assert_int_equal(load(b, false, &h, NULL, 0), 0);
	sb_reset(&table);
	assert_int_equal(luks_crypt_table(h, vk, n, "/d", DEV_SIZE, 0, 0, &table, &err), 0);
	assert_non_null(strstr(sb_str(&table), " /d 2048 2 allow_discards no_read_workqueue"));
	/* the data device is smaller than the data offset */
	assert_int_equal(luks_crypt_table(h, vk, n, "/d", 1u << 20, 0, 0, &table, &err), -EINVAL);
	assert_non_null(strstr(sb_str(&err), "beyond the end of the data device"));
	{
		char id[160];

		luks_dm_uuid(h, "vol", id, sizeof(id));
		assert_string_equal(id, "CRYPT-LUKS2-0c1d2e3f4a5b4c6d8e7f8091a2b3c4d5-vol");
	}
	luks_free(h);
	/* a fixed-size segment that runs past the device */
	mutate(b, "\"size\":\"dynamic\"", "\"size\":\"1099511627776\"");
	assert_int_equal(load(b, false, &h, NULL, 0), 0);
	assert_int_equal(luks_crypt_table(h, vk, n, "/d", DEV_SIZE, 0, 0, &table, &err), -EINVAL);
	assert_non_null(strstr(sb_str(&err), "extends beyond the end of the data device"));
	luks_free(h);
	/* a segment offset far beyond the device */
	mutate(b, "\"offset\":\"1048576\"", "\"offset\":\"1099511627776\"");
	assert_int_equal(load(b, false, &h, NULL, 0), 0);
	assert_int_equal(luks_crypt_table(h, vk, n, "/d", DEV_SIZE, 0, 0, &table, &err), -EINVAL);
	assert_non_null(strstr(sb_str(&err), "beyond the end of the data device"));
	luks_free(h);
	bs_secure_free(vk);
	sb_free(&err);
	sb_free(&table);
	bs_bdev_close(b);
}

static void test_luks2_change_key(void **state)
{
	struct luks_pbkdf_opts pb = {
	    .type = BS_ARGON2ID, .type_set = true, .iterations = 4, .memory_kb = 32, .parallel = 1};
	struct strbuf err = STRBUF_INIT;
	struct bs_bdev *b = fresh(2);
	struct luks_hdr *h;
	uint8_t *vk;
	size_t n;
	int s, slot;

	(void)state;
	assert_int_equal(load(b, false, &h, NULL, 0), 0);
	add_key(h, PASS, "second", &slot);
	assert_int_equal(luks_unlock(h, 1, "second", 6, &vk, &n, &s, &err), 0);
	assert_int_equal(luks_change_key(h, 1, vk, n, "third", 5, &pb, &slot, &err), 0);
	assert_int_equal(slot, 1); /* LUKS2 keeps the slot number */
	bs_secure_free(vk);
	luks_free(h);
	assert_int_equal(load(b, false, &h, NULL, 0), 0);
	assert_int_equal(luks_active_slots(h), 2);
	assert_int_equal(unlock(h, "second", NULL), -EPERM);
	assert_int_equal(unlock(h, "third", &s), 0);
	assert_int_equal(s, 1);
	assert_int_equal(unlock(h, PASS, &s), 0);
	luks_free(h);
	sb_free(&err);
	bs_bdev_close(b);
}

static void test_luks2_read_only(void **state)
{
	struct bs_bdev *b = fresh(2), *ro;

	(void)state;
	/* a damaged copy on a read-only device: readable, left alone */
	bs_mem_bdev_data(b)[LUKS2_HDR_BIN_LEN + 3] ^= 1;
	assert_int_equal(bs_mem_bdev_create("ro", DEV_SIZE, true, &ro), 0);
	memcpy(bs_mem_bdev_data(ro), bs_mem_bdev_data(b), DEV_SIZE);
	assert_int_equal(load(ro, true, NULL, NULL, 0), 0);
	assert_memory_equal(bs_mem_bdev_data(ro), bs_mem_bdev_data(b), 2 * hdr_size(b));
	bs_bdev_close(ro);
	bs_bdev_close(b);
}

static void test_not_luks(void **state)
{
	struct bs_bdev *b;

	(void)state;
	assert_int_equal(bs_mem_bdev_create("zero", DEV_SIZE, false, &b), 0);
	refused(b, "is not a valid LUKS device");
	bs_bdev_close(b);
	assert_int_equal(bs_mem_bdev_create("tiny", 100, false, &b), 0);
	refused(b, "is not a valid LUKS device");
	bs_bdev_close(b);
}

/* ---- LUKS1 ------------------------------------------------------------------------------ */

static void put_be32(struct bs_bdev *b, size_t off, uint32_t v)
{
	v = htobe32(v);
	memcpy(bs_mem_bdev_data(b) + off, &v, 4);
}

static void test_luks1(void **state)
{
	struct bs_bdev *b = fresh(1);
	struct luks_hdr *h;
	int slot;

	(void)state;
	assert_int_equal(luks_probe(b), 1);
	assert_int_equal(load(b, false, &h, NULL, 0), 0);
	assert_int_equal(luks_version(h), 1);
	assert_true(luks_data_offset(h) == 4096 * 512);
	assert_int_equal(unlock(h, PASS, &slot), 0);
	assert_int_equal(unlock(h, "nope", NULL), -EPERM);
	add_key(h, PASS, "second", &slot);
	assert_int_equal(slot, 1);
	luks_free(h);
	assert_int_equal(load(b, false, &h, NULL, 0), 0);
	assert_int_equal(unlock(h, "second", &slot), 0);
	assert_int_equal(slot, 1);
	{
		struct luks_pbkdf_opts pb = {.type = BS_PBKDF2, .iterations = 1000};
		struct strbuf err = STRBUF_INIT;
		uint8_t *vk;
		size_t n;
		int s;

		/* LUKS1 change-key moves to the first free slot */
		assert_int_equal(luks_unlock(h, 0, PASS, strlen(PASS), &vk, &n, &s, &err), 0);
		assert_int_equal(luks_change_key(h, 0, vk, n, "third", 5, &pb, &slot, &err), 0);
		assert_int_equal(slot, 2);
		assert_false(luks_slot_active(h, 0));
		bs_secure_free(vk);
		sb_free(&err);
	}
	luks_free(h);
	bs_bdev_close(b);
}

static void test_luks1_hostile(void **state)
{
	const size_t kb0 = LUKS1_OFF_KEYBLOCK;
	struct bs_bdev *b;

	(void)state;
	b = fresh(1);
	bs_mem_bdev_data(b)[3] = 'X';
	refused(b, "is not a valid LUKS device");
	bs_bdev_close(b);

	b = fresh(1);
	bs_mem_bdev_data(b)[LUKS1_OFF_VERSION + 1] = 3;
	refused(b, "unsupported LUKS version 3");
	bs_bdev_close(b);

	b = fresh(1);
	put_be32(b, LUKS1_OFF_KEY_BYTES, 0);
	refused(b, "invalid key size (0 bytes)");
	bs_bdev_close(b);

	b = fresh(1);
	put_be32(b, LUKS1_OFF_KEY_BYTES, 100000);
	refused(b, "invalid key size");
	bs_bdev_close(b);

	b = fresh(1);
	put_be32(b, LUKS1_OFF_KEY_BYTES, 24); /* not a valid XTS key size */
	refused(b, "invalid key size 192 bits");
	bs_bdev_close(b);

	b = fresh(1);
	put_be32(b, kb0 + 3 * LUKS1_KEYBLOCK_SIZE + LUKS1_KB_OFF_STRIPES, 3999);
	refused(b, "key slot 3 has 3999 AF stripes");
	bs_bdev_close(b);

	b = fresh(1);
	put_be32(b, kb0 + LUKS1_KEYBLOCK_SIZE + LUKS1_KB_OFF_KEY_MATERIAL, 10);
	refused(b, "overlap");
	bs_bdev_close(b);

	b = fresh(1);
	put_be32(b, kb0 + 7 * LUKS1_KEYBLOCK_SIZE + LUKS1_KB_OFF_KEY_MATERIAL, 4000);
	refused(b, "reaches into the data area");
	bs_bdev_close(b);

	b = fresh(1);
	put_be32(b, kb0 + LUKS1_KB_OFF_ACTIVE, 0x1234);
	refused(b, "invalid state");
	bs_bdev_close(b);

	b = fresh(1);
	memset(bs_mem_bdev_data(b) + LUKS1_OFF_HASH_SPEC, 'a', LUKS_HASHSPEC_L);
	refused(b, "unterminated");
	bs_bdev_close(b);

	b = fresh(1);
	strcpy((char *)bs_mem_bdev_data(b) + LUKS1_OFF_HASH_SPEC, "md5");
	refused(b, "hash \"md5\" is not supported");
	bs_bdev_close(b);

	b = fresh(1);
	strcpy((char *)bs_mem_bdev_data(b) + LUKS1_OFF_CIPHER_NAME, "serpent");
	refused(b, "unsupported cipher");
	bs_bdev_close(b);

	/* the key slots reach beyond the end of a truncated device */
	b = fresh(1);
	{
		struct bs_bdev *small;

		assert_int_equal(bs_mem_bdev_create("small", 64 << 10, false, &small), 0);
		memcpy(bs_mem_bdev_data(small), bs_mem_bdev_data(b), 64 << 10);
		refused(small, "device too small for the LUKS1 key slots");
		bs_bdev_close(small);
	}
	bs_bdev_close(b);
}

static void test_format_checks(void **state)
{
	struct strbuf err = STRBUF_INIT;
	struct luks_format_opts o = opts2();
	struct bs_bdev *b;

	(void)state;
	assert_int_equal(bs_mem_bdev_create("mem", DEV_SIZE, false, &b), 0);
	o.uuid = "not-a-uuid";
	assert_int_equal(luks_format(b, DEV_SIZE, &o, "p", 1, NULL, NULL, &err), -EINVAL);
	assert_string_equal(sb_str(&err), "Wrong LUKS UUID format provided.");
	o = opts2();
	o.key_bytes = 20;
	assert_int_equal(luks_format(b, DEV_SIZE, &o, "p", 1, NULL, NULL, &err), -EINVAL);
	o = opts2();
	o.cipher = "twofish-xts-plain64";
	assert_int_equal(luks_format(b, DEV_SIZE, &o, "p", 1, NULL, NULL, &err), -EINVAL);
	o = opts2();
	o.pbkdf.iterations = 10;
	assert_int_equal(luks_format(b, DEV_SIZE, &o, "p", 1, NULL, NULL, &err), -EINVAL);
	assert_non_null(strstr(sb_str(&err), "too low"));
	o = opts2();
	o.sector_size = 4096;
	assert_int_equal(luks_format(b, DEV_SIZE - 512, &o, "p", 1, NULL, NULL, &err), -EINVAL);
	assert_non_null(strstr(sb_str(&err), "not aligned to requested sector size"));
	o = opts2();
	o.version = 1;
	o.pbkdf.type = BS_ARGON2ID;
	o.keyslots_size = 0;
	assert_int_equal(luks_format(b, DEV_SIZE, &o, "p", 1, NULL, NULL, &err), -EINVAL);
	/* nothing of the refused formats reached the device */
	assert_int_equal(luks_probe(b), 0);
	sb_free(&err);
	bs_bdev_close(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_luks2_round_trip),
	    cmocka_unit_test(test_luks2_checksums),
	    cmocka_unit_test(test_luks2_json),
	    cmocka_unit_test(test_luks2_hostile),
	    cmocka_unit_test(test_luks2_overlap),
	    cmocka_unit_test(test_luks2_requirement_one_copy),
	    cmocka_unit_test(test_detached_table),
	    cmocka_unit_test(test_luks2_seqid),
	    cmocka_unit_test(test_luks2_unknown_json_kept),
	    cmocka_unit_test(test_luks2_segment_range),
	    cmocka_unit_test(test_luks2_change_key),
	    cmocka_unit_test(test_luks2_read_only),
	    cmocka_unit_test(test_not_luks),
	    cmocka_unit_test(test_luks1),
	    cmocka_unit_test(test_luks1_hostile),
	    cmocka_unit_test(test_format_checks),
	    cmocka_unit_test(test_luks2_integrity),
	    cmocka_unit_test(test_luks2_integrity_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
