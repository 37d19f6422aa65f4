/*
 * bdev.c - host files, host block devices and stacked blkstack devices behind one handle.
 */
#include "engine/bdev.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "engine/device.h"
#include "util/scratch.h"

#define DIRECT_ALIGN 4096u

static atomic_bool direct_io;
static bs_bdev_resolver_fn resolver;
static _Thread_local const char *thread_cwd;

void bs_bdev_set_thread_cwd(const char *cwd)
{
	thread_cwd = cwd;
}

void bs_bdev_set_direct_io(bool on)
{
	atomic_store(&direct_io, on);
}

void bs_bdev_set_resolver(bs_bdev_resolver_fn fn)
{
	resolver = fn;
}

/* ---- host files and block devices ---------------------------------------------------- */

struct file_bdev {
	struct bs_bdev b;
	int fd;
	int dfd; /* O_DIRECT twin, or -1 */
	uint64_t size;
};

static bool direct_ok(const struct file_bdev *f, const void *buf, uint64_t off, uint64_t len)
{
	return f->dfd >= 0 && ((uintptr_t)buf % DIRECT_ALIGN) == 0 && off % DIRECT_ALIGN == 0 &&
	       len % DIRECT_ALIGN == 0;
}

static int file_pread_all(int fd, void *buf, uint64_t len, uint64_t off)
{
	char *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* past the end: the file shrank under us */
		p += n;
		len -= (uint64_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int file_pwrite_all(int fd, const void *buf, uint64_t len, uint64_t off, bool dsync)
{
	const char *p = buf;

	while (len) {
		struct iovec iov = {.iov_base = (void *)p, .iov_len = len};
		ssize_t n = pwritev2(fd, &iov, 1, (off_t)off, dsync ? RWF_DSYNC : 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (uint64_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int file_zero_by_writing(struct file_bdev *f, uint64_t off, uint64_t len)
{
	const uint64_t chunk = 1u << 20;
	void *z = bs_scratch_get(chunk);
	int r = 0;

	if (!z)
		return -ENOMEM;
	memset(z, 0, chunk);
	while (len && !r) {
		uint64_t n = len < chunk ? len : chunk;

		r = file_pwrite_all(f->fd, z, n, off, false);
		off += n;
		len -= n;
	}
	bs_scratch_put(z);
	return r;
}

static int file_submit(struct bs_bdev *b, struct bs_io *io)
{
	struct file_bdev *f = (struct file_bdev *)b;
	int r;

	if (bs_op_is_write(io->op) && b->readonly)
		return -EROFS;
	if (io->op != BS_OP_FLUSH && (io->off > f->size || io->len > f->size - io->off))
		return -EIO;

	switch (io->op) {
	case BS_OP_READ:
		return file_pread_all(direct_ok(f, io->buf, io->off, io->len) ? f->dfd : f->fd,
				      io->buf, io->len, io->off);
	case BS_OP_WRITE:
		return file_pwrite_all(direct_ok(f, io->buf, io->off, io->len) ? f->dfd : f->fd,
				       io->buf, io->len, io->off, io->flags & BS_IO_FUA);
	case BS_OP_FLUSH:
		return fdatasync(f->fd) ? -errno : 0;
	case BS_OP_DISCARD:
		if (b->kind == BS_BDEV_BLOCK) {
			uint64_t range[2] = {io->off, io->len};

			r = ioctl(f->fd, BLKDISCARD, range);
		} else {
			r = fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      (off_t)io->off, (off_t)io->len);
		}
		/* Discard is advisory: a backend without it just keeps the data. */
		if (r && (errno == EOPNOTSUPP || errno == ENOTTY || errno == EINVAL))
			return 0;
		return r ? -errno : 0;
	case BS_OP_WRITE_ZEROES:
		if (b->kind == BS_BDEV_BLOCK) {
			uint64_t range[2] = {io->off, io->len};

			r = ioctl(f->fd, BLKZEROOUT, range) ? -errno : 0;
		} else {
			int mode = (io->flags & BS_IO_NOUNMAP)
				       ? FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE
				       : FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;

			r = fallocate(f->fd, mode, (off_t)io->off, (off_t)io->len) ? -errno : 0;
		}
		if (r == -EOPNOTSUPP || r == -ENOTTY || r == -EINVAL)
			r = file_zero_by_writing(f, io->off, io->len);
		if (!r && (io->flags & BS_IO_FUA))
			r = fdatasync(f->fd) ? -errno : 0;
		return r;
	}
	return -EINVAL;
}

static uint64_t file_size(struct bs_bdev *b)
{
	return ((struct file_bdev *)b)->size;
}

static void file_close(struct bs_bdev *b)
{
	struct file_bdev *f = (struct file_bdev *)b;

	close(f->fd);
	if (f->dfd >= 0)
		close(f->dfd);
}

static const struct bs_bdev_ops file_ops = {
    .submit = file_submit,
    .size = file_size,
    .close = file_close,
};

/* "MAJOR:MINOR" names a host block device, as in Linux tables. */
static int resolve_devno(const char *path, char *out, size_t outlen)
{
	unsigned maj, min;
	char extra, sys[64], line[256];
	FILE *fp;
	int found = 0;

	if (sscanf(path, "%u:%u%c", &maj, &min, &extra) != 2)
		return 0;
	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/uevent", maj, min);
	fp = fopen(sys, "re");
	if (!fp)
		return -ENOENT;
	while (fgets(line, sizeof(line), fp)) {
		if (!strncmp(line, "DEVNAME=", 8)) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, outlen, "/dev/%s", line + 8);
			found = 1;
			break;
		}
	}
	fclose(fp);
	return found ? 1 : -ENOENT;
}

static int file_open(const char *name, const char *path, bool readonly, struct bs_bdev **out,
		     const char **why)
{
	struct file_bdev *f;
	struct stat st;
	int fd, flags = (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;

	fd = open(path, flags);
	if (fd < 0) {
		int e = errno;

		*why = e == ENOENT ? "no such file or device" : strerror(e);
		return -e;
	}
	if (fstat(fd, &st)) {
		int e = errno;

		close(fd);
		*why = "cannot stat";
		return -e;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		close(fd);
		*why = "not a regular file or block device";
		return -EINVAL;
	}
	f = calloc(1, sizeof(*f));
	if (!f || !(f->b.name = strdup(name))) {
		free(f);
		close(fd);
		*why = "out of memory";
		return -ENOMEM;
	}
	f->fd = fd;
	f->dfd = -1;
	f->b.ops = &file_ops;
	f->b.readonly = readonly;
	f->b.block_size = BS_SECTOR_SIZE;
	if (S_ISBLK(st.st_mode)) {
		int ssz = 512;

		f->b.kind = BS_BDEV_BLOCK;
		if (ioctl(fd, BLKGETSIZE64, &f->size)) {
			int e = errno;

			file_close(&f->b);
			free(f->b.name);
			free(f);
			*why = "cannot read the block device size";
			return -e;
		}
		if (!ioctl(fd, BLKSSZGET, &ssz) && ssz > 512)
			f->b.block_size = (unsigned)ssz;
	} else {
		f->b.kind = BS_BDEV_FILE;
		f->size = (uint64_t)st.st_size;
	}
	if (atomic_load(&direct_io))
		f->dfd = open(path, flags | O_DIRECT);
	*out = &f->b;
	return 0;
}

/* ---- stacked blkstack devices ----------------------------------------------------------- */

static int dev_submit(struct bs_bdev *b, struct bs_io *io)
{
	if (bs_op_is_write(io->op) && b->readonly)
		return -EROFS;
	return bs_device_submit(b->device, io);
}

static uint64_t dev_size(struct bs_bdev *b)
{
	return bs_device_size(b->device) << BS_SECTOR_SHIFT;
}

static void dev_close(struct bs_bdev *b)
{
	bs_device_release_holder(b->device);
	bs_device_put(b->device);
}

static const struct bs_bdev_ops dev_ops = {
    .submit = dev_submit,
    .size = dev_size,
    .close = dev_close,
};

int bs_bdev_from_device(struct bs_device *dev, const char *name, bool readonly,
			struct bs_bdev **out)
{
	struct bs_bdev *b = calloc(1, sizeof(*b));

	if (!b || !(b->name = strdup(name))) {
		free(b);
		return -ENOMEM;
	}
	b->ops = &dev_ops;
	b->kind = BS_BDEV_DEVICE;
	b->readonly = readonly || bs_device_readonly(dev);
	b->block_size = bs_device_block_size(dev);
	b->device = dev;
	bs_device_get(dev);
	bs_device_add_holder(dev);
	*out = b;
	return 0;
}

int bs_bdev_open(const char *path, bool readonly, struct bs_bdev **out, const char **why)
{
	static const char mapper[] = "/dev/mapper/";
	char host[300];
	int r;

	*why = "device lookup failed";
	if (!path || !*path) {
		*why = "empty device path";
		return -EINVAL;
	}
	if (!strncmp(path, mapper, sizeof(mapper) - 1)) {
		const char *name = path + sizeof(mapper) - 1;
		struct bs_device *dev = bs_device_lookup(name);

		if (dev) {
			r = bs_bdev_from_device(dev, path, readonly, out);
			bs_device_put(dev);
			return r;
		}
		if (resolver) {
			r = resolver(name, readonly, out);
			if (r != -ENOENT)
				return r;
		}
	}
	r = resolve_devno(path, host, sizeof(host));
	if (r < 0) {
		*why = "no block device with that number";
		return r;
	}
	if (r)
		return file_open(path, host, readonly, out, why);
	if (path[0] != '/' && thread_cwd) {
		char abs[4096];
		int n = snprintf(abs, sizeof(abs), "%s/%s", thread_cwd, path);

		if (n < 0 || (size_t)n >= sizeof(abs)) {
			*why = "path too long";
			return -ENAMETOOLONG;
		}
		return file_open(abs, abs, readonly, out, why);
	}
	return file_open(path, path, readonly, out, why);
}

void bs_bdev_close(struct bs_bdev *b)
{
	if (!b)
		return;
	b->ops->close(b);
	free(b->name);
	free(b);
}

int bs_bdev_read(struct bs_bdev *b, void *buf, uint64_t len, uint64_t off)
{
	struct bs_io io = {.op = BS_OP_READ, .off = off, .len = len, .buf = buf};

	return bs_bdev_submit(b, &io);
}

int bs_bdev_write(struct bs_bdev *b, const void *buf, uint64_t len, uint64_t off, unsigned flags)
{
	struct bs_io io = {
	    .op = BS_OP_WRITE, .flags = flags, .off = off, .len = len, .buf = (void *)buf};

	return bs_bdev_submit(b, &io);
}

int bs_bdev_flush(struct bs_bdev *b)
{
	struct bs_io io = {.op = BS_OP_FLUSH};

	return bs_bdev_submit(b, &io);
}
