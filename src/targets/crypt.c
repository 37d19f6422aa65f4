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
 *              sector_size:<512..4096>, iv_large_sectors, integrity:<bytes>:aead
 * Status: empty.  Table: the key is shown only with --showkeys (in lower-case hex, as Linux
 * prints it), otherwise as zeroes; either form reads back into the constructor.
 * Messages (device suspended): "key set <hex>", "key wipe".
 *
 * Reads decrypt in place in the caller's buffer after one read of the whole request from the
 * device below.  Writes encrypt into a per-thread bounce buffer in runs of up to 1 MiB and
 * write each run with one call.
 *
 * Authenticated encryption (integrity:<bytes>:aead with an AEAD cipher, crypto/aead.h): the
 * device below must store <bytes> of metadata per sector (the integrity target without an
 * internal hash, possibly through targets that pass requests down unchanged).  Every write
 * and read carries the sectors' tags in its bs_io_meta (engine/io.h); a request whose tags
 * nothing below took fails with EIO.  A sector whose tag does not match its data, IV and
 * sector number reads as EILSEQ (EIO to NBD clients) and is logged, as Linux's "INTEGRITY
 * AEAD ERROR"; its plaintext is never returned.  Reads and writes go in runs of up to 1 MiB.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/aead.h"
#include "crypto/cipher.h"
#include "engine/device.h"
#include "engine/table.h"
#include "engine/target.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/scratch.h"
#include "util/secmem.h"

#define RUN_BYTES (1u << 20)
/* Linux's dm-integrity keeps tags below 512 bytes less its journal entry header. */
#define MAX_TAG_BYTES	424
#define AEAD_ERROR_LOGS 64 /* logged tag mismatches, then only every 1000th */

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
	struct bs_sector_cipher *cipher; /* NULL after "key wipe" (and in AEAD mode) */
	/* integrity:<tag_size>:aead */
	unsigned tag_size; /* 0: no integrity */
	struct bs_aead_spec aspec;
	struct bs_aead *aead; /* NULL after "key wipe" */
	atomic_uint_fast64_t aead_errors;
	char name[BS_DEVICE_NAME_MAX]; /* of the device, for messages */
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
	struct bs_sector_cipher *c = NULL;
	struct bs_aead *a = NULL;
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
	if (cc->tag_size ? !bs_aead_key_size_valid(&cc->aspec, len)
			 : !bs_crypt_key_size_valid(&cc->spec, len)) {
		bs_secure_free(key);
		return bs_target_error(t, "invalid key size %zu bytes for %s", len, cc->spec_text);
	}
	if (cc->tag_size)
		r = bs_aead_new(&cc->aspec, key, len, cc->tag_size, cc->sector_size,
				cc->flags & CF_LARGE_IV, &a, &why);
	else
		r = bs_sector_cipher_new(&cc->spec, key, len, cc->sector_size,
					 cc->flags & CF_LARGE_IV, &c, &why);
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
		bs_aead_free(a);
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
	bs_aead_free(cc->aead);
	cc->aead = a;
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
			const char *type = strchr(o + 10, ':');
			char num[16];

			if (!type || (size_t)(type - (o + 10)) >= sizeof(num))
				return bs_target_error(t, "invalid integrity parameter \"%s\"", o);
			memcpy(num, o + 10, (size_t)(type - (o + 10)));
			num[type - (o + 10)] = '\0';
			if (bs_parse_uint_range(num, 1, MAX_TAG_BYTES, &v))
				return bs_target_error(t, "invalid integrity tag size \"%s\"", num);
			if (strcmp(type + 1, "aead"))
				return bs_target_error(
				    t, "integrity type \"%s\" is not supported (only aead is)",
				    type + 1);
			cc->tag_size = (unsigned)v;
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
	snprintf(cc->name, sizeof(cc->name), "%s",
		 t->table && t->table->owner ? bs_device_name(t->table->owner) : "-");
	if (strlen(argv[0]) >= sizeof(cc->spec_text)) {
		r = bs_target_error(t, "cipher specification too long");
		goto fail;
	}
	strcpy(cc->spec_text, argv[0]);
	r = parse_options(t, cc, argc - 5, argv + 5);
	if (r)
		goto fail;
	if (cc->tag_size) {
		if (!bs_aead_spec_is_aead(argv[0])) {
			r = bs_target_error(
			    t, "integrity:%u:aead needs an AEAD cipher (%s is not one)",
			    cc->tag_size, argv[0]);
			goto fail;
		}
		if (bs_aead_spec_parse(argv[0], &cc->aspec, &why) ||
		    bs_aead_tag_size_check(&cc->aspec, cc->tag_size, &why)) {
			r = bs_target_error(t, "%s: %s", argv[0], why);
			goto fail;
		}
	} else if (bs_aead_spec_is_aead(argv[0])) {
		r = bs_target_error(t,
				    "%s is authenticated encryption: it needs "
				    "integrity:<bytes>:aead and an integrity target below",
				    argv[0]);
		goto fail;
	} else if (bs_crypt_spec_parse(argv[0], &cc->spec, &why)) {
		r = bs_target_error(t, "%s: %s", argv[0], why);
		goto fail;
	}
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
	if (cc->tag_size && cc->dev->kind != BS_BDEV_DEVICE) {
		/* a file or host block device cannot keep tags (Linux: no integrity profile) */
		r = bs_target_error(t,
				    "Integrity profile not supported: %s cannot store tags "
				    "(map onto an integrity device without internal_hash)",
				    cc->dev->name);
		goto fail;
	}
	if (cc->sector_size > t->block_size)
		t->block_size = cc->sector_size;
	t->private = cc;
	return 0;
fail:
	bs_sector_cipher_free(cc->cipher);
	bs_aead_free(cc->aead);
	bs_secure_free(cc->key_hex);
	free(cc);
	return r;
}

static void crypt_dtr(struct bs_target *t)
{
	struct crypt *cc = t->private;

	bs_sector_cipher_free(cc->cipher);
	bs_aead_free(cc->aead);
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

/* ---- authenticated encryption ------------------------------------------------------------ */

static int no_tags(struct crypt *cc)
{
	static atomic_bool said;

	if (!atomic_exchange(&said, true))
		bs_err(
		    "crypt %s: the device below %s did not take the integrity tags (it must be an "
		    "integrity target without internal_hash); failing the request",
		    cc->name, cc->dev->name);
	return -EIO;
}

static void report_aead_error(struct crypt *cc, uint64_t sector, unsigned n)
{
	uint64_t before = atomic_fetch_add(&cc->aead_errors, n), k = before + n;

	if (before < AEAD_ERROR_LOGS || before / 1000 != k / 1000)
		bs_warn("crypt %s: INTEGRITY AEAD ERROR, sector %llu%s", cc->name,
			(unsigned long long)sector, n > 1 ? " (and more in the same request)" : "");
}

/* Encrypts and writes the request (NULL buffer: zeroes) with its tags, run by run. */
static int aead_write(struct crypt *cc, const struct bs_io *io, uint64_t rel)
{
	const uint64_t base = cc->start << 9;
	const char *src = io->buf;
	size_t run = io->len < RUN_BYTES ? (size_t)io->len : RUN_BYTES;
	char *bounce = bs_scratch_get(run);
	uint8_t *tags = bounce ? bs_scratch_get(run / cc->sector_size * cc->tag_size) : NULL;
	uint64_t done = 0;
	int r = 0;

	if (!tags) {
		if (bounce)
			bs_scratch_put(bounce);
		return -ENOMEM;
	}
	while (done < io->len && !r) {
		uint64_t n = io->len - done < run ? io->len - done : run;
		struct bs_io_meta m = {
		    .buf = tags, .tuple_size = cc->tag_size, .interval = cc->sector_size};
		struct bs_io sub = {
		    .op = BS_OP_WRITE,
		    .flags = io->flags & BS_IO_FUA,
		    .off = base + io->off + done,
		    .len = n,
		    .buf = bounce,
		    .meta = &m,
		};

		if (!src)
			memset(bounce, 0, n);
		r = bs_aead_encrypt(cc->aead, src ? src + done : bounce, bounce, n,
				    rel + (done >> 9), cc->iv_offset, tags);
		if (!r)
			r = bs_bdev_submit(cc->dev, &sub);
		if (!r && !m.taken)
			r = no_tags(cc);
		done += n;
	}
	bs_scratch_put(tags);
	bs_scratch_put(bounce);
	return r;
}

/* Reads the request with its tags run by run, checks and decrypts in place. */
static int aead_read(struct crypt *cc, struct bs_io *io, uint64_t rel)
{
	const uint64_t base = cc->start << 9;
	size_t run = io->len < RUN_BYTES ? (size_t)io->len : RUN_BYTES;
	uint8_t *tags = bs_scratch_get(run / cc->sector_size * cc->tag_size);
	char *buf = io->buf;
	uint64_t done = 0;
	int res = 0;

	if (!tags)
		return -ENOMEM;
	while (done < io->len) {
		uint64_t n = io->len - done < run ? io->len - done : run, bad = 0;
		struct bs_io_meta m = {
		    .buf = tags, .tuple_size = cc->tag_size, .interval = cc->sector_size};
		struct bs_io sub = {
		    .op = BS_OP_READ,
		    .off = base + io->off + done,
		    .len = n,
		    .buf = buf + done,
		    .meta = &m,
		};
		unsigned nbad = 0;
		int r = bs_bdev_submit(cc->dev, &sub);

		if (!r && !m.taken)
			r = no_tags(cc);
		if (r) {
			memset(buf, 0, io->len); /* nothing of a failed read is handed out */
			res = r;
			break;
		}
		r = bs_aead_decrypt(cc->aead, buf + done, buf + done, n, rel + (done >> 9),
				    cc->iv_offset, tags, &bad, &nbad);
		if (r == -EILSEQ) {
			report_aead_error(cc, bad, nbad);
			res = r;
		} else if (r) {
			memset(buf, 0, io->len);
			res = r;
			break;
		}
		done += n;
	}
	bs_scratch_put(tags);
	return res;
}

static int crypt_submit(struct bs_target *t, struct bs_io *io)
{
	struct crypt *cc = t->private;
	uint64_t sector = (io->off >> 9) + cc->iv_offset;
	int r;

	if (io->op == BS_OP_FLUSH)
		return bs_bdev_submit(cc->dev, io);
	if (cc->tag_size) {
		if (!cc->aead)
			return -EIO; /* key wiped */
		switch (io->op) {
		case BS_OP_READ:
			return aead_read(cc, io, io->off >> 9);
		case BS_OP_WRITE:
			return aead_write(cc, io, io->off >> 9);
		case BS_OP_WRITE_ZEROES: {
			struct bs_io z = *io;

			z.buf = NULL; /* plaintext zeroes, encrypted and authenticated */
			return aead_write(cc, &z, io->off >> 9);
		}
		default:
			break; /* discards as below */
		}
	}
	if (!cc->cipher && !cc->tag_size)
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
	if ((!cc->cipher && !cc->aead) || cc->key_len == 0)
		sb_putc(out, '-');
	else if (flags & BS_STATUS_SHOWKEYS)
		sb_puts(out, cc->key_hex);
	else
		for (size_t i = 0; i < 2 * cc->key_len; i++)
			sb_putc(out, '0');
	sb_printf(out, " %llu %s %llu", (unsigned long long)cc->iv_offset, cc->dev->name,
		  (unsigned long long)cc->start);
	n = __builtin_popcount(cc->flags & ~CF_LARGE_IV) + (cc->sector_size != 512) +
	    !!(cc->flags & CF_LARGE_IV) + !!cc->tag_size;
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
	if (cc->tag_size)
		sb_printf(out, " integrity:%u:aead", cc->tag_size);
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
		bs_aead_free(cc->aead);
		cc->aead = NULL;
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

	if (!cc->cipher && !cc->aead)
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
