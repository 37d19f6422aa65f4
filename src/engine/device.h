/*
 * device.h - virtual block devices and their registry.
 *
 * A device has a name, an optional UUID, a live table and an optional inactive table, with
 * device-mapper semantics:
 *   create   makes the device; with a table, loads and activates it
 *   load     (dmsetup reload) builds the inactive table; the live one keeps serving
 *   suspend  stops new I/O, waits for in-flight I/O and flushes (unless noflush)
 *   resume   swaps in the inactive table if there is one, then restarts I/O
 *   remove   refuses while a front end has the device open or another table uses it
 * Requests enter through bs_device_submit(), which aligns them to the table's block size
 * (read-modify-write of partial blocks) and holds them while the device is suspended.
 */
#ifndef BS_ENGINE_DEVICE_H
#define BS_ENGINE_DEVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/io.h"
#include "engine/table.h"
#include "util/strbuf.h"

#define BS_DEVICE_NAME_MAX 128 /* as DM_NAME_LEN, including the terminator */
#define BS_DEVICE_UUID_MAX 129 /* as DM_UUID_LEN */
#define BS_DEVICE_MAJOR	   254 /* reported device number major; minors are ours */

struct bs_device;

struct bs_device_info {
	char name[BS_DEVICE_NAME_MAX];
	char uuid[BS_DEVICE_UUID_MAX];
	unsigned minor;
	bool suspended;
	bool readonly;
	bool live_table;
	bool inactive_table;
	unsigned open_count;
	unsigned holders;
	uint32_t event_nr;
	unsigned nr_targets; /* of the live table */
	uint64_t size;	     /* sectors, live table */
	unsigned block_size;
};

/*
 * Creates NAME.  With TABLE (may be NULL: no table) it is loaded and resumed; if that fails
 * the device is removed again and ERR says why.
 */
int bs_device_create(const char *name, const char *uuid, bool readonly, const char *table,
		     struct strbuf *err);
int bs_device_load(struct bs_device *dev, const char *table, struct strbuf *err);
int bs_device_clear(struct bs_device *dev);
int bs_device_suspend(struct bs_device *dev, bool noflush);
int bs_device_resume(struct bs_device *dev, struct strbuf *err);
/* -EBUSY while open or held. */
int bs_device_remove(const char *name, struct strbuf *err);
/* Removes every device, top of each stack first (daemon shutdown). */
void bs_device_remove_all(void);

/* Reference counting; lookup returns a new reference or NULL. */
struct bs_device *bs_device_lookup(const char *name);
void bs_device_get(struct bs_device *dev);
void bs_device_put(struct bs_device *dev);

/* Front ends (NBD connections, FUSE exports) count as opens. */
int bs_device_open(struct bs_device *dev);
void bs_device_close(struct bs_device *dev);
/* Tables that map onto a device count as holders. */
void bs_device_add_holder(struct bs_device *dev);
void bs_device_release_holder(struct bs_device *dev);

int bs_device_submit(struct bs_device *dev, struct bs_io *io);
/*
 * Daemon shutdown, once nothing can resume a device any more: requests held by suspended
 * devices, and any that arrive later, fail with -ESHUTDOWN instead of waiting for ever.
 */
void bs_device_stop_holding(void);
/* Flushes every device (daemon shutdown), suspended ones too; returns the first error. */
int bs_device_flush_all(void);

uint64_t bs_device_size(struct bs_device *dev); /* sectors */
unsigned bs_device_block_size(struct bs_device *dev);
bool bs_device_readonly(struct bs_device *dev);
const char *bs_device_name(struct bs_device *dev);
void bs_device_get_info(struct bs_device *dev, struct bs_device_info *info);

/*
 * Status of the live table (or the inactive one with INACTIVE), as lines
 * "<start> <len> <type> <params>\n".  Returns -ENXIO when that table does not exist.
 */
int bs_device_status(struct bs_device *dev, bool inactive, enum bs_status_type type, unsigned flags,
		     const char *target_filter, struct strbuf *out);
/* Sends a message to the segment at SECTOR of the live table. */
int bs_device_message(struct bs_device *dev, uint64_t sector, unsigned argc, char **argv,
		      struct strbuf *out, struct strbuf *err);
/* Host paths and device names the live table (or inactive) maps onto, one per line. */
int bs_device_deps(struct bs_device *dev, bool inactive, struct strbuf *out);

/* Events, as dm's event counter: targets raise them, `dm wait` waits for them. */
void bs_device_event(struct bs_device *dev);
/*
 * Waits until the event counter exceeds EVENT_NR.  CANCELLED, polled a few times a second,
 * ends the wait early (-ECANCELED), e.g. when the waiting client went away.
 */
int bs_device_wait_event(struct bs_device *dev, uint32_t event_nr, bool (*cancelled)(void *),
			 void *arg);

/* True when mapping OWNER onto PATH would make OWNER depend on itself. */
bool bs_device_would_cycle(struct bs_device *owner, const char *path);

/* Calls fn for every device in creation order, with a reference held during the call. */
void bs_device_for_each(void (*fn)(struct bs_device *dev, void *arg), void *arg);

/* Checks a device name as dm does; returns NULL when fine or a reason. */
const char *bs_device_name_invalid(const char *name);

#endif
