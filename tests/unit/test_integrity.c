/*
 * test_integrity.c - dm-integrity metadata (formats/integrity_sb.c, integrity_hash.c).
 *
 *   - a superblock the kernel wrote parses into its fields and encodes back byte for byte;
 *     hostile superblocks are refused, each with a reason;
 *   - the superblocks `integritysetup format` made in the kernel for many sizes and options
 *     (tests/fixtures/integrity/formats.txt) are what integrity_sb_create computes;
 *   - tags: known answers for every hash (computed with Python's hashlib/hmac, a bitwise
 *     CRC-32C and xxhsum), salted and not, truncated and padded;
 *   - journal entries: the bytes of an entry, the last-bytes swap around commit ids, the scan
 *     of a journal ring after clean and torn commits, and replay onto a device;
 *   - the kernel's fixture images: every tag of every block verifies, and the data hashes
 *     to the sha256 recorded when the kernel wrote it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "engine/bdev.h"
#include "engine/mem_bdev.h"
#include "formats/integrity_hash.h"
#include "formats/integrity_sb.h"
#include "util/strbuf.h"

static char fixdir[1024];

static bool find_fixtures(void)
{
	char exe[900];
	struct stat st;
	ssize_t n;

	if (!stat("tests/fixtures/integrity/formats.txt", &st)) {
		snprintf(fixdir, sizeof(fixdir), "tests/fixtures/integrity");
		return true;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = '\0';
	for (char *slash = strrchr(exe, '/'); slash; slash = strrchr(exe, '/')) {
		*slash = '\0';
		snprintf(fixdir, sizeof(fixdir), "%s/tests/fixtures/integrity/formats.txt", exe);
		if (!stat(fixdir, &st)) {
			snprintf(fixdir, sizeof(fixdir), "%s/tests/fixtures/integrity", exe);
			return true;
		}
	}
	return false;
}

static void unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

/* ---- superblock ---------------------------------------------------------------------------- */

/* The first 64 bytes of an 8 MiB image `integritysetup format` made in Linux 6.1. */
static const char kernel_sb_hex[] = "696e746567727400050f040001000000"
				    "483e00000000000018000000000f0000"
				    "00000000000000000000000000000000"
				    "8f9cef0774aaac9b3894151e969b660e";

static void kernel_sb(uint8_t *buf)
{
	char hex[256];
	size_t o = 0;

	for (const char *p = kernel_sb_hex; *p; p++)
		if (*p != ' ')
			hex[o++] = *p;
	hex[o] = '\0';
	memset(buf, 0, SB_SECTORS * 512);
	unhex(hex, buf, SB_STRUCT_SIZE);
}

static void test_sb_kernel(void **state)
{
	uint8_t *buf = malloc(SB_SECTORS * 512), *again = malloc(SB_SECTORS * 512);
	struct integrity_sb sb;
	struct strbuf out = STRBUF_INIT;
	const char *why = NULL;

	(void)state;
	kernel_sb(buf);
	assert_int_equal(integrity_sb_decode(buf, &sb, &why), 0);
	assert_int_equal(sb.version, 5);
	assert_int_equal(sb.log2_interleave_sectors, 15);
	assert_int_equal(sb.tag_size, 4);
	assert_int_equal(sb.journal_sections, 1);
	assert_int_equal(sb.provided_data_sectors, 15944);
	assert_int_equal(sb.flags, SB_FLAG_FIXED_PADDING | SB_FLAG_FIXED_HMAC);
	assert_int_equal(sb.log2_sectors_per_block, 0);
	assert_int_equal(sb.log2_blocks_per_bitmap_bit, 15);
	assert_int_equal(sb.recalc_sector, 0);
	assert_int_equal(sb.salt[0], 0x8f);
	assert_int_equal(sb.salt[15], 0x0e);
	integrity_sb_encode(&sb, again);
	assert_memory_equal(buf, again, SB_SECTORS * 512);
	integrity_sb_dump(&sb, "a.img", &out);
	assert_string_equal(sb_str(&out), "Info for integrity device a.img.\n"
					  "superblock_version 5\n"
					  "log2_interleave_sectors 15\n"
					  "integrity_tag_size 4\n"
					  "journal_sections 1\n"
					  "provided_data_sectors 15944\n"
					  "sector_size 512\n"
					  "log2_blocks_per_bitmap 15\n"
					  "flags fix_padding fix_hmac \n");
	sb_free(&out);
	/* recalculating: the line integritysetup 2.6 adds */
	sb.flags |= SB_FLAG_RECALCULATING | SB_FLAG_DIRTY_BITMAP;
	sb.recalc_sector = 1234;
	integrity_sb_dump(&sb, "a.img", &out);
	assert_non_null(strstr(sb_str(&out), "sector_size 512\nrecalc_sector 1234\nlog2_blocks"));
	assert_non_null(strstr(sb_str(&out), "flags recalculating dirty_bitmap fix_padding"));
	sb_free(&out);
	free(buf);
	free(again);
}

static void test_sb_hostile(void **state)
{
	static const struct {
		unsigned off;
		uint8_t val;
		int err;
		const char *why;
	} cases[] = {
	    {0, 'X', -ENOENT, "magic"},
	    {7, 1, -ENOENT, "magic"},
	    {SBO_VERSION, 0, -EINVAL, "version"},
	    {SBO_VERSION, 6, -EINVAL, "inline"},
	    {SBO_VERSION, 7, -EINVAL, "version"},
	    {SBO_INTEGRITY_TAG_SIZE, 0, -EINVAL, "tag size"},
	    {SBO_INTEGRITY_TAG_SIZE + 1, 2, -EINVAL, "tag size"}, /* 516 > 424 */
	    {SBO_LOG2_SECTORS_PER_BLOCK, 4, -EINVAL, "block size"},
	    {SBO_JOURNAL_SECTIONS, 0, -EINVAL, "journal_sections"},
	    {SBO_LOG2_INTERLEAVE_SECTORS, 32, -EINVAL, "interleave"},
	    {SBO_FLAGS, SB_FLAG_INLINE, -EINVAL, "inline"},
	};
	uint8_t *buf = malloc(SB_SECTORS * 512);

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct integrity_sb sb;
		const char *why = NULL;

		kernel_sb(buf);
		buf[cases[i].off] = cases[i].val;
		assert_int_equal(integrity_sb_decode(buf, &sb, &why), cases[i].err);
		assert_non_null(why);
		assert_non_null(strstr(why, cases[i].why));
	}
	free(buf);
}

/* integrity_sb_create must give the superblocks the kernel made (formats.txt). */
static void test_sb_create_matches_kernel(void **state)
{
	char path[1200], line[256], spec[256] = "";
	struct integrity_sb want = {0};
	unsigned checked = 0;
	bool have = false;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/formats.txt", fixdir);
	f = fopen(path, "r");
	assert_non_null(f);
	for (bool more = true; more;) {
		more = fgets(line, sizeof(line), f) != NULL;
		if (!more || !strncmp(line, "== ", 3)) {
			if (have) {
				struct integrity_format_params p = {
				    .alg = "crc32c", .fix_padding = true, .fix_hmac = true};
				struct integrity_geom g;
				struct integrity_sb got;
				uint64_t size = 0, msize = 0;
				const char *why = NULL;
				char *o = strchr(spec, '|'), *tok;
				bool meta = !strncmp(spec, "META", 4);
				char unit;

				if (meta) {
					size = 16ull << 20; /* DATA 16M */
					msize = 1ull << 20;
				} else {
					assert_int_equal(
					    sscanf(spec, "%" SCNu64 "%c", &size, &unit), 2);
					size <<= unit == 'M' ? 20 : 10;
				}
				for (tok = strtok(o + 1, " \n"); tok; tok = strtok(NULL, " \n")) {
					char *v = strtok(NULL, " \n");

					if (!strcmp(tok, "--integrity-legacy-padding")) {
						p.fix_padding = false;
						if (v)
							tok = v, v = strtok(NULL, " \n");
						else
							break;
					}
					if (!strcmp(tok, "--integrity-legacy-hmac")) {
						p.fix_hmac = false;
						if (v)
							tok = v, v = strtok(NULL, " \n");
						else
							break;
					}
					if (!strcmp(tok, "--data-device"))
						break;
					assert_non_null(v);
					if (!strcmp(tok, "--journal-size"))
						p.journal_sectors = strtoull(v, NULL, 10) / 512;
					else if (!strcmp(tok, "--interleave-sectors"))
						p.interleave_sectors =
						    (uint32_t)strtoul(v, NULL, 10);
					else if (!strcmp(tok, "--integrity"))
						p.alg = !strcmp(v, "sha512")	 ? "sha512"
							: !strcmp(v, "xxhash64") ? "xxhash64"
										 : "sha1";
					else if (!strcmp(tok, "--sector-size"))
						p.sector_size = (unsigned)strtoul(v, NULL, 10);
					else if (!strcmp(tok, "--tag-size"))
						p.tag_size = (unsigned)strtoul(v, NULL, 10);
					else
						fail_msg("unknown option %s in formats.txt", tok);
				}
				assert_int_equal(integrity_sb_create(&p, meta, 0, size >> 9,
								     meta ? msize >> 9 : size >> 9,
								     NULL, &got, &g, &why),
						 0);
				if (got.version != want.version ||
				    got.log2_interleave_sectors != want.log2_interleave_sectors ||
				    got.tag_size != want.tag_size ||
				    got.journal_sections != want.journal_sections ||
				    got.provided_data_sectors != want.provided_data_sectors ||
				    got.log2_sectors_per_block != want.log2_sectors_per_block ||
				    got.log2_blocks_per_bitmap_bit !=
					want.log2_blocks_per_bitmap_bit ||
				    got.flags != want.flags)
					fail_msg(
					    "%s: got v%u il%u tag %u sections %u provided %llu "
					    "spb %u bpb %u flags %x",
					    spec, got.version, got.log2_interleave_sectors,
					    got.tag_size, got.journal_sections,
					    (unsigned long long)got.provided_data_sectors,
					    got.log2_sectors_per_block,
					    got.log2_blocks_per_bitmap_bit, got.flags);
				checked++;
			}
			if (more) {
				snprintf(spec, sizeof(spec), "%s", line + 3);
				memset(&want, 0, sizeof(want));
				have = true;
			}
			continue;
		}
		{
			unsigned long long v;
			char key[64];

			if (!strncmp(line, "flags", 5)) {
				want.flags =
				    (strstr(line, "fix_padding") ? SB_FLAG_FIXED_PADDING : 0) |
				    (strstr(line, "fix_hmac") ? SB_FLAG_FIXED_HMAC : 0);
				continue;
			}
			if (sscanf(line, "%63s %llu", key, &v) != 2)
				continue;
			if (!strcmp(key, "superblock_version"))
				want.version = (uint8_t)v;
			else if (!strcmp(key, "log2_interleave_sectors"))
				want.log2_interleave_sectors = (uint8_t)v;
			else if (!strcmp(key, "integrity_tag_size"))
				want.tag_size = (uint16_t)v;
			else if (!strcmp(key, "journal_sections"))
				want.journal_sections = (uint32_t)v;
			else if (!strcmp(key, "provided_data_sectors"))
				want.provided_data_sectors = v;
			else if (!strcmp(key, "sector_size"))
				want.log2_sectors_per_block = (uint8_t)__builtin_ctzll(v >> 9);
			else if (!strcmp(key, "log2_blocks_per_bitmap"))
				want.log2_blocks_per_bitmap_bit = (uint8_t)v;
		}
	}
	fclose(f);
	assert_true(checked >= 12);
}

/* ---- tags ---------------------------------------------------------------------------------- */

static uint8_t d512[512], d4k[4096], salt[16], key32[32], key200[200];

static void setup_data(void)
{
	for (int i = 0; i < 512; i++)
		d512[i] = (uint8_t)(i * 7 + 3);
	for (int i = 0; i < 4096; i++)
		d4k[i] = (uint8_t)(i * 13 + 1);
	for (int i = 0; i < 16; i++)
		salt[i] = (uint8_t)i;
	for (int i = 0; i < 32; i++)
		key32[i] = (uint8_t)(0x20 + i);
	for (int i = 0; i < 200; i++)
		key200[i] = (uint8_t)(i * 3);
}

static void check_tag(const char *alg, const uint8_t *key, size_t klen, const uint8_t *s,
		      uint64_t sector, unsigned spb, const uint8_t *data, unsigned tag_size,
		      const char *want_hex)
{
	struct integrity_hash *h;
	const char *why = NULL;
	uint8_t tag[512], want[512];

	assert_int_equal(integrity_hash_new(alg, key, klen, s, &h, &why), 0);
	memset(tag, 0xaa, sizeof(tag));
	integrity_hash_tags(h, sector, spb, data, 1, tag, tag_size);
	unhex(want_hex, want, tag_size);
	if (memcmp(tag, want, tag_size))
		fail_msg("%s tag mismatch", alg);
	assert_int_equal(tag[tag_size], 0xaa); /* nothing written past the tag */
	integrity_hash_free(h);
}

static void test_tags_known_answers(void **state)
{
	(void)state;
	setup_data();
	check_tag("crc32c", NULL, 0, salt, 12345, 1, d512, 4, "ea0385bd");
	check_tag("crc32c", NULL, 0, NULL, 12345, 1, d512, 4, "0bb2f568");
	check_tag("crc32c", NULL, 0, salt, 12345, 1, d512, 8, "ea0385bd00000000"); /* padded */
	check_tag("sha256", NULL, 0, salt, 56, 8, d4k, 32,
		  "09a154a54c2c7ec9d78ac46092603a8069832c9175e897c9725b7737c105c5de");
	check_tag("sha256", NULL, 0, salt, 56, 8, d4k, 16, /* truncated */
		  "09a154a54c2c7ec9d78ac46092603a80");
	check_tag("sha1", NULL, 0, salt, 12345, 1, d512, 20,
		  "c3d62dc3e39fc4146dc98da129bd397fe036c448");
	check_tag("sha512", NULL, 0, NULL, 12345, 1, d512, 64,
		  "b16660b42a2f820c8268841569ae79fb74f49a1ed14720897c4ec984dc4e40bb"
		  "fe7732e1eda7a37ec4f40dfa4e57c53dca6740e12479200380d89da5ebe36ed0");
	check_tag("hmac(sha256)", key32, 32, salt, 12345, 1, d512, 32,
		  "0eaecdb371390bcf371de697c15faada73f53a46ff59f92fbe1653de0034bdb4");
	check_tag("hmac(sha256)", key32, 32, NULL, 12345, 1, d512, 32,
		  "da4485c5c5f85aab3505de485b0e6b401ef2841bd7020aa55b34b30b12d487a0");
	check_tag("hmac(sha1)", key32, 20, salt, 12345, 1, d512, 20,
		  "4f66f83e1ff772df37a5d0274381ec5d9ab0d1ad");
	check_tag("hmac(sha512)", key200, 200, salt, 12345, 1, d512, 64, /* key > block size */
		  "b29f830309fb3ff6023db98146067cc6fc2b2fcd50dc0d499e72a49ab049699f"
		  "9c015ef78bc5dccd24ef78e4752f48cc9bf1f3dfe9345b45799938c2dc8edbed");
	/* xxhsum -H1 prints the value; the tag is its little-endian bytes */
	check_tag("xxhash64", NULL, 0, salt, 12345, 1, d512, 8, "4d0471d92c4eb30e");
	check_tag("xxhash64", NULL, 0, NULL, 12345, 1, d512, 8, "9689e671a450b121");
	{
		uint8_t b[100];

		for (int i = 0; i < 100; i++)
			b[i] = (uint8_t)i;
		assert_true(integrity_xxh64(b, 100, 0) == 0x6ac1e58032166597ull);
		assert_true(integrity_xxh64("", 0, 0) == 0xef46db3751d8e999ull);
		assert_true(integrity_xxh64("abc", 3, 0) == 0x44bc2cf5ad770999ull);
	}
}

static void test_tags_batch_and_errors(void **state)
{
	struct integrity_hash *h;
	const char *why = NULL;
	uint8_t data[2048], tags[4 * 4], one[4];

	(void)state;
	setup_data();
	/* a batch is the tags of its blocks, each with its own sector */
	for (int i = 0; i < 4; i++)
		memcpy(data + 512 * i, d512, 512);
	assert_int_equal(integrity_hash_new("crc32c", NULL, 0, salt, &h, &why), 0);
	integrity_hash_tags(h, 12344, 1, data, 4, tags, 4);
	unhex("ea0385bd", one, 4);
	assert_memory_equal(tags + 4, one, 4);
	unhex("3fdae6af", one, 4);
	assert_memory_equal(tags + 8, one, 4);
	integrity_hash_free(h);

	assert_int_equal(integrity_hash_new("md5", NULL, 0, NULL, &h, &why), -EINVAL);
	assert_non_null(why);
	assert_int_equal(integrity_hash_new("hmac(sha256)", NULL, 0, NULL, &h, &why), -EINVAL);
	assert_int_equal(integrity_hash_new("crc32c", key32, 4, NULL, &h, &why), -EINVAL);
	assert_string_equal(integrity_hash_from_user("hmac-sha256"), "hmac(sha256)");
	assert_string_equal(integrity_hash_from_user("crc32c"), "crc32c");
	assert_null(integrity_hash_from_user("crc32"));
}

/* ---- journal ------------------------------------------------------------------------------- */

static void geom_for(struct integrity_geom *g, unsigned tag, unsigned log2_spb, uint32_t sections)
{
	struct integrity_sb sb = {.tag_size = (uint16_t)tag,
				  .log2_sectors_per_block = (uint8_t)log2_spb,
				  .log2_interleave_sectors = 15,
				  .journal_sections = sections,
				  .flags = SB_FLAG_FIXED_PADDING};
	const char *why = NULL;

	assert_int_equal(integrity_geom_init(g, &sb, false, 0, 65536, 65536, 7, &why), 0);
	assert_true(integrity_geom_fit(g) > 0);
}

static void test_journal_entry(void **state)
{
	struct integrity_geom g;
	uint8_t *j, blk[512], out[512], tag[4] = {1, 2, 3, 4};

	(void)state;
	geom_for(&g, 4, 0, 2);
	assert_int_equal(g.journal_entry_size, 24);
	assert_int_equal(g.entries_per_sector, 21);
	assert_int_equal(g.section_entries, 168);
	assert_int_equal(g.section_sectors, 176);
	j = calloc(1, (size_t)g.journal_sections * g.section_sectors * 512);
	integrity_journal_init(&g, j, 0, 2, 0);
	assert_true(ij_entry_unused(ij_entry(&g, j, 1, 9)));
	/* entry 9 of section 1: entry sector 1, slot 1 */
	assert_ptr_equal(ij_entry(&g, j, 1, 9), j + (176 + 1) * 512 + 24);
	for (int i = 0; i < 512; i++)
		blk[i] = (uint8_t)(i ^ 0x5a);
	ij_entry_fill(&g, j, 1, 9, 1000, blk, tag);
	{
		const uint8_t *e = ij_entry(&g, j, 1, 9);

		assert_true(ij_get_le64(e) == 1000);		     /* sector */
		assert_memory_equal(e + 8, blk + 504, 8);	     /* last_bytes[0] */
		assert_memory_equal(e + 16, tag, 4);		     /* tag */
		assert_memory_equal(ij_data(&g, j, 1, 9), blk, 512); /* data sector 8 + 9 */
		assert_ptr_equal(ij_data(&g, j, 1, 9), j + (176 + 8 + 9) * 512);
	}
	/* the commit id takes the data sector's last 8 bytes; reading restores them */
	integrity_journal_stamp(&g, j, 1, 1, 2);
	assert_true(ij_sector_commit_id(ij_data(&g, j, 1, 9)) ==
		    (0x3333333333333333ull ^ ((1ull << 32) ^ (8 + 9))));
	ij_entry_read(&g, j, 1, 9, out);
	assert_memory_equal(out, blk, 512);
	ij_entry_restore(&g, j, 1, 9);
	assert_memory_equal(ij_data(&g, j, 1, 9), blk, 512);
	/* 4 KiB blocks: 8 last_bytes per entry */
	free(j);
	geom_for(&g, 32, 3, 1);
	assert_int_equal(g.journal_entry_size, 8 + 64 + 32);
	assert_int_equal(g.section_sectors, 4 * 8 * 8 + 8);
}

static void test_journal_scan(void **state)
{
	struct integrity_journal_scan s;
	struct integrity_geom g;
	const char *why = NULL;
	uint8_t *j, blk[512] = {0}, tag[4] = {0};

	(void)state;
	geom_for(&g, 4, 0, 4);
	j = calloc(1, (size_t)g.journal_sections * g.section_sectors * 512);

	/* freshly formatted: one pass of sequence 0, empty, continue at 0 with sequence 1 */
	integrity_journal_init(&g, j, 0, 4, 0);
	assert_int_equal(integrity_journal_scan(&g, j, &s, &why), 0);
	assert_true(s.empty);
	assert_int_equal(s.write_start, 0);
	assert_int_equal(s.write_sections, 4);
	assert_int_equal(s.want_seq, 1);

	/* sections 0 and 1 committed with sequence 1 (a new pass): replay from 2 */
	ij_entry_fill(&g, j, 1, 0, 8, blk, tag);
	integrity_journal_stamp(&g, j, 0, 2, 1);
	assert_int_equal(integrity_journal_scan(&g, j, &s, &why), 0);
	assert_false(s.empty);
	assert_int_equal(s.write_start, 2);
	assert_int_equal(s.write_sections, 4);

	/* a torn commit of section 2: the replay stops before it */
	for (unsigned q = 0; q < g.section_sectors; q += 2)
		ij_put_le64(ij_sector(&g, j, 2, q) + JOURNAL_SECTOR_DATA, ij_commit_id(2, q, 1));
	assert_int_equal(integrity_journal_scan(&g, j, &s, &why), 0);
	assert_int_equal(s.write_start, 3);
	assert_int_equal(s.write_sections, 3); /* 3, 0, 1 */

	/* a commit id of no sequence: refused (the journal is then cleared) */
	ij_put_le64(ij_sector(&g, j, 3, 5) + JOURNAL_SECTOR_DATA, 0x1234);
	assert_int_equal(integrity_journal_scan(&g, j, &s, &why), -EIO);
	assert_non_null(why);

	/* every sequence in use at once cannot happen: refused */
	integrity_journal_init(&g, j, 0, 4, 0);
	integrity_journal_stamp(&g, j, 1, 1, 1);
	integrity_journal_stamp(&g, j, 2, 1, 2);
	integrity_journal_stamp(&g, j, 3, 1, 3);
	assert_int_equal(integrity_journal_scan(&g, j, &s, &why), -EIO);
	free(j);
}

/* Formats a memory device, puts blocks in the journal, recovers: they land in place. */
static void test_format_and_replay(void **state)
{
	struct integrity_format_params p = {.alg = "crc32c", .fix_padding = true, .fix_hmac = true};
	struct integrity_journal_state st;
	struct integrity_geom g;
	struct integrity_sb sb, back;
	struct integrity_hash *h;
	struct bs_bdev *dev;
	const char *why = NULL;
	uint8_t *j, *mem, blk[512], tag[4], want[4];
	uint64_t dsec, toff, left;

	(void)state;
	assert_int_equal(bs_mem_bdev_create("t", 4 << 20, false, &dev), 0);
	mem = bs_mem_bdev_data(dev);
	memset(mem, 0x77, 4 << 20); /* garbage that the wipe must replace */
	p.journal_sectors = 1024;
	assert_int_equal(integrity_sb_create(&p, false, 0, 8192, 8192, NULL, &sb, &g, &why), 0);
	assert_int_equal(integrity_hash_new("crc32c", NULL, 0, sb.salt, &h, &why), 0);
	assert_int_equal(integrity_format_write(dev, dev, &g, &sb, h, true, 'J', &why), 0);
	assert_int_equal(integrity_sb_read(dev, 0, &back, NULL, &why), 0);
	assert_int_equal(back.provided_data_sectors, sb.provided_data_sectors);
	assert_memory_equal(back.salt, sb.salt, 16);

	/* after the wipe: zeroes with their tags */
	integrity_geom_map(&g, 5, &dsec, &toff, &left);
	for (unsigned i = 0; i < 512; i++)
		assert_int_equal(mem[dsec * 512 + i], 0);
	integrity_hash_tags(h, 5, 1, NULL, 1, want, 4);
	assert_memory_equal(mem + toff, want, 4);

	/* blocks 100..102 committed in section 2 of the journal, then recovered */
	j = calloc(1, (size_t)g.journal_sections * g.section_sectors * 512);
	assert_int_equal(integrity_journal_read(dev, &g, j), 0);
	for (unsigned k = 0; k < 3; k++) {
		memset(blk, 0x40 + k, sizeof(blk));
		integrity_hash_tags(h, 100 + k, 1, blk, 1, tag, 4);
		ij_entry_fill(&g, j, 2, k, 100 + k, blk, tag);
	}
	/* and one whose tag is wrong: refused */
	memset(blk, 0x50, sizeof(blk));
	memset(tag, 0, sizeof(tag));
	ij_entry_fill(&g, j, 2, 3, 200, blk, tag);
	integrity_journal_stamp(&g, j, 0, 3, 1);
	assert_int_equal(integrity_journal_write(dev, &g, j, 0, 3, BS_IO_FUA), 0);
	memset(j, 0, (size_t)g.journal_sections * g.section_sectors * 512);
	assert_int_equal(integrity_journal_recover(dev, dev, &g, j, h, true, false, &st, &why), 0);
	assert_int_equal(st.replayed, 3);
	assert_int_equal(st.bad, 1);
	for (unsigned k = 0; k < 3; k++) {
		integrity_geom_map(&g, 100 + k, &dsec, &toff, &left);
		for (unsigned i = 0; i < 512; i++)
			assert_int_equal(mem[dsec * 512 + i], 0x40 + k);
		memset(blk, 0x40 + k, sizeof(blk));
		integrity_hash_tags(h, 100 + k, 1, blk, 1, want, 4);
		assert_memory_equal(mem + toff, want, 4);
	}
	integrity_geom_map(&g, 200, &dsec, &toff, &left);
	assert_int_equal(mem[dsec * 512], 0); /* the refused entry was not written */
	/* the ring was whole: it continues after the last commit */
	assert_false(st.cleared);
	assert_int_equal(st.section, 3);
	assert_int_equal(st.seq, 1);
	free(j);
	integrity_hash_free(h);
	bs_bdev_close(dev);
}

/* ---- the kernel's images ----------------------------------------------------------------------
 */

static char *info_value(const char *text, const char *key)
{
	static char val[512];
	size_t kl = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, key, kl) && p[kl] == '=') {
			size_t n = strcspn(p + kl + 1, "\n");

			snprintf(val, sizeof(val), "%.*s", (int)n, p + kl + 1);
			return val;
		}
	return NULL;
}

static uint8_t *load_xz(const char *path, size_t *len)
{
	char cmd[1300];
	size_t cap = 8 << 20, n = 0;
	uint8_t *buf = malloc(cap);
	FILE *f;

	snprintf(cmd, sizeof(cmd), "xz -dc '%s'", path);
	f = popen(cmd, "r");
	assert_non_null(f);
	for (size_t k; (k = fread(buf + n, 1, cap - n, f)) > 0;)
		n += k;
	assert_int_equal(pclose(f), 0);
	*len = n;
	return buf;
}

static void test_kernel_fixtures(void **state)
{
	static const char *const names[] = {
	    "crc32c-j512", "crc32c-b4096",  "sha256-j4096", "hmac256-j512", "hmac256-b512",
	    "sha1-d512",   "xxhash64-j512", "nosalt-il8k",  "legacy-pad",   "meta-j512"};

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[1200], text[4096], *v, want_sum[65], got_sum[65];
		struct bs_bdev *dev, *meta;
		struct integrity_geom g;
		struct integrity_sb sb;
		struct integrity_hash *h;
		uint8_t *img, *mimg = NULL, key[32], digest[32];
		size_t len, mlen = 0, tl;
		const char *why = NULL, *alg;
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		unsigned dl;
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s.txt", fixdir, names[i]);
		f = fopen(path, "r");
		assert_non_null(f);
		tl = fread(text, 1, sizeof(text) - 1, f);
		text[tl] = '\0';
		fclose(f);
		snprintf(want_sum, sizeof(want_sum), "%s", info_value(text, "sha256"));
		alg = integrity_hash_from_user(info_value(text, "alg"));
		assert_non_null(alg);
		v = info_value(text, "key");
		if (v && *v)
			unhex(v, key, 32);

		snprintf(path, sizeof(path), "%s/%s.img.xz", fixdir, names[i]);
		img = load_xz(path, &len);
		assert_int_equal(bs_mem_bdev_create("d", len, true, &dev), 0);
		memcpy(bs_mem_bdev_data(dev), img, len);
		meta = dev;
		if (!strcmp(names[i], "meta-j512")) {
			snprintf(path, sizeof(path), "%s/%s.meta.img.xz", fixdir, names[i]);
			mimg = load_xz(path, &mlen);
			assert_int_equal(bs_mem_bdev_create("m", mlen, true, &meta), 0);
			memcpy(bs_mem_bdev_data(meta), mimg, mlen);
		}
		assert_int_equal(integrity_sb_read(meta, 0, &sb, NULL, &why), 0);
		assert_int_equal(
		    integrity_geom_init(&g, &sb, meta != dev, 0, len >> 9, mlen >> 9, 7, &why), 0);
		assert_true(integrity_geom_fit(&g) == sb.provided_data_sectors);
		assert_int_equal(
		    integrity_hash_new(alg, v && *v ? key : NULL, v && *v ? 32 : 0,
				       (sb.flags & SB_FLAG_FIXED_HMAC) ? sb.salt : NULL, &h, &why),
		    0);
		/* every block's tag, and the sha256 of the data, in logical order */
		EVP_DigestInit_ex(md, EVP_sha256(), NULL);
		for (uint64_t l = 0; l < g.provided_data_sectors; l += g.spb) {
			uint64_t dsec, toff, left;
			uint8_t tag[64];

			integrity_geom_map(&g, l, &dsec, &toff, &left);
			integrity_hash_tags(h, l, g.spb, img + dsec * 512, 1, tag, g.tag_size);
			if (memcmp(tag, bs_mem_bdev_data(meta) + toff, g.tag_size))
				fail_msg("%s: tag of sector %llu does not match", names[i],
					 (unsigned long long)l);
			EVP_DigestUpdate(md, img + dsec * 512, (size_t)g.spb << 9);
		}
		EVP_DigestFinal_ex(md, digest, &dl);
		for (unsigned k = 0; k < 32; k++)
			sprintf(got_sum + 2 * k, "%02x", digest[k]);
		assert_string_equal(got_sum, want_sum);
		EVP_MD_CTX_free(md);
		integrity_hash_free(h);
		if (meta != dev)
			bs_bdev_close(meta);
		bs_bdev_close(dev);
		free(img);
		free(mimg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sb_kernel),
	    cmocka_unit_test(test_sb_hostile),
	    cmocka_unit_test(test_sb_create_matches_kernel),
	    cmocka_unit_test(test_tags_known_answers),
	    cmocka_unit_test(test_tags_batch_and_errors),
	    cmocka_unit_test(test_journal_entry),
	    cmocka_unit_test(test_journal_scan),
	    cmocka_unit_test(test_format_and_replay),
	    cmocka_unit_test(test_kernel_fixtures),
	};

	if (!find_fixtures()) {
		fprintf(stderr, "tests/fixtures/integrity not found\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
