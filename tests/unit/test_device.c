/*
 * test_device.c - device semantics (engine/device.c): the dm state machine and request gate.
 *
 *   - create: names, uuids, duplicates; a failed create leaves no device behind;
 *   - unaligned reads, writes, write-zeroes and discards (read-modify-write of partial
 *     blocks) against a shadow of the device, on 512-byte and 4096-byte block sizes, and
 *     concurrent sub-sector writes into the same sectors losing nothing;
 *   - bounds, read-only devices, devices without a table;
 *   - reload keeps the live table serving until resume; clear; a failed load changes nothing;
 *   - suspend holds new I/O from other threads until resume; removing a suspended device
 *     fails the held I/O;
 *   - remove refuses devices open or held by another table (EBUSY), also by an inactive one;
 *   - cycle detection through /dev/mapper/NAME, also through inactive tables;
 *   - stacked I/O lands in the lower device's file; info, events, deps, messages.
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
#include <unistd.h>

#include <cmocka.h>

#include "engine/device.h"
#include "helpers.h"
#include "util/strbuf.h"

static struct h_file fa, fb;

static int group_setup(void **state)
{
	(void)state;
	h_file_create(&fa, 64 << 10, 101, true);
	h_file_create(&fb, 64 << 10, 102, true);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	bs_device_remove_all();
	h_file_remove(&fa);
	h_file_remove(&fb);
	return 0;
}

/* Every test starts from files holding their patterns and an empty registry. */
static int test_setup(void **state)
{
	(void)state;
	h_file_refill(&fa, 101);
	h_file_refill(&fb, 102);
	return 0;
}

static int test_teardown(void **state)
{
	(void)state;
	bs_device_remove_all();
	return 0;
}

/* Creates NAME with TEXT (may be NULL) and returns a reference; asserts success. */
static struct bs_device *dev_create(const char *name, const char *text, bool readonly)
{
	struct strbuf err = STRBUF_INIT;
	struct bs_device *dev;
	int r = bs_device_create(name, NULL, readonly, text, &err);

	if (r) {
		print_error("create %s: %d %s\n", name, r, sb_str(&err));
		fail();
	}
	sb_free(&err);
	dev = bs_device_lookup(name);
	assert_non_null(dev);
	return dev;
}

static int dev_rw(struct bs_device *dev, enum bs_op op, void *buf, uint64_t len, uint64_t off)
{
	struct bs_io io = {.op = op, .off = off, .len = len, .buf = buf};

	return bs_device_submit(dev, &io);
}

static int dev_load(struct bs_device *dev, const char *text, struct strbuf *err)
{
	sb_reset(err);
	return bs_device_load(dev, text, err);
}

static char *dev_status(struct bs_device *dev, bool inactive, enum bs_status_type type)
{
	struct strbuf sb = STRBUF_INIT;
	char *s;

	assert_int_equal(bs_device_status(dev, inactive, type, 0, NULL, &sb), 0);
	s = strdup(sb_str(&sb));
	assert_non_null(s);
	sb_free(&sb);
	return s;
}

static void dev_remove(const char *name)
{
	struct strbuf err = STRBUF_INIT;
	int r = bs_device_remove(name, &err);

	if (r) {
		print_error("remove %s: %d %s\n", name, r, sb_str(&err));
		fail();
	}
	sb_free(&err);
}

static void expect_error(int r, int want, struct strbuf *err, const char *needle)
{
	if (r != want || !strstr(sb_str(err), needle)) {
		print_error("expected %d \"%s\", got %d \"%s\"\n", want, needle, r, sb_str(err));
		fail();
	}
}

/* ---- create ------------------------------------------------------------------------------- */

static void test_create_names(void **state)
{
	struct strbuf err = STRBUF_INIT;
	char longname[200];
	struct bs_device *dev;
	char *text;
	int r;

	(void)state;
	r = bs_device_create("", NULL, false, NULL, &err);
	expect_error(r, -EINVAL, &err, "empty name");
	sb_reset(&err);
	r = bs_device_create("a/b", NULL, false, NULL, &err);
	expect_error(r, -EINVAL, &err, "'/'");
	sb_reset(&err);
	r = bs_device_create("..", NULL, false, NULL, &err);
	expect_error(r, -EINVAL, &err, "reserved name");
	sb_reset(&err);
	r = bs_device_create("a b", NULL, false, NULL, &err);
	expect_error(r, -EINVAL, &err, "white space");
	sb_reset(&err);
	memset(longname, 'x', sizeof(longname));
	longname[BS_DEVICE_NAME_MAX - 1] = '\0';
	assert_int_equal(bs_device_create(longname, NULL, false, NULL, &err), 0);
	dev_remove(longname);
	longname[BS_DEVICE_NAME_MAX - 1] = 'x';
	longname[BS_DEVICE_NAME_MAX] = '\0';
	r = bs_device_create(longname, NULL, false, NULL, &err);
	expect_error(r, -EINVAL, &err, "longer than 127");
	sb_reset(&err);
	r = bs_device_create("h1-u", "u u", false, NULL, &err);
	expect_error(r, -EINVAL, &err, "invalid uuid");
	sb_reset(&err);

	/* Duplicates. */
	assert_int_equal(bs_device_create("h1-a", "UUID-1", false, NULL, &err), 0);
	r = bs_device_create("h1-a", NULL, false, NULL, &err);
	expect_error(r, -EEXIST, &err, "already exists");
	sb_reset(&err);
	r = bs_device_create("h1-b", "UUID-1", false, NULL, &err);
	expect_error(r, -EEXIST, &err, "uuid UUID-1 is already used by device h1-a");
	sb_reset(&err);
	assert_null(bs_device_lookup("h1-b"));

	/* A create whose table fails leaves nothing behind, and the name stays free. */
	text = h_fmt("0 8 linear %s 0\n8 8 bogus", fa.path);
	r = bs_device_create("h1-c", NULL, false, text, &err);
	expect_error(r, -EINVAL, &err, "line 2: unknown target type \"bogus\"");
	sb_reset(&err);
	free(text);
	assert_null(bs_device_lookup("h1-c"));
	r = bs_device_remove("h1-c", &err);
	expect_error(r, -ENXIO, &err, "does not exist");
	sb_reset(&err);
	dev = dev_create("h1-c", "0 8 zero", false);
	assert_true(bs_device_size(dev) == 8);
	bs_device_put(dev);

	/* Without a table: exists, but has nothing to serve. */
	dev = bs_device_lookup("h1-a");
	assert_non_null(dev);
	{
		struct bs_device_info info;
		uint8_t buf[512];

		bs_device_get_info(dev, &info);
		assert_string_equal(info.name, "h1-a");
		assert_string_equal(info.uuid, "UUID-1");
		assert_false(info.live_table);
		assert_false(info.inactive_table);
		assert_true(info.size == 0);
		assert_int_equal(dev_rw(dev, BS_OP_READ, buf, 512, 0), -ENXIO);
		sb_reset(&err);
		assert_int_equal(bs_device_status(dev, false, BS_STATUS_TABLE, 0, NULL, &err),
				 -ENXIO);
	}
	bs_device_put(dev);
	dev_remove("h1-a");
	dev_remove("h1-c");
	sb_free(&err);
}

/* ---- unaligned I/O ------------------------------------------------------------------------ */

/* Random unaligned I/O on DEV (SIZE bytes) compared with SHADOW, which it keeps up to date. */
static void random_unaligned(struct bs_device *dev, uint8_t *shadow, uint64_t size, uint64_t seed,
			     unsigned rounds)
{
	struct h_rng rng;
	uint8_t *buf = malloc(size);

	assert_non_null(buf);
	h_rng_seed(&rng, seed);
	for (unsigned k = 0; k < rounds; k++) {
		uint64_t pos = h_rng_below(&rng, size), len;
		unsigned kind = (unsigned)h_rng_below(&rng, 10);

		/* Short (inside one sector), medium (a few boundaries) or long. */
		switch (h_rng_below(&rng, 3)) {
		case 0:
			len = 1 + h_rng_below(&rng, 16);
			break;
		case 1:
			len = 1 + h_rng_below(&rng, 2000);
			break;
		default:
			len = 1 + h_rng_below(&rng, size);
			break;
		}
		if (len > size - pos)
			len = size - pos;
		if (kind < 4) {
			memset(buf, 0xee, len);
			assert_int_equal(dev_rw(dev, BS_OP_READ, buf, len, pos), 0);
			if (memcmp(buf, shadow + pos, len)) {
				for (uint64_t i = 0; i < len; i++)
					if (buf[i] != shadow[pos + i])
						print_error(
						    "round %u: read %llu at %llu: byte %llu "
						    "is 0x%02x, expected 0x%02x\n",
						    k, (unsigned long long)len,
						    (unsigned long long)pos,
						    (unsigned long long)(pos + i), buf[i],
						    shadow[pos + i]);
				fail();
			}
		} else if (kind < 9) {
			h_rng_fill(&rng, buf, len);
			memcpy(shadow + pos, buf, len);
			assert_int_equal(dev_rw(dev, BS_OP_WRITE, buf, len, pos), 0);
			/* The caller's buffer is not modified by a write. */
			assert_memory_equal(buf, shadow + pos, len);
		} else {
			memset(shadow + pos, 0, len);
			assert_int_equal(dev_rw(dev, BS_OP_WRITE_ZEROES, NULL, len, pos), 0);
		}
	}
	memset(buf, 0xee, size);
	assert_int_equal(dev_rw(dev, BS_OP_READ, buf, size, 0), 0);
	assert_memory_equal(buf, shadow, size);
	free(buf);
}

static void test_unaligned_io(void **state)
{
	/* Hand-picked cases first: sub-sector, sector-crossing, segment-crossing. */
	static const struct {
		uint64_t off, len;
	} cases[] = {
	    {0, 1},    {3, 1},	   {511, 1},	 {510, 4},   {100, 1000}, {511, 1026},	{512, 1},
	    {1023, 2}, {12287, 2}, {12000, 800}, {12288, 1}, {32767, 1},  {32000, 767}, {1, 32766},
	};
	struct bs_device *dev;
	uint8_t *shadow, buf[32768];
	char *text;
	const uint64_t size = 64 * 512;

	(void)state;
	/* Device sectors 0..24 are A from sector 8, 24..64 are B from sector 0. */
	text = h_fmt("0 24 linear %s 8\n24 40 linear %s 0", fa.path, fb.path);
	dev = dev_create("h1-rmw", text, false);
	assert_int_equal(bs_device_block_size(dev), 512);
	shadow = malloc(size);
	assert_non_null(shadow);
	memcpy(shadow, fa.shadow + 8 * 512, 24 * 512);
	memcpy(shadow + 24 * 512, fb.shadow, 40 * 512);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t off = cases[i].off, len = cases[i].len;

		memset(buf, 0, len);
		assert_int_equal(dev_rw(dev, BS_OP_READ, buf, len, off), 0);
		assert_memory_equal(buf, shadow + off, len);
		h_pattern_fill(buf, len, 200 + (uint32_t)i, 0);
		memcpy(shadow + off, buf, len);
		assert_int_equal(dev_rw(dev, BS_OP_WRITE, buf, len, off), 0);
		assert_int_equal(dev_rw(dev, BS_OP_READ, buf, size, 0), 0);
		assert_memory_equal(buf, shadow, size);
	}
	random_unaligned(dev, shadow, size, 77, 1500);

	/* The files hold exactly what the shadow says, at the mapped places, nothing else. */
	memcpy(fa.shadow + 8 * 512, shadow, 24 * 512);
	memcpy(fb.shadow, shadow + 24 * 512, 40 * 512);
	h_file_check_shadow(&fa);
	h_file_check_shadow(&fb);

	/* Unaligned write-zeroes zero exactly their bytes. */
	assert_int_equal(dev_rw(dev, BS_OP_WRITE_ZEROES, NULL, 1400, 100), 0);
	memset(shadow + 100, 0, 1400);
	assert_int_equal(dev_rw(dev, BS_OP_READ, buf, size, 0), 0);
	assert_memory_equal(buf, shadow, size);

	/* Unaligned discards keep their partial blocks (and everything outside). */
	h_pattern_fill(shadow, size, 300, 0);
	assert_int_equal(dev_rw(dev, BS_OP_WRITE, shadow, size, 0), 0);
	assert_int_equal(dev_rw(dev, BS_OP_DISCARD, NULL, 1400, 100), 0);
	assert_int_equal(dev_rw(dev, BS_OP_READ, buf, size, 0), 0);
	assert_memory_equal(buf, shadow, 512);
	assert_memory_equal(buf + 1024, shadow + 1024, size - 1024);

	/* Flush. */
	assert_int_equal(dev_rw(dev, BS_OP_FLUSH, NULL, 0, 0), 0);
	bs_device_put(dev);
	dev_remove("h1-rmw");
	free(shadow);
	free(text);
}

/* The same on a device with 4096-byte blocks (crypt with sector_size:4096 underneath). */
static void test_unaligned_io_4k(void **state)
{
	struct bs_device *dev;
	uint8_t *shadow;
	char *text;
	char key[129];
	const uint64_t size = 32 << 10;

	(void)state;
	for (int i = 0; i < 128; i++)
		key[i] = "0123456789abcdef"[(i * 7 + i / 16) % 16];
	key[128] = '\0';
	text = h_fmt("0 64 crypt aes-xts-plain64 %s 0 %s 0 1 sector_size:4096", key, fa.path);
	dev = dev_create("h1-rmw4k", text, false);
	assert_int_equal(bs_device_block_size(dev), 4096);
	shadow = calloc(1, size);
	assert_non_null(shadow);
	/* Start from known contents. */
	h_pattern_fill(shadow, size, 400, 0);
	assert_int_equal(dev_rw(dev, BS_OP_WRITE, shadow, size, 0), 0);
	random_unaligned(dev, shadow, size, 78, 800);
	bs_device_put(dev);
	dev_remove("h1-rmw4k");
	free(shadow);
	free(text);
}

/*
 * Threads writing interleaved single bytes of the same sectors at the same time lose no
 * update: each write is a read-modify-write of its sector, which must not interleave with
 * another one of the same sector.  Checked after every round.
 */
#define RMW_THREADS 4
#define RMW_ROUNDS  40
#define RMW_BYTES   1024

struct byte_writer {
	pthread_t th;
	struct bs_device *dev;
	pthread_barrier_t *bar;
	unsigned lane;
	int r;
};

static uint8_t rmw_value(uint64_t off, unsigned round)
{
	return (uint8_t)(off * 3 + round * 17 + 1);
}

static void *byte_writer_main(void *arg)
{
	struct byte_writer *w = arg;

	for (unsigned round = 0; round < RMW_ROUNDS; round++) {
		pthread_barrier_wait(w->bar);
		for (uint64_t off = w->lane; off < RMW_BYTES && !w->r; off += RMW_THREADS) {
			uint8_t v = rmw_value(off, round);

			w->r = dev_rw(w->dev, BS_OP_WRITE, &v, 1, off);
		}
		pthread_barrier_wait(w->bar);
	}
	return NULL;
}

static void test_concurrent_rmw(void **state)
{
	struct byte_writer w[RMW_THREADS];
	pthread_barrier_t bar;
	struct bs_device *dev;
	uint8_t buf[RMW_BYTES];
	unsigned lost = 0;
	char *text;

	(void)state;
	text = h_fmt("0 16 linear %s 0", fa.path);
	dev = dev_create("h1-race", text, false);
	assert_int_equal(pthread_barrier_init(&bar, NULL, RMW_THREADS + 1), 0);
	for (unsigned i = 0; i < RMW_THREADS; i++) {
		w[i] = (struct byte_writer){.dev = dev, .bar = &bar, .lane = i};
		assert_int_equal(pthread_create(&w[i].th, NULL, byte_writer_main, &w[i]), 0);
	}
	for (unsigned round = 0; round < RMW_ROUNDS; round++) {
		pthread_barrier_wait(&bar);
		pthread_barrier_wait(&bar);
		assert_int_equal(dev_rw(dev, BS_OP_READ, buf, sizeof(buf), 0), 0);
		for (uint64_t off = 0; off < sizeof(buf); off++)
			lost += buf[off] != rmw_value(off, round);
	}
	for (unsigned i = 0; i < RMW_THREADS; i++) {
		assert_int_equal(pthread_join(w[i].th, NULL), 0);
		assert_int_equal(w[i].r, 0);
	}
	pthread_barrier_destroy(&bar);
	if (lost) {
		print_error("%u byte updates lost\n", lost);
		fail();
	}
	/* The bytes behind the written area are untouched. */
	h_file_pread(&fa, buf, sizeof(buf), RMW_BYTES);
	assert_memory_equal(buf, fa.shadow + RMW_BYTES, sizeof(buf));
	bs_device_put(dev);
	dev_remove("h1-race");
	free(text);
}

/* ---- bounds and read-only -------------------------------------------------------------------- */

static void test_bounds_readonly(void **state)
{
	struct bs_device *dev;
	uint8_t buf[1024];
	char *text;

	(void)state;
	text = h_fmt("0 16 linear %s 0", fa.path);
	dev = dev_create("h1-ro", text, true);
	assert_true(bs_device_readonly(dev));
	assert_int_equal(dev_rw(dev, BS_OP_READ, buf, 100, 8000), 0);
	assert_memory_equal(buf, fa.shadow + 8000, 100);
	assert_int_equal(dev_rw(dev, BS_OP_WRITE, buf, 512, 0), -EROFS);
	assert_int_equal(dev_rw(dev, BS_OP_WRITE, buf, 5, 3), -EROFS);
	assert_int_equal(dev_rw(dev, BS_OP_WRITE_ZEROES, NULL, 512, 0), -EROFS);
	assert_int_equal(dev_rw(dev, BS_OP_DISCARD, NULL, 512, 0), -EROFS);
	assert_int_equal(dev_rw(dev, BS_OP_FLUSH, NULL, 0, 0), 0);
	h_file_check_shadow(&fa);
	/* Out of range, including offsets whose end would overflow. */
	assert_int_equal(dev_rw(dev, BS_OP_READ, buf, 1, 8192), -EINVAL);
	assert_int_equal(dev_rw(dev, BS_OP_READ, buf, 2, 8191), -EINVAL);
	assert_int_equal(dev_rw(dev, BS_OP_READ, buf, 512, 8192), -EINVAL);
	assert_int_equal(dev_rw(dev, BS_OP_READ, buf, 1024, UINT64_MAX - 511), -EINVAL);
	assert_int_equal(dev_rw(dev, BS_OP_READ, buf, 1, UINT64_MAX), -EINVAL);
	assert_int_equal(dev_rw(dev, BS_OP_READ, buf, 0, 8192), 0);
	assert_int_equal(dev_rw(dev, BS_OP_READ, buf, 1, 8191), 0);
	assert_int_equal(buf[0], fa.shadow[8191]);
	bs_device_put(dev);
	dev_remove("h1-ro");
	free(text);
}

/* ---- reload, resume, clear --------------------------------------------------------------- */

static void test_reload(void **state)
{
	struct strbuf err = STRBUF_INIT;
	struct bs_device_info info;
	struct bs_device *dev;
	uint8_t buf[512];
	char *ta, *tb, *st;

	(void)state;
	ta = h_fmt("0 16 linear %s 0\n", fa.path);
	tb = h_fmt("0 32 linear %s 8\n", fb.path);
	dev = dev_create("h1-reload", ta, false);

	assert_int_equal(dev_load(dev, tb, &err), 0);
	bs_device_get_info(dev, &info);
	assert_true(info.live_table);
	assert_true(info.inactive_table);
	assert_false(info.suspended);
	assert_true(info.size == 16);
	assert_true(bs_device_size(dev) == 16);
	/* The live table keeps serving reads and writes. */
	assert_int_equal(dev_rw(dev, BS_OP_READ, buf, 512, 512), 0);
	assert_memory_equal(buf, fa.shadow + 512, 512);
	h_pattern_fill(buf, 512, 500, 0);
	assert_int_equal(dev_rw(dev, BS_OP_WRITE, buf, 512, 0), 0);
	memcpy(fa.shadow, buf, 512);
	h_file_check_shadow(&fa);
	h_file_check_shadow(&fb);
	assert_int_equal(dev_rw(dev, BS_OP_READ, buf, 512, 16 * 512), -EINVAL);
	st = dev_status(dev, false, BS_STATUS_TABLE);
	assert_string_equal(st, ta);
	free(st);
	st = dev_status(dev, true, BS_STATUS_TABLE);
	assert_string_equal(st, tb);
	free(st);

	/* Resume swaps it in. */
	assert_int_equal(bs_device_resume(dev, &err), 0);
	bs_device_get_info(dev, &info);
	assert_false(info.inactive_table);
	assert_false(info.suspended);
	assert_true(info.size == 32);
	assert_int_equal(dev_rw(dev, BS_OP_READ, buf, 512, 512), 0);
	assert_memory_equal(buf, fb.shadow + 9 * 512, 512);
	assert_int_equal(dev_rw(dev, BS_OP_READ, buf, 512, 31 * 512), 0);
	st = dev_status(dev, false, BS_STATUS_TABLE);
	assert_string_equal(st, tb);
	free(st);
	sb_reset(&err);
	assert_int_equal(bs_device_status(dev, true, BS_STATUS_TABLE, 0, NULL, &err), -ENXIO);

	/* Suspend, load, resume: the same through an explicit suspend. */
	assert_int_equal(bs_device_suspend(dev, false), 0);
	assert_int_equal(bs_device_suspend(dev, true), 0); /* again: no-op */
	assert_int_equal(dev_load(dev, ta, &err), 0);
	bs_device_get_info(dev, &info);
	assert_true(info.suspended);
	assert_true(info.size == 32);
	assert_int_equal(bs_device_resume(dev, &err), 0);
	bs_device_get_info(dev, &info);
	assert_false(info.suspended);
	assert_true(info.size == 16);

	/* Clear drops the inactive table only. */
	assert_int_equal(dev_load(dev, tb, &err), 0);
	assert_int_equal(bs_device_clear(dev), 0);
	bs_device_get_info(dev, &info);
	assert_false(info.inactive_table);
	assert_true(info.live_table);
	assert_int_equal(bs_device_resume(dev, &err), 0);
	assert_true(bs_device_size(dev) == 16);
	/* Resume without anything to do is fine. */
	assert_int_equal(bs_device_resume(dev, &err), 0);

	bs_device_put(dev);
	dev_remove("h1-reload");
	free(ta);
	free(tb);
	sb_free(&err);
}

static void test_failed_load(void **state)
{
	struct strbuf err = STRBUF_INIT;
	struct bs_device_info info;
	struct bs_device *dev, *low;
	uint8_t buf[512];
	char *ta, *tb, *bad, *st;
	int r;

	(void)state;
	ta = h_fmt("0 16 linear %s 0\n", fa.path);
	tb = h_fmt("0 16 linear /dev/mapper/h1-low 0\n");
	low = dev_create("h1-low", ta, false);
	dev = dev_create("h1-top", ta, false);

	/* No inactive table: a bad load leaves none. */
	bad = h_fmt("0 16 linear /dev/mapper/h1-low 0\n16 8 linear %s 99999999", fb.path);
	r = dev_load(dev, bad, &err);
	expect_error(r, -EINVAL, &err, "line 2: linear: ");
	bs_device_get_info(dev, &info);
	assert_false(info.inactive_table);
	bs_device_get_info(low, &info);
	assert_int_equal(info.holders, 0);

	/* With an inactive table: a bad load keeps it, and the live one too. */
	assert_int_equal(dev_load(dev, tb, &err), 0);
	bs_device_get_info(low, &info);
	assert_int_equal(info.holders, 1);
	r = dev_load(dev, bad, &err);
	expect_error(r, -EINVAL, &err, "too small for target");
	r = dev_load(dev, "0 8 zero\n8 8 striped", &err);
	expect_error(r, -EINVAL, &err, "line 2: striped: not enough arguments");
	r = dev_load(dev, "", &err);
	expect_error(r, -EINVAL, &err, "empty table");
	bs_device_get_info(low, &info);
	assert_int_equal(info.holders, 1);
	bs_device_get_info(dev, &info);
	assert_true(info.inactive_table);
	assert_false(info.suspended);
	st = dev_status(dev, true, BS_STATUS_TABLE);
	assert_string_equal(st, tb);
	free(st);
	st = dev_status(dev, false, BS_STATUS_TABLE);
	assert_string_equal(st, ta);
	free(st);
	assert_int_equal(dev_rw(dev, BS_OP_READ, buf, 512, 0), 0);
	assert_memory_equal(buf, fa.shadow, 512);

	/* And the kept inactive table is what resume activates. */
	assert_int_equal(bs_device_resume(dev, &err), 0);
	st = dev_status(dev, false, BS_STATUS_TABLE);
	assert_string_equal(st, tb);
	free(st);
	assert_int_equal(dev_rw(dev, BS_OP_READ, buf, 512, 512), 0);
	assert_memory_equal(buf, fa.shadow + 512, 512);

	bs_device_put(dev);
	bs_device_put(low);
	dev_remove("h1-top");
	dev_remove("h1-low");
	free(ta);
	free(tb);
	free(bad);
	sb_free(&err);
}

/* ---- suspend holds I/O ------------------------------------------------------------------- */

struct bg_io {
	pthread_t th;
	struct bs_device *dev;
	struct bs_io io;
	atomic_bool done;
	int r;
};

static void *bg_io_main(void *arg)
{
	struct bg_io *b = arg;

	b->r = bs_device_submit(b->dev, &b->io);
	atomic_store(&b->done, true);
	return NULL;
}

static void bg_start(struct bg_io *b, struct bs_device *dev, enum bs_op op, void *buf, uint64_t len,
		     uint64_t off)
{
	memset(b, 0, sizeof(*b));
	b->dev = dev;
	b->io = (struct bs_io){.op = op, .off = off, .len = len, .buf = buf};
	atomic_init(&b->done, false);
	assert_int_equal(pthread_create(&b->th, NULL, bg_io_main, b), 0);
}

static void test_suspend_holds_io(void **state)
{
	struct strbuf err = STRBUF_INIT;
	struct bs_device_info info;
	struct bs_device *dev;
	struct bg_io rd, wr, fl;
	uint8_t rbuf[700], wbuf[700];
	char *text;

	(void)state;
	text = h_fmt("0 16 linear %s 0", fa.path);
	dev = dev_create("h1-susp", text, false);
	assert_int_equal(bs_device_suspend(dev, false), 0);
	bs_device_get_info(dev, &info);
	assert_true(info.suspended);

	h_pattern_fill(wbuf, sizeof(wbuf), 600, 0);
	bg_start(&rd, dev, BS_OP_READ, rbuf, sizeof(rbuf), 100);
	bg_start(&wr, dev, BS_OP_WRITE, wbuf, sizeof(wbuf), 4000);
	bg_start(&fl, dev, BS_OP_FLUSH, NULL, 0, 0);
	h_sleep_ms(150);
	assert_false(atomic_load(&rd.done));
	assert_false(atomic_load(&wr.done));
	assert_false(atomic_load(&fl.done));
	/* Nothing reached the file. */
	h_file_check_shadow(&fa);
	/* Status and info still answer while suspended. */
	free(dev_status(dev, false, BS_STATUS_INFO));

	assert_int_equal(bs_device_resume(dev, &err), 0);
	assert_int_equal(pthread_join(rd.th, NULL), 0);
	assert_int_equal(pthread_join(wr.th, NULL), 0);
	assert_int_equal(pthread_join(fl.th, NULL), 0);
	assert_int_equal(rd.r, 0);
	assert_int_equal(wr.r, 0);
	assert_int_equal(fl.r, 0);
	assert_memory_equal(rbuf, fa.shadow + 100, sizeof(rbuf));
	memcpy(fa.shadow + 4000, wbuf, sizeof(wbuf));
	h_file_check_shadow(&fa);

	/* Removing a suspended device fails the I/O it holds. */
	assert_int_equal(bs_device_suspend(dev, true), 0);
	bg_start(&rd, dev, BS_OP_READ, rbuf, sizeof(rbuf), 100);
	h_sleep_ms(50);
	assert_false(atomic_load(&rd.done));
	dev_remove("h1-susp");
	assert_int_equal(pthread_join(rd.th, NULL), 0);
	assert_int_equal(rd.r, -ENXIO);
	/* Our reference outlives the device: everything says it is gone. */
	assert_int_equal(dev_rw(dev, BS_OP_READ, rbuf, 512, 0), -ENXIO);
	assert_int_equal(bs_device_open(dev), -ENXIO);
	assert_int_equal(bs_device_suspend(dev, false), -ENXIO);
	assert_int_equal(bs_device_resume(dev, &err), -ENXIO);
	assert_int_equal(bs_device_load(dev, "0 8 zero", &err), -ENXIO);
	assert_null(bs_device_lookup("h1-susp"));
	bs_device_put(dev);
	free(text);
	sb_free(&err);
}

/* ---- remove ------------------------------------------------------------------------------- */

static void test_remove_busy(void **state)
{
	struct strbuf err = STRBUF_INIT;
	struct bs_device_info info;
	struct bs_device *low, *top, *other;
	char *ta, *tl;
	int r;

	(void)state;
	ta = h_fmt("0 16 linear %s 0", fa.path);
	tl = h_fmt("0 16 linear /dev/mapper/h1-rlow 0");
	low = dev_create("h1-rlow", ta, false);
	top = dev_create("h1-rtop", tl, false);
	bs_device_get_info(low, &info);
	assert_int_equal(info.holders, 1);

	r = bs_device_remove("h1-rlow", &err);
	expect_error(r, -EBUSY, &err, "device h1-rlow is busy");
	assert_non_null(strstr(sb_str(&err), "used by another device"));
	sb_reset(&err);
	assert_non_null(other = bs_device_lookup("h1-rlow"));
	bs_device_put(other);

	/* An open device cannot be removed; once closed it can. */
	assert_int_equal(bs_device_open(top), 0);
	bs_device_get_info(top, &info);
	assert_int_equal(info.open_count, 1);
	r = bs_device_remove("h1-rtop", &err);
	expect_error(r, -EBUSY, &err, "(open)");
	sb_reset(&err);
	bs_device_close(top);
	dev_remove("h1-rtop");
	bs_device_put(top);
	bs_device_get_info(low, &info);
	assert_int_equal(info.holders, 0);

	/* An inactive table holds its devices as well. */
	other = dev_create("h1-rother", NULL, false);
	assert_int_equal(dev_load(other, tl, &err), 0);
	r = bs_device_remove("h1-rlow", &err);
	expect_error(r, -EBUSY, &err, "used by another device");
	sb_reset(&err);
	assert_int_equal(bs_device_clear(other), 0);
	bs_device_get_info(low, &info);
	assert_int_equal(info.holders, 0);
	dev_remove("h1-rlow");
	bs_device_put(low);
	bs_device_put(other);
	dev_remove("h1-rother");
	r = bs_device_remove("h1-rother", &err);
	expect_error(r, -ENXIO, &err, "does not exist");
	free(ta);
	free(tl);
	sb_free(&err);
}

/* ---- cycles -----------------------------------------------------------------------------------
 */

static void test_cycles(void **state)
{
	struct strbuf err = STRBUF_INIT;
	struct bs_device *a, *b, *c;
	char *ta;
	int r;

	(void)state;
	ta = h_fmt("0 16 linear %s 0", fa.path);
	a = dev_create("h1-cya", ta, false);
	b = dev_create("h1-cyb", "0 16 linear /dev/mapper/h1-cya 0", false);

	/* Itself. */
	r = dev_load(a, "0 16 linear /dev/mapper/h1-cya 0", &err);
	expect_error(r, -ELOOP, &err, "line 1: linear: device /dev/mapper/h1-cya: would make");
	/* Through b, with any target. */
	r = dev_load(a, "0 16 linear /dev/mapper/h1-cyb 0", &err);
	expect_error(r, -ELOOP, &err, "would make the device use itself");
	r = dev_load(a, "0 8 zero\n8 8 striped 1 8 /dev/mapper/h1-cyb 0", &err);
	expect_error(r, -ELOOP, &err, "line 2: striped:");
	r = dev_load(a, "0 16 flakey /dev/mapper/h1-cyb 0 1 1", &err);
	expect_error(r, -ELOOP, &err, "flakey:");
	r = dev_load(a, "0 16 delay /dev/mapper/h1-cyb 0 0", &err);
	expect_error(r, -ELOOP, &err, "delay:");

	/* Through an inactive table of c. */
	c = dev_create("h1-cyc", NULL, false);
	assert_int_equal(dev_load(c, "0 16 linear /dev/mapper/h1-cyb 0", &err), 0);
	r = dev_load(a, "0 16 linear /dev/mapper/h1-cyc 0", &err);
	expect_error(r, -ELOOP, &err, "would make the device use itself");
	/* Nothing was kept by the refusals. */
	{
		struct bs_device_info info;

		bs_device_get_info(a, &info);
		assert_false(info.inactive_table);
		assert_int_equal(info.holders, 1);
	}
	/* Not a cycle: a fresh table over the file, or over an unrelated device. */
	assert_int_equal(dev_load(a, ta, &err), 0);
	assert_int_equal(bs_device_clear(c), 0);
	assert_int_equal(dev_load(c, ta, &err), 0);
	assert_int_equal(bs_device_resume(c, &err), 0);
	assert_int_equal(dev_load(a, "0 16 linear /dev/mapper/h1-cyc 0", &err), 0);

	/* A device cannot be created over itself either. */
	sb_reset(&err);
	r = bs_device_create("h1-cyself", NULL, false, "0 8 linear /dev/mapper/h1-cyself 0", &err);
	assert_true(r == -ELOOP || r == -ENOENT);
	assert_null(bs_device_lookup("h1-cyself"));

	bs_device_put(a);
	bs_device_put(b);
	bs_device_put(c);
	dev_remove("h1-cyb");
	dev_remove("h1-cya");
	dev_remove("h1-cyc");
	free(ta);
	sb_free(&err);
}

/* ---- stacking, info, events, deps, messages ------------------------------------------------ */

static void test_stacked(void **state)
{
	struct strbuf err = STRBUF_INIT, sb = STRBUF_INIT;
	struct bs_device_info info;
	struct bs_device *low, *top;
	uint8_t buf[1000];
	char *tl, *expect;
	char hello[] = "hello";
	char *argv[] = {hello, NULL};
	uint32_t ev;

	(void)state;
	tl = h_fmt("0 32 linear %s 16", fb.path);
	low = dev_create("h1-slow", tl, false);
	top = dev_create("h1-stop", "0 8 zero\n8 16 linear /dev/mapper/h1-slow 4", false);
	/* Top sector 8 is low sector 4 is file sector 20. */
	h_pattern_fill(buf, sizeof(buf), 700, 0);
	assert_int_equal(dev_rw(top, BS_OP_WRITE, buf, sizeof(buf), 8 * 512 + 3), 0);
	memcpy(fb.shadow + 20 * 512 + 3, buf, sizeof(buf));
	h_file_check_shadow(&fb);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(dev_rw(top, BS_OP_READ, buf, 512, 8 * 512 + 3), 0);
	assert_memory_equal(buf, fb.shadow + 20 * 512 + 3, 512);

	bs_device_get_info(top, &info);
	assert_string_equal(info.name, "h1-stop");
	assert_true(info.live_table);
	assert_int_equal(info.nr_targets, 2);
	assert_true(info.size == 24);
	assert_int_equal(info.block_size, 512);
	assert_int_equal(info.holders, 0);
	bs_device_get_info(low, &info);
	assert_int_equal(info.holders, 1);

	assert_int_equal(bs_device_deps(top, false, &sb), 0);
	assert_string_equal(sb_str(&sb), "/dev/mapper/h1-slow\n");
	sb_reset(&sb);
	assert_int_equal(bs_device_deps(low, false, &sb), 0);
	expect = h_fmt("%s\n", fb.path);
	assert_string_equal(sb_str(&sb), expect);
	free(expect);
	sb_reset(&sb);
	assert_int_equal(bs_device_deps(low, true, &sb), -ENXIO);

	/* Messages: none of these targets takes one; sectors beyond the end are refused. */
	assert_int_equal(bs_device_message(top, 8, 1, argv, &sb, &err), -EINVAL);
	assert_non_null(strstr(sb_str(&err), "does not take messages"));
	sb_reset(&err);
	assert_int_equal(bs_device_message(top, 24, 1, argv, &sb, &err), -EINVAL);
	assert_non_null(strstr(sb_str(&err), "beyond the end"));
	sb_reset(&err);

	/* Events. */
	bs_device_get_info(top, &info);
	ev = info.event_nr;
	bs_device_event(top);
	bs_device_get_info(top, &info);
	assert_int_equal(info.event_nr, ev + 1);
	assert_int_equal(bs_device_wait_event(top, ev, NULL, NULL), 0);

	/* Remove top of stack first, as remove_all does. */
	bs_device_put(top);
	bs_device_put(low);
	bs_device_remove_all();
	assert_null(bs_device_lookup("h1-stop"));
	assert_null(bs_device_lookup("h1-slow"));
	free(tl);
	sb_free(&err);
	sb_free(&sb);
}

#define T(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_create_names),   T(test_unaligned_io),     T(test_unaligned_io_4k),
	    T(test_concurrent_rmw), T(test_bounds_readonly),  T(test_reload),
	    T(test_failed_load),    T(test_suspend_holds_io), T(test_remove_busy),
	    T(test_cycles),	    T(test_stacked),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
