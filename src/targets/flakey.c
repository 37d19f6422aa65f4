/*
 * flakey.c - the `flakey` target: a device that is periodically unreliable, for testing.
 *
 * Table: flakey <dev> <offset> <up interval> <down interval> [<#features> <features>...]
 *   Intervals in seconds, counted from table load.  During a down interval, with no
 *   features every request fails; the features change that as in Linux:
 *     drop_writes              writes (and flushes, discards) succeed without being written
 *     error_writes             writes fail, reads work
 *     error_reads              reads fail, writes work
 *     corrupt_bio_byte <N> <r|w> <value> <flags>
 *                              byte N (1-based) of each read (r) or write (w) is set to value;
 *                              flags other than 0 (Linux request-flag masks) are accepted and
 *                              treated as matching every request
 * Status: empty.  Table: as given, features in canonical order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "engine/target.h"
#include "util/parse.h"
#include "util/scratch.h"

struct flakey {
	struct bs_bdev *dev;
	uint64_t start;
	uint32_t up, down;
	struct timespec t0;
	bool drop_writes, error_writes, error_reads;
	uint32_t corrupt_byte; /* 0 = off */
	bool corrupt_write;
	uint32_t corrupt_value, corrupt_flags;
};

static int parse_features(struct bs_target *t, struct flakey *fc, unsigned argc, char **argv)
{
	uint32_t n;
	unsigned i = 0;

	if (argc == 0)
		return 0;
	if (bs_parse_u32(argv[0], &n) || n > 7)
		return bs_target_error(t, "invalid number of feature args \"%s\"", argv[0]);
	if (n != argc - 1)
		return bs_target_error(t, "feature count %u does not match the %u arguments given",
				       n, argc - 1);
	argv++;
	while (i < n) {
		const char *f = argv[i++];

		if (!strcasecmp(f, "drop_writes")) {
			if (fc->drop_writes)
				return bs_target_error(t, "feature drop_writes duplicated");
			if (fc->error_writes)
				return bs_target_error(
				    t, "feature drop_writes conflicts with feature error_writes");
			fc->drop_writes = true;
		} else if (!strcasecmp(f, "error_writes")) {
			if (fc->error_writes)
				return bs_target_error(t, "feature error_writes duplicated");
			if (fc->drop_writes)
				return bs_target_error(
				    t, "feature error_writes conflicts with feature drop_writes");
			fc->error_writes = true;
		} else if (!strcasecmp(f, "error_reads")) {
			if (fc->error_reads)
				return bs_target_error(t, "feature error_reads duplicated");
			fc->error_reads = true;
		} else if (!strcasecmp(f, "corrupt_bio_byte")) {
			if (n - i < 4)
				return bs_target_error(
				    t, "feature corrupt_bio_byte requires 4 parameters");
			if (bs_parse_u32(argv[i], &fc->corrupt_byte) || fc->corrupt_byte == 0)
				return bs_target_error(t, "invalid corrupt bio byte \"%s\"",
						       argv[i]);
			if (!strcasecmp(argv[i + 1], "w"))
				fc->corrupt_write = true;
			else if (strcasecmp(argv[i + 1], "r"))
				return bs_target_error(t, "invalid corrupt bio direction (r or w)");
			if (bs_parse_u32(argv[i + 2], &fc->corrupt_value) ||
			    fc->corrupt_value > 255)
				return bs_target_error(
				    t, "invalid corrupt value to write into bio byte (0-255)");
			if (bs_parse_u32(argv[i + 3], &fc->corrupt_flags))
				return bs_target_error(t, "invalid corrupt bio flags mask");
			i += 4;
		} else {
			return bs_target_error(t, "unrecognised flakey feature \"%s\"", f);
		}
	}
	if (fc->corrupt_byte && fc->corrupt_write && (fc->drop_writes || fc->error_writes))
		return bs_target_error(
		    t, "%s is incompatible with corrupt_bio_byte with the WRITE flag set",
		    fc->drop_writes ? "drop_writes" : "error_writes");
	return 0;
}

static int flakey_ctr(struct bs_target *t, unsigned argc, char **argv)
{
	struct flakey *fc;
	int r;

	if (argc < 4)
		return bs_target_error(t, "invalid argument count");
	fc = calloc(1, sizeof(*fc));
	if (!fc)
		return -ENOMEM;
	r = bs_target_parse_sector(t, argv[1], "device sector", &fc->start);
	if (r)
		goto bad;
	r = -EINVAL;
	if (bs_parse_u32(argv[2], &fc->up)) {
		bs_target_error(t, "invalid up interval \"%s\"", argv[2]);
		goto bad;
	}
	if (bs_parse_u32(argv[3], &fc->down)) {
		bs_target_error(t, "invalid down interval \"%s\"", argv[3]);
		goto bad;
	}
	if ((uint64_t)fc->up + fc->down == 0) {
		bs_target_error(t, "total (up + down) interval is zero");
		goto bad;
	}
	if ((uint64_t)fc->up + fc->down > UINT32_MAX) {
		bs_target_error(t, "interval overflow");
		goto bad;
	}
	r = parse_features(t, fc, argc - 4, argv + 4);
	if (r)
		goto bad;
	r = bs_target_get_device(t, argv[0], "device", &fc->dev);
	if (!r)
		r = bs_target_check_area(t, fc->dev, fc->start, t->len);
	if (r)
		goto bad;
	clock_gettime(CLOCK_MONOTONIC, &fc->t0);
	t->private = fc;
	return 0;
bad:
	free(fc);
	return r;
}

static void flakey_dtr(struct bs_target *t)
{
	free(t->private);
}

static bool is_down(const struct flakey *fc)
{
	struct timespec now;
	uint64_t elapsed;

	clock_gettime(CLOCK_MONOTONIC, &now);
	elapsed = (uint64_t)(now.tv_sec - fc->t0.tv_sec);
	return elapsed % ((uint64_t)fc->up + fc->down) >= fc->up;
}

static void corrupt(const struct flakey *fc, char *buf, uint64_t len)
{
	if (fc->corrupt_byte <= len)
		buf[fc->corrupt_byte - 1] = (char)fc->corrupt_value;
}

static int flakey_submit(struct bs_target *t, struct bs_io *io)
{
	struct flakey *fc = t->private;
	bool plain = !fc->corrupt_byte && !fc->drop_writes && !fc->error_writes && !fc->error_reads;
	int r;

	if (io->op != BS_OP_FLUSH)
		io->off += fc->start << BS_SECTOR_SHIFT;
	if (!is_down(fc))
		return bs_bdev_submit(fc->dev, io);

	if (io->op == BS_OP_READ) {
		if (plain || fc->error_reads)
			return -EIO;
		r = bs_bdev_submit(fc->dev, io);
		if (!r && fc->corrupt_byte && !fc->corrupt_write)
			corrupt(fc, io->buf, io->len);
		return r;
	}
	/* Writes, flushes and discards. */
	if (fc->drop_writes)
		return 0;
	if (fc->error_writes || plain)
		return -EIO;
	if (io->op == BS_OP_WRITE && fc->corrupt_byte && fc->corrupt_write &&
	    fc->corrupt_byte <= io->len) {
		/* Never touch the caller's buffer: corrupt a copy. */
		char *copy = bs_scratch_get(io->len);
		struct bs_io sub = *io;

		if (!copy)
			return -ENOMEM;
		memcpy(copy, io->buf, io->len);
		corrupt(fc, copy, io->len);
		sub.buf = copy;
		r = bs_bdev_submit(fc->dev, &sub);
		bs_scratch_put(copy);
		return r;
	}
	return bs_bdev_submit(fc->dev, io);
}

static void flakey_status(struct bs_target *t, enum bs_status_type type, unsigned flags,
			  struct strbuf *out)
{
	struct flakey *fc = t->private;

	(void)flags;
	if (type == BS_STATUS_INFO)
		return;
	sb_put_arg(out, fc->dev->name);
	sb_printf(out, " %llu %u %u %u", (unsigned long long)fc->start, fc->up, fc->down,
		  fc->drop_writes + fc->error_writes + fc->error_reads +
		      (fc->corrupt_byte ? 5u : 0u));
	if (fc->drop_writes)
		sb_puts(out, " drop_writes");
	else if (fc->error_writes)
		sb_puts(out, " error_writes");
	if (fc->error_reads)
		sb_puts(out, " error_reads");
	if (fc->corrupt_byte)
		sb_printf(out, " corrupt_bio_byte %u %c %u %u", fc->corrupt_byte,
			  fc->corrupt_write ? 'w' : 'r', fc->corrupt_value, fc->corrupt_flags);
}

const struct bs_target_type bs_flakey_target = {
    .name = "flakey",
    .version = {1, 5, 0},
    .ctr = flakey_ctr,
    .dtr = flakey_dtr,
    .submit = flakey_submit,
    .status = flakey_status,
};
