/*
 * cmd_integrity.c - `blkstack integrity ...`: integritysetup's verbs for dm-integrity.
 *
 * format and dump work here, offline, on the device (a host file or block device, or
 * /dev/mapper/NAME of the running daemon over NBD); open reads the superblock here and asks
 * the daemon for an `integrity` table built from it; close, status go to the daemon.  Keys
 * (--integrity-key-file) are read into locked memory and travel only inside the table text,
 * which stays in locked memory too.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/nbd_bdev.h"
#include "cli/passphrase.h"
#include "formats/integrity_hash.h"
#include "formats/integrity_sb.h"
#include "util/parse.h"
#include "util/secmem.h"
#include "util/strbuf.h"

static void integrity_usage(FILE *f)
{
	fputs("usage: blkstack integrity <command> [options]\n"
	      "  format DEV [--integrity ALG] [--tag-size BYTES] [--sector-size BYTES]\n"
	      "         [--integrity-key-file FILE] [--integrity-key-size BYTES]\n"
	      "         [--journal-size BYTES] [--interleave-sectors N] [--buffer-sectors N]\n"
	      "         [--integrity-bitmap-mode] [--bitmap-sectors-per-bit N]\n"
	      "         [--integrity-legacy-padding] [--integrity-legacy-hmac]\n"
	      "         [--data-device DEV] [--no-wipe] [-q|--batch-mode]\n"
	      "  open DEV NAME [--integrity ALG] [--integrity-key-file FILE]\n"
	      "         [--integrity-key-size BYTES] [--integrity-no-journal|-D]\n"
	      "         [--integrity-bitmap-mode|-B] [--integrity-recovery-mode|-R]\n"
	      "         [--journal-watermark PCT] [--journal-commit-time MS] [--buffer-sectors N]\n"
	      "         [--bitmap-sectors-per-bit N] [--bitmap-flush-time MS]\n"
	      "         [--integrity-recalculate] [--integrity-recalculate-reset]\n"
	      "         [--integrity-legacy-recalculate] [--allow-discards] [--tag-size BYTES]\n"
	      "         [--data-device DEV]\n"
	      "  close NAME\n"
	      "  status NAME\n"
	      "  dump DEV\n"
	      "ALG: crc32c (default), sha1, sha256, sha512, hmac-sha1, hmac-sha256, hmac-sha512,\n"
	      "     xxhash64.  DEV may be /dev/mapper/NAME of a blkstack device.\n",
	      f);
}

enum {
	O_INTEGRITY = 1000,
	O_TAG_SIZE,
	O_SECTOR_SIZE,
	O_KEY_FILE,
	O_KEY_SIZE,
	O_JOURNAL_SIZE,
	O_INTERLEAVE,
	O_BUFFER,
	O_BITMAP,
	O_SPBIT,
	O_FLUSH_TIME,
	O_NO_WIPE,
	O_LEGACY_PADDING,
	O_LEGACY_HMAC,
	O_DATA_DEVICE,
	O_NO_JOURNAL,
	O_RECOVERY,
	O_WATERMARK,
	O_COMMIT_TIME,
	O_RECALC,
	O_RECALC_RESET,
	O_LEGACY_RECALC,
	O_DISCARDS,
	O_JOURNAL_INTEGRITY,
	O_JOURNAL_CRYPT,
	O_JOURNAL_INTEGRITY_KEY,
	O_JOURNAL_CRYPT_KEY,
};

static const struct option opts[] = {
    {"integrity", required_argument, NULL, O_INTEGRITY},
    {"tag-size", required_argument, NULL, O_TAG_SIZE},
    {"sector-size", required_argument, NULL, O_SECTOR_SIZE},
    {"integrity-key-file", required_argument, NULL, O_KEY_FILE},
    {"integrity-key-size", required_argument, NULL, O_KEY_SIZE},
    {"journal-size", required_argument, NULL, O_JOURNAL_SIZE},
    {"interleave-sectors", required_argument, NULL, O_INTERLEAVE},
    {"buffer-sectors", required_argument, NULL, O_BUFFER},
    {"integrity-bitmap-mode", no_argument, NULL, O_BITMAP},
    {"bitmap-sectors-per-bit", required_argument, NULL, O_SPBIT},
    {"bitmap-flush-time", required_argument, NULL, O_FLUSH_TIME},
    {"no-wipe", no_argument, NULL, O_NO_WIPE},
    {"integrity-legacy-padding", no_argument, NULL, O_LEGACY_PADDING},
    {"integrity-legacy-hmac", no_argument, NULL, O_LEGACY_HMAC},
    {"data-device", required_argument, NULL, O_DATA_DEVICE},
    {"integrity-no-journal", no_argument, NULL, O_NO_JOURNAL},
    {"integrity-recovery-mode", no_argument, NULL, O_RECOVERY},
    {"journal-watermark", required_argument, NULL, O_WATERMARK},
    {"journal-commit-time", required_argument, NULL, O_COMMIT_TIME},
    {"integrity-recalculate", no_argument, NULL, O_RECALC},
    {"integrity-recalculate-reset", no_argument, NULL, O_RECALC_RESET},
    {"integrity-legacy-recalculate", no_argument, NULL, O_LEGACY_RECALC},
    {"allow-discards", no_argument, NULL, O_DISCARDS},
    {"journal-integrity", required_argument, NULL, O_JOURNAL_INTEGRITY},
    {"journal-crypt", required_argument, NULL, O_JOURNAL_CRYPT},
    {"journal-integrity-key-file", required_argument, NULL, O_JOURNAL_INTEGRITY_KEY},
    {"journal-crypt-key-file", required_argument, NULL, O_JOURNAL_CRYPT_KEY},
    {"batch-mode", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct iargs {
	const char *verb;
	const char *integrity, *key_file, *data_device;
	uint32_t tag_size, sector_size, key_size, interleave, buffer, watermark, commit_time,
	    flush_time;
	uint64_t journal_size, spbit;
	bool has_watermark, has_commit, has_buffer, has_spbit, has_flush, has_tag;
	bool bitmap, no_journal, recovery, no_wipe, legacy_padding, legacy_hmac, recalc,
	    recalc_reset, legacy_recalc, discards, batch;
	int npos;
	char **pos;
};

/* A number option: prints one error naming it and returns -1 when it is not one. */
static int num32(const char *name, const char *s, uint64_t min, uint64_t max, uint32_t *out)
{
	uint64_t v;

	if (bs_parse_uint_range(s, min, max, &v)) {
		cli_error("integrity: invalid %s \"%s\" (%llu to %llu)", name, s,
			  (unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

static int parse_args(int argc, char **argv, struct iargs *a)
{
	int c;

	memset(a, 0, sizeof(*a));
	a->integrity = "crc32c";
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "qhBDR", opts, NULL)) != -1) {
		int r = 0;

		switch (c) {
		case O_INTEGRITY:
			a->integrity = optarg;
			break;
		case O_TAG_SIZE:
			r = num32("--tag-size", optarg, 1, MAX_TAG_SIZE, &a->tag_size);
			a->has_tag = true;
			break;
		case O_SECTOR_SIZE:
			r = num32("--sector-size", optarg, 512, 4096, &a->sector_size);
			if (!r && (a->sector_size & (a->sector_size - 1))) {
				cli_error(
				    "integrity: invalid --sector-size \"%s\" (512, 1024, 2048 "
				    "or 4096)",
				    optarg);
				r = -1;
			}
			break;
		case O_KEY_FILE:
			a->key_file = optarg;
			break;
		case O_KEY_SIZE:
			r = num32("--integrity-key-size", optarg, 1, INTEGRITY_HASH_MAX_KEY,
				  &a->key_size);
			break;
		case O_JOURNAL_SIZE:
			if (bs_parse_size(optarg, &a->journal_size) || a->journal_size < 512 ||
			    a->journal_size % 512) {
				cli_error("integrity: invalid --journal-size \"%s\" (bytes, a "
					  "multiple of 512)",
					  optarg);
				r = -1;
			}
			break;
		case O_INTERLEAVE:
			r = num32("--interleave-sectors", optarg, 1, UINT32_MAX, &a->interleave);
			break;
		case O_BUFFER:
			r = num32("--buffer-sectors", optarg, 1, UINT32_MAX, &a->buffer);
			a->has_buffer = true;
			break;
		case O_BITMAP:
		case 'B':
			a->bitmap = true;
			break;
		case O_SPBIT:
			if (bs_parse_uint_range(optarg, 1, UINT32_MAX, &a->spbit)) {
				cli_error("integrity: invalid --bitmap-sectors-per-bit \"%s\"",
					  optarg);
				r = -1;
			}
			a->has_spbit = true;
			break;
		case O_FLUSH_TIME:
			r = num32("--bitmap-flush-time", optarg, 1, 86400000, &a->flush_time);
			a->has_flush = true;
			break;
		case O_NO_WIPE:
			a->no_wipe = true;
			break;
		case O_LEGACY_PADDING:
			a->legacy_padding = true;
			break;
		case O_LEGACY_HMAC:
			a->legacy_hmac = true;
			break;
		case O_DATA_DEVICE:
			a->data_device = optarg;
			break;
		case O_NO_JOURNAL:
		case 'D':
			a->no_journal = true;
			break;
		case O_RECOVERY:
		case 'R':
			a->recovery = true;
			break;
		case O_WATERMARK:
			r = num32("--journal-watermark", optarg, 0, 100, &a->watermark);
			a->has_watermark = true;
			break;
		case O_COMMIT_TIME:
			r = num32("--journal-commit-time", optarg, 0, UINT32_MAX, &a->commit_time);
			a->has_commit = true;
			break;
		case O_RECALC:
			a->recalc = true;
			break;
		case O_RECALC_RESET:
			a->recalc = a->recalc_reset = true;
			break;
		case O_LEGACY_RECALC:
			a->legacy_recalc = true;
			break;
		case O_DISCARDS:
			a->discards = true;
			break;
		case O_JOURNAL_INTEGRITY:
		case O_JOURNAL_INTEGRITY_KEY:
			cli_error("integrity: --journal-integrity (journal_mac) is not supported");
			return -1;
		case O_JOURNAL_CRYPT:
		case O_JOURNAL_CRYPT_KEY:
			cli_error("integrity: --journal-crypt (journal encryption) is not "
				  "supported");
			return -1;
		case 'q':
			a->batch = true;
			break;
		case 'h':
			integrity_usage(stdout);
			exit(0);
		default:
			if (optopt && optopt < 1000)
				cli_error("integrity: unknown option '-%c'", optopt);
			else
				cli_error("integrity: unknown option \"%s\"", argv[optind - 1]);
			return -1;
		}
		if (r)
			return -1;
	}
	a->npos = argc - optind;
	a->pos = argv + optind;
	if (a->bitmap + a->no_journal + a->recovery > 1) {
		cli_error("integrity: give only one of --integrity-bitmap-mode, "
			  "--integrity-no-journal, --integrity-recovery-mode");
		return -1;
	}
	return 0;
}

/* P made absolute against the working directory (the daemon has another one). */
static int abs_path(const char *p, char *out, size_t len)
{
	char cwd[PATH_MAX];
	int n;

	if (p[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		n = snprintf(out, len, "%s", p);
	else
		n = snprintf(out, len, "%s/%s", cwd, p);
	if (n < 0 || (size_t)n >= len) {
		cli_error("integrity: path too long: %s", p);
		return -1;
	}
	return 0;
}

/*
 * The hash: Linux name in *alg; its key (locked memory) in *key and *key_len when it has one.
 * 0, or -1 after one error.
 */
static int get_hash(const char *verb, const struct iargs *a, const char **alg, uint8_t **key,
		    size_t *key_len)
{
	bool keyed;
	unsigned digest;

	*key = NULL;
	*key_len = 0;
	*alg = integrity_hash_from_user(a->integrity);
	if (!*alg || !integrity_hash_known(*alg, &keyed, &digest)) {
		cli_error("integrity %s: unknown --integrity \"%s\" (crc32c, sha1, sha256, sha512, "
			  "hmac-sha1, hmac-sha256, hmac-sha512, xxhash64)",
			  verb, a->integrity);
		return -1;
	}
	if (!keyed) {
		if (a->key_file || a->key_size) {
			cli_error("integrity %s: %s takes no key (--integrity-key-file is for the "
				  "hmac-* algorithms)",
				  verb, a->integrity);
			return -1;
		}
		return 0;
	}
	if (!a->key_file) {
		cli_error("integrity %s: %s needs a key: give --integrity-key-file", verb,
			  a->integrity);
		return -1;
	}
	{
		size_t want = a->key_size ? a->key_size : digest, len;
		char *buf = cli_read_secure_file(a->key_file, KEYFILE_MAX, &len);

		if (!buf)
			return -1;
		if (len < want) {
			bs_secure_free(buf);
			cli_error(
			    "integrity %s: cannot read %zu bytes from key file %s (it has %zu)",
			    verb, want, a->key_file, len);
			return -1;
		}
		*key = bs_secure_alloc(want);
		if (!*key) {
			bs_secure_free(buf);
			cli_error("integrity %s: out of memory", verb);
			return -1;
		}
		memcpy(*key, buf, want);
		bs_secure_free(buf);
		*key_len = want;
	}
	return 0;
}

static int open_dev(const char *verb, const char *path, bool readonly, struct bs_bdev **b)
{
	const char *why;
	int r = bs_bdev_open(path, readonly, b, &why);

	if (r) {
		cli_error("integrity %s: %s: %s", verb, path, why);
		return -1;
	}
	return 0;
}

/* ---- format -------------------------------------------------------------------------------- */

static bool confirm(const char *dev)
{
	char line[64];

	if (isatty(0)) {
		fprintf(stderr,
			"\nWARNING!\n========\nThis will overwrite data on %s irrevocably.\n\n"
			"Are you sure? (Type 'yes' in capital letters): ",
			dev);
		fflush(stderr);
	}
	if (!fgets(line, sizeof(line), stdin))
		return false;
	line[strcspn(line, "\n")] = '\0';
	return !strcmp(line, "YES");
}

static int do_format(struct iargs *a)
{
	struct integrity_format_params p = {0};
	struct integrity_hash *h = NULL;
	struct integrity_geom g;
	struct integrity_sb sb;
	struct bs_bdev *meta = NULL, *data = NULL;
	const char *alg, *why, *dev;
	uint8_t *key;
	size_t key_len;
	int rc = 1;

	if (a->npos != 1) {
		cli_error("integrity format: give exactly one device");
		return EXIT_USAGE;
	}
	if (a->no_journal || a->recovery || a->has_watermark || a->has_commit || a->recalc ||
	    a->discards || a->has_flush || a->legacy_recalc) {
		cli_error("integrity format: activation options (mode, journal watermark and "
			  "commit time, recalculate, discards) belong to open");
		return EXIT_USAGE;
	}
	dev = a->pos[0];
	if (get_hash("format", a, &alg, &key, &key_len))
		return 1;
	cli_install_nbd_resolver();
	if (open_dev("format", dev, false, &meta))
		goto out;
	data = meta;
	if (a->data_device && open_dev("format", a->data_device, false, &data))
		goto out;
	p.alg = alg;
	p.tag_size = a->tag_size;
	p.sector_size = a->sector_size ? a->sector_size : 512;
	p.journal_sectors = a->journal_size / 512;
	p.interleave_sectors = a->interleave;
	p.buffer_sectors = a->buffer;
	p.sectors_per_bit = a->spbit;
	p.fix_padding = !a->legacy_padding;
	p.fix_hmac = !a->legacy_hmac;
	p.mode = a->bitmap ? 'B' : 'J';
	if (integrity_sb_create(&p, data != meta, 0, bs_bdev_size(data) >> 9,
				bs_bdev_size(meta) >> 9, NULL, &sb, &g, &why)) {
		cli_error("integrity format: %s: %s", dev, why);
		goto out;
	}
	if (integrity_hash_new(alg, key, key_len, (sb.flags & SB_FLAG_FIXED_HMAC) ? sb.salt : NULL,
			       &h, &why)) {
		cli_error("integrity format: %s: %s", a->integrity, why);
		goto out;
	}
	if (!a->batch && !confirm(dev)) {
		cli_error("integrity format: operation aborted (the answer was not YES)");
		goto out;
	}
	if (integrity_format_write(data, meta, &g, &sb, h, !a->no_wipe, p.mode, &why)) {
		cli_error("integrity format: %s: %s", dev, why);
		goto out;
	}
	if (!a->batch)
		printf("Formatted with tag size %u, internal integrity %s.\n", sb.tag_size,
		       a->integrity);
	rc = 0;
out:
	integrity_hash_free(h);
	bs_secure_free(key);
	if (data && data != meta)
		bs_bdev_close(data);
	if (meta)
		bs_bdev_close(meta);
	return rc;
}

/* ---- dump ---------------------------------------------------------------------------------- */

static int do_dump(struct iargs *a)
{
	struct strbuf out = STRBUF_INIT;
	struct integrity_sb sb;
	struct bs_bdev *b;
	const char *why;
	int r;

	if (a->npos != 1) {
		cli_error("integrity dump: give exactly one device");
		return EXIT_USAGE;
	}
	cli_install_nbd_resolver();
	if (open_dev("dump", a->pos[0], true, &b))
		return 1;
	r = integrity_sb_read(b, 0, &sb, NULL, &why);
	bs_bdev_close(b);
	if (r) {
		cli_error("integrity dump: %s: %s", a->pos[0], why);
		return 1;
	}
	integrity_sb_dump(&sb, a->pos[0], &out);
	fputs(sb_str(&out), stdout);
	sb_free(&out);
	return 0;
}

/* ---- open ---------------------------------------------------------------------------------- */

/* Appends P to the table, backslash-escaping white space as the table parser expects. */
static void put_path(struct strbuf *t, const char *p)
{
	for (; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\\' || *p == '\n')
			sb_putc(t, '\\');
		sb_putc(t, *p);
	}
}

static int do_open(struct iargs *a)
{
	struct strbuf table = STRBUF_SECURE_INIT, opt = STRBUF_SECURE_INIT;
	char dev[PATH_MAX], meta[PATH_MAX];
	struct integrity_sb sb;
	struct json_object *req;
	struct bs_msg reply;
	struct bs_bdev *b;
	const char *alg, *why;
	uint8_t *key = NULL;
	size_t key_len;
	unsigned nopt = 0, digest;
	char ctx[200];
	char mode = a->recovery ? 'R' : a->bitmap ? 'B' : a->no_journal ? 'D' : 'J';
	int r;

	if (a->npos != 2) {
		cli_error("integrity open: give the device and a name");
		return EXIT_USAGE;
	}
	if (a->sector_size || a->journal_size || a->interleave || a->no_wipe || a->legacy_padding ||
	    a->legacy_hmac) {
		cli_error("integrity open: layout options (sector size, journal size, interleave, "
			  "padding, wipe) belong to format: the superblock has them");
		return EXIT_USAGE;
	}
	if (get_hash("open", a, &alg, &key, &key_len))
		return 1;
	if (abs_path(a->pos[0], a->data_device ? meta : dev, PATH_MAX) ||
	    (a->data_device && abs_path(a->data_device, dev, sizeof(dev))))
		goto fail;
	cli_install_nbd_resolver();
	if (open_dev("open", a->data_device ? meta : dev, true, &b))
		goto fail;
	r = integrity_sb_read(b, 0, &sb, NULL, &why);
	bs_bdev_close(b);
	if (r) {
		cli_error("integrity open: %s: %s", a->pos[0], why);
		goto fail;
	}
	integrity_hash_known(alg, NULL, &digest);
	if (sb.tag_size > digest && !(a->has_tag && a->tag_size == sb.tag_size)) {
		cli_error("integrity open: %s: the tag size in the superblock (%u) is longer than "
			  "a %s digest (%u): give the --integrity it was formatted with (or "
			  "--tag-size %u)",
			  a->pos[0], sb.tag_size, a->integrity, digest, sb.tag_size);
		goto fail;
	}
	if (a->has_tag && a->tag_size != sb.tag_size) {
		cli_error("integrity open: --tag-size %u does not match the superblock (%u)",
			  a->tag_size, sb.tag_size);
		goto fail;
	}
	if (a->data_device) {
		sb_puts(&opt, " meta_device:");
		put_path(&opt, meta);
		nopt++;
	}
	if (sb.log2_sectors_per_block) {
		sb_printf(&opt, " block_size:%u", 512u << sb.log2_sectors_per_block);
		nopt++;
	}
	if (a->has_buffer) {
		sb_printf(&opt, " buffer_sectors:%u", a->buffer);
		nopt++;
	}
	if (mode == 'J' && a->has_watermark) {
		sb_printf(&opt, " journal_watermark:%u", a->watermark);
		nopt++;
	}
	if (mode == 'J' && a->has_commit) {
		sb_printf(&opt, " commit_time:%u", a->commit_time);
		nopt++;
	}
	if (mode == 'B' && a->has_spbit) {
		sb_printf(&opt, " sectors_per_bit:%llu", (unsigned long long)a->spbit);
		nopt++;
	}
	if (mode == 'B' && a->has_flush) {
		sb_printf(&opt, " bitmap_flush_interval:%u", a->flush_time);
		nopt++;
	}
	if (a->recalc_reset || a->recalc) {
		sb_puts(&opt, a->recalc_reset ? " reset_recalculate" : " recalculate");
		nopt++;
	}
	if (a->legacy_recalc) {
		sb_puts(&opt, " legacy_recalculate");
		nopt++;
	}
	if (a->discards) {
		sb_puts(&opt, " allow_discards");
		nopt++;
	}
	if (sb.flags & SB_FLAG_FIXED_PADDING) {
		sb_puts(&opt, " fix_padding");
		nopt++;
	}
	if (sb.flags & SB_FLAG_FIXED_HMAC) {
		sb_puts(&opt, " fix_hmac");
		nopt++;
	}
	sb_printf(&opt, " internal_hash:%s", alg);
	nopt++;
	if (key_len) {
		char *hex = bs_secure_alloc(2 * key_len + 1);

		if (!hex) {
			cli_error("integrity open: out of memory");
			goto fail;
		}
		bs_hex_encode(key, key_len, hex);
		sb_printf(&opt, ":%s", hex);
		bs_secure_free(hex);
	}
	sb_printf(&table, "0 %llu integrity ", (unsigned long long)sb.provided_data_sectors);
	put_path(&table, dev);
	sb_printf(&table, " 0 %u %c %u%s", sb.tag_size, mode, nopt, sb_str(&opt));
	sb_free(&opt);
	bs_secure_free(key);
	key = NULL;

	req = json_object_new_object();
	json_object_object_add(req, "name", json_object_new_string(a->pos[1]));
	snprintf(ctx, sizeof(ctx), "integrity open %s", a->pos[1]);
	r = cli_call(ctx, "dm.create", req, table.s, table.len, &reply);
	sb_free(&table);
	if (r)
		return r;
	bs_msg_free(&reply);
	return 0;
fail:
	sb_free(&opt);
	sb_free(&table);
	bs_secure_free(key);
	return 1;
}

/* ---- close, status ----------------------------------------------------------------------------
 */

/* The first line of NAME's live table (OP "dm.table") or status ("dm.status"), into OUT. */
static int get_line(const char *verb, const char *name, const char *op, char *out, size_t len)
{
	struct json_object *req = json_object_new_object(), *devs;
	struct bs_msg reply;
	const char *nl;
	char ctx[200];
	size_t n;

	json_object_object_add(req, "name", json_object_new_string(name));
	snprintf(ctx, sizeof(ctx), "integrity %s %s", verb, name);
	if (cli_call(ctx, op, req, NULL, 0, &reply))
		return 1;
	if (!json_object_object_get_ex(reply.json, "devices", &devs) ||
	    json_object_array_length(devs) != 1 || !reply.data) {
		bs_msg_free(&reply);
		cli_error("integrity %s: %s has no table", verb, name);
		return 1;
	}
	n = reply.data_len;
	nl = memchr(reply.data, '\n', n);
	if (nl)
		n = (size_t)(nl - (const char *)reply.data);
	if (n >= len)
		n = len - 1;
	memcpy(out, reply.data, n);
	out[n] = '\0';
	bs_msg_free(&reply);
	return 0;
}

/* Splits a table line in place; returns the word count. */
static int words(char *line, char **w, int max)
{
	int n = 0;

	for (char *p = strtok(line, " "); p && n < max; p = strtok(NULL, " "))
		w[n++] = p;
	return n;
}

static int integrity_table(const char *verb, const char *name, char *line, size_t len, char **w,
			   int *nw)
{
	int r = get_line(verb, name, "dm.table", line, len);

	if (r)
		return r;
	*nw = words(line, w, 64);
	if (*nw < 8 || strcmp(w[2], "integrity")) {
		cli_error("integrity %s: %s is not an integrity device", verb, name);
		return 1;
	}
	return 0;
}

static int do_close(struct iargs *a)
{
	struct json_object *req;
	struct bs_msg reply;
	char line[8192], ctx[200], *w[64];
	int nw, r;

	if (a->npos != 1) {
		cli_error("integrity close: give exactly one name");
		return EXIT_USAGE;
	}
	r = integrity_table("close", a->pos[0], line, sizeof(line), w, &nw);
	if (r)
		return r;
	req = json_object_new_object();
	json_object_object_add(req, "name", json_object_new_string(a->pos[0]));
	snprintf(ctx, sizeof(ctx), "integrity close %s", a->pos[0]);
	r = cli_call(ctx, "dm.remove", req, NULL, 0, &reply);
	if (!r)
		bs_msg_free(&reply);
	return r;
}

static const char *opt_val(char **w, int nw, const char *key)
{
	size_t kl = strlen(key);

	for (int i = 8; i < nw; i++)
		if (!strncmp(w[i], key, kl) && w[i][kl] == ':')
			return w[i] + kl + 1;
	return NULL;
}

static int do_status(struct iargs *a)
{
	char line[8192], st[512], *w[64], *sw[8], alg[64];
	const char *v, *user;
	unsigned long long opens = 0;
	bool in_use = false;
	int nw, r;

	if (a->npos != 1) {
		cli_error("integrity status: give exactly one name");
		return EXIT_USAGE;
	}
	r = integrity_table("status", a->pos[0], line, sizeof(line), w, &nw);
	if (r)
		return r;
	if (get_line("status", a->pos[0], "dm.status", st, sizeof(st)))
		return 1;
	if (words(st, sw, 8) < 6) {
		cli_error("integrity status: %s: no status", a->pos[0]);
		return 1;
	}
	{
		struct json_object *req = json_object_new_object(), *devs;
		struct bs_msg reply;

		json_object_object_add(req, "name", json_object_new_string(a->pos[0]));
		if (!cli_call_quiet("dm.info", req, &reply)) {
			if (json_object_object_get_ex(reply.json, "devices", &devs) &&
			    json_object_array_length(devs) == 1)
				bs_json_u64(json_object_array_get_idx(devs, 0), "open_count",
					    &opens);
			bs_msg_free(&reply);
		}
		in_use = opens > 0;
	}
	v = opt_val(w, nw, "internal_hash");
	snprintf(alg, sizeof(alg), "%s", v ? v : "(none)");
	if (strchr(alg, ':'))
		*strchr(alg, ':') = '\0';
	user = alg;
	printf("/dev/mapper/%s is active%s.\n", a->pos[0], in_use ? " and is in use" : "");
	printf("  type:    INTEGRITY\n");
	printf("  tag size: %s\n", w[5]);
	printf("  integrity: %s\n", user);
	v = opt_val(w, nw, "meta_device");
	if (v) {
		printf("  device:  %s (detached)\n", w[3]);
		printf("  metadata device:  %s\n", v);
	} else {
		printf("  device:  %s\n", w[3]);
	}
	v = opt_val(w, nw, "block_size");
	printf("  sector size:  %s bytes\n", v ? v : "512");
	v = opt_val(w, nw, "interleave_sectors");
	printf("  interleave sectors: %s\n", v ? v : "0");
	printf("  size:    %s sectors\n", w[1]);
	printf("  mode:    read/write%s\n", !strcmp(w[6], "R") ? " recovery" : "");
	printf("  failures: %s\n", sw[3]);
	if (!strcmp(w[6], "B")) {
		v = opt_val(w, nw, "sectors_per_bit");
		printf("  bitmap 512-byte sectors per bit: %s\n", v ? v : "0");
		v = opt_val(w, nw, "bitmap_flush_interval");
		printf("  bitmap flush interval: %s ms\n", v ? v : "0");
	}
	if (!strcmp(w[6], "B") || !strcmp(w[6], "D")) {
		printf("  journal: not active\n");
	} else {
		unsigned long long js = 0;

		v = opt_val(w, nw, "journal_sectors");
		if (v)
			js = strtoull(v, NULL, 10);
		printf("  journal size: %llu bytes\n", js * 512);
		v = opt_val(w, nw, "journal_watermark");
		printf("  journal watermark: %s%%\n", v ? v : "0");
		v = opt_val(w, nw, "commit_time");
		printf("  journal commit time: %s ms\n", v ? v : "0");
	}
	return 0;
}

int cmd_integrity(int argc, char **argv)
{
	struct iargs a;
	const char *verb;

	if (argc < 2) {
		integrity_usage(stderr);
		return EXIT_USAGE;
	}
	verb = argv[1];
	if (!strcmp(verb, "help") || !strcmp(verb, "--help") || !strcmp(verb, "-h")) {
		integrity_usage(stdout);
		return 0;
	}
	if (parse_args(argc - 1, argv + 1, &a))
		return EXIT_USAGE;
	a.verb = verb;
	if (!strcmp(verb, "format"))
		return do_format(&a);
	if (!strcmp(verb, "open"))
		return do_open(&a);
	if (!strcmp(verb, "close"))
		return do_close(&a);
	if (!strcmp(verb, "status"))
		return do_status(&a);
	if (!strcmp(verb, "dump"))
		return do_dump(&a);
	cli_error("integrity: unknown command \"%s\" (see blkstack integrity help)", verb);
	return EXIT_USAGE;
}
