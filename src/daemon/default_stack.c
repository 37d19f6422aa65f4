/*
 * default_stack.c - the embedded default stack.
 *
 * Three sparse 512 MiB files under DIR make a 1 GiB RAID5 named "default" (md superblocks,
 * write-intent bitmap, the journal that closes the write hole; 64 KiB chunks); on it a LUKS2
 * volume (aes-xts-plain64, 512-bit key, 4 KiB sectors) opened as the crypt device "secret".
 * The first start formats both, with a random key file DIR/secret.key (mode 0600); later
 * starts assemble the array and unlock the existing header with that file.  The key slot
 * uses argon2id with a fixed moderate cost (4 passes, 64 MiB, 2 threads: well under a
 * second) rather than cryptsetup's 2-second benchmark, so that start-up stays quick.
 */
#include "daemon/default_stack.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/device.h"
#include "formats/luks.h"
#include "formats/md.h"
#include "raid/layout.h"
#include "raid/md_array.h"
#include "util/parse.h"
#include "util/log.h"
#include "util/secmem.h"

#define MEMBER_SIZE   (512ull << 20)
#define RAID_MEMBERS  3
#define CHUNK_SECTORS 128
#define KEY_FILE_SIZE 64
#define KDF_TIME      4
#define KDF_MEMORY_KB (64u << 10)
#define KDF_THREADS   2

static int ensure_file(const char *path, uint64_t size, struct strbuf *err)
{
	struct stat st;
	int fd;

	if (!stat(path, &st)) {
		if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < size) {
			sb_printf(err, "%s exists but is not a regular file of at least %llu bytes",
				  path, (unsigned long long)size);
			return -EINVAL;
		}
		return 0;
	}
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)size)) {
		sb_printf(err, "cannot create %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	close(fd);
	return 0;
}

/* A new key file of random bytes, mode 0600; the key stays in *key (locked). */
static int new_key_file(const char *path, uint8_t **key, size_t *len, struct strbuf *err)
{
	FILE *rnd = fopen("/dev/urandom", "re");
	int fd, r = 0;

	*key = bs_secure_alloc(KEY_FILE_SIZE);
	if (!*key || !rnd || fread(*key, 1, KEY_FILE_SIZE, rnd) != KEY_FILE_SIZE) {
		if (rnd)
			fclose(rnd);
		bs_secure_free(*key);
		sb_puts(err, "cannot read random bytes for the key file");
		return -EIO;
	}
	fclose(rnd);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, *key, KEY_FILE_SIZE) != KEY_FILE_SIZE || fsync(fd)) {
		r = -errno;
		sb_printf(err, "cannot write %s: %s", path, strerror(errno));
		if (fd >= 0)
			unlink(path);
	}
	if (fd >= 0)
		close(fd);
	if (r) {
		bs_secure_free(*key);
		return r;
	}
	*len = KEY_FILE_SIZE;
	return 0;
}

/* Reads the key file (a regular file only its owner can read) into locked memory. */
static int read_key_file(const char *path, uint8_t **key, size_t *len, struct strbuf *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	ssize_t n;

	if (fd < 0) {
		sb_printf(err, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (st.st_mode & 077) || st.st_size <= 0 ||
	    st.st_size > 8192) {
		close(fd);
		sb_printf(err,
			  "%s must be a regular file of 1 to 8192 bytes readable only by its "
			  "owner (chmod 600)",
			  path);
		return -EINVAL;
	}
	*key = bs_secure_alloc((size_t)st.st_size);
	n = *key ? read(fd, *key, (size_t)st.st_size) : -1;
	close(fd);
	if (n != st.st_size) {
		bs_secure_free(*key);
		sb_printf(err, "cannot read %s", path);
		return -EIO;
	}
	*len = (size_t)n;
	return 0;
}

/* True when the first 16 MiB of B (what a format overwrites) read as zeroes. */
static bool blank(struct bs_bdev *b)
{
	static uint8_t zero[64 << 10];
	uint8_t *buf = malloc(sizeof(zero));
	bool ok = buf != NULL;

	for (uint64_t off = 0; ok && off < (16u << 20) && off < bs_bdev_size(b);
	     off += sizeof(zero))
		ok = !bs_bdev_read(b, buf, sizeof(zero), off) && !memcmp(buf, zero, sizeof(zero));
	free(buf);
	return ok;
}

/*
 * LUKS2 on /dev/mapper/default, opened as "secret".  A device that holds something other
 * than LUKS is left alone (with a warning): it may hold data from before encryption.
 */
static int build_secret(const char *dir, struct strbuf *info, struct strbuf *err)
{
	struct luks_format_opts fo = {
	    .version = 2,
	    .cipher = "aes-xts-plain64",
	    .key_bytes = 64,
	    .keyslot = LUKS_ANY_SLOT,
	    .sector_size = 4096, /* the RAID5 below works in 4 KiB blocks */
	    .pbkdf = {.type = BS_ARGON2ID,
		      .type_set = true,
		      .iterations = KDF_TIME,
		      .memory_kb = KDF_MEMORY_KB,
		      .parallel = KDF_THREADS},
	};
	struct strbuf table = STRBUF_SECURE_INIT;
	char keypath[PATH_MAX], uuid[BS_DEVICE_UUID_MAX];
	struct luks_hdr *h = NULL;
	struct bs_bdev *b;
	uint8_t *key = NULL, *vk = NULL;
	size_t key_len = 0, vk_len = 0;
	const char *why;
	bool fresh = false;
	int r, slot;

	if ((size_t)snprintf(keypath, sizeof(keypath), "%s/secret.key", dir) >= sizeof(keypath)) {
		sb_printf(err, "%s: path too long", dir);
		return -ENAMETOOLONG;
	}
	r = bs_bdev_open("/dev/mapper/default", false, &b, &why);
	if (r) {
		sb_printf(err, "cannot open /dev/mapper/default: %s", why);
		return r;
	}
	if (!luks_probe(b)) {
		if (!access(keypath, F_OK) || !blank(b)) {
			bs_warn(
			    "default stack: /dev/mapper/default holds data that is not LUKS (or %s "
			    "exists without a header): not encrypting it; remove %s to start "
			    "afresh",
			    keypath, dir);
			sb_puts(info, "device \"secret\": not created (the striped device holds "
				      "unencrypted data)\n");
			bs_bdev_close(b);
			return 0;
		}
		r = new_key_file(keypath, &key, &key_len, err);
		if (!r) {
			r = luks_format(b, bs_bdev_size(b), &fo, key, key_len, &h, &slot, err);
			if (r)
				unlink(keypath);
		}
		fresh = true;
	} else {
		r = read_key_file(keypath, &key, &key_len, err);
		if (!r)
			r = luks_load(b, true, &h, err);
	}
	if (!r)
		r = luks_unlock(h, LUKS_ANY_SLOT, key, key_len, &vk, &vk_len, &slot, err);
	if (!r)
		r = luks_crypt_table(h, vk, vk_len, "/dev/mapper/default", bs_bdev_size(b), 0,
				     LUKS_TABLE_ATTACHED, &table, err);
	if (!r)
		luks_dm_uuid(h, "secret", uuid, sizeof(uuid));
	bs_secure_free(key);
	bs_secure_free(vk);
	luks_free(h);
	bs_bdev_close(b);
	if (!r)
		r = bs_device_create("secret", uuid, false, sb_str(&table), err);
	sb_free(&table);
	if (r) {
		if (!err->len)
			sb_printf(err, "default stack: %s", strerror(-r));
		return r;
	}
	sb_printf(info,
		  "device \"secret\": LUKS2 (aes-xts-plain64, argon2id) on \"default\", %s with "
		  "the key file %s\n",
		  fresh ? "formatted" : "unlocked", keypath);
	return 0;
}

/* The md table of a RAID5 over FILES (an md target, as `blkstack raid assemble` makes). */
static int raid_table(char files[][PATH_MAX], unsigned n, const uint8_t uuid[16], uint64_t sectors,
		      struct strbuf *t)
{
	char u[40];

	md_uuid_format(uuid, u);
	sb_printf(t, "0 %llu md %s %u", (unsigned long long)sectors, u, n);
	for (unsigned i = 0; i < n; i++) {
		sb_putc(t, ' ');
		sb_put_arg(t, files[i]);
	}
	return 0;
}

/*
 * RAID5 over three sparse files, formatted with md superblocks on the first start (zeroed
 * members are consistent parity, so no initial resync is needed) and assembled after.
 */
static int build_raid(char files[][PATH_MAX], struct strbuf *info, struct strbuf *err)
{
	struct md_create_params p = {
	    .level = 5,
	    .raid_disks = RAID_MEMBERS,
	    .layout = raid_layout_default(5),
	    .chunk = CHUNK_SECTORS,
	    .bitmap = true,
	    .assume_clean = true,
	    .policy = RAID_POLICY_JOURNAL,
	    .name = "default",
	};
	struct bs_bdev *b[RAID_MEMBERS] = {0};
	struct strbuf table = STRBUF_INIT, probe_err = STRBUF_INIT;
	uint8_t uuid[16];
	uint64_t sectors = 0;
	char name[64], du[64], hex[33];
	bool fresh = false;
	int r = 0;

	for (unsigned i = 0; i < RAID_MEMBERS && !r; i++) {
		const char *why;

		r = bs_bdev_open(files[i], false, &b[i], &why);
		if (r)
			sb_printf(err, "cannot open %s: %s", files[i], why);
	}
	if (!r &&
	    md_array_probe(b, RAID_MEMBERS, NULL, uuid, &sectors, name, sizeof(name), &probe_err)) {
		/* No superblocks yet: a new array, but never over files holding other data. */
		for (unsigned i = 0; i < RAID_MEMBERS && !r; i++)
			if (!blank(b[i])) {
				sb_printf(err,
					  "default stack: %s holds data but no usable md "
					  "superblock (%s); "
					  "remove it to start afresh",
					  files[i], sb_str(&probe_err));
				r = -EEXIST;
			}
		if (!r)
			r = md_array_format(&p, b, RAID_MEMBERS, NULL, 0, uuid, &sectors, err);
		fresh = true;
	}
	for (unsigned i = 0; i < RAID_MEMBERS; i++)
		if (b[i])
			bs_bdev_close(b[i]);
	sb_free(&probe_err);
	if (!r)
		r = raid_table(files, RAID_MEMBERS, uuid, sectors, &table);
	if (!r) {
		bs_hex_encode(uuid, 16, hex);
		snprintf(du, sizeof(du), "MD-%s", hex);
		r = bs_device_create("default", du, false, sb_str(&table), err);
	}
	sb_free(&table);
	if (r)
		return r;
	sb_printf(info,
		  "device \"default\": RAID5 (md superblocks, journal), 3 x 512 MiB (%s, %s, %s), "
		  "64 KiB chunks, %s\n",
		  files[0], files[1], files[2], fresh ? "created" : "assembled");
	return 0;
}

int bs_default_stack_build(const char *dir, struct strbuf *info, struct strbuf *err)
{
	char base[PATH_MAX], files[RAID_MEMBERS][PATH_MAX], old[PATH_MAX];
	int r;

	if (mkdir(dir, 0700) && errno != EEXIST) {
		sb_printf(err, "cannot create %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (!realpath(dir, base)) {
		sb_printf(err, "%s: %s", dir, strerror(errno));
		return -errno;
	}
	if (strlen(base) + 16 > sizeof(base)) {
		sb_printf(err, "%s: path too long", dir);
		return -ENAMETOOLONG;
	}
	snprintf(old, sizeof(old), "%s/stripe0.img", base);
	for (unsigned i = 0; i < RAID_MEMBERS; i++)
		snprintf(files[i], sizeof(files[i]), "%s/raid%u.img", base, i);
	if (!access(old, F_OK) && access(files[0], F_OK)) {
		sb_printf(
		    err,
		    "%s is from an earlier default stack (striped); the default is now RAID5: "
		    "move the old files out of %s to start afresh",
		    old, base);
		return -EEXIST;
	}
	for (unsigned i = 0; i < RAID_MEMBERS; i++) {
		r = ensure_file(files[i], MEMBER_SIZE, err);
		if (r)
			return r;
	}
	r = build_raid(files, info, err);
	if (r)
		return r;
	return build_secret(base, info, err);
}
