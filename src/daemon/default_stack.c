/*
 * default_stack.c - the embedded default stack.
 *
 * Two sparse 512 MiB files under DIR, striped with 64 KiB chunks into one 1 GiB device
 * named "default".
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

#define MEMBER_SIZE   (512ull << 20)
#define CHUNK_SECTORS 128

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
	return 0;
}
