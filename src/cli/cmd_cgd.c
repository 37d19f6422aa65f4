/*
 * cmd_cgd.c - `blkstack cgd ...`: NetBSD cgd(4) volumes, as cgdconfig(8) sets them up.
 *
 *   cgd generate [-o PARAMS] [-k KEYGEN] [-i ITER] [--iv-method M] [-V VERIFY] ALG [KEYLEN]
 *       writes a parameters file (formats/cgd.h) in cgdconfig's layout: a random stored key,
 *       or a random salt and ITER iterations for pkcs5_pbkdf2/sha1 (no passphrase is asked:
 *       the key comes from it when the volume is opened, as with cgdconfig -g)
 *   cgd open [-r] NAME DEV PARAMS
 *       derives the key from PARAMS (asking for passphrases as keygens need them) and maps
 *       NAME onto all of DEV: sector 0 of DEV is encrypted block 0, there is no header
 *   cgd close NAME
 *
 * The mapping is a crypt table built in locked memory and sent in the data blob of a
 * dm.create: "0 SECTORS crypt aes-cbc-encblkno1 KEY 0 DEV 0" (encblkno8 for the legacy IV
 * method; aes-xts-plain64 for aes-xts); the device's uuid is "CGD-NAME".
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cryptdev.h"
#include "cli/passphrase.h"
#include "engine/device.h"
#include "formats/cgd.h"
#include "util/parse.h"
#include "util/secmem.h"
#include "util/strbuf.h"

#define CGD_UUID_PREFIX "CGD-"

static void cgd_usage(FILE *f)
{
	fputs("usage: blkstack cgd <command> [options]\n"
	      "  generate [-o PARAMS] [-k KEYGEN] [-i ITERATIONS] [--iv-method METHOD]\n"
	      "           [-V VERIFY] ALGORITHM [KEYLEN]\n"
	      "                       write a cgdconfig parameters file (standard output without "
	      "-o)\n"
	      "                       ALGORITHM aes-cbc (KEYLEN 128 [default], 192, 256) or\n"
	      "                       aes-xts (256 [default], 512); KEYGEN storedkey [default],\n"
	      "                       pkcs5_pbkdf2/sha1, randomkey or urandomkey; ITERATIONS for\n"
	      "                       pkcs5_pbkdf2/sha1 [calibrated to 2 s]; METHOD encblkno1\n"
	      "                       [default] or encblkno8; VERIFY none [default] or re-enter\n"
	      "  open [-r] NAME DEV PARAMS   map NAME onto DEV with the key of PARAMS\n"
	      "  close NAME                  remove the mapping\n",
	      f);
}

enum { O_IVMETHOD = 1000, O_HELP };

static const struct option cgd_opts[] = {
    {"output", required_argument, NULL, 'o'},
    {"keygen", required_argument, NULL, 'k'},
    {"iterations", required_argument, NULL, 'i'},
    {"iv-method", required_argument, NULL, O_IVMETHOD},
    {"verify-method", required_argument, NULL, 'V'},
    {"readonly", no_argument, NULL, 'r'},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

struct cgd_args {
	const char *output, *keygen, *ivmethod, *verify;
	uint64_t iterations;
	bool readonly;
	int nopts;
	int npos;
	char **pos;
};

static int parse_args(int argc, char **argv, struct cgd_args *a)
{
	int c;

	memset(a, 0, sizeof(*a));
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+o:k:i:V:r", cgd_opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			a->output = optarg;
			break;
		case 'k':
			a->keygen = optarg;
			break;
		case 'i':
			if (bs_parse_u64(optarg, &a->iterations) || a->iterations == 0 ||
			    a->iterations > INT32_MAX) {
				cli_error("cgd: invalid iteration count \"%s\" (want 1 to %d)",
					  optarg, INT32_MAX);
				return -1;
			}
			break;
		case O_IVMETHOD:
			a->ivmethod = optarg;
			break;
		case 'V':
			a->verify = optarg;
			break;
		case 'r':
			a->readonly = true;
			break;
		case O_HELP:
			cgd_usage(stdout);
			exit(0);
		default:
			if (optopt && strchr("okiV", optopt))
				cli_error("cgd: option -%c needs a value", optopt);
			else
				cli_error("cgd: unknown option \"%s\" (see blkstack cgd help)",
					  argv[optind - 1]);
			return -1;
		}
		a->nopts++;
	}
	a->npos = argc - optind;
	a->pos = argv + optind;
	return 0;
}

static int want(const char *verb, const struct cgd_args *a, int min, int max, const char *what)
{
	if (a->npos < min || a->npos > max) {
		cli_error("cgd %s: %s (want %s)", verb,
			  a->npos < min ? "missing arguments" : "too many arguments", what);
		return -1;
	}
	return 0;
}

/* ---- generate --------------------------------------------------------------------------- */

static int write_file(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	size_t done = 0;

	if (fd < 0) {
		if (errno == EEXIST)
			cli_error("cgd generate: %s exists (not overwriting a parameters file)",
				  path);
		else
			cli_error("cgd generate: cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	while (done < len) {
		ssize_t k = write(fd, text + done, len - done);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			cli_error("cgd generate: cannot write %s: %s", path, strerror(errno));
			close(fd);
			unlink(path);
			return -1;
		}
		done += (size_t)k;
	}
	if (fsync(fd) || close(fd)) {
		cli_error("cgd generate: cannot write %s: %s", path, strerror(errno));
		unlink(path);
		return -1;
	}
	return 0;
}

static int do_generate(const struct cgd_args *a)
{
	struct strbuf err = STRBUF_INIT, text = STRBUF_SECURE_INIT;
	enum cgd_keygen_method method = CGD_KG_STOREDKEY;
	enum cgd_verify verify = CGD_VERIFY_NONE;
	struct cgd_params *p = NULL;
	uint64_t keylen = 0;
	int r;

	if (want("generate", a, 1, 2, "ALGORITHM [KEYLEN]"))
		return EXIT_USAGE;
	if (a->readonly) {
		cli_error("cgd generate: -r is an option of open");
		return EXIT_USAGE;
	}
	if (a->npos == 2 && (bs_parse_u64(a->pos[1], &keylen) || keylen == 0 || keylen > 4096)) {
		cli_error("cgd generate: invalid key length \"%s\" (bits)", a->pos[1]);
		return 1;
	}
	if (a->keygen && cgd_keygen_from_name(a->keygen, &method)) {
		cli_error("cgd generate: unknown keygen method \"%s\"", a->keygen);
		return 1;
	}
	if (a->verify) {
		if (!strcmp(a->verify, "none"))
			verify = CGD_VERIFY_NONE;
		else if (!strcmp(a->verify, "re-enter"))
			verify = CGD_VERIFY_REENTER;
		else {
			cli_error("cgd generate: verify method \"%s\" is not supported (none and "
				  "re-enter are)",
				  a->verify);
			return 1;
		}
	}
	if (a->iterations && method != CGD_KG_PBKDF2_SHA1 && method != CGD_KG_PBKDF2_OLD) {
		cli_error("cgd generate: -i is for pkcs5_pbkdf2/sha1");
		return 1;
	}
	r = cgd_params_generate(a->pos[0], (unsigned)keylen, method, (uint32_t)a->iterations,
				a->ivmethod, verify, &p, &err);
	if (r) {
		cli_error("cgd generate: %s", sb_str(&err));
		sb_free(&err);
		return 1;
	}
	sb_free(&err);
	cgd_params_write(p, &text);
	cgd_params_free(p);
	if (a->output)
		r = write_file(a->output, sb_str(&text), text.len);
	else if (fwrite(sb_str(&text), 1, text.len, stdout) != text.len || fflush(stdout))
		r = -1;
	sb_free(&text);
	return r ? 1 : 0;
}

/* ---- open ------------------------------------------------------------------------------- */

struct ask_ctx {
	const char *dev;
	bool reenter;
};

/* Passphrases for pbkdf2 keygens; with verify_method re-enter, twice (cgdconfig's check). */
static int ask(void *arg, char **pass, size_t *len)
{
	struct ask_ctx *c = arg;
	struct key_source src = {NULL, 0, 0};
	char prompt[300];
	char *again;
	size_t alen;

	snprintf(prompt, sizeof(prompt), "%s's passphrase: ", c->dev);
	if (get_passphrase(&src, prompt, false, pass, len))
		return -1;
	if (!c->reenter)
		return 0;
	snprintf(prompt, sizeof(prompt), "re-enter %s's passphrase: ", c->dev);
	if (get_passphrase(&src, prompt, false, &again, &alen)) {
		bs_secure_free(*pass);
		return -1;
	}
	if (strnlen(again, alen) != strnlen(*pass, *len) || strcmp(again, *pass)) {
		bs_secure_free(again);
		bs_secure_free(*pass);
		cli_error("cgd open: verification failed: the passphrases do not match");
		return -1;
	}
	bs_secure_free(again);
	return 0;
}

static int do_open(const struct cgd_args *a)
{
	struct strbuf err = STRBUF_INIT, table = STRBUF_SECURE_INIT;
	struct cgd_params *p = NULL;
	const char *name, *dev, *params, *why = "";
	char uuid[BS_DEVICE_UUID_MAX], ctx[200];
	struct ask_ctx ac;
	char *text;
	size_t len;
	uint64_t sectors;
	uint8_t *key;
	int r;

	if (want("open", a, 3, 3, "NAME DEV PARAMS"))
		return EXIT_USAGE;
	if (a->output || a->keygen || a->iterations || a->ivmethod || a->verify) {
		cli_error("cgd open: only -r applies (the parameters file says the rest)");
		return EXIT_USAGE;
	}
	name = a->pos[0];
	dev = a->pos[1];
	params = a->pos[2];
	if (cryptdev_check_name(name))
		return 1;
	if (strlen(CGD_UUID_PREFIX) + strlen(name) >= sizeof(uuid)) {
		cli_error("cgd open: device name too long");
		return 1;
	}
	snprintf(uuid, sizeof(uuid), CGD_UUID_PREFIX "%s", name);
	text = cli_read_secure_file(params, CGD_PARAMS_MAX, &len);
	if (!text)
		return 1;
	r = cgd_params_parse(text, len, &p, &err);
	bs_secure_free(text);
	if (!r)
		r = cgd_params_check(p, &err);
	if (r) {
		cli_error("cgd open: %s: %s", params, sb_str(&err));
		sb_free(&err);
		cgd_params_free(p);
		return 1;
	}
	sb_free(&err);
	if (cryptdev_daemon_check() || cryptdev_sectors(dev, &sectors)) {
		cgd_params_free(p);
		return 1;
	}
	if (sectors == 0) {
		cli_error("cgd open: %s is empty", dev);
		cgd_params_free(p);
		return 1;
	}
	key = bs_secure_alloc((size_t)p->keylen / 8);
	if (!key) {
		cli_error("out of memory");
		cgd_params_free(p);
		return 1;
	}
	ac.dev = dev;
	ac.reenter = p->verify == CGD_VERIFY_REENTER;
	r = cgd_params_key(p, ask, &ac, key, &why);
	if (r) {
		if (r != -ECANCELED)
			cli_error("cgd open: %s", why);
		bs_secure_free(key);
		cgd_params_free(p);
		return 1;
	}
	sb_printf(&table, "0 %llu crypt %s ", (unsigned long long)sectors, cgd_params_dm_cipher(p));
	r = cryptdev_append_key(&table, key, (size_t)p->keylen / 8);
	bs_secure_free(key);
	cgd_params_free(p);
	sb_puts(&table, " 0 ");
	if (r || cryptdev_append_path(&table, dev)) {
		sb_free(&table);
		return 1;
	}
	sb_puts(&table, " 0");
	snprintf(ctx, sizeof(ctx), "cgd open %s", name);
	return cryptdev_create(ctx, name, uuid, a->readonly, &table) ? 1 : 0;
}

int cmd_cgd(int argc, char **argv)
{
	struct cgd_args a;
	const char *verb;
	char ctx[200];

	if (argc < 2) {
		cgd_usage(stderr);
		return EXIT_USAGE;
	}
	verb = argv[1];
	if (!strcmp(verb, "help") || !strcmp(verb, "--help")) {
		cgd_usage(stdout);
		return 0;
	}
	if (strcmp(verb, "generate") && strcmp(verb, "open") && strcmp(verb, "close")) {
		cli_error("cgd: unknown command \"%s\" (see blkstack cgd help)", verb);
		return EXIT_USAGE;
	}
	if (parse_args(argc - 1, argv + 1, &a))
		return EXIT_USAGE;
	if (!strcmp(verb, "generate"))
		return do_generate(&a);
	if (!strcmp(verb, "open"))
		return do_open(&a);
	if (a.nopts) {
		cli_error("cgd close: takes no options");
		return EXIT_USAGE;
	}
	if (want("close", &a, 1, 1, "NAME"))
		return EXIT_USAGE;
	snprintf(ctx, sizeof(ctx), "cgd close %s", a.pos[0]);
	return cryptdev_remove(ctx, a.pos[0], CGD_UUID_PREFIX, "a cgd device") ? 1 : 0;
}
