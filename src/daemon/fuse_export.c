/*
 * fuse_export.c - see fuse_export.h.
 */
#define FUSE_USE_VERSION 312
#include "daemon/fuse_export.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/device.h"
#include "util/log.h"
#include "util/scratch.h"

struct fuse_export {
	char *file;   /* absolute path of the mount point */
	bool created; /* we created FILE and remove it again */
	struct bs_device *dev;
	struct fuse_session *se;
	pthread_t thread;
	struct timespec since;
	struct fuse_export *next;
};

static pthread_mutex_t exports_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fuse_export *exports;

static void fill_attr(struct fuse_export *e, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = FUSE_ROOT_ID;
	st->st_mode = S_IFREG | (bs_device_readonly(e->dev) ? 0400 : 0600);
	st->st_nlink = 1;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_size = (off_t)(bs_device_size(e->dev) << 9);
	st->st_blksize = 4096;
	st->st_blocks = st->st_size / 512;
	st->st_atim = st->st_mtim = st->st_ctim = e->since;
}

static void fx_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse_export *e = fuse_req_userdata(req);
	struct stat st;

	(void)fi;
	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(e, &st);
	fuse_reply_attr(req, &st, 1.0);
}

static void fx_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct fuse_export *e = fuse_req_userdata(req);
	struct stat st;

	(void)ino;
	(void)fi;
	fill_attr(e, &st);
	/* The size is the device's: only a no-op truncate is allowed.  Times are ignored. */
	if ((to_set & FUSE_SET_ATTR_SIZE) && attr->st_size != st.st_size) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	fuse_reply_attr(req, &st, 1.0);
}

static void fx_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse_export *e = fuse_req_userdata(req);

	(void)ino;
	if ((fi->flags & O_ACCMODE) != O_RDONLY && bs_device_readonly(e->dev)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (fi->flags & O_TRUNC) {
		fuse_reply_err(req, EPERM);
		return;
	}
	fi->direct_io = 1;
	fi->keep_cache = 0;
	fuse_reply_open(req, fi);
}

static int fx_io(struct fuse_export *e, enum bs_op op, void *buf, uint64_t off, uint64_t len,
		 unsigned flags)
{
	struct bs_io io = {.op = op, .flags = flags, .off = off, .len = len, .buf = buf};

	return bs_device_submit(e->dev, &io);
}

static void fx_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fuse_export *e = fuse_req_userdata(req);
	uint64_t devsize = bs_device_size(e->dev) << 9;
	void *buf;
	int r;

	(void)ino;
	(void)fi;
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if ((uint64_t)off >= devsize || size == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > devsize - (uint64_t)off)
		size = devsize - (uint64_t)off;
	buf = bs_scratch_get(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	r = fx_io(e, BS_OP_READ, buf, (uint64_t)off, size, 0);
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_buf(req, buf, size);
	bs_scratch_put(buf);
}

static void fx_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct fuse_export *e = fuse_req_userdata(req);
	uint64_t devsize = bs_device_size(e->dev) << 9;
	int r;

	(void)ino;
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if ((uint64_t)off > devsize || size > devsize - (uint64_t)off) {
		fuse_reply_err(req, ENOSPC);
		return;
	}
	r = fx_io(e, BS_OP_WRITE, (void *)buf, (uint64_t)off, size,
		  (fi->flags & (O_SYNC | O_DSYNC)) ? BS_IO_FUA : 0);
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_write(req, size);
}

static void fx_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fuse_export *e = fuse_req_userdata(req);

	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, -fx_io(e, BS_OP_FLUSH, NULL, 0, 0, 0));
}

static void fx_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void fx_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void fx_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	struct fuse_export *e = fuse_req_userdata(req);
	uint64_t devsize = bs_device_size(e->dev) << 9;
	int r;

	(void)ino;
	(void)fi;
	if (off < 0 || len <= 0 || (uint64_t)off > devsize ||
	    (uint64_t)len > devsize - (uint64_t)off) {
		fuse_reply_err(req, (off < 0 || len <= 0) ? EINVAL : ENOSPC);
		return;
	}
	if (mode == 0) {
		fuse_reply_err(req, 0); /* already allocated */
		return;
	}
	if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE))
		r = fx_io(e, BS_OP_WRITE_ZEROES, NULL, (uint64_t)off, (uint64_t)len, 0);
	else if (mode == FALLOC_FL_ZERO_RANGE ||
		 mode == (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE))
		r = fx_io(e, BS_OP_WRITE_ZEROES, NULL, (uint64_t)off, (uint64_t)len, BS_IO_NOUNMAP);
	else
		r = -EOPNOTSUPP;
	fuse_reply_err(req, -r);
}

static const struct fuse_lowlevel_ops fx_ops = {
    .getattr = fx_getattr,
    .setattr = fx_setattr,
    .open = fx_open,
    .read = fx_read,
    .write = fx_write,
    .flush = fx_flush,
    .release = fx_release,
    .fsync = fx_fsync,
    .fallocate = fx_fallocate,
};

static void *fx_loop(void *arg)
{
	struct fuse_export *e = arg;
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();

	if (cfg) {
		fuse_loop_cfg_set_clone_fd(cfg, 0);
		fuse_loop_cfg_set_max_threads(cfg, 8);
		fuse_loop_cfg_set_idle_threads(cfg, 4);
		fuse_session_loop_mt(e->se, cfg);
		fuse_loop_cfg_destroy(cfg);
	} else {
		fuse_session_loop(e->se);
	}
	return NULL;
}

static void export_free(struct fuse_export *e)
{
	if (e->dev) {
		bs_device_close(e->dev);
		bs_device_put(e->dev);
	}
	free(e->file);
	free(e);
}

int bs_fuse_export_add(const char *devname, const char *file, struct strbuf *err)
{
	struct fuse_export *e;
	char opts[BS_DEVICE_NAME_MAX + 64];
	char *argv[] = {"blkstackd", "-o", opts, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	char real[PATH_MAX];
	struct stat st;
	int r;

	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	clock_gettime(CLOCK_REALTIME, &e->since);
	e->dev = bs_device_lookup(devname);
	if (!e->dev) {
		free(e);
		sb_printf(err, "device %s does not exist", devname);
		return -ENXIO;
	}
	if (bs_device_open(e->dev)) {
		bs_device_put(e->dev);
		free(e);
		sb_printf(err, "device %s is going away", devname);
		return -ENXIO;
	}
	if (lstat(file, &st)) {
		int fd;

		if (errno != ENOENT) {
			r = -errno;
			sb_printf(err, "%s: %s", file, strerror(errno));
			goto fail;
		}
		fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			r = -errno;
			sb_printf(err, "cannot create %s: %s", file, strerror(errno));
			goto fail;
		}
		close(fd);
		e->created = true;
	} else if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		sb_printf(err, "%s is not a regular file", file);
		goto fail;
	}
	if (!realpath(file, real)) {
		r = -errno;
		sb_printf(err, "%s: %s", file, strerror(errno));
		goto fail_created;
	}
	e->file = strdup(real);
	pthread_mutex_lock(&exports_lock);
	for (struct fuse_export *x = exports; x; x = x->next)
		if (!strcmp(x->file, real)) {
			pthread_mutex_unlock(&exports_lock);
			r = -EEXIST;
			sb_printf(err, "%s is already an export", file);
			goto fail_created;
		}
	pthread_mutex_unlock(&exports_lock);

	snprintf(opts, sizeof(opts), "fsname=blkstack:%s,subtype=blkstack%s", devname,
		 bs_device_readonly(e->dev) ? ",ro" : "");
	e->se = fuse_session_new(&args, &fx_ops, sizeof(fx_ops), e);
	fuse_opt_free_args(&args);
	if (!e->se) {
		r = -EIO;
		sb_puts(err, "cannot create a FUSE session");
		goto fail_created;
	}
	if (fuse_session_mount(e->se, e->file)) {
		fuse_session_destroy(e->se);
		r = -EIO;
		sb_printf(err, "cannot mount FUSE on %s (is /dev/fuse available?)", file);
		goto fail_created;
	}
	if (pthread_create(&e->thread, NULL, fx_loop, e)) {
		fuse_session_unmount(e->se);
		fuse_session_destroy(e->se);
		r = -EAGAIN;
		sb_puts(err, "cannot start the FUSE thread");
		goto fail_created;
	}
	pthread_mutex_lock(&exports_lock);
	e->next = exports;
	exports = e;
	pthread_mutex_unlock(&exports_lock);
	bs_info("fuse: %s exported as %s", devname, e->file);
	return 0;

fail_created:
	if (e->created)
		unlink(file);
fail:
	export_free(e);
	return r;
}

static void stop_export(struct fuse_export *e)
{
	fuse_session_exit(e->se);
	/* Already unmounted by the caller, or detached lazily here: either ends the loop. */
	fuse_session_unmount(e->se);
	pthread_join(e->thread, NULL);
	fuse_session_destroy(e->se);
	if (e->created)
		unlink(e->file);
	export_free(e);
}

int bs_fuse_export_remove(const char *file, struct strbuf *err)
{
	char real[PATH_MAX];
	struct fuse_export *e = NULL, **pp;

	/* The mount hides the file, so resolve the path textually against the list. */
	if (!realpath(file, real)) {
		sb_printf(err, "%s: %s", file, strerror(errno));
		return -errno;
	}
	pthread_mutex_lock(&exports_lock);
	for (pp = &exports; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->file, real)) {
			e = *pp;
			break;
		}
	if (!e) {
		pthread_mutex_unlock(&exports_lock);
		sb_printf(err, "%s is not a FUSE export", file);
		return -ENOENT;
	}
	/* A plain unmount fails while the file is in use: report that instead of detaching. */
	if (umount2(e->file, UMOUNT_NOFOLLOW)) {
		int en = errno;

		pthread_mutex_unlock(&exports_lock);
		if (en == EBUSY) {
			sb_printf(err, "%s is busy (open, or attached to a loop device)", file);
			return -EBUSY;
		}
		sb_printf(err, "cannot unmount %s: %s", file, strerror(en));
		return -en;
	}
	*pp = e->next;
	pthread_mutex_unlock(&exports_lock);
	stop_export(e);
	return 0;
}

void bs_fuse_export_list(struct strbuf *out)
{
	pthread_mutex_lock(&exports_lock);
	for (struct fuse_export *e = exports; e; e = e->next)
		sb_printf(out, "%s\t%s\n", e->file, bs_device_name(e->dev));
	pthread_mutex_unlock(&exports_lock);
}

void bs_fuse_export_remove_all(void)
{
	for (;;) {
		struct fuse_export *e;

		pthread_mutex_lock(&exports_lock);
		e = exports;
		if (e)
			exports = e->next;
		pthread_mutex_unlock(&exports_lock);
		if (!e)
			return;
		stop_export(e);
	}
}
