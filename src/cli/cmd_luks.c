/*
 * cmd_luks.c - `blkstack luks ...`: cryptsetup's LUKS verbs (luksFormat, open, close,
 * luksDump, luksAddKey, ...), with cryptsetup's option names, meanings and exit codes.
 *
 * The format work happens in src/formats/luks*.c; this file parses arguments, gets
 * passphrases (get_passphrase: terminal without echo, key files, standard input; never the
 * command line), opens devices (host files and block devices, or /dev/mapper/NAME of the
 * daemon over NBD) and talks to the daemon.  `open` unlocks the volume key here and sends
 * the daemon a dm.create whose table (in the locked data blob) carries the key.
 *
 * Exit codes (cryptsetup's): 0 success, 1 wrong parameters or other failure, 2 no
 * permission (bad passphrase), 3 out of memory, 4 wrong device, 5 device exists or busy.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cryptdev.h"
#include "cli/nbd_bdev.h"
#include "cli/passphrase.h"
#include "engine/device.h"
#include "formats/luks.h"
#include "util/parse.h"
#include "util/secmem.h"
#include "util/strbuf.h"

enum {
	LX_OK = 0,
	LX_FAIL = 1,  /* wrong parameters, anything else */
	LX_PERM = 2,  /* no permission (bad passphrase) */
	LX_NOMEM = 3, /* out of memory */
	LX_DEV = 4,   /* wrong device */
	LX_BUSY = 5,  /* device already exists or is busy */
};

static void luks_usage(FILE *f)
{
	fputs(
	    "usage: blkstack luks <command> [options]\n"
	    "  format DEV                 [--type luks1|luks2] [--cipher SPEC] [--key-size BITS]\n"
	    "                             [--hash HASH] [--pbkdf pbkdf2|argon2i|argon2id]\n"
	    "                             [--iter-time MS] [--pbkdf-memory KIB] [--pbkdf-parallel "
	    "N]\n"
	    "                             [--pbkdf-force-iterations N] [--sector-size BYTES]\n"
	    "                             [--key-slot N] [--uuid UUID] [--label L] [--subsystem "
	    "S]\n"
	    "                             [--header FILE] [--offset SECTORS]\n"
	    "                             [--luks2-metadata-size BYTES] [--luks2-keyslots-size "
	    "BYTES]\n"
	    "                             [--integrity hmac-sha256|hmac-sha1|hmac-sha512|aead]\n"
	    "                             [--integrity-no-wipe]\n"
	    "  open DEV NAME              [--key-slot N] [--readonly] [--allow-discards]\n"
	    "                             [--header FILE] [--test-passphrase]\n"
	    "  close NAME\n"
	    "  dump DEV                   [--dump-volume-key] [--header FILE]\n"
	    "  add-key DEV [NEW_KEY_FILE] [--key-slot N] [--new-keyfile-offset N]\n"
	    "                             [--new-keyfile-size N] [PBKDF options]\n"
	    "  remove-key DEV [KEY_FILE]\n"
	    "  change-key DEV [NEW_KEY_FILE] [--key-slot N] [PBKDF options]\n"
	    "  kill-slot DEV SLOT [KEY_FILE]\n"
	    "  header-backup DEV --header-backup-file FILE\n"
	    "  header-restore DEV --header-backup-file FILE\n"
	    "  uuid DEV [--uuid UUID]\n"
	    "  is-luks DEV [--type luks1|luks2] [-v]\n"
	    "  resize NAME [--size SECTORS]\n"
	    "Passphrases: --key-file FILE (\"-\" = standard input) with --keyfile-offset and\n"
	    "--keyfile-size, or a prompt on the terminal, or one line of standard input.\n"
	    "-q/--batch-mode skips confirmations.  DEV may be /dev/mapper/NAME of a blkstack\n"
	    "device.  Defaults as cryptsetup 2.6: LUKS2, aes-xts-plain64, 512-bit key, sha256,\n"
	    "argon2id for 2000 ms (LUKS1: pbkdf2).\n",
	    f);
}

enum {
	O_TYPE = 1000,
	O_CIPHER,
	O_KEY_SIZE,
	O_HASH,
	O_PBKDF,
	O_ITER_TIME,
	O_PBKDF_MEMORY,
	O_PBKDF_PARALLEL,
	O_PBKDF_FORCE,
	O_SECTOR_SIZE,
	O_KEY_FILE,
	O_KEYFILE_OFFSET,
	O_KEYFILE_SIZE,
	O_NEW_KEYFILE_OFFSET,
	O_NEW_KEYFILE_SIZE,
	O_NEW_KEY_FILE,
	O_KEY_SLOT,
	O_UUID,
	O_LABEL,
	O_SUBSYSTEM,
	O_HEADER,
	O_OFFSET,
	O_READONLY,
	O_DISCARDS,
	O_TEST,
	O_DUMP_VK,
	O_BACKUP_FILE,
	O_SIZE,
	O_META_SIZE,
	O_KS_SIZE,
	O_INTEGRITY,
	O_INTEGRITY_NO_WIPE,
};

static const struct option opts[] = {
    {"type", required_argument, NULL, O_TYPE},
    {"cipher", required_argument, NULL, 'c'},
    {"key-size", required_argument, NULL, 's'},
    {"hash", required_argument, NULL, 'h'},
    {"pbkdf", required_argument, NULL, O_PBKDF},
    {"iter-time", required_argument, NULL, 'i'},
    {"pbkdf-memory", required_argument, NULL, O_PBKDF_MEMORY},
    {"pbkdf-parallel", required_argument, NULL, O_PBKDF_PARALLEL},
    {"pbkdf-force-iterations", required_argument, NULL, O_PBKDF_FORCE},
    {"sector-size", required_argument, NULL, O_SECTOR_SIZE},
    {"key-file", required_argument, NULL, 'd'},
    {"keyfile-offset", required_argument, NULL, O_KEYFILE_OFFSET},
    {"keyfile-size", required_argument, NULL, 'l'},
    {"new-keyfile-offset", required_argument, NULL, O_NEW_KEYFILE_OFFSET},
    {"new-keyfile-size", required_argument, NULL, O_NEW_KEYFILE_SIZE},
    {"new-key-file", required_argument, NULL, O_NEW_KEY_FILE},
    {"key-slot", required_argument, NULL, 'S'},
    {"uuid", required_argument, NULL, O_UUID},
    {"label", required_argument, NULL, O_LABEL},
    {"subsystem", required_argument, NULL, O_SUBSYSTEM},
    {"header", required_argument, NULL, O_HEADER},
    {"offset", required_argument, NULL, 'o'},
    {"readonly", no_argument, NULL, 'r'},
    {"allow-discards", no_argument, NULL, O_DISCARDS},
    {"test-passphrase", no_argument, NULL, O_TEST},
    {"dump-volume-key", no_argument, NULL, O_DUMP_VK},
    {"dump-master-key", no_argument, NULL, O_DUMP_VK},
    {"header-backup-file", required_argument, NULL, O_BACKUP_FILE},
    {"size", required_argument, NULL, 'b'},
    {"luks2-metadata-size", required_argument, NULL, O_META_SIZE},
    {"luks2-keyslots-size", required_argument, NULL, O_KS_SIZE},
    {"integrity", required_argument, NULL, O_INTEGRITY},
    {"integrity-no-wipe", no_argument, NULL, O_INTEGRITY_NO_WIPE},
    {"batch-mode", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, O_TYPE + 900},
    {NULL, 0, NULL, 0},
};

struct largs {
	const char *verb;
	const char *type;
	struct luks_format_opts fmt;
	struct key_source key, newkey;
	bool key_set, newkey_offset_set, newkey_size_set;
	bool fmt_pbkdf_set;
	int slot;
	const char *uuid, *header, *backup;
	bool readonly, discards, test, dump_vk, batch, verbose;
	uint64_t size_sectors;
	int npos;
	char **pos;
};

static int bad_opt(const char *name, const char *val)
{
	cli_error("invalid %s \"%s\"", name, val);
	return -1;
}

static int num32(const char *name, const char *s, uint64_t min, uint64_t max, uint32_t *out)
{
	uint64_t v;

	if (bs_parse_uint_range(s, min, max, &v))
		return bad_opt(name, s);
	*out = (uint32_t)v;
	return 0;
}

static int parse_args(int argc, char **argv, struct largs *a)
{
	int c;

	memset(a, 0, sizeof(*a));
	a->verb = argv[0];
	a->slot = LUKS_ANY_SLOT;
	a->fmt.keyslot = LUKS_ANY_SLOT;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "c:s:h:i:d:l:S:o:rb:qv", opts, NULL)) != -1) {
		uint32_t u;
		uint64_t v;
		int r = 0;

		switch (c) {
		case O_TYPE:
			a->type = optarg;
			if (strcmp(optarg, "luks1") && strcmp(optarg, "luks2") &&
			    strcmp(optarg, "luks"))
				r = bad_opt("--type", optarg);
			break;
		case 'c':
			a->fmt.cipher = optarg;
			break;
		case 's':
			r = num32("--key-size", optarg, 8, 4096, &u);
			if (!r && u % 8)
				r = bad_opt("--key-size (bits, a multiple of 8)", optarg);
			a->fmt.key_bytes = u / 8;
			break;
		case 'h':
			if (strlen(optarg) >= sizeof(a->fmt.pbkdf.hash))
				r = bad_opt("--hash", optarg);
			else
				strcpy(a->fmt.pbkdf.hash, optarg);
			break;
		case O_PBKDF:
			if (bs_pbkdf_type_parse(optarg, &a->fmt.pbkdf.type))
				r = bad_opt("--pbkdf (pbkdf2, argon2i or argon2id)", optarg);
			a->fmt.pbkdf.type_set = true;
			break;
		case 'i':
			r = num32("--iter-time", optarg, 1, UINT32_MAX, &a->fmt.pbkdf.iter_time_ms);
			break;
		case O_PBKDF_MEMORY:
			r = num32("--pbkdf-memory", optarg, 1, UINT32_MAX, &a->fmt.pbkdf.memory_kb);
			break;
		case O_PBKDF_PARALLEL:
			r = num32("--pbkdf-parallel", optarg, 1, 16, &a->fmt.pbkdf.parallel);
			break;
		case O_PBKDF_FORCE:
			r = num32("--pbkdf-force-iterations", optarg, 1, UINT32_MAX,
				  &a->fmt.pbkdf.iterations);
			break;
		case O_SECTOR_SIZE:
			r = num32("--sector-size", optarg, 512, 4096, &u);
			if (!r && (u & (u - 1)))
				r = bad_opt("--sector-size (512, 1024, 2048 or 4096)", optarg);
			a->fmt.sector_size = u;
			break;
		case 'd':
			a->key.key_file = optarg;
			a->key_set = true;
			break;
		case O_KEYFILE_OFFSET:
			if (bs_parse_u64(optarg, &a->key.keyfile_offset))
				r = bad_opt("--keyfile-offset", optarg);
			break;
		case 'l':
			if (bs_parse_uint_range(optarg, 1, KEYFILE_MAX, &a->key.keyfile_size))
				r = bad_opt("--keyfile-size", optarg);
			break;
		case O_NEW_KEYFILE_OFFSET:
			if (bs_parse_u64(optarg, &a->newkey.keyfile_offset))
				r = bad_opt("--new-keyfile-offset", optarg);
			break;
		case O_NEW_KEYFILE_SIZE:
			if (bs_parse_uint_range(optarg, 1, KEYFILE_MAX, &a->newkey.keyfile_size))
				r = bad_opt("--new-keyfile-size", optarg);
			break;
		case O_NEW_KEY_FILE:
			a->newkey.key_file = optarg;
			break;
		case 'S':
			if (bs_parse_uint_range(optarg, 0, 31, &v))
				r = bad_opt("--key-slot", optarg);
			a->slot = (int)v;
			a->fmt.keyslot = (int)v;
			break;
		case O_UUID:
			a->uuid = optarg;
			a->fmt.uuid = optarg;
			break;
		case O_LABEL:
			a->fmt.label = optarg;
			break;
		case O_SUBSYSTEM:
			a->fmt.subsystem = optarg;
			break;
		case O_HEADER:
			a->header = optarg;
			break;
		case 'o':
			if (bs_parse_u64(optarg, &v) || v > UINT64_MAX / 512)
				r = bad_opt("--offset", optarg);
			a->fmt.offset_set = true;
			a->fmt.data_offset = v * 512;
			break;
		case 'r':
			a->readonly = true;
			break;
		case O_DISCARDS:
			a->discards = true;
			break;
		case O_TEST:
			a->test = true;
			break;
		case O_DUMP_VK:
			a->dump_vk = true;
			break;
		case O_BACKUP_FILE:
			a->backup = optarg;
			break;
		case 'b':
			if (bs_parse_u64(optarg, &a->size_sectors) || !a->size_sectors)
				r = bad_opt("--size", optarg);
			break;
		case O_META_SIZE:
			if (bs_parse_size(optarg, &a->fmt.metadata_size))
				r = bad_opt("--luks2-metadata-size", optarg);
			break;
		case O_KS_SIZE:
			if (bs_parse_size(optarg, &a->fmt.keyslots_size))
				r = bad_opt("--luks2-keyslots-size", optarg);
			break;
		case O_INTEGRITY:
			a->fmt.integrity = luks_integrity_name(optarg);
			if (!a->fmt.integrity)
				r = bad_opt(
				    "--integrity (hmac-sha256, hmac-sha1, hmac-sha512 or aead)",
				    optarg);
			break;
		case O_INTEGRITY_NO_WIPE:
			a->fmt.integrity_no_wipe = true;
			break;
		case 'q':
			a->batch = true;
			break;
		case 'v':
			a->verbose = true;
			break;
		case O_TYPE + 900:
			luks_usage(stdout);
			exit(0);
		default:
			cli_error("luks %s: unknown or incomplete option \"%s\"", a->verb,
				  argv[optind - 1]);
			return -1;
		}
		if (r)
			return -1;
	}
	a->npos = argc - optind;
	a->pos = argv + optind;
	return 0;
}

static int want(const struct largs *a, int min, int max)
{
	if (a->npos < min || a->npos > max) {
		cli_error("luks %s: %s (see blkstack luks help)", a->verb,
			  a->npos < min ? "missing arguments" : "too many arguments");
		return -1;
	}
	return 0;
}

static int code(int r)
{
	switch (r) {
	case 0:
		return LX_OK;
	case -EEXIST:
	case -EBUSY:
		return LX_BUSY;
	case -ENOTBLK:
	case -ENODEV:
		return LX_DEV;
	case -ENOMEM:
		return LX_NOMEM;
	case -EPERM:
		return LX_PERM;
	default:
		return LX_FAIL;
	}
}

static int fail(int r, struct strbuf *err)
{
	cli_error("%s", sb_str(err));
	sb_free(err);
	return code(r);
}

/* Opens a device (host path or /dev/mapper/NAME); prints why not. */
static int open_dev(const char *path, bool readonly, struct bs_bdev **b)
{
	const char *why;
	int r = bs_bdev_open(path, readonly, b, &why);

	if (!r)
		return 0;
	if (r == -ENOENT || r == -EACCES || r == -ENXIO)
		cli_error("Device %s does not exist or access denied.", path);
	else if (r == -EROFS)
		cli_error("Device %s is read-only.", path);
	else
		cli_error("cannot open %s: %s", path, why);
	return r == -ENOENT || r == -EACCES || r == -ENXIO ? -ENODEV : r;
}

/* Opens the header device (--header or DEV) and loads the header. */
static int load_hdr(const struct largs *a, const char *dev, bool readonly, struct bs_bdev **b,
		    struct luks_hdr **h)
{
	struct strbuf err = STRBUF_INIT;
	int r;

	cli_install_nbd_resolver();
	r = open_dev(a->header ? a->header : dev, readonly, b);
	if (r)
		return code(r);
	r = luks_load(*b, !readonly, h, &err);
	if (r) {
		bs_bdev_close(*b);
		*b = NULL;
		return fail(r, &err);
	}
	sb_free(&err);
	if (a->type && strcmp(a->type, "luks") &&
	    luks_version(*h) != (strcmp(a->type, "luks1") ? 2 : 1)) {
		cli_error("Device %s is not a valid %s device.", a->header ? a->header : dev,
			  a->type);
		luks_free(*h);
		bs_bdev_close(*b);
		return LX_FAIL;
	}
	return 0;
}

static void unload(struct bs_bdev *b, struct luks_hdr *h)
{
	luks_free(h);
	bs_bdev_close(b);
}

/* Asks for "YES" on the terminal, as cryptsetup's confirmations; true without one. */
static bool confirm(const struct largs *a, const char *msg)
{
	char line[16];
	FILE *tty;
	bool yes;

	if (a->batch || !isatty(0))
		return true;
	tty = fopen("/dev/tty", "r+e");
	if (!tty)
		return true;
	fprintf(tty,
		"\nWARNING!\n========\n%s\n\nAre you sure? (Type 'yes' in capital letters): ", msg);
	fflush(tty);
	yes = fgets(line, sizeof(line), tty) && !strcmp(line, "YES\n");
	fclose(tty);
	return yes;
}

static int passphrase(const struct key_source *src, const char *prompt, bool verify, char **p,
		      size_t *len)
{
	return get_passphrase(src, prompt, verify, p, len) ? LX_FAIL : 0;
}

/* The existing passphrase: --key-file or the key file argument at index KF, or a prompt. */
static int old_pass(const struct largs *a, int kf, const char *prompt, char **p, size_t *len)
{
	struct key_source src = a->key;

	if (kf >= 0 && a->npos > kf) {
		if (a->key_set) {
			cli_error("luks %s: give the key file either with --key-file or as an "
				  "argument",
				  a->verb);
			return LX_FAIL;
		}
		src.key_file = a->pos[kf];
	}
	return passphrase(&src, prompt, false, p, len);
}

/* The new passphrase: --new-key-file or the argument at index KF, or a prompt (twice). */
static int new_pass(const struct largs *a, int kf, char **p, size_t *len)
{
	struct key_source src = a->newkey;

	if (kf >= 0 && a->npos > kf) {
		if (src.key_file) {
			cli_error("luks %s: give the new key file either with --new-key-file or as "
				  "an argument",
				  a->verb);
			return LX_FAIL;
		}
		src.key_file = a->pos[kf];
	}
	if (!src.key_file && (src.keyfile_offset || src.keyfile_size)) {
		cli_error("luks %s: --new-keyfile-offset/--new-keyfile-size need a new key file",
			  a->verb);
		return LX_FAIL;
	}
	return passphrase(&src, "Enter new passphrase for key slot: ", true, p, len);
}

/* Unlocks H with a passphrase: the volume key, the slot. */
static int unlock(const struct largs *a, struct luks_hdr *h, int kf, const char *prompt, int slot,
		  uint8_t **vk, size_t *vk_len, int *used)
{
	struct strbuf err = STRBUF_INIT;
	char *pass;
	size_t len;
	int r = old_pass(a, kf, prompt, &pass, &len);

	if (r)
		return r;
	r = luks_unlock(h, slot, pass, len, vk, vk_len, used, &err);
	bs_secure_free(pass);
	if (r)
		return fail(r, &err);
	sb_free(&err);
	if (a->verbose)
		fprintf(stderr, "Key slot %d unlocked.\n", *used);
	return 0;
}

/* ---- format ----------------------------------------------------------------------------- */

/* cryptsetup's sector size choice: the file system's block size for files, else 512. */
static unsigned auto_sector_size(const char *path, struct bs_bdev *b)
{
	struct statvfs vfs;
	struct stat st;

	if (b->kind == BS_BDEV_BLOCK)
		return b->block_size;
	if (b->kind == BS_BDEV_FILE && !stat(path, &st) && S_ISREG(st.st_mode) &&
	    !statvfs(path, &vfs) && vfs.f_bsize >= 512 && vfs.f_bsize <= 4096 &&
	    !(vfs.f_bsize & (vfs.f_bsize - 1)))
		return (unsigned)vfs.f_bsize;
	return 512;
}

/*
 * A detached header file is created (mode 0600; *created set) or grown to the size the
 * header needs.
 */
static int prepare_header_file(const char *path, uint64_t need, bool *created)
{
	struct stat st;
	int fd;

	*created = false;
	if (!strncmp(path, "/dev/", 5))
		return 0;
	if (stat(path, &st) && errno == ENOENT) {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 || ftruncate(fd, (off_t)need)) {
			cli_error("cannot create header file %s: %s", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		close(fd);
		*created = true;
		return 0;
	}
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < need && truncate(path, (off_t)need)) {
		cli_error("cannot extend header file %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int do_format(struct largs *a)
{
	struct luks_format_opts *o = &a->fmt;
	struct bs_bdev *hdr = NULL, *data = NULL;
	struct strbuf err = STRBUF_INIT;
	const char *dev;
	uint64_t need, data_size;
	char *pass = NULL;
	size_t len;
	int r, slot;
	bool created = false;
	char msg[PATH_MAX + 64];

	if (want(a, 1, 1))
		return LX_FAIL;
	dev = a->pos[0];
	o->version = a->type && !strcmp(a->type, "luks1") ? 1 : 2;
	o->detached = a->header != NULL;
	if (o->version == 1 && o->pbkdf.type_set && o->pbkdf.type != BS_PBKDF2) {
		cli_error("Requested PBKDF type is not supported for LUKS1.");
		return LX_FAIL;
	}
	r = luks_format_header_size(o, &need, &err);
	if (r)
		return fail(r, &err);
	cli_install_nbd_resolver();
	snprintf(msg, sizeof(msg), "This will overwrite data on %s irrevocably.",
		 a->header ? a->header : dev);
	if (!confirm(a, msg)) {
		cli_error("Operation aborted.");
		return LX_FAIL;
	}
	if (a->header && prepare_header_file(a->header, need, &created))
		return LX_FAIL;
	r = open_dev(a->header ? a->header : dev, false, &hdr);
	if (r)
		goto fail;
	/* with integrity the data device gets the integrity superblock: opened writable */
	if (a->header && (r = open_dev(dev, !o->integrity, &data))) {
		bs_bdev_close(hdr);
		goto fail;
	}
	data_size = bs_bdev_size(data ? data : hdr);
	if (o->version == 2 && !o->sector_size) {
		unsigned s = auto_sector_size(dev, data ? data : hdr);
		uint64_t off = o->offset_set ? o->data_offset : o->detached ? 0 : need;

		/* as cryptsetup: back to 512 when the data area is not aligned to it */
		if (off % s || off > data_size || (data_size - off) % s)
			s = 512;
		o->sector_size = s;
	}
	if (o->integrity && data)
		o->data_dev = data; /* the integrity device goes there */
	else
		bs_bdev_close(data);
	snprintf(msg, sizeof(msg), "Enter passphrase for %s: ", dev);
	if (passphrase(&a->key, msg, true, &pass, &len)) {
		bs_bdev_close(o->data_dev);
		bs_bdev_close(hdr);
		r = -EINVAL;
		goto fail;
	}
	r = luks_format(hdr, data_size, o, pass, len, NULL, &slot, &err);
	bs_secure_free(pass);
	bs_bdev_close(o->data_dev);
	o->data_dev = NULL;
	bs_bdev_close(hdr);
	if (r) {
		if (created)
			unlink(a->header); /* a refused format leaves nothing behind */
		return fail(r, &err);
	}
	sb_free(&err);
	if (a->verbose)
		fprintf(stderr, "Key slot %d created.\n", slot);
	return 0;
fail:
	if (created)
		unlink(a->header);
	sb_free(&err);
	return code(r);
}

/* ---- open / close / resize -------------------------------------------------------------- */

static bool daemon_has(const char *name)
{
	struct json_object *req = json_object_new_object();
	struct bs_msg reply;

	json_object_object_add(req, "name", json_object_new_string(name));
	if (cli_call_quiet("dm.info", req, &reply))
		return false;
	bs_msg_free(&reply);
	return true;
}

static bool daemon_up(void)
{
	struct bs_msg reply;

	if (cli_call_quiet("daemon.info", json_object_new_object(), &reply))
		return false;
	bs_msg_free(&reply);
	return true;
}

/* The path the daemon should use for a data device: absolute for host paths. */
static int table_path(const char *dev, char *out, size_t len)
{
	char cwd[PATH_MAX];
	int n;

	if (!strncmp(dev, "/dev/mapper/", 12) || dev[0] == '/')
		n = snprintf(out, len, "%s", dev);
	else if (getcwd(cwd, sizeof(cwd)))
		n = snprintf(out, len, "%s/%s", cwd, dev);
	else
		return -1;
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/*
 * For a volume with integrity: the integrity device DIF over the data segment of DATA (at
 * PATH) goes into DIF_TABLE and its name, size and dm UUID into DIF, DIF_SECTORS, DIF_UUID.
 * Returns 0, or an exit code after printing why.
 */
static int integrity_part(const struct largs *a, struct luks_hdr *h, struct bs_bdev *data,
			  const char *path, const char *name, char *dif, uint64_t *dif_sectors,
			  char *dif_uuid, struct strbuf *dif_table)
{
	struct strbuf err = STRBUF_INIT;
	int r;

	if (a->discards) {
		cli_error("--allow-discards is not supported for volumes with integrity");
		return LX_FAIL;
	}
	if (strlen(name) + 5 > BS_DEVICE_NAME_MAX) {
		cli_error("invalid device name \"%s\": too long for its integrity device", name);
		return LX_FAIL;
	}
	snprintf(dif, BS_DEVICE_NAME_MAX, "%s_dif", name);
	if (daemon_has(dif)) {
		cli_error("Device %s already exists.", dif);
		return LX_BUSY;
	}
	r = luks_integrity_table(h, data, path, dif_sectors, dif_table, &err);
	if (r)
		return fail(r, &err);
	sb_free(&err);
	/* cryptsetup's: CRYPT-INTEGRITY-<uuid without dashes>-<name>_dif */
	luks_dm_uuid(h, dif, dif_uuid, BS_DEVICE_UUID_MAX);
	if (!strncmp(dif_uuid, "CRYPT-LUKS2-", 12)) {
		size_t n = strlen(dif_uuid + 12);

		if (16 + n >= BS_DEVICE_UUID_MAX) {
			cli_error("invalid device name \"%s\": too long for its dm UUID", name);
			return LX_FAIL;
		}
		memmove(dif_uuid + 16, dif_uuid + 12, n + 1);
		memcpy(dif_uuid, "CRYPT-INTEGRITY-", 16);
	}
	return 0;
}

static int do_open(struct largs *a)
{
	struct bs_bdev *hb = NULL, *db = NULL;
	struct luks_hdr *h = NULL;
	struct strbuf err = STRBUF_INIT, table = STRBUF_SECURE_INIT, dif_table = STRBUF_INIT;
	struct luks_segment_info seg;
	struct json_object *req;
	struct bs_msg reply;
	const char *dev, *name;
	const char *why;
	char path[PATH_MAX], uuid[BS_DEVICE_UUID_MAX], prompt[PATH_MAX + 32];
	char dif[BS_DEVICE_NAME_MAX] = "", dif_uuid[BS_DEVICE_UUID_MAX], dif_path[PATH_MAX];
	uint8_t *vk = NULL;
	size_t vk_len = 0;
	uint64_t data_size, dif_sectors = 0;
	int r, used;

	if (want(a, a->test ? 1 : 2, 2))
		return LX_FAIL;
	dev = a->pos[0];
	name = a->npos > 1 ? a->pos[1] : NULL;
	if (name && (why = bs_device_name_invalid(name))) {
		cli_error("invalid device name \"%s\": %s", name, why);
		return LX_FAIL;
	}
	if (table_path(dev, path, sizeof(path))) {
		cli_error("path too long: %s", dev);
		return LX_FAIL;
	}
	if (!a->test) {
		if (!daemon_up()) {
			cli_error("cannot reach blkstackd at %s (is the daemon running?)",
				  bs_control_path());
			return LX_FAIL;
		}
		if (daemon_has(name)) {
			cli_error("Device %s already exists.", name);
			return LX_BUSY;
		}
	}
	r = load_hdr(a, dev, a->readonly || a->test, &hb, &h);
	if (r)
		return r;
	if (a->header && (r = open_dev(dev, true, &db))) {
		unload(hb, h);
		return code(r);
	}
	data_size = bs_bdev_size(db ? db : hb);
	/* with integrity, the integrity device goes below the crypt device (as cryptsetup) */
	if (!a->test && !luks_segment(h, &seg, &err) && seg.tag_size) {
		r = integrity_part(a, h, db ? db : hb, path, name, dif, &dif_sectors, dif_uuid,
				   &dif_table);
		if (r) {
			bs_bdev_close(db);
			unload(hb, h);
			sb_free(&dif_table);
			sb_free(&err);
			return r;
		}
		snprintf(dif_path, sizeof(dif_path), "/dev/mapper/%s", dif);
	}
	sb_reset(&err);
	bs_bdev_close(db);
	db = NULL;
	snprintf(prompt, sizeof(prompt), "Enter passphrase for %s: ", dev);
	r = unlock(a, h, -1, prompt, a->slot, &vk, &vk_len, &used);
	if (r) {
		unload(hb, h);
		sb_free(&dif_table);
		return r;
	}
	if (!a->test && dif[0])
		r = luks_crypt_table(h, vk, vk_len, dif_path, dif_sectors * 512, 0,
				     LUKS_TABLE_INTEGRITY_DEV, &table, &err);
	else if (!a->test)
		r = luks_crypt_table(h, vk, vk_len, path, data_size, 0,
				     (a->discards ? LUKS_TABLE_DISCARDS : 0) |
					 (a->header ? 0 : LUKS_TABLE_ATTACHED),
				     &table, &err);
	else
		r = 0;
	bs_secure_free(vk);
	if (!r && name)
		luks_dm_uuid(h, name, uuid, sizeof(uuid));
	unload(hb, h);
	if (r) {
		sb_free(&table);
		sb_free(&dif_table);
		return fail(r, &err);
	}
	sb_free(&err);
	if (a->test)
		return 0;
	if (dif[0]) {
		snprintf(prompt, sizeof(prompt), "luks open %s", dif);
		if (cryptdev_create(prompt, dif, dif_uuid, a->readonly, &dif_table)) {
			sb_free(&table);
			return LX_FAIL;
		}
	}
	req = json_object_new_object();
	json_object_object_add(req, "name", json_object_new_string(name));
	json_object_object_add(req, "uuid", json_object_new_string(uuid));
	if (a->readonly)
		json_object_object_add(req, "readonly", json_object_new_boolean(1));
	snprintf(prompt, sizeof(prompt), "luks open %s", name);
	r = cli_call(prompt, "dm.create", req, sb_str(&table), table.len, &reply);
	sb_free(&table);
	if (r) {
		if (dif[0]) /* nothing stays behind */
			cryptdev_remove("luks open", dif, "CRYPT-INTEGRITY-",
					"an integrity device of a LUKS volume");
		return LX_FAIL;
	}
	bs_msg_free(&reply);
	return 0;
}

/*
 * The live table of NAME (with keys when SHOWKEYS: then in locked memory).  Returns 0, or
 * an exit code after printing why.
 */
static int get_table(const char *verb, const char *name, bool showkeys, char **out)
{
	struct json_object *req = json_object_new_object(), *devs, *d;
	struct bs_msg reply;
	unsigned long long len = 0;

	json_object_object_add(req, "name", json_object_new_string(name));
	if (showkeys)
		json_object_object_add(req, "showkeys", json_object_new_boolean(1));
	if (!daemon_up()) {
		json_object_put(req);
		cli_error("cannot reach blkstackd at %s (is the daemon running?)",
			  bs_control_path());
		return LX_FAIL;
	}
	if (cli_call_quiet("dm.table", req, &reply)) {
		cli_error("Device %s is not active.", name);
		return LX_DEV;
	}
	if (!json_object_object_get_ex(reply.json, "devices", &devs) ||
	    json_object_array_length(devs) != 1 || !(d = json_object_array_get_idx(devs, 0)) ||
	    bs_json_u64(d, "length", &len) || len > reply.data_len || !bs_json_bool(d, "present")) {
		bs_msg_free(&reply);
		cli_error("luks %s: device %s has no live table", verb, name);
		return LX_FAIL;
	}
	*out = bs_secure_alloc(len + 1);
	if (!*out) {
		bs_msg_free(&reply);
		cli_error("out of memory");
		return LX_NOMEM;
	}
	memcpy(*out, reply.data, len);
	while (len && ((*out)[len - 1] == '\n'))
		len--;
	(*out)[len] = '\0';
	bs_msg_free(&reply);
	return 0;
}

/* True when every line of TABLE is a crypt target. */
static bool all_crypt(const char *table)
{
	const char *p = table;
	int lines = 0;

	while (*p) {
		char start[32], len[32], type[32];

		if (sscanf(p, "%31s %31s %31s", start, len, type) != 3 || strcmp(type, "crypt"))
			return false;
		lines++;
		p = strchr(p, '\n');
		if (!p)
			break;
		p++;
	}
	return lines > 0;
}

static int do_close(struct largs *a)
{
	struct json_object *req;
	struct bs_msg reply;
	char *table = NULL, ctx[200], dif[BS_DEVICE_NAME_MAX + 16] = "";
	int r;

	if (want(a, 1, 1))
		return LX_FAIL;
	r = get_table("close", a->pos[0], false, &table);
	if (r)
		return r;
	if (!all_crypt(table)) {
		bs_secure_free(table);
		cli_error("Device %s is not a crypt device (refusing to remove it).", a->pos[0]);
		return LX_FAIL;
	}
	/* a volume with integrity: the integrity device below goes too (as cryptsetup) */
	if (strstr(table, " integrity:")) {
		char pat[BS_DEVICE_NAME_MAX + 32];

		snprintf(pat, sizeof(pat), " /dev/mapper/%s_dif ", a->pos[0]);
		if (strstr(table, pat))
			snprintf(dif, sizeof(dif), "%s_dif", a->pos[0]);
	}
	bs_secure_free(table);
	req = json_object_new_object();
	json_object_object_add(req, "name", json_object_new_string(a->pos[0]));
	snprintf(ctx, sizeof(ctx), "luks close %s", a->pos[0]);
	r = cli_call(ctx, "dm.remove", req, NULL, 0, &reply);
	if (r)
		return LX_BUSY;
	bs_msg_free(&reply);
	if (dif[0] && daemon_has(dif) &&
	    cryptdev_remove(ctx, dif, "CRYPT-INTEGRITY-", "an integrity device of a LUKS volume"))
		return LX_BUSY;
	return 0;
}

static int do_resize(struct largs *a)
{
	struct strbuf line = STRBUF_SECURE_INIT;
	struct json_object *req;
	struct bs_msg reply;
	struct bs_bdev *db;
	char *table = NULL, *copy = NULL, **argv = NULL, ctx[200];
	unsigned argc = 0, sector = 512;
	uint64_t off, size, sectors;
	int r;

	if (want(a, 1, 1))
		return LX_FAIL;
	r = get_table("resize", a->pos[0], true, &table);
	if (r)
		return r;
	copy = bs_secure_strdup(table);
	if (!copy || bs_split_args(copy, &argc, &argv)) {
		r = LX_NOMEM;
		cli_error("out of memory");
		goto out;
	}
	if (strchr(table, '\n') || argc < 8 || strcmp(argv[2], "crypt") ||
	    bs_parse_u64(argv[7], &off)) {
		cli_error("Device %s is not a single crypt mapping; cannot resize it.", a->pos[0]);
		r = LX_FAIL;
		goto out;
	}
	for (unsigned i = 8; i < argc; i++) {
		if (!strncmp(argv[i], "integrity:", 10)) {
			cli_error("Device %s has integrity: resizing it is not supported.",
				  a->pos[0]);
			r = LX_FAIL;
			goto out;
		}
		if (!strncmp(argv[i], "sector_size:", 12))
			sector = (unsigned)strtoul(argv[i] + 12, NULL, 10);
	}
	cli_install_nbd_resolver();
	r = open_dev(argv[6], true, &db);
	if (r) {
		r = code(r);
		goto out;
	}
	size = bs_bdev_size(db);
	bs_bdev_close(db);
	if (size / 512 <= off) {
		cli_error("data device %s is smaller than the data offset", argv[6]);
		r = LX_FAIL;
		goto out;
	}
	sectors = a->size_sectors ? a->size_sectors : size / 512 - off;
	if (sectors > size / 512 - off) {
		cli_error("--size %llu is larger than the data device allows (%llu sectors)",
			  (unsigned long long)sectors, (unsigned long long)(size / 512 - off));
		r = LX_FAIL;
		goto out;
	}
	if (sectors % (sector / 512)) {
		if (a->size_sectors) {
			cli_error("--size is not a multiple of the sector size %u", sector);
			r = LX_FAIL;
			goto out;
		}
		sectors -= sectors % (sector / 512);
	}
	sb_printf(&line, "0 %llu", (unsigned long long)sectors);
	for (unsigned i = 2; i < argc; i++) {
		sb_putc(&line, ' ');
		for (const char *p = argv[i]; *p; p++) {
			if (*p == ' ' || *p == '\t' || *p == '\\')
				sb_putc(&line, '\\');
			sb_putc(&line, *p);
		}
	}
	req = json_object_new_object();
	json_object_object_add(req, "name", json_object_new_string(a->pos[0]));
	snprintf(ctx, sizeof(ctx), "luks resize %s", a->pos[0]);
	r = cli_call(ctx, "dm.reload", req, sb_str(&line), line.len, &reply);
	if (!r) {
		bs_msg_free(&reply);
		req = json_object_new_object();
		json_object_object_add(req, "name", json_object_new_string(a->pos[0]));
		r = cli_call(ctx, "dm.resume", req, NULL, 0, &reply);
		if (!r)
			bs_msg_free(&reply);
	}
out:
	free(argv);
	bs_secure_free(copy);
	bs_secure_free(table);
	sb_free(&line);
	return r;
}

/* ---- header inspection ------------------------------------------------------------------ */

static int do_dump(struct largs *a)
{
	struct bs_bdev *b;
	struct luks_hdr *h;
	struct strbuf out = STRBUF_SECURE_INIT;
	const char *dev;
	char prompt[PATH_MAX + 32];
	int r;

	if (want(a, 1, 1))
		return LX_FAIL;
	dev = a->pos[0];
	r = load_hdr(a, dev, true, &b, &h);
	if (r)
		return r;
	if (a->dump_vk) {
		uint8_t *vk;
		size_t vk_len;
		int used;

		snprintf(prompt, sizeof(prompt), "Enter passphrase for %s: ", dev);
		r = unlock(a, h, -1, prompt, a->slot, &vk, &vk_len, &used);
		if (!r) {
			luks_dump_volume_key(h, a->header ? a->header : dev, vk, vk_len, &out);
			bs_secure_free(vk);
		}
	} else {
		luks_dump(h, a->header ? a->header : dev, &out);
	}
	unload(b, h);
	if (!r)
		fputs(sb_str(&out), stdout);
	fflush(stdout);
	sb_free(&out);
	return r;
}

static int do_uuid(struct largs *a)
{
	struct strbuf err = STRBUF_INIT;
	struct bs_bdev *b;
	struct luks_hdr *h;
	int r;

	if (want(a, 1, 1))
		return LX_FAIL;
	r = load_hdr(a, a->pos[0], !a->uuid, &b, &h);
	if (r)
		return r;
	if (!a->uuid) {
		printf("%s\n", luks_uuid(h));
		unload(b, h);
		return 0;
	}
	r = luks_set_uuid(h, a->uuid, &err);
	unload(b, h);
	return r ? fail(r, &err) : (sb_free(&err), 0);
}

static int do_is_luks(struct largs *a)
{
	struct strbuf err = STRBUF_INIT;
	struct bs_bdev *b;
	struct luks_hdr *h;
	int r;

	if (want(a, 1, 1))
		return LX_FAIL;
	cli_install_nbd_resolver();
	r = bs_bdev_open(a->header ? a->header : a->pos[0], true, &b, &(const char *){NULL});
	if (r) {
		if (a->verbose)
			cli_error("Device %s does not exist or access denied.", a->pos[0]);
		return LX_DEV;
	}
	r = luks_load(b, false, &h, &err);
	if (!r && a->type && strcmp(a->type, "luks") &&
	    luks_version(h) != (strcmp(a->type, "luks1") ? 2 : 1))
		r = -EINVAL;
	if (r && a->verbose)
		cli_error("Device %s is not a valid LUKS device.", a->pos[0]);
	if (!r)
		luks_free(h);
	bs_bdev_close(b);
	sb_free(&err);
	return r ? LX_FAIL : 0;
}

static int do_backup(struct largs *a)
{
	struct bs_bdev *b;
	struct luks_hdr *h;
	uint64_t len;
	uint8_t *buf;
	int r, fd;

	if (want(a, 1, 1))
		return LX_FAIL;
	if (!a->backup) {
		cli_error("luks header-backup: --header-backup-file is required");
		return LX_FAIL;
	}
	r = load_hdr(a, a->pos[0], true, &b, &h);
	if (r)
		return r;
	len = luks_header_area_size(h);
	buf = malloc(len);
	if (!buf) {
		unload(b, h);
		cli_error("out of memory");
		return LX_NOMEM;
	}
	r = bs_bdev_read(b, buf, len, 0);
	unload(b, h);
	if (r) {
		free(buf);
		cli_error("cannot read the header of %s: %s", a->pos[0], strerror(-r));
		return LX_FAIL;
	}
	fd = open(a->backup, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
	if (fd < 0) {
		int e = errno;

		free(buf);
		if (e == EEXIST)
			cli_error("Requested header backup file %s already exists.", a->backup);
		else
			cli_error("Cannot create header backup file %s: %s", a->backup,
				  strerror(e));
		return LX_FAIL;
	}
	for (uint64_t done = 0; done < len;) {
		ssize_t n = write(fd, buf + done, len - done);

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			cli_error("Cannot write header backup file %s: %s", a->backup,
				  strerror(n < 0 ? errno : EIO));
			close(fd);
			unlink(a->backup);
			free(buf);
			return LX_FAIL;
		}
		done += (uint64_t)n;
	}
	free(buf);
	if (fsync(fd) || close(fd)) {
		cli_error("Cannot write header backup file %s: %s", a->backup, strerror(errno));
		unlink(a->backup);
		return LX_FAIL;
	}
	return 0;
}

static int do_restore(struct largs *a)
{
	struct strbuf err = STRBUF_INIT;
	struct bs_bdev *b, *bk;
	char msg[PATH_MAX + 128];
	int r;

	if (want(a, 1, 1))
		return LX_FAIL;
	if (!a->backup) {
		cli_error("luks header-restore: --header-backup-file is required");
		return LX_FAIL;
	}
	cli_install_nbd_resolver();
	r = open_dev(a->backup, true, &bk);
	if (r)
		return code(r);
	r = open_dev(a->header ? a->header : a->pos[0], false, &b);
	if (r) {
		bs_bdev_close(bk);
		return code(r);
	}
	snprintf(msg, sizeof(msg),
		 "Device %s already contains LUKS header. Replacing header will destroy existing "
		 "keyslots.",
		 a->pos[0]);
	if (luks_probe(b) && !confirm(a, msg)) {
		bs_bdev_close(b);
		bs_bdev_close(bk);
		cli_error("Operation aborted.");
		return LX_FAIL;
	}
	r = luks_header_restore(b, bk, &err);
	bs_bdev_close(b);
	bs_bdev_close(bk);
	return r ? fail(r, &err) : (sb_free(&err), 0);
}

/* ---- key management --------------------------------------------------------------------- */

static int do_add_key(struct largs *a)
{
	struct strbuf err = STRBUF_INIT;
	struct bs_bdev *b;
	struct luks_hdr *h;
	uint8_t *vk;
	size_t vk_len, len;
	char *pass;
	int r, used, slot;

	if (want(a, 1, 2))
		return LX_FAIL;
	r = load_hdr(a, a->pos[0], false, &b, &h);
	if (r)
		return r;
	if (a->slot != LUKS_ANY_SLOT && luks_slot_active(h, a->slot)) {
		cli_error("Key slot %d is full, please select another one.", a->slot);
		unload(b, h);
		return LX_FAIL;
	}
	r = unlock(a, h, -1, "Enter any existing passphrase: ", LUKS_ANY_SLOT, &vk, &vk_len, &used);
	if (r) {
		unload(b, h);
		return r;
	}
	r = new_pass(a, 1, &pass, &len);
	if (!r) {
		r = luks_add_key(h, a->slot, vk, vk_len, pass, len, &a->fmt.pbkdf, &slot, &err);
		bs_secure_free(pass);
		r = r ? fail(r, &err) : (sb_free(&err), 0);
		if (!r && a->verbose)
			fprintf(stderr, "Key slot %d created.\n", slot);
	}
	bs_secure_free(vk);
	unload(b, h);
	return r;
}

static int do_change_key(struct largs *a)
{
	struct strbuf err = STRBUF_INIT;
	struct bs_bdev *b;
	struct luks_hdr *h;
	uint8_t *vk;
	size_t vk_len, len;
	char *pass;
	int r, used, slot;

	if (want(a, 1, 2))
		return LX_FAIL;
	r = load_hdr(a, a->pos[0], false, &b, &h);
	if (r)
		return r;
	r = unlock(a, h, -1, "Enter passphrase to be changed: ", a->slot, &vk, &vk_len, &used);
	if (r) {
		unload(b, h);
		return r;
	}
	r = new_pass(a, 1, &pass, &len);
	if (!r) {
		r = luks_change_key(h, used, vk, vk_len, pass, len, &a->fmt.pbkdf, &slot, &err);
		bs_secure_free(pass);
		r = r ? fail(r, &err) : (sb_free(&err), 0);
		if (!r && a->verbose)
			fprintf(stderr, "Key slot %d changed.\n", slot);
	}
	bs_secure_free(vk);
	unload(b, h);
	return r;
}

static int do_remove_key(struct largs *a)
{
	struct strbuf err = STRBUF_INIT;
	struct bs_bdev *b;
	struct luks_hdr *h;
	uint8_t *vk;
	size_t vk_len;
	int r, used;

	if (want(a, 1, 2))
		return LX_FAIL;
	r = load_hdr(a, a->pos[0], false, &b, &h);
	if (r)
		return r;
	r = unlock(a, h, 1, "Enter passphrase to be deleted: ", LUKS_ANY_SLOT, &vk, &vk_len, &used);
	if (r) {
		unload(b, h);
		return r;
	}
	bs_secure_free(vk);
	if (luks_active_slots(h) == 1 &&
	    !confirm(a, "This is the last keyslot. Device will become unusable after purging "
			"this key.")) {
		unload(b, h);
		cli_error("Operation aborted.");
		return LX_FAIL;
	}
	r = luks_kill_slot(h, used, &err);
	unload(b, h);
	if (r)
		return fail(r, &err);
	sb_free(&err);
	if (a->verbose)
		fprintf(stderr, "Key slot %d removed.\n", used);
	return 0;
}

static int do_kill_slot(struct largs *a)
{
	struct strbuf err = STRBUF_INIT;
	struct bs_bdev *b;
	struct luks_hdr *h;
	uint64_t slot;
	int r;

	if (want(a, 2, 3))
		return LX_FAIL;
	if (bs_parse_uint_range(a->pos[1], 0, 31, &slot)) {
		cli_error("invalid key slot \"%s\"", a->pos[1]);
		return LX_FAIL;
	}
	r = load_hdr(a, a->pos[0], false, &b, &h);
	if (r)
		return r;
	if (slot >= (uint64_t)luks_max_slots(h) || !luks_slot_active(h, (int)slot)) {
		cli_error("Keyslot %d is not active.", (int)slot);
		unload(b, h);
		return LX_FAIL;
	}
	/* as cryptsetup: a remaining passphrase is asked unless in batch mode on a terminal */
	if (!a->batch || a->key_set || a->npos > 2 || !isatty(0)) {
		uint8_t *vk;
		size_t vk_len;
		int used;

		r = unlock(a, h, 2, "Enter any remaining passphrase: ", LUKS_ANY_SLOT, &vk, &vk_len,
			   &used);
		if (r) {
			unload(b, h);
			return r;
		}
		bs_secure_free(vk);
	}
	if (luks_active_slots(h) == 1 &&
	    !confirm(a, "This is the last keyslot. Device will become unusable after purging "
			"this key.")) {
		unload(b, h);
		cli_error("Operation aborted.");
		return LX_FAIL;
	}
	r = luks_kill_slot(h, (int)slot, &err);
	unload(b, h);
	return r ? fail(r, &err) : (sb_free(&err), 0);
}

int cmd_luks(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct largs *);
	} verbs[] = {
	    {"format", do_format},
	    {"open", do_open},
	    {"close", do_close},
	    {"dump", do_dump},
	    {"add-key", do_add_key},
	    {"remove-key", do_remove_key},
	    {"change-key", do_change_key},
	    {"kill-slot", do_kill_slot},
	    {"header-backup", do_backup},
	    {"header-restore", do_restore},
	    {"uuid", do_uuid},
	    {"is-luks", do_is_luks},
	    {"resize", do_resize},
	};
	struct largs a;

	if (argc < 2) {
		luks_usage(stderr);
		return LX_FAIL;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		luks_usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(argv[1], verbs[i].name))
			continue;
		if (parse_args(argc - 1, argv + 1, &a))
			return LX_FAIL;
		return verbs[i].fn(&a);
	}
	cli_error("luks: unknown command \"%s\" (see blkstack luks help)", argv[1]);
	return LX_FAIL;
}
