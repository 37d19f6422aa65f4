/*
 * test_targets.c - the request path through the table layer and the basic targets.
 *
 *   - linear: requests crossing segment boundaries land at the right offsets of the right
 *     files (checked with pread), against a model of the table, for reads, writes,
 *     write-zeroes, discards and flushes;
 *   - striped: the placement of every byte checked against an independent model (chunks
 *     dealt round-robin, each leg filled in turn) for several stripe counts and chunk sizes,
 *     power of two or not, with random offsets and lengths;
 *   - zero and error;
 *   - flakey while always up and always down: plain, drop_writes, error_writes, error_reads,
 *     corrupt_bio_byte for reads and for writes (the caller's buffer is never modified);
 *   - delay: the three request classes go to their own devices and counters, a waiting
 *     request is released by presuspend, requests are not delayed between presuspend and
 *     resume, and a device suspends while a 10-second read is waiting.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/device.h"
#include "engine/table.h"
#include "helpers.h"
#include "util/strbuf.h"

/* ---- a byte-level model of a table: where every byte of the device lives ---------------- */

struct model {
	unsigned nfiles;
	struct h_file *files;
	uint64_t size; /* bytes */
	/* Per device sector: file index (-1: zero target) and byte offset in that file. */
	int *file;
	uint64_t *off;
};

static void model_init(struct model *m, struct h_file *files, unsigned nfiles, uint64_t sectors)
{
	m->files = files;
	m->nfiles = nfiles;
	m->size = sectors << BS_SECTOR_SHIFT;
	m->file = calloc(sectors, sizeof(*m->file));
	m->off = calloc(sectors, sizeof(*m->off));
	assert_non_null(m->file);
	assert_non_null(m->off);
	for (uint64_t i = 0; i < sectors; i++)
		m->file[i] = -2; /* unmapped: a bug in the test */
}

static void model_free(struct model *m)
{
	free(m->file);
	free(m->off);
}

/* Device sectors [s, s+n) map to file F from byte offset OFF on (F -1: reads zero). */
static void model_map(struct model *m, uint64_t s, uint64_t n, int f, uint64_t off)
{
	for (uint64_t i = 0; i < n; i++) {
		m->file[s + i] = f;
		m->off[s + i] = off + (i << BS_SECTOR_SHIFT);
	}
}

/* What the device should return at byte POS. */
static uint8_t model_byte(const struct model *m, uint64_t pos)
{
	uint64_t s = pos >> BS_SECTOR_SHIFT;
	int f = m->file[s];

	assert_true(f >= -1);
	if (f < 0)
		return 0;
	return m->files[f].shadow[m->off[s] + (pos & (BS_SECTOR_SIZE - 1))];
}

static void model_write(struct model *m, const uint8_t *buf, uint64_t len, uint64_t pos)
{
	for (uint64_t i = 0; i < len; i++) {
		uint64_t s = (pos + i) >> BS_SECTOR_SHIFT;
		int f = m->file[s];

		if (f >= 0)
			m->files[f].shadow[m->off[s] + ((pos + i) & (BS_SECTOR_SIZE - 1))] = buf[i];
	}
}

static void model_check_read(const struct model *m, const uint8_t *buf, uint64_t len, uint64_t pos)
{
	for (uint64_t i = 0; i < len; i++) {
		uint8_t want = model_byte(m, pos + i);

		if (buf[i] != want) {
			print_error("read of %llu bytes at %llu: byte %llu (device offset %llu) is "
				    "0x%02x, expected 0x%02x\n",
				    (unsigned long long)len, (unsigned long long)pos,
				    (unsigned long long)i, (unsigned long long)(pos + i), buf[i],
				    want);
			fail();
		}
	}
}

static void model_check_files(const struct model *m)
{
	for (unsigned i = 0; i < m->nfiles; i++)
		h_file_check_shadow(&m->files[i]);
}

/*
 * Random reads and writes through T, each checked against the model; after every write
 * every file must equal its shadow (so nothing lands outside its place either).
 */
static void model_random_io(struct model *m, struct bs_table *t, uint64_t seed, unsigned rounds,
			    bool byte_granular)
{
	struct h_rng rng;
	uint8_t *buf = malloc(m->size);

	assert_non_null(buf);
	h_rng_seed(&rng, seed);
	for (unsigned k = 0; k < rounds; k++) {
		uint64_t pos, len;

		if (byte_granular && h_rng_below(&rng, 2)) {
			pos = h_rng_below(&rng, m->size);
			len = 1 + h_rng_below(&rng, m->size - pos);
		} else {
			uint64_t sectors = m->size >> BS_SECTOR_SHIFT;
			uint64_t s = h_rng_below(&rng, sectors);

			pos = s << BS_SECTOR_SHIFT;
			len = (1 + h_rng_below(&rng, sectors - s)) << BS_SECTOR_SHIFT;
		}
		/* Mostly short requests, sometimes long ones. */
		if (h_rng_below(&rng, 4) && len > 8192) {
			len = 1 + h_rng_below(&rng, 8192);
			if (pos % BS_SECTOR_SIZE == 0 && !byte_granular)
				len = (len + BS_SECTOR_SIZE - 1) & ~(uint64_t)(BS_SECTOR_SIZE - 1);
		}
		if (h_rng_below(&rng, 2)) {
			memset(buf, 0xa5, len);
			assert_int_equal(h_table_rw(t, BS_OP_READ, buf, len, pos), 0);
			model_check_read(m, buf, len, pos);
		} else {
			h_rng_fill(&rng, buf, len);
			assert_int_equal(h_table_rw(t, BS_OP_WRITE, buf, len, pos), 0);
			model_write(m, buf, len, pos);
			if (k % 8 == 0)
				model_check_files(m);
		}
	}
	model_check_files(m);
	/* A final read of everything. */
	assert_int_equal(h_table_rw(t, BS_OP_READ, buf, m->size, 0), 0);
	model_check_read(m, buf, m->size, 0);
	free(buf);
}

/* ---- linear segments ------------------------------------------------------------------------ */

static void test_linear_boundaries(void **state)
{
	struct h_file f[3];
	struct bs_table *t;
	struct model m;
	char *text;
	uint8_t buf[2048], got[2048];

	(void)state;
	h_file_create(&f[0], 64 << 10, 11, true);
	h_file_create(&f[1], 64 << 10, 12, true);
	h_file_create(&f[2], 64 << 10, 13, true);
	text = h_fmt("0 8 linear %s 16\n"
		     "8 24 linear %s 0\n"
		     "32 8 linear %s 100\n"
		     "40 16 linear %s 64\n"
		     "56 1 linear %s 127\n"
		     "57 7 zero\n"
		     "64 3 linear %s 0\n",
		     f[0].path, f[1].path, f[2].path, f[0].path, f[1].path, f[2].path);
	t = h_table_ok(text, false);
	assert_int_equal(t->nr_targets, 7);
	assert_true(t->size == 67);
	model_init(&m, f, 3, 67);
	model_map(&m, 0, 8, 0, 16 * 512);
	model_map(&m, 8, 24, 1, 0);
	model_map(&m, 32, 8, 2, 100 * 512);
	model_map(&m, 40, 16, 0, 64 * 512);
	model_map(&m, 56, 1, 1, 127 * 512);
	model_map(&m, 57, 7, -1, 0);
	model_map(&m, 64, 3, 2, 0);

	/* Explicitly: two sectors across the first boundary land in two files. */
	h_pattern_fill(buf, 1024, 99, 0);
	assert_int_equal(h_table_rw(t, BS_OP_WRITE, buf, 1024, 7 * 512), 0);
	h_file_pread(&f[0], got, 512, (16 + 7) * 512);
	assert_memory_equal(got, buf, 512);
	h_file_pread(&f[1], got, 512, 0);
	assert_memory_equal(got, buf + 512, 512);
	model_write(&m, buf, 1024, 7 * 512);
	/* Three sectors over a one-sector segment, into three places. */
	h_pattern_fill(buf, 1536, 98, 0);
	assert_int_equal(h_table_rw(t, BS_OP_WRITE, buf, 1536, 55 * 512), 0);
	h_file_pread(&f[0], got, 512, (64 + 15) * 512);
	assert_memory_equal(got, buf, 512);
	h_file_pread(&f[1], got, 512, 127 * 512);
	assert_memory_equal(got, buf + 512, 512);
	model_write(&m, buf, 1536, 55 * 512);
	model_check_files(&m);
	/* The zero segment reads zeroes and drops writes. */
	memset(got, 0xff, 512);
	assert_int_equal(h_table_rw(t, BS_OP_READ, got, 512, 60 * 512), 0);
	memset(buf, 0, 512);
	assert_memory_equal(got, buf, 512);

	model_random_io(&m, t, 0x1234, 400, false);

	/* Write-zeroes across three segments zeroes exactly that range in the files. */
	assert_int_equal(h_table_rw(t, BS_OP_WRITE_ZEROES, NULL, 30 * 512, 5 * 512), 0);
	memset(buf, 0, sizeof(buf));
	for (unsigned i = 0; i < 30; i++)
		model_write(&m, buf, 512, (5 + i) * 512);
	model_check_files(&m);
	/* Flush reaches every segment. */
	assert_int_equal(h_table_rw(t, BS_OP_FLUSH, NULL, 0, 0), 0);
	/* Outside the table. */
	assert_int_equal(h_table_rw(t, BS_OP_READ, buf, 512, 67 * 512), -EINVAL);
	assert_int_equal(h_table_rw(t, BS_OP_READ, buf, 1024, 66 * 512), -EINVAL);
	assert_int_equal(h_table_rw(t, BS_OP_WRITE, buf, 512, UINT64_MAX - 511), -EINVAL);
	assert_int_equal(h_table_rw(t, BS_OP_READ, buf, 0, 67 * 512), 0);
	model_check_files(&m);

	model_free(&m);
	bs_table_destroy(t);
	free(text);
	for (unsigned i = 0; i < 3; i++)
		h_file_remove(&f[i]);
}

/* Discards are advisory, but on a host file they must stay inside their range. */
static void test_linear_discard(void **state)
{
	struct h_file f;
	struct bs_table *t;
	char *text;
	uint8_t *buf;

	(void)state;
	h_file_create(&f, 64 << 10, 21, true);
	text = h_fmt("0 16 linear %s 32\n16 16 linear %s 8", f.path, f.path);
	t = h_table_ok(text, false);
	/* Device sectors 4..20 are file sectors 36..48 and 8..12. */
	assert_int_equal(h_table_rw(t, BS_OP_DISCARD, NULL, 16 * 512, 4 * 512), 0);
	buf = malloc(f.size);
	assert_non_null(buf);
	h_file_pread(&f, buf, f.size, 0);
	for (uint64_t i = 0; i < f.size; i++) {
		uint64_t s = i / 512;
		bool discarded = (s >= 36 && s < 48) || (s >= 8 && s < 12);

		if (!discarded && buf[i] != f.shadow[i]) {
			print_error("discard touched file byte %llu\n", (unsigned long long)i);
			fail();
		}
	}
	free(buf);
	bs_table_destroy(t);
	free(text);
	h_file_remove(&f);
}

/* ---- striped ----------------------------------------------------------------------------------
 */

/*
 * The model deals the segment's chunks round-robin over the legs and fills each leg from its
 * start, chunk after chunk: no division, just counting.
 */
static void striped_model(struct model *m, uint64_t seg_start, uint32_t nr, uint32_t chunk,
			  uint64_t len, const uint64_t *leg_start)
{
	uint64_t *next = calloc(nr, sizeof(*next));
	uint64_t s = 0;
	unsigned leg = 0;

	assert_non_null(next);
	for (uint32_t i = 0; i < nr; i++)
		next[i] = leg_start[i];
	while (s < len) {
		model_map(m, seg_start + s, chunk, (int)leg, next[leg] << BS_SECTOR_SHIFT);
		next[leg] += chunk;
		s += chunk;
		leg = (leg + 1) % nr;
	}
	/* Every leg got the same number of chunks. */
	for (uint32_t i = 0; i < nr; i++)
		assert_true(next[i] - leg_start[i] == len / nr);
	free(next);
}

static void striped_case(uint32_t nr, uint32_t chunk, uint32_t chunks_per_leg, uint64_t seed)
{
	uint64_t width = (uint64_t)chunk * chunks_per_leg, len = width * nr;
	struct h_file *f = calloc(nr, sizeof(*f));
	uint64_t *start = calloc(nr, sizeof(*start));
	struct strbuf sb = STRBUF_INIT;
	struct bs_table *t;
	struct model m;

	assert_non_null(f);
	assert_non_null(start);
	for (uint32_t i = 0; i < nr; i++) {
		start[i] = 3 * i + (i % 2);
		/* A few spare sectors after the leg's area, which must stay untouched. */
		h_file_create(&f[i], (size_t)(start[i] + width + 3) << BS_SECTOR_SHIFT, 30 + i,
			      true);
	}
	/* Behind a zero segment, so that segment-relative offsets matter. */
	sb_printf(&sb, "0 5 zero\n5 %llu striped %u %u", (unsigned long long)len, nr, chunk);
	for (uint32_t i = 0; i < nr; i++)
		sb_printf(&sb, " %s %llu", f[i].path, (unsigned long long)start[i]);
	sb_puts(&sb, "\n");
	t = h_table_ok(sb_str(&sb), false);
	assert_true(t->size == 5 + len);

	model_init(&m, f, nr, 5 + len);
	model_map(&m, 0, 5, -1, 0);
	striped_model(&m, 5, nr, chunk, len, start);
	model_random_io(&m, t, seed, 300, true);

	model_free(&m);
	bs_table_destroy(t);
	sb_free(&sb);
	for (uint32_t i = 0; i < nr; i++)
		h_file_remove(&f[i]);
	free(f);
	free(start);
}

static void test_striped_placement(void **state)
{
	static const struct {
		uint32_t nr, chunk, per_leg;
	} cases[] = {
	    {1, 8, 3},	 {2, 1, 16}, {2, 8, 4}, {3, 7, 5},  {4, 3, 6},
	    {5, 128, 1}, {3, 1, 40}, {7, 5, 3}, {2, 24, 2}, {6, 16, 2},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		striped_case(cases[i].nr, cases[i].chunk, cases[i].per_leg, 1000 + i);
}

/* Flush goes to every leg; write-zeroes lands like writes. */
static void test_striped_zeroes(void **state)
{
	struct h_file f[3];
	uint64_t start[3] = {0, 2, 1};
	struct bs_table *t;
	struct model m;
	char *text;
	uint8_t zero[512] = {0};

	(void)state;
	for (int i = 0; i < 3; i++)
		h_file_create(&f[i], 32 * 512, 40 + (uint32_t)i, true);
	text = h_fmt("0 60 striped 3 5 %s 0 %s 2 %s 1", f[0].path, f[1].path, f[2].path);
	t = h_table_ok(text, false);
	model_init(&m, f, 3, 60);
	striped_model(&m, 0, 3, 5, 60, start);
	assert_int_equal(h_table_rw(t, BS_OP_WRITE_ZEROES, NULL, 23 * 512, 4 * 512), 0);
	for (unsigned i = 0; i < 23; i++)
		model_write(&m, zero, 512, (4 + i) * 512);
	model_check_files(&m);
	assert_int_equal(h_table_rw(t, BS_OP_FLUSH, NULL, 0, 0), 0);
	model_free(&m);
	bs_table_destroy(t);
	free(text);
	for (int i = 0; i < 3; i++)
		h_file_remove(&f[i]);
}

/* ---- zero and error ----------------------------------------------------------------------------
 */

static void test_zero_error(void **state)
{
	struct bs_table *t = h_table_ok("0 8 zero\n8 8 error\n16 8 zero", false);
	uint8_t buf[8192], zero[4096] = {0};

	(void)state;
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(h_table_rw(t, BS_OP_READ, buf, 4096, 0), 0);
	assert_memory_equal(buf, zero, 4096);
	assert_int_equal(h_table_rw(t, BS_OP_WRITE, buf, 4096, 0), 0);
	assert_int_equal(h_table_rw(t, BS_OP_DISCARD, NULL, 4096, 0), 0);
	assert_int_equal(h_table_rw(t, BS_OP_WRITE_ZEROES, NULL, 4096, 0), 0);
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(h_table_rw(t, BS_OP_READ, buf, 4096, 16 * 512), 0);
	assert_memory_equal(buf, zero, 4096);
	/* Any request touching the error segment fails. */
	assert_int_equal(h_table_rw(t, BS_OP_READ, buf, 512, 8 * 512), -EIO);
	assert_int_equal(h_table_rw(t, BS_OP_READ, buf, 8192, 4 * 512), -EIO);
	assert_int_equal(h_table_rw(t, BS_OP_WRITE, buf, 512, 15 * 512), -EIO);
	assert_int_equal(h_table_rw(t, BS_OP_DISCARD, NULL, 512, 8 * 512), -EIO);
	assert_int_equal(h_table_rw(t, BS_OP_WRITE_ZEROES, NULL, 512, 8 * 512), -EIO);
	/* A flush succeeds, as with Linux's dm-error, which takes no flushes. */
	assert_int_equal(h_table_rw(t, BS_OP_FLUSH, NULL, 0, 0), 0);
	bs_table_destroy(t);
	t = h_table_ok("0 8 error", false);
	assert_int_equal(h_table_rw(t, BS_OP_FLUSH, NULL, 0, 0), 0);
	assert_int_equal(h_table_rw(t, BS_OP_READ, buf, 512, 0), -EIO);
	bs_table_destroy(t);
	t = h_table_ok("0 8 zero", false);
	assert_int_equal(h_table_rw(t, BS_OP_FLUSH, NULL, 0, 0), 0);
	bs_table_destroy(t);
}

/* ---- flakey
 * ---------------------------------------------------------------------------------------- */

static struct h_file ff;

/* A flakey table over ff at sector 8 of it, with the given up/down and features. */
static struct bs_table *flakey_table(const char *updown_features)
{
	char *text = h_fmt("0 16 flakey %s 8 %s", ff.path, updown_features);
	struct bs_table *t = h_table_ok(text, false);

	free(text);
	h_file_refill(&ff, 50);
	return t;
}

#define FOFF (8 * 512) /* where the table starts in ff */

static void flakey_expect_read(struct bs_table *t, int expect, int corrupt_at, uint8_t value)
{
	uint8_t buf[2048], want[2048];

	memset(buf, 0, sizeof(buf));
	assert_int_equal(h_table_rw(t, BS_OP_READ, buf, 2048, 1024), expect);
	if (expect)
		return;
	memcpy(want, ff.shadow + FOFF + 1024, 2048);
	if (corrupt_at)
		want[corrupt_at - 1] = value;
	assert_memory_equal(buf, want, 2048);
	/* The device itself holds the true data. */
	h_file_check_shadow(&ff);
}

/* A write of 1024 bytes at 512: EXPECT; STORED says whether it reaches the file. */
static void flakey_expect_write(struct bs_table *t, int expect, bool stored, int corrupt_at,
				uint8_t value)
{
	uint8_t buf[1024], copy[1024];

	h_pattern_fill(buf, sizeof(buf), 51, 0);
	memcpy(copy, buf, sizeof(buf));
	assert_int_equal(h_table_rw(t, BS_OP_WRITE, buf, 1024, 512), expect);
	/* Never the caller's buffer. */
	assert_memory_equal(buf, copy, sizeof(buf));
	if (stored) {
		if (corrupt_at)
			copy[corrupt_at - 1] = value;
		memcpy(ff.shadow + FOFF + 512, copy, sizeof(copy));
	}
	h_file_check_shadow(&ff);
}

static void test_flakey_up(void **state)
{
	static const char *const variants[] = {
	    "60 0",
	    "60 0 1 error_writes",
	    "60 0 2 drop_writes error_reads",
	    "60 0 5 corrupt_bio_byte 1 w 7 0",
	    "60 0 5 corrupt_bio_byte 1 r 7 0",
	    "4294967294 1",
	};

	(void)state;
	/* While up, every variant behaves like linear. */
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		struct bs_table *t = flakey_table(variants[i]);

		flakey_expect_read(t, 0, 0, 0);
		flakey_expect_write(t, 0, true, 0, 0);
		flakey_expect_read(t, 0, 0, 0);
		assert_int_equal(h_table_rw(t, BS_OP_FLUSH, NULL, 0, 0), 0);
		bs_table_destroy(t);
	}
}

static void test_flakey_down_plain(void **state)
{
	struct bs_table *t = flakey_table("0 60");

	(void)state;
	flakey_expect_read(t, -EIO, 0, 0);
	flakey_expect_write(t, -EIO, false, 0, 0);
	assert_int_equal(h_table_rw(t, BS_OP_FLUSH, NULL, 0, 0), -EIO);
	assert_int_equal(h_table_rw(t, BS_OP_DISCARD, NULL, 4096, 0), -EIO);
	assert_int_equal(h_table_rw(t, BS_OP_WRITE_ZEROES, NULL, 4096, 0), -EIO);
	h_file_check_shadow(&ff);
	bs_table_destroy(t);
	/* An explicit empty feature list is the same. */
	t = flakey_table("0 1 0");
	flakey_expect_read(t, -EIO, 0, 0);
	flakey_expect_write(t, -EIO, false, 0, 0);
	bs_table_destroy(t);
}

static void test_flakey_drop_writes(void **state)
{
	struct bs_table *t = flakey_table("0 60 1 drop_writes");

	(void)state;
	flakey_expect_read(t, 0, 0, 0);
	flakey_expect_write(t, 0, false, 0, 0);
	assert_int_equal(h_table_rw(t, BS_OP_FLUSH, NULL, 0, 0), 0);
	assert_int_equal(h_table_rw(t, BS_OP_DISCARD, NULL, 4096, 0), 0);
	assert_int_equal(h_table_rw(t, BS_OP_WRITE_ZEROES, NULL, 4096, 0), 0);
	/* Nothing reached the file. */
	h_file_check_shadow(&ff);
	flakey_expect_read(t, 0, 0, 0);
	bs_table_destroy(t);
}

static void test_flakey_error_writes(void **state)
{
	struct bs_table *t = flakey_table("0 60 1 error_writes");

	(void)state;
	flakey_expect_read(t, 0, 0, 0);
	flakey_expect_write(t, -EIO, false, 0, 0);
	assert_int_equal(h_table_rw(t, BS_OP_WRITE_ZEROES, NULL, 4096, 0), -EIO);
	assert_int_equal(h_table_rw(t, BS_OP_DISCARD, NULL, 4096, 0), -EIO);
	h_file_check_shadow(&ff);
	flakey_expect_read(t, 0, 0, 0);
	bs_table_destroy(t);
}

static void test_flakey_error_reads(void **state)
{
	struct bs_table *t = flakey_table("0 60 1 error_reads");
	uint8_t zero[4096] = {0};

	(void)state;
	flakey_expect_read(t, -EIO, 0, 0);
	flakey_expect_write(t, 0, true, 0, 0);
	/* Write-zeroes works and lands where it should. */
	assert_int_equal(h_table_rw(t, BS_OP_WRITE_ZEROES, NULL, 4096, 4096), 0);
	memcpy(ff.shadow + FOFF + 4096, zero, 4096);
	h_file_check_shadow(&ff);
	assert_int_equal(h_table_rw(t, BS_OP_FLUSH, NULL, 0, 0), 0);
	bs_table_destroy(t);

	/* With drop_writes as well: reads fail and writes vanish. */
	t = flakey_table("0 60 2 error_reads drop_writes");
	flakey_expect_read(t, -EIO, 0, 0);
	flakey_expect_write(t, 0, false, 0, 0);
	bs_table_destroy(t);
}

static void test_flakey_corrupt_read(void **state)
{
	struct bs_table *t;

	(void)state;
	t = flakey_table("0 60 5 corrupt_bio_byte 100 r 66 0");
	flakey_expect_read(t, 0, 100, 66);
	/* Writes are untouched. */
	flakey_expect_write(t, 0, true, 0, 0);
	flakey_expect_read(t, 0, 100, 66);
	bs_table_destroy(t);

	/* Byte 1, value 0, non-zero flags (treated as matching). */
	t = flakey_table("0 60 5 corrupt_bio_byte 1 r 0 16");
	flakey_expect_read(t, 0, 1, 0);
	bs_table_destroy(t);
	/* The last byte of the request, and one past it (no change). */
	t = flakey_table("0 60 5 corrupt_bio_byte 2048 r 255 0");
	flakey_expect_read(t, 0, 2048, 255);
	bs_table_destroy(t);
	t = flakey_table("0 60 5 corrupt_bio_byte 2049 r 255 0");
	flakey_expect_read(t, 0, 0, 0);
	bs_table_destroy(t);
	/* With error_writes: reads are corrupted, writes fail. */
	t = flakey_table("0 60 6 error_writes corrupt_bio_byte 3 r 1 0");
	flakey_expect_read(t, 0, 3, 1);
	flakey_expect_write(t, -EIO, false, 0, 0);
	bs_table_destroy(t);
}

static void test_flakey_corrupt_write(void **state)
{
	struct bs_table *t;

	(void)state;
	t = flakey_table("0 60 5 corrupt_bio_byte 7 w 66 0");
	/* The file gets the corrupted byte; the caller's buffer keeps the true one. */
	flakey_expect_write(t, 0, true, 7, 66);
	/* Reads are untouched. */
	flakey_expect_read(t, 0, 0, 0);
	bs_table_destroy(t);

	t = flakey_table("0 60 5 corrupt_bio_byte 1024 W 0 1");
	flakey_expect_write(t, 0, true, 1024, 0);
	bs_table_destroy(t);
	/* Past the end of the request: written unchanged. */
	t = flakey_table("0 60 5 corrupt_bio_byte 1025 w 0 0");
	flakey_expect_write(t, 0, true, 0, 0);
	bs_table_destroy(t);
	/* With error_reads. */
	t = flakey_table("0 60 6 error_reads corrupt_bio_byte 2 w 9 0");
	flakey_expect_read(t, -EIO, 0, 0);
	flakey_expect_write(t, 0, true, 2, 9);
	bs_table_destroy(t);
}

/* ---- delay
 * -------------------------------------------------------------------------------------------- */

struct bg_io {
	pthread_t th;
	struct bs_table *t;    /* either a table */
	struct bs_device *dev; /* or a device */
	struct bs_io io;
	atomic_bool done;
	int r;
};

static void *bg_io_main(void *arg)
{
	struct bg_io *b = arg;

	b->r = b->dev ? bs_device_submit(b->dev, &b->io) : bs_table_submit(b->t, &b->io);
	atomic_store(&b->done, true);
	return NULL;
}

static void bg_start(struct bg_io *b, struct bs_table *t, struct bs_device *dev, enum bs_op op,
		     void *buf, uint64_t len, uint64_t off)
{
	memset(b, 0, sizeof(*b));
	b->t = t;
	b->dev = dev;
	b->io = (struct bs_io){.op = op, .off = off, .len = len, .buf = buf};
	atomic_init(&b->done, false);
	assert_int_equal(pthread_create(&b->th, NULL, bg_io_main, b), 0);
}

static void bg_join(struct bg_io *b)
{
	assert_int_equal(pthread_join(b->th, NULL), 0);
	assert_true(atomic_load(&b->done));
}

/* Waits (bounded, generously) until the INFO status of T is WANT. */
static void wait_table_status(struct bs_table *t, const char *want)
{
	for (unsigned i = 0; i < 30000; i++) {
		char *st = h_table_status(t, BS_STATUS_INFO);
		bool ok = !strcmp(st, want);

		free(st);
		if (ok)
			return;
		h_sleep_ms(1);
	}
	{
		char *st = h_table_status(t, BS_STATUS_INFO);

		print_error("status is \"%s\", expected \"%s\"\n", st, want);
		free(st);
	}
	fail();
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads go to the read group, writes (and discards, write-zeroes) to the write group. */
static void test_delay_routing(void **state)
{
	struct h_file f[3];
	struct bs_table *t;
	char *text;
	uint8_t buf[1024], got[1024];

	(void)state;
	for (int i = 0; i < 3; i++)
		h_file_create(&f[i], 64 << 10, 60 + (uint32_t)i, true);
	text = h_fmt("0 32 delay %s 4 0 %s 16 0 %s 40 0", f[0].path, f[1].path, f[2].path);
	t = h_table_ok(text, false);
	/* A read returns the read device's data at its offset. */
	assert_int_equal(h_table_rw(t, BS_OP_READ, buf, 1024, 512), 0);
	assert_memory_equal(buf, f[0].shadow + (4 + 1) * 512, 1024);
	/* A write lands on the write device at its offset, nowhere else. */
	h_pattern_fill(buf, sizeof(buf), 61, 7);
	assert_int_equal(h_table_rw(t, BS_OP_WRITE, buf, 1024, 1024), 0);
	memcpy(f[1].shadow + (16 + 2) * 512, buf, 1024);
	assert_int_equal(h_table_rw(t, BS_OP_WRITE_ZEROES, NULL, 512, 0), 0);
	memset(f[1].shadow + 16 * 512, 0, 512);
	assert_int_equal(h_table_rw(t, BS_OP_FLUSH, NULL, 0, 0), 0);
	for (int i = 0; i < 3; i++)
		h_file_check_shadow(&f[i]);
	/* ... and so reading it back returns the read device's data, not the write. */
	assert_int_equal(h_table_rw(t, BS_OP_READ, got, 1024, 1024), 0);
	assert_memory_equal(got, f[0].shadow + (4 + 2) * 512, 1024);
	bs_table_destroy(t);
	free(text);

	/* With three arguments everything goes to the one device. */
	text = h_fmt("0 32 delay %s 4 0", f[0].path);
	t = h_table_ok(text, false);
	assert_int_equal(h_table_rw(t, BS_OP_WRITE, buf, 1024, 1024), 0);
	memcpy(f[0].shadow + (4 + 2) * 512, buf, 1024);
	h_file_check_shadow(&f[0]);
	h_file_check_shadow(&f[1]);
	bs_table_destroy(t);
	free(text);
	for (int i = 0; i < 3; i++)
		h_file_remove(&f[i]);
}

/* Waiting requests show in the counter of their class; presuspend releases them. */
static void test_delay_presuspend(void **state)
{
	static const struct {
		enum bs_op op;
		const char *waiting;
	} ops[] = {
	    {BS_OP_READ, "0 8 delay 1 0 0\n"},	  {BS_OP_WRITE, "0 8 delay 0 1 0\n"},
	    {BS_OP_DISCARD, "0 8 delay 0 1 0\n"}, {BS_OP_WRITE_ZEROES, "0 8 delay 0 1 0\n"},
	    {BS_OP_FLUSH, "0 8 delay 0 0 1\n"},
	};
	struct h_file f;
	struct bs_table *t;
	char *text;
	uint8_t buf[512];

	(void)state;
	h_file_create(&f, 64 << 10, 70, false);
	text = h_fmt("0 8 delay %s 0 600000 %s 8 600000 %s 16 600000", f.path, f.path, f.path);
	t = h_table_ok(text, false);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct bg_io b;
		bool is_data = ops[i].op == BS_OP_READ || ops[i].op == BS_OP_WRITE;

		bg_start(&b, t, NULL, ops[i].op, is_data ? buf : NULL,
			 ops[i].op == BS_OP_FLUSH ? 0 : 512, 0);
		wait_table_status(t, ops[i].waiting);
		/* Ten minutes of delay: it cannot have completed on its own. */
		h_sleep_ms(20);
		assert_false(atomic_load(&b.done));
		bs_table_presuspend(t);
		bg_join(&b);
		assert_int_equal(b.r, 0);
		wait_table_status(t, "0 8 delay 0 0 0\n");
		/* Until resume, nothing waits: these would otherwise take ten minutes. */
		assert_int_equal(h_table_rw(t, BS_OP_READ, buf, 512, 0), 0);
		assert_int_equal(h_table_rw(t, BS_OP_WRITE, buf, 512, 0), 0);
		assert_int_equal(h_table_rw(t, BS_OP_FLUSH, NULL, 0, 0), 0);
		bs_table_postsuspend(t);
		assert_int_equal(h_table_rw(t, BS_OP_READ, buf, 512, 0), 0);
		bs_table_resume(t);
	}
	/* After resume, requests wait again. */
	{
		struct bg_io b;

		bg_start(&b, t, NULL, BS_OP_READ, buf, 512, 0);
		wait_table_status(t, "0 8 delay 1 0 0\n");
		h_sleep_ms(20);
		assert_false(atomic_load(&b.done));
		bs_table_presuspend(t);
		bg_join(&b);
		assert_int_equal(b.r, 0);
		bs_table_resume(t);
	}
	bs_table_destroy(t);
	free(text);
	h_file_remove(&f);
}

/* A zero delay does not wait at all; a short one completes by itself. */
static void test_delay_short(void **state)
{
	struct h_file f;
	struct bs_table *t;
	char *text;
	uint8_t buf[512];

	(void)state;
	h_file_create(&f, 8 << 10, 71, true);
	text = h_fmt("0 8 delay %s 0 1 %s 8 0", f.path, f.path);
	t = h_table_ok(text, false);
	assert_int_equal(h_table_rw(t, BS_OP_READ, buf, 512, 512), 0);
	assert_memory_equal(buf, f.shadow + 512, 512);
	assert_int_equal(h_table_rw(t, BS_OP_WRITE, buf, 512, 0), 0);
	memcpy(f.shadow + 8 * 512, buf, 512);
	h_file_check_shadow(&f);
	wait_table_status(t, "0 8 delay 0 0 0\n");
	bs_table_destroy(t);
	free(text);
	h_file_remove(&f);
}

/*
 * Through a device: suspend releases a read waiting out a 10-second delay, so suspend returns
 * with the read completed (suspend waits for in-flight I/O) long before the delay is over.
 */
static void test_delay_device_suspend(void **state)
{
	struct strbuf err = STRBUF_INIT, st = STRBUF_INIT;
	struct h_file f;
	struct bs_device *dev;
	struct bg_io b;
	uint8_t buf[1024];
	char *text;
	double t0;
	unsigned i;

	(void)state;
	h_file_create(&f, 64 << 10, 72, true);
	text = h_fmt("0 64 delay %s 0 10000", f.path);
	assert_int_equal(bs_device_create("h1-delay", NULL, false, text, &err), 0);
	dev = bs_device_lookup("h1-delay");
	assert_non_null(dev);

	bg_start(&b, NULL, dev, BS_OP_READ, buf, 1024, 2048);
	for (i = 0; i < 30000; i++) {
		sb_reset(&st);
		assert_int_equal(bs_device_status(dev, false, BS_STATUS_INFO, 0, NULL, &st), 0);
		if (!strcmp(sb_str(&st), "0 64 delay 1 0 0\n"))
			break;
		h_sleep_ms(1);
	}
	assert_string_equal(sb_str(&st), "0 64 delay 1 0 0\n");
	assert_false(atomic_load(&b.done));

	t0 = now_s();
	assert_int_equal(bs_device_suspend(dev, false), 0);
	/* Suspend waited for the read, which the delay target let go at once. */
	assert_true(atomic_load(&b.done));
	/* An order of magnitude below the delay; not a timing measurement. */
	assert_true(now_s() - t0 < 5.0);
	bg_join(&b);
	assert_int_equal(b.r, 0);
	assert_memory_equal(buf, f.shadow + 2048, 1024);
	sb_reset(&st);
	assert_int_equal(bs_device_status(dev, false, BS_STATUS_INFO, 0, NULL, &st), 0);
	assert_string_equal(sb_str(&st), "0 64 delay 0 0 0\n");

	assert_int_equal(bs_device_resume(dev, &err), 0);
	bs_device_put(dev);
	assert_int_equal(bs_device_remove("h1-delay", &err), 0);
	assert_int_equal(err.len, 0);
	sb_free(&err);
	sb_free(&st);
	free(text);
	h_file_remove(&f);
}

static int flakey_setup(void **state)
{
	(void)state;
	h_file_create(&ff, 16 << 10, 50, true);
	return 0;
}

static int flakey_teardown(void **state)
{
	(void)state;
	h_file_remove(&ff);
	return 0;
}

#define FLAKEY_TEST(f) cmocka_unit_test_setup_teardown(f, flakey_setup, flakey_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_linear_boundaries), cmocka_unit_test(test_linear_discard),
	    cmocka_unit_test(test_striped_placement), cmocka_unit_test(test_striped_zeroes),
	    cmocka_unit_test(test_zero_error),	      FLAKEY_TEST(test_flakey_up),
	    FLAKEY_TEST(test_flakey_down_plain),      FLAKEY_TEST(test_flakey_drop_writes),
	    FLAKEY_TEST(test_flakey_error_writes),    FLAKEY_TEST(test_flakey_error_reads),
	    FLAKEY_TEST(test_flakey_corrupt_read),    FLAKEY_TEST(test_flakey_corrupt_write),
	    cmocka_unit_test(test_delay_routing),     cmocka_unit_test(test_delay_presuspend),
	    cmocka_unit_test(test_delay_short),	      cmocka_unit_test(test_delay_device_suspend),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
