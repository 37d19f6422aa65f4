/*
 * target.h - the interface every target implements.
 *
 * A target type is a named set of callbacks, one C file per type under src/targets/.  A
 * target instance maps one segment of a table.  The constructor parses and checks every
 * argument, opens the devices it needs with bs_target_get_device(), and on any problem
 * returns -errno after setting one precise error with bs_target_error(); nothing it did is
 * kept (the engine calls no destructor for a failed constructor, so ctr cleans up itself,
 * except for devices, which the engine releases).  A table that fails to load changes nothing.
 */
#ifndef BS_ENGINE_TARGET_H
#define BS_ENGINE_TARGET_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/bdev.h"
#include "engine/io.h"
#include "util/strbuf.h"

struct bs_table;
struct bs_target;

enum bs_status_type {
	BS_STATUS_INFO,	 /* dmsetup status */
	BS_STATUS_TABLE, /* dmsetup table: must read back into the constructor unchanged */
};

#define BS_STATUS_SHOWKEYS (1u << 0) /* emit keys instead of masking them */

struct bs_target_type {
	const char *name;
	unsigned version[3];
	/* Parse argv (argv[0] is the first argument after the target name). */
	int (*ctr)(struct bs_target *t, unsigned argc, char **argv);
	void (*dtr)(struct bs_target *t);
	/* One request inside the segment; io->off is relative to the segment start. */
	int (*submit)(struct bs_target *t, struct bs_io *io);
	/* Append the status text (no leading target name, no newline). */
	void (*status)(struct bs_target *t, enum bs_status_type type, unsigned flags,
		       struct strbuf *out);
	/* Optional: a `dm message`; output (may be empty) goes to out, errors via t->error. */
	int (*message)(struct bs_target *t, unsigned argc, char **argv, struct strbuf *out);
	/* Optional hooks around suspend and resume. */
	void (*presuspend)(struct bs_target *t);
	void (*postsuspend)(struct bs_target *t);
	int (*preresume)(struct bs_target *t);
	void (*resume)(struct bs_target *t);
};

/* A device a target holds; released by the engine when the table goes. */
struct bs_target_dev {
	struct bs_bdev *bdev;
};

struct bs_target {
	const struct bs_target_type *type;
	struct bs_table *table;
	uint64_t begin; /* sectors */
	uint64_t len;	/* sectors */
	void *private;
	bool readonly; /* the table was loaded read-only */
	/*
	 * Requests the target receives are multiples of block_size, aligned to it (bytes;
	 * default 512).  Targets with bigger sectors (crypt sector_size:4096) raise it in ctr.
	 */
	unsigned block_size;
	const char *error; /* set by bs_target_error() */
	char errbuf[256];
	struct bs_target_dev *devs;
	unsigned ndevs;
};

/* Sets t->error from a format string and returns -EINVAL. */
int bs_target_error(struct bs_target *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Opens a device for this target (read-only when the table is).  On failure sets the
 * target error to "<what>: <path>: <reason>" and returns -errno.
 */
int bs_target_get_device(struct bs_target *t, const char *path, const char *what,
			 struct bs_bdev **out);
/*
 * Closes a device the target opened, outside its constructor (e.g. a RAID member removed
 * at run time).  Only under the device's control lock (messages, suspend/resume hooks).
 */
void bs_target_put_device(struct bs_target *t, struct bs_bdev *b);

/* Checks that [start, start+len) sectors lie inside bdev; sets the error otherwise. */
int bs_target_check_area(struct bs_target *t, struct bs_bdev *b, uint64_t start_sector,
			 uint64_t len_sectors);

/* Flushes every device the target holds (the usual FLUSH handling). */
int bs_target_flush_devices(struct bs_target *t);

/* Signals an event on the owning device (dm's dm_table_event). */
void bs_target_event(struct bs_target *t);

const struct bs_target_type *bs_target_type_find(const char *name);
/* NULL-terminated list of all target types. */
const struct bs_target_type *const *bs_target_types(void);

/* Strict sector parse that sets a target error naming the argument. */
int bs_target_parse_sector(struct bs_target *t, const char *arg, const char *what, uint64_t *out);

#endif
