/*
 * cmd_plain.c - `blkstack plain ...`: cryptsetup's `open --type plain` and `close`.
 *
 *   plain open [options] DEV NAME   maps NAME onto DEV with a key from a passphrase or key
 *                                   file (formats/plain.h); no header is read or written
 *   plain close NAME                removes a mapping plain open made
 *
 * Options, defaults and key handling are cryptsetup 2.6's (checked against the kernel tables
 * it builds, tests/fixtures/plain/kdf.txt):
 *   - passphrase (terminal, or standard input up to the first newline; at most --keyfile-size
 *     bytes of it): hashed with --hash (default ripemd160);
 *   - --key-file FILE: the first key-size bytes of FILE from --keyfile-offset, used directly;
 *     --hash and --keyfile-size are ignored with a warning, as cryptsetup does;
 *   - --key-file -: all of standard input (newlines kept, at most --keyfile-size bytes),
 *     hashed with --hash; with --hash plain the first key-size bytes are the key.
 * The table, "0 SIZE crypt CIPHER KEY SKIP DEV OFFSET [n opts]", is built in locked memory
 * and sent to the daemon in the data blob of a dm.create; the device's uuid is
 * "CRYPT-PLAIN-NAME" as cryptsetup makes it.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cryptdev.h"
#include "cli/passphrase.h"
#include "crypto/cipher.h"
#include "engine/device.h"
#include "formats/plain.h"
#include "util/parse.h"
#include "util/secmem.h"
#include "util/strbuf.h"

#define PLAIN_UUID_PREFIX "CRYPT-PLAIN-"

static void plain_usage(FILE *f)
{
	fputs("usage: blkstack plain <command> [options]\n"
	      "  open [options] DEV NAME     map NAME onto DEV (cryptsetup open --type plain)\n"
	      "  close NAME                  remove the mapping\n"
	      "options of open (cryptsetup's; defaults in brackets):\n"
	      "  -c, --cipher SPEC           dm-crypt cipher [" BS_PLAIN_DEFAULT_CIPHER "]\n"
	      "  -s, --key-size BITS         [256]\n"
	      "  -h, --hash NAME[:LEN]|plain passphrase hash [" BS_PLAIN_DEFAULT_HASH "]\n"
	      "  -d, --key-file FILE         key file (- for standard input)\n"
	      "      --keyfile-offset BYTES  bytes of the key file to skip\n"
	      "  -l, --keyfile-size BYTES    at most this much of the passphrase or key file\n"
	      "  -o, --offset SECTORS        start of the encrypted data on DEV [0]\n"
	      "  -p, --skip SECTORS          IV offset [0]\n"
	      "  -b, --size SECTORS          size of NAME [all of DEV after --offset]\n"
	      "      --sector-size BYTES     encryption sector size, 512..4096 [512]\n"
	      "      --iv-large-sectors      IVs count sector-size units, not 512-byte sectors\n"
	      "  -r, --readonly              read-only mapping\n"
	      "      --allow-discards        pass discards down\n"
	      "  -y, --verify-passphrase     ask for the passphrase twice (terminal)\n",
	      f);
}

enum {
	O_KEYFILE_OFFSET = 1000,
	O_SECTOR_SIZE,
	O_LARGE,
	O_DISCARDS,
	O_HELP,
};

static const struct option plain_opts[] = {
    {"cipher", required_argument, NULL, 'c'},
    {"key-size", required_argument, NULL, 's'},
    {"hash", required_argument, NULL, 'h'},
    {"key-file", required_argument, NULL, 'd'},
    {"keyfile-offset", required_argument, NULL, O_KEYFILE_OFFSET},
    {"keyfile-size", required_argument, NULL, 'l'},
    {"offset", required_argument, NULL, 'o'},
    {"skip", required_argument, NULL, 'p'},
    {"size", required_argument, NULL, 'b'},
    {"sector-size", required_argument, NULL, O_SECTOR_SIZE},
    {"iv-large-sectors", no_argument, NULL, O_LARGE},
    {"readonly", no_argument, NULL, 'r'},
    {"allow-discards", no_argument, NULL, O_DISCARDS},
    {"verify-passphrase", no_argument, NULL, 'y'},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

struct plain_args {
	const char *cipher, *hash, *key_file;
	uint64_t key_bits, keyfile_offset, keyfile_size, offset, skip, size, sector_size;
	bool has_size, has_keyfile_offset, has_keyfile_size, large, readonly, discards, verify;
	int nopts; /* options given */
	int npos;
	char **pos;
};

static int number(const char *opt, const char *arg, uint64_t *out)
{
	if (bs_parse_u64(arg, out)) {
		cli_error("plain: invalid %s \"%s\" (want a decimal number)", opt, arg);
		return -1;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct plain_args *a)
{
	int c;

	memset(a, 0, sizeof(*a));
	a->cipher = BS_PLAIN_DEFAULT_CIPHER;
	a->key_bits = BS_PLAIN_DEFAULT_KEY_BITS;
	a->sector_size = 512;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+c:s:h:d:l:o:p:b:ry", plain_opts, NULL)) != -1) {
		int r = 0;

		switch (c) {
		case 'c':
			a->cipher = optarg;
			break;
		case 's':
			r = number("--key-size", optarg, &a->key_bits);
			break;
		case 'h':
			a->hash = optarg;
			break;
		case 'd':
			a->key_file = optarg;
			break;
		case O_KEYFILE_OFFSET:
			r = number("--keyfile-offset", optarg, &a->keyfile_offset);
			a->has_keyfile_offset = true;
			break;
		case 'l':
			r = number("--keyfile-size", optarg, &a->keyfile_size);
			a->has_keyfile_size = true;
			break;
		case 'o':
			r = number("--offset", optarg, &a->offset);
			break;
		case 'p':
			r = number("--skip", optarg, &a->skip);
			break;
		case 'b':
			r = number("--size", optarg, &a->size);
			a->has_size = true;
			break;
		case O_SECTOR_SIZE:
			r = number("--sector-size", optarg, &a->sector_size);
			break;
		case O_LARGE:
			a->large = true;
			break;
		case 'r':
			a->readonly = true;
			break;
		case O_DISCARDS:
			a->discards = true;
			break;
		case 'y':
			a->verify = true;
			break;
		case O_HELP:
			plain_usage(stdout);
			exit(0);
		default:
			if (optopt && strchr("csdhlopb", optopt))
				cli_error("plain: option -%c needs a value", optopt);
			else
				cli_error("plain: unknown option \"%s\" (see blkstack plain help)",
					  argv[optind - 1]);
			return -1;
		}
		if (r)
			return -1;
		a->nopts++;
	}
	a->npos = argc - optind;
	a->pos = argv + optind;
	return 0;
}

/* Option checks that need neither the device nor the key. */
static int check_args(const struct plain_args *a, const char *spec_text, struct bs_crypt_spec *spec,
		      const char **hash)
{
	const char *why;
	size_t key_len = (size_t)(a->key_bits / 8);

	if (a->key_bits == 0 || a->key_bits % 8 || a->key_bits > 4096) {
		cli_error("plain: key size must be a multiple of 8 bits, at most 4096");
		return -1;
	}
	if (bs_crypt_spec_parse(spec_text, spec, &why)) {
		cli_error("plain: cipher %s: %s", spec_text, why);
		return -1;
	}
	if (!bs_crypt_key_size_valid(spec, key_len)) {
		cli_error("plain: a %llu-bit key does not fit cipher %s",
			  (unsigned long long)a->key_bits, spec_text);
		return -1;
	}
	if (a->sector_size < 512 || a->sector_size > 4096 ||
	    (a->sector_size & (a->sector_size - 1))) {
		cli_error("plain: sector size must be a power of two from 512 to 4096");
		return -1;
	}
	if (a->large && a->sector_size == 512) {
		cli_error("plain: --iv-large-sectors needs --sector-size larger than 512");
		return -1;
	}
	if (a->has_keyfile_offset && !a->key_file) {
		cli_error("plain: --keyfile-offset needs --key-file");
		return -1;
	}
	if (a->has_keyfile_size && (a->keyfile_size == 0 || a->keyfile_size > KEYFILE_MAX)) {
		cli_error("plain: --keyfile-size must be from 1 to %u bytes", KEYFILE_MAX);
		return -1;
	}
	if (a->key_file && strcmp(a->key_file, "-")) {
		/* A key file is the key: no hash (cryptsetup warns and ignores these). */
		if (a->hash)
			fprintf(stderr, "blkstack: warning: --hash is ignored in plain mode with a "
					"key file\n");
		if (a->has_keyfile_size)
			fprintf(stderr, "blkstack: warning: --keyfile-size is ignored, the read "
					"size is the key size\n");
		*hash = NULL;
		return 0;
	}
	*hash = a->hash ? a->hash : BS_PLAIN_DEFAULT_HASH;
	if (bs_plain_hash_check(*hash, key_len, &why)) {
		cli_error("plain: --hash %s: %s", *hash, why);
		return -1;
	}
	return 0;
}

/* Where the mapping goes on DEV: *size sectors from a->offset. */
static int check_area(const struct plain_args *a, const char *dev, uint64_t *size)
{
	uint64_t dev_sectors, unit = a->sector_size / 512;

	if (cryptdev_sectors(dev, &dev_sectors))
		return -1;
	if (a->offset >= dev_sectors) {
		cli_error("plain: --offset %llu is beyond the end of %s (%llu sectors)",
			  (unsigned long long)a->offset, dev, (unsigned long long)dev_sectors);
		return -1;
	}
	*size = a->has_size ? a->size : dev_sectors - a->offset;
	if (*size == 0 || *size > dev_sectors - a->offset) {
		cli_error("plain: --size %llu does not fit in %s after --offset %llu",
			  (unsigned long long)*size, dev, (unsigned long long)a->offset);
		return -1;
	}
	if (a->offset % unit || a->skip % unit || *size % unit) {
		cli_error("plain: %s is not a multiple of the %llu-byte sector size",
			  a->offset % unit ? "--offset"
			  : a->skip % unit ? "--skip"
					   : "the device size",
			  (unsigned long long)a->sector_size);
		return -1;
	}
	return 0;
}

/* The volume key into KEY (key_len bytes, locked). */
static int get_key(const struct plain_args *a, const char *dev, const char *hash, uint8_t *key,
		   size_t key_len)
{
	struct key_source src = {a->key_file, a->keyfile_offset, a->keyfile_size};
	char prompt[300];
	char *pass = NULL;
	size_t len = 0;
	const char *why;
	bool direct = !hash;

	if (a->key_file && !strcmp(a->key_file, "-") && !strcmp(hash, "plain"))
		direct = true; /* cryptsetup reads the key itself then */
	if (direct)
		src.keyfile_size = key_len; /* exactly the key: shorter files are refused */
	snprintf(prompt, sizeof(prompt), "Enter passphrase for %s: ", dev);
	if (get_passphrase(&src, prompt, a->verify, &pass, &len))
		return -1;
	if (!a->key_file && a->has_keyfile_size && len > a->keyfile_size)
		len = (size_t)a->keyfile_size;
	if (bs_plain_derive_key(direct ? NULL : hash, pass, len, key, key_len, &why)) {
		bs_secure_free(pass);
		cli_error("plain: %s", why);
		return -1;
	}
	bs_secure_free(pass);
	return 0;
}

static int do_open(struct plain_args *a)
{
	struct strbuf table = STRBUF_SECURE_INIT;
	struct bs_crypt_spec spec;
	char spec_text[128], uuid[BS_DEVICE_UUID_MAX], ctx[200];
	const char *dev, *name, *hash, *why;
	size_t key_len = (size_t)(a->key_bits / 8);
	unsigned nopt;
	uint64_t size;
	uint8_t *key;
	int r;

	if (a->npos != 2) {
		cli_error("plain open: %s (want DEV NAME)",
			  a->npos < 2 ? "missing arguments" : "too many arguments");
		return EXIT_USAGE;
	}
	dev = a->pos[0];
	name = a->pos[1];
	if (cryptdev_check_name(name))
		return 1;
	if (strlen(PLAIN_UUID_PREFIX) + strlen(name) >= sizeof(uuid)) {
		cli_error("plain open: device name too long");
		return 1;
	}
	snprintf(uuid, sizeof(uuid), PLAIN_UUID_PREFIX "%s", name);
	if (bs_plain_cipher_spec(a->cipher, spec_text, sizeof(spec_text), &why)) {
		cli_error("plain: cipher %s: %s", a->cipher, why);
		return 1;
	}
	if (check_args(a, spec_text, &spec, &hash) || cryptdev_daemon_check() ||
	    check_area(a, dev, &size))
		return 1;
	key = bs_secure_alloc(key_len);
	if (!key) {
		cli_error("out of memory");
		return 1;
	}
	if (get_key(a, dev, hash, key, key_len)) {
		bs_secure_free(key);
		return 1;
	}
	sb_printf(&table, "0 %llu crypt %s ", (unsigned long long)size, spec_text);
	r = cryptdev_append_key(&table, key, key_len);
	bs_secure_free(key);
	sb_printf(&table, " %llu ", (unsigned long long)a->skip);
	if (r || cryptdev_append_path(&table, dev)) {
		sb_free(&table);
		return 1;
	}
	sb_printf(&table, " %llu", (unsigned long long)a->offset);
	nopt = a->discards + (a->sector_size != 512) + a->large;
	if (nopt)
		sb_printf(&table, " %u", nopt);
	if (a->discards)
		sb_puts(&table, " allow_discards");
	if (a->sector_size != 512)
		sb_printf(&table, " sector_size:%llu", (unsigned long long)a->sector_size);
	if (a->large)
		sb_puts(&table, " iv_large_sectors");
	snprintf(ctx, sizeof(ctx), "plain open %s", name);
	return cryptdev_create(ctx, name, uuid, a->readonly, &table) ? 1 : 0;
}

int cmd_plain(int argc, char **argv)
{
	struct plain_args a;
	const char *verb;
	char ctx[200];

	if (argc < 2) {
		plain_usage(stderr);
		return EXIT_USAGE;
	}
	verb = argv[1];
	if (!strcmp(verb, "help") || !strcmp(verb, "--help")) {
		plain_usage(stdout);
		return 0;
	}
	if (strcmp(verb, "open") && strcmp(verb, "close")) {
		cli_error("plain: unknown command \"%s\" (see blkstack plain help)", verb);
		return EXIT_USAGE;
	}
	if (parse_args(argc - 1, argv + 1, &a))
		return EXIT_USAGE;
	if (!strcmp(verb, "open"))
		return do_open(&a);
	if (a.nopts) {
		cli_error("plain close: takes no options");
		return EXIT_USAGE;
	}
	if (a.npos != 1) {
		cli_error("plain close: %s (want NAME)",
			  a.npos < 1 ? "missing arguments" : "too many arguments");
		return EXIT_USAGE;
	}
	snprintf(ctx, sizeof(ctx), "plain close %s", a.pos[0]);
	return cryptdev_remove(ctx, a.pos[0], PLAIN_UUID_PREFIX, "a plain dm-crypt device") ? 1 : 0;
}
