/*
 * bdev.h - the devices a table maps onto.
 *
 * A bdev is an open handle on something that stores blocks: a host regular file, a host block
 * device, or another blkstack device (named /dev/mapper/NAME in tables).  Targets open their
 * devices through bs_target_get_device() and only ever talk to them through bs_bdev_submit(),
 * so a target cannot tell a file from a stacked device.
 */
#ifndef BS_ENGINE_BDEV_H
#define BS_ENGINE_BDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/io.h"

struct bs_bdev;
struct bs_device;

struct bs_bdev_ops {
	int (*submit)(struct bs_bdev *b, struct bs_io *io);
	uint64_t (*size)(struct bs_bdev *b); /* bytes, may change (stacked devices) */
	void (*close)(struct bs_bdev *b);
};

enum bs_bdev_kind { BS_BDEV_FILE, BS_BDEV_BLOCK, BS_BDEV_DEVICE, BS_BDEV_OTHER };

struct bs_bdev {
	const struct bs_bdev_ops *ops;
	enum bs_bdev_kind kind;
	char *name;	     /* as written in the table, for status and table output */
	unsigned block_size; /* smallest I/O unit in bytes (512 or 4096) */
	bool readonly;
	struct bs_device *device; /* BS_BDEV_DEVICE only */
	void *priv;
};

/*
 * Relative host paths in tables are resolved against this directory (the client's working
 * directory, for the duration of one control request on this thread); NULL clears it.
 * Such devices are named by their absolute path in status and table output.
 */
void bs_bdev_set_thread_cwd(const char *cwd);

/* Global engine options for host files. */
void bs_bdev_set_direct_io(bool on);

/*
 * Opens PATH: "/dev/mapper/NAME" for a blkstack device (when one of that name exists),
 * "MAJOR:MINOR" for a host block device, otherwise a host path (regular file or block
 * device).  On failure returns -errno and sets *why to a static reason.
 */
int bs_bdev_open(const char *path, bool readonly, struct bs_bdev **out, const char **why);
void bs_bdev_close(struct bs_bdev *b);

/*
 * Hook for processes without the device registry (the CLI): resolves /dev/mapper/NAME of a
 * running daemon, e.g. over NBD.  Returns -ENOENT to fall back to the host path.
 */
typedef int (*bs_bdev_resolver_fn)(const char *name, bool readonly, struct bs_bdev **out);
void bs_bdev_set_resolver(bs_bdev_resolver_fn fn);

static inline int bs_bdev_submit(struct bs_bdev *b, struct bs_io *io)
{
	return b->ops->submit(b, io);
}

static inline uint64_t bs_bdev_size(struct bs_bdev *b)
{
	return b->ops->size(b);
}

int bs_bdev_read(struct bs_bdev *b, void *buf, uint64_t len, uint64_t off);
int bs_bdev_write(struct bs_bdev *b, const void *buf, uint64_t len, uint64_t off, unsigned flags);
int bs_bdev_flush(struct bs_bdev *b);

/* Wraps an engine device (used by the /dev/mapper lookup and by front ends). */
int bs_bdev_from_device(struct bs_device *dev, const char *name, bool readonly,
			struct bs_bdev **out);

#endif
