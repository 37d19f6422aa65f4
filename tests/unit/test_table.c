/*
 * test_table.c - table parsing and construction (engine/table.c) for the basic targets.
 *
 *   - valid tables of every basic target (linear, striped, zero, error, flakey, delay) build,
 *     and their `table` status reads back into an identical table;
 *   - INFO status formats (striped "N dev... 1 A..", delay "r w f", others empty), and a
 *     striped leg that fails a read turns to D;
 *   - every refusal of the table layer (gaps, overlaps, zero length, huge, non-numeric and
 *     negative numbers, unknown targets, empty tables) and of every target constructor
 *     (argument counts, numbers, features, their conflicts and duplicates, missing devices,
 *     areas beyond the end of a device) fails with the right errno and one error line that
 *     names the line and the problem, keeping no table and no file descriptor.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/table.h"
#include "helpers.h"
#include "util/strbuf.h"

#define MISSING "/tmp/blkstack-unit-no-such-file"

/* A, B, C: 1 MiB (2048 sectors) each; S: 4 KiB (8 sectors). */
static struct h_file fa, fb, fc, fs;
#define A (fa.path)
#define B (fb.path)
#define C (fc.path)
#define S (fs.path)

static int group_setup(void **state)
{
	(void)state;
	h_file_create(&fa, 1 << 20, 1, false);
	h_file_create(&fb, 1 << 20, 2, false);
	h_file_create(&fc, 1 << 20, 3, false);
	h_file_create(&fs, 4096, 4, false);
	unlink(MISSING);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	h_file_remove(&fa);
	h_file_remove(&fb);
	h_file_remove(&fc);
	h_file_remove(&fs);
	return 0;
}

/* Builds TEXT, checks its table status is EXPECT, and that EXPECT builds the same table. */
static void roundtrip(const char *text, const char *expect)
{
	struct bs_table *t = h_table_ok(text, false), *t2;
	char *st = h_table_status(t, BS_STATUS_TABLE), *st2;

	if (strcmp(st, expect)) {
		print_error("input:    %s\nstatus:   %sexpected: %s", text, st, expect);
		fail();
	}
	t2 = h_table_ok(st, false);
	st2 = h_table_status(t2, BS_STATUS_TABLE);
	assert_string_equal(st2, st);
	assert_int_equal(t2->nr_targets, t->nr_targets);
	assert_true(t2->size == t->size);
	free(st2);
	free(st);
	bs_table_destroy(t2);
	bs_table_destroy(t);
}

/* TEXT is canonical: the status is TEXT itself. */
static void roundtrip_same(const char *text)
{
	roundtrip(text, text);
}

/* ---- valid tables ------------------------------------------------------------------------ */

static void test_valid_linear(void **state)
{
	char *s;

	(void)state;
	s = h_fmt("0 2048 linear %s 0\n", A);
	roundtrip_same(s);
	free(s);
	/* The last sector of the device, exactly. */
	s = h_fmt("0 1 linear %s 2047\n", A);
	roundtrip_same(s);
	free(s);
	s = h_fmt("0 1024 linear %s 1024\n1024 8 linear %s 0\n1032 2048 linear %s 0\n", A, S, B);
	roundtrip_same(s);
	free(s);
}

static void test_valid_striped(void **state)
{
	char *s;

	(void)state;
	s = h_fmt("0 2048 striped 2 8 %s 0 %s 0\n", A, B);
	roundtrip_same(s);
	free(s);
	/* Non-power-of-two chunk, three legs at different offsets. */
	s = h_fmt("0 420 striped 3 7 %s 0 %s 1 %s 1908\n", A, B, C);
	roundtrip_same(s);
	free(s);
	s = h_fmt("0 8 striped 1 1 %s 0\n8 2048 striped 2 1024 %s 1024 %s 1024\n", S, A, B);
	roundtrip_same(s);
	free(s);
}

static void test_valid_zero_error(void **state)
{
	(void)state;
	roundtrip_same("0 8 zero\n");
	roundtrip_same("0 8 error\n8 16 zero\n24 1 error\n");
	/* The largest table: 2^55 - 1 sectors, still representable in bytes. */
	roundtrip_same("0 36028797018963967 zero\n");
	/* error ignores arguments, as Linux does. */
	roundtrip("0 8 error foo 1 2\n", "0 8 error\n");
}

static void test_valid_flakey(void **state)
{
	char *s, *e;

	(void)state;
	s = h_fmt("0 2048 flakey %s 0 1 1 0\n", A);
	roundtrip_same(s);
	free(s);
	/* Without a feature group, the table shows "0" features; it reads back the same. */
	s = h_fmt("0 2048 flakey %s 0 1 1\n", A);
	e = h_fmt("0 2048 flakey %s 0 1 1 0\n", A);
	roundtrip(s, e);
	free(s);
	free(e);
	s = h_fmt("0 2048 flakey %s 0 0 5 1 drop_writes\n", A);
	roundtrip_same(s);
	free(s);
	s = h_fmt("0 2048 flakey %s 0 3 0 1 error_writes\n", A);
	roundtrip_same(s);
	free(s);
	s = h_fmt("0 1024 flakey %s 8 3 5 2 error_writes error_reads\n", A);
	roundtrip_same(s);
	free(s);
	s = h_fmt("0 1024 flakey %s 1024 3 5 6 error_reads corrupt_bio_byte 32 r 1 0\n", A);
	roundtrip_same(s);
	free(s);
	s = h_fmt("0 2048 flakey %s 0 4294967294 1 7 drop_writes error_reads corrupt_bio_byte 1 r "
		  "255 4294967295\n",
		  A);
	roundtrip_same(s);
	free(s);
	s = h_fmt("0 8 flakey %s 0 1 1 5 corrupt_bio_byte 512 w 0 0\n", S);
	roundtrip_same(s);
	free(s);
	/* Features in any order and case come back in canonical order and case. */
	s = h_fmt("0 8 flakey %s 0 1 1 7 corrupt_bio_byte 9 R 7 0 Error_Reads DROP_WRITES\n", S);
	e = h_fmt("0 8 flakey %s 0 1 1 7 drop_writes error_reads corrupt_bio_byte 9 r 7 0\n", S);
	roundtrip(s, e);
	free(s);
	free(e);
}

static void test_valid_delay(void **state)
{
	char *s;

	(void)state;
	s = h_fmt("0 1024 delay %s 0 100\n", A);
	roundtrip_same(s);
	free(s);
	s = h_fmt("0 1024 delay %s 0 0 %s 8 200\n", A, B);
	roundtrip_same(s);
	free(s);
	s = h_fmt("0 1024 delay %s 0 100 %s 8 200 %s 1024 4294967295\n", A, B, C);
	roundtrip_same(s);
	free(s);
}

/* Escapes a path the way the table parser reads it back (test's own implementation). */
static char *escape_arg(const char *path)
{
	char *out = malloc(2 * strlen(path) + 1), *o = out;

	assert_non_null(out);
	for (; *path; path++) {
		if (*path == ' ' || *path == '\t' || *path == '\\')
			*o++ = '\\';
		*o++ = *path;
	}
	*o = '\0';
	return out;
}

/* Device paths with white space and backslashes come back escaped, so they read back. */
static void test_paths_with_blanks(void **state)
{
	struct h_file w = {.size = 4096};
	struct bs_table *t;
	char *e, *s, *st;
	int fd;

	(void)state;
	snprintf(w.path, sizeof(w.path), "/tmp/blkstack unit\\x\tXXXXXX");
	fd = mkstemp(w.path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4096), 0);
	close(fd);
	e = escape_arg(w.path);

	s = h_fmt("0 8 linear %s 0\n", e);
	roundtrip_same(s);
	free(s);
	s = h_fmt("0 8 striped 2 4 %s 0 %s 4\n", e, A);
	roundtrip_same(s);
	t = h_table_ok(s, false);
	st = h_table_status(t, BS_STATUS_INFO);
	free(s);
	s = h_fmt("0 8 striped 2 %s %s 1 AA\n", e, A);
	assert_string_equal(st, s);
	free(st);
	free(s);
	bs_table_destroy(t);
	s = h_fmt("0 8 flakey %s 0 1 1 1 drop_writes\n", e);
	roundtrip_same(s);
	free(s);
	s = h_fmt("0 8 delay %s 0 1 %s 0 2 %s 0 3\n", e, A, e);
	roundtrip_same(s);
	free(s);
	/* Unescaped, the blank splits the path: a different (refused) table. */
	s = h_fmt("0 8 linear %s 0\n", w.path);
	h_table_fails(s, -EINVAL, 1, "linear: invalid argument count");
	free(s);
	free(e);
	h_file_remove(&w);
}

static void test_comments_and_blank_lines(void **state)
{
	struct bs_table *t;
	char *st;

	(void)state;
	t = h_table_ok("# a comment\n\n   \n\t# indented comment\r\n0 8 zero\r\n\n8 8 error",
		       false);
	assert_int_equal(t->nr_targets, 2);
	assert_true(t->size == 16);
	assert_int_equal(t->block_size, 512);
	st = h_table_status(t, BS_STATUS_TABLE);
	assert_string_equal(st, "0 8 zero\n8 8 error\n");
	free(st);
	/* White space runs between arguments are one separator. */
	bs_table_destroy(t);
	t = h_table_ok("  0\t 8   zero  ", false);
	assert_true(t->size == 8);
	bs_table_destroy(t);
}

static void test_find_target(void **state)
{
	struct bs_table *t;

	(void)state;
	t = h_table_ok("0 8 zero\n8 1 error\n9 100 zero\n109 3 error", false);
	assert_int_equal(t->nr_targets, 4);
	assert_true(t->size == 112);
	assert_ptr_equal(bs_table_find_target(t, 0), &t->targets[0]);
	assert_ptr_equal(bs_table_find_target(t, 7), &t->targets[0]);
	assert_ptr_equal(bs_table_find_target(t, 8), &t->targets[1]);
	assert_ptr_equal(bs_table_find_target(t, 9), &t->targets[2]);
	assert_ptr_equal(bs_table_find_target(t, 108), &t->targets[2]);
	assert_ptr_equal(bs_table_find_target(t, 111), &t->targets[3]);
	assert_null(bs_table_find_target(t, 112));
	assert_null(bs_table_find_target(t, UINT64_MAX));
	bs_table_destroy(t);
}

/* ---- status -------------------------------------------------------------------------------- */

static void test_info_status(void **state)
{
	struct bs_table *t;
	char *s, *st, *e;
	struct strbuf sb = STRBUF_INIT;

	(void)state;
	s = h_fmt("0 16 striped 2 4 %s 0 %s 8\n"
		  "16 8 delay %s 0 100\n"
		  "24 8 flakey %s 0 1 1 1 drop_writes\n"
		  "32 8 linear %s 0\n"
		  "40 8 zero\n"
		  "48 8 error\n",
		  A, B, A, B, C);
	t = h_table_ok(s, false);
	st = h_table_status(t, BS_STATUS_INFO);
	e = h_fmt("0 16 striped 2 %s %s 1 AA\n"
		  "16 8 delay 0 0 0\n"
		  "24 8 flakey\n"
		  "32 8 linear\n"
		  "40 8 zero\n"
		  "48 8 error\n",
		  A, B);
	assert_string_equal(st, e);
	free(st);
	free(e);

	/* The target filter keeps only segments of that type. */
	bs_table_status(t, BS_STATUS_TABLE, 0, "delay", &sb);
	e = h_fmt("16 8 delay %s 0 100\n", A);
	assert_string_equal(sb_str(&sb), e);
	free(e);
	sb_reset(&sb);
	bs_table_status(t, BS_STATUS_INFO, 0, "raid", &sb);
	assert_string_equal(sb_str(&sb), "");
	sb_free(&sb);
	bs_table_destroy(t);
	free(s);
}

/* A leg that returns EIO is reported dead (D); the other stays A. */
static void test_striped_dead_leg(void **state)
{
	struct h_file x, y;
	struct bs_table *t;
	char *s, *st, *e;
	char buf[4096];

	(void)state;
	h_file_create(&x, 8192, 5, false);
	h_file_create(&y, 8192, 6, false);
	s = h_fmt("0 16 striped 2 4 %s 0 %s 0", x.path, y.path);
	t = h_table_ok(s, false);
	/* Shrinking a file under the table makes reads past its new end fail with EIO. */
	assert_int_equal(truncate(y.path, 0), 0);
	assert_int_equal(h_table_rw(t, BS_OP_READ, buf, 2048, 0), 0);	    /* leg 0 */
	assert_int_equal(h_table_rw(t, BS_OP_READ, buf, 2048, 2048), -EIO); /* leg 1 */
	st = h_table_status(t, BS_STATUS_INFO);
	e = h_fmt("0 16 striped 2 %s %s 1 AD\n", x.path, y.path);
	assert_string_equal(st, e);
	free(st);
	free(e);
	bs_table_destroy(t);
	free(s);
	h_file_remove(&x);
	h_file_remove(&y);
}

/* ---- refusals of the table layer ----------------------------------------------------------- */

static void test_bad_table_lines(void **state)
{
	(void)state;
	h_table_fails("", -EINVAL, 0, "empty table");
	h_table_fails("# only a comment\n\n", -EINVAL, 0, "empty table");
	h_table_fails("0 8", -EINVAL, 1, "expected");
	h_table_fails("0 8 zero\n8", -EINVAL, 2, "expected");
	h_table_fails("0 8 bogus", -EINVAL, 1, "unknown target type \"bogus\"");
	h_table_fails("0 8 zero\n8 8 Linear", -EINVAL, 2, "unknown target type");
	/* Gaps, overlaps, segments not starting at 0. */
	h_table_fails("8 8 zero", -EINVAL, 1, "gap or overlap");
	h_table_fails("0 8 zero\n16 8 zero", -EINVAL, 2, "gap or overlap");
	h_table_fails("0 8 zero\n4 8 zero", -EINVAL, 2, "gap or overlap");
	h_table_fails("0 8 zero\n0 8 zero", -EINVAL, 2, "gap or overlap");
	h_table_fails("# c\n\n0 8 zero\n9 8 zero", -EINVAL, 4, "starts at sector 9");
	/* Zero length. */
	h_table_fails("0 0 zero", -EINVAL, 1, "zero-length");
	h_table_fails("0 8 zero\n8 0 zero", -EINVAL, 2, "zero-length");
	/* Non-numeric, signed, hexadecimal, overflowing numbers. */
	h_table_fails("x 8 zero", -EINVAL, 1, "invalid start or length");
	h_table_fails("0 eight zero", -EINVAL, 1, "invalid start or length");
	h_table_fails("-0 8 zero", -EINVAL, 1, "invalid start or length");
	h_table_fails("0 -8 zero", -EINVAL, 1, "invalid start or length");
	h_table_fails("0 +8 zero", -EINVAL, 1, "invalid start or length");
	h_table_fails("0 0x8 zero", -EINVAL, 1, "invalid start or length");
	h_table_fails("0 8s zero", -EINVAL, 1, "invalid start or length");
	h_table_fails("0 18446744073709551616 zero", -EINVAL, 1, "invalid start or length");
	h_table_fails("0 18446744073709551615 zero", -EINVAL, 1, "invalid start or length");
	/* 2^55 sectors do not fit in 64-bit byte offsets. */
	h_table_fails("0 36028797018963968 zero", -EINVAL, 1, "invalid start or length");
	h_table_fails("0 36028797018963967 zero\n36028797018963967 1 zero", -EINVAL, 2,
		      "table too large");
	h_table_fails("0 8 zero\n8 36028797018963967 zero", -EINVAL, 2, "table too large");
	/* A bad line after good ones keeps nothing of the good ones. */
	{
		char *s = h_fmt("0 8 linear %s 0\n8 8 striped 1 8 %s 0\n16 8 zero x", A, B);

		h_table_fails(s, -EINVAL, 3, "zero: no arguments required");
		free(s);
	}
}

/* ---- refusals of the constructors ------------------------------------------------------------ */

static void test_bad_linear(void **state)
{
	char *s;

	(void)state;
	h_table_fails("0 8 linear", -EINVAL, 1, "linear: invalid argument count");
	s = h_fmt("0 8 linear %s", A);
	h_table_fails(s, -EINVAL, 1, "linear: invalid argument count");
	free(s);
	s = h_fmt("0 8 linear %s 0 0", A);
	h_table_fails(s, -EINVAL, 1, "linear: invalid argument count");
	free(s);
	s = h_fmt("0 8 linear %s x", A);
	h_table_fails(s, -EINVAL, 1, "linear: invalid device sector \"x\"");
	free(s);
	s = h_fmt("0 8 linear %s -1", A);
	h_table_fails(s, -EINVAL, 1, "invalid device sector \"-1\"");
	free(s);
	s = h_fmt("0 8 linear %s 36028797018963968", A);
	h_table_fails(s, -EINVAL, 1, "invalid device sector");
	free(s);
	/* Missing device, directory, empty-looking path. */
	h_table_fails("0 8 linear " MISSING " 0", -ENOENT, 1,
		      "linear: device " MISSING ": no such file or device");
	h_table_fails("0 8 linear /dev/null 0", -EINVAL, 1,
		      "linear: device /dev/null: not a regular file or block device");
	h_table_fails("0 8 linear /tmp 0", -EISDIR, 1, "linear: device /tmp: ");
	h_table_fails("0 8 linear 99999:99999 0", -ENOENT, 1, "no block device with that number");
	/* Beyond the end of the device, by one sector and by overflow. */
	s = h_fmt("0 9 linear %s 0", S);
	h_table_fails(s, -EINVAL, 1, "linear: ");
	h_table_fails(s, -EINVAL, 1, "too small for target");
	free(s);
	s = h_fmt("0 1 linear %s 8", S);
	h_table_fails(s, -EINVAL, 1, "too small for target: start=8, len=1, dev_size=8");
	free(s);
	s = h_fmt("0 8 linear %s 36028797018963967", S);
	h_table_fails(s, -EINVAL, 1, "too small for target");
	free(s);
	s = h_fmt("0 8 zero\n8 2049 linear %s 0", A);
	h_table_fails(s, -EINVAL, 2, "too small for target");
	free(s);
}

static void test_bad_striped(void **state)
{
	char *s;

	(void)state;
	h_table_fails("0 8 striped", -EINVAL, 1, "striped: not enough arguments");
	h_table_fails("0 8 striped 1", -EINVAL, 1, "striped: not enough arguments");
	/* Stripe counts and chunk sizes. */
	s = h_fmt("0 8 striped 0 8 %s 0", A);
	h_table_fails(s, -EINVAL, 1, "invalid stripe count \"0\"");
	free(s);
	s = h_fmt("0 8 striped x 8 %s 0", A);
	h_table_fails(s, -EINVAL, 1, "invalid stripe count \"x\"");
	free(s);
	s = h_fmt("0 8 striped -1 8 %s 0", A);
	h_table_fails(s, -EINVAL, 1, "invalid stripe count");
	free(s);
	s = h_fmt("0 8 striped 4294967296 8 %s 0", A);
	h_table_fails(s, -EINVAL, 1, "invalid stripe count");
	free(s);
	s = h_fmt("0 8 striped 1 0 %s 0", A);
	h_table_fails(s, -EINVAL, 1, "invalid chunk size \"0\"");
	free(s);
	s = h_fmt("0 8 striped 1 y %s 0", A);
	h_table_fails(s, -EINVAL, 1, "invalid chunk size \"y\"");
	free(s);
	s = h_fmt("0 8 striped 1 4294967296 %s 0", A);
	h_table_fails(s, -EINVAL, 1, "invalid chunk size");
	free(s);
	/* Lengths that do not divide. */
	s = h_fmt("0 9 striped 2 1 %s 0 %s 0", A, B);
	h_table_fails(s, -EINVAL, 1, "not divisible by number of stripes");
	free(s);
	s = h_fmt("0 24 striped 2 8 %s 0 %s 0", A, B);
	h_table_fails(s, -EINVAL, 1, "not divisible by chunk size");
	free(s);
	s = h_fmt("0 21 striped 3 2 %s 0 %s 0 %s 0", A, B, C);
	h_table_fails(s, -EINVAL, 1, "not divisible by chunk size");
	free(s);
	/* Argument counts for the stripe list. */
	s = h_fmt("0 16 striped 2 8 %s 0", A);
	h_table_fails(s, -EINVAL, 1, "2 stripes need 6 arguments, got 4");
	free(s);
	s = h_fmt("0 16 striped 2 8 %s 0 %s", A, B);
	h_table_fails(s, -EINVAL, 1, "2 stripes need 6 arguments, got 5");
	free(s);
	s = h_fmt("0 16 striped 2 8 %s 0 %s 0 %s 0", A, B, C);
	h_table_fails(s, -EINVAL, 1, "2 stripes need 6 arguments, got 8");
	free(s);
	s = h_fmt("0 8 striped 1 8 %s 0 extra", A);
	h_table_fails(s, -EINVAL, 1, "1 stripes need 4 arguments, got 5");
	free(s);
	/* Per-stripe offsets and devices; the second leg is bad after the first one opened. */
	s = h_fmt("0 16 striped 2 8 %s 0 %s x", A, B);
	h_table_fails(s, -EINVAL, 1, "invalid stripe device sector \"x\"");
	free(s);
	s = h_fmt("0 16 striped 2 8 %s -8 %s 0", A, B);
	h_table_fails(s, -EINVAL, 1, "invalid stripe device sector \"-8\"");
	free(s);
	s = h_fmt("0 16 striped 2 8 %s 0 %s 0", A, MISSING);
	h_table_fails(s, -ENOENT, 1, "striped: stripe device " MISSING ": no such file");
	free(s);
	/* Each leg holds len/stripes sectors: 8 fit in S, 9 do not. */
	s = h_fmt("0 16 striped 2 8 %s 0 %s 0\n", A, S);
	roundtrip_same(s);
	free(s);
	s = h_fmt("0 18 striped 2 9 %s 0 %s 0", A, S);
	h_table_fails(s, -EINVAL, 1, "too small for target: start=0, len=9, dev_size=8");
	free(s);
	s = h_fmt("0 16 striped 2 8 %s 2047 %s 0", A, B);
	h_table_fails(s, -EINVAL, 1, "too small for target");
	free(s);
	s = h_fmt("0 16 striped 2 8 %s 0 %s 1", A, S);
	h_table_fails(s, -EINVAL, 1, "too small for target");
	free(s);
}

static void test_bad_zero(void **state)
{
	(void)state;
	h_table_fails("0 8 zero 0", -EINVAL, 1, "zero: no arguments required");
	h_table_fails("0 8 zero\n8 8 zero a b", -EINVAL, 2, "no arguments required");
}

static void test_bad_flakey(void **state)
{
	/* Each entry: arguments after "flakey", the expected error. */
	static const struct {
		const char *args;
		const char *needle;
	} cases[] = {
	    /* Counts and numbers. */
	    {"", "flakey: invalid argument count"},
	    {"@ 0 1", "flakey: invalid argument count"},
	    {"@ x 1 1", "invalid device sector \"x\""},
	    {"@ -1 1 1", "invalid device sector"},
	    {"@ 0 x 1", "invalid up interval \"x\""},
	    {"@ 0 -1 1", "invalid up interval"},
	    {"@ 0 4294967296 1", "invalid up interval"},
	    {"@ 0 1 y", "invalid down interval \"y\""},
	    {"@ 0 1 -1", "invalid down interval"},
	    {"@ 0 0 0", "total (up + down) interval is zero"},
	    {"@ 0 4294967295 1", "interval overflow"},
	    {"@ 0 1 4294967295", "interval overflow"},
	    /* Feature counts. */
	    {"@ 0 1 1 x", "invalid number of feature args \"x\""},
	    {"@ 0 1 1 -1", "invalid number of feature args"},
	    {"@ 0 1 1 8 a b c d e f g h", "invalid number of feature args \"8\""},
	    {"@ 0 1 1 1", "feature count 1 does not match the 0 arguments given"},
	    {"@ 0 1 1 2 drop_writes", "feature count 2 does not match the 1 arguments given"},
	    {"@ 0 1 1 0 drop_writes", "feature count 0 does not match the 1 arguments given"},
	    {"@ 0 1 1 1 drop_writes error_reads", "does not match"},
	    /* Unknown features. */
	    {"@ 0 1 1 1 drop_reads", "unrecognised flakey feature \"drop_reads\""},
	    {"@ 0 1 1 2 drop_writes 1", "unrecognised flakey feature \"1\""},
	    /* Duplicates and conflicts. */
	    {"@ 0 1 1 2 drop_writes drop_writes", "feature drop_writes duplicated"},
	    {"@ 0 1 1 2 error_writes error_writes", "feature error_writes duplicated"},
	    {"@ 0 1 1 2 error_reads ERROR_READS", "feature error_reads duplicated"},
	    {"@ 0 1 1 2 drop_writes error_writes",
	     "feature error_writes conflicts with feature drop_writes"},
	    {"@ 0 1 1 2 error_writes drop_writes",
	     "feature drop_writes conflicts with feature error_writes"},
	    {"@ 0 1 1 6 drop_writes corrupt_bio_byte 1 w 0 0",
	     "drop_writes is incompatible with corrupt_bio_byte with the WRITE flag set"},
	    {"@ 0 1 1 6 corrupt_bio_byte 1 W 0 0 error_writes",
	     "error_writes is incompatible with corrupt_bio_byte with the WRITE flag set"},
	    /* corrupt_bio_byte parameters. */
	    {"@ 0 1 1 1 corrupt_bio_byte", "feature corrupt_bio_byte requires 4 parameters"},
	    {"@ 0 1 1 4 corrupt_bio_byte 1 r 0", "requires 4 parameters"},
	    {"@ 0 1 1 5 error_reads corrupt_bio_byte 1 r 0", "requires 4 parameters"},
	    {"@ 0 1 1 5 corrupt_bio_byte 0 r 0 0", "invalid corrupt bio byte \"0\""},
	    {"@ 0 1 1 5 corrupt_bio_byte x r 0 0", "invalid corrupt bio byte \"x\""},
	    {"@ 0 1 1 5 corrupt_bio_byte -1 r 0 0", "invalid corrupt bio byte"},
	    {"@ 0 1 1 5 corrupt_bio_byte 4294967296 r 0 0", "invalid corrupt bio byte"},
	    {"@ 0 1 1 5 corrupt_bio_byte 1 x 0 0", "invalid corrupt bio direction (r or w)"},
	    {"@ 0 1 1 5 corrupt_bio_byte 1 rw 0 0", "invalid corrupt bio direction"},
	    {"@ 0 1 1 5 corrupt_bio_byte 1 r 256 0", "invalid corrupt value"},
	    {"@ 0 1 1 5 corrupt_bio_byte 1 r x 0", "invalid corrupt value"},
	    {"@ 0 1 1 5 corrupt_bio_byte 1 r -1 0", "invalid corrupt value"},
	    {"@ 0 1 1 5 corrupt_bio_byte 1 r 0 x", "invalid corrupt bio flags mask"},
	    {"@ 0 1 1 5 corrupt_bio_byte 1 r 0 4294967296", "invalid corrupt bio flags mask"},
	    {"@ 0 1 1 5 corrupt_bio_byte 1 r 0 -1", "invalid corrupt bio flags mask"},
	    /* Beyond the end of the device. */
	    {"@ 2048 1 1", "too small for target"},
	    {"@ 36028797018963967 1 1", "too small for target"},
	};
	char args[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s;
		char *at;

		snprintf(args, sizeof(args), "%s", cases[i].args);
		at = strchr(args, '@');
		if (at) {
			*at = '\0';
			s = h_fmt("0 8 zero\n8 8 flakey %s%s%s", args, A, at + 1);
		} else {
			s = h_fmt("0 8 zero\n8 8 flakey %s", args);
		}
		h_table_fails(s, -EINVAL, 2, cases[i].needle);
		free(s);
	}
	/* Beyond the end of a small device; a missing device. */
	{
		char *s = h_fmt("0 9 flakey %s 0 1 1", S);

		h_table_fails(s, -EINVAL, 1, "flakey: ");
		h_table_fails(s, -EINVAL, 1, "too small for target: start=0, len=9, dev_size=8");
		free(s);
		h_table_fails("0 8 flakey " MISSING " 0 1 1 1 drop_writes", -ENOENT, 1,
			      "flakey: device " MISSING ": no such file or device");
	}
}

static void test_bad_delay(void **state)
{
	/* "@" is A, "%" is B, "!" is the missing file, "$" is the 8-sector S. */
	static const struct {
		const char *args;
		int err;
		const char *needle;
	} cases[] = {
	    {"", -EINVAL, "delay: requires exactly 3, 6 or 9 arguments"},
	    {"@", -EINVAL, "requires exactly 3, 6 or 9 arguments"},
	    {"@ 0", -EINVAL, "requires exactly 3, 6 or 9 arguments"},
	    {"@ 0 1 %", -EINVAL, "requires exactly 3, 6 or 9 arguments"},
	    {"@ 0 1 % 0", -EINVAL, "requires exactly 3, 6 or 9 arguments"},
	    {"@ 0 1 % 0 1 @", -EINVAL, "requires exactly 3, 6 or 9 arguments"},
	    {"@ 0 1 % 0 1 @ 0", -EINVAL, "requires exactly 3, 6 or 9 arguments"},
	    {"@ 0 1 % 0 1 @ 0 1 %", -EINVAL, "requires exactly 3, 6 or 9 arguments"},
	    /* Read group. */
	    {"@ x 1", -EINVAL, "invalid device sector \"x\""},
	    {"@ -1 1", -EINVAL, "invalid device sector \"-1\""},
	    {"@ 0 x", -EINVAL, "invalid read device delay \"x\""},
	    {"@ 0 -1", -EINVAL, "invalid read device delay \"-1\""},
	    {"@ 0 4294967296", -EINVAL, "invalid read device delay"},
	    {"! 0 1", -ENOENT, "delay: read device " MISSING ": no such file or device"},
	    {"@ 2041 1", -EINVAL, "too small for target: start=2041, len=8, dev_size=2048"},
	    /* Write group. */
	    {"@ 0 1 % y 1", -EINVAL, "invalid device sector \"y\""},
	    {"@ 0 1 % 0 y", -EINVAL, "invalid write device delay \"y\""},
	    {"@ 0 1 % 0 -5", -EINVAL, "invalid write device delay"},
	    {"@ 0 1 ! 0 1", -ENOENT, "write device " MISSING ": no such file or device"},
	    {"@ 0 1 $ 1 1", -EINVAL, "too small for target: start=1, len=8, dev_size=8"},
	    /* Flush group. */
	    {"@ 0 1 % 0 1 @ z 1", -EINVAL, "invalid device sector \"z\""},
	    {"@ 0 1 % 0 1 @ 0 z", -EINVAL, "invalid flush device delay \"z\""},
	    {"@ 0 1 % 0 1 ! 0 1", -ENOENT, "flush device " MISSING ": no such file or device"},
	    {"@ 0 1 % 0 1 $ 8 1", -EINVAL, "too small for target"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct strbuf sb = STRBUF_INIT;

		sb_puts(&sb, "0 8 delay");
		for (const char *p = cases[i].args; *p; p++) {
			if (*p == '@')
				sb_printf(&sb, " %s", A);
			else if (*p == '%')
				sb_printf(&sb, " %s", B);
			else if (*p == '!')
				sb_puts(&sb, " " MISSING);
			else if (*p == '$')
				sb_printf(&sb, " %s", S);
			else if (*p == ' ')
				continue;
			else {
				/* A number (or word): copy up to the next blank. */
				size_t n = strcspn(p, " ");

				sb_putc(&sb, ' ');
				sb_append(&sb, p, n);
				p += n - 1;
			}
		}
		h_table_fails(sb_str(&sb), cases[i].err, 1, cases[i].needle);
		sb_free(&sb);
	}
}

/* A table loaded read-only refuses writes of every kind but reads fine. */
static void test_readonly_table(void **state)
{
	struct bs_table *t;
	char *s;
	char buf[512], want[512];

	(void)state;
	s = h_fmt("0 8 linear %s 8\n8 8 zero", A);
	t = h_table_ok(s, true);
	assert_true(t->readonly);
	assert_int_equal(h_table_rw(t, BS_OP_READ, buf, 512, 0), 0);
	h_file_pread(&fa, want, 512, 4096);
	assert_memory_equal(buf, want, 512);
	assert_int_equal(h_table_rw(t, BS_OP_WRITE, buf, 512, 0), -EROFS);
	assert_int_equal(h_table_rw(t, BS_OP_WRITE_ZEROES, NULL, 512, 0), -EROFS);
	assert_int_equal(h_table_rw(t, BS_OP_DISCARD, NULL, 512, 0), -EROFS);
	bs_table_destroy(t);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_linear),
	    cmocka_unit_test(test_valid_striped),
	    cmocka_unit_test(test_valid_zero_error),
	    cmocka_unit_test(test_valid_flakey),
	    cmocka_unit_test(test_valid_delay),
	    cmocka_unit_test(test_paths_with_blanks),
	    cmocka_unit_test(test_comments_and_blank_lines),
	    cmocka_unit_test(test_find_target),
	    cmocka_unit_test(test_info_status),
	    cmocka_unit_test(test_striped_dead_leg),
	    cmocka_unit_test(test_bad_table_lines),
	    cmocka_unit_test(test_bad_linear),
	    cmocka_unit_test(test_bad_striped),
	    cmocka_unit_test(test_bad_zero),
	    cmocka_unit_test(test_bad_flakey),
	    cmocka_unit_test(test_bad_delay),
	    cmocka_unit_test(test_readonly_table),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
