/*
 * crypt.c - the `crypt` target: transparent sector encryption, as Linux dm-crypt.
 *
 * Table: crypt <cipher> <key> <iv_offset> <dev> <offset> [<#opt_params> <opt_params>...]
 *   cipher     dm-crypt specification (aes-xts-plain64, aes-cbc-essiv:sha256, ...; see
 *              crypto/cipher.h, which also has NetBSD cgd's IV modes encblkno1/encblkno8)
 *   key        hex, or "-" for no key (cipher_null); kernel keyring references are refused
 *   iv_offset  added to the sector number before IV generation (512-byte sectors)
 *   options    allow_discards, same_cpu_crypt, submit_from_crypt_cpus, no_read_workqueue,
 *              no_write_workqueue (accepted; scheduling hints without meaning here),
 *              sector_size:<512..4096>, iv_large_sectors
 * Status: empty.  Table: the key is shown only with --showkeys (in lower-case hex, as Linux
 * prints it), otherwise as zeroes; either form reads back into the constructor.
 * Messages (device suspended): "key set <hex>", "key wipe".
 *
 * Reads decrypt in place in the caller's buffer after one read of the whole request from the
 * device below.  Writes encrypt into a per-thread bounce buffer in runs of up to 1 MiB and
 * write each run with one call.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/cipher.h"
#include "engine/target.h"
#include "util/parse.h"
#include "util/scratch.h"
#include "util/secmem.h"

#define RUN_BYTES (1u << 20)

enum crypt_flags {
	CF_DISCARDS = 1 << 0,
	CF_SAME_CPU = 1 << 1,
	CF_NO_OFFLOAD = 1 << 2,
	CF_NO_READ_WQ = 1 << 3,
	CF_NO_WRITE_WQ = 1 << 4,
	CF_LARGE_IV = 1 << 5,
};

struct crypt {
	char spec_text[128];
	struct bs_crypt_spec spec;
	struct bs_sector_cipher *cipher; /* NULL after "key wipe" */
	size_t key_len;
	char *key_hex; /* locked; for --showkeys */
	uint64_t iv_offset;
	struct bs_bdev *dev;
	uint64_t start;
	unsigned sector_size;
	unsigned flags;
	atomic_bool suspended;
};

static int set_key(struct bs_target *t, struct crypt *cc, const char *hex)
{
	struct bs_sector_cipher *c;
	uint8_t *key;
	char *key_hex;
	size_t len;
	const char *why = NULL;
	int r;

	if (hex[0] == ':')
		return bs_target_error(
		    t, "kernel keyring keys are not supported: give the key in hex");
	if (!strcmp(hex, "-"))
		len = 0;
	else if (strlen(hex) > 1024)
		return bs_target_error(t, "invalid key (longer than 512 bytes)");
	else if (strlen(hex) % 2)
		return bs_target_error(t, "invalid key (expected an even number of hex digits)");
	else
		len = strlen(hex) / 2;
	key = bs_secure_alloc(len ? len : 1);
	if (!key)
		return -ENOMEM;
	if (len && bs_hex_decode(hex, key, len)) {
		bs_secure_free(key);
		return bs_target_error(t, "invalid key (not hexadecimal)");
	}
	if (!bs_crypt_key_size_valid(&cc->spec, len)) {
		bs_secure_free(key);
		return bs_target_error(t, "invalid key size %zu bytes for %s", len, cc->spec_text);
	}
	r = bs_sector_cipher_new(&cc->spec, key, len, cc->sector_size, cc->flags & CF_LARGE_IV, &c,
				 &why);
	if (r) {
		bs_secure_free(key);
		return r == -ENOMEM
			   ? r
			   : bs_target_error(t, "cannot set up %s: %s", cc->spec_text, why);
	}
	/* Kept as Linux prints it with --showkeys: lowercase hex of the key bytes. */
	key_hex = bs_secure_alloc(2 * len + 2);
	if (!key_hex) {
		bs_secure_free(key);
		bs_sector_cipher_free(c);
		return -ENOMEM;
	}
	if (len)
		bs_hex_encode(key, len, key_hex);
	else
		strcpy(key_hex, "-");
	bs_secure_free(key);
	bs_secure_free(cc->key_hex);
	cc->key_hex = key_hex;
	bs_sector_cipher_free(cc->cipher);
	cc->cipher = c;
	cc->key_len = len;
	return 0;
}

static int parse_options(struct bs_target *t, struct crypt *cc, unsigned argc, char **argv)
{
	uint32_t n;

	if (argc == 0)
		return 0;
	if (bs_parse_u32(argv[0], &n) || n != argc - 1)
		return bs_target_error(t, "invalid number of optional parameters");
	for (unsigned i = 1; i < argc; i++) {
		const char *o = argv[i];
		uint64_t v;

		if (!strcmp(o, "allow_discards"))
			cc->flags |= CF_DISCARDS;
		else if (!strcmp(o, "same_cpu_crypt"))
			cc->flags |= CF_SAME_CPU;
		else if (!strcmp(o, "submit_from_crypt_cpus"))
			cc->flags |= CF_NO_OFFLOAD;
		else if (!strcmp(o, "no_read_workqueue"))
			cc->flags |= CF_NO_READ_WQ;
		else if (!strcmp(o, "no_write_workqueue"))
			cc->flags |= CF_NO_WRITE_WQ;
		else if (!strcmp(o, "iv_large_sectors"))
			cc->flags |= CF_LARGE_IV;
		else if (!strncmp(o, "sector_size:", 12)) {
			if (bs_parse_uint_range(o + 12, 512, 4096, &v) || (v & (v - 1)))
				return bs_target_error(t, "invalid sector_size \"%s\"", o + 12);
			cc->sector_size = (unsigned)v;
		} else if (!strncmp(o, "integrity:", 10)) {
			return bs_target_error(
			    t, "integrity (authenticated encryption) needs the integrity target "
			       "below; not supported in this table");
		} else {
			return bs_target_error(t, "invalid feature argument \"%s\"", o);
		}
	}
	if ((cc->flags & CF_LARGE_IV) && cc->sector_size == 512)
		return bs_target_error(t, "iv_large_sectors needs sector_size larger than 512");
	return 0;
}

static int crypt_ctr(struct bs_target *t, unsigned argc, char **argv)
{
	struct crypt *cc;
	const char *why;
	int r;

	if (argc < 5)
		return bs_target_error(t, "not enough arguments");
	cc = calloc(1, sizeof(*cc));
	if (!cc)
		return -ENOMEM;
	cc->sector_size = 512;
	if (strlen(argv[0]) >= sizeof(cc->spec_text) ||
	    bs_crypt_spec_parse(argv[0], &cc->spec, &why)) {
		r = strlen(argv[0]) >= sizeof(cc->spec_text)
			? bs_target_error(t, "cipher specification too long")
			: bs_target_error(t, "%s: %s", argv[0], why);
		goto fail;
	}
	strcpy(cc->spec_text, argv[0]);
	r = parse_options(t, cc, argc - 5, argv + 5);
	if (r)
		goto fail;
	r = bs_target_parse_sector(t, argv[2], "IV offset", &cc->iv_offset);
	if (!r)
		r = bs_target_parse_sector(t, argv[4], "device sector", &cc->start);
	if (r)
		goto fail;
	if ((cc->flags & CF_LARGE_IV) && (cc->iv_offset & ((cc->sector_size >> 9) - 1))) {
		r = bs_target_error(t, "IV offset not aligned to sector_size");
		goto fail;
	}
	if (cc->start & ((cc->sector_size >> 9) - 1)) {
		r = bs_target_error(t, "device offset not aligned to sector_size");
		goto fail;
	}
	r = set_key(t, cc, argv[1]);
	if (r)
		goto fail;
	r = bs_target_get_device(t, argv[3], "device", &cc->dev);
	if (!r)
		r = bs_target_check_area(t, cc->dev, cc->start, t->len);
	if (r)
		goto fail;
	if (cc->sector_size > t->block_size)
		t->block_size = cc->sector_size;
	t->private = cc;
	return 0;
fail:
	bs_sector_cipher_free(cc->cipher);
	bs_secure_free(cc->key_hex);
	free(cc);
	return r;
}

static void crypt_dtr(struct bs_target *t)
{
	struct crypt *cc = t->private;

	bs_sector_cipher_free(cc->cipher);
	bs_secure_free(cc->key_hex);
	free(cc);
}

/* Encrypts the request's data (or zeroes) run by run and writes it below. */
static int crypt_write(struct crypt *cc, const struct bs_io *io, uint64_t sector)
{
	const uint64_t base = cc->start << 9;
	const char *src = io->buf;
	uint64_t done = 0;
	char *bounce;
	int r = 0;

	bounce = bs_scratch_get(io->len < RUN_BYTES ? io->len : RUN_BYTES);
	if (!bounce)
		return -ENOMEM;
	while (done < io->len && !r) {
		uint64_t n = io->len - done < RUN_BYTES ? io->len - done : RUN_BYTES;
		struct bs_io sub = {
		    .op = BS_OP_WRITE,
		    .flags = io->flags & BS_IO_FUA,
		    .off = base + io->off + done,
		    .len = n,
		    .buf = bounce,
		};

		if (src)
			r = bs_sector_cipher_crypt(cc->cipher, true, src + done, bounce, n,
						   sector + (done >> 9));
		else {
			memset(bounce, 0, n);
			r = bs_sector_cipher_crypt(cc->cipher, true, bounce, bounce, n,
						   sector + (done >> 9));
		}
		if (!r)
			r = bs_bdev_submit(cc->dev, &sub);
		done += n;
	}
	bs_scratch_put(bounce);
	return r;
}

static int crypt_submit(struct bs_target *t, struct bs_io *io)
{
	struct crypt *cc = t->private;
	uint64_t sector = (io->off >> 9) + cc->iv_offset;
	int r;

	if (io->op == BS_OP_FLUSH)
		return bs_bdev_submit(cc->dev, io);
	if (!cc->cipher)
		return -EIO; /* key wiped */
	switch (io->op) {
	case BS_OP_READ: {
		struct bs_io sub = *io;

		sub.off += cc->start << 9;
		r = bs_bdev_submit(cc->dev, &sub);
		if (!r)
			r = bs_sector_cipher_crypt(cc->cipher, false, io->buf, io->buf, io->len,
						   sector);
		return r;
	}
	case BS_OP_WRITE:
		return crypt_write(cc, io, sector);
	case BS_OP_WRITE_ZEROES: {
		struct bs_io z = *io;

		z.buf = NULL; /* plaintext zeroes, encrypted */
		return crypt_write(cc, &z, sector);
	}
	case BS_OP_DISCARD:
		if (!(cc->flags & CF_DISCARDS))
			return 0; /* discards would reveal which blocks are unused */
		io->off += cc->start << 9;
		return bs_bdev_submit(cc->dev, io);
	case BS_OP_FLUSH:
		break;
	}
	return -EINVAL;
}

static void crypt_status(struct bs_target *t, enum bs_status_type type, unsigned flags,
			 struct strbuf *out)
{
	struct crypt *cc = t->private;
	unsigned n = 0;

	if (type == BS_STATUS_INFO)
		return;
	sb_printf(out, "%s ", cc->spec_text);
	if (!cc->cipher || cc->key_len == 0)
		sb_putc(out, '-');
	else if (flags & BS_STATUS_SHOWKEYS)
		sb_puts(out, cc->key_hex);
	else
		for (size_t i = 0; i < 2 * cc->key_len; i++)
			sb_putc(out, '0');
	sb_printf(out, " %llu %s %llu", (unsigned long long)cc->iv_offset, cc->dev->name,
		  (unsigned long long)cc->start);
	n = __builtin_popcount(cc->flags & ~CF_LARGE_IV) + (cc->sector_size != 512) +
	    !!(cc->flags & CF_LARGE_IV);
	if (!n)
		return;
	sb_printf(out, " %u", n);
	if (cc->flags & CF_DISCARDS)
		sb_puts(out, " allow_discards");
	if (cc->flags & CF_SAME_CPU)
		sb_puts(out, " same_cpu_crypt");
	if (cc->flags & CF_NO_OFFLOAD)
		sb_puts(out, " submit_from_crypt_cpus");
	if (cc->flags & CF_NO_READ_WQ)
		sb_puts(out, " no_read_workqueue");
	if (cc->flags & CF_NO_WRITE_WQ)
		sb_puts(out, " no_write_workqueue");
	if (cc->sector_size != 512)
		sb_printf(out, " sector_size:%u", cc->sector_size);
	if (cc->flags & CF_LARGE_IV)
		sb_puts(out, " iv_large_sectors");
}

static int crypt_message(struct bs_target *t, unsigned argc, char **argv, struct strbuf *out)
{
	struct crypt *cc = t->private;

	(void)out;
	if (argc < 2 || strcmp(argv[0], "key"))
		return bs_target_error(t, "unrecognised message");
	if (!atomic_load(&cc->suspended))
		return bs_target_error(t, "not suspended during key manipulation");
	if (argc == 3 && !strcmp(argv[1], "set"))
		return set_key(t, cc, argv[2]);
	if (argc == 2 && !strcmp(argv[1], "wipe")) {
		bs_sector_cipher_free(cc->cipher);
		cc->cipher = NULL;
		bs_secure_free(cc->key_hex);
		cc->key_hex = NULL;
		return 0;
	}
	return bs_target_error(t, "unrecognised message");
}

static void crypt_postsuspend(struct bs_target *t)
{
	atomic_store(&((struct crypt *)t->private)->suspended, true);
}

static int crypt_preresume(struct bs_target *t)
{
	struct crypt *cc = t->private;

	if (!cc->cipher)
		return bs_target_error(t, "aborting resume - crypt key is not set");
	return 0;
}

static void crypt_resume(struct bs_target *t)
{
	atomic_store(&((struct crypt *)t->private)->suspended, false);
}

const struct bs_target_type bs_crypt_target = {
    .name = "crypt",
    .version = {1, 24, 0},
    .ctr = crypt_ctr,
    .dtr = crypt_dtr,
    .submit = crypt_submit,
    .status = crypt_status,
    .message = crypt_message,
    .postsuspend = crypt_postsuspend,
    .preresume = crypt_preresume,
    .resume = crypt_resume,
};
