/*
 * default_stack.c - the embedded default stack.
 *
 * Two sparse 512 MiB files under DIR, striped with 64 KiB chunks into one 1 GiB device
 * named "default"; on it a LUKS2 volume (aes-xts-plain64, 512-bit key) opened as the crypt
 * device "secret".  The first start formats it with a random key file DIR/secret.key (mode
 * 0600); later starts unlock the existing header with that file.  The key slot uses
 * argon2id with a fixed moderate cost (4 passes, 64 MiB, 2 threads: well under a second)
 * rather than cryptsetup's 2-second benchmark, so that start-up stays quick.
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
#include "util/log.h"
#include "util/secmem.h"

#define MEMBER_SIZE   (512ull << 20)
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
	    .sector_size = 512,
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

int bs_default_stack_build(const char *dir, struct strbuf *info, struct strbuf *err)
{
	char a[PATH_MAX], b[PATH_MAX], table[2 * PATH_MAX + 128];
	uint64_t sectors = 2 * (MEMBER_SIZE >> 9);
	int r;

	if (mkdir(dir, 0700) && errno != EEXIST) {
		sb_printf(err, "cannot create %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (!realpath(dir, a)) {
		sb_printf(err, "%s: %s", dir, strerror(errno));
		return -errno;
	}
	strcpy(b, a);
	if (strlen(a) + 16 > sizeof(a)) {
		sb_printf(err, "%s: path too long", dir);
		return -ENAMETOOLONG;
	}
	strcat(a, "/stripe0.img");
	strcat(b, "/stripe1.img");
	r = ensure_file(a, MEMBER_SIZE, err);
	if (!r)
		r = ensure_file(b, MEMBER_SIZE, err);
	if (r)
		return r;
	snprintf(table, sizeof(table), "0 %llu striped 2 %u %s 0 %s 0", (unsigned long long)sectors,
		 CHUNK_SECTORS, a, b);
	r = bs_device_create("default", NULL, false, table, err);
	if (r)
		return r;
	sb_printf(info, "device \"default\": striped, 2 x 512 MiB (%s, %s), 64 KiB chunks\n", a, b);
	*strrchr(a, '/') = '\0';
	return build_secret(a, info, err);
}
